//! End to end: a real axum server on 127.0.0.1:0 behind `KeylineHttpLayer`, and the reqwest
//! `SignedClient` (or raw reqwest for hand-made requests). Clocks are `ManualClock`s; nothing
//! here asserts on elapsed time.
#![cfg(all(feature = "server", feature = "client"))]

use std::sync::{Arc, Mutex};

use axum::Router;
use keyline_core::{ManualClock, PinStore, Policy};
use keyline_http::{
    ClientScheme, MemoryReplayCache, PublicKey, PublicOrigin, ReplayLimits, Request, ServerConfig,
    ServerTrust, SignOptions, SignedClient, SigningKey, demo_app, sign_request,
};

const NOW: u64 = 1_767_225_600;

fn server_key() -> SigningKey {
    SigningKey::ed25519_from_seed(&[1; 32])
}

fn client_key() -> SigningKey {
    SigningKey::ed25519_from_seed(&[2; 32])
}

/// Starts `make(config)` on a fresh port; returns the origin.
async fn start(
    tweak: impl FnOnce(ServerConfig) -> ServerConfig,
    make: impl FnOnce(ServerConfig) -> Router,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    let config = ServerConfig::new(PublicOrigin::new(&origin).expect("origin"), server_key())
        .expect("config")
        .with_clock(Arc::new(ManualClock::new(NOW)));
    let app = make(tweak(config));
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

async fn start_demo() -> String {
    start(|c| c, demo_app).await
}

fn client(trust: ServerTrust) -> SignedClient {
    SignedClient::new(client_key(), trust)
        .expect("client")
        .with_clock(Arc::new(ManualClock::new(NOW)))
}

fn pinned_client() -> SignedClient {
    client(ServerTrust::Key(server_key().public_key()))
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).expect("json")
}

/// Sends a hand-made request with raw reqwest (no signing, no verification).
async fn send_raw(method: &str, url: &str, request: &Request) -> reqwest::Response {
    let mut builder = reqwest::Client::new().request(
        reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
        url,
    );
    for (name, value) in request.headers.iter() {
        builder = builder.header(name, value);
    }
    if !request.body.is_empty() {
        builder = builder.body(request.body.clone());
    }
    builder.send().await.expect("send")
}

fn signed_echo(origin: &str, body: &[u8]) -> Request {
    let mut request = Request::new("POST", format!("{origin}/echo"))
        .with_header("Content-Type", "text/plain")
        .with_body(body.to_vec());
    sign_request(
        &mut request,
        &client_key(),
        &SignOptions::random(NOW).expect("rng"),
    )
    .expect("sign");
    request
}

#[tokio::test]
async fn whoami_and_echo() {
    let origin = start_demo().await;
    let client = pinned_client();

    let response = client
        .get(&format!("{origin}/whoami"))
        .await
        .expect("whoami");
    assert_eq!(response.status, 200);
    assert!(!response.retried);
    let body = json(&response.body);
    assert_eq!(body["key"], client_key().public_key().keyid());
    assert_eq!(body["scheme"], "keyline-http-v1");

    let response = client
        .send(
            "POST",
            &format!("{origin}/echo?x=1"),
            &[("Content-Type", "text/plain")],
            b"hello, keyline".to_vec(),
        )
        .await
        .expect("echo");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello, keyline");
    assert_eq!(response.server_key, server_key().public_key());
}

#[tokio::test]
async fn tofu_pins_the_server_key_and_refuses_another() {
    let origin = start_demo().await;
    let store = Arc::new(PinStore::open_in_memory().await.expect("pins"));
    let trust = ServerTrust::Pins {
        store: store.clone(),
        policy: Policy::Tofu,
    };
    let response = client(trust.clone())
        .get(&format!("{origin}/whoami"))
        .await
        .expect("first contact");
    assert_eq!(response.status, 200);
    let pin = store
        .get("http", &origin)
        .await
        .expect("get")
        .expect("pinned");
    assert_eq!(pin.key, server_key().public_key().keyid().into_bytes());

    // Another origin whose pinned key is not the one it signs with.
    let other = start_demo().await;
    let wrong = SigningKey::ed25519_from_seed(&[9; 32]).public_key();
    store
        .add_at("http", &other, wrong.keyid().as_bytes(), None, false, NOW)
        .await
        .expect("pin");
    let err = client(trust)
        .get(&format!("{other}/whoami"))
        .await
        .expect_err("pin mismatch");
    assert_eq!(err.code(), "server_key");
}

