//! SBP frames, the SBP handshake, the RPC envelope and `keyline.chunk/1`: the vectors'
//! inner-protocol plaintexts, `chunking.example`, all 12 `chunking.negative` runs, the SBP
//! error frame, the malformed cases of sections 9–11, and a 1 MiB RPC result end to end
//! through two sessions.

use std::time::Instant;

use keyline_sbrp::EphemeralKey;
use keyline_sbrp::limits::{DEFAULT_MAX_CHUNKED_MESSAGE, MAX_PLAINTEXT};
use keyline_sbrp::proto::handshake::{ClientHandshake, DaemonIdentity};
use keyline_sbrp::proto::rpc::{Cid, Envelope, SubjectKind, subject_kind};
use keyline_sbrp::proto::sbp::{
    ControlOp, Reassembler, SbpBody, SbpEndpoint, SbpEvent, SbpFrame, SbpHandshake, error_frame,
    split_into_chunks,
};
use keyline_sbrp::proto::session::{Session, SessionConfig};
use keyline_sbrp::{Error, SbpCode};
use keyline_testkit::{array, hex, load_json};
use serde_json::{Value, json};

fn vectors() -> Value {
    load_json("sbrp/sbrp-v1-vectors.json")
}

fn code_of(result: Result<impl std::fmt::Debug, Error>) -> SbpCode {
    match result {
        Err(Error::Sbp { code, .. }) => code,
        other => panic!("expected an SBP error, got {other:?}"),
    }
}

fn keyline_endpoint(peer: &str) -> SbpEndpoint {
    SbpEndpoint::new(SbpHandshake::keyline(peer), DEFAULT_MAX_CHUNKED_MESSAGE)
}

/// An endpoint that has received a keyline peer's handshake (chunking negotiated).
fn negotiated() -> SbpEndpoint {
    let mut ep = keyline_endpoint("me");
    let hs = SbpHandshake::keyline("peer").to_frame([9; 16]).unwrap();
    assert!(matches!(ep.receive(&hs).unwrap(), SbpEvent::Handshake(_)));
    assert!(ep.chunking());
    ep
}

#[test]
fn vector_plaintexts_are_sbp_frames() {
    let v = vectors();
    let h = &array(&v, "handshakes")[0];
    let msgs = array(h, "messages");
    let plain: Vec<Vec<u8>> = msgs.iter().map(|m| hex(&m["plaintext"])).collect();

    // 0 and 1: both handshakes, re-encoded byte for byte.
    for (i, peer) in [(0, "client-1"), (1, "daemon-1")] {
        let f = SbpFrame::decode(&plain[i]).unwrap();
        let SbpBody::Control {
            op: ControlOp::Handshake,
            data,
        } = f.body
        else {
            panic!("message {i} is not a handshake")
        };
        let hs = SbpHandshake::from_json(data).unwrap();
        assert_eq!(hs, SbpHandshake::keyline(peer));
        assert_eq!(hs.to_frame(f.frame_id).unwrap(), plain[i]);
        assert_eq!(f.encode().unwrap(), plain[i]);
    }

    // 2 and 3: the echo request and its response, through endpoints.
    let mut daemon = keyline_endpoint("daemon-1");
    let mut client = keyline_endpoint("client-1");
    assert!(matches!(
        daemon.receive(&plain[0]).unwrap(),
        SbpEvent::Handshake(_)
    ));
    assert!(matches!(
        client.receive(&plain[1]).unwrap(),
        SbpEvent::Handshake(_)
    ));
    let SbpEvent::Message {
        frame_id,
        subject,
        data,
    } = daemon.receive(&plain[2]).unwrap()
    else {
        panic!("request")
    };
    assert_eq!(subject_kind(&subject), Some(SubjectKind::Rpc));
    let req = Envelope::decode(&subject, &data).unwrap();
    let Envelope::Request {
        method,
        params,
        cid,
    } = &req
    else {
        panic!("{req:?}")
    };
    assert_eq!(method, "$sideband/echo");
    assert_eq!(params, &Some(json!("hello")));
    assert_eq!(cid.0, frame_id, "cid is the request's frame id");
    assert_eq!(req.to_json(), data, "envelope re-encodes byte for byte");
    let frames = daemon
        .encode_message(frame_id, req.subject(), &req.to_json())
        .unwrap();
    assert_eq!(frames, vec![plain[2].clone()]);

    let SbpEvent::Message {
        frame_id: rid,
        subject,
        data,
    } = client.receive(&plain[3]).unwrap()
    else {
        panic!("response")
    };
    let resp = Envelope::decode(&subject, &data).unwrap();
    assert_eq!(
        resp,
        Envelope::Response {
            cid: Cid(frame_id),
            result: Some(json!("hello"))
        }
    );
    let again = client
        .encode_message(rid, resp.subject(), &resp.to_json())
        .unwrap();
    assert_eq!(again, vec![plain[3].clone()]);
}

