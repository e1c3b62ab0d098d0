//! Every bound of `keyline-http`, with its default and the reason for it
//! (`shared/specs/http.md` B.3, B.6, B.7, B.13).
//!
//! | name | default | on excess |
//! |---|---|---|
//! | [`MAX_SIGNATURE_FIELD_BYTES`] | 8 KiB | 400 |
//! | [`MAX_DICTIONARY_MEMBERS`] | 8 labels | 400 |
//! | [`MAX_COVERED_COMPONENTS`] | 32 | 400 |
//! | [`MAX_NIP98_ENCODED_BYTES`] | 8 KiB | 400 |
//! | [`DEFAULT_MAX_BODY_BYTES`] | 1 MiB | 413 |
//! | [`DEFAULT_MAX_AGE`] | 60 s | 401 |
//! | [`DEFAULT_MAX_FUTURE`] | 30 s | 401 |
//! | [`MAX_SIGNATURE_LIFETIME`] | 300 s (`expires − created`) | 400 |
//! | [`DEFAULT_SIGNATURE_LIFETIME`] | 60 s (what signers use) | — |
//! | [`SERVER_NONCE_VALIDITY`] | 60 s after `issued_at` | treated as a client nonce |
//! | [`MIN_NONCE_BYTES`] ..= [`MAX_NONCE_BYTES`] | 16 ..= 32 bytes | 400 |
//! | [`DEFAULT_REPLAY_CAPACITY`] | 131 072 entries | 429 |
//! | [`DEFAULT_REPLAY_PER_KEY`] | 4 096 live entries per key | 429 |
//! | [`REPLAY_RETENTION_SLACK`] | 1 s beyond the window | — |
//! | [`MAX_LEGACY_TOKEN_CHARS`] | 140 characters (compat mode) | 401 |
//! | [`LEGACY_MIN_SIGNATURE_BYTES`] ..= [`LEGACY_MAX_SIGNATURE_BYTES`] | 8 ..= 72 bytes (compat mode) | 401 |
//! | [`LEGACY_MIN_DATA_BYTES`] | 32 bytes: IV + one block (compat mode) | 401 |
//! | [`DEFAULT_LEGACY_MAX_FAILURES`] / [`DEFAULT_LEGACY_FAILURE_WINDOW`] | 5 failures / 60 s per legacy key (compat mode) | 429 |
//! | [`DEFAULT_LEGACY_BLOCK_SECS`] | 600 s blocked (compat mode) | 429 |
//! | [`DEFAULT_LEGACY_TRACKED_KEYS`] | 16 384 legacy keys tracked (compat mode) | 429 when all are blocked |
//! | [`KEY_CONFIG_CACHE_LIFETIME`] | 600 s: clients re-fetch the key configuration | — |
//! | [`DEFAULT_HPKE_KEY_GRACE`] | 660 s a retired HPKE key still opens requests | 400 (unknown key id) |
//! | [`DEFAULT_CORS_MAX_AGE`] | 600 s `Access-Control-Max-Age` | — |
//! | [`SQLITE_REPLAY_BUSY_TIMEOUT`] | 5 s wait for the SQLite replay store's lock | 500 |
//! | [`SQLITE_REPLAY_CONNECTIONS`] | 4 connections per SQLite replay store | — |
//!
//! Each bound is driven to its edge and one past it by `tests/limits.rs`; the HPKE grace
//! period and the key-configuration cache lifetime by `tests/sealed.rs`, the SQLite store's
//! replay bounds by `tests/sqlx_replay.rs`.

/// Longest accepted value of each signature-related field (`Signature-Input`, `Signature`,
/// `Content-Digest`, `Keyline-Seal`, `Accept-Signature`), all field lines combined: 8 KiB.
///
/// A keyline `Signature-Input` is about 250 bytes and `Signature` about 95; 8 KiB leaves room
/// for a few labels added by proxies while bounding parse work (B.13).
pub const MAX_SIGNATURE_FIELD_BYTES: usize = 8 * 1024;

/// Most members (labels) in `Signature-Input` or `Signature`: 8.
///
/// keyline uses one (`sig1`); a chain of proxies may add one each. More is not a real message.
pub const MAX_DICTIONARY_MEMBERS: usize = 8;

/// Most covered components in one signature: 32.
///
/// The profile covers at most 6 and the RFC 9421 examples at most 8; the bound caps the base
/// a verifier builds for one signature.
pub const MAX_COVERED_COMPONENTS: usize = 32;

/// Longest NIP-98 `Authorization` value after `Nostr `: 8 KiB of base64 (B.12, B.13).
///
/// A kind-27235 event with `u`, `method` and `payload` tags is well under 1 KiB.
pub const MAX_NIP98_ENCODED_BYTES: usize = 8 * 1024;

/// Default limit on plain request bodies: 1 MiB (B.5 step 5, B.13).
///
/// The body is hashed before anything else reads it; the limit bounds that work and memory.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// How far in the past `created` (NIP-98: `created_at`) may be: 60 s (B.6).
///
/// The replay cache must remember every nonce for this long, so the window sizes the cache.
pub const DEFAULT_MAX_AGE: u64 = 60;

/// How far in the future `created` (NIP-98: `created_at`) may be: 30 s (B.6).
pub const DEFAULT_MAX_FUTURE: u64 = 30;

