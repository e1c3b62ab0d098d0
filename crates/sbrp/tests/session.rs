//! Endpoint behaviour beyond the vectors: the session's failure modes (spec 4), every
//! malformed SBRP frame an endpoint must refuse (spec 2), the client's handling of frames
//! while waiting for the Accept (3.3), timeouts (3.4), trust policies with a real pin store
//! (5), and property tests (codec round trip, any flipped bit of a sealed frame fails).

use std::time::{Duration, Instant};

use keyline_core::{PinOutcome, PinStore, Policy, PromptDecision, ReplayError};
use keyline_sbrp::EphemeralKey;
use keyline_sbrp::limits::{HEADER_LEN, MAX_PAYLOAD, MAX_PLAINTEXT};
use keyline_sbrp::pins::finish_with_pins;
use keyline_sbrp::proto::control::ControlCode;
use keyline_sbrp::proto::frame::{Accept, Frame, Header, SignalCode, SignalReason};
use keyline_sbrp::proto::handshake::{ClientHandshake, DaemonIdentity};
use keyline_sbrp::proto::session::{Session, SessionConfig};
use keyline_sbrp::proto::trust::{PIN_PROTOCOL, fingerprint};
use keyline_sbrp::{Error, ErrorKind};
use proptest::prelude::*;

const SID: u64 = 0x8000_0000_0000_0001;

fn identity() -> DaemonIdentity {
    DaemonIdentity::new("daemon-1", &[3; 32]).unwrap()
}

fn start(now: Instant) -> (ClientHandshake, Accept, Session) {
    let client = ClientHandshake::new(
        "daemon-1",
        SID,
        EphemeralKey::generate().unwrap(),
        now,
        SessionConfig::default(),
    )
    .unwrap();
    let (accept, daemon) = identity()
        .accept(
            SID,
            &client.ephemeral_public(),
            EphemeralKey::generate().unwrap(),
            now,
            &SessionConfig::default(),
        )
        .unwrap();
    (client, accept, daemon)
}

fn pair() -> (Session, Session) {
    let now = Instant::now();
    let (client, accept, daemon) = start(now);
    let client = client.finish(&accept, &accept.identity_key, now).unwrap();
    (client, daemon)
}

fn payload_of(frame: &[u8]) -> Vec<u8> {
    frame[HEADER_LEN..].to_vec()
}

#[test]
fn replay_is_dropped_and_session_continues() {
    let (mut c, mut d) = pair();
    let f0 = c.seal_to_vec(b"zero").unwrap();
    let f1 = c.seal_to_vec(b"one").unwrap();
    assert_eq!(d.open(&payload_of(&f1)).unwrap(), b"one");
    assert_eq!(
        d.open(&payload_of(&f0)).unwrap(),
        b"zero",
        "reordered within the window"
    );
    let e = d.open(&payload_of(&f1)).unwrap_err();
    assert!(matches!(e, Error::SequenceError(ReplayError::Duplicate)));
    assert!(e.session_survives());
    assert_eq!(d.replays_dropped(), 1);
    assert!(!d.is_closed());
    let f2 = c.seal_to_vec(b"two").unwrap();
    assert_eq!(d.open(&payload_of(&f2)).unwrap(), b"two");
}

#[test]
fn too_old_with_the_minimum_window() {
    let now = Instant::now();
    let config = SessionConfig::default().with_replay_window(64);
    let client = ClientHandshake::new(
        "daemon-1",
        SID,
        EphemeralKey::generate().unwrap(),
        now,
        config,
    )
    .unwrap();
    let (accept, mut d) = identity()
        .accept(
            SID,
            &client.ephemeral_public(),
            EphemeralKey::generate().unwrap(),
            now,
            &config,
        )
        .unwrap();
    let mut c = client.finish(&accept, &accept.identity_key, now).unwrap();
    let frames: Vec<Vec<u8>> = (0..66).map(|_| c.seal_to_vec(b"x").unwrap()).collect();
    d.open(&payload_of(&frames[65])).unwrap();
    assert!(matches!(
        d.open(&payload_of(&frames[1])),
        Err(Error::SequenceError(ReplayError::TooOld))
    ));
    d.open(&payload_of(&frames[2])).unwrap();
    // Windows below 64 or not a multiple of 64 are refused.
    for w in [0, 32, 63, 100] {
        let bad = SessionConfig::default().with_replay_window(w);
        assert!(matches!(
            ClientHandshake::new("d", 1, EphemeralKey::generate().unwrap(), now, bad),
            Err(Error::InvalidParameter { .. })
        ));
    }
}

