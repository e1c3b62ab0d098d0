//! Finishing a client handshake against `keyline_core::PinStore` (section 5): the only
//! I/O-touching helper in this crate, kept out of [`crate::proto`].
//!
//! Order: read the pin for (`sbrp`, daemon id) → [`trust::decide`] → verify the signature
//! with the selected key and derive the session ([`ClientHandshake::finish`]) → only then
//! [`PinStore::check`], which pins under `tofu`, asks under `prompt`, and refuses a changed
//! key. A changed key is [`Error::IdentityKeyChanged`] with both fingerprints in SBRP's
//! format; `strict` without a pin and a refusal at the prompt for a new daemon are
//! [`Error::HandshakeFailed`].

use std::time::Instant;

use keyline_core::{PinOutcome, PinStore, Policy, Prompt};

use crate::error::{Error, Result};
use crate::proto::frame::Accept;
use crate::proto::handshake::ClientHandshake;
use crate::proto::session::Session;
use crate::proto::trust::{self, PIN_PROTOCOL, TrustDecision};

/// Applies the trust policy to the Accept, finishes the handshake and records the pin
/// after success. `now` is the handshake clock, `now_unix` stamps a new pin.
pub async fn finish_with_pins(
    store: &PinStore,
    policy: Policy,
    prompt: Option<&dyn Prompt>,
    handshake: ClientHandshake,
    accept: &Accept,
    now: Instant,
    now_unix: u64,
) -> Result<(Session, PinOutcome)> {
    let daemon_id = handshake.daemon_id().to_owned();
    let pinned = store
        .get(PIN_PROTOCOL, &daemon_id)
        .await
        .map_err(Error::Pins)?;
    let pinned_key = pinned.as_ref().map(|p| p.key.as_slice());
    let decision = trust::decide(policy, &daemon_id, pinned_key, &accept.identity_key)?;
    let selected: [u8; 32] = match (&decision, pinned_key) {
        (TrustDecision::Known, Some(key)) => {
            key.try_into().map_err(|_| Error::HandshakeFailed {
                reason: "pinned key is not 32 bytes",
            })?
        }
        _ => accept.identity_key,
    };
    let session = handshake.finish(accept, &selected, now)?;
    let outcome = store
        .check(
            policy,
            PIN_PROTOCOL,
            &daemon_id,
            &accept.identity_key,
            now_unix,
            prompt,
        )
        .await;
    match outcome {
        Ok(outcome) => Ok((session, outcome)),
        Err(keyline_core::Error::PinMismatch { .. }) => {
            // Pinned meanwhile (another process) or still pinned: report both keys.
            let current = store
                .get(PIN_PROTOCOL, &daemon_id)
                .await
                .map_err(Error::Pins)?;
            Err(match current {
                Some(pin) => trust::key_changed(&daemon_id, &pin.key, &accept.identity_key),
                None => Error::HandshakeFailed {
                    reason: "pin changed during the handshake",
                },
            })
        }
        Err(keyline_core::Error::PinRefused { .. }) => Err(match pinned_key {
            Some(old) => trust::key_changed(&daemon_id, old, &accept.identity_key),
            None => Error::HandshakeFailed {
                reason: "daemon identity key refused at the prompt",
            },
        }),
        Err(keyline_core::Error::NotPinned { .. }) => Err(Error::HandshakeFailed {
            reason: "daemon identity key is not pinned (policy strict)",
        }),
        Err(other) => Err(Error::Pins(other)),
    }
}
