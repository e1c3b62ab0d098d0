//! The bunker's relay pool (spec §3.1, §3.6, §16 item 19) against real relays: the embedded
//! relay (nostr-relay-builder) and, for what a well-behaved relay never forwards (bad
//! signatures, wrong tags or kinds, oversized messages, `CLOSED`, pings), a scripted relay in
//! this file. Test events are built and signed with rust-nostr (`nostr` 0.44.8), independently
//! of keyline's code. No sleep is an assertion: every wait is for an event, with a timeout.
#![cfg(feature = "embedded-relay")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use keyline_signer::Error;
use keyline_signer::bunker::embedded::EmbeddedRelay;
use keyline_signer::bunker::pool::{Inbound, PoolConfig, PoolStats, RelayPool, RelayStatus};
use keyline_signer::nip46::SignedEvent;
use nostr::{EventBuilder, JsonUtil, Keys, Kind, Tag, Timestamp};
use nostr_sdk::async_utility::futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);

// ----- helpers --------------------------------------------------------------------------------

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn test_config(listen: &Keys) -> PoolConfig {
    let mut config = PoolConfig::new(listen.public_key().to_bytes());
    config.reconnect_min = Duration::from_millis(50);
    config.reconnect_max = Duration::from_millis(200);
    config.connect_timeout = Duration::from_secs(1);
    config.publish_timeout = Duration::from_secs(2);
    config
}

fn now() -> u64 {
    Timestamp::now().as_secs()
}

/// A kind 24133 request from `client` to `to`, signed by rust-nostr.
fn request(client: &Keys, to: &Keys, content: &str) -> nostr::Event {
    request_at(client, to, content, now())
}

fn request_at(client: &Keys, to: &Keys, content: &str, created_at: u64) -> nostr::Event {
    EventBuilder::new(Kind::NostrConnect, content)
        .tag(Tag::public_key(to.public_key()))
        .custom_created_at(Timestamp::from(created_at))
        .sign_with_keys(client)
        .unwrap()
}

fn event_value(event: &nostr::Event) -> Value {
    serde_json::from_str(&event.as_json()).unwrap()
}

async fn recv(rx: &mut mpsc::Receiver<Inbound>) -> Inbound {
    timeout(WAIT, rx.recv())
        .await
        .expect("no inbound event in time")
        .expect("inbound channel closed")
}

/// Waits (polling, with a deadline) until `cond` holds.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn status_of(pool: &RelayPool, url: &str) -> RelayStatus {
    pool.status()
        .into_iter()
        .find(|s| s.url == url)
        .expect("relay in status")
}

async fn wait_subscribed(pool: &RelayPool, url: &str) {
    wait_until(&format!("subscription on {url}"), || {
        status_of(pool, url).subscribed
    })
    .await;
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// A raw NIP-01 client (tokio-tungstenite).
async fn raw_client(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Publishes `event` on `url` and returns the relay's `OK` status.
async fn client_publish(url: &str, event: &nostr::Event) -> bool {
    let mut ws = raw_client(url).await;
    ws.send(Message::text(
        json!(["EVENT", event_value(event)]).to_string(),
    ))
    .await
    .unwrap();
    loop {
        let msg = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        if let Message::Text(text) = msg {
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            if v[0] == "OK" && v[1] == event.id.to_hex() {
                return v[2].as_bool().unwrap();
            }
        }
    }
}

// ----- a scripted relay -------------------------------------------------------------------------

/// One connection to the scripted relay.
struct Conn {
    /// Text messages from the pool (REQ, EVENT, CLOSE…), and `"PONG"` for a pong.
    from_pool: mpsc::UnboundedReceiver<String>,
    /// Messages to send to the pool.
    to_pool: mpsc::UnboundedSender<Message>,
}

impl Conn {
    async fn next(&mut self) -> Option<String> {
        timeout(WAIT, self.from_pool.recv())
            .await
            .expect("nothing from the pool in time")
    }

    /// Waits for the next `REQ` and returns its subscription id and filter.
    async fn next_req(&mut self) -> (String, Value) {
        loop {
            let text = self.next().await.expect("connection closed");
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if v[0] == "REQ" {
                return (v[1].as_str().unwrap().to_owned(), v[2].clone());
            }
        }
    }

    fn send(&self, v: Value) {
        self.to_pool.send(Message::text(v.to_string())).unwrap();
    }

    fn send_event(&self, sub: &str, event: Value) {
        self.send(json!(["EVENT", sub, event]));
    }
}

/// A relay whose every message is scripted by the test; it answers every `EVENT` with
/// `OK <ok_mode>` (`None`: never answers).
struct Scripted {
    url: String,
    conns: mpsc::UnboundedReceiver<Conn>,
}

impl Scripted {
    async fn start(ok_mode: Option<bool>) -> Scripted {
        let listener = TcpListener::bind(loopback()).await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let (conn_tx, conns) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    continue;
                };
                let (from_tx, from_pool) = mpsc::unbounded_channel();
                let (to_pool, mut to_rx) = mpsc::unbounded_channel::<Message>();
                if conn_tx.send(Conn { from_pool, to_pool }).is_err() {
                    return;
                }
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            msg = ws.next() => match msg {
                                Some(Ok(Message::Text(text))) => {
                                    let v: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                                    if v[0] == "EVENT"
                                        && let Some(ok) = ok_mode
                                    {
                                        let answer = json!(["OK", v[1]["id"], ok, if ok { "" } else { "blocked: test" }]);
                                        let _ = ws.send(Message::text(answer.to_string())).await;
                                    }
                                    let _ = from_tx.send(text.as_str().to_owned());
                                }
                                Some(Ok(Message::Pong(_))) => {
                                    let _ = from_tx.send("PONG".to_owned());
                                }
                                Some(Ok(_)) => {}
                                _ => return,
                            },
                            out = to_rx.recv() => match out {
                                Some(msg) => {
                                    if ws.send(msg).await.is_err() {
                                        return;
                                    }
                                }
                                None => return,
                            },
                        }
                    }
                });
            }
        });
        Scripted { url, conns }
    }

    async fn next_conn(&mut self) -> Conn {
        timeout(WAIT, self.conns.recv())
            .await
            .expect("no connection in time")
            .unwrap()
    }
}

