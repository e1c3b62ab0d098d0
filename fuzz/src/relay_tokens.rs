//! keyline-relay's token validator (sbrp.md §15): the JWT a peer presents before the
//! WebSocket upgrade, checked against the vectors' JWKS, issuer, region and clock.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use keyline_relay::{KeySet, TokenPolicy, TokenRole, validate_token};

use crate::Cursor;

/// The vectors' signing key (RFC 8032 §7.1 TEST 3 secret key), kid `relay-test-1`.
const SIGNING_SEED: [u8; 32] = [
    0xc5, 0xaa, 0x8d, 0xf4, 0x3f, 0x9f, 0x83, 0x7b, 0xed, 0xb7, 0x44, 0x2f, 0x31, 0xdc, 0xb7, 0xb1,
    0x66, 0xd3, 0x85, 0x35, 0x07, 0x6f, 0x09, 0x4b, 0x85, 0xce, 0x3a, 0x2e, 0x0b, 0x44, 0x58, 0xf7,
];
/// The vectors' `now`.
const NOW: u64 = 1_767_225_610;

/// Input: one selector byte, then:
/// * 0: the token text (lossily UTF-8), validated as presented.
/// * 1: `len u16le ‖ header JSON ‖ claims JSON`: the entry point encodes both segments and
///   signs them with the vectors' key, so the claim checks behind the signature are reached.
///
/// Invariants: no panic; an accepted token has a non-empty `did`, a client token a sid ≠ 0,
/// and `exp` is not more than the clock skew in the past.
pub fn relay_tokens(data: &[u8]) {
    let mut cursor = Cursor::new(data);
    let selector = cursor.byte();
    let token = match selector % 2 {
        0 => String::from_utf8_lossy(cursor.rest()).into_owned(),
        _ => {
            let len = usize::from(u16::from_le_bytes([cursor.byte(), cursor.byte()]));
            let rest = cursor.rest();
            let (header, claims) = rest.split_at(len.min(rest.len()));
            signed(header, claims)
        }
    };
    let key = SigningKey::from_bytes(&SIGNING_SEED);
    let mut keys = KeySet::new();
    keys.insert("relay-test-1", key.verifying_key());
    let policy = TokenPolicy::new("https://issuer.keyline.test").with_region("test-1");
    if let Ok(valid) = validate_token(&token, &keys, &policy, NOW) {
        let claims = &valid.claims;
        assert!(!claims.daemon_id.is_empty(), "accepted a token without did");
        assert!(
            claims.exp.saturating_add(30) >= NOW as i64,
            "accepted an expired token"
        );
        if claims.role == TokenRole::Client {
            assert_ne!(claims.sid, Some(0), "accepted a client token with sid 0");
            assert!(claims.sid.is_some(), "accepted a client token without sid");
        }
    }
}

/// `b64(header).b64(claims).b64(sig)` signed with the vectors' key.
pub fn signed(header: &[u8], claims: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = SigningKey::from_bytes(&SIGNING_SEED).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}
