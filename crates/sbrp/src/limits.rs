//! Every bound of `keyline-sbrp`, with its default and the reason for it.
//!
//! | name | default | meaning |
//! |---|---|---|
//! | [`HEADER_LEN`] | 13 | SBRP frame header |
//! | [`MAX_PAYLOAD`] | 65 536 | largest SBRP payload, sent and accepted |
//! | [`MAX_FRAME`] | 65 549 | largest SBRP frame (one WebSocket message) |
//! | [`MAX_PLAINTEXT`] | 65 508 | largest Data plaintext (payload minus nonce and tag) |
//! | [`MAX_PING_PAYLOAD`] | 8 | Ping/Pong payload |
//! | [`HANDSHAKE_TIMEOUT`] | 30 s | SBRP handshake plus the inner SBP handshake |
//! | [`DEFAULT_REPLAY_WINDOW`] | 128 | receive window per direction (at least [`MIN_REPLAY_WINDOW`]) |
//! | [`MAX_SBP_HANDSHAKE_JSON`] | 8 KiB | the SBP handshake JSON |
//! | [`MAX_SUBJECT_LEN`] | 256 | SBP Message subject |
//! | [`DEFAULT_MAX_CHUNKED_MESSAGE`] | 16 MiB | largest reassembled `keyline.chunk/1` message |
//! | [`MAX_CHUNK_SLICE`] | 65 482 | largest chunk slice a sender emits |
//!
//! The tokio adapter ([`crate::tokio`]) adds the bounds of its queues and waits:
//!
//! | name | default | meaning |
//! |---|---|---|
//! | [`WRITE_TIMEOUT`] | 2 s | one WebSocket write; past it the connection is dead |
//! | [`CONNECT_TIMEOUT`] | 10 s | TCP connect plus WebSocket upgrade |
//! | [`CALL_TIMEOUT`] | 30 s | one RPC call, request to response |
//! | [`QUEUE_TIMEOUT`] | 30 s | waiting for room in a full outbound queue |
//! | [`DAEMON_PING_INTERVAL`] | 45 s | SBRP Ping from the daemon (upstream's interval) |
//! | [`IDLE_TIMEOUT`] | 60 s | nothing received for this long: the relay connection is dead |
//! | [`RECONNECT_INITIAL`] / [`RECONNECT_MAX`] | 1 s / 30 s | daemon reconnect backoff, doubling, ±[`RECONNECT_JITTER_PERCENT`] % |
//! | [`MAX_DAEMON_SESSIONS`] | 64 | sessions (including handshakes) on one daemon connection |
//! | [`SESSION_QUEUE`] | 32 | inbound messages queued per daemon session; full → the session ends (`backpressure`) |
//! | [`ACCEPT_QUEUE`] | 16 | established sessions not yet taken by the application; full → the new session is closed |
//! | [`COMMAND_QUEUE`] | 64 | outbound messages queued for one connection task; full → senders wait up to [`QUEUE_TIMEOUT`] |
//! | [`EVENT_QUEUE`] | 64 | client events not yet read; full → the event is dropped and counted |
//! | [`MAX_PENDING_CALLS`] | 64 | RPC calls in flight per client session; more → `backpressure` error |
//! | [`QUEUED_BYTES`] | 32 MiB | outbound message bytes queued per connection task; senders wait for room |
//! | [`SESSION_QUEUE_BYTES`] | 32 MiB | inbound bytes queued per daemon session (an empty queue always admits one message) |
//! | [`EVENT_QUEUE_BYTES`] | 16 MiB | client event bytes not yet read (same rule) |
//! | [`MAX_WRITE_BUFFER`] | 1 MiB | WebSocket write buffer bound |
//!
//! The issuer client ([`crate::tokio::issuer`]) and the built-in methods
//! ([`crate::tokio::builtins`]):
//!
//! | name | default | meaning |
//! |---|---|---|
//! | [`ISSUER_TIMEOUT`] | 10 s | one issuer request: connect, send, read the whole answer |
//! | [`ISSUER_MAX_RESPONSE`] | 64 KiB | an issuer answer, headers and body |
//! | [`FS_READ_MAX`] | 8 MiB | bytes `$sideband/fs.read` returns to a `keyline.chunk/1` peer |
//! | [`FS_READ_UNCHUNKED`] | 46 080 | bytes `$sideband/fs.read` returns to any other peer (one frame) |
//! | [`FS_LIST_MAX`] | 1000 | entries `$sideband/fs.list` returns (then `hasMore`) |
//! | [`FS_LIST_SCAN_MAX`] | 10 000 | directory entries `$sideband/fs.list` reads at most |
//! | [`FS_MAX_PATH_LEN`] | 4096 | a `path` parameter of the file methods, in bytes |
//! | [`FS_CALL_TIMEOUT`] | 10 s | one file method on the blocking pool; past it the call fails |

