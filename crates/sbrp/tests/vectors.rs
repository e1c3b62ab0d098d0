//! Every vector of `shared/vectors/sbrp/sbrp-v1-vectors.json`, byte for byte: handshakes
//! (both roles), Data messages, negative handshakes, replay traces, sid encodings, control
//! codes, frames and the endpoint decoder cases.
//!
//! Relay validation cases are in `relay_validation.rs`, chunking in `sbp.rs`. The `jwt`
//! cases are skipped here on purpose: token validation belongs to the relay crate, which
//! runs all 29 of them.

use std::time::{Duration, Instant};

use keyline_core::{Policy, ReplayError, ReplayWindow};
use keyline_sbrp::EphemeralKey;
use keyline_sbrp::proto::control::{ControlCode, SdkCode, SidScope};
use keyline_sbrp::proto::frame::{Accept, Frame, SignalCode, SignalReason};
use keyline_sbrp::proto::handshake::{
    ClientHandshake, DaemonIdentity, derive_session_keys, signature_payload, signature_preimage,
    transcript_hash, transcript_preimage,
};
use keyline_sbrp::proto::session::{Direction, Opener, SessionConfig};
use keyline_sbrp::proto::sid::{decode_sid, encode_sid};
use keyline_sbrp::proto::trust::{self, fingerprint};
use keyline_sbrp::{Error, limits};
use keyline_testkit::{array, hex, hex_n, load_json, str_field};
use serde_json::Value;

fn vectors() -> Value {
    load_json("sbrp/sbrp-v1-vectors.json")
}

fn u64_field(v: &Value, key: &str) -> u64 {
    str_field(v, key).parse().expect("decimal u64 string")
}

fn handshake_named(v: &Value, name: &str) -> Value {
    array(v, "handshakes")
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("handshake {name}"))
        .clone()
}

#[test]
fn constants_match() {
    let v = vectors();
    let c = &v["constants"];
    assert_eq!(c["header_size"], limits::HEADER_LEN);
    assert_eq!(c["max_payload"], limits::MAX_PAYLOAD);
    assert_eq!(c["min_data_payload"], limits::DATA_OVERHEAD);
    assert_eq!(c["max_plaintext"], limits::MAX_PLAINTEXT);
    assert_eq!(c["max_ping_payload"], limits::MAX_PING_PAYLOAD);
    assert_eq!(c["handshake_init_payload"], limits::INIT_PAYLOAD_LEN);
    assert_eq!(c["handshake_accept_payload"], limits::ACCEPT_PAYLOAD_LEN);
    assert_eq!(c["signal_payload"], limits::SIGNAL_PAYLOAD_LEN);
    assert_eq!(
        str_field(c, "handshake_context").as_bytes(),
        keyline_sbrp::proto::handshake::HANDSHAKE_CONTEXT
    );
    assert_eq!(
        str_field(c, "transcript_context").as_bytes(),
        keyline_sbrp::proto::handshake::TRANSCRIPT_CONTEXT
    );
    assert_eq!(
        str_field(c, "hkdf_info").as_bytes(),
        keyline_sbrp::proto::handshake::HKDF_INFO
    );
    assert_eq!(
        c["direction_client_to_daemon"],
        Direction::ClientToDaemon as u32
    );
    assert_eq!(
        c["direction_daemon_to_client"],
        Direction::DaemonToClient as u32
    );
}

