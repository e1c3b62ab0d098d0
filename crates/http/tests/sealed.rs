//! Sealed bodies (B.11) end to end: a real axum server on 127.0.0.1:0 behind
//! `KeylineHttpLayer`, the reqwest `SignedClient`, and a recording TCP relay in between so the
//! tests can look at the bytes on the wire. Clocks are `ManualClock`s.
#![cfg(all(feature = "server", feature = "client"))]

use std::sync::{Arc, Mutex};

use keyline_core::ManualClock;
use keyline_http::nonce::encode_nonce;
use keyline_http::seal::{
    HpkeKeyPair, SEALED_CONTENT_TYPE, Suite, WELL_KNOWN_PATH, open_response, seal_header_value,
    seal_request, seal_request_to,
};
use keyline_http::{
    PublicOrigin, Request, ServerConfig, ServerTrust, SignOptions, SignedClient, SigningKey,
    demo_app, sign_request, verify_response,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NOW: u64 = 1_767_225_600;
const PLAINTEXT: &[u8] = b"the secret plaintext: attack at dawn";

fn server_key() -> SigningKey {
    SigningKey::ed25519_from_seed(&[1; 32])
}

fn client_key() -> SigningKey {
    SigningKey::ed25519_from_seed(&[2; 32])
}

fn hpke_key() -> HpkeKeyPair {
    HpkeKeyPair::derive(7, b"sealed e2e server hpke key")
}

/// Bytes seen by the relay: client → server and server → client.
#[derive(Clone, Default)]
struct Wire {
    up: Arc<Mutex<Vec<u8>>>,
    down: Arc<Mutex<Vec<u8>>>,
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    log: Arc<Mutex<Vec<u8>>>,
) {
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                log.lock().expect("log").extend_from_slice(&buf[..n]);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// Starts the demo app and a recording relay in front of it; the public origin is the
/// relay's. Returns the origin and the wire log.
async fn start() -> (String, Wire) {
    let (origin, wire, _) = start_with(Arc::new(ManualClock::new(NOW)), |c| c).await;
    (origin, wire)
}

/// [`start`] with the server's clock and a configuration hook; also returns the server
/// configuration (clones share its HPKE keyring, so rotating through it rotates the server).
async fn start_with(
    clock: Arc<ManualClock>,
    configure: impl FnOnce(ServerConfig) -> ServerConfig,
) -> (String, Wire, ServerConfig) {
    let server = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let server_addr = server.local_addr().expect("addr");
    let relay = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!(
        "http://127.0.0.1:{}",
        relay.local_addr().expect("addr").port()
    );
    let config = ServerConfig::new(PublicOrigin::new(&origin).expect("origin"), server_key())
        .expect("config")
        .with_clock(clock)
        .with_hpke_keys(vec![hpke_key()]);
    let config = configure(config);
    let app = demo_app(config.clone());
    tokio::spawn(async move { axum::serve(server, app).await });
    let wire = Wire::default();
    let log = wire.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = relay.accept().await {
            let Ok(outbound) = tokio::net::TcpStream::connect(server_addr).await else {
                continue;
            };
            let (in_r, in_w) = inbound.into_split();
            let (out_r, out_w) = outbound.into_split();
            tokio::spawn(pump(in_r, out_w, log.up.clone()));
            tokio::spawn(pump(out_r, in_w, log.down.clone()));
        }
    });
    (origin, wire, config)
}

