//! Distributed key generation through the participant round functions: agreement, the
//! tweaked npub, every signer subset, and misbehaving participants named.

mod common;

use std::collections::BTreeMap;

use common::{SeededRng, k256_verify, libsecp_verify, point, subsets, taptweak, x_only, y_is_odd};
use keyline_signer::dkg::{self, Round1Package, Round2Package};
use keyline_signer::{Error, KeyOrigin, NodeShare, ParticipantId, bip340, local, refresh};

fn id(v: u16) -> ParticipantId {
    ParticipantId::new(v).unwrap()
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

/// The three parts run participant by participant; returns the round-1 packages and the shares.
fn run_dkg(
    t: u16,
    n: u16,
    rng: &mut SeededRng,
) -> (BTreeMap<ParticipantId, Round1Package>, Vec<NodeShare>) {
    let ids = ParticipantId::range(n).unwrap();
    let mut secrets = Vec::new();
    let mut round1 = BTreeMap::new();
    for &i in &ids {
        let (s, p) = dkg::part1(i, t, n, rng).unwrap();
        secrets.push(s);
        round1.insert(i, p);
    }
    let mut secrets2 = Vec::new();
    let mut inbox: BTreeMap<ParticipantId, BTreeMap<ParticipantId, Round2Package>> =
        BTreeMap::new();
    for (s, &i) in secrets.into_iter().zip(&ids) {
        let (s2, out) = dkg::part2(s, &others(&round1, i)).unwrap();
        assert_eq!(out.len(), usize::from(n) - 1);
        for (to, p) in out {
            inbox.entry(to).or_default().insert(i, p);
        }
        secrets2.push(s2);
    }
    let shares: Vec<NodeShare> = secrets2
        .into_iter()
        .zip(&ids)
        .map(|(s, &i)| dkg::part3(s, &others(&round1, i), &inbox[&i]).unwrap())
        .collect();
    (round1, shares)
}

#[test]
fn dkg_2_of_3_and_3_of_5_every_subset_signs() {
    let mut rng = SeededRng::new(1);
    for (t, n) in [(2u16, 3u16), (3, 5)] {
        let (round1, shares) = run_dkg(t, n, &mut rng);
        // Every node ends with the same public key package (key confirmation).
        let public = shares[0].public().clone();
        for s in &shares {
            assert_eq!(s.public(), &public);
            assert_eq!(
                s.public().fingerprint().unwrap(),
                public.fingerprint().unwrap()
            );
        }
        let group = public.group_key();
        assert_eq!((group.threshold(), group.shares()), (t, n));
        assert_eq!(group.origin(), KeyOrigin::Dkg);
        assert_eq!(
            public.participants(),
            ParticipantId::range(n).unwrap().as_slice()
        );

        // npub = x(TapTweak(P)), P = Σ the participants' first commitments; ≠ x(P).
        let p = round1
            .values()
            .fold(k256::ProjectivePoint::IDENTITY, |acc, pkg| {
                acc + point(&pkg.commitments()[0])
            });
        let q = taptweak(&p);
        assert_eq!(group.verifying_key(), common::sec1(&q));
        assert_eq!(group.npub(), x_only(&q));
        assert_ne!(group.npub(), x_only(&p));

        // Every subset of t or more signers produces a BIP340 signature valid under the npub.
        let mut signed = 0;
        for k in usize::from(t)..=usize::from(n) {
            for subset in subsets(&(0..usize::from(n)).collect::<Vec<_>>(), k) {
                let signers: Vec<&NodeShare> = subset.iter().map(|i| &shares[*i]).collect();
                let msg: [u8; 32] = rng_bytes(&mut rng);
                let sig = local::sign(&public, &signers, &msg, &mut rng).unwrap();
                bip340::verify(&group.npub(), &msg, &sig).unwrap();
                assert!(k256_verify(&group.npub(), &msg, &sig));
                assert!(libsecp_verify(&group.npub(), &msg, &sig));
                signed += 1;
            }
        }
        assert_eq!(signed, if n == 3 { 4 } else { 16 });
    }
}

fn rng_bytes<const N: usize>(rng: &mut SeededRng) -> [u8; N] {
    use keyline_signer::rng::rand_core::RngCore;
    let mut b = [0u8; N];
    rng.fill_bytes(&mut b);
    b
}

#[test]
fn tweaked_keys_of_both_parities_sign() {
    let mut rng = SeededRng::new(2);
    let (mut odd, mut even) = (0, 0);
    for _ in 0..64 {
        let (public, shares) = local::dkg(2, 3, &mut rng).unwrap();
        let q = point(&public.group_key().verifying_key());
        if y_is_odd(&q) {
            odd += 1;
        } else {
            even += 1;
        }
        let sig = local::sign(&public, &[&shares[1], &shares[2]], b"parity", &mut rng).unwrap();
        assert!(libsecp_verify(&public.npub(), b"parity", &sig));
        if odd >= 2 && even >= 2 {
            break;
        }
    }
    assert!(odd >= 2 && even >= 2, "odd {odd}, even {even}");
}

#[test]
fn a_forged_proof_of_knowledge_names_its_sender() {
    let mut rng = SeededRng::new(3);
    let mut round1 = BTreeMap::new();
    let mut secrets = BTreeMap::new();
    for i in ParticipantId::range(3).unwrap() {
        let (s, p) = dkg::part1(i, 2, 3, &mut rng).unwrap();
        secrets.insert(i, s);
        round1.insert(i, p);
    }
    // Participant 1 receives, as participant 2's package, participant 3's: the proof of
    // knowledge binds the sender's identifier, so it fails for 2.
    let mut received = others(&round1, id(1));
    received.insert(id(2), round1[&id(3)].clone());
    let err = dkg::part2(secrets.remove(&id(1)).unwrap(), &received).unwrap_err();
    assert_eq!(err, Error::InvalidProofOfKnowledge { culprit: id(2) });
    assert_eq!(err.culprits(), vec![id(2)]);
    assert_eq!(err.code(), "invalid_proof_of_knowledge");
}

#[test]
fn a_bad_round2_share_names_its_sender() {
    let mut rng = SeededRng::new(4);
    let ids = ParticipantId::range(3).unwrap();
    let mut round1 = BTreeMap::new();
    let mut secrets = Vec::new();
    for &i in &ids {
        let (s, p) = dkg::part1(i, 2, 3, &mut rng).unwrap();
        secrets.push(s);
        round1.insert(i, p);
    }
    let mut outs = BTreeMap::new();
    let mut secrets2 = BTreeMap::new();
    for (s, &i) in secrets.into_iter().zip(&ids) {
        let (s2, out) = dkg::part2(s, &others(&round1, i)).unwrap();
        outs.insert(i, out);
        secrets2.insert(i, s2);
    }
    // Participant 2 sends participant 1 the share it computed for participant 3.
    let mut to_1: BTreeMap<ParticipantId, Round2Package> = BTreeMap::new();
    let bytes = outs[&id(2)][&id(3)].serialize().unwrap();
    to_1.insert(id(2), Round2Package::deserialize(&bytes).unwrap());
    let bytes = outs[&id(3)][&id(1)].serialize().unwrap();
    to_1.insert(id(3), Round2Package::deserialize(&bytes).unwrap());
    let err = dkg::part3(
        secrets2.remove(&id(1)).unwrap(),
        &others(&round1, id(1)),
        &to_1,
    )
    .unwrap_err();
    assert_eq!(
        err,
        Error::InvalidSecretShare {
            culprit: Some(id(2))
        }
    );
    assert_eq!(
        err.to_string(),
        "secret share does not match the commitment of participant 2"
    );
}

#[test]
fn a_commitment_of_the_wrong_length_names_its_sender() {
    let mut rng = SeededRng::new(5);
    let (s1, _) = dkg::part1(id(1), 2, 3, &mut rng).unwrap();
    let (_, p2) = dkg::part1(id(2), 2, 3, &mut rng).unwrap();
    let (_, p3_wrong) = dkg::part1(id(3), 3, 3, &mut rng).unwrap();
    let received = BTreeMap::from([(id(2), p2), (id(3), p3_wrong)]);
    let err = dkg::part2(s1, &received).unwrap_err();
    assert_eq!(err.culprits(), vec![id(3)]);
    assert_eq!(err.code(), "invalid_package");
}

#[test]
fn missing_extra_and_foreign_packages_are_refused() {
    let mut rng = SeededRng::new(6);
    let mut round1 = BTreeMap::new();
    for i in ParticipantId::range(3).unwrap() {
        round1.insert(i, dkg::part1(i, 2, 3, &mut rng).unwrap().1);
    }
    let fresh = |rng: &mut SeededRng| dkg::part1(id(1), 2, 3, rng).unwrap().0;

    let mut missing = others(&round1, id(1));
    missing.remove(&id(3));
    let err = dkg::part2(fresh(&mut rng), &missing).unwrap_err();
    assert_eq!(err.code(), "invalid_parameters");
    assert!(
        err.to_string().contains("participant 3 is missing"),
        "{err}"
    );

    let with_self = round1.clone();
    let err = dkg::part2(fresh(&mut rng), &with_self).unwrap_err();
    assert!(err.to_string().contains("which is this node"), "{err}");

    let mut foreign = others(&round1, id(1));
    foreign.insert(id(4), round1[&id(2)].clone());
    let err = dkg::part2(fresh(&mut rng), &foreign).unwrap_err();
    assert_eq!(err, Error::UnknownParticipant { id: id(4) });
}

#[test]
fn parameters_are_checked() {
    let mut rng = SeededRng::new(7);
    let bad = [(id(1), 1, 3), (id(1), 4, 3), (id(4), 2, 3), (id(1), 2, 33)];
    for (i, t, n) in bad {
        let err = dkg::part1(i, t, n, &mut rng).unwrap_err();
        assert_eq!(
            err.code(),
            "invalid_parameters",
            "t={t} n={n} id={i}: {err}"
        );
    }
    assert!(local::dkg(1, 3, &mut rng).is_err());
    assert!(local::dkg(2, 2, &mut rng).is_ok(), "2-of-2 is allowed");
}

#[test]
fn ceremony_states_do_not_mix() {
    let mut rng = SeededRng::new(8);
    let (_, shares) = local::dkg(2, 3, &mut rng).unwrap();
    let ids = ParticipantId::range(3).unwrap();
    let (refresh_secret, _) = refresh::part1(&shares[0], &ids, &mut rng).unwrap();
    let mut round1 = BTreeMap::new();
    for &i in &ids[1..] {
        round1.insert(i, dkg::part1(i, 2, 3, &mut rng).unwrap().1);
    }
    let err = dkg::part2(refresh_secret, &round1).unwrap_err();
    assert_eq!(err.code(), "mismatch");

    let (dkg_secret, _) = dkg::part1(id(1), 2, 3, &mut rng).unwrap();
    let err = refresh::part2(dkg_secret, &round1).unwrap_err();
    assert_eq!(err.code(), "mismatch");
}

#[test]
fn debug_output_shows_no_secrets() {
    let mut rng = SeededRng::new(9);
    let (s, p) = dkg::part1(id(1), 2, 3, &mut rng).unwrap();
    assert_eq!(
        format!("{s:?}"),
        "Round1Secret { id: ParticipantId(1), kind: Dkg, .. }"
    );
    assert!(format!("{p:?}").starts_with("Round1Package { commitments: ["));
    let (_, shares) = local::dkg(2, 3, &mut rng).unwrap();
    let debug = format!("{:?}", shares[0]);
    let npub = hex::encode(shares[0].group_key().npub());
    // The only long hex string in a share's Debug output is the npub.
    for run in debug
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|r| r.len() >= 32)
    {
        assert_eq!(run, npub, "{debug}");
    }
    assert!(debug.contains(".."), "{debug}");
}
