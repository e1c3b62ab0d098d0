//! Share refresh (same key, new shares, old and new do not mix), repair of a lost share, and
//! recovery of the whole secret.

mod common;

use std::collections::BTreeMap;

use common::{SeededRng, libsecp_verify, npub_of, random_secret, subsets};
use keyline_signer::dkg::{Round1Package, Round2Package};
use keyline_signer::repair::{self, RepairSigma};
use keyline_signer::sign::{self, SigningPackage};
use keyline_signer::{Error, NodeShare, ParticipantId, PublicKeyPackage, local, recover, refresh};

fn id(v: u16) -> ParticipantId {
    ParticipantId::new(v).unwrap()
}

fn all(nodes: &[NodeShare]) -> Vec<&NodeShare> {
    nodes.iter().collect()
}

fn every_t_subset_signs(public: &PublicKeyPackage, nodes: &[NodeShare], rng: &mut SeededRng) {
    let t = usize::from(public.threshold());
    let idx: Vec<usize> = (0..nodes.len()).collect();
    for subset in subsets(&idx, t) {
        let signers: Vec<&NodeShare> = subset.iter().map(|i| &nodes[*i]).collect();
        let sig = local::sign(public, &signers, b"after refresh", rng).unwrap();
        assert!(libsecp_verify(&public.npub(), b"after refresh", &sig));
    }
}

#[test]
fn refresh_keeps_the_key_and_the_new_shares_sign() {
    let mut rng = SeededRng::new(40);
    let (dkg_public, dkg_nodes) = local::dkg(2, 3, &mut rng).unwrap();
    let nsec = random_secret(&mut rng);
    let (imp_public, imp_nodes) = local::import(&mut nsec.clone(), 3, 5, &mut rng).unwrap();
    for (public, nodes) in [(dkg_public, dkg_nodes), (imp_public, imp_nodes)] {
        let (new_public, new_nodes) = local::refresh(&all(&nodes), &mut rng).unwrap();
        assert_eq!(
            new_public.group_key(),
            public.group_key(),
            "same npub, t, n, origin"
        );
        assert_ne!(
            new_public.fingerprint().unwrap(),
            public.fingerprint().unwrap()
        );
        for &p in public.participants() {
            assert_ne!(
                new_public.verifying_share(p),
                public.verifying_share(p),
                "{p}"
            );
        }
        every_t_subset_signs(&new_public, &new_nodes, &mut rng);
        // A second refresh works on refreshed shares.
        let (newer_public, newer_nodes) = local::refresh(&all(&new_nodes), &mut rng).unwrap();
        assert_eq!(newer_public.npub(), public.npub());
        every_t_subset_signs(&newer_public, &newer_nodes, &mut rng);
    }
    // The imported key still recovers to the original nsec after refreshes.
    let (public, nodes) = local::import(&mut nsec.clone(), 2, 3, &mut rng).unwrap();
    let (_, new_nodes) = local::refresh(&all(&nodes), &mut rng).unwrap();
    assert_eq!(
        *recover::reconstruct(&[&new_nodes[0], &new_nodes[2]]).unwrap(),
        nsec
    );
    assert_eq!(public.npub(), npub_of(&nsec));
}

#[test]
fn old_and_new_shares_do_not_mix() {
    let mut rng = SeededRng::new(41);
    let (old_public, old) = local::dkg(2, 3, &mut rng).unwrap();
    let (new_public, new) = local::refresh(&all(&old), &mut rng).unwrap();

    // Node 1 still holds (a leaked copy of) its old share; node 2 has its new share.
    let (n1, c1) = sign::commit(&old[0], &mut rng);
    let (n2, c2) = sign::commit(&new[1], &mut rng);
    let commitments = BTreeMap::from([(id(1), c1), (id(2), c2)]);
    let msg = [9u8; 32];
    let package = SigningPackage::new(&new_public, commitments, &msg).unwrap();
    let shares = BTreeMap::from([
        (id(1), sign::sign(&old[0], n1, &package).unwrap()),
        (id(2), sign::sign(&new[1], n2, &package).unwrap()),
    ]);
    // Under the new key package the old share's holder is named; under the old one, the new.
    let err = sign::aggregate(&new_public, &package, &shares).unwrap_err();
    assert_eq!(
        err,
        Error::InvalidSignatureShare {
            culprits: vec![id(1)]
        }
    );
    let err = sign::aggregate(&old_public, &package, &shares).unwrap_err();
    assert_eq!(
        err,
        Error::InvalidSignatureShare {
            culprits: vec![id(2)]
        }
    );

    // Recovery refuses shares of different versions.
    assert_eq!(
        recover::reconstruct(&[&old[0], &new[1]])
            .unwrap_err()
            .code(),
        "mismatch"
    );
}

