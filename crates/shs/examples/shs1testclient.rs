//! An `shs1-test` client executable (spec §17): `argv[1]` network key (hex), `argv[2]` the
//! server's public key (hex). Makes up its own keys, speaks the handshake over stdin/stdout
//! with the same sans-IO core as the TCP code, then writes the 112-byte outcome. Exits 1,
//! writing nothing more, on any failure.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::process::ExitCode;

use keyline_shs::proto::ClientHandshake;
use keyline_shs::{EphemeralKey, Keypair, NetworkKey};

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let [_, network, server] = args.as_slice() else {
        return Err("usage: shs1testclient NETWORK_KEY_HEX SERVER_PUBLIC_KEY_HEX".into());
    };
    let network = NetworkKey::from_hex(network).map_err(|e| e.to_string())?;
    let server: [u8; 32] = hex::decode(server)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the server key must be 64 hex characters")?;
    let client = ClientHandshake::new(
        network,
        Keypair::generate(),
        &server,
        EphemeralKey::generate(),
    )
    .map_err(|e| e.to_string())?;
    let (mut input, mut output) = (std::io::stdin().lock(), std::io::stdout().lock());
    let (msg1, client) = client.hello();
    output
        .write_all(&msg1)
        .and_then(|()| output.flush())
        .map_err(|e| e.to_string())?;
    let mut msg2 = [0u8; 64];
    input
        .read_exact(&mut msg2)
        .map_err(|e| format!("reading msg2: {e}"))?;
    let (msg3, client) = client.read_hello(&msg2).map_err(|e| e.to_string())?;
    output
        .write_all(&msg3)
        .and_then(|()| output.flush())
        .map_err(|e| e.to_string())?;
    let mut msg4 = [0u8; 80];
    input
        .read_exact(&mut msg4)
        .map_err(|e| format!("reading msg4: {e}"))?;
    let outcome = client.read_accept(&msg4).map_err(|e| e.to_string())?;
    output
        .write_all(&outcome.shs1_test_bytes()[..])
        .map_err(|e| e.to_string())?;
    output.flush().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("shs1testclient: {err}");
            ExitCode::FAILURE
        }
    }
}
