//! The crate's error type.
//!
//! [`Error`] is one flat, `#[non_exhaustive]` enum. [`Error::kind`] tells "the peer sent
//! garbage" from "the peer was rejected" from "the relay ended it" from "you called it wrong";
//! [`Error::code`] gives the protocol's number for the error (a wire Control code, an SDK code
//! 0xE001–0xE005, or an SBP/RPC error code) where one exists. Messages are one line and never
//! contain key material.

use std::fmt;

use keyline_core::ReplayError;

use crate::proto::control::{ControlCode, SdkCode};

/// Result alias used throughout keyline-sbrp.
pub type Result<T> = std::result::Result<T, Error>;

/// SBP error codes (spec 9.3) and RPC error codes (spec 10.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SbpCode {
    /// 1000: protocol violation (fatal).
    ProtocolViolation,
    /// 1001: unsupported version (fatal).
    UnsupportedVersion,
    /// 1002: invalid frame (fatal unless the frame boundary is intact; it always is here,
    /// since one SBP frame is one Data plaintext).
    InvalidFrame,
    /// 1003: unsupported feature (non-fatal).
    UnsupportedFeature,
    /// 1100: invalid RPC envelope.
    InvalidEnvelope,
    /// 1101: unknown RPC method.
    UnsupportedMethod,
    /// 1102: response `cid` matches no request.
    CorrelationMismatch,
    /// 1103: the call timed out.
    Timeout,
    /// 1104: envelope does not fit the subject.
    EnvelopeMismatch,
    /// 2000: the handler failed.
    ApplicationError,
}

impl SbpCode {
    /// The numeric code.
    pub fn to_u16(self) -> u16 {
        match self {
            Self::ProtocolViolation => 1000,
            Self::UnsupportedVersion => 1001,
            Self::InvalidFrame => 1002,
            Self::UnsupportedFeature => 1003,
            Self::InvalidEnvelope => 1100,
            Self::UnsupportedMethod => 1101,
            Self::CorrelationMismatch => 1102,
            Self::Timeout => 1103,
            Self::EnvelopeMismatch => 1104,
            Self::ApplicationError => 2000,
        }
    }

    /// Whether the session must close after this error (1000, 1001, 1002).
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            Self::ProtocolViolation | Self::UnsupportedVersion | Self::InvalidFrame
        )
    }
}

