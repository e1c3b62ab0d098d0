//! End-to-end tests of the tokio adapter through a minimal in-test relay: a raw
//! tokio-tungstenite server that routes SBRP frames by sid between one daemon connection and
//! client connections (not the real keyline-relay), with hooks to tamper with frames, drop
//! the daemon, swallow Inits, inject Control codes and record Signals and Pongs.
//!
//! Every await is bounded by a generous test deadline; no assertion depends on timing.
#![cfg(feature = "tokio")]

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{SinkExt as _, StreamExt as _};
use keyline_core::{PinOutcome, PinStore, Policy};
use keyline_sbrp::proto::control::ControlCode;
use keyline_sbrp::proto::frame::{Frame, FrameType, Header, SignalCode, SignalReason};
use keyline_sbrp::proto::handshake::{ClientHandshake, DaemonIdentity};
use keyline_sbrp::proto::rpc::{Cid, Envelope};
use keyline_sbrp::proto::sbp::{SbpEndpoint, SbpEvent, SbpHandshake};
use keyline_sbrp::proto::session::SessionConfig;
use keyline_sbrp::proto::sid::encode_sid;
use keyline_sbrp::proto::trust::fingerprint;
use keyline_sbrp::tokio::{
    Client, ClientConfig, ClientSession, Daemon, DaemonConfig, DaemonSession, DaemonStatus,
    Incoming, Notification, RpcError, Trust,
};
use keyline_sbrp::{EphemeralKey, Error};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, http};

/// Test deadline for any single wait (never reached when things work).
const WAIT: Duration = Duration::from_secs(20);
const DAEMON_ID: &str = "d_test";

async fn w<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(WAIT, fut)
        .await
        .expect("test deadline passed")
}

// ----- the minimal relay ------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum RelayEvent {
    DaemonConnected,
    Signal(u64, SignalCode, SignalReason),
    Pong(Vec<u8>),
    /// An SBRP Ping from the daemon.
    DaemonPing,
    /// A Pong from a client.
    ClientPong(u64, Vec<u8>),
}

#[derive(Default)]
struct State {
    daemon: Option<(u64, mpsc::Sender<Message>)>,
    clients: HashMap<u64, mpsc::Sender<Message>>,
    tamper_c2d: HashSet<u64>,
    tamper_d2c: HashSet<u64>,
    swallow_inits: bool,
    next_conn: u64,
}

struct TestRelay {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    events: mpsc::UnboundedReceiver<RelayEvent>,
    task: JoinHandle<()>,
}

enum Role {
    Daemon,
    Client(u64),
}

fn control(sid: u64, code: ControlCode) -> Message {
    let frame = Frame::Control {
        sid,
        code,
        message: &[],
    }
    .to_vec()
    .unwrap();
    Message::Binary(frame.into())
}

fn close_message(code: u16) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: "test relay".into(),
    }))
}

