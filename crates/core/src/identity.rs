//! The local identity: one Ed25519 key (SSB, SHS, SBRP, HTTP) and one secp256k1 key (Nostr,
//! BIP340 HTTP signatures), kept together in `identity.toml`.

mod file;
mod import;

pub use import::{ImportSource, import_ssb_secret};

use std::fmt;

use serde::Serialize;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};
use crate::keys::{
    ed25519_public_of, fingerprint, npub, secp256k1_signing_key, secp256k1_xonly, ssb_id,
};
use crate::limits::SECP256K1_KEYGEN_ATTEMPTS;

/// The local key pair set: an Ed25519 seed and a secp256k1 secret key.
///
/// Secrets are zeroized on drop and never appear in `Debug` output, which shows the public
/// keys' fingerprints only.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Identity {
    ed25519_seed: [u8; 32],
    secp256k1_secret: [u8; 32],
    // Derived once: both derivations cost a scalar multiplication.
    ed25519_public: [u8; 32],
    secp256k1_xonly: [u8; 32],
}

impl Identity {
    /// A new identity with both keys drawn from the operating system's RNG.
    pub fn generate() -> Result<Identity> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(Error::Rng)?;
        let secret = generate_secp256k1_secret(|buf| getrandom::fill(buf).map_err(Error::Rng))?;
        Identity::from_parts(*seed, *secret)
    }

    /// An identity from raw secrets. Any 32 bytes are a valid Ed25519 seed; the secp256k1
    /// secret must be a scalar in `1..n` ([`Error::InvalidKey`] otherwise).
    pub fn from_parts(
        mut ed25519_seed: [u8; 32],
        mut secp256k1_secret: [u8; 32],
    ) -> Result<Identity> {
        let identity = secp256k1_xonly(&secp256k1_secret).map(|secp256k1_xonly| Identity {
            ed25519_public: ed25519_public_of(&ed25519_seed),
            ed25519_seed,
            secp256k1_secret,
            secp256k1_xonly,
        });
        // The arguments are copies; wipe them too.
        ed25519_seed.zeroize();
        secp256k1_secret.zeroize();
        identity
    }

    /// This identity with its Ed25519 key replaced.
    pub fn with_ed25519_seed(mut self, mut seed: [u8; 32]) -> Identity {
        self.ed25519_public = ed25519_public_of(&seed);
        self.ed25519_seed = seed;
        seed.zeroize();
        self
    }

    /// This identity with its secp256k1 key replaced; fails if `secret` is not a valid scalar.
    pub fn with_secp256k1_secret(mut self, mut secret: [u8; 32]) -> Result<Identity> {
        let xonly = secp256k1_xonly(&secret);
        if let Ok(xonly) = xonly {
            self.secp256k1_xonly = xonly;
            self.secp256k1_secret = secret;
        }
        secret.zeroize();
        xonly.map(|_| self)
    }

    /// The 32-byte Ed25519 seed (RFC 8032 secret key).
    pub fn ed25519_seed(&self) -> &[u8; 32] {
        &self.ed25519_seed
    }

    /// The Ed25519 signing key (zeroized on drop by ed25519-dalek).
    pub fn ed25519_signing_key(&self) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&self.ed25519_seed)
    }

    /// The Ed25519 public key.
    pub fn ed25519_public(&self) -> [u8; 32] {
        self.ed25519_public
    }

    /// The 32-byte secp256k1 secret key, as stored (not negated for BIP340).
    pub fn secp256k1_secret(&self) -> &[u8; 32] {
        &self.secp256k1_secret
    }

    /// The BIP340 signing key (zeroized on drop by k256).
    pub fn secp256k1_signing_key(&self) -> k256::schnorr::SigningKey {
        secp256k1_signing_key(&self.secp256k1_secret)
            .expect("Identity only ever holds valid secp256k1 secrets")
    }

    /// The BIP340 x-only secp256k1 public key (the Nostr public key).
    pub fn secp256k1_xonly_public(&self) -> [u8; 32] {
        self.secp256k1_xonly
    }

    /// Every public form of both keys.
    pub fn public(&self) -> PublicIds {
        PublicIds::new(self.ed25519_public, self.secp256k1_xonly)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("ed25519", &fingerprint(&self.ed25519_public))
            .field("secp256k1", &fingerprint(&self.secp256k1_xonly))
            .finish_non_exhaustive()
    }
}