/// Formula-level checks: preimages, digests, signature, shared secret, okm, keys.
#[test]
fn handshake_formulas() {
    let v = vectors();
    for h in array(&v, "handshakes") {
        let name = str_field(h, "name");
        let daemon_id = str_field(h, "daemon_id");
        assert_eq!(daemon_id.as_bytes(), hex(&h["daemon_id_utf8"]), "{name}");
        let id = &h["daemon_identity"];
        let identity = DaemonIdentity::new(daemon_id, &hex_n(&id["seed"])).unwrap();
        assert_eq!(
            identity.public_key(),
            hex_n::<32>(&id["public_key"]),
            "{name}"
        );
        assert_eq!(
            identity.fingerprint(),
            str_field(id, "fingerprint"),
            "{name}"
        );
        let c_sk: [u8; 32] = hex_n(&h["client_ephemeral"]["private_key"]);
        let c_pub: [u8; 32] = hex_n(&h["client_ephemeral"]["public_key"]);
        let d_sk: [u8; 32] = hex_n(&h["daemon_ephemeral"]["private_key"]);
        let d_pub: [u8; 32] = hex_n(&h["daemon_ephemeral"]["public_key"]);
        assert_eq!(
            x25519_dalek::x25519(c_sk, x25519_dalek::X25519_BASEPOINT_BYTES),
            c_pub
        );
        assert_eq!(
            x25519_dalek::x25519(d_sk, x25519_dalek::X25519_BASEPOINT_BYTES),
            d_pub
        );
        assert_eq!(
            signature_preimage(daemon_id, &c_pub, &d_pub),
            hex(&h["signature_preimage"]),
            "{name}"
        );
        let sig_payload = signature_payload(daemon_id, &c_pub, &d_pub);
        assert_eq!(sig_payload, hex_n::<32>(&h["signature_payload"]), "{name}");
        let sig: [u8; 64] = hex_n(&h["signature"]);
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&identity.public_key()).unwrap();
        vk.verify_strict(&sig_payload, &ed25519_dalek::Signature::from_bytes(&sig))
            .unwrap();
        let shared = x25519_dalek::x25519(d_sk, c_pub);
        assert_eq!(shared, x25519_dalek::x25519(c_sk, d_pub));
        assert_eq!(shared, hex_n::<32>(&h["shared_secret"]), "{name}");
        assert_eq!(
            transcript_preimage(daemon_id, &c_pub, &d_pub, &sig),
            hex(&h["transcript_preimage"]),
            "{name}"
        );
        let transcript = transcript_hash(daemon_id, &c_pub, &d_pub, &sig);
        assert_eq!(transcript, hex_n::<32>(&h["transcript_hash"]), "{name}");
        let keys = derive_session_keys(&shared, &transcript);
        assert_eq!(keys.okm().as_slice(), hex(&h["okm"]), "{name}");
        assert_eq!(
            *keys.client_to_daemon(),
            hex_n::<32>(&h["client_to_daemon_key"])
        );
        assert_eq!(
            *keys.daemon_to_client(),
            hex_n::<32>(&h["daemon_to_client_key"])
        );
        assert_eq!(
            format!("{keys:?}"),
            "SessionKeys(..)",
            "keys never show in Debug"
        );
    }
}