#[test]
fn chunking_example_reassembles() {
    let v = vectors();
    let c = &v["chunking"];
    assert_eq!(c["capability"], "keyline.chunk/1");
    assert_eq!(c["max_total_default"], DEFAULT_MAX_CHUNKED_MESSAGE);
    assert_eq!(
        c["max_slice_in_one_data_frame"],
        keyline_sbrp::limits::MAX_CHUNK_SLICE
    );
    let ex = &c["example"];
    let original = hex(&ex["original_frame"]);
    assert_eq!(original.len() as u64, ex["total_length"].as_u64().unwrap());
    let chunks: Vec<Vec<u8>> = array(ex, "chunks").iter().map(hex).collect();
    let frame_id: [u8; 16] = original[2..18].try_into().unwrap();
    let size = ex["slice_size"].as_u64().unwrap() as usize;
    assert_eq!(
        split_into_chunks(&original, frame_id, size).unwrap(),
        chunks
    );

    let mut ep = negotiated();
    for (i, chunk) in chunks.iter().enumerate() {
        let event = ep.receive(chunk).unwrap();
        if i + 1 < chunks.len() {
            assert_eq!(event, SbpEvent::ChunkBuffered);
        } else {
            let SbpEvent::Message {
                frame_id: id,
                subject,
                data,
            } = event
            else {
                panic!()
            };
            assert_eq!(id, frame_id);
            let SbpFrame {
                body:
                    SbpBody::Message {
                        subject: s,
                        data: d,
                    },
                ..
            } = SbpFrame::decode(&original).unwrap()
            else {
                panic!()
            };
            assert_eq!((subject.as_str(), data.as_slice()), (s, d));
        }
    }
    // Interleaving another frame between chunks is fine.
    let mut ep = negotiated();
    let ping = SbpFrame {
        frame_id: [1; 16],
        timestamp: None,
        body: SbpBody::Control {
            op: ControlOp::Ping,
            data: b"",
        },
    }
    .encode()
    .unwrap();
    ep.receive(&chunks[0]).unwrap();
    assert!(matches!(
        ep.receive(&ping).unwrap(),
        SbpEvent::Control {
            op: ControlOp::Ping,
            ..
        }
    ));
    for chunk in &chunks[1..] {
        ep.receive(chunk).unwrap();
    }
}

#[test]
fn chunking_negative_runs() {
    let v = vectors();
    let c = &v["chunking"];
    let negative = array(c, "negative");
    assert_eq!(negative.len(), 12);
    for case in negative {
        let name = case["name"].as_str().unwrap();
        assert_eq!(case["expect"], "protocol_violation");
        let mut ep = negotiated();
        let mut failed = None;
        for frame in array(case, "frames") {
            if let Err(e) = ep.receive(&hex(frame)) {
                failed = Some(e);
                break;
            }
        }
        let e = failed.unwrap_or_else(|| panic!("{name}: accepted"));
        assert_eq!(
            code_of(Err::<(), _>(e)),
            SbpCode::ProtocolViolation,
            "{name}"
        );
    }
    // The Error frame sent before closing.
    let expected = hex(&c["sbp_error_protocol_violation"]);
    let f = SbpFrame::decode(&expected).unwrap();
    assert_eq!(
        error_frame(
            f.frame_id,
            SbpCode::ProtocolViolation,
            "chunk sequence violation"
        ),
        expected
    );
    assert_eq!(f.error_message().unwrap(), "chunk sequence violation");
}