/// Draws secp256k1 secrets from `fill` until one is a valid scalar, at most
/// [`SECP256K1_KEYGEN_ATTEMPTS`] times.
fn generate_secp256k1_secret(
    mut fill: impl FnMut(&mut [u8]) -> Result<()>,
) -> Result<Zeroizing<[u8; 32]>> {
    let mut secret = Zeroizing::new([0u8; 32]);
    for _ in 0..SECP256K1_KEYGEN_ATTEMPTS {
        fill(secret.as_mut())?;
        if secp256k1_signing_key(&secret).is_ok() {
            return Ok(secret);
        }
    }
    Err(Error::Rng(getrandom::Error::UNEXPECTED))
}

/// The public halves of an [`Identity`] in every form keyline prints.
///
/// Serializes (for `--json` output) to the string forms only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PublicIds {
    /// Raw Ed25519 public key.
    #[serde(skip)]
    pub ed25519: [u8; 32],
    /// Raw BIP340 x-only secp256k1 public key.
    #[serde(skip)]
    pub secp256k1_xonly: [u8; 32],
    /// SSB identity, `@<base64>.ed25519`.
    pub ssb_id: String,
    /// Ed25519 public key in lowercase hex.
    pub ed25519_hex: String,
    /// [`fingerprint`] of the Ed25519 public key.
    pub ed25519_fingerprint: String,
    /// NIP-19 `npub1…` of the x-only key.
    pub npub: String,
    /// x-only secp256k1 public key in lowercase hex.
    pub secp256k1_hex: String,
    /// [`fingerprint`] of the x-only secp256k1 public key.
    pub secp256k1_fingerprint: String,
}

