//! Threshold ECDH equals ordinary single-key ECDH, for imported keys (against the nsec
//! directly) and DKG keys of both parities (against the peer's side), reproduces the NIP-44
//! conversation-key vectors, and names nodes with bad proofs.

mod common;

use common::{
    SeededRng, k256_ecdh, npub_of, point, public_point, random_secret, subsets, y_is_odd,
};
use keyline_signer::ecdh::{self, EcdhPartial};
use keyline_signer::{Error, NodeShare, ParticipantId, PublicKeyPackage, local, recover};
use keyline_testkit::{array, hex_n, load_json, str_field};

fn id(v: u16) -> ParticipantId {
    ParticipantId::new(v).unwrap()
}

/// The peer's view: x(b · lift_x(npub)).
fn peer_side(peer_secret: &[u8; 32], npub: &[u8; 32]) -> [u8; 32] {
    let mut lifted = [0u8; 33];
    lifted[0] = 0x02;
    lifted[1..].copy_from_slice(npub);
    k256_ecdh(peer_secret, &point(&lifted))
}

fn every_t_subset_agrees(
    public: &PublicKeyPackage,
    nodes: &[NodeShare],
    peer: &[u8; 32],
    expected: &[u8; 32],
    rng: &mut SeededRng,
) {
    let t = usize::from(public.threshold());
    let all: Vec<usize> = (0..nodes.len()).collect();
    for subset in subsets(&all, t) {
        let chosen: Vec<&NodeShare> = subset.iter().map(|i| &nodes[*i]).collect();
        let shared = local::ecdh(public, &chosen, peer, rng).unwrap();
        assert_eq!(shared.as_bytes(), expected);
    }
    // All n together give the same point.
    let everyone: Vec<&NodeShare> = nodes.iter().collect();
    assert_eq!(
        local::ecdh(public, &everyone, peer, rng)
            .unwrap()
            .as_bytes(),
        expected
    );
}

#[test]
fn imported_keys_match_single_key_ecdh_with_the_nsec() {
    let mut rng = SeededRng::new(30);
    let (mut odd_keys, mut odd_peers) = (0, 0);
    for k in 0..12 {
        let nsec = random_secret(&mut rng);
        let peer_secret = random_secret(&mut rng);
        odd_keys += usize::from(y_is_odd(&public_point(&nsec)));
        odd_peers += usize::from(y_is_odd(&public_point(&peer_secret)));
        let (t, n) = if k % 2 == 0 { (2, 3) } else { (3, 5) };
        let (public, nodes) = local::import(&mut nsec.clone(), t, n, &mut rng).unwrap();
        // Ordinary ECDH with the nsec and the peer's full public key (either parity).
        let expected = k256_ecdh(&nsec, &public_point(&peer_secret));
        // The peer computes the same from the npub alone.
        assert_eq!(peer_side(&peer_secret, &npub_of(&nsec)), expected);
        every_t_subset_agrees(&public, &nodes, &npub_of(&peer_secret), &expected, &mut rng);
    }
    assert!(
        odd_keys > 0 && odd_keys < 12,
        "both key parities covered ({odd_keys})"
    );
    assert!(
        odd_peers > 0 && odd_peers < 12,
        "both peer parities covered ({odd_peers})"
    );
}

#[test]
fn dkg_keys_of_both_parities_match_the_peer_side() {
    let mut rng = SeededRng::new(31);
    let (mut odd, mut even) = (0, 0);
    for _ in 0..64 {
        let (public, nodes) = local::dkg(2, 3, &mut rng).unwrap();
        let q = point(&public.group_key().verifying_key());
        if y_is_odd(&q) {
            odd += 1;
        } else {
            even += 1;
        }
        let peer_secret = random_secret(&mut rng);
        let expected = peer_side(&peer_secret, &public.npub());
        every_t_subset_agrees(&public, &nodes, &npub_of(&peer_secret), &expected, &mut rng);
        // And with the recovered (tweaked) secret as an ordinary key.
        let d = recover::reconstruct(&[&nodes[0], &nodes[2]]).unwrap();
        assert_eq!(k256_ecdh(&d, &public_point(&peer_secret)), expected);
        if odd >= 3 && even >= 3 {
            break;
        }
    }
    assert!(odd >= 3 && even >= 3, "odd {odd}, even {even}");
}

