//! Anti-replay sliding window over 64-bit packet counters (RFC 6479, as in WireGuard).
//!
//! A receiver on a transport that may reorder or duplicate packets keeps one
//! [`ReplayWindow`] per direction. For each packet it calls [`ReplayWindow::check`] *before*
//! the expensive authentication, then [`ReplayWindow::commit`] only *after* the packet
//! authenticated, so a forged packet can neither consume a counter nor slide the window.
//!
//! The window remembers the highest committed counter `h` and which of the `size` counters
//! `h - size + 1 ..= h` were seen. A counter above `h` is always new; one inside the window is
//! new if its bit is clear; one below the window is rejected as too old.

use crate::error::{Error, Result};
use crate::limits::{DEFAULT_REPLAY_WINDOW, MAX_REPLAY_WINDOW, MIN_REPLAY_WINDOW};

const WORD_BITS: u64 = u64::BITS as u64;

/// Why [`ReplayWindow::check`] rejected a counter. The peer (or an attacker) sent it; drop
/// the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The counter was already committed.
    #[error("counter already seen")]
    Duplicate,
    /// The counter is older than the window remembers.
    #[error("counter older than the replay window")]
    TooOld,
}

/// A sliding bitmap of recently accepted counters.
///
/// Memory is `size / 64 + 1` words, fixed at construction. Every operation is O(1) except a
/// forward jump in [`commit`](Self::commit), which clears at most one word per 64 counters
/// jumped and never more than the whole bitmap.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Ring of bitmap words; counter `c` lives in word `(c / 64) % len`, bit `c % 64`. One
    /// word more than `size / 64` so the window fits when it does not start on a word edge.
    bitmap: Box<[u64]>,
    size: u64,
    highest: Option<u64>,
}

impl ReplayWindow {
    /// A window that remembers `size` counters.
    ///
    /// `size` must be a multiple of 64 between [`MIN_REPLAY_WINDOW`] and
    /// [`MAX_REPLAY_WINDOW`]; otherwise [`Error::InvalidParameter`].
    pub fn new(size: usize) -> Result<Self> {
        if !(MIN_REPLAY_WINDOW..=MAX_REPLAY_WINDOW).contains(&size) {
            return Err(Error::param(
                "replay window size",
                format!("{size} is outside {MIN_REPLAY_WINDOW}..={MAX_REPLAY_WINDOW}"),
            ));
        }
        if !size.is_multiple_of(64) {
            return Err(Error::param(
                "replay window size",
                format!("{size} is not a multiple of 64"),
            ));
        }
        Ok(Self {
            bitmap: vec![0; size / 64 + 1].into_boxed_slice(),
            size: size as u64,
            highest: None,
        })
    }

    /// Window size in counters.
    pub fn size(&self) -> usize {
        // `size` came from a `usize` in `new`.
        self.size as usize
    }

    /// The highest committed counter, or `None` before the first commit.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Whether `counter` may be accepted. Does not change the window.
    ///
    /// Call before authenticating the packet; call [`commit`](Self::commit) after.
    pub fn check(&self, counter: u64) -> std::result::Result<(), ReplayError> {
        let Some(highest) = self.highest else {
            return Ok(());
        };
        if counter > highest {
            return Ok(());
        }
        if highest - counter >= self.size {
            return Err(ReplayError::TooOld);
        }
        let (word, bit) = self.position(counter);
        if self.bitmap[word] & bit != 0 {
            Err(ReplayError::Duplicate)
        } else {
            Ok(())
        }
    }

    /// Records `counter` as seen, sliding the window forward if it is the new highest.
    ///
    /// Call only after [`check`](Self::check) passed for `counter` **and** the packet
    /// authenticated. Committing a counter that `check` would reject changes nothing.
    pub fn commit(&mut self, counter: u64) {
        match self.highest {
            None => self.bitmap.fill(0),
            Some(highest) if counter > highest => {
                let words = self.bitmap.len() as u64;
                let jump = counter / WORD_BITS - highest / WORD_BITS;
                if jump >= words {
                    self.bitmap.fill(0);
                } else {
                    // Clear the words entering the window; the rest still hold live bits.
                    for w in 1..=jump {
                        let index = ((highest / WORD_BITS + w) % words) as usize;
                        self.bitmap[index] = 0;
                    }
                }
            }
            Some(highest) if highest - counter >= self.size => return,
            Some(_) => {}
        }
        if self.highest.is_none_or(|h| counter > h) {
            self.highest = Some(counter);
        }
        let (word, bit) = self.position(counter);
        self.bitmap[word] |= bit;
    }

