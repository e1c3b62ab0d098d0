//! A client of keyline's token issuer (spec 8.3): presence tokens for daemons, session
//! tokens for clients.
//!
//! The issuer is a few JSON endpoints on the relay's HTTP port (`keyline-relay` mounts
//! them next to the WebSocket endpoint). This module speaks just enough HTTP/1.1 for them
//! over a tokio `TcpStream` — one `POST` per connection, `Connection: close`, the whole
//! exchange under [`crate::limits::ISSUER_TIMEOUT`] and the answer capped at
//! [`crate::limits::ISSUER_MAX_RESPONSE`] — so this crate needs no HTTP client dependency.
//!
//! - [`presence_token`]: `POST /v1/presence/challenge {"daemon_id", "identity_key"}`, then
//!   `POST /v1/presence` with the Ed25519 signature of the daemon's identity key over
//!   `"keyline-relay-presence-v1" ‖ 0x00 ‖ daemon_id ‖ 0x00 ‖ challenge` (the 32 raw bytes);
//!   keys, challenges and signatures are unpadded base64url.
//! - [`session_token`]: `POST /v1/sessions {"daemon_id"}` → token, sid and the relay URL;
//!   [`SessionGrant::connect_url`] is what [`crate::tokio::Client::connect`] takes.
//!
//! An HTTP error from the issuer is [`Error::IssuerRefused`] with the status and the JSON
//! `error` code (`daemon_not_found`, `daemon_offline`, `identity_mismatch`, …).
//!
//! ## Non-features
//!
//! - `http://` only (and `ws://`, read as the same host's `http://`): no TLS yet, like the
//!   rest of the adapter. Put the issuer on loopback or behind a TLS-terminating proxy.
//! - No allow-listed sessions (`client_key` proofs): sessions are the open kind.
//! - No redirects, no keep-alive, no proxies.
//!
//! Tokens are held in [`Zeroizing`] strings, never logged and never shown in `Debug`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::limits::{ISSUER_MAX_RESPONSE, ISSUER_TIMEOUT};

/// Context string of the daemon presence proof (spec 8.3).
pub const PRESENCE_CONTEXT: &[u8] = b"keyline-relay-presence-v1";

/// The message a daemon signs to prove its identity key:
/// `"keyline-relay-presence-v1" ‖ 0x00 ‖ daemon_id ‖ 0x00 ‖ challenge`.
pub fn presence_message(daemon_id: &str, challenge: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PRESENCE_CONTEXT.len() + daemon_id.len() + 34);
    out.extend_from_slice(PRESENCE_CONTEXT);
    out.push(0);
    out.extend_from_slice(daemon_id.as_bytes());
    out.push(0);
    out.extend_from_slice(challenge);
    out
}

/// A presence token for a daemon.
pub struct PresenceGrant {
    /// The JWT (pass it to [`crate::tokio::Daemon::connect`]).
    pub token: Zeroizing<String>,
    /// The relay's WebSocket URL.
    pub url: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

impl fmt::Debug for PresenceGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresenceGrant")
            .field("token", &"<redacted>")
            .field("url", &self.url)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// A session token for a client.
pub struct SessionGrant {
    /// The JWT.
    pub token: Zeroizing<String>,
    /// The session id, unpadded base64url.
    pub sid: String,
    /// The relay's WebSocket URL (without the token).
    pub url: String,
}

impl SessionGrant {
    /// The relay URL with `token=` appended: what [`crate::tokio::Client::connect`] takes.
    /// Secret: do not log it.
    pub fn connect_url(&self) -> Zeroizing<String> {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        Zeroizing::new(format!("{}{sep}token={}", self.url, self.token.as_str()))
    }
}

impl fmt::Debug for SessionGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionGrant")
            .field("token", &"<redacted>")
            .field("sid", &self.sid)
            .field("url", &self.url)
            .finish()
    }
}

