//! Recovery of the whole secret from t shares (spec §8.8, break-glass export).
//!
//! The FROST crate's `reconstruct` silently returns a **wrong** key when given fewer than t
//! shares; [`reconstruct`] refuses fewer than t, refuses shares of different keys, and checks
//! that the result's x-only public key is the npub before returning it. For an imported key the
//! result is the original nsec; for a DKG key it is the tweaked secret whose x-only key is the
//! npub (its public key may have odd y; any BIP340 signer handles that).

use std::collections::BTreeSet;

use zeroize::Zeroizing;

use crate::{Error, NodeShare, Result};

/// Reconstructs the 32-byte secret key from at least t shares of one key.
pub fn reconstruct(shares: &[&NodeShare]) -> Result<Zeroizing<[u8; 32]>> {
    let first = shares.first().ok_or(Error::NotEnoughShares {
        have: 0,
        need: usize::from(crate::limits::MIN_THRESHOLD),
    })?;
    let public = first.public();
    let mut ids = BTreeSet::new();
    for share in shares {
        if share.public() != public {
            return Err(Error::Mismatch {
                reason: "the shares belong to different keys or share versions",
            });
        }
        if !ids.insert(share.id()) {
            return Err(Error::DuplicateParticipant { id: share.id() });
        }
    }
    let need = usize::from(public.threshold());
    if ids.len() < need {
        return Err(Error::NotEnoughShares {
            have: ids.len(),
            need,
        });
    }
    let packages: Vec<_> = shares.iter().map(|s| s.key_package().clone()).collect();
    let key = frost_secp256k1_tr::keys::reconstruct(&packages).map_err(Error::from_frost)?;
    drop(packages);
    let bytes = Zeroizing::new(key.serialize());
    drop(key);
    if bytes.len() != 32 {
        return Err(Error::Internal {
            reason: "a signing key is not 32 bytes",
        });
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&bytes);
    let npub: [u8; 32] = k256::schnorr::SigningKey::from_slice(secret.as_slice())
        .map_err(|_| Error::ReconstructMismatch)?
        .verifying_key()
        .to_bytes()
        .into();
    if npub != public.npub() {
        return Err(Error::ReconstructMismatch);
    }
    Ok(secret)
}