#[test]
fn decrypt_failure_ends_the_session() {
    let (mut c, mut d) = pair();
    let mut f = c.seal_to_vec(b"secret").unwrap();
    let last = f.len() - 1;
    f[last] ^= 1;
    let e = d.open(&payload_of(&f)).unwrap_err();
    assert!(matches!(e, Error::DecryptFailed));
    assert_eq!(e.code(), Some(0xE004));
    assert!(d.is_closed());
    assert_eq!(d.next_send_seq(), None, "keys dropped");
    let good = c.seal_to_vec(b"after").unwrap();
    assert!(matches!(
        d.open(&payload_of(&good)),
        Err(Error::SessionClosed)
    ));
    assert!(matches!(d.seal_to_vec(b"x"), Err(Error::SessionClosed)));
}

#[test]
fn wrong_direction_or_own_frames_fail() {
    let (mut c, mut d) = pair();
    let f = c.seal_to_vec(b"x").unwrap();
    // The client cannot open its own frame (other key, other direction).
    assert!(matches!(c.open(&payload_of(&f)), Err(Error::DecryptFailed)));
    // Direction field rewritten to 2 under the c2d key: decrypt_failed.
    let mut p = payload_of(&f);
    p[3] = 2;
    assert!(matches!(d.open(&p), Err(Error::DecryptFailed)));
}

#[test]
fn sequence_exhaustion_ends_the_session() {
    let (mut c, mut d) = pair();
    c.set_next_send_seq(u64::MAX - 2);
    let a = c.seal_to_vec(b"a").unwrap();
    assert!(!c.is_closed());
    let b = c.seal_to_vec(b"b").unwrap();
    assert_eq!(
        &b[HEADER_LEN + 4..HEADER_LEN + 12],
        &(u64::MAX - 1).to_be_bytes()
    );
    assert!(
        c.is_closed(),
        "the sender at 2^64 − 2 sends, then ends the session"
    );
    let e = c.seal_to_vec(b"c").unwrap_err();
    assert!(matches!(e, Error::SequenceExhausted));
    assert_eq!(e.kind(), ErrorKind::Closed);
    assert_eq!(d.open(&payload_of(&a)).unwrap(), b"a");
    assert_eq!(d.open(&payload_of(&b)).unwrap(), b"b");
}

#[test]
fn plaintext_limits_and_buffers() {
    let (mut c, mut d) = pair();
    let max = vec![0xab; MAX_PLAINTEXT];
    let f = c.seal_to_vec(&max).unwrap();
    assert_eq!(f.len(), HEADER_LEN + MAX_PAYLOAD);
    assert_eq!(d.open_frame(&Frame::decode(&f).unwrap()).unwrap(), max);
    let over = vec![0; MAX_PLAINTEXT + 1];
    assert!(matches!(
        c.seal_to_vec(&over),
        Err(Error::PayloadTooLarge { .. })
    ));
    let mut small = [0u8; 40];
    assert!(matches!(
        c.seal(b"", &mut small),
        Err(Error::BufferTooSmall { needed: 41, .. })
    ));
    assert_eq!(c.seal(b"", &mut [0u8; 41]).unwrap(), 41);
    // Another sid's frame.
    let other = Frame::Data {
        sid: 5,
        payload: &[0; 28],
    };
    assert!(matches!(
        d.open_frame(&other),
        Err(Error::UnexpectedFrame { .. })
    ));
}

#[test]
fn debug_shows_no_keys() {
    let (c, d) = pair();
    for s in [
        format!("{c:?}"),
        format!("{d:?}"),
        format!("{:?}", identity()),
    ] {
        assert!(!s.to_lowercase().contains("key:"), "{s}");
        assert!(s.len() < 300, "{s}");
    }
}

