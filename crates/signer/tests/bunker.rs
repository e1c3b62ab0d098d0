//! The NIP-46 bunker end to end (spec §3, §12, §16 items 18–21): a 2-of-3 key on three nodes
//! behind a real coordinator (in-memory SHS links), the embedded relay, and two independent
//! clients — rust-nostr's `nostr-connect` 0.44.1 and a raw NIP-01 client whose events and
//! encryption come from rust-nostr (`nostr` 0.44.8) — for everything a library client cannot
//! send (malformed, oversized, replays, legacy NIP-04, unknown methods).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyline_shs::Keypair;
use keyline_signer::bunker::embedded::EmbeddedRelay;
use keyline_signer::bunker::engine::CoordinatorKey;
use keyline_signer::bunker::operator::{ApprovalDecision, OperatorBackend};
use keyline_signer::bunker::policy::{Decision, Grant};
use keyline_signer::bunker::service::{Bunker, BunkerConfig};
use keyline_signer::envelope::FileKek;
use keyline_signer::net::coordinator::{Coordinator, KeyHandle, NodeAddr, NodeEndpoint};
use keyline_signer::net::node::{NodeServer, NodeServerConfig};
use keyline_signer::node::{NodeCore, NodePolicy};
use keyline_signer::store::Store;
use keyline_signer::{OsRng, local};
use nostr::nips::{nip04, nip44};
use nostr::{EventBuilder, JsonUtil, Keys, Kind, PublicKey, Tag, Timestamp};
use nostr_sdk::async_utility::futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

const KEY_ID: [u8; 16] = [0x42; 16];
const WAIT: Duration = Duration::from_secs(15);

// ----- setup ------------------------------------------------------------------------------------

struct Setup {
    bunker: Bunker<CoordinatorKey>,
    relay: EmbeddedRelay,
    store: Store,
    npub: [u8; 32],
    // Kept alive for the bunker (the links, the KEK file, the nodes).
    _nodes: Vec<NodeServer>,
    _dir: tempfile::TempDir,
    kek: FileKek,
    key: (Coordinator, KeyHandle),
}

struct Options {
    down: usize,
    approval_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            down: 0,
            approval_timeout: Duration::from_secs(20),
        }
    }
}

async fn setup(options: Options) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("keyline.db")).await.unwrap();
    let kek = FileKek::open_or_create(&dir.path().join("signer.kek")).unwrap();
    let (public, shares) = local::dkg(2, 3, &mut OsRng).unwrap();
    store.put_key(&KEY_ID, &public, 1, 0).await.unwrap();
    let coordinator = Coordinator::new(Keypair::generate());
    let mut holders = BTreeMap::new();
    let mut nodes = Vec::new();
    let mut up = Vec::new();
    for (i, share) in shares.into_iter().enumerate() {
        let keypair = Keypair::generate();
        let key = *keypair.public().as_bytes();
        holders.insert(share.id(), key);
        let mut core = NodeCore::new(NodePolicy::default());
        core.add_key(KEY_ID, share, 1);
        let server = NodeServer::new(
            NodeServerConfig::new(keypair, vec![coordinator.public_key()]),
            Arc::new(Mutex::new(core)),
        );
        if i >= options.down {
            coordinator.add_node(NodeAddr {
                key,
                endpoint: NodeEndpoint::Local(server.clone()),
            });
            up.push(key);
        }
        nodes.push(server);
    }
    assert!(coordinator.wait_connected(&up, WAIT).await.is_empty());
    let handle = KeyHandle {
        key_id: KEY_ID,
        public: public.clone(),
        holders,
    };
    let mut secret = [0u8; 32];
    secret[31] = 7;
    secret[0] = 0x5a;
    store
        .seal_transport_key(&kek, "t1", &secret, 0)
        .await
        .unwrap();
    let transport = store.open_transport_key(&kek).await.unwrap().unwrap();
    let relay = EmbeddedRelay::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let config = BunkerConfig {
        approval_timeout: options.approval_timeout,
        ..BunkerConfig::new("http://127.0.0.1:7090")
    };
    let bunker = Bunker::start(
        store.clone(),
        CoordinatorKey::new(coordinator.clone(), handle.clone()),
        KEY_ID,
        transport,
        vec![relay.url()],
        config,
    )
    .await
    .unwrap();
    wait_subscribed(&bunker).await;
    Setup {
        npub: public.npub(),
        bunker,
        relay,
        store,
        _nodes: nodes,
        _dir: dir,
        kek,
        key: (coordinator, handle),
    }
}

