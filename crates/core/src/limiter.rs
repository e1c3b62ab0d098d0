//! A handshake limiter: token buckets per source address and one for everything, checked
//! before any asymmetric crypto (engineering.md §1, boringtun's limiter ahead of the DH).
//!
//! Sans-IO: time is passed in. The per-source table is bounded; when it is full, buckets
//! that have refilled completely (idle sources) are dropped, and if none has, the new source
//! is refused and counted.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::limits::MAX_LIMITER_SOURCES;

/// Rates of a [`HandshakeLimiter`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LimiterConfig {
    /// Handshakes per second for all sources together.
    pub global_rate: f64,
    /// Burst for all sources together.
    pub global_burst: f64,
    /// Handshakes per second per source.
    pub per_source_rate: f64,
    /// Burst per source.
    pub per_source_burst: f64,
    /// Most sources tracked at once.
    pub max_sources: usize,
}

/// Why a handshake was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// All sources together are over the global rate.
    Global,
    /// This source is over its rate.
    Source,
    /// The source table is full of active sources.
    TableFull,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Self {
        Bucket {
            tokens: burst,
            updated: now,
        }
    }

    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.updated = self.updated.max(now);
    }
}

/// Counters of refusals, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimiterStats {
    /// Handshakes allowed.
    pub allowed: u64,
    /// Refused by the global bucket.
    pub refused_global: u64,
    /// Refused by a source's bucket.
    pub refused_source: u64,
    /// Refused because the source table was full.
    pub refused_table_full: u64,
}

/// Token buckets per source (keyed by `K`, an IP address by default) and globally.
#[derive(Debug)]
pub struct HandshakeLimiter<K = IpAddr> {
    config: LimiterConfig,
    global: Bucket,
    sources: HashMap<K, Bucket>,
    stats: LimiterStats,
}

impl<K: Eq + Hash + Copy> HandshakeLimiter<K> {
    /// A limiter whose buckets start full at `now`. `max_sources` is capped at
    /// [`MAX_LIMITER_SOURCES`].
    pub fn new(config: LimiterConfig, now: Instant) -> Self {
        let config = LimiterConfig {
            max_sources: config.max_sources.clamp(1, MAX_LIMITER_SOURCES),
            ..config
        };
        HandshakeLimiter {
            global: Bucket::full(config.global_burst, now),
            sources: HashMap::new(),
            config,
            stats: LimiterStats::default(),
        }
    }

    /// Takes one token from `source`'s bucket and the global one, or refuses. A refused
    /// handshake takes nothing.
    pub fn allow(&mut self, source: K, now: Instant) -> Result<(), Refused> {
        let c = self.config;
        self.global.refill(c.global_rate, c.global_burst, now);
        if self.global.tokens < 1.0 {
            self.stats.refused_global += 1;
            return Err(Refused::Global);
        }
        if !self.sources.contains_key(&source) && self.sources.len() >= c.max_sources {
            self.evict_idle(now);
            if self.sources.len() >= c.max_sources {
                self.stats.refused_table_full += 1;
                return Err(Refused::TableFull);
            }
        }
        let bucket = self
            .sources
            .entry(source)
            .or_insert_with(|| Bucket::full(c.per_source_burst, now));
        bucket.refill(c.per_source_rate, c.per_source_burst, now);
        if bucket.tokens < 1.0 {
            self.stats.refused_source += 1;
            return Err(Refused::Source);
        }
        bucket.tokens -= 1.0;
        self.global.tokens -= 1.0;
        self.stats.allowed += 1;
        Ok(())
    }

    /// Drops sources whose bucket has refilled completely: forgetting them changes nothing.
    fn evict_idle(&mut self, now: Instant) {
        let c = self.config;
        self.sources.retain(|_, bucket| {
            bucket.refill(c.per_source_rate, c.per_source_burst, now);
            bucket.tokens < c.per_source_burst
        });
    }

