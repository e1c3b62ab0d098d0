//! Shared test helpers: deterministic RNGs and independent secp256k1 computations (k256 0.14,
//! not the engine's code paths).
#![allow(dead_code, unreachable_pub)]

use k256::elliptic_curve::group::GroupEncoding;
use k256::elliptic_curve::point::AffineCoordinates;
use k256::{AffinePoint, ProjectivePoint, Scalar};
use keyline_signer::rng::rand_core::{self, CryptoRng, RngCore};
use sha2::{Digest, Sha256};

/// A deterministic RNG: SHA-256(seed ‖ counter) blocks. Test-only (the `CryptoRng` marker is
/// what the engine's API demands; the stream is predictable by design).
pub struct SeededRng {
    seed: [u8; 32],
    counter: u64,
    buf: [u8; 32],
    used: usize,
}

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self::from_label(&seed.to_be_bytes())
    }

    pub fn from_label(label: &[u8]) -> Self {
        Self {
            seed: Sha256::digest(label).into(),
            counter: 0,
            buf: [0; 32],
            used: 32,
        }
    }
}

impl RngCore for SeededRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            if self.used == 32 {
                let mut h = Sha256::new();
                h.update(self.seed);
                h.update(self.counter.to_be_bytes());
                self.buf = h.finalize().into();
                self.counter += 1;
                self.used = 0;
            }
            *byte = self.buf[self.used];
            self.used += 1;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for SeededRng {}

/// Replays scripted bytes (the randomness a vector file fixes), then continues with a seeded
/// stream. `exhausted()` tells whether every scripted byte was consumed.
pub struct ScriptRng {
    script: Vec<u8>,
    pos: usize,
    rest: SeededRng,
}

impl ScriptRng {
    pub fn new(chunks: &[&[u8]]) -> Self {
        Self {
            script: chunks.concat(),
            pos: 0,
            rest: SeededRng::from_label(b"script-rng-rest"),
        }
    }

    pub fn exhausted(&self) -> bool {
        self.pos == self.script.len()
    }
}

impl RngCore for ScriptRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            if self.pos < self.script.len() {
                *byte = self.script[self.pos];
                self.pos += 1;
            } else {
                self.rest.fill_bytes(std::slice::from_mut(byte));
            }
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for ScriptRng {}

/// A random valid secret key drawn from `rng`.
pub fn random_secret(rng: &mut impl RngCore) -> [u8; 32] {
    loop {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        if k256::schnorr::SigningKey::from_slice(&b).is_ok() {
            return b;
        }
    }
}

/// The scalar of canonical bytes.
pub fn scalar(bytes: &[u8; 32]) -> Scalar {
    use k256::elliptic_curve::PrimeField;
    Option::from(Scalar::from_repr((*bytes).into())).expect("canonical scalar")
}

/// d·G for a secret key.
pub fn public_point(secret: &[u8; 32]) -> ProjectivePoint {
    ProjectivePoint::GENERATOR * scalar(secret)
}

/// 33-byte SEC1 compressed encoding.
pub fn sec1(p: &ProjectivePoint) -> [u8; 33] {
    let bytes = p.to_affine().to_bytes();
    let mut out = [0u8; 33];
    out.copy_from_slice(bytes.as_slice());
    out
}

/// Parses 33-byte SEC1.
pub fn point(bytes: &[u8]) -> ProjectivePoint {
    let arr: [u8; 33] = bytes.try_into().expect("33 bytes");
    let p: Option<AffinePoint> = AffinePoint::from_bytes(&arr.into()).into();
    ProjectivePoint::from(p.expect("valid point"))
}

pub fn x_only(p: &ProjectivePoint) -> [u8; 32] {
    p.to_affine().x().into()
}

pub fn y_is_odd(p: &ProjectivePoint) -> bool {
    p.to_affine().y_is_odd().into()
}

/// The x-only public key of a secret, through k256's BIP340 signing key.
pub fn npub_of(secret: &[u8; 32]) -> [u8; 32] {
    k256::schnorr::SigningKey::from_slice(secret)
        .unwrap()
        .verifying_key()
        .to_bytes()
        .into()
}

/// Independent BIP340 verification with k256 (not through the engine's wrapper).
pub fn k256_verify(npub: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    let Ok(key) = k256::schnorr::VerifyingKey::from_slice(npub) else {
        return false;
    };
    let Ok(sig) = k256::schnorr::Signature::from_slice(sig) else {
        return false;
    };
    key.verify_raw(msg, &sig).is_ok()
}

/// Ordinary single-key ECDH with k256: x(secret · peer_point).
pub fn k256_ecdh(secret: &[u8; 32], peer: &ProjectivePoint) -> [u8; 32] {
    let sk = k256::NonZeroScalar::try_from(scalar(secret)).expect("non-zero");
    let pk = k256::PublicKey::from_affine(peer.to_affine()).expect("valid public key");
    let shared = k256::ecdh::diffie_hellman(&sk, pk.as_affine());
    let mut out = [0u8; 32];
    out.copy_from_slice(shared.raw_secret_bytes().as_slice());
    out
}

/// BIP340 tagged hash.
pub fn tagged_hash(tag: &str, data: &[u8]) -> [u8; 32] {
    let t = Sha256::digest(tag.as_bytes());
    let mut h = Sha256::new();
    h.update(t);
    h.update(t);
    h.update(data);
    h.finalize().into()
}

/// BIP341 key-path tweak without a script tree: Q = P_even + int(hash_TapTweak(x(P)))·G.
pub fn taptweak(p: &ProjectivePoint) -> ProjectivePoint {
    use k256::elliptic_curve::ops::Reduce;
    let p_even = if y_is_odd(p) { -*p } else { *p };
    let t = tagged_hash("TapTweak", &x_only(p));
    let t = <Scalar as Reduce<k256::FieldBytes>>::reduce(&t.into());
    p_even + ProjectivePoint::GENERATOR * t
}

/// Every subset of `items` with exactly `k` elements.
pub fn subsets<T: Copy>(items: &[T], k: usize) -> Vec<Vec<T>> {
    if k == 0 {
        return vec![vec![]];
    }
    if items.len() < k {
        return vec![];
    }
    let mut out = Vec::new();
    for mut rest in subsets(&items[1..], k - 1) {
        rest.insert(0, items[0]);
        out.push(rest);
    }
    out.extend(subsets(&items[1..], k));
    out
}

/// Independent BIP340 verification with libsecp256k1 (the `secp256k1` crate).
pub fn libsecp_verify(npub: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    let secp = secp256k1::Secp256k1::verification_only();
    let Ok(key) = secp256k1::XOnlyPublicKey::from_byte_array(*npub) else {
        return false;
    };
    let sig = secp256k1::schnorr::Signature::from_byte_array(*sig);
    secp.verify_schnorr(&sig, msg, &key).is_ok()
}