async fn wait_subscribed(bunker: &Bunker<CoordinatorKey>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !bunker.pool().status().iter().all(|s| s.subscribed) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "bunker not subscribed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Setup {
    fn transport(&self) -> PublicKey {
        PublicKey::from_slice(&self.bunker.transport_pubkey()).unwrap()
    }

    async fn client(&self) -> RawClient {
        RawClient::connect(&self.relay.url(), self.transport()).await
    }

    /// A connected raw client (through a freshly minted secret).
    async fn connected(&self) -> RawClient {
        let mut client = self.client().await;
        let secret = self
            .bunker
            .mint_uri(None, None)
            .await
            .unwrap()
            .secret
            .unwrap();
        let reply = client
            .call("connect", &[&self.transport().to_hex(), &secret])
            .await;
        assert_eq!(reply["result"], "ack", "{reply}");
        client
    }

    async fn grant(&self, client: &RawClient, grants: &[Grant]) {
        self.store
            .put_grants(&client.pubkey(), grants, false, "test", 0)
            .await
            .unwrap();
    }
}

fn unsigned(kind: u16, created_at: u64) -> String {
    json!({"kind": kind, "content": "hello ✓", "tags": [["t", "keyline"]], "created_at": created_at})
        .to_string()
}

fn now() -> u64 {
    Timestamp::now().as_secs()
}

// ----- a raw NIP-01 client ----------------------------------------------------------------------

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

struct RawClient {
    keys: Keys,
    transport: PublicKey,
    ws: Ws,
    next_id: u64,
}

impl RawClient {
    async fn connect(url: &str, transport: PublicKey) -> RawClient {
        let keys = Keys::generate();
        let mut ws = tokio_tungstenite::connect_async(url).await.unwrap().0;
        let filter = json!({"kinds": [24133], "authors": [transport.to_hex()], "#p": [keys.public_key().to_hex()]});
        ws.send(Message::text(json!(["REQ", "r", filter]).to_string()))
            .await
            .unwrap();
        RawClient {
            keys,
            transport,
            ws,
            next_id: 0,
        }
    }

    fn pubkey(&self) -> [u8; 32] {
        self.keys.public_key().to_bytes()
    }

    fn nip44(&self, text: &str) -> String {
        nip44::encrypt(
            self.keys.secret_key(),
            &self.transport,
            text,
            nip44::Version::V2,
        )
        .unwrap()
    }

    /// Publishes a kind 24133 event with `content` and waits for the relay's OK.
    async fn publish(&mut self, content: String) -> nostr::Event {
        let event = EventBuilder::new(Kind::NostrConnect, content)
            .tag(Tag::public_key(self.transport))
            .sign_with_keys(&self.keys)
            .unwrap();
        self.publish_event(&event).await;
        event
    }

    async fn publish_event(&mut self, event: &nostr::Event) {
        let value: Value = serde_json::from_str(&event.as_json()).unwrap();
        self.ws
            .send(Message::text(json!(["EVENT", value]).to_string()))
            .await
            .unwrap();
    }

    /// The next response (decrypted), or `None` after `within`.
    async fn response(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = match timeout(left, self.ws.next()).await {
                Ok(Some(Ok(msg))) => msg,
                _ => return None,
            };
            let Message::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            if v[0] != "EVENT" {
                continue;
            }
            let event = nostr::Event::from_json(v[2].to_string()).unwrap();
            event.verify().unwrap();
            assert_eq!(
                event.pubkey, self.transport,
                "response not by the transport key"
            );
            let plain = if event.content.contains("?iv=") {
                nip04::decrypt(self.keys.secret_key(), &self.transport, &event.content).unwrap()
            } else {
                nip44::decrypt(self.keys.secret_key(), &self.transport, &event.content).unwrap()
            };
            return Some(serde_json::from_str(&plain).unwrap());
        }
    }

    fn request_json(&mut self, method: &str, params: &[&str]) -> (String, String) {
        self.next_id += 1;
        let id = format!("req-{}", self.next_id);
        let body = json!({"id": id, "method": method, "params": params}).to_string();
        (id, body)
    }

    /// Sends a request and returns the final response (skipping nothing).
    async fn call(&mut self, method: &str, params: &[&str]) -> Value {
        let (id, body) = self.request_json(method, params);
        let content = self.nip44(&body);
        self.publish(content).await;
        let reply = self.response(WAIT).await.expect("no response");
        assert_eq!(reply["id"], id.as_str());
        reply
    }

    /// Sends a request that must be answered with `auth_url`; returns (request id, approval id).
    async fn call_expecting_auth(&mut self, method: &str, params: &[&str]) -> (String, String) {
        let reply = self.call(method, params).await;
        assert_eq!(reply["result"], "auth_url", "{reply}");
        let url = reply["error"].as_str().unwrap();
        let approval = url.rsplit('/').next().unwrap().to_owned();
        (reply["id"].as_str().unwrap().to_owned(), approval)
    }
}

