//! The KPS wire protocol over WebRTC data channels (wire version 1, spec §7–§11), sans-IO:
//! stream frames on application channels ([`frame`]), control messages on channel 0
//! ([`control`]), the credit counters of flow control ([`flow`]) and one stream's two halves
//! ([`stream`]). No str0m, no tokio, no
//! clock: compiled without the `webrtc` feature too, so the fuzz targets reach it.
//!
//! Still to come on top of these: HELLO sequencing and cross-channel staging (§9.2–§9.3), the
//! retirement sequence with channel closes (§10.4–§10.5) and the connection engine tying
//! streams to a peer's channel events.

pub mod control;
pub mod flow;
pub mod frame;
pub mod stream;
