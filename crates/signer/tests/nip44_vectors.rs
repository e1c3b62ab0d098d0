//! NIP-44 v2 against every section of `shared/vectors/nip44/nip44.vectors.json` (and the
//! README's extended-length boundary cases), plus interop between a threshold key and an
//! ordinary single key.
//!
//! keyline implements the 2026 extended-length amendment, so the three
//! `invalid.encrypt_msg_lengths` entries ≥ 65 536 are checked against the amendment (they must
//! encrypt and decrypt back) instead of being expected to fail; the test prints that it did so.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{SeededRng, npub_of, random_secret};
use keyline_signer::ecdh::SharedX;
use keyline_signer::nip44::{self, ConversationKey, MessageKeys};
use keyline_signer::{Error, local};
use keyline_testkit::{array, hex_n, load_json, str_field, vectors_dir};
use sha2::{Digest, Sha256};

const FILE: &str = "nip44/nip44.vectors.json";
const SHA256: &str = "269ed0f69e4c192512cc779e78c555090cebc7c785b609e338a62afc3ce25040";

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn ck(case: &serde_json::Value) -> ConversationKey {
    ConversationKey::from_bytes(hex_n::<32>(&case["conversation_key"]))
}

#[test]
fn file_is_the_published_one() {
    let bytes = std::fs::read(vectors_dir().join(FILE)).unwrap();
    assert_eq!(sha256_hex(&bytes), SHA256);
}

#[test]
fn valid_conversation_keys() {
    let v = load_json(FILE);
    let cases = array(&v["v2"]["valid"], "get_conversation_key");
    for case in cases {
        let sec1 = hex_n::<32>(&case["sec1"]);
        let pub2 = hex_n::<32>(&case["pub2"]);
        let key = ConversationKey::derive(&sec1, &pub2).unwrap();
        assert_eq!(
            key.as_bytes(),
            &hex_n::<32>(&case["conversation_key"]),
            "sec1 {}",
            str_field(case, "sec1")
        );
    }
    assert_eq!(cases.len(), 35);
    eprintln!("valid.get_conversation_key: {} cases", cases.len());
}

#[test]
fn valid_message_keys() {
    let v = load_json(FILE);
    let section = &v["v2"]["valid"]["get_message_keys"];
    let key = ck(section);
    let cases = array(section, "keys");
    for case in cases {
        let keys = MessageKeys::derive(&key, &hex_n::<32>(&case["nonce"]));
        assert_eq!(keys.chacha_key(), &hex_n::<32>(&case["chacha_key"]));
        assert_eq!(keys.chacha_nonce(), &hex_n::<12>(&case["chacha_nonce"]));
        assert_eq!(keys.hmac_key(), &hex_n::<32>(&case["hmac_key"]));
    }
    assert_eq!(cases.len(), 32);
    eprintln!("valid.get_message_keys: {} cases", cases.len());
}

#[test]
fn valid_padded_lengths() {
    let v = load_json(FILE);
    let cases = array(&v["v2"]["valid"], "calc_padded_len");
    for case in cases {
        let pair = case.as_array().unwrap();
        let (len, padded) = (pair[0].as_u64().unwrap(), pair[1].as_u64().unwrap());
        assert_eq!(nip44::calc_padded_len(len), padded, "len {len}");
        // The padded buffer (below the extended threshold) is prefix + padded length.
        if len > 0 && len < 65_536 {
            let buf = nip44::pad(&vec![b'x'; len as usize]).unwrap();
            assert_eq!(buf.len() as u64, 2 + padded);
        }
    }
    assert_eq!(cases.len(), 24);
    eprintln!("valid.calc_padded_len: {} cases", cases.len());
}

