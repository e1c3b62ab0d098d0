//! Every bound of `keyline-relay`, with its default and the reason for it (spec section 8.6).
//!
//! The constants are the defaults; [`Limits`] carries the values a running relay uses, and
//! every field of it can be changed through [`crate::RelayConfig::limits`].
//!
//! | field | default | behaviour when reached |
//! |---|---|---|
//! | [`Limits::max_message`] | 65 549 (13 + 65 536) | WebSocket layer refuses it: `payload_too_large` (sid 0), close |
//! | [`Limits::frames_per_second`] / [`Limits::frame_burst`] | 100 / 200 | the relay stops reading that connection until tokens return (nothing dropped); one `rate_limited` (sid 0) per [`Limits::rate_limited_window`] |
//! | [`Limits::send_queue_frames`] / [`Limits::send_queue_bytes`] | 128 frames / 4 MiB | `backpressure` (sid 0) written directly, then close; never a silent drop |
//! | [`Limits::read_buffer`] | 4 KiB | the WebSocket read chunk reserved per connection (tungstenite's default is 128 KiB, which an idle connection would hold); larger frames are read in several chunks |
//! | [`Limits::write_timeout`] | 2 s | the connection is dead: closed without further writes |
//! | [`Limits::keepalive_interval`] | 15 s | WebSocket Ping each interval; after [`Limits::keepalive_missed`] (2) silent intervals the connection is closed |
//! | [`Limits::sessions_per_daemon`] | 5 (`lim.concurrent_sessions` overrides) | HTTP 429 `too_many_sessions` before the upgrade |
//! | [`Limits::max_connections`] | 10 000 | HTTP 429 `too_many_connections` before the upgrade |
//! | [`Limits::grace_period`] | 30 s | paused/pending pairings expire (`session_expired`) |
//! | [`Limits::max_token_len`] | 4 096 | 401 |
//! | [`Limits::clock_skew`] | 30 s | tokens expired by less are still accepted |
//! | [`Limits::client_max_ttl`] / [`Limits::client_warn_ttl`] | 300 s / 120 s | client `exp − iat` above the first: 401; above the second: accepted, warned |
//! | [`Limits::client_token_ttl`] | 120 s | TTL of issued client session tokens |
//! | [`Limits::presence_token_ttl`] | 1 h | TTL of issued daemon presence tokens |
//! | [`Limits::challenge_ttl`] | 60 s | issuer challenges are single use and expire |
//! | [`Limits::max_challenges`] | 10 000 | outstanding issuer challenges; beyond: HTTP 429 |
//! | [`Limits::max_daemons`] | 100 000 | daemon ids the relay and issuer track; beyond: HTTP 429 / `daemon_not_found` |
//! | [`Limits::max_used_sids`] | 65 536 per daemon | remembered (recently used) sids; beyond: HTTP 429 |
//! | [`Limits::max_daemon_id_len`] | 256 bytes | longer ids are refused (HTTP 400 / 401) |
//! | [`Limits::max_request_body`] | 16 KiB | issuer request bodies; larger: HTTP 413 |
//! | [`Limits::upgrade_reservation`] | 10 s | a client admitted before the upgrade must connect within this time or its slot is freed |
//! | [`Limits::pre_upgrade_timeout`] | 10 s | a TCP connection must get its first HTTP response (e.g. the 101 of the upgrade) within this time, else it is dropped |
//! | [`Limits::sweep_interval`] | 250 ms | how often grace periods and remembered sids are checked |

use std::time::Duration;

use keyline_sbrp::limits::{MAX_FRAME, MAX_PAYLOAD};

