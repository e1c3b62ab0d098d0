//! RFC 9530 digests (shared/vectors/http-sig/rfc9530/content-digest.json, http.md B.18 item 4):
//! every entry's canonical value is recomputed from its content bytes; the over-padded printed
//! values are refused by the strict parser; Appendix D's sha-256 and sha-512 reproduce.

use keyline_http::digest::{ContentDigest, digest_member};
use keyline_testkit::{array, hex, load_json, str_field};

#[test]
fn every_printed_digest() {
    let doc = load_json("http-sig/rfc9530/content-digest.json");
    let entries = array(&doc, "entries");
    assert_eq!(entries.len(), 24);
    let (mut verified, mut over_padded, mut mismatched, mut sha512_only) = (0, 0, 0, 0);
    for entry in entries {
        let id = str_field(entry, "id");
        let content = hex(&entry["content_hex"]);
        assert_eq!(
            content.len() as u64,
            entry["content_length"].as_u64().unwrap(),
            "{id}"
        );
        let members = array(entry, "members");
        let canonical: Vec<String> = members
            .iter()
            .map(|m| digest_member(str_field(m, "algorithm"), &content).unwrap())
            .collect();
        assert_eq!(
            canonical.join(", "),
            str_field(entry, "canonical_field_value"),
            "{id}"
        );
        for (m, value) in members.iter().zip(&canonical) {
            assert_eq!(
                value,
                &format!(
                    "{}=:{}:",
                    str_field(m, "algorithm"),
                    str_field(m, "computed")
                ),
                "{id}"
            );
        }

        let printed = str_field(entry, "printed_field_value");
        let has_sha256 = members.iter().any(|m| m["algorithm"] == "sha-256");
        let parsed = ContentDigest::parse(printed);
        if members.iter().any(|m| m["printed_is_over_padded"] == true) {
            let err = parsed.expect_err(id);
            assert_eq!(err.code(), "malformed.structured_field", "{id}");
            // The canonical value parses and verifies.
            ContentDigest::parse(str_field(entry, "canonical_field_value"))
                .unwrap()
                .verify(&content)
                .unwrap();
            over_padded += 1;
        } else if !has_sha256 {
            assert_eq!(
                parsed.unwrap_err().code(),
                "malformed.content_digest",
                "{id}"
            );
            sha512_only += 1;
        } else if members.iter().all(|m| m["printed_equals_computed"] == true) {
            parsed.unwrap().verify(&content).unwrap();
            verified += 1;
        } else {
            // Section 2's two-digest example mixes digests of two different contents.
            assert_eq!(id, "2-b");
            assert_eq!(
                parsed.unwrap().verify(&content).unwrap_err().code(),
                "unauthorized.digest_mismatch"
            );
            mismatched += 1;
        }
    }
    assert_eq!(
        (verified, over_padded, mismatched, sha512_only),
        (17, 4, 1, 2)
    );
}

#[test]
fn brotli_quirk_bytes() {
    let doc = load_json("http-sig/rfc9530/content-digest.json");
    for entry in array(&doc, "entries") {
        if let Some(printed_hex) = entry.get("printed_content_hex") {
            let printed = hex(printed_hex);
            let actual = hex(&entry["content_hex"]);
            assert_eq!(&printed[..3], &[0x8b, 0x08, 0x80]);
            assert_eq!(&actual[..3], &[0x0b, 0x09, 0x80]);
            let value = str_field(entry, "printed_field_value");
            let first = value.split(", ").next().unwrap();
            assert_eq!(digest_member("sha-256", &actual).unwrap(), first);
            assert_ne!(digest_member("sha-256", &printed).unwrap(), first);
        }
    }
}

#[test]
fn appendix_d_sample_values() {
    let doc = load_json("http-sig/rfc9530/content-digest.json");
    let sample = &doc["appendix_d_sample_values"];
    let input = str_field(sample, "input_utf8").as_bytes();
    assert_eq!(input.len(), 18);
    let values = sample["values"].as_object().unwrap();
    assert_eq!(values.len(), 8);
    let mut supported = 0;
    for (alg, v) in values {
        match digest_member(alg, input) {
            Some(member) => {
                assert_eq!(member, format!("{alg}=:{}:", str_field(v, "printed")));
                supported += 1;
            }
            None => assert!(
                ["md5", "sha", "unixsum", "unixcksum", "adler", "crc32c"].contains(&alg.as_str()),
                "{alg}"
            ),
        }
    }
    assert_eq!(supported, 2, "sha-256 and sha-512");
    // A Content-Digest carrying a deprecated algorithm is refused (400).
    let with_md5 = format!(
        "{}, md5=:{}:",
        digest_member("sha-256", input).unwrap(),
        str_field(&values["md5"], "printed")
    );
    assert_eq!(
        ContentDigest::parse(&with_md5).unwrap_err().code(),
        "malformed.content_digest"
    );
}
