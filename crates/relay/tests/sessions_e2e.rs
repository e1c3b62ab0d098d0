//! Real SBRP sessions (keyline-sbrp handshake and sealing) through the relay, pairing rows
//! over sockets, many concurrent sessions, and what the relay logs.

mod common;

use std::time::{Duration, Instant};

use common::{
    Server, Ws, connect_bearer, connect_query, expect_alive, expect_closed, expect_control,
    recv_frame, send, unix_now,
};
use futures_util::{SinkExt as _, StreamExt as _};
use keyline_core::Policy;
use keyline_relay::{Limits, RelayConfig};
use keyline_sbrp::EphemeralKey;
use keyline_sbrp::proto::control::ControlCode;
use keyline_sbrp::proto::frame::{Frame, SignalCode, SignalReason};
use keyline_sbrp::proto::{ClientHandshake, DaemonIdentity, SessionConfig, trust};
use serde_json::json;

fn limits(f: impl FnOnce(&mut Limits)) -> RelayConfig {
    let mut config = RelayConfig::default();
    f(&mut config.limits);
    config
}

/// Spec 8.7 / 16.19: a real handshake and sealed traffic through the relay; no 8-byte window
/// of any plaintext appears in any frame the relay forwarded (what each peer received is
/// exactly what the relay sent it).
#[tokio::test]
async fn encrypted_session_through_relay_leaks_no_plaintext() {
    let server = Server::start(RelayConfig::default()).await;
    let seed = [0x5a; 32];
    let daemon_key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let presence = server.presence("d_crypto", &daemon_key, false).await;
    let mut daemon_ws = connect_bearer(&server.ws_url(), &presence).await.ws();
    expect_alive(&mut daemon_ws).await;
    let (status, body) = server.sessions(json!({"daemon_id": "d_crypto"})).await;
    assert_eq!(status, 200);
    let sid = keyline_sbrp::proto::sid::decode_sid(body["sid"].as_str().unwrap()).unwrap();
    let mut client_ws = connect_query(&server.ws_url(), body["token"].as_str().unwrap())
        .await
        .ws();

    let now = Instant::now();
    let config = SessionConfig::default();
    let identity = DaemonIdentity::new("d_crypto", &seed).unwrap();
    let client = ClientHandshake::new(
        "d_crypto",
        sid,
        EphemeralKey::generate().unwrap(),
        now,
        SessionConfig::default(),
    )
    .unwrap();
    let mut seen_by_peers: Vec<Vec<u8>> = Vec::new();

    send(&mut client_ws, client.init_frame().to_vec()).await;
    let init = recv_frame(&mut daemon_ws).await;
    assert_eq!(init.as_ref(), client.init_frame().as_slice());
    seen_by_peers.push(init.to_vec());
    let Frame::HandshakeInit {
        sid: got_sid,
        client_ephemeral,
    } = Frame::decode(&init).unwrap()
    else {
        panic!("not an Init")
    };
    assert_eq!(got_sid, sid);
    let (accept, mut daemon_session) = identity
        .accept(
            sid,
            &client_ephemeral,
            EphemeralKey::generate().unwrap(),
            now,
            &config,
        )
        .unwrap();
    send(
        &mut daemon_ws,
        DaemonIdentity::accept_frame(sid, &accept).unwrap(),
    )
    .await;
    let accept_frame = recv_frame(&mut client_ws).await;
    seen_by_peers.push(accept_frame.to_vec());
    let accept = client
        .handle_frame(&Frame::decode(&accept_frame).unwrap())
        .unwrap()
        .expect("Accept");
    trust::decide(Policy::Tofu, "d_crypto", None, &accept.identity_key).unwrap();
    assert_eq!(accept.identity_key, daemon_key.verifying_key().to_bytes());
    let mut client_session = client.finish(&accept, &accept.identity_key, now).unwrap();

    let plaintexts: Vec<Vec<u8>> = vec![
        b"the quick brown fox jumps over the lazy relay".to_vec(),
        (0..=255u8).collect(),
        vec![0x41; 60_000],
        b"{\"t\":\"r\",\"m\":\"$sideband/echo\",\"p\":{\"secret\":\"hunter2hunter2\"}}".to_vec(),
    ];
    for text in &plaintexts {
        let frame = client_session.seal_to_vec(text).unwrap();
        send(&mut client_ws, frame.clone()).await;
        let got = recv_frame(&mut daemon_ws).await;
        assert_eq!(got.as_ref(), frame.as_slice(), "relay modified a frame");
        assert_eq!(
            &daemon_session
                .open_frame(&Frame::decode(&got).unwrap())
                .unwrap(),
            text
        );
        seen_by_peers.push(got.to_vec());
        let frame = daemon_session.seal_to_vec(text).unwrap();
        send(&mut daemon_ws, frame.clone()).await;
        let got = recv_frame(&mut client_ws).await;
        assert_eq!(got.as_ref(), frame.as_slice());
        assert_eq!(
            &client_session
                .open_frame(&Frame::decode(&got).unwrap())
                .unwrap(),
            text
        );
        seen_by_peers.push(got.to_vec());
    }
    let visible: std::collections::HashSet<&[u8]> = seen_by_peers
        .iter()
        .flat_map(|frame| frame.windows(8))
        .collect();
    for text in &plaintexts {
        assert!(
            !text.windows(8).any(|window| visible.contains(window)),
            "plaintext bytes visible to the relay"
        );
    }
    server.stop().await;
}

