//! Signing sessions: the node and coordinator checks, fewer than t, and cheater detection.

mod common;

use std::collections::BTreeMap;

use common::{SeededRng, libsecp_verify};
use keyline_signer::sign::{self, SignatureShare, SigningCommitments, SigningPackage};
use keyline_signer::{Error, ErrorKind, NodeShare, ParticipantId, PublicKeyPackage, local};

fn id(v: u16) -> ParticipantId {
    ParticipantId::new(v).unwrap()
}

struct Session {
    package: SigningPackage,
    shares: BTreeMap<ParticipantId, SignatureShare>,
}

/// Round 1 and 2 for `signers` (indices into `shares`), honestly.
fn session(
    public: &PublicKeyPackage,
    nodes: &[NodeShare],
    signers: &[usize],
    msg: &[u8],
    rng: &mut SeededRng,
) -> Session {
    let mut nonces = Vec::new();
    let mut commitments = BTreeMap::new();
    for &i in signers {
        let (n, c) = sign::commit(&nodes[i], rng);
        nonces.push(n);
        commitments.insert(nodes[i].id(), c);
    }
    let package = SigningPackage::new(public, commitments, msg).unwrap();
    let shares = signers
        .iter()
        .zip(nonces)
        .map(|(&i, n)| (nodes[i].id(), sign::sign(&nodes[i], n, &package).unwrap()))
        .collect();
    Session { package, shares }
}

#[test]
fn fewer_than_t_is_a_clear_error() {
    let mut rng = SeededRng::new(20);
    let (public, nodes) = local::dkg(3, 5, &mut rng).unwrap();

    // Coordinator: a package needs t commitments.
    let mut commitments = BTreeMap::new();
    for node in &nodes[..2] {
        commitments.insert(node.id(), sign::commit(node, &mut rng).1);
    }
    let err = SigningPackage::new(&public, commitments, b"m").unwrap_err();
    assert_eq!(err, Error::NotEnoughSigners { have: 2, need: 3 });
    assert_eq!(err.to_string(), "signing needs 3 signers, 2 committed");
    assert_eq!(err.kind(), ErrorKind::Unavailable);

    // Coordinator: aggregation needs t shares.
    let s = session(&public, &nodes, &[0, 1, 2], b"m", &mut rng);
    let mut two = s.shares.clone();
    two.remove(&id(3));
    let err = sign::aggregate(&public, &s.package, &two).unwrap_err();
    assert_eq!(err, Error::NotEnoughShares { have: 2, need: 3 });
    assert_eq!(err.to_string(), "3 shares are needed, 2 were given");

    // A committed signer that did not answer is named.
    let s = session(&public, &nodes, &[0, 1, 2, 3], b"m", &mut rng);
    let mut three = s.shares.clone();
    three.remove(&id(2));
    let err = sign::aggregate(&public, &s.package, &three).unwrap_err();
    assert_eq!(err, Error::MissingShare { id: id(2) });

    // A node refuses a package with fewer than t commitments (built outside the engine).
    let (nonces, c) = sign::commit(&nodes[0], &mut rng);
    let frost_c =
        frost_secp256k1_tr::round1::SigningCommitments::deserialize(&c.serialize().unwrap())
            .unwrap();
    let small = frost_secp256k1_tr::SigningPackage::new(
        BTreeMap::from([(
            frost_secp256k1_tr::Identifier::try_from(1).unwrap(),
            frost_c,
        )]),
        b"m",
    );
    let small = SigningPackage::deserialize(&small.serialize().unwrap()).unwrap();
    let err = sign::sign(&nodes[0], nonces, &small).unwrap_err();
    assert_eq!(err, Error::NotEnoughSigners { have: 1, need: 3 });
}

#[test]
fn a_bad_signature_share_names_its_sender() {
    let mut rng = SeededRng::new(21);
    let (public, nodes) = local::dkg(3, 5, &mut rng).unwrap();
    let npub = public.npub();
    let msg = [0x42u8; 32];

    // Node 2 answers with a share for a different message (same commitments).
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for i in [0usize, 1, 3] {
        let (n, c) = sign::commit(&nodes[i], &mut rng);
        nonces.insert(nodes[i].id(), n);
        commitments.insert(nodes[i].id(), c);
    }
    let package = SigningPackage::new(&public, commitments.clone(), &msg).unwrap();
    let other = SigningPackage::new(&public, commitments, b"something else").unwrap();
    let mut shares = BTreeMap::new();
    for i in [0usize, 1, 3] {
        let node = &nodes[i];
        let p = if node.id() == id(2) { &other } else { &package };
        let n = nonces.remove(&node.id()).unwrap();
        shares.insert(node.id(), sign::sign(node, n, p).unwrap());
    }
    let err = sign::aggregate(&public, &package, &shares).unwrap_err();
    assert_eq!(
        err,
        Error::InvalidSignatureShare {
            culprits: vec![id(2)]
        }
    );
    assert_eq!(err.culprits(), vec![id(2)]);
    assert_eq!(err.kind(), ErrorKind::Peer);
    assert_eq!(
        err.to_string(),
        "invalid signature share from participant(s) 2"
    );

    // Checking shares one by one as they arrive names it too.
    for (sid, share) in &shares {
        let r = sign::verify_share(&public, &package, *sid, share);
        assert_eq!(r.is_err(), *sid == id(2), "{sid}: {r:?}");
    }

    // Two cheaters (node 2 as above, node 4 sends a random scalar): both are named.
    let mut forged = shares.clone();
    forged.insert(id(4), SignatureShare::from_bytes(&[7u8; 32]).unwrap());
    let err = sign::aggregate(&public, &package, &forged).unwrap_err();
    assert_eq!(err.culprits(), vec![id(2), id(4)]);

    // The coordinator retries without node 2 (fresh commitments) and succeeds.
    let s = session(&public, &nodes, &[0, 2, 3], &msg, &mut rng);
    let sig = sign::aggregate(&public, &s.package, &s.shares).unwrap();
    assert!(libsecp_verify(&npub, &msg, &sig));
}