/// Everything that can go wrong in keyline-sbrp.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- the peer sent a bad SBRP frame (wire codes 0x04xx) ------------------------------
    /// Header shorter than 13 bytes, length mismatch, wrong payload size for the type,
    /// trailing bytes, bad Signal payload.
    #[error("malformed SBRP frame: {reason}")]
    MalformedFrame {
        /// What is wrong.
        reason: &'static str,
    },

    /// Declared payload length above the limit (or a Ping/Pong above 8 bytes).
    #[error("SBRP payload of {len} bytes exceeds the {limit}-byte limit")]
    PayloadTooLarge {
        /// The declared or given length.
        len: u64,
        /// The limit that applies.
        limit: usize,
    },

    /// A type byte outside the defined set.
    #[error("invalid SBRP frame type 0x{frame_type:02x}")]
    InvalidFrameType {
        /// The type byte.
        frame_type: u8,
    },

    /// Session-bound frame with sid 0, or Ping/Pong with sid ≠ 0.
    #[error("invalid session id for SBRP frame type 0x{frame_type:02x}")]
    InvalidSessionId {
        /// The type byte.
        frame_type: u8,
    },

    /// A frame that is valid but not allowed in the current state (e.g. a Data frame while
    /// waiting for HandshakeAccept is `handshake_failed` instead; this is for API misuse and
    /// frames for the wrong sid).
    #[error("unexpected SBRP frame: {reason}")]
    UnexpectedFrame {
        /// What was expected.
        reason: &'static str,
    },

    // ----- the relay ended it --------------------------------------------------------------
    /// The relay sent a terminal Control code (or one that ends the handshake).
    #[error("relay sent {code} for sid {sid}")]
    Relay {
        /// The code.
        code: ControlCode,
        /// The header sid of the Control frame.
        sid: u64,
    },

    // ----- handshake and session (SDK codes 0xE001–0xE005) ---------------------------------
    /// The daemon presented an identity key different from the pinned one.
    #[error(
        "identity key of daemon `{daemon_id}` changed: pinned {pinned_fingerprint}, received \
         {received_fingerprint}; if the change is expected, run `keyline pin remove sbrp {daemon_id}`"
    )]
    IdentityKeyChanged {
        /// The daemon id.
        daemon_id: String,
        /// Fingerprint of the pinned key (`SHA256:` + uppercase hex pairs).
        pinned_fingerprint: String,
        /// Fingerprint of the key in the HandshakeAccept.
        received_fingerprint: String,
    },

    /// Signature verification, an all-zero shared secret, an unpinned key under `strict`, or
    /// another handshake step failed.
    #[error("SBRP handshake failed: {reason}")]
    HandshakeFailed {
        /// What failed.
        reason: &'static str,
    },

    /// The 30 s handshake deadline passed.
    #[error("SBRP handshake did not complete within the deadline")]
    HandshakeTimeout,

    /// A Data frame failed to open; the session is over and its keys are zeroized.
    #[error("SBRP Data frame failed to authenticate; session closed")]
    DecryptFailed,

    /// A Data frame's sequence number was already seen or is older than the window; the
    /// frame is dropped, the session continues.
    #[error("SBRP sequence error: {0}")]
    SequenceError(#[from] ReplayError),

    /// The send counter reached its last value; the session ended. Handshake again.
    #[error("SBRP send sequence exhausted; a new handshake is needed")]
    SequenceExhausted,

    /// The session was closed (after `decrypt_failed`, exhaustion or [`close`]).
    ///
    /// [`close`]: crate::proto::Session::close
    #[error("SBRP session is closed")]
    SessionClosed,

    // ----- inner protocols -----------------------------------------------------------------
    /// An SBP frame, chunk run, handshake or RPC envelope was rejected.
    #[error("SBP error {}: {reason}", code.to_u16())]
    Sbp {
        /// The SBP or RPC error code to report.
        code: SbpCode,
        /// What is wrong.
        reason: String,
    },

    // ----- local input ---------------------------------------------------------------------
    /// A session id string is not an 11-character canonical unpadded base64url non-zero u64.
    #[error("invalid session id: {reason}")]
    InvalidSid {
        /// Why.
        reason: &'static str,
    },

    /// An argument is outside what the API accepts (an encoder refusing to build a frame,
    /// a window size, a daemon id).
    #[error("invalid {what}: {reason}")]
    InvalidParameter {
        /// The argument.
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },

    /// The caller's output buffer is too small.
    #[error("output buffer of {available} bytes is too small; {needed} needed")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },

    /// The operating system's random number generator failed.
    #[error("the OS random number generator failed: {0}")]
    Rng(#[source] getrandom::Error),

    /// The pin store failed (I/O, storage, limits, prompt unavailable).
    #[error("pin store: {0}")]
    Pins(#[source] keyline_core::Error),

    // ----- the tokio adapter ---------------------------------------------------------------
    /// The WebSocket or the TCP connection under it failed (connect, read or write).
    #[error("relay connection failed: {reason}")]
    Transport {
        /// What failed (one line, no token).
        reason: String,
    },

    /// The relay closed the WebSocket (a close frame; `code` is the WebSocket close code,
    /// e.g. 1008 when a newer daemon connection replaced this one).
    #[error("relay closed the connection (close code {code:?}) {reason}")]
    RelayClosed {
        /// The WebSocket close code, if the close frame had one.
        code: Option<u16>,
        /// The close reason text (diagnostic only).
        reason: String,
    },

    /// The relay refused the WebSocket upgrade with an HTTP error (401 `unauthorized`, 404
    /// `daemon_not_found`/`daemon_offline`, 409 `sid_in_use`, 429 `too_many_sessions`, …).
    #[error("relay refused the connection: HTTP {status} {error}")]
    RelayRefused {
        /// The HTTP status.
        status: u16,
        /// The `error` field of the JSON body, or empty.
        error: String,
    },

    /// The token issuer answered with an HTTP error (404 `daemon_not_found` /
    /// `daemon_offline`, 409 `identity_mismatch`, 401 `bad_signature`, 429, …).
    #[error("issuer refused the request: HTTP {status} {error}: {message}")]
    IssuerRefused {
        /// The HTTP status.
        status: u16,
        /// The `error` field of the JSON body, or empty.
        error: String,
        /// The `message` field of the JSON body (diagnostic only, shortened), or empty.
        message: String,
    },

    /// The peer answered an RPC request with an error envelope (`t: "E"`); the session
    /// continues.
    #[error("remote error {code}: {message}")]
    Remote {
        /// The RPC error code (1100–1104, 2000, …).
        code: i64,
        /// The peer's message.
        message: String,
        /// The peer's extra data.
        data: Option<serde_json::Value>,
    },

    /// A local deadline passed (an RPC call, a queue, a write, the connect).
    #[error("timed out waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: &'static str,
    },

    /// A bounded queue was full and the policy for it is to refuse (or to end the session
    /// whose consumer is too slow).
    #[error("{what} is full")]
    Backpressure {
        /// Which queue.
        what: &'static str,
    },
}

/// The category of an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The peer (or relay) sent bytes that do not parse: SBRP frame, SBP frame, envelope.
    Malformed,
    /// The peer was rejected: identity, signature, authentication tag, replay.
    PeerRejected,
    /// The relay ended the connection or session with a Control code.
    Relay,
    /// A deadline passed.
    Timeout,
    /// The session is over (closed or exhausted); a new handshake is needed.
    Closed,
    /// The API was called with bad arguments.
    InvalidInput,
    /// The OS or the pin store failed.
    Local,
    /// The connection to the relay failed.
    Io,
    /// The peer's application answered with an error.
    Remote,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed",
            Self::PeerRejected => "peer rejected",
            Self::Relay => "relay",
            Self::Timeout => "timeout",
            Self::Closed => "closed",
            Self::InvalidInput => "invalid input",
            Self::Local => "local",
            Self::Io => "i/o",
            Self::Remote => "remote",
        })
    }
}

