//! CORS (B.17) through the real layer: preflights answered before verification for allowed
//! origins, exposed signature headers on real responses, nothing for other origins, and no
//! CORS headers at all without a configuration.
#![cfg(all(feature = "server", feature = "client"))]

use std::sync::Arc;

use keyline_core::ManualClock;
use keyline_http::server::CorsConfig;
use keyline_http::{PublicOrigin, ServerConfig, ServerTrust, SignedClient, SigningKey, demo_app};

const NOW: u64 = 1_767_225_600;
const APP: &str = "https://app.example";

fn server_key() -> SigningKey {
    SigningKey::ed25519_from_seed(&[1; 32])
}

async fn start(cors: Option<CorsConfig>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    let mut config = ServerConfig::new(PublicOrigin::new(&origin).expect("origin"), server_key())
        .expect("config")
        .with_clock(Arc::new(ManualClock::new(NOW)));
    if let Some(cors) = cors {
        config = config.with_cors(cors);
    }
    let app = demo_app(config);
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

async fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut builder = reqwest::Client::new().request(
        reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
        url,
    );
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.send().await.expect("send")
}

async fn preflight(origin: &str, from: &str) -> reqwest::Response {
    request(
        "OPTIONS",
        &format!("{origin}/echo"),
        &[
            ("Origin", from),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "content-type, content-digest, signature, signature-input",
            ),
        ],
    )
    .await
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii").to_string())
}

fn has_cors_headers(response: &reqwest::Response) -> bool {
    response
        .headers()
        .keys()
        .any(|name| name.as_str().starts_with("access-control-"))
}

fn client() -> SignedClient {
    SignedClient::new(
        SigningKey::ed25519_from_seed(&[2; 32]),
        ServerTrust::Key(server_key().public_key()),
    )
    .expect("client")
    .with_clock(Arc::new(ManualClock::new(NOW)))
}

#[tokio::test]
async fn preflight_is_answered_before_verification() {
    let origin = start(Some(CorsConfig::new([APP]))).await;
    let response = preflight(&origin, APP).await;
    assert_eq!(response.status(), 204, "no credentials needed");
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some(APP)
    );
    let methods = header(&response, "access-control-allow-methods").expect("methods");
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(methods.contains(method), "{methods}");
    }
    let allowed = header(&response, "access-control-allow-headers").expect("headers");
    for name in [
        "content-type",
        "content-digest",
        "signature",
        "signature-input",
        "keyline-seal",
    ] {
        assert!(
            allowed.split(", ").any(|h| h == name),
            "{name} in {allowed}"
        );
    }
    assert_eq!(
        header(&response, "access-control-max-age").as_deref(),
        Some("600")
    );
    assert!(header(&response, "vary").expect("vary").contains("origin"));
    assert!(header(&response, "access-control-allow-credentials").is_none());
    // The preflight answer is signed like every layer response.
    assert!(response.headers().contains_key("signature"));
    assert!(response.bytes().await.expect("body").is_empty());
}

#[tokio::test]
async fn disallowed_origin_gets_no_allow_headers() {
    let origin = start(Some(CorsConfig::new([APP]))).await;
    let response = preflight(&origin, "https://evil.example").await;
    assert_eq!(response.status(), 204);
    assert!(!has_cors_headers(&response), "{:?}", response.headers());
    // A real request from it is still verified as usual, without CORS headers.
    let response = request(
        "GET",
        &format!("{origin}/whoami"),
        &[("Origin", "https://evil.example")],
    )
    .await;
    assert_eq!(response.status(), 401);
    assert!(!has_cors_headers(&response));
}

#[tokio::test]
async fn real_responses_expose_the_signature_headers() {
    let origin = start(Some(CorsConfig::new([APP]).allow_header("x-request-id"))).await;
    let expected = [
        "content-digest",
        "signature",
        "signature-input",
        "date",
        "keyline-seal",
    ];
    // A verified request from the allowed origin.
    let response = client()
        .send(
            "GET",
            &format!("{origin}/whoami"),
            &[("Origin", APP)],
            Vec::new(),
        )
        .await
        .expect("whoami");
    assert_eq!(response.status, 200);
    assert_eq!(
        response
            .headers
            .combined("access-control-allow-origin")
            .as_deref(),
        Some(APP)
    );
    let exposed = response
        .headers
        .combined("access-control-expose-headers")
        .expect("exposed");
    for name in expected {
        assert!(
            exposed.split(", ").any(|h| h == name),
            "{name} in {exposed}"
        );
    }
    assert!(!response.headers.contains("access-control-allow-methods"));
    // The layer's own 401 too (a browser client needs Accept-Signature to retry).
    let response = request("GET", &format!("{origin}/whoami"), &[("Origin", APP)]).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some(APP)
    );
    let exposed = header(&response, "access-control-expose-headers").expect("exposed");
    assert!(exposed.contains("accept-signature"));
    // Extra allowed headers appear in the preflight.
    let response = preflight(&origin, APP).await;
    assert!(
        header(&response, "access-control-allow-headers")
            .expect("headers")
            .contains("x-request-id")
    );
    // An OPTIONS request with credentials is not a preflight: it is verified (and refused).
    let response = request(
        "OPTIONS",
        &format!("{origin}/echo"),
        &[
            ("Origin", APP),
            ("Access-Control-Request-Method", "POST"),
            ("Authorization", "Bearer x"),
        ],
    )
    .await;
    assert_eq!(response.status(), 401);
    // A wildcard allows any origin.
    let any = start(Some(CorsConfig::new(["*"]))).await;
    let response = preflight(&any, "https://anyone.example").await;
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some("*")
    );
}

#[tokio::test]
async fn without_configuration_there_are_no_cors_headers() {
    let origin = start(None).await;
    let response = preflight(&origin, APP).await;
    assert_eq!(response.status(), 401, "an ordinary protected request");
    assert!(!has_cors_headers(&response));
    let response = client()
        .send(
            "GET",
            &format!("{origin}/whoami"),
            &[("Origin", APP)],
            Vec::new(),
        )
        .await
        .expect("whoami");
    assert_eq!(response.status, 200);
    assert!(
        !response
            .headers
            .iter()
            .any(|(name, _)| name.starts_with("access-control-"))
    );
    assert!(!response.headers.contains("vary"));
}
