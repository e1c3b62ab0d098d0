//! The issuer client (`keyline_sbrp::tokio::issuer`) against a scripted HTTP/1.1 server: the
//! presence proof verifies, session grants parse, HTTP errors become `IssuerRefused`, and a
//! malformed or oversized answer is an error, never a panic. (Against the real issuer:
//! `crates/keyline/tests/sbrp_cli.rs`.)
#![cfg(feature = "tokio")]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signature;
use keyline_sbrp::Error;
use keyline_sbrp::tokio::issuer::{presence_message, presence_token, session_token};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Reads one request: path and JSON body.
async fn read_request(stream: &mut TcpStream) -> (String, Value) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "client closed early");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(buf[..end].to_vec()).unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
            }
            let path = head.split(' ').nth(1).unwrap().to_owned();
            let body = serde_json::from_slice(&buf[end + 4..end + 4 + length]).unwrap();
            return (path, body);
        }
    }
}

/// Serves `answer(path, body)` (raw HTTP bytes) on every connection.
async fn server<F>(answer: F) -> String
where
    F: Fn(&str, &Value) -> Vec<u8> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let answer = std::sync::Arc::new(answer);
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let answer = answer.clone();
            tokio::spawn(async move {
                let (path, body) = read_request(&mut stream).await;
                let _ = stream.write_all(&answer(&path, &body)).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

fn json_answer(status: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const CHALLENGE: [u8; 32] = [9u8; 32];

#[tokio::test]
async fn presence_proof_verifies_and_the_token_comes_back() {
    let url = server(|path, body| match path {
        "/v1/presence/challenge" => {
            assert_eq!(body["daemon_id"], "d_issuer");
            json_answer(
                "200 OK",
                &json!({"challenge": URL_SAFE_NO_PAD.encode(CHALLENGE), "expires_in": 60}),
            )
        }
        "/v1/presence" => {
            let key: [u8; 32] = URL_SAFE_NO_PAD
                .decode(body["identity_key"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            let sig = URL_SAFE_NO_PAD
                .decode(body["signature"].as_str().unwrap())
                .unwrap();
            let key = ed25519_dalek::VerifyingKey::from_bytes(&key).unwrap();
            let sig = Signature::from_slice(&sig).unwrap();
            let ok = key
                .verify_strict(&presence_message("d_issuer", &CHALLENGE), &sig)
                .is_ok();
            assert_eq!(body["resumable"], false);
            if ok {
                json_answer(
                    "200 OK",
                    &json!({"token": "t.o.k", "url": "ws://relay/", "expires_in": 3600}),
                )
            } else {
                json_answer("401 Unauthorized", &json!({"error": "bad_signature"}))
            }
        }
        _ => json_answer("404 Not Found", &json!({"error": "not_found"})),
    })
    .await;
    let seed = [5u8; 32];
    let grant = presence_token(&url, "d_issuer", &seed).await.unwrap();
    assert_eq!(grant.token.as_str(), "t.o.k");
    assert_eq!(grant.url, "ws://relay/");
    assert_eq!(grant.expires_in, 3600);
    assert!(
        !format!("{grant:?}").contains("t.o.k"),
        "tokens never in Debug"
    );
}

#[tokio::test]
async fn sessions_errors_and_bad_answers() {
    let url = server(|_, body| match body["daemon_id"].as_str().unwrap() {
        "ok" => {
            // Chunked transfer encoding.
            let body = json!({"token": "a.b.c", "sid": "AAALOnPOL_I", "url": "ws://r/"}).to_string();
            let (x, y) = body.split_at(10);
            format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{x}\r\n{:x}\r\n{y}\r\n0\r\n\r\n",
                x.len(),
                y.len()
            )
            .into_bytes()
        }
        "offline" => json_answer(
            "404 Not Found",
            &json!({"error": "daemon_offline", "message": "not connected\u{7}"}),
        ),
        "garbage" => b"garbage".to_vec(),
        "huge" => {
            let mut v = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
            v.resize(200 * 1024, b'x');
            v
        }
        _ => json_answer("200 OK", &json!({"unexpected": true})),
    })
    .await;
    let grant = session_token(&url, "ok").await.unwrap();
    assert_eq!(grant.sid, "AAALOnPOL_I");
    assert_eq!(grant.connect_url().as_str(), "ws://r/?token=a.b.c");
    assert!(!format!("{grant:?}").contains("a.b.c"));

    match session_token(&url, "offline").await.unwrap_err() {
        Error::IssuerRefused {
            status,
            error,
            message,
        } => {
            assert_eq!((status, error.as_str()), (404, "daemon_offline"));
            assert_eq!(message, "not connected", "control characters dropped");
        }
        other => panic!("{other:?}"),
    }
    for id in ["garbage", "huge", "shape"] {
        let err = session_token(&url, id).await.unwrap_err();
        assert!(matches!(err, Error::Transport { .. }), "{id}: {err:?}");
    }
    // Nobody listening.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let err = session_token(&format!("http://{addr}"), "ok")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    // TLS is refused up front.
    let err = session_token("https://relay.example", "ok")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidParameter { .. }), "{err:?}");
}