/// Largest SBRP payload (spec 2.1).
pub const MAX_PAYLOAD_LEN: usize = MAX_PAYLOAD;
/// Largest WebSocket message and frame: one whole SBRP frame.
pub const MAX_MESSAGE: usize = MAX_FRAME;
/// Token bucket refill rate per connection, frames per second.
pub const FRAMES_PER_SECOND: u32 = 100;
/// Token bucket size per connection.
pub const FRAME_BURST: u32 = 200;
/// At most one `rate_limited` per window while a connection is throttled.
pub const RATE_LIMITED_WINDOW: Duration = Duration::from_secs(1);
/// Send queue depth per connection, in frames (iroh-relay's queue is counted in packets; SBRP
/// frames are up to 64 KiB, so the byte bound below matters as much).
pub const SEND_QUEUE_FRAMES: usize = 128;
/// Send queue size per connection, in bytes.
pub const SEND_QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// WebSocket read chunk per connection: what an idle connection holds for reading. Small so
/// that idle sessions stay cheap (issue target ≤ 16 KiB per idle session); a 64 KiB frame is
/// read in several chunks.
pub const READ_BUFFER: usize = 4 * 1024;
/// Per-write deadline (iroh-relay, DERP).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// WebSocket Ping interval (iroh-relay).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// Silent keepalive intervals before the connection is closed.
pub const KEEPALIVE_MISSED: u32 = 2;
/// Concurrent pairings per daemon unless its token says otherwise.
pub const SESSIONS_PER_DAEMON: usize = 5;
/// WebSocket connections per relay.
pub const MAX_CONNECTIONS: usize = 10_000;
/// Grace period after a daemon disconnect (spec 8.5).
pub const GRACE_PERIOD: Duration = Duration::from_secs(30);
/// Largest accepted token.
pub const MAX_TOKEN_LEN: usize = 4096;
/// Clock skew allowed on `exp`.
pub const CLOCK_SKEW: Duration = Duration::from_secs(30);
/// Largest client `exp − iat` accepted.
pub const CLIENT_MAX_TTL: Duration = Duration::from_secs(300);
/// Client `exp − iat` above which the relay logs a warning.
pub const CLIENT_WARN_TTL: Duration = Duration::from_secs(120);
/// TTL of client session tokens the issuer hands out.
pub const CLIENT_TOKEN_TTL: Duration = Duration::from_secs(120);
/// TTL of daemon presence tokens the issuer hands out.
pub const PRESENCE_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Lifetime of an issuer challenge.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(60);
/// Outstanding issuer challenges.
pub const MAX_CHALLENGES: usize = 10_000;
/// Daemon ids tracked by the registry.
pub const MAX_DAEMONS: usize = 100_000;
/// Remembered sids per daemon (closed pairings are remembered until their token's `exp` + 30 s).
pub const MAX_USED_SIDS: usize = 65_536;
/// Longest daemon id, in bytes.
pub const MAX_DAEMON_ID_LEN: usize = 256;
/// Largest issuer request body.
pub const MAX_REQUEST_BODY: usize = 16 * 1024;
/// Time an admitted client has to finish the WebSocket upgrade.
pub const UPGRADE_RESERVATION: Duration = Duration::from_secs(10);
/// Time from accepting a TCP connection to the first response byte (spec 8.6: "10 s to
/// complete the HTTP upgrade").
pub const PRE_UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);
/// Timer sweep period of the tokio adapter.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(250);

