//! Every bound keyline-core enforces, with its default and the reason for it.
//!
//! Each constant is driven to its edge and one step past it by a test in `tests/limits.rs`
//! (or, for internal bounds, by a unit test next to the code that enforces it).

use std::time::Duration;

/// Largest identity file [`crate::Identity::load`] reads: 64 KiB.
///
/// A real `identity.toml` is about 400 bytes; anything far larger is not an identity file,
/// and refusing it keeps a mistaken path (a log, a device) from being read into memory.
pub const MAX_IDENTITY_FILE_BYTES: u64 = 64 * 1024;

/// Largest key file accepted for import (an SSB `secret` file): 64 KiB.
///
/// An SSB secret file is about 700 bytes including its comment lines.
pub const MAX_IMPORT_FILE_BYTES: u64 = 64 * 1024;

/// How many times [`crate::Identity::generate`] draws a secp256k1 secret before giving up: 64.
///
/// A uniform 32-byte string is an invalid scalar (zero or ≥ n) with probability below 2^-127,
/// so a second draw is already astronomically unlikely; a bound keeps a broken RNG that
/// returns constant bad output from looping forever.
pub const SECP256K1_KEYGEN_ATTEMPTS: u32 = 64;

/// How long a pin store operation waits for another process's lock on the database: 5 s.
///
/// SQLite's busy handler retries within this time; past it the operation fails with
/// [`crate::Error::Storage`] instead of hanging.
pub const PIN_DB_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a pin store operation waits for a free pooled connection: 10 s.
///
/// Longer than [`PIN_DB_BUSY_TIMEOUT`] so that a connection held while waiting on a lock
/// is normally released first.
pub const PIN_DB_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections a [`crate::PinStore`] keeps open to its database file: 4.
///
/// SQLite in WAL mode runs readers in parallel but writes one at a time; a few connections
/// cover concurrent lookups in a server without holding many file descriptors.
pub const PIN_DB_MAX_CONNECTIONS: u32 = 4;

/// Most pins one protocol may hold: 65 536.
///
/// Under the `tofu` and `prompt` policies remote peers cause inserts, so the store needs a
/// ceiling; past it new peers are refused with [`crate::Error::PinStoreFull`] while pinned
/// ones keep working.
pub const MAX_PINS_PER_PROTOCOL: u64 = 65_536;

/// Longest protocol name in a pin, in bytes: 64.
pub const MAX_PIN_PROTOCOL_LEN: usize = 64;

/// Longest peer name or address in a pin, in bytes: 1024.
pub const MAX_PIN_PEER_LEN: usize = 1024;

/// Longest note attached to a pin, in bytes: 1024.
pub const MAX_PIN_NOTE_LEN: usize = 1024;

/// Longest pinned key, in bytes: 256.
///
/// Ed25519 and x-only secp256k1 keys are 32 bytes, certificate hashes a few more; 256 leaves
/// room for DER public keys without letting a peer store arbitrary blobs.
pub const MAX_PIN_KEY_LEN: usize = 256;

/// Smallest [`crate::ReplayWindow`], in counters: 64 (one bitmap word).
pub const MIN_REPLAY_WINDOW: usize = 64;

/// Largest [`crate::ReplayWindow`], in counters: 65 536 (8 KiB of bitmap per window).
///
/// Per-connection state must stay small; 65 536 packets of reordering is far beyond any
/// real network path.
pub const MAX_REPLAY_WINDOW: usize = 65_536;

/// Default [`crate::ReplayWindow`] size, in counters: 1024, WireGuard's window.
pub const DEFAULT_REPLAY_WINDOW: usize = 1024;

/// Most sources a [`crate::HandshakeLimiter`] tracks: 65 536 (a few MiB at most).
///
/// When the table is full, sources whose bucket has refilled are forgotten; if every tracked
/// source is still active, new sources are refused until some go idle.
pub const MAX_LIMITER_SOURCES: usize = 65_536;

/// Largest unsigned Nostr event accepted for signing, in bytes of JSON (signer.md §12.5).
pub const MAX_UNSIGNED_EVENT_BYTES: usize = 256 * 1024;

/// Most tags in an event to sign (signer.md §12.5).
pub const MAX_EVENT_TAGS: usize = 5000;

/// Most elements in one tag of an event to sign (signer.md §12.5).
pub const MAX_EVENT_TAG_ITEMS: usize = 64;
