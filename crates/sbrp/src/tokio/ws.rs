//! WebSocket plumbing shared by the daemon and the client: connect with SBRP's size limits,
//! bounded writes, and the mapping of tungstenite outcomes to [`Error`].

use std::time::Duration;

use futures_util::SinkExt as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::{Error, Result};
use crate::limits::{MAX_FRAME, MAX_WRITE_BUFFER};

/// The WebSocket type the adapters drive.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// SBRP's WebSocket limits: message and frame ≤ 65 549 bytes, bounded write buffer.
pub(crate) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME))
        .write_buffer_size(128 * 1024)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
}

/// Opens `url` (ws:// only; the adapter has no TLS yet), with `Authorization: Bearer` when
/// `bearer` is given, within `timeout`.
pub(crate) async fn connect(url: &str, bearer: Option<&str>, timeout: Duration) -> Result<Ws> {
    let mut request = url.into_client_request().map_err(|e| Error::Transport {
        reason: format!("invalid relay URL: {}", redact(&e.to_string())),
    })?;
    if let Some(token) = bearer {
        let header = zeroize::Zeroizing::new(format!("Bearer {token}"));
        let mut value = HeaderValue::from_str(&header).map_err(|_| Error::Transport {
            reason: "presence token is not a valid header value".into(),
        })?;
        value.set_sensitive(true);
        request.headers_mut().insert("authorization", value);
    }
    let connecting = tokio_tungstenite::connect_async_with_config(request, Some(ws_config()), true);
    match tokio::time::timeout(timeout, connecting).await {
        Err(_) => Err(Error::Timeout {
            what: "relay connection",
        }),
        Ok(Err(e)) => Err(map_error(e)),
        Ok(Ok((ws, _response))) => Ok(ws),
    }
}

/// Sends one binary message within `timeout`.
pub(crate) async fn write(ws: &mut Ws, frame: Vec<u8>, timeout: Duration) -> Result<()> {
    match tokio::time::timeout(timeout, ws.send(Message::Binary(frame.into()))).await {
        Err(_) => Err(Error::Timeout {
            what: "WebSocket write",
        }),
        Ok(Err(e)) => Err(map_error(e)),
        Ok(Ok(())) => Ok(()),
    }
}

/// Sends a close frame (best effort, bounded by `timeout`).
pub(crate) async fn close(ws: &mut Ws, timeout: Duration) {
    let _ = tokio::time::timeout(timeout, ws.close(None)).await;
}

/// The error for a received close frame.
pub(crate) fn closed(frame: Option<&tungstenite::protocol::CloseFrame>) -> Error {
    match frame {
        Some(f) => Error::RelayClosed {
            code: Some(u16::from(f.code)),
            reason: f.reason.as_str().chars().take(128).collect(),
        },
        None => Error::RelayClosed {
            code: None,
            reason: String::new(),
        },
    }
}

/// Maps a tungstenite error; HTTP refusals become [`Error::RelayRefused`].
pub(crate) fn map_error(e: tungstenite::Error) -> Error {
    match e {
        tungstenite::Error::Http(response) => {
            let error = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                .and_then(|v| {
                    v.get("error")?
                        .as_str()
                        .map(|s| s.chars().take(64).collect())
                })
                .unwrap_or_default();
            Error::RelayRefused {
                status: response.status().as_u16(),
                error,
            }
        }
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            Error::RelayClosed {
                code: None,
                reason: String::new(),
            }
        }
        other => Error::Transport {
            reason: redact(&other.to_string()),
        },
    }
}

/// Cuts anything after `token=` out of a message (URLs may carry session tokens).
fn redact(text: &str) -> String {
    match text.find("token=") {
        Some(i) => format!("{}token=…", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_tokens() {
        assert_eq!(
            redact("bad url ws://x/?token=abc.def"),
            "bad url ws://x/?token=…"
        );
        assert_eq!(redact("plain"), "plain");
    }
}