/// Both roles through the state machines: Init frame, Accept payload and frame, then every
/// message sealed by its sender and opened by its receiver, byte for byte.
#[test]
fn handshake_roles_and_messages() {
    let v = vectors();
    let now = Instant::now();
    for h in array(&v, "handshakes") {
        let name = str_field(h, "name");
        let daemon_id = str_field(h, "daemon_id");
        let sid = u64_field(h, "sid");
        assert_eq!(sid.to_be_bytes().as_slice(), hex(&h["sid_hex"]));
        assert_eq!(encode_sid(sid), str_field(h, "sid_base64url"));
        let config = SessionConfig::default();

        // Client role.
        let client = ClientHandshake::new(
            daemon_id,
            sid,
            EphemeralKey::from_secret(hex_n(&h["client_ephemeral"]["private_key"])),
            now,
            config,
        )
        .unwrap();
        let init = client.init_frame();
        assert_eq!(init.as_slice(), hex(&h["handshake_init_frame"]), "{name}");

        // Daemon role, from the decoded Init.
        let identity =
            DaemonIdentity::new(daemon_id, &hex_n(&h["daemon_identity"]["seed"])).unwrap();
        let Frame::HandshakeInit {
            sid: init_sid,
            client_ephemeral,
        } = Frame::decode(&init).unwrap()
        else {
            panic!("not an Init")
        };
        assert_eq!(init_sid, sid);
        let (accept, mut daemon) = identity
            .accept(
                sid,
                &client_ephemeral,
                EphemeralKey::from_secret(hex_n(&h["daemon_ephemeral"]["private_key"])),
                now,
                &config,
            )
            .unwrap();
        assert_eq!(
            accept.to_bytes().as_slice(),
            hex(&h["handshake_accept_payload"])
        );
        let accept_frame = DaemonIdentity::accept_frame(sid, &accept).unwrap();
        assert_eq!(accept_frame, hex(&h["handshake_accept_frame"]), "{name}");

        // Client receives it, trusts on first use, finishes.
        let decoded = Frame::decode(&accept_frame).unwrap();
        let got = client.handle_frame(&decoded).unwrap().expect("the accept");
        assert_eq!(got, accept);
        let decision = trust::decide(Policy::Tofu, daemon_id, None, &got.identity_key).unwrap();
        assert_eq!(decision, trust::TrustDecision::PinAfterSuccess);
        let mut client = client.finish(&got, &got.identity_key, now).unwrap();

        for m in array(h, "messages") {
            let plaintext = hex(&m["plaintext"]);
            let seq = u64_field(m, "seq");
            let (sender, receiver) = match str_field(m, "direction") {
                "client_to_daemon" => (&mut client, &mut daemon),
                "daemon_to_client" => (&mut daemon, &mut client),
                other => panic!("direction {other}"),
            };
            assert_eq!(sender.next_send_seq(), Some(seq));
            let frame = sender.seal_to_vec(&plaintext).unwrap();
            assert_eq!(frame, hex(&m["frame"]), "{name} seq {seq}");
            let Frame::Data { payload, .. } = Frame::decode(&frame).unwrap() else {
                panic!("not Data")
            };
            assert_eq!(payload, hex(&m["data_payload"]));
            assert_eq!(&payload[..12], hex(&m["nonce"]));
            let ct = hex(&m["ciphertext"]);
            assert_eq!(&payload[12..12 + ct.len()], ct);
            assert_eq!(&payload[12 + ct.len()..], hex(&m["tag"]));
            let opened = receiver
                .open_frame(&Frame::decode(&frame).unwrap())
                .unwrap();
            assert_eq!(opened, plaintext, "{name} seq {seq}");
        }
    }
}

/// Every message opens with the right key and fails with the other one.
#[test]
fn messages_open_with_the_right_key_only() {
    let v = vectors();
    for h in array(&v, "handshakes") {
        let c2d: [u8; 32] = hex_n(&h["client_to_daemon_key"]);
        let d2c: [u8; 32] = hex_n(&h["daemon_to_client_key"]);
        for m in array(h, "messages") {
            let payload = hex(&m["data_payload"]);
            let (right, wrong, dir) = match str_field(m, "direction") {
                "client_to_daemon" => (c2d, d2c, Direction::ClientToDaemon),
                _ => (d2c, c2d, Direction::DaemonToClient),
            };
            let mut ok = Opener::new(&right, dir, ReplayWindow::new(128).unwrap());
            assert_eq!(ok.open(&payload).unwrap(), hex(&m["plaintext"]));
            let mut bad = Opener::new(&wrong, dir, ReplayWindow::new(128).unwrap());
            assert!(matches!(bad.open(&payload), Err(Error::DecryptFailed)));
            assert_eq!(bad.window().highest(), None, "failed open commits nothing");
            // The right key but the other direction in the nonce: decrypt_failed too.
            let other = match dir {
                Direction::ClientToDaemon => Direction::DaemonToClient,
                Direction::DaemonToClient => Direction::ClientToDaemon,
            };
            let mut wrong_dir = Opener::new(&right, other, ReplayWindow::new(128).unwrap());
            assert!(matches!(
                wrong_dir.open(&payload),
                Err(Error::DecryptFailed)
            ));
        }
    }
}

