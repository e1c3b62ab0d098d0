//! NIP-04 (spec §5): round trips between two single keys and with a threshold key, the
//! format, and malformed input → the one generic error.

mod common;

use aes::Aes256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockModeEncrypt, KeyIvInit};
use common::{SeededRng, npub_of, random_secret};
use keyline_signer::ecdh::SharedX;
use keyline_signer::limits::{MAX_NIP04_PAYLOAD, MAX_NIP04_PLAINTEXT};
use keyline_signer::{Error, local, nip04};

fn pair(rng: &mut SeededRng) -> (SharedX, SharedX) {
    let a = random_secret(rng);
    let b = random_secret(rng);
    (
        SharedX::from_secret(&a, &npub_of(&b)).unwrap(),
        SharedX::from_secret(&b, &npub_of(&a)).unwrap(),
    )
}

#[test]
fn round_trip_between_single_keys() {
    let mut rng = SeededRng::new(4);
    let (alice, bob) = pair(&mut rng);
    assert_eq!(alice.as_bytes(), bob.as_bytes());
    for text in [
        "",
        "a",
        "hello nostr",
        "ünïcödé ✓ 🎉",
        &"x".repeat(16),
        &"y".repeat(1000),
    ] {
        let content = nip04::encrypt_with_rng(&alice, text, &mut rng).unwrap();
        let (ct, iv) = content.rsplit_once("?iv=").unwrap();
        assert_eq!(STANDARD.decode(iv).unwrap().len(), 16);
        let ct = STANDARD.decode(ct).unwrap();
        assert_eq!(ct.len(), (text.len() / 16 + 1) * 16, "PKCS#7 always pads");
        assert_eq!(nip04::decrypt(&bob, &content).unwrap(), text);
    }
}

/// A fixed case: AES-256-CBC under the raw shared x, checked against the cipher directly.
#[test]
fn format_is_base64_ct_iv() {
    let mut rng = SeededRng::new(5);
    let (alice, _) = pair(&mut rng);
    let iv = [7u8; 16];
    let content = nip04::encrypt(&alice, "hi", &iv).unwrap();
    let mut block = [0u8; 16];
    block[..2].copy_from_slice(b"hi");
    block[2..].fill(14);
    let mut expected = block;
    cbc::Encryptor::<Aes256>::new(alice.as_bytes().into(), (&iv).into())
        .encrypt_padded::<NoPadding>(&mut expected, 16)
        .unwrap();
    assert_eq!(
        content,
        format!("{}?iv={}", STANDARD.encode(expected), STANDARD.encode(iv))
    );
}

#[test]
fn threshold_key_interoperates() {
    let mut rng = SeededRng::new(6);
    let (public, shares) = local::dkg(2, 3, &mut rng).unwrap();
    let peer_secret = random_secret(&mut rng);
    let ours = local::ecdh(
        &public,
        &[&shares[1], &shares[2]],
        &npub_of(&peer_secret),
        &mut rng,
    )
    .unwrap();
    let theirs = SharedX::from_secret(&peer_secret, &public.npub()).unwrap();
    let c = nip04::encrypt_with_rng(&ours, "threshold → single", &mut rng).unwrap();
    assert_eq!(nip04::decrypt(&theirs, &c).unwrap(), "threshold → single");
    let c = nip04::encrypt_with_rng(&theirs, "single → threshold", &mut rng).unwrap();
    assert_eq!(nip04::decrypt(&ours, &c).unwrap(), "single → threshold");
}

#[test]
fn malformed_inputs_fail_generically() {
    let mut rng = SeededRng::new(7);
    let (alice, bob) = pair(&mut rng);
    let good = nip04::encrypt(&alice, "secret message", &[1; 16]).unwrap();
    let (ct, iv) = good.rsplit_once("?iv=").unwrap();
    let iv15 = STANDARD.encode([1u8; 15]);
    let iv17 = STANDARD.encode([1u8; 17]);
    let ct15 = STANDARD.encode([0u8; 15]);
    let mut raw_ct = STANDARD.decode(ct).unwrap();
    let last = raw_ct.len() - 1;
    raw_ct[last] ^= 0x55; // breaks the padding block
    let bad_padding = format!("{}?iv={iv}", STANDARD.encode(&raw_ct));
    let cases: Vec<String> = vec![
        String::new(),
        "no separator".into(),
        ct.to_string(),
        format!("{ct}?iv="),
        format!("?iv={iv}"),
        format!("{ct}?iv={iv15}"),
        format!("{ct}?iv={iv17}"),
        format!("{ct}?iv={}", &iv[..iv.len() - 1]),
        format!("{ct}?iv={iv} "),
        format!("{ct}!?iv={iv}"),
        format!("{}?iv={iv}", &ct[..ct.len() - 4]),
        format!("{ct15}?iv={iv}"),
        format!("{}?iv={iv}", STANDARD.encode([])),
        format!("{ct}?iv={iv}?iv={iv}x"),
        bad_padding,
    ];
    for case in &cases {
        assert_eq!(
            nip04::decrypt(&bob, case).unwrap_err(),
            Error::Nip04DecryptionFailed,
            "{case:?}"
        );
    }
    // The wrong key decrypts to garbage padding or non-UTF-8: the same error, never a panic.
    let (eve, _) = pair(&mut rng);
    let mut refused = 0;
    for i in 0..32u8 {
        let c = nip04::encrypt(&alice, "the quick brown fox", &[i; 16]).unwrap();
        match nip04::decrypt(&eve, &c) {
            Err(Error::Nip04DecryptionFailed) => refused += 1,
            Ok(text) => assert_ne!(text, "the quick brown fox"),
            Err(other) => panic!("{other}"),
        }
    }
    assert!(refused > 24, "{refused}");
    // Split at the LAST `?iv=`: a ciphertext cannot contain one (base64), so an earlier one
    // only makes the first half bad base64.
    assert_eq!(nip04::decrypt(&bob, &good).unwrap(), "secret message");
}

#[test]
fn sizes_are_bounded() {
    let mut rng = SeededRng::new(8);
    let (alice, bob) = pair(&mut rng);
    let max = "m".repeat(MAX_NIP04_PLAINTEXT);
    let c = nip04::encrypt(&alice, &max, &[2; 16]).unwrap();
    assert!(c.len() <= MAX_NIP04_PAYLOAD);
    assert_eq!(nip04::decrypt(&bob, &c).unwrap().len(), MAX_NIP04_PLAINTEXT);
    assert!(matches!(
        nip04::encrypt(&alice, &format!("{max}m"), &[2; 16]).unwrap_err(),
        Error::TooLarge { .. }
    ));
    let huge = "A".repeat(MAX_NIP04_PAYLOAD + 1);
    assert!(matches!(
        nip04::decrypt(&bob, &huge).unwrap_err(),
        Error::TooLarge { .. }
    ));
}
