//! Property tests: peer input never panics the token validator or the relay core, and the
//! core only ever forwards the exact bytes of a frame that passed section 7 validation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use keyline_relay::metrics::Metrics;
use keyline_relay::pairing::{Action, DaemonCore};
use keyline_relay::{KeySet, Limits, TokenPolicy, validate_token};
use keyline_sbrp::proto::relay::{Sender, Verdict, validate};
use proptest::prelude::*;

fn frame_strategy() -> impl Strategy<Value = Vec<u8>> {
    let header = (
        prop_oneof![
            Just(1u8),
            Just(2),
            Just(3),
            Just(4),
            Just(0x10),
            Just(0x11),
            Just(0x20),
            any::<u8>()
        ],
        prop_oneof![Just(0u64), Just(5), Just(6), any::<u64>()],
        proptest::collection::vec(any::<u8>(), 0..200),
        any::<bool>(),
    );
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        header.prop_map(|(t, sid, payload, honest)| {
            let len = if honest {
                payload.len() as u32
            } else {
                payload.len() as u32 ^ 1
            };
            let mut out = vec![t];
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&sid.to_be_bytes());
            out.extend_from_slice(&payload);
            out
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tokens_never_panic(parts in proptest::collection::vec("[A-Za-z0-9_\\-]{0,80}", 0..5), raw in ".{0,200}") {
        let keys = KeySet::new();
        let policy = TokenPolicy::new("iss");
        let joined = parts.join(".");
        let _ = validate_token(&joined, &keys, &policy, 1_800_000_000);
        let _ = validate_token(&raw, &keys, &policy, 1_800_000_000);
    }

    #[test]
    fn core_forwards_only_valid_frames_unchanged(
        steps in proptest::collection::vec((any::<bool>(), frame_strategy()), 1..60)
    ) {
        let metrics = Arc::new(Metrics::default());
        let mut core = DaemonCore::new(&Limits::default(), metrics);
        let t0 = Instant::now();
        const DAEMON: u64 = 1;
        const CLIENT: u64 = 2;
        let _ = core.daemon_connected(DAEMON, true, None, t0);
        let _ = core.admit_client(5, 2_000_000_000, false, t0, 1_800_000_000);
        let _ = core.client_connected(CLIENT, 5);
        for (i, (from_client, message)) in steps.into_iter().enumerate() {
            let now = t0 + Duration::from_millis(i as u64);
            let was_paired = core.pairing_state(5).is_some();
            let bytes = Bytes::from(message.clone());
            let (actions, target, verdict) = if from_client {
                let v = validate(&message, Sender::Client { token_sid: 5 }, |_| false);
                (core.on_client_message(CLIENT, 5, bytes, now), DAEMON, v.ok())
            } else {
                let v = validate(&message, Sender::Daemon, |sid| was_paired && sid == 5);
                (core.on_daemon_message(DAEMON, bytes, now), CLIENT, v.ok())
            };
            for action in &actions {
                if let Action::Send { conn, frame } = action
                    && *conn == target
                    && frame.first() != Some(&0x20)
                {
                    // Anything but a relay Control sent to the other side is a forward: the
                    // very bytes, of a frame that validated as forwardable.
                    prop_assert_eq!(frame.as_ref(), message.as_slice());
                    let forwardable = matches!(verdict, Some(Verdict::Forward { .. }));
                    prop_assert!(forwardable);
                }
            }
            let _ = core.on_tick(now, 1_800_000_000);
        }
    }
}
