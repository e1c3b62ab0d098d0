//! The KPS wire protocol over WebRTC data channels (wire version 1, spec §7–§11), sans-IO:
//! stream frames on application channels ([`frame`]), control messages on channel 0
//! ([`control`]) and the credit counters of flow control ([`flow`]). No str0m, no tokio, no
//! clock: compiled without the `webrtc` feature too, so the fuzz targets reach it.
//!
//! Still to come on top of these: the per-stream state machines (§8.2–§8.4), HELLO sequencing
//! and cross-channel staging (§9.2–§9.3), retirement (§10.4) and the engine tying them to a
//! peer's channel events.

pub mod control;
pub mod flow;
pub mod frame;
