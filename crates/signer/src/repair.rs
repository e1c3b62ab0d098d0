//! Repair of a lost share (Repairable Threshold Scheme, spec §6.3 and §8.8).
//!
//! A set A of at least t helpers (share holders other than the lost one) rebuilds participant
//! N's share without anyone learning a share:
//!
//! 1. each helper runs [`part1`] and sends delta_j to each member j of A (itself included),
//!    sealed (deltas are secret);
//! 2. each helper sums the deltas it received with [`part2`] and sends the sigma, sealed, to N;
//! 3. N runs [`part3`] with all sigmas and the key's public key package; the rebuilt share
//!    must match N's verifying share in the package (checked).
//!
//! Deltas and sigmas are kept as zeroizing bytes and never printed.

use std::collections::BTreeMap;
use std::fmt;

use frost_secp256k1_tr::keys::repairable as frepair;
use zeroize::Zeroizing;

use crate::{Error, NodeShare, ParticipantId, PublicKeyPackage, Result, SignerRng};

macro_rules! secret_scalar {
    ($name:ident, $what:literal, $frost:ty) => {
        #[doc = concat!("A repair ", $what, ": a secret 32-byte scalar. Zeroized on drop.")]
        pub struct $name(Zeroizing<[u8; 32]>);

        impl $name {
            /// The 32 bytes (secret: seal them for their recipient).
            pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
                self.0.clone()
            }

            /// Parses a canonical 32-byte scalar.
            pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
                <$frost>::deserialize(bytes).map_err(|_| Error::Malformed {
                    what: concat!("repair ", $what),
                })?;
                Ok(Self(Zeroizing::new(*bytes)))
            }

            fn from_frost(value: &$frost) -> Result<Self> {
                let bytes = Zeroizing::new(value.serialize());
                let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| Error::Internal {
                    reason: concat!("a repair ", $what, " is not 32 bytes"),
                })?;
                Ok(Self(Zeroizing::new(array)))
            }

            fn to_frost(&self) -> Result<$frost> {
                <$frost>::deserialize(self.0.as_slice()).map_err(|_| Error::Internal {
                    reason: concat!("a stored repair ", $what, " does not decode"),
                })
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }
    };
}

secret_scalar!(RepairDelta, "delta", frepair::Delta);
secret_scalar!(RepairSigma, "sigma", frepair::Sigma);

/// Step 1 on helper `helper`: the deltas for every member of `helpers` (keyed by recipient,
/// this helper included), to rebuild `lost`'s share.
pub fn part1(
    helper: &NodeShare,
    helpers: &[ParticipantId],
    lost: ParticipantId,
    rng: &mut impl SignerRng,
) -> Result<BTreeMap<ParticipantId, RepairDelta>> {
    let public = helper.public();
    let mut list = helpers.to_vec();
    list.sort();
    list.dedup();
    if list.len() != helpers.len() {
        return Err(Error::params("the helper list has duplicates"));
    }
    if list.contains(&lost) {
        return Err(Error::params(format!(
            "participant {lost} cannot help repair its own share"
        )));
    }
    if !public.contains(lost) {
        return Err(Error::UnknownParticipant { id: lost });
    }
    if let Some(id) = list.iter().find(|id| !public.contains(**id)) {
        return Err(Error::UnknownParticipant { id: *id });
    }
    if !list.contains(&helper.id()) {
        return Err(Error::params(format!(
            "participant {} helps but is not in the helper list",
            helper.id()
        )));
    }
    if list.len() < usize::from(public.threshold()) {
        return Err(Error::NotEnoughShares {
            have: list.len(),
            need: usize::from(public.threshold()),
        });
    }
    let frost_helpers: Vec<_> = list.iter().map(|id| id.to_frost()).collect();
    // The `-tr` wrapper has an unused generic parameter (spec §6.3): name the suite.
    let deltas = frepair::repair_share_part1::<frost_secp256k1_tr::Secp256K1Sha256TR, _>(
        &frost_helpers,
        helper.key_package(),
        rng,
        lost.to_frost(),
    )
    .map_err(Error::from_frost)?;
    deltas
        .iter()
        .map(|(id, delta)| {
            let id = ParticipantId::from_frost(id).ok_or(Error::Internal {
                reason: "delta recipient outside keyline's range",
            })?;
            Ok((id, RepairDelta::from_frost(delta)?))
        })
        .collect()
}

/// Step 2 on a helper: the sum of the deltas it received (one from every helper).
pub fn part2(deltas: &[RepairDelta]) -> Result<RepairSigma> {
    let deltas = deltas
        .iter()
        .map(RepairDelta::to_frost)
        .collect::<Result<Vec<_>>>()?;
    RepairSigma::from_frost(&frepair::repair_share_part2(&deltas))
}

/// Step 3 on the repaired node `lost`: its share from the helpers' sigmas, checked against its
/// verifying share in `public` ([`Error::Mismatch`] if the helpers' inputs were wrong).
pub fn part3(
    sigmas: &[RepairSigma],
    lost: ParticipantId,
    public: &PublicKeyPackage,
) -> Result<NodeShare> {
    if !public.contains(lost) {
        return Err(Error::UnknownParticipant { id: lost });
    }
    let need = usize::from(public.threshold());
    if sigmas.len() < need {
        return Err(Error::NotEnoughShares {
            have: sigmas.len(),
            need,
        });
    }
    let sigmas = sigmas
        .iter()
        .map(RepairSigma::to_frost)
        .collect::<Result<Vec<_>>>()?;
    let key = frepair::repair_share_part3(&sigmas, lost.to_frost(), public.frost())
        .map_err(Error::from_frost)?;
    NodeShare::from_parts(key, public.clone())
}
