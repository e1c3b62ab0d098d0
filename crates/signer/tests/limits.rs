//! One test per limit in `keyline_signer::limits`: at the edge it works, one step past it the
//! documented refusal.

mod common;

use std::collections::BTreeMap;

use common::{SeededRng, libsecp_verify, random_secret};
use keyline_signer::dkg::{Round1Package, Round2Package};
use keyline_signer::import::DealtShare;
use keyline_signer::limits::{MAX_ENCODED_LEN, MAX_MESSAGE_LEN, MAX_SHARES, MIN_THRESHOLD};
use keyline_signer::sign::{self, SigningCommitments, SigningPackage};
use keyline_signer::{Error, NodeShare, ParticipantId, PublicKeyPackage, dkg, import, local};

#[test]
fn min_threshold() {
    let mut rng = SeededRng::new(60);
    let one = ParticipantId::new(1).unwrap();
    assert!(dkg::part1(one, MIN_THRESHOLD, 3, &mut rng).is_ok());
    let err = dkg::part1(one, MIN_THRESHOLD - 1, 3, &mut rng).unwrap_err();
    assert_eq!(err.code(), "invalid_parameters");
    assert!(err.to_string().contains("below the minimum of 2"), "{err}");

    let (public, nodes) =
        local::import(&mut random_secret(&mut rng), MIN_THRESHOLD, 3, &mut rng).unwrap();
    assert_eq!(public.threshold(), MIN_THRESHOLD);
    local::sign(&public, &[&nodes[0], &nodes[1]], b"t=2", &mut rng).unwrap();
    let err =
        import::split(&mut random_secret(&mut rng), MIN_THRESHOLD - 1, 3, &mut rng).unwrap_err();
    assert_eq!(err.code(), "invalid_parameters");
}