/// The bounds a relay runs with. `Default` gives the constants of this module.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest WebSocket message / frame ([`MAX_MESSAGE`]).
    pub max_message: usize,
    /// Token bucket refill rate ([`FRAMES_PER_SECOND`]); 0 disables rate limiting.
    pub frames_per_second: u32,
    /// Token bucket size ([`FRAME_BURST`]).
    pub frame_burst: u32,
    /// One `rate_limited` per this window ([`RATE_LIMITED_WINDOW`]).
    pub rate_limited_window: Duration,
    /// Send queue depth in frames ([`SEND_QUEUE_FRAMES`]).
    pub send_queue_frames: usize,
    /// Send queue size in bytes ([`SEND_QUEUE_BYTES`]).
    pub send_queue_bytes: usize,
    /// WebSocket read chunk per connection ([`READ_BUFFER`]).
    pub read_buffer: usize,
    /// Per-write deadline ([`WRITE_TIMEOUT`]).
    pub write_timeout: Duration,
    /// WebSocket Ping interval ([`KEEPALIVE_INTERVAL`]).
    pub keepalive_interval: Duration,
    /// Silent intervals before close ([`KEEPALIVE_MISSED`]).
    pub keepalive_missed: u32,
    /// Default pairings per daemon ([`SESSIONS_PER_DAEMON`]).
    pub sessions_per_daemon: usize,
    /// Connections per relay ([`MAX_CONNECTIONS`]).
    pub max_connections: usize,
    /// Grace period ([`GRACE_PERIOD`]).
    pub grace_period: Duration,
    /// Largest token ([`MAX_TOKEN_LEN`]).
    pub max_token_len: usize,
    /// Clock skew on `exp` ([`CLOCK_SKEW`]).
    pub clock_skew: Duration,
    /// Largest client token lifetime ([`CLIENT_MAX_TTL`]).
    pub client_max_ttl: Duration,
    /// Client token lifetime above which a warning is logged ([`CLIENT_WARN_TTL`]).
    pub client_warn_ttl: Duration,
    /// Lifetime of issued client tokens ([`CLIENT_TOKEN_TTL`]).
    pub client_token_ttl: Duration,
    /// Lifetime of issued presence tokens ([`PRESENCE_TOKEN_TTL`]).
    pub presence_token_ttl: Duration,
    /// Lifetime of issuer challenges ([`CHALLENGE_TTL`]).
    pub challenge_ttl: Duration,
    /// Outstanding issuer challenges ([`MAX_CHALLENGES`]).
    pub max_challenges: usize,
    /// Tracked daemon ids ([`MAX_DAEMONS`]).
    pub max_daemons: usize,
    /// Remembered sids per daemon ([`MAX_USED_SIDS`]).
    pub max_used_sids: usize,
    /// Longest daemon id ([`MAX_DAEMON_ID_LEN`]).
    pub max_daemon_id_len: usize,
    /// Largest issuer request body ([`MAX_REQUEST_BODY`]).
    pub max_request_body: usize,
    /// Time to finish the upgrade after admission ([`UPGRADE_RESERVATION`]).
    pub upgrade_reservation: Duration,
    /// Time to the first HTTP response on a new connection ([`PRE_UPGRADE_TIMEOUT`]).
    pub pre_upgrade_timeout: Duration,
    /// Timer sweep period ([`SWEEP_INTERVAL`]).
    pub sweep_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: MAX_MESSAGE,
            frames_per_second: FRAMES_PER_SECOND,
            frame_burst: FRAME_BURST,
            rate_limited_window: RATE_LIMITED_WINDOW,
            send_queue_frames: SEND_QUEUE_FRAMES,
            send_queue_bytes: SEND_QUEUE_BYTES,
            read_buffer: READ_BUFFER,
            write_timeout: WRITE_TIMEOUT,
            keepalive_interval: KEEPALIVE_INTERVAL,
            keepalive_missed: KEEPALIVE_MISSED,
            sessions_per_daemon: SESSIONS_PER_DAEMON,
            max_connections: MAX_CONNECTIONS,
            grace_period: GRACE_PERIOD,
            max_token_len: MAX_TOKEN_LEN,
            clock_skew: CLOCK_SKEW,
            client_max_ttl: CLIENT_MAX_TTL,
            client_warn_ttl: CLIENT_WARN_TTL,
            client_token_ttl: CLIENT_TOKEN_TTL,
            presence_token_ttl: PRESENCE_TOKEN_TTL,
            challenge_ttl: CHALLENGE_TTL,
            max_challenges: MAX_CHALLENGES,
            max_daemons: MAX_DAEMONS,
            max_used_sids: MAX_USED_SIDS,
            max_daemon_id_len: MAX_DAEMON_ID_LEN,
            max_request_body: MAX_REQUEST_BODY,
            upgrade_reservation: UPGRADE_RESERVATION,
            pre_upgrade_timeout: PRE_UPGRADE_TIMEOUT,
            sweep_interval: SWEEP_INTERVAL,
        }
    }
}

/// A per-connection token bucket counted in frames (sans-IO: time is an input).
///
/// [`take`](Self::take) either spends one token or says how long until one is available; the
/// driver then stops reading the connection for that long (TCP backpressure) instead of
/// dropping anything.
#[derive(Debug, Clone)]
pub struct FrameBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<std::time::Instant>,
}

impl FrameBucket {
    /// A full bucket. `rate` 0 means unlimited.
    pub fn new(rate: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        FrameBucket {
            rate: f64::from(rate),
            burst,
            tokens: burst,
            last: None,
        }
    }

    /// Spends one token at `now`, or returns the wait until one is available.
    pub fn take(&mut self, now: std::time::Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - self.tokens;
            Err(Duration::from_secs_f64(missing / self.rate).max(Duration::from_millis(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn bucket_edge_and_past() {
        let t0 = Instant::now();
        let mut b = FrameBucket::new(100, 200);
        for _ in 0..200 {
            assert!(b.take(t0).is_ok());
        }
        let wait = b.take(t0).unwrap_err();
        assert!(wait <= Duration::from_millis(11), "{wait:?}");
        assert!(b.take(t0 + Duration::from_millis(10)).is_ok());
        assert!(b.take(t0 + Duration::from_millis(10)).is_err());
        // Refill never exceeds the burst.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..200 {
            assert!(b.take(later).is_ok());
        }
        assert!(b.take(later).is_err());
        let mut off = FrameBucket::new(0, 1);
        for _ in 0..1000 {
            assert!(off.take(t0).is_ok());
        }
    }

    #[test]
    fn defaults_match_spec() {
        let l = Limits::default();
        assert_eq!(l.max_message, 65_549);
        assert_eq!((l.frames_per_second, l.frame_burst), (100, 200));
        assert_eq!((l.send_queue_frames, l.send_queue_bytes), (128, 4 << 20));
        assert_eq!(l.sessions_per_daemon, 5);
        assert_eq!(l.max_connections, 10_000);
    }
}