#[test]
fn valid_encrypt_decrypt() {
    let v = load_json(FILE);
    let cases = array(&v["v2"]["valid"], "encrypt_decrypt");
    for case in cases {
        let sec1 = hex_n::<32>(&case["sec1"]);
        let sec2 = hex_n::<32>(&case["sec2"]);
        let expected_key = hex_n::<32>(&case["conversation_key"]);
        let nonce = hex_n::<32>(&case["nonce"]);
        let plaintext = str_field(case, "plaintext");
        let payload = str_field(case, "payload");

        let key = ConversationKey::derive(&sec1, &npub_of(&sec2)).unwrap();
        assert_eq!(key.as_bytes(), &expected_key);
        assert_eq!(nip44::encrypt(&key, plaintext, &nonce).unwrap(), payload);

        let back = ConversationKey::derive(&sec2, &npub_of(&sec1)).unwrap();
        assert_eq!(back.as_bytes(), &expected_key);
        assert_eq!(nip44::decrypt(&back, payload).unwrap(), plaintext);
    }
    assert_eq!(cases.len(), 10);
    eprintln!("valid.encrypt_decrypt: {} cases", cases.len());
}

#[test]
fn valid_long_messages() {
    let v = load_json(FILE);
    let cases = array(&v["v2"]["valid"], "encrypt_decrypt_long_msg");
    for case in cases {
        let key = ck(case);
        let nonce = hex_n::<32>(&case["nonce"]);
        let plaintext =
            str_field(case, "pattern").repeat(case["repeat"].as_u64().unwrap() as usize);
        assert_eq!(
            sha256_hex(plaintext.as_bytes()),
            str_field(case, "plaintext_sha256")
        );
        let payload = nip44::encrypt(&key, &plaintext, &nonce).unwrap();
        assert_eq!(
            sha256_hex(payload.as_bytes()),
            str_field(case, "payload_sha256")
        );
        assert_eq!(nip44::decrypt(&key, &payload).unwrap(), plaintext);
    }
    assert_eq!(cases.len(), 3);
    eprintln!("valid.encrypt_decrypt_long_msg: {} cases", cases.len());
}

/// The README's boundary cases of the 2026 amendment (65 535 with a u16 prefix, 65 536 and
/// 65 537 with the 6-byte prefix).
#[test]
fn extended_length_boundaries() {
    let key = ConversationKey::from_bytes(hex_n::<32>(&serde_json::json!(
        "c41c775356fd92eadc63ff5a0dc1da211b268cbea22316767095b2871ea1412d"
    )));
    let mut nonce = [0u8; 32];
    nonce[31] = 1;
    let cases = [
        (
            65_535usize,
            65_536u64,
            "6e1bebca6a8229364a162a72ef064826c4cd7457bf54f190ef782bd9deff3e42",
            "6d8c2810d1e870fbaa1f0a0937126cca837a15f9260e27060c331d70a3c0bc84",
        ),
        (
            65_536,
            65_536,
            "bf718b6f653bebc184e1479f1935b8da974d701b893afcf49e701f3e2f9f9c5a",
            "b7b4edb36ba92e267d322d56d9aebc22e7fa96ff52e3c12adc07f07a43cbc616",
        ),
        (
            65_537,
            81_920,
            "008ffc88d3c96a9f307524eb361e47c5222a887fc45fa0c1fb8d429c5c23b430",
            "eeb7c7c5373894ea2c1547cfd3ccb15d5a0b2d619da852e5c79df792dcc9e435",
        ),
    ];
    for (len, padded_len, plain_sha, payload_sha) in cases {
        let plaintext = "a".repeat(len);
        assert_eq!(sha256_hex(plaintext.as_bytes()), plain_sha);
        assert_eq!(nip44::calc_padded_len(len as u64), padded_len);
        let payload = nip44::encrypt(&key, &plaintext, &nonce).unwrap();
        assert_eq!(sha256_hex(payload.as_bytes()), payload_sha, "len {len}");
        let decoded = STANDARD.decode(&payload).unwrap();
        let prefix = if len < 65_536 { 2 } else { 6 };
        assert_eq!(decoded.len() as u64, 1 + 32 + prefix + padded_len + 32);
        assert_eq!(nip44::decrypt(&key, &payload).unwrap(), plaintext);
    }
    eprintln!("extended-length boundary cases (README): 3 cases");
}

