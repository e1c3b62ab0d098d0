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
//! Caveats of the library (0.44.1): a connection that sends a message it cannot parse as a
//! NIP-01 client message is closed; WebSocket message size is tungstenite's default (64 MiB)
//! and cannot be configured; `shutdown` wakes only tasks waiting at that moment.

use std::net::{SocketAddr, TcpListener};
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
        loop {
            let addr = if addr.port() == 0 {
                free_port(addr)?
            } else {
                addr
            };
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
            match relay.run().await {
                Ok(()) => {
                    tracing::debug!(%addr, "embedded relay listening");
                    return Ok(EmbeddedRelay { relay, addr });
                }
                Err(err) => {
                    if started.elapsed() >= BIND_RETRY {
                        tracing::warn!(%addr, error = %err, "embedded relay cannot listen");
                        return Err(Error::RelayUnavailable {
                            relay: format!("ws://{addr}"),
                            reason: "the embedded relay cannot listen on this address",
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// The relay's URL, `ws://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening and closes the open connections, then waits (at most 2 s) until the
    /// port refuses connections, so a new relay can start on it.
    pub async fn shutdown(&self) {
        self.relay.shutdown();
        let started = Instant::now();
        while started.elapsed() < BIND_RETRY {
            match tokio::net::TcpStream::connect(self.addr).await {
                Err(_) => return,
                Ok(stream) => {
                    drop(stream);
                    self.relay.shutdown();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

/// A free port on `addr`'s interface (bound and released; the relay binds it right after).
fn free_port(addr: SocketAddr) -> Result<SocketAddr> {
    let listener = TcpListener::bind(addr).map_err(|_| Error::RelayUnavailable {
        relay: format!("ws://{addr}"),
        reason: "the embedded relay cannot listen on this address",
    })?;
    listener.local_addr().map_err(|_| Error::RelayUnavailable {
        relay: format!("ws://{addr}"),
        reason: "the embedded relay cannot listen on this address",
    })
}
