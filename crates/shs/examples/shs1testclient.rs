//! An `shs1-test` client executable (spec §17): `argv[1]` network key (hex), `argv[2]` the
//! server's public key (hex). Makes up its own keys, speaks the handshake over stdin/stdout
//! with the same sans-IO core as the TCP code, then writes the 112-byte outcome. Exits 1,
//! writing nothing more, on any failure.
#![forbid(unsafe_code)]

mod shs1test;

use std::process::ExitCode;

use keyline_shs::proto::ClientHandshake;
use keyline_shs::{EphemeralKey, Keypair, NetworkKey};
use shs1test::{hex_arg, receive, send};

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let [_, network, server] = args.as_slice() else {
        return Err("usage: shs1testclient NETWORK_KEY_HEX SERVER_PUBLIC_KEY_HEX".into());
    };
    let network = NetworkKey(hex_arg(network, "the network key")?);
    let server: [u8; 32] = hex_arg(server, "the server key")?;
    let client = ClientHandshake::new(
        network,
        Keypair::generate(),
        &server,
        EphemeralKey::generate(),
    )
    .map_err(|e| e.to_string())?;
    let (msg1, client) = client.hello();
    send(&msg1)?;
    let (msg3, client) = client
        .read_hello(&receive("msg2")?)
        .map_err(|e| e.to_string())?;
    send(&msg3)?;
    let outcome = client
        .read_accept(&receive("msg4")?)
        .map_err(|e| e.to_string())?;
    send(&outcome.shs1_test_bytes()[..])
}

fn main() -> ExitCode {
    shs1test::exit("shs1testclient", run())
}
