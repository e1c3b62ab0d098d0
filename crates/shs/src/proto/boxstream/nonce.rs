//! The box-stream nonce: one big-endian 192-bit counter.

/// Adds one to a big-endian 192-bit counter, wrapping `ff…ff` to `00…00` (spec §10).
/// Not libsodium's `sodium_increment`, which is little-endian.
pub fn increment_nonce(nonce: &mut [u8; 24]) {
    for byte in nonce.iter_mut().rev() {
        let (next, carry) = byte.overflowing_add(1);
        *byte = next;
        if !carry {
            return;
        }
    }
}

/// The nonce after `nonce`.
pub(crate) fn next(nonce: &[u8; 24]) -> [u8; 24] {
    let mut out = *nonce;
    increment_nonce(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_and_wraps() {
        let mut n = [0u8; 24];
        n[23] = 0xff;
        n[22] = 0xff;
        increment_nonce(&mut n);
        assert_eq!(n[21..], [1, 0, 0]);
        let mut all = [0xffu8; 24];
        increment_nonce(&mut all);
        assert_eq!(all, [0u8; 24]);
    }
}
