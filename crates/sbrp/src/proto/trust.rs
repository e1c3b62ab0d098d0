//! Identity fingerprints and the trust decision of section 5, without I/O.
//!
//! The client calls [`decide`] with what its pin store holds for the daemon id (protocol
//! [`PIN_PROTOCOL`], peer = daemon id) and the identity key from the HandshakeAccept. The
//! decision names the key to verify the signature with; the pin is written only after the
//! handshake succeeded ([`crate::pins`] does both with `keyline_core::PinStore`).

use std::fmt::Write as _;

use keyline_core::Policy;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// The pin store protocol name for SBRP daemon identity keys.
pub const PIN_PROTOCOL: &str = "sbrp";

/// `"SHA256:"` + the 32 bytes of SHA-256(`identity_key`) as uppercase hex pairs joined by
/// `:` (`SHA256:21:FE:31:…`). Shown to people; compare keys as bytes.
pub fn fingerprint(identity_key: &[u8]) -> String {
    let digest = Sha256::digest(identity_key);
    let mut out = String::with_capacity(7 + 3 * digest.len());
    out.push_str("SHA256:");
    for (i, byte) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02X}");
    }
    out
}

/// What the client does with the advertised identity key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustDecision {
    /// The key is the pinned one: verify with it.
    Known,
    /// First contact under `tofu`: verify with the advertised key, pin after success.
    PinAfterSuccess,
    /// `prompt`: ask the user (with the fingerprints given), then verify with the advertised
    /// key and pin (or re-pin) after success; a refusal is `handshake_failed` when nothing
    /// was pinned, else `identity_key_changed`.
    Ask {
        /// The received key's fingerprint.
        received_fingerprint: String,
        /// The pinned key's fingerprint when the key changed.
        pinned_fingerprint: Option<String>,
    },
}

/// Applies `policy` to the advertised `received` key given the `pinned` key (if any) for
/// `daemon_id`. Keys are compared in constant time.
///
/// Errors: a different pinned key under `tofu`/`strict` is
/// [`Error::IdentityKeyChanged`] with both fingerprints; no pin under `strict` is
/// [`Error::HandshakeFailed`].
pub fn decide(
    policy: Policy,
    daemon_id: &str,
    pinned: Option<&[u8]>,
    received: &[u8; 32],
) -> Result<TrustDecision> {
    match pinned {
        Some(pin) if bool::from(pin.ct_eq(received.as_slice())) => Ok(TrustDecision::Known),
        Some(pin) => match policy {
            Policy::Prompt => Ok(TrustDecision::Ask {
                received_fingerprint: fingerprint(received),
                pinned_fingerprint: Some(fingerprint(pin)),
            }),
            _ => Err(key_changed(daemon_id, pin, received)),
        },
        None => match policy {
            Policy::Tofu => Ok(TrustDecision::PinAfterSuccess),
            Policy::Prompt => Ok(TrustDecision::Ask {
                received_fingerprint: fingerprint(received),
                pinned_fingerprint: None,
            }),
            Policy::Strict => Err(Error::HandshakeFailed {
                reason: "daemon identity key is not pinned (policy strict)",
            }),
        },
    }
}

/// The `identity_key_changed` error for `daemon_id`, with both fingerprints.
pub fn key_changed(daemon_id: &str, pinned: &[u8], received: &[u8]) -> Error {
    Error::IdentityKeyChanged {
        daemon_id: daemon_id.to_owned(),
        pinned_fingerprint: fingerprint(pinned),
        received_fingerprint: fingerprint(received),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        for p in [Policy::Tofu, Policy::Strict, Policy::Prompt] {
            assert_eq!(decide(p, "d", Some(&a), &a).unwrap(), TrustDecision::Known);
        }
        assert_eq!(
            decide(Policy::Tofu, "d", None, &a).unwrap(),
            TrustDecision::PinAfterSuccess
        );
        assert!(matches!(
            decide(Policy::Strict, "d", None, &a),
            Err(Error::HandshakeFailed { .. })
        ));
        for p in [Policy::Tofu, Policy::Strict] {
            assert!(matches!(
                decide(p, "d", Some(&a), &b),
                Err(Error::IdentityKeyChanged { .. })
            ));
        }
        assert!(matches!(
            decide(Policy::Prompt, "d", Some(&a), &b).unwrap(),
            TrustDecision::Ask {
                pinned_fingerprint: Some(_),
                ..
            }
        ));
        assert!(matches!(
            decide(Policy::Prompt, "d", None, &b).unwrap(),
            TrustDecision::Ask {
                pinned_fingerprint: None,
                ..
            }
        ));
    }
}