#[tokio::test]
async fn response_signed_by_another_key_is_refused() {
    let origin = start_demo().await;
    let wrong: PublicKey = SigningKey::ed25519_from_seed(&[9; 32]).public_key();
    let err = client(ServerTrust::Key(wrong))
        .get(&format!("{origin}/whoami"))
        .await
        .expect_err("wrong key");
    assert_eq!(err.code(), "unauthorized.response_binding");
}

#[tokio::test]
async fn unsigned_response_is_refused() {
    // A plain axum server without the layer.
    let origin = start(|c| c, |_| keyline_http::demo_router()).await;
    let err = pinned_client()
        .get(&format!("{origin}/whoami"))
        .await
        .expect_err("unsigned");
    assert_eq!(err.status(), 400, "{err}");
}

#[tokio::test]
async fn replay_is_refused() {
    let origin = start_demo().await;
    let request = signed_echo(&origin, b"once");
    let first = send_raw("POST", &format!("{origin}/echo"), &request).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.bytes().await.expect("body").as_ref(), b"once");
    let again = send_raw("POST", &format!("{origin}/echo"), &request).await;
    assert_eq!(again.status(), 401);
    assert!(again.headers().contains_key("accept-signature"));
    assert!(again.headers().contains_key("signature"));
}

#[tokio::test]
async fn tampered_method_path_and_body_are_refused() {
    let origin = start_demo().await;

    let request = signed_echo(&origin, b"payload");
    let echo = format!("{origin}/echo");

    let response = send_raw("PUT", &echo, &request).await;
    assert_eq!(response.status(), 401, "method");
    let response = send_raw("POST", &format!("{echo}?admin=1"), &request).await;
    assert_eq!(response.status(), 401, "query");
    let response = send_raw("POST", &format!("{origin}/whoami"), &request).await;
    assert_eq!(response.status(), 401, "path");
    let mut tampered = request.clone();
    tampered.body = b"PAYLOAD".to_vec();
    let response = send_raw("POST", &echo, &tampered).await;
    assert_eq!(response.status(), 401, "body");

    // The untouched request still passes: the refusals did not burn its nonce.
    let response = send_raw("POST", &echo, &request).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn nested_router_prefix_uses_the_original_uri() {
    let origin = start(|c| c, |config| Router::new().nest("/api", demo_app(config))).await;
    let client = pinned_client();
    let response = client
        .get(&format!("{origin}/api/whoami"))
        .await
        .expect("whoami");
    assert_eq!(response.status, 200);
    assert_eq!(json(&response.body)["scheme"], "keyline-http-v1");

    // Signed for the stripped path: refused.
    let mut request = Request::new("GET", format!("{origin}/whoami"));
    sign_request(
        &mut request,
        &client_key(),
        &SignOptions::random(NOW).expect("rng"),
    )
    .expect("sign");
    let response = send_raw("GET", &format!("{origin}/api/whoami"), &request).await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let origin = start(|c| c.with_max_body_bytes(64), demo_app).await;
    let client = pinned_client();
    let response = client
        .send("POST", &format!("{origin}/echo"), &[], vec![b'a'; 64])
        .await
        .expect("at the limit");
    assert_eq!(response.status, 200);
    let response = client
        .send("POST", &format!("{origin}/echo"), &[], vec![b'a'; 65])
        .await
        .expect("signed 413");
    assert_eq!(response.status, 413);
}

#[tokio::test]
async fn missing_signature_gets_a_challenge() {
    let origin = start_demo().await;
    let response = reqwest::get(format!("{origin}/whoami")).await.expect("get");
    assert_eq!(response.status(), 401);
    let challenges: Vec<_> = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .collect();
    assert!(challenges.contains(&"Signature realm=\"keyline-http-v1\"".to_string()));
    assert!(challenges.contains(&"Nostr".to_string()));
    let accept = response.headers()["accept-signature"]
        .to_str()
        .expect("ascii");
    assert!(accept.contains("nonce=\""), "{accept}");
    assert!(accept.contains("tag=\"keyline-http-v1\""), "{accept}");
    assert!(response.headers().contains_key("date"));
    assert!(response.bytes().await.expect("body").is_empty());
}

#[tokio::test]
async fn client_with_a_wrong_clock_retries_once_with_the_server_nonce() {
    let origin = start_demo().await;
    let client = SignedClient::new(client_key(), ServerTrust::Key(server_key().public_key()))
        .expect("client")
        .with_clock(Arc::new(ManualClock::new(NOW - 600)));
    let response = client
        .get(&format!("{origin}/whoami"))
        .await
        .expect("whoami");
    assert_eq!(response.status, 200);
    assert!(response.retried);
    assert_eq!(client.clock_offset(&origin), 600);
    // The offset is known now: no retry.
    let response = client
        .send(
            "POST",
            &format!("{origin}/echo"),
            &[("Content-Type", "application/json")],
            b"{}".to_vec(),
        )
        .await
        .expect("echo");
    assert_eq!(response.status, 200);
    assert!(!response.retried);
}

#[tokio::test]
async fn nip98_request_is_accepted() {
    let origin = start_demo().await;
    let key = SigningKey::bip340_from_secret(&[3; 32]).expect("key");
    let keyid = key.public_key().keyid();
    let client = SignedClient::new(key, ServerTrust::Key(server_key().public_key()))
        .expect("client")
        .with_scheme(ClientScheme::Nip98)
        .expect("bip340")
        .with_clock(Arc::new(ManualClock::new(NOW)));
    let response = client
        .get(&format!("{origin}/whoami"))
        .await
        .expect("whoami");
    assert_eq!(response.status, 200);
    let body = json(&response.body);
    assert_eq!(body["scheme"], "nip98");
    assert_eq!(body["key"], keyid);

    let response = client
        .send(
            "POST",
            &format!("{origin}/echo"),
            &[("Content-Type", "text/plain")],
            b"nostr".to_vec(),
        )
        .await
        .expect("echo");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"nostr");

    // NIP-98 with an Ed25519 key is a local error.
    assert!(
        SignedClient::new(client_key(), ServerTrust::Key(server_key().public_key()))
            .expect("client")
            .with_scheme(ClientScheme::Nip98)
            .is_err()
    );
}

