//! The server's HPKE keys over time (B.11): one **current** key, announced first and used by
//! clients for new requests, and **retired** keys that still open requests for a grace period
//! (at least `max_age` + the clients' key-configuration cache lifetime,
//! [`crate::limits::DEFAULT_HPKE_KEY_GRACE`]) and are then deleted. Deleting old keys is what
//! bounds the exposure of recorded traffic: sealed request bodies have no forward secrecy
//! against a later compromise of a key that still exists.
//!
//! Time is an argument (`now`, Unix seconds). Rotation is explicit ([`HpkeKeyring::rotate`],
//! [`HpkeKeyring::rotate_to`]) or scheduled ([`HpkeKeyring::set_rotation_interval`]) and
//! carried out by [`HpkeKeyring::maintain`], which the server layer calls on every request
//! with its clock.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use super::HpkeKeyPair;
use crate::error::{InvalidInput, Result};
use crate::limits::DEFAULT_HPKE_KEY_GRACE;

struct State {
    /// The current key and the time it became current (`None`: the first
    /// [`HpkeKeyring::maintain`]).
    current: Option<(HpkeKeyPair, Option<u64>)>,
    /// Retired keys and the time they were retired, oldest first.
    retired: Vec<(HpkeKeyPair, u64)>,
    grace: u64,
    rotate_every: Option<u64>,
}

impl State {
    /// Deletes the retired keys whose grace period is over.
    fn prune(&mut self, now: u64) {
        let grace = self.grace;
        self.retired
            .retain(|(_, retired_at)| now < retired_at.saturating_add(grace));
    }

    fn in_use(&self, key_id: u8) -> bool {
        self.current
            .as_ref()
            .is_some_and(|(k, _)| k.key_id() == key_id)
            || self.retired.iter().any(|(k, _)| k.key_id() == key_id)
    }

    fn install(&mut self, key: HpkeKeyPair, now: u64) {
        if let Some((old, _)) = self.current.take() {
            self.retired.push((old, now));
        }
        self.current = Some((key, Some(now)));
    }
}

/// A set of server HPKE keys under rotation; shared (`Arc`) and internally locked.
pub struct HpkeKeyring {
    state: Mutex<State>,
}

impl HpkeKeyring {
    /// No key at all: sealed requests are refused (400).
    pub fn empty() -> Self {
        Self {
            state: Mutex::new(State {
                current: None,
                retired: Vec::new(),
                grace: DEFAULT_HPKE_KEY_GRACE,
                rotate_every: None,
            }),
        }
    }

    /// `current` as the current key since `now`, with the default grace period and no
    /// scheduled rotation.
    pub fn new(current: HpkeKeyPair, now: u64) -> Self {
        Self::with_keys(vec![current], now)
    }

    /// `current` as the current key from the first [`maintain`](Self::maintain) call on (for
    /// a configuration built before its clock is known).
    pub fn unanchored(current: HpkeKeyPair) -> Self {
        let ring = Self::empty();
        ring.lock().current = Some((current, None));
        ring
    }

