//! The crate's one error type.
//!
//! [`Error`] is a flat, `#[non_exhaustive]` enum; [`Error::kind`] sorts the variants into the
//! classes of DESIGN.md (invalid input, misuse, a participant misbehaved, not enough
//! participants, internal), [`Error::code`] gives a stable short code for logs, wire `Error`
//! frames and tests, and [`Error::culprits`] names the participants a failure is proven to come
//! from. No message contains key material, nonces or shares.

use std::fmt;

use crate::ParticipantId;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The class of an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Malformed or out-of-range input: parameters, keys, encodings, messages.
    InvalidInput,
    /// The API was used in a way the protocol forbids (e.g. a signing package without this
    /// node's commitment).
    Misuse,
    /// A participant broke the protocol; [`Error::culprits`] names it when that is provable.
    Peer,
    /// Fewer participants answered than the threshold needs; retry with others.
    Unavailable,
    /// An invariant of this crate or of the FROST crate failed. A bug; please report it.
    Internal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidInput => "invalid input",
            Self::Misuse => "misuse",
            Self::Peer => "participant misbehaved",
            Self::Unavailable => "not enough participants",
            Self::Internal => "internal error",
        })
    }
}

/// Everything that can go wrong in keyline-signer's engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- invalid input -------------------------------------------------------------------
    /// Threshold, share count or participant list out of range or inconsistent.
    #[error("invalid parameters: {reason}")]
    InvalidParameters {
        /// What is wrong (no key material).
        reason: String,
    },

    /// A secret key to import is zero or not below the group order.
    #[error("invalid secret key: it must be a non-zero scalar below the secp256k1 group order")]
    InvalidSecretKey,

    /// A peer's x-only public key is not the x coordinate of a curve point.
    #[error("invalid peer public key: not the x coordinate of a secp256k1 point")]
    InvalidPeerKey,

    /// A message to sign is longer than [`crate::limits::MAX_MESSAGE_LEN`].
    #[error("message of {len} bytes; at most {max} bytes can be signed")]
    MessageTooLong {
        /// The message length.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// An encoded object is longer than [`crate::limits::MAX_ENCODED_LEN`]; it was not parsed.
    #[error("encoded {what} of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// An encoded object does not decode (wrong format, version, suite, length or value).
    #[error("malformed {what}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
    },

    /// A wire frame carries a protocol version this build does not speak (spec §8.3); answer
    /// `Error{unsupported_version}` and close.
    #[error("unsupported protocol version {version}")]
    UnsupportedVersion {
        /// The version byte received.
        version: u8,
    },

    /// A wire frame of a type this build does not know; answer `Error{unsupported_type}`
    /// (echoing `req_id`) and keep the connection.
    #[error("unsupported message type {ty:#04x}")]
    UnsupportedType {
        /// The type byte received.
        ty: u8,
        /// The request id of the frame, for the reply.
        req_id: u64,
    },

    /// A BIP340 signature does not verify under the given x-only key.
    #[error("the BIP340 signature does not verify under the public key")]
    InvalidSignature,

    // ----- misuse --------------------------------------------------------------------------
    /// A participant identifier is not part of the key.
    #[error("participant {id} is not a share holder of this key")]
    UnknownParticipant {
        /// The identifier.
        id: ParticipantId,
    },

    /// The same participant appears twice where each may appear once.
    #[error("participant {id} appears more than once")]
    DuplicateParticipant {
        /// The identifier.
        id: ParticipantId,
    },

    /// A node refuses a signing package (it lacks or alters this node's commitment, or belongs
    /// to another key or nonce pair).
    #[error("signing package refused: {reason}")]
    PackageRejected {
        /// Why.
        reason: &'static str,
    },

    /// A participant's data belongs to another key or ceremony (different group key,
    /// threshold or identifier).
    #[error("mismatch: {reason}")]
    Mismatch {
        /// What does not match.
        reason: &'static str,
    },

    // ----- a participant misbehaved -------------------------------------------------------
    /// Signature shares that fail verification; the aggregate was not produced.
    #[error("invalid signature share from participant(s) {}", list(culprits))]
    InvalidSignatureShare {
        /// Every participant whose share failed (all of them, not only the first).
        culprits: Vec<ParticipantId>,
    },

    /// ECDH partial points whose proof of discrete-log equality fails.
    #[error("invalid ECDH partial from participant(s) {}", list(culprits))]
    InvalidEcdhProof {
        /// Every participant whose proof failed.
        culprits: Vec<ParticipantId>,
    },

    /// A DKG round-1 package whose proof of knowledge does not verify.
    #[error("invalid proof of knowledge in the round-1 package of participant {culprit}")]
    InvalidProofOfKnowledge {
        /// The sender.
        culprit: ParticipantId,
    },

    /// A received secret share does not match its sender's commitment.
    #[error("secret share does not match the commitment of {}", match culprit {
        Some(id) => format!("participant {id}"),
        None => "its sender (the dealer)".to_string(),
    })]
    InvalidSecretShare {
        /// The sender, when it is a participant (a dealt share has no participant sender).
        culprit: Option<ParticipantId>,
    },

    /// A ceremony package from a participant is structurally wrong (e.g. a commitment of the
    /// wrong length).
    #[error("invalid package from participant {culprit}: {reason}")]
    InvalidPackage {
        /// The sender.
        culprit: ParticipantId,
        /// What is wrong.
        reason: &'static str,
    },

    /// Participants of one ceremony ended with different public key packages.
    #[error("participants disagree on the public key package; abort the ceremony")]
    PublicKeyMismatch,

    /// The key reconstructed from shares does not have the key's public key (shares from
    /// different keys or versions).
    #[error("the reconstructed secret does not match the public key; check the shares")]
    ReconstructMismatch,

    // ----- not enough participants ---------------------------------------------------------
    /// Fewer signers committed than the threshold needs.
    #[error("signing needs {need} signers, {have} committed")]
    NotEnoughSigners {
        /// Commitments available.
        have: usize,
        /// The threshold.
        need: usize,
    },

    /// Fewer shares (signature shares, ECDH partials, key shares) than the threshold needs.
    #[error("{need} shares are needed, {have} were given")]
    NotEnoughShares {
        /// Shares available.
        have: usize,
        /// The threshold.
        need: usize,
    },

    /// A signer that committed did not deliver its signature share.
    #[error("participant {id} committed but sent no signature share")]
    MissingShare {
        /// The absent signer.
        id: ParticipantId,
    },

    /// A session could not finish: fewer than t nodes remained able to answer. `failed` names
    /// every node dropped and the round it was dropped in.
    #[error(
        "{operation} unavailable: {answered} of {need} nodes answered{}",
        failures(failed)
    )]
    Unavailable {
        /// `signing` or `ecdh`.
        operation: &'static str,
        /// Nodes still able to answer when the session gave up.
        answered: usize,
        /// The threshold.
        need: usize,
        /// The nodes dropped, with the round and the reason.
        failed: Vec<crate::session::NodeFailure>,
    },

    // ----- internal -----------------------------------------------------------------------
    /// The FROST crate refused the operation for a reason this crate does not classify.
    #[error("FROST error: {reason}")]
    Frost {
        /// The FROST crate's message (never contains secrets).
        reason: String,
    },

    /// An invariant failed. A bug; please report it.
    #[error("internal error: {reason}")]
    Internal {
        /// Which invariant.
        reason: &'static str,
    },
}

