//! The QUIC transport (spec §5) and the listener.

pub(crate) mod config;
pub(crate) mod connection;
pub(crate) mod dial;
pub(crate) mod listener;