// ----- delivery ---------------------------------------------------------------------------------

#[tokio::test]
async fn event_from_a_client_is_delivered_once() {
    let relay = EmbeddedRelay::start(loopback()).await.unwrap();
    let bunker = Keys::generate();
    let client = Keys::generate();
    let (pool, mut rx) = RelayPool::start(vec![relay.url()], test_config(&bunker));
    wait_subscribed(&pool, &relay.url()).await;

    let event = request(&client, &bunker, "hello");
    assert!(client_publish(&relay.url(), &event).await);
    let got = recv(&mut rx).await;
    assert_eq!(got.relay, relay.url());
    assert_eq!(got.event.id, event.id.to_bytes());
    assert_eq!(got.event.pubkey, client.public_key().to_bytes());
    assert_eq!(got.event.content, "hello");
    got.event.verify().unwrap();

    // The filter was exactly ours.
    let stats = pool.stats();
    assert_eq!(stats.delivered, 1);
    assert_eq!(
        stats,
        PoolStats {
            delivered: 1,
            ..PoolStats::default()
        }
    );
    let status = status_of(&pool, &relay.url());
    assert!(status.connected && status.subscribed);
    assert_eq!(status.delivered, 1);
    pool.shutdown().await;
    assert!(
        timeout(WAIT, rx.recv()).await.unwrap().is_none(),
        "channel ends after shutdown"
    );
    relay.shutdown().await;
}

#[tokio::test]
async fn subscription_filter_is_kind_p_and_since() {
    let bunker = Keys::generate();
    let mut fake = Scripted::start(Some(true)).await;
    let (pool, _rx) = RelayPool::start(vec![fake.url.clone()], test_config(&bunker));
    let mut conn = fake.next_conn().await;
    let (_, filter) = conn.next_req().await;
    assert_eq!(filter["kinds"], json!([24133]));
    assert_eq!(filter["#p"], json!([bunker.public_key().to_hex()]));
    let since = filter["since"].as_u64().unwrap();
    assert!(since <= now() - 59 && since >= now() - 70, "since {since}");
    pool.shutdown().await;
}

