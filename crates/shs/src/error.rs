//! The crate's one error type.
//!
//! Every error names the [`Step`] at which it happened and falls in one of the classes of
//! DESIGN.md: the peer misbehaved ([`Error::Peer`]), the connection was refused
//! ([`Error::Refused`]), local misuse or invalid input ([`Error::InvalidInput`]), a deadline
//! passed ([`Error::Timeout`]), or the transport failed ([`Error::UnexpectedEof`],
//! [`Error::Io`]). Secrets never appear in messages.

use std::fmt;
use std::io;
use std::time::Duration;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where in the protocol an error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Configuring a handshake, before anything was sent.
    Setup,
    /// Message 1, the client hello (client → server, 64 bytes).
    Msg1,
    /// Message 2, the server hello (server → client, 64 bytes).
    Msg2,
    /// Message 3, the client authentication (client → server, 112 bytes).
    Msg3,
    /// The server's decision whether to accept the authenticated client.
    Authorize,
    /// Message 4, the server accept (server → client, 80 bytes).
    Msg4,
    /// The box-stream after the handshake.
    BoxStream,
    /// Closing: waiting for the peer's goodbye.
    Close,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Setup => "setup",
            Step::Msg1 => "msg1 (client hello)",
            Step::Msg2 => "msg2 (server hello)",
            Step::Msg3 => "msg3 (client auth)",
            Step::Authorize => "authorize",
            Step::Msg4 => "msg4 (server accept)",
            Step::BoxStream => "box-stream",
            Step::Close => "close",
        })
    }
}

/// Ways in which the peer broke the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerError {
    /// The hello's HMAC does not verify under our network key (wrong network, or not SHS).
    BadHmac,
    /// The peer's ephemeral key has low order: the X25519 result is all zero.
    LowOrderEphemeral,
    /// msg3 or msg4 does not open (wrong server key, or tampered).
    BoxOpen,
    /// The box opened but the Ed25519 signature inside does not verify (strictly).
    BadSignature,
    /// The client's long-term key cannot be used (small order or not torsion-free).
    InvalidClientKey,
    /// A box-stream header does not open.
    InvalidHeader,
    /// A box-stream body does not open.
    InvalidBody,
    /// A box-stream header declares a body longer than [`crate::limits::MAX_PACKET`].
    PacketTooLong(u16),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::BadHmac => f.write_str(
                "the hello does not verify under our network key (wrong network key, or not an SHS peer)",
            ),
            PeerError::LowOrderEphemeral => {
                f.write_str("the peer sent a low-order ephemeral key (all-zero Diffie-Hellman)")
            }
            PeerError::BoxOpen => {
                f.write_str("the message does not decrypt (wrong key, or tampered in transit)")
            }
            PeerError::BadSignature => f.write_str("the peer's signature does not verify"),
            PeerError::InvalidClientKey => f.write_str("the client's long-term key is unusable"),
            PeerError::InvalidHeader => {
                f.write_str("a packet header does not decrypt (tampered, or out of sequence)")
            }
            PeerError::InvalidBody => {
                f.write_str("a packet body does not decrypt (tampered in transit)")
            }
            PeerError::PacketTooLong(len) => write!(
                f,
                "a packet declares {len} bytes, more than the {} allowed",
                crate::limits::MAX_PACKET
            ),
        }
    }
}

/// Why a handshake was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Server side: the authorize hook denied the client, failed, or timed out.
    Unauthorized,
    /// Client side: the server closed the connection after msg3. It has another key, or it
    /// does not accept this client; the protocol does not say which.
    ServerClosedAfterHello,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Unauthorized => "the client is not authorized",
            Refusal::ServerClosedAfterHello => {
                "the server closed the connection after our hello: wrong server key, or it does not accept this client"
            }
        })
    }
}

/// Local misuse or invalid configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidInput {
    /// The server key to dial cannot be used (undecodable, small order, not torsion-free).
    ServerKey(&'static str),
    /// A network key was not 32 bytes (64 hex characters).
    NetworkKey(String),
    /// A 64-byte libsodium secret key whose public half does not belong to its seed.
    SecretKey(&'static str),
    /// A write or goodbye after the goodbye was sent.
    WriteAfterGoodbye,
    /// A packet body outside `1..=MAX_PACKET` bytes was given to the encoder.
    PacketSize(usize),
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidInput::ServerKey(why) => write!(f, "unusable server key: {why}"),
            InvalidInput::NetworkKey(why) => {
                write!(f, "invalid network key ({why}): expected 64 hex characters")
            }
            InvalidInput::SecretKey(why) => write!(f, "invalid secret key: {why}"),
            InvalidInput::WriteAfterGoodbye => f.write_str("write after the goodbye was sent"),
            InvalidInput::PacketSize(len) => write!(
                f,
                "packet body of {len} bytes; a packet carries 1 to {} bytes",
                crate::limits::MAX_PACKET
            ),
        }
    }
}

