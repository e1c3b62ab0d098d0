//! Import of an existing Nostr key (spec §8.8): the one moment a whole key exists.
//!
//! The importing process acts as a trusted dealer: [`split`] Shamir-shares the nsec with a
//! random degree t−1 polynomial (verifiable: each share comes with the commitment to the
//! polynomial) and **wipes the caller's nsec buffer**, whatever the outcome. Each node
//! checks its [`DealtShare`] against the commitment and the public key package with
//! [`accept`].
//!
//! # The npub does not change
//!
//! The key is split exactly as given: no BIP341 tweak (the FROST crate tweaks DKG output
//! only) and no parity normalisation. The group key is therefore d·G, whose y may be odd,
//! and the npub is x(d·G), the nsec's own x-only key; the `-tr` signing code negates shares
//! where BIP340 needs an even-y key, and ECDH only uses x coordinates. Negating d before
//! splitting would also keep the npub, but recovery would then return −d instead of the
//! user's nsec. [`split`] checks the result against an independent k256 computation of the
//! x-only key.
//!
//! Document to operators that the machine running the import saw the key.

use std::fmt;

use frost_secp256k1_tr as frost;
use frost_secp256k1_tr::keys::{IdentifierList, KeyPackage, SecretShare};
use zeroize::{Zeroize, Zeroizing};

use crate::dkg::check_threshold;
use crate::{
    Error, KeyOrigin, NodeShare, ParticipantId, PublicKeyPackage, Result, SignerRng, codec,
};

/// One node's share as dealt by [`split`]: its secret share and the commitment to the
/// dealer's polynomial. **Secret**: send it sealed to that node only. Zeroized on drop.
pub struct DealtShare {
    inner: SecretShare,
    id: ParticipantId,
}

impl DealtShare {
    /// The node this share is for.
    pub fn id(&self) -> ParticipantId {
        self.id
    }

    /// The FROST crate's encoding (contains the secret share; seal it).
    pub fn serialize(&self) -> Result<Zeroizing<Vec<u8>>> {
        self.inner
            .serialize()
            .map(Zeroizing::new)
            .map_err(Error::from_frost)
    }

    /// Decodes [`DealtShare::serialize`]'s output.
    pub fn deserialize(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "dealt share";
        let inner = codec::decode_canonical(WHAT, bytes, SecretShare::deserialize, |s| {
            s.serialize().ok().map(Zeroizing::new)
        })?;
        let id = ParticipantId::from_frost(inner.identifier()).ok_or(Error::Malformed {
            what: "dealt share (identifier out of range)",
        })?;
        Ok(Self { inner, id })
    }
}

impl fmt::Debug for DealtShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DealtShare")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Splits the 32-byte secret key `secret` into `shares` shares with threshold `threshold`
/// (identifiers `1..=shares`) and **zeroizes `secret`** before returning, on success and on
/// error alike.
///
/// Returns the public key package (origin [`KeyOrigin::Imported`], npub = the key's own x-only
/// public key) and the dealt shares in identifier order. Fails with
/// [`Error::InvalidSecretKey`] for zero or a value not below the group order.
pub fn split(
    secret: &mut [u8; 32],
    threshold: u16,
    shares: u16,
    rng: &mut impl SignerRng,
) -> Result<(PublicKeyPackage, Vec<DealtShare>)> {
    let result = split_inner(secret, threshold, shares, rng);
    secret.zeroize();
    result
}

fn split_inner(
    secret: &[u8; 32],
    threshold: u16,
    shares: u16,
    rng: &mut impl SignerRng,
) -> Result<(PublicKeyPackage, Vec<DealtShare>)> {
    check_threshold(threshold, shares)?;
    // Zeroized on drop by the FROST crate; rejects 0 and values ≥ n.
    let key =
        frost::SigningKey::deserialize(secret.as_slice()).map_err(|_| Error::InvalidSecretKey)?;
    // The x-only key of the nsec, computed independently with k256 0.14 (zeroized on drop).
    let expected_npub: [u8; 32] = k256::schnorr::SigningKey::from_slice(secret.as_slice())
        .map_err(|_| Error::InvalidSecretKey)?
        .verifying_key()
        .to_bytes()
        .into();

    let (dealt, public) = frost::keys::split(&key, shares, threshold, IdentifierList::Default, rng)
        .map_err(Error::from_frost)?;
    drop(key);
    let public = PublicKeyPackage::from_frost(public, KeyOrigin::Imported)?;
    if public.npub() != expected_npub {
        return Err(Error::Internal {
            reason: "the split key's npub differs from the nsec's x-only key",
        });
    }
    let mut out = Vec::with_capacity(dealt.len());
    for (id, inner) in dealt {
        let id = ParticipantId::from_frost(&id).ok_or(Error::Internal {
            reason: "dealt identifier outside keyline's range",
        })?;
        out.push(DealtShare { inner, id });
    }
    out.sort_by_key(|s| s.id);
    Ok((public, out))
}

/// A node's check of its dealt share: the share must match the dealer's commitment
/// (`KeyPackage::try_from`, a mismatch is [`Error::InvalidSecretShare`] without a participant
/// culprit: the dealer sent it), and the commitment must be the one behind `public` (same group
/// key, threshold and verifying share). Returns the node's [`NodeShare`].
pub fn accept(share: DealtShare, public: &PublicKeyPackage) -> Result<NodeShare> {
    if public.origin() != KeyOrigin::Imported {
        return Err(Error::Mismatch {
            reason: "a dealt share needs the public key package of an imported key",
        });
    }
    if !public.contains(share.id) {
        return Err(Error::UnknownParticipant { id: share.id });
    }
    let key = KeyPackage::try_from(share.inner).map_err(Error::from_frost)?;
    NodeShare::from_parts(key, public.clone())
}
