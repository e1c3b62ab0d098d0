//! keyline-sbrp's peer-facing decoders: SBRP frames (endpoint decoder and relay validator),
//! the HandshakeAccept (parse, verify, derive), Data frames under a fixed session key, SBP
//! frames, the SBP handshake and the RPC envelope, and the chunk reassembler.

use std::time::Instant;

use keyline_sbrp::EphemeralKey;
use keyline_sbrp::proto::frame::{Accept, Frame};
use keyline_sbrp::proto::handshake::ClientHandshake;
use keyline_sbrp::proto::relay::{self, Sender};
use keyline_sbrp::proto::rpc::Envelope;
use keyline_sbrp::proto::sbp::{SbpEndpoint, SbpEvent, SbpFrame, SbpHandshake};
use keyline_sbrp::proto::session::{Direction, Opener, Sealer, SessionConfig};

use crate::Cursor;

/// Fixed client ephemeral private key for selector 1 (RFC 7748 §6.1 Alice, as in the vectors).
const CLIENT_EPHEMERAL: [u8; 32] = [
    0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2, 0x66, 0x45,
    0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a,
];
/// Fixed session key for selector 2 (the vectors' first client → daemon key).
const SESSION_KEY: [u8; 32] = [
    0xe2, 0x24, 0xaf, 0xac, 0x2d, 0xbc, 0x56, 0xa4, 0x49, 0x4f, 0x6e, 0x07, 0xaa, 0x90, 0x3f, 0x7c,
    0xff, 0xf8, 0xbe, 0x87, 0x40, 0xa0, 0xf0, 0xd3, 0x84, 0xe5, 0x44, 0x16, 0xc8, 0xf9, 0x35, 0xed,
];
/// Reassembly limit for selector 4, small so the fuzzer reaches completion.
const CHUNK_LIMIT: usize = 4096;

/// Input: one selector byte, then:
/// * 0: a whole SBRP frame. Invariants: no panic; what decodes re-encodes to the same bytes
///   (an unknown Signal reason re-encodes as none);
///   the relay validator never accepts what the endpoint decoder calls malformed in the
///   header (short, oversize, unknown type, bad sid).
/// * 1: the daemon id (1 length byte, then bytes, lossily UTF-8), then a HandshakeAccept
///   payload (should be 128 bytes). The fixed client handshake parses it, verifies it with
///   the advertised key and derives a session. Invariant: no panic; a finished session can
///   seal a frame.
/// * 2: a run of Data payloads, each `len u16le ‖ bytes`, opened under a fixed
///   client → daemon key and a 64-counter window. Invariants: no panic; the window's highest
///   counter never decreases; every accepted payload was exactly 28 bytes longer than its
///   plaintext. The fixed key's own sealed frames are mixed in when the length's top bit is
///   set (`len & 0x7fff` plaintext bytes sealed at the next counter).
/// * 3: an SBP frame, then (same bytes) the SBP handshake JSON and an RPC envelope under
///   `rpc` and `event`. Invariants: no panic; SBP frames re-encode to the same bytes;
///   envelopes re-encode to JSON that decodes to an envelope of the same kind, subject and cid
///   (values may differ in the last bit of a float).
/// * 4: a run of SBP frames (`len u16le ‖ frame`) fed to an endpoint that negotiated
///   `keyline.chunk/1` with a 4096-byte limit. Invariants: no panic; reassembled messages are
///   at most the limit.
pub fn sbrp_decoders(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % 5 {
        0 => frame(bytes),
        1 => accept(bytes),
        2 => open(bytes),
        3 => sbp(bytes),
        _ => chunks(bytes),
    }
}

fn frame(bytes: &[u8]) {
    let decoded = Frame::decode(bytes);
    if let Ok(frame) = &decoded {
        let encoded = frame.to_vec().expect("decoded frames encode");
        if let Frame::Signal { .. } = frame {
            // Unknown Signal reasons decode as `none` (spec 2.3), so only the reason byte
            // may differ.
            assert_eq!(encoded[..encoded.len() - 1], bytes[..bytes.len() - 1]);
        } else {
            assert_eq!(encoded, bytes);
        }
        let _ = frame.control_message();
    }
    for sender in [Sender::Client { token_sid: 1 }, Sender::Daemon] {
        let verdict = relay::validate(bytes, sender, |sid| sid % 2 == 1);
        if let Err(rejection) = verdict {
            let control = rejection.control_frame();
            assert!(
                Frame::decode(&control).is_ok(),
                "relay Control frames decode"
            );
        }
        if let Err(e) = &decoded
            && matches!(e.code(), Some(0x0403 | 0x0404))
        {
            assert!(
                verdict.is_err(),
                "relay accepted a frame with a bad type or sid"
            );
        }
    }
}