#[test]
fn daemon_deadline_runs_from_init() {
    let t0 = Instant::now();
    let (_, _, mut d) = start(t0);
    assert_eq!(d.handshake_deadline(), Some(t0 + Duration::from_secs(30)));
    d.handle_timeout(t0 + Duration::from_secs(29)).unwrap();
    assert!(matches!(
        d.handle_timeout(t0 + Duration::from_secs(30)),
        Err(Error::HandshakeTimeout)
    ));
    assert!(d.is_closed());
    // Completed handshakes have no deadline.
    let (_, _, mut d) = start(t0);
    d.handshake_complete();
    d.handle_timeout(t0 + Duration::from_secs(3600)).unwrap();
    // Custom timeout.
    let config = SessionConfig::default().with_handshake_timeout(Duration::from_secs(5));
    let client = ClientHandshake::new(
        "daemon-1",
        SID,
        EphemeralKey::generate().unwrap(),
        t0,
        config,
    )
    .unwrap();
    assert_eq!(client.deadline(), Some(t0 + Duration::from_secs(5)));
}

#[test]
fn client_finish_after_deadline_times_out() {
    let t0 = Instant::now();
    let (client, accept, _) = start(t0);
    let late = t0 + Duration::from_secs(30);
    assert!(matches!(
        client.finish(&accept, &accept.identity_key, late),
        Err(Error::HandshakeTimeout)
    ));
    // The client session keeps the deadline for the inner SBP handshake.
    let (client, accept, _) = start(t0);
    let mut s = client
        .finish(&accept, &accept.identity_key, t0 + Duration::from_secs(10))
        .unwrap();
    assert_eq!(s.handshake_deadline(), Some(t0 + Duration::from_secs(30)));
    assert!(matches!(
        s.handle_timeout(late),
        Err(Error::HandshakeTimeout)
    ));
}

#[test]
fn client_waiting_for_accept() {
    let (client, accept, _) = start(Instant::now());
    assert_eq!(
        client.handle_frame(&Frame::Ping { payload: b"1" }).unwrap(),
        None
    );
    assert_eq!(
        client.handle_frame(&Frame::Pong { payload: b"" }).unwrap(),
        None
    );
    let paused = Frame::Control {
        sid: SID,
        code: ControlCode::RateLimited,
        message: b"",
    };
    assert_eq!(client.handle_frame(&paused).unwrap(), None);
    let offline = Frame::Control {
        sid: SID,
        code: ControlCode::DaemonOffline,
        message: b"",
    };
    let e = client.handle_frame(&offline).unwrap_err();
    assert!(matches!(
        e,
        Error::Relay {
            code: ControlCode::DaemonOffline,
            ..
        }
    ));
    assert_eq!(e.code(), Some(0x0202));
    let unknown = Frame::Control {
        sid: 0,
        code: ControlCode::from_u16(0x7777),
        message: b"",
    };
    assert!(matches!(
        client.handle_frame(&unknown),
        Err(Error::Relay { .. })
    ));
    for other in [
        Frame::Data {
            sid: SID,
            payload: &[0; 28],
        },
        Frame::Signal {
            sid: SID,
            signal: SignalCode::Ready,
            reason: SignalReason::None,
        },
        Frame::HandshakeInit {
            sid: SID,
            client_ephemeral: [0; 32],
        },
        Frame::HandshakeAccept {
            sid: SID + 1,
            accept: accept.clone(),
        },
    ] {
        assert!(
            matches!(
                client.handle_frame(&other),
                Err(Error::HandshakeFailed { .. })
            ),
            "{other:?}"
        );
    }
    // Verifying with a key other than the advertised one fails.
    let other_key = DaemonIdentity::new("daemon-1", &[4; 32])
        .unwrap()
        .public_key();
    assert!(matches!(
        client.finish(&accept, &other_key, Instant::now()),
        Err(Error::HandshakeFailed { .. })
    ));
}

