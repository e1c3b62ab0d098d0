//! The profile's two signature algorithms and their key ids (B.3).
//!
//! - `ed25519`: RFC 8032 over the signature base bytes; verified with `verify_strict`
//!   (non-canonical encodings and small-order points rejected). `keyid` =
//!   `ed25519:` ‖ base64url-nopad(32-byte key), canonical (no non-zero trailing bits).
//! - `bip340-secp256k1`: BIP340 Schnorr over **SHA-256(signature base)** (32 bytes), 32 bytes of
//!   `aux_rand`; x-only key. `keyid` = `bip340:` ‖ 64 lowercase hex characters.
//!
//! BIP340 goes through [`bip340_sign`] / [`bip340_verify`], the same `k256` calls NIP-98 and the
//! BIP340 test vectors use.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{InvalidInput, Malformed, Result};

/// A signature algorithm of keyline-http-v1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// `ed25519`.
    Ed25519,
    /// `bip340-secp256k1`.
    Bip340,
}

impl Algorithm {
    /// The `alg` parameter value.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::Bip340 => "bip340-secp256k1",
        }
    }

    /// Parses an `alg` parameter value.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ed25519" => Some(Algorithm::Ed25519),
            "bip340-secp256k1" => Some(Algorithm::Bip340),
            _ => None,
        }
    }
}

/// A public key of the profile: what `keyid` names and what [`crate::VerifiedPeer`] carries.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PublicKey {
    /// An Ed25519 public key.
    Ed25519([u8; 32]),
    /// A BIP340 x-only secp256k1 public key.
    Bip340([u8; 32]),
}

impl PublicKey {
    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::Ed25519(_) => Algorithm::Ed25519,
            PublicKey::Bip340(_) => Algorithm::Bip340,
        }
    }

    /// The raw 32 key bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        match self {
            PublicKey::Ed25519(k) | PublicKey::Bip340(k) => k,
        }
    }

    /// The `keyid` string.
    pub fn keyid(&self) -> String {
        match self {
            PublicKey::Ed25519(k) => format!("ed25519:{}", URL_SAFE_NO_PAD.encode(k)),
            PublicKey::Bip340(k) => format!("bip340:{}", hex::encode(k)),
        }
    }

    /// Parses a `keyid` strictly: exactly the canonical forms of B.3.
    pub fn from_keyid(keyid: &str) -> Result<Self, Malformed> {
        if let Some(b64) = keyid.strip_prefix("ed25519:") {
            if b64.len() != 43 {
                return Err(Malformed::KeyId);
            }
            // The URL-safe no-pad engine rejects padding and non-zero trailing bits. 43
            // characters decode to at most 33 bytes: the buffer is never too small.
            let mut buf = [0u8; 48];
            let len = URL_SAFE_NO_PAD
                .decode_slice(b64, &mut buf)
                .map_err(|_| Malformed::KeyId)?;
            let key: [u8; 32] = buf[..len].try_into().map_err(|_| Malformed::KeyId)?;
            Ok(PublicKey::Ed25519(key))
        } else if let Some(hex_key) = keyid.strip_prefix("bip340:") {
            if hex_key.len() != 64
                || !hex_key
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                return Err(Malformed::KeyId);
            }
            let mut key = [0u8; 32];
            hex::decode_to_slice(hex_key, &mut key).map_err(|_| Malformed::KeyId)?;
            Ok(PublicKey::Bip340(key))
        } else {
            Err(Malformed::KeyId)
        }
    }

    /// Verifies a signature over `base` (the signature base bytes): strict Ed25519, or BIP340
    /// over SHA-256(base). False for an invalid key or signature.
    pub fn verify(&self, base: &[u8], signature: &[u8; 64]) -> bool {
        match self {
            PublicKey::Ed25519(k) => {
                let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(k) else {
                    return false;
                };
                let sig = ed25519_dalek::Signature::from_bytes(signature);
                key.verify_strict(base, &sig).is_ok()
            }
            PublicKey::Bip340(k) => bip340_verify(k, &Sha256::digest(base), signature),
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.keyid())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.keyid())
    }
}

/// A secret signing key. `Debug` prints the public `keyid` only.
#[derive(Clone)]
pub enum SigningKey {
    /// Ed25519.
    Ed25519(ed25519_dalek::SigningKey),
    /// BIP340 secp256k1.
    Bip340(k256::schnorr::SigningKey),
}

