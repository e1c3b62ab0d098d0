//! Randomness: the one adapter between keyline and the FROST crate's RNG traits.
//!
//! `frost-secp256k1-tr` 3 takes `rand_core` **0.6** RNGs, while keyline's other crypto crates
//! are on newer `rand_core` lines (spec §6.3). Every engine function that needs randomness takes
//! `&mut impl` [`SignerRng`] (so state machines and tests pass their own), and [`OsRng`] is the
//! production source: the operating system's CSPRNG through `getrandom` 0.3.

use std::num::NonZeroU32;

/// The `rand_core` 0.6 traits the engine's randomness must implement (re-exported from the
/// FROST crate, so a test RNG can implement exactly these).
pub use frost_secp256k1_tr::rand_core;

use rand_core::{CryptoRng, RngCore};

/// A cryptographically secure RNG usable by the engine: any `rand_core` 0.6
/// `RngCore + CryptoRng`.
pub trait SignerRng: RngCore + CryptoRng {}

impl<T: RngCore + CryptoRng + ?Sized> SignerRng for T {}

/// The operating system's CSPRNG (`getrandom` 0.3) as a `rand_core` 0.6 RNG.
///
/// Like `rand`'s `OsRng`, the infallible methods panic if the operating system cannot
/// provide randomness (there is no safe way to continue); `try_fill_bytes` reports it.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRng;

impl RngCore for OsRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if let Err(err) = getrandom::fill(dest) {
            panic!("the operating system's random number generator failed: {err}");
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        getrandom::fill(dest).map_err(|_| rand_core::Error::from(NonZeroU32::MAX))
    }
}

impl CryptoRng for OsRng {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_rng_fills() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        OsRng.fill_bytes(&mut a);
        OsRng.try_fill_bytes(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(OsRng.next_u64(), OsRng.next_u64());
    }
}