impl TestRelay {
    async fn start() -> TestRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, events) = mpsc::unbounded_channel();
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(handle_conn(stream, shared.clone(), tx.clone()));
            }
        });
        TestRelay {
            addr,
            state,
            events,
            task,
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    fn client_url(&self, sid: u64) -> String {
        let claims = json!({"sid": encode_sid(sid), "role": "client"}).to_string();
        format!(
            "ws://{}/?token=e30.{}.c2ln",
            self.addr,
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    async fn to_daemon(&self, msg: Message) {
        let tx = self.with(|s| s.daemon.as_ref().map(|(_, tx)| tx.clone()));
        tx.expect("a daemon is connected").send(msg).await.unwrap();
    }

    async fn to_client(&self, sid: u64, msg: Message) {
        let tx = self.with(|s| s.clients.get(&sid).cloned());
        tx.expect("the client is connected")
            .send(msg)
            .await
            .unwrap();
    }

    /// Waits for the first event matching `pred`, skipping others.
    async fn expect_event(&mut self, pred: impl Fn(&RelayEvent) -> bool) -> RelayEvent {
        w(async {
            loop {
                let ev = self.events.recv().await.expect("relay running");
                if pred(&ev) {
                    return ev;
                }
            }
        })
        .await
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle_conn(
    stream: tokio::net::TcpStream,
    state: Arc<Mutex<State>>,
    events: mpsc::UnboundedSender<RelayEvent>,
) {
    let mut role = None;
    // The callback's signature is tungstenite's.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if let Some(auth) = req.headers().get("authorization") {
            if auth.to_str().unwrap_or("") == "Bearer presence-ok" {
                role = Some(Role::Daemon);
                return Ok(resp);
            }
        } else if let Some(query) = req.uri().query() {
            let url = format!("ws://x/?{query}");
            if let Ok(sid) = keyline_sbrp::tokio::sid_from_url(&url) {
                role = Some(Role::Client(sid));
                return Ok(resp);
            }
        }
        let mut refused = http::Response::new(Some(
            r#"{"error":"unauthorized","message":"bad token"}"#.to_string(),
        ));
        *refused.status_mut() = http::StatusCode::UNAUTHORIZED;
        Err(refused)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(1024);
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            let is_close = matches!(msg, Message::Close(_));
            if sink.send(msg).await.is_err() || is_close {
                break;
            }
        }
    });
    match role {
        Some(Role::Daemon) => {
            let id = {
                let mut s = state.lock().unwrap();
                s.next_conn += 1;
                let id = s.next_conn;
                if let Some((_, old)) = s.daemon.replace((id, tx.clone())) {
                    let _ = old.try_send(close_message(1008));
                }
                id
            };
            let _ = events.send(RelayEvent::DaemonConnected);
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Binary(bytes) = msg else {
                    if matches!(msg, Message::Close(_)) {
                        break;
                    }
                    continue;
                };
                let Some(h) = Header::parse(&bytes) else {
                    continue;
                };
                match FrameType::from_u8(h.frame_type) {
                    Some(FrameType::HandshakeAccept | FrameType::Data) => {
                        let mut bytes = bytes.to_vec();
                        let (client, tamper) = {
                            let mut s = state.lock().unwrap();
                            let tamper = h.frame_type == FrameType::Data as u8
                                && s.tamper_d2c.remove(&h.sid);
                            (s.clients.get(&h.sid).cloned(), tamper)
                        };
                        if tamper {
                            *bytes.last_mut().unwrap() ^= 0x01;
                        }
                        if let Some(c) = client {
                            let _ = c.send(Message::Binary(bytes.into())).await;
                        }
                    }
                    Some(FrameType::Signal) => {
                        if let Ok(Frame::Signal {
                            sid,
                            signal,
                            reason,
                        }) = Frame::decode(&bytes)
                        {
                            let _ = events.send(RelayEvent::Signal(sid, signal, reason));
                            if signal == SignalCode::Close {
                                let client = state.lock().unwrap().clients.remove(&sid);
                                if let Some(c) = client {
                                    let _ = c.send(control(sid, ControlCode::SessionExpired)).await;
                                    let _ = c.send(close_message(1000)).await;
                                }
                            }
                        }
                    }
                    Some(FrameType::Ping) => {
                        let _ = events.send(RelayEvent::DaemonPing);
                        let mut pong = bytes.to_vec();
                        pong[0] = FrameType::Pong as u8;
                        let _ = tx.send(Message::Binary(pong.into())).await;
                    }
                    Some(FrameType::Pong) => {
                        let _ = events.send(RelayEvent::Pong(bytes[13..].to_vec()));
                    }
                    _ => {}
                }
            }
            let mut s = state.lock().unwrap();
            if s.daemon.as_ref().is_some_and(|(d, _)| *d == id) {
                s.daemon = None;
            }
        }
        Some(Role::Client(sid)) => {
            let daemon = state
                .lock()
                .unwrap()
                .daemon
                .as_ref()
                .map(|(_, d)| d.clone());
            let Some(_) = daemon else {
                let _ = tx.send(control(sid, ControlCode::DaemonOffline)).await;
                let _ = tx.send(close_message(1000)).await;
                return;
            };
            state.lock().unwrap().clients.insert(sid, tx.clone());
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Binary(bytes) = msg else {
                    if matches!(msg, Message::Close(_)) {
                        break;
                    }
                    continue;
                };
                let Some(h) = Header::parse(&bytes) else {
                    continue;
                };
                let mut bytes = bytes.to_vec();
                let daemon = {
                    let mut s = state.lock().unwrap();
                    match FrameType::from_u8(h.frame_type) {
                        Some(FrameType::HandshakeInit) if s.swallow_inits => continue,
                        Some(FrameType::Data) if s.tamper_c2d.remove(&h.sid) => {
                            *bytes.last_mut().unwrap() ^= 0x01;
                        }
                        Some(FrameType::HandshakeInit | FrameType::Data) => {}
                        Some(FrameType::Ping) => {
                            bytes[0] = FrameType::Pong as u8;
                            let _ = tx.try_send(Message::Binary(bytes.into()));
                            continue;
                        }
                        Some(FrameType::Pong) => {
                            let _ = events.send(RelayEvent::ClientPong(sid, bytes[13..].to_vec()));
                            continue;
                        }
                        _ => continue,
                    }
                    s.daemon.as_ref().map(|(_, d)| d.clone())
                };
                if let Some(d) = daemon {
                    let _ = d.send(Message::Binary(bytes.into())).await;
                }
            }
            let daemon = {
                let mut s = state.lock().unwrap();
                let ours = s.clients.get(&sid).is_some_and(|c| c.same_channel(&tx));
                if ours {
                    s.clients.remove(&sid);
                }
                s.daemon.as_ref().map(|(_, d)| d.clone()).filter(|_| ours)
            };
            if let Some(d) = daemon {
                let _ = d.send(control(sid, ControlCode::SessionEnded)).await;
            }
        }
        None => {}
    }
}

// ----- the test daemon ----------------------------------------------------------------------

static NEXT_SID: AtomicU64 = AtomicU64::new(0x0100_0000_0000_0001);