#[test]
fn max_shares() {
    let mut rng = SeededRng::new(61);
    assert!(ParticipantId::new(MAX_SHARES).is_ok());
    assert_eq!(
        ParticipantId::new(MAX_SHARES + 1).unwrap_err().code(),
        "invalid_parameters"
    );

    // A full DKG with the largest n, and a signature from its two highest identifiers.
    let (public, nodes) = local::dkg(2, MAX_SHARES, &mut rng).unwrap();
    assert_eq!(public.group_key().shares(), MAX_SHARES);
    let last = &nodes[usize::from(MAX_SHARES) - 1];
    let sig = local::sign(&public, &[&nodes[30], last], b"n=32", &mut rng).unwrap();
    assert!(libsecp_verify(&public.npub(), b"n=32", &sig));
    let top = ParticipantId::new(MAX_SHARES).unwrap();
    let err = dkg::part1(top, 2, MAX_SHARES + 1, &mut rng).unwrap_err();
    assert!(err.to_string().contains("at most 32"), "{err}");

    // Import at the edge and past it.
    let (public, _) = local::import(&mut random_secret(&mut rng), 2, MAX_SHARES, &mut rng).unwrap();
    assert_eq!(public.participants().len(), usize::from(MAX_SHARES));
    let err = import::split(&mut random_secret(&mut rng), 2, MAX_SHARES + 1, &mut rng).unwrap_err();
    assert_eq!(err.code(), "invalid_parameters");

    // A public key package from outside the engine with 33 shares is refused on decode.
    let (_, big) = frost_secp256k1_tr::keys::generate_with_dealer(
        MAX_SHARES + 1,
        2,
        frost_secp256k1_tr::keys::IdentifierList::Default,
        SeededRng::new(1),
    )
    .unwrap();
    let mut bytes = b"KLPK\x01\x02".to_vec();
    bytes.extend_from_slice(&big.serialize().unwrap());
    assert!(matches!(
        PublicKeyPackage::deserialize(&bytes),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn max_message_len() {
    let mut rng = SeededRng::new(62);
    let (public, nodes) = local::dkg(2, 3, &mut rng).unwrap();
    let at_edge = vec![0x61u8; MAX_MESSAGE_LEN];
    let sig = local::sign(&public, &[&nodes[0], &nodes[1]], &at_edge, &mut rng).unwrap();
    assert!(libsecp_verify(&public.npub(), &at_edge, &sig));

    let past = vec![0x61u8; MAX_MESSAGE_LEN + 1];
    let c1 = sign::commit(&nodes[0], &mut rng).1;
    let c2 = sign::commit(&nodes[1], &mut rng).1;
    let commitments = BTreeMap::from([
        (ParticipantId::new(1).unwrap(), c1),
        (ParticipantId::new(2).unwrap(), c2),
    ]);
    let err = SigningPackage::new(&public, commitments, &past).unwrap_err();
    assert_eq!(
        err,
        Error::MessageTooLong {
            len: MAX_MESSAGE_LEN + 1,
            max: MAX_MESSAGE_LEN
        }
    );
    // A node receiving such a package (built outside the engine) refuses to decode it.
    let fc = |c: &SigningCommitments| {
        frost_secp256k1_tr::round1::SigningCommitments::deserialize(&c.serialize().unwrap())
            .unwrap()
    };
    let fid = |v: u16| frost_secp256k1_tr::Identifier::try_from(v).unwrap();
    let foreign = frost_secp256k1_tr::SigningPackage::new(
        BTreeMap::from([(fid(1), fc(&c1)), (fid(2), fc(&c2))]),
        &past,
    );
    assert_eq!(
        SigningPackage::deserialize(&foreign.serialize().unwrap()).unwrap_err(),
        Error::MessageTooLong {
            len: MAX_MESSAGE_LEN + 1,
            max: MAX_MESSAGE_LEN
        }
    );
}

type Decoder = fn(&[u8]) -> Result<(), Error>;

#[test]
fn max_encoded_len() {
    let decoders: [(&str, Decoder); 7] = [
        ("node share", |b| NodeShare::deserialize(b).map(drop)),
        ("public key package", |b| {
            PublicKeyPackage::deserialize(b).map(drop)
        }),
        ("signing package", |b| {
            SigningPackage::deserialize(b).map(drop)
        }),
        ("signing commitments", |b| {
            SigningCommitments::deserialize(b).map(drop)
        }),
        ("round-1 package", |b| {
            Round1Package::deserialize(b).map(drop)
        }),
        ("round-2 package", |b| {
            Round2Package::deserialize(b).map(drop)
        }),
        ("dealt share", |b| DealtShare::deserialize(b).map(drop)),
    ];
    for (what, decode) in decoders {
        // At the limit the input is parsed (and, being garbage, found malformed).
        let at_edge = vec![0u8; MAX_ENCODED_LEN];
        assert!(
            matches!(decode(&at_edge), Err(Error::Malformed { .. })),
            "{what}"
        );
        // One byte more is refused before parsing.
        let past = vec![0u8; MAX_ENCODED_LEN + 1];
        match decode(&past) {
            Err(Error::TooLarge { len, max, .. }) => {
                assert_eq!((len, max), (MAX_ENCODED_LEN + 1, MAX_ENCODED_LEN), "{what}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    assert_eq!(
        keyline_signer::ecdh::EcdhPartial::from_bytes(&vec![0u8; MAX_ENCODED_LEN + 1])
            .unwrap_err()
            .code(),
        "too_large"
    );

    // The largest legitimate objects stay far below the limit (documented: under 6 KiB).
    let mut rng = SeededRng::new(63);
    let (public, nodes) =
        local::import(&mut random_secret(&mut rng), 2, MAX_SHARES, &mut rng).unwrap();
    let share_len = nodes[0].serialize().unwrap().len();
    let commitments: BTreeMap<_, _> = nodes
        .iter()
        .map(|n| (n.id(), sign::commit(n, &mut rng).1))
        .collect();
    let package = SigningPackage::new(&public, commitments, &vec![0u8; MAX_MESSAGE_LEN]).unwrap();
    let package_len = package.serialize().unwrap().len();
    assert!(share_len < 6 * 1024, "{share_len}");
    assert!(package_len < 6 * 1024, "{package_len}");
    eprintln!("largest node share {share_len} B, largest signing package {package_len} B");
}