#[test]
fn bad_constructor_arguments() {
    let now = Instant::now();
    let c = SessionConfig::default();
    assert!(ClientHandshake::new("", 1, EphemeralKey::generate().unwrap(), now, c).is_err());
    assert!(ClientHandshake::new("d", 0, EphemeralKey::generate().unwrap(), now, c).is_err());
    assert!(
        ClientHandshake::new(
            &"x".repeat(1025),
            1,
            EphemeralKey::generate().unwrap(),
            now,
            c
        )
        .is_err()
    );
    assert!(DaemonIdentity::new("", &[0; 32]).is_err());
    assert!(
        identity()
            .accept(0, &[9; 32], EphemeralKey::generate().unwrap(), now, &c)
            .is_err()
    );
}

/// Every malformed SBRP frame of section 2 with the error the endpoint decoder reports.
#[test]
fn endpoint_decoder_errors() {
    fn frame(t: u8, sid: u64, payload: &[u8]) -> Vec<u8> {
        let mut v = Header {
            frame_type: t,
            length: payload.len() as u32,
            sid,
        }
        .to_bytes()
        .to_vec();
        v.extend_from_slice(payload);
        v
    }
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("empty", vec![], 0x0401),
        ("12 bytes", vec![3; 12], 0x0401),
        ("type 0x00", frame(0, 1, &[]), 0x0403),
        ("type 0x05", frame(5, 1, &[]), 0x0403),
        ("type 0x12", frame(0x12, 0, &[]), 0x0403),
        ("type 0x21", frame(0x21, 0, &[0, 0]), 0x0403),
        ("type 0x80", frame(0x80, 0, &[]), 0x0403),
        (
            "length 65537",
            {
                let mut f = frame(3, 1, &[]);
                f[1..5].copy_from_slice(&65537u32.to_be_bytes());
                f
            },
            0x0402,
        ),
        ("data sid 0", frame(3, 0, &[0; 28]), 0x0404),
        ("init sid 0", frame(1, 0, &[0; 32]), 0x0404),
        ("accept sid 0", frame(2, 0, &[0; 128]), 0x0404),
        ("signal sid 0", frame(4, 0, &[0, 0]), 0x0404),
        ("ping sid 1", frame(0x10, 1, &[]), 0x0404),
        ("pong sid 1", frame(0x11, 1, &[]), 0x0404),
        (
            "length longer",
            {
                let mut f = frame(3, 1, &[0; 28]);
                f[4] = 29;
                f
            },
            0x0401,
        ),
        (
            "length shorter",
            {
                let mut f = frame(3, 1, &[0; 28]);
                f.push(0);
                f
            },
            0x0401,
        ),
        ("init 33", frame(1, 1, &[0; 33]), 0x0401),
        ("accept 96", frame(2, 1, &[0; 96]), 0x0401),
        ("accept 129", frame(2, 1, &[0; 129]), 0x0401),
        ("data 0", frame(3, 1, &[]), 0x0401),
        ("signal 1", frame(4, 1, &[0]), 0x0401),
        ("signal 3", frame(4, 1, &[0, 0, 0]), 0x0401),
        ("signal code 2", frame(4, 1, &[2, 0]), 0x0401),
        ("ping 9", frame(0x10, 0, &[0; 9]), 0x0402),
        ("pong 9", frame(0x11, 0, &[0; 9]), 0x0402),
        ("control 0", frame(0x20, 0, &[]), 0x0401),
    ];
    for (name, bytes, code) in cases {
        let e = Frame::decode(&bytes).unwrap_err();
        assert_eq!(e.code(), Some(code), "{name}: {e}");
        assert_eq!(e.kind(), ErrorKind::Malformed, "{name}");
    }
    // Unknown Signal reasons decode as none; Control with any sid is fine.
    let Frame::Signal { reason, .. } = Frame::decode(&frame(4, 1, &[1, 9])).unwrap() else {
        panic!()
    };
    assert_eq!(reason, SignalReason::None);
    assert!(Frame::decode(&frame(0x20, 0, &[0x10, 0x01])).is_ok());
    assert!(Frame::decode(&frame(3, 1, &[0; MAX_PAYLOAD])).is_ok());
}

// ----- trust policies with a real pin store ----------------------------------------------

