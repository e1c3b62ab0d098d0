//! Every party in one process: for tests, benchmarks (`keyline bench signer`) and tools.
//!
//! These helpers drive the same node and coordinator functions a distributed deployment uses,
//! passing packages in memory; they add no shortcuts (no dealer for DKG, no reconstructed key
//! for signing or ECDH). `keyline signer serve --local` does **not** use them: it runs the real
//! protocol over in-memory links (spec §8.1).

use std::collections::BTreeMap;

use crate::dkg::{Round1Package, Round2Package};
use crate::ecdh::{EcdhPartial, SessionId, SharedX};
use crate::{
    Error, NodeShare, ParticipantId, PublicKeyPackage, Result, SignerRng, dkg, ecdh, import,
    refresh, repair, sign,
};

/// Collects each node's public key package and checks that all are identical (key
/// confirmation).
fn agree(shares: &[NodeShare]) -> Result<PublicKeyPackage> {
    let first = shares.first().ok_or(Error::Internal {
        reason: "a ceremony without participants",
    })?;
    let public = first.public().clone();
    let fingerprint = public.fingerprint()?;
    for share in shares {
        if share.public().fingerprint()? != fingerprint {
            return Err(Error::PublicKeyMismatch);
        }
    }
    Ok(public)
}

/// Routes round-2 output (`sender → recipient → package`) into `recipient → sender → package`.
fn route(
    outgoing: BTreeMap<ParticipantId, BTreeMap<ParticipantId, Round2Package>>,
) -> BTreeMap<ParticipantId, BTreeMap<ParticipantId, Round2Package>> {
    let mut inbox: BTreeMap<ParticipantId, BTreeMap<ParticipantId, Round2Package>> =
        BTreeMap::new();
    for (from, packages) in outgoing {
        for (to, package) in packages {
            inbox.entry(to).or_default().insert(from, package);
        }
    }
    inbox
}

fn others(
    all: &BTreeMap<ParticipantId, Round1Package>,
    me: ParticipantId,
) -> BTreeMap<ParticipantId, Round1Package> {
    all.iter()
        .filter(|(id, _)| **id != me)
        .map(|(id, p)| (*id, p.clone()))
        .collect()
}

/// A full `threshold`-of-`shares` DKG; returns the agreed public key package and every node's
/// share in identifier order.
pub fn dkg(
    threshold: u16,
    shares: u16,
    rng: &mut impl SignerRng,
) -> Result<(PublicKeyPackage, Vec<NodeShare>)> {
    dkg::check_threshold(threshold, shares)?;
    let ids = ParticipantId::range(shares)?;
    let mut secrets1 = Vec::new();
    let mut round1 = BTreeMap::new();
    for &id in &ids {
        let (secret, package) = dkg::part1(id, threshold, shares, rng)?;
        secrets1.push(secret);
        round1.insert(id, package);
    }
    let mut secrets2 = Vec::new();
    let mut outgoing = BTreeMap::new();
    for secret in secrets1 {
        let id = secret.id;
        let (secret, packages) = dkg::part2(secret, &others(&round1, id))?;
        secrets2.push(secret);
        outgoing.insert(id, packages);
    }
    let mut inbox = route(outgoing);
    let mut out = Vec::new();
    for secret in secrets2 {
        let id = secret.id;
        let received = inbox.remove(&id).unwrap_or_default();
        out.push(dkg::part3(secret, &others(&round1, id), &received)?);
    }
    let public = agree(&out)?;
    Ok((public, out))
}

/// Imports `secret` as a `threshold`-of-`shares` key (the buffer is zeroized) and has every
/// node accept its dealt share.
pub fn import(
    secret: &mut [u8; 32],
    threshold: u16,
    shares: u16,
    rng: &mut impl SignerRng,
) -> Result<(PublicKeyPackage, Vec<NodeShare>)> {
    let (public, dealt) = import::split(secret, threshold, shares, rng)?;
    let out = dealt
        .into_iter()
        .map(|share| import::accept(share, &public))
        .collect::<Result<Vec<_>>>()?;
    Ok((public, out))
}

