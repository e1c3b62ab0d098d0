//! Public key encodings and fingerprints shared by every keyline protocol.
//!
//! | form | example | used by |
//! |---|---|---|
//! | [`fingerprint`] | `SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU` | everything a human compares |
//! | [`ssb_id`] | `@<base64 with padding>.ed25519` | SSB, SHS |
//! | [`npub`] | `npub1…` (NIP-19 bech32 of the x-only key) | Nostr |
//! | hex | 64 lowercase hex digits | everywhere else |
//!
//! Parsers reject, with [`Error::InvalidKey`], anything that is not a valid key: an Ed25519
//! public key must be a canonical encoding of a point that is not of small order, a secp256k1
//! secret must be a scalar in `1..n`, an x-only public key must be on the curve.

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use base64::engine::{DecodePaddingMode, general_purpose::STANDARD};
use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32, Hrp};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Suffix of SSB key encodings.
pub(crate) const SSB_SUFFIX: &str = ".ed25519";

/// Standard base64 alphabet, padding optional on input.
const STANDARD_PAD_OPTIONAL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const NPUB: Hrp = Hrp::parse_unchecked("npub");
const NSEC: Hrp = Hrp::parse_unchecked("nsec");

/// OpenSSH-style fingerprint of raw key bytes: `"SHA256:"` + unpadded standard base64 of
/// SHA-256(`key_bytes`).
pub fn fingerprint(key_bytes: &[u8]) -> String {
    format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(Sha256::digest(key_bytes))
    )
}

/// SSB identity of an Ed25519 public key: `@` + padded standard base64 + `.ed25519`.
pub fn ssb_id(pk: &[u8; 32]) -> String {
    format!("@{}{SSB_SUFFIX}", STANDARD.encode(pk))
}

/// NIP-19 `npub1…` encoding of a BIP340 x-only public key.
pub fn npub(xonly: &[u8; 32]) -> String {
    // 32 bytes are far below bech32's length limit, so encoding cannot fail.
    bech32::encode::<Bech32>(NPUB, xonly).expect("32 bytes always fit in bech32")
}

/// NIP-19 `nsec1…` encoding of a secp256k1 secret key, in a zeroizing string.
pub fn nsec(secret: &[u8; 32]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(64));
    bech32::encode_lower_to_fmt::<Bech32, String>(&mut out, NSEC, secret)
        .expect("32 bytes always fit in bech32");
    out
}

/// Parses an Ed25519 public key given as 64 hex digits or as base64 (padding optional) with
/// an optional leading `@` and optional `.ed25519` suffix (the SSB forms).
///
/// Rejects encodings that are not canonical, do not decode to a curve point or decode to a
/// point of small order: none of those can be a real peer's key.
pub fn parse_ed25519_public(s: &str) -> Result<[u8; 32]> {
    const WHAT: &str = "Ed25519 public key";
    let s = s.trim();
    let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        decode_hex32(s, WHAT)?
    } else {
        let b64 = s.strip_prefix('@').unwrap_or(s);
        let b64 = b64.strip_suffix(SSB_SUFFIX).unwrap_or(b64);
        decode_base64_32(b64, WHAT)?
    };
    validate_ed25519_public(&bytes)?;
    Ok(bytes)
}

/// Checks that `pk` is a canonical, decodable Ed25519 point that is not of small order.
pub fn validate_ed25519_public(pk: &[u8; 32]) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidKey {
        what: "Ed25519 public key",
        reason: reason.into(),
    };
    let vk = ed25519_dalek::VerifyingKey::from_bytes(pk)
        .map_err(|_| invalid("not a point on the curve"))?;
    if vk.to_edwards().compress().to_bytes() != *pk {
        return Err(invalid("not a canonical encoding"));
    }
    if vk.is_weak() {
        return Err(invalid("a small-order point"));
    }
    Ok(())
}

/// Parses a Nostr public key given as `npub1…` or as 64 hex digits of the x-only key, and
/// checks that it is on the curve.
pub fn parse_npub(s: &str) -> Result<[u8; 32]> {
    const WHAT: &str = "Nostr public key";
    let s = s.trim();
    let key = if has_prefix_ignore_case(s, "npub1") {
        decode_bech32_32(s, NPUB, WHAT)?
    } else if s.len() == 64 {
        decode_hex32(s, WHAT)?
    } else {
        return Err(Error::InvalidKey {
            what: WHAT,
            reason: "expected npub1… or 64 hex digits".into(),
        });
    };
    k256::schnorr::VerifyingKey::from_slice(&key).map_err(|_| Error::InvalidKey {
        what: WHAT,
        reason: "not the x coordinate of a curve point".into(),
    })?;
    Ok(key)
}