async fn pair(server: &Server, daemon_id: &str, resumable: bool, sid: u64) -> (Ws, Ws, String) {
    let now = unix_now();
    let token = server.daemon_token(daemon_id, resumable, now);
    let mut daemon = connect_bearer(&server.ws_url(), &token).await.ws();
    expect_alive(&mut daemon).await;
    let mut client = connect_query(&server.ws_url(), &server.client_token(daemon_id, sid, now))
        .await
        .ws();
    expect_alive(&mut client).await;
    (daemon, client, token)
}

fn signal(sid: u64, signal: SignalCode) -> Vec<u8> {
    Frame::Signal {
        sid,
        signal,
        reason: SignalReason::None,
    }
    .to_vec()
    .unwrap()
}

/// Rows of spec 8.5 not covered elsewhere over sockets: P11, P15, P17, P18, P19.
#[tokio::test]
async fn pairing_rows_over_websockets() {
    let server = Server::start(limits(|l| {
        l.grace_period = Duration::from_millis(400);
        l.sweep_interval = Duration::from_millis(20);
    }))
    .await;
    // P11: Signal(ready) while Paired is ignored.
    let (mut d, mut c, _) = pair(&server, "d_p11", true, 11).await;
    send(&mut d, signal(11, SignalCode::Ready)).await;
    expect_alive(&mut c).await;
    let data = common::data_frame(11, 1, 30);
    send(&mut d, data.clone()).await;
    assert_eq!(recv_frame(&mut c).await.as_ref(), data.as_slice());

    // P15: the client leaves while Paused: nothing reaches the daemon when it returns.
    let (d, mut c, token) = pair(&server, "d_p15", true, 15).await;
    drop(d);
    expect_control(&mut c, ControlCode::SessionPaused, 15).await;
    c.close(None).await.unwrap();
    drop(c);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut d = connect_bearer(&server.ws_url(), &token).await.ws();
    expect_alive(&mut d).await;
    // Its Signal for that sid finds no pairing.
    send(&mut d, signal(15, SignalCode::Ready)).await;
    expect_control(&mut d, ControlCode::SessionNotFound, 15).await;

    // P17: Pending + Signal(close) → session_expired.
    let (d, mut c, token) = pair(&server, "d_p17", true, 17).await;
    drop(d);
    expect_control(&mut c, ControlCode::SessionPaused, 17).await;
    let mut d = connect_bearer(&server.ws_url(), &token).await.ws();
    expect_control(&mut c, ControlCode::SessionPending, 17).await;
    send(
        &mut d,
        Frame::Signal {
            sid: 17,
            signal: SignalCode::Close,
            reason: SignalReason::StateLost,
        }
        .to_vec()
        .unwrap(),
    )
    .await;
    expect_control(&mut c, ControlCode::SessionExpired, 17).await;
    expect_closed(&mut c).await;

    // P18: Pending + client closes → session_ended to the daemon.
    let (d, mut c, token) = pair(&server, "d_p18", true, 18).await;
    drop(d);
    expect_control(&mut c, ControlCode::SessionPaused, 18).await;
    let mut d = connect_bearer(&server.ws_url(), &token).await.ws();
    expect_control(&mut c, ControlCode::SessionPending, 18).await;
    c.close(None).await.unwrap();
    expect_control(&mut d, ControlCode::SessionEnded, 18).await;

    // P19: Pending and the grace period ends.
    let (d, mut c, token) = pair(&server, "d_p19", true, 19).await;
    drop(d);
    expect_control(&mut c, ControlCode::SessionPaused, 19).await;
    let _d = connect_bearer(&server.ws_url(), &token).await.ws();
    expect_control(&mut c, ControlCode::SessionPending, 19).await;
    expect_control(&mut c, ControlCode::SessionExpired, 19).await;
    expect_closed(&mut c).await;
    server.stop().await;
}