impl SigningKey {
    /// An Ed25519 key from its 32-byte seed.
    pub fn ed25519_from_seed(seed: &[u8; 32]) -> Self {
        SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// A BIP340 key from its 32-byte secret scalar.
    pub fn bip340_from_secret(secret: &[u8; 32]) -> Result<Self> {
        k256::schnorr::SigningKey::from_slice(secret)
            .map(SigningKey::Bip340)
            .map_err(|_| InvalidInput::SecretKey("not a valid secp256k1 scalar").into())
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            SigningKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key().to_bytes()),
            SigningKey::Bip340(k) => PublicKey::Bip340(k.verifying_key().to_bytes().into()),
        }
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.public_key().algorithm()
    }

    /// Signs the signature base bytes. `aux_rand` is used by BIP340 only (fresh random bytes
    /// in production; fixed in tests to reproduce vectors).
    pub fn sign(&self, base: &[u8], aux_rand: &[u8; 32]) -> Result<[u8; 64]> {
        match self {
            SigningKey::Ed25519(k) => {
                use ed25519_dalek::Signer;
                Ok(k.sign(base).to_bytes())
            }
            SigningKey::Bip340(k) => {
                let secret = Zeroizing::new(<[u8; 32]>::from(k.to_bytes()));
                bip340_sign(&secret, &Sha256::digest(base), aux_rand)
            }
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.public_key().keyid())
    }
}

/// BIP340 signature of `message` (any length) with `secret` and `aux_rand`, through `k256`'s
/// `sign_raw`: the message is used as is, not hashed again.
pub fn bip340_sign(secret: &[u8; 32], message: &[u8], aux_rand: &[u8; 32]) -> Result<[u8; 64]> {
    let key = k256::schnorr::SigningKey::from_slice(secret)
        .map_err(|_| InvalidInput::SecretKey("not a valid secp256k1 scalar"))?;
    key.sign_raw(message, aux_rand)
        .map(|sig| sig.to_bytes())
        .map_err(|_| InvalidInput::SecretKey("BIP340 signing failed").into())
}

/// BIP340 verification of `signature` over `message` (any length) with the x-only key
/// `public_key`, through `k256`'s `verify_raw`. False for an invalid key or signature.
pub fn bip340_verify(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(key) = k256::schnorr::VerifyingKey::from_slice(public_key) else {
        return false;
    };
    let Ok(sig) = k256::schnorr::Signature::from_slice(signature) else {
        return false;
    };
    key.verify_raw(message, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyid_canonical_forms() {
        let ed =
            PublicKey::from_keyid("ed25519:JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs").unwrap();
        assert_eq!(
            ed.keyid(),
            "ed25519:JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"
        );
        assert_eq!(ed.algorithm(), Algorithm::Ed25519);
        let bip = "bip340:dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659";
        assert_eq!(PublicKey::from_keyid(bip).unwrap().keyid(), bip);
        for bad in [
            // non-zero trailing bits: `t` differs from the canonical `s` only there
            "ed25519:JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bt",
            "ed25519:JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs=",
            "ed25519:JrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs",
            "ed25519:JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0b",
            "bip340:DFF1D77F2A671C5F36183726DB2341BE58FEAE1DA2DECED843240F7B502BA659",
            "bip340:dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba6",
            "secp256k1:dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659",
            "",
        ] {
            assert_eq!(PublicKey::from_keyid(bad), Err(Malformed::KeyId), "{bad}");
        }
        assert_eq!(
            Algorithm::from_name("bip340-secp256k1"),
            Some(Algorithm::Bip340)
        );
        assert_eq!(Algorithm::from_name("rsa-pss-sha512"), None);
    }

    #[test]
    fn sign_verify_both() {
        for key in [
            SigningKey::ed25519_from_seed(&[7; 32]),
            SigningKey::bip340_from_secret(&[7; 32]).unwrap(),
        ] {
            let sig = key.sign(b"base", &[0; 32]).unwrap();
            let pk = key.public_key();
            assert!(pk.verify(b"base", &sig));
            assert!(!pk.verify(b"basf", &sig));
            assert!(format!("{key:?}").contains(&pk.keyid()));
        }
        assert!(SigningKey::bip340_from_secret(&[0; 32]).is_err());
        assert!(!PublicKey::Bip340([0xff; 32]).verify(b"x", &[1; 64]));
        assert!(!PublicKey::Ed25519([0xff; 32]).verify(b"x", &[1; 64]));
    }
}