#[test]
fn refreshing_a_subset_removes_the_others() {
    let mut rng = SeededRng::new(42);
    let (public, nodes) = local::dkg(2, 3, &mut rng).unwrap();
    let (new_public, new_nodes) = local::refresh(&[&nodes[0], &nodes[2]], &mut rng).unwrap();
    assert_eq!(new_public.participants(), &[id(1), id(3)]);
    assert_eq!(new_public.npub(), public.npub());
    assert_eq!(new_public.group_key().shares(), 2);
    every_t_subset_signs(&new_public, &new_nodes, &mut rng);
    // Node 2 (removed) cannot join a signing session of the new package.
    let c2 = sign::commit(&nodes[1], &mut rng).1;
    let c1 = sign::commit(&new_nodes[0], &mut rng).1;
    assert_eq!(
        SigningPackage::new(
            &new_public,
            BTreeMap::from([(id(1), c1), (id(2), c2)]),
            b"m"
        )
        .unwrap_err(),
        Error::UnknownParticipant { id: id(2) }
    );
}

fn others<T: Clone>(
    all: &BTreeMap<ParticipantId, T>,
    me: ParticipantId,
) -> BTreeMap<ParticipantId, T> {
    all.iter()
        .filter(|(i, _)| **i != me)
        .map(|(i, p)| (*i, p.clone()))
        .collect()
}

#[test]
fn a_bad_refresh_share_names_its_sender() {
    let mut rng = SeededRng::new(43);
    let (_, nodes) = local::dkg(2, 3, &mut rng).unwrap();
    let ids = ParticipantId::range(3).unwrap();
    let mut round1: BTreeMap<ParticipantId, Round1Package> = BTreeMap::new();
    let mut secrets = Vec::new();
    for node in &nodes {
        let (s, p) = refresh::part1(node, &ids, &mut rng).unwrap();
        assert_eq!(p.commitments().len(), 1, "t − 1 coefficients");
        secrets.push(s);
        round1.insert(node.id(), p);
    }
    let mut outs = BTreeMap::new();
    let mut secrets2 = Vec::new();
    for (s, node) in secrets.into_iter().zip(&nodes) {
        let (s2, out) = refresh::part2(s, &others(&round1, node.id())).unwrap();
        outs.insert(node.id(), out);
        secrets2.push(s2);
    }
    let copy = |p: &Round2Package| Round2Package::deserialize(&p.serialize().unwrap()).unwrap();
    // Node 1 receives from "2" the share node 2 computed for node 3.
    let to_1 = BTreeMap::from([
        (id(2), copy(&outs[&id(2)][&id(3)])),
        (id(3), copy(&outs[&id(3)][&id(1)])),
    ]);
    let s1 = secrets2.remove(0);
    let err = refresh::part3(s1, &others(&round1, id(1)), &to_1, &nodes[0]).unwrap_err();
    assert_eq!(
        err,
        Error::InvalidSecretShare {
            culprit: Some(id(2))
        }
    );

    // The honest deliveries complete for node 2, with the same group key.
    let to_2 = BTreeMap::from([
        (id(1), copy(&outs[&id(1)][&id(2)])),
        (id(3), copy(&outs[&id(3)][&id(2)])),
    ]);
    let s2 = secrets2.remove(0);
    let refreshed = refresh::part3(s2, &others(&round1, id(2)), &to_2, &nodes[1]).unwrap();
    assert_eq!(refreshed.group_key(), nodes[1].group_key());
}

#[test]
fn refresh_parameters_are_checked() {
    let mut rng = SeededRng::new(44);
    let (_, nodes) = local::dkg(3, 5, &mut rng).unwrap();
    let err = refresh::part1(&nodes[0], &[id(1), id(2)], &mut rng).unwrap_err();
    assert_eq!(
        err.code(),
        "invalid_parameters",
        "fewer than t participants"
    );
    let err = refresh::part1(&nodes[0], &[id(2), id(3), id(4)], &mut rng).unwrap_err();
    assert_eq!(err.code(), "invalid_parameters", "self not included");
    let err = refresh::part1(&nodes[0], &[id(1), id(1), id(2), id(3)], &mut rng).unwrap_err();
    assert_eq!(err.code(), "invalid_parameters", "duplicates");
    let err = refresh::part1(&nodes[0], &[id(1), id(2), id(6)], &mut rng).unwrap_err();
    assert_eq!(err, Error::UnknownParticipant { id: id(6) });
}

