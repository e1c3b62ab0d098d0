//! Property tests over small random t/n, signer subsets, messages and keys.

mod common;

use common::{SeededRng, k256_ecdh, libsecp_verify, npub_of, public_point, random_secret};
use std::collections::BTreeMap;
use std::sync::OnceLock;

use keyline_signer::dkg::{Round1Package, Round2Package};
use keyline_signer::ecdh::EcdhPartial;
use keyline_signer::import::DealtShare;
use keyline_signer::sign::{self, SignatureShare, SigningCommitments, SigningPackage};
use keyline_signer::{NodeShare, ParticipantId, PublicKeyPackage, dkg, local, recover};
use proptest::prelude::*;

/// Feeds `bytes` to every decoder of the engine; none may panic.
fn decode_everything(bytes: &[u8]) {
    let _ = NodeShare::deserialize(bytes);
    let _ = PublicKeyPackage::deserialize(bytes);
    let _ = SigningPackage::deserialize(bytes);
    let _ = SigningCommitments::deserialize(bytes);
    let _ = Round1Package::deserialize(bytes);
    let _ = Round2Package::deserialize(bytes);
    let _ = DealtShare::deserialize(bytes);
    let _ = EcdhPartial::from_bytes(bytes);
    if let Ok(b) = <[u8; 32]>::try_from(bytes) {
        let _ = SignatureShare::from_bytes(&b);
    }
}

/// Valid encodings of every engine object, made once.
fn valid_encodings() -> &'static Vec<Vec<u8>> {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut rng = SeededRng::new(99);
        let (public, nodes) = local::dkg(2, 3, &mut rng).unwrap();
        let (imported, _) = local::import(&mut random_secret(&mut rng), 2, 3, &mut rng).unwrap();
        let (_, c1) = sign::commit(&nodes[0], &mut rng);
        let (_, c2) = sign::commit(&nodes[1], &mut rng);
        let id = |v| ParticipantId::new(v).unwrap();
        let package =
            SigningPackage::new(&public, BTreeMap::from([(id(1), c1), (id(2), c2)]), b"m").unwrap();
        let (s, r1) = dkg::part1(id(1), 2, 3, &mut rng).unwrap();
        let others = BTreeMap::from([
            (id(2), dkg::part1(id(2), 2, 3, &mut rng).unwrap().1),
            (id(3), dkg::part1(id(3), 2, 3, &mut rng).unwrap().1),
        ]);
        let (_, r2) = dkg::part2(s, &others).unwrap();
        let (_, dealt) =
            keyline_signer::import::split(&mut random_secret(&mut rng), 2, 3, &mut rng).unwrap();
        let partial = keyline_signer::ecdh::partial(
            &nodes[0],
            &npub_of(&random_secret(&mut rng)),
            &[0u8; 16],
            &mut rng,
        )
        .unwrap();
        vec![
            nodes[0].serialize().unwrap().to_vec(),
            public.serialize().unwrap(),
            imported.serialize().unwrap(),
            package.serialize().unwrap(),
            c1.serialize().unwrap(),
            r1.serialize().unwrap(),
            r2[&id(2)].serialize().unwrap().to_vec(),
            dealt[0].serialize().unwrap().to_vec(),
            partial.to_bytes().to_vec(),
        ]
    })
}

/// (t, n) with 2 ≤ t ≤ n ≤ 5.
fn threshold_and_shares() -> impl Strategy<Value = (u16, u16)> {
    (2u16..=5).prop_flat_map(|n| (2u16..=n, Just(n)))
}

/// A signer subset of size ≥ t from a bit mask (indices into 0..n).
fn pick(mask: u32, t: u16, n: u16) -> Vec<usize> {
    let mut chosen: Vec<usize> = (0..usize::from(n))
        .filter(|i| mask & (1 << i) != 0)
        .collect();
    for i in 0..usize::from(n) {
        if chosen.len() >= usize::from(t) {
            break;
        }
        if !chosen.contains(&i) {
            chosen.push(i);
        }
    }
    chosen.sort();
    chosen
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_everything(&bytes);
    }

    #[test]
    fn decoders_never_panic_on_mutated_encodings(
        which in 0usize..9,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
    ) {
        let mut bytes = valid_encodings()[which].clone();
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] ^= value.max(1);
        }
        decode_everything(&bytes);
        bytes.truncate(cut % (bytes.len() + 1));
        decode_everything(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn dkg_then_any_subset_signs_any_message(
        (t, n) in threshold_and_shares(),
        seed in any::<u64>(),
        mask in any::<u32>(),
        message in proptest::collection::vec(any::<u8>(), 0..=96),
    ) {
        let mut rng = SeededRng::new(seed);
        let (public, nodes) = local::dkg(t, n, &mut rng).unwrap();
        prop_assert_eq!(public.threshold(), t);
        let signers: Vec<&NodeShare> = pick(mask, t, n).iter().map(|i| &nodes[*i]).collect();
        let sig = local::sign(&public, &signers, &message, &mut rng).unwrap();
        prop_assert!(libsecp_verify(&public.npub(), &message, &sig));
        // Fewer than t signers never produce a signature.
        let short: Vec<&NodeShare> = signers.iter().take(usize::from(t) - 1).copied().collect();
        prop_assert!(local::sign(&public, &short, &message, &mut rng).is_err());
    }

    #[test]
    fn import_keeps_npub_signs_and_ecdh_matches(
        (t, n) in threshold_and_shares(),
        seed in any::<u64>(),
        mask in any::<u32>(),
        message in proptest::collection::vec(any::<u8>(), 32..=32),
    ) {
        let mut rng = SeededRng::new(seed);
        let nsec = random_secret(&mut rng);
        let peer = random_secret(&mut rng);
        let (public, nodes) = local::import(&mut nsec.clone(), t, n, &mut rng).unwrap();
        prop_assert_eq!(public.npub(), npub_of(&nsec));
        let chosen: Vec<&NodeShare> = pick(mask, t, n).iter().map(|i| &nodes[*i]).collect();
        let sig = local::sign(&public, &chosen, &message, &mut rng).unwrap();
        prop_assert!(libsecp_verify(&npub_of(&nsec), &message, &sig));
        let shared = local::ecdh(&public, &chosen, &npub_of(&peer), &mut rng).unwrap();
        prop_assert_eq!(*shared.as_bytes(), k256_ecdh(&nsec, &public_point(&peer)));
        prop_assert_eq!(*recover::reconstruct(&chosen).unwrap(), nsec);
    }

    #[test]
    fn refresh_preserves_the_key(
        (t, n) in threshold_and_shares(),
        seed in any::<u64>(),
        mask in any::<u32>(),
    ) {
        let mut rng = SeededRng::new(seed);
        let (public, nodes) = local::dkg(t, n, &mut rng).unwrap();
        let all: Vec<&NodeShare> = nodes.iter().collect();
        let (new_public, new_nodes) = local::refresh(&all, &mut rng).unwrap();
        prop_assert_eq!(new_public.group_key(), public.group_key());
        let chosen: Vec<&NodeShare> = pick(mask, t, n).iter().map(|i| &new_nodes[*i]).collect();
        let sig = local::sign(&new_public, &chosen, b"refreshed", &mut rng).unwrap();
        prop_assert!(libsecp_verify(&public.npub(), b"refreshed", &sig));
        let peer = random_secret(&mut rng);
        let d = recover::reconstruct(&chosen).unwrap();
        let shared = local::ecdh(&new_public, &chosen, &npub_of(&peer), &mut rng).unwrap();
        prop_assert_eq!(*shared.as_bytes(), k256_ecdh(&d, &public_point(&peer)));
    }
}