impl PublicIds {
    /// All forms of the given public keys. The keys are not validated.
    pub fn new(ed25519: [u8; 32], secp256k1_xonly: [u8; 32]) -> PublicIds {
        PublicIds {
            ed25519,
            secp256k1_xonly,
            ssb_id: ssb_id(&ed25519),
            ed25519_hex: hex::encode(ed25519),
            ed25519_fingerprint: fingerprint(&ed25519),
            npub: npub(&secp256k1_xonly),
            secp256k1_hex: hex::encode(secp256k1_xonly),
            secp256k1_fingerprint: fingerprint(&secp256k1_xonly),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_vectors;

    /// A fixed identity for tests.
    pub(crate) fn fixed() -> Identity {
        Identity::from_parts([1u8; 32], [2u8; 32]).unwrap()
    }

    #[test]
    fn generate_gives_distinct_valid_keys() {
        let a = Identity::generate().unwrap();
        let b = Identity::generate().unwrap();
        assert_ne!(a.ed25519_seed(), b.ed25519_seed());
        assert_ne!(a.secp256k1_secret(), b.secp256k1_secret());
        assert_ne!(a.ed25519_seed(), &[0u8; 32]);
        crate::keys::validate_secp256k1_secret(a.secp256k1_secret()).unwrap();
        crate::keys::validate_ed25519_public(&a.ed25519_public()).unwrap();
    }

    #[test]
    fn keygen_retries_invalid_scalars_up_to_the_limit() {
        // Edge: the last allowed draw is the first valid one.
        let mut calls = 0u32;
        let secret = generate_secp256k1_secret(|buf| {
            calls += 1;
            buf.fill(if calls < SECP256K1_KEYGEN_ATTEMPTS {
                0
            } else {
                7
            });
            Ok(())
        })
        .unwrap();
        assert_eq!(*secret, [7u8; 32]);
        assert_eq!(calls, SECP256K1_KEYGEN_ATTEMPTS);

        // Past it: a source that never yields a valid scalar (here: always ≥ n) fails.
        let mut calls = 0u32;
        let err = generate_secp256k1_secret(|buf| {
            calls += 1;
            buf.fill(0xff);
            Ok(())
        })
        .unwrap_err();
        assert!(matches!(err, Error::Rng(_)), "{err}");
        assert_eq!(calls, SECP256K1_KEYGEN_ATTEMPTS);
    }

    #[test]
    fn from_parts_rejects_invalid_secp256k1() {
        assert!(Identity::from_parts([1; 32], [0; 32]).is_err());
        assert!(Identity::from_parts([1; 32], [0xff; 32]).is_err());
        assert!(fixed().with_secp256k1_secret([0; 32]).is_err());
    }

    #[test]
    fn replacing_one_key_keeps_the_other() {
        let id = fixed();
        let ed = id.ed25519_public();
        let id = id.with_secp256k1_secret([3; 32]).unwrap();
        assert_eq!(id.ed25519_public(), ed);
        assert_eq!(id.secp256k1_secret(), &[3; 32]);
        let x = id.secp256k1_xonly_public();
        let id = id.with_ed25519_seed([4; 32]);
        assert_eq!(id.ed25519_seed(), &[4; 32]);
        assert_eq!(id.ed25519_public(), ed25519_public_of(&[4; 32]));
        assert_eq!(id.secp256k1_xonly_public(), x);
    }

    #[test]
    fn debug_shows_fingerprints_only() {
        let id = fixed();
        let dbg = format!("{id:?} {id:#?}");
        assert!(dbg.contains(&fingerprint(&id.ed25519_public())));
        for secret in [id.ed25519_seed(), id.secp256k1_secret()] {
            assert!(!dbg.contains(&hex::encode(secret)));
            assert!(!dbg.contains("[1, 1, 1"), "{dbg}");
            assert!(!dbg.contains("[2, 2, 2"), "{dbg}");
        }
    }

    #[test]
    fn public_forms() {
        let id = fixed();
        let p = id.public();
        assert_eq!(p.ed25519, id.ed25519_public());
        assert_eq!(p.ssb_id, ssb_id(&id.ed25519_public()));
        assert_eq!(p.ed25519_hex, hex::encode(id.ed25519_public()));
        assert!(p.npub.starts_with("npub1"));
        assert_eq!(
            crate::keys::parse_npub(&p.npub).unwrap(),
            id.secp256k1_xonly_public()
        );
        assert_eq!(p.secp256k1_fingerprint, fingerprint(&p.secp256k1_xonly));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["npub"], p.npub);
        assert!(json.get("ed25519").is_none());
    }

    #[test]
    fn signing_keys_match_public_keys() {
        use ed25519_dalek::Signer as _;
        let id = fixed();
        let sk = id.ed25519_signing_key();
        assert_eq!(sk.verifying_key().to_bytes(), id.ed25519_public());
        let sig = sk.sign(b"m");
        sk.verifying_key().verify_strict(b"m", &sig).unwrap();
        let xonly: [u8; 32] = id.secp256k1_signing_key().verifying_key().to_bytes().into();
        assert_eq!(xonly, id.secp256k1_xonly_public());
    }

    /// BIP340 reference vectors: secret key → x-only public key.
    #[test]
    fn bip340_public_keys() {
        let csv = test_vectors::read("bip340/test-vectors.csv");
        let mut checked = 0;
        for line in csv.lines().skip(1) {
            let cols: Vec<&str> = line.split(',').collect();
            if cols[1].is_empty() {
                continue; // verification-only vectors
            }
            let secret: [u8; 32] = hex::decode(cols[1]).unwrap().try_into().unwrap();
            let expected = cols[2].to_ascii_lowercase();
            let id = Identity::from_parts([0; 32], secret).unwrap();
            assert_eq!(hex::encode(id.secp256k1_xonly_public()), expected, "{line}");
            checked += 1;
        }
        assert_eq!(checked, 8, "BIP340 vectors with a secret key (0-3, 15-18)");
    }

    /// libsodium key pairs logged by the SSB reference (`test-secret-handshake`): the seed is
    /// the first half of each 64-byte `secretKey`, the public key its second half.
    #[test]
    fn ed25519_public_keys_match_libsodium() {
        let data: serde_json::Value =
            serde_json::from_str(&test_vectors::read("shs/test-secret-handshake-data.json"))
                .unwrap();
        let mut pairs = std::collections::BTreeSet::new();
        for call in data.as_array().unwrap() {
            for arg in call["args"].as_array().into_iter().flatten() {
                if let Some(sk) = arg["local"]["secretKey"].as_str() {
                    pairs.insert(sk.to_string());
                }
            }
        }
        assert!(pairs.len() >= 2, "found {} key pairs", pairs.len());
        for sk in &pairs {
            let bytes = hex::decode(sk).unwrap();
            let seed: [u8; 32] = bytes[..32].try_into().unwrap();
            let id = Identity::from_parts(seed, [2; 32]).unwrap();
            assert_eq!(&id.ed25519_public()[..], &bytes[32..]);
        }
    }
}
