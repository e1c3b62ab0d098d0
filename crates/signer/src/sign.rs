//! Two-round FROST signing (spec §6.1, §8.4, §8.5).
//!
//! Node side: [`commit`] (round 1) returns [`SigningNonces`], which stay in the node's memory,
//! and [`SigningCommitments`] for the coordinator; [`sign`] (round 2) **consumes** the nonces
//! and returns a [`SignatureShare`].
//!
//! Coordinator side: [`SigningPackage::new`] from at least t commitments and the message,
//! [`aggregate`] into a 64-byte BIP340 signature that the FROST crate verifies before it is
//! returned (debug builds verify it again under the npub). Only when that verification fails
//! are the shares checked one by one ([`verify_share`] does the same for a single share): the
//! error is [`Error::InvalidSignatureShare`] naming **every** participant whose share failed.
//!
//! # Nonces are used once, by construction
//!
//! [`SigningNonces`] is neither `Clone` nor serialisable, and [`sign`] takes it by value, so a
//! nonce pair cannot sign twice, be copied, or be written anywhere; it is zeroized when dropped
//! (after signing, or when a session is abandoned).
//!
//! ```
//! # use keyline_signer::{sign, NodeShare};
//! # fn f(share: &NodeShare, package: &sign::SigningPackage) {
//! let (nonces, _commitments) = sign::commit(share, &mut keyline_signer::OsRng);
//! let _share = sign::sign(share, nonces, package);
//! # }
//! ```
//!
//! ```compile_fail
//! # use keyline_signer::{sign, NodeShare};
//! # fn f(share: &NodeShare, package: &sign::SigningPackage) {
//! let (nonces, _commitments) = sign::commit(share, &mut keyline_signer::OsRng);
//! let _first = sign::sign(share, nonces, package);
//! let _second = sign::sign(share, nonces, package); // error: use of moved value
//! # }
//! ```
//!
//! ```compile_fail
//! # use keyline_signer::{sign, NodeShare};
//! # fn f(share: &NodeShare) {
//! let (nonces, _commitments) = sign::commit(share, &mut keyline_signer::OsRng);
//! let _copy = nonces.clone(); // error: SigningNonces is not Clone
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;

use frost_secp256k1_tr as frost;
use zeroize::Zeroizing;

use crate::codec;
use crate::limits::MAX_MESSAGE_LEN;
use crate::{Error, NodeShare, ParticipantId, PublicKeyPackage, Result, SignerRng};

/// A node's secret nonce pair for one signing session.
///
/// Not `Clone`, not serialisable; consumed by [`sign`]; zeroized on drop.
pub struct SigningNonces {
    inner: frost::round1::SigningNonces,
    id: ParticipantId,
    group_key: [u8; 33],
}

impl SigningNonces {
    /// The node these nonces belong to.
    pub fn id(&self) -> ParticipantId {
        self.id
    }

    /// The public commitments to these nonces.
    pub fn commitments(&self) -> SigningCommitments {
        SigningCommitments {
            inner: *self.inner.commitments(),
        }
    }
}

impl fmt::Debug for SigningNonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningNonces")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A node's round-1 commitments (D_i, E_i): public, sent to the coordinator.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SigningCommitments {
    inner: frost::round1::SigningCommitments,
}

fn point33(bytes: &[u8]) -> [u8; 33] {
    let mut out = [0u8; 33];
    if bytes.len() == 33 {
        out.copy_from_slice(bytes);
    }
    out
}

impl SigningCommitments {
    /// The hiding nonce commitment D_i (33-byte SEC1).
    pub fn hiding(&self) -> [u8; 33] {
        point33(&self.inner.hiding().serialize().unwrap_or_default())
    }

    /// The binding nonce commitment E_i (33-byte SEC1).
    pub fn binding(&self) -> [u8; 33] {
        point33(&self.inner.binding().serialize().unwrap_or_default())
    }

    /// The FROST crate's encoding (71 bytes).
    pub fn serialize(&self) -> Result<Vec<u8>> {
        self.inner.serialize().map_err(Error::from_frost)
    }

    /// Decodes [`SigningCommitments::serialize`]'s output (points must be on the curve and
    /// not the identity; the encoding must be canonical).
    pub fn deserialize(bytes: &[u8]) -> Result<Self> {
        let inner = codec::decode_canonical(
            "signing commitments",
            bytes,
            frost::round1::SigningCommitments::deserialize,
            |c| c.serialize().ok().map(Zeroizing::new),
        )?;
        Ok(Self { inner })
    }
}

impl fmt::Debug for SigningCommitments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningCommitments")
            .field("hiding", &codec::hex(&self.hiding()))
            .field("binding", &codec::hex(&self.binding()))
            .finish()
    }
}

/// What the coordinator sends every chosen signer in round 2: the message and the
/// commitments of all chosen signers.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningPackage {
    inner: frost::SigningPackage,
    signers: Vec<ParticipantId>,
}

