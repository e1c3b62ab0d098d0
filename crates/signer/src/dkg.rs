//! Distributed key generation among n nodes with threshold t: all three parts of the
//! Pedersen DKG with proofs of knowledge (RFC 9591 appendix / the FROST crate's `keys::dkg`),
//! driven one participant at a time (spec §8.7).
//!
//! 1. [`part1`]: each node draws its polynomial and broadcasts a [`Round1Package`]
//!    (commitment + proof of knowledge). The packages must reach every node identically; the
//!    ceremony's echo round (spec §8.7 step 3) checks that, this engine does not.
//! 2. [`part2`]: each node checks everyone's proof of knowledge (a bad one names its sender)
//!    and produces one **secret** [`Round2Package`] per other node, to be sent sealed to that
//!    node only.
//! 3. [`part3`]: each node checks every received share against its sender's commitment (a bad
//!    one names its sender) and obtains its [`NodeShare`]. The FROST `-tr` suite applies the
//!    BIP341 TapTweak here, so the group key and npub are the tweaked Q (see [`crate::keys`]).
//!    Every node must end with the same [`PublicKeyPackage`]: compare
//!    [`PublicKeyPackage::fingerprint`]s before committing (key confirmation).
//!
//! Secret packages ([`Round1Secret`], [`Round2Secret`]) are neither `Clone` nor serialisable:
//! a node that restarts mid-ceremony has lost them by design. They zeroize on drop.
//!
//! [`crate::local::dkg`] runs all participants in one process.

use std::collections::BTreeMap;
use std::fmt;

use frost_secp256k1_tr as frost;
use frost_secp256k1_tr::keys::dkg as fdkg;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::codec;
use crate::limits::{MAX_SHARES, MIN_THRESHOLD};
use crate::{Error, KeyOrigin, NodeShare, ParticipantId, PublicKeyPackage, Result, SignerRng};

/// Which ceremony a secret package belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ceremony {
    Dkg,
    Refresh,
}

/// Checks a threshold and share count: `MIN_THRESHOLD ≤ t ≤ n ≤ MAX_SHARES`.
pub(crate) fn check_threshold(threshold: u16, shares: u16) -> Result<()> {
    if threshold < MIN_THRESHOLD {
        return Err(Error::params(format!(
            "threshold {threshold} is below the minimum of {MIN_THRESHOLD}"
        )));
    }
    if shares > MAX_SHARES {
        return Err(Error::params(format!(
            "{shares} shares; at most {MAX_SHARES} are supported"
        )));
    }
    if threshold > shares {
        return Err(Error::params(format!(
            "threshold {threshold} is larger than the {shares} shares"
        )));
    }
    Ok(())
}

/// A node's secret state between [`part1`] and [`part2`] (its polynomial). Not `Clone`, not
/// serialisable, zeroized on drop.
pub struct Round1Secret {
    pub(crate) inner: fdkg::round1::SecretPackage,
    pub(crate) id: ParticipantId,
    pub(crate) threshold: u16,
    pub(crate) participants: Vec<ParticipantId>,
    pub(crate) kind: Ceremony,
}

/// A node's secret state between [`part2`] and [`part3`]. Not `Clone`, not serialisable,
/// zeroized on drop.
pub struct Round2Secret {
    pub(crate) inner: fdkg::round2::SecretPackage,
    pub(crate) id: ParticipantId,
    pub(crate) threshold: u16,
    pub(crate) participants: Vec<ParticipantId>,
    pub(crate) kind: Ceremony,
}

impl fmt::Debug for Round1Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Round1Secret")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Round2Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Round2Secret")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A round-1 broadcast: the commitment to a node's polynomial and a proof of knowledge of
/// its constant term. Public; must reach every participant unchanged.
#[derive(Clone, PartialEq, Eq)]
pub struct Round1Package {
    pub(crate) inner: fdkg::round1::Package,
}