fn client(key: SigningKey, trusted: SigningKey) -> SignedClient {
    SignedClient::new(key, ServerTrust::Key(trusted.public_key()))
        .expect("client")
        .with_clock(Arc::new(ManualClock::new(NOW)))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A sealed `POST /echo`, sealed for `sealer`/`seal_nonce` and signed by `signer` with
/// `sign_nonce`. Returns the request and the sealing context.
fn sealed_echo(
    origin: &str,
    sealer: &SigningKey,
    seal_nonce: &str,
    signer: &SigningKey,
    sign_nonce: &str,
) -> (Request, keyline_http::seal::SenderContext) {
    let (body, context) = seal_request(
        &hpke_key().public_key(),
        hpke_key().key_id(),
        &sealer.public_key().keyid(),
        seal_nonce,
        "text/plain",
        PLAINTEXT,
        &[9; 32],
    )
    .expect("seal");
    let mut request = Request::new("POST", format!("{origin}/echo"))
        .with_header("Content-Type", SEALED_CONTENT_TYPE)
        .with_body(body);
    sign_request(
        &mut request,
        signer,
        &SignOptions::new(NOW, sign_nonce, [3; 32]),
    )
    .expect("sign");
    (request, context)
}

/// Sends a hand-made request with raw reqwest; returns it as a core `Response`.
async fn send_raw(request: &Request) -> keyline_http::Response {
    let mut builder = reqwest::Client::new().request(
        reqwest::Method::from_bytes(request.method.as_bytes()).expect("method"),
        &request.target_uri,
    );
    for (name, value) in request.headers.iter() {
        builder = builder.header(name, value);
    }
    let reply = builder
        .body(request.body.clone())
        .send()
        .await
        .expect("send");
    let mut response = keyline_http::Response::new(reply.status().as_u16());
    for (name, value) in reply.headers() {
        response
            .headers
            .push(name.as_str(), value.to_str().expect("ascii"));
    }
    response.body = reply.bytes().await.expect("body").to_vec();
    response
}

fn nonce(byte: u8) -> String {
    encode_nonce(&[byte; 16])
}

#[tokio::test]
async fn sealed_echo_round_trips_and_the_wire_carries_no_plaintext() {
    let (origin, wire) = start().await;
    let client = client(client_key(), server_key()).sealed(true);

    let response = client
        .send(
            "POST",
            &format!("{origin}/echo"),
            &[("Content-Type", "text/plain")],
            PLAINTEXT.to_vec(),
        )
        .await
        .expect("sealed echo");
    assert_eq!(response.status, 200);
    assert!(response.sealed);
    assert_eq!(response.body, PLAINTEXT);
    // The handler saw the inner content type (echo reflects it).
    assert_eq!(
        response.headers.combined("content-type").as_deref(),
        Some("text/plain")
    );

    // A second request uses the cached key configuration.
    let response = client
        .send_sealed(
            "POST",
            &format!("{origin}/echo"),
            &[("Content-Type", "application/json")],
            b"{\"n\":2}".to_vec(),
        )
        .await
        .expect("sealed echo 2");
    assert_eq!(response.body, b"{\"n\":2}");
    assert_eq!(
        response.headers.combined("content-type").as_deref(),
        Some("application/json")
    );

    let up = wire.up.lock().expect("log").clone();
    let down = wire.down.lock().expect("log").clone();
    assert_eq!(
        up.windows(WELL_KNOWN_PATH.len())
            .filter(|w| *w == WELL_KNOWN_PATH.as_bytes())
            .count(),
        1,
        "the key configuration is fetched once"
    );
    assert!(contains(&up, SEALED_CONTENT_TYPE.as_bytes()));
    assert!(contains(&down, SEALED_CONTENT_TYPE.as_bytes()));
    for secret in [PLAINTEXT, &b"attack at dawn"[..], &b"{\"n\":2}"[..]] {
        assert!(!contains(&up, secret), "plaintext in the request bytes");
        assert!(!contains(&down, secret), "plaintext in the response bytes");
    }
    assert!(!contains(&up, b"text/plain"), "inner content type in clear");
}

#[tokio::test]
async fn sealed_request_body_differs_from_the_plaintext() {
    let (origin, _wire) = start().await;
    let (request, context) =
        sealed_echo(&origin, &client_key(), &nonce(1), &client_key(), &nonce(1));
    assert_ne!(request.body, PLAINTEXT);
    assert!(!contains(&request.body, PLAINTEXT));
    let response = send_raw(&request).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.headers.combined("content-type").as_deref(),
        Some(SEALED_CONTENT_TYPE)
    );
    assert!(!contains(&response.body, PLAINTEXT));
    // The response signature covers the sealed body; it verifies, then opens.
    let sent = keyline_http::SentRequest {
        nonce: nonce(1),
        binding: keyline_http::RequestBinding::of(&request),
    };
    verify_response(&response, &sent, &server_key().public_key()).expect("signed");
    let (content_type, body) = open_response(&context, &response.body).expect("open");
    assert_eq!(
        (content_type.as_str(), body.as_slice()),
        ("text/plain", PLAINTEXT)
    );
}