/// Largest `expires − created`: 300 s (B.3). A longer-lived signature is malformed (400).
pub const MAX_SIGNATURE_LIFETIME: u64 = 300;

/// `expires − created` that keyline signers use: 60 s (B.3).
pub const DEFAULT_SIGNATURE_LIFETIME: u64 = 60;

/// How long a server nonce stays valid after its `issued_at`: 60 s (B.6).
pub const SERVER_NONCE_VALIDITY: u64 = 60;

/// Shortest signature `nonce`: 16 random bytes (128 bits), 22 base64url characters (B.3).
pub const MIN_NONCE_BYTES: usize = 16;

/// Longest signature `nonce`: 32 bytes, 43 base64url characters (server nonces are 32).
pub const MAX_NONCE_BYTES: usize = 32;

/// Bytes a client draws for each request's nonce: 16 (B.3).
pub const CLIENT_NONCE_BYTES: usize = 16;

/// Default total capacity of [`crate::MemoryReplayCache`]: 131 072 live entries (B.7, B.13).
///
/// At about 100 bytes per entry this is ~13 MiB; at the 60 s window it admits ~2 000 fresh
/// requests per second before answering 429.
pub const DEFAULT_REPLAY_CAPACITY: usize = 131_072;

/// Default live entries per key in [`crate::MemoryReplayCache`]: 4 096 (B.7, B.13).
///
/// One key cannot take the whole cache: at the bound its new requests get 429 while other
/// keys still pass. Live entries are never evicted early, since that would reopen replays.
pub const DEFAULT_REPLAY_PER_KEY: usize = 4_096;

/// Seconds a replay entry outlives the freshness window: 1 (B.7), so a request at the very
/// edge of the window is still remembered.
pub const REPLAY_RETENTION_SLACK: u64 = 1;

/// Tolerance of the client on a response's `Date` after offset correction: 300 s (B.13).
pub const RESPONSE_DATE_TOLERANCE: u64 = 300;

/// Longest legacy (crypto-sessions v1.1.10) token: 140 base64url characters, the encoding of
/// 33 + 72 bytes (A.10 step 1). Checked before decoding.
pub const MAX_LEGACY_TOKEN_CHARS: usize = ((33 + LEGACY_MAX_SIGNATURE_BYTES) * 8).div_ceil(6);

/// Shortest legacy signature: 8 bytes, the smallest DER `SEQUENCE` of two one-byte
/// `INTEGER`s (A.10 step 1).
pub const LEGACY_MIN_SIGNATURE_BYTES: usize = 8;

/// Longest legacy signature: 72 bytes, DER with two 33-byte `INTEGER`s (A.10 step 1).
pub const LEGACY_MAX_SIGNATURE_BYTES: usize = 72;

/// Shortest decoded legacy `data`: 32 bytes, the IV and one AES block (A.10 step 4).
pub const LEGACY_MIN_DATA_BYTES: usize = 32;

/// Failures of one legacy key that block it: 5 within [`DEFAULT_LEGACY_FAILURE_WINDOW`]
/// (A.10 step 6, B.13). A CBC padding oracle needs on the order of a hundred queries per
/// plaintext byte; this makes that take days per byte instead of seconds.
pub const DEFAULT_LEGACY_MAX_FAILURES: u32 = 5;

/// Window over which legacy failures are counted: 60 s.
pub const DEFAULT_LEGACY_FAILURE_WINDOW: u64 = 60;

/// How long a legacy key that hit the failure limit is refused (429): 600 s.
pub const DEFAULT_LEGACY_BLOCK_SECS: u64 = 600;

/// Most legacy keys the failure limiter tracks at once: 16 384 (about 1 MiB). Blocked keys
/// are never dropped early; when all tracked keys are blocked, new keys get 429.
pub const DEFAULT_LEGACY_TRACKED_KEYS: usize = 16_384;

/// How long a client keeps a server's key configuration (`/.well-known/keyline-http`) before
/// fetching it again: 600 s (B.11). Bounds how long a client seals to a rotated-out key.
pub const KEY_CONFIG_CACHE_LIFETIME: u64 = 600;

/// Default grace period of a retired HPKE key: [`DEFAULT_MAX_AGE`] +
/// [`KEY_CONFIG_CACHE_LIFETIME`] = 660 s, the minimum B.11 asks for (a client may seal to the
/// old key until its cached configuration expires, and the request may arrive up to the max
/// age later). Afterwards the key is deleted and requests to its `key_id` get 400.
pub const DEFAULT_HPKE_KEY_GRACE: u64 = DEFAULT_MAX_AGE + KEY_CONFIG_CACHE_LIFETIME;

/// `Access-Control-Max-Age` of a CORS preflight answer: 600 s (B.17).
pub const DEFAULT_CORS_MAX_AGE: u64 = 600;

/// How long the SQLite replay store (feature `sqlx-replay`) waits for another instance's
/// write lock before failing the request with 500: 5 s. Each check holds the lock for a few
/// indexed statements.
pub const SQLITE_REPLAY_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Connections of one SQLite replay store (feature `sqlx-replay`): 4. SQLite admits one
/// writer at a time; more connections only queue.
pub const SQLITE_REPLAY_CONNECTIONS: u32 = 4;