#[tokio::test]
async fn same_event_on_two_relays_is_delivered_once_with_the_first_relay() {
    let a = EmbeddedRelay::start(loopback()).await.unwrap();
    let b = EmbeddedRelay::start(loopback()).await.unwrap();
    let bunker = Keys::generate();
    let client = Keys::generate();
    let (pool, mut rx) = RelayPool::start(vec![a.url(), b.url()], test_config(&bunker));
    wait_subscribed(&pool, &a.url()).await;
    wait_subscribed(&pool, &b.url()).await;

    let event = request(&client, &bunker, "twice");
    assert!(client_publish(&a.url(), &event).await);
    let first = recv(&mut rx).await;
    assert_eq!(first.relay, a.url());
    assert!(client_publish(&b.url(), &event).await);
    // A marker after the duplicate, on the same relay: once it arrives, the duplicate was seen.
    let marker = request(&client, &bunker, "marker");
    assert!(client_publish(&b.url(), &marker).await);
    let next = recv(&mut rx).await;
    assert_eq!(
        next.event.id,
        marker.id.to_bytes(),
        "the duplicate was not delivered"
    );
    assert_eq!(next.relay, b.url());
    let stats = pool.stats();
    assert_eq!((stats.delivered, stats.duplicate), (2, 1));
    pool.shutdown().await;
}

#[tokio::test]
async fn bad_events_are_dropped_and_counted() {
    let bunker = Keys::generate();
    let client = Keys::generate();
    let other = Keys::generate();
    let mut fake = Scripted::start(Some(true)).await;
    let mut config = test_config(&bunker);
    config.max_content = 1000;
    config.max_message = 8 * 1024;
    let (pool, mut rx) = RelayPool::start(vec![fake.url.clone()], config);
    let mut conn = fake.next_conn().await;
    let (sub, _) = conn.next_req().await;

    // Bad signature: a valid event with one signature nibble changed.
    let mut bad_sig = event_value(&request(&client, &bunker, "x"));
    let sig = bad_sig["sig"].as_str().unwrap().to_owned();
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    bad_sig["sig"] = json!(format!("{flipped}{}", &sig[1..]));
    conn.send_event(&sub, bad_sig);
    // Bad id: content changed after signing.
    let mut bad_id = event_value(&request(&client, &bunker, "x"));
    bad_id["content"] = json!("y");
    conn.send_event(&sub, bad_id);
    // Wrong p tag.
    conn.send_event(&sub, event_value(&request(&client, &other, "x")));
    // Stale and future created_at.
    conn.send_event(
        &sub,
        event_value(&request_at(&client, &bunker, "x", now() - 3600)),
    );
    conn.send_event(
        &sub,
        event_value(&request_at(&client, &bunker, "x", now() + 3600)),
    );
    // Oversized content.
    conn.send_event(
        &sub,
        event_value(&request(&client, &bunker, &"a".repeat(1001))),
    );
    // Wrong kind.
    let kind1 = EventBuilder::new(Kind::TextNote, "x")
        .tag(Tag::public_key(bunker.public_key()))
        .sign_with_keys(&client)
        .unwrap();
    conn.send_event(&sub, event_value(&kind1));
    // Not JSON, a message over the bound, an event for another subscription.
    conn.send(json!("not an array"));
    conn.to_pool.send(Message::text("{oops")).unwrap();
    conn.send(json!(["NOTICE", "x".repeat(9 * 1024)]));
    conn.send_event("someone-else", event_value(&request(&client, &bunker, "x")));
    // Other relay messages are ignored.
    conn.send(json!(["AUTH", "challenge"]));
    conn.send(json!(["COUNT", sub, {"count": 3}]));
    conn.send(json!(["NOTICE", "hello"]));
    conn.to_pool.send(Message::binary(vec![1, 2, 3])).unwrap();
    // A good event still arrives.
    let good = request(&client, &bunker, "good");
    conn.send_event(&sub, event_value(&good));
    let got = recv(&mut rx).await;
    assert_eq!(got.event.id, good.id.to_bytes());
    assert_eq!(got.relay, fake.url);

    let stats = pool.stats();
    assert_eq!(
        stats,
        PoolStats {
            delivered: 1,
            bad_signature: 2,
            wrong_p: 1,
            stale: 1,
            future: 1,
            content_too_large: 1,
            wrong_kind: 1,
            malformed: 2,
            message_too_large: 1,
            unsolicited: 1,
            ..PoolStats::default()
        }
    );
    assert!(
        status_of(&pool, &fake.url).connected,
        "drops never cost the connection"
    );
    pool.shutdown().await;
}

// ----- publishing -------------------------------------------------------------------------------