/// Parses a Nostr secret key given as `nsec1…` or as 64 hex digits, and checks that it is a
/// valid secp256k1 scalar (nonzero, below the group order).
///
/// The error never contains any part of the input.
pub fn parse_nsec(s: &str) -> Result<Zeroizing<[u8; 32]>> {
    const WHAT: &str = "Nostr secret key";
    let s = s.trim();
    let key = if has_prefix_ignore_case(s, "nsec1") {
        Zeroizing::new(decode_bech32_32(s, NSEC, WHAT)?)
    } else if s.len() == 64 {
        Zeroizing::new(decode_hex32(s, WHAT)?)
    } else {
        return Err(Error::InvalidKey {
            what: WHAT,
            reason: "expected nsec1… or 64 hex digits".into(),
        });
    };
    validate_secp256k1_secret(&key)?;
    Ok(key)
}

/// Checks that `secret` is a valid secp256k1 secret key: nonzero and below the group order.
pub fn validate_secp256k1_secret(secret: &[u8; 32]) -> Result<()> {
    secp256k1_signing_key(secret).map(drop)
}

/// The BIP340 signing key for a secp256k1 secret.
pub(crate) fn secp256k1_signing_key(secret: &[u8; 32]) -> Result<k256::schnorr::SigningKey> {
    k256::schnorr::SigningKey::from_slice(secret).map_err(|_| Error::InvalidKey {
        what: "secp256k1 secret key",
        reason: "zero or not below the group order".into(),
    })
}

/// BIP340 x-only public key of a valid secp256k1 secret.
pub(crate) fn secp256k1_xonly(secret: &[u8; 32]) -> Result<[u8; 32]> {
    Ok(secp256k1_signing_key(secret)?
        .verifying_key()
        .to_bytes()
        .into())
}

/// Ed25519 public key of a 32-byte seed.
pub(crate) fn ed25519_public_of(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
}

/// Decodes exactly 32 bytes of hex (either case).
pub(crate) fn decode_hex32(s: &str, what: &'static str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| Error::InvalidKey {
        what,
        reason: "expected exactly 64 hex digits".into(),
    })?;
    Ok(out)
}

/// Decodes standard base64 (padding optional) of exactly 32 bytes.
fn decode_base64_32(s: &str, what: &'static str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    let invalid = || Error::InvalidKey {
        what,
        reason: "expected 64 hex digits or base64 of 32 bytes (optionally @….ed25519)".into(),
    };
    match STANDARD_PAD_OPTIONAL.decode_slice(s, &mut out) {
        Ok(32) => Ok(out),
        _ => Err(invalid()),
    }
}

/// Decodes a bech32 (not bech32m) string with the given prefix holding exactly 32 bytes.
fn decode_bech32_32(s: &str, hrp: Hrp, what: &'static str) -> Result<[u8; 32]> {
    let invalid = |reason: &str| Error::InvalidKey {
        what,
        reason: reason.into(),
    };
    let checked = CheckedHrpstring::new::<Bech32>(s)
        .map_err(|_| invalid("bad bech32 encoding or checksum"))?;
    if checked.hrp() != hrp {
        return Err(invalid("wrong bech32 prefix"));
    }
    checked
        .validate_segwit_padding()
        .map_err(|_| invalid("bad bech32 padding"))?;
    let mut out = [0u8; 32];
    let mut len = 0usize;
    for byte in checked.byte_iter() {
        if len == out.len() {
            return Err(invalid("longer than 32 bytes"));
        }
        out[len] = byte;
        len += 1;
    }
    if len != out.len() {
        return Err(invalid("shorter than 32 bytes"));
    }
    Ok(out)
}

