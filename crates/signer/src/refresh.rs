//! Share refresh, DKG style (spec §6.3, §8.7): the participants run a DKG of a sharing of
//! **zero** and add it to their shares. The group key, npub and threshold stay the same; every
//! share changes, so old shares stop combining with new ones (a leaked old share becomes
//! useless once the old shares are deleted). No party ever sees the zero-sharing.
//!
//! The rounds mirror [`crate::dkg`] and use its package types; a refresh round-1 package
//! commits to t − 1 coefficients (the constant term is the implicit zero, so a participant
//! cannot move the group key). Refreshing with a subset of the current participants removes
//! the others from the key.
//!
//! Differences from the FROST crate, which keyline closes here:
//! * the crate does not check the refresh round-1 proofs of knowledge (they do not protect
//!   anything: the constant term is fixed to zero); keyline checks each commitment's length
//!   and names a sender whose package is malformed;
//! * the crate reports a bad refresh share without its sender; [`part3`] first checks every
//!   received share against its sender's commitment and names the culprit.
//!
//! The tweak is not re-applied (correct: the shares already carry it).

use std::collections::BTreeMap;

use frost_secp256k1_tr::keys::dkg as fdkg;
use frost_secp256k1_tr::keys::refresh as frefresh;
use k256::ProjectivePoint;
use zeroize::{Zeroize, Zeroizing};

use crate::dkg::{
    Ceremony, Round1Package, Round1Secret, Round2Package, Round2Secret, check_commitment_lengths,
    check_senders, from_frost_round2_map, frost_round1_map, frost_round2_map,
};
use crate::{Error, NodeShare, ParticipantId, PublicKeyPackage, Result, SignerRng, point};

/// Round 1: node `share.id()` starts a refresh among `participants` (ascending or not; at least
/// t current share holders including this node; every participant must pass the same list).
pub fn part1(
    share: &NodeShare,
    participants: &[ParticipantId],
    rng: &mut impl SignerRng,
) -> Result<(Round1Secret, Round1Package)> {
    let public = share.public();
    let mut list: Vec<ParticipantId> = participants.to_vec();
    list.sort();
    list.dedup();
    if list.len() != participants.len() {
        return Err(Error::params("the refresh participant list has duplicates"));
    }
    if let Some(id) = list.iter().find(|id| !public.contains(**id)) {
        return Err(Error::UnknownParticipant { id: *id });
    }
    if !list.contains(&share.id()) {
        return Err(Error::params(format!(
            "participant {} refreshes but is not in the participant list",
            share.id()
        )));
    }
    let threshold = public.threshold();
    if list.len() < usize::from(threshold) {
        return Err(Error::params(format!(
            "a refresh needs at least the threshold of {threshold} participants, {} given",
            list.len()
        )));
    }
    let max = list.len() as u16;
    let (inner, package) = frefresh::refresh_dkg_part1(share.id().to_frost(), max, threshold, rng)
        .map_err(Error::from_frost)?;
    Ok((
        Round1Secret {
            inner,
            id: share.id(),
            threshold,
            participants: list,
            kind: Ceremony::Refresh,
        },
        Round1Package { inner: package },
    ))
}

/// Round 2: with the refresh round-1 packages of every other participant, returns this node's
/// secret state and one secret package per other participant (keyed by recipient).
pub fn part2(
    secret: Round1Secret,
    received: &BTreeMap<ParticipantId, Round1Package>,
) -> Result<(Round2Secret, BTreeMap<ParticipantId, Round2Package>)> {
    if secret.kind != Ceremony::Refresh {
        return Err(Error::Mismatch {
            reason: "a DKG secret was given to the refresh",
        });
    }
    check_senders("round-1 package", secret.id, &secret.participants, received)?;
    check_commitment_lengths(received, usize::from(secret.threshold) - 1)?;
    let Round1Secret {
        inner,
        id,
        threshold,
        participants,
        kind,
    } = secret;
    let (inner, packages) = frefresh::refresh_dkg_part2(inner, &frost_round1_map(received))
        .map_err(Error::from_frost)?;
    Ok((
        Round2Secret {
            inner,
            id,
            threshold,
            participants,
            kind,
        },
        from_frost_round2_map(packages)?,
    ))
}

/// Round 3: checks every received zero-share against its sender's commitment (naming a bad
/// sender) and returns this node's refreshed share. `old` is this node's current share; the
/// new share has the same group key, threshold and origin, and a public key package with the
/// new verifying shares of exactly the refresh participants.
pub fn part3(
    secret: Round2Secret,
    round1: &BTreeMap<ParticipantId, Round1Package>,
    round2: &BTreeMap<ParticipantId, Round2Package>,
    old: &NodeShare,
) -> Result<NodeShare> {
    if secret.kind != Ceremony::Refresh {
        return Err(Error::Mismatch {
            reason: "a DKG secret was given to the refresh",
        });
    }
    if secret.id != old.id() || secret.threshold != old.public().threshold() {
        return Err(Error::Mismatch {
            reason: "the refresh state belongs to another share",
        });
    }
    check_senders("round-1 package", secret.id, &secret.participants, round1)?;
    check_senders("round-2 package", secret.id, &secret.participants, round2)?;
    check_commitment_lengths(round1, usize::from(secret.threshold) - 1)?;
    for (sender, package) in round2 {
        let commitment = round1.get(sender).ok_or(Error::Internal {
            reason: "senders were checked",
        })?;
        check_zero_share(secret.id, *sender, commitment, package)?;
    }
    let (key, public) = frefresh::refresh_dkg_shares(
        &secret.inner,
        &frost_round1_map(round1),
        &frost_round2_map(round2),
        old.public().frost().clone(),
        old.key_package().clone(),
    )
    .map_err(Error::from_frost)?;
    let public = PublicKeyPackage::from_frost(public, old.public().origin())?;
    if public.group_key().verifying_key() != old.group_key().verifying_key() {
        return Err(Error::Internal {
            reason: "refresh changed the group key",
        });
    }
    NodeShare::from_parts(key, public)
}

/// f_ℓ(i)·G = Σ_{k=1}^{t−1} i^k·C_ℓ,k for a zero-sharing polynomial (no constant term).
fn check_zero_share(
    me: ParticipantId,
    sender: ParticipantId,
    commitment: &Round1Package,
    package: &Round2Package,
) -> Result<()> {
    let culprit = || Error::InvalidSecretShare {
        culprit: Some(sender),
    };
    let share: &fdkg::round2::Package = &package.inner;
    let encoded = Zeroizing::new(share.signing_share().serialize());
    if encoded.len() != 32 {
        return Err(culprit());
    }
    let mut share_bytes = Zeroizing::new([0u8; 32]);
    share_bytes.copy_from_slice(&encoded);
    let mut s = point::scalar_from_bytes(&share_bytes).ok_or_else(culprit)?;
    let lhs = ProjectivePoint::GENERATOR * s;
    s.zeroize();
    let x = point::id_scalar(me);
    let mut power = x;
    let mut rhs = ProjectivePoint::IDENTITY;
    for c in commitment.commitments() {
        let c = point::from_sec1(&c).ok_or_else(culprit)?;
        rhs += c * power;
        power *= x;
    }
    if lhs != rhs {
        return Err(culprit());
    }
    Ok(())
}
