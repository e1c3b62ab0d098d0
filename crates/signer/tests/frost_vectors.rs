//! The FROST vector files of `shared/vectors/frost/` (Zcash Foundation `frost` 3.0.0).
//!
//! * `-tr` (the suite keyline uses): reproduced **through keyline's engine API**, with the
//!   randomness the files fix injected through the RNG argument (the FROST crate draws dealer
//!   coefficients, DKG secrets and nonce randomness as consecutive 32-byte reads, so a
//!   scripted RNG replays them exactly). Every value the files give is compared byte for byte,
//!   except the DKG proofs of knowledge (see `tr_dkg_vectors_through_the_engine`).
//! * both suites through the FROST crates directly (generic checker), for parity; the plain
//!   suite's 65-byte signature is asserted not to be a BIP340 signature.
//!
//! A missing vectors folder fails (keyline_testkit panics), it never skips.

mod common;

use std::collections::BTreeMap;

use common::{
    ScriptRng, SeededRng, k256_verify, libsecp_verify, point, public_point, scalar, sec1, taptweak,
};
use frost_core::Ciphersuite;
use keyline_signer::dkg::{Round1Package, Round2Package};
use keyline_signer::repair::RepairDelta;
use keyline_signer::sign::{SignatureShare, SigningCommitments, SigningPackage};
use keyline_signer::{Error, ParticipantId, bip340, dkg, ecdh, import, local, sign};
use keyline_testkit::{array, hex, hex_n, load_json, str_field, vectors_dir};
use serde_json::Value;
use sha2::{Digest, Sha256};

type Tr = frost_secp256k1_tr::Secp256K1Sha256TR;
type Plain = frost_secp256k1::Secp256K1Sha256;

const TR: &str = "frost/frost-secp256k1-tr";
const PLAIN: &str = "frost/frost-secp256k1";

/// A config number: a string in `vectors.json`, a number in `vectors_dkg.json` (spec §13).
fn num(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().expect("numeric string"),
        Value::Number(n) => n.as_u64().expect("unsigned"),
        other => panic!("expected a number, got {other}"),
    }
}

fn pid(v: &Value) -> ParticipantId {
    ParticipantId::new(num(v) as u16).unwrap()
}

#[test]
fn vector_files_are_the_documented_ones() {
    // shared/vectors/frost/README.md, "Files".
    let files = [
        (
            "frost-secp256k1-tr/vectors.json",
            "0ac120db0ae51143b04e74edfc90cf62e29e58f5980308e5efb0da039bfdc3ff",
        ),
        (
            "frost-secp256k1-tr/vectors-big-identifier.json",
            "0ac120db0ae51143b04e74edfc90cf62e29e58f5980308e5efb0da039bfdc3ff",
        ),
        (
            "frost-secp256k1-tr/vectors_dkg.json",
            "912c8f8a50760351349463550c3ea99c4f8bc1a6c3d7852510194196bfabbf30",
        ),
        (
            "frost-secp256k1-tr/elements.json",
            "715d1fc017d4c35610eff2ce6572aea52cd6ff8b5bdc4b2229df1bb5ef42c224",
        ),
        (
            "frost-secp256k1-tr/repair-share.json",
            "773f76240dd4e4b4ca86f3e8f67be5d33be2e02dfa1545d8be413474a9b523ba",
        ),
        (
            "frost-secp256k1-tr/samples.json",
            "3311b51bc1e266978fa2854b29eef372a900e475a3aeb1d0a8e6f82f564d01ed",
        ),
        (
            "frost-secp256k1/vectors.json",
            "5398435d5e235857c0fec3507111d64c288c1b97e97021633c03ca6d5757b5f2",
        ),
        (
            "frost-secp256k1/vectors-big-identifier.json",
            "b54aac546025eca2953f6f2c1aa45fca61295e4f942b149e442a9e38fb69aaeb",
        ),
        (
            "frost-secp256k1/vectors_dkg.json",
            "c1b1b2a06a6012b07e786f0b728d0208ce32595d2b91b019c86dac490d8c59fa",
        ),
        (
            "frost-secp256k1/elements.json",
            "715d1fc017d4c35610eff2ce6572aea52cd6ff8b5bdc4b2229df1bb5ef42c224",
        ),
        (
            "frost-secp256k1/repair-share.json",
            "773f76240dd4e4b4ca86f3e8f67be5d33be2e02dfa1545d8be413474a9b523ba",
        ),
        (
            "frost-secp256k1/samples.json",
            "e6c8fe83f909658b4ecd9ee1aa509b2b86046022879bb9cedcec1f7a18eb866d",
        ),
    ];
    let dir = vectors_dir().join("frost");
    for (file, sha) in files {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), sha, "{file}");
    }
    eprintln!(
        "frost vectors: {} files match their README checksums",
        files.len()
    );
}