#[tokio::test]
async fn publish_reaches_a_subscriber_after_the_relays_ok() {
    let relay = EmbeddedRelay::start(loopback()).await.unwrap();
    let bunker = Keys::generate();
    let client = Keys::generate();
    let (pool, _rx) = RelayPool::start(vec![relay.url()], test_config(&bunker));
    wait_subscribed(&pool, &relay.url()).await;

    // The client listens for responses authored by the bunker, as nostr-tools does.
    let mut sub = raw_client(&relay.url()).await;
    let filter = json!({"kinds": [24133], "authors": [bunker.public_key().to_hex()], "#p": [client.public_key().to_hex()]});
    sub.send(Message::text(json!(["REQ", "c", filter]).to_string()))
        .await
        .unwrap();
    loop {
        let msg = timeout(WAIT, sub.next()).await.unwrap().unwrap().unwrap();
        if msg.to_text().unwrap().starts_with("[\"EOSE\"") {
            break;
        }
    }

    let reply = request(&bunker, &client, "response");
    let signed = SignedEvent::parse(&reply.as_json()).unwrap();
    pool.publish(&relay.url(), &signed).await.unwrap();
    loop {
        let msg = timeout(WAIT, sub.next()).await.unwrap().unwrap().unwrap();
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        if v[0] == "EVENT" {
            assert_eq!(v[2]["id"], reply.id.to_hex());
            let back = nostr::Event::from_json(v[2].to_string()).unwrap();
            back.verify().unwrap();
            break;
        }
    }
    pool.shutdown().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn publish_errors_are_typed() {
    let bunker = Keys::generate();
    let client = Keys::generate();
    let mut refusing = Scripted::start(Some(false)).await;
    let mut silent = Scripted::start(None).await;
    let (pool, _rx) = RelayPool::start(
        vec![
            refusing.url.clone(),
            silent.url.clone(),
            "wss://127.0.0.1:1".to_owned(),
            "ws://relay.example.com".to_owned(),
        ],
        test_config(&bunker),
    );
    let mut c1 = refusing.next_conn().await;
    let mut c2 = silent.next_conn().await;
    let (s1, _) = c1.next_req().await;
    let (s2, _) = c2.next_req().await;
    c1.send(json!(["EOSE", s1]));
    c2.send(json!(["EOSE", s2]));
    wait_subscribed(&pool, &refusing.url).await;
    wait_subscribed(&pool, &silent.url).await;
    let event = SignedEvent::parse(&request(&bunker, &client, "r").as_json()).unwrap();

    let err = pool.publish(&refusing.url, &event).await.unwrap_err();
    assert!(
        matches!(&err, Error::RelayRejected { message, .. } if message == "blocked: test"),
        "{err}"
    );
    let err = pool.publish(&silent.url, &event).await.unwrap_err();
    assert!(matches!(err, Error::RelayTimeout { .. }), "{err}");
    let err = pool.publish("ws://127.0.0.1:1", &event).await.unwrap_err();
    assert!(matches!(err, Error::RelayUnavailable { .. }), "{err}");
    // wss:// is dialled (TLS); nothing listens there.
    let err = pool.publish("wss://127.0.0.1:1", &event).await.unwrap_err();
    assert!(matches!(err, Error::RelayUnavailable { .. }), "{err}");
    let err = pool
        .publish("ws://relay.example.com", &event)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "relay_url");
    let status = status_of(&pool, "wss://127.0.0.1:1");
    assert!(!status.connected);
    assert!(status.last_error.unwrap().contains("connect failed"));

    let mut big = event.clone();
    big.content = "a".repeat(300 * 1024);
    let err = pool.publish(&refusing.url, &big).await.unwrap_err();
    assert_eq!(err.code(), "too_large");
    pool.shutdown().await;
}

/// A TLS terminator for `relay` with a self-signed certificate for `localhost`: returns its
/// port and the certificate (DER).
async fn tls_front(relay: SocketAddr) -> (u16, Vec<u8>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let der = cert.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut upstream) = TcpStream::connect(relay).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    (port, der)
}

