//! Keys: the group's public side ([`GroupKey`], [`PublicKeyPackage`]) and one node's secret
//! share ([`NodeShare`]).
//!
//! # npub, tweak and parity
//!
//! The npub of every key is the x coordinate of the group verifying key **as the FROST crate
//! stores it** in the public key package ([`GroupKey::npub`]):
//!
//! * after a DKG the crate has already applied the BIP341 TapTweak ("post_dkg"): the stored key
//!   is Q = P + int(hash_TapTweak(x(P)))·G with P the DKG key made even-y, and every stored share
//!   carries the tweak. The npub is x(Q), never x(P). Nothing in keyline tweaks again
//!   (`sign_with_tweak`/`aggregate_with_tweak` are never called).
//! * an imported key ([`crate::import`]) is split as is, without a tweak and without changing
//!   its parity, so the stored key is d·G and the npub is the nsec's own x-only key; recovery
//!   returns the original nsec bytes.
//!
//! Either stored key may have an odd y. The FROST `-tr` suite negates shares and nonces where
//! BIP340 needs it while signing, and ECDH only uses x coordinates (x(−P) = x(P)), so the
//! parity never needs handling outside the FROST crate. [`KeyOrigin`] records which case a key
//! is, for display and recovery.

use std::fmt;

use frost_secp256k1_tr::keys::{KeyPackage, PublicKeyPackage as FrostPublicKeyPackage};
use frost_secp256k1_tr::keys::{SigningShare, VerifyingShare};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::codec::{self, Reader};
use crate::limits::{MAX_SHARES, MIN_THRESHOLD};
use crate::{Error, ParticipantId, Result};

/// How a key came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyOrigin {
    /// Distributed key generation: the stored group key carries the BIP341 TapTweak.
    Dkg,
    /// An existing nsec split by a dealer: the stored group key is the nsec's public key.
    Imported,
}

impl KeyOrigin {
    fn code(self) -> u8 {
        match self {
            Self::Dkg => 1,
            Self::Imported => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Dkg),
            2 => Some(Self::Imported),
            _ => None,
        }
    }
}

/// The public identity of a threshold key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupKey {
    verifying_key: [u8; 33],
    threshold: u16,
    shares: u16,
    origin: KeyOrigin,
}

impl GroupKey {
    /// The user's Nostr public key: the 32-byte x-only group key (x(Q) for a DKG key, the
    /// nsec's x-only key for an imported one). BIP340 signatures of the group verify under it.
    pub fn npub(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.verifying_key[1..]);
        out
    }

    /// The group verifying key as the FROST crate stores it: 33-byte SEC1 compressed, whose
    /// y may be odd (`03` prefix).
    pub fn verifying_key(&self) -> [u8; 33] {
        self.verifying_key
    }

    /// The threshold t: how many shares sign or compute ECDH.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// The number of shares n.
    pub fn shares(&self) -> u16 {
        self.shares
    }

    /// DKG (tweaked) or imported (untweaked).
    pub fn origin(&self) -> KeyOrigin {
        self.origin
    }
}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupKey")
            .field("npub", &codec::hex(&self.npub()))
            .field("threshold", &self.threshold)
            .field("shares", &self.shares)
            .field("origin", &self.origin)
            .finish()
    }
}

const PKP_MAGIC: &[u8; 4] = b"KLPK";
const SHARE_MAGIC: &[u8; 4] = b"KLNS";
const FORMAT_VERSION: u8 = 1;

/// The public side of a key that coordinators and nodes share: the group verifying key, each
/// participant's verifying share, the threshold and the key's origin.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKeyPackage {
    inner: FrostPublicKeyPackage,
    origin: KeyOrigin,
    ids: Vec<ParticipantId>,
    threshold: u16,
}