#[test]
fn nip44_conversation_key_vectors() {
    let v = load_json("nip44/nip44.vectors.json");
    let mut rng = SeededRng::new(32);
    let valid = array(&v["v2"]["valid"], "get_conversation_key");
    for case in valid {
        let mut sec1 = hex_n::<32>(&case["sec1"]);
        let pub2 = hex_n::<32>(&case["pub2"]);
        let (public, nodes) = local::import(&mut sec1, 2, 3, &mut rng).unwrap();
        let shared = local::ecdh(&public, &[&nodes[0], &nodes[2]], &pub2, &mut rng).unwrap();
        assert_eq!(
            *shared.nip44_conversation_key(),
            hex_n::<32>(&case["conversation_key"]),
            "sec1 {}",
            str_field(case, "sec1")
        );
    }
    let invalid = array(&v["v2"]["invalid"], "get_conversation_key");
    let (mut bad_secret, mut bad_peer) = (0, 0);
    for case in invalid {
        let mut sec1 = hex_n::<32>(&case["sec1"]);
        let pub2 = hex_n::<32>(&case["pub2"]);
        let note = str_field(case, "note");
        match local::import(&mut sec1, 2, 3, &mut rng) {
            Err(err) => {
                assert_eq!(err, Error::InvalidSecretKey, "{note}");
                bad_secret += 1;
            }
            Ok((public, nodes)) => {
                let session = [0u8; 16];
                let err = ecdh::partial(&nodes[0], &pub2, &session, &mut rng).unwrap_err();
                assert_eq!(err, Error::InvalidPeerKey, "{note}");
                let err = ecdh::combine(&public, &pub2, &session, &[]).unwrap_err();
                assert_eq!(err, Error::InvalidPeerKey, "{note}");
                bad_peer += 1;
            }
        }
    }
    assert_eq!((valid.len(), bad_secret + bad_peer), (35, 8));
    eprintln!(
        "nip44 get_conversation_key: {} valid reproduced by threshold ECDH, {bad_secret} bad \
         secrets and {bad_peer} bad peer keys refused",
        valid.len()
    );
}

#[test]
fn bad_partials_name_their_senders() {
    let mut rng = SeededRng::new(33);
    let (public, nodes) = local::dkg(3, 5, &mut rng).unwrap();
    let peer = npub_of(&random_secret(&mut rng));
    let other_peer = npub_of(&random_secret(&mut rng));
    let session = [1u8; 16];
    let good: Vec<EcdhPartial> = nodes
        .iter()
        .map(|n| ecdh::partial(n, &peer, &session, &mut rng).unwrap())
        .collect();
    for p in &good {
        ecdh::verify_partial(&public, &peer, &session, p).unwrap();
    }

    // Node 2 answers for another peer; node 3's z is altered; node 1 is honest.
    let wrong_peer = ecdh::partial(&nodes[1], &other_peer, &session, &mut rng).unwrap();
    let mut raw = good[2].to_bytes();
    raw[98] ^= 1;
    let altered = EcdhPartial::from_bytes(&raw).unwrap();
    let err = ecdh::combine(&public, &peer, &session, &[good[0], wrong_peer, altered]).unwrap_err();
    assert_eq!(
        err,
        Error::InvalidEcdhProof {
            culprits: vec![id(2), id(3)]
        }
    );
    assert_eq!(err.culprits(), vec![id(2), id(3)]);

    // A partial from another session; node 4's partial relabelled as node 5's.
    let other_session = ecdh::partial(&nodes[0], &peer, &[2u8; 16], &mut rng).unwrap();
    let mut raw = good[3].to_bytes();
    raw[..2].copy_from_slice(&5u16.to_be_bytes());
    let relabelled = EcdhPartial::from_bytes(&raw).unwrap();
    let err = ecdh::combine(
        &public,
        &peer,
        &session,
        &[other_session, good[1], relabelled],
    )
    .unwrap_err();
    assert_eq!(err.culprits(), vec![id(1), id(5)]);

    // The coordinator retries with the honest answers and gets x(d·B).
    let d = recover::reconstruct(&[&nodes[0], &nodes[1], &nodes[2]]).unwrap();
    let b = {
        let mut lifted = [0u8; 33];
        lifted[0] = 0x02;
        lifted[1..].copy_from_slice(&peer);
        point(&lifted)
    };
    let shared = ecdh::combine(&public, &peer, &session, &[good[0], good[3], good[4]]).unwrap();
    assert_eq!(*shared.as_bytes(), k256_ecdh(&d, &b));
    assert_eq!(format!("{shared:?}"), "SharedX(..)");
}