#[tokio::test]
async fn tampered_sealed_body_is_refused_uniformly() {
    let (origin, _wire) = start().await;
    let mut statuses = Vec::new();
    let (request, _) = sealed_echo(&origin, &client_key(), &nonce(2), &client_key(), &nonce(2));
    // Header (key id, suite), enc, ciphertext, tag: every flip is the same 401.
    for (i, at) in [0, 2, 6, 7, 38, 39, request.body.len() - 1]
        .into_iter()
        .enumerate()
    {
        let mut tampered = request.clone();
        tampered.body[at] ^= 0x01;
        let response = send_raw(&tampered).await;
        statuses.push(response.status);
        assert!(response.body.is_empty(), "{i}");
        assert!(response.headers.contains("www-authenticate"), "{i}");
    }
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    // A truncated body too.
    let mut truncated = request.clone();
    truncated.body.truncate(20);
    assert_eq!(send_raw(&truncated).await.status, 401);
    // The untouched request still passes (the refusals did not burn its nonce).
    assert_eq!(send_raw(&request).await.status, 200);
}

#[tokio::test]
async fn sealed_body_resigned_by_another_key_or_nonce_is_refused() {
    let (origin, _wire) = start().await;
    let mallory = SigningKey::ed25519_from_seed(&[6; 32]);
    // Sealed for the client's keyid, signed by Mallory (valid signature, wrong binding).
    let (request, _) = sealed_echo(&origin, &client_key(), &nonce(3), &mallory, &nonce(3));
    let response = send_raw(&request).await;
    assert_eq!(response.status, 400);
    assert!(response.body.is_empty());
    // Same signer, another nonce than the one bound into the HPKE info.
    let (request, _) = sealed_echo(&origin, &client_key(), &nonce(4), &client_key(), &nonce(5));
    assert_eq!(send_raw(&request).await.status, 400);
    // A BIP340 signer re-signing it.
    let bip = SigningKey::bip340_from_secret(&[8; 32]).expect("bip340");
    let (request, _) = sealed_echo(&origin, &client_key(), &nonce(6), &bip, &nonce(6));
    assert_eq!(send_raw(&request).await.status, 400);
    // Control: properly bound, accepted.
    let (request, _) = sealed_echo(&origin, &mallory, &nonce(7), &mallory, &nonce(7));
    assert_eq!(send_raw(&request).await.status, 200);
}

#[tokio::test]
async fn unknown_hpke_key_id_is_400() {
    let (origin, _wire) = start().await;
    let (body, _) = seal_request(
        &hpke_key().public_key(),
        8,
        &client_key().public_key().keyid(),
        &nonce(9),
        "text/plain",
        PLAINTEXT,
        &[9; 32],
    )
    .expect("seal");
    let mut request = Request::new("POST", format!("{origin}/echo"))
        .with_header("Content-Type", SEALED_CONTENT_TYPE)
        .with_body(body);
    sign_request(
        &mut request,
        &client_key(),
        &SignOptions::new(NOW, nonce(9), [3; 32]),
    )
    .expect("sign");
    assert_eq!(send_raw(&request).await.status, 400);
}

