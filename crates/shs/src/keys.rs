//! Keys of the handshake: the network key, long-term Ed25519 keys and their Curve25519 forms,
//! and ephemeral X25519 keys.

use std::fmt;

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha512};
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use crate::error::{Error, InvalidInput, Result};

/// The network identifier `N` ("app key" in the JS reference): 32 bytes shared by all peers
/// of a network. Peers with different network keys cannot get past msg1.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetworkKey(pub [u8; 32]);

impl NetworkKey {
    /// The Secure Scuttlebutt main net, keyline's default.
    pub const SSB_MAIN_NET: NetworkKey = NetworkKey([
        0xd4, 0xa1, 0xcb, 0x88, 0xa6, 0x6f, 0x02, 0xf8, 0xdb, 0x63, 0x5c, 0xe2, 0x64, 0x41, 0xcc,
        0x5d, 0xac, 0x1b, 0x08, 0x42, 0x0c, 0xea, 0xac, 0x23, 0x08, 0x39, 0xb7, 0x55, 0x84, 0x5a,
        0x9f, 0xfb,
    ]);

    /// Parses 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(Error::InvalidInput(InvalidInput::NetworkKey(format!(
                "{} characters",
                text.len()
            ))));
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .map_err(|_| Error::InvalidInput(InvalidInput::NetworkKey("not hex".into())))?;
        }
        Ok(NetworkKey(key))
    }

    /// The key as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl Default for NetworkKey {
    fn default() -> Self {
        Self::SSB_MAIN_NET
    }
}

impl fmt::Debug for NetworkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetworkKey({})", self.to_hex())
    }
}

/// A peer's long-term Ed25519 public key, checked to be usable in the handshake: it decodes,
/// has no small order and lies in the prime-order subgroup, so its Curve25519 form is sound.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey {
    ed25519: [u8; 32],
    curve25519: [u8; 32],
}

impl PublicKey {
    /// Checks an Ed25519 public key and computes its Curve25519 form
    /// (libsodium `crypto_sign_ed25519_pk_to_curve25519`).
    pub fn from_bytes(bytes: &[u8; 32]) -> std::result::Result<Self, &'static str> {
        let point = CompressedEdwardsY(*bytes)
            .decompress()
            .ok_or("not a point on Edwards25519")?;
        if point.is_small_order() {
            return Err("a point of small order");
        }
        if !point.is_torsion_free() {
            return Err("a point outside the prime-order subgroup");
        }
        Ok(PublicKey {
            ed25519: *bytes,
            curve25519: point.to_montgomery().to_bytes(),
        })
    }

    /// The Ed25519 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.ed25519
    }

    /// The Curve25519 (Montgomery u) form, for X25519.
    pub fn curve25519(&self) -> &[u8; 32] {
        &self.curve25519
    }

    /// The Ed25519 verifying key.
    pub(crate) fn verifying_key(&self) -> std::result::Result<VerifyingKey, &'static str> {
        VerifyingKey::from_bytes(&self.ed25519).map_err(|_| "not a point on Edwards25519")
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({})",
            keyline_core::keys::fingerprint(&self.ed25519)
        )
    }
}

/// A long-term Ed25519 key pair. Cloning copies the seed; every copy is wiped on drop.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
    public: PublicKey,
}

impl Keypair {
    /// The key pair of a 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let public = public_of(&signing);
        Keypair { signing, public }
    }

    /// Imports a libsodium/JS 64-byte secret key `seed | pk`, refusing a mismatched pk half.
    pub fn from_libsodium_secret(secret: &[u8; 64]) -> Result<Self> {
        let signing = SigningKey::from_keypair_bytes(secret).map_err(|_| {
            Error::InvalidInput(InvalidInput::SecretKey(
                "the public half does not belong to the seed",
            ))
        })?;
        let public = public_of(&signing);
        Ok(Keypair { signing, public })
    }

    /// A fresh key pair from the OS random number generator.
    pub fn generate() -> Self {
        Self::from_seed(&random_32())
    }

    /// The public key.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The libsodium 64-byte secret key `seed | pk`.
    pub fn to_libsodium_secret(&self) -> Zeroizing<[u8; 64]> {
        Zeroizing::new(self.signing.to_keypair_bytes())
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// `ed2curve_sk`: `clamp(SHA-512(seed)[0..32])`, the X25519 secret of this key pair.
    pub(crate) fn curve25519_secret(&self) -> StaticSecret {
        let mut hash = Zeroizing::new([0u8; 64]);
        hash.copy_from_slice(&Sha512::digest(self.signing.as_bytes()));
        let mut scalar = Zeroizing::new([0u8; 32]);
        scalar.copy_from_slice(&hash[..32]);
        scalar[0] &= 248;
        scalar[31] &= 127;
        scalar[31] |= 64;
        StaticSecret::from(*scalar)
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

fn public_of(signing: &SigningKey) -> PublicKey {
    // A key derived from a seed is a multiple of the base point: always usable.
    let verifying = signing.verifying_key();
    PublicKey {
        ed25519: verifying.to_bytes(),
        curve25519: verifying.to_montgomery().to_bytes(),
    }
}

/// An ephemeral X25519 key pair, fresh for each handshake and wiped on drop.
pub struct EphemeralKey {
    secret: StaticSecret,
    public: [u8; 32],
}

impl EphemeralKey {
    /// A fresh key from the OS random number generator.
    pub fn generate() -> Self {
        Self::from_secret(random_32())
    }

    /// An injected secret scalar (tests replaying vectors). Never reuse one across handshakes.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let secret = StaticSecret::from(secret);
        let public = x25519_dalek::PublicKey::from(&secret).to_bytes();
        EphemeralKey { secret, public }
    }

    /// The public key sent in the hello.
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    pub(crate) fn secret(&self) -> &StaticSecret {
        &self.secret
    }
}

impl fmt::Debug for EphemeralKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EphemeralKey").finish_non_exhaustive()
    }
}

/// 32 bytes from the OS random number generator. Aborts the process if the OS has none:
/// there is no safe way to continue a key exchange without randomness.
fn random_32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    if let Err(err) = getrandom::fill(&mut bytes) {
        panic!("the operating system's random number generator failed: {err}");
    }
    bytes
}
