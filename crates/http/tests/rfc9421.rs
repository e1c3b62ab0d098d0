//! RFC 9421 Appendix B (shared/vectors/http-sig/cases.json): every printed base is rebuilt
//! from its message and `Signature-Input`, and every signature verifies over its printed base:
//! Ed25519 through keyline's own verifier (and re-signed byte for byte), HMAC-SHA256
//! reproduced, RSA-PSS-SHA512 and ECDSA-P256-SHA256 verified with dev-only crates (`rsa`,
//! `p256`) because keyline's profile does not use those algorithms (http.md B.2, B.18 items
//! 1–3). No case is skipped.

mod common;

use common::{Message, load_message, pem_der, read_text};
use hmac::{KeyInit, Mac};
use keyline_http::base::{parse_signature, parse_signature_input};
use keyline_http::component::MessageRef;
use keyline_http::keys::{PublicKey, SigningKey};
use keyline_testkit::{array, hex, hex_n, load_json, str_field};
use serde_json::Value;

fn base_of(message: &Message, signature_input: &str) -> keyline_http::Result<String> {
    let (_, input) = parse_signature_input(signature_input)?.remove(0);
    match message {
        Message::Request(r) => input.signature_base(&MessageRef::Request(r)),
        Message::Response(r) => input.signature_base(&MessageRef::Response {
            response: r,
            request: None,
        }),
    }
}

/// Verifies `signature` over `base` with the case's algorithm and key; for the
/// deterministic algorithms also re-signs and compares bytes.
fn verify(case: &Value, keys: &Value, base: &str, signature: &[u8]) -> bool {
    let alg = str_field(case, "alg");
    let key = &keys[str_field(case, "key")];
    match alg {
        "ed25519" => {
            let public = PublicKey::Ed25519(hex_n::<32>(&key["public_raw_hex"]));
            let sig: [u8; 64] = signature.try_into().expect("64-byte signature");
            let ok = public.verify(base.as_bytes(), &sig);
            if ok {
                let signer = SigningKey::ed25519_from_seed(&hex_n::<32>(&key["private_seed_hex"]));
                assert_eq!(
                    signer.sign(base.as_bytes(), &[0; 32]).unwrap(),
                    sig,
                    "{}: Ed25519 reproduces",
                    case["id"]
                );
            }
            ok
        }
        "hmac-sha256" => {
            let secret = hex(&key["hex"]);
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&secret).unwrap();
            mac.update(base.as_bytes());
            mac.verify_slice(signature).is_ok()
        }
        "rsa-pss-sha512" => {
            use rsa::pkcs8::DecodePublicKey;
            use rsa::signature::Verifier;
            let der = pem_der(str_field(key, "public"));
            let public = rsa::RsaPublicKey::from_public_key_der(&der).expect("RSA SPKI");
            let verifier = rsa::pss::VerifyingKey::<sha2::Sha512>::new(public);
            let sig = rsa::pss::Signature::try_from(signature).expect("RSA signature");
            verifier.verify(base.as_bytes(), &sig).is_ok()
        }
        "ecdsa-p256-sha256" => {
            use p256::ecdsa::signature::Verifier;
            let der = pem_der(str_field(key, "public"));
            let point = &der[der.len() - 65..];
            let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).expect("P-256 key");
            let sig = p256::ecdsa::Signature::from_slice(signature).expect("r||s");
            public.verify(base.as_bytes(), &sig).is_ok()
        }
        other => panic!("unexpected algorithm {other}"),
    }
}

