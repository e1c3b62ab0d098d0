//! Encodings of every engine object: round trips, and truncated, extended, foreign and
//! inconsistent input refused without panicking.

mod common;

use std::collections::BTreeMap;

use common::{SeededRng, random_secret};
use keyline_signer::dkg::{self, Round1Package, Round2Package};
use keyline_signer::sign::{self, SignatureShare, SigningCommitments, SigningPackage};
use keyline_signer::{Error, NodeShare, ParticipantId, PublicKeyPackage, local};

fn id(v: u16) -> ParticipantId {
    ParticipantId::new(v).unwrap()
}

/// `decode(encoded)` succeeds; a byte more, a byte less and an empty input fail with
/// `Malformed`.
fn strict<T>(encoded: &[u8], decode: impl Fn(&[u8]) -> Result<T, Error>) -> T {
    let mut longer = encoded.to_vec();
    longer.push(0);
    assert!(matches!(decode(&longer), Err(Error::Malformed { .. })));
    assert!(matches!(
        decode(&encoded[..encoded.len() - 1]),
        Err(Error::Malformed { .. })
    ));
    assert!(matches!(decode(&[]), Err(Error::Malformed { .. })));
    decode(encoded).unwrap()
}

#[test]
fn node_shares_and_public_packages_round_trip() {
    let mut rng = SeededRng::new(50);
    let (public, nodes) = local::dkg(2, 3, &mut rng).unwrap();
    let (imported, imp_nodes) =
        local::import(&mut random_secret(&mut rng), 3, 5, &mut rng).unwrap();
    for (public, nodes) in [(&public, &nodes), (&imported, &imp_nodes)] {
        let bytes = public.serialize().unwrap();
        let back = strict(&bytes, PublicKeyPackage::deserialize);
        assert_eq!(&back, public);
        assert_eq!(back.origin(), public.origin());
        assert_eq!(back.fingerprint().unwrap(), public.fingerprint().unwrap());
        for node in nodes {
            let bytes = node.serialize().unwrap();
            let back = strict(&bytes, NodeShare::deserialize);
            assert_eq!(back.id(), node.id());
            assert_eq!(*back.serialize().unwrap(), *bytes);
        }
    }
    // The restored share still signs.
    let restored = NodeShare::deserialize(&nodes[0].serialize().unwrap()).unwrap();
    local::sign(&public, &[&restored, &nodes[1]], b"restored", &mut rng).unwrap();
}

#[test]
fn envelopes_refuse_foreign_and_inconsistent_input() {
    let mut rng = SeededRng::new(51);
    let (public, nodes) = local::dkg(2, 3, &mut rng).unwrap();
    let (other, _) = local::dkg(2, 3, &mut rng).unwrap();
    let pkp = public.serialize().unwrap();

    for (at, value) in [(0, b'X'), (4, 2), (5, 0), (5, 3)] {
        let mut bad = pkp.clone();
        bad[at] = value;
        assert!(
            matches!(
                PublicKeyPackage::deserialize(&bad),
                Err(Error::Malformed { .. })
            ),
            "byte {at} = {value}"
        );
    }
    // The FROST part of a package from the plain suite (another ciphersuite id) is refused.
    let (_, plain) = frost_secp256k1::keys::generate_with_dealer(
        3,
        2,
        frost_secp256k1::keys::IdentifierList::Default,
        SeededRng::new(1),
    )
    .unwrap();
    let mut foreign = pkp[..6].to_vec();
    foreign.extend_from_slice(&plain.serialize().unwrap());
    assert!(PublicKeyPackage::deserialize(&foreign).is_err());

    // A share spliced with another key's public package: the parts do not belong together.
    let share = nodes[0].serialize().unwrap();
    let key_len = usize::from(u16::from_be_bytes([share[5], share[6]]));
    let mut spliced = share[..7 + key_len].to_vec();
    spliced.extend_from_slice(&other.serialize().unwrap());
    assert_eq!(
        NodeShare::deserialize(&spliced).unwrap_err().code(),
        "mismatch"
    );
    // A share whose length field overruns.
    let mut overrun = share.to_vec();
    overrun[5] = 0xff;
    assert!(NodeShare::deserialize(&overrun).is_err());
}

#[test]
fn protocol_objects_round_trip() {
    let mut rng = SeededRng::new(52);
    let (public, nodes) = local::dkg(2, 3, &mut rng).unwrap();

    let (n1, c1) = sign::commit(&nodes[0], &mut rng);
    let (n2, c2) = sign::commit(&nodes[1], &mut rng);
    assert_eq!(n1.commitments(), c1);
    assert_eq!(n1.id(), id(1));
    let bytes = c1.serialize().unwrap();
    assert_eq!(bytes.len(), 71, "spec §6.3 measured size");
    assert_eq!(strict(&bytes, SigningCommitments::deserialize), c1);

    let package = SigningPackage::new(
        &public,
        BTreeMap::from([(id(1), c1), (id(2), c2)]),
        &[3u8; 32],
    )
    .unwrap();
    let bytes = package.serialize().unwrap();
    assert_eq!(bytes.len(), 245, "spec §6.3 measured size");
    let back = strict(&bytes, SigningPackage::deserialize);
    assert_eq!(back, package);
    assert_eq!(back.signers(), &[id(1), id(2)]);
    assert_eq!(back.commitments(id(2)), Some(c2));
    assert_eq!(back.commitments(id(3)), None);

    let s1 = sign::sign(&nodes[0], n1, &back).unwrap();
    let s2 = sign::sign(&nodes[1], n2, &package).unwrap();
    assert_eq!(SignatureShare::from_bytes(&s1.to_bytes()).unwrap(), s1);
    assert!(
        SignatureShare::from_bytes(&[0xff; 32]).is_err(),
        "not below the order"
    );
    let shares = BTreeMap::from([(id(1), s1), (id(2), s2)]);
    sign::aggregate(&public, &package, &shares).unwrap();

    let (_, r1) = dkg::part1(id(1), 2, 3, &mut rng).unwrap();
    let bytes = r1.serialize().unwrap();
    assert_eq!(bytes.len(), 137, "spec §6.3 measured size");
    assert_eq!(strict(&bytes, Round1Package::deserialize), r1);

    let (s, _) = dkg::part1(id(1), 2, 3, &mut rng).unwrap();
    let mut received = BTreeMap::new();
    for i in [2u16, 3] {
        received.insert(id(i), dkg::part1(id(i), 2, 3, &mut rng).unwrap().1);
    }
    let (_, out) = dkg::part2(s, &received).unwrap();
    let bytes = out[&id(2)].serialize().unwrap();
    assert_eq!(bytes.len(), 37, "spec §6.3 measured size");
    let back = strict(&bytes, Round2Package::deserialize);
    assert_eq!(back, out[&id(2)]);
    assert_ne!(back, out[&id(3)]);
    assert_eq!(format!("{back:?}"), "Round2Package(..)");

    assert_eq!(nodes[0].public().serialize().unwrap().len(), 6 + 236);
    let key_len = {
        let b = nodes[0].serialize().unwrap();
        usize::from(u16::from_be_bytes([b[5], b[6]]))
    };
    assert_eq!(key_len, 136, "spec §6.3 measured size");
}