fn failures(failed: &[crate::session::NodeFailure]) -> String {
    if failed.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = failed.iter().map(ToString::to_string).collect();
    format!(" ({})", parts.join("; "))
}

fn list(ids: &[ParticipantId]) -> String {
    let parts: Vec<String> = ids.iter().map(ToString::to_string).collect();
    parts.join(", ")
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidParameters { .. }
            | Self::InvalidSecretKey
            | Self::InvalidPeerKey
            | Self::MessageTooLong { .. }
            | Self::UnsupportedVersion { .. }
            | Self::UnsupportedType { .. }
            | Self::TooLarge { .. }
            | Self::Malformed { .. }
            | Self::InvalidSignature => ErrorKind::InvalidInput,
            Self::UnknownParticipant { .. }
            | Self::DuplicateParticipant { .. }
            | Self::PackageRejected { .. }
            | Self::Mismatch { .. } => ErrorKind::Misuse,
            Self::InvalidSignatureShare { .. }
            | Self::InvalidEcdhProof { .. }
            | Self::InvalidProofOfKnowledge { .. }
            | Self::InvalidSecretShare { .. }
            | Self::InvalidPackage { .. }
            | Self::PublicKeyMismatch
            | Self::ReconstructMismatch => ErrorKind::Peer,
            Self::NotEnoughSigners { .. }
            | Self::NotEnoughShares { .. }
            | Self::MissingShare { .. }
            | Self::Unavailable { .. } => ErrorKind::Unavailable,
            Self::Frost { .. } | Self::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// A stable short code: `invalid_parameters`, `invalid_secret_key`, `invalid_peer_key`,
    /// `message_too_long`, `too_large`, `malformed`, `invalid_signature`, `unsupported_version`,
    /// `unsupported_type`, `unavailable`,
    /// `unknown_participant`, `duplicate_participant`, `package_rejected`, `mismatch`,
    /// `invalid_signature_share`, `invalid_ecdh_proof`, `invalid_proof_of_knowledge`,
    /// `invalid_secret_share`, `invalid_package`, `public_key_mismatch`,
    /// `reconstruct_mismatch`, `not_enough_signers`, `not_enough_shares`, `missing_share`,
    /// `frost` or `internal`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidParameters { .. } => "invalid_parameters",
            Self::InvalidSecretKey => "invalid_secret_key",
            Self::InvalidPeerKey => "invalid_peer_key",
            Self::MessageTooLong { .. } => "message_too_long",
            Self::TooLarge { .. } => "too_large",
            Self::Malformed { .. } => "malformed",
            Self::InvalidSignature => "invalid_signature",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::UnsupportedType { .. } => "unsupported_type",
            Self::Unavailable { .. } => "unavailable",
            Self::UnknownParticipant { .. } => "unknown_participant",
            Self::DuplicateParticipant { .. } => "duplicate_participant",
            Self::PackageRejected { .. } => "package_rejected",
            Self::Mismatch { .. } => "mismatch",
            Self::InvalidSignatureShare { .. } => "invalid_signature_share",
            Self::InvalidEcdhProof { .. } => "invalid_ecdh_proof",
            Self::InvalidProofOfKnowledge { .. } => "invalid_proof_of_knowledge",
            Self::InvalidSecretShare { .. } => "invalid_secret_share",
            Self::InvalidPackage { .. } => "invalid_package",
            Self::PublicKeyMismatch => "public_key_mismatch",
            Self::ReconstructMismatch => "reconstruct_mismatch",
            Self::NotEnoughSigners { .. } => "not_enough_signers",
            Self::NotEnoughShares { .. } => "not_enough_shares",
            Self::MissingShare { .. } => "missing_share",
            Self::Frost { .. } => "frost",
            Self::Internal { .. } => "internal",
        }
    }

    /// The participants this error proves misbehaved (empty when none is identified). A
    /// coordinator cools these nodes down and retries without them.
    pub fn culprits(&self) -> Vec<ParticipantId> {
        match self {
            Self::InvalidSignatureShare { culprits } | Self::InvalidEcdhProof { culprits } => {
                culprits.clone()
            }
            Self::InvalidProofOfKnowledge { culprit } | Self::InvalidPackage { culprit, .. } => {
                vec![*culprit]
            }
            Self::InvalidSecretShare { culprit } => culprit.iter().copied().collect(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn params(reason: impl Into<String>) -> Self {
        Self::InvalidParameters {
            reason: reason.into(),
        }
    }

    /// Maps an error of the FROST crate, translating identifiers to [`ParticipantId`]s.
    pub(crate) fn from_frost(err: frost_secp256k1_tr::Error) -> Self {
        use frost_secp256k1_tr::Error as F;
        let ids = |ids: &[frost_secp256k1_tr::Identifier]| -> Option<Vec<ParticipantId>> {
            ids.iter().map(ParticipantId::from_frost).collect()
        };
        match &err {
            F::InvalidSignatureShare { culprits } => match ids(culprits) {
                Some(culprits) => Self::InvalidSignatureShare { culprits },
                None => Self::Internal {
                    reason: "culprit identifier outside keyline's range",
                },
            },
            F::InvalidProofOfKnowledge { culprit } => match ParticipantId::from_frost(culprit) {
                Some(culprit) => Self::InvalidProofOfKnowledge { culprit },
                None => Self::Internal {
                    reason: "culprit identifier outside keyline's range",
                },
            },
            F::InvalidSecretShare { culprit } => Self::InvalidSecretShare {
                culprit: culprit.as_ref().and_then(ParticipantId::from_frost),
            },
            F::MalformedSigningKey => Self::InvalidSecretKey,
            F::InvalidSignature => Self::InvalidSignature,
            _ => Self::Frost {
                reason: err.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(v: u16) -> ParticipantId {
        ParticipantId::new(v).unwrap()
    }

    #[test]
    fn messages_are_one_line_and_name_culprits() {
        let errors = [
            Error::InvalidSignatureShare {
                culprits: vec![id(2), id(5)],
            },
            Error::InvalidSecretShare { culprit: None },
            Error::InvalidSecretShare {
                culprit: Some(id(3)),
            },
            Error::NotEnoughShares { have: 1, need: 2 },
            Error::MessageTooLong {
                len: 2000,
                max: 1024,
            },
        ];
        for e in &errors {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "{msg}");
            assert!(!e.code().is_empty());
        }
        assert_eq!(
            errors[0].to_string(),
            "invalid signature share from participant(s) 2, 5"
        );
        assert_eq!(errors[0].culprits(), vec![id(2), id(5)]);
        assert_eq!(errors[0].kind(), ErrorKind::Peer);
        assert!(errors[1].culprits().is_empty());
        assert_eq!(errors[2].culprits(), vec![id(3)]);
        assert_eq!(errors[3].kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn frost_errors_keep_their_culprits() {
        let fid = id(4).to_frost();
        let e = Error::from_frost(frost_secp256k1_tr::Error::InvalidSignatureShare {
            culprits: vec![fid],
        });
        assert_eq!(e.culprits(), vec![id(4)]);
        let e =
            Error::from_frost(frost_secp256k1_tr::Error::InvalidProofOfKnowledge { culprit: fid });
        assert_eq!(e.code(), "invalid_proof_of_knowledge");
        assert_eq!(e.culprits(), vec![id(4)]);
    }
}