/// The issuer's base URL, from `http://host:port[/prefix]` or the relay's
/// `ws://host:port[/prefix]`: returns `http://host:port[/prefix]` without a trailing slash,
/// query or fragment. `https://` and `wss://` are refused (no TLS yet).
pub fn issuer_base(url: &str) -> Result<String> {
    let url = url.trim();
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if let Some(rest) = url.strip_prefix("ws://") {
        rest
    } else if url.starts_with("https://") || url.starts_with("wss://") {
        return Err(Error::param(
            "issuer URL",
            "https:// and wss:// are not supported yet (no TLS); use http:// on loopback or behind a TLS proxy",
        ));
    } else {
        return Err(Error::param(
            "issuer URL",
            "expected http://HOST:PORT or ws://HOST:PORT",
        ));
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.starts_with('/') {
        return Err(Error::param("issuer URL", "no host"));
    }
    if rest.contains('@') {
        return Err(Error::param(
            "issuer URL",
            "credentials in URLs are refused",
        ));
    }
    Ok(format!("http://{rest}"))
}

#[derive(Deserialize)]
struct ChallengeAnswer {
    challenge: String,
}

#[derive(Deserialize)]
struct PresenceAnswer {
    token: String,
    url: String,
    #[serde(default)]
    expires_in: u64,
}

#[derive(Deserialize)]
struct SessionAnswer {
    token: String,
    sid: String,
    url: String,
}

/// Gets a presence token for `daemon_id` from the issuer at `issuer` (see [`issuer_base`]),
/// proving the Ed25519 identity key whose 32-byte `seed` is given (the same seed as the
/// daemon's [`crate::proto::DaemonIdentity`]). The first proof registers the key for the id;
/// another key later is [`Error::IssuerRefused`] 409 `identity_mismatch`.
pub async fn presence_token(
    issuer: &str,
    daemon_id: &str,
    seed: &[u8; 32],
) -> Result<PresenceGrant> {
    let base = issuer_base(issuer)?;
    let key = SigningKey::from_bytes(seed);
    let identity_key = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
    let answer = post_json(
        &base,
        "/v1/presence/challenge",
        &json!({"daemon_id": daemon_id, "identity_key": identity_key}),
    )
    .await?;
    let answer: ChallengeAnswer = parse(&answer)?;
    let challenge: [u8; 32] = URL_SAFE_NO_PAD
        .decode(answer.challenge.as_bytes())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad_answer("the challenge is not 32 bytes of base64url"))?;
    let signature = key.sign(&presence_message(daemon_id, &challenge));
    let answer = post_json(
        &base,
        "/v1/presence",
        &json!({
            "daemon_id": daemon_id,
            "identity_key": identity_key,
            "challenge": answer.challenge,
            "signature": URL_SAFE_NO_PAD.encode(signature.to_bytes()),
            "resumable": false,
        }),
    )
    .await?;
    let answer: PresenceAnswer = parse(&answer)?;
    Ok(PresenceGrant {
        token: Zeroizing::new(answer.token),
        url: answer.url,
        expires_in: answer.expires_in,
    })
}

/// Gets a client session token for `daemon_id` (`POST /v1/sessions`). A daemon the issuer
/// does not know, or that is not connected, is [`Error::IssuerRefused`] 404
/// `daemon_not_found` / `daemon_offline`.
pub async fn session_token(issuer: &str, daemon_id: &str) -> Result<SessionGrant> {
    let base = issuer_base(issuer)?;
    let answer = post_json(&base, "/v1/sessions", &json!({"daemon_id": daemon_id})).await?;
    let answer: SessionAnswer = parse(&answer)?;
    Ok(SessionGrant {
        token: Zeroizing::new(answer.token),
        sid: answer.sid,
        url: answer.url,
    })
}

fn bad_answer(reason: impl Into<String>) -> Error {
    Error::Transport {
        reason: format!("issuer answer: {}", reason.into()),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|_| bad_answer("not the expected JSON object"))
}

