//! `keyline-relay`: the SBRP v1 relay server (spec `sbrp.md` sections 6–8, 12–13) and its
//! token issuer.
//!
//! Daemons keep one WebSocket to the relay; clients open one WebSocket per session; the relay
//! pairs them by daemon id and session id (sid) and forwards the SBRP frames it cannot read.
//!
//! ```no_run
//! # async fn run() -> keyline_relay::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let config = keyline_relay::RelayConfig::default();
//! keyline_relay::serve(listener, config, std::future::pending()).await
//! # }
//! ```
//!
//! # Manual
//!
//! ## Endpoints (spec 8.1)
//!
//! | path | what |
//! |---|---|
//! | `GET /` + WebSocket upgrade | the relay; token in `Authorization: Bearer` or `?token=`; validated **before** the upgrade (401 JSON otherwise) |
//! | `GET /healthz` | `{"status":"ok"}` |
//! | `GET /metrics` | Prometheus text (spec 8.8) |
//! | `GET /.well-known/jwks.json` | the issuer's keys (`OKP`/`Ed25519`, `kid`, `alg` `EdDSA`, `use` `sig`) |
//! | `POST /v1/presence/challenge`, `POST /v1/presence` | daemon presence tokens ([`issuer`]) |
//! | `POST /v1/sessions/challenge`, `POST /v1/sessions` | client session tokens ([`issuer`]) |
//!
//! HTTP errors are `{"error": "<code>", "message": "<text>"}`: 401 `unauthorized` (any
//! token failure), 409 `sid_in_use`, 429 `too_many_sessions` / `too_many_connections`, and
//! for the issuer 400 `bad_request`, 401 `invalid_challenge` / `bad_signature` /
//! `client_key_required`, 403 `forbidden`, 404 `daemon_not_found` / `daemon_offline`, 409
//! `identity_mismatch`, 429 `too_many_requests`.
//!
//! ## Issuer contract
//!
//! * Daemon: `POST /v1/presence/challenge {"daemon_id", "identity_key"}` →
//!   `{"challenge", "expires_in": 60}`; then `POST /v1/presence {"daemon_id", "identity_key",
//!   "challenge", "signature", "resumable"}` → `{"token", "url", "expires_in"}`. The signature
//!   is Ed25519 by the identity key over [`issuer::presence_message`]:
//!   `"keyline-relay-presence-v1" ‖ 0x00 ‖ daemon_id ‖ 0x00 ‖ challenge` where `challenge` is
//!   the 32 **raw** bytes. Keys, challenges and signatures are unpadded base64url. The first
//!   proof registers `daemon_id → identity_key`; another key later is 409
//!   `identity_mismatch` until [`Relay::reset_identity`].
//! * Client: `POST /v1/sessions {"daemon_id"}` → `{"token", "sid", "url"}` (TTL 120 s, a
//!   fresh random non-zero sid, `sub` `anonymous`). When the daemon has an allow-list
//!   ([`RelayConfig::allow_lists`], [`Relay::set_allow_list`]) the body must also carry
//!   `client_key`, `challenge` (from `POST /v1/sessions/challenge {"daemon_id",
//!   "client_key"}`) and `signature` over [`issuer::session_message`]; `sub` becomes
//!   `ck_<base64url client_key>`. Unknown daemon → 404 `daemon_not_found`; known but not
//!   connected → 404 `daemon_offline`.
//! * Keys: one Ed25519 key signs; [`Relay::rotate_keys`] makes a new one current and keeps
//!   the previous one published and accepted; a third is dropped.
//!
//! ## Structure
//!
//! | module | what |
//! |---|---|
//! | [`token`] | sans-IO token validation (spec 8.2), time as input |
//! | [`issuer`] | sans-IO issuer: keys, JWKS, challenges, presence and session tokens (8.3) |
//! | [`pairing`] | sans-IO per-daemon core: connections, admission, routing (8.4–8.7); each pairing is `keyline_sbrp::proto::pairing::Pairing`, every message goes through `keyline_sbrp::proto::relay::validate` |
//! | [`limits`] | every bound, with its default |
//! | [`metrics`] | counters, Prometheus text (8.8) |
//! | `server` | the thin tokio/axum adapter: [`Relay`], [`RelayConfig`], [`serve`] |
//!
//! Per connection the adapter runs one reader (validation, routing, read-side pacing,
//! keepalive deadline) and one writer task (bounded queue, 2 s per write, WebSocket Pings).
//! Each daemon id's core sits behind its own mutex (the "actor per daemon id" of 8.4 as a
//! lock rather than a task): a frame is validated, routed and queued on the destination's
//! bounded queue under that lock, so per-daemon ordering holds without a cross-task hop.
//!
//! ## Defaults and limits
//!
//! See [`limits`]: payload 65 536 (message 65 549), 100 frames/s with a burst of 200 (paced,
//! never dropped), send queue 128 frames / 4 MiB (then `backpressure` and close), write
//! timeout 2 s, keepalive Ping every 15 s (close after 2 silent intervals), 5 sessions per
//! daemon, 10 000 connections, grace period 30 s, tokens ≤ 4096 bytes, skew 30 s, client TTL
//! ≤ 300 s (warned above 120), issued client TTL 120 s, presence TTL 1 h, 10 s from TCP
//! accept to the first HTTP response (the upgrade). After a terminal Control the relay
//! sends a WebSocket Close and reads (discarding) until the peer's Close, at most the write
//! timeout, so the Control is not lost to a TCP reset.
//!
//! ## Threat model: what the relay sees and can do
//!
//! The relay is **untrusted for confidentiality and integrity** of sessions: Data payloads
//! are ChaCha20-Poly1305 ciphertext under keys it never holds, and clients verify the daemon's
//! identity signature against a pinned key. It sees token claims (daemon id, principal, sid,
//! scopes), client IP and timing, every frame header (type, length, sid), the handshake's
//! public material (ephemeral keys, the daemon identity key, the signature), Data sizes and
//! timing and the cleartext nonce (direction and sequence number), and Signal codes.
//!
//! A malicious or compromised relay can drop, delay, reorder or replay frames (endpoints
//! detect replays and forgeries; drops and delays surface as timeouts), refuse service,
//! correlate sessions by timing and size, and learn who talks to which daemon. It cannot read
//! or forge session data, and cannot impersonate a pinned daemon. The issuer can mint tokens
//! for any daemon id it registered, so whoever holds its signing key can connect clients
//! (they still face the daemon's end-to-end handshake) or register as a daemon that has not
//! yet registered (first proof wins; clients' pins catch a later key change).
//!
//! What this relay does to protect itself: tokens are checked before the upgrade; every
//! frame is validated in the order of spec section 7 before anything is forwarded; every
//! per-peer state has a bound ([`limits`]); queries with tokens are never logged; Control
//! frames never carry identifiers.
//!
//! ## Non-features
//!
//! * No payload inspection, no reassembly, no coalescing: frames are forwarded byte for byte.
//! * No `jti` tracking; token expiry after connecting never disconnects anyone (spec 13).
//! * No fetching of remote JWKS: extra issuers' keys are configured statically
//!   ([`RelayConfig::trusted_jwks`]).
//! * No TLS: put a TLS terminator in front for `wss://`.
//! * No persistence: registrations, allow-lists changed at runtime and pairings live in
//!   memory.
//! * No multi-node state: one relay process owns its daemons.
//!
//! ## Security status
//!
//! Not audited. Tested against the spec's vectors (`jwt.cases` through the pre-upgrade check,
//! `relay_validation` through the real server over WebSockets), a real keyline-sbrp session
//! through the relay (no 8-byte plaintext window visible), the pairing rows over sockets,
//! 1000 concurrent sessions, one test per limit, and property tests that the core never
//! panics and only forwards the exact bytes of frames that passed validation. No fuzz target
//! of its own yet (the validator and frame decoder are fuzzed through keyline-sbrp).
#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod error;
pub mod issuer;
pub mod limits;
mod listener;
pub mod metrics;
pub mod pairing;
mod server;
pub mod token;

pub use error::{Error, IssuerError, Result, TokenError};
pub use issuer::{DaemonStatus, Issuer};
pub use limits::Limits;
pub use metrics::Metrics;
pub use server::{Relay, RelayConfig, serve};
pub use token::{KeySet, RelayClaims, TokenPolicy, TokenRole, ValidToken, validate_token};
