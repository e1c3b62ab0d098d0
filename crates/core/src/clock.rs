//! Time as an input.
//!
//! Sans-IO protocol cores never read a clock; their drivers pass `now` in, taken from a
//! [`Clock`]. Production code uses [`SystemClock`]; tests use [`ManualClock`] and move time
//! forward by hours in a microsecond.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of monotonic and wall-clock time, shareable as `Arc<dyn Clock>`.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current monotonic time, for deadlines and timeouts.
    fn now(&self) -> Instant;

    /// The current wall-clock time in whole seconds since the Unix epoch, for timestamps that
    /// are stored or sent. Times before the epoch read as 0.
    fn unix_now(&self) -> u64;
}

/// The operating system's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock that moves only when told to, for deterministic tests.
///
/// [`advance`](Self::advance) moves both the monotonic and the wall clock;
/// [`set_unix`](Self::set_unix) moves only the wall clock, as an NTP step would.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<ManualState>,
}

#[derive(Debug, Clone, Copy)]
struct ManualState {
    now: Instant,
    unix: Duration,
}

impl ManualClock {
    /// A clock whose wall time reads `unix_secs` and whose monotonic time starts at the
    /// moment of the call.
    pub fn new(unix_secs: u64) -> Self {
        Self {
            state: Mutex::new(ManualState {
                now: Instant::now(),
                unix: Duration::from_secs(unix_secs),
            }),
        }
    }

    /// Moves both clocks forward by `by`.
    ///
    /// # Panics
    ///
    /// If the monotonic time would overflow `Instant` (more than centuries ahead).
    pub fn advance(&self, by: Duration) {
        let mut state = self.lock();
        state.now = state
            .now
            .checked_add(by)
            .expect("ManualClock advanced past the range of Instant");
        state.unix = state.unix.saturating_add(by);
    }

    /// Sets the wall clock to `unix_secs`, leaving the monotonic clock alone.
    pub fn set_unix(&self, unix_secs: u64) {
        self.lock().unix = Duration::from_secs(unix_secs);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        // The state is two plain values, always consistent; a panic elsewhere cannot break it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for ManualClock {
    /// A clock at Unix time 1 700 000 000 (November 2023).
    fn default() -> Self {
        Self::new(1_700_000_000)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.lock().now
    }

    fn unix_now(&self) -> u64 {
        self.lock().unix.as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn manual_clock_advances_both() {
        let clock = ManualClock::new(1000);
        let t0 = clock.now();
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now() - t0, Duration::from_millis(1500));
        assert_eq!(clock.unix_now(), 1001);
        clock.advance(Duration::from_millis(500));
        assert_eq!(clock.unix_now(), 1002);
    }

    #[test]
    fn set_unix_moves_only_wall_clock() {
        let clock = ManualClock::new(1000);
        let t0 = clock.now();
        clock.set_unix(5);
        assert_eq!(clock.unix_now(), 5);
        assert_eq!(clock.now(), t0);
        clock.set_unix(u64::MAX);
        clock.advance(Duration::from_secs(10));
        assert_eq!(clock.unix_now(), u64::MAX, "wall clock saturates");
    }

    #[test]
    fn usable_as_shared_trait_object() {
        let manual = Arc::new(ManualClock::default());
        let clock: Arc<dyn Clock> = manual.clone();
        let before = clock.unix_now();
        manual.advance(Duration::from_secs(3600));
        assert_eq!(clock.unix_now(), before + 3600);
        std::thread::spawn(move || clock.now()).join().unwrap();
    }

    #[test]
    fn system_clock_is_after_2020() {
        let clock: &dyn Clock = &SystemClock;
        assert!(clock.unix_now() > 1_577_836_800);
        let a = clock.now();
        assert!(clock.now() >= a);
    }
}
