//! Shared helpers for the relay's integration tests: a real relay on 127.0.0.1:0 and
//! tokio-tungstenite peers.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use ed25519_dalek::{Signer as _, SigningKey};
use futures_util::{SinkExt as _, StreamExt as _};
use keyline_relay::{Relay, RelayConfig};
use keyline_sbrp::proto::control::ControlCode;
use keyline_sbrp::proto::frame::Frame;
use keyline_sbrp::proto::sid::encode_sid;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const WAIT: Duration = Duration::from_secs(5);

pub struct Server {
    pub relay: Relay,
    pub addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub async fn start(config: RelayConfig) -> Server {
        let relay = Relay::new(config).expect("relay config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = relay.clone();
        let task = tokio::spawn(async move {
            serving
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Server {
            relay,
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(WAIT, task).await;
        }
    }

    /// Registers `daemon_id` with `key` through the issuer's challenge flow.
    pub async fn presence(&self, daemon_id: &str, key: &SigningKey, resumable: bool) -> String {
        let http = reqwest::Client::new();
        let identity_key = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        let resp: Value = http
            .post(self.http("/v1/presence/challenge"))
            .json(&json!({"daemon_id": daemon_id, "identity_key": identity_key}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(resp["expires_in"], 60);
        let challenge = resp["challenge"].as_str().unwrap().to_owned();
        let raw: [u8; 32] = URL_SAFE_NO_PAD
            .decode(&challenge)
            .unwrap()
            .try_into()
            .unwrap();
        let signature = key.sign(&keyline_relay::issuer::presence_message(daemon_id, &raw));
        let resp = http
            .post(self.http("/v1/presence"))
            .json(&json!({
                "daemon_id": daemon_id,
                "identity_key": identity_key,
                "challenge": challenge,
                "signature": URL_SAFE_NO_PAD.encode(signature.to_bytes()),
                "resumable": resumable,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["url"], self.ws_url());
        assert_eq!(body["expires_in"], 3600);
        body["token"].as_str().unwrap().to_owned()
    }

    /// `POST /v1/sessions` with a JSON body; returns (status, body).
    pub async fn sessions(&self, body: Value) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(self.http("/v1/sessions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    /// A client token for `daemon_id` with a chosen sid, signed by the relay's issuer key.
    pub fn client_token(&self, daemon_id: &str, sid: u64, now: u64) -> String {
        self.relay
            .sign_claims(&json!({
                "iss": "keyline-relay",
                "aud": "sideband-relay",
                "iat": now,
                "exp": now + 120,
                "ver": 1,
                "role": "client",
                "sub": "tester",
                "did": daemon_id,
                "sid": encode_sid(sid),
                "scp": ["session:create"],
            }))
            .unwrap()
    }

    /// A daemon presence token signed by the relay's issuer key (no challenge flow).
    pub fn daemon_token(&self, daemon_id: &str, resumable: bool, now: u64) -> String {
        let scp: Vec<&str> = if resumable {
            vec!["session:resume"]
        } else {
            vec![]
        };
        self.relay
            .sign_claims(&json!({
                "iss": "keyline-relay",
                "aud": ["sideband-relay"],
                "iat": now,
                "exp": now + 3600,
                "ver": 1,
                "role": "daemon",
                "sub": daemon_id,
                "did": daemon_id,
                "scp": scp,
            }))
            .unwrap()
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Outcome of a WebSocket connection attempt.
pub enum Connect {
    Upgraded(Box<Ws>),
    Refused(u16, Value),
}

impl Connect {
    pub fn ws(self) -> Ws {
        match self {
            Connect::Upgraded(ws) => *ws,
            Connect::Refused(status, body) => panic!("refused: {status} {body}"),
        }
    }

    pub fn refused(self) -> (u16, Value) {
        match self {
            Connect::Upgraded(_) => panic!("expected a refusal, got an upgrade"),
            Connect::Refused(status, body) => (status, body),
        }
    }
}

/// Connects to `url` with `?token=`.
pub async fn connect_query(url: &str, token: &str) -> Connect {
    connect_request(
        format!("{url}?token={token}")
            .into_client_request()
            .unwrap(),
    )
    .await
}

/// Connects with `Authorization: Bearer`.
pub async fn connect_bearer(url: &str, token: &str) -> Connect {
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    connect_request(request).await
}

pub async fn connect_request(
    request: tokio_tungstenite::tungstenite::handshake::client::Request,
) -> Connect {
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, response)) => {
            assert_eq!(response.status(), 101);
            Connect::Upgraded(Box::new(ws))
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_ref()
                .map(|b| serde_json::from_slice(b).expect("JSON error body"))
                .unwrap_or(Value::Null);
            Connect::Refused(status, body)
        }
        Err(other) => panic!("connect failed: {other}"),
    }
}

pub async fn send(ws: &mut Ws, frame: impl Into<Bytes>) {
    ws.send(Message::Binary(frame.into())).await.unwrap();
}

/// The next binary message (skipping WebSocket pings/pongs), or `None` when the connection
/// closes.
pub async fn recv(ws: &mut Ws) -> Option<Bytes> {
    loop {
        let next = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("recv timed out");
        match next {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
            Some(Ok(Message::Binary(bytes))) => return Some(bytes),
            Some(Ok(Message::Text(t))) => panic!("unexpected text message {t}"),
            Some(Ok(_)) => continue,
        }
    }
}

pub async fn recv_frame(ws: &mut Ws) -> Bytes {
    recv(ws).await.expect("connection closed, expected a frame")
}

/// Decodes a Control frame: (code, sid).
pub fn control_of(frame: &[u8]) -> (u16, u64) {
    match Frame::decode(frame).expect("decodable frame") {
        Frame::Control { sid, code, message } => {
            assert!(message.is_empty(), "relay Control text must be empty");
            (code.to_u16(), sid)
        }
        other => panic!("expected a Control frame, got {other:?}"),
    }
}

pub async fn expect_control(ws: &mut Ws, code: ControlCode, sid: u64) {
    let frame = recv_frame(ws).await;
    assert_eq!(
        control_of(&frame),
        (code.to_u16(), sid),
        "frame {}",
        hex::encode(&frame)
    );
}

pub async fn expect_closed(ws: &mut Ws) {
    if let Some(frame) = recv(ws).await {
        panic!("expected close, got frame {}", hex::encode(&frame));
    }
}

/// A Ping/Pong round trip proves the connection is open and the relay answers.
pub async fn expect_alive(ws: &mut Ws) {
    let ping = Frame::Ping { payload: b"alive!" }.to_vec().unwrap();
    send(ws, ping).await;
    let pong = recv_frame(ws).await;
    assert_eq!(
        pong.as_ref(),
        Frame::Pong { payload: b"alive!" }.to_vec().unwrap()
    );
}

pub fn data_frame(sid: u64, fill: u8, len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| fill ^ (i as u8)).collect();
    Frame::Data {
        sid,
        payload: &payload,
    }
    .to_vec()
    .unwrap()
}

pub fn daemon_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}