    fn position(&self, counter: u64) -> (usize, u64) {
        let word = (counter / WORD_BITS) % self.bitmap.len() as u64;
        (word as usize, 1 << (counter % WORD_BITS))
    }
}

impl Default for ReplayWindow {
    /// A window of [`DEFAULT_REPLAY_WINDOW`] counters.
    fn default() -> Self {
        Self {
            bitmap: vec![0; DEFAULT_REPLAY_WINDOW / 64 + 1].into_boxed_slice(),
            size: DEFAULT_REPLAY_WINDOW as u64,
            highest: None,
        }
    }
}

impl std::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("size", &self.size)
            .field("highest", &self.highest)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// Check, then commit on success: what a receiver does for an authentic packet.
    fn accept(w: &mut ReplayWindow, c: u64) -> std::result::Result<(), ReplayError> {
        w.check(c)?;
        w.commit(c);
        Ok(())
    }

    /// The obvious model: every accepted counter in a set.
    struct Model {
        seen: HashSet<u64>,
        highest: Option<u64>,
        size: u64,
    }

    impl Model {
        fn accept(&mut self, c: u64) -> std::result::Result<(), ReplayError> {
            if let Some(h) = self.highest
                && c <= h
                && h - c >= self.size
            {
                return Err(ReplayError::TooOld);
            }
            if !self.seen.insert(c) {
                return Err(ReplayError::Duplicate);
            }
            self.highest = Some(self.highest.map_or(c, |h| h.max(c)));
            Ok(())
        }
    }

    #[test]
    fn zero_is_a_valid_first_counter() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.highest(), None);
        assert_eq!(accept(&mut w, 0), Ok(()));
        assert_eq!(w.highest(), Some(0));
        assert_eq!(accept(&mut w, 0), Err(ReplayError::Duplicate));
    }

    #[test]
    fn first_counter_may_be_anything() {
        let mut w = ReplayWindow::new(64).unwrap();
        assert_eq!(accept(&mut w, u64::MAX), Ok(()));
        assert_eq!(accept(&mut w, u64::MAX), Err(ReplayError::Duplicate));
        assert_eq!(accept(&mut w, u64::MAX - 63), Ok(()));
        assert_eq!(accept(&mut w, u64::MAX - 64), Err(ReplayError::TooOld));
        assert_eq!(accept(&mut w, 0), Err(ReplayError::TooOld));
    }

    #[test]
    fn in_order_and_reordered() {
        let mut w = ReplayWindow::new(128).unwrap();
        for c in [1, 2, 3, 7, 5, 4, 6, 10, 9] {
            assert_eq!(accept(&mut w, c), Ok(()), "counter {c}");
        }
        for c in [1, 5, 10, 9] {
            assert_eq!(
                accept(&mut w, c),
                Err(ReplayError::Duplicate),
                "counter {c}"
            );
        }
        assert_eq!(accept(&mut w, 8), Ok(()));
        assert_eq!(accept(&mut w, 0), Ok(()));
        assert_eq!(w.highest(), Some(10));
    }

    #[test]
    fn exact_window_boundary() {
        for size in [64usize, 128, 1024] {
            let s = size as u64;
            let mut w = ReplayWindow::new(size).unwrap();
            let h = 10_000 + 37;
            accept(&mut w, h).unwrap();
            // The oldest counter still in the window: h - size + 1.
            assert_eq!(w.check(h - s + 1), Ok(()), "size {size}");
            // One older: out.
            assert_eq!(w.check(h - s), Err(ReplayError::TooOld), "size {size}");
            accept(&mut w, h - s + 1).unwrap();
            assert_eq!(w.check(h - s + 1), Err(ReplayError::Duplicate));
            // Sliding by one pushes it out of the window.
            accept(&mut w, h + 1).unwrap();
            assert_eq!(w.check(h - s + 1), Err(ReplayError::TooOld));
            assert_eq!(w.check(h - s + 2), Ok(()));
        }
    }

    #[test]
    fn check_does_not_mutate() {
        let mut w = ReplayWindow::new(64).unwrap();
        accept(&mut w, 100).unwrap();
        let before = w.clone();
        for c in [0, 50, 99, 100, 101, u64::MAX] {
            let _ = w.check(c);
        }
        assert_eq!(w, before);
    }

    #[test]
    fn commit_of_rejected_counter_is_a_no_op() {
        let mut w = ReplayWindow::new(64).unwrap();
        accept(&mut w, 1000).unwrap();
        accept(&mut w, 990).unwrap();
        let before = w.clone();
        w.commit(10); // too old
        w.commit(990); // duplicate
        assert_eq!(w, before);
    }

    #[test]
    fn huge_jumps_reset_the_window() {
        let mut w = ReplayWindow::new(1024).unwrap();
        for c in 0..1024 {
            accept(&mut w, c).unwrap();
        }
        // A jump of 2^40 clears everything at once.
        let far = 1u64 << 40;
        accept(&mut w, far).unwrap();
        assert_eq!(w.highest(), Some(far));
        for c in far - 1023..far {
            assert_eq!(w.check(c), Ok(()), "counter {c} was never seen");
        }
        assert_eq!(w.check(far - 1024), Err(ReplayError::TooOld));
        // And to the very top.
        accept(&mut w, u64::MAX).unwrap();
        assert_eq!(w.check(u64::MAX), Err(ReplayError::Duplicate));
        assert_eq!(w.check(u64::MAX - 1), Ok(()));
        assert_eq!(w.check(far), Err(ReplayError::TooOld));
    }

    #[test]
    fn jump_of_exactly_the_bitmap_length_clears_stale_bits() {
        // 64-counter window, 2 ring words: a jump of 2 words must not leave old bits behind.
        let mut w = ReplayWindow::new(64).unwrap();
        accept(&mut w, 5).unwrap();
        accept(&mut w, 5 + 128).unwrap();
        assert_eq!(w.check(5 + 128 - 63), Ok(()));
        accept(&mut w, 5 + 128 + 64).unwrap();
        assert_eq!(w.check(5 + 128 + 1), Ok(()));
    }

    #[test]
    fn default_uses_the_default_size() {
        let w = ReplayWindow::default();
        assert_eq!(w.size(), DEFAULT_REPLAY_WINDOW);
        assert_eq!(w, ReplayWindow::new(DEFAULT_REPLAY_WINDOW).unwrap());
    }

    #[test]
    fn debug_is_short() {
        let w = ReplayWindow::new(MAX_REPLAY_WINDOW).unwrap();
        let s = format!("{w:?}");
        assert!(s.len() < 80, "{s}");
    }

    fn counters() -> impl Strategy<Value = Vec<u64>> {
        // Mostly local moves around a cursor, with occasional large jumps.
        prop::collection::vec(
            prop_oneof![
                8 => (-200i64..200).prop_map(|d| (d, false)),
                1 => (0i64..5000).prop_map(|d| (d, false)),
                1 => any::<i64>().prop_map(|d| (d, true)),
            ],
            1..400,
        )
        .prop_map(|steps| {
            let mut cursor: u64 = 1 << 20;
            steps
                .into_iter()
                .map(|(d, absolute)| {
                    if absolute {
                        cursor = d as u64;
                    } else {
                        cursor = cursor.saturating_add_signed(d);
                    }
                    cursor
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn matches_reference_model(size_words in 1usize..20, seq in counters()) {
            let size = size_words * 64;
            let mut w = ReplayWindow::new(size).unwrap();
            let mut m = Model { seen: HashSet::new(), highest: None, size: size as u64 };
            for c in seq {
                let expected = m.accept(c);
                let checked = w.check(c);
                prop_assert_eq!(checked, expected, "counter {}", c);
                if checked.is_ok() {
                    w.commit(c);
                }
                prop_assert_eq!(w.highest(), m.highest);
            }
        }

        #[test]
        fn rejected_packets_never_change_state(
            seq in counters(),
            forged in prop::collection::vec(any::<u64>(), 0..50),
        ) {
            // Forged packets are checked but fail authentication: no commit. The window must
            // accept exactly what it would have without them.
            let mut with = ReplayWindow::new(128).unwrap();
            let mut without = ReplayWindow::new(128).unwrap();
            for (i, c) in seq.iter().enumerate() {
                if let Some(f) = forged.get(i) {
                    let _ = with.check(*f);
                }
                prop_assert_eq!(accept(&mut with, *c), accept(&mut without, *c));
            }
            prop_assert_eq!(with, without);
        }
    }
}