impl PublicKeyPackage {
    pub(crate) fn from_frost(inner: FrostPublicKeyPackage, origin: KeyOrigin) -> Result<Self> {
        let threshold = inner.min_signers().ok_or(Error::Malformed {
            what: "public key package (no threshold)",
        })?;
        let ids: Vec<ParticipantId> = inner
            .verifying_shares()
            .keys()
            .map(ParticipantId::from_frost)
            .collect::<Option<_>>()
            .ok_or(Error::Malformed {
                what: "public key package (identifier out of range)",
            })?;
        let n = ids.len();
        if threshold < MIN_THRESHOLD || usize::from(threshold) > n || n > usize::from(MAX_SHARES) {
            return Err(Error::Malformed {
                what: "public key package (threshold or share count out of range)",
            });
        }
        inner
            .verifying_key()
            .serialize()
            .map_err(|_| Error::Malformed {
                what: "public key package (group key)",
            })?;
        Ok(Self {
            inner,
            origin,
            ids,
            threshold,
        })
    }

    pub(crate) fn frost(&self) -> &FrostPublicKeyPackage {
        &self.inner
    }

    /// The key's public identity.
    pub fn group_key(&self) -> GroupKey {
        let mut verifying_key = [0u8; 33];
        if let Ok(bytes) = self.inner.verifying_key().serialize() {
            // Checked in `from_frost`: the group key always serializes to 33 bytes.
            verifying_key.copy_from_slice(&bytes);
        }
        GroupKey {
            verifying_key,
            threshold: self.threshold,
            shares: self.ids.len() as u16,
            origin: self.origin,
        }
    }

    /// The user's x-only Nostr public key (see [`GroupKey::npub`]).
    pub fn npub(&self) -> [u8; 32] {
        self.group_key().npub()
    }

    /// The threshold t.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// The share holders, ascending.
    pub fn participants(&self) -> &[ParticipantId] {
        &self.ids
    }

    /// True when `id` holds a share of this key.
    pub fn contains(&self, id: ParticipantId) -> bool {
        self.ids.binary_search(&id).is_ok()
    }

    /// Participant `id`'s verifying share Y_i = s_i·G (33-byte SEC1), as stored.
    pub fn verifying_share(&self, id: ParticipantId) -> Option<[u8; 33]> {
        let share = self.inner.verifying_shares().get(&id.to_frost())?;
        let bytes = share.serialize().ok()?;
        <[u8; 33]>::try_from(bytes.as_slice()).ok()
    }

    /// DKG (tweaked) or imported (untweaked).
    pub fn origin(&self) -> KeyOrigin {
        self.origin
    }

    /// keyline's encoding: `"KLPK" ‖ version 1 ‖ origin ‖` the FROST crate's serialization
    /// (which carries its own format version and ciphersuite id).
    pub fn serialize(&self) -> Result<Vec<u8>> {
        let frost = self.inner.serialize().map_err(Error::from_frost)?;
        let mut out = Vec::with_capacity(6 + frost.len());
        out.extend_from_slice(PKP_MAGIC);
        out.push(FORMAT_VERSION);
        out.push(self.origin.code());
        out.extend_from_slice(&frost);
        Ok(out)
    }

    /// Decodes [`PublicKeyPackage::serialize`]'s output; anything else is refused.
    pub fn deserialize(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "public key package";
        let mut r = Reader::new(WHAT, bytes)?;
        r.expect(PKP_MAGIC)?;
        r.expect(&[FORMAT_VERSION])?;
        let origin = KeyOrigin::from_code(r.u8()?).ok_or(Error::Malformed { what: WHAT })?;
        let inner =
            codec::decode_canonical(WHAT, r.rest(), FrostPublicKeyPackage::deserialize, |p| {
                p.serialize().ok().map(Zeroizing::new)
            })?;
        Self::from_frost(inner, origin)
    }

    /// SHA-256 of [`PublicKeyPackage::serialize`]: what ceremony participants compare and sign
    /// (key confirmation, spec §8.7).
    pub fn fingerprint(&self) -> Result<[u8; 32]> {
        Ok(Sha256::digest(self.serialize()?).into())
    }
}

impl fmt::Debug for PublicKeyPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKeyPackage")
            .field("group_key", &self.group_key())
            .field("participants", &self.ids)
            .finish()
    }
}