#[tokio::test]
async fn public_and_bypass_paths() {
    let origin = start(|c| c.public_path("/whoami").bypass_path("/echo"), demo_app).await;
    // Public: not verified (the handler sees no peer), but the response is signed.
    let response = reqwest::get(format!("{origin}/whoami")).await.expect("get");
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("signature"));
    assert!(!response.headers().contains_key("accept-signature"));
    // Bypass: neither verified nor signed.
    let response = reqwest::Client::new()
        .post(format!("{origin}/echo"))
        .body("raw")
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    assert!(!response.headers().contains_key("signature"));
}

#[tokio::test]
async fn head_is_signed_without_content() {
    let origin = start_demo().await;
    let response = pinned_client()
        .send("HEAD", &format!("{origin}/whoami"), &[], Vec::new())
        .await
        .expect("head");
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty());
}

#[tokio::test]
async fn full_replay_cache_is_429_with_retry_after() {
    let cache = Arc::new(Mutex::new(MemoryReplayCache::with_limits(ReplayLimits {
        capacity: 8,
        per_key: 1,
    })));
    let origin = start(|c| c.with_replay_cache(cache), demo_app).await;
    let client = pinned_client();
    let url = format!("{origin}/whoami");
    assert_eq!(client.get(&url).await.expect("first").status, 200);
    let response = client.get(&url).await.expect("signed 429");
    assert_eq!(response.status, 429);
    assert!(response.headers.contains("retry-after"));
}