async fn run(
    store: &PinStore,
    policy: Policy,
    decision: Option<PromptDecision>,
    seed: u8,
) -> keyline_sbrp::Result<PinOutcome> {
    let now = Instant::now();
    let identity = DaemonIdentity::new("daemon-1", &[seed; 32]).unwrap();
    let client = ClientHandshake::new(
        "daemon-1",
        SID,
        EphemeralKey::generate().unwrap(),
        now,
        SessionConfig::default(),
    )
    .unwrap();
    let (accept, _) = identity
        .accept(
            SID,
            &client.ephemeral_public(),
            EphemeralKey::generate().unwrap(),
            now,
            &SessionConfig::default(),
        )
        .unwrap();
    let prompt = decision.map(|d| move |_: &str, _: &str, _: &str, _: Option<&str>| d);
    let prompt_ref = prompt.as_ref().map(|p| p as &dyn keyline_core::Prompt);
    finish_with_pins(
        store,
        policy,
        prompt_ref,
        client,
        &accept,
        now,
        1_700_000_000,
    )
    .await
    .map(|(_, outcome)| outcome)
}

fn key(seed: u8) -> [u8; 32] {
    DaemonIdentity::new("daemon-1", &[seed; 32])
        .unwrap()
        .public_key()
}

async fn store_with(pin: Option<u8>) -> PinStore {
    let store = PinStore::open_in_memory().await.unwrap();
    if let Some(seed) = pin {
        store
            .add_at(PIN_PROTOCOL, "daemon-1", &key(seed), None, false, 1)
            .await
            .unwrap();
    }
    store
}

async fn pinned(store: &PinStore) -> Option<Vec<u8>> {
    store
        .get(PIN_PROTOCOL, "daemon-1")
        .await
        .unwrap()
        .map(|p| p.key)
}

