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

/// Deadline for the `Hello`/`HelloAck` exchange after the SHS handshake of a node link.
pub const LINK_HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Deadline for a coordinator's TCP connect plus SHS handshake to a node.
pub const LINK_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A node closes a link on which nothing arrived for this long (coordinators ping every
/// [`LINK_PING_INTERVAL`]).
pub const NODE_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// How often a coordinator pings an idle node link.
pub const LINK_PING_INTERVAL: Duration = Duration::from_secs(30);

/// Longest wait between a coordinator's reconnection attempts to a node (doubling from
/// 100 ms).
pub const LINK_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Most coordinator connections a node serves at once.
pub const NODE_MAX_LINKS: usize = 64;

/// Most key ceremonies a node runs at once.
pub const NODE_CEREMONIES: usize = 8;

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

// ----- persistence and key protection (spec §9, §10; `store`, `envelope`) -------------------

/// Longest plaintext a sealed blob may carry: 4 KiB.
///
/// Sealed plaintexts are a FROST `KeyPackage` (136 bytes for the `-tr` suite) or a 32-byte
/// transport secret; 4 KiB leaves room for future objects and keeps a blob read from the
/// database small before it is parsed.
pub const MAX_SEALED_PLAINTEXT: usize = 4096;

/// Longest KEK id in a sealed blob header: 64 bytes (spec §10.1, `kek_id_len` ≤ 64).
pub const MAX_KEK_ID_LEN: usize = 64;

/// Longest key id bound into a sealed blob's AAD: 64 bytes. keyline's key ids are 16 bytes.
pub const MAX_SEALED_KEY_ID_LEN: usize = 64;

/// Longest sealed blob accepted: [`MAX_SEALED_PLAINTEXT`] plus the largest header (magic 4,
/// version 1, provider 1, id length 1, [`MAX_KEK_ID_LEN`]), the 12-byte IV and the 16-byte tag.
pub const MAX_SEALED_BLOB: usize = MAX_SEALED_PLAINTEXT + 4 + 1 + 1 + 1 + MAX_KEK_ID_LEN + 12 + 16;

/// Longest public ceremony message the store records: [`MAX_NODE_FRAME`] (it arrived in one
/// frame).
pub const MAX_CEREMONY_MESSAGE: usize = MAX_NODE_FRAME;

/// Longest node descriptor, address or label the store accepts: [`MAX_DESCRIPTOR`] bytes.
pub const MAX_NODE_FIELD: usize = MAX_DESCRIPTOR;

/// Longest text field of an audit record (actor, action, method, decision, error code…):
/// 256 bytes. The audit log keeps identifiers and decisions, never content (spec §12.7).
pub const MAX_AUDIT_FIELD: usize = 256;

/// Audit records returned by one `Store::audit_list` call unless fewer are asked for: 100.
pub const AUDIT_PAGE_SIZE: usize = 100;

/// Most audit records one `Store::audit_list` call returns: 1000, so one query cannot pull
/// the whole log into memory.
pub const MAX_AUDIT_PAGE: usize = 1000;

/// How long the store waits for another connection's or process's database lock: 5 s
/// (spec §9, `busy_timeout`).
pub const STORE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a store call waits for a pooled connection: 10 s.
pub const STORE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections the store keeps to its SQLite file: 4 (one writer at a time in SQLite; readers
/// proceed in parallel under WAL).
pub const STORE_MAX_CONNECTIONS: u32 = 4;

/// Longest PKCS#11 user PIN read from an environment variable or a PIN file: 256 bytes.
/// Tokens accept far shorter PINs; the bound only keeps a wrong file from being read whole.
pub const MAX_PIN_LEN: usize = 256;

// ----- Nostr encryption and NIP-46 messages (spec §3–§5; `nip44`, `nip04`, `nip46`) ---------

/// Longest `content` of a kind 24133 request event: 256 KiB of base64 (spec §3.1 rule 1).
/// Checked before any decryption; a longer request is dropped unread.
pub const MAX_REQUEST_CONTENT: usize = 256 * 1024;

/// Longest NIP-44 payload [`crate::nip44::decrypt`] accepts: 1 MiB of base64 (spec §4), checked
/// before base64 decoding. NIP-44 itself allows up to 2³² − 1 plaintext bytes since the 2026
/// amendment; [`crate::nip44::decrypt_with_limit`] takes another bound where one is needed.
pub const MAX_NIP44_PAYLOAD: usize = 1024 * 1024;

/// Longest NIP-04 content [`crate::nip04::decrypt`] accepts: 1 MiB of text, checked before
/// base64 decoding.
pub const MAX_NIP04_PAYLOAD: usize = 1024 * 1024;

/// Longest plaintext [`crate::nip04::encrypt`] takes: 512 KiB, so its output (base64 of the
/// padded ciphertext plus the IV) stays below [`MAX_NIP04_PAYLOAD`].
pub const MAX_NIP04_PLAINTEXT: usize = 512 * 1024;

/// Longest decrypted NIP-46 message (request or response JSON): 256 KiB. A request that fits
/// in [`MAX_REQUEST_CONTENT`] of base64 is smaller; responses carry at most a signed event of
/// [`MAX_UNSIGNED_EVENT`] plus its id, key and signature, or a NIP-44 payload.
pub const MAX_NIP46_MESSAGE: usize = 256 * 1024 + 1024;

/// Longest NIP-46 request `id`: 64 characters (spec §3.1 rule 6).
pub const MAX_NIP46_ID_LEN: usize = 64;

/// Longest NIP-46 `method` name kept: 64 bytes. Real method names are under 16; a longer one
/// is refused as an invalid request rather than echoed back.
pub const MAX_NIP46_METHOD_LEN: usize = 64;

/// Most `params` of one NIP-46 request: 16. The widest standard method (`connect`) has four.
pub const MAX_NIP46_PARAMS: usize = 16;

/// Longest `bunker://` or `nostrconnect://` URI parsed: 8 KiB.
pub const MAX_URI_LEN: usize = 8 * 1024;

/// Most relays of one URI or connection: 8 (spec §3.6).
pub const MAX_URI_RELAYS: usize = 8;

/// Longest relay URL (after percent-decoding): 512 bytes.
pub const MAX_RELAY_URL_LEN: usize = 512;

/// Longest connect secret: 128 bytes. keyline mints 32 hex characters.
pub const MAX_CONNECT_SECRET_LEN: usize = 128;

/// Longest permission list (`perms` of a URI, `connect` param 2): 1024 bytes, at most
/// [`MAX_PERMS`] entries.
pub const MAX_PERMS_LEN: usize = 1024;

/// Most entries of a permission list: 64.
pub const MAX_PERMS: usize = 64;

/// Longest client name (URI `name`, `connect` metadata): 64 characters (spec §3.3).
pub const MAX_CLIENT_NAME: usize = 64;

/// Longest client `url` or `image` (URI, `connect` metadata): 512 bytes (spec §3.3).
pub const MAX_CLIENT_URL: usize = 512;

/// Longest `connect` client-metadata JSON or legacy `metadata=` URI parameter: 4 KiB.
pub const MAX_CLIENT_METADATA: usize = 4 * 1024;

// ----- bunker relay pool (spec §3.1, §3.6; `bunker::pool`) ------------------------------------

/// The pool subscribes with `since = now − 60 s` (after a reconnect: the newest event seen on
/// that relay − 60 s), spec §3.6. Duplicate suppression makes the overlap harmless.
pub const BUNKER_SUBSCRIBE_LOOKBACK: Duration = Duration::from_secs(60);

/// Freshness window of an inbound request: `created_at` within ±10 minutes of now (spec §3.1
/// rule 3). Older requests are stale after a reconnect; newer ones come from a wrong clock.
pub const BUNKER_EVENT_MAX_SKEW: Duration = Duration::from_secs(600);

/// Longest relay text message the pool parses: 320 KiB. A request event carries at most
/// [`MAX_REQUEST_CONTENT`] of content plus its id, key, signature and a few tags; a longer
/// message is dropped before it is parsed.
pub const BUNKER_MAX_RELAY_MESSAGE: usize = 320 * 1024;

/// Largest WebSocket message or frame the pool's connections accept at all: 1 MiB. A relay
/// sending more is cut off (and reconnected after backoff); between
/// [`BUNKER_MAX_RELAY_MESSAGE`] and this, a message is dropped and counted.
pub const BUNKER_MAX_WS_MESSAGE: usize = 1024 * 1024;

/// Longest event the pool publishes: 256 KiB of JSON (spec §3.6: larger events are not
/// published; relays commonly refuse them).
pub const BUNKER_MAX_PUBLISH_EVENT: usize = 256 * 1024;

/// First reconnection delay to a relay: 0.5 s, doubling up to [`BUNKER_RECONNECT_MAX`]
/// (spec §3.6).
pub const BUNKER_RECONNECT_MIN: Duration = Duration::from_millis(500);

/// Longest reconnection delay to a relay: 30 s (spec §3.6).
pub const BUNKER_RECONNECT_MAX: Duration = Duration::from_secs(30);

/// Jitter applied to every reconnection delay: ±20 % (spec §3.6), so a restarted relay is not
/// hit by every bunker at the same instant.
pub const BUNKER_RECONNECT_JITTER_PERCENT: u32 = 20;

/// A relay connection that lasted this long resets the reconnection delay to
/// [`BUNKER_RECONNECT_MIN`]: 30 s.
pub const BUNKER_STABLE_CONNECTION: Duration = Duration::from_secs(30);

/// Deadline for the TCP connect plus WebSocket handshake to a relay: 10 s.
pub const BUNKER_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Deadline for one write to a relay connection: 10 s; a relay that does not read is dropped.
pub const BUNKER_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `publish` waits for the relay's `OK`: 5 s (spec §3.6).
pub const BUNKER_PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// The pool sends a WebSocket ping after this long without any frame from a relay: 30 s.
pub const BUNKER_PING_INTERVAL: Duration = Duration::from_secs(30);

/// The pool drops a relay connection after this long without any frame (not even the pong to
/// its ping): 75 s.
pub const BUNKER_IDLE_TIMEOUT: Duration = Duration::from_secs(75);

/// Capacity of the pool's inbound channel to the engine: 256 events. When it is full the
/// newest event is dropped and counted (the client retries); the channel never grows.
pub const BUNKER_INBOUND_QUEUE: usize = 256;

/// Event ids the pool remembers for duplicate suppression: 16 384 (about 1 MiB), each for at
/// most twice [`BUNKER_EVENT_MAX_SKEW`] (after that the freshness check drops a replay anyway).
pub const BUNKER_DEDUPE_CAPACITY: usize = 16 * 1024;

/// Publish commands queued for one relay connection: 64.
pub const BUNKER_PUBLISH_QUEUE: usize = 64;

/// Requests one client may send per minute before decryption stops (spec §3.1 step 4).
pub const CLIENT_REQUESTS_PER_MINUTE: u32 = 600;
/// Clients the per-client rate table tracks at once; beyond it, unknown clients wait for the
/// next minute.
pub const BUNKER_RATE_CLIENTS: usize = 4096;
/// How long a `(client, request id)` pair is remembered for duplicate suppression (spec §3.6).
pub const BUNKER_REQUEST_DEDUPE_WINDOW: Duration = Duration::from_secs(600);
/// How long an `ask` waits for the operator by default (spec §3.5).
pub const BUNKER_APPROVAL_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest approval deadline that may be configured.
pub const BUNKER_MAX_APPROVAL_TIMEOUT: Duration = Duration::from_secs(600);
/// Pending approvals one client may hold (spec §3.5).
pub const BUNKER_PENDING_APPROVALS_PER_CLIENT: usize = 5;
/// Requests the bunker works on at once; more wait in the relay pool's queue.
pub const BUNKER_WORKERS: usize = 64;
/// Approvals pending at once over every client: half of [`BUNKER_WORKERS`], so requests
/// waiting for the operator never take every worker.
pub const BUNKER_MAX_PENDING_APPROVALS: usize = BUNKER_WORKERS / 2;
