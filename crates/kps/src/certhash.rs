//! Certhash: `"u" || base64url_nopad(0x12 0x20 || SHA-256(certificate DER))` (spec §2).
//!
//! [`parse_certhash`] is a pure `&str -> Result` function (a fuzz target is one line). Decoding
//! is strict: prefix exactly `u`, canonical unpadded base64url (no stray characters, no
//! non-canonical trailing bits), 34 bytes, header `0x12 0x20`.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::error::CerthashError;

/// Multihash code of sha2-256 and its digest length.
pub const MULTIHASH_HEADER: [u8; 2] = [0x12, 0x20];
/// Length of a certhash string.
pub const CERTHASH_LEN: usize = 47;

/// A pinned certificate identity: the SHA-256 digest of the certificate's DER bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Certhash([u8; 32]);

impl Certhash {
    /// Wraps a SHA-256 digest.
    pub const fn from_digest(digest: [u8; 32]) -> Certhash {
        Certhash(digest)
    }

    /// The certhash of a certificate's DER bytes.
    pub fn of_der(der: &[u8]) -> Certhash {
        Certhash(sha256(der))
    }

    /// The 32-byte digest.
    pub const fn digest(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time comparison with a digest.
    pub fn matches_digest(&self, digest: &[u8; 32]) -> bool {
        self.0.ct_eq(digest).into()
    }

    /// The SDP `a=fingerprint:sha-256` form: 32 upper-case hex pairs joined by `:`.
    pub fn sdp_fingerprint(&self) -> String {
        let mut out = String::with_capacity(95);
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(':');
            }
            out.push_str(&format!("{b:02X}"));
        }
        out
    }
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(data));
    out
}

/// Strictly decodes a certhash string (spec §2).
pub fn parse_certhash(s: &str) -> Result<Certhash, CerthashError> {
    let Some(first) = s.chars().next() else {
        return Err(CerthashError::Empty);
    };
    if first != 'u' {
        return Err(CerthashError::Prefix);
    }
    let body = &s[1..];
    if body.is_empty() {
        return Err(CerthashError::Empty);
    }
    // Bound the work before decoding: a 34-byte body is 46 characters.
    if body.len() > 64 {
        return Err(CerthashError::Length(usize::MAX));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| CerthashError::Encoding)?;
    if bytes.len() != 34 {
        return Err(CerthashError::Length(bytes.len()));
    }
    if bytes[..2] != MULTIHASH_HEADER {
        return Err(CerthashError::Multihash);
    }
    let mut digest = [0u8; 32];
    digest.copy_from_slice(&bytes[2..]);
    Ok(Certhash(digest))
}

impl fmt::Display for Certhash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut body = [0u8; 34];
        body[..2].copy_from_slice(&MULTIHASH_HEADER);
        body[2..].copy_from_slice(&self.0);
        write!(f, "u{}", URL_SAFE_NO_PAD.encode(body))
    }
}

impl fmt::Debug for Certhash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Certhash({self})")
    }
}

impl FromStr for Certhash {
    type Err = CerthashError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_certhash(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: [([u8; 32], &str); 4] = [
        (
            [0x11; 32],
            "uEiAREREREREREREREREREREREREREREREREREREREREREQ",
        ),
        (
            [0xAB; 32],
            "uEiCrq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urqw",
        ),
        (
            [
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                23, 24, 25, 26, 27, 28, 29, 30, 31,
            ],
            "uEiAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHw",
        ),
        ([0; 32], ""),
    ];

    #[test]
    fn spec_vectors() {
        for (digest, s) in &VECTORS[..3] {
            let c = Certhash::from_digest(*digest);
            assert_eq!(c.to_string(), *s);
            assert_eq!(s.len(), CERTHASH_LEN);
            assert_eq!(parse_certhash(s), Ok(c));
        }
        // SHA-256 of the empty string.
        assert_eq!(
            Certhash::of_der(b"").to_string(),
            "uEiDjsMRCmPwcFJr79MiZb7kkJ65B5GSbk0yklZkbeFK4VQ"
        );
        let _ = VECTORS[3];
    }

    #[test]
    fn certhash_rejects_bad() {
        assert_eq!(parse_certhash("xabc"), Err(CerthashError::Prefix));
        assert_eq!(parse_certhash("u"), Err(CerthashError::Empty));
        assert_eq!(parse_certhash(""), Err(CerthashError::Empty));
        // First byte 0x13.
        let mut body = [0x11u8; 34];
        body[0] = 0x13;
        body[1] = 0x20;
        let s = format!("u{}", URL_SAFE_NO_PAD.encode(body));
        assert_eq!(parse_certhash(&s), Err(CerthashError::Multihash));
        // Second byte not 0x20.
        body[0] = 0x12;
        body[1] = 0x21;
        let s = format!("u{}", URL_SAFE_NO_PAD.encode(body));
        assert_eq!(parse_certhash(&s), Err(CerthashError::Multihash));
        // 33 and 35 bytes.
        for n in [33usize, 35] {
            let mut b = vec![0x11u8; n];
            b[0] = 0x12;
            b[1] = 0x20;
            let s = format!("u{}", URL_SAFE_NO_PAD.encode(&b));
            assert_eq!(parse_certhash(&s), Err(CerthashError::Length(n)));
        }
        let good = "uEiAREREREREREREREREREREREREREREREREREREREREREQ";
        // Padding, standard alphabet, whitespace, stray characters.
        for bad in [
            format!("{good}="),
            good.replace('R', "+"),
            format!(" {good}"),
            format!("{good}\n"),
            format!("{good}:"),
            "uEiAREREREREREREREREREREREREREREREREREREREREREQ.".to_string(),
        ] {
            assert!(parse_certhash(&bad).is_err(), "{bad:?}");
        }
        // Non-canonical trailing bits: last char Q (…010000) vs R (…010001).
        let noncanon = format!("{}R", &good[..good.len() - 1]);
        assert_eq!(parse_certhash(&noncanon), Err(CerthashError::Encoding));
        // Upper-case multibase prefix is a different base.
        assert_eq!(
            parse_certhash(&good.replacen('u', "U", 1)),
            Err(CerthashError::Prefix)
        );
        // Very long input.
        assert_eq!(
            parse_certhash(&format!("u{}", "A".repeat(10_000))),
            Err(CerthashError::Length(usize::MAX))
        );
    }

    #[test]
    fn sdp_fingerprint_form() {
        let c = Certhash::from_digest([0x11; 32]);
        let fp = c.sdp_fingerprint();
        assert_eq!(fp.len(), 95);
        assert!(fp.starts_with("11:11:"));
        assert_eq!(
            Certhash::from_digest([0xAB; 32]).sdp_fingerprint()[..5],
            *"AB:AB"
        );
    }

    #[test]
    fn constant_time_match() {
        let c = Certhash::from_digest([7; 32]);
        assert!(c.matches_digest(&[7; 32]));
        assert!(!c.matches_digest(&[8; 32]));
    }
}