impl SigningPackage {
    /// Builds the package from the commitments of the chosen signers (at least t, all share
    /// holders of `public`) and the message (at most [`MAX_MESSAGE_LEN`] bytes; for Nostr the
    /// 32-byte event id).
    pub fn new(
        public: &PublicKeyPackage,
        commitments: BTreeMap<ParticipantId, SigningCommitments>,
        message: &[u8],
    ) -> Result<Self> {
        check_message(message)?;
        let need = usize::from(public.threshold());
        if commitments.len() < need {
            return Err(Error::NotEnoughSigners {
                have: commitments.len(),
                need,
            });
        }
        if let Some(id) = commitments.keys().find(|id| !public.contains(**id)) {
            return Err(Error::UnknownParticipant { id: *id });
        }
        let signers = commitments.keys().copied().collect();
        let frost_commitments = commitments
            .into_iter()
            .map(|(id, c)| (id.to_frost(), c.inner))
            .collect();
        Ok(Self {
            inner: frost::SigningPackage::new(frost_commitments, message),
            signers,
        })
    }

    fn from_frost(inner: frost::SigningPackage) -> Result<Self> {
        const WHAT: &str = "signing package";
        check_message(inner.message())?;
        let signers = inner
            .signing_commitments()
            .keys()
            .map(ParticipantId::from_frost)
            .collect::<Option<Vec<_>>>()
            .ok_or(Error::Malformed { what: WHAT })?;
        Ok(Self { inner, signers })
    }

    /// The message being signed.
    pub fn message(&self) -> &[u8] {
        self.inner.message()
    }

    /// The chosen signers, ascending.
    pub fn signers(&self) -> &[ParticipantId] {
        &self.signers
    }

    /// The commitments of signer `id`, if it is one.
    pub fn commitments(&self, id: ParticipantId) -> Option<SigningCommitments> {
        self.inner
            .signing_commitment(&id.to_frost())
            .map(|inner| SigningCommitments { inner })
    }

    /// The FROST crate's encoding.
    pub fn serialize(&self) -> Result<Vec<u8>> {
        self.inner.serialize().map_err(Error::from_frost)
    }

    /// Decodes [`SigningPackage::serialize`]'s output. Whether the package fits a key is
    /// checked by [`sign`] and [`aggregate`].
    pub fn deserialize(bytes: &[u8]) -> Result<Self> {
        let inner = codec::decode_canonical(
            "signing package",
            bytes,
            frost::SigningPackage::deserialize,
            |p| p.serialize().ok().map(Zeroizing::new),
        )?;
        Self::from_frost(inner)
    }
}

impl fmt::Debug for SigningPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningPackage")
            .field("signers", &self.signers)
            .field("message", &codec::hex(self.message()))
            .finish()
    }
}

/// A signer's round-2 share z_i (32 bytes): public once sent, useless alone.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SignatureShare {
    inner: frost::round2::SignatureShare,
}

impl SignatureShare {
    /// The 32-byte big-endian scalar.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        let bytes = self.inner.serialize();
        if bytes.len() == 32 {
            out.copy_from_slice(&bytes);
        }
        out
    }

    /// Parses a 32-byte scalar (must be below the group order).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        let inner =
            frost::round2::SignatureShare::deserialize(bytes).map_err(|_| Error::Malformed {
                what: "signature share",
            })?;
        Ok(Self { inner })
    }
}

impl fmt::Debug for SignatureShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SignatureShare")
            .field(&codec::hex(&self.to_bytes()))
            .finish()
    }
}

fn check_message(message: &[u8]) -> Result<()> {
    if message.len() > MAX_MESSAGE_LEN {
        return Err(Error::MessageTooLong {
            len: message.len(),
            max: MAX_MESSAGE_LEN,
        });
    }
    Ok(())
}

/// Round 1 on a node: fresh nonces (hedged: each is H3 of 32 random bytes and the secret
/// share) and their commitments. Keep the nonces in memory only, for one session.
pub fn commit(share: &NodeShare, rng: &mut impl SignerRng) -> (SigningNonces, SigningCommitments) {
    let (inner, commitments) = frost::round1::commit(share.signing_share(), rng);
    (
        SigningNonces {
            inner,
            id: share.id(),
            group_key: share.group_key().verifying_key(),
        },
        SigningCommitments { inner: commitments },
    )
}