#[tokio::test]
async fn wss_relays_are_reached_over_tls_with_the_configured_roots() {
    let relay = EmbeddedRelay::start(loopback()).await.unwrap();
    let (port, der) = tls_front(relay.addr()).await;
    let url = format!("wss://localhost:{port}");
    let bunker = Keys::generate();
    let client = Keys::generate();
    // The certificate is not under the Mozilla roots: the default pool refuses it.
    let (untrusting, _rx) = RelayPool::start(vec![url.clone()], test_config(&bunker));
    wait_until("a TLS failure", || {
        status_of(&untrusting, &url)
            .last_error
            .is_some_and(|e| e.contains("TLS"))
    })
    .await;
    assert!(!status_of(&untrusting, &url).connected);
    untrusting.shutdown().await;
    // Trusting it: subscribed over TLS, events delivered, replies published.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der.into()).unwrap();
    let mut config = test_config(&bunker);
    config.tls_roots = Some(Arc::new(roots));
    let (pool, mut rx) = RelayPool::start(vec![url.clone()], config);
    wait_subscribed(&pool, &url).await;
    let event = request(&client, &bunker, "over tls");
    assert!(client_publish(&relay.url(), &event).await);
    let got = recv(&mut rx).await;
    assert_eq!(got.relay, url);
    assert_eq!(got.event.content, "over tls");
    let reply = SignedEvent::parse(&request(&bunker, &client, "reply").as_json()).unwrap();
    pool.publish(&url, &reply).await.unwrap();
    pool.shutdown().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn the_embedded_relay_refuses_what_is_not_a_websocket_upgrade() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let relay = EmbeddedRelay::start(loopback()).await.unwrap();
    for request in [
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
        "POST / HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Key: x\r\n\r\n".to_owned(),
    ] {
        let mut tcp = TcpStream::connect(relay.addr()).await.unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        timeout(WAIT, tcp.read_to_string(&mut answer))
            .await
            .unwrap()
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    }
    // Endless headers: cut off at 8 KiB.
    let mut tcp = TcpStream::connect(relay.addr()).await.unwrap();
    let _ = tcp.write_all(&vec![b'a'; 9 * 1024]).await;
    let mut answer = Vec::new();
    let _ = timeout(WAIT, tcp.read_to_end(&mut answer)).await.unwrap();
    // A real client still gets through.
    let mut ws = raw_client(&relay.url()).await;
    ws.send(Message::text(r#"["REQ","s",{"kinds":[1]}]"#))
        .await
        .unwrap();
    let reply = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(reply.to_text().unwrap().contains("EOSE"), "{reply:?}");
    relay.shutdown().await;
    assert!(
        TcpStream::connect(relay.addr()).await.is_err(),
        "port closed after shutdown"
    );
}

// ----- connection management --------------------------------------------------------------------

#[tokio::test]
async fn reconnects_and_resubscribes_after_the_relay_restarts_on_the_same_port() {
    let relay = EmbeddedRelay::start(loopback()).await.unwrap();
    let addr = relay.addr();
    let url = relay.url();
    let bunker = Keys::generate();
    let client = Keys::generate();
    let (pool, mut rx) = RelayPool::start(vec![url.clone()], test_config(&bunker));
    wait_subscribed(&pool, &url).await;

    relay.shutdown().await;
    drop(relay);
    wait_until("the pool to notice", || !status_of(&pool, &url).connected).await;
    let restarted = EmbeddedRelay::start(addr).await.unwrap();
    assert_eq!(restarted.url(), url);
    wait_subscribed(&pool, &url).await;

    let event = request(&client, &bunker, "after restart");
    assert!(client_publish(&url, &event).await);
    let got = recv(&mut rx).await;
    assert_eq!(got.event.id, event.id.to_bytes());
    assert!(status_of(&pool, &url).reconnects >= 1);
    pool.shutdown().await;
    restarted.shutdown().await;
}

#[tokio::test]
async fn closed_subscription_is_resubscribed_and_pings_are_answered() {
    let bunker = Keys::generate();
    let client = Keys::generate();
    let mut fake = Scripted::start(Some(true)).await;
    let (pool, mut rx) = RelayPool::start(vec![fake.url.clone()], test_config(&bunker));
    let mut conn = fake.next_conn().await;
    let (sub, _) = conn.next_req().await;
    conn.send(json!(["EOSE", sub]));
    wait_subscribed(&pool, &fake.url).await;

    conn.send(json!(["CLOSED", sub, "error: shutting down subscriptions"]));
    let (again, _) = conn.next_req().await;
    assert_eq!(again, sub);
    conn.send(json!(["EOSE", again]));
    wait_subscribed(&pool, &fake.url).await;

    conn.to_pool
        .send(Message::Ping(b"are you there".to_vec().into()))
        .unwrap();
    loop {
        if conn.next().await.as_deref() == Some("PONG") {
            break;
        }
    }
    let event = request(&client, &bunker, "still here");
    conn.send_event(&again, event_value(&event));
    assert_eq!(recv(&mut rx).await.event.id, event.id.to_bytes());
    pool.shutdown().await;
}

#[tokio::test]
async fn set_relays_adds_and_removes() {
    let bunker = Keys::generate();
    let client = Keys::generate();
    let mut fake = Scripted::start(Some(true)).await;
    let embedded = EmbeddedRelay::start(loopback()).await.unwrap();
    let (pool, mut rx) = RelayPool::start(vec![fake.url.clone()], test_config(&bunker));
    let mut conn = fake.next_conn().await;
    conn.next_req().await;

    pool.set_relays(vec![fake.url.clone(), embedded.url(), embedded.url()]);
    assert_eq!(pool.relays(), vec![fake.url.clone(), embedded.url()]);
    wait_subscribed(&pool, &embedded.url()).await;
    let event = request(&client, &bunker, "via the new relay");
    assert!(client_publish(&embedded.url(), &event).await);
    assert_eq!(recv(&mut rx).await.relay, embedded.url());

    pool.set_relays(vec![embedded.url()]);
    assert_eq!(pool.relays(), vec![embedded.url()]);
    assert_eq!(pool.status().len(), 1);
    // The removed relay's connection is closed (the kept one untouched: no new connection).
    while conn.next().await.is_some() {}
    assert!(status_of(&pool, &embedded.url()).connected);
    assert_eq!(status_of(&pool, &embedded.url()).reconnects, 0);
    pool.shutdown().await;
    embedded.shutdown().await;
}

#[tokio::test]
async fn a_relay_that_never_answers_does_not_block_the_others() {
    // Accepts TCP connections and never says a word.
    let dead = TcpListener::bind(loopback()).await.unwrap();
    let dead_url = format!("ws://{}", dead.local_addr().unwrap());
    let (held_tx, mut held) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = dead.accept().await {
            let _ = held_tx.send(tcp);
        }
    });
    let relay = EmbeddedRelay::start(loopback()).await.unwrap();
    let bunker = Keys::generate();
    let client = Keys::generate();
    let mut config = test_config(&bunker);
    config.connect_timeout = Duration::from_millis(300);
    let (pool, mut rx) = RelayPool::start(vec![dead_url.clone(), relay.url()], config);
    wait_subscribed(&pool, &relay.url()).await;

    let event = request(&client, &bunker, "through the live relay");
    assert!(client_publish(&relay.url(), &event).await);
    assert_eq!(recv(&mut rx).await.relay, relay.url());

    let signed = SignedEvent::parse(&request(&bunker, &client, "r").as_json()).unwrap();
    let started = tokio::time::Instant::now();
    let err = pool.publish(&dead_url, &signed).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::RelayUnavailable { .. } | Error::RelayTimeout { .. }
        ),
        "{err}"
    );
    assert!(started.elapsed() <= Duration::from_secs(3));
    pool.publish(&relay.url(), &signed).await.unwrap();
    wait_until("a connect timeout on the dead relay", || {
        status_of(&pool, &dead_url)
            .last_error
            .is_some_and(|e| e.contains("timed out"))
    })
    .await;
    assert!(held.try_recv().is_ok(), "the dead relay was dialled");
    pool.shutdown().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn a_full_inbound_queue_drops_the_newest() {
    let bunker = Keys::generate();
    let client = Keys::generate();
    let mut fake = Scripted::start(Some(true)).await;
    let mut config = test_config(&bunker);
    config.inbound_capacity = 1;
    let (pool, mut rx) = RelayPool::start(vec![fake.url.clone()], config);
    let mut conn = fake.next_conn().await;
    let (sub, _) = conn.next_req().await;

    let events: Vec<_> = (0..3)
        .map(|i| request(&client, &bunker, &format!("n{i}")))
        .collect();
    for e in &events {
        conn.send_event(&sub, event_value(e));
    }
    wait_until("one delivered and two dropped", || {
        let s = pool.stats();
        s.delivered == 1 && s.queue_full == 2
    })
    .await;
    assert_eq!(recv(&mut rx).await.event.id, events[0].id.to_bytes());
    // A dropped event is not remembered as delivered: the same event again gets through.
    conn.send_event(&sub, event_value(&events[2]));
    assert_eq!(recv(&mut rx).await.event.id, events[2].id.to_bytes());
    let s = pool.stats();
    assert_eq!((s.delivered, s.queue_full, s.duplicate), (2, 2, 0));
    pool.shutdown().await;
}

#[tokio::test]
async fn set_relays_after_shutdown_does_nothing() {
    let bunker = Keys::generate();
    let (pool, mut rx) = RelayPool::start(Vec::new(), test_config(&bunker));
    pool.shutdown().await;
    pool.set_relays(vec!["ws://127.0.0.1:9".to_owned()]);
    assert!(pool.relays().is_empty());
    assert!(rx.recv().await.is_none());
}
