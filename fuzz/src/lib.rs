//! Fuzz entry points for `keyline-shs`, the key-material parsers of `keyline-core` and the
//! address/certhash parsers of `keyline-kps`, keyline-http's header parsers and
//! keyline-signer's decoders and NIP-46 parsers and keyline-relay's token validator.
//!
//! Each public function takes arbitrary bytes, drives one sans-IO state machine of the crate
//! with them and asserts its invariants (a failed assertion is a bug, like a panic in the
//! crate). The same functions are called by
//! * the cargo-fuzz targets in `fuzz_targets/` (libFuzzer),
//! * `tests/corpus.rs`, a stable `#[test]` that runs every file of `seeds/<target>/`,
//! * `tests/proptest.rs`, which feeds them random bytes.
//!
//! The input layouts are documented on each function and in `README.md`; the seed
//! generator in `tests/gen_seeds.rs` writes inputs in exactly these layouts.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod boxstream;
mod core_parsers;
pub mod fixtures;
mod handshake;
mod http_parsers;
mod kps_engine;
mod kps_parsers;
mod kps_wire;
mod nip46_messages;
mod relay_tokens;
mod sbrp_decoders;
mod signer_decoders;

pub use boxstream::boxstream_decoder;
pub use core_parsers::core_parsers;
pub use handshake::{shs_client_messages, shs_server_messages};
pub use http_parsers::http_parsers;
pub use kps_engine::kps_engine;
pub use kps_parsers::kps_parsers;
pub use kps_wire::kps_wire_v1;
pub use nip46_messages::nip46_messages;
pub use relay_tokens::relay_tokens;
pub use sbrp_decoders::sbrp_decoders;
pub use signer_decoders::signer_decoders;

/// A fuzz entry point: takes any bytes, panics only on a bug.
pub type EntryPoint = fn(&[u8]);

/// Every entry point with its target name (= the directory name under `seeds/`).
pub const TARGETS: &[(&str, EntryPoint)] = &[
    ("shs_server_messages", shs_server_messages),
    ("shs_client_messages", shs_client_messages),
    ("boxstream_decoder", boxstream_decoder),
    ("core_parsers", core_parsers),
    ("kps_parsers", kps_parsers),
    ("http_parsers", http_parsers),
    ("signer_decoders", signer_decoders),
    ("sbrp_decoders", sbrp_decoders),
    ("relay_tokens", relay_tokens),
    ("nip46_messages", nip46_messages),
    ("kps_wire_v1", kps_wire_v1),
    ("kps_engine", kps_engine),
];

/// Reads fuzz input front to back; past the end it yields zeros, so short inputs are padded.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Cursor { data }
    }

    /// The next byte, or 0 when the input is used up.
    pub(crate) fn byte(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    /// The next `N` bytes, zero-padded.
    pub(crate) fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = self.data.len().min(N);
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        out
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub(crate) fn take(&mut self, n: usize) -> &'a [u8] {
        let n = self.data.len().min(n);
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        head
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}
