//! Importing an existing nsec: the npub stays the same (odd-y keys included), the secret
//! buffer is wiped, the shares sign under the original npub, and recovery returns the nsec.

mod common;

use common::{
    SeededRng, k256_verify, libsecp_verify, npub_of, public_point, random_secret, sec1, subsets,
    y_is_odd,
};
use keyline_signer::import::{self, DealtShare};
use keyline_signer::{Error, KeyOrigin, NodeShare, ParticipantId, local, recover};

/// 24 random keys, 12 whose public key has odd y and 12 with even y.
fn keys_of_both_parities(rng: &mut SeededRng) -> Vec<[u8; 32]> {
    let (mut odd, mut even) = (Vec::new(), Vec::new());
    while odd.len() < 12 || even.len() < 12 {
        let k = random_secret(rng);
        if y_is_odd(&public_point(&k)) {
            if odd.len() < 12 {
                odd.push(k);
            }
        } else if even.len() < 12 {
            even.push(k);
        }
    }
    odd.into_iter()
        .zip(even)
        .flat_map(|(a, b)| [a, b])
        .collect()
}

#[test]
fn import_keeps_the_npub_for_both_parities() {
    let mut rng = SeededRng::new(10);
    let keys = keys_of_both_parities(&mut rng);
    assert_eq!(keys.len(), 24);
    for (k, nsec) in keys.iter().enumerate() {
        let (t, n) = if k % 4 < 2 { (2u16, 3u16) } else { (3, 5) };
        let mut buffer = *nsec;
        let (public, shares) = local::import(&mut buffer, t, n, &mut rng).unwrap();
        assert_eq!(buffer, [0u8; 32], "the nsec buffer is zeroized");

        let group = public.group_key();
        assert_eq!(group.origin(), KeyOrigin::Imported);
        assert_eq!(group.npub(), npub_of(nsec), "key {k}: npub unchanged");
        // The stored group key is d·G itself, parity included (no tweak, no negation).
        assert_eq!(group.verifying_key(), sec1(&public_point(nsec)));
        assert_eq!(
            group.verifying_key()[0] == 0x03,
            y_is_odd(&public_point(nsec))
        );

        // Every t-subset signs under the original npub.
        let all: Vec<usize> = (0..usize::from(n)).collect();
        for subset in subsets(&all, usize::from(t)) {
            let signers: Vec<&NodeShare> = subset.iter().map(|i| &shares[*i]).collect();
            let msg = [k as u8; 32];
            let sig = local::sign(&public, &signers, &msg, &mut rng).unwrap();
            assert!(k256_verify(&npub_of(nsec), &msg, &sig));
            assert!(libsecp_verify(&npub_of(nsec), &msg, &sig));
        }

        // Recovery from t shares returns the original nsec bytes.
        let some: Vec<&NodeShare> = shares.iter().rev().take(usize::from(t)).collect();
        assert_eq!(*recover::reconstruct(&some).unwrap(), *nsec);
    }
}

#[test]
fn invalid_secret_keys_are_refused_and_wiped() {
    let mut rng = SeededRng::new(11);
    let order =
        hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").unwrap();
    for bad in [[0u8; 32], order.try_into().unwrap(), [0xff; 32]] {
        let mut buffer = bad;
        let err = import::split(&mut buffer, 2, 3, &mut rng).unwrap_err();
        assert_eq!(err, Error::InvalidSecretKey);
        assert_eq!(buffer, [0u8; 32]);
    }
    // Bad parameters also wipe the key.
    let mut buffer = random_secret(&mut rng);
    let err = import::split(&mut buffer, 4, 3, &mut rng).unwrap_err();
    assert_eq!(err.code(), "invalid_parameters");
    assert_eq!(buffer, [0u8; 32]);
}

#[test]
fn each_node_checks_its_dealt_share() {
    let mut rng = SeededRng::new(12);
    let nsec = random_secret(&mut rng);
    let (public, dealt) = import::split(&mut nsec.clone(), 2, 3, &mut rng).unwrap();
    let (other_public, _) = import::split(&mut nsec.clone(), 2, 3, &mut rng).unwrap();
    assert_eq!(public.npub(), other_public.npub());
    assert_ne!(public, other_public, "a different random polynomial");

    // A dealt share travels sealed as bytes; it round-trips.
    let bytes = dealt[0].serialize().unwrap();
    let share = DealtShare::deserialize(&bytes).unwrap();
    assert_eq!(share.id(), ParticipantId::new(1).unwrap());

    // Against another split's public key package: the verifying share does not match.
    let err = import::accept(share, &other_public).unwrap_err();
    assert_eq!(err.code(), "mismatch");

    // A share inconsistent with the dealer's own commitment: named as the dealer's fault.
    let frost_share = frost_secp256k1_tr::keys::SecretShare::deserialize(&bytes).unwrap();
    let other =
        frost_secp256k1_tr::keys::SecretShare::deserialize(&dealt[1].serialize().unwrap()).unwrap();
    let forged = frost_secp256k1_tr::keys::SecretShare::new(
        *frost_share.identifier(),
        *other.signing_share(),
        frost_share.commitment().clone(),
    );
    let forged = DealtShare::deserialize(&forged.serialize().unwrap()).unwrap();
    let err = import::accept(forged, &public).unwrap_err();
    assert_eq!(err, Error::InvalidSecretShare { culprit: None });
    assert_eq!(
        err.to_string(),
        "secret share does not match the commitment of its sender (the dealer)"
    );

    // A DKG key's public package cannot take a dealt share.
    let (dkg_public, _) = local::dkg(2, 3, &mut rng).unwrap();
    let share = DealtShare::deserialize(&dealt[1].serialize().unwrap()).unwrap();
    assert_eq!(
        import::accept(share, &dkg_public).unwrap_err().code(),
        "mismatch"
    );

    // The genuine shares are accepted.
    for d in dealt {
        let share = import::accept(d, &public).unwrap();
        assert_eq!(share.group_key(), public.group_key());
    }
    assert!(format!("{:?}", DealtShare::deserialize(&bytes).unwrap()).contains(".."));
}
