//! The NIP-46 bunker (spec §3, §11, §12): the threshold key behind Nostr remote signing.
//!
//! * [`pool`] — the Nostr relay pool: subscriptions for kind 24133, outer-event checks,
//!   duplicate suppression, reconnect and resubscribe, publishing replies.
//! * `embedded` (feature `embedded-relay`) — a local Nostr relay on loopback.
//! * [`policy`] — permissions: grants, sensitive kinds, caps (pure).
//! * [`engine`] — the user-key trait, duplicate and rate tables, reply events (no I/O).
//! * [`service`] — the tokio service: pool, policy, approvals, the threshold key; it persists
//!   connections, grants, secrets, approvals and audit through [`crate::store::Store`].
//! * [`operator`] — the operator page (HTTP).
//!
//! Runnable with rust-nostr's relay and client:
//!
//! ```no_run
//! # async fn demo(store: keyline_signer::store::Store, key: impl keyline_signer::bunker::engine::UserKey,
//! #   key_id: [u8; 16], transport: keyline_signer::store::TransportKey) -> keyline_signer::Result<()> {
//! use keyline_signer::bunker::service::{Bunker, BunkerConfig};
//! let bunker = Bunker::start(store, key, key_id, transport,
//!     vec!["ws://127.0.0.1:7447".into()], BunkerConfig::new("http://127.0.0.1:7090")).await?;
//! println!("{}", bunker.mint_uri(None, None).await?); // paste into a NIP-46 client
//! # Ok(()) }
//! ```

#[cfg(feature = "embedded-relay")]
pub mod embedded;
pub mod engine;
pub mod operator;
pub mod policy;
pub mod pool;
pub mod service;