fn client_for(h: &Value, daemon_id: &str) -> ClientHandshake {
    ClientHandshake::new(
        daemon_id,
        u64_field(h, "sid"),
        EphemeralKey::from_secret(hex_n(&h["client_ephemeral"]["private_key"])),
        Instant::now(),
        SessionConfig::default(),
    )
    .unwrap()
}

#[test]
fn handshake_negative() {
    let v = vectors();
    let mut low_order = 0;
    for case in array(&v, "handshake_negative") {
        let name = str_field(case, "name");
        match name {
            "signature_bit_flipped" | "wrong_daemon_id" | "identity_differs_from_pin" => {
                let h = handshake_named(&v, str_field(case, "handshake"));
                let daemon_id = case["client_expects_daemon_id"]
                    .as_str()
                    .unwrap_or_else(|| str_field(&h, "daemon_id"));
                let client = client_for(&h, daemon_id);
                let frame = hex(&case["handshake_accept_frame"]);
                let decoded = Frame::decode(&frame).unwrap();
                let accept = client.handle_frame(&decoded).unwrap().unwrap();
                let pinned = hex(&case["pinned_identity_key"]);
                let result =
                    trust::decide(Policy::Tofu, daemon_id, Some(&pinned), &accept.identity_key)
                        .and_then(|_| client.finish(&accept, &accept.identity_key, Instant::now()));
                match (str_field(case, "expect"), result) {
                    ("handshake_failed", Err(e @ Error::HandshakeFailed { .. })) => {
                        assert_eq!(e.code(), Some(SdkCode::HandshakeFailed.to_u16()));
                    }
                    ("identity_key_changed", Err(e)) => {
                        let Error::IdentityKeyChanged {
                            daemon_id,
                            pinned_fingerprint,
                            received_fingerprint,
                        } = &e
                        else {
                            panic!("{name}: expected identity_key_changed, got {e:?}")
                        };
                        assert_eq!(daemon_id, "d_xyz");
                        assert_eq!(pinned_fingerprint, str_field(case, "pinned_fingerprint"));
                        assert_eq!(
                            received_fingerprint,
                            str_field(case, "received_fingerprint")
                        );
                        assert_eq!(fingerprint(&pinned), *pinned_fingerprint);
                        let msg = e.to_string();
                        assert!(msg.contains(pinned_fingerprint.as_str()));
                        assert!(msg.contains(received_fingerprint.as_str()));
                        assert!(msg.contains("d_xyz"));
                        assert_eq!(e.code(), Some(0xE001));
                    }
                    (expect, other) => panic!("{name}: expected {expect}, got {other:?}"),
                }
            }
            "low_order_client_ephemeral" => {
                low_order += 1;
                assert_eq!(str_field(case, "expect"), "reject_all_zero_shared_secret");
                let frame = hex(&case["handshake_init_frame"]);
                let Frame::HandshakeInit {
                    sid,
                    client_ephemeral,
                } = Frame::decode(&frame).unwrap()
                else {
                    panic!("{name}: not an Init")
                };
                // Daemon side.
                let h = handshake_named(&v, "ascii_daemon_id");
                let identity =
                    DaemonIdentity::new("d_xyz", &hex_n(&h["daemon_identity"]["seed"])).unwrap();
                let result = identity.accept(
                    sid,
                    &client_ephemeral,
                    EphemeralKey::from_secret(hex_n(&case["daemon_ephemeral_private_key"])),
                    Instant::now(),
                    &SessionConfig::default(),
                );
                assert!(
                    matches!(result, Err(Error::HandshakeFailed { .. })),
                    "{name}: daemon side"
                );
                // Also with a random daemon ephemeral.
                assert!(matches!(
                    identity.accept(
                        sid,
                        &client_ephemeral,
                        EphemeralKey::generate().unwrap(),
                        Instant::now(),
                        &SessionConfig::default()
                    ),
                    Err(Error::HandshakeFailed { .. })
                ));
                // Client side: a daemon (or attacker) answering with the low-order point
                // under a valid signature must still be refused.
                let client = client_for(&h, "d_xyz");
                let d_eph = client_ephemeral;
                let seed: [u8; 32] = hex_n(&h["daemon_identity"]["seed"]);
                let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
                use ed25519_dalek::Signer as _;
                let sig = sk
                    .sign(&signature_payload(
                        "d_xyz",
                        &client.ephemeral_public(),
                        &d_eph,
                    ))
                    .to_bytes();
                let accept = Accept {
                    identity_key: sk.verifying_key().to_bytes(),
                    daemon_ephemeral: d_eph,
                    signature: sig,
                };
                let result = client.finish(&accept, &accept.identity_key, Instant::now());
                assert!(
                    matches!(result, Err(Error::HandshakeFailed { .. })),
                    "{name}: client side"
                );
            }
            other => panic!("unknown negative case {other}"),
        }
    }
    assert_eq!(low_order, 3);
}