/// One node's share of a key: its secret signing share and the key's public key package.
///
/// The secret is zeroized on drop, never printed by `Debug`, and only leaves the type through
/// [`NodeShare::serialize`] (for sealed storage, spec §10), which returns a zeroizing buffer.
/// Deliberately not `Clone`.
pub struct NodeShare {
    key: KeyPackage,
    public: PublicKeyPackage,
    id: ParticipantId,
}

impl NodeShare {
    /// Pairs a FROST key package with its public key package, checking that they belong
    /// together: same group key and threshold, the identifier is a participant, and the secret
    /// share matches the verifying share the public package holds for it.
    pub(crate) fn from_parts(key: KeyPackage, public: PublicKeyPackage) -> Result<Self> {
        let id = ParticipantId::from_frost(key.identifier()).ok_or(Error::Malformed {
            what: "key package (identifier out of range)",
        })?;
        let expected = public
            .frost()
            .verifying_shares()
            .get(key.identifier())
            .ok_or(Error::UnknownParticipant { id })?;
        if key.verifying_key() != public.frost().verifying_key() {
            return Err(Error::Mismatch {
                reason: "the share belongs to another group key",
            });
        }
        if *key.min_signers() != public.threshold() {
            return Err(Error::Mismatch {
                reason: "the share's threshold differs from the key's",
            });
        }
        let derived = VerifyingShare::from(*key.signing_share());
        if derived != *key.verifying_share() || derived != *expected {
            return Err(Error::Mismatch {
                reason: "the secret share does not match the participant's verifying share",
            });
        }
        Ok(Self { key, public, id })
    }

    pub(crate) fn key_package(&self) -> &KeyPackage {
        &self.key
    }

    pub(crate) fn signing_share(&self) -> &SigningShare {
        self.key.signing_share()
    }

    /// The secret share s_i as 32 big-endian bytes, in a zeroizing buffer.
    pub(crate) fn signing_share_bytes(&self) -> Result<Zeroizing<[u8; 32]>> {
        let encoded = Zeroizing::new(self.key.signing_share().serialize());
        if encoded.len() != 32 {
            return Err(Error::Internal {
                reason: "a signing share is not 32 bytes",
            });
        }
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&encoded);
        Ok(out)
    }

    /// This node's identifier.
    pub fn id(&self) -> ParticipantId {
        self.id
    }

    /// The key's public identity.
    pub fn group_key(&self) -> GroupKey {
        self.public.group_key()
    }

    /// The key's public key package.
    pub fn public(&self) -> &PublicKeyPackage {
        &self.public
    }

    /// keyline's encoding for sealed storage: `"KLNS" ‖ version 1 ‖ u16 len ‖` the FROST
    /// `KeyPackage` `‖` [`PublicKeyPackage::serialize`]. Contains the secret share: seal it
    /// before it touches a disk.
    pub fn serialize(&self) -> Result<Zeroizing<Vec<u8>>> {
        let key = Zeroizing::new(self.key.serialize().map_err(Error::from_frost)?);
        let public = self.public.serialize()?;
        let mut out = Zeroizing::new(Vec::with_capacity(7 + key.len() + public.len()));
        out.extend_from_slice(SHARE_MAGIC);
        out.push(FORMAT_VERSION);
        codec::put_field(&mut out, &key)?;
        out.extend_from_slice(&public);
        Ok(out)
    }

    /// Decodes [`NodeShare::serialize`]'s output and re-checks that the parts belong together.
    pub fn deserialize(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "node share";
        let mut r = Reader::new(WHAT, bytes)?;
        r.expect(SHARE_MAGIC)?;
        r.expect(&[FORMAT_VERSION])?;
        let key = codec::decode_canonical(WHAT, r.field()?, KeyPackage::deserialize, |k| {
            k.serialize().ok().map(Zeroizing::new)
        })?;
        let public = PublicKeyPackage::deserialize(r.rest())?;
        Self::from_parts(key, public)
    }
}

impl fmt::Debug for NodeShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeShare")
            .field("id", &self.id)
            .field("group_key", &self.group_key())
            .finish_non_exhaustive()
    }
}
