//! NIP-44 version 2 (spec §4): the encryption of NIP-46 transport messages (with the transport
//! key) and of `nip44_encrypt`/`nip44_decrypt` (with the user key, via threshold ECDH).
//!
//! * Conversation key: `HKDF-Extract(salt = "nip44-v2", IKM = shared_x)` with SHA-256, from a
//!   [`SharedX`] (threshold or single-key ECDH, x coordinate **not hashed**).
//! * Message keys: `HKDF-Expand(conversation_key, info = nonce, 76)` → ChaCha20 key (32),
//!   ChaCha20 nonce (12), HMAC key (32).
//! * Padding: a length prefix (`u16` BE; since the 2026 amendment `00 00 ‖ u32` BE for 65 536
//!   bytes and more), the plaintext, zeros up to [`calc_padded_len`].
//! * Payload: `base64(0x02 ‖ nonce ‖ ChaCha20(padded) ‖ HMAC-SHA256(hmac_key, nonce ‖ ct))`.
//!
//! Decryption checks, in the NIP's order: version marker, size bounds (the implementation
//! maximum [`crate::limits::MAX_NIP44_PAYLOAD`] before base64 decoding), strict base64, version
//! byte, the MAC in constant time, then the padding. Conversation and message keys are zeroized
//! on drop. The nonce is an input ([`encrypt`]) or drawn from a [`SignerRng`]
//! ([`encrypt_with_rng`]); nothing here reads a clock or does I/O.
//!
//! ```
//! use keyline_signer::nip44::{self, ConversationKey};
//! # fn main() -> keyline_signer::Result<()> {
//! let mut one = [0u8; 32];
//! one[31] = 1;
//! let mut two = [0u8; 32];
//! two[31] = 2;
//! // x-only keys of 1·G and 2·G.
//! let pub1 = hex_32("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798");
//! let pub2 = hex_32("c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5");
//! let alice = ConversationKey::derive(&one, &pub2)?;
//! let bob = ConversationKey::derive(&two, &pub1)?;
//! let payload = nip44::encrypt_with_rng(&alice, "hello", &mut keyline_signer::OsRng)?;
//! assert_eq!(nip44::decrypt(&bob, &payload)?, "hello");
//! # Ok(()) }
//! # fn hex_32(s: &str) -> [u8; 32] {
//! #     let mut out = [0u8; 32];
//! #     for (i, b) in out.iter_mut().enumerate() {
//! #         *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
//! #     }
//! #     out
//! # }
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::ecdh::SharedX;
use crate::limits::MAX_NIP44_PAYLOAD;
use crate::{Error, Result, SignerRng};

/// The version byte of NIP-44 v2.
pub const VERSION: u8 = 2;

/// Shortest payload text: 132 base64 characters (99 bytes: version, nonce, 32 padded bytes,
/// MAC).
pub const MIN_PAYLOAD_LEN: usize = 132;

/// Shortest decoded payload: 99 bytes.
pub const MIN_DECODED_LEN: usize = 99;

/// Longest plaintext NIP-44 can encrypt: 2³² − 1 bytes (the 2026 amendment's 6-byte prefix).
pub const MAX_PLAINTEXT_LEN: u64 = u32::MAX as u64;

/// First plaintext length that uses the 6-byte extended prefix `00 00 ‖ u32`.
pub const EXTENDED_LEN: usize = 65_536;

/// A NIP-44 v2 conversation key (32 bytes). Secret: zeroized on drop, `Debug` prints nothing
/// of it, never serialized by this crate. Symmetric: conv(a, B) = conv(b, A).
#[derive(Clone)]
pub struct ConversationKey(Zeroizing<[u8; 32]>);

impl ConversationKey {
    /// A conversation key given as bytes (tests, vectors, a cache).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The conversation key of an ECDH shared x (threshold [`crate::ecdh::combine`] or
    /// [`SharedX::from_secret`]).
    pub fn from_shared_x(shared: &SharedX) -> Self {
        Self(shared.nip44_conversation_key())
    }

    /// The conversation key of a local secret key and a peer's x-only key (the transport key
    /// and a client): [`Error::InvalidSecretKey`] unless the secret is in [1, n−1],
    /// [`Error::InvalidPeerKey`] unless the peer key lifts to a curve point.
    pub fn derive(secret: &[u8; 32], peer: &[u8; 32]) -> Result<Self> {
        Ok(Self::from_shared_x(&SharedX::from_secret(secret, peer)?))
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ConversationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConversationKey(..)")
    }
}

/// The per-message keys: `HKDF-Expand(conversation_key, nonce, 76)` split 32/12/32. Secret:
/// zeroized on drop.
pub struct MessageKeys {
    chacha_key: Zeroizing<[u8; 32]>,
    chacha_nonce: Zeroizing<[u8; 12]>,
    hmac_key: Zeroizing<[u8; 32]>,
}

