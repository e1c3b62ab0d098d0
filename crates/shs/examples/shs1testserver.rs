//! An `shs1-test` server executable (spec §17): `argv[1]` network key (hex), `argv[2]` the
//! 64-byte libsodium secret key (hex), `argv[3]` the public key (hex). Speaks the handshake
//! over stdin/stdout with the same sans-IO core as the TCP code, then writes the 112-byte
//! outcome. Exits 1, writing nothing more, on any failure.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::process::ExitCode;

use keyline_shs::proto::ServerHandshake;
use keyline_shs::{EphemeralKey, Keypair, NetworkKey};

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let [_, network, secret, public] = args.as_slice() else {
        return Err("usage: shs1testserver NETWORK_KEY_HEX SECRET_KEY_HEX PUBLIC_KEY_HEX".into());
    };
    let network = NetworkKey::from_hex(network).map_err(|e| e.to_string())?;
    let secret: [u8; 64] = hex::decode(secret)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the secret key must be 128 hex characters")?;
    let keypair = Keypair::from_libsodium_secret(&secret).map_err(|e| e.to_string())?;
    if hex::encode(keypair.public().as_bytes()) != public.to_ascii_lowercase() {
        return Err("the public key does not belong to the secret key".into());
    }
    let (mut input, mut output) = (std::io::stdin().lock(), std::io::stdout().lock());
    let server = ServerHandshake::new(network, keypair, EphemeralKey::generate());
    let mut msg1 = [0u8; 64];
    input
        .read_exact(&mut msg1)
        .map_err(|e| format!("reading msg1: {e}"))?;
    let (msg2, server) = server.read_hello(&msg1).map_err(|e| e.to_string())?;
    output
        .write_all(&msg2)
        .and_then(|()| output.flush())
        .map_err(|e| e.to_string())?;
    let mut msg3 = [0u8; 112];
    input
        .read_exact(&mut msg3)
        .map_err(|e| format!("reading msg3: {e}"))?;
    let (msg4, outcome) = server.read_auth(&msg3).map_err(|e| e.to_string())?.accept();
    output.write_all(&msg4).map_err(|e| e.to_string())?;
    output
        .write_all(&outcome.shs1_test_bytes()[..])
        .map_err(|e| e.to_string())?;
    output.flush().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("shs1testserver: {err}");
            ExitCode::FAILURE
        }
    }
}
