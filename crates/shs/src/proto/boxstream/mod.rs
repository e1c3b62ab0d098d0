//! Box-stream (spec §10–§12): each direction is a sequence of packets
//! `header(34) | body(1..=4096)` and ends with a 34-byte goodbye. The body is sealed at nonce
//! `n+1`, its tag goes into the header sealed at `n`; the nonce is a big-endian 192-bit counter.

mod decoder;
mod encoder;
mod nonce;

pub use decoder::BoxDecoder;
pub use encoder::BoxEncoder;
pub use nonce::increment_nonce;
