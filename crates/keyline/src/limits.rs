//! Bounds of the keyline servers, with their defaults and reasons.

/// SHS handshakes in progress at once per listener. A server handshake costs about 0.2 ms of
/// CPU (performance.md); more in flight only queues work. Connections beyond it are closed
/// at once, before any crypto.
pub(crate) const SHS_MAX_HANDSHAKES_IN_FLIGHT: usize = 256;

/// Established SHS connections per listener; further connections are closed at once.
pub(crate) const SHS_MAX_CONNECTIONS: usize = 1024;

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
pub(crate) const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);