// ----- signing vectors, -tr, through the engine -------------------------------------------------

/// Runs one `-tr` signing vector file through keyline's API; returns the number of compared
/// values.
fn tr_signing_through_engine(file: &str) -> usize {
    let v = load_json(&format!("{TR}/{file}"));
    let mut checked = 0;
    let n = num(&v["config"]["MAX_PARTICIPANTS"]) as u16;
    let t = num(&v["config"]["MIN_PARTICIPANTS"]) as u16;
    let inputs = &v["inputs"];
    let message = hex(&inputs["message"]);
    let verifying_key = hex_n::<33>(&inputs["verifying_key_key"]);

    // Dealer: the group secret split with the file's polynomial coefficients.
    let mut secret = hex_n::<32>(&inputs["group_secret_key"]);
    let coefficients: Vec<Vec<u8>> = array(inputs, "share_polynomial_coefficients")
        .iter()
        .map(hex)
        .collect();
    assert_eq!(coefficients.len(), usize::from(t) - 1);
    let chunks: Vec<&[u8]> = coefficients.iter().map(Vec::as_slice).collect();
    let mut rng = ScriptRng::new(&chunks);
    let (public, dealt) = import::split(&mut secret, t, n, &mut rng).unwrap();
    assert!(
        rng.exhausted(),
        "the dealer drew exactly the given coefficients"
    );
    assert_eq!(secret, [0u8; 32], "the secret buffer is wiped");
    assert_eq!(public.group_key().verifying_key(), verifying_key);
    checked += 1;

    // Every participant share: equal secret shares ⇔ equal verifying shares s_i·G.
    for ps in array(inputs, "participant_shares") {
        let id = pid(&ps["identifier"]);
        let expected = sec1(&public_point(&hex_n::<32>(&ps["participant_share"])));
        assert_eq!(public.verifying_share(id), Some(expected), "share of {id}");
        checked += 1;
    }
    let mut shares: BTreeMap<ParticipantId, _> = dealt
        .into_iter()
        .map(|d| (d.id(), import::accept(d, &public).unwrap()))
        .collect();

    // Round 1 with the file's nonce randomness.
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    let round1 = array(&v["round_one_outputs"], "outputs");
    for out in round1 {
        let id = pid(&out["identifier"]);
        let hiding = hex(&out["hiding_nonce_randomness"]);
        let binding = hex(&out["binding_nonce_randomness"]);
        let mut rng = ScriptRng::new(&[&hiding, &binding]);
        let (n_i, c_i) = sign::commit(&shares[&id], &mut rng);
        assert!(rng.exhausted());
        let d = hex_n::<33>(&out["hiding_nonce_commitment"]);
        let e = hex_n::<33>(&out["binding_nonce_commitment"]);
        assert_eq!(c_i.hiding(), d, "hiding commitment of {id}");
        assert_eq!(c_i.binding(), e, "binding commitment of {id}");
        // The file's nonces are the discrete logs of its commitments (independent check).
        let g = k256::ProjectivePoint::GENERATOR;
        assert_eq!(sec1(&(g * scalar(&hex_n(&out["hiding_nonce"])))), d);
        assert_eq!(sec1(&(g * scalar(&hex_n(&out["binding_nonce"])))), e);
        checked += 4;
        nonces.insert(id, n_i);
        commitments.insert(id, c_i);
    }
    let package = SigningPackage::new(&public, commitments, &message).unwrap();
    assert_eq!(package.message(), message.as_slice());

    // Binding factors: recomputed by the FROST crate's internals from the engine's package.
    let frost_package =
        frost_secp256k1_tr::SigningPackage::deserialize(&package.serialize().unwrap()).unwrap();
    let frost_vk = frost_secp256k1_tr::VerifyingKey::deserialize(&verifying_key).unwrap();
    let preimages = frost_package
        .binding_factor_preimages(&frost_vk, &[])
        .unwrap();
    let factors = frost_core::compute_binding_factor_list(&frost_package, &frost_vk, &[]).unwrap();
    for out in round1 {
        let id = frost_secp256k1_tr::Identifier::try_from(num(&out["identifier"]) as u16).unwrap();
        let (_, preimage) = preimages.iter().find(|(i, _)| *i == id).unwrap();
        assert_eq!(*preimage, hex(&out["binding_factor_input"]));
        assert_eq!(
            factors.get(&id).unwrap().serialize(),
            hex(&out["binding_factor"])
        );
        checked += 2;
    }

    // Round 2: the engine's signature shares equal the file's.
    let mut ours = BTreeMap::new();
    let mut theirs = BTreeMap::new();
    for out in array(&v["round_two_outputs"], "outputs") {
        let id = pid(&out["identifier"]);
        let share = sign::sign(&shares[&id], nonces.remove(&id).unwrap(), &package).unwrap();
        let expected = hex_n::<32>(&out["sig_share"]);
        assert_eq!(share.to_bytes(), expected, "signature share of {id}");
        checked += 1;
        ours.insert(id, share);
        theirs.insert(id, SignatureShare::from_bytes(&expected).unwrap());
    }

    // Aggregation of ours and of the file's shares: the file's signature, valid BIP340.
    let expected_sig = hex_n::<64>(&v["final_output"]["sig"]);
    let sig = sign::aggregate(&public, &package, &ours).unwrap();
    assert_eq!(sig, expected_sig);
    assert_eq!(
        sign::aggregate(&public, &package, &theirs).unwrap(),
        expected_sig
    );
    let xonly: [u8; 32] = verifying_key[1..].try_into().unwrap();
    bip340::verify(&xonly, &message, &sig).unwrap();
    assert!(k256_verify(&xonly, &message, &sig));
    assert!(libsecp_verify(&xonly, &message, &sig));
    checked += 3;
    shares.clear();
    checked
}