use std::time::Duration;

/// SBRP frame header: `type u8 ‖ length u32be ‖ sid u64be`.
pub const HEADER_LEN: usize = 13;

/// Largest SBRP payload. Larger declared lengths are `payload_too_large`.
pub const MAX_PAYLOAD: usize = 65_536;

/// Largest SBRP frame, also the WebSocket message and frame size limit.
pub const MAX_FRAME: usize = HEADER_LEN + MAX_PAYLOAD;

/// Data payload overhead: 12-byte nonce and 16-byte Poly1305 tag.
pub const DATA_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Nonce length: `u32be(direction) ‖ u64be(seq)`.
pub const NONCE_LEN: usize = 12;

/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;

/// Largest Data plaintext: 65 536 − 28.
pub const MAX_PLAINTEXT: usize = MAX_PAYLOAD - DATA_OVERHEAD;

/// Largest Ping/Pong payload (an RTT nonce or timestamp).
pub const MAX_PING_PAYLOAD: usize = 8;

/// HandshakeInit payload: the client's X25519 ephemeral public key.
pub const INIT_PAYLOAD_LEN: usize = 32;

/// HandshakeAccept payload: identity key, daemon ephemeral key, signature.
pub const ACCEPT_PAYLOAD_LEN: usize = 128;

/// Signal payload: `signal u8 ‖ reason u8`.
pub const SIGNAL_PAYLOAD_LEN: usize = 2;

/// Smallest Control payload: the `u16be` code.
pub const MIN_CONTROL_PAYLOAD: usize = 2;

/// The handshake deadline: from WebSocket open (client) or Init (daemon) through the inner SBP
/// handshake. Expiry is `handshake_timeout` (0xE003).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Default replay window per receiving direction (keyline decision; upstream code default).
pub const DEFAULT_REPLAY_WINDOW: usize = 128;

/// Smallest replay window the spec allows.
pub const MIN_REPLAY_WINDOW: usize = 64;

/// Largest SBP handshake JSON accepted or sent.
pub const MAX_SBP_HANDSHAKE_JSON: usize = 8 * 1024;

/// Longest SBP Message subject in bytes (at least 1, no NUL).
pub const MAX_SUBJECT_LEN: usize = 256;

/// Default largest reassembled chunked message (`total` of a chunk run).
pub const DEFAULT_MAX_CHUNKED_MESSAGE: usize = 16 * 1024 * 1024;

/// SBP Chunk frame header: kind, flags, frame id, index, total.
pub const CHUNK_HEADER_LEN: usize = 26;

/// Largest slice a sender puts in one Chunk frame, so that the chunk fits one Data frame.
pub const MAX_CHUNK_SLICE: usize = MAX_PLAINTEXT - CHUNK_HEADER_LEN;

// ----- the tokio adapter ---------------------------------------------------------------------

/// One WebSocket write (spec 8.6: 2 s); a write that takes longer means the connection is dead.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// TCP connect plus the WebSocket upgrade (the relay allows 10 s for the upgrade).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default RPC call timeout (spec 10.1: 30 s); expiry is `Timeout` (code 1103).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait for room in a full outbound queue before a send fails with `Timeout`.
pub const QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

/// Interval of the daemon's SBRP Pings (upstream daemons: 45 s); the relay answers them.
pub const DAEMON_PING_INTERVAL: Duration = Duration::from_secs(45);