#[test]
fn reassembler_checks_total_before_allocating() {
    let mut r = Reassembler::new(1000);
    let e = r.push([1; 16], 0, 1001, b"x");
    assert_eq!(code_of(e), SbpCode::ProtocolViolation);
    assert!(!r.is_open());
    // u32::MAX total under the default maximum: refused, nothing allocated.
    let mut r = Reassembler::default();
    assert_eq!(
        code_of(r.push([1; 16], 0, u32::MAX, b"x")),
        SbpCode::ProtocolViolation
    );
    // A failed run resets; a new run can start.
    assert!(r.push([1; 16], 0, 3, b"ab").unwrap().is_none());
    assert_eq!(
        code_of(r.push([1; 16], 2, 3, b"c")),
        SbpCode::ProtocolViolation
    );
    assert!(!r.is_open());
}

#[test]
fn chunks_without_the_capability_are_violations() {
    let mut ep = keyline_endpoint("me");
    let mut plain = SbpHandshake::keyline("peer");
    plain.caps = vec!["rpc".into()];
    ep.receive(&plain.to_frame([0; 16]).unwrap()).unwrap();
    assert!(!ep.chunking());
    let chunk = split_into_chunks(&[1, 0], [0; 16], 1).unwrap();
    assert_eq!(code_of(ep.receive(&chunk[0])), SbpCode::ProtocolViolation);
    // And oversize messages cannot be sent to such a peer.
    let big = vec![b'x'; MAX_PLAINTEXT];
    assert!(matches!(
        ep.encode_message([2; 16], "rpc", &big),
        Err(Error::PayloadTooLarge { .. })
    ));
    let answer = Envelope::result_too_large(Cid([2; 16]));
    let frames = ep
        .encode_message([3; 16], answer.subject(), &answer.to_json())
        .unwrap();
    assert_eq!(frames.len(), 1);
    let json: Value = serde_json::from_slice(&answer.to_json()).unwrap();
    assert_eq!(json["code"], 2000);
    assert_eq!(
        json["data"],
        json!({"reason": "result_too_large", "limit": 65508})
    );
}

