//! `shared/vectors/bip340/test-vectors.csv` through [`keyline_signer::bip340::verify`], the
//! verification every aggregate signature of the engine passes; and the rows' secret keys
//! imported and signing through FROST under the rows' public keys.

mod common;

use common::{SeededRng, libsecp_verify};
use keyline_signer::{Error, bip340, local};
use keyline_testkit::vectors_dir;

struct Row {
    index: usize,
    secret: Option<[u8; 32]>,
    public: [u8; 32],
    message: Vec<u8>,
    signature: Vec<u8>,
    valid: bool,
    comment: String,
}

fn rows() -> Vec<Row> {
    let path = vectors_dir().join("bip340/test-vectors.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "index,secret key,public key,aux_rand,message,signature,verification result,comment"
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.splitn(8, ',').collect();
            assert_eq!(f.len(), 8, "{line}");
            Row {
                index: f[0].parse().unwrap(),
                secret: (!f[1].is_empty()).then(|| hex::decode(f[1]).unwrap().try_into().unwrap()),
                public: hex::decode(f[2]).unwrap().try_into().unwrap(),
                message: hex::decode(f[4]).unwrap(),
                signature: hex::decode(f[5]).unwrap(),
                valid: match f[6] {
                    "TRUE" => true,
                    "FALSE" => false,
                    other => panic!("bad verdict {other}"),
                },
                comment: f[7].to_string(),
            }
        })
        .collect()
}

#[test]
fn every_row_verifies_as_expected() {
    let rows = rows();
    assert_eq!(rows.len(), 19);
    let (mut accepted, mut rejected) = (0, 0);
    for row in &rows {
        let result = bip340::verify(&row.public, &row.message, &row.signature);
        assert_eq!(
            result.is_ok(),
            row.valid,
            "row {} ({}): {result:?}",
            row.index,
            row.comment
        );
        if row.valid {
            accepted += 1;
        } else {
            rejected += 1;
            assert!(
                matches!(result, Err(Error::InvalidSignature | Error::InvalidPeerKey)),
                "row {}: {result:?}",
                row.index
            );
        }
        // libsecp256k1 agrees on every row.
        let sig: [u8; 64] = row.signature.as_slice().try_into().unwrap();
        assert_eq!(libsecp_verify(&row.public, &row.message, &sig), row.valid);
    }
    assert_eq!((accepted, rejected), (9, 10));
    eprintln!("bip340 vectors: {accepted} accepted, {rejected} rejected, as expected");
}

#[test]
fn rows_with_a_secret_key_sign_through_frost() {
    let mut rng = SeededRng::new(340);
    let mut signed = 0;
    for row in rows().into_iter().filter(|r| r.secret.is_some()) {
        let mut secret = row.secret.unwrap();
        let (public, shares) = local::import(&mut secret, 2, 3, &mut rng).unwrap();
        assert_eq!(public.npub(), row.public, "row {}", row.index);
        let sig = local::sign(&public, &[&shares[0], &shares[2]], &row.message, &mut rng).unwrap();
        bip340::verify(&row.public, &row.message, &sig).unwrap();
        assert!(libsecp_verify(&row.public, &row.message, &sig));
        signed += 1;
    }
    assert_eq!(signed, 8);
}