#[tokio::test]
async fn key_configuration_is_served_signed_and_verified() {
    let (origin, _wire) = start().await;
    let config = client(client_key(), server_key())
        .key_config(&origin)
        .await
        .expect("key config");
    assert_eq!(config.profile, "keyline-http-v1");
    assert_eq!(config.signing_keys, vec![server_key().public_key().keyid()]);
    assert_eq!(config.hpke_keys.len(), 1);
    assert_eq!(config.hpke_keys[0].key_id, 7);
    assert_eq!(config.hpke_keys[0].kem_id, 0x20);
    assert_eq!(
        config.select(),
        Some(hpke_key().target(Suite::ChaCha20Poly1305)),
        "the announced key is the server's, with the first listed suite"
    );
    assert_eq!(
        config.hpke_keys[0].suites,
        vec![Suite::ChaCha20Poly1305.config(), Suite::Aes128Gcm.config()]
    );
    assert_eq!(config.max_body_bytes, 1024 * 1024);
    assert_eq!((config.skew.max_age, config.skew.max_future), (60, 30));

    // Unsigned fetch: signed response, `Cache-Control: no-store`, JSON.
    let raw = send_raw(&Request::new("GET", format!("{origin}{WELL_KNOWN_PATH}"))).await;
    assert_eq!(raw.status, 200);
    assert_eq!(
        raw.headers.combined("cache-control").as_deref(),
        Some("no-store")
    );
    assert!(raw.headers.contains("signature"));
    let json: serde_json::Value = serde_json::from_slice(&raw.body).expect("json");
    assert_eq!(json["hpke_keys"][0]["suites"][0]["aead_id"], 3);

    // A client pinned to another server key refuses the configuration and cannot seal.
    let other = SigningKey::ed25519_from_seed(&[5; 32]);
    let wrong = client(client_key(), other);
    assert!(wrong.key_config(&origin).await.is_err());
    assert!(
        wrong
            .send_sealed(
                "POST",
                &format!("{origin}/echo"),
                &[("Content-Type", "text/plain")],
                PLAINTEXT.to_vec()
            )
            .await
            .is_err()
    );
}

#[tokio::test]
async fn bodyless_sealed_request_gets_a_sealed_response() {
    let (origin, wire) = start().await;
    let client = client(client_key(), server_key()).sealed(true);
    let response = client
        .get(&format!("{origin}/whoami"))
        .await
        .expect("sealed whoami");
    assert_eq!(response.status, 200);
    assert!(response.sealed);
    let json: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
    assert_eq!(json["key"], client_key().public_key().keyid());
    let down = wire.down.lock().expect("log").clone();
    assert!(!contains(
        &down,
        client_key().public_key().keyid().as_bytes()
    ));
    assert!(contains(&wire.up.lock().expect("log"), b"keyline-seal"));

    // Unsealed clients are unaffected.
    let plain = self::client(client_key(), server_key());
    let response = plain
        .get(&format!("{origin}/whoami"))
        .await
        .expect("whoami");
    assert_eq!(response.status, 200);
    assert!(!response.sealed);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&response.body).expect("json")["key"],
        client_key().public_key().keyid()
    );
}

/// A signed `GET /whoami` with `Keyline-Seal` sealed for `sealer`/`seal_nonce`, signed by
/// `signer` with `sign_nonce`.
fn sealed_get(
    origin: &str,
    sealer: &SigningKey,
    seal_nonce: &str,
    signer: &SigningKey,
    sign_nonce: &str,
    tamper: Option<usize>,
) -> Request {
    let (mut sealed, _) = seal_request(
        &hpke_key().public_key(),
        hpke_key().key_id(),
        &sealer.public_key().keyid(),
        seal_nonce,
        "",
        b"",
        &[9; 32],
    )
    .expect("seal");
    let mut request = Request::new("GET", format!("{origin}/whoami"))
        .with_header("Keyline-Seal", seal_header_value(&sealed));
    sign_request(
        &mut request,
        signer,
        &SignOptions::new(NOW, sign_nonce, [3; 32]),
    )
    .expect("sign");
    assert!(
        request
            .headers
            .combined("signature-input")
            .expect("si")
            .contains("\"keyline-seal\"")
    );
    if let Some(at) = tamper {
        sealed[at] ^= 1;
        request
            .headers
            .set("Keyline-Seal", seal_header_value(&sealed));
    }
    request
}