#[test]
fn tr_signing_vectors_through_the_engine() {
    for file in ["vectors.json", "vectors-big-identifier.json"] {
        let checked = tr_signing_through_engine(file);
        assert_eq!(checked, 21, "{file}");
        eprintln!("frost-secp256k1-tr/{file}: {checked} values reproduced through the engine");
    }
}

// ----- signing vectors, both suites, FROST crates directly --------------------------------------

/// The generic checker: dealer split with the file's coefficients, nonces from the file's
/// randomness, binding factors, shares and the aggregate, all through `frost-core`. Returns the
/// aggregate signature bytes.
fn check_signing_direct<C: Ciphersuite>(v: &Value) -> Vec<u8> {
    use frost_core as fc;
    let n = num(&v["config"]["MAX_PARTICIPANTS"]) as u16;
    let t = num(&v["config"]["MIN_PARTICIPANTS"]) as u16;
    let inputs = &v["inputs"];
    let message = hex(&inputs["message"]);
    let secret = fc::SigningKey::<C>::deserialize(&hex(&inputs["group_secret_key"])).unwrap();
    let coefficients: Vec<Vec<u8>> = array(inputs, "share_polynomial_coefficients")
        .iter()
        .map(hex)
        .collect();
    let chunks: Vec<&[u8]> = coefficients.iter().map(Vec::as_slice).collect();
    let mut rng = ScriptRng::new(&chunks);
    let (dealt, public) =
        fc::keys::split(&secret, n, t, fc::keys::IdentifierList::Default, &mut rng).unwrap();
    assert!(rng.exhausted());
    assert_eq!(
        public.verifying_key().serialize().unwrap(),
        hex(&inputs["verifying_key_key"])
    );
    let id = |v: &Value| fc::Identifier::<C>::try_from(num(v) as u16).unwrap();
    for ps in array(inputs, "participant_shares") {
        let share = &dealt[&id(&ps["identifier"])];
        assert_eq!(
            share.signing_share().serialize(),
            hex(&ps["participant_share"])
        );
    }
    let keys: BTreeMap<_, _> = dealt
        .into_iter()
        .map(|(i, s)| (i, fc::keys::KeyPackage::try_from(s).unwrap()))
        .collect();

    let round1 = array(&v["round_one_outputs"], "outputs");
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for out in round1 {
        let i = id(&out["identifier"]);
        let h = hex(&out["hiding_nonce_randomness"]);
        let b = hex(&out["binding_nonce_randomness"]);
        let mut rng = ScriptRng::new(&[&h, &b]);
        let (n_i, c_i) = fc::round1::commit(keys[&i].signing_share(), &mut rng);
        assert!(rng.exhausted());
        assert_eq!(n_i.hiding().serialize(), hex(&out["hiding_nonce"]));
        assert_eq!(n_i.binding().serialize(), hex(&out["binding_nonce"]));
        assert_eq!(
            c_i.hiding().serialize().unwrap(),
            hex(&out["hiding_nonce_commitment"])
        );
        assert_eq!(
            c_i.binding().serialize().unwrap(),
            hex(&out["binding_nonce_commitment"])
        );
        nonces.insert(i, n_i);
        commitments.insert(i, c_i);
    }
    let package = fc::SigningPackage::new(commitments, &message);
    let preimages = package
        .binding_factor_preimages(public.verifying_key(), &[])
        .unwrap();
    let factors = fc::compute_binding_factor_list(&package, public.verifying_key(), &[]).unwrap();
    for out in round1 {
        let i = id(&out["identifier"]);
        let (_, preimage) = preimages.iter().find(|(j, _)| *j == i).unwrap();
        assert_eq!(*preimage, hex(&out["binding_factor_input"]));
        assert_eq!(
            factors.get(&i).unwrap().serialize(),
            hex(&out["binding_factor"])
        );
    }
    let mut shares = BTreeMap::new();
    for out in array(&v["round_two_outputs"], "outputs") {
        let i = id(&out["identifier"]);
        let share = fc::round2::sign(&package, &nonces[&i], &keys[&i]).unwrap();
        assert_eq!(share.serialize(), hex(&out["sig_share"]));
        shares.insert(i, share);
    }
    let sig = fc::aggregate(&package, &shares, &public).unwrap();
    let sig = sig.serialize().unwrap();
    assert_eq!(sig, hex(&v["final_output"]["sig"]));
    sig
}

