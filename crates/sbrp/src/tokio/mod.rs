//! # The tokio adapter: a daemon and a client over WebSocket
//!
//! A thin driver around the sans-IO core in [`crate::proto`] (feature `tokio`, on by
//! default), using `tokio-tungstenite`.
//!
//! - [`Daemon`] keeps **one** outbound WebSocket to a relay (presence token as
//!   `Authorization: Bearer`), demultiplexes frames by sid, answers every new Init with the
//!   daemon side of the handshake (a repeated Init for a live sid is ignored), runs the inner
//!   SBP handshake and yields established sessions from [`Daemon::accept`] as
//!   [`DaemonSession`]s. On `decrypt_failed`, a fatal SBP error or the handshake deadline it
//!   sends `Signal(close, error)` for that sid and keeps serving the others. When the relay
//!   connection drops it reconnects with backoff (1 s doubling to 30 s, ±20 %); sessions do
//!   not survive a reconnect (no `session:resume`: state is in memory only, and the relay
//!   expires the pairings).
//! - [`Client`] opens one WebSocket per session from a relay URL carrying the session token,
//!   performs the handshake, applies the trust policy through the pin store
//!   ([`crate::pins::finish_with_pins`]) or an explicit key ([`Trust`]), and returns a
//!   [`ClientSession`] with [`ClientSession::call`] (RPC with cid matching and a timeout),
//!   [`ClientSession::notify`], [`ClientSession::next_event`] and [`ClientSession::close`].
//! - [`issuer`] gets tokens from keyline's issuer (presence for daemons, sessions for
//!   clients) over plain HTTP/1.1; [`builtins`] serves the `$sideband/` methods of spec
//!   10.2 (info, rpc.list, echo, read-only fs.list/fs.read confined to one directory) and
//!   application methods from one registry.
//! - Messages larger than one Data frame (65 508 bytes) are chunked by `keyline.chunk/1`
//!   both ways (requests and results up to 16 MiB by default).
//! - SBRP Pings are answered with Pongs; the daemon sends its own every 45 s and treats 60 s
//!   of silence as a dead connection. Relay Control codes: `rate_limited` is informational;
//!   on a daemon connection a code with a sid ends that one session, any other code with
//!   sid 0 ends the connection (then reconnect); on a client, `session_paused` /
//!   `session_pending` hold outbound Data until `session_resumed`, and every terminal or
//!   unknown code ends the session as [`Error::Relay`]. A WebSocket close from the relay is
//!   [`Error::RelayClosed`] with its close code, an HTTP refusal of the upgrade
//!   [`Error::RelayRefused`] with its status.
//!
//! ## Queues and deadlines
//!
//! Every queue is bounded, in messages and in bytes, with an explicit policy, and every wait
//! has a deadline; the table is in [`crate::limits`]. In short: one outbound queue per
//! connection task (64 messages, 32 MiB), where senders wait up to 30 s for room
//! (backpressure); one inbound queue per daemon session (32 messages, 32 MiB), which ends
//! only that session when its consumer falls behind (`Signal(close, policy)` and
//! [`Error::Backpressure`]) instead of stalling the shared connection; an accept queue that
//! closes new sessions when the application does not take them; a client event queue that
//! drops (and counts) events it cannot hold, so responses are never stuck behind unread
//! events. Writes time out after 2 s, connects after 10 s, the handshake (through the inner
//! SBP handshake) after 30 s, calls after 30 s.
//!
//! ## Example: a daemon serving `echo`, a client calling it
//!
//! ```no_run
//! use keyline_core::{PinStore, Policy};
//! use keyline_sbrp::proto::DaemonIdentity;
//! use keyline_sbrp::tokio::{Client, Daemon, DaemonConfig, RpcError, Trust};
//! use serde_json::json;
//!
//! # async fn run() -> keyline_sbrp::Result<()> {
//! // Daemon: identity seed from its key file, presence token from the issuer.
//! let identity = DaemonIdentity::new("d_example", &[7u8; 32])?;
//! let config = DaemonConfig::new("ws://127.0.0.1:8787/");
//! let mut daemon = Daemon::connect(identity, "<presence token>", config).await?;
//! tokio::spawn(async move {
//!     while let Some(session) = daemon.accept().await {
//!         tokio::spawn(session.serve(|method, params| match method {
//!             "echo" => Ok(params.unwrap_or_default()),
//!             other => Err(RpcError::unsupported_method(other)),
//!         }));
//!     }
//! });
//!
//! // Client: the URL and token come from the issuer's `POST /v1/sessions`.
//! let pins = PinStore::open_in_memory().await.map_err(keyline_sbrp::Error::Pins)?;
//! let trust = Trust::Pins { store: &pins, policy: Policy::Tofu, prompt: None };
//! let session = Client::default()
//!     .connect("ws://127.0.0.1:8787/?token=<session token>", "d_example", trust)
//!     .await?;
//! let result = session.call("echo", Some(json!({"hello": "daemon"}))).await?;
//! assert_eq!(result, json!({"hello": "daemon"}));
//! session.close().await;
//! # Ok(()) }
//! ```
//!
//! ## Non-features (for now)
//!
//! - **No TLS**: `ws://` only, for loopback and relays behind a TLS-terminating proxy;
//!   `wss://` needs a rustls feature of tokio-tungstenite and comes later.
//! - No session resumption (`Signal(ready)`): a relay reconnect ends every session.
//! - No handshake rate limiter in front of the daemon's X25519/Ed25519 work beyond the
//!   session cap (the relay's per-daemon session cap and rate limit apply first).
//! - The pin prompt ([`keyline_core::Prompt`]) runs synchronously inside the handshake; an
//!   interactive prompt counts against the handshake deadline only up to the pin check.