fn accept(bytes: &[u8]) {
    let mut cursor = Cursor::new(bytes);
    let id_len = usize::from(cursor.byte());
    let daemon_id = String::from_utf8_lossy(cursor.take(id_len)).into_owned();
    let payload = cursor.rest();
    let Ok(accept) = Accept::from_bytes(payload) else {
        return;
    };
    assert_eq!(accept.to_bytes().as_slice(), payload);
    let now = Instant::now();
    let Ok(client) = ClientHandshake::new(
        &daemon_id,
        7,
        EphemeralKey::from_secret(CLIENT_EPHEMERAL),
        now,
        SessionConfig::default(),
    ) else {
        return;
    };
    let frame = Frame::HandshakeAccept {
        sid: 7,
        accept: accept.clone(),
    };
    let got = client.handle_frame(&frame).expect("the Accept for the sid");
    assert_eq!(got.as_ref(), Some(&accept));
    if let Ok(mut session) = client.finish(&accept, &accept.identity_key, now) {
        assert!(session.seal_to_vec(b"ok").is_ok());
    }
}

fn open(bytes: &[u8]) {
    let Ok(window) = keyline_core::ReplayWindow::new(64) else {
        return;
    };
    let mut opener = Opener::new(&SESSION_KEY, Direction::ClientToDaemon, window);
    let mut sealer = Sealer::new(&SESSION_KEY, Direction::ClientToDaemon);
    let mut cursor = Cursor::new(bytes);
    let mut highest = None;
    while !cursor.is_empty() {
        let len = u16::from_le_bytes(cursor.array::<2>());
        let payload = if len & 0x8000 != 0 {
            let plaintext = cursor.take(usize::from(len & 0x7fff));
            let mut out = vec![0u8; plaintext.len() + 28];
            let n = sealer.seal_payload(plaintext, &mut out).expect("seals");
            out.truncate(n);
            out
        } else {
            cursor.take(usize::from(len)).to_vec()
        };
        if let Ok(plaintext) = opener.open(&payload) {
            assert_eq!(plaintext.len() + 28, payload.len());
        }
        let now = opener.window().highest();
        assert!(now >= highest, "the window never moves back");
        highest = now;
    }
}

fn sbp(bytes: &[u8]) {
    if let Ok(frame) = SbpFrame::decode(bytes) {
        assert_eq!(frame.encode().expect("decoded SBP frames encode"), bytes);
    }
    if let Ok(hs) = SbpHandshake::from_json(bytes) {
        let json = hs.to_json().expect("a parsed handshake encodes");
        assert_eq!(SbpHandshake::from_json(&json).expect("own JSON parses"), hs);
    }
    for subject in ["rpc", "event"] {
        if let Ok(env) = Envelope::decode(subject, bytes) {
            let again = Envelope::decode(env.subject(), &env.to_json()).expect("own JSON parses");
            // serde_json's default float parsing is not bit-exact, so compare the shape.
            assert_eq!(again.cid(), env.cid());
            assert_eq!(again.subject(), env.subject());
            assert_eq!(std::mem::discriminant(&again), std::mem::discriminant(&env));
        }
    }
}

fn chunks(bytes: &[u8]) {
    let mut ep = SbpEndpoint::new(SbpHandshake::keyline("fuzz"), CHUNK_LIMIT);
    let hs = SbpHandshake::keyline("peer")
        .to_frame([0; 16])
        .expect("handshake encodes");
    assert!(matches!(ep.receive(&hs), Ok(SbpEvent::Handshake(_))));
    let mut cursor = Cursor::new(bytes);
    while !cursor.is_empty() {
        let len = u16::from_le_bytes(cursor.array::<2>());
        let frame = cursor.take(usize::from(len));
        match ep.receive(frame) {
            Ok(SbpEvent::Message { subject, data, .. }) => {
                assert!(subject.len() + data.len() <= CHUNK_LIMIT.max(frame.len()));
            }
            Ok(_) => {}
            Err(_) => {
                // A fatal error ends the session in real use; start over like a new one.
                ep = SbpEndpoint::new(SbpHandshake::keyline("fuzz"), CHUNK_LIMIT);
                let _ = ep.receive(&hs);
            }
        }
    }
}
