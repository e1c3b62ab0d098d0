//! keyline-core's parsers of local and imported key material: the identity file, the SSB
//! secret file, and public/secret key strings (hex, base64, SSB ids, NIP-19).

use keyline_core::{Identity, import_ssb_secret, parse_ed25519_public, parse_npub, parse_nsec};

/// Input: one selector byte, then UTF-8 text (invalid UTF-8 is replaced). The selector picks
/// the parser: 0 identity file (TOML), 1 SSB secret (JSON with `#` comments), 2 Ed25519
/// public key, 3 nsec, 4 npub. Invariants: no panic; an identity that parses survives
/// `to_toml` → `from_toml` with the same keys; a parsed public key re-parses from hex.
pub fn core_parsers(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match selector % 5 {
        0 => {
            if let Ok(identity) = Identity::from_toml(&text) {
                let again = Identity::from_toml(&identity.to_toml()).expect("own output parses");
                assert_eq!(again.public(), identity.public());
            }
        }
        1 => {
            let _ = import_ssb_secret(&text);
        }
        2 => {
            if let Ok(key) = parse_ed25519_public(&text) {
                assert_eq!(
                    parse_ed25519_public(&hex::encode(key)).expect("hex form"),
                    key
                );
            }
        }
        3 => {
            let _ = parse_nsec(&text);
        }
        _ => {
            if let Ok(key) = parse_npub(&text) {
                assert_eq!(
                    parse_npub(&keyline_core::npub(&key)).expect("npub form"),
                    key
                );
            }
        }
    }
}