/// Bitmap of the low W bits reconstructed through the window's public API: bit i is set
/// iff `max_seen − i` is a duplicate.
fn bitmap_hex(w: &ReplayWindow) -> String {
    let size = w.size();
    let Some(max) = w.highest() else {
        return "0".repeat(size / 4);
    };
    let mut bits = vec![0u8; size / 8];
    for i in 0..size as u64 {
        if i > max {
            break;
        }
        if w.check(max - i) == Err(ReplayError::Duplicate) {
            let byte = size / 8 - 1 - (i / 8) as usize;
            bits[byte] |= 1 << (i % 8);
        }
    }
    ::hex::encode(bits)
}

#[test]
fn replay_traces() {
    let v = vectors();
    let traces = array(&v["replay"], "traces");
    assert_eq!(traces.len(), 4);
    for t in traces {
        let window = t["window"].as_u64().unwrap() as usize;
        let mut w = ReplayWindow::new(window).unwrap();
        let mut first = true;
        for (i, step) in array(t, "steps").iter().enumerate() {
            let seq = u64_field(step, "seq");
            let result = str_field(step, "result");
            let before = w.highest();
            let checked = w.check(seq);
            assert_eq!(
                checked.is_ok(),
                step["accepted"].as_bool().unwrap(),
                "{} W={window} step {i}",
                t["name"]
            );
            match (result, checked) {
                ("accept_first", Ok(())) => assert!(first && before.is_none()),
                ("accept_advance", Ok(())) => {
                    assert!(seq > before.unwrap() && seq - before.unwrap() < window as u64)
                }
                ("accept_advance_reset", Ok(())) => {
                    assert!(seq - before.unwrap() >= window as u64)
                }
                ("accept_in_window", Ok(())) => assert!(seq < before.unwrap()),
                ("reject_duplicate", Err(ReplayError::Duplicate)) => {}
                ("reject_too_old", Err(ReplayError::TooOld)) => {}
                (r, c) => panic!("step {i}: expected {r}, got {c:?}"),
            }
            if checked.is_ok() {
                w.commit(seq);
                first = false;
            }
            assert_eq!(
                w.highest(),
                Some(u64_field(step, "max_seen_after")),
                "step {i}"
            );
            assert_eq!(
                bitmap_hex(&w),
                str_field(step, "bitmap_after"),
                "W={window} step {i}"
            );
        }
    }
}