#[tokio::test]
async fn trust_policies_nine_cases() {
    // tofu
    let s = store_with(None).await;
    assert_eq!(
        run(&s, Policy::Tofu, None, 1).await.unwrap(),
        PinOutcome::NewlyPinned
    );
    assert_eq!(pinned(&s).await, Some(key(1).to_vec()));
    let s = store_with(Some(1)).await;
    assert_eq!(
        run(&s, Policy::Tofu, None, 1).await.unwrap(),
        PinOutcome::Known
    );
    let s = store_with(Some(1)).await;
    match run(&s, Policy::Tofu, None, 2).await.unwrap_err() {
        Error::IdentityKeyChanged {
            daemon_id,
            pinned_fingerprint,
            received_fingerprint,
        } => {
            assert_eq!(daemon_id, "daemon-1");
            assert_eq!(pinned_fingerprint, fingerprint(&key(1)));
            assert_eq!(received_fingerprint, fingerprint(&key(2)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        pinned(&s).await,
        Some(key(1).to_vec()),
        "tofu never re-pins"
    );

    // strict
    let s = store_with(None).await;
    assert!(matches!(
        run(&s, Policy::Strict, None, 1).await,
        Err(Error::HandshakeFailed { .. })
    ));
    assert_eq!(pinned(&s).await, None);
    let s = store_with(Some(1)).await;
    assert_eq!(
        run(&s, Policy::Strict, None, 1).await.unwrap(),
        PinOutcome::Known
    );
    let s = store_with(Some(1)).await;
    assert!(matches!(
        run(&s, Policy::Strict, None, 2).await,
        Err(Error::IdentityKeyChanged { .. })
    ));

    // prompt
    let s = store_with(None).await;
    assert_eq!(
        run(&s, Policy::Prompt, Some(PromptDecision::Pin), 1)
            .await
            .unwrap(),
        PinOutcome::NewlyPinned
    );
    let s = store_with(None).await;
    assert!(matches!(
        run(&s, Policy::Prompt, Some(PromptDecision::Reject), 1).await,
        Err(Error::HandshakeFailed { .. })
    ));
    assert_eq!(pinned(&s).await, None);
    let s = store_with(Some(1)).await;
    assert_eq!(
        run(&s, Policy::Prompt, Some(PromptDecision::Reject), 1)
            .await
            .unwrap(),
        PinOutcome::Known
    );
    let s = store_with(Some(1)).await;
    assert!(matches!(
        run(&s, Policy::Prompt, Some(PromptDecision::Pin), 2)
            .await
            .unwrap(),
        PinOutcome::Replaced { .. }
    ));
    assert_eq!(pinned(&s).await, Some(key(2).to_vec()));
    let s = store_with(Some(1)).await;
    assert!(matches!(
        run(&s, Policy::Prompt, Some(PromptDecision::Reject), 2).await,
        Err(Error::IdentityKeyChanged { .. })
    ));
    assert_eq!(pinned(&s).await, Some(key(1).to_vec()));
}

#[tokio::test]
async fn no_pin_after_a_failed_handshake() {
    let s = store_with(None).await;
    let now = Instant::now();
    let identity = identity();
    let client = ClientHandshake::new(
        "daemon-1",
        SID,
        EphemeralKey::generate().unwrap(),
        now,
        SessionConfig::default(),
    )
    .unwrap();
    let (mut accept, _) = identity
        .accept(
            SID,
            &client.ephemeral_public(),
            EphemeralKey::generate().unwrap(),
            now,
            &SessionConfig::default(),
        )
        .unwrap();
    accept.signature[0] ^= 1;
    let e = finish_with_pins(&s, Policy::Tofu, None, client, &accept, now, 1)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::HandshakeFailed { .. }));
    assert_eq!(pinned(&s).await, None, "pin only after success");
}

// ----- properties ----------------------------------------------------------------------

fn any_frame() -> impl Strategy<Value = (u8, u64, Vec<u8>)> {
    let sid = 1..=u64::MAX;
    prop_oneof![
        (sid.clone(), prop::collection::vec(any::<u8>(), 32..=32)).prop_map(|(s, p)| (1u8, s, p)),
        (sid.clone(), prop::collection::vec(any::<u8>(), 128..=128)).prop_map(|(s, p)| (2, s, p)),
        (sid.clone(), prop::collection::vec(any::<u8>(), 28..600)).prop_map(|(s, p)| (3, s, p)),
        (sid.clone(), 0u8..2, any::<u8>()).prop_map(|(s, a, b)| (4, s, vec![a, b.min(4)])),
        prop::collection::vec(any::<u8>(), 0..=8).prop_map(|p| (0x10, 0, p)),
        prop::collection::vec(any::<u8>(), 0..=8).prop_map(|p| (0x11, 0, p)),
        (any::<u64>(), prop::collection::vec(any::<u8>(), 2..64)).prop_map(|(s, p)| (0x20, s, p)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn codec_round_trip((t, sid, payload) in any_frame()) {
        let mut bytes = Header { frame_type: t, length: payload.len() as u32, sid }.to_bytes().to_vec();
        bytes.extend_from_slice(&payload);
        let frame = Frame::decode(&bytes).unwrap();
        let encoded = frame.to_vec().unwrap();
        prop_assert_eq!(&encoded, &bytes);
        prop_assert_eq!(Frame::decode(&encoded).unwrap(), frame);
    }

    #[test]
    fn decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Frame::decode(&bytes);
        let _ = keyline_sbrp::proto::relay::validate(&bytes, keyline_sbrp::proto::relay::Sender::Daemon, |_| true);
    }

    #[test]
    fn any_flipped_bit_fails(plaintext in prop::collection::vec(any::<u8>(), 0..200), bit in any::<prop::sample::Index>()) {
        let (mut c, mut d) = pair();
        let frame = c.seal_to_vec(&plaintext).unwrap();
        let mut bad = frame.clone();
        let i = bit.index(bad.len() * 8);
        bad[i / 8] ^= 1 << (i % 8);
        let rejected = match Frame::decode(&bad) {
            Err(_) => true,
            Ok(Frame::Data { sid, payload }) if sid == d.sid() => d.open(payload).is_err(),
            Ok(_) => true,
        };
        prop_assert!(rejected, "flipped bit {} accepted", i);
        // The untouched frame still opens unless the flip ended the session.
        if !d.is_closed() {
            prop_assert_eq!(d.open(&frame[HEADER_LEN..]).unwrap(), plaintext);
        }
    }
}
