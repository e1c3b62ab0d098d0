//! The text decoders (the future fuzz targets' entry points) never panic, and errors never echo
//! secret input.

use keyline_core::{Identity, import_ssb_secret, parse_ed25519_public, parse_npub, parse_nsec};
use proptest::prelude::*;

/// Arbitrary strings, biased towards the alphabets the parsers look at.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9a-fA-F]{0,70}",
        "[@A-Za-z0-9+/=.]{0,60}(\\.ed25519)?",
        "(npub1|nsec1)[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{0,70}",
    ]
}

/// `base` with one byte range replaced by `insert`.
fn mutate(base: String) -> impl Strategy<Value = String> {
    let len = base.len();
    (0..=len, 0..=len, "[^\\x00]{0,8}").prop_map(move |(a, b, insert)| {
        let (a, b) = (a.min(b), a.max(b));
        let mut s = base.clone();
        if s.is_char_boundary(a) && s.is_char_boundary(b) {
            s.replace_range(a..b, &insert);
        }
        s
    })
}

proptest! {
    #[test]
    fn key_parsers_never_panic(s in text()) {
        let _ = parse_ed25519_public(&s);
        let _ = parse_npub(&s);
        if let Err(e) = parse_nsec(&s) {
            let msg = e.to_string();
            prop_assert!(s.len() < 8 || !msg.contains(s.trim()), "{}", msg);
        }
    }

    #[test]
    fn identity_parser_never_panics(s in text()) {
        let _ = Identity::from_toml(&s);
    }

    #[test]
    fn mutated_identity_files_never_panic(
        s in mutate(Identity::from_parts([1; 32], [2; 32]).unwrap().to_toml().to_string())
    ) {
        match Identity::from_toml(&s) {
            Ok(id) => prop_assert_eq!(id.ed25519_public().len(), 32),
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(!msg.contains('\n'));
                prop_assert!(!msg.contains("0101010101010101"), "{}", msg);
                prop_assert!(!msg.contains("0202020202020202"), "{}", msg);
            }
        }
    }

    #[test]
    fn ssb_import_never_panics(s in text()) {
        let _ = import_ssb_secret(&s);
    }

    #[test]
    fn mutated_ssb_secrets_never_panic(s in mutate(ssb_secret())) {
        if let Err(e) = import_ssb_secret(&s) {
            prop_assert!(!e.to_string().contains('\n'));
        }
    }
}

fn ssb_secret() -> String {
    use base64::Engine as _;
    let seed = [3u8; 32];
    let pk = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let mut keypair = seed.to_vec();
    keypair.extend_from_slice(&pk);
    let b64 = base64::engine::general_purpose::STANDARD;
    let public = format!("{}.ed25519", b64.encode(pk));
    format!(
        "# comment\n{{\n  \"curve\": \"ed25519\",\n  \"public\": \"{public}\",\n  \
         \"private\": \"{}.ed25519\",\n  \"id\": \"@{public}\"\n}}\n",
        b64.encode(&keypair)
    )
}