/// Spec 16.20: 1000 concurrent sessions through one relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_sessions() {
    const N: u64 = 1000;
    let server = Server::start(limits(|l| {
        l.sessions_per_daemon = N as usize;
        l.frames_per_second = 0;
        l.send_queue_frames = 4096;
        l.send_queue_bytes = 64 << 20;
    }))
    .await;
    let now = unix_now();
    let mut daemon = connect_bearer(&server.ws_url(), &server.daemon_token("d_many", false, now))
        .await
        .ws();
    expect_alive(&mut daemon).await;
    let url = server.ws_url();
    let tokens: Vec<(u64, String)> = (1..=N)
        .map(|sid| (sid, server.client_token("d_many", sid, now)))
        .collect();
    let clients: Vec<(u64, Ws)> = futures_util::stream::iter(tokens)
        .map(|(sid, token)| {
            let url = url.clone();
            async move { (sid, connect_query(&url, &token).await.ws()) }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert_eq!(clients.len(), N as usize);
    // The daemon echoes every Data frame it gets, until told to stop (closing it earlier
    // could reset the TCP connection with echoes still in flight).
    let (mut daemon_tx, mut daemon_rx) = daemon.split();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let echo = tokio::spawn(async move {
        let mut echoed = 0u64;
        loop {
            let next = tokio::select! {
                _ = &mut stop_rx => break,
                next = daemon_rx.next() => next,
            };
            match next {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(frame))) => {
                    if frame[0] != 0x03 {
                        // Control frames (session_ended of finished clients): not echoed.
                        continue;
                    }
                    daemon_tx
                        .send(tokio_tungstenite::tungstenite::Message::Binary(frame))
                        .await
                        .unwrap();
                    echoed += 1;
                }
                Some(Ok(_)) => {}
                other => panic!("daemon stream ended: {other:?}"),
            }
        }
        echoed
    });
    let results: Vec<(Option<String>, Ws)> = futures_util::stream::iter(clients)
        .map(|(sid, mut ws)| async move {
            let frame = common::data_frame(sid, sid as u8, 64);
            send(&mut ws, frame.clone()).await;
            let back = recv_frame(&mut ws).await;
            let failure = (back.as_ref() != frame.as_slice())
                .then(|| format!("sid {sid}: got {}", hex::encode(&back)));
            (failure, ws)
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let failures: Vec<&String> = results.iter().filter_map(|(f, _)| f.as_ref()).collect();
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        failures.first()
    );
    let _ = stop_tx.send(());
    assert_eq!(echo.await.unwrap(), N);
    assert_eq!(
        server
            .relay
            .metrics()
            .frames_forwarded(keyline_sbrp::proto::frame::FrameType::Data),
        2 * N
    );
    drop(results);
    server.stop().await;
}

/// Query-string tokens never reach the logs, at any level.
#[tokio::test]
async fn tokens_are_never_logged() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = Server::start(RelayConfig::default()).await;
    let now = unix_now();
    let daemon_token = server.daemon_token("d_log", false, now);
    let mut d = connect_query(&server.ws_url(), &daemon_token).await.ws();
    expect_alive(&mut d).await;
    let client_token = server.client_token("d_log", 3, now);
    let mut c = connect_query(&server.ws_url(), &client_token).await.ws();
    expect_alive(&mut c).await;
    // A long-lived client token (warned) and a rejected one.
    let (status, _) = connect_query(&server.ws_url(), "eyJhbGciOiJFZERTQSJ9.e30.c2ln")
        .await
        .refused();
    assert_eq!(status, 401);
    c.close(None).await.unwrap();
    expect_control(&mut d, ControlCode::SessionEnded, 3).await;
    server.stop().await;
    let logs = String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned();
    for token in [
        &daemon_token,
        &client_token,
        &"eyJhbGciOiJFZERTQSJ9.e30.c2ln".to_owned(),
    ] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !logs.contains(token.as_str()) && !logs.contains(signature),
            "token in logs:\n{logs}"
        );
    }
    assert!(!logs.contains("token="), "query string in logs:\n{logs}");
}