    /// Sources currently tracked.
    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }

    /// Counters since creation.
    pub fn stats(&self) -> LimiterStats {
        self.stats
    }

    /// How long until `source` may try again (zero if it may now), for logs and tests.
    pub fn retry_after(&self, source: &K, now: Instant) -> Duration {
        let c = self.config;
        let mut global = self.global;
        global.refill(c.global_rate, c.global_burst, now);
        let wait = |tokens: f64, rate: f64| {
            if tokens >= 1.0 || rate <= 0.0 {
                0.0
            } else {
                (1.0 - tokens) / rate
            }
        };
        let mut secs = wait(global.tokens, c.global_rate);
        if let Some(bucket) = self.sources.get(source) {
            let mut bucket = *bucket;
            bucket.refill(c.per_source_rate, c.per_source_burst, now);
            secs = secs.max(wait(bucket.tokens, c.per_source_rate));
        }
        Duration::from_secs_f64(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LimiterConfig {
        LimiterConfig {
            global_rate: 100.0,
            global_burst: 10.0,
            per_source_rate: 2.0,
            per_source_burst: 3.0,
            max_sources: 4,
        }
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut limiter = HandshakeLimiter::<u32>::new(config(), t0);
        for _ in 0..3 {
            limiter.allow(1, t0).unwrap();
        }
        assert_eq!(limiter.allow(1, t0), Err(Refused::Source));
        assert_eq!(limiter.retry_after(&1, t0), Duration::from_millis(500));
        assert_eq!(
            limiter.allow(1, t0 + Duration::from_millis(499)),
            Err(Refused::Source)
        );
        limiter.allow(1, t0 + Duration::from_millis(500)).unwrap();
        limiter.allow(2, t0).unwrap();
        assert_eq!(limiter.stats().refused_source, 2);
    }

    #[test]
    fn the_global_bucket_caps_all_sources() {
        let t0 = Instant::now();
        let mut limiter = HandshakeLimiter::<u32>::new(
            LimiterConfig {
                max_sources: 100,
                ..config()
            },
            t0,
        );
        let allowed = (0..50).filter(|s| limiter.allow(*s, t0).is_ok()).count();
        assert_eq!(allowed, 10, "the global burst");
        assert_eq!(limiter.allow(99, t0), Err(Refused::Global));
        limiter.allow(99, t0 + Duration::from_millis(10)).unwrap();
    }

    #[test]
    fn a_full_table_drops_idle_sources_and_refuses_when_all_are_active() {
        let t0 = Instant::now();
        let mut limiter = HandshakeLimiter::<u32>::new(config(), t0);
        for s in 0..4 {
            limiter.allow(s, t0).unwrap();
        }
        assert_eq!(limiter.tracked_sources(), 4);
        assert_eq!(
            limiter.allow(4, t0),
            Err(Refused::TableFull),
            "every tracked source is active"
        );
        // After 0.5 s each bucket is full again (1 token used, 2/s): all are idle.
        limiter.allow(4, t0 + Duration::from_millis(500)).unwrap();
        assert_eq!(limiter.tracked_sources(), 1);
        assert_eq!(limiter.stats().refused_table_full, 1);
    }

    #[test]
    fn max_sources_is_capped() {
        let t0 = Instant::now();
        let limiter = HandshakeLimiter::<u32>::new(
            LimiterConfig {
                max_sources: usize::MAX,
                ..config()
            },
            t0,
        );
        assert_eq!(limiter.config.max_sources, MAX_LIMITER_SOURCES);
    }

    #[test]
    fn time_going_backwards_does_not_mint_tokens() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut limiter = HandshakeLimiter::<u32>::new(config(), t0);
        for _ in 0..3 {
            limiter.allow(1, t0).unwrap();
        }
        assert_eq!(
            limiter.allow(1, t0 - Duration::from_secs(5)),
            Err(Refused::Source)
        );
    }
}
