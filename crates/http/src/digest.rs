//! `Content-Digest` (RFC 9530) over the exact content bytes (B.4).
//!
//! Senders emit exactly one member, `sha-256`. Verifiers parse the field with `sfv`, require
//! `sha-256`, accept and check an additional `sha-512`, and refuse any other member. Digests
//! are compared in constant time, over the bytes exactly as transferred (no decompression,
//! no charset or JSON handling).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sfv::{BareItem, ListEntry};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use crate::error::{AuthFailure, Error, Malformed, Result};

/// The `Content-Digest` value a keyline sender emits: `sha-256=:<base64>:`.
pub fn content_digest(content: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(Sha256::digest(content)))
}

/// The digests a `Content-Digest` value declares, after the profile's syntax checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentDigest {
    sha256: [u8; 32],
    sha512: Option<[u8; 64]>,
}

impl ContentDigest {
    /// Parses a `Content-Digest` value (400 on anything outside the profile): a Dictionary
    /// with a `sha-256` Byte Sequence of 32 bytes, optionally `sha-512` of 64 bytes, and no
    /// other member.
    pub fn parse(value: &str) -> Result<Self> {
        let entries = crate::sf::parse_entries("content-digest", value)?;
        let mut sha256 = None;
        let mut sha512 = None;
        for (key, entry) in &entries {
            let bytes = match entry {
                ListEntry::Item(item) => match &item.bare_item {
                    BareItem::ByteSequence(b) => b.as_slice(),
                    _ => {
                        return Err(
                            Malformed::ContentDigest("member is not a byte sequence").into()
                        );
                    }
                },
                ListEntry::InnerList(_) => {
                    return Err(Malformed::ContentDigest("member is an inner list").into());
                }
            };
            match key.as_str() {
                "sha-256" => {
                    sha256 = Some(
                        <[u8; 32]>::try_from(bytes)
                            .map_err(|_| Malformed::ContentDigest("sha-256 is not 32 bytes"))?,
                    );
                }
                "sha-512" => {
                    sha512 = Some(
                        <[u8; 64]>::try_from(bytes)
                            .map_err(|_| Malformed::ContentDigest("sha-512 is not 64 bytes"))?,
                    );
                }
                _ => {
                    return Err(
                        Malformed::ContentDigest("member other than sha-256/sha-512").into(),
                    );
                }
            }
        }
        let sha256 = sha256.ok_or(Malformed::ContentDigest("no sha-256 member"))?;
        Ok(Self { sha256, sha512 })
    }

    /// Checks every declared digest against `content` in constant time; 401 on a mismatch.
    pub fn verify(&self, content: &[u8]) -> Result<()> {
        let mut ok = Sha256::digest(content).as_slice().ct_eq(&self.sha256);
        if let Some(expected) = &self.sha512 {
            ok &= Sha512::digest(content).as_slice().ct_eq(expected);
        }
        if bool::from(ok) {
            Ok(())
        } else {
            Err(Error::Unauthorized(AuthFailure::DigestMismatch))
        }
    }
}

/// Computes the RFC 9530 digest of `content` for a registered algorithm name, as the
/// Byte Sequence member value `<name>=:<base64>:`. Supported: `sha-256`, `sha-512`.
pub fn digest_member(algorithm: &str, content: &[u8]) -> Option<String> {
    let bytes: Vec<u8> = match algorithm {
        "sha-256" => Sha256::digest(content).to_vec(),
        "sha-512" => Sha512::digest(content).to_vec(),
        _ => return None,
    };
    Some(format!("{algorithm}=:{}:", STANDARD.encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_content_digest() {
        assert_eq!(
            content_digest(b""),
            "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
        );
    }

    #[test]
    fn parse_and_verify() {
        let body = b"{\"hello\":\"world\"}";
        let d = ContentDigest::parse(&content_digest(body)).unwrap();
        d.verify(body).unwrap();
        assert_eq!(
            d.verify(b"{\"hello\":\"world!\"}").unwrap_err().code(),
            "unauthorized.digest_mismatch"
        );
        let both = format!(
            "{}, {}",
            content_digest(body),
            digest_member("sha-512", body).unwrap()
        );
        ContentDigest::parse(&both).unwrap().verify(body).unwrap();
        let wrong512 = format!(
            "{}, {}",
            content_digest(body),
            digest_member("sha-512", b"other").unwrap()
        );
        assert!(
            ContentDigest::parse(&wrong512)
                .unwrap()
                .verify(body)
                .is_err()
        );
        for bad in [
            "sha-512=:AAAA:".to_string(),
            format!("{}, md5=:AAAA:", content_digest(body)),
            "sha-256=:AAAA:".to_string(),
            "sha-256=1".to_string(),
            "sha-256=(1)".to_string(),
            "sha-256".to_string(),
        ] {
            assert_eq!(
                ContentDigest::parse(&bad).unwrap_err().status(),
                400,
                "{bad}"
            );
        }
        assert_eq!(digest_member("md5", body), None);
    }
}
