//! Runs N complete handshakes (both roles, sans-IO, fixed keys) for instruction counting:
//! `scripts/callgrind-shs` runs it under `valgrind --tool=callgrind` with N and 2N and reports
//! the difference per handshake, which is repeatable run to run on a busy machine.
#![forbid(unsafe_code)]

use keyline_shs::proto::{ClientHandshake, ServerHandshake};
use keyline_shs::{EphemeralKey, Keypair, NetworkKey};

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let client = Keypair::from_seed(&[1; 32]);
    let server = Keypair::from_seed(&[2; 32]);
    let server_pk = *server.public().as_bytes();
    let net = NetworkKey::default();
    for i in 0..n {
        let mut eph = [3u8; 32];
        eph[..4].copy_from_slice(&i.to_le_bytes());
        let c = ClientHandshake::new(
            net,
            client.clone(),
            &server_pk,
            EphemeralKey::from_secret(eph),
        )
        .expect("valid key");
        eph[4] = 0xff;
        let s = ServerHandshake::new(net, server.clone(), EphemeralKey::from_secret(eph));
        let (msg1, c) = c.hello();
        let (msg2, s) = s.read_hello(&msg1).expect("msg1");
        let (msg3, c) = c.read_hello(&msg2).expect("msg2");
        let (msg4, _) = s.read_auth(&msg3).expect("msg3").accept();
        std::hint::black_box(c.read_accept(&msg4).expect("msg4"));
    }
}
