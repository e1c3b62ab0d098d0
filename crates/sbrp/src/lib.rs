//! # keyline-sbrp: SBRP v1, the Sideband Relay Protocol (sans-IO core)
//!
//! End-to-end encrypted sessions between clients and daemons through an untrusted relay,
//! byte-compatible with `@sideband/secure-relay` (spec: `shared/specs/sbrp.md`). A daemon
//! keeps one WebSocket to a relay; a client opens a session to it by daemon id; the relay
//! routes 13-byte-header frames it cannot read.
//!
//! The protocol core ([`proto`]) has no sockets, no runtime and no clock: bytes and `now` go
//! in, bytes, errors and deadlines come out. The tokio/WebSocket adapter (module `tokio`,
//! feature `tokio`, on by default) drives it: a daemon on one relay connection and a client
//! with RPC calls. The relay server builds on the core too.
//!
//! | layer | module |
//! |---|---|
//! | SBRP frames (13-byte big-endian header) | [`proto::frame`] |
//! | Control codes (relay → endpoint) | [`proto::control`] |
//! | handshake: X25519 + Ed25519 + HKDF-SHA256 | [`proto::handshake`] |
//! | session: ChaCha20-Poly1305, replay window | [`proto::session`] |
//! | identity fingerprints and trust policy | [`proto::trust`], [`pins`] |
//! | SBP inner frames, handshake, chunking | [`proto::sbp`] |
//! | RPC / event envelope | [`proto::rpc`] |
//! | relay frame validation | [`proto::relay`] |
//! | relay pairing state machine | [`proto::pairing`] |
//! | token sid encoding | [`proto::sid`] |
//! | daemon and client over WebSocket (feature `tokio`) | `tokio` |
//!
//! ## Example: a handshake and one Data frame, in memory
//!
//! ```
//! use std::time::Instant;
//! use keyline_core::Policy;
//! use keyline_sbrp::EphemeralKey;
//! use keyline_sbrp::proto::{ClientHandshake, DaemonIdentity, Frame, SessionConfig, trust};
//!
//! # fn main() -> keyline_sbrp::Result<()> {
//! let now = Instant::now();
//! let config = SessionConfig::default();
//! let daemon = DaemonIdentity::new("d_xyz", &[7u8; 32])?;
//!
//! // Client: Init with the sid from its session token.
//! let client = ClientHandshake::new("d_xyz", 12345678901234, EphemeralKey::generate()?, now, config)?;
//! let init = client.init_frame();
//!
//! // Daemon: answer the Init.
//! let Frame::HandshakeInit { sid, client_ephemeral } = Frame::decode(&init)? else {
//!     unreachable!()
//! };
//! let (accept, mut daemon_session) = daemon.accept(sid, &client_ephemeral, EphemeralKey::generate()?, now, &config)?;
//! let accept_frame = DaemonIdentity::accept_frame(sid, &accept)?;
//!
//! // Client: trust decision (no pin yet, tofu), verify, derive; pin only after this.
//! let accept = client.handle_frame(&Frame::decode(&accept_frame)?)?.expect("the Accept");
//! trust::decide(Policy::Tofu, "d_xyz", None, &accept.identity_key)?;
//! let mut client_session = client.finish(&accept, &accept.identity_key, now)?;
//!
//! // One Data frame each way.
//! let frame = client_session.seal_to_vec(b"hello daemon")?;
//! assert_eq!(daemon_session.open_frame(&Frame::decode(&frame)?)?, b"hello daemon");
//! let frame = daemon_session.seal_to_vec(b"hello client")?;
//! assert_eq!(client_session.open_frame(&Frame::decode(&frame)?)?, b"hello client");
//! # Ok(()) }
//! ```
//!
//! ## Driving it (what an adapter does)
//!
//! - **Client**: generate an [`EphemeralKey`], build a [`proto::ClientHandshake`] when the
//!   WebSocket opens, send [`proto::ClientHandshake::init_frame`], feed every received
//!   message through [`proto::Frame::decode`] and [`proto::ClientHandshake::handle_frame`]
//!   until it yields the Accept, then [`pins::finish_with_pins`] (or [`proto::trust::decide`]
//!   and [`proto::ClientHandshake::finish`] yourself). Arm a timer at
//!   [`proto::Session::handshake_deadline`] and call [`proto::Session::handle_timeout`];
//!   disarm with [`proto::Session::handshake_complete`] when [`proto::sbp::SbpEndpoint`]
//!   reports the peer's SBP handshake.
//! - **Daemon**: on an Init for a new sid, [`proto::DaemonIdentity::accept`]; send the
//!   Accept, then the SBP handshake. On `decrypt_failed` or `handshake_timeout` send
//!   `Signal(close, error)` for that sid ([`proto::Frame::Signal`]) and drop the session.
//! - **Relay**: [`proto::relay::validate`] for every message, [`proto::pairing::Pairing`]
//!   per sid, [`proto::pairing::admit_client`] before the upgrade.
//!
//! ## Threat model
//!
//! - **The relay and the network are untrusted.** They see frame headers, sids, handshake
//!   public material, Data sizes and timing, and the cleartext nonce (direction and
//!   sequence number); they can drop, delay, replay, reorder and forge frames. They never
//!   see plaintext or traffic keys. Forged or altered Data frames fail the Poly1305 tag
//!   (`decrypt_failed`, the session ends); replays and too-old frames are dropped
//!   (`sequence_error`, the session continues); a forged frame never moves the replay
//!   window (check → open → commit).
//! - **The daemon is authenticated by its Ed25519 identity key**, pinned by the client on
//!   first use (`tofu`), at a prompt, or in advance (`strict`). A changed key is a hard
//!   `identity_key_changed` error showing both fingerprints; nothing here re-pins silently.
//!   Signatures are checked with `verify_strict`; all-zero X25519 results (low-order keys)
//!   are refused on both sides.
//! - **The client is not authenticated by SBRP** (it has no long-term key); the relay's
//!   session tokens decide who may open sessions.
//! - **Peer input never panics and never allocates without bound**: frames are at most
//!   65 549 bytes, SBP handshakes 8 KiB, chunked messages 16 MiB by default (checked before
//!   allocating). Keys are zeroized when a session ends and never appear in `Debug`.
//! - Out of scope: traffic analysis, denial of service by the relay, forward secrecy
//!   against a compromised daemon identity key *before* a session (sessions use fresh
//!   ephemerals, so recorded traffic stays safe if the identity key leaks later).
//!
//! ## Defaults
//!
//! See [`limits`]: payload 65 536 (frame 65 549), plaintext 65 508 per Data frame,
//! Ping/Pong ≤ 8 bytes, handshake deadline 30 s (through the inner SBP handshake), replay
//! window 128 (configurable, ≥ 64, a multiple of 64 because it is
//! `keyline_core::ReplayWindow`), chunked messages ≤ 16 MiB, chunk slices ≤ 65 482.
//!
//! ## Large payloads
//!
//! No SBRP-level fragmentation: a Message larger than one Data frame is split in SBP by the
//! `keyline.chunk/1` rule documented in [`proto::sbp`] and reassembled by a bounded
//! [`proto::sbp::Reassembler`].
//!
//! ## Non-features
//!
//! - No sockets, WebSockets, timers or tasks in [`proto`]: the `tokio` adapter drives the
//!   state machines. The adapter speaks `ws://` only for now (no TLS; `wss://` later).
//! - No token (JWT) validation: that is the relay's (spec 8.2).
//! - No client resumption: a new client connection is a new token, sid and handshake.
//! - No re-keying inside a session: exhausting the 64-bit counter ends the session.
//! - The older 96-byte HandshakeAccept is refused.
//!
//! ## Security status
//!
//! Not audited. Tested against every vector in `shared/vectors/sbrp/` except the JWT cases
//! (relay crate), with property tests and fuzz entry points for every decoder.
#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod error;
pub mod keys;
pub mod limits;
pub mod pins;
pub mod proto;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use error::{Error, ErrorKind, Result, SbpCode};
pub use keys::EphemeralKey;
