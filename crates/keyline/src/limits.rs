//! Bounds of the keyline servers, with their defaults and reasons.

/// SHS handshakes in progress at once per listener. A server handshake costs about 0.2 ms of
/// CPU (performance.md); more in flight only queues work. Connections beyond it are closed
/// at once, before any crypto.
pub(crate) const SHS_MAX_HANDSHAKES_IN_FLIGHT: usize = 256;

/// Established SHS connections per listener; further connections are closed at once.
pub(crate) const SHS_MAX_CONNECTIONS: usize = 1024;

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
pub(crate) const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Server handshakes per second started by all clients together: 2000, burst 500. One
/// server handshake costs about 290 µs of CPU here (`keyline bench shs`), so this keeps a
/// flood from taking more than about 60 % of a core; refused connections cost an accept
/// and a close, no crypto.
pub(crate) const SHS_HANDSHAKE_RATE: (f64, f64) = (2000.0, 500.0);

/// Server handshakes per second from one IP address: 20, burst 50.
pub(crate) const SHS_HANDSHAKE_RATE_PER_IP: (f64, f64) = (20.0, 50.0);

/// Client IP addresses the handshake limiter tracks at once.
pub(crate) const SHS_LIMITER_SOURCES: usize = 16_384;