#[test]
fn repair_rebuilds_the_identical_share() {
    let mut rng = SeededRng::new(45);
    let (_, nodes) = local::dkg(2, 3, &mut rng).unwrap();
    let repaired = local::repair(&[&nodes[0], &nodes[1]], id(3), &mut rng).unwrap();
    assert_eq!(
        *repaired.serialize().unwrap(),
        *nodes[2].serialize().unwrap()
    );

    let (_, nodes) = local::import(&mut random_secret(&mut rng), 3, 5, &mut rng).unwrap();
    for helpers in [[0usize, 1, 2], [1, 2, 3]] {
        let h: Vec<&NodeShare> = helpers.iter().map(|i| &nodes[*i]).collect();
        let repaired = local::repair(&h, id(5), &mut rng).unwrap();
        assert_eq!(
            *repaired.serialize().unwrap(),
            *nodes[4].serialize().unwrap()
        );
    }
    // All four others helping works too.
    let h: Vec<&NodeShare> = nodes[1..].iter().collect();
    let repaired = local::repair(&h, id(1), &mut rng).unwrap();
    assert_eq!(
        *repaired.serialize().unwrap(),
        *nodes[0].serialize().unwrap()
    );
}

#[test]
fn repair_refuses_bad_inputs() {
    let mut rng = SeededRng::new(46);
    let (public, nodes) = local::dkg(3, 5, &mut rng).unwrap();
    let err = repair::part1(&nodes[0], &[id(1), id(2)], id(5), &mut rng).unwrap_err();
    assert_eq!(err, Error::NotEnoughShares { have: 2, need: 3 });
    let err = repair::part1(&nodes[0], &[id(1), id(2), id(5)], id(5), &mut rng).unwrap_err();
    assert_eq!(err.code(), "invalid_parameters");
    let err = repair::part1(&nodes[0], &[id(2), id(3), id(4)], id(5), &mut rng).unwrap_err();
    assert_eq!(
        err.code(),
        "invalid_parameters",
        "helper not in its own list"
    );

    // A wrong sigma yields a share that does not match the verifying share: refused.
    let helpers = [id(1), id(2), id(3)];
    let mut inbox: BTreeMap<ParticipantId, Vec<_>> = BTreeMap::new();
    for node in &nodes[..3] {
        for (to, delta) in repair::part1(node, &helpers, id(5), &mut rng).unwrap() {
            inbox.entry(to).or_default().push(delta);
        }
    }
    let mut sigmas: Vec<RepairSigma> = inbox.values().map(|d| repair::part2(d).unwrap()).collect();
    sigmas[1] = RepairSigma::from_bytes(&[5u8; 32]).unwrap();
    let err = repair::part3(&sigmas, id(5), &public).unwrap_err();
    assert_eq!(err.code(), "mismatch");
    assert_eq!(
        repair::part3(&sigmas[..2], id(5), &public).unwrap_err(),
        Error::NotEnoughShares { have: 2, need: 3 }
    );
    assert_eq!(format!("{:?}", sigmas[0]), "RepairSigma(..)");
}

#[test]
fn recovery_checks_the_npub_and_the_threshold() {
    let mut rng = SeededRng::new(47);
    let (public, nodes) = local::dkg(3, 5, &mut rng).unwrap();
    // The recovered DKG secret is the tweaked one: its x-only key is the npub and it signs as
    // an ordinary BIP340 key.
    let d = recover::reconstruct(&[&nodes[4], &nodes[1], &nodes[2]]).unwrap();
    assert_eq!(npub_of(&d), public.npub());
    let key = k256::schnorr::SigningKey::from_slice(d.as_slice()).unwrap();
    let sig = key.sign_raw(b"exported", &[0u8; 32]).unwrap().to_bytes();
    assert!(libsecp_verify(&public.npub(), b"exported", &sig));

    assert_eq!(
        recover::reconstruct(&[&nodes[0], &nodes[1]]).unwrap_err(),
        Error::NotEnoughShares { have: 2, need: 3 }
    );
    assert_eq!(
        recover::reconstruct(&[&nodes[0], &nodes[1], &nodes[1]]).unwrap_err(),
        Error::DuplicateParticipant { id: id(2) }
    );
    assert!(recover::reconstruct(&[]).is_err());
    let (_, strangers) = local::dkg(3, 5, &mut rng).unwrap();
    assert_eq!(
        recover::reconstruct(&[&nodes[0], &nodes[1], &strangers[2]])
            .unwrap_err()
            .code(),
        "mismatch"
    );
}
