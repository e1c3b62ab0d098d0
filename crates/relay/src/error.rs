//! The crate's one error type, [`Error`], and the token rejection reasons ([`TokenError`]).

use std::fmt;

/// Why a relay token was refused (spec 8.2). Each variant is one step of the validation
/// order; [`TokenError::reason`] is the metric label. The HTTP answer is always 401
/// `unauthorized`; the reason is never sent to the peer in more detail than the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenError {
    /// Step 1: no token in the request.
    Missing,
    /// Step 1: longer than the token size limit.
    TooLong,
    /// Step 1: not three dot-separated parts.
    NotCompact,
    /// Step 2: the header does not decode.
    BadHeader,
    /// Step 2: `typ` is not `sbrp-relay+jwt`.
    BadType,
    /// Step 3: no `kid`.
    MissingKid,
    /// Step 3: `kid` not in the key set.
    UnknownKid,
    /// Step 4: `alg` is not `EdDSA` (or the key is not an Ed25519/EdDSA key).
    BadAlgorithm,
    /// Step 4: the signature does not verify (strictly).
    BadSignature,
    /// The claims are not a JSON object.
    BadClaims,
    /// Step 5: `aud` does not contain the relay's audience.
    BadAudience,
    /// Step 6: `iss` is not the configured issuer.
    BadIssuer,
    /// Step 7: `iat` or `exp` missing or not a number.
    BadTimes,
    /// Step 8: `exp` more than the skew in the past.
    Expired,
    /// Step 9: `ver` present and not 1.
    BadVersion,
    /// Step 10: `role` not `daemon` or `client`.
    BadRole,
    /// Step 11: `did` missing or empty (or longer than the daemon id limit).
    BadDaemonId,
    /// Step 12: client `sub` missing or empty.
    BadSubject,
    /// Step 12: client `sid` missing or not the canonical 11-character form of a non-zero u64.
    BadSid,
    /// Step 13: `region` differs from the relay's.
    BadRegion,
    /// Step 14: client `exp − iat` above the limit.
    TtlTooLong,
    /// Step 15: `scp` is not an array of strings.
    BadScope,
    /// Step 16: `lim.concurrent_sessions` is not an integer ≥ 1.
    BadLimit,
}

impl TokenError {
    /// Every reason, for metrics.
    pub const ALL: &'static [TokenError] = &[
        Self::Missing,
        Self::TooLong,
        Self::NotCompact,
        Self::BadHeader,
        Self::BadType,
        Self::MissingKid,
        Self::UnknownKid,
        Self::BadAlgorithm,
        Self::BadSignature,
        Self::BadClaims,
        Self::BadAudience,
        Self::BadIssuer,
        Self::BadTimes,
        Self::Expired,
        Self::BadVersion,
        Self::BadRole,
        Self::BadDaemonId,
        Self::BadSubject,
        Self::BadSid,
        Self::BadRegion,
        Self::TtlTooLong,
        Self::BadScope,
        Self::BadLimit,
    ];

    /// A short snake_case label (metrics, logs).
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::TooLong => "too_long",
            Self::NotCompact => "not_compact",
            Self::BadHeader => "bad_header",
            Self::BadType => "bad_typ",
            Self::MissingKid => "missing_kid",
            Self::UnknownKid => "unknown_kid",
            Self::BadAlgorithm => "bad_alg",
            Self::BadSignature => "bad_signature",
            Self::BadClaims => "bad_claims",
            Self::BadAudience => "bad_aud",
            Self::BadIssuer => "bad_iss",
            Self::BadTimes => "bad_times",
            Self::Expired => "expired",
            Self::BadVersion => "bad_ver",
            Self::BadRole => "bad_role",
            Self::BadDaemonId => "bad_did",
            Self::BadSubject => "bad_sub",
            Self::BadSid => "bad_sid",
            Self::BadRegion => "bad_region",
            Self::TtlTooLong => "ttl_too_long",
            Self::BadScope => "bad_scp",
            Self::BadLimit => "bad_lim",
        }
    }

    /// Index into [`TokenError::ALL`].
    pub(crate) fn index(self) -> usize {
        Self::ALL.iter().position(|&e| e == self).unwrap_or(0)
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "relay token rejected: {}", self.reason())
    }
}

impl std::error::Error for TokenError {}

/// Why an issuer request was refused. Each maps to one HTTP status and JSON error code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssuerError {
    /// Malformed request (400 `bad_request`).
    BadRequest(&'static str),
    /// Challenge unknown, expired, already used or bound to other inputs (401 `invalid_challenge`).
    InvalidChallenge,
    /// Signature over the challenge does not verify (401 `bad_signature`).
    BadSignature,
    /// The daemon id is registered with another identity key (409 `identity_mismatch`).
    IdentityMismatch,
    /// No daemon registered under that id (404 `daemon_not_found`).
    DaemonNotFound,
    /// The daemon is registered but not connected (404 `daemon_offline`).
    DaemonOffline,
    /// The daemon restricts clients and the request proves no key (401 `client_key_required`).
    ClientKeyRequired,
    /// The client key is not on the daemon's allow-list (403 `forbidden`).
    NotAllowed,
    /// Too many outstanding challenges or daemons (429 `too_many_requests`).
    TooMany,
    /// The OS random number generator failed (500 `internal_error`).
    Rng,
}

impl IssuerError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::InvalidChallenge | Self::BadSignature | Self::ClientKeyRequired => 401,
            Self::NotAllowed => 403,
            Self::DaemonNotFound | Self::DaemonOffline => 404,
            Self::IdentityMismatch => 409,
            Self::TooMany => 429,
            Self::Rng => 500,
        }
    }

    /// The JSON `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::InvalidChallenge => "invalid_challenge",
            Self::BadSignature => "bad_signature",
            Self::IdentityMismatch => "identity_mismatch",
            Self::DaemonNotFound => "daemon_not_found",
            Self::DaemonOffline => "daemon_offline",
            Self::ClientKeyRequired => "client_key_required",
            Self::NotAllowed => "forbidden",
            Self::TooMany => "too_many_requests",
            Self::Rng => "internal_error",
        }
    }
}

impl fmt::Display for IssuerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRequest(what) => write!(f, "bad request: {what}"),
            Self::InvalidChallenge => {
                f.write_str("challenge unknown, expired or already used; request a new one")
            }
            Self::BadSignature => f.write_str("signature over the challenge does not verify"),
            Self::IdentityMismatch => f.write_str(
                "daemon id is registered with another identity key; an operator must reset it",
            ),
            Self::DaemonNotFound => f.write_str("no daemon registered under that id"),
            Self::DaemonOffline => f.write_str("the daemon is not connected to the relay"),
            Self::ClientKeyRequired => {
                f.write_str("this daemon requires a client key, challenge and signature")
            }
            Self::NotAllowed => f.write_str("client key not allowed for this daemon"),
            Self::TooMany => f.write_str("too many outstanding requests; retry later"),
            Self::Rng => f.write_str("random number generator failed"),
        }
    }
}

impl std::error::Error for IssuerError {}

/// Errors of `keyline-relay`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A token was refused (peer input).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// An issuer request was refused (peer input).
    #[error(transparent)]
    Issuer(#[from] IssuerError),
    /// The configuration is invalid (local misuse); the text says which field.
    #[error("invalid relay configuration: {0}")]
    Config(String),
    /// Socket I/O failed.
    #[error("relay I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The OS random number generator failed.
    #[error("random number generator failed: {0}")]
    Rng(getrandom::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