#[tokio::test]
async fn keyline_seal_header_is_bound_and_covered() {
    let (origin, _wire) = start().await;
    let mallory = SigningKey::ed25519_from_seed(&[6; 32]);
    let ok = sealed_get(
        &origin,
        &client_key(),
        &nonce(20),
        &client_key(),
        &nonce(20),
        None,
    );
    let response = send_raw(&ok).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.headers.combined("content-type").as_deref(),
        Some(SEALED_CONTENT_TYPE)
    );
    // Tampered header: the signature covers it, 401.
    let tampered = sealed_get(
        &origin,
        &client_key(),
        &nonce(21),
        &client_key(),
        &nonce(21),
        Some(40),
    );
    assert_eq!(send_raw(&tampered).await.status, 401);
    // Re-signed by another key: opens under another info, 400.
    let resigned = sealed_get(
        &origin,
        &client_key(),
        &nonce(22),
        &mallory,
        &nonce(22),
        None,
    );
    assert_eq!(send_raw(&resigned).await.status, 400);
    // Covered but absent: 400.
    let mut missing = sealed_get(
        &origin,
        &client_key(),
        &nonce(23),
        &client_key(),
        &nonce(23),
        None,
    );
    missing.headers.remove("keyline-seal");
    assert_eq!(send_raw(&missing).await.status, 400);
}

#[tokio::test]
async fn sealed_retry_after_401_reseals_with_the_server_nonce() {
    let (origin, _wire) = start().await;
    // After the key configuration is cached, the client's clock jumps ten minutes back: the
    // next attempt is stale, and the retry uses the server nonce, which is bound into the HPKE
    // info, so the body must be sealed again.
    let clock = Arc::new(ManualClock::new(NOW));
    let client = SignedClient::new(client_key(), ServerTrust::Key(server_key().public_key()))
        .expect("client")
        .with_clock(clock.clone())
        .sealed(true);
    let url = format!("{origin}/echo");
    let send = || {
        client.send(
            "POST",
            &url,
            &[("Content-Type", "text/plain")],
            PLAINTEXT.to_vec(),
        )
    };
    let first = send().await.expect("sealed echo");
    assert!(!first.retried);
    clock.set_unix(NOW - 600);
    let response = send().await.expect("sealed echo after the jump");
    assert!(response.retried);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, PLAINTEXT);
}

/// A sealed `POST /echo` to `target` (key and suite), signed by the client key at `created`.
fn sealed_echo_to(
    origin: &str,
    target: &keyline_http::seal::SealTarget,
    sign_nonce: &str,
    created: u64,
) -> (Request, keyline_http::seal::SenderContext) {
    let (body, context) = seal_request_to(
        target,
        &client_key().public_key().keyid(),
        sign_nonce,
        "text/plain",
        PLAINTEXT,
        &[9; 32],
    )
    .expect("seal");
    let mut request = Request::new("POST", format!("{origin}/echo"))
        .with_header("Content-Type", SEALED_CONTENT_TYPE)
        .with_body(body);
    sign_request(
        &mut request,
        &client_key(),
        &SignOptions::new(created, sign_nonce, [3; 32]),
    )
    .expect("sign");
    (request, context)
}

#[tokio::test]
async fn aes_128_gcm_round_trip_through_server_and_client() {
    let (origin, wire) = start().await;
    // A client that supports only AES-128-GCM picks it from the server's list.
    let client = client(client_key(), server_key())
        .with_hpke_suites(&[Suite::Aes128Gcm])
        .sealed(true);
    let response = client
        .send(
            "POST",
            &format!("{origin}/echo"),
            &[("Content-Type", "text/plain")],
            PLAINTEXT.to_vec(),
        )
        .await
        .expect("AES-128-GCM sealed echo");
    assert_eq!((response.status, response.sealed), (200, true));
    assert_eq!(response.body, PLAINTEXT);
    // Body-less: `Keyline-Seal` with the AES suite, sealed response.
    let response = client
        .get(&format!("{origin}/whoami"))
        .await
        .expect("AES-128-GCM sealed whoami");
    assert_eq!((response.status, response.sealed), (200, true));
    let json: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
    assert_eq!(json["key"], client_key().public_key().keyid());
    let up = wire.up.lock().expect("log").clone();
    let down = wire.down.lock().expect("log").clone();
    // The sealed request header names AES-128-GCM: key 7, kem 0x0020, kdf 1, aead 1.
    assert!(contains(&up, &[7, 0, 0x20, 0, 1, 0, 1]));
    assert!(!contains(&up, &[7, 0, 0x20, 0, 1, 0, 3]));
    assert!(!contains(&up, PLAINTEXT) && !contains(&down, PLAINTEXT));

    // By hand: the response nonce is 16 bytes (max(Nn, Nk)) and the response opens.
    let target = hpke_key().target(Suite::Aes128Gcm);
    let (request, context) = sealed_echo_to(&origin, &target, &nonce(40), NOW);
    let response = send_raw(&request).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.body.len(),
        16 + 2 + "text/plain".len() + PLAINTEXT.len() + 16
    );
    let (content_type, body) = open_response(&context, &response.body).expect("open");
    assert_eq!(
        (content_type.as_str(), body.as_slice()),
        ("text/plain", PLAINTEXT)
    );
    // ChaCha20-Poly1305 responses carry a 32-byte nonce.
    let (request, context) = sealed_echo_to(
        &origin,
        &hpke_key().target(Suite::ChaCha20Poly1305),
        &nonce(41),
        NOW,
    );
    let response = send_raw(&request).await;
    assert_eq!(
        response.body.len(),
        32 + 2 + "text/plain".len() + PLAINTEXT.len() + 16
    );
    assert_eq!(
        open_response(&context, &response.body).expect("open").1,
        PLAINTEXT
    );
}