#[test]
fn signing_vectors_of_both_suites_through_frost_directly() {
    for file in ["vectors.json", "vectors-big-identifier.json"] {
        let sig = check_signing_direct::<Tr>(&load_json(&format!("{TR}/{file}")));
        assert_eq!(sig.len(), 64);
        let v = load_json(&format!("{PLAIN}/{file}"));
        let sig = check_signing_direct::<Plain>(&v);
        assert_eq!(sig.len(), 65, "the plain suite's signatures are 65 bytes");
        eprintln!("{file}: -tr and plain suite reproduced through frost-core");
    }
}

#[test]
fn plain_suite_signatures_are_not_bip340() {
    for file in ["vectors.json", "vectors-big-identifier.json"] {
        let v = load_json(&format!("{PLAIN}/{file}"));
        let message = hex(&v["inputs"]["message"]);
        let vk = hex(&v["inputs"]["verifying_key_key"]);
        let xonly: [u8; 32] = vk[1..].try_into().unwrap();
        let sig = hex(&v["final_output"]["sig"]);
        assert_eq!(sig.len(), 65);
        assert_eq!(
            bip340::verify(&xonly, &message, &sig),
            Err(Error::InvalidSignature)
        );
        // Not even as x(R) ‖ z: the plain suite's challenge hashes SEC1 points.
        assert_eq!(
            bip340::verify(&xonly, &message, &sig[1..]),
            Err(Error::InvalidSignature)
        );
    }
}

