//! BIP-340 test vectors (shared/vectors/bip340/test-vectors.csv; http.md B.15 quirk 9, B.18
//! item 9) through the same `k256` calls the profile and NIP-98 use
//! (`keyline_http::keys::{bip340_sign, bip340_verify}`).

use keyline_http::keys::{bip340_sign, bip340_verify};
use keyline_testkit::vectors_dir;

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.to_ascii_lowercase()).expect("hex")
}

#[test]
fn every_row() {
    let path = vectors_dir().join("bip340/test-vectors.csv");
    let text = std::fs::read_to_string(&path).expect("bip340 vectors");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("index,secret key,public key,aux_rand,message,signature,verification result,comment")
    );
    let (mut rows, mut signed, mut valid, mut invalid) = (0, 0, 0, 0);
    let mut message_lengths = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let cols: Vec<&str> = line.splitn(8, ',').collect();
        assert_eq!(cols.len(), 8, "{line}");
        let index: usize = cols[0].parse().unwrap();
        assert_eq!(index, rows);
        let public = unhex(cols[2]);
        let message = unhex(cols[4]);
        let signature = unhex(cols[5]);
        let expected = match cols[6] {
            "TRUE" => true,
            "FALSE" => false,
            other => panic!("row {index}: verdict {other}"),
        };
        // Key and signature parsing are part of verification: a malformed one is `false`.
        let verdict = match (
            <[u8; 32]>::try_from(public.as_slice()),
            <[u8; 64]>::try_from(signature.as_slice()),
        ) {
            (Ok(pk), Ok(sig)) => bip340_verify(&pk, &message, &sig),
            _ => false,
        };
        assert_eq!(verdict, expected, "row {index}: {}", cols[7]);
        if !cols[1].is_empty() {
            let secret: [u8; 32] = unhex(cols[1]).try_into().unwrap();
            let aux: [u8; 32] = unhex(cols[3]).try_into().unwrap();
            let sig = bip340_sign(&secret, &message, &aux).unwrap();
            assert_eq!(sig.to_vec(), signature, "row {index}: signing reproduces");
            let derived = keyline_http::SigningKey::bip340_from_secret(&secret)
                .unwrap()
                .public_key();
            assert_eq!(derived.bytes().to_vec(), public, "row {index}: public key");
            signed += 1;
        }
        if (5..=14).contains(&index) {
            assert!(!expected, "rows 5–14 are negative");
        }
        if expected {
            valid += 1
        } else {
            invalid += 1
        }
        message_lengths.push(message.len());
        rows += 1;
    }
    assert_eq!(rows, 19);
    assert_eq!((valid, invalid), (9, 10));
    assert_eq!(signed, 8);
    assert_eq!(&message_lengths[15..], &[0, 1, 17, 100]);
}