fn new_sid() -> u64 {
    NEXT_SID.fetch_add(1, Ordering::Relaxed)
}

fn daemon_config(relay: &TestRelay) -> DaemonConfig {
    let mut config = DaemonConfig::new(relay.url());
    config.reconnect_initial = Duration::from_millis(20);
    config.reconnect_max = Duration::from_millis(100);
    config
}

/// A running test daemon: its status, and the end reason of every session it served.
struct TestDaemon {
    status: watch::Receiver<DaemonStatus>,
    ends: mpsc::UnboundedReceiver<(u64, Error)>,
    task: JoinHandle<()>,
}

impl TestDaemon {
    async fn start(
        relay: &mut TestRelay,
        seed: [u8; 32],
        tweak: impl FnOnce(&mut DaemonConfig),
    ) -> TestDaemon {
        let mut config = daemon_config(relay);
        tweak(&mut config);
        let identity = DaemonIdentity::new(DAEMON_ID, &seed).unwrap();
        let mut daemon = w(Daemon::connect(identity, "presence-ok", config))
            .await
            .expect("daemon connects");
        relay
            .expect_event(|e| *e == RelayEvent::DaemonConnected)
            .await;
        let status = daemon.status();
        let (ends_tx, ends) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Some(session) = daemon.accept().await {
                let ends_tx = ends_tx.clone();
                tokio::spawn(async move {
                    let sid = session.sid();
                    let reason = serve_test(session).await;
                    let _ = ends_tx.send((sid, reason));
                });
            }
        });
        TestDaemon { status, ends, task }
    }

    async fn wait_generation(&mut self, generation: u64) {
        w(self.status.wait_for(
            |s| matches!(s, DaemonStatus::Connected { generation: g } if *g >= generation),
        ))
        .await
        .unwrap();
    }

    async fn session_end(&mut self, sid: u64) -> Error {
        w(async {
            loop {
                let (s, e) = self.ends.recv().await.expect("daemon running");
                if s == sid {
                    return e;
                }
            }
        })
        .await
    }

    /// Drops the daemon (its `Drop` stops the connection task).
    fn stop(self) {
        self.task.abort();
    }
}

async fn serve_test(mut session: DaemonSession) -> Error {
    loop {
        let req = match session.recv().await {
            Ok(Incoming::Request(req)) => req,
            Ok(_) => continue,
            Err(e) => return e,
        };
        let result = match req.method.as_str() {
            "echo" => Ok(req.params.unwrap_or(Value::Null)),
            "big" => {
                let n = req
                    .params
                    .as_ref()
                    .and_then(|p| p["n"].as_u64())
                    .unwrap_or(0);
                Ok(json!("z".repeat(n as usize)))
            }
            "tick" => {
                if let Err(e) = session.notify("tick", Some(json!({"n": 1}))).await {
                    return e;
                }
                Ok(json!(true))
            }
            "fail" => Err(RpcError::application("it failed")),
            other => Err(RpcError::unsupported_method(other)),
        };
        if let Err(e) = session.respond(req.cid, result).await {
            return e;
        }
    }
}

async fn tofu_store() -> PinStore {
    PinStore::open_in_memory().await.unwrap()
}

async fn connect(
    relay: &TestRelay,
    trust: Trust<'_>,
    config: ClientConfig,
) -> Result<ClientSession, Error> {
    let sid = new_sid();
    w(Client::new(config).connect(&relay.client_url(sid), DAEMON_ID, trust)).await
}

fn tofu(store: &PinStore) -> Trust<'_> {
    Trust::Pins {
        store,
        policy: Policy::Tofu,
        prompt: None,
    }
}

// ----- tests --------------------------------------------------------------------------------

#[tokio::test]
async fn handshake_and_rpc_echo_round_trip() {
    let mut relay = TestRelay::start().await;
    let daemon = TestDaemon::start(&mut relay, [1; 32], |_| {}).await;
    let pins = tofu_store().await;
    let session = connect(&relay, tofu(&pins), ClientConfig::default())
        .await
        .expect("client connects");
    assert_eq!(session.pin_outcome(), Some(&PinOutcome::NewlyPinned));
    assert!(session.chunking());
    assert_eq!(
        session.fingerprint(),
        DaemonIdentity::new(DAEMON_ID, &[1; 32])
            .unwrap()
            .fingerprint()
    );

    let params = json!({"hello": "daemon", "n": [1, 2, 3]});
    let result = w(session.call("echo", Some(params.clone()))).await.unwrap();
    assert_eq!(result, params);

    // Concurrent calls are matched by cid.
    let (a, b) = w(async {
        tokio::join!(
            session.call("echo", Some(json!("a"))),
            session.call("echo", Some(json!("b")))
        )
    })
    .await;
    assert_eq!((a.unwrap(), b.unwrap()), (json!("a"), json!("b")));

    // RPC errors do not end the session.
    match w(session.call("nope", None)).await {
        Err(Error::Remote { code: 1101, .. }) => {}
        other => panic!("expected unsupported_method, got {other:?}"),
    }
    match w(session.call("fail", None)).await {
        Err(e @ Error::Remote { code: 2000, .. }) => assert!(e.session_survives()),
        other => panic!("expected application error, got {other:?}"),
    }

    // Events.
    assert_eq!(w(session.call("tick", None)).await.unwrap(), json!(true));
    assert_eq!(
        w(session.next_event()).await,
        Some(Notification::Event {
            name: "tick".into(),
            data: Some(json!({"n": 1}))
        })
    );

    // A second connect with the same store: the pin is known.
    let again = connect(&relay, tofu(&pins), ClientConfig::default())
        .await
        .unwrap();
    assert_eq!(again.pin_outcome(), Some(&PinOutcome::Known));
    assert_eq!(
        w(again.call("echo", Some(json!(1)))).await.unwrap(),
        json!(1)
    );

    let sid = session.sid();
    w(session.close()).await;
    let mut daemon = daemon;
    match daemon.session_end(sid).await {
        Error::Relay {
            code: ControlCode::SessionEnded,
            ..
        }
        | Error::SessionClosed => {}
        other => panic!("unexpected end reason {other:?}"),
    }
    daemon.stop();
}

