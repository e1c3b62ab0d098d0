//! Node identities (spec §8.1): a node's signed **descriptor** binding its HPKE key to its SHS
//! identity, the node's secret keys ([`NodeKeys`]), and the HPKE sealing ceremonies use
//! between nodes (spec §8.7 step 4, §8.8).
//!
//! # Descriptor encoding (v1, exactly [`NodeDescriptor::LEN`] = 137 bytes)
//!
//! ```text
//! version:u8 = 1 ‖ node_id[32] ‖ hpke_pk[32] ‖ created_at:u64 (ms since the Unix epoch, BE) ‖ sig[64]
//! ```
//!
//! `node_id` is the node's Ed25519 (SHS) public key, `hpke_pk` its X25519 HPKE public key and
//! `sig` an Ed25519 signature by `node_id` over
//!
//! ```text
//! "keyline/signer/descriptor/v1" ‖ version ‖ node_id ‖ hpke_pk ‖ created_at
//! ```
//!
//! [`NodeDescriptor::decode`] is strict: exact length, version 1, a valid non-weak Ed25519 key,
//! a non-zero HPKE key and a signature that passes `verify_strict`. A descriptor that decodes
//! is therefore authentic; pin it by its `node_id`.
//!
//! # HPKE
//!
//! RFC 9180 with DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305 (the `hpke`
//! crate). Between nodes the mode is **auth** (the sender is authenticated by its own HPKE key,
//! which the recipient knows from the sender's pinned descriptor); a dealer that has no pinned
//! HPKE key (import, spec §8.8) uses mode **base** and is authenticated by the SHS channel
//! instead. A sealed payload is `enc[32] ‖ ciphertext` (the ciphertext ends with the 16-byte
//! tag).

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use crate::limits::MAX_DESCRIPTOR;
use crate::{Error, Result, SignerRng, codec};

type HpkeKem = X25519HkdfSha256;
type HpkeSecret = <HpkeKem as Kem>::PrivateKey;
type HpkePublic = <HpkeKem as Kem>::PublicKey;

/// Domain separator of the descriptor signature.
pub const DESCRIPTOR_DOMAIN: &[u8] = b"keyline/signer/descriptor/v1";

const DESCRIPTOR_VERSION: u8 = 1;

/// Bytes of an HPKE encapsulated key (X25519).
pub const HPKE_ENC_LEN: usize = 32;

/// Bytes an HPKE seal adds to a plaintext: the encapsulated key and the AEAD tag.
pub const HPKE_OVERHEAD: usize = HPKE_ENC_LEN + 16;

/// A node's signed descriptor `{node_id, hpke_pk, created_at, sig}` (spec §8.1). Public.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NodeDescriptor {
    /// The node's SHS identity (Ed25519 public key).
    pub node_id: [u8; 32],
    /// The node's HPKE public key (X25519).
    pub hpke_pk: [u8; 32],
    /// When the node made it (ms since the Unix epoch).
    pub created_at: u64,
    /// Ed25519 signature by `node_id` (see the module docs).
    pub sig: [u8; 64],
}

impl NodeDescriptor {
    /// Length of the encoding.
    pub const LEN: usize = 1 + 32 + 32 + 8 + 64;

    fn signed_message(node_id: &[u8; 32], hpke_pk: &[u8; 32], created_at: u64) -> Vec<u8> {
        let mut m = Vec::with_capacity(DESCRIPTOR_DOMAIN.len() + 73);
        m.extend_from_slice(DESCRIPTOR_DOMAIN);
        m.push(DESCRIPTOR_VERSION);
        m.extend_from_slice(node_id);
        m.extend_from_slice(hpke_pk);
        m.extend_from_slice(&created_at.to_be_bytes());
        m
    }

