//! Every bound in `keyline_sbrp::limits` (and the handshake's daemon id bound) at its edge
//! and one step past it.

use std::time::{Duration, Instant};

use keyline_sbrp::limits::*;
use keyline_sbrp::proto::frame::{Frame, Header};
use keyline_sbrp::proto::handshake::{ClientHandshake, MAX_DAEMON_ID_LEN};
use keyline_sbrp::proto::relay::{Sender, validate};
use keyline_sbrp::proto::sbp::{Reassembler, SbpBody, SbpFrame, SbpHandshake, split_into_chunks};
use keyline_sbrp::proto::session::SessionConfig;
use keyline_sbrp::{EphemeralKey, Error, SbpCode};

fn raw(t: u8, sid: u64, payload: &[u8]) -> Vec<u8> {
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

#[test]
fn payload_and_frame() {
    assert_eq!(MAX_FRAME, 65_549);
    assert_eq!(MAX_PLAINTEXT, 65_508);
    let at = raw(3, 1, &vec![0; MAX_PAYLOAD]);
    assert_eq!(at.len(), MAX_FRAME);
    assert!(Frame::decode(&at).is_ok());
    assert!(validate(&at, Sender::Client { token_sid: 1 }, |_| true).is_ok());
    let past = raw(3, 1, &vec![0; MAX_PAYLOAD + 1]);
    assert!(matches!(
        Frame::decode(&past),
        Err(Error::PayloadTooLarge { .. })
    ));
    assert!(validate(&past, Sender::Client { token_sid: 1 }, |_| true).is_err());
    assert!(
        Frame::Data {
            sid: 1,
            payload: &vec![0; MAX_PAYLOAD + 1]
        }
        .to_vec()
        .is_err()
    );
}

#[test]
fn ping_payload() {
    assert!(Frame::decode(&raw(0x10, 0, &[0; MAX_PING_PAYLOAD])).is_ok());
    assert!(Frame::decode(&raw(0x10, 0, &[0; MAX_PING_PAYLOAD + 1])).is_err());
    assert!(
        Frame::Pong {
            payload: &[0; MAX_PING_PAYLOAD + 1]
        }
        .to_vec()
        .is_err()
    );
}

#[test]
fn handshake_timeout_and_window() {
    let t0 = Instant::now();
    let c = ClientHandshake::new(
        "d",
        1,
        EphemeralKey::generate().unwrap(),
        t0,
        SessionConfig::default(),
    )
    .unwrap();
    assert!(
        c.handle_timeout(t0 + HANDSHAKE_TIMEOUT - Duration::from_nanos(1))
            .is_ok()
    );
    assert!(c.handle_timeout(t0 + HANDSHAKE_TIMEOUT).is_err());
    assert_eq!(
        SessionConfig::default().replay_window,
        DEFAULT_REPLAY_WINDOW
    );
    let ok = SessionConfig::default().with_replay_window(MIN_REPLAY_WINDOW);
    assert!(ClientHandshake::new("d", 1, EphemeralKey::generate().unwrap(), t0, ok).is_ok());
    let past = SessionConfig::default().with_replay_window(MIN_REPLAY_WINDOW - 1);
    assert!(ClientHandshake::new("d", 1, EphemeralKey::generate().unwrap(), t0, past).is_err());
}

#[test]
fn daemon_id_length() {
    let t0 = Instant::now();
    let at = "x".repeat(MAX_DAEMON_ID_LEN);
    assert!(
        ClientHandshake::new(
            &at,
            1,
            EphemeralKey::generate().unwrap(),
            t0,
            SessionConfig::default()
        )
        .is_ok()
    );
    let past = "x".repeat(MAX_DAEMON_ID_LEN + 1);
    assert!(
        ClientHandshake::new(
            &past,
            1,
            EphemeralKey::generate().unwrap(),
            t0,
            SessionConfig::default()
        )
        .is_err()
    );
}

#[test]
fn sbp_handshake_json() {
    let base = r#"{"protocol":"sideband","version":"1","peerId":""}"#.len();
    let at = format!(
        r#"{{"protocol":"sideband","version":"1","peerId":"{}"}}"#,
        "x".repeat(MAX_SBP_HANDSHAKE_JSON - base)
    );
    assert_eq!(at.len(), MAX_SBP_HANDSHAKE_JSON);
    assert!(SbpHandshake::from_json(at.as_bytes()).is_ok());
    let past = format!(
        r#"{{"protocol":"sideband","version":"1","peerId":"{}"}}"#,
        "x".repeat(MAX_SBP_HANDSHAKE_JSON - base + 1)
    );
    assert!(SbpHandshake::from_json(past.as_bytes()).is_err());
    let mut hs = SbpHandshake::keyline("x".repeat(MAX_SBP_HANDSHAKE_JSON));
    assert!(hs.to_json().is_err());
    hs.peer_id = "p".into();
    assert!(hs.to_json().is_ok());
}

#[test]
fn subject_length() {
    let at = "s".repeat(MAX_SUBJECT_LEN);
    let f = SbpFrame {
        frame_id: [0; 16],
        timestamp: None,
        body: SbpBody::Message {
            subject: &at,
            data: b"",
        },
    };
    let bytes = f.encode().unwrap();
    assert_eq!(SbpFrame::decode(&bytes).unwrap(), f);
    let past = "s".repeat(MAX_SUBJECT_LEN + 1);
    let f = SbpFrame {
        frame_id: [0; 16],
        timestamp: None,
        body: SbpBody::Message {
            subject: &past,
            data: b"",
        },
    };
    assert!(f.encode().is_err());
}

#[test]
fn chunk_slice_and_total() {
    assert_eq!(MAX_CHUNK_SLICE, 65_482);
    assert_eq!(CHUNK_HEADER_LEN + MAX_CHUNK_SLICE, MAX_PLAINTEXT);
    let msg = vec![1u8; MAX_CHUNK_SLICE + 1];
    let chunks = split_into_chunks(&msg, [0; 16], MAX_CHUNK_SLICE).unwrap();
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[0].len(), MAX_PLAINTEXT);
    assert!(split_into_chunks(&msg, [0; 16], MAX_CHUNK_SLICE + 1).is_err());
    assert!(split_into_chunks(&msg, [0; 16], 0).is_err());
    // Reassembly maximum: total = max opens a run, max + 1 is refused.
    let mut r = Reassembler::new(100);
    assert!(r.push([0; 16], 0, 100, b"x").unwrap().is_none());
    let mut r = Reassembler::new(100);
    assert!(matches!(
        r.push([0; 16], 0, 101, b"x"),
        Err(Error::Sbp {
            code: SbpCode::ProtocolViolation,
            ..
        })
    ));
    assert_eq!(DEFAULT_MAX_CHUNKED_MESSAGE, 16 * 1024 * 1024);
    let mut r = Reassembler::default();
    assert!(
        r.push([0; 16], 0, DEFAULT_MAX_CHUNKED_MESSAGE as u32, b"x")
            .unwrap()
            .is_none()
    );
    let mut r = Reassembler::default();
    assert!(
        r.push([0; 16], 0, DEFAULT_MAX_CHUNKED_MESSAGE as u32 + 1, b"x")
            .is_err()
    );
}