#[test]
fn sbp_malformed_cases() {
    // Handshake required first.
    let mut ep = keyline_endpoint("me");
    let msg = SbpFrame {
        frame_id: [0; 16],
        timestamp: None,
        body: SbpBody::Message {
            subject: "rpc",
            data: b"{}",
        },
    }
    .encode()
    .unwrap();
    assert_eq!(code_of(ep.receive(&msg)), SbpCode::ProtocolViolation);
    // Version and protocol mismatch → 1001.
    for json in [
        br#"{"protocol":"sideband","version":"2","peerId":"x"}"#.as_slice(),
        br#"{"protocol":"other","version":"1","peerId":"x"}"#,
    ] {
        let f = SbpFrame {
            frame_id: [0; 16],
            timestamp: None,
            body: SbpBody::Control {
                op: ControlOp::Handshake,
                data: json,
            },
        }
        .encode()
        .unwrap();
        let code = code_of(keyline_endpoint("me").receive(&f));
        assert_eq!(code, SbpCode::UnsupportedVersion);
        assert!(code.is_fatal());
    }
    // Not JSON, too large.
    let f = |data: &[u8]| {
        SbpFrame {
            frame_id: [0; 16],
            timestamp: None,
            body: SbpBody::Control {
                op: ControlOp::Handshake,
                data,
            },
        }
        .encode()
        .unwrap()
    };
    assert_eq!(
        code_of(keyline_endpoint("me").receive(&f(b"{"))),
        SbpCode::ProtocolViolation
    );
    let huge = format!(
        r#"{{"protocol":"sideband","version":"1","peerId":"{}"}}"#,
        "x".repeat(9000)
    );
    assert_eq!(
        code_of(keyline_endpoint("me").receive(&f(huge.as_bytes()))),
        SbpCode::ProtocolViolation
    );
    // Unknown caps and metadata are ignored.
    let extra = br#"{"protocol":"sideband","version":"1","peerId":"x","caps":["zzz"],"metadata":{"a.b":1},"more":true}"#;
    assert!(keyline_endpoint("me").receive(&f(extra)).is_ok());
    // A second handshake is a violation.
    let mut ep = negotiated();
    assert_eq!(
        code_of(ep.receive(&SbpHandshake::keyline("again").to_frame([0; 16]).unwrap())),
        SbpCode::ProtocolViolation
    );

    // Frame-level rejections → 1002.
    let mut good = msg.clone();
    for (what, bytes) in [
        ("short", msg[..17].to_vec()),
        ("unknown kind", {
            good[0] = 5;
            good.clone()
        }),
        ("reserved flags", {
            let mut b = msg.clone();
            b[1] = 0x02;
            b
        }),
        ("timestamp flag, no room", {
            let mut b = msg[..18].to_vec();
            b[1] = 1;
            b
        }),
        ("subject length 0", {
            let mut b = msg.clone();
            b[18..22].copy_from_slice(&0u32.to_le_bytes());
            b
        }),
        ("subject length 257", {
            let mut b = msg.clone();
            b[18..22].copy_from_slice(&257u32.to_le_bytes());
            b
        }),
        ("subject past end", {
            let mut b = msg.clone();
            b[18..22].copy_from_slice(&200u32.to_le_bytes());
            b
        }),
        ("ack 15 bytes", {
            let mut b = vec![2, 0];
            b.extend([0; 31]);
            b
        }),
        ("error msg_len past end", {
            let mut b = vec![3, 0];
            b.extend([0; 16]);
            b.extend([0xe8, 3, 9, 0, 0, 0]);
            b
        }),
        ("unknown control op", {
            let mut b = vec![0, 0];
            b.extend([0; 16]);
            b.push(9);
            b
        }),
    ] {
        assert_eq!(
            code_of(negotiated().receive(&bytes)),
            SbpCode::InvalidFrame,
            "{what}"
        );
    }
    // NUL and invalid UTF-8 in a subject.
    let mut nul = msg.clone();
    nul[22] = 0;
    assert_eq!(code_of(SbpFrame::decode(&nul)), SbpCode::InvalidFrame);
    let mut bad = msg.clone();
    bad[22] = 0xff;
    assert_eq!(code_of(SbpFrame::decode(&bad)), SbpCode::InvalidFrame);
    // Timestamps round trip.
    let ts = SbpFrame {
        frame_id: [4; 16],
        timestamp: Some(-5),
        body: SbpBody::Ack {
            ack_frame_id: [5; 16],
        },
    };
    assert_eq!(SbpFrame::decode(&ts.encode().unwrap()).unwrap(), ts);
}

