//! keyline-sbrp decoders (work in progress: the SBRP helper fills this in).

/// Fuzz entry point for keyline-sbrp's decoders. Placeholder until the crate has decoders.
pub fn sbrp_decoders(data: &[u8]) {
    let _ = data;
}
