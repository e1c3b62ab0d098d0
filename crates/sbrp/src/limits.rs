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
