//! Randomness as an input.
//!
//! The core takes random bytes as arguments; the server layer and the client draw them from a
//! [`RandomSource`], which tests can replace with a deterministic one.

use std::fmt;

use crate::error::{Error, Result};

/// A source of random bytes (nonces, server-nonce randomness, BIP340 `aux_rand`).
pub trait RandomSource: Send + Sync + fmt::Debug {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]) -> Result<()>;
}

/// The operating system's random number generator.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<()> {
        getrandom::fill(buf).map_err(Error::Rng)
    }
}

/// `N` random bytes from `source`.
#[cfg_attr(not(any(feature = "server", feature = "client")), allow(dead_code))]
pub(crate) fn bytes<const N: usize>(source: &dyn RandomSource) -> Result<[u8; N]> {
    let mut out = [0u8; N];
    source.fill(&mut out)?;
    Ok(out)
}
