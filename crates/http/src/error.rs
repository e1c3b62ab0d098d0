//! The crate's one error type.
//!
//! Failures fall into the classes of `shared/specs/http.md` B.5/B.9 and DESIGN.md:
//!
//! | variant | who is at fault | HTTP status ([`Error::status`]) |
//! |---|---|---|
//! | [`Error::Malformed`] | the peer sent something that does not parse or breaks the profile | 400 |
//! | [`Error::Unauthorized`] | authentication failed (stale, replayed, bad digest, bad signature, …) | 401, one shape for every cause |
//! | [`Error::BodyTooLarge`] | the peer sent more than the body limit | 413 |
//! | [`Error::ReplayCacheFull`] | the replay cache is at a bound | 429 with `Retry-After` |
//! | `Error::RateLimited` | (compat feature) too many failed legacy requests from one key | 429 with `Retry-After` |
//! | [`Error::Unsupported`] | a valid RFC 9421 construct this crate does not implement | 400 |
//! | [`Error::InvalidInput`] | local misuse: a bad key, origin, or request to sign | (not a peer response) |
//! | [`Error::Rng`] | the operating system's RNG failed | (not a peer response) |
//! | [`Error::Transport`] | I/O: connecting, sending, receiving, serving (features `client`/`server`) | (not a peer response) |
//! | [`Error::ServerKey`] | the client refused the server's key (pin mismatch, not pinned) | (not a peer response) |
//! | [`Error::Storage`] | a shared store (the SQLite replay store) failed | 500 |
//!
//! [`Error::code`] gives a stable short name for every cause, for logs and tests. Clients of a
//! server must never see it: 400 and 401 responses do not say which check failed (B.9). Secrets,
//! signatures and bodies never appear in messages.

