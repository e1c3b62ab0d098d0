//! A `Pair`-style deterministic harness: a client and a daemon joined by an in-memory link
//! that drops, duplicates, delays (reorders) and corrupts frames under a manual clock and
//! seeded keys. Invariants after every step: no panic; no plaintext delivered twice; every
//! delivered plaintext is exactly what was sent with that sequence number; a corrupted frame
//! is never delivered and ends the receiving session; a duplicate never does; the handshake
//! deadline fires exactly at 30 s unless the inner handshake completed.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use keyline_sbrp::limits::HEADER_LEN;
use keyline_sbrp::proto::frame::Frame;
use keyline_sbrp::proto::handshake::{ClientHandshake, DaemonIdentity};
use keyline_sbrp::proto::session::{Session, SessionConfig};
use keyline_sbrp::{EphemeralKey, Error};
use proptest::prelude::*;

fn pair(seed: [u8; 32], window: usize, t0: Instant) -> (Session, Session) {
    let config = SessionConfig::default().with_replay_window(window);
    let identity = DaemonIdentity::new("pair-daemon", &seed).unwrap();
    let mut c_eph = seed;
    c_eph[0] ^= 0x55;
    let mut d_eph = seed;
    d_eph[1] ^= 0xaa;
    let client = ClientHandshake::new(
        "pair-daemon",
        0x1234,
        EphemeralKey::from_secret(c_eph),
        t0,
        config,
    )
    .unwrap();
    let init = client.init_frame();
    let Frame::HandshakeInit {
        sid,
        client_ephemeral,
    } = Frame::decode(&init).unwrap()
    else {
        panic!()
    };
    let (accept, daemon) = identity
        .accept(
            sid,
            &client_ephemeral,
            EphemeralKey::from_secret(d_eph),
            t0,
            &config,
        )
        .unwrap();
    let frame = DaemonIdentity::accept_frame(sid, &accept).unwrap();
    let accept = client
        .handle_frame(&Frame::decode(&frame).unwrap())
        .unwrap()
        .unwrap();
    let client = client.finish(&accept, &accept.identity_key, t0).unwrap();
    (client, daemon)
}

/// What the link does with one sent frame.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Deliver { delay: u8 },
    Drop,
    Duplicate { delay: u8, again: u8 },
    Corrupt { delay: u8, byte: u16 },
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        12 => any::<u8>().prop_map(|d| Fate::Deliver { delay: d % 40 }),
        2 => Just(Fate::Drop),
        3 => (any::<u8>(), any::<u8>()).prop_map(|(d, a)| Fate::Duplicate { delay: d % 40, again: a }),
        1 => (any::<u8>(), any::<u16>()).prop_map(|(d, b)| Fate::Corrupt { delay: d % 40, byte: b }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn lossy_reordering_link(
        seed in any::<[u8; 32]>(),
        window in prop_oneof![Just(64usize), Just(128)],
        client_to_daemon in any::<bool>(),
        sends in prop::collection::vec((0usize..300, fate()), 1..120),
    ) {
        let t0 = Instant::now();
        let (mut client, mut daemon) = pair(seed, window, t0);
        let (sender, receiver) = if client_to_daemon { (&mut client, &mut daemon) } else { (&mut daemon, &mut client) };
        // (arrival time, send index, frame bytes, corrupted)
        let mut link: Vec<(u32, usize, Vec<u8>, bool)> = Vec::new();
        let mut sent = Vec::new();
        for (i, (len, fate)) in sends.iter().enumerate() {
            let plaintext: Vec<u8> = (0..*len).map(|j| (i * 31 + j) as u8).collect();
            let frame = sender.seal_to_vec(&plaintext).unwrap();
            sent.push(plaintext);
            let now = i as u32;
            match *fate {
                Fate::Deliver { delay } => link.push((now + u32::from(delay), i, frame, false)),
                Fate::Drop => {}
                Fate::Duplicate { delay, again } => {
                    link.push((now + u32::from(delay), i, frame.clone(), false));
                    link.push((now + u32::from(again), i, frame, false));
                }
                Fate::Corrupt { delay, byte } => {
                    let mut bad = frame;
                    let at = HEADER_LEN + usize::from(byte) % (bad.len() - HEADER_LEN);
                    bad[at] ^= 0x01;
                    link.push((now + u32::from(delay), i, bad, true));
                }
            }
        }
        link.sort_by_key(|(t, i, _, _)| (*t, *i));
        let mut delivered = HashSet::new();
        let mut highest: Option<usize> = None;
        for (_, index, bytes, corrupted) in link {
            let frame = Frame::decode(&bytes).unwrap();
            let was_closed = receiver.is_closed();
            match receiver.open_frame(&frame) {
                Ok(plaintext) => {
                    prop_assert!(!corrupted, "corrupted frame {} delivered", index);
                    prop_assert!(!was_closed);
                    prop_assert_eq!(&plaintext, &sent[index]);
                    prop_assert!(delivered.insert(index), "frame {} delivered twice", index);
                    highest = highest.max(Some(index));
                }
                Err(Error::SequenceError(_)) => {
                    // Sequence numbers are send indexes: a refused authentic frame was either
                    // delivered before or is older than the window.
                    prop_assert!(
                        corrupted
                            || delivered.contains(&index)
                            || highest.is_some_and(|h| h >= index + window),
                        "frame {} refused wrongly", index
                    );
                    prop_assert!(!receiver.is_closed(), "a replay must not end the session");
                }
                Err(Error::DecryptFailed) => {
                    prop_assert!(corrupted, "authentic frame {} failed to open", index);
                    prop_assert!(receiver.is_closed());
                }
                Err(Error::SessionClosed) => prop_assert!(was_closed),
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }

    #[test]
    fn handshake_deadline(seed in any::<[u8; 32]>(), secs in 0u64..60, complete in any::<bool>()) {
        let t0 = Instant::now();
        let (mut client, mut daemon) = pair(seed, 128, t0);
        if complete {
            client.handshake_complete();
            daemon.handshake_complete();
        }
        let now = t0 + Duration::from_secs(secs);
        for s in [&mut client, &mut daemon] {
            let result = s.handle_timeout(now);
            if !complete && secs >= 30 {
                prop_assert!(matches!(result, Err(Error::HandshakeTimeout)));
                prop_assert!(s.is_closed());
            } else {
                prop_assert!(result.is_ok());
                prop_assert!(!s.is_closed());
            }
        }
    }
}