fn error_of(reply: &Value) -> &str {
    assert_eq!(reply["result"], "error", "{reply}");
    reply["error"].as_str().unwrap()
}

// ----- rust-nostr's nostr-connect ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nostr_connect_client_gets_the_user_key_signs_and_encrypts() {
    use nostr::signer::NostrSigner;
    let s = setup(Options::default()).await;
    let uri = s.bunker.mint_uri(None, None).await.unwrap().to_uri();
    let app_keys = Keys::generate();
    let client_key = app_keys.public_key().to_bytes();
    s.store
        .put_grants(
            &client_key,
            &[
                Grant::new("sign_event", Some(1), Decision::Allow),
                Grant::new("nip44_encrypt", None, Decision::Allow),
                Grant::new("nip44_decrypt", None, Decision::Allow),
            ],
            false,
            "test",
            0,
        )
        .await
        .unwrap();
    let connect = nostr_connect::client::NostrConnect::new(
        nostr::nips::nip46::NostrConnectURI::parse(&uri).unwrap(),
        app_keys,
        WAIT,
        None,
    )
    .unwrap();
    let user = connect.get_public_key().await.unwrap();
    assert_eq!(user.to_bytes(), s.npub, "get_public_key is the user key");
    assert_ne!(user.to_bytes(), s.bunker.transport_pubkey());
    let unsigned = EventBuilder::text_note("signed by a threshold key").build(user);
    let event = connect.sign_event(unsigned).await.unwrap();
    event.verify().expect("nostr verifies the signature");
    assert_eq!(event.pubkey, user);
    let peer = Keys::generate();
    let ciphertext = connect
        .nip44_encrypt(&peer.public_key(), "threshold ECDH ✓")
        .await
        .unwrap();
    let by_peer = nip44::decrypt(peer.secret_key(), &user, &ciphertext).unwrap();
    assert_eq!(by_peer, "threshold ECDH ✓");
    let from_peer = nip44::encrypt(peer.secret_key(), &user, "reply", nip44::Version::V2).unwrap();
    assert_eq!(
        connect
            .nip44_decrypt(&peer.public_key(), &from_peer)
            .await
            .unwrap(),
        "reply"
    );
    connect.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_three_nodes_down_still_signs() {
    let s = setup(Options {
        down: 1,
        ..Options::default()
    })
    .await;
    // rust-nostr's client, as in the test above.
    use nostr::signer::NostrSigner;
    let uri = s.bunker.mint_uri(None, None).await.unwrap().to_uri();
    let app_keys = Keys::generate();
    s.store
        .put_grants(
            &app_keys.public_key().to_bytes(),
            &[Grant::new("sign_event", Some(1), Decision::Allow)],
            false,
            "test",
            0,
        )
        .await
        .unwrap();
    let connect = nostr_connect::client::NostrConnect::new(
        nostr::nips::nip46::NostrConnectURI::parse(&uri).unwrap(),
        app_keys,
        WAIT,
        None,
    )
    .unwrap();
    let user = connect.get_public_key().await.unwrap();
    assert_eq!(user.to_bytes(), s.npub);
    let event = connect
        .sign_event(EventBuilder::text_note("two of three").build(user))
        .await
        .unwrap();
    event.verify().unwrap();
    assert_eq!(event.pubkey.to_bytes(), s.npub);
    connect.shutdown().await;
    let _ = &s.key;
}