#[test]
fn replay_check_decrypt_commit() {
    let v = vectors();
    let c = &v["replay"]["check_decrypt_commit"];
    assert_eq!(c["window"], 128);
    let key: [u8; 32] = hex_n(&c["key"]);
    let mut opener = Opener::new(
        &key,
        Direction::ClientToDaemon,
        ReplayWindow::new(128).unwrap(),
    );
    for (i, step) in array(c, "steps").iter().enumerate() {
        let payload = hex(&step["data_payload"]);
        let result = opener.open(&payload);
        match (str_field(step, "expect"), result) {
            ("accept", Ok(_)) => assert!(step["authentic"].as_bool().unwrap()),
            ("decrypt_failed", Err(Error::DecryptFailed)) => {}
            ("sequence_error", Err(e @ Error::SequenceError(_))) => {
                assert_eq!(e.code(), Some(0xE005));
            }
            (expect, got) => panic!("step {i}: expected {expect}, got {got:?}"),
        }
        assert_eq!(
            opener.window().highest(),
            Some(u64_field(step, "max_seen_after")),
            "step {i}"
        );
    }
}

#[test]
fn sid_base64url() {
    let v = vectors();
    let s = &v["sid_base64url"];
    for case in array(s, "valid") {
        let sid = u64_field(case, "sid");
        assert_eq!(sid.to_be_bytes().as_slice(), hex(&case["sid_hex"]));
        let text = str_field(case, "base64url");
        assert_eq!(encode_sid(sid), text);
        assert_eq!(decode_sid(text).unwrap(), sid);
    }
    let invalid = array(s, "invalid");
    assert_eq!(invalid.len(), 7);
    for case in invalid {
        let text = str_field(case, "base64url");
        assert!(
            matches!(decode_sid(text), Err(Error::InvalidSid { .. })),
            "{text:?} ({}) must be refused",
            case["reason"]
        );
    }
}

#[test]
fn control_codes() {
    let v = vectors();
    let c = &v["control_codes"];
    let wire = array(c, "wire");
    assert_eq!(wire.len(), ControlCode::ALL.len());
    for (entry, &code) in wire.iter().zip(ControlCode::ALL) {
        let n = entry["code"].as_u64().unwrap() as u16;
        assert_eq!(code.to_u16(), n);
        assert_eq!(ControlCode::from_u16(n), code);
        assert_eq!(code.name(), str_field(entry, "name"));
        assert_eq!(
            code.is_terminal(),
            entry["terminal"].as_bool().unwrap(),
            "{}",
            code.name()
        );
        let scope = match str_field(entry, "sid_scope") {
            "0" => SidScope::Connection,
            "S" => SidScope::Session,
            other => panic!("scope {other}"),
        };
        assert_eq!(code.sid_scope(), Some(scope), "{}", code.name());
        assert_eq!(format!("0x{n:04x}"), str_field(entry, "code_hex"));
    }
    let sdk = array(c, "sdk_only");
    assert_eq!(sdk.len(), SdkCode::ALL.len());
    for (entry, code) in sdk.iter().zip(SdkCode::ALL) {
        assert_eq!(u64::from(code.to_u16()), entry["code"].as_u64().unwrap());
        assert_eq!(code.name(), str_field(entry, "name"));
        // Never a wire code.
        assert!(matches!(
            ControlCode::from_u16(code.to_u16()),
            ControlCode::Unknown(_)
        ));
    }
    // Unknown codes are terminal.
    for n in [0u16, 0x0103, 0x0903, 0x1005, 0xE001, 0xFFFF] {
        let code = ControlCode::from_u16(n);
        assert_eq!(code, ControlCode::Unknown(n));
        assert!(code.is_terminal());
    }
}