#[test]
fn invalid_message_lengths() {
    let v = load_json(FILE);
    let cases = array(&v["v2"]["invalid"], "encrypt_msg_lengths");
    let key = ConversationKey::from_bytes([0x42; 32]);
    let nonce = [0x24; 32];
    let mut amended = Vec::new();
    for case in cases {
        let len = case.as_u64().unwrap() as usize;
        let plaintext = "x".repeat(len);
        if len < 65_536 {
            assert_eq!(
                nip44::encrypt(&key, &plaintext, &nonce).unwrap_err(),
                Error::Nip44PlaintextLength { len }
            );
            continue;
        }
        // Valid under the 2026 extended-length amendment: it must encrypt, with the 6-byte
        // prefix, and decrypt back (with a payload limit raised for the 10 MB case).
        let payload = nip44::encrypt(&key, &plaintext, &nonce).unwrap();
        let decoded_len = payload.len() / 4 * 3;
        assert!(decoded_len as u64 >= 1 + 32 + 6 + nip44::calc_padded_len(len as u64) + 32 - 2);
        let back = nip44::decrypt_with_limit(&key, &payload, payload.len()).unwrap();
        assert!(back == plaintext, "round trip of {len} bytes");
        if payload.len() > keyline_signer::limits::MAX_NIP44_PAYLOAD {
            assert!(matches!(
                nip44::decrypt(&key, &payload).unwrap_err(),
                Error::TooLarge { .. }
            ));
        }
        amended.push(len);
    }
    assert_eq!(cases.len(), 4);
    assert_eq!(amended, [65_536, 100_000, 10_000_000]);
    eprintln!(
        "invalid.encrypt_msg_lengths: 1 case refused (length 0); {} cases NOT checked as \
         invalid because keyline implements the 2026 extended-length amendment: lengths {:?} \
         were checked to encrypt and decrypt instead",
        amended.len(),
        amended
    );
}

#[test]
fn invalid_conversation_keys() {
    let v = load_json(FILE);
    let cases = array(&v["v2"]["invalid"], "get_conversation_key");
    let (mut bad_secret, mut bad_peer) = (0, 0);
    for case in cases {
        let sec1 = hex_n::<32>(&case["sec1"]);
        let pub2 = hex_n::<32>(&case["pub2"]);
        match ConversationKey::derive(&sec1, &pub2).unwrap_err() {
            Error::InvalidSecretKey => bad_secret += 1,
            Error::InvalidPeerKey => bad_peer += 1,
            other => panic!("{}: {other}", str_field(case, "note")),
        }
    }
    assert_eq!(cases.len(), 8);
    eprintln!(
        "invalid.get_conversation_key: {} cases ({bad_secret} bad secrets, {bad_peer} bad peer keys)",
        cases.len()
    );
}

#[test]
fn invalid_decrypt() {
    let v = load_json(FILE);
    let cases = array(&v["v2"]["invalid"], "decrypt");
    let mut codes = std::collections::BTreeMap::new();
    for case in cases {
        let key = ck(case);
        let note = str_field(case, "note");
        let err = nip44::decrypt(&key, str_field(case, "payload")).unwrap_err();
        // The note names the cause; check the class where it is unambiguous.
        let lower = note.to_lowercase();
        if lower.contains("version") {
            assert!(
                matches!(err, Error::Nip44UnsupportedVersion { .. }),
                "{note}: {err}"
            );
        } else if lower.contains("mac") {
            assert_eq!(err, Error::Nip44InvalidMac, "{note}");
        } else if lower.contains("padding") {
            assert!(
                matches!(err, Error::Nip44InvalidPayload { .. }),
                "{note}: {err}"
            );
        }
        *codes.entry(err.code()).or_insert(0) += 1;
    }
    assert_eq!(cases.len(), 12);
    eprintln!("invalid.decrypt: {} cases refused {codes:?}", cases.len());
}

