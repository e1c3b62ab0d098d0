//! Property tests of the handshake core (spec checklist 7 and 8).

use keyline_shs::proto::{ClientHandshake, ServerHandshake};
use keyline_shs::{EphemeralKey, Keypair, NetworkKey};
use proptest::prelude::*;

#[derive(Debug)]
struct Keys {
    network: NetworkKey,
    client: Keypair,
    server: Keypair,
    client_eph: [u8; 32],
    server_eph: [u8; 32],
}

fn keys() -> impl Strategy<Value = Keys> {
    (
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
    )
        .prop_map(|(n, c, s, ce, se)| Keys {
            network: NetworkKey(n),
            client: Keypair::from_seed(&c),
            server: Keypair::from_seed(&s),
            client_eph: ce,
            server_eph: se,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn both_sides_agree_and_directions_are_crossed(k in keys()) {
        let c = ClientHandshake::new(k.network, k.client.clone(), k.server.public().as_bytes(), EphemeralKey::from_secret(k.client_eph)).expect("key");
        let s = ServerHandshake::new(k.network, k.server.clone(), EphemeralKey::from_secret(k.server_eph));
        let (msg1, c) = c.hello();
        let (msg2, s) = s.read_hello(&msg1).expect("msg1");
        let (msg3, c) = c.read_hello(&msg2).expect("msg2");
        let pending = s.read_auth(&msg3).expect("msg3");
        prop_assert_eq!(pending.client(), k.client.public());
        let (msg4, server) = pending.accept();
        let client = c.read_accept(&msg4).expect("msg4");
        prop_assert_eq!(client.peer(), k.server.public());
        prop_assert_eq!(client.send().key(), server.recv().key());
        prop_assert_eq!(client.send().nonce(), server.recv().nonce());
        prop_assert_eq!(client.recv().key(), server.send().key());
        prop_assert_eq!(client.recv().nonce(), server.send().nonce());
        prop_assert_ne!(client.send().key(), client.recv().key());
    }

    #[test]
    fn any_flipped_bit_fails_at_that_message(k in keys(), which in 0usize..4, bit in 0usize..(112 * 8)) {
        let c = ClientHandshake::new(k.network, k.client.clone(), k.server.public().as_bytes(), EphemeralKey::from_secret(k.client_eph)).expect("key");
        let s = ServerHandshake::new(k.network, k.server.clone(), EphemeralKey::from_secret(k.server_eph));
        let flip = |msg: &mut [u8]| {
            let bit = bit % (msg.len() * 8);
            msg[bit / 8] ^= 1 << (bit % 8);
        };
        let (mut msg1, c) = c.hello();
        if which == 0 {
            flip(&mut msg1);
            // The receiving side fails here and so produces no msg2.
            prop_assert!(s.read_hello(&msg1).is_err());
            return Ok(());
        }
        let (mut msg2, s) = s.read_hello(&msg1).expect("msg1");
        if which == 1 {
            flip(&mut msg2);
            prop_assert!(c.read_hello(&msg2).is_err());
            return Ok(());
        }
        let (mut msg3, c) = c.read_hello(&msg2).expect("msg2");
        if which == 2 {
            flip(&mut msg3);
            prop_assert!(s.read_auth(&msg3).is_err());
            return Ok(());
        }
        let (mut msg4, _) = s.read_auth(&msg3).expect("msg3").accept();
        flip(&mut msg4);
        prop_assert!(c.read_accept(&msg4).is_err());
    }
}
