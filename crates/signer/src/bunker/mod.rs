//! The NIP-46 bunker (spec §3, §11, §12): the threshold key behind Nostr remote signing.
//!
//! * [`pool`] — the Nostr relay pool: subscriptions for kind 24133, outer-event checks,
//!   duplicate suppression, reconnect and resubscribe, publishing replies.
//! * `embedded` (feature `embedded-relay`) — a local Nostr relay on loopback.
//! * [`policy`], [`engine`], [`store`] — permissions, approvals and request handling (sans-IO
//!   decisions, persisted through the signer's store).
//! * [`service`] — the tokio service tying pool, engine and coordinator together.
//! * [`operator`] — the operator page (HTTP).

#[cfg(feature = "embedded-relay")]
pub mod embedded;
pub mod engine;
pub mod operator;
pub mod policy;
pub mod pool;
pub mod service;
pub mod store;