use std::fmt;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a message is malformed (HTTP 400).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// A signature-related field is longer than its limit.
    FieldTooLong {
        /// The field name.
        field: &'static str,
        /// Its combined length in bytes.
        len: usize,
    },
    /// A field is not a valid structured field value (RFC 9651) of the expected type.
    StructuredField(&'static str),
    /// A dictionary key or parameter appears twice.
    DuplicateKey(&'static str),
    /// The `sig1` label is missing from `Signature-Input` or `Signature`.
    MissingLabel(&'static str),
    /// `Signature` is present without `Signature-Input`, or the reverse.
    MissingField(&'static str),
    /// A member or parameter has the wrong structured type.
    WrongType(&'static str),
    /// The signature is not exactly 64 bytes.
    SignatureLength(usize),
    /// A covered component identifier is invalid (not a string, upper case, bad parameter,
    /// duplicated).
    Component(String),
    /// A covered component is absent from the message.
    MissingComponent(String),
    /// A field value contains a character that cannot appear in a signature base.
    FieldValue(&'static str),
    /// The target URI is not an absolute `http`/`https` URI, or the request-target is not in
    /// origin-form or a matching absolute-form.
    TargetUri(&'static str),
    /// An absolute-form request-target names another authority than the public origin.
    ForeignAuthority,
    /// A profile parameter (`tag`, `alg`, `keyid`, `nonce`, `created`, `expires`) is missing,
    /// duplicated, of the wrong type or not in its canonical form.
    Parameter(&'static str),
    /// `tag` is not `keyline-http-v1`.
    Tag,
    /// `alg` names no algorithm of the profile.
    Algorithm,
    /// `alg` and the `keyid` prefix disagree.
    AlgorithmKeyMismatch,
    /// `keyid` is not `ed25519:<43 base64url>` or `bip340:<64 lowercase hex>`.
    KeyId,
    /// `nonce` is not base64url-nopad of 16 to 32 bytes.
    Nonce,
    /// `created < expires ≤ created + 300` does not hold.
    Window,
    /// The covered components are not the profile's list for this message's shape.
    CoveredComponents,
    /// The request has content but the signature covers no `Content-Digest`, or the reverse.
    BodyShape,
    /// `Content-Type` is missing on a request with content.
    MissingContentType,
    /// `Content-Digest` is missing on a message with content.
    MissingContentDigest,
    /// `Content-Digest` has a member other than `sha-256`/`sha-512`, lacks `sha-256`, or a
    /// digest of the wrong length.
    ContentDigest(&'static str),
    /// More than one authentication scheme is present (`Signature-Input` and
    /// `Authorization: Nostr`).
    SchemeConflict,
    /// The NIP-98 `Authorization` value is not `Nostr <base64 event>` or not an event.
    Nip98(&'static str),
    /// A sealed body (B.11) has an unknown key id or suite, or does not open.
    Sealed(&'static str),
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::FieldTooLong { field, len } => write!(
                f,
                "{field} is {len} bytes, more than the {} allowed",
                crate::limits::MAX_SIGNATURE_FIELD_BYTES
            ),
            Malformed::StructuredField(field) => {
                write!(f, "{field} is not a valid structured field")
            }
            Malformed::DuplicateKey(field) => write!(f, "{field} repeats a key"),
            Malformed::MissingLabel(field) => write!(f, "{field} has no sig1 member"),
            Malformed::MissingField(field) => write!(f, "{field} is missing"),
            Malformed::WrongType(what) => write!(f, "{what} has the wrong structured type"),
            Malformed::SignatureLength(len) => {
                write!(f, "the signature is {len} bytes, expected 64")
            }
            Malformed::Component(what) => write!(f, "invalid covered component {what}"),
            Malformed::MissingComponent(what) => {
                write!(f, "covered component {what} is absent from the message")
            }
            Malformed::FieldValue(what) => write!(f, "{what} contains a forbidden character"),
            Malformed::TargetUri(why) => write!(f, "invalid target URI: {why}"),
            Malformed::ForeignAuthority => {
                f.write_str("absolute-form target names another authority than the public origin")
            }
            Malformed::Parameter(name) => write!(f, "signature parameter {name} is invalid"),
            Malformed::Tag => f.write_str("tag is not keyline-http-v1"),
            Malformed::Algorithm => f.write_str("unknown alg"),
            Malformed::AlgorithmKeyMismatch => f.write_str("alg and keyid disagree"),
            Malformed::KeyId => f.write_str("keyid is not in canonical form"),
            Malformed::Nonce => f.write_str("nonce is not base64url of 16 to 32 bytes"),
            Malformed::Window => {
                f.write_str("created/expires outside created < expires <= created + 300")
            }
            Malformed::CoveredComponents => {
                f.write_str("covered components differ from the profile's list")
            }
            Malformed::BodyShape => {
                f.write_str("the signature's component list does not match the presence of content")
            }
            Malformed::MissingContentType => {
                f.write_str("content-type missing on a request with content")
            }
            Malformed::MissingContentDigest => {
                f.write_str("content-digest missing on a message with content")
            }
            Malformed::ContentDigest(why) => write!(f, "invalid content-digest: {why}"),
            Malformed::SchemeConflict => f.write_str("more than one authentication scheme"),
            Malformed::Nip98(why) => write!(f, "invalid NIP-98 authorization: {why}"),
            Malformed::Sealed(why) => write!(f, "invalid sealed body: {why}"),
        }
    }
}

/// Why authentication failed (HTTP 401). Every cause produces the same response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthFailure {
    /// No signature and no other scheme on a protected route.
    Missing,
    /// `created` (or `created_at`) is older than the max age.
    Stale,
    /// `created` (or `created_at`) is further in the future than the max skew.
    Future,
    /// `expires` has passed.
    Expired,
    /// `Content-Digest` does not match the content.
    DigestMismatch,
    /// The key in `keyid` (or the event) is not a valid public key.
    InvalidKey,
    /// The signature does not verify.
    BadSignature,
    /// The nonce (or NIP-98 event id) was already used.
    Replay,
    /// NIP-98: the event id is not the hash of the event.
    EventId,
    /// NIP-98: `kind` is not 27235.
    EventKind,
    /// NIP-98: not exactly one `u` tag, or it differs from the request URL.
    EventUrl,
    /// NIP-98: not exactly one `method` tag, or it differs from the request method.
    EventMethod,
    /// NIP-98: the `payload` tag is missing (with content), repeated, or differs from the
    /// SHA-256 of the body.
    EventPayload,
    /// The client-side response check: the response is not bound to the request we sent
    /// (other nonce or key).
    ResponseBinding,
    /// A crypto-sessions v1.1.10 request failed verification (compat mode, A.10).
    #[cfg(feature = "compat-crypto-sessions")]
    Legacy(LegacyFailure),
}

/// Why a crypto-sessions v1.1.10 request failed (compat mode, `shared/specs/http.md` A.10).
/// Every cause is the same uniform 401; the cause only goes to DEBUG logs and tests.
#[cfg(feature = "compat-crypto-sessions")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LegacyFailure {
    /// The token is not base64url without padding, or decodes to a length outside
    /// `33 + 8 ..= 33 + 72` bytes.
    Token,
    /// The first 33 bytes are not a SEC1 compressed secp256k1 point.
    PublicKey,
    /// The signature is neither strict DER nor 64 bytes of `r ‖ s` (or `r`/`s` out of range).
    SignatureEncoding,
    /// The signature has a high `s` (v1.1.10 rejects these too).
    HighS,
    /// The method is not exactly `GET` or `POST`.
    Method,
    /// A GET with a body, or a POST body that is not JSON `{"data": "<base64url>"}`.
    Body,
    /// The decoded `data` is shorter than 32 bytes or not a multiple of 16.
    CiphertextLength,
    /// The decrypted body has invalid PKCS#7 padding (a dummy verification still ran).
    Padding,
    /// The ECDSA signature does not verify over SHA-256 of the payload.
    Signature,
}

#[cfg(feature = "compat-crypto-sessions")]
impl LegacyFailure {
    fn describe(self) -> &'static str {
        match self {
            LegacyFailure::Token => "the legacy token does not decode to a key and a signature",
            LegacyFailure::PublicKey => "the legacy public key is not a valid compressed point",
            LegacyFailure::SignatureEncoding => {
                "the legacy signature is neither strict DER nor 64-byte r||s"
            }
            LegacyFailure::HighS => "the legacy signature has a high s",
            LegacyFailure::Method => "legacy requests must be exactly GET or POST",
            LegacyFailure::Body => "the legacy body is not valid for the method",
            LegacyFailure::CiphertextLength => "the legacy ciphertext has an invalid length",
            LegacyFailure::Padding => "the legacy ciphertext does not decrypt",
            LegacyFailure::Signature => "the legacy signature does not verify",
        }
    }

    fn code(self) -> &'static str {
        match self {
            LegacyFailure::Token => "unauthorized.legacy.token",
            LegacyFailure::PublicKey => "unauthorized.legacy.public_key",
            LegacyFailure::SignatureEncoding => "unauthorized.legacy.signature_encoding",
            LegacyFailure::HighS => "unauthorized.legacy.high_s",
            LegacyFailure::Method => "unauthorized.legacy.method",
            LegacyFailure::Body => "unauthorized.legacy.body",
            LegacyFailure::CiphertextLength => "unauthorized.legacy.ciphertext_length",
            LegacyFailure::Padding => "unauthorized.legacy.padding",
            LegacyFailure::Signature => "unauthorized.legacy.signature",
        }
    }
}

#[cfg(feature = "compat-crypto-sessions")]
impl From<LegacyFailure> for Error {
    fn from(l: LegacyFailure) -> Self {
        Error::Unauthorized(AuthFailure::Legacy(l))
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthFailure::Missing => "no credentials",
            AuthFailure::Stale => "created is too old",
            AuthFailure::Future => "created is too far in the future",
            AuthFailure::Expired => "the signature expired",
            AuthFailure::DigestMismatch => "content-digest does not match the content",
            AuthFailure::InvalidKey => "the public key is not valid",
            AuthFailure::BadSignature => "the signature does not verify",
            AuthFailure::Replay => "the nonce was already used",
            AuthFailure::EventId => "the event id is not the hash of the event",
            AuthFailure::EventKind => "the event kind is not 27235",
            AuthFailure::EventUrl => "the u tag does not match the request URL",
            AuthFailure::EventMethod => "the method tag does not match the request method",
            AuthFailure::EventPayload => "the payload tag does not match the body",
            AuthFailure::ResponseBinding => "the response is not bound to our request",
            #[cfg(feature = "compat-crypto-sessions")]
            AuthFailure::Legacy(why) => why.describe(),
        })
    }
}

/// Local misuse: something this side passed in cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidInput {
    /// The public origin is not `scheme://host[:port]` in canonical form.
    Origin(String),
    /// A secret key is not a valid scalar/seed.
    SecretKey(&'static str),
    /// A request or response to sign is missing something (content type, a valid URI …).
    Message(String),
    /// A signing parameter is out of range (window, nonce).
    SignParameter(&'static str),
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidInput::Origin(why) => write!(
                f,
                "invalid public origin ({why}): expected scheme://host[:port], lower case, no default port, no path"
            ),
            InvalidInput::SecretKey(why) => write!(f, "invalid secret key: {why}"),
            InvalidInput::Message(why) => write!(f, "cannot sign this message: {why}"),
            InvalidInput::SignParameter(why) => write!(f, "invalid signing parameter: {why}"),
        }
    }
}

/// The error type of `keyline-http`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The message is malformed (400).
    #[error("malformed: {0}")]
    Malformed(Malformed),
    /// Authentication failed (401).
    #[error("unauthorized: {0}")]
    Unauthorized(AuthFailure),
    /// The body is over the limit (413).
    #[error("body of {len} bytes exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// Bytes seen (at least `limit + 1`).
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The replay cache is at a bound (429); retry after `retry_after` seconds.
    #[error("replay cache full: retry after {retry_after} s")]
    ReplayCacheFull {
        /// Seconds until the oldest relevant entry expires.
        retry_after: u64,
    },
    /// Too many failed crypto-sessions v1.1.10 requests from one legacy key (compat mode,
    /// A.10 step 6), or the failure table is full (429); retry after `retry_after` seconds.
    #[cfg(feature = "compat-crypto-sessions")]
    #[error("too many failed legacy requests: retry after {retry_after} s")]
    RateLimited {
        /// Seconds until the key may try again.
        retry_after: u64,
    },
    /// A valid RFC 9421 construct this crate does not implement (400).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// Local misuse or an unusable argument.
    #[error("{0}")]
    InvalidInput(InvalidInput),
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Rng(getrandom::Error),
    /// Network or HTTP I/O failed (client transport, server socket), or the pin store failed.
    #[error("transport: {0}")]
    Transport(String),
    /// The client refused the server's key: it differs from the pinned or configured key, or
    /// the pin policy did not accept it.
    #[error("server key refused: {0}")]
    ServerKey(String),
    /// A shared store (the SQLite replay store of feature `sqlx-replay`) failed: the request
    /// is answered with 500, never let through.
    #[error("storage: {0}")]
    Storage(String),
}