#[tokio::test]
async fn one_mib_request_and_result_are_chunked() {
    let mut relay = TestRelay::start().await;
    let daemon = TestDaemon::start(&mut relay, [2; 32], |_| {}).await;
    let pins = tofu_store().await;
    let session = connect(&relay, tofu(&pins), ClientConfig::default())
        .await
        .unwrap();

    let mib = 1024 * 1024;
    let big: String = (0..mib)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let result = w(session.call("echo", Some(json!(big.clone()))))
        .await
        .unwrap();
    assert_eq!(result.as_str().map(str::len), Some(mib));
    assert_eq!(result, json!(big));

    let result = w(session.call("big", Some(json!({"n": mib}))))
        .await
        .unwrap();
    assert_eq!(result.as_str().unwrap().len(), mib);

    // Still usable afterwards.
    assert_eq!(
        w(session.call("echo", Some(json!("x")))).await.unwrap(),
        json!("x")
    );
    daemon.stop();
}

#[tokio::test]
async fn tofu_pin_then_changed_key_is_identity_key_changed() {
    let mut relay = TestRelay::start().await;
    let pins = tofu_store().await;
    let first = TestDaemon::start(&mut relay, [3; 32], |_| {}).await;
    let session = connect(&relay, tofu(&pins), ClientConfig::default())
        .await
        .unwrap();
    assert_eq!(session.pin_outcome(), Some(&PinOutcome::NewlyPinned));
    drop(session);
    first.stop();

    // Same daemon id, another identity key.
    let second = TestDaemon::start(&mut relay, [4; 32], |_| {}).await;
    let old = DaemonIdentity::new(DAEMON_ID, &[3; 32]).unwrap();
    let new = DaemonIdentity::new(DAEMON_ID, &[4; 32]).unwrap();
    match connect(&relay, tofu(&pins), ClientConfig::default()).await {
        Err(Error::IdentityKeyChanged {
            daemon_id,
            pinned_fingerprint,
            received_fingerprint,
        }) => {
            assert_eq!(daemon_id, DAEMON_ID);
            assert_eq!(pinned_fingerprint, old.fingerprint());
            assert_eq!(received_fingerprint, new.fingerprint());
        }
        other => panic!("expected identity_key_changed, got {other:?}"),
    }
    // The pin was not replaced.
    let pin = pins.get("sbrp", DAEMON_ID).await.unwrap().unwrap();
    assert_eq!(pin.key, old.public_key().to_vec());

    // An explicit key: the right one works, the old one is refused with both fingerprints.
    let ok = connect(
        &relay,
        Trust::Key(new.public_key()),
        ClientConfig::default(),
    )
    .await
    .unwrap();
    assert_eq!(ok.pin_outcome(), None);
    assert_eq!(w(ok.call("echo", Some(json!(7)))).await.unwrap(), json!(7));
    match connect(
        &relay,
        Trust::Key(old.public_key()),
        ClientConfig::default(),
    )
    .await
    {
        Err(Error::IdentityKeyChanged {
            pinned_fingerprint,
            received_fingerprint,
            ..
        }) => {
            assert_eq!(pinned_fingerprint, fingerprint(&old.public_key()));
            assert_eq!(received_fingerprint, new.fingerprint());
        }
        other => panic!("expected identity_key_changed, got {other:?}"),
    }
    second.stop();
}