// ----- connect, methods, malformed --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_secret_is_single_use_and_methods_need_a_connection() {
    let s = setup(Options::default()).await;
    let t = s.transport().to_hex();
    let secret = s.bunker.mint_uri(None, None).await.unwrap().secret.unwrap();
    let mut a = s.client().await;
    assert_eq!(
        error_of(&a.call("get_public_key", &[]).await),
        "not connected"
    );
    assert_eq!(a.call("ping", &[]).await["result"], "pong");
    assert_eq!(a.call("connect", &[&t, &secret]).await["result"], "ack");
    // The same client repeating its connect is fine; another client with the secret is not.
    assert_eq!(a.call("connect", &[&t, &secret]).await["result"], "ack");
    let mut b = s.client().await;
    assert_eq!(
        error_of(&b.call("connect", &[&t, &secret]).await),
        "secret already used"
    );
    assert_eq!(
        error_of(&b.call("connect", &["not-a-key", &secret]).await),
        "invalid pubkey"
    );
    let other = Keys::generate().public_key().to_hex();
    assert_eq!(
        error_of(&b.call("connect", &[&other, &secret]).await),
        "wrong remote signer"
    );
    let user = a.call("get_public_key", &[]).await;
    assert_eq!(user["result"], hex::encode(s.npub));
    // Unknown and removed methods get an error, never silence.
    assert_eq!(
        error_of(&a.call("describe", &[]).await),
        "unsupported method: describe"
    );
    assert_eq!(
        error_of(&b.call("sign_schnorr", &[]).await),
        "unsupported method: sign_schnorr"
    );
    // Bad params.
    assert_eq!(
        error_of(&a.call("nip44_encrypt", &["zz", "x"]).await),
        "invalid pubkey"
    );
    assert_eq!(
        error_of(&a.call("sign_event", &["{not json"]).await)
            .split(':')
            .next(),
        Some("invalid event")
    );
    // switch_relays: same relays → "null"; after the operator changes them → the new list.
    assert_eq!(a.call("switch_relays", &[]).await["result"], "null");
    let second = EmbeddedRelay::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let list = vec![s.relay.url(), second.url()];
    s.bunker.set_relays(list.clone()).await.unwrap();
    wait_subscribed(&s.bunker).await;
    let switched = a.call("switch_relays", &[]).await;
    assert_eq!(
        serde_json::from_str::<Value>(switched["result"].as_str().unwrap()).unwrap(),
        json!(list)
    );
    assert_eq!(a.call("switch_relays", &[]).await["result"], "null");
    // logout, then refused.
    assert_eq!(a.call("logout", &[]).await["result"], "ack");
    assert_eq!(
        error_of(&a.call("get_public_key", &[]).await),
        "not connected"
    );
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests() {
    let s = setup(Options::default()).await;
    let mut c = s.connected().await;
    // Malformed JSON with a usable id: "invalid request".
    let content = c.nip44(r#"{"id":"m1","method":5,"params":[]}"#);
    c.publish(content).await;
    let reply = c.response(WAIT).await.unwrap();
    assert_eq!(reply["id"], "m1");
    assert_eq!(error_of(&reply), "invalid request");
    let content = c.nip44(r#"{"id":"m2","method":"ping","params":[1]}"#);
    c.publish(content).await;
    assert_eq!(
        error_of(&c.response(WAIT).await.unwrap()),
        "invalid request"
    );
    // No usable id, not JSON, not decryptable: dropped (nothing comes back)…
    for body in [r#"{"method":"ping","params":[]}"#, "not json at all"] {
        let content = c.nip44(body);
        c.publish(content).await;
    }
    c.publish("AAAA not a nip44 payload".into()).await;
    // …as is a large undecryptable content (contents over the 256 KiB limit are dropped by
    // the pool before decryption, tests/bunker_pool.rs; the embedded relay refuses them too).
    c.publish("A".repeat(200 * 1024)).await;
    assert!(
        c.response(Duration::from_secs(2)).await.is_none(),
        "a dropped request was answered"
    );
    // The bunker still answers.
    assert_eq!(c.call("ping", &[]).await["result"], "pong");
    // The same request published twice (new event ids): processed once.
    let (_, body) = c.request_json("ping", &[]);
    let first = c.nip44(&body);
    let second = c.nip44(&body);
    c.publish(first).await;
    c.publish(second).await;
    assert!(c.response(WAIT).await.is_some());
    assert!(
        c.response(Duration::from_secs(2)).await.is_none(),
        "duplicate answered twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_nip04_transport_is_answered_in_nip04() {
    let s = setup(Options::default()).await;
    let mut c = s.connected().await;
    let (id, body) = c.request_json("get_public_key", &[]);
    let content = nip04::encrypt(c.keys.secret_key(), &c.transport, &body).unwrap();
    c.publish(content).await;
    let reply = c.response(WAIT).await.unwrap();
    assert_eq!(reply["id"], id.as_str());
    assert_eq!(reply["result"], hex::encode(s.npub));
}

// ----- permissions ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_deny_sensitive_kinds_expiry_caps_revocation() {
    let s = setup(Options {
        approval_timeout: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    let mut c = s.connected().await;
    // An expired allow for the sensitive kind 0: it no longer applies, so kind 0 asks.
    let mut expired = Grant::new("sign_event", Some(0), Decision::Allow);
    expired.expires_at = Some(now() - 1);
    let mut capped = Grant::new("sign_event", Some(1), Decision::Allow);
    capped.per_minute = Some(2);
    s.grant(
        &c,
        &[
            Grant::new("sign_event", None, Decision::Allow),
            Grant::new("sign_event", Some(4), Decision::Deny),
            Grant::new("sign_event", Some(24133), Decision::Deny),
            expired,
            capped,
        ],
    )
    .await;
    // A denied kind.
    assert_eq!(
        error_of(&c.call("sign_event", &[&unsigned(4, now())]).await),
        "permission denied"
    );
    // 24133 is never signed.
    assert_eq!(
        error_of(&c.call("sign_event", &[&unsigned(24133, now())]).await),
        "permission denied"
    );
    // A method-wide allow covers kind 30023 but not the sensitive kind 0 (whose own allow has
    // expired): that asks, and an unanswered approval times out with an error under the same
    // request id.
    let ok = c.call("sign_event", &[&unsigned(30023, now())]).await;
    nostr::Event::from_json(ok["result"].as_str().unwrap())
        .unwrap()
        .verify()
        .unwrap();
    let (id, _) = c
        .call_expecting_auth("sign_event", &[&unsigned(0, now())])
        .await;
    let timed_out = c.response(WAIT).await.unwrap();
    assert_eq!(timed_out["id"], id.as_str());
    assert_eq!(error_of(&timed_out), "approval timed out");
    // An expired deny no longer applies either.
    let mut old_deny = Grant::new("sign_event", Some(9), Decision::Deny);
    old_deny.expires_at = Some(now() - 1);
    s.grant(&c, &[old_deny]).await;
    assert!(
        c.call("sign_event", &[&unsigned(9, now())]).await["result"]
            .as_str()
            .unwrap()
            .starts_with('{')
    );
    // Far-future created_at.
    assert!(
        error_of(&c.call("sign_event", &[&unsigned(1, now() + 3600)]).await)
            .starts_with("invalid event")
    );
    // Caps: two allowed per minute, the third is rate limited — also after a restart.
    for _ in 0..2 {
        assert!(
            c.call("sign_event", &[&unsigned(1, now())]).await["result"]
                .as_str()
                .unwrap()
                .starts_with('{')
        );
    }
    assert_eq!(
        error_of(&c.call("sign_event", &[&unsigned(1, now())]).await),
        "rate limited"
    );
    s.bunker.shutdown().await;
    let transport = s.store.open_transport_key(&s.kek).await.unwrap().unwrap();
    let restarted = Bunker::start(
        s.store.clone(),
        CoordinatorKey::new(s.key.0.clone(), s.key.1.clone()),
        KEY_ID,
        transport,
        vec![s.relay.url()],
        BunkerConfig::new("http://127.0.0.1:7090"),
    )
    .await
    .unwrap();
    wait_subscribed(&restarted).await;
    assert_eq!(
        error_of(&c.call("sign_event", &[&unsigned(1, now())]).await),
        "rate limited"
    );
    // Revocation takes effect at once.
    assert!(restarted.revoke(&c.pubkey()).await.unwrap());
    assert_eq!(
        error_of(&c.call("get_public_key", &[]).await),
        "not connected"
    );
    assert_eq!(
        error_of(&c.call("sign_event", &[&unsigned(30023, now())]).await),
        "not connected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nip98_events_are_checked() {
    let s = setup(Options::default()).await;
    let mut c = s.connected().await;
    let mut g = Grant::new("sign_event", Some(27235), Decision::Allow);
    g.constraints.url_prefixes = vec!["https://api.example/v1/".into()];
    s.grant(&c, &[g]).await;
    let event = |u: &str, created_at: u64| {
        json!({"kind": 27235, "content": "", "created_at": created_at,
               "tags": [["u", u], ["method", "POST"]]})
        .to_string()
    };
    let ok = c
        .call(
            "sign_event",
            &[&event("https://api.example/v1/notes", now())],
        )
        .await;
    assert!(ok["result"].as_str().unwrap().starts_with('{'), "{ok}");
    assert_eq!(
        error_of(
            &c.call("sign_event", &[&event("https://evil.example/v1/", now())])
                .await
        ),
        "permission denied"
    );
    assert!(
        error_of(
            &c.call(
                "sign_event",
                &[&event("https://api.example/v1/x", now() - 120)]
            )
            .await
        )
        .starts_with("invalid event: nip-98")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_approves_and_denies_asks() {
    let s = setup(Options::default()).await;
    let mut c = s.connected().await;
    // Allow once: the final response carries the signed event under the same request id.
    let (id, approval) = c
        .call_expecting_auth("sign_event", &[&unsigned(1, now())])
        .await;
    let pending = s.bunker.approvals().await.unwrap();
    assert_eq!(pending["approvals"][0]["approval_id"], approval.as_str());
    assert_eq!(pending["approvals"][0]["summary"]["kind"], 1);
    assert!(
        s.bunker
            .decide(&approval, ApprovalDecision::AllowOnce)
            .await
            .unwrap()
    );
    assert!(
        !s.bunker
            .decide(&approval, ApprovalDecision::Deny)
            .await
            .unwrap(),
        "decided twice"
    );
    let reply = c.response(WAIT).await.unwrap();
    assert_eq!(reply["id"], id.as_str());
    nostr::Event::from_json(reply["result"].as_str().unwrap())
        .unwrap()
        .verify()
        .unwrap();
    // Deny.
    let (id, approval) = c
        .call_expecting_auth(
            "nip44_encrypt",
            &[&Keys::generate().public_key().to_hex(), "x"],
        )
        .await;
    assert!(
        s.bunker
            .decide(&approval, ApprovalDecision::Deny)
            .await
            .unwrap()
    );
    let reply = c.response(WAIT).await.unwrap();
    assert_eq!(reply["id"], id.as_str());
    assert_eq!(error_of(&reply), "denied by operator");
    // Allow always: stored as a grant, the next request of that kind passes without asking.
    let (_, approval) = c
        .call_expecting_auth("sign_event", &[&unsigned(7, now())])
        .await;
    assert!(
        s.bunker
            .decide(&approval, ApprovalDecision::AllowAlways)
            .await
            .unwrap()
    );
    assert!(
        c.response(WAIT).await.unwrap()["result"]
            .as_str()
            .unwrap()
            .starts_with('{')
    );
    assert!(
        c.call("sign_event", &[&unsigned(7, now())]).await["result"]
            .as_str()
            .unwrap()
            .starts_with('{')
    );
    // A connect without a secret asks too.
    let mut newcomer = s.client().await;
    let (_, approval) = newcomer
        .call_expecting_auth("connect", &[&s.transport().to_hex()])
        .await;
    assert!(
        s.bunker
            .decide(&approval, ApprovalDecision::AllowOnce)
            .await
            .unwrap()
    );
    assert_eq!(newcomer.response(WAIT).await.unwrap()["result"], "ack");
    assert_eq!(
        newcomer.call("get_public_key", &[]).await["result"],
        hex::encode(s.npub)
    );
    // The audit log has the requests and the operator's decisions.
    let audit = OperatorBackend::audit(&s.bunker, None, 200).await.unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"approval") && actions.contains(&"sign_event"),
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_approvals_per_client_are_bounded() {
    let s = setup(Options {
        approval_timeout: Duration::from_secs(2),
        ..Options::default()
    })
    .await;
    let mut c = s.connected().await;
    for i in 0..6 {
        let (_, body) = c.request_json("sign_event", &[&unsigned(1, now() + i)]);
        let content = c.nip44(&body);
        c.publish(content).await;
    }
    let mut auth = 0;
    let mut limited = 0;
    for _ in 0..6 {
        let reply = c.response(WAIT).await.expect("every request is answered");
        match reply["result"].as_str() {
            Some("auth_url") => auth += 1,
            Some("error") if reply["error"] == "rate limited" => limited += 1,
            _ => panic!("unexpected {reply}"),
        }
    }
    assert_eq!((auth, limited), (5, 1));
    // The five then time out, each answered under its own id.
    for _ in 0..5 {
        assert_eq!(
            error_of(&c.response(WAIT).await.unwrap()),
            "approval timed out"
        );
    }
}