#[test]
fn frames_decode_and_reencode() {
    let v = vectors();
    let mut ping_payload = None;
    for case in array(&v, "frames") {
        let name = str_field(case, "name");
        let bytes = hex(&case["frame"]);
        let frame = Frame::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(frame.to_vec().unwrap(), bytes, "{name}");
        let mut buf = vec![0u8; bytes.len()];
        assert_eq!(frame.encode(&mut buf).unwrap(), bytes.len());
        assert_eq!(buf, bytes);
        if let Some(sid) = case.get("sid") {
            assert_eq!(
                frame.sid(),
                sid.as_str().unwrap().parse::<u64>().unwrap(),
                "{name}"
            );
        }
        match (name, &frame) {
            ("ping_empty", Frame::Ping { payload }) | ("pong_empty", Frame::Pong { payload }) => {
                assert!(payload.is_empty())
            }
            ("ping_8_bytes", Frame::Ping { payload }) => {
                assert_eq!(*payload, hex(&case["payload"]));
                ping_payload = Some(payload.to_vec());
            }
            ("pong_echoing_ping_8_bytes", Frame::Pong { payload }) => {
                assert_eq!(Some(payload.to_vec()), ping_payload);
                let pong = keyline_sbrp::proto::frame::pong_for(ping_payload.as_ref().unwrap());
                assert_eq!(pong.unwrap(), bytes);
            }
            ("signal_ready", Frame::Signal { signal, reason, .. }) => {
                assert_eq!((*signal, *reason), (SignalCode::Ready, SignalReason::None))
            }
            ("signal_close_state_lost", Frame::Signal { signal, reason, .. }) => {
                assert_eq!(
                    (*signal, *reason),
                    (SignalCode::Close, SignalReason::StateLost)
                )
            }
            ("signal_close_shutdown", Frame::Signal { signal, reason, .. }) => {
                assert_eq!(
                    (*signal, *reason),
                    (SignalCode::Close, SignalReason::Shutdown)
                )
            }
            (n, Frame::Control { code, .. }) if n.starts_with("control_") => {
                let expected = n
                    .trim_start_matches("control_")
                    .trim_end_matches("_with_message");
                assert_eq!(code.name(), expected, "{name}");
                let message = frame.control_message().unwrap();
                match case.get("message") {
                    Some(m) => assert_eq!(message, m.as_str().unwrap()),
                    None => assert_eq!(message, ""),
                }
            }
            _ => panic!("{name}: decoded to {frame:?}"),
        }
    }
    assert!(ping_payload.is_some());
}

#[test]
fn endpoint_decode_cases() {
    let v = vectors();
    let cases = array(&v, "endpoint_decode");
    assert_eq!(cases.len(), 8);
    for case in cases {
        let name = str_field(case, "name");
        let bytes = hex(&case["frame"]);
        let result = Frame::decode(&bytes);
        match (str_field(case, "expect"), result) {
            ("malformed_frame", Err(e @ Error::MalformedFrame { .. })) => {
                assert_eq!(e.code(), Some(ControlCode::MalformedFrame.to_u16()));
            }
            ("terminal_unknown_code", Ok(Frame::Control { code, .. })) => {
                assert!(matches!(code, ControlCode::Unknown(_)));
                assert!(code.is_terminal());
            }
            ("ok_message_lossy", Ok(frame @ Frame::Control { .. })) => {
                assert_eq!(
                    frame.control_message().unwrap(),
                    str_field(case, "decoded_message")
                );
            }
            (expect, got) => panic!("{name}: expected {expect}, got {got:?}"),
        }
    }
}

/// Timeouts are deadlines the state machines report; no sleeping.
#[test]
fn handshake_timeout_is_reported() {
    let t0 = Instant::now();
    let client = ClientHandshake::new(
        "d",
        1,
        EphemeralKey::generate().unwrap(),
        t0,
        SessionConfig::default(),
    )
    .unwrap();
    assert_eq!(client.deadline(), Some(t0 + Duration::from_secs(30)));
    client.handle_timeout(t0 + Duration::from_secs(29)).unwrap();
    let e = client
        .handle_timeout(t0 + Duration::from_secs(30))
        .unwrap_err();
    assert!(matches!(e, Error::HandshakeTimeout));
    assert_eq!(e.code(), Some(0xE003));
}