#[tokio::test]
async fn strict_policy_without_a_pin_refuses() {
    let mut relay = TestRelay::start().await;
    let daemon = TestDaemon::start(&mut relay, [5; 32], |_| {}).await;
    let pins = tofu_store().await;
    let strict = Trust::Pins {
        store: &pins,
        policy: Policy::Strict,
        prompt: None,
    };
    match connect(&relay, strict, ClientConfig::default()).await {
        Err(Error::HandshakeFailed { reason }) => assert!(reason.contains("strict")),
        other => panic!("expected handshake_failed, got {other:?}"),
    }
    assert!(pins.get("sbrp", DAEMON_ID).await.unwrap().is_none());

    // After pinning out of band, strict accepts.
    let key = DaemonIdentity::new(DAEMON_ID, &[5; 32])
        .unwrap()
        .public_key();
    pins.add("sbrp", DAEMON_ID, &key, None, false)
        .await
        .unwrap();
    let strict = Trust::Pins {
        store: &pins,
        policy: Policy::Strict,
        prompt: None,
    };
    let session = connect(&relay, strict, ClientConfig::default())
        .await
        .unwrap();
    assert_eq!(session.pin_outcome(), Some(&PinOutcome::Known));
    daemon.stop();
}

#[tokio::test]
async fn relay_drop_then_daemon_reconnects_and_serves_new_sessions() {
    let mut relay = TestRelay::start().await;
    let mut daemon = TestDaemon::start(&mut relay, [6; 32], |_| {}).await;
    let pins = tofu_store().await;
    let before = connect(&relay, tofu(&pins), ClientConfig::default())
        .await
        .unwrap();
    assert_eq!(
        w(before.call("echo", Some(json!(1)))).await.unwrap(),
        json!(1)
    );

    // The relay drops the daemon connection (close code 1011).
    relay.to_daemon(close_message(1011)).await;
    // The session of the lost connection ends on the daemon side with the close code.
    match daemon.session_end(before.sid()).await {
        Error::RelayClosed {
            code: Some(1011), ..
        } => {}
        other => panic!("expected relay close 1011, got {other:?}"),
    }
    relay
        .expect_event(|e| *e == RelayEvent::DaemonConnected)
        .await;
    daemon.wait_generation(2).await;

    let after = connect(&relay, tofu(&pins), ClientConfig::default())
        .await
        .unwrap();
    assert_eq!(
        w(after.call("echo", Some(json!(2)))).await.unwrap(),
        json!(2)
    );

    // A connection-level terminal Control (sid 0) also makes the daemon reconnect.
    relay
        .to_daemon(control(0, ControlCode::InternalError))
        .await;
    relay
        .expect_event(|e| *e == RelayEvent::DaemonConnected)
        .await;
    daemon.wait_generation(3).await;
    let third = connect(&relay, tofu(&pins), ClientConfig::default())
        .await
        .unwrap();
    assert_eq!(
        w(third.call("echo", Some(json!(3)))).await.unwrap(),
        json!(3)
    );
    daemon.stop();
}

#[tokio::test]
async fn tampered_frame_ends_only_that_session() {
    let mut relay = TestRelay::start().await;
    let mut daemon = TestDaemon::start(&mut relay, [7; 32], |_| {}).await;
    let pins = tofu_store().await;
    let a = connect(&relay, tofu(&pins), ClientConfig::default())
        .await
        .unwrap();
    let b = connect(&relay, tofu(&pins), ClientConfig::default())
        .await
        .unwrap();
    assert_eq!(
        w(a.call("echo", Some(json!("a")))).await.unwrap(),
        json!("a")
    );

    // Client → daemon Data altered by the "relay": the daemon's session fails to decrypt,
    // it sends Signal(close, error) and the relay expires the client's pairing.
    relay.with(|s| s.tamper_c2d.insert(a.sid()));
    match w(a.call("echo", Some(json!("x")))).await {
        Err(Error::Relay {
            code: ControlCode::SessionExpired,
            ..
        }) => {}
        other => panic!("expected session_expired, got {other:?}"),
    }
    let sid_a = a.sid();
    relay
        .expect_event(|e| *e == RelayEvent::Signal(sid_a, SignalCode::Close, SignalReason::Error))
        .await;
    assert!(matches!(
        daemon.session_end(sid_a).await,
        Error::DecryptFailed
    ));
    assert!(matches!(a.end_reason(), Some(Error::Relay { .. })));

    // The other session is untouched.
    assert_eq!(
        w(b.call("echo", Some(json!("b")))).await.unwrap(),
        json!("b")
    );

    // Daemon → client Data altered: the client ends with decrypt_failed.
    relay.with(|s| s.tamper_d2c.insert(b.sid()));
    match w(b.call("echo", Some(json!("y")))).await {
        Err(Error::DecryptFailed) => {}
        other => panic!("expected decrypt_failed, got {other:?}"),
    }
    // And the daemon keeps serving new sessions.
    let c = connect(&relay, tofu(&pins), ClientConfig::default())
        .await
        .unwrap();
    assert_eq!(
        w(c.call("echo", Some(json!("c")))).await.unwrap(),
        json!("c")
    );
    daemon.stop();
}

