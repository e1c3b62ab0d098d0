//! The per-key failure rate limit of compat mode (A.10 step 6), with time as an input.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::limits::{
    DEFAULT_LEGACY_BLOCK_SECS, DEFAULT_LEGACY_FAILURE_WINDOW, DEFAULT_LEGACY_MAX_FAILURES,
    DEFAULT_LEGACY_TRACKED_KEYS,
};

/// Settings of [`FailureLimiter`]; defaults from [`crate::limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureLimits {
    /// Failures of one key within [`window`](Self::window) that block it (default 5).
    pub max_failures: u32,
    /// Seconds over which failures are counted (default 60).
    pub window: u64,
    /// Seconds a key stays blocked (429) once it reached the limit (default 600).
    pub block: u64,
    /// Most keys tracked at once (default 16 384); bounds memory.
    pub tracked_keys: usize,
}

impl Default for FailureLimits {
    fn default() -> Self {
        Self {
            max_failures: DEFAULT_LEGACY_MAX_FAILURES,
            window: DEFAULT_LEGACY_FAILURE_WINDOW,
            block: DEFAULT_LEGACY_BLOCK_SECS,
            tracked_keys: DEFAULT_LEGACY_TRACKED_KEYS,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    window_start: u64,
    failures: u32,
    /// `Some(t)`: blocked until `t` (exclusive).
    blocked_until: Option<u64>,
}

impl Entry {
    fn blocked_at(&self, now: u64) -> Option<u64> {
        self.blocked_until.filter(|&until| now < until)
    }

    /// Whether the entry no longer matters at `now` (window over and not blocked).
    fn expired(&self, now: u64, limits: &FailureLimits) -> bool {
        self.blocked_at(now).is_none() && now >= self.window_start.saturating_add(limits.window)
    }
}

/// Counts failed legacy requests per legacy public key: after `max_failures` failures within
/// `window` seconds the key is refused with 429 for `block` seconds. Successful requests do not
/// reset the count (a captured valid request can be replayed at will, so a reset would let an
/// attacker interleave replays with padding-oracle queries).
///
/// Memory is bounded by `tracked_keys`. When the table is full, expired entries are dropped,
/// then the unblocked entry with the oldest window; blocked entries are never dropped early.
/// If every entry is blocked, new keys are refused (429) until one expires: failing closed
/// keeps the oracle bounded.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    limits: FailureLimits,
    entries: HashMap<[u8; 33], Entry>,
}

impl FailureLimiter {
    /// A limiter with the default limits.
    pub fn new() -> Self {
        Self::with_limits(FailureLimits::default())
    }

    /// A limiter with `limits`.
    pub fn with_limits(limits: FailureLimits) -> Self {
        Self {
            limits,
            entries: HashMap::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> FailureLimits {
        self.limits
    }

    /// Keys currently tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Before verifying a request from `key` at `now`: `Err(RateLimited)` if the key is blocked,
    /// or if it is not tracked and the table has no room for it.
    pub fn check(&mut self, key: &[u8; 33], now: u64) -> Result<()> {
        if let Some(entry) = self.entries.get(key) {
            return match entry.blocked_at(now) {
                Some(until) => Err(limited(until - now)),
                None => Ok(()),
            };
        }
        self.make_room(now)
    }

    /// Records a failed request from `key` at `now`. `Err(RateLimited)` when the failure could
    /// not be recorded because the table is full of blocked keys.
    pub fn record_failure(&mut self, key: &[u8; 33], now: u64) -> Result<()> {
        if !self.entries.contains_key(key) {
            self.make_room(now)?;
        }
        let limits = self.limits;
        let entry = self.entries.entry(*key).or_insert(Entry {
            window_start: now,
            failures: 0,
            blocked_until: None,
        });
        if entry.blocked_at(now).is_some() {
            return Ok(());
        }
        if entry.expired(now, &limits) {
            *entry = Entry {
                window_start: now,
                failures: 0,
                blocked_until: None,
            };
        }
        entry.failures = entry.failures.saturating_add(1);
        if entry.failures >= limits.max_failures {
            entry.blocked_until = Some(now.saturating_add(limits.block));
        }
        Ok(())
    }

    /// Ensures there is room for one more key.
    fn make_room(&mut self, now: u64) -> Result<()> {
        if self.entries.len() < self.limits.tracked_keys {
            return Ok(());
        }
        let limits = self.limits;
        self.entries.retain(|_, e| !e.expired(now, &limits));
        if self.entries.len() < limits.tracked_keys {
            return Ok(());
        }
        let oldest_unblocked = self
            .entries
            .iter()
            .filter(|(_, e)| e.blocked_at(now).is_none())
            .min_by_key(|(_, e)| e.window_start)
            .map(|(k, _)| *k);
        if let Some(key) = oldest_unblocked {
            self.entries.remove(&key);
            return Ok(());
        }
        let soonest = self
            .entries
            .values()
            .filter_map(|e| e.blocked_at(now))
            .min()
            .unwrap_or(now.saturating_add(1));
        Err(limited(soonest - now))
    }
}

fn limited(retry_after: u64) -> Error {
    Error::RateLimited {
        retry_after: retry_after.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> [u8; 33] {
        let mut k = [n; 33];
        k[0] = 2;
        k
    }

    #[test]
    fn five_failures_block_for_ten_minutes() {
        let mut l = FailureLimiter::new();
        for i in 0..5 {
            l.check(&key(1), 100 + i).unwrap();
            l.record_failure(&key(1), 100 + i).unwrap();
        }
        let err = l.check(&key(1), 104).unwrap_err();
        assert_eq!(err.status(), 429);
        assert_eq!(err.retry_after(), Some(600));
        assert!(l.check(&key(2), 104).is_ok(), "other keys pass");
        assert!(l.check(&key(1), 703).is_err());
        assert!(l.check(&key(1), 704).is_ok());
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let mut l = FailureLimiter::new();
        for i in 0..4 {
            l.record_failure(&key(1), i).unwrap();
        }
        l.record_failure(&key(1), 60).unwrap();
        assert!(l.check(&key(1), 61).is_ok());
    }

    #[test]
    fn memory_is_bounded_and_blocked_keys_are_kept() {
        let limits = FailureLimits {
            tracked_keys: 3,
            ..FailureLimits::default()
        };
        let mut l = FailureLimiter::with_limits(limits);
        for _ in 0..5 {
            l.record_failure(&key(1), 10).unwrap();
        }
        l.record_failure(&key(2), 11).unwrap();
        l.record_failure(&key(3), 12).unwrap();
        // Full: key 2 (oldest unblocked) makes room for key 4; key 1 stays blocked.
        l.record_failure(&key(4), 13).unwrap();
        assert_eq!(l.len(), 3);
        assert!(l.check(&key(1), 13).is_err());
        // Fill with blocked keys only: new keys are refused until one expires.
        for k in [3, 4] {
            for _ in 0..5 {
                l.record_failure(&key(k), 14).unwrap();
            }
        }
        assert_eq!(l.check(&key(9), 15).unwrap_err().retry_after(), Some(595));
        assert!(l.record_failure(&key(9), 15).is_err());
        assert!(l.check(&key(9), 610).is_ok());
    }
}