#[test]
fn nodes_refuse_packages_that_misuse_their_nonces() {
    let mut rng = SeededRng::new(22);
    let (public, nodes) = local::dkg(2, 3, &mut rng).unwrap();
    let (_, other_key) = local::dkg(2, 3, &mut rng).unwrap();

    // The package lacks node 1's commitment.
    let (n1, _) = sign::commit(&nodes[0], &mut rng);
    let c2 = sign::commit(&nodes[1], &mut rng).1;
    let c3 = sign::commit(&nodes[2], &mut rng).1;
    let without =
        SigningPackage::new(&public, BTreeMap::from([(id(2), c2), (id(3), c3)]), b"m").unwrap();
    let err = sign::sign(&nodes[0], n1, &without).unwrap_err();
    assert_eq!(
        err,
        Error::PackageRejected {
            reason: "the package lacks this node's commitment"
        }
    );

    // The package carries a different commitment for node 1.
    let (n1, _) = sign::commit(&nodes[0], &mut rng);
    let (_, c1_other) = sign::commit(&nodes[0], &mut rng);
    let altered = SigningPackage::new(
        &public,
        BTreeMap::from([(id(1), c1_other), (id(2), c2)]),
        b"m",
    )
    .unwrap();
    let err = sign::sign(&nodes[0], n1, &altered).unwrap_err();
    assert_eq!(err.code(), "package_rejected");

    // Nonces of one key used with a share of another key (same identifier).
    let (n1, c1) = sign::commit(&nodes[0], &mut rng);
    let package =
        SigningPackage::new(&public, BTreeMap::from([(id(1), c1), (id(2), c2)]), b"m").unwrap();
    let err = sign::sign(&other_key[0], n1, &package).unwrap_err();
    assert_eq!(
        err,
        Error::PackageRejected {
            reason: "the nonces belong to another share"
        }
    );

    // A package naming a signer that is not a share holder.
    let (n1, c1) = sign::commit(&nodes[0], &mut rng);
    let fc = |c: &SigningCommitments| {
        frost_secp256k1_tr::round1::SigningCommitments::deserialize(&c.serialize().unwrap())
            .unwrap()
    };
    let fid = |v: u16| frost_secp256k1_tr::Identifier::try_from(v).unwrap();
    let foreign = frost_secp256k1_tr::SigningPackage::new(
        BTreeMap::from([(fid(1), fc(&c1)), (fid(7), fc(&c2))]),
        b"m",
    );
    let foreign = SigningPackage::deserialize(&foreign.serialize().unwrap()).unwrap();
    let err = sign::sign(&nodes[0], n1, &foreign).unwrap_err();
    assert_eq!(err, Error::UnknownParticipant { id: id(7) });
    assert_eq!(
        SigningPackage::new(&public, BTreeMap::from([(id(1), c1), (id(9), c2)]), b"m").unwrap_err(),
        Error::UnknownParticipant { id: id(9) }
    );
}

#[test]
fn more_than_t_signers_and_shares_verified_on_arrival() {
    let mut rng = SeededRng::new(23);
    let (public, nodes) = local::dkg(2, 5, &mut rng).unwrap();
    let msg = [1u8; 32];
    let s = session(&public, &nodes, &[0, 1, 2, 3, 4], &msg, &mut rng);
    assert_eq!(s.package.signers().len(), 5);
    for (sid, share) in &s.shares {
        sign::verify_share(&public, &s.package, *sid, share).unwrap();
    }
    let sig = sign::aggregate(&public, &s.package, &s.shares).unwrap();
    assert!(libsecp_verify(&public.npub(), &msg, &sig));
    // A share from a node outside the package is refused, naming it.
    let s2 = session(&public, &nodes, &[0, 1], &msg, &mut rng);
    let partial = session(&public, &nodes, &[0, 1, 2, 3], &msg, &mut rng);
    let mut with_stranger = partial.shares.clone();
    with_stranger.insert(id(5), s2.shares[&id(2)]);
    assert_eq!(
        sign::aggregate(&public, &partial.package, &with_stranger).unwrap_err(),
        Error::UnknownParticipant { id: id(5) }
    );
    assert!(sign::verify_share(&public, &partial.package, id(5), &s2.shares[&id(2)]).is_err());
}

#[test]
fn signing_is_randomised_but_always_valid() {
    let mut rng = SeededRng::new(24);
    let (public, nodes) = local::dkg(2, 3, &mut rng).unwrap();
    let a = local::sign(&public, &[&nodes[0], &nodes[1]], b"same", &mut rng).unwrap();
    let b = local::sign(&public, &[&nodes[0], &nodes[1]], b"same", &mut rng).unwrap();
    assert_ne!(a, b, "fresh nonces every session");
    assert!(libsecp_verify(&public.npub(), b"same", &a));
    assert!(libsecp_verify(&public.npub(), b"same", &b));
    // The same node twice in one signer list is refused.
    assert_eq!(
        local::sign(&public, &[&nodes[0], &nodes[0]], b"x", &mut rng).unwrap_err(),
        Error::DuplicateParticipant { id: id(1) }
    );
}
