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
    /// Persistence or key protection failed: the database, a key file or the PKCS#11 token
    /// (spec §9–§10). Usually an operator problem (permissions, PIN, token, disk).
    Storage,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidInput => "invalid input",
            Self::Misuse => "misuse",
            Self::Peer => "participant misbehaved",
            Self::Unavailable => "not enough participants",
            Self::Internal => "internal error",
            Self::Storage => "storage or key protection failure",
        })
    }
}

/// Everything that can go wrong in keyline-signer's engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- node links (coordinator <-> node transport) --------------------------------------
    /// A node or coordinator could not be reached, or its connection failed (TCP, SHS
    /// handshake, pin check, hello, deadline).
    #[error("link to {peer} failed: {reason}")]
    Link {
        /// The peer: its Ed25519 key as `@<base64>.ed25519` and address when known.
        peer: String,
        /// What failed (no key material).
        reason: String,
    },

    /// A peer on a node link broke the protocol (undecodable frame, wrong role or protocol,
    /// no common version); the connection was closed.
    #[error("protocol error from {peer}: {reason}")]
    LinkProtocol {
        /// The peer.
        peer: String,
        /// What it did.
        reason: String,
    },

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

    // ----- ceremonies (node side) ------------------------------------------------------------
    /// The coordinator sent what no honest coordinator sends in a key ceremony (spec §8.7): a
    /// round-1 set with a package lacking its author's valid signature, this node's own message
    /// altered, two different messages for one step, an echo set with an invalid signature, a
    /// commit for another public key package, an import share that does not open. The node
    /// wiped the ceremony's secrets; check the coordinator.
    #[error("coordinator misbehaved in the ceremony: {reason}")]
    CoordinatorMisbehaved {
        /// What it did.
        reason: &'static str,
    },

    /// Validly signed echoes over another round-1 transcript hash than this node's: the named
    /// participants saw a different round-1 set (a round-1 author equivocated, the coordinator
    /// relayed different sets, or the named nodes lie). The ceremony is aborted.
    #[error(
        "participant(s) {} echoed a different round-1 transcript; abort the ceremony",
        list(participants)
    )]
    EchoMismatch {
        /// The participants whose echo differs from this node's.
        participants: Vec<ParticipantId>,
    },

    /// A ceremony participant is not a node pinned here, or its HPKE key differs from the
    /// pinned descriptor's. Pin the node's descriptor first.
    #[error("participant {id} is not a pinned node, or its HPKE key is not the pinned one")]
    CeremonyUnpinned {
        /// The participant.
        id: ParticipantId,
    },

    /// A ceremony step passed its deadline; the node wiped the ceremony's secrets.
    #[error("the ceremony timed out waiting for {step}; its secrets were wiped")]
    CeremonyTimeout {
        /// The message the node was waiting for.
        step: &'static str,
    },

    /// The coordinator aborted the ceremony (`CeremonyAbort`); the node wiped its secrets.
    #[error("the coordinator aborted the ceremony (code {code}); its secrets were wiped")]
    CeremonyAborted {
        /// The wire reason code.
        code: u16,
    },

    // ----- Nostr encryption and NIP-46 (spec §3–§5; `nip44`, `nip04`, `nip46`) --------------
    /// A NIP-44 payload of another version than 2: `version` is the version byte, `None` for an
    /// empty payload or one starting with `#` (reserved for non-base64 encodings). Reply to a
    /// client with the generic `decryption failed`.
    #[error("unsupported NIP-44 version{}", match version {
        Some(v) => format!(" {v}"),
        None => String::new(),
    })]
    Nip44UnsupportedVersion {
        /// The version byte, when there is one.
        version: Option<u8>,
    },

    /// A NIP-44 payload that is not well formed: size, base64, padding or UTF-8.
    #[error("invalid NIP-44 payload: {reason}")]
    Nip44InvalidPayload {
        /// What is wrong.
        reason: &'static str,
    },

    /// A NIP-44 payload whose MAC does not verify under the conversation key (wrong key or
    /// tampered payload). Nothing was decrypted.
    #[error("NIP-44 decryption failed: the MAC does not verify")]
    Nip44InvalidMac,

    /// A NIP-44 plaintext of a length that cannot be encrypted: 0, or above 2³² − 1 bytes.
    #[error("NIP-44 plaintext of {len} bytes; 1 to 4294967295 bytes can be encrypted")]
    Nip44PlaintextLength {
        /// The plaintext length.
        len: usize,
    },

    /// A NIP-04 ciphertext did not decrypt: format, base64, IV, length, padding or UTF-8. One
    /// variant for every cause, so a padding failure is indistinguishable (spec §5).
    #[error("NIP-04 decryption failed")]
    Nip04DecryptionFailed,

    /// A NIP-46 request that is not `{"id": string, "method": string, "params": [string…]}`
    /// within the limits. When `id` is `Some`, reply `invalid request` to it; when `None`, drop
    /// the request (spec §3.1 rule 6).
    #[error("invalid NIP-46 request: {reason}")]
    Nip46InvalidRequest {
        /// The request id, when one was usable.
        id: Option<String>,
        /// What is wrong.
        reason: &'static str,
    },

    /// A NIP-46 response that is not `{"id": string, "result": string, "error"?: string}`.
    #[error("invalid NIP-46 response: {reason}")]
    Nip46InvalidResponse {
        /// What is wrong.
        reason: &'static str,
    },

    /// A NIP-46 request's `params` do not fit its method (count, format). Reply `invalid
    /// params`.
    #[error("invalid NIP-46 params: {reason}")]
    Nip46InvalidParams {
        /// What is wrong.
        reason: &'static str,
    },

    /// A `sign_event` event that is not acceptable (spec §12.5). Reply `invalid event:
    /// <reason>`.
    #[error("invalid event: {reason}")]
    Nip46InvalidEvent {
        /// What is wrong (no secrets; may quote limits).
        reason: String,
    },

    /// A `bunker://` or `nostrconnect://` URI that does not parse or breaks a limit.
    #[error("invalid {scheme} URI: {reason}")]
    Nip46InvalidUri {
        /// `bunker` or `nostrconnect`.
        scheme: &'static str,
        /// What is wrong.
        reason: &'static str,
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

    // ----- storage and key protection (spec §9, §10; `store`, `envelope`) ------------------
    /// The database refused an operation (I/O, lock timeout, constraint, corrupt file).
    #[error("signer store: {op} failed: {reason}")]
    Storage {
        /// What was being done (`open`, `migrate`, `put key`, …).
        op: &'static str,
        /// The database's message (never contains secrets: only public data and sealed blobs
        /// are stored).
        reason: String,
    },

    /// The database was written by a newer keyline (it has migrations this build lacks) or its
    /// migration history does not match this build's.
    #[error(
        "signer store schema: {reason}; use a keyline at least as new as the one that wrote it"
    )]
    UnsupportedSchema {
        /// What the migrator found.
        reason: String,
    },

    /// A row already exists with different content (a key id with another public key package,
    /// a node id pinned to another descriptor, a share version already sealed).
    #[error("signer store: {what} already exists with different content")]
    StoreConflict {
        /// Which record.
        what: &'static str,
    },

    /// A record the operation needs is absent.
    #[error("signer store: {what} not found")]
    NotFound {
        /// Which record.
        what: &'static str,
    },

    /// A ceremony message differs from the one already recorded under the same
    /// `(ceremony, round, from, to)`: equivocation (spec §8.7). Abort the ceremony.
    #[error(
        "equivocation: participant {from} sent two different messages for round {round} to {to}"
    )]
    Equivocation {
        /// The sender identifier (0 = the coordinator).
        from: u16,
        /// The ceremony round.
        round: u8,
        /// The recipient identifier (0 = everyone).
        to: u16,
    },

    /// A ceremony that has finished (or aborted) cannot take more messages.
    #[error("the ceremony has already finished")]
    CeremonyClosed,

    /// A sealed blob failed authentication: it was tampered with, moved to another key, share,
    /// version or object type, or sealed under another KEK. Nothing was decrypted.
    #[error("sealed blob failed authentication (tampered, moved, or wrong KEK)")]
    SealedBlobAuth,

    /// A sealed blob names another KEK than the one configured (rotation or wrong node).
    #[error(
        "sealed blob was sealed under KEK `{blob}` ({blob_provider}), but the configured KEK is `{configured}`"
    )]
    WrongKek {
        /// The blob's KEK id.
        blob: String,
        /// The blob's provider (`pkcs11` or `file`).
        blob_provider: &'static str,
        /// The configured KEK's id.
        configured: String,
    },

    /// The file KEK cannot be used: missing, wrong length, readable by group or others, not a
    /// regular file, or (on create) already present.
    #[error("file KEK {path}: {reason}")]
    KekFile {
        /// The key file.
        path: String,
        /// What is wrong and what to do.
        reason: String,
    },

    /// The PKCS#11 module is missing or cannot be loaded or initialised.
    #[error("PKCS#11 module {path} cannot be loaded: {reason}")]
    Pkcs11Module {
        /// The module path.
        path: String,
        /// The loader's or the module's message.
        reason: String,
    },

    /// No slot holds a token with this label.
    #[error("PKCS#11 token `{label}` not found")]
    TokenNotFound {
        /// The configured token label.
        label: String,
    },

    /// The token refused the user PIN (`CKR_PIN_INCORRECT`).
    #[error("PKCS#11 login failed: incorrect PIN")]
    PinIncorrect,

    /// The token's user PIN is locked (`CKR_PIN_LOCKED`); the security officer must reset it.
    #[error("PKCS#11 login failed: the PIN is locked")]
    PinLocked,

    /// The token has no KEK with this label (run `keyline signer hsm init`).
    #[error("KEK `{label}` not found in the token")]
    KekNotFound {
        /// The configured KEK label.
        label: String,
    },

    /// A KEK with this label already exists (KEK creation never replaces one).
    #[error("KEK `{label}` already exists")]
    KekExists {
        /// The KEK label.
        label: String,
    },

    /// The token's KEK is not safe to use: extractable, not sensitive, imported rather than
    /// generated in the token, or not a 256-bit AES key.
    #[error("KEK `{label}` is unsafe: {reason}")]
    KekUnsafe {
        /// The KEK label.
        label: String,
        /// Which attribute is wrong.
        reason: &'static str,
    },

    /// Another PKCS#11 failure.
    #[error("PKCS#11 {op} failed: {reason}")]
    Pkcs11 {
        /// The operation.
        op: &'static str,
        /// The module's return value.
        reason: String,
    },

    // bunker relay pool
    /// A relay URL the pool cannot use: not `wss://` or `ws://` to loopback (spec §3.6), or
    /// `wss://` while the pool is built without TLS.
    #[error("relay {url}: {reason}")]
    RelayUrl {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },

    /// A relay cannot take an event now: it is not in the pool, not connected, or its
    /// connection ended (or the pool shut down) before it answered.
    #[error("relay {relay} unavailable: {reason}")]
    RelayUnavailable {
        /// The relay URL.
        relay: String,
        /// Why.
        reason: &'static str,
    },

    /// A relay did not acknowledge a published event (`OK`) within the publish timeout.
    #[error("relay {relay} did not acknowledge the event in time")]
    RelayTimeout {
        /// The relay URL.
        relay: String,
    },

    /// A relay refused a published event (`OK` false).
    #[error("relay {relay} refused the event: {message}")]
    RelayRejected {
        /// The relay URL.
        relay: String,
        /// The relay's message, one line, at most 256 bytes.
        message: String,
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
            Self::LinkProtocol { .. }
            | Self::InvalidSignatureShare { .. }
            | Self::InvalidEcdhProof { .. }
            | Self::InvalidProofOfKnowledge { .. }
            | Self::InvalidSecretShare { .. }
            | Self::InvalidPackage { .. }
            | Self::PublicKeyMismatch
            | Self::ReconstructMismatch => ErrorKind::Peer,
            Self::Link { .. }
            | Self::NotEnoughSigners { .. }
            | Self::NotEnoughShares { .. }
            | Self::MissingShare { .. }
            | Self::Unavailable { .. } => ErrorKind::Unavailable,
            Self::CoordinatorMisbehaved { .. } | Self::EchoMismatch { .. } => ErrorKind::Peer,
            Self::CeremonyUnpinned { .. } => ErrorKind::Misuse,
            Self::CeremonyTimeout { .. } | Self::CeremonyAborted { .. } => ErrorKind::Unavailable,
            Self::Frost { .. } | Self::Internal { .. } => ErrorKind::Internal,
            Self::StoreConflict { .. }
            | Self::NotFound { .. }
            | Self::CeremonyClosed
            | Self::WrongKek { .. } => ErrorKind::Misuse,
            Self::Equivocation { .. } => ErrorKind::Peer,
            Self::SealedBlobAuth => ErrorKind::InvalidInput,
            Self::Storage { .. }
            | Self::UnsupportedSchema { .. }
            | Self::KekFile { .. }
            | Self::Pkcs11Module { .. }
            | Self::TokenNotFound { .. }
            | Self::PinIncorrect
            | Self::PinLocked
            | Self::KekNotFound { .. }
            | Self::KekExists { .. }
            | Self::KekUnsafe { .. }
            | Self::Pkcs11 { .. } => ErrorKind::Storage,
            Self::Nip44UnsupportedVersion { .. }
            | Self::Nip44InvalidPayload { .. }
            | Self::Nip44InvalidMac
            | Self::Nip44PlaintextLength { .. }
            | Self::Nip04DecryptionFailed
            | Self::Nip46InvalidRequest { .. }
            | Self::Nip46InvalidResponse { .. }
            | Self::Nip46InvalidParams { .. }
            | Self::Nip46InvalidEvent { .. }
            | Self::Nip46InvalidUri { .. } => ErrorKind::InvalidInput,
            // bunker relay pool
            Self::RelayUrl { .. } => ErrorKind::InvalidInput,
            Self::RelayUnavailable { .. }
            | Self::RelayTimeout { .. }
            | Self::RelayRejected { .. } => ErrorKind::Unavailable,
        }
    }

    /// A stable short code: `invalid_parameters`, `invalid_secret_key`, `invalid_peer_key`,
    /// `message_too_long`, `too_large`, `malformed`, `invalid_signature`, `unsupported_version`,
    /// `unsupported_type`, `unavailable`,
    /// `unknown_participant`, `duplicate_participant`, `package_rejected`, `mismatch`,
    /// `invalid_signature_share`, `invalid_ecdh_proof`, `invalid_proof_of_knowledge`,
    /// `invalid_secret_share`, `invalid_package`, `public_key_mismatch`,
    /// `reconstruct_mismatch`, `not_enough_signers`, `not_enough_shares`, `missing_share`,
    /// `frost` or `internal`; for storage and key protection `storage`, `unsupported_schema`,
    /// `store_conflict`, `not_found`, `equivocation`, `ceremony_closed`, `sealed_blob_auth`,
    /// `wrong_kek`, `kek_file`, `pkcs11_module`, `token_not_found`, `pin_incorrect`,
    /// `pin_locked`, `kek_not_found`, `kek_exists`, `kek_unsafe` or `pkcs11`; for the bunker
    /// relay pool `relay_url`, `relay_unavailable`, `relay_timeout` or `relay_rejected`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Link { .. } => "link",
            Self::LinkProtocol { .. } => "link_protocol",
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
            Self::CoordinatorMisbehaved { .. } => "coordinator_misbehaved",
            Self::EchoMismatch { .. } => "echo_mismatch",
            Self::CeremonyUnpinned { .. } => "ceremony_unpinned",
            Self::CeremonyTimeout { .. } => "ceremony_timeout",
            Self::CeremonyAborted { .. } => "ceremony_aborted",
            Self::Frost { .. } => "frost",
            Self::Internal { .. } => "internal",
            Self::Storage { .. } => "storage",
            Self::UnsupportedSchema { .. } => "unsupported_schema",
            Self::StoreConflict { .. } => "store_conflict",
            Self::NotFound { .. } => "not_found",
            Self::Equivocation { .. } => "equivocation",
            Self::CeremonyClosed => "ceremony_closed",
            Self::SealedBlobAuth => "sealed_blob_auth",
            Self::WrongKek { .. } => "wrong_kek",
            Self::KekFile { .. } => "kek_file",
            Self::Pkcs11Module { .. } => "pkcs11_module",
            Self::TokenNotFound { .. } => "token_not_found",
            Self::PinIncorrect => "pin_incorrect",
            Self::PinLocked => "pin_locked",
            Self::KekNotFound { .. } => "kek_not_found",
            Self::KekExists { .. } => "kek_exists",
            Self::KekUnsafe { .. } => "kek_unsafe",
            Self::Pkcs11 { .. } => "pkcs11",
            Self::Nip44UnsupportedVersion { .. } => "nip44_unsupported_version",
            Self::Nip44InvalidPayload { .. } => "nip44_invalid_payload",
            Self::Nip44InvalidMac => "nip44_invalid_mac",
            Self::Nip44PlaintextLength { .. } => "nip44_plaintext_length",
            Self::Nip04DecryptionFailed => "nip04_decryption_failed",
            Self::Nip46InvalidRequest { .. } => "nip46_invalid_request",
            Self::Nip46InvalidResponse { .. } => "nip46_invalid_response",
            Self::Nip46InvalidParams { .. } => "nip46_invalid_params",
            Self::Nip46InvalidEvent { .. } => "nip46_invalid_event",
            Self::Nip46InvalidUri { .. } => "nip46_invalid_uri",
            // bunker relay pool
            Self::RelayUrl { .. } => "relay_url",
            Self::RelayUnavailable { .. } => "relay_unavailable",
            Self::RelayTimeout { .. } => "relay_timeout",
            Self::RelayRejected { .. } => "relay_rejected",
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
            Self::EchoMismatch { participants } => participants.clone(),
            Self::Equivocation { from, .. } => ParticipantId::new(*from).into_iter().collect(),
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
