//! The crate's one error type and the KPS error-code registry (spec §12.1).
//!
//! Every [`Error`] maps to a registry [`Code`] ([`Error::code`]) and says whether it came from
//! the peer ([`Error::is_remote`]), as the spec's §12.3 table requires. Stream reads and writes
//! report errors through [`std::io::Error`]; [`Error::from_io`] recovers the KPS error from it.
//! Secrets never appear in messages.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The KPS error-code registry: wire `u32` values, identical across implementations and both
/// transports (spec §12.1). Every unknown received value maps to [`Code::InternalError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Code {
    /// 0: no specific reason; as a connection close code, a clean close.
    None = 0,
    /// 1: cancelled by the local application.
    Cancelled = 1,
    /// 2: normal close / graceful teardown.
    Closed = 2,
    /// 3: write half aborted.
    Reset = 3,
    /// 4: deadline or idle timeout.
    Timeout = 4,
    /// 5: transport or connectivity failure.
    NetworkError = 5,
    /// 6: malformed or out-of-contract peer behaviour.
    ProtocolError = 6,
    /// 7: capability or version not supported.
    Unsupported = 7,
    /// 8: payload exceeds a limit (datagrams).
    TooLarge = 8,
    /// 9: bounded inbound queue full.
    QueueFull = 9,
    /// 10: refused by policy.
    PermissionDenied = 10,
    /// 11: unspecified local failure; every unknown received code.
    InternalError = 11,
}

impl Code {
    /// Every code, in wire order.
    pub const ALL: [Code; 12] = [
        Code::None,
        Code::Cancelled,
        Code::Closed,
        Code::Reset,
        Code::Timeout,
        Code::NetworkError,
        Code::ProtocolError,
        Code::Unsupported,
        Code::TooLarge,
        Code::QueueFull,
        Code::PermissionDenied,
        Code::InternalError,
    ];

    /// The wire value.
    pub const fn wire(self) -> u32 {
        self as u32
    }

    /// Decodes a received value; anything outside 0–11 is [`Code::InternalError`].
    pub fn from_wire(value: u64) -> Code {
        usize::try_from(value)
            .ok()
            .and_then(|i| Code::ALL.get(i).copied())
            .unwrap_or(Code::InternalError)
    }

    /// The registry name (`none` for 0).
    pub const fn name(self) -> &'static str {
        match self {
            Code::None => "none",
            Code::Cancelled => "cancelled",
            Code::Closed => "closed",
            Code::Reset => "reset",
            Code::Timeout => "timeout",
            Code::NetworkError => "network-error",
            Code::ProtocolError => "protocol-error",
            Code::Unsupported => "unsupported",
            Code::TooLarge => "too-large",
            Code::QueueFull => "queue-full",
            Code::PermissionDenied => "permission-denied",
            Code::InternalError => "internal-error",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.wire())
    }
}

/// Why an address string was rejected (spec §1).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressError {
    /// The string is empty.
    Empty,
    /// The string is longer than [`crate::limits::MAX_ADDRESS_LEN`].
    TooLong,
    /// The `host:port:certhash` structure is broken (the reason says where).
    Syntax(&'static str),
    /// The host is not an IPv4 literal or a bracketed IPv6 literal.
    Host,
    /// The port is not decimal digits in 1–65535.
    Port,
    /// The certhash does not decode.
    Certhash(CerthashError),
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::Empty => f.write_str("empty address; expected ip:port:certhash"),
            AddressError::TooLong => write!(
                f,
                "address longer than {} characters",
                crate::limits::MAX_ADDRESS_LEN
            ),
            AddressError::Syntax(why) => {
                write!(f, "{why}; expected ip:port:certhash or [ipv6]:port:certhash")
            }
            AddressError::Host => f.write_str(
                "host is not an IP literal (IPv4 dotted quad, or IPv6 in brackets; no names, no zone ids)",
            ),
            AddressError::Port => f.write_str("port must be decimal digits in 1-65535"),
            AddressError::Certhash(e) => write!(f, "certhash: {e}"),
        }
    }
}

