//! BIP340 verification: the one check every signature of the engine passes before it is
//! returned, and what tests run the BIP340 vectors through.

use crate::{Error, Result};

/// Verifies a BIP340 signature (`x(R) ‖ s`, 64 bytes) over `message` (any length) under the
/// 32-byte x-only public key `npub`, with k256 0.14.
///
/// Fails with [`Error::InvalidSignature`] for a wrong signature, a signature that is not 64
/// bytes or does not parse, and with [`Error::InvalidPeerKey`] when `npub` is not the x
/// coordinate of a curve point.
pub fn verify(npub: &[u8; 32], message: &[u8], signature: &[u8]) -> Result<()> {
    let key = k256::schnorr::VerifyingKey::from_slice(npub).map_err(|_| Error::InvalidPeerKey)?;
    let signature =
        k256::schnorr::Signature::from_slice(signature).map_err(|_| Error::InvalidSignature)?;
    key.verify_raw(message, &signature)
        .map_err(|_| Error::InvalidSignature)
}