/// Refreshes the shares among the holders of `shares` (all of them participate; holders not
/// given are removed from the key). Returns the new public key package and new shares.
pub fn refresh(
    shares: &[&NodeShare],
    rng: &mut impl SignerRng,
) -> Result<(PublicKeyPackage, Vec<NodeShare>)> {
    let ids: Vec<ParticipantId> = shares.iter().map(|s| s.id()).collect();
    let mut secrets1 = Vec::new();
    let mut round1 = BTreeMap::new();
    for share in shares {
        let (secret, package) = refresh::part1(share, &ids, rng)?;
        secrets1.push(secret);
        round1.insert(share.id(), package);
    }
    let mut secrets2 = Vec::new();
    let mut outgoing = BTreeMap::new();
    for secret in secrets1 {
        let id = secret.id;
        let (secret, packages) = refresh::part2(secret, &others(&round1, id))?;
        secrets2.push(secret);
        outgoing.insert(id, packages);
    }
    let mut inbox = route(outgoing);
    let mut out = Vec::new();
    for (secret, old) in secrets2.into_iter().zip(shares) {
        let id = secret.id;
        let received = inbox.remove(&id).unwrap_or_default();
        out.push(refresh::part3(
            secret,
            &others(&round1, id),
            &received,
            old,
        )?);
    }
    let public = agree(&out)?;
    Ok((public, out))
}

/// Signs `message` with the given signers (at least t shares of the key of `public`): two
/// rounds and aggregation. Returns the 64-byte BIP340 signature, verified under the npub.
pub fn sign(
    public: &PublicKeyPackage,
    signers: &[&NodeShare],
    message: &[u8],
    rng: &mut impl SignerRng,
) -> Result<[u8; 64]> {
    let mut nonces = Vec::new();
    let mut commitments = BTreeMap::new();
    for share in signers {
        let (n, c) = sign::commit(share, rng);
        if commitments.insert(share.id(), c).is_some() {
            return Err(Error::DuplicateParticipant { id: share.id() });
        }
        nonces.push(n);
    }
    let package = sign::SigningPackage::new(public, commitments, message)?;
    let mut shares = BTreeMap::new();
    for (share, nonces) in signers.iter().zip(nonces) {
        shares.insert(share.id(), sign::sign(share, nonces, &package)?);
    }
    sign::aggregate(public, &package, &shares)
}

/// Threshold ECDH of the key of `public` with `peer` (x-only), using the given nodes (at least
/// t). Returns x(d·B).
pub fn ecdh(
    public: &PublicKeyPackage,
    nodes: &[&NodeShare],
    peer: &[u8; 32],
    rng: &mut impl SignerRng,
) -> Result<SharedX> {
    let mut session_id: SessionId = [0u8; 16];
    rng.fill_bytes(&mut session_id);
    let partials = nodes
        .iter()
        .map(|share| ecdh::partial(share, peer, &session_id, rng))
        .collect::<Result<Vec<EcdhPartial>>>()?;
    ecdh::combine(public, peer, &session_id, &partials)
}

/// Rebuilds participant `lost`'s share with the given helpers (at least t, not `lost`).
pub fn repair(
    helpers: &[&NodeShare],
    lost: ParticipantId,
    rng: &mut impl SignerRng,
) -> Result<NodeShare> {
    let first = helpers
        .first()
        .ok_or(Error::NotEnoughShares { have: 0, need: 1 })?;
    let public = first.public().clone();
    let ids: Vec<ParticipantId> = helpers.iter().map(|h| h.id()).collect();
    let mut inbox: BTreeMap<ParticipantId, Vec<repair::RepairDelta>> = BTreeMap::new();
    for helper in helpers {
        for (to, delta) in repair::part1(helper, &ids, lost, rng)? {
            inbox.entry(to).or_default().push(delta);
        }
    }
    let sigmas = inbox
        .values()
        .map(|deltas| repair::part2(deltas))
        .collect::<Result<Vec<_>>>()?;
    repair::part3(&sigmas, lost, &public)
}
