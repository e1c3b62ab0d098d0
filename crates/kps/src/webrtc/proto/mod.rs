//! The KPS wire protocol over WebRTC data channels (wire version 1, spec §7–§11), sans-IO:
//! stream frames on application channels ([`frame`]), control messages on channel 0
//! ([`control`]), the credit counters of flow control ([`flow`]), one stream's two halves
//! ([`stream`]) and the connection [`engine::Engine`] tying them to channel events. No str0m, no tokio, no
//! clock: compiled without the `webrtc` feature too, so the fuzz targets reach it.
//!
//! Still to come: the tokio adapter driving an [`engine::Engine`] from a str0m peer's channel
//! events (so `Connection`/`Stream` work over WebRTC), the bounded close sequence of §9.4.

pub mod control;
pub mod engine;
pub mod flow;
pub mod frame;
pub mod stream;