impl MessageKeys {
    /// Derives the keys of one message from its 32-byte nonce.
    pub fn derive(key: &ConversationKey, nonce: &[u8; 32]) -> Self {
        let mut okm = Zeroizing::new([0u8; 76]);
        let hk = match Hkdf::<Sha256>::from_prk(key.as_bytes()) {
            Ok(hk) => hk,
            Err(_) => unreachable!("a 32-byte PRK is the SHA-256 output size"),
        };
        if hk.expand(nonce, okm.as_mut_slice()).is_err() {
            unreachable!("76 bytes is far below 255 · 32");
        }
        let mut keys = Self {
            chacha_key: Zeroizing::new([0u8; 32]),
            chacha_nonce: Zeroizing::new([0u8; 12]),
            hmac_key: Zeroizing::new([0u8; 32]),
        };
        keys.chacha_key.copy_from_slice(&okm[..32]);
        keys.chacha_nonce.copy_from_slice(&okm[32..44]);
        keys.hmac_key.copy_from_slice(&okm[44..]);
        keys
    }

    /// The ChaCha20 key (bytes 0..32).
    pub fn chacha_key(&self) -> &[u8; 32] {
        &self.chacha_key
    }

    /// The ChaCha20 nonce (bytes 32..44).
    pub fn chacha_nonce(&self) -> &[u8; 12] {
        &self.chacha_nonce
    }

    /// The HMAC-SHA256 key (bytes 44..76).
    pub fn hmac_key(&self) -> &[u8; 32] {
        &self.hmac_key
    }

    fn cipher(&self) -> ChaCha20 {
        ChaCha20::new(&(*self.chacha_key()).into(), &(*self.chacha_nonce()).into())
    }

    fn mac(&self, nonce: &[u8], ciphertext: &[u8]) -> [u8; 32] {
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(self.hmac_key()) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(nonce);
        mac.update(ciphertext);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for MessageKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageKeys(..)")
    }
}

/// The padded length of a plaintext of `len` bytes (without the length prefix): 32 for
/// `len ≤ 32`, else the next multiple of `chunk` where `chunk` is 32 up to 256 bytes and an
/// eighth of the next power of two above. 64-bit arithmetic: the result reaches 2³² for the
/// longest plaintexts.
pub fn calc_padded_len(len: u64) -> u64 {
    if len <= 32 {
        return 32;
    }
    let next_power = 1u64 << (64 - (len - 1).leading_zeros());
    let chunk = if next_power <= 256 {
        32
    } else {
        next_power / 8
    };
    chunk * ((len - 1) / chunk + 1)
}

/// Length of the prefix before a plaintext of `len` bytes: 2, or 6 from [`EXTENDED_LEN`] on.
fn prefix_len(len: usize) -> usize {
    if len < EXTENDED_LEN { 2 } else { 6 }
}

