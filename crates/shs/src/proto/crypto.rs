//! The primitives of SHS v1 (spec §2), each a thin call into a RustCrypto or dalek crate.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256, Sha512};
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use crate::keys::NetworkKey;

/// A 32-byte secret wiped on drop.
pub(crate) type Secret32 = Zeroizing<[u8; 32]>;

/// `hmac(N, m)`: the first 32 bytes of HMAC-SHA-512 keyed with the network key.
pub(crate) fn hmac(network: &NetworkKey, message: &[u8]) -> [u8; 32] {
    let mut mac = new_hmac(network);
    mac.update(message);
    let full = mac.finalize().into_bytes();
    let mut tag = [0u8; 32];
    tag.copy_from_slice(&full[..32]);
    tag
}

/// Checks `tag == hmac(N, m)` in constant time.
pub(crate) fn hmac_verify(network: &NetworkKey, message: &[u8], tag: &[u8]) -> bool {
    let mut mac = new_hmac(network);
    mac.update(message);
    mac.verify_truncated_left(tag).is_ok()
}

fn new_hmac(network: &NetworkKey) -> Hmac<Sha512> {
    // HMAC accepts keys of any length; 32 bytes cannot fail.
    match <Hmac<Sha512> as KeyInit>::new_from_slice(&network.0) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

/// `hash(m)`: SHA-256 over the concatenation of `parts`.
pub(crate) fn hash(parts: &[&[u8]]) -> Secret32 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&hasher.finalize());
    out
}

/// `DH(s, P)`: X25519, or `None` when the result is all zero (a low-order `P`).
pub(crate) fn dh(secret: &StaticSecret, public: &[u8; 32]) -> Option<Secret32> {
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(*public));
    if !shared.was_contributory() {
        return None;
    }
    Some(Zeroizing::new(shared.to_bytes()))
}

/// The all-zero nonce of the msg3 and msg4 boxes (each key is used once).
pub(crate) const ZERO_NONCE: [u8; 24] = [0u8; 24];