pub mod builtins;
mod channel;
mod client;
mod daemon;
pub mod issuer;
mod ws;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

pub use client::{Client, ClientConfig, ClientSession, Trust, sid_from_url};
pub use daemon::{Daemon, DaemonConfig, DaemonSession, DaemonStatus, Incoming, Request, backoff};

use crate::error::{Error, Result, SbpCode};
use crate::proto::rpc::{Cid, Envelope};

/// An RPC error a handler returns (sent as `t: "E"`; the session continues).
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The code: 1101 unknown method, 2000 handler failure, or an application code.
    pub code: i64,
    /// The message (never a filesystem path).
    pub message: String,
    /// Extra data.
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// 2000 ApplicationError: the handler failed.
    pub fn application(message: impl Into<String>) -> Self {
        Self::new(SbpCode::ApplicationError.to_u16().into(), message)
    }

    /// 1101 UnsupportedMethod.
    pub fn unsupported_method(method: &str) -> Self {
        let shown: String = method.chars().take(64).collect();
        Self::new(
            SbpCode::UnsupportedMethod.to_u16().into(),
            format!("unknown method {shown}"),
        )
    }

    /// The same error with `data`.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub(crate) fn into_envelope(self, cid: Cid) -> Envelope {
        Envelope::Error {
            cid,
            code: self.code,
            message: self.message,
            data: self.data,
        }
    }
}

/// Why a session ended, set once by the task that owns it and read by every handle.
#[derive(Debug, Default)]
pub(crate) struct EndSlot(Mutex<Option<Error>>);

impl EndSlot {
    /// Records `error` unless a reason is already recorded.
    pub(crate) fn set(&self, error: Error) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(error);
        }
    }

    /// A copy of the reason, if the session ended.
    pub(crate) fn get(&self) -> Option<Error> {
        let slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref().map(Error::duplicate)
    }
}

/// Bytes held by a bounded queue, shared by its producer and consumer.
#[derive(Debug, Default)]
pub(crate) struct ByteGauge(AtomicUsize);

impl ByteGauge {
    /// Reserves `n` bytes if the queue is empty or stays within `cap`.
    pub(crate) fn try_add(&self, n: usize, cap: usize) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held == 0 || held.saturating_add(n) <= cap).then_some(held.saturating_add(n))
            })
            .is_ok()
    }

    /// Releases `n` bytes.
    pub(crate) fn sub(&self, n: usize) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                Some(held.saturating_sub(n))
            });
    }
}

/// Waits (at most `timeout`) for `size` bytes of an outbound budget: the permit travels with
/// the queued message and is released once the connection task wrote it.
pub(crate) async fn reserve(
    budget: &std::sync::Arc<tokio::sync::Semaphore>,
    size: usize,
    total: usize,
    timeout: Duration,
    what: &'static str,
) -> Result<tokio::sync::OwnedSemaphorePermit> {
    let n = u32::try_from(size.clamp(1, total.max(1))).unwrap_or(u32::MAX);
    match tokio::time::timeout(timeout, budget.clone().acquire_many_owned(n)).await {
        Err(_) => Err(Error::Timeout { what }),
        Ok(Err(_)) => Err(Error::SessionClosed),
        Ok(Ok(permit)) => Ok(permit),
    }
}

/// An event or a non-RPC message: what a client session gets besides RPC responses, and
/// what a daemon session gets besides requests.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Notification {
    /// An event (`t: "N"`).
    Event {
        /// `e`.
        name: String,
        /// `d`.
        data: Option<Value>,
    },
    /// A Message with a non-RPC subject (`app/…`).
    Message {
        /// Subject.
        subject: String,
        /// Data.
        data: Vec<u8>,
    },
}