    /// The encoding (see the module docs).
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = DESCRIPTOR_VERSION;
        out[1..33].copy_from_slice(&self.node_id);
        out[33..65].copy_from_slice(&self.hpke_pk);
        out[65..73].copy_from_slice(&self.created_at.to_be_bytes());
        out[73..].copy_from_slice(&self.sig);
        out
    }

    /// Decodes and verifies a descriptor (strict; never panics). Fails with
    /// [`Error::TooLarge`] beyond [`MAX_DESCRIPTOR`], [`Error::Malformed`] for a wrong length,
    /// version or key, and [`Error::InvalidSignature`] for a signature that does not verify.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "node descriptor";
        if bytes.len() > MAX_DESCRIPTOR {
            return Err(Error::TooLarge {
                what: WHAT,
                len: bytes.len(),
                max: MAX_DESCRIPTOR,
            });
        }
        if bytes.len() != Self::LEN || bytes[0] != DESCRIPTOR_VERSION {
            return Err(Error::Malformed { what: WHAT });
        }
        let mut d = Self {
            node_id: [0; 32],
            hpke_pk: [0; 32],
            created_at: 0,
            sig: [0; 64],
        };
        d.node_id.copy_from_slice(&bytes[1..33]);
        d.hpke_pk.copy_from_slice(&bytes[33..65]);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&bytes[65..73]);
        d.created_at = u64::from_be_bytes(ts);
        d.sig.copy_from_slice(&bytes[73..]);
        if d.hpke_pk == [0; 32] {
            return Err(Error::Malformed { what: WHAT });
        }
        d.verify()?;
        Ok(d)
    }

    /// Checks the signature (and that `node_id` is a valid, non-weak Ed25519 key).
    pub fn verify(&self) -> Result<()> {
        let message = Self::signed_message(&self.node_id, &self.hpke_pk, self.created_at);
        verify_ed25519(&self.node_id, &message, &self.sig)
    }
}

impl fmt::Debug for NodeDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeDescriptor")
            .field("node_id", &codec::hex(&self.node_id))
            .field("hpke_pk", &codec::hex(&self.hpke_pk))
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Verifies an Ed25519 signature with `verify_strict` (small-order keys and R refused).
pub(crate) fn verify_ed25519(node_id: &[u8; 32], message: &[u8], sig: &[u8; 64]) -> Result<()> {
    let key = VerifyingKey::from_bytes(node_id).map_err(|_| Error::InvalidSignature)?;
    if key.is_weak() {
        return Err(Error::InvalidSignature);
    }
    key.verify_strict(message, &Signature::from_bytes(sig))
        .map_err(|_| Error::InvalidSignature)
}

/// A node's secret keys: its Ed25519 identity (SHS, descriptor and ceremony signatures) and
/// its X25519 HPKE secret. Both zeroize on drop; `Debug` prints only the public keys; not
/// `Clone` (share it behind an `Arc`).
pub struct NodeKeys {
    signing: SigningKey,
    hpke_sk: HpkeSecret,
    hpke_pk: [u8; 32],
}

