//! Every bound the engine enforces, with its default and the reason for it.
//!
//! | name | default | meaning |
//! |---|---|---|
//! | [`MIN_THRESHOLD`] | 2 | smallest threshold t of a key |
//! | [`MAX_SHARES`] | 32 | most shares n of a key, and the largest participant identifier |
//! | [`MAX_MESSAGE_LEN`] | 1024 bytes | longest message a signing package may carry |
//! | [`MAX_ENCODED_LEN`] | 16 KiB | longest encoded engine object accepted by any `deserialize` |
//! | [`MAX_NODE_FRAME`] | 1 MiB | longest coordinator ↔ node frame ([`crate::wire`]) |
//! | [`NODE_INFLIGHT`] | 64 | requests in flight on one connection |
//! | [`MAX_UNSIGNED_EVENT`] | 256 KiB | unsigned event carried in a request context |
//! | [`MAX_ERROR_TEXT`] | 256 bytes | text of a wire `Error` |
//! | [`MAX_DESCRIPTOR`] | 1 KiB | node descriptor carried in `Hello` |
//! | [`SIGN_SPARES`] | 1 | nodes asked in round 1 beyond t |
//! | [`SIGN_ROUND1_TIMEOUT`], [`SIGN_ROUND2_TIMEOUT`] | 1.5 s each | per-round signing deadlines |
//! | [`SIGN_TIMEOUT`] | 8 s | a whole signing session, all attempts |
//! | [`NODE_SESSION_TIMEOUT`] | 10 s | how long a node keeps nonces |
//! | [`NODE_SIGN_SESSIONS`] | 1024 | live nonce sessions one node holds |
//! | [`SIGN_IDEMPOTENCY`] | 60 s | how long a node remembers a share it sent |
//! | [`ECDH_ATTEMPT_TIMEOUT`], [`ECDH_TIMEOUT`] | 1.5 s, 5 s | ECDH deadlines |
//! | [`CEREMONY_ROUND_TIMEOUT`], [`CEREMONY_TIMEOUT`] | 30 s, 120 s | DKG/refresh deadlines |
//!
//! Each engine bound is driven to its edge and one step past it by `tests/limits.rs`.

use std::time::Duration;

/// Smallest threshold t: 2.
///
/// FROST needs at least two signers (`min_signers ≥ 2`); a 1-of-n key would put the whole
/// secret on every node, which is what keyline-signer exists to avoid.
pub const MIN_THRESHOLD: u16 = 2;

/// Most shares n of one key, and therefore the largest [`crate::ParticipantId`]: 32.
///
/// Every node takes part in every DKG and refresh ceremony, whose work and messages grow with
/// n² (each node seals a round-2 package to each other node), and a public key package grows by
/// one verifying share per node. Real deployments are a handful of machines; 32 leaves ample room
/// while keeping every per-key structure small and every ceremony short.
pub const MAX_SHARES: u16 = 32;

/// Longest message a [`crate::sign::SigningPackage`] may carry: 1024 bytes.
///
/// Nostr signs 32-byte event ids (and `raw_sign` a 32-byte hash); BIP340 allows any length, so
/// short non-hash messages stay possible, but a signing package travels to every signer and a
/// message that is not a hash has no business being large.
pub const MAX_MESSAGE_LEN: usize = 1024;

/// Longest encoded object any `deserialize` of this crate accepts: 16 KiB (16 384 bytes).
///
/// The largest legitimate objects are a [`crate::NodeShare`] or a signing package with
/// [`MAX_SHARES`] participants and a [`MAX_MESSAGE_LEN`] message, each below 6 KiB. Longer
/// input is refused before it is parsed.
pub const MAX_ENCODED_LEN: usize = 16 * 1024;

/// Longest coordinator ↔ node frame after its length field: 1 MiB (spec §8.3).
///
/// The largest legitimate frame is a `SignCommitReq` with a [`MAX_UNSIGNED_EVENT`] event, or a
/// ceremony message with [`MAX_SHARES`] packages of at most [`MAX_ENCODED_LEN`] each; both fit.
pub const MAX_NODE_FRAME: usize = 1024 * 1024;

/// Requests in flight on one coordinator ↔ node connection: 64. Bounds the memory a peer can
/// pin with unanswered requests; the transport layer enforces it.
pub const NODE_INFLIGHT: usize = 64;

/// Longest unsigned event in a request context: 256 KiB (spec §8.3). Nostr relays commonly
/// refuse larger events.
pub const MAX_UNSIGNED_EVENT: usize = 256 * 1024;

/// Longest text of a wire `Error`: 256 bytes. A short human hint, never secrets.
pub const MAX_ERROR_TEXT: usize = 256;

/// Longest node descriptor in `Hello`: 1 KiB. A descriptor is a node id, an HPKE key, a
/// timestamp and a signature (about 140 bytes).
pub const MAX_DESCRIPTOR: usize = 1024;

/// Nodes asked for commitments beyond t: 1 (spec §8.5), so one slow node costs no round trip.
pub const SIGN_SPARES: usize = 1;

/// Deadline for signing round 1 (commitments): 1.5 s (spec §8.5).
pub const SIGN_ROUND1_TIMEOUT: Duration = Duration::from_millis(1500);

/// Deadline for signing round 2 (shares): 1.5 s (spec §8.5).
pub const SIGN_ROUND2_TIMEOUT: Duration = Duration::from_millis(1500);

/// Deadline for a whole signing session including failover attempts: 8 s, well inside the
/// 30–60 s NIP-46 clients wait (spec §8.5).
pub const SIGN_TIMEOUT: Duration = Duration::from_secs(8);

/// Longest a node keeps the nonces of one session: 10 s (spec §8.4), whatever the coordinator
/// asks for.
pub const NODE_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Live nonce sessions one node holds at once: 1024. Beyond that a node answers `busy`, so a
/// coordinator cannot make it grow memory without bound.
pub const NODE_SIGN_SESSIONS: usize = 1024;

/// How long a node remembers `(session, package hash) → share` to answer a repeated identical
/// request and refuse a different one: 60 s (spec §8.4).
pub const SIGN_IDEMPOTENCY: Duration = Duration::from_secs(60);

/// Deadline for one ECDH attempt: 1.5 s (spec §8.6).
pub const ECDH_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);

/// Deadline for a whole ECDH session: 5 s (spec §8.6).
pub const ECDH_TIMEOUT: Duration = Duration::from_secs(5);

/// Deadline for each DKG/refresh ceremony round: 30 s (spec §8.7).
pub const CEREMONY_ROUND_TIMEOUT: Duration = Duration::from_secs(30);

/// Deadline for a whole DKG/refresh ceremony: 120 s (spec §8.7).
pub const CEREMONY_TIMEOUT: Duration = Duration::from_secs(120);