impl Round1Package {
    /// The coefficient commitments (33-byte SEC1 each), constant term first. A DKG package has
    /// t of them; a refresh package t − 1 (its constant term is the implicit zero).
    pub fn commitments(&self) -> Vec<[u8; 33]> {
        self.inner
            .commitment()
            .serialize()
            .unwrap_or_default()
            .iter()
            .filter_map(|c| <[u8; 33]>::try_from(c.as_slice()).ok())
            .collect()
    }

    pub(crate) fn commitment_len(&self) -> usize {
        self.inner
            .commitment()
            .serialize()
            .map_or(0, |coefficients| coefficients.len())
    }

    /// The FROST crate's encoding.
    pub fn serialize(&self) -> Result<Vec<u8>> {
        self.inner.serialize().map_err(Error::from_frost)
    }

    /// Decodes [`Round1Package::serialize`]'s output (canonical encoding, valid points).
    pub fn deserialize(bytes: &[u8]) -> Result<Self> {
        let inner = codec::decode_canonical(
            "round-1 package",
            bytes,
            fdkg::round1::Package::deserialize,
            |p| p.serialize().ok().map(Zeroizing::new),
        )?;
        Ok(Self { inner })
    }
}

impl fmt::Debug for Round1Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let commitments: Vec<String> = self.commitments().iter().map(|c| codec::hex(c)).collect();
        f.debug_struct("Round1Package")
            .field("commitments", &commitments)
            .finish_non_exhaustive()
    }
}

/// A round-2 package: the share f_j(i) that node j computed for node i. **Secret**: send it
/// sealed to i only. Zeroized on drop; `Debug` prints nothing of it.
pub struct Round2Package {
    pub(crate) inner: fdkg::round2::Package,
}

impl Round2Package {
    /// The FROST crate's encoding (contains the secret share; seal it).
    pub fn serialize(&self) -> Result<Zeroizing<Vec<u8>>> {
        self.inner
            .serialize()
            .map(Zeroizing::new)
            .map_err(Error::from_frost)
    }

    /// Decodes [`Round2Package::serialize`]'s output.
    pub fn deserialize(bytes: &[u8]) -> Result<Self> {
        let inner = codec::decode_canonical(
            "round-2 package",
            bytes,
            fdkg::round2::Package::deserialize,
            |p| p.serialize().ok().map(Zeroizing::new),
        )?;
        Ok(Self { inner })
    }
}

impl PartialEq for Round2Package {
    /// Constant-time comparison of the encodings.
    fn eq(&self, other: &Self) -> bool {
        match (self.serialize(), other.serialize()) {
            (Ok(a), Ok(b)) => a.len() == b.len() && bool::from(a.as_slice().ct_eq(b.as_slice())),
            _ => false,
        }
    }
}

impl Eq for Round2Package {}

impl fmt::Debug for Round2Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Round2Package(..)")
    }
}

/// Round 1: node `id` of a `threshold`-of-`shares` DKG (identifiers `1..=shares`) draws its
/// secret polynomial and returns its secret state and the package to broadcast.
pub fn part1(
    id: ParticipantId,
    threshold: u16,
    shares: u16,
    rng: &mut impl SignerRng,
) -> Result<(Round1Secret, Round1Package)> {
    check_threshold(threshold, shares)?;
    if id.get() > shares {
        return Err(Error::params(format!(
            "participant {id} is outside 1..={shares}"
        )));
    }
    let (inner, package) =
        fdkg::part1(id.to_frost(), shares, threshold, rng).map_err(Error::from_frost)?;
    Ok((
        Round1Secret {
            inner,
            id,
            threshold,
            participants: ParticipantId::range(shares)?,
            kind: Ceremony::Dkg,
        },
        Round1Package { inner: package },
    ))
}