impl NodeKeys {
    /// Fresh keys from `rng` (the HPKE key pair by RFC 9180 `DeriveKeyPair` over 32 random
    /// bytes, as the `hpke` crate's own key generation does).
    pub fn generate(rng: &mut impl SignerRng) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut_slice());
        let signing = SigningKey::from_bytes(&seed);
        rng.fill_bytes(seed.as_mut_slice());
        let (hpke_sk, pk) = HpkeKem::derive_keypair(seed.as_slice());
        let mut hpke_pk = [0u8; 32];
        hpke_pk.copy_from_slice(&pk.to_bytes());
        Self {
            signing,
            hpke_sk,
            hpke_pk,
        }
    }

    /// Keys from their 64-byte secret encoding: the Ed25519 seed ‖ the X25519 secret (clamped
    /// as RFC 7748 says). Fails only if the HPKE crate refuses a 32-byte key
    /// ([`Error::Internal`]).
    pub fn from_secret_bytes(secret: &[u8; 64]) -> Result<Self> {
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&secret[..32]);
        let signing = SigningKey::from_bytes(&seed);
        let hpke_sk = HpkeSecret::from_bytes(&secret[32..]).map_err(|_| Error::Internal {
            reason: "the HPKE crate refused a 32-byte X25519 secret",
        })?;
        let mut hpke_pk = [0u8; 32];
        hpke_pk.copy_from_slice(&HpkeKem::sk_to_pk(&hpke_sk).to_bytes());
        Ok(Self {
            signing,
            hpke_sk,
            hpke_pk,
        })
    }

    /// The 64-byte secret encoding (for sealed storage only), in a zeroizing buffer.
    pub fn to_secret_bytes(&self) -> Zeroizing<[u8; 64]> {
        let mut out = Zeroizing::new([0u8; 64]);
        out[..32].copy_from_slice(self.signing.as_bytes());
        let sk = Zeroizing::new(self.hpke_sk.to_bytes());
        out[32..].copy_from_slice(&sk);
        out
    }

    /// The node's identity (Ed25519 public key).
    pub fn node_id(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The node's HPKE public key (X25519).
    pub fn hpke_pk(&self) -> [u8; 32] {
        self.hpke_pk
    }

    /// The node's signed descriptor, stamped `created_at` (ms since the Unix epoch).
    pub fn descriptor(&self, created_at: u64) -> NodeDescriptor {
        let node_id = self.node_id();
        let message = NodeDescriptor::signed_message(&node_id, &self.hpke_pk, created_at);
        NodeDescriptor {
            node_id,
            hpke_pk: self.hpke_pk,
            created_at,
            sig: self.sign(&message),
        }
    }

    /// Signs a domain-separated message (callers in this crate build it with a fixed label).
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// HPKE auth mode: seals `plaintext` from this node to `recipient` (spec §8.7 step 4).
    pub(crate) fn seal_to(
        &self,
        recipient: &[u8; 32],
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        rng: &mut impl SignerRng,
    ) -> Result<Vec<u8>> {
        let sender_pk = HpkePublic::from_bytes(&self.hpke_pk).map_err(|_| hpke_internal())?;
        let mode = OpModeS::Auth((self.hpke_sk.clone(), sender_pk));
        seal(&mode, recipient, info, aad, plaintext, rng)
    }

    /// HPKE auth mode: opens a payload sealed by `sender` to this node. `None` when it does not
    /// open (wrong sender, recipient, info, aad or a modified byte).
    pub(crate) fn open_from(
        &self,
        sender: &[u8; 32],
        info: &[u8],
        aad: &[u8],
        payload: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let sender_pk = HpkePublic::from_bytes(sender).ok()?;
        self.open(&OpModeR::Auth(sender_pk), info, aad, payload)
    }

    /// HPKE base mode: opens a payload a dealer sealed to this node (spec §8.8).
    pub(crate) fn open_base(
        &self,
        info: &[u8],
        aad: &[u8],
        payload: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        self.open(&OpModeR::Base, info, aad, payload)
    }

    fn open(
        &self,
        mode: &OpModeR<'_, HpkeKem>,
        info: &[u8],
        aad: &[u8],
        payload: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        if payload.len() < HPKE_OVERHEAD {
            return None;
        }
        let (enc, ct) = payload.split_at(HPKE_ENC_LEN);
        let enc = <HpkeKem as Kem>::EncappedKey::from_bytes(enc).ok()?;
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, HpkeKem>(
            mode,
            &self.hpke_sk,
            &enc,
            info,
            ct,
            aad,
        )
        .ok()
        .map(Zeroizing::new)
    }
}

/// HPKE base mode: seals `plaintext` to `recipient` (a dealer without a pinned HPKE key,
/// spec §8.8).
pub(crate) fn seal_base(
    recipient: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl SignerRng,
) -> Result<Vec<u8>> {
    seal(&OpModeS::Base, recipient, info, aad, plaintext, rng)
}

fn seal(
    mode: &OpModeS<'_, HpkeKem>,
    recipient: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl SignerRng,
) -> Result<Vec<u8>> {
    let recipient = HpkePublic::from_bytes(recipient).map_err(|_| Error::InvalidPeerKey)?;
    let (enc, ct) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, HpkeKem>(
        mode,
        &recipient,
        info,
        plaintext,
        aad,
        &mut HpkeRng(rng),
    )
    // A low-order recipient key gives an all-zero DH output, which the crate refuses.
    .map_err(|_| Error::InvalidPeerKey)?;
    let mut out = Vec::with_capacity(HPKE_ENC_LEN + ct.len());
    out.extend_from_slice(&enc.to_bytes());
    out.extend_from_slice(&ct);
    Ok(out)
}

fn hpke_internal() -> Error {
    Error::Internal {
        reason: "an X25519 public key did not decode",
    }
}

/// Adapts the engine's `rand_core` 0.6 RNG to the `rand_core` 0.10 traits the `hpke` crate
/// takes.
struct HpkeRng<'a, R: ?Sized>(&'a mut R);

impl<R: SignerRng + ?Sized> hpke::rand_core::TryRng for HpkeRng<'_, R> {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> core::result::Result<u32, Self::Error> {
        Ok(self.0.next_u32())
    }

    fn try_next_u64(&mut self) -> core::result::Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> core::result::Result<(), Self::Error> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

impl<R: SignerRng + ?Sized> hpke::rand_core::TryCryptoRng for HpkeRng<'_, R> {}