fn has_prefix_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    // NIP-19 examples.
    const NIP19_NPUB: &str = "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg";
    const NIP19_NPUB_HEX: &str = "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e";
    const NIP19_NSEC: &str = "nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5";
    const NIP19_NSEC_HEX: &str = "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa";

    /// secp256k1 group order n.
    const ORDER_HEX: &str = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";

    fn h32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn fingerprint_is_openssh_style() {
        // SHA-256 of the empty string.
        assert_eq!(
            fingerprint(b""),
            "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
        );
        let fp = fingerprint(&[7u8; 32]);
        assert!(fp.starts_with("SHA256:") && !fp.ends_with('='));
        assert_eq!(fp.len(), 7 + 43);
    }

    #[test]
    fn npub_and_nsec_match_nip19() {
        assert_eq!(npub(&h32(NIP19_NPUB_HEX)), NIP19_NPUB);
        assert_eq!(parse_npub(NIP19_NPUB).unwrap(), h32(NIP19_NPUB_HEX));
        assert_eq!(parse_npub(NIP19_NPUB_HEX).unwrap(), h32(NIP19_NPUB_HEX));
        assert_eq!(*parse_nsec(NIP19_NSEC).unwrap(), h32(NIP19_NSEC_HEX));
        assert_eq!(*parse_nsec(NIP19_NSEC_HEX).unwrap(), h32(NIP19_NSEC_HEX));
        assert_eq!(
            *parse_nsec(&NIP19_NSEC_HEX.to_uppercase()).unwrap(),
            h32(NIP19_NSEC_HEX)
        );
        assert_eq!(
            *parse_nsec(&NIP19_NSEC.to_uppercase()).unwrap(),
            h32(NIP19_NSEC_HEX)
        );
        assert_eq!(nsec(&h32(NIP19_NSEC_HEX)).as_str(), NIP19_NSEC);
    }

    #[test]
    fn nsec_rejects_bad_input_without_echoing_it() {
        let order = h32(ORDER_HEX);
        let mut order_minus_one = order;
        order_minus_one[31] -= 1;
        let cases: Vec<String> = vec![
            "0".repeat(64),
            ORDER_HEX.into(),
            "f".repeat(64),
            "abcd".into(),
            "zz".repeat(32),
            NIP19_NPUB.into(),
            // bad checksum
            NIP19_NSEC.replace('q', "p"),
            // bech32m checksum over the same data
            bech32::encode::<bech32::Bech32m>(NSEC, &h32(NIP19_NSEC_HEX)).unwrap(),
            // 33 bytes
            bech32::encode::<Bech32>(NSEC, &[1u8; 33]).unwrap(),
            // 31 bytes
            bech32::encode::<Bech32>(NSEC, &[1u8; 31]).unwrap(),
            // valid bech32 of an invalid scalar
            nsec(&order).to_string(),
        ];
        for case in &cases {
            let err = parse_nsec(case).unwrap_err();
            assert!(matches!(err, Error::InvalidKey { .. }), "{case}: {err}");
            let msg = err.to_string();
            assert!(!msg.contains(case.as_str()), "{msg}");
        }
        assert!(parse_nsec(&hex::encode(order_minus_one)).is_ok());
        assert!(parse_nsec(&format!("{}1", "0".repeat(63))).is_ok());
    }

    #[test]
    fn npub_rejects_points_off_the_curve() {
        // x = 5 is not on secp256k1 (5^3 + 7 = 132 is not a square mod p).
        let mut x = [0u8; 32];
        x[31] = 5;
        assert!(parse_npub(&hex::encode(x)).is_err());
        assert!(parse_npub(&npub(&x)).is_err());
        assert!(parse_npub(NIP19_NSEC).is_err());
    }

    #[test]
    fn bech32_padding_must_be_zero() {
        use bech32::{ByteIterExt as _, Fe32IterExt as _};
        // 32 bytes = 256 bits in 52 five-bit groups: 4 padding bits in the last character.
        let key = h32(NIP19_NPUB_HEX);
        let encode = |fes: Vec<bech32::Fe32>| -> String {
            let data: String = fes
                .into_iter()
                .with_checksum::<Bech32>(&NPUB)
                .chars()
                .collect();
            data
        };
        let mut fes: Vec<bech32::Fe32> = key.iter().copied().bytes_to_fes().collect();
        assert_eq!(encode(fes.clone()), NIP19_NPUB);
        let last = fes.len() - 1;
        fes[last] = bech32::Fe32::try_from(fes[last].to_u8() | 1).unwrap();
        let bad = encode(fes);
        assert!(
            CheckedHrpstring::new::<Bech32>(&bad).is_ok(),
            "checksum is valid"
        );
        let err = parse_npub(&bad).unwrap_err();
        assert!(err.to_string().contains("padding"), "{err}");
    }

    #[test]
    fn ed25519_public_forms() {
        let seed = [9u8; 32];
        let pk = ed25519_public_of(&seed);
        let id = ssb_id(&pk);
        assert!(id.starts_with('@') && id.ends_with(".ed25519") && id.contains('='));
        let b64 = STANDARD.encode(pk);
        for form in [
            id.clone(),
            id[1..].to_string(),
            b64.clone(),
            b64.trim_end_matches('=').to_string(),
            hex::encode(pk),
            hex::encode_upper(pk),
            format!("  {id}\n"),
        ] {
            assert_eq!(parse_ed25519_public(&form).unwrap(), pk, "{form}");
        }
    }

    #[test]
    fn ed25519_public_rejects_weak_and_malformed() {
        // Identity point (small order), encoded canonically.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        // y = p (non-canonical encoding of y = 0, which decodes).
        let non_canonical = h32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
        // y = 2 is not on the curve.
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        for bad in [identity, non_canonical, off_curve] {
            assert!(
                parse_ed25519_public(&hex::encode(bad)).is_err(),
                "{}",
                hex::encode(bad)
            );
        }
        for bad in [
            "",
            "@",
            "abc",
            "@AAAA.ed25519",
            &"a".repeat(63),
            &"A".repeat(45),
        ] {
            assert!(parse_ed25519_public(bad).is_err(), "{bad}");
        }
    }
}