/// The padded plaintext: prefix ‖ plaintext ‖ zeros. [`Error::Nip44PlaintextLength`] for an
/// empty plaintext or one above [`MAX_PLAINTEXT_LEN`] bytes.
pub fn pad(plaintext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let len = plaintext.len();
    if len == 0 || len as u64 > MAX_PLAINTEXT_LEN {
        return Err(Error::Nip44PlaintextLength { len });
    }
    let prefix = prefix_len(len);
    let total = usize::try_from(calc_padded_len(len as u64))
        .ok()
        .and_then(|p| p.checked_add(prefix))
        .ok_or(Error::Nip44PlaintextLength { len })?;
    let mut out = Zeroizing::new(Vec::with_capacity(total));
    if prefix == 2 {
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(plaintext);
    out.resize(total, 0);
    Ok(out)
}

/// The plaintext inside a padded buffer: reads the `u16` prefix (if 0, the `u32` that follows,
/// which must be ≥ [`EXTENDED_LEN`]), requires length ≥ 1 and the buffer to be exactly
/// prefix + [`calc_padded_len`]. Returns the plaintext's range in `padded`.
pub fn unpad(padded: &[u8]) -> Result<std::ops::Range<usize>> {
    let bad = |reason| Error::Nip44InvalidPayload { reason };
    let short = match padded {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => return Err(bad("invalid padding")),
    };
    let (prefix, len) = if short != 0 {
        (2usize, usize::from(short))
    } else {
        let long = match padded.get(2..6) {
            Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
            _ => return Err(bad("invalid padding")),
        };
        if (long as usize) < EXTENDED_LEN {
            return Err(bad("invalid padding"));
        }
        (6usize, long as usize)
    };
    let expected = (prefix as u64).checked_add(calc_padded_len(len as u64));
    if expected != Some(padded.len() as u64) || prefix + len > padded.len() {
        return Err(bad("invalid padding"));
    }
    Ok(prefix..prefix + len)
}

/// Encrypts `plaintext` under `key` with the given 32-byte `nonce` (which must be fresh and
/// random outside tests: use [`encrypt_with_rng`]). Returns the base64 payload.
pub fn encrypt(key: &ConversationKey, plaintext: &str, nonce: &[u8; 32]) -> Result<String> {
    let padded = pad(plaintext.as_bytes())?;
    let keys = MessageKeys::derive(key, nonce);
    let mut body = Zeroizing::new(Vec::with_capacity(1 + 32 + padded.len() + 32));
    body.push(VERSION);
    body.extend_from_slice(nonce);
    body.extend_from_slice(&padded);
    drop(padded);
    keys.cipher()
        .try_apply_keystream(&mut body[33..])
        .map_err(|_| Error::Nip44PlaintextLength {
            len: plaintext.len(),
        })?;
    let mac = keys.mac(nonce, &body[33..]);
    body.extend_from_slice(&mac);
    Ok(STANDARD.encode(body.as_slice()))
}

/// [`encrypt`] with a fresh random nonce from `rng`.
pub fn encrypt_with_rng(
    key: &ConversationKey,
    plaintext: &str,
    rng: &mut impl SignerRng,
) -> Result<String> {
    let mut nonce = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(nonce.as_mut_slice());
    encrypt(key, plaintext, &nonce)
}

/// Decrypts a payload of at most [`MAX_NIP44_PAYLOAD`] characters: [`decrypt_with_limit`].
pub fn decrypt(key: &ConversationKey, payload: &str) -> Result<String> {
    decrypt_with_limit(key, payload, MAX_NIP44_PAYLOAD)
}

/// Decrypts a payload of at most `max_payload` base64 characters.
///
/// Errors: [`Error::Nip44UnsupportedVersion`] (empty, `#…`, version byte ≠ 2),
/// [`Error::Nip44InvalidPayload`] (shorter than [`MIN_PAYLOAD_LEN`], bad base64, decoded
/// shorter than [`MIN_DECODED_LEN`], bad padding, not UTF-8), [`Error::TooLarge`] (over
/// `max_payload`, checked before decoding), [`Error::Nip44InvalidMac`].
pub fn decrypt_with_limit(
    key: &ConversationKey,
    payload: &str,
    max_payload: usize,
) -> Result<String> {
    let bad = |reason| Error::Nip44InvalidPayload { reason };
    if payload.is_empty() || payload.starts_with('#') {
        return Err(Error::Nip44UnsupportedVersion { version: None });
    }
    if payload.len() < MIN_PAYLOAD_LEN {
        return Err(bad("payload shorter than 132 characters"));
    }
    if payload.len() > max_payload {
        return Err(Error::TooLarge {
            what: "NIP-44 payload",
            len: payload.len(),
            max: max_payload,
        });
    }
    let data = STANDARD
        .decode(payload)
        .map_err(|_| bad("invalid base64"))?;
    if data.len() < MIN_DECODED_LEN {
        return Err(bad("decoded payload shorter than 99 bytes"));
    }
    if data[0] != VERSION {
        return Err(Error::Nip44UnsupportedVersion {
            version: Some(data[0]),
        });
    }
    let mac_start = data.len() - 32;
    let mut nonce = [0u8; 32];
    nonce.copy_from_slice(&data[1..33]);
    let keys = MessageKeys::derive(key, &nonce);
    let expected = keys.mac(&nonce, &data[33..mac_start]);
    if !bool::from(expected.ct_eq(&data[mac_start..])) {
        return Err(Error::Nip44InvalidMac);
    }
    let mut padded = Zeroizing::new(data[33..mac_start].to_vec());
    drop(data);
    keys.cipher()
        .try_apply_keystream(&mut padded)
        .map_err(|_| bad("payload too long for ChaCha20"))?;
    let range = unpad(&padded)?;
    let text = std::str::from_utf8(&padded[range]).map_err(|_| bad("plaintext is not UTF-8"))?;
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_boundaries() {
        assert_eq!(calc_padded_len(1), 32);
        assert_eq!(calc_padded_len(33), 64);
        assert_eq!(calc_padded_len(257), 320);
        assert_eq!(calc_padded_len(65_535), 65_536);
        assert_eq!(calc_padded_len(65_536), 65_536);
        assert_eq!(calc_padded_len(65_537), 81_920);
        assert_eq!(calc_padded_len(u64::from(u32::MAX)), 1u64 << 32);
        for len in [1usize, 32, 33, 300, 65_535, 65_536, 65_537] {
            let plain = vec![b'a'; len];
            let padded = pad(&plain).unwrap();
            let range = unpad(&padded).unwrap();
            assert_eq!(&padded[range], &plain[..]);
        }
        assert!(pad(&[]).is_err());
    }

    #[test]
    fn extended_prefix_must_be_extended() {
        // A 6-byte prefix announcing a length below 65 536 is refused.
        let mut padded = vec![0u8, 0, 0, 0, 0, 5];
        padded.resize(6 + 32, 0);
        assert!(unpad(&padded).is_err());
        // A u16 of zero with nothing after it.
        assert!(unpad(&[0, 0]).is_err());
        assert!(unpad(&[]).is_err());
    }

    #[test]
    fn keys_do_not_print() {
        let key = ConversationKey::from_bytes([7; 32]);
        assert_eq!(format!("{key:?}"), "ConversationKey(..)");
        let keys = MessageKeys::derive(&key, &[1; 32]);
        assert_eq!(format!("{keys:?}"), "MessageKeys(..)");
    }
}