/// The error type of `keyline-shs`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke the protocol.
    #[error("{step}: {kind}")]
    Peer {
        /// Where it happened.
        step: Step,
        /// What was wrong.
        kind: PeerError,
    },
    /// The handshake was refused.
    #[error("{step}: {reason}")]
    Refused {
        /// Where it happened.
        step: Step,
        /// Why.
        reason: Refusal,
    },
    /// Local misuse or an unusable argument.
    #[error("{0}")]
    InvalidInput(InvalidInput),
    /// A deadline passed.
    #[error("{step}: timed out after {after:?}")]
    Timeout {
        /// The step that was under way.
        step: Step,
        /// The bound that was exceeded.
        after: Duration,
    },
    /// The connection ended where more bytes were required.
    #[error("{step}: the peer closed the connection unexpectedly")]
    UnexpectedEof {
        /// The step that was under way.
        step: Step,
    },
    /// The transport failed.
    #[error("{step}: {source}")]
    Io {
        /// The step that was under way.
        step: Step,
        /// The transport error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn peer(step: Step, kind: PeerError) -> Self {
        Error::Peer { step, kind }
    }

    pub(crate) fn io(step: Step, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::UnexpectedEof {
            Error::UnexpectedEof { step }
        } else {
            Error::Io { step, source }
        }
    }

    /// The step at which the error happened (`Setup` for invalid input).
    pub fn step(&self) -> Step {
        match self {
            Error::Peer { step, .. }
            | Error::Refused { step, .. }
            | Error::Timeout { step, .. }
            | Error::UnexpectedEof { step }
            | Error::Io { step, .. } => *step,
            Error::InvalidInput(InvalidInput::WriteAfterGoodbye | InvalidInput::PacketSize(_)) => {
                Step::BoxStream
            }
            Error::InvalidInput(_) => Step::Setup,
        }
    }

    /// A stable short code for the error, the vocabulary of the test vectors: `hmac`,
    /// `low_order_ephemeral`, `box_open`, `signature`, `invalid_client_key`, `invalid_header`,
    /// `invalid_body`, `packet_too_long`, `unauthorized`, `server_closed_after_hello`,
    /// `invalid_server_longterm_key`, `invalid_network_key`, `invalid_secret_key`,
    /// `write_after_goodbye`, `packet_size`, `timeout`, `eof_before_goodbye` (EOF in the
    /// box-stream), `unexpected_eof` (EOF in the handshake) or `io`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Peer { kind, .. } => match kind {
                PeerError::BadHmac => "hmac",
                PeerError::LowOrderEphemeral => "low_order_ephemeral",
                PeerError::BoxOpen => "box_open",
                PeerError::BadSignature => "signature",
                PeerError::InvalidClientKey => "invalid_client_key",
                PeerError::InvalidHeader => "invalid_header",
                PeerError::InvalidBody => "invalid_body",
                PeerError::PacketTooLong(_) => "packet_too_long",
            },
            Error::Refused { reason, .. } => match reason {
                Refusal::Unauthorized => "unauthorized",
                Refusal::ServerClosedAfterHello => "server_closed_after_hello",
            },
            Error::InvalidInput(what) => match what {
                InvalidInput::ServerKey(_) => "invalid_server_longterm_key",
                InvalidInput::NetworkKey(_) => "invalid_network_key",
                InvalidInput::SecretKey(_) => "invalid_secret_key",
                InvalidInput::WriteAfterGoodbye => "write_after_goodbye",
                InvalidInput::PacketSize(_) => "packet_size",
            },
            Error::Timeout { .. } => "timeout",
            Error::UnexpectedEof {
                step: Step::BoxStream | Step::Close,
            } => "eof_before_goodbye",
            Error::UnexpectedEof { .. } => "unexpected_eof",
            Error::Io { .. } => "io",
        }
    }

    /// True when the peer, not this side, caused the error.
    pub fn is_peer_fault(&self) -> bool {
        matches!(self, Error::Peer { .. })
    }

    /// Converts the error into an `io::Error` for the `AsyncRead`/`AsyncWrite` adapters,
    /// keeping it recoverable with [`Error::from_io`].
    pub fn into_io(self) -> io::Error {
        let kind = match &self {
            Error::Io { source, .. } => source.kind(),
            Error::UnexpectedEof { .. } => io::ErrorKind::UnexpectedEof,
            Error::Timeout { .. } => io::ErrorKind::TimedOut,
            Error::InvalidInput(_) => io::ErrorKind::InvalidInput,
            Error::Refused { .. } => io::ErrorKind::ConnectionRefused,
            Error::Peer { .. } => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, self)
    }

    /// Recovers a keyline error from an `io::Error` made by [`Error::into_io`]; other I/O
    /// errors become [`Error::Io`] (or [`Error::UnexpectedEof`]) at `step`.
    pub fn from_io(err: io::Error, step: Step) -> Self {
        match err.downcast::<Error>() {
            Ok(inner) => inner,
            Err(err) => Error::io(step, err),
        }
    }
}

impl Clone for Error {
    /// Errors are sticky in the box-stream decoder, which hands the same error out again;
    /// an I/O source is cloned by kind and message.
    fn clone(&self) -> Self {
        match self {
            Error::Peer { step, kind } => Error::Peer {
                step: *step,
                kind: *kind,
            },
            Error::Refused { step, reason } => Error::Refused {
                step: *step,
                reason: *reason,
            },
            Error::InvalidInput(what) => Error::InvalidInput(what.clone()),
            Error::Timeout { step, after } => Error::Timeout {
                step: *step,
                after: *after,
            },
            Error::UnexpectedEof { step } => Error::UnexpectedEof { step: *step },
            Error::Io { step, source } => Error::Io {
                step: *step,
                source: io::Error::new(source.kind(), source.to_string()),
            },
        }
    }
}
