//! keyline-core: the identity, key encodings, known-peer pins, replay window and clock that
//! every keyline protocol crate builds on.
//!
//! keyline is a toolkit for public-key-identified, end-to-end secure channels: a peer *is*
//! its key. This crate holds what the protocols share:
//!
//! - [`Identity`]: the local Ed25519 key (SSB/SHS, SBRP, HTTP signatures) and secp256k1 key
//!   (Nostr, BIP340), stored in `identity.toml` ([`Identity::load`], [`Identity::save`]) and
//!   importable from an SSB secret file or an `nsec` ([`Identity::import_into_file`]).
//! - [`keys`]: every public form keyline prints or parses: SSB ids, hex, `npub`, and
//!   OpenSSH-style [`fingerprint`]s.
//! - [`PinStore`]: known peers in SQLite, shared safely between processes, with the
//!   [`Policy`] `strict`, `tofu` or `prompt`.
//! - [`ReplayWindow`]: the RFC 6479 sliding bitmap for transports that reorder packets.
//! - [`Clock`]: time as an input, so sans-IO protocol cores are testable without sleeping.
//! - [`Home`]: the keyline home directory (`--home`, `KEYLINE_HOME`, `~/.keyline`).
//! - [`limits`]: every bound this crate enforces.
//!
//! # Example
//!
//! ```
//! # async fn demo() -> keyline_core::Result<()> {
//! use keyline_core::{Home, Identity, PinOutcome, PinStore, Policy};
//!
//! let home = Home::resolve(None)?;
//! home.ensure()?;
//! let identity = Identity::generate()?;
//! identity.save(home.identity_path(), false)?;
//! println!("{}", identity.public().ssb_id);
//!
//! // After a handshake authenticated `peer_key`:
//! # let peer_key = [7u8; 32];
//! let pins = PinStore::open(&home.db_path()).await?;
//! match pins.check_now(Policy::Tofu, "shs", "example.org:8008", &peer_key, None).await? {
//!     PinOutcome::NewlyPinned => println!("pinned {}", keyline_core::fingerprint(&peer_key)),
//!     _ => {}
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Threat model
//!
//! - The identity file is the user's secret. It is written with mode 0600 via an atomic
//!   rename, never half-written, and read only up to a size limit. Secrets live in zeroizing
//!   buffers and never appear in `Debug` output, logs or error messages.
//! - Peers are untrusted. A pinned key that changes is a hard error that shows both
//!   fingerprints; no flag in this crate skips the check. Under `tofu` and `prompt` remote
//!   peers can cause inserts, so pins per protocol are capped.
//! - Other local processes of the same user are trusted (they can read the identity file
//!   anyway); other users are kept out by file modes. Several keyline processes may use the
//!   same pin store at once.
//!
//! # Defaults
//!
//! | what | default |
//! |---|---|
//! | home | `--home`, else `$KEYLINE_HOME`, else `$HOME/.keyline` (mode 0700) |
//! | identity file | `identity.toml`, mode 0600, ≤ [`limits::MAX_IDENTITY_FILE_BYTES`] |
//! | pin store | `keyline.db`, SQLite WAL, mode 0600, busy timeout [`limits::PIN_DB_BUSY_TIMEOUT`] |
//! | pins per protocol | [`limits::MAX_PINS_PER_PROTOCOL`] |
//! | replay window | [`limits::DEFAULT_REPLAY_WINDOW`] counters, at most [`limits::MAX_REPLAY_WINDOW`] |
//! | fingerprint | `SHA256:` + unpadded base64 of SHA-256 of the raw key |
//!
//! # Limits
//!
//! | bound | value | on excess |
//! |---|---|---|
//! | [`limits::MAX_IDENTITY_FILE_BYTES`] | 64 KiB | [`Error::FileTooLarge`], file not read |
//! | [`limits::MAX_IMPORT_FILE_BYTES`] | 64 KiB | [`Error::FileTooLarge`] / [`Error::InvalidImport`] |
//! | [`limits::SECP256K1_KEYGEN_ATTEMPTS`] | 64 draws | [`Error::Rng`] |
//! | [`limits::PIN_DB_BUSY_TIMEOUT`] | 5 s | [`Error::Storage`] (database busy) |
//! | [`limits::PIN_DB_ACQUIRE_TIMEOUT`] | 10 s | [`Error::Storage`] (pool timed out) |
//! | [`limits::PIN_DB_MAX_CONNECTIONS`] | 4 | requests wait for a free connection |
//! | [`limits::MAX_PINS_PER_PROTOCOL`] | 65 536 | [`Error::PinStoreFull`]; pinned peers still pass |
//! | [`limits::MAX_PIN_PROTOCOL_LEN`], [`limits::MAX_PIN_PEER_LEN`], [`limits::MAX_PIN_NOTE_LEN`] | 64 / 1024 / 1024 bytes | [`Error::InvalidParameter`] |
//! | [`limits::MAX_PIN_KEY_LEN`] | 256 bytes | [`Error::InvalidParameter`] |
//! | [`limits::MIN_REPLAY_WINDOW`] ..= [`limits::MAX_REPLAY_WINDOW`] | 64 ..= 65 536 counters | [`Error::InvalidParameter`] |
//!
//! # Non-features
//!
//! - No encryption of the identity file at rest: file modes protect it, as with SSB's
//!   `~/.ssb/secret` and OpenSSH keys without a passphrase. Use disk encryption or an HSM
//!   (the signer crate) when that is not enough.
//! - No certificate authorities or key certification chains: a peer is its key.
//! - No "skip pin check" switch, and no silent re-pinning: a changed key is replaced only by
//!   an explicit `pin add --replace`/`pin remove` or a prompt answer.
//! - No signing or encryption here: protocol crates use the keys through
//!   [`Identity::ed25519_signing_key`] and [`Identity::secp256k1_signing_key`].
//!
//! # Security status
//!
//! Not audited. Key derivations are checked against the BIP340 reference vectors and
//! libsodium key pairs from the SSB reference, NIP-19 encodings against the NIP's examples,
//! the replay window against a reference model with proptest, and the pin store's
//! cross-process behaviour with concurrent stores and processes on one file.

#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod clock;
mod error;
mod fsutil;
pub use fsutil::load_or_create_secret_file;
mod home;
mod identity;
pub mod keys;
pub mod limiter;
pub mod limits;
pub mod nostr;
pub mod pin;
mod replay;

#[cfg(test)]
mod test_vectors;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, ErrorKind, Result};
pub use home::{CONFIG_FILE, DB_FILE, DEFAULT_DIR_NAME, HOME_ENV, Home, IDENTITY_FILE};
pub use identity::{Identity, ImportSource, PublicIds, import_ssb_secret};
pub use keys::{fingerprint, npub, parse_ed25519_public, parse_npub, parse_nsec, ssb_id};
pub use limiter::{HandshakeLimiter, LimiterConfig, LimiterStats, Refused};
pub use pin::{Pin, PinOutcome, PinStore, PinStoreConfig, Policy, Prompt, PromptDecision};
pub use replay::{ReplayError, ReplayWindow};
