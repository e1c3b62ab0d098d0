//! Signature nonces: client nonces and stateless server nonces (B.3, B.6).
//!
//! A `nonce` is base64url-nopad of 16 to 32 bytes (22 to 43 characters), decoded strictly
//! (no padding, no non-zero trailing bits). Clients draw 16 fresh bytes per request.
//!
//! A **server nonce** is 32 bytes that the server can recognise without state:
//!
//! ```text
//! raw   = issued_at (u64 BE) ‖ random (8 bytes)
//!         ‖ HMAC-SHA-256(nonce_key, "keyline-http-v1 nonce" ‖ 0x00 ‖ issued_at ‖ random)[0..16]
//! nonce = base64url-nopad(raw)
//! ```
//!
//! A nonce of another length, or whose MAC does not verify, is a client nonce.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{Error, Malformed, Result};
use crate::limits::{CLIENT_NONCE_BYTES, MAX_NONCE_BYTES, MIN_NONCE_BYTES};

const LABEL: &[u8] = b"keyline-http-v1 nonce";

/// Decodes a `nonce` parameter: base64url-nopad of [`MIN_NONCE_BYTES`] to
/// [`MAX_NONCE_BYTES`] bytes, canonical.
pub fn decode_nonce(nonce: &str) -> Result<Vec<u8>, Malformed> {
    let max_chars = (MAX_NONCE_BYTES * 4).div_ceil(3);
    if nonce.len() > max_chars {
        return Err(Malformed::Nonce);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(nonce)
        .map_err(|_| Malformed::Nonce)?;
    if !(MIN_NONCE_BYTES..=MAX_NONCE_BYTES).contains(&bytes.len()) {
        return Err(Malformed::Nonce);
    }
    Ok(bytes)
}

/// [`decode_nonce`] without keeping the bytes (same checks, same error, no allocation).
pub(crate) fn check_nonce(nonce: &str) -> Result<(), Malformed> {
    let max_chars = (MAX_NONCE_BYTES * 4).div_ceil(3);
    if nonce.len() > max_chars {
        return Err(Malformed::Nonce);
    }
    // At most 43 characters decode to at most 33 bytes (32 for canonical input): the buffer
    // is never too small, so this decodes exactly as `decode` does.
    let mut buf = [0u8; 48];
    let len = URL_SAFE_NO_PAD
        .decode_slice(nonce, &mut buf)
        .map_err(|_| Malformed::Nonce)?;
    if !(MIN_NONCE_BYTES..=MAX_NONCE_BYTES).contains(&len) {
        return Err(Malformed::Nonce);
    }
    Ok(())
}

/// Whether `nonce` is a NIP-98 event id (64 lowercase hex characters), which a response
/// signature echoes as its `nonce` for NIP-98 requests (B.10).
pub fn is_event_id(nonce: &str) -> bool {
    nonce.len() == 64
        && nonce
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Encodes nonce bytes as base64url-nopad.
pub fn encode_nonce(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh client nonce of [`CLIENT_NONCE_BYTES`] bytes from the operating system's RNG.
pub fn random_client_nonce() -> Result<String> {
    let mut bytes = [0u8; CLIENT_NONCE_BYTES];
    getrandom::fill(&mut bytes).map_err(Error::Rng)?;
    Ok(encode_nonce(&bytes))
}

/// The server's secret for stateless server nonces. Rotating it invalidates outstanding
/// server nonces (costing clients one more round trip). `Debug` does not print it.
#[derive(Clone)]
pub struct ServerNonceKey(Zeroizing<[u8; 32]>);

impl ServerNonceKey {
    /// A key from 32 secret bytes.
    pub fn new(key: [u8; 32]) -> Self {
        Self(Zeroizing::new(key))
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).map_err(Error::Rng)?;
        Ok(Self(key))
    }

    fn mac(&self, issued_at: u64, random: &[u8; 8]) -> [u8; 16] {
        // HMAC accepts keys of any length; 32 bytes cannot fail.
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(self.0.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(LABEL);
        mac.update(&[0]);
        mac.update(&issued_at.to_be_bytes());
        mac.update(random);
        let tag = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&tag[..16]);
        out
    }

    /// A server nonce issued at `issued_at` (server Unix seconds) with 8 random bytes.
    pub fn issue(&self, issued_at: u64, random: [u8; 8]) -> String {
        let mut raw = [0u8; 32];
        raw[..8].copy_from_slice(&issued_at.to_be_bytes());
        raw[8..16].copy_from_slice(&random);
        raw[16..].copy_from_slice(&self.mac(issued_at, &random));
        encode_nonce(&raw)
    }

    /// A server nonce issued at `issued_at` with fresh random bytes.
    pub fn issue_random(&self, issued_at: u64) -> Result<String> {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(Error::Rng)?;
        Ok(self.issue(issued_at, random))
    }

    /// `Some(issued_at)` if `nonce` is a server nonce made with this key (MAC compared in
    /// constant time); `None` for anything else, which is then a client nonce. Does not check
    /// its age.
    pub fn verify(&self, nonce: &str) -> Option<u64> {
        let raw = URL_SAFE_NO_PAD.decode(nonce).ok()?;
        let raw: [u8; 32] = raw.try_into().ok()?;
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&raw[..8]);
        let issued_at = u64::from_be_bytes(issued);
        let mut random = [0u8; 8];
        random.copy_from_slice(&raw[8..16]);
        let expected = self.mac(issued_at, &random);
        bool::from(expected.ct_eq(&raw[16..])).then_some(issued_at)
    }
}

impl std::fmt::Debug for ServerNonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerNonceKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_lengths() {
        assert!(decode_nonce(&encode_nonce(&[0; 16])).is_ok());
        assert!(decode_nonce(&encode_nonce(&[0; 32])).is_ok());
        assert!(decode_nonce(&encode_nonce(&[0; 15])).is_err());
        assert!(decode_nonce(&encode_nonce(&[0; 33])).is_err());
        assert!(decode_nonce("AAECAwQFBgcICQoLDA0ODw").is_ok());
        // Non-zero trailing bits, padding, standard alphabet.
        assert!(decode_nonce("AAECAwQFBgcICQoLDA0ODx").is_err());
        assert!(decode_nonce("AAECAwQFBgcICQoLDA0ODw==").is_err());
        assert!(decode_nonce("AAECAwQFBgcICQoLDA0OD+").is_err());
        assert_eq!(
            decode_nonce(&random_client_nonce().unwrap()).unwrap().len(),
            16
        );
    }

    #[test]
    fn server_nonce_round_trip() {
        let key = ServerNonceKey::generate().unwrap();
        let n = key.issue_random(1000).unwrap();
        assert_eq!(n.len(), 43);
        assert_eq!(key.verify(&n), Some(1000));
        assert_eq!(ServerNonceKey::new([1; 32]).verify(&n), None);
        assert_eq!(key.verify("AAECAwQFBgcICQoLDA0ODw"), None);
        assert_eq!(format!("{key:?}"), "ServerNonceKey(..)");
    }
}