/// Printable, shortened text from the peer (no control characters).
fn clean(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// `POST base+path` with a JSON body; returns the body of a 2xx answer (zeroized on drop).
async fn post_json(base: &str, path: &str, body: &Value) -> Result<Zeroizing<Vec<u8>>> {
    let exchange = async {
        let rest = base.strip_prefix("http://").unwrap_or(base);
        let (authority, prefix) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let has_port = if authority.starts_with('[') {
            authority.contains("]:")
        } else {
            authority.contains(':')
        };
        let target = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let mut stream =
            TcpStream::connect(target.as_str())
                .await
                .map_err(|e| Error::Transport {
                    reason: format!("cannot reach the issuer: {e}"),
                })?;
        let body = body.to_string();
        let request = format!(
            "POST {prefix}{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
             Accept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| Error::Transport {
                reason: format!("issuer request: {e}"),
            })?;
        let mut raw = Zeroizing::new(Vec::with_capacity(4096));
        let mut limited = (&mut stream).take(ISSUER_MAX_RESPONSE as u64 + 1);
        limited
            .read_to_end(&mut raw)
            .await
            .map_err(|e| Error::Transport {
                reason: format!("issuer answer: {e}"),
            })?;
        if raw.len() > ISSUER_MAX_RESPONSE {
            return Err(bad_answer("too large"));
        }
        Ok(raw)
    };
    let raw = match tokio::time::timeout(ISSUER_TIMEOUT, exchange).await {
        Err(_) => {
            return Err(Error::Timeout {
                what: "the token issuer",
            });
        }
        Ok(r) => r?,
    };
    let (status, body) = parse_response(&raw)?;
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let detail: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let field = |name: &str, max| clean(detail[name].as_str().unwrap_or_default(), max);
    Err(Error::IssuerRefused {
        status,
        error: field("error", 64),
        message: field("message", 200),
    })
}

/// Splits an HTTP/1.1 answer into its status and body (Content-Length, chunked, or up to
/// the end of the stream).
fn parse_response(raw: &[u8]) -> Result<(u16, Zeroizing<Vec<u8>>)> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad_answer("no complete HTTP header"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad_answer("header is not UTF-8"))?;
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| bad_answer("bad status line"))?;
    if !version.starts_with("HTTP/1.") {
        return Err(bad_answer("not HTTP/1.x"));
    }
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| bad_answer("bad Content-Length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        Zeroizing::new(
            rest.get(..n)
                .ok_or_else(|| bad_answer("body shorter than Content-Length"))?
                .to_vec(),
        )
    } else {
        Zeroizing::new(rest.to_vec())
    };
    Ok((status, body))
}

fn dechunk(mut rest: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(rest.len()));
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad_answer("bad chunk"))?;
        let size_text = std::str::from_utf8(&rest[..eol]).map_err(|_| bad_answer("bad chunk"))?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| bad_answer("bad chunk size"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest
            .get(..size)
            .ok_or_else(|| bad_answer("truncated chunk"))?;
        out.extend_from_slice(chunk);
        rest = rest
            .get(size + 2..)
            .ok_or_else(|| bad_answer("truncated chunk"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            issuer_base("ws://127.0.0.1:7070/").unwrap(),
            "http://127.0.0.1:7070"
        );
        assert_eq!(
            issuer_base("http://h:1/x/?token=secret").unwrap(),
            "http://h:1/x"
        );
        assert!(issuer_base("wss://h/").is_err());
        assert!(issuer_base("ftp://h/").is_err());
        assert!(issuer_base("http:///x").is_err());
        assert!(issuer_base("http://u:p@h/").is_err());
    }

    #[test]
    fn responses() {
        let (s, b) =
            parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}trailing").unwrap();
        assert_eq!((s, b.as_slice()), (200, &b"{}"[..]));
        let (s, b) = parse_response(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n3\r\n\":1\r\n1\r\n}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((s, b.as_slice()), (404, &b"{\"a\":1}"[..]));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{}").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nffff\r\nab")
                .is_err()
        );
    }

    #[test]
    fn presence_message_layout() {
        let m = presence_message("d", &[7u8; 32]);
        assert_eq!(&m[..25], b"keyline-relay-presence-v1");
        assert_eq!(m[25], 0);
        assert_eq!(m[26], b'd');
        assert_eq!(m[27], 0);
        assert_eq!(&m[28..], &[7u8; 32]);
    }
}
