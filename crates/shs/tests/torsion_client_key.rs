//! A client key that passes strict Ed25519 verification but lies outside the prime-order
//! subgroup (`[a]B + T` with T of order 8) is refused with `invalid_client_key` (spec §6 step 5;
//! keyline checks what JS does not). Random input never reaches this path, so the key and its
//! signature are built here by hand: a signature verifies under the cofactorless equation
//! exactly when the challenge `k` is a multiple of 8.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{KeyInit, Mac};
use keyline_shs::proto::ServerHandshake;
use keyline_shs::{EphemeralKey, Keypair, NetworkKey};
use sha2::{Digest, Sha256, Sha512};

fn hello(network: &NetworkKey, ephemeral_public: &[u8; 32]) -> [u8; 64] {
    let mut mac = <hmac::Hmac<Sha512> as KeyInit>::new_from_slice(&network.0).expect("key");
    mac.update(ephemeral_public);
    let mut msg = [0u8; 64];
    msg[..32].copy_from_slice(&mac.finalize().into_bytes()[..32]);
    msg[32..].copy_from_slice(ephemeral_public);
    msg
}

#[test]
fn strictly_valid_signature_by_a_mixed_order_key_is_refused() {
    let network = NetworkKey::default();
    let server = Keypair::from_seed(&[2; 32]);
    let server_pk = *server.public().as_bytes();
    let handshake = ServerHandshake::new(network, server.clone(), EphemeralKey::generate());

    let client_ephemeral = [3u8; 32];
    let a_pub = x25519_dalek::x25519(client_ephemeral, x25519_dalek::X25519_BASEPOINT_BYTES);
    let (msg2, handshake) = handshake
        .read_hello(&hello(&network, &a_pub))
        .expect("msg1");
    let b_pub: [u8; 32] = msg2[32..].try_into().expect("32 bytes");
    let ab = x25519_dalek::x25519(client_ephemeral, b_pub);
    let a_big_b = x25519_dalek::x25519(client_ephemeral, *server.public().curve25519());
    let ab_hash: [u8; 32] = Sha256::digest(ab).into();
    let k3: [u8; 32] = Sha256::digest([&network.0[..], &ab, &a_big_b].concat()).into();

    // A = [a]B + T, T of order 8: decodes, is not of small order, is not torsion-free.
    let a = Scalar::from_bytes_mod_order([9; 32]);
    let key = (ED25519_BASEPOINT_POINT * a + EIGHT_TORSION[1])
        .compress()
        .to_bytes();
    let signed = [&network.0[..], &server_pk, &ab_hash].concat();
    let signature = (1u64..)
        .find_map(|r| {
            let r = Scalar::from(r);
            let big_r = (ED25519_BASEPOINT_POINT * r).compress().to_bytes();
            let k = Scalar::from_hash(
                Sha512::new()
                    .chain_update(big_r)
                    .chain_update(key)
                    .chain_update(&signed),
            );
            // [k]T vanishes only when k is a multiple of 8.
            k.as_bytes()[0].is_multiple_of(8).then(|| {
                let mut sig = [0u8; 64];
                sig[..32].copy_from_slice(&big_r);
                sig[32..].copy_from_slice((r + k * a).as_bytes());
                sig
            })
        })
        .expect("one in eight challenges works");
    let verifying = VerifyingKey::from_bytes(&key).expect("decodes");
    verifying
        .verify_strict(&signed, &Signature::from_bytes(&signature))
        .expect("the strict verifier accepts it: only the torsion check can refuse");

    use crypto_secretbox::aead::{AeadInPlace, KeyInit as _};
    let mut msg3 = [0u8; 112];
    msg3[16..80].copy_from_slice(&signature);
    msg3[80..].copy_from_slice(&key);
    let tag = crypto_secretbox::XSalsa20Poly1305::new(&k3.into())
        .encrypt_in_place_detached(&[0u8; 24].into(), b"", &mut msg3[16..])
        .expect("seal");
    msg3[..16].copy_from_slice(&tag);
    let err = handshake.read_auth(&msg3).expect_err("mixed-order key");
    assert_eq!(err.code(), "invalid_client_key", "{err}");
}