// ----- DKG vectors ------------------------------------------------------------------------------

/// A `-tr` round-1 package from the file's commitments and proof of knowledge.
fn tr_round1(p: &Value) -> Round1Package {
    let commitment = frost_secp256k1_tr::keys::VerifiableSecretSharingCommitment::deserialize(
        array(p, "vss_commitments")
            .iter()
            .map(hex)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let proof = frost_secp256k1_tr::Signature::deserialize(&hex(&p["proof_of_knowledge"])).unwrap();
    let package = frost_secp256k1_tr::keys::dkg::round1::Package::new(commitment, proof);
    Round1Package::deserialize(&package.serialize().unwrap()).unwrap()
}

/// A `-tr` round-2 package carrying the share f_from(to) the file lists.
fn tr_round2(v: &Value, from: u16, to: u16) -> Round2Package {
    let share = &v["inputs"][to.to_string()]["signing_shares"][from.to_string()];
    let share = frost_secp256k1_tr::keys::SigningShare::deserialize(&hex(share)).unwrap();
    let package = frost_secp256k1_tr::keys::dkg::round2::Package::new(share);
    Round2Package::deserialize(&package.serialize().unwrap()).unwrap()
}

/// Through the engine: part 1 with the file's secret and coefficient reproduces each
/// commitment; part 2 with the file's round-1 packages reproduces every round-2 share; part 3
/// with the file's packages reproduces every verifying share and the tweaked group key.
///
/// The proofs of knowledge are not reproduced: their nonce is not in the file (the FROST crate
/// draws it after the coefficients). Instead, the engine's own proof for each participant is
/// checked by the other participants' part 2, and the file's proofs are checked by the engine's
/// part 2 (a failure would name the sender).
#[test]
fn tr_dkg_vectors_through_the_engine() {
    let v = load_json(&format!("{TR}/vectors_dkg.json"));
    let n = num(&v["config"]["MAX_PARTICIPANTS"]) as u16;
    let t = num(&v["config"]["MIN_PARTICIPANTS"]) as u16;
    assert_eq!((t, n), (2, 3));
    let inputs = &v["inputs"];
    let ids = ParticipantId::range(n).unwrap();
    let theirs: BTreeMap<ParticipantId, Round1Package> = ids
        .iter()
        .map(|id| (*id, tr_round1(&inputs[id.get().to_string()])))
        .collect();
    let others = |all: &BTreeMap<ParticipantId, Round1Package>, me: ParticipantId| {
        all.iter()
            .filter(|(id, _)| **id != me)
            .map(|(id, p)| (*id, p.clone()))
            .collect::<BTreeMap<_, _>>()
    };

    let mut checked = 0;
    let mut ours = BTreeMap::new();
    let mut publics = Vec::new();
    let mut shares = Vec::new();
    for &id in &ids {
        let p = &inputs[id.get().to_string()];
        let secret_key = hex(&p["signing_key"]);
        let coefficient = hex(&p["coefficient"]);
        let mut rng = ScriptRng::new(&[&secret_key, &coefficient]);
        let (secret, package) = dkg::part1(id, t, n, &mut rng).unwrap();
        assert!(rng.exhausted());
        let expected: Vec<[u8; 33]> = array(p, "vss_commitments").iter().map(hex_n).collect();
        assert_eq!(package.commitments(), expected, "commitments of {id}");
        checked += 1;
        ours.insert(id, package);

        let (secret, outgoing) = dkg::part2(secret, &others(&theirs, id)).unwrap();
        for (to, package) in &outgoing {
            assert_eq!(*package, tr_round2(&v, id.get(), to.get()), "f_{id}({to})");
            checked += 1;
        }
        let received: BTreeMap<ParticipantId, Round2Package> = ids
            .iter()
            .filter(|j| **j != id)
            .map(|j| (*j, tr_round2(&v, j.get(), id.get())))
            .collect();
        let share = dkg::part3(secret, &others(&theirs, id), &received).unwrap();
        let group = share.group_key();
        assert_eq!(group.verifying_key(), hex_n::<33>(&inputs["verifying_key"]));
        for &j in &ids {
            let vs = hex_n::<33>(&inputs[j.get().to_string()]["verifying_share"]);
            assert_eq!(share.public().verifying_share(j), Some(vs));
            checked += 1;
        }
        // The file's final signing share is consistent with its verifying share.
        assert_eq!(
            sec1(&public_point(&hex_n(&p["signing_share"]))),
            hex_n::<33>(&p["verifying_share"])
        );
        publics.push(share.public().fingerprint().unwrap());
        shares.push(share);
        checked += 1;
    }
    assert!(
        publics.windows(2).all(|w| w[0] == w[1]),
        "every node agrees"
    );

    // The engine's proofs of knowledge verify in the other participants' part 2.
    for &id in &ids {
        for &other in ids.iter().filter(|o| **o != id) {
            let mut mixed = others(&theirs, other);
            mixed.insert(id, ours[&id].clone());
            let p = &inputs[other.get().to_string()];
            let mut rng = ScriptRng::new(&[&hex(&p["signing_key"]), &hex(&p["coefficient"])]);
            let (secret, _) = dkg::part1(other, t, n, &mut rng).unwrap();
            dkg::part2(secret, &mixed).unwrap();
            checked += 1;
        }
    }

    // The TapTweak relation: Q = P_even + int(hash_TapTweak(x(P)))·G, P = Σ first commitments.
    let p = ids.iter().fold(k256::ProjectivePoint::IDENTITY, |acc, id| {
        acc + point(&hex(&inputs[id.get().to_string()]["vss_commitments"][0]))
    });
    let q = taptweak(&p);
    assert_eq!(sec1(&q), hex_n::<33>(&inputs["verifying_key"]));
    let npub = shares[0].group_key().npub();
    assert_eq!(npub, common::x_only(&q));
    assert_ne!(npub, common::x_only(&p));
    checked += 1;

    // The vector key signs through the engine with every pair.
    let public = shares[0].public().clone();
    for pair in common::subsets(&[0usize, 1, 2], 2) {
        let signers: Vec<_> = pair.iter().map(|i| &shares[*i]).collect();
        let sig = local::sign(&public, &signers, b"vector dkg", &mut SeededRng::new(7)).unwrap();
        assert!(k256_verify(&npub, b"vector dkg", &sig));
        assert!(libsecp_verify(&npub, b"vector dkg", &sig));
        checked += 1;
    }
    assert_eq!(checked, 31);
    eprintln!(
        "frost-secp256k1-tr/vectors_dkg.json: {checked} values reproduced through the engine"
    );
}

/// Generic DKG check through frost-core: part 1 from the file's secrets, part 2 and 3 from the
/// file's packages; key packages compared field by field.
fn check_dkg_direct<C: Ciphersuite>(v: &Value) -> usize {
    use frost_core as fc;
    let n = num(&v["config"]["MAX_PARTICIPANTS"]) as u16;
    let t = num(&v["config"]["MIN_PARTICIPANTS"]) as u16;
    let inputs = &v["inputs"];
    let fid = |i: u16| fc::Identifier::<C>::try_from(i).unwrap();
    let round1 = |i: u16| {
        let p = &inputs[i.to_string()];
        let commitment = fc::keys::VerifiableSecretSharingCommitment::<C>::deserialize(
            array(p, "vss_commitments")
                .iter()
                .map(hex)
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let proof = fc::Signature::<C>::deserialize(&hex(&p["proof_of_knowledge"])).unwrap();
        fc::keys::dkg::round1::Package::new(commitment, proof)
    };
    let mut checked = 0;
    for i in 1..=n {
        let p = &inputs[i.to_string()];
        let mut rng = ScriptRng::new(&[&hex(&p["signing_key"]), &hex(&p["coefficient"])]);
        let (secret, package) = fc::keys::dkg::part1::<C, _>(fid(i), n, t, &mut rng).unwrap();
        let commitments: Vec<Vec<u8>> = package.commitment().serialize().unwrap();
        let expected: Vec<Vec<u8>> = array(p, "vss_commitments").iter().map(hex).collect();
        assert_eq!(commitments, expected);
        let r1: BTreeMap<_, _> = (1..=n)
            .filter(|j| *j != i)
            .map(|j| (fid(j), round1(j)))
            .collect();
        let (secret2, out) = fc::keys::dkg::part2(secret, &r1).unwrap();
        for (to, pkg) in &out {
            let to_num = (1..=n).find(|j| fid(*j) == *to).unwrap();
            assert_eq!(
                pkg.signing_share().serialize(),
                hex(&inputs[to_num.to_string()]["signing_shares"][i.to_string()])
            );
        }
        let r2: BTreeMap<_, _> = (1..=n)
            .filter(|j| *j != i)
            .map(|j| {
                let s = fc::keys::SigningShare::<C>::deserialize(&hex(
                    &p["signing_shares"][j.to_string()]
                ))
                .unwrap();
                (fid(j), fc::keys::dkg::round2::Package::new(s))
            })
            .collect();
        let (key, public) = fc::keys::dkg::part3(&secret2, &r1, &r2).unwrap();
        assert_eq!(key.signing_share().serialize(), hex(&p["signing_share"]));
        assert_eq!(
            key.verifying_share().serialize().unwrap(),
            hex(&p["verifying_share"])
        );
        assert_eq!(
            public.verifying_key().serialize().unwrap(),
            hex(&inputs["verifying_key"])
        );
        checked += 1;
    }
    checked
}

#[test]
fn dkg_vectors_of_both_suites_through_frost_directly() {
    assert_eq!(
        check_dkg_direct::<Tr>(&load_json(&format!("{TR}/vectors_dkg.json"))),
        3
    );
    let plain = load_json(&format!("{PLAIN}/vectors_dkg.json"));
    assert_eq!(check_dkg_direct::<Plain>(&plain), 3);
    // For the plain suite the group key is P itself (no tweak).
    let p = (1..=3).fold(k256::ProjectivePoint::IDENTITY, |acc, i: u16| {
        acc + point(&hex(&plain["inputs"][i.to_string()]["vss_commitments"][0]))
    });
    assert_eq!(sec1(&p), hex_n::<33>(&plain["inputs"]["verifying_key"]));
}

// ----- repair, elements, samples ----------------------------------------------------------------

#[test]
fn repair_share_vectors() {
    for suite in [TR, PLAIN] {
        let v = load_json(&format!("{suite}/repair-share.json"));
        let s = &v["scalar_generation"];
        // Step 2 through the engine: sigma = Σ deltas.
        let deltas: Vec<RepairDelta> = (1..=3)
            .map(|i| RepairDelta::from_bytes(&hex_n(&s[format!("random_scalar_{i}")])).unwrap())
            .collect();
        let sigma = keyline_signer::repair::part2(&deltas).unwrap();
        assert_eq!(*sigma.to_bytes(), hex_n::<32>(&s["random_scalar_sum"]));

        // Step 3 through the FROST crate: the share is Σ sigmas (the engine's part 3 also
        // checks it against a real public key package, which the file does not have).
        let g = &v["sigma_generation"];
        let sigmas: Vec<_> = (1..=4)
            .map(|i| {
                frost_secp256k1_tr::keys::repairable::Sigma::deserialize(&hex(
                    &g[format!("sigma_{i}")]
                ))
                .unwrap()
            })
            .collect();
        let (_, dummy) = frost_secp256k1_tr::keys::generate_with_dealer(
            5,
            3,
            frost_secp256k1_tr::keys::IdentifierList::Default,
            SeededRng::new(1),
        )
        .unwrap();
        let id = frost_secp256k1_tr::Identifier::try_from(2).unwrap();
        let key =
            frost_secp256k1_tr::keys::repairable::repair_share_part3(&sigmas, id, &dummy).unwrap();
        assert_eq!(key.signing_share().serialize(), hex(&g["sigma_sum"]));
    }
}

#[test]
fn invalid_element_is_refused_everywhere() {
    for suite in [TR, PLAIN] {
        let v = load_json(&format!("{suite}/elements.json"));
        let bad = hex_n::<33>(&v["elements"]["invalid_element"]);
        assert!(frost_secp256k1_tr::VerifyingKey::deserialize(&bad).is_err());
        assert!(frost_secp256k1::VerifyingKey::deserialize(&bad).is_err());
        assert!(frost_secp256k1_tr::round1::NonceCommitment::deserialize(&bad).is_err());

        // In the engine's decoders: a commitment pair and a round-1 package carrying it.
        let (public, shares) = local::dkg(2, 3, &mut SeededRng::new(2)).unwrap();
        let (_, commitments) = sign::commit(&shares[0], &mut SeededRng::new(3));
        let bytes = commitments.serialize().unwrap();
        let swapped = replace(&bytes, &commitments.hiding(), &bad);
        assert_eq!(
            SigningCommitments::deserialize(&swapped),
            Err(Error::Malformed {
                what: "signing commitments"
            })
        );
        let (_, r1) =
            dkg::part1(ParticipantId::new(1).unwrap(), 2, 3, &mut SeededRng::new(4)).unwrap();
        let bytes = r1.serialize().unwrap();
        let swapped = replace(&bytes, &r1.commitments()[0], &bad);
        assert!(Round1Package::deserialize(&swapped).is_err());

        // An ECDH partial whose point is the invalid element names its sender.
        let peer = common::npub_of(&common::random_secret(&mut SeededRng::new(5)));
        let session = [9u8; 16];
        let partial = ecdh::partial(&shares[1], &peer, &session, &mut SeededRng::new(6)).unwrap();
        let mut raw = partial.to_bytes();
        raw[2..35].copy_from_slice(&bad);
        let forged = ecdh::EcdhPartial::from_bytes(&raw).unwrap();
        let err = ecdh::verify_partial(&public, &peer, &session, &forged).unwrap_err();
        assert_eq!(err.culprits(), vec![shares[1].id()]);
    }
}

/// `haystack` with the one occurrence of `needle` replaced by `with`.
fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let at = haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present");
    let mut out = haystack.to_vec();
    out[at..at + needle.len()].copy_from_slice(with);
    out
}

#[test]
fn serialization_samples() {
    let g = k256::ProjectivePoint::GENERATOR;
    for suite in [TR, PLAIN] {
        let v = load_json(&format!("{suite}/samples.json"));
        // Identifier 42 is the scalar 42.
        let id = frost_secp256k1_tr::Identifier::try_from(42).unwrap();
        assert_eq!(id.serialize(), hex(&v["identifier"]));
        // element1 = G, element2 = 2G, in k256 0.14's encoding and the FROST crate's.
        assert_eq!(hex_n::<33>(&v["element1"]), sec1(&g));
        assert_eq!(hex_n::<33>(&v["element2"]), sec1(&(g + g)));
        for e in ["element1", "element2"] {
            let bytes = hex(&v[e]);
            let vk = frost_secp256k1_tr::VerifyingKey::deserialize(&bytes).unwrap();
            assert_eq!(vk.serialize().unwrap(), bytes);
        }
        // scalar1 = 1/3 mod n.
        let third = scalar(&hex_n(&v["scalar1"]));
        assert_eq!(third * k256::Scalar::from(3u64), k256::Scalar::ONE);
        assert!(SignatureShare::from_bytes(&hex_n(&v["scalar1"])).is_ok());
        // proof_of_knowledge = (R = G, z = scalar1) in each suite's signature encoding.
        let pok = hex(&v["proof_of_knowledge"]);
        if suite == TR {
            assert_eq!(pok.len(), 64);
            let sig = frost_secp256k1_tr::Signature::deserialize(&pok).unwrap();
            assert_eq!(sig.serialize().unwrap(), pok);
            assert_eq!(&pok[..32], &hex(&v["element1"])[1..]);
        } else {
            assert_eq!(pok.len(), 65);
            let sig = frost_secp256k1::Signature::deserialize(&pok).unwrap();
            assert_eq!(sig.serialize().unwrap(), pok);
            assert_eq!(&pok[..33], hex(&v["element1"]).as_slice());
        }
        assert_eq!(&pok[pok.len() - 32..], hex(&v["scalar1"]).as_slice());
        assert_eq!(str_field(&v, "scalar1").len(), 64);
    }
}