    /// The first of `keys` current, the others retired at `now` (they open requests until
    /// `now` + the grace period). Empty: no key.
    pub fn with_keys(keys: Vec<HpkeKeyPair>, now: u64) -> Self {
        let ring = Self::empty();
        {
            let mut state = ring.lock();
            let mut keys = keys.into_iter();
            state.current = keys.next().map(|k| (k, Some(now)));
            state.retired = keys.rev().map(|k| (k, now)).collect();
        }
        ring
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long a retired key still opens requests, in seconds.
    pub fn grace(&self) -> u64 {
        self.lock().grace
    }

    /// Sets the grace period (the server configuration checks it against its minimum).
    pub fn set_grace(&self, secs: u64) {
        self.lock().grace = secs;
    }

    /// The interval of scheduled rotation, if any.
    pub fn rotation_interval(&self) -> Option<u64> {
        self.lock().rotate_every
    }

    /// Rotates to a fresh random key whenever the current one is `every` seconds old
    /// (checked by [`maintain`](Self::maintain)); `None`: only explicit rotation.
    pub fn set_rotation_interval(&self, every: Option<u64>) {
        self.lock().rotate_every = every.map(|s| s.max(1));
    }

    /// Makes `key` current at `now` and retires the previous current key. Refused if
    /// `key`'s id is still in use (current or within its grace period).
    pub fn rotate_to(&self, key: HpkeKeyPair, now: u64) -> Result<()> {
        let mut state = self.lock();
        state.prune(now);
        if state.in_use(key.key_id()) {
            return Err(InvalidInput::Message(format!(
                "HPKE key id {} is still in use",
                key.key_id()
            ))
            .into());
        }
        state.install(key, now);
        Ok(())
    }

    /// Makes a fresh random key current at `now` under the next free key id (after the
    /// current one, wrapping) and retires the previous one. Returns the new key id.
    pub fn rotate(&self, now: u64) -> Result<u8> {
        let mut state = self.lock();
        state.prune(now);
        rotate_locked(&mut state, now)
    }

    /// Deletes retired keys past their grace period and, if a rotation interval is set and
    /// the current key is that old (or there is none), rotates. Returns the new key id when
    /// it rotated.
    pub fn maintain(&self, now: u64) -> Result<Option<u8>> {
        let mut state = self.lock();
        state.prune(now);
        if let Some((_, since @ None)) = &mut state.current {
            *since = Some(now);
        }
        let Some(every) = state.rotate_every else {
            return Ok(None);
        };
        let due = state
            .current
            .as_ref()
            .is_none_or(|(_, since)| now >= since.unwrap_or(now).saturating_add(every));
        if due {
            return rotate_locked(&mut state, now).map(Some);
        }
        Ok(None)
    }

    /// The key with `key_id` that may open a request at `now`: the current key, or a
    /// retired one within its grace period.
    pub fn key(&self, key_id: u8, now: u64) -> Option<HpkeKeyPair> {
        let mut state = self.lock();
        state.prune(now);
        state
            .current
            .iter()
            .map(|(k, _)| k)
            .chain(state.retired.iter().map(|(k, _)| k))
            .find(|k| k.key_id() == key_id)
            .cloned()
    }

    /// The keys to announce at `now`: the current key first, then the retired keys still in
    /// their grace period, newest first.
    pub fn keys(&self, now: u64) -> Vec<HpkeKeyPair> {
        let mut state = self.lock();
        state.prune(now);
        state
            .current
            .iter()
            .map(|(k, _)| k)
            .chain(state.retired.iter().rev().map(|(k, _)| k))
            .cloned()
            .collect()
    }

    /// The current key's id, if there is one.
    pub fn current_key_id(&self) -> Option<u8> {
        self.lock().current.as_ref().map(|(k, _)| k.key_id())
    }
}

fn rotate_locked(state: &mut State, now: u64) -> Result<u8> {
    let start = state
        .current
        .as_ref()
        .map_or(1, |(k, _)| k.key_id().wrapping_add(1));
    let key_id = (0..=255u8)
        .map(|i| start.wrapping_add(i))
        .find(|id| !state.in_use(*id))
        .ok_or_else(|| InvalidInput::Message("all 256 HPKE key ids are in use".into()))?;
    state.install(HpkeKeyPair::generate(key_id)?, now);
    Ok(key_id)
}

impl Default for HpkeKeyring {
    fn default() -> Self {
        Self::empty()
    }
}

impl fmt::Debug for HpkeKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("HpkeKeyring")
            .field("current", &state.current.as_ref().map(|(k, _)| k.key_id()))
            .field(
                "retired",
                &state
                    .retired
                    .iter()
                    .map(|(k, _)| k.key_id())
                    .collect::<Vec<_>>(),
            )
            .field("grace", &state.grace)
            .field("rotate_every", &state.rotate_every)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_grace_and_deletion() {
        let ring = HpkeKeyring::new(HpkeKeyPair::derive(1, b"one"), 1000);
        ring.set_grace(100);
        assert_eq!(ring.keys(1000).len(), 1);
        let id = ring.rotate(1010).unwrap();
        assert_eq!(id, 2);
        let ids = |now| {
            ring.keys(now)
                .iter()
                .map(HpkeKeyPair::key_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(1010), vec![2, 1], "current first");
        assert!(ring.key(1, 1109).is_some(), "in the grace period");
        assert!(ring.key(1, 1110).is_none(), "deleted after it");
        assert_eq!(ids(1110), vec![2]);
        // Explicit key; an id still in use is refused.
        assert!(ring.rotate_to(HpkeKeyPair::derive(2, b"x"), 1111).is_err());
        ring.rotate_to(HpkeKeyPair::derive(9, b"nine"), 1111)
            .unwrap();
        assert_eq!(ring.current_key_id(), Some(9));
        assert_eq!(ring.rotate(1112).unwrap(), 10);
        assert_eq!(ids(1112), vec![10, 9, 2]);
        assert!(format!("{ring:?}").contains("current: Some(10)"));
    }

    #[test]
    fn scheduled_rotation_and_wrapping_ids() {
        let ring = HpkeKeyring::new(HpkeKeyPair::derive(255, b"k"), 0);
        ring.set_grace(10);
        ring.set_rotation_interval(Some(50));
        assert_eq!(ring.maintain(49).unwrap(), None);
        assert_eq!(ring.maintain(50).unwrap(), Some(0), "wraps past 255");
        assert_eq!(ring.maintain(99).unwrap(), None);
        assert_eq!(ring.maintain(100).unwrap(), Some(1));
        assert_eq!(ring.keys(100).len(), 2);
        let lazy = HpkeKeyring::unanchored(HpkeKeyPair::derive(1, b"l"));
        lazy.set_rotation_interval(Some(10));
        assert_eq!(
            lazy.maintain(500).unwrap(),
            None,
            "anchored at the first call"
        );
        assert_eq!(lazy.maintain(509).unwrap(), None);
        assert_eq!(lazy.maintain(510).unwrap(), Some(2));
        let empty = HpkeKeyring::empty();
        assert!(empty.keys(0).is_empty());
        assert_eq!(empty.maintain(0).unwrap(), None);
        empty.set_rotation_interval(Some(5));
        assert_eq!(empty.maintain(0).unwrap(), Some(1));
        assert_eq!(
            HpkeKeyring::with_keys(
                vec![HpkeKeyPair::derive(3, b"a"), HpkeKeyPair::derive(4, b"b")],
                0
            )
            .keys(0)
            .iter()
            .map(HpkeKeyPair::key_id)
            .collect::<Vec<_>>(),
            vec![3, 4]
        );
    }
}