impl Error {
    /// The HTTP status a server answers with: 400, 401, 413 or 429; 500 for local errors.
    pub fn status(&self) -> u16 {
        match self {
            Error::Malformed(_) | Error::Unsupported(_) => 400,
            Error::Unauthorized(_) => 401,
            Error::BodyTooLarge { .. } => 413,
            Error::ReplayCacheFull { .. } => 429,
            #[cfg(feature = "compat-crypto-sessions")]
            Error::RateLimited { .. } => 429,
            Error::InvalidInput(_)
            | Error::Rng(_)
            | Error::Transport(_)
            | Error::ServerKey(_)
            | Error::Storage(_) => 500,
        }
    }

    /// True when the peer, not this side, caused the error.
    pub fn is_peer_fault(&self) -> bool {
        !matches!(
            self,
            Error::InvalidInput(_) | Error::Rng(_) | Error::Transport(_) | Error::Storage(_)
        )
    }

    /// A stable short code naming the exact cause, for logs (at DEBUG) and tests; never sent
    /// to a client. Codes: `malformed.<what>`, `unauthorized.<what>`, `body_too_large`,
    /// `replay_cache_full`, `rate_limited`, `unsupported`, `invalid_input.<what>`, `rng`, `transport`,
    /// `server_key`, `storage`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Malformed(m) => match m {
                Malformed::FieldTooLong { .. } => "malformed.field_too_long",
                Malformed::StructuredField(_) => "malformed.structured_field",
                Malformed::DuplicateKey(_) => "malformed.duplicate_key",
                Malformed::MissingLabel(_) => "malformed.missing_label",
                Malformed::MissingField(_) => "malformed.missing_field",
                Malformed::WrongType(_) => "malformed.wrong_type",
                Malformed::SignatureLength(_) => "malformed.signature_length",
                Malformed::Component(_) => "malformed.component",
                Malformed::MissingComponent(_) => "malformed.missing_component",
                Malformed::FieldValue(_) => "malformed.field_value",
                Malformed::TargetUri(_) => "malformed.target_uri",
                Malformed::ForeignAuthority => "malformed.foreign_authority",
                Malformed::Parameter(_) => "malformed.parameter",
                Malformed::Tag => "malformed.tag",
                Malformed::Algorithm => "malformed.alg",
                Malformed::AlgorithmKeyMismatch => "malformed.alg_keyid_mismatch",
                Malformed::KeyId => "malformed.keyid",
                Malformed::Nonce => "malformed.nonce",
                Malformed::Window => "malformed.window",
                Malformed::CoveredComponents => "malformed.covered_components",
                Malformed::BodyShape => "malformed.body_shape",
                Malformed::MissingContentType => "malformed.missing_content_type",
                Malformed::MissingContentDigest => "malformed.missing_content_digest",
                Malformed::ContentDigest(_) => "malformed.content_digest",
                Malformed::SchemeConflict => "malformed.scheme_conflict",
                Malformed::Nip98(_) => "malformed.nip98",
                Malformed::Sealed(_) => "malformed.sealed",
            },
            Error::Unauthorized(why) => match why {
                AuthFailure::Missing => "unauthorized.missing",
                AuthFailure::Stale => "unauthorized.stale",
                AuthFailure::Future => "unauthorized.future",
                AuthFailure::Expired => "unauthorized.expired",
                AuthFailure::DigestMismatch => "unauthorized.digest_mismatch",
                AuthFailure::InvalidKey => "unauthorized.invalid_key",
                AuthFailure::BadSignature => "unauthorized.bad_signature",
                AuthFailure::Replay => "unauthorized.replay",
                AuthFailure::EventId => "unauthorized.event_id",
                AuthFailure::EventKind => "unauthorized.event_kind",
                AuthFailure::EventUrl => "unauthorized.event_url",
                AuthFailure::EventMethod => "unauthorized.event_method",
                AuthFailure::EventPayload => "unauthorized.event_payload",
                AuthFailure::ResponseBinding => "unauthorized.response_binding",
                #[cfg(feature = "compat-crypto-sessions")]
                AuthFailure::Legacy(why) => why.code(),
            },
            Error::BodyTooLarge { .. } => "body_too_large",
            Error::ReplayCacheFull { .. } => "replay_cache_full",
            #[cfg(feature = "compat-crypto-sessions")]
            Error::RateLimited { .. } => "rate_limited",
            Error::Unsupported(_) => "unsupported",
            Error::InvalidInput(what) => match what {
                InvalidInput::Origin(_) => "invalid_input.origin",
                InvalidInput::SecretKey(_) => "invalid_input.secret_key",
                InvalidInput::Message(_) => "invalid_input.message",
                InvalidInput::SignParameter(_) => "invalid_input.sign_parameter",
            },
            Error::Rng(_) => "rng",
            Error::Transport(_) => "transport",
            Error::ServerKey(_) => "server_key",
            Error::Storage(_) => "storage",
        }
    }

    /// Seconds a 429 asks the client to wait (`Retry-After`), if this is a 429.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::ReplayCacheFull { retry_after } => Some(*retry_after),
            #[cfg(feature = "compat-crypto-sessions")]
            Error::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// The 401 cause, if this is a 401.
    pub fn auth_failure(&self) -> Option<AuthFailure> {
        match self {
            Error::Unauthorized(why) => Some(*why),
            _ => None,
        }
    }
}

impl From<Malformed> for Error {
    fn from(m: Malformed) -> Self {
        Error::Malformed(m)
    }
}

impl From<AuthFailure> for Error {
    fn from(a: AuthFailure) -> Self {
        Error::Unauthorized(a)
    }
}

impl From<InvalidInput> for Error {
    fn from(i: InvalidInput) -> Self {
        Error::InvalidInput(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (Malformed::Tag.into(), 400, "malformed.tag"),
            (Error::Unsupported("sf"), 400, "unsupported"),
            (AuthFailure::Replay.into(), 401, "unauthorized.replay"),
            (
                Error::BodyTooLarge { len: 2, limit: 1 },
                413,
                "body_too_large",
            ),
            (
                Error::ReplayCacheFull { retry_after: 3 },
                429,
                "replay_cache_full",
            ),
            (
                InvalidInput::Origin("x".into()).into(),
                500,
                "invalid_input.origin",
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status(), status, "{err}");
            assert_eq!(err.code(), code);
            assert!(!err.to_string().is_empty());
        }
        assert!(!Error::from(InvalidInput::SecretKey("x")).is_peer_fault());
        assert_eq!(
            Error::from(AuthFailure::Expired).auth_failure(),
            Some(AuthFailure::Expired)
        );
    }
}