/// Why a certhash string was rejected (spec §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CerthashError {
    /// The string is empty or has nothing after the `u`.
    Empty,
    /// The first character is not the multibase prefix `u`.
    Prefix,
    /// The body is not canonical unpadded base64url.
    Encoding,
    /// The decoded body is not 34 bytes (the length found, or `usize::MAX` if too long to decode).
    Length(usize),
    /// The decoded body does not start with the sha2-256 multihash header `0x12 0x20`.
    Multihash,
}

impl fmt::Display for CerthashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CerthashError::Empty => f.write_str("empty certhash"),
            CerthashError::Prefix => {
                f.write_str("certhash must start with the multibase prefix 'u'")
            }
            CerthashError::Encoding => {
                f.write_str("certhash body is not canonical unpadded base64url")
            }
            CerthashError::Length(n) if *n == usize::MAX => {
                f.write_str("certhash is too long; it is 47 characters")
            }
            CerthashError::Length(n) => {
                write!(f, "certhash decodes to {n} bytes; expected 34")
            }
            CerthashError::Multihash => {
                f.write_str("certhash is not a sha2-256 multihash (0x12 0x20 header)")
            }
        }
    }
}

/// Why a key file could not be used (spec §3).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyFileError {
    /// No `PRIVATE KEY` / `EC PRIVATE KEY` block.
    MissingKey,
    /// No `CERTIFICATE` block.
    MissingCertificate,
    /// More than one key or certificate block.
    Duplicate(&'static str),
    /// A block is not valid PEM, or a block of another kind is present.
    Pem(String),
    /// The key is not an ECDSA P-256 key, or it does not belong to the certificate.
    Key(&'static str),
    /// The file is a legacy key-only file; keyline does not migrate those.
    KeyOnly,
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileError::MissingKey => f.write_str("no PRIVATE KEY block"),
            KeyFileError::MissingCertificate => f.write_str("no CERTIFICATE block"),
            KeyFileError::Duplicate(what) => write!(f, "more than one {what} block"),
            KeyFileError::Pem(why) => write!(f, "malformed PEM: {why}"),
            KeyFileError::Key(why) => write!(f, "unusable key: {why}"),
            KeyFileError::KeyOnly => f.write_str(
                "key-only file without a CERTIFICATE block (legacy format); move it away to mint a new identity",
            ),
        }
    }
}