/// Round 2 on a node: checks the package and signs it with `nonces`, which are consumed and
/// zeroized whatever the outcome.
///
/// Refuses ([`Error::PackageRejected`]) nonces of another share, and a package that lacks this
/// node's commitment or carries a different one; refuses packages with fewer than t signers,
/// signers that are not share holders, or an oversized message. Whether the message is the one
/// the node agreed to sign is the caller's check (spec §8.4).
pub fn sign(
    share: &NodeShare,
    nonces: SigningNonces,
    package: &SigningPackage,
) -> Result<SignatureShare> {
    if nonces.id != share.id() || nonces.group_key != share.group_key().verifying_key() {
        return Err(Error::PackageRejected {
            reason: "the nonces belong to another share",
        });
    }
    check_message(package.message())?;
    match package.inner.signing_commitment(&share.id().to_frost()) {
        None => {
            return Err(Error::PackageRejected {
                reason: "the package lacks this node's commitment",
            });
        }
        Some(c) if c != *nonces.inner.commitments() => {
            return Err(Error::PackageRejected {
                reason: "the package alters this node's commitment",
            });
        }
        Some(_) => {}
    }
    check_signers(share.public(), package)?;
    let inner = frost::round2::sign(&package.inner, &nonces.inner, share.key_package())
        .map_err(Error::from_frost)?;
    drop(nonces);
    Ok(SignatureShare { inner })
}

fn check_signers(public: &PublicKeyPackage, package: &SigningPackage) -> Result<()> {
    let need = usize::from(public.threshold());
    if package.signers.len() < need {
        return Err(Error::NotEnoughSigners {
            have: package.signers.len(),
            need,
        });
    }
    if let Some(id) = package.signers.iter().find(|id| !public.contains(**id)) {
        return Err(Error::UnknownParticipant { id: *id });
    }
    Ok(())
}

/// Coordinator: checks one signature share as it arrives (z_i·G = D_i + ρ_i·E_i + c·λ_i·Y_i,
/// with the `-tr` parity adjustments); a failure names `id`.
pub fn verify_share(
    public: &PublicKeyPackage,
    package: &SigningPackage,
    id: ParticipantId,
    share: &SignatureShare,
) -> Result<()> {
    check_signers(public, package)?;
    if !package.signers.contains(&id) {
        return Err(Error::UnknownParticipant { id });
    }
    let verifying_share = public
        .frost()
        .verifying_shares()
        .get(&id.to_frost())
        .ok_or(Error::UnknownParticipant { id })?;
    frost_core::verify_signature_share(
        id.to_frost(),
        verifying_share,
        &share.inner,
        &package.inner,
        public.frost().verifying_key(),
    )
    .map_err(Error::from_frost)
}

/// Coordinator: aggregates the shares of every signer in `package` into a 64-byte BIP340
/// signature (`x(R) ‖ z`) and verifies it under the npub before returning it.
///
/// Fewer than t shares → [`Error::NotEnoughShares`]; a signer of the package without a share
/// → [`Error::MissingShare`] naming it; a share that does not verify →
/// [`Error::InvalidSignatureShare`] naming every culprit (all shares are checked once the
/// aggregate fails).
pub fn aggregate(
    public: &PublicKeyPackage,
    package: &SigningPackage,
    shares: &BTreeMap<ParticipantId, SignatureShare>,
) -> Result<[u8; 64]> {
    let need = usize::from(public.threshold());
    if shares.len() < need {
        return Err(Error::NotEnoughShares {
            have: shares.len(),
            need,
        });
    }
    check_signers(public, package)?;
    if let Some(id) = package.signers.iter().find(|id| !shares.contains_key(id)) {
        return Err(Error::MissingShare { id: *id });
    }
    if let Some(id) = shares.keys().find(|id| !package.signers.contains(id)) {
        return Err(Error::UnknownParticipant { id: *id });
    }
    let frost_shares = shares
        .iter()
        .map(|(id, s)| (id.to_frost(), s.inner))
        .collect();
    let signature = frost_core::aggregate_custom(
        &package.inner,
        &frost_shares,
        public.frost(),
        frost_core::CheaterDetection::AllCheaters,
    )
    .map_err(Error::from_frost)?;
    let bytes = signature.serialize().map_err(Error::from_frost)?;
    let signature: [u8; 64] = bytes.as_slice().try_into().map_err(|_| Error::Internal {
        reason: "the FROST -tr signature is not 64 bytes",
    })?;
    // The FROST crate verified the signature under the group verifying key before returning
    // it (spec §8.5); debug builds and tests check it again under the npub, through the
    // BIP340 verifier every other keyline component uses.
    #[cfg(debug_assertions)]
    crate::bip340::verify(&public.npub(), package.message(), &signature).map_err(|_| {
        Error::Internal {
            reason: "the aggregate signature does not verify under the npub",
        }
    })?;
    Ok(signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nonce type must stay neither `Clone` nor `Copy`: if either were implemented, the
    /// probe below would become ambiguous and fail to compile.
    #[test]
    fn nonces_are_not_clone() {
        trait AmbiguousIfClone<A> {
            fn probe() {}
        }
        impl<T: ?Sized> AmbiguousIfClone<()> for T {}
        #[allow(dead_code)]
        struct Invalid;
        impl<T: Clone> AmbiguousIfClone<Invalid> for T {}
        <SigningNonces as AmbiguousIfClone<_>>::probe();
    }
}
