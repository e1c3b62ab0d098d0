//! The replay cache (B.7).
//!
//! Keyed by (namespace, public key bytes, nonce): the namespace is the algorithm name for
//! keyline-http-v1 (`ed25519`, `bip340-secp256k1`) and `nostr` for NIP-98, whose nonce is the
//! event id. Not the `keyid` string and not the signature bytes, so one key has one identity and
//! a re-encoded signature is still a replay.
//!
//! Verifiers call [`ReplayCache::check_and_insert`] only after the signature verified (so
//! unsigned junk cannot fill the cache). The check and the insert are one operation on
//! `&mut self`; a cache shared between tasks sits behind a lock, which keeps it atomic.
//!
//! [`MemoryReplayCache`] bounds the total number of live entries and the number per key. An
//! entry lives until its `retain_until` (the end of the freshness window plus
//! [`crate::limits::REPLAY_RETENTION_SLACK`]); expired entries are dropped on every call.
//! **Live entries are never evicted**: eviction would reopen the replay window. At a bound, new
//! nonces are refused ([`crate::Error::ReplayCacheFull`], 429) with the seconds until the oldest
//! relevant entry expires.
//!
//! ## Shared stores
//!
//! The server layer takes its cache as a trait object, `Arc<dyn ReplayStore>` ([`ReplayStore`]): an
//! asynchronous check-and-insert with the same contract. Every `Mutex<impl ReplayCache>` is
//! one (for a single instance); several instances behind one origin share one store — the
//! SQLite `sqlite::SqliteReplayStore` of feature `sqlx-replay` (one database file for all
//! of them) — or use key-affine routing. [`DeferredReplay`] lets the synchronous
//! [`crate::verify_request`] hand its one replay entry to such a store afterwards.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};

use crate::error::{AuthFailure, Error, Result};
use crate::limits::{DEFAULT_REPLAY_CAPACITY, DEFAULT_REPLAY_PER_KEY};

/// One use of a nonce by a key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplayKey {
    /// `ed25519`, `bip340-secp256k1` or `nostr`.
    pub namespace: &'static str,
    /// The raw public key.
    pub public_key: [u8; 32],
    /// The nonce string (NIP-98: the event id in hex).
    pub nonce: String,
}

/// A replay cache: remembers (namespace, key, nonce) until a given time.
pub trait ReplayCache: Send {
    /// Refuses `key` if it was seen and has not expired ([`AuthFailure::Replay`], 401) or if a
    /// bound is reached ([`Error::ReplayCacheFull`], 429); otherwise records it until
    /// `retain_until` (Unix seconds). `now` is the server's current Unix time.
    fn check_and_insert(&mut self, key: ReplayKey, retain_until: u64, now: u64) -> Result<()>;
}

/// The future of [`ReplayStore::check_and_insert`].
pub type ReplayFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// An asynchronous replay store shared by every request of a server (and by several servers
/// behind one origin): the same contract as [`ReplayCache::check_and_insert`], atomic across
/// every user of the store.
pub trait ReplayStore: Send + Sync {
    /// Refuses `key` if it was seen and has not expired (401) or if a bound is reached (429);
    /// otherwise records it until `retain_until`. A storage failure is
    /// [`Error::Storage`] (500): the request is never let through.
    fn check_and_insert(&self, key: ReplayKey, retain_until: u64, now: u64) -> ReplayFuture<'_>;
}

/// A locked [`ReplayCache`] is a store for one server instance.
impl<C: ReplayCache + ?Sized> ReplayStore for Mutex<C> {
    fn check_and_insert(&self, key: ReplayKey, retain_until: u64, now: u64) -> ReplayFuture<'_> {
        let result = self
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check_and_insert(key, retain_until, now);
        Box::pin(std::future::ready(result))
    }
}

/// A [`ReplayCache`] that accepts the entry a verification asks for and keeps it, so that the
/// caller can check it against a [`ReplayStore`] afterwards (B.5 step 7 then runs right after
/// the signature check, as with a synchronous cache). One verification asks for one entry.
#[derive(Debug, Default)]
pub struct DeferredReplay {
    entry: Option<(ReplayKey, u64)>,
}

impl DeferredReplay {
    /// The entry and its `retain_until`, if the verification got as far as the replay check.
    pub fn take(&mut self) -> Option<(ReplayKey, u64)> {
        self.entry.take()
    }
}

impl ReplayCache for DeferredReplay {
    fn check_and_insert(&mut self, key: ReplayKey, retain_until: u64, _now: u64) -> Result<()> {
        self.entry = Some((key, retain_until));
        Ok(())
    }
}

/// Bounds of a [`MemoryReplayCache`] (and of `sqlite::SqliteReplayStore`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayLimits {
    /// Most live entries in total.
    pub capacity: usize,
    /// Most live entries per (namespace, public key).
    pub per_key: usize,
}