#[tokio::test]
async fn silent_daemon_times_out_the_client_handshake() {
    let mut relay = TestRelay::start().await;
    let daemon = TestDaemon::start(&mut relay, [8; 32], |_| {}).await;
    relay.with(|s| s.swallow_inits = true);
    let pins = tofu_store().await;
    let mut config = ClientConfig::default();
    config.session = SessionConfig::default().with_handshake_timeout(Duration::from_millis(300));
    match connect(&relay, tofu(&pins), config).await {
        Err(Error::HandshakeTimeout) => {}
        other => panic!("expected handshake_timeout, got {other:?}"),
    }
    assert!(pins.get("sbrp", DAEMON_ID).await.unwrap().is_none());
    daemon.stop();
}

#[tokio::test]
async fn daemon_handshake_deadline_sends_signal_close_error() {
    let mut relay = TestRelay::start().await;
    let daemon = TestDaemon::start(&mut relay, [9; 32], |c| {
        c.session = SessionConfig::default().with_handshake_timeout(Duration::from_millis(200));
    })
    .await;
    // A raw client sends its Init and then nothing: no SBP handshake.
    let sid = new_sid();
    let (mut ws, _) = w(tokio_tungstenite::connect_async(relay.client_url(sid)))
        .await
        .unwrap();
    let hs = ClientHandshake::new(
        DAEMON_ID,
        sid,
        EphemeralKey::generate().unwrap(),
        Instant::now(),
        SessionConfig::default(),
    )
    .unwrap();
    w(ws.send(Message::Binary(hs.init_frame().to_vec().into())))
        .await
        .unwrap();
    relay
        .expect_event(|e| *e == RelayEvent::Signal(sid, SignalCode::Close, SignalReason::Error))
        .await;
    // The relay then expires the client.
    let mut saw_expired = false;
    while let Some(Ok(msg)) = w(ws.next()).await {
        if let Message::Binary(b) = msg
            && let Ok(Frame::Control { code, .. }) = Frame::decode(&b)
        {
            saw_expired |= code == ControlCode::SessionExpired;
        }
    }
    assert!(saw_expired);
    daemon.stop();
}