/// Checks that `received` holds exactly one entry from every participant except `me`.
pub(crate) fn check_senders<T>(
    what: &str,
    me: ParticipantId,
    participants: &[ParticipantId],
    received: &BTreeMap<ParticipantId, T>,
) -> Result<()> {
    if let Some(id) = received.keys().find(|id| **id == me) {
        return Err(Error::params(format!(
            "{what} from participant {id}, which is this node"
        )));
    }
    if let Some(id) = received.keys().find(|id| !participants.contains(id)) {
        return Err(Error::UnknownParticipant { id: *id });
    }
    if let Some(id) = participants
        .iter()
        .find(|id| **id != me && !received.contains_key(id))
    {
        return Err(Error::params(format!(
            "{what} from participant {id} is missing"
        )));
    }
    Ok(())
}

/// Checks every round-1 package's commitment length, naming the sender of a wrong one.
pub(crate) fn check_commitment_lengths(
    received: &BTreeMap<ParticipantId, Round1Package>,
    expected: usize,
) -> Result<()> {
    for (id, package) in received {
        if package.commitment_len() != expected {
            return Err(Error::InvalidPackage {
                culprit: *id,
                reason: "the commitment has the wrong number of coefficients",
            });
        }
    }
    Ok(())
}

pub(crate) fn frost_round1_map(
    received: &BTreeMap<ParticipantId, Round1Package>,
) -> BTreeMap<frost::Identifier, fdkg::round1::Package> {
    received
        .iter()
        .map(|(id, p)| (id.to_frost(), p.inner.clone()))
        .collect()
}

pub(crate) fn frost_round2_map(
    received: &BTreeMap<ParticipantId, Round2Package>,
) -> BTreeMap<frost::Identifier, fdkg::round2::Package> {
    received
        .iter()
        .map(|(id, p)| (id.to_frost(), p.inner.clone()))
        .collect()
}

pub(crate) fn from_frost_round2_map(
    packages: BTreeMap<frost::Identifier, fdkg::round2::Package>,
) -> Result<BTreeMap<ParticipantId, Round2Package>> {
    packages
        .into_iter()
        .map(|(id, inner)| {
            ParticipantId::from_frost(&id)
                .map(|id| (id, Round2Package { inner }))
                .ok_or(Error::Internal {
                    reason: "round-2 recipient outside keyline's range",
                })
        })
        .collect()
}

/// Round 2: with the round-1 packages of every other participant, checks their proofs of
/// knowledge and returns this node's secret state and one secret package per other
/// participant (keyed by recipient).
pub fn part2(
    secret: Round1Secret,
    received: &BTreeMap<ParticipantId, Round1Package>,
) -> Result<(Round2Secret, BTreeMap<ParticipantId, Round2Package>)> {
    if secret.kind != Ceremony::Dkg {
        return Err(Error::Mismatch {
            reason: "a refresh secret was given to the DKG",
        });
    }
    check_senders("round-1 package", secret.id, &secret.participants, received)?;
    check_commitment_lengths(received, usize::from(secret.threshold))?;
    let Round1Secret {
        inner,
        id,
        threshold,
        participants,
        kind,
    } = secret;
    let (inner, packages) =
        fdkg::part2(inner, &frost_round1_map(received)).map_err(Error::from_frost)?;
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

/// Round 3: with the same round-1 packages and the round-2 packages addressed to this node,
/// checks every share against its sender's commitment and returns this node's share of the
/// (tweaked) group key.
pub fn part3(
    secret: Round2Secret,
    round1: &BTreeMap<ParticipantId, Round1Package>,
    round2: &BTreeMap<ParticipantId, Round2Package>,
) -> Result<NodeShare> {
    if secret.kind != Ceremony::Dkg {
        return Err(Error::Mismatch {
            reason: "a refresh secret was given to the DKG",
        });
    }
    check_senders("round-1 package", secret.id, &secret.participants, round1)?;
    check_senders("round-2 package", secret.id, &secret.participants, round2)?;
    check_commitment_lengths(round1, usize::from(secret.threshold))?;
    let (key, public) = fdkg::part3(
        &secret.inner,
        &frost_round1_map(round1),
        &frost_round2_map(round2),
    )
    .map_err(Error::from_frost)?;
    let public = PublicKeyPackage::from_frost(public, KeyOrigin::Dkg)?;
    NodeShare::from_parts(key, public)
}
