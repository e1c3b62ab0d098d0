//! An `shs1-test` server executable (spec §17): `argv[1]` network key (hex), `argv[2]` the
//! 64-byte libsodium secret key (hex), `argv[3]` the public key (hex). Speaks the handshake
//! over stdin/stdout with the same sans-IO core as the TCP code, then writes the 112-byte
//! outcome. Exits 1, writing nothing more, on any failure.
#![forbid(unsafe_code)]

mod shs1test;

use std::process::ExitCode;

use keyline_shs::proto::ServerHandshake;
use keyline_shs::{EphemeralKey, Keypair, NetworkKey};
use shs1test::{hex_arg, receive, send};

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let [_, network, secret, public] = args.as_slice() else {
        return Err("usage: shs1testserver NETWORK_KEY_HEX SECRET_KEY_HEX PUBLIC_KEY_HEX".into());
    };
    let network = NetworkKey(hex_arg(network, "the network key")?);
    let keypair = Keypair::from_libsodium_secret(&hex_arg(secret, "the secret key")?)
        .map_err(|e| e.to_string())?;
    if keypair.public().as_bytes() != &hex_arg::<32>(public, "the public key")? {
        return Err("the public key does not belong to the secret key".into());
    }
    let server = ServerHandshake::new(network, keypair, EphemeralKey::generate());
    let (msg2, server) = server
        .read_hello(&receive("msg1")?)
        .map_err(|e| e.to_string())?;
    send(&msg2)?;
    let pending = server
        .read_auth(&receive("msg3")?)
        .map_err(|e| e.to_string())?;
    let (msg4, outcome) = pending.accept();
    send(&msg4)?;
    send(&outcome.shs1_test_bytes()[..])
}

fn main() -> ExitCode {
    shs1test::exit("shs1testserver", run())
}
