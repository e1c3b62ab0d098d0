//! Every bound of `keyline-kps`, with its default and the reason for it.
//!
//! The QUIC bounds are the defaults of [`crate::Config`]; each can be changed per listener or
//! dialer. The rest are fixed.
//!
//! | name | default | meaning |
//! |---|---|---|
//! | [`IDLE_TIMEOUT`] | 30 s | a connection with no packets in either direction is closed (`timeout`) |
//! | [`HANDSHAKE_TIMEOUT`] | 10 s | accept side: a QUIC handshake must finish within this |
//! | [`DIAL_TIMEOUT`] | 15 s | dial side: the whole dial |
//! | [`MAX_CONNECTIONS`] | 1024 | open connections per listener (incl. handshaking); more are refused |
//! | [`MAX_HANDSHAKES`] | 128 | concurrent incoming handshakes per listener; more are refused |
//! | [`ACCEPT_BACKLOG`] | 64 | established connections waiting for `accept()` |
//! | [`MAX_STREAMS`] | 100 | concurrent peer-opened streams per connection (the 101st open waits) |
//! | [`STREAM_WINDOW`] | 1 MiB | unread bytes per stream |
//! | [`CONNECTION_WINDOW`] | 8 MiB | unread bytes per connection, all streams |
//! | [`SEND_WINDOW`] | 8 MiB | unacknowledged bytes we buffer per connection |
//! | [`DATAGRAM_QUEUE`] | 256 | received datagrams buffered per connection, drop-oldest |
//! | [`DATAGRAM_QUEUE_BYTES`] | 256 × 1200 B | the same bound in bytes, as quinn enforces it |
//! | [`UDP_SOCKET_BUFFER`] | 2 MiB | requested SO_RCVBUF / SO_SNDBUF of every UDP socket |
//! | [`DEMUX_INBOX`] | 1024 | non-QUIC datagrams waiting for the WebRTC side; more are dropped and counted |
//! | [`MAX_WEBRTC_ADDRS`] | 4096 | known WebRTC peer addresses routed past STUN/QUIC |
//! | [`MAX_ADDRESS_LEN`] | 128 | longest address string parsed |
//! | [`MAX_KEY_FILE_LEN`] | 64 KiB | largest key file read |
//! | [`CERT_BACKDATE`], [`CERT_LIFETIME`] | 1 h, 200 × 365 days | certificate validity |

use std::time::Duration;

/// Idle timeout: with no packet in either direction for this long, a connection closes with
/// `timeout`. The quinn/quic-go default; both peers advertise it and the smaller wins.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Accept side: a QUIC handshake that has not completed after this long is abandoned, so a
/// half-open handshake cannot hold a slot of [`MAX_HANDSHAKES`].
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Dial side: the whole dial (the upstream CLI's default `-timeout`).
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(15);

/// Open connections per listener, handshaking ones included. Beyond it new connection
/// attempts are refused (QUIC CONNECTION_REFUSED), bounding memory per listener.
pub const MAX_CONNECTIONS: usize = 1024;

/// Concurrent incoming handshakes per listener (each costs an ECDSA signature and state).
/// Beyond it new attempts are refused.
pub const MAX_HANDSHAKES: usize = 128;

/// Established connections queued for `accept()`. When full, handshake tasks wait.
pub const ACCEPT_BACKLOG: usize = 64;

/// Concurrent streams the peer may open on a connection (QUIC `max_concurrent_bidi_streams`);
/// the peer's next open waits until one retires. Unidirectional streams: 0 (KPS has none).
pub const MAX_STREAMS: u32 = 100;

/// Per-stream receive window: unread bytes the peer may send on one stream.
pub const STREAM_WINDOW: u32 = 1024 * 1024;

/// Per-connection receive window across all streams (quinn's default is unbounded).
pub const CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;

/// Unacknowledged bytes buffered for sending per connection.
pub const SEND_WINDOW: u64 = 8 * 1024 * 1024;

/// Received datagrams buffered per connection before the oldest are dropped (spec §11).
pub const DATAGRAM_QUEUE: usize = 256;

/// [`DATAGRAM_QUEUE`] in bytes (quinn bounds its datagram queue by bytes, counting about 40
/// bytes of bookkeeping per datagram, and drops the oldest). quinn also advertises it as the
/// largest DATAGRAM frame it accepts, so it must stay above the largest expected datagram.
pub const DATAGRAM_QUEUE_BYTES: usize = DATAGRAM_QUEUE * 1200;

/// Requested receive and send buffer of every UDP socket keyline binds (listener and
/// dialers); the kernel caps it at `net.core.rmem_max` / `wmem_max`.
pub const UDP_SOCKET_BUFFER: usize = 2 * 1024 * 1024;

/// Non-QUIC datagrams (STUN, known WebRTC peers) waiting for the WebRTC side. A full inbox
/// drops the datagram and counts it; the socket never waits for a consumer.
pub const DEMUX_INBOX: usize = 1024;

/// Known WebRTC peer addresses in the demux table.
pub const MAX_WEBRTC_ADDRS: usize = 4096;

/// Longest address string accepted by the parser (the longest real one is 95 characters).
pub const MAX_ADDRESS_LEN: usize = 128;

/// Largest key file read (a real one is under 1 KiB).
pub const MAX_KEY_FILE_LEN: usize = 64 * 1024;

/// The certificate's notBefore lies this far in the past (clock skew).
pub const CERT_BACKDATE: Duration = Duration::from_secs(3600);

/// Certificate lifetime from notBefore: 200 × 365 days (trust is the pin, not the dates).
pub const CERT_LIFETIME: Duration = Duration::from_secs(200 * 365 * 24 * 3600);

// ----- WebRTC transport: the listener side (webrtc::server) -------------------------------

/// WebRTC peers (client ufrags) a listener holds at once, in handshake or connected; more new
/// ufrags are refused silently.
pub const MAX_WEBRTC_PEERS: usize = 1024;

/// Source addresses one peer may be reached from (a client checks from several candidates);
/// each needs its own verified STUN request.
pub const MAX_WEBRTC_ADDRS_PER_PEER: usize = 8;

/// New ufrags admitted per source IP per second (spec §6.5 step 4); more are dropped unseen.
pub const WEBRTC_NEW_UFRAGS_PER_SECOND: u32 = 8;

/// Admitted peers waiting for the application.
pub const WEBRTC_ACCEPT_BACKLOG: usize = 64;

/// Datagrams queued for one peer's task; more are dropped and counted (the peer retransmits).
pub const WEBRTC_PEER_INBOX: usize = 256;

/// Channel events queued for the application per peer; a full queue pauses that peer's task.
pub const WEBRTC_PEER_EVENTS: usize = 256;

/// Commands queued per peer.
pub const WEBRTC_PEER_COMMANDS: usize = 64;

/// ICE + DTLS + SCTP must be up within this time after admission, or the peer is reaped.
pub const WEBRTC_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