impl fmt::Debug for NodeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKeys")
            .field("node_id", &codec::hex(&self.node_id()))
            .field("hpke_pk", &codec::hex(&self.hpke_pk))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OsRng;

    #[test]
    fn descriptor_round_trips_and_rejects_changes() {
        let keys = NodeKeys::generate(&mut OsRng);
        let d = keys.descriptor(1_700_000_000_000);
        let bytes = d.encode();
        assert_eq!(NodeDescriptor::decode(&bytes).unwrap(), d);
        for i in 0..bytes.len() {
            let mut bad = bytes;
            bad[i] ^= 1;
            assert!(NodeDescriptor::decode(&bad).is_err(), "byte {i}");
        }
        assert!(NodeDescriptor::decode(&bytes[..136]).is_err());
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(NodeDescriptor::decode(&long).is_err());
        assert!(matches!(
            NodeDescriptor::decode(&[0u8; MAX_DESCRIPTOR + 1]),
            Err(Error::TooLarge { .. })
        ));
        let dbg = format!("{keys:?}");
        let secret = keys.to_secret_bytes();
        assert!(!dbg.contains(&codec::hex(&secret[..32])));
        let again = NodeKeys::from_secret_bytes(&secret).unwrap();
        assert_eq!(again.node_id(), keys.node_id());
        assert_eq!(again.hpke_pk(), keys.hpke_pk());
    }

    /// A descriptor made by an independent Ed25519/X25519 implementation (Python
    /// `cryptography`): seed 00..1f, X25519 secret 20..3f, created_at 1 795 000 000 000.
    #[test]
    fn descriptor_from_an_independent_implementation_verifies() {
        let bytes = hex::decode(
            "0103a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8358072d63658\
             80d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254000001a1ee565e00a2092dc002\
             2cd16b82ce01754bbd01f14fb5038728f1b82bc3d2b18b92b3a2f8c94275986b1328b08be1cbbe\
             72e6f23c7af22034f30667be8f00c7faa8919502",
        )
        .unwrap();
        let d = NodeDescriptor::decode(&bytes).unwrap();
        let mut secret = [0u8; 64];
        for (i, b) in secret.iter_mut().enumerate() {
            *b = i as u8;
        }
        let keys = NodeKeys::from_secret_bytes(&secret).unwrap();
        assert_eq!(d.node_id, keys.node_id());
        assert_eq!(d.hpke_pk, keys.hpke_pk());
        assert_eq!(d.created_at, 1_795_000_000_000);
        // Ed25519 is deterministic: this crate produces the same bytes.
        assert_eq!(keys.descriptor(1_795_000_000_000).encode().to_vec(), bytes);
    }

    #[test]
    fn hpke_auth_binds_sender_info_and_aad() {
        let a = NodeKeys::generate(&mut OsRng);
        let b = NodeKeys::generate(&mut OsRng);
        let c = NodeKeys::generate(&mut OsRng);
        let sealed = a
            .seal_to(&b.hpke_pk(), b"info", b"aad", b"secret", &mut OsRng)
            .unwrap();
        assert_eq!(sealed.len(), 6 + HPKE_OVERHEAD);
        let opened = b.open_from(&a.hpke_pk(), b"info", b"aad", &sealed).unwrap();
        assert_eq!(opened.as_slice(), b"secret");
        assert!(
            b.open_from(&c.hpke_pk(), b"info", b"aad", &sealed)
                .is_none()
        );
        assert!(
            b.open_from(&a.hpke_pk(), b"infx", b"aad", &sealed)
                .is_none()
        );
        assert!(
            b.open_from(&a.hpke_pk(), b"info", b"aax", &sealed)
                .is_none()
        );
        assert!(
            c.open_from(&a.hpke_pk(), b"info", b"aad", &sealed)
                .is_none()
        );
        assert!(b.open_base(b"info", b"aad", &sealed).is_none());
        assert!(
            b.open_from(&a.hpke_pk(), b"info", b"aad", &sealed[..40])
                .is_none()
        );
        let base = seal_base(&b.hpke_pk(), b"i", b"a", b"x", &mut OsRng).unwrap();
        assert_eq!(b.open_base(b"i", b"a", &base).unwrap().as_slice(), b"x");
        assert!(seal_base(&[0; 32], b"i", b"a", b"x", &mut OsRng).is_err());
    }
}