/// The error type of `keyline-kps`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A stream, datagram or connection error carrying a registry code (spec §12.3).
    #[error("{} {code}", if *remote { "peer:" } else { "local:" })]
    Kps {
        /// The registry code.
        code: Code,
        /// Whether the code came from the peer.
        remote: bool,
    },
    /// A datagram is larger than the connection currently allows (`too-large`).
    #[error("datagram of {size} bytes exceeds the current maximum of {max} bytes (too-large)")]
    DatagramTooLarge {
        /// The payload size that was refused.
        size: usize,
        /// The current maximum payload size (0 if the peer takes no datagrams).
        max: usize,
    },
    /// The server's certificate does not hash to any pinned certhash: the dial was refused
    /// before any application byte was sent.
    #[error("the server's certificate does not match the pinned certhash")]
    PinMismatch,
    /// A deadline passed.
    #[error("timed out after {after:?} ({what})")]
    Timeout {
        /// What was under way.
        what: &'static str,
        /// The bound that was exceeded.
        after: Duration,
    },
    /// An address string was rejected.
    #[error("invalid address: {0}")]
    Address(AddressError),
    /// A certhash string was rejected.
    #[error("invalid certhash: {0}")]
    Certhash(CerthashError),
    /// A key file could not be used.
    #[error("key file {}: {reason}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: KeyFileError,
    },
    /// Local misuse or an unusable configuration.
    #[error("{0}")]
    InvalidInput(String),
    /// The listener was closed.
    #[error("the listener is closed")]
    ListenerClosed,
    /// An operating-system or TLS-library failure.
    #[error("{what}: {source}")]
    Io {
        /// What was under way.
        what: &'static str,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// A local error with a registry code.
    pub const fn local(code: Code) -> Error {
        Error::Kps {
            code,
            remote: false,
        }
    }

    /// An error whose code came from the peer.
    pub const fn remote(code: Code) -> Error {
        Error::Kps { code, remote: true }
    }

    /// The registry code of this error.
    pub fn code(&self) -> Code {
        match self {
            Error::Kps { code, .. } => *code,
            Error::DatagramTooLarge { .. } => Code::TooLarge,
            Error::PinMismatch => Code::PermissionDenied,
            Error::Timeout { .. } => Code::Timeout,
            Error::ListenerClosed => Code::Closed,
            Error::Io { .. } => Code::NetworkError,
            Error::Address(_)
            | Error::Certhash(_)
            | Error::KeyFile { .. }
            | Error::InvalidInput(_) => Code::InternalError,
        }
    }

    /// Whether the code came from the peer.
    pub fn is_remote(&self) -> bool {
        matches!(self, Error::Kps { remote: true, .. })
    }

    /// Recovers the KPS error carried by an `io::Error` from a stream read or write; any other
    /// `io::Error` becomes [`Error::Io`].
    pub fn from_io(err: io::Error) -> Error {
        if err.get_ref().is_some_and(|e| e.is::<Error>()) {
            match err.into_inner().map(|e| e.downcast::<Error>()) {
                Some(Ok(e)) => *e,
                _ => Error::local(Code::InternalError),
            }
        } else {
            Error::Io {
                what: "stream",
                source: err,
            }
        }
    }

    /// The KPS error inside an `io::Error`, if there is one.
    pub fn of_io(err: &io::Error) -> Option<&Error> {
        err.get_ref().and_then(|e| e.downcast_ref::<Error>())
    }

    pub(crate) fn io(what: &'static str, source: io::Error) -> Error {
        Error::Io { what, source }
    }

    pub(crate) fn into_io(self) -> io::Error {
        let kind = match &self {
            Error::Kps {
                code: Code::Timeout,
                ..
            }
            | Error::Timeout { .. } => io::ErrorKind::TimedOut,
            Error::Kps { remote: true, .. } => io::ErrorKind::ConnectionReset,
            Error::Kps {
                code: Code::Closed, ..
            } => io::ErrorKind::NotConnected,
            Error::Kps { .. } => io::ErrorKind::ConnectionAborted,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, self)
    }
}

impl From<AddressError> for Error {
    fn from(e: AddressError) -> Self {
        Error::Address(e)
    }
}

impl From<CerthashError> for Error {
    fn from(e: CerthashError) -> Self {
        Error::Certhash(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_wire_values() {
        for (i, c) in Code::ALL.iter().enumerate() {
            assert_eq!(c.wire() as usize, i);
            assert_eq!(Code::from_wire(i as u64), *c);
        }
        assert_eq!(Code::Reset.name(), "reset");
        assert_eq!(Code::ProtocolError.wire(), 6);
        assert_eq!(Code::InternalError.wire(), 11);
    }

    #[test]
    fn unknown_code_sinks_to_internal_error() {
        for v in [12, 9999, u32::MAX as u64, u64::MAX] {
            assert_eq!(Code::from_wire(v), Code::InternalError);
        }
    }

    #[test]
    fn io_round_trip_keeps_code_and_side() {
        let e = Error::remote(Code::Reset).into_io();
        assert_eq!(Error::of_io(&e).map(Error::code), Some(Code::Reset));
        let back = Error::from_io(e);
        assert_eq!(back.code(), Code::Reset);
        assert!(back.is_remote());
        let plain = Error::from_io(io::Error::other("x"));
        assert_eq!(plain.code(), Code::NetworkError);
        assert!(!plain.is_remote());
    }
}
