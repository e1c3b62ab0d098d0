//! Fixed keys of the targets, from handshake case 0 of
//! `shared/vectors/shs/handshake-vectors.json` (SSB main-net network key), and the
//! box-stream (key, nonce) pairs used by `boxstream-vectors.json`. Hard-coded so the fuzz
//! binaries need no files; `tests/gen_seeds.rs` checks them against the vectors.

use std::sync::OnceLock;

use keyline_shs::{DirectionKeys, Keypair, NetworkKey};

/// Network key of case 0: the SSB main net.
pub const NETWORK: NetworkKey = NetworkKey::SSB_MAIN_NET;

/// Case 0 client long-term Ed25519 seed.
pub const CLIENT_SEED: [u8; 32] =
    h32("9a2e701412223b42897524b0cdc88bbd5ac3fc5c4d20b1a91fdc4f62a3cc3a71");
/// Case 0 client long-term public key.
pub const CLIENT_PK: [u8; 32] =
    h32("44cf569678ba9317d465e6fc9337291fb1c56983f33264818a9f1d3fd9bc8255");
/// Case 0 client ephemeral X25519 secret.
pub const CLIENT_EPH_SK: [u8; 32] =
    h32("38f8f37cd5b1720c65b651b747dd43cedc21d977b6b9f94651de854eaabd6a6b");
/// Case 0 server long-term Ed25519 seed.
pub const SERVER_SEED: [u8; 32] =
    h32("c9fa3588f8f7153df80d8065aec16535bb013c43c59e4fa9d01035d45f974b33");
/// Case 0 server long-term public key.
pub const SERVER_PK: [u8; 32] =
    h32("e0797604a09a53055eb65a6657e19bcf70504bd20dd3d10d569aad17b9057a0f");
/// Case 0 server ephemeral X25519 secret.
pub const SERVER_EPH_SK: [u8; 32] =
    h32("c008bc075bf55e8d29f4c2e14b24da42e89565faa647dbfd28e1656f5818ac49");

/// Case 0 msg1: what the fixed client always sends first.
pub const CASE0_MSG1: [u8; 64] = h64(
    "85d36efcc5bd868d574c785c0f8b23b86e954647e0f626abc3c83e9cb61d390315f838b8b5cb6e7c04392850e7bfa647176ba579ffd63fa82a86e4e96b523653",
);
/// Case 0 msg2: what the fixed server always answers to a good msg1.
pub const CASE0_MSG2: [u8; 64] = h64(
    "b6133cb63578e304d3b80e1517c0e7939237fe4e191a3b81fc25e4a89597d8c9288e2522ce03775a621e9b186c26e1a70bcd26b154cc52a90a23603fc9b6b964",
);

/// Case 0 client→server key (`outcome.client_to_server.key`).
pub const C2S_KEY: [u8; 32] =
    h32("eade87984a256bf20c6e2effc957f703d9a9b1eb677c16776dba4b61509134cd");
/// Case 0 client→server starting nonce.
pub const C2S_NONCE: [u8; 24] = h24("b6133cb63578e304d3b80e1517c0e7939237fe4e191a3b81");
/// Case 0 server→client key.
pub const S2C_KEY: [u8; 32] =
    h32("caa5f1fbe9a6b5dcd6ffa05a677633bde5da937de37444974d5798e02d972020");
/// Case 0 server→client starting nonce.
pub const S2C_NONCE: [u8; 24] = h24("85d36efcc5bd868d574c785c0f8b23b86e954647e0f626ab");

/// Every (key, nonce) pair a box-stream vector is encoded or decoded with; the decoder
/// target picks one by index so that seeds from every vector decode as intended.
pub const BOX_KEYS: [([u8; 32], [u8; 24]); 6] = [
    (C2S_KEY, C2S_NONCE),
    (S2C_KEY, S2C_NONCE),
    // stream `nonce_carry`
    (
        C2S_KEY,
        h24("b6133cb63578e304d3b80e1517c0e7939237fe4e19fffffe"),
    ),
    // stream `nonce_wrap_2_192`
    (
        C2S_KEY,
        h24("fffffffffffffffffffffffffffffffffffffffffffffffe"),
    ),
    // decode case `wrong_key`
    (S2C_KEY, C2S_NONCE),
    // decode case `wrong_nonce`
    (
        C2S_KEY,
        h24("b6133cb63578e304d3b80e1517c0e7939237fe4e191a3b82"),
    ),
];

/// The box-stream keys of index `i` (taken modulo the table length).
pub fn box_keys(i: u8) -> DirectionKeys {
    let (key, nonce) = BOX_KEYS[usize::from(i) % BOX_KEYS.len()];
    DirectionKeys::new(key, nonce)
}

/// The case 0 client key pair (computed once).
pub fn client_keypair() -> Keypair {
    static KEY: OnceLock<Keypair> = OnceLock::new();
    KEY.get_or_init(|| Keypair::from_seed(&CLIENT_SEED)).clone()
}

/// The case 0 server key pair (computed once).
pub fn server_keypair() -> Keypair {
    static KEY: OnceLock<Keypair> = OnceLock::new();
    KEY.get_or_init(|| Keypair::from_seed(&SERVER_SEED)).clone()
}

/// `hmac(N, eph_pub) | eph_pub` for an arbitrary 32-byte `eph_pub`: a hello whose HMAC
/// verifies, so the fuzzer reaches the checks behind it (low-order keys, msg3/msg4).
pub fn hello_for(eph_pub: &[u8; 32]) -> [u8; 64] {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha512> as KeyInit>::new_from_slice(&NETWORK.0)
        .expect("HMAC takes a key of any length");
    mac.update(eph_pub);
    let tag = mac.finalize().into_bytes();
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&tag[..32]);
    out[32..].copy_from_slice(eph_pub);
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not lowercase hex"),
    }
}

const fn hex<const N: usize>(s: &str) -> [u8; N] {
    let s = s.as_bytes();
    assert!(s.len() == 2 * N, "wrong hex length");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = nibble(s[2 * i]) << 4 | nibble(s[2 * i + 1]);
        i += 1;
    }
    out
}

const fn h24(s: &str) -> [u8; 24] {
    hex(s)
}
const fn h32(s: &str) -> [u8; 32] {
    hex(s)
}
const fn h64(s: &str) -> [u8; 64] {
    hex(s)
}