/// A relay connection with nothing received for this long is dead (the relay pings every 15 s
/// and answers the daemon's Pings, so a live connection is never this quiet).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// First daemon reconnect delay (spec 6: 1 s doubling to 30 s, ±20 % jitter).
pub const RECONNECT_INITIAL: Duration = Duration::from_secs(1);

/// Largest daemon reconnect delay.
pub const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// Reconnect jitter, in percent either way.
pub const RECONNECT_JITTER_PERCENT: u32 = 20;

/// Sessions (handshaking or established) one daemon connection holds; an Init beyond it is
/// answered with `Signal(close, policy)` before any crypto. The relay's own default cap is 5.
pub const MAX_DAEMON_SESSIONS: usize = 64;

/// Inbound application messages queued per daemon session. A full queue ends that session
/// (`Signal(close, policy)`, [`crate::Error::Backpressure`]) rather than stalling the shared
/// connection. Memory per session is bounded by this times the chunked-message maximum.
pub const SESSION_QUEUE: usize = 32;

/// Established sessions waiting for [`crate::tokio::Daemon::accept`]; a full queue closes
/// the new session with `Signal(close, policy)`.
pub const ACCEPT_QUEUE: usize = 16;

/// Outbound messages queued for one connection task (all sessions of a daemon, or one
/// client session). Senders wait for room, at most [`QUEUE_TIMEOUT`].
pub const COMMAND_QUEUE: usize = 64;

/// Client events (`t: "N"` and non-RPC Messages) not yet read; when full, new events are
/// dropped and counted ([`crate::tokio::ClientSession::events_dropped`]), so an application
/// that ignores events never stalls its RPC responses.
pub const EVENT_QUEUE: usize = 64;

/// RPC calls in flight per client session.
pub const MAX_PENDING_CALLS: usize = 64;

/// Outbound message bytes queued for one connection task (on top of the count bound
/// [`COMMAND_QUEUE`]); a sender waits for room, at most [`QUEUE_TIMEOUT`]. A message larger
/// than the whole budget takes all of it.
pub const QUEUED_BYTES: usize = 32 * 1024 * 1024;

/// Inbound bytes queued per daemon session (on top of [`SESSION_QUEUE`]); past it the session
/// ends with `backpressure`. An empty queue always admits one message (≤ the chunked-message
/// maximum), so the bound is the larger of the two.
pub const SESSION_QUEUE_BYTES: usize = 32 * 1024 * 1024;

/// Client event bytes not yet read (on top of [`EVENT_QUEUE`]); past it events are dropped and
/// counted. An empty queue always admits one event.
pub const EVENT_QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// Bound of the WebSocket write buffer (tungstenite's default is unbounded).
pub const MAX_WRITE_BUFFER: usize = 1024 * 1024;

// ----- the issuer client and the built-in methods --------------------------------------------

/// One issuer request (connect, send, read the whole answer).
pub const ISSUER_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest issuer answer read (status line, headers and body); tokens are ≤ 4 KiB.
pub const ISSUER_MAX_RESPONSE: usize = 64 * 1024;

/// Bytes `$sideband/fs.read` returns to a peer that negotiated `keyline.chunk/1` (spec 11:
/// 8 MiB by default, bounded by the chunked-message maximum once base64-encoded).
pub const FS_READ_MAX: usize = 8 * 1024 * 1024;

/// Bytes `$sideband/fs.read` returns to a peer without `keyline.chunk/1`: the base64 of
/// 46 080 bytes plus the envelope stays under one Data plaintext (spec 11).
pub const FS_READ_UNCHUNKED: usize = 46_080;

/// Entries `$sideband/fs.list` returns; more set `hasMore` (spec 10.2).
pub const FS_LIST_MAX: usize = 1000;

/// Directory entries `$sideband/fs.list` reads before it stops (and sets `hasMore`), so a
/// huge directory costs bounded work and memory.
pub const FS_LIST_SCAN_MAX: usize = 10_000;

/// Longest `path` parameter of the file methods, in bytes.
pub const FS_MAX_PATH_LEN: usize = 4096;

/// One file method (`fs.list`, `fs.read`) on the blocking pool; past it the call is answered
/// with an error (a read stuck on a FIFO or a dead network mount cannot hold a session).
pub const FS_CALL_TIMEOUT: Duration = Duration::from_secs(10);