#[tokio::test]
async fn unknown_suite_is_400() {
    let (origin, _wire) = start().await;
    let target = hpke_key().target(Suite::Aes128Gcm);
    for (at, value) in [(6, 2u8), (4, 2), (2, 0x21)] {
        // AES-256-GCM, HKDF-SHA384, X448: validly signed, but not a suite of the server.
        let (body, _) = seal_request_to(
            &target,
            &client_key().public_key().keyid(),
            &nonce(50 + at as u8),
            "text/plain",
            PLAINTEXT,
            &[9; 32],
        )
        .expect("seal");
        let mut body = body;
        body[at] = value;
        let mut request = Request::new("POST", format!("{origin}/echo"))
            .with_header("Content-Type", SEALED_CONTENT_TYPE)
            .with_body(body);
        sign_request(
            &mut request,
            &client_key(),
            &SignOptions::new(NOW, nonce(50 + at as u8), [3; 32]),
        )
        .expect("sign");
        let response = send_raw(&request).await;
        assert_eq!(response.status, 400, "byte {at}");
        assert!(response.body.is_empty());
    }
}

async fn well_known_ids(origin: &str) -> Vec<u64> {
    let raw = send_raw(&Request::new("GET", format!("{origin}{WELL_KNOWN_PATH}"))).await;
    let json: serde_json::Value = serde_json::from_slice(&raw.body).expect("json");
    json["hpke_keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["key_id"].as_u64().expect("id"))
        .collect()
}

#[tokio::test]
async fn rotated_key_works_during_the_grace_period_only() {
    let clock = Arc::new(ManualClock::new(NOW));
    let (origin, _wire, config) = start_with(clock.clone(), |c| c).await;
    let grace = keyline_http::limits::DEFAULT_HPKE_KEY_GRACE;
    assert_eq!(config.hpke.grace(), grace);
    assert!(grace >= 60 + keyline_http::limits::KEY_CONFIG_CACHE_LIFETIME);
    let old = hpke_key().target(Suite::ChaCha20Poly1305);
    let (request, _) = sealed_echo_to(&origin, &old, &nonce(60), NOW);
    assert_eq!(send_raw(&request).await.status, 200);

    // Rotate: the new key is listed first, the old one after it.
    let new_id = config.rotate_hpke_key().expect("rotate");
    assert_eq!(new_id, 8);
    assert_eq!(well_known_ids(&origin).await, vec![8, 7]);
    let new_key = config.hpke_keys()[0].clone();
    assert_eq!(new_key.key_id(), 8);

    // During the grace period both keys open requests.
    clock.set_unix(NOW + grace - 1);
    let (request, _) = sealed_echo_to(&origin, &old, &nonce(61), NOW + grace - 1);
    assert_eq!(send_raw(&request).await.status, 200, "old key within grace");
    let (request, _) = sealed_echo_to(
        &origin,
        &new_key.target(Suite::Aes128Gcm),
        &nonce(62),
        NOW + grace - 1,
    );
    assert_eq!(send_raw(&request).await.status, 200, "new key");

    // After it, the old key is deleted: 400 unknown key id; it is no longer announced.
    clock.set_unix(NOW + grace);
    let (request, _) = sealed_echo_to(&origin, &old, &nonce(63), NOW + grace);
    let response = send_raw(&request).await;
    assert_eq!(response.status, 400, "old key after grace");
    assert!(response.body.is_empty());
    assert_eq!(well_known_ids(&origin).await, vec![8]);
    let (request, _) = sealed_echo_to(
        &origin,
        &new_key.target(Suite::ChaCha20Poly1305),
        &nonce(64),
        NOW + grace,
    );
    assert_eq!(send_raw(&request).await.status, 200);

    // Grace periods shorter than max age + the clients' cache lifetime are refused.
    assert!(config.clone().with_hpke_grace(grace - 1).is_err());
    assert_eq!(
        config
            .clone()
            .with_hpke_grace(grace + 100)
            .expect("grace")
            .hpke
            .grace(),
        grace + 100
    );
}

#[tokio::test]
async fn scheduled_rotation_and_client_refetch() {
    let clock = Arc::new(ManualClock::new(NOW));
    let (origin, wire, _config) = start_with(clock.clone(), |c| c.with_hpke_rotation(3600)).await;
    let client = SignedClient::new(client_key(), ServerTrust::Key(server_key().public_key()))
        .expect("client")
        .with_clock(clock.clone())
        .sealed(true);
    let url = format!("{origin}/echo");
    let send = || {
        client.send(
            "POST",
            &url,
            &[("Content-Type", "text/plain")],
            PLAINTEXT.to_vec(),
        )
    };
    assert_eq!(send().await.expect("echo").body, PLAINTEXT);
    assert_eq!(well_known_ids(&origin).await, vec![7]);
    // The schedule rotates on the first request after an hour.
    clock.set_unix(NOW + 3600);
    assert_eq!(well_known_ids(&origin).await, vec![8, 7]);
    // The client's cached configuration (key 7) has expired: it fetches again and seals to
    // key 8; the retired key 7 would still have worked.
    assert_eq!(send().await.expect("echo after rotation").body, PLAINTEXT);
    let up = wire.up.lock().expect("log").clone();
    let fetches = up
        .windows(WELL_KNOWN_PATH.len())
        .filter(|w| *w == WELL_KNOWN_PATH.as_bytes())
        .count();
    assert_eq!(fetches, 2 + 2, "two by the client, two by well_known_ids");
    assert!(contains(&up, &[8, 0, 0x20, 0, 1, 0, 3]));
    // Past the grace period only key 8 remains, and the client keeps working.
    clock.set_unix(NOW + 3600 + keyline_http::limits::DEFAULT_HPKE_KEY_GRACE);
    assert_eq!(well_known_ids(&origin).await, vec![8]);
    assert_eq!(send().await.expect("echo after deletion").body, PLAINTEXT);
}

#[tokio::test]
async fn client_key_configuration_cache_lifetime_edge() {
    let clock = Arc::new(ManualClock::new(NOW));
    let (origin, wire, _config) = start_with(clock.clone(), |c| c).await;
    let client = SignedClient::new(client_key(), ServerTrust::Key(server_key().public_key()))
        .expect("client")
        .with_clock(clock.clone())
        .sealed(true);
    let url = format!("{origin}/whoami");
    let fetches = || {
        wire.up
            .lock()
            .expect("log")
            .windows(WELL_KNOWN_PATH.len())
            .filter(|w| *w == WELL_KNOWN_PATH.as_bytes())
            .count()
    };
    let lifetime = keyline_http::limits::KEY_CONFIG_CACHE_LIFETIME;
    assert_eq!(client.get(&url).await.expect("whoami").status, 200);
    assert_eq!(fetches(), 1);
    clock.set_unix(NOW + lifetime - 1);
    assert_eq!(client.get(&url).await.expect("whoami").status, 200);
    assert_eq!(fetches(), 1, "still cached one second before the lifetime");
    clock.set_unix(NOW + lifetime);
    assert_eq!(client.get(&url).await.expect("whoami").status, 200);
    assert_eq!(fetches(), 2, "fetched again at the lifetime");
}