#[test]
fn combine_refuses_too_few_duplicate_and_unknown_partials() {
    let mut rng = SeededRng::new(34);
    let (public, nodes) = local::dkg(2, 3, &mut rng).unwrap();
    let peer = npub_of(&random_secret(&mut rng));
    let session = [3u8; 16];
    let p: Vec<EcdhPartial> = nodes
        .iter()
        .map(|n| ecdh::partial(n, &peer, &session, &mut rng).unwrap())
        .collect();
    assert_eq!(
        ecdh::combine(&public, &peer, &session, &p[..1]).unwrap_err(),
        Error::NotEnoughShares { have: 1, need: 2 }
    );
    assert_eq!(
        ecdh::combine(&public, &peer, &session, &[p[0], p[0]]).unwrap_err(),
        Error::DuplicateParticipant { id: id(1) }
    );
    let mut raw = p[1].to_bytes();
    raw[..2].copy_from_slice(&9u16.to_be_bytes());
    let stranger = EcdhPartial::from_bytes(&raw).unwrap();
    assert_eq!(
        ecdh::combine(&public, &peer, &session, &[p[0], stranger]).unwrap_err(),
        Error::UnknownParticipant { id: id(9) }
    );
    // Wire form: exactly 99 bytes, identifier in range.
    assert_eq!(EcdhPartial::from_bytes(&p[0].to_bytes()).unwrap(), p[0]);
    assert!(EcdhPartial::from_bytes(&p[0].to_bytes()[..98]).is_err());
    let mut long = p[0].to_bytes().to_vec();
    long.push(0);
    assert!(EcdhPartial::from_bytes(&long).is_err());
    let mut zero = p[0].to_bytes();
    zero[..2].copy_from_slice(&[0, 0]);
    assert!(EcdhPartial::from_bytes(&zero).is_err());
    // A point that is not on the curve.
    let mut off = p[0].to_bytes();
    off[2] = 0x05;
    let off = EcdhPartial::from_bytes(&off).unwrap();
    assert_eq!(
        ecdh::verify_partial(&public, &peer, &session, &off).unwrap_err(),
        Error::InvalidEcdhProof {
            culprits: vec![id(1)]
        }
    );
}

#[test]
fn refreshed_shares_give_the_same_secret() {
    let mut rng = SeededRng::new(35);
    let (public, nodes) = local::dkg(2, 3, &mut rng).unwrap();
    let peer = npub_of(&random_secret(&mut rng));
    let before = local::ecdh(&public, &[&nodes[0], &nodes[1]], &peer, &mut rng).unwrap();
    let all: Vec<&NodeShare> = nodes.iter().collect();
    let (new_public, new_nodes) = local::refresh(&all, &mut rng).unwrap();
    let after = local::ecdh(
        &new_public,
        &[&new_nodes[1], &new_nodes[2]],
        &peer,
        &mut rng,
    )
    .unwrap();
    assert_eq!(before.as_bytes(), after.as_bytes());
    // An old partial does not verify against the new verifying shares.
    let session = [4u8; 16];
    let old = ecdh::partial(&nodes[0], &peer, &session, &mut rng).unwrap();
    let new = ecdh::partial(&new_nodes[1], &peer, &session, &mut rng).unwrap();
    assert_eq!(
        ecdh::combine(&new_public, &peer, &session, &[old, new]).unwrap_err(),
        Error::InvalidEcdhProof {
            culprits: vec![id(1)]
        }
    );
}
