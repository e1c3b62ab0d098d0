//! A local Nostr relay for the bunker (feature `embedded-relay`; spec §3.6): `keyline signer
//! serve` with no relay configured starts one on loopback so a client on the same machine can
//! reach the bunker.
//!
//! It is rust-nostr's `nostr-relay-builder` 0.44.1 [`LocalRelay`] with tighter limits:
//! at most [`EMBEDDED_MAX_CONNECTIONS`] connections, [`EMBEDDED_NOTES_PER_MINUTE`] events per
//! connection and minute, and events whose `content` exceeds [`limits::MAX_REQUEST_CONTENT`]
//! refused. Ephemeral events (kind 24133 among them) are not stored and are forwarded to the
//! live subscriptions that match. It verifies ids and signatures of published events itself.
//!
//! keyline accepts the TCP connections itself (TCP_NODELAY on, at most
//! [`EMBEDDED_MAX_CONNECTIONS`] upgrades in progress, 10 s and 8 KiB for the upgrade request)
//! and hands upgraded streams to the library. Caveats of the library (0.44.1): a connection
//! that sends a message it cannot parse as a NIP-01 client message is closed; WebSocket message
//! size is tungstenite's default (64 MiB) and cannot be configured.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nostr_relay_builder::builder::{PolicyResult, RateLimit, WritePolicy};
use nostr_relay_builder::prelude::{BoxedFuture, Event};
use nostr_relay_builder::{LocalRelay, RelayBuilder};

use crate::error::{Error, Result};
use crate::limits;

/// Most simultaneous WebSocket connections the embedded relay serves: 256.
pub const EMBEDDED_MAX_CONNECTIONS: usize = 256;

/// Events one connection may publish per minute: 60 000 (the bunker's own connection carries
/// every reply, and `keyline bench bunker` drives hundreds per second; the library's default
/// of 60 would throttle it). The relay listens on loopback only.
pub const EMBEDDED_NOTES_PER_MINUTE: u32 = 60_000;

/// Most active subscriptions per connection: 64.
pub const EMBEDDED_MAX_REQS: usize = 64;

/// How long [`EmbeddedRelay::start`] retries binding a fixed port that is still held by a
/// relay being shut down: 2 s.
const BIND_RETRY: Duration = Duration::from_secs(2);

/// A running embedded relay. Dropping it (and every clone of the inner relay) shuts it down.
#[derive(Debug)]
pub struct EmbeddedRelay {
    relay: LocalRelay,
    addr: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
}

/// Refuses events whose `content` is longer than a NIP-46 request may be.
#[derive(Debug)]
struct ContentLimit;

impl WritePolicy for ContentLimit {
    fn admit_event<'a>(
        &'a self,
        event: &'a Event,
        _addr: &'a SocketAddr,
    ) -> BoxedFuture<'a, PolicyResult> {
        Box::pin(async move {
            if event.content.len() > limits::MAX_REQUEST_CONTENT {
                PolicyResult::Reject("invalid: content too large".to_owned())
            } else {
                PolicyResult::Accept
            }
        })
    }
}

impl EmbeddedRelay {
    /// Starts a relay listening on `addr` (use `127.0.0.1:0` for loopback on a free port).
    /// A fixed port still held by a relay that is shutting down is retried for up to 2 s.
    pub async fn start(addr: SocketAddr) -> Result<EmbeddedRelay> {
        let started = Instant::now();
        let listener = loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(err) if started.elapsed() >= BIND_RETRY => {
                    tracing::warn!(%addr, error = %err, "embedded relay cannot listen");
                    return Err(Error::RelayUnavailable {
                        relay: format!("ws://{addr}"),
                        reason: "the embedded relay cannot listen on this address",
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let addr = listener.local_addr().map_err(|_| Error::RelayUnavailable {
            relay: format!("ws://{addr}"),
            reason: "the embedded relay cannot listen on this address",
        })?;
        let relay = LocalRelay::new(
            RelayBuilder::default()
                .addr(addr.ip())
                .port(addr.port())
                .max_connections(EMBEDDED_MAX_CONNECTIONS)
                .rate_limit(RateLimit {
                    max_reqs: EMBEDDED_MAX_REQS,
                    notes_per_minute: EMBEDDED_NOTES_PER_MINUTE,
                })
                .write_policy(ContentLimit),
        );
        // Our own accept loop: the library's does not set TCP_NODELAY, and Nagle's algorithm
        // holding the relay's second small write (the reply after an `OK`) until the client's
        // delayed ACK costs 40 ms per NIP-46 round trip.
        let accept = tokio::spawn(accept_loop(listener, relay.clone()));
        tracing::debug!(%addr, "embedded relay listening");
        Ok(EmbeddedRelay {
            relay,
            addr,
            accept,
        })
    }

    /// The relay's URL, `ws://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening (the port refuses connections at once) and closes the open ones.
    pub async fn shutdown(&self) {
        self.accept.abort();
        self.relay.shutdown();
        let started = Instant::now();
        while started.elapsed() < BIND_RETRY {
            match tokio::net::TcpStream::connect(self.addr).await {
                Err(_) => return,
                Ok(stream) => {
                    drop(stream);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

impl Drop for EmbeddedRelay {
    fn drop(&mut self) {
        self.accept.abort();
        self.relay.shutdown();
    }
}

/// Accepts connections, upgrades them to WebSocket (bounded, with a deadline) and hands them to
/// the relay.
async fn accept_loop(listener: tokio::net::TcpListener, relay: LocalRelay) {
    let upgrades = std::sync::Arc::new(tokio::sync::Semaphore::new(EMBEDDED_MAX_CONNECTIONS));
    loop {
        let Ok((mut stream, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Ok(permit) = std::sync::Arc::clone(&upgrades).try_acquire_owned() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let relay = relay.clone();
        tokio::spawn(async move {
            let upgraded = tokio::time::timeout(UPGRADE_TIMEOUT, upgrade(&mut stream)).await;
            drop(permit);
            if matches!(upgraded, Ok(Ok(())))
                && let Err(err) = relay.take_connection(stream, peer).await
            {
                tracing::debug!(%peer, error = %err, "embedded relay connection ended");
            }
        });
    }
}

/// How long a client has to complete the WebSocket upgrade.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest upgrade request read.
const MAX_UPGRADE_REQUEST: usize = 8 * 1024;

/// The server side of the WebSocket opening handshake (RFC 6455 §4.2): reads the request
/// headers (at most [`MAX_UPGRADE_REQUEST`] bytes), answers `101` with the accept key, or
/// `400` and an error.
async fn upgrade(stream: &mut tokio::net::TcpStream) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not a WebSocket upgrade");
    let mut request = Vec::with_capacity(1024);
    let mut byte = [0u8; 1];
    // Byte by byte: nothing after the headers may be consumed (the client waits for 101).
    while !request.ends_with(b"\r\n\r\n") {
        if request.len() >= MAX_UPGRADE_REQUEST || stream.read(&mut byte).await? == 0 {
            return Err(bad());
        }
        request.push(byte[0]);
    }
    let text = std::str::from_utf8(&request).map_err(|_| bad())?;
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let header = |name: &str| {
        text.split("\r\n").skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    };
    let upgrade_ok = header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = header("sec-websocket-key");
    match (first.starts_with("GET ") && upgrade_ok, key) {
        (true, Some(key)) => {
            let accept =
                tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {accept}\r\n\r\n"
            );
            stream.write_all(response.as_bytes()).await
        }
        _ => {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                )
                .await;
            Err(bad())
        }
    }
}
