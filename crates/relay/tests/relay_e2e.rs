//! End-to-end tests with a real relay on 127.0.0.1:0 and tokio-tungstenite peers.

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{
    Server, connect_bearer, connect_query, control_of, daemon_key, data_frame, expect_alive,
    expect_closed, expect_control, recv, recv_frame, send, unix_now,
};
use ed25519_dalek::Signer as _;
use futures_util::SinkExt as _;
use keyline_relay::{Limits, RelayConfig};
use keyline_sbrp::proto::control::ControlCode;
use keyline_sbrp::proto::frame::{Accept, Frame, SignalCode, SignalReason};
use keyline_sbrp::proto::sid::decode_sid;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn limits(f: impl FnOnce(&mut Limits)) -> RelayConfig {
    let mut config = RelayConfig::default();
    f(&mut config.limits);
    config
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn missing_or_invalid_token_is_401_json_before_upgrade() {
    let server = Server::start(RelayConfig::default()).await;
    let url = server.ws_url();
    // No token at all.
    let (status, body) = common::connect_request(
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            url.as_str(),
        )
        .unwrap(),
    )
    .await
    .refused();
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    // Garbage, wrong issuer signature, empty.
    for token in ["abc", "a.b.c", ""] {
        let (status, body) = connect_query(&url, token).await.refused();
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("unauthorized")),
            "{token}"
        );
    }
    let (status, body) = connect_bearer(&url, "not.a.jwt").await.refused();
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    // A token from a foreign key.
    let other = Server::start(RelayConfig::default()).await;
    let foreign = other.daemon_token("d1", false, unix_now());
    let (status, _) = connect_query(&url, &foreign).await.refused();
    assert_eq!(status, 401);
    // Plain GET without an upgrade: still 401 JSON first.
    let resp = reqwest::get(server.http("/")).await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    // healthz, jwks, metrics.
    let health: Value = reqwest::get(server.http("/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "ok"}));
    let jwks: Value = reqwest::get(server.http("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (&key["kty"], &key["crv"], &key["alg"], &key["use"]),
        (
            &json!("OKP"),
            &json!("Ed25519"),
            &json!("EdDSA"),
            &json!("sig")
        )
    );
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(key["x"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    let metrics = reqwest::get(server.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sbrp_relay_token_rejections_total{reason=\"missing\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("sbrp_relay_token_rejections_total{reason=\"not_compact\"}"));
    other.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn daemon_and_client_frames_round_trip_byte_for_byte() {
    let server = Server::start(RelayConfig::default()).await;
    let key = daemon_key(1);
    let presence = server.presence("d_round", &key, false).await;
    let claims = claims_of(&presence);
    assert_eq!(
        (&claims["role"], &claims["sub"], &claims["did"]),
        (&json!("daemon"), &json!("d_round"), &json!("d_round"))
    );
    assert_eq!(claims["scp"], json!([]));
    let mut daemon = connect_bearer(&server.ws_url(), &presence).await.ws();
    expect_alive(&mut daemon).await;
    assert!(server.relay.is_online("d_round"));

    let (status, body) = server.sessions(json!({"daemon_id": "d_round"})).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap();
    let sid = decode_sid(body["sid"].as_str().unwrap()).unwrap();
    assert_eq!(body["url"], server.ws_url());
    let claims = claims_of(token);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        120
    );
    assert_eq!(
        (&claims["role"], &claims["sub"]),
        (&json!("client"), &json!("anonymous"))
    );
    assert_eq!(claims["scp"], json!(["session:create"]));
    let mut client = connect_query(body["url"].as_str().unwrap(), token)
        .await
        .ws();

    // Handshake frames.
    let init = Frame::HandshakeInit {
        sid,
        client_ephemeral: [0x42; 32],
    }
    .to_vec()
    .unwrap();
    send(&mut client, init.clone()).await;
    assert_eq!(recv_frame(&mut daemon).await.as_ref(), init.as_slice());
    let accept = Frame::HandshakeAccept {
        sid,
        accept: Accept {
            identity_key: [1; 32],
            daemon_ephemeral: [2; 32],
            signature: [3; 64],
        },
    }
    .to_vec()
    .unwrap();
    send(&mut daemon, accept.clone()).await;
    assert_eq!(recv_frame(&mut client).await.as_ref(), accept.as_slice());
    // Data both ways, smallest to largest.
    for (i, len) in [28usize, 29, 1000, 65_536].into_iter().enumerate() {
        let up = data_frame(sid, i as u8, len);
        send(&mut client, up.clone()).await;
        assert_eq!(recv_frame(&mut daemon).await.as_ref(), up.as_slice());
        let down = data_frame(sid, 0x80 | i as u8, len);
        send(&mut daemon, down.clone()).await;
        assert_eq!(recv_frame(&mut client).await.as_ref(), down.as_slice());
    }
    let metrics = reqwest::get(server.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sbrp_relay_frames_forwarded_total{type=\"data\"} 8"),
        "{metrics}"
    );
    assert!(metrics.contains("sbrp_relay_handshakes_seen_total 1"));
    assert!(metrics.contains("sbrp_relay_pairings{state=\"paired\"} 1"));
    assert!(metrics.contains("sbrp_relay_connections{role=\"client\"} 1"));
    // Client leaves: P8.
    client.close(None).await.unwrap();
    expect_control(&mut daemon, ControlCode::SessionEnded, sid).await;
    server.stop().await;
}

#[tokio::test]
async fn unknown_and_offline_daemons() {
    let server = Server::start(RelayConfig::default()).await;
    let (status, body) = server.sessions(json!({"daemon_id": "nobody"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("daemon_not_found"))
    );
    assert!(body["message"].is_string());
    // Malformed request.
    let (status, body) = server.sessions(json!({"nope": 1})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
    // Registered, not connected: offline.
    let presence = server.presence("d_off", &daemon_key(2), false).await;
    let (status, body) = server.sessions(json!({"daemon_id": "d_off"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("daemon_offline"))
    );
    // A client token anyway: P2 (known, offline) and P3 (unknown) after the upgrade.
    let now = unix_now();
    let mut c = connect_query(&server.ws_url(), &server.client_token("d_off", 11, now))
        .await
        .ws();
    expect_control(&mut c, ControlCode::DaemonOffline, 11).await;
    expect_closed(&mut c).await;
    let mut c = connect_query(&server.ws_url(), &server.client_token("ghost", 12, now))
        .await
        .ws();
    expect_control(&mut c, ControlCode::DaemonNotFound, 12).await;
    expect_closed(&mut c).await;
    // Online: served; offline again after it leaves.
    let mut daemon = connect_query(&server.ws_url(), &presence).await.ws();
    expect_alive(&mut daemon).await;
    let (status, _) = server.sessions(json!({"daemon_id": "d_off"})).await;
    assert_eq!(status, 200);
    daemon.close(None).await.unwrap();
    drop(daemon);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = server.sessions(json!({"daemon_id": "d_off"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("daemon_offline"))
    );
    server.stop().await;
}

#[tokio::test]
async fn presence_identity_is_pinned_per_daemon_id() {
    let server = Server::start(RelayConfig::default()).await;
    server.presence("d_pin", &daemon_key(3), true).await;
    let http = reqwest::Client::new();
    let other = daemon_key(4);
    let identity_key = URL_SAFE_NO_PAD.encode(other.verifying_key().as_bytes());
    let resp: Value = http
        .post(server.http("/v1/presence/challenge"))
        .json(&json!({"daemon_id": "d_pin", "identity_key": identity_key}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let challenge = resp["challenge"].as_str().unwrap();
    let raw: [u8; 32] = URL_SAFE_NO_PAD
        .decode(challenge)
        .unwrap()
        .try_into()
        .unwrap();
    // A signature by the wrong key first: 401 bad_signature, and the challenge is spent.
    let wrong = daemon_key(5).sign(&keyline_relay::issuer::presence_message("d_pin", &raw));
    let body = json!({
        "daemon_id": "d_pin", "identity_key": identity_key, "challenge": challenge,
        "signature": URL_SAFE_NO_PAD.encode(wrong.to_bytes()), "resumable": false,
    });
    let resp = http
        .post(server.http("/v1/presence"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"], "bad_signature");
    let resp = http
        .post(server.http("/v1/presence"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"], "invalid_challenge");
    // Right signature by a different identity key for a registered id: 409.
    let resp: Value = http
        .post(server.http("/v1/presence/challenge"))
        .json(&json!({"daemon_id": "d_pin", "identity_key": identity_key}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let challenge = resp["challenge"].as_str().unwrap();
    let raw: [u8; 32] = URL_SAFE_NO_PAD
        .decode(challenge)
        .unwrap()
        .try_into()
        .unwrap();
    let sig = other.sign(&keyline_relay::issuer::presence_message("d_pin", &raw));
    let resp = http
        .post(server.http("/v1/presence"))
        .json(&json!({
            "daemon_id": "d_pin", "identity_key": identity_key, "challenge": challenge,
            "signature": URL_SAFE_NO_PAD.encode(sig.to_bytes()),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"], "identity_mismatch");
    // After an operator reset the new key registers.
    assert!(server.relay.reset_identity("d_pin"));
    let token = server.presence("d_pin", &other, true).await;
    assert_eq!(claims_of(&token)["scp"], json!(["session:resume"]));
    server.stop().await;
}

#[tokio::test]
async fn allow_list_is_enforced() {
    let allowed = daemon_key(20);
    let stranger = daemon_key(21);
    let mut config = RelayConfig::default();
    config
        .allow_lists
        .insert("d_acl".into(), vec![allowed.verifying_key().to_bytes()]);
    let server = Server::start(config).await;
    let presence = server.presence("d_acl", &daemon_key(22), false).await;
    let mut daemon = connect_bearer(&server.ws_url(), &presence).await.ws();
    expect_alive(&mut daemon).await;
    // No proof.
    let (status, body) = server.sessions(json!({"daemon_id": "d_acl"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("client_key_required"))
    );
    let http = reqwest::Client::new();
    let prove = |key: &ed25519_dalek::SigningKey| {
        let key = key.clone();
        let http = http.clone();
        let url = server.http("/v1/sessions/challenge");
        async move {
            let client_key = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
            let resp: Value = http
                .post(url)
                .json(&json!({"daemon_id": "d_acl", "client_key": client_key}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let challenge = resp["challenge"].as_str().unwrap().to_owned();
            let raw: [u8; 32] = URL_SAFE_NO_PAD
                .decode(&challenge)
                .unwrap()
                .try_into()
                .unwrap();
            let sig = key.sign(&keyline_relay::issuer::session_message("d_acl", &raw));
            json!({
                "daemon_id": "d_acl", "client_key": client_key, "challenge": challenge,
                "signature": URL_SAFE_NO_PAD.encode(sig.to_bytes()),
            })
        }
    };
    // A key not on the list.
    let (status, body) = server.sessions(prove(&stranger).await).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    // Listed key, signature over another daemon id: refused.
    let mut forged = prove(&allowed).await;
    let raw: [u8; 32] = URL_SAFE_NO_PAD
        .decode(forged["challenge"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let sig = allowed.sign(&keyline_relay::issuer::session_message("d_other", &raw));
    forged["signature"] = json!(URL_SAFE_NO_PAD.encode(sig.to_bytes()));
    let (status, body) = server.sessions(forged).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("bad_signature"))
    );
    // The listed key with a valid proof.
    let (status, body) = server.sessions(prove(&allowed).await).await;
    assert_eq!(status, 200, "{body}");
    let sub = claims_of(body["token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        sub,
        format!(
            "ck_{}",
            URL_SAFE_NO_PAD.encode(allowed.verifying_key().as_bytes())
        )
    );
    let mut client = connect_query(&server.ws_url(), body["token"].as_str().unwrap())
        .await
        .ws();
    expect_alive(&mut client).await;
    // Other daemons stay open.
    server.presence("d_open", &daemon_key(23), false).await;
    server.relay.set_allow_list("d_acl", None);
    let (status, _) = server.sessions(json!({"daemon_id": "d_acl"})).await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn key_rotation_keeps_two_published_keys() {
    let server = Server::start(RelayConfig::default()).await;
    let first_kid = server.relay.kids()[0].clone();
    let presence = server.presence("d_rot", &daemon_key(30), false).await;
    let kid_of = |token: &str| -> String {
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["typ"], "sbrp-relay+jwt");
        assert_eq!(header["alg"], "EdDSA");
        header["kid"].as_str().unwrap().to_owned()
    };
    assert_eq!(kid_of(&presence), first_kid);
    let second_kid = server.relay.rotate_keys().unwrap();
    let jwks: Value = reqwest::get(server.http("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&first_kid.as_str()) && kids.contains(&second_kid.as_str()));
    // The old kid still validates; new tokens use the new kid.
    let mut daemon = connect_bearer(&server.ws_url(), &presence).await.ws();
    expect_alive(&mut daemon).await;
    let (_, body) = server.sessions(json!({"daemon_id": "d_rot"})).await;
    assert_eq!(kid_of(body["token"].as_str().unwrap()), second_kid);
    // A third key: the first is gone and its tokens fail.
    let third_kid = server.relay.rotate_keys().unwrap();
    assert_eq!(server.relay.kids(), vec![second_kid.clone(), third_kid]);
    let jwks: Value = reqwest::get(server.http("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!jwks.to_string().contains(&first_kid));
    let (status, body) = connect_query(&server.ws_url(), &presence).await.refused();
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    // The session token signed by the second key still works.
    let mut client = connect_query(&server.ws_url(), body_token(&server).await.as_str())
        .await
        .ws();
    expect_alive(&mut client).await;
    server.stop().await;
}

async fn body_token(server: &Server) -> String {
    let (status, body) = server.sessions(json!({"daemon_id": "d_rot"})).await;
    assert_eq!(status, 200);
    body["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn oversized_message_is_payload_too_large() {
    let server = Server::start(RelayConfig::default()).await;
    let now = unix_now();
    let mut daemon = connect_bearer(&server.ws_url(), &server.daemon_token("d_big", false, now))
        .await
        .ws();
    expect_alive(&mut daemon).await;
    let mut client = connect_query(&server.ws_url(), &server.client_token("d_big", 5, now))
        .await
        .ws();
    expect_alive(&mut client).await;
    // The largest frame passes.
    let max = data_frame(5, 1, 65_536);
    assert_eq!(max.len(), 65_549);
    send(&mut client, max.clone()).await;
    assert_eq!(recv_frame(&mut daemon).await.as_ref(), max.as_slice());
    // One byte more is refused by the WebSocket layer: payload_too_large, sid 0, close.
    let mut over = max.clone();
    over.push(0);
    send(&mut client, over).await;
    expect_control(&mut client, ControlCode::PayloadTooLarge, 0).await;
    expect_closed(&mut client).await;
    expect_control(&mut daemon, ControlCode::SessionEnded, 5).await;
    // Text messages are malformed_frame.
    let mut c2 = connect_query(&server.ws_url(), &server.client_token("d_big", 6, now))
        .await
        .ws();
    c2.send(Message::Text("hello".into())).await.unwrap();
    expect_control(&mut c2, ControlCode::MalformedFrame, 0).await;
    expect_closed(&mut c2).await;
    server.stop().await;
}

#[tokio::test]
async fn rate_limit_paces_without_loss() {
    let server = Server::start(limits(|l| {
        l.frames_per_second = 20;
        l.frame_burst = 5;
        l.rate_limited_window = Duration::from_secs(30);
    }))
    .await;
    let now = unix_now();
    let mut daemon = connect_bearer(&server.ws_url(), &server.daemon_token("d_rate", false, now))
        .await
        .ws();
    let mut client = connect_query(&server.ws_url(), &server.client_token("d_rate", 9, now))
        .await
        .ws();
    expect_alive(&mut daemon).await;
    let started = std::time::Instant::now();
    let frames: Vec<Vec<u8>> = (0..25).map(|i| data_frame(9, i, 40)).collect();
    for frame in &frames {
        send(&mut client, frame.clone()).await;
    }
    for frame in &frames {
        assert_eq!(recv_frame(&mut daemon).await.as_ref(), frame.as_slice());
    }
    // 25 frames at 20/s after a burst of 5 (the alive Ping took one): about a second.
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    // Exactly one rate_limited (sid 0) in the window, and the connection stays open.
    expect_control(&mut client, ControlCode::RateLimited, 0).await;
    expect_alive(&mut client).await;
    assert_eq!(
        server
            .relay
            .metrics()
            .rate_limited
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    server.stop().await;
}

#[tokio::test]
async fn sid_reuse_is_409_and_caps_are_429() {
    let server = Server::start(limits(|l| l.sessions_per_daemon = 2)).await;
    let now = unix_now();
    let mut daemon = connect_bearer(&server.ws_url(), &server.daemon_token("d_cap", false, now))
        .await
        .ws();
    expect_alive(&mut daemon).await;
    let t1 = server.client_token("d_cap", 1, now);
    let mut c1 = connect_query(&server.ws_url(), &t1).await.ws();
    expect_alive(&mut c1).await;
    // Same sid while paired: 409.
    let (status, body) = connect_query(&server.ws_url(), &t1).await.refused();
    assert_eq!((status, body["error"].as_str()), (409, Some("sid_in_use")));
    let _c2 = connect_query(&server.ws_url(), &server.client_token("d_cap", 2, now))
        .await
        .ws();
    let (status, body) = connect_query(&server.ws_url(), &server.client_token("d_cap", 3, now))
        .await
        .refused();
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("too_many_sessions"))
    );
    // After closing, the sid stays used (P24) but the slot is free.
    c1.close(None).await.unwrap();
    expect_control(&mut daemon, ControlCode::SessionEnded, 1).await;
    let (status, _) = connect_query(&server.ws_url(), &t1).await.refused();
    assert_eq!(status, 409);
    let _c3 = connect_query(&server.ws_url(), &server.client_token("d_cap", 3, now))
        .await
        .ws();
    server.stop().await;

    // Relay connection cap.
    let server = Server::start(limits(|l| l.max_connections = 1)).await;
    let mut d = connect_bearer(&server.ws_url(), &server.daemon_token("d_conn", false, now))
        .await
        .ws();
    expect_alive(&mut d).await;
    let (status, body) = connect_query(&server.ws_url(), &server.client_token("d_conn", 1, now))
        .await
        .refused();
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("too_many_connections"))
    );
    server.stop().await;
}

#[tokio::test]
async fn ping_is_answered_and_never_forwarded() {
    let server = Server::start(RelayConfig::default()).await;
    let now = unix_now();
    let mut daemon = connect_bearer(&server.ws_url(), &server.daemon_token("d_ping", false, now))
        .await
        .ws();
    let mut client = connect_query(&server.ws_url(), &server.client_token("d_ping", 4, now))
        .await
        .ws();
    expect_alive(&mut daemon).await;
    for payload in [&b""[..], b"12345678"] {
        send(&mut client, Frame::Ping { payload }.to_vec().unwrap()).await;
        assert_eq!(
            recv_frame(&mut client).await.as_ref(),
            Frame::Pong { payload }.to_vec().unwrap()
        );
    }
    // Pong: liveness only.
    send(&mut client, Frame::Pong { payload: b"x" }.to_vec().unwrap()).await;
    // The daemon sees only the Data frame sent after them.
    let data = data_frame(4, 9, 28);
    send(&mut client, data.clone()).await;
    assert_eq!(recv_frame(&mut daemon).await.as_ref(), data.as_slice());
    server.stop().await;
}

#[tokio::test]
async fn daemon_replacement_pause_and_resume() {
    let server = Server::start(RelayConfig::default()).await;
    let now = unix_now();
    let token = server.daemon_token("d_res", true, now);
    let mut d1 = connect_bearer(&server.ws_url(), &token).await.ws();
    expect_alive(&mut d1).await;
    let mut client = connect_query(&server.ws_url(), &server.client_token("d_res", 77, now))
        .await
        .ws();
    expect_alive(&mut client).await;
    // A second daemon connection replaces the first (1008, no Control).
    let mut d2 = connect_bearer(&server.ws_url(), &token).await.ws();
    match tokio::time::timeout(common::WAIT, futures_util::StreamExt::next(&mut d1))
        .await
        .unwrap()
    {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1008),
        other => panic!("expected close 1008, got {other:?}"),
    }
    expect_control(&mut client, ControlCode::SessionPaused, 77).await;
    expect_control(&mut client, ControlCode::SessionPending, 77).await;
    // P20/P21: dropped while pending.
    send(&mut client, data_frame(77, 1, 30)).await;
    send(&mut d2, data_frame(77, 2, 30)).await;
    // P16.
    let ready = Frame::Signal {
        sid: 77,
        signal: SignalCode::Ready,
        reason: SignalReason::None,
    };
    send(&mut d2, ready.to_vec().unwrap()).await;
    expect_control(&mut client, ControlCode::SessionResumed, 77).await;
    let data = data_frame(77, 3, 50);
    send(&mut client, data.clone()).await;
    assert_eq!(recv_frame(&mut d2).await.as_ref(), data.as_slice());
    // P10: Signal(close) ends the pairing.
    let close = Frame::Signal {
        sid: 77,
        signal: SignalCode::Close,
        reason: SignalReason::Shutdown,
    };
    send(&mut d2, close.to_vec().unwrap()).await;
    expect_control(&mut client, ControlCode::SessionExpired, 77).await;
    expect_closed(&mut client).await;
    // A Signal for an unknown sid: session_not_found, daemon stays.
    send(&mut d2, ready.to_vec().unwrap()).await;
    expect_control(&mut d2, ControlCode::SessionNotFound, 77).await;
    expect_alive(&mut d2).await;
    assert!(
        server
            .relay
            .metrics()
            .drops(keyline_relay::metrics::DropReason::Pending)
            >= 2
    );
    server.stop().await;
}

#[tokio::test]
async fn grace_period_expires_paused_sessions_and_non_resumable_reconnect_expires() {
    let server = Server::start(limits(|l| {
        l.grace_period = Duration::from_millis(300);
        l.sweep_interval = Duration::from_millis(20);
    }))
    .await;
    let now = unix_now();
    let token = server.daemon_token("d_grace", false, now);
    let mut d = connect_bearer(&server.ws_url(), &token).await.ws();
    expect_alive(&mut d).await;
    let mut c = connect_query(&server.ws_url(), &server.client_token("d_grace", 8, now))
        .await
        .ws();
    expect_alive(&mut c).await;
    d.close(None).await.unwrap();
    expect_control(&mut c, ControlCode::SessionPaused, 8).await;
    // P14.
    expect_control(&mut c, ControlCode::SessionExpired, 8).await;
    expect_closed(&mut c).await;
    // P13: a non-resumable daemon reconnect expires paused pairings at once.
    let mut d = connect_bearer(&server.ws_url(), &token).await.ws();
    expect_alive(&mut d).await;
    let mut c = connect_query(&server.ws_url(), &server.client_token("d_grace", 9, now))
        .await
        .ws();
    expect_alive(&mut c).await;
    d.close(None).await.unwrap();
    expect_control(&mut c, ControlCode::SessionPaused, 9).await;
    let mut d = connect_bearer(&server.ws_url(), &token).await.ws();
    expect_control(&mut c, ControlCode::SessionExpired, 9).await;
    expect_closed(&mut c).await;
    expect_alive(&mut d).await;
    server.stop().await;
}

#[tokio::test]
async fn slow_consumer_gets_backpressure_and_others_continue() {
    let server = Server::start(limits(|l| {
        // The byte bound trips first for the slow client (four 65 kB frames); the frame bound
        // stays at its default so the daemon's queue holds the relay's per-frame
        // `session_not_found` answers to what it sent after the session ended (spec §7 step 9).
        l.send_queue_bytes = 256 * 1024;
        l.frames_per_second = 0;
    }))
    .await;
    let now = unix_now();
    let mut daemon = connect_bearer(&server.ws_url(), &server.daemon_token("d_slow", false, now))
        .await
        .ws();
    expect_alive(&mut daemon).await;
    let mut slow = connect_query(&server.ws_url(), &server.client_token("d_slow", 1, now))
        .await
        .ws();
    expect_alive(&mut slow).await;
    let mut fast = connect_query(&server.ws_url(), &server.client_token("d_slow", 2, now))
        .await
        .ws();
    expect_alive(&mut fast).await;
    // The slow client stops reading; the daemon floods it. The daemon keeps reading, as a
    // real daemon does: what the relay says about frames it sent after the session ended
    // (with a 4-frame queue) must not make the daemon a slow consumer itself.
    let (mut daemon_tx, mut daemon_rx) = futures_util::StreamExt::split(daemon);
    let (frames_tx, mut frames) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(m) = futures_util::StreamExt::next(&mut daemon_rx).await {
            let Ok(message) = m else { break };
            if let tokio_tungstenite::tungstenite::Message::Binary(bytes) = message
                && frames_tx.send(bytes).is_err()
            {
                break;
            }
        }
    });
    let big = data_frame(1, 7, 65_000);
    let mut ended = false;
    for _ in 0..2000 {
        futures_util::SinkExt::send(
            &mut daemon_tx,
            tokio_tungstenite::tungstenite::Message::Binary(big.clone().into()),
        )
        .await
        .unwrap();
        if server
            .relay
            .metrics()
            .backpressure_closes
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
        {
            ended = true;
            break;
        }
    }
    assert!(ended, "no backpressure close");
    // The daemon learns the session ended (possibly after frames it still had in flight).
    loop {
        let frame = tokio::time::timeout(common::WAIT, frames.recv())
            .await
            .expect("session_ended in time")
            .expect("daemon connection open");
        if control_of(&frame) == (ControlCode::SessionEnded.to_u16(), 1) {
            break;
        }
    }
    // The other session is unaffected.
    let data = data_frame(2, 1, 100);
    futures_util::SinkExt::send(
        &mut daemon_tx,
        tokio_tungstenite::tungstenite::Message::Binary(data.clone().into()),
    )
    .await
    .unwrap();
    assert_eq!(recv_frame(&mut fast).await.as_ref(), data.as_slice());
    reader.abort();
    // The slow client finds forwarded frames, then the backpressure Control, then the close.
    let mut saw_backpressure = false;
    while let Some(frame) = recv(&mut slow).await {
        if frame.first() == Some(&0x20) {
            assert_eq!(control_of(&frame), (ControlCode::Backpressure.to_u16(), 0));
            saw_backpressure = true;
        }
    }
    assert!(saw_backpressure);
    server.stop().await;
}

#[tokio::test]
async fn keepalive_closes_silent_peers_only() {
    let server = Server::start(limits(|l| {
        l.keepalive_interval = Duration::from_millis(150);
        l.keepalive_missed = 2;
    }))
    .await;
    let now = unix_now();
    let mut daemon = connect_bearer(&server.ws_url(), &server.daemon_token("d_ka", false, now))
        .await
        .ws();
    // The silent client never reads, so it never answers the relay's WebSocket Pings.
    let silent = connect_query(&server.ws_url(), &server.client_token("d_ka", 1, now))
        .await
        .ws();
    // The daemon keeps reading (tungstenite answers Pings) for several intervals.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1000);
    let mut ended = false;
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(Ok(Message::Binary(frame)))) = tokio::time::timeout(
            Duration::from_millis(50),
            futures_util::StreamExt::next(&mut daemon),
        )
        .await
        {
            assert_eq!(control_of(&frame), (ControlCode::SessionEnded.to_u16(), 1));
            ended = true;
        }
    }
    assert!(ended, "silent client not closed");
    expect_alive(&mut daemon).await;
    assert!(
        server
            .relay
            .metrics()
            .keepalive_closes
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    drop(silent);
    server.stop().await;
}

#[tokio::test]
async fn pre_upgrade_deadline_drops_slow_requests_only() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let server = Server::start(limits(|l| {
        l.pre_upgrade_timeout = Duration::from_millis(300)
    }))
    .await;
    // A connection that sends half a request and stalls is dropped.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(common::WAIT, tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "expected the relay to drop the connection");
    assert!(started.elapsed() >= Duration::from_millis(250));
    // An upgraded WebSocket outlives the deadline.
    let now = unix_now();
    let mut daemon = connect_bearer(
        &server.ws_url(),
        &server.daemon_token("d_slowloris", false, now),
    )
    .await
    .ws();
    tokio::time::sleep(Duration::from_millis(600)).await;
    expect_alive(&mut daemon).await;
    server.stop().await;
}

#[tokio::test]
async fn stalled_socket_is_closed_by_the_write_timeout() {
    let server = Server::start(limits(|l| {
        l.write_timeout = Duration::from_millis(200);
        l.send_queue_frames = 100_000;
        l.send_queue_bytes = 1 << 30;
        l.frames_per_second = 0;
    }))
    .await;
    let now = unix_now();
    let mut daemon = connect_bearer(
        &server.ws_url(),
        &server.daemon_token("d_stall", false, now),
    )
    .await
    .ws();
    expect_alive(&mut daemon).await;
    let mut stalled = connect_query(&server.ws_url(), &server.client_token("d_stall", 1, now))
        .await
        .ws();
    expect_alive(&mut stalled).await;
    // The client stops reading; the queue is huge, so only the write timeout can act.
    let big = data_frame(1, 3, 65_000);
    let metrics = server.relay.metrics();
    let mut closed = false;
    for _ in 0..5000 {
        send(&mut daemon, big.clone()).await;
        if metrics
            .write_timeout_closes
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
        {
            closed = true;
            break;
        }
    }
    if !closed {
        tokio::time::sleep(Duration::from_millis(500)).await;
        closed = metrics
            .write_timeout_closes
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0;
    }
    assert!(closed, "stalled socket not closed");
    assert_eq!(
        metrics
            .backpressure_closes
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    // The daemon learns the session ended.
    loop {
        let frame = recv_frame(&mut daemon).await;
        if control_of(&frame) == (ControlCode::SessionEnded.to_u16(), 1) {
            break;
        }
    }
    drop(stalled);
    server.stop().await;
}

/// Pages of any origin may fetch session tokens (no credentials): preflight and the answer
/// carry the CORS headers; presence endpoints (daemons, not browsers) do not.
#[tokio::test]
async fn session_endpoints_allow_cross_origin_pages() {
    let server = Server::start(RelayConfig::default()).await;
    let http = reqwest::Client::new();
    let preflight = http
        .request(reqwest::Method::OPTIONS, server.http("/v1/sessions"))
        .header("origin", "http://page.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 204);
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(h["access-control-allow-methods"], "POST");
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("content-type")
    );
    let answer = http
        .post(server.http("/v1/sessions"))
        .header("origin", "http://page.example")
        .json(&json!({"daemon_id": "nobody"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 404);
    assert_eq!(answer.headers()["access-control-allow-origin"], "*");
    let presence = http
        .post(server.http("/v1/presence/challenge"))
        .json(&json!({"daemon_id": "x", "identity_key": "AAAA"}))
        .send()
        .await
        .unwrap();
    assert!(
        presence
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    server.stop().await;
}
