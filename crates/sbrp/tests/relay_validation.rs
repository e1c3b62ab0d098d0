//! `relay_validation` vectors (all 28 cases) through the sans-IO validator: the Control
//! frame (code and sid) the relay sends, whether it closes the connection and, for daemon
//! cases, whether the pairing ends. The relay crate runs the same cases over WebSockets.

use keyline_sbrp::proto::control::ControlCode;
use keyline_sbrp::proto::frame::{Frame, FrameType, SignalCode, SignalReason};
use keyline_sbrp::proto::relay::{Rejection, Sender, Verdict, control_frame, pong, validate};
use keyline_testkit::{array, hex, load_json, str_field};

#[test]
fn relay_validation_cases() {
    let v = load_json("sbrp/sbrp-v1-vectors.json");
    let rv = &v["relay_validation"];
    assert_eq!(array(rv, "order").len(), 9);
    let paired: Vec<u64> = array(rv, "daemon_paired_sids")
        .iter()
        .map(|s| s.as_str().unwrap().parse().unwrap())
        .collect();
    let cases = array(rv, "cases");
    assert_eq!(cases.len(), 28);
    for case in cases {
        let name = str_field(case, "name");
        let sender = match str_field(case, "sender") {
            "client" => Sender::Client {
                token_sid: str_field(case, "token_sid").parse().unwrap(),
            },
            "daemon" => Sender::Daemon,
            other => panic!("sender {other}"),
        };
        let frame = hex(&case["frame"]);
        let rejection = validate(&frame, sender, |sid| paired.contains(&sid)).expect_err(name);
        let code = case["expect_code"].as_u64().unwrap() as u16;
        assert_eq!(rejection.code.to_u16(), code, "{name}");
        assert_eq!(
            rejection.code.name(),
            str_field(case, "expect_name"),
            "{name}"
        );
        let sid: u64 = str_field(case, "expect_sid").parse().unwrap();
        assert_eq!(rejection.sid, sid, "{name}");
        assert_eq!(
            rejection.closes_connection,
            case["closes_connection"].as_bool().unwrap(),
            "{name}"
        );
        if let Some(ends) = case.get("ends_pairing") {
            assert_eq!(rejection.ends_pairing, ends.as_bool().unwrap(), "{name}");
        }
        // The Control frame itself decodes to the same code and sid.
        let control = rejection.control_frame();
        match Frame::decode(&control).unwrap() {
            Frame::Control {
                sid: s,
                code: c,
                message,
            } => {
                assert_eq!((s, c.to_u16()), (sid, code), "{name}");
                assert!(message.is_empty());
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn valid_messages() {
    let client = Sender::Client { token_sid: 9 };
    let never = |_| false;
    let init = Frame::HandshakeInit {
        sid: 9,
        client_ephemeral: [1; 32],
    }
    .to_vec()
    .unwrap();
    assert_eq!(
        validate(&init, client, never),
        Ok(Verdict::Forward {
            frame_type: FrameType::HandshakeInit,
            sid: 9
        })
    );
    let ping = Frame::Ping {
        payload: b"12345678",
    }
    .to_vec()
    .unwrap();
    assert_eq!(
        validate(&ping, client, never),
        Ok(Verdict::Pong {
            payload: b"12345678"
        })
    );
    assert_eq!(
        pong(b"12345678"),
        Frame::Pong {
            payload: b"12345678"
        }
        .to_vec()
        .unwrap()
    );
    let pong_frame = Frame::Pong { payload: b"" }.to_vec().unwrap();
    assert_eq!(
        validate(&pong_frame, Sender::Daemon, never),
        Ok(Verdict::Liveness)
    );
    // Unknown Signal reason is none.
    let mut signal = Frame::Signal {
        sid: 7,
        signal: SignalCode::Close,
        reason: SignalReason::None,
    }
    .to_vec()
    .unwrap();
    signal[14] = 0x77;
    assert_eq!(
        validate(&signal, Sender::Daemon, |s| s == 7),
        Ok(Verdict::Signal {
            sid: 7,
            signal: SignalCode::Close,
            reason: SignalReason::None
        })
    );
    // A Signal for an unknown sid: session_not_found with that sid, connection stays.
    let r = validate(&signal, Sender::Daemon, never).unwrap_err();
    assert_eq!(
        (r.code, r.sid, r.closes_connection),
        (ControlCode::SessionNotFound, 7, false)
    );
    let data = Frame::Data {
        sid: 7,
        payload: &[0; 28],
    }
    .to_vec()
    .unwrap();
    assert_eq!(
        validate(&data, Sender::Daemon, |s| s == 7),
        Ok(Verdict::Forward {
            frame_type: FrameType::Data,
            sid: 7
        })
    );
    assert_eq!(
        Rejection::text_message().control_frame(),
        control_frame(ControlCode::MalformedFrame, 0)
    );
    assert_eq!(
        Rejection::oversize_message().code,
        ControlCode::PayloadTooLarge
    );
}
