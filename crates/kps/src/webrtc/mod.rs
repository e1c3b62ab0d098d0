//! KPS over WebRTC (spec §6–§12): ICE-lite, DTLS, SCTP data channels on the listener's port.
//!
//! * [`proto`] — the sans-IO engine: wire v1 framing, control messages, HELLO, credit flow
//!   control and the stream state machine, shared by the server and the Rust client.
//! * `connection` (feature `webrtc`) — a connection and its streams: the tokio driver that runs
//!   the engine over a str0m peer's data channels.
//! * `client` (feature `webrtc`) — dialing an address: fresh ufrag, pinned DTLS, full ICE.
//! * `server` (feature `webrtc`) — the listener side: STUN gate, peer table, one task per peer.
//! * `peer` (feature `webrtc`) — the str0m `Rtc` of either role, set up through str0m's direct API (no SDP).

#[cfg(feature = "webrtc")]
pub mod client;
#[cfg(feature = "webrtc")]
pub mod connection;
#[cfg(feature = "webrtc")]
pub mod peer;
pub mod proto;
#[cfg(feature = "webrtc")]
pub mod server;