impl Error {
    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::MalformedFrame { .. }
            | Self::PayloadTooLarge { .. }
            | Self::InvalidFrameType { .. }
            | Self::InvalidSessionId { .. }
            | Self::UnexpectedFrame { .. }
            | Self::Sbp { .. } => ErrorKind::Malformed,
            Self::IdentityKeyChanged { .. }
            | Self::HandshakeFailed { .. }
            | Self::DecryptFailed
            | Self::SequenceError(_) => ErrorKind::PeerRejected,
            Self::Relay { .. }
            | Self::RelayClosed { .. }
            | Self::RelayRefused { .. }
            | Self::IssuerRefused { .. } => ErrorKind::Relay,
            Self::HandshakeTimeout | Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Transport { .. } => ErrorKind::Io,
            Self::Remote { .. } => ErrorKind::Remote,
            Self::Backpressure { .. } => ErrorKind::Local,
            Self::SequenceExhausted | Self::SessionClosed => ErrorKind::Closed,
            Self::InvalidSid { .. }
            | Self::InvalidParameter { .. }
            | Self::BufferTooSmall { .. } => ErrorKind::InvalidInput,
            Self::Rng(_) | Self::Pins(_) => ErrorKind::Local,
        }
    }

    /// The protocol's number for this error, where one exists: the wire Control code for
    /// frame errors (0x0401–0x0404) and relay codes, the SDK code (0xE001–0xE005) for
    /// handshake and session errors, the SBP/RPC code for inner-protocol errors.
    pub fn code(&self) -> Option<u16> {
        Some(match self {
            Self::MalformedFrame { .. } => ControlCode::MalformedFrame.to_u16(),
            Self::PayloadTooLarge { .. } => ControlCode::PayloadTooLarge.to_u16(),
            Self::InvalidFrameType { .. } => ControlCode::InvalidFrameType.to_u16(),
            Self::InvalidSessionId { .. } => ControlCode::InvalidSessionId.to_u16(),
            Self::Relay { code, .. } => code.to_u16(),
            Self::IdentityKeyChanged { .. } => SdkCode::IdentityKeyChanged.to_u16(),
            Self::HandshakeFailed { .. } => SdkCode::HandshakeFailed.to_u16(),
            Self::HandshakeTimeout => SdkCode::HandshakeTimeout.to_u16(),
            Self::DecryptFailed => SdkCode::DecryptFailed.to_u16(),
            Self::SequenceError(_) => SdkCode::SequenceError.to_u16(),
            Self::Sbp { code, .. } => code.to_u16(),
            Self::Remote { code, .. } => return u16::try_from(*code).ok(),
            Self::Timeout { what } if *what == "rpc call" => SbpCode::Timeout.to_u16(),
            _ => return None,
        })
    }

    /// Whether the session survives this error: only `sequence_error` (drop the frame) and
    /// non-fatal SBP/RPC errors leave it usable.
    pub fn session_survives(&self) -> bool {
        match self {
            Self::SequenceError(_) => true,
            Self::Sbp { code, .. } => !code.is_fatal(),
            Self::Relay { code, .. } => !code.is_terminal(),
            Self::Remote { .. } | Self::Timeout { .. } => true,
            _ => false,
        }
    }

    /// A copy of this error for fanning one end reason out to several waiters. Variants that
    /// wrap a non-`Clone` source become [`Error::SessionClosed`].
    pub fn duplicate(&self) -> Error {
        match self {
            Self::MalformedFrame { reason } => Self::MalformedFrame { reason },
            Self::PayloadTooLarge { len, limit } => Self::PayloadTooLarge {
                len: *len,
                limit: *limit,
            },
            Self::InvalidFrameType { frame_type } => Self::InvalidFrameType {
                frame_type: *frame_type,
            },
            Self::InvalidSessionId { frame_type } => Self::InvalidSessionId {
                frame_type: *frame_type,
            },
            Self::UnexpectedFrame { reason } => Self::UnexpectedFrame { reason },
            Self::Relay { code, sid } => Self::Relay {
                code: *code,
                sid: *sid,
            },
            Self::IdentityKeyChanged {
                daemon_id,
                pinned_fingerprint,
                received_fingerprint,
            } => Self::IdentityKeyChanged {
                daemon_id: daemon_id.clone(),
                pinned_fingerprint: pinned_fingerprint.clone(),
                received_fingerprint: received_fingerprint.clone(),
            },
            Self::HandshakeFailed { reason } => Self::HandshakeFailed { reason },
            Self::HandshakeTimeout => Self::HandshakeTimeout,
            Self::DecryptFailed => Self::DecryptFailed,
            Self::SequenceError(e) => Self::SequenceError(*e),
            Self::SequenceExhausted => Self::SequenceExhausted,
            Self::Sbp { code, reason } => Self::Sbp {
                code: *code,
                reason: reason.clone(),
            },
            Self::InvalidSid { reason } => Self::InvalidSid { reason },
            Self::InvalidParameter { what, reason } => Self::InvalidParameter {
                what,
                reason: reason.clone(),
            },
            Self::Transport { reason } => Self::Transport {
                reason: reason.clone(),
            },
            Self::RelayClosed { code, reason } => Self::RelayClosed {
                code: *code,
                reason: reason.clone(),
            },
            Self::RelayRefused { status, error } => Self::RelayRefused {
                status: *status,
                error: error.clone(),
            },
            Self::IssuerRefused {
                status,
                error,
                message,
            } => Self::IssuerRefused {
                status: *status,
                error: error.clone(),
                message: message.clone(),
            },
            Self::Remote {
                code,
                message,
                data,
            } => Self::Remote {
                code: *code,
                message: message.clone(),
                data: data.clone(),
            },
            Self::Timeout { what } => Self::Timeout { what },
            Self::Backpressure { what } => Self::Backpressure { what },
            _ => Self::SessionClosed,
        }
    }

    pub(crate) fn param(what: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn malformed(reason: &'static str) -> Self {
        Self::MalformedFrame { reason }
    }

    pub(crate) fn sbp(code: SbpCode, reason: impl Into<String>) -> Self {
        Self::Sbp {
            code,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_kinds() {
        assert_eq!(Error::DecryptFailed.code(), Some(0xE004));
        assert_eq!(Error::malformed("x").code(), Some(0x0401));
        assert_eq!(Error::HandshakeTimeout.kind(), ErrorKind::Timeout);
        assert!(Error::SequenceError(ReplayError::Duplicate).session_survives());
        assert!(!Error::DecryptFailed.session_survives());
        let e = Error::IdentityKeyChanged {
            daemon_id: "d".into(),
            pinned_fingerprint: "SHA256:AA".into(),
            received_fingerprint: "SHA256:BB".into(),
        };
        let msg = e.to_string();
        assert!(msg.contains("SHA256:AA") && msg.contains("SHA256:BB") && !msg.contains('\n'));
    }

    #[test]
    fn error_is_send_sync_static() {
        fn check<T: Send + Sync + 'static + std::error::Error>() {}
        check::<Error>();
    }
}