#[test]
fn appendix_b_cases() {
    let doc = load_json("http-sig/cases.json");
    let keys = &doc["keys"];
    let cases = array(&doc, "cases");
    assert_eq!(cases.len(), 8, "B.2.1–B.2.6, B.3, B.4");
    let mut by_alg = std::collections::BTreeMap::<String, usize>::new();
    for case in cases {
        let id = str_field(case, "id");
        let files = &case["files"];
        let input_text = read_text(str_field(files, "signature_input"));
        let printed_base = read_text(str_field(files, "signature_base"));
        let sig_text = read_text(str_field(files, "signature"));
        assert_eq!(input_text, str_field(case, "signature_input"), "{id}");
        assert_eq!(printed_base, str_field(case, "signature_base"), "{id}");

        // The Inner List re-serializes to exactly what was received.
        let (label, input) = parse_signature_input(&input_text).unwrap().remove(0);
        assert_eq!(label, str_field(case, "label"), "{id}");
        assert_eq!(input.to_field(&label).unwrap(), input_text, "{id}");
        let covered: Vec<&str> = input.components().iter().map(|c| c.serialized()).collect();
        let expected: Vec<&str> = array(case, "covered_components")
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(covered, expected, "{id}");

        // The signature field decodes to the printed bytes.
        let (sig_label, signature) = parse_signature(&sig_text).unwrap().remove(0);
        assert_eq!(sig_label, label);
        assert_eq!(signature, hex(&case["signature_bytes_hex"]), "{id}");

        // Base rebuilt from the message.
        let message = load_message(str_field(case, "message"));
        let rebuilt = base_of(&message, &input_text).unwrap();
        if case["base_rebuilt_from_message_matches"] == true {
            assert_eq!(rebuilt, printed_base, "{id}: rebuilt base");
        } else {
            // B.2.4 (B.15 quirk 1): the printed test-response carries a wrong digest.
            assert_eq!(id, "B.2.4");
            assert_ne!(rebuilt, printed_base);
            assert_eq!(
                rebuilt,
                str_field(case, "base_rebuilt_from_printed_message"),
                "{id}"
            );
            assert!(
                !verify(case, keys, &rebuilt, &signature),
                "{id}: printed message"
            );
            assert_eq!(case["rebuilt_base_verifies"], false);
            // The printed Content-Digest is not the body's digest.
            let Message::Response(response) = &message else {
                panic!("B.2.4 signs a response")
            };
            let printed = response.headers.combined("content-digest").unwrap();
            let correct = keyline_http::digest::digest_member("sha-512", &response.body).unwrap();
            assert_ne!(printed, correct);
            // With the correct digest substituted, the base matches and verifies.
            let mut fixed = response.clone();
            fixed.headers.set("Content-Digest", correct);
            let fixed_base = base_of(&Message::Response(fixed), &input_text).unwrap();
            assert_eq!(fixed_base, printed_base, "{id}: corrected digest");
        }

        // The signature verifies over the printed base.
        assert_eq!(case["verifies"], true);
        assert!(
            verify(case, keys, &printed_base, &signature),
            "{id}: verifies"
        );
        // And not over a base with one byte changed.
        let mut tampered = printed_base.clone().into_bytes();
        tampered[0] ^= 1;
        assert!(
            !verify(
                case,
                keys,
                &String::from_utf8(tampered).unwrap(),
                &signature
            ),
            "{id}: tampered base"
        );
        *by_alg
            .entry(str_field(case, "alg").to_string())
            .or_default() += 1;
    }
    let counts: Vec<(String, usize)> = by_alg.into_iter().collect();
    assert_eq!(
        counts,
        vec![
            ("ecdsa-p256-sha256".to_string(), 2),
            ("ed25519".to_string(), 2),
            ("hmac-sha256".to_string(), 1),
            ("rsa-pss-sha512".to_string(), 3),
        ]
    );
}

#[test]
fn appendix_b4_transformations() {
    let doc = load_json("http-sig/cases.json");
    let keys = &doc["keys"];
    let case = array(&doc, "cases")
        .iter()
        .find(|c| c["id"] == "B.4")
        .expect("B.4");
    let transformations = array(case, "transformations");
    assert_eq!(transformations.len(), 6);
    let (mut valid, mut invalid) = (0, 0);
    for t in transformations {
        let message = load_message(str_field(t, "message"));
        let Message::Request(request) = &message else {
            panic!("B.4 messages are requests")
        };
        let input = request.headers.combined("signature-input").unwrap();
        let (_, signature) = parse_signature(&request.headers.combined("signature").unwrap())
            .unwrap()
            .remove(0);
        let base = base_of(&message, &input).unwrap();
        assert_eq!(base, str_field(t, "signature_base"), "{}", t["message"]);
        let ok = verify(case, keys, &base, &signature);
        assert_eq!(ok, t["expect_valid"] == true, "{}", t["message"]);
        assert_eq!(ok, t["verifies"] == true);
        if ok { valid += 1 } else { invalid += 1 }
    }
    assert_eq!((valid, invalid), (4, 2));
}