#[tokio::test]
async fn repeated_init_is_ignored_and_pings_are_answered() {
    let mut relay = TestRelay::start().await;
    let daemon = TestDaemon::start(&mut relay, [10; 32], |_| {}).await;
    let identity = DaemonIdentity::new(DAEMON_ID, &[10; 32]).unwrap();

    // SBRP Ping from the relay → Pong with the same payload.
    let ping = Frame::Ping {
        payload: &[1, 2, 3, 4],
    }
    .to_vec()
    .unwrap();
    relay.to_daemon(Message::Binary(ping.into())).await;
    relay
        .expect_event(|e| *e == RelayEvent::Pong(vec![1, 2, 3, 4]))
        .await;

    // A hand-driven client: Init, a second Init with another key, then the handshake of the
    // first. Exactly one Accept comes back and the session works.
    let sid = new_sid();
    let (mut ws, _) = w(tokio_tungstenite::connect_async(relay.client_url(sid)))
        .await
        .unwrap();
    let now = Instant::now();
    let config = SessionConfig::default();
    let first = ClientHandshake::new(
        DAEMON_ID,
        sid,
        EphemeralKey::generate().unwrap(),
        now,
        config,
    )
    .unwrap();
    let second = ClientHandshake::new(
        DAEMON_ID,
        sid,
        EphemeralKey::generate().unwrap(),
        now,
        config,
    )
    .unwrap();
    for init in [first.init_frame(), second.init_frame()] {
        w(ws.send(Message::Binary(init.to_vec().into())))
            .await
            .unwrap();
    }
    let mut accepts = 0;
    let mut session = None;
    let mut sbp = SbpEndpoint::new(SbpHandshake::keyline("raw"), 1 << 20);
    let mut first = Some(first);
    let cid = [9u8; 16];
    loop {
        let Some(Ok(Message::Binary(bytes))) = w(ws.next()).await else {
            panic!("connection ended early");
        };
        match Frame::decode(&bytes).unwrap() {
            Frame::HandshakeAccept { accept, .. } => {
                accepts += 1;
                let hs = first.take().expect("only one Accept");
                let mut s = hs
                    .finish(&accept, &identity.public_key(), Instant::now())
                    .unwrap();
                let mine = s
                    .seal_to_vec(&sbp.handshake_frame([1; 16]).unwrap())
                    .unwrap();
                w(ws.send(Message::Binary(mine.into()))).await.unwrap();
                let req = Envelope::Request {
                    method: "echo".into(),
                    params: Some(json!("raw")),
                    cid: Cid(cid),
                };
                for plain in sbp.encode_message(cid, "rpc", &req.to_json()).unwrap() {
                    let frame = s.seal_to_vec(&plain).unwrap();
                    w(ws.send(Message::Binary(frame.into()))).await.unwrap();
                }
                session = Some(s);
            }
            Frame::Data { payload, .. } => {
                let s = session.as_mut().expect("Data after the Accept");
                let plain = s.open(payload).unwrap();
                if let SbpEvent::Message { subject, data, .. } = sbp.receive(&plain).unwrap() {
                    let env = Envelope::decode(&subject, &data).unwrap();
                    assert_eq!(
                        env,
                        Envelope::Response {
                            cid: Cid(cid),
                            result: Some(json!("raw"))
                        }
                    );
                    break;
                }
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert_eq!(accepts, 1);
    daemon.stop();
}

#[tokio::test]
async fn relay_codes_surface_as_typed_errors() {
    let mut relay = TestRelay::start().await;
    let pins = tofu_store().await;

    // No daemon: daemon_offline, terminal.
    match connect(&relay, tofu(&pins), ClientConfig::default()).await {
        Err(Error::Relay {
            code: ControlCode::DaemonOffline,
            ..
        }) => {}
        other => panic!("expected daemon_offline, got {other:?}"),
    }

    // A bad presence token: the HTTP refusal of the upgrade.
    let identity = DaemonIdentity::new(DAEMON_ID, &[11; 32]).unwrap();
    match w(Daemon::connect(identity, "wrong", daemon_config(&relay))).await {
        Err(Error::RelayRefused { status: 401, error }) => assert_eq!(error, "unauthorized"),
        other => panic!("expected a 401 refusal, got {other:?}"),
    }

    let daemon = TestDaemon::start(&mut relay, [11; 32], |_| {}).await;
    let session = connect(&relay, tofu(&pins), ClientConfig::default())
        .await
        .unwrap();
    // Non-terminal codes are skipped; an unknown code is terminal.
    relay
        .to_client(session.sid(), control(0, ControlCode::RateLimited))
        .await;
    assert_eq!(
        w(session.call("echo", Some(json!(1)))).await.unwrap(),
        json!(1)
    );
    relay
        .to_client(session.sid(), control(0, ControlCode::from_u16(0x0999)))
        .await;
    match w(session.call("echo", Some(json!(2)))).await {
        Err(Error::Relay {
            code: ControlCode::Unknown(0x0999),
            ..
        }) => {}
        other => panic!("expected the unknown code, got {other:?}"),
    }

    // A relay close with a code.
    let other = connect(&relay, tofu(&pins), ClientConfig::default())
        .await
        .unwrap();
    relay.to_client(other.sid(), close_message(1008)).await;
    match w(other.call("echo", None)).await {
        Err(Error::RelayClosed {
            code: Some(1008), ..
        }) => {}
        other => panic!("expected close 1008, got {other:?}"),
    }
    daemon.stop();
}

#[tokio::test]
async fn session_cap_refuses_with_signal_policy() {
    let mut relay = TestRelay::start().await;
    let daemon = TestDaemon::start(&mut relay, [12; 32], |c| c.max_sessions = 1).await;
    let pins = tofu_store().await;
    let first = connect(&relay, tofu(&pins), ClientConfig::default())
        .await
        .unwrap();
    match connect(&relay, tofu(&pins), ClientConfig::default()).await {
        Err(Error::Relay {
            code: ControlCode::SessionExpired,
            ..
        }) => {}
        other => panic!("expected session_expired, got {other:?}"),
    }
    relay
        .expect_event(|e| {
            matches!(
                e,
                RelayEvent::Signal(_, SignalCode::Close, SignalReason::Policy)
            )
        })
        .await;
    assert_eq!(
        w(first.call("echo", Some(json!(1)))).await.unwrap(),
        json!(1)
    );
    daemon.stop();
}

#[tokio::test]
async fn call_timeout_keeps_the_session() {
    let mut relay = TestRelay::start().await;
    let daemon = TestDaemon::start(&mut relay, [13; 32], |_| {}).await;
    let pins = tofu_store().await;
    let session = connect(&relay, tofu(&pins), ClientConfig::default())
        .await
        .unwrap();
    // Zero time to answer: the call times out (code 1103) and the session continues.
    match w(session.call_with_timeout("echo", Some(json!(1)), Duration::ZERO)).await {
        Err(e @ Error::Timeout { .. }) => assert_eq!(e.code(), Some(1103)),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(
        w(session.call("echo", Some(json!(2)))).await.unwrap(),
        json!(2)
    );
    daemon.stop();
}

#[tokio::test]
async fn serve_helper_answers_echo() {
    let mut relay = TestRelay::start().await;
    let identity = DaemonIdentity::new(DAEMON_ID, &[14; 32]).unwrap();
    let mut daemon = w(Daemon::connect(
        identity,
        "presence-ok",
        daemon_config(&relay),
    ))
    .await
    .unwrap();
    relay
        .expect_event(|e| *e == RelayEvent::DaemonConnected)
        .await;
    let served = tokio::spawn(async move {
        let session = daemon.accept().await.expect("a session");
        session
            .serve(|method, params| match method {
                "echo" => Ok(params.unwrap_or_default()),
                other => Err(RpcError::unsupported_method(other)),
            })
            .await
    });
    let pins = tofu_store().await;
    let session = connect(&relay, tofu(&pins), ClientConfig::default())
        .await
        .unwrap();
    assert_eq!(
        w(session.call("echo", Some(json!({"k": "v"}))))
            .await
            .unwrap(),
        json!({"k": "v"})
    );
    // The client leaving ends `serve` with Ok (session_ended from the relay, or the SBP
    // Close that arrives first).
    w(session.close()).await;
    match w(served).await.unwrap() {
        Ok(()) | Err(Error::SessionClosed) => {}
        other => panic!("unexpected serve outcome {other:?}"),
    }
}

#[tokio::test]
async fn slow_daemon_consumer_ends_its_session() {
    let mut relay = TestRelay::start().await;
    let identity = DaemonIdentity::new(DAEMON_ID, &[15; 32]).unwrap();
    let mut config = daemon_config(&relay);
    config.session_queue = 1;
    let mut daemon = w(Daemon::connect(identity, "presence-ok", config))
        .await
        .unwrap();
    relay
        .expect_event(|e| *e == RelayEvent::DaemonConnected)
        .await;
    let pins = tofu_store().await;
    let url = relay.client_url(new_sid());
    let connecting = tokio::spawn(async move {
        let pins = pins;
        let client = Client::default();
        let session = client.connect(&url, DAEMON_ID, tofu(&pins)).await?;
        for i in 0..3 {
            session.notify("n", Some(json!(i))).await?;
        }
        Ok::<_, Error>(session)
    });
    // The application takes the session but does not read it.
    let mut session = w(daemon.accept()).await.expect("a session");
    let client = w(connecting).await.unwrap().unwrap();
    let sid = session.sid();
    relay
        .expect_event(|e| *e == RelayEvent::Signal(sid, SignalCode::Close, SignalReason::Policy))
        .await;
    // What was queued is still delivered, then the reason.
    assert_eq!(
        w(session.recv()).await.unwrap(),
        Incoming::Notification(Notification::Event {
            name: "n".into(),
            data: Some(json!(0))
        })
    );
    match w(session.recv()).await {
        Err(Error::Backpressure { .. }) => {}
        other => panic!("expected backpressure, got {other:?}"),
    }
    drop(client);
}

#[tokio::test]
async fn unread_client_events_are_dropped_and_counted() {
    let mut relay = TestRelay::start().await;
    let daemon = TestDaemon::start(&mut relay, [16; 32], |_| {}).await;
    let pins = tofu_store().await;
    let mut config = ClientConfig::default();
    config.event_queue = 1;
    let session = connect(&relay, tofu(&pins), config).await.unwrap();
    for _ in 0..3 {
        assert_eq!(w(session.call("tick", None)).await.unwrap(), json!(true));
    }
    assert_eq!(session.events_dropped(), 2);
    assert!(matches!(
        w(session.next_event()).await,
        Some(Notification::Event { .. })
    ));
    daemon.stop();
}

#[tokio::test]
async fn paused_session_holds_data_until_resumed() {
    let mut relay = TestRelay::start().await;
    let daemon = TestDaemon::start(&mut relay, [17; 32], |_| {}).await;
    let pins = tofu_store().await;
    let session = connect(&relay, tofu(&pins), ClientConfig::default())
        .await
        .unwrap();
    let sid = session.sid();
    relay
        .to_client(sid, control(sid, ControlCode::SessionPaused))
        .await;
    // Make sure the pause was read: the client answers a Ping sent after it.
    relay
        .to_client(
            sid,
            Message::Binary(Frame::Ping { payload: &[7] }.to_vec().unwrap().into()),
        )
        .await;
    relay
        .expect_event(|e| *e == RelayEvent::ClientPong(sid, vec![7]))
        .await;
    // While paused nothing is sent: the call waits and hits its own deadline.
    match w(session.call_with_timeout("echo", Some(json!(1)), Duration::from_millis(200))).await {
        Err(Error::Timeout { .. }) => {}
        other => panic!("expected a timeout while paused, got {other:?}"),
    }
    relay
        .to_client(sid, control(sid, ControlCode::SessionResumed))
        .await;
    assert_eq!(
        w(session.call("echo", Some(json!(2)))).await.unwrap(),
        json!(2)
    );
    daemon.stop();
}

#[tokio::test]
async fn daemon_pings_and_reconnects_when_the_relay_goes_quiet() {
    let mut relay = TestRelay::start().await;
    // Frequent pings: the relay sees them (and answers, keeping the connection alive).
    let pinging = TestDaemon::start(&mut relay, [18; 32], |c| {
        c.ping_interval = Duration::from_millis(20);
    })
    .await;
    relay.expect_event(|e| *e == RelayEvent::DaemonPing).await;
    pinging.stop();

    // No pings and a short idle deadline: a silent relay connection counts as dead.
    let mut quiet = TestDaemon::start(&mut relay, [18; 32], |c| {
        c.ping_interval = Duration::from_secs(3600);
        c.idle_timeout = Duration::from_millis(100);
    })
    .await;
    quiet.wait_generation(2).await;
    relay
        .expect_event(|e| *e == RelayEvent::DaemonConnected)
        .await;
    quiet.stop();
}