#[test]
fn envelope_cases() {
    let cid = "101112131415161718191A1B1C1D1E1F";
    let ok = |s: &str, j: &str| Envelope::decode(s, j.as_bytes());
    assert!(ok("rpc", &format!(r#"{{"t":"r","m":"x","cid":"{cid}"}}"#)).is_ok());
    assert!(
        ok(
            "rpc/x",
            &format!(r#"{{"t":"E","cid":"{cid}","code":1101,"message":"no"}}"#)
        )
        .is_ok()
    );
    assert!(ok("event/x", r#"{"t":"N","e":"tick","d":{"a":1}}"#).is_ok());
    assert!(ok("event", r#"{"t":"N","e":"tick"}"#).is_ok());
    assert_eq!(
        code_of(ok("rpc", r#"{"t":"N","e":"tick"}"#)),
        SbpCode::EnvelopeMismatch
    );
    assert_eq!(
        code_of(ok("event", &format!(r#"{{"t":"R","cid":"{cid}"}}"#))),
        SbpCode::EnvelopeMismatch
    );
    assert_eq!(
        code_of(ok("app/x", r#"{"t":"N","e":"x"}"#)),
        SbpCode::EnvelopeMismatch
    );
    for bad in [
        "{",
        r#"{"t":"x"}"#,
        r#"{"t":"r","m":"x"}"#,
        r#"{"t":"r","m":"x","cid":"zz"}"#,
        r#"{"t":"r","m":"x","cid":"1011121314151617"}"#,
        r#"{"t":"E","cid":"101112131415161718191a1b1c1d1e1f","message":"no"}"#,
    ] {
        assert_eq!(code_of(ok("rpc", bad)), SbpCode::InvalidEnvelope, "{bad}");
    }
}

fn handshake_pair() -> (Session, Session) {
    let now = Instant::now();
    let identity = DaemonIdentity::new("daemon", &[7; 32]).unwrap();
    let client = ClientHandshake::new(
        "daemon",
        42,
        EphemeralKey::generate().unwrap(),
        now,
        SessionConfig::default(),
    )
    .unwrap();
    let (accept, daemon) = identity
        .accept(
            42,
            &client.ephemeral_public(),
            EphemeralKey::generate().unwrap(),
            now,
            &SessionConfig::default(),
        )
        .unwrap();
    let client = client.finish(&accept, &identity.public_key(), now).unwrap();
    (client, daemon)
}

/// A 1 MiB RPC result: chunked by the daemon, sealed into Data frames, opened and
/// reassembled by the client, intact.
#[test]
fn one_mib_rpc_result_round_trip() {
    let (mut client, mut daemon) = handshake_pair();
    let mut c_sbp = keyline_endpoint("client");
    let mut d_sbp = keyline_endpoint("daemon");
    let transfer =
        |from: &mut Session, to: &mut Session, to_sbp: &mut SbpEndpoint, plain: &[u8]| {
            let frame = from.seal_to_vec(plain).unwrap();
            assert!(frame.len() <= keyline_sbrp::limits::MAX_FRAME);
            let decoded = keyline_sbrp::proto::Frame::decode(&frame).unwrap();
            let opened = to.open_frame(&decoded).unwrap();
            to_sbp.receive(&opened).unwrap()
        };
    let hs = c_sbp.handshake_frame([1; 16]).unwrap();
    assert!(matches!(
        transfer(&mut client, &mut daemon, &mut d_sbp, &hs),
        SbpEvent::Handshake(_)
    ));
    daemon.handshake_complete();
    let hs = d_sbp.handshake_frame([2; 16]).unwrap();
    assert!(matches!(
        transfer(&mut daemon, &mut client, &mut c_sbp, &hs),
        SbpEvent::Handshake(_)
    ));
    client.handshake_complete();
    assert!(client.handshake_deadline().is_none() && daemon.handshake_deadline().is_none());

    let req_id = [3; 16];
    let req = Envelope::Request {
        method: "$sideband/echo".into(),
        params: Some(json!("x")),
        cid: Cid(req_id),
    };
    let frames = c_sbp
        .encode_message(req_id, req.subject(), &req.to_json())
        .unwrap();
    assert_eq!(frames.len(), 1);
    let SbpEvent::Message { subject, data, .. } =
        transfer(&mut client, &mut daemon, &mut d_sbp, &frames[0])
    else {
        panic!()
    };
    let Envelope::Request { cid, .. } = Envelope::decode(&subject, &data).unwrap() else {
        panic!()
    };

    let payload: String = (0..1024 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let resp = Envelope::Response {
        cid,
        result: Some(json!(payload)),
    };
    let frames = d_sbp
        .encode_message([4; 16], resp.subject(), &resp.to_json())
        .unwrap();
    assert!(frames.len() > 16, "{} chunks", frames.len());
    assert!(frames.iter().all(|f| f.len() <= MAX_PLAINTEXT));
    let mut delivered = None;
    for f in &frames {
        match transfer(&mut daemon, &mut client, &mut c_sbp, f) {
            SbpEvent::ChunkBuffered => {}
            SbpEvent::Message { subject, data, .. } => {
                delivered = Some(Envelope::decode(&subject, &data).unwrap())
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(delivered.unwrap(), resp);
}