/// NIP-44 with a threshold ECDH shared x (DKG key, any t of n) interoperates with single-key
/// NIP-44 on the peer's side, in both directions.
#[test]
fn threshold_key_interoperates_with_a_single_key() {
    let mut rng = SeededRng::new(44);
    for round in 0..4 {
        let (public, shares) = local::dkg(2, 3, &mut rng).unwrap();
        let peer_secret = random_secret(&mut rng);
        let peer = npub_of(&peer_secret);
        let chosen = [&shares[round % 3], &shares[(round + 1) % 3]];
        let shared = local::ecdh(&public, &chosen, &peer, &mut rng).unwrap();
        let ours = ConversationKey::from_shared_x(&shared);
        let theirs = ConversationKey::derive(&peer_secret, &public.npub()).unwrap();
        assert_eq!(ours.as_bytes(), theirs.as_bytes());
        // Single-key ECDH of the peer matches the threshold shared x byte for byte.
        let single = SharedX::from_secret(&peer_secret, &public.npub()).unwrap();
        assert_eq!(single.as_bytes(), shared.as_bytes());

        let to_peer = nip44::encrypt_with_rng(&ours, "from the threshold key", &mut rng).unwrap();
        assert_eq!(
            nip44::decrypt(&theirs, &to_peer).unwrap(),
            "from the threshold key"
        );
        let from_peer = nip44::encrypt_with_rng(&theirs, "from the peer ✓", &mut rng).unwrap();
        assert_eq!(
            nip44::decrypt(&ours, &from_peer).unwrap(),
            "from the peer ✓"
        );
        // A different key fails the MAC.
        let other = ConversationKey::derive(&random_secret(&mut rng), &public.npub()).unwrap();
        assert_eq!(
            nip44::decrypt(&other, &to_peer).unwrap_err(),
            Error::Nip44InvalidMac
        );
    }
}

#[test]
fn malformed_payloads_are_typed_errors() {
    let key = ConversationKey::from_bytes([9; 32]);
    let good = nip44::encrypt(&key, "hello", &[3; 32]).unwrap();
    assert_eq!(
        nip44::decrypt(&key, "").unwrap_err(),
        Error::Nip44UnsupportedVersion { version: None }
    );
    assert!(matches!(
        nip44::decrypt(&key, &good[..100]).unwrap_err(),
        Error::Nip44InvalidPayload { .. }
    ));
    // Not base64 (a `?`), same length.
    let mut bad = good.clone();
    bad.replace_range(10..11, "?");
    assert!(matches!(
        nip44::decrypt(&key, &bad).unwrap_err(),
        Error::Nip44InvalidPayload { .. }
    ));
    // Version byte 1.
    let mut raw = STANDARD.decode(&good).unwrap();
    raw[0] = 1;
    assert_eq!(
        nip44::decrypt(&key, &STANDARD.encode(&raw)).unwrap_err(),
        Error::Nip44UnsupportedVersion { version: Some(1) }
    );
    // Every flipped byte after the version fails the MAC.
    let raw = STANDARD.decode(&good).unwrap();
    for i in 1..raw.len() {
        let mut flipped = raw.clone();
        flipped[i] ^= 0x01;
        assert_eq!(
            nip44::decrypt(&key, &STANDARD.encode(&flipped)).unwrap_err(),
            Error::Nip44InvalidMac,
            "byte {i}"
        );
    }
    // Over the limit: refused before decoding.
    let huge = "A".repeat(keyline_signer::limits::MAX_NIP44_PAYLOAD + 4);
    assert!(matches!(
        nip44::decrypt(&key, &huge).unwrap_err(),
        Error::TooLarge { .. }
    ));
    assert!(matches!(
        nip44::decrypt_with_limit(&key, &good, good.len() - 1).unwrap_err(),
        Error::TooLarge { .. }
    ));
    assert_eq!(
        nip44::decrypt_with_limit(&key, &good, good.len()).unwrap(),
        "hello"
    );
}