impl Default for ReplayLimits {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_REPLAY_CAPACITY,
            per_key: DEFAULT_REPLAY_PER_KEY,
        }
    }
}

type Owner = (&'static str, [u8; 32]);

#[derive(Default)]
struct PerKey {
    live: usize,
    /// retain_until → number of entries expiring then.
    expiries: BTreeMap<u64, usize>,
}

/// An in-memory [`ReplayCache`] for a single server instance. Several instances behind one
/// origin need one shared cache (or key-affine routing).
#[derive(Default)]
pub struct MemoryReplayCache {
    limits: ReplayLimits,
    entries: HashMap<ReplayKey, u64>,
    by_expiry: BTreeSet<(u64, ReplayKey)>,
    per_key: HashMap<Owner, PerKey>,
}

impl MemoryReplayCache {
    /// A cache with the default bounds ([`DEFAULT_REPLAY_CAPACITY`], [`DEFAULT_REPLAY_PER_KEY`]).
    pub fn new() -> Self {
        Self::with_limits(ReplayLimits::default())
    }

    /// A cache with explicit bounds (each at least 1).
    pub fn with_limits(limits: ReplayLimits) -> Self {
        Self {
            limits: ReplayLimits {
                capacity: limits.capacity.max(1),
                per_key: limits.per_key.max(1),
            },
            ..Self::default()
        }
    }

    /// The bounds in force.
    pub fn limits(&self) -> ReplayLimits {
        self.limits
    }

    /// Live entries (after the last purge).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds no live entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops every entry whose `retain_until` is at or before `now`.
    pub fn purge(&mut self, now: u64) {
        while let Some((until, _)) = self.by_expiry.first() {
            if *until > now {
                break;
            }
            let Some((until, key)) = self.by_expiry.pop_first() else {
                break;
            };
            self.entries.remove(&key);
            let owner = (key.namespace, key.public_key);
            if let Some(per) = self.per_key.get_mut(&owner) {
                per.live = per.live.saturating_sub(1);
                if let Some(count) = per.expiries.get_mut(&until) {
                    *count -= 1;
                    if *count == 0 {
                        per.expiries.remove(&until);
                    }
                }
                if per.live == 0 {
                    self.per_key.remove(&owner);
                }
            }
        }
    }
}

impl ReplayCache for MemoryReplayCache {
    fn check_and_insert(&mut self, key: ReplayKey, retain_until: u64, now: u64) -> Result<()> {
        self.purge(now);
        if self.entries.contains_key(&key) {
            return Err(Error::Unauthorized(AuthFailure::Replay));
        }
        let owner = (key.namespace, key.public_key);
        if let Some(per) = self.per_key.get(&owner)
            && per.live >= self.limits.per_key
        {
            let oldest = per.expiries.keys().next().copied().unwrap_or(now);
            return Err(Error::ReplayCacheFull {
                retry_after: oldest.saturating_sub(now).max(1),
            });
        }
        if self.entries.len() >= self.limits.capacity {
            let oldest = self.by_expiry.first().map_or(now, |(t, _)| *t);
            return Err(Error::ReplayCacheFull {
                retry_after: oldest.saturating_sub(now).max(1),
            });
        }
        if retain_until <= now {
            // Already outside any window: nothing to remember (freshness rejects it anyway).
            return Ok(());
        }
        let per = self.per_key.entry(owner).or_default();
        per.live += 1;
        *per.expiries.entry(retain_until).or_default() += 1;
        self.by_expiry.insert((retain_until, key.clone()));
        self.entries.insert(key, retain_until);
        Ok(())
    }
}

impl std::fmt::Debug for MemoryReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryReplayCache")
            .field("limits", &self.limits)
            .field("live", &self.entries.len())
            .field("keys", &self.per_key.len())
            .finish()
    }
}

#[cfg(feature = "sqlx-replay")]
pub mod sqlite;

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pk: u8, nonce: &str) -> ReplayKey {
        ReplayKey {
            namespace: "ed25519",
            public_key: [pk; 32],
            nonce: nonce.to_string(),
        }
    }

    #[test]
    fn seen_then_expired() {
        let mut c = MemoryReplayCache::new();
        assert!(c.is_empty());
        c.check_and_insert(key(1, "a"), 161, 100).unwrap();
        assert_eq!(
            c.check_and_insert(key(1, "a"), 161, 160)
                .unwrap_err()
                .code(),
            "unauthorized.replay"
        );
        // Another key, same nonce: independent.
        c.check_and_insert(key(2, "a"), 161, 100).unwrap();
        assert_eq!(c.len(), 2);
        // At retain_until the entry is gone.
        c.check_and_insert(key(1, "a"), 222, 161).unwrap();
        assert_eq!(c.len(), 1);
        // Past its window nothing is stored.
        c.check_and_insert(key(3, "b"), 100, 200).unwrap();
        assert_eq!(c.len(), 1);
        assert!(format!("{c:?}").contains("live: 1"));
    }
}
