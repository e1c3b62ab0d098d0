//! The crate's error type.
//!
//! [`Error`] is one flat, `#[non_exhaustive]` enum so callers can match the cases they handle;
//! [`Error::kind`] groups the variants into the categories a CLI maps to exit codes and a
//! protocol crate maps to "peer misbehaved" versus "local problem". Every message is one line
//! that says what failed and, where there is one, what to do. No message ever contains secret
//! key material.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::replay::ReplayError;

/// Result alias used throughout keyline-core.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in keyline-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- invalid input ---------------------------------------------------------------------
    /// A key given as text or bytes is malformed or not a valid curve point or scalar.
    #[error("invalid {what}: {reason}")]
    InvalidKey {
        /// Which kind of key was expected, e.g. "Ed25519 public key".
        what: &'static str,
        /// Why it was rejected (never contains key material).
        reason: String,
    },

    /// The identity file exists but cannot be used.
    #[error("invalid identity file {}: {reason}", path.display())]
    InvalidIdentityFile {
        /// The file that was read.
        path: PathBuf,
        /// Why it was rejected (never contains key material).
        reason: String,
    },

    /// A key to import (SSB secret, nsec) is malformed or inconsistent.
    #[error("cannot import key: {reason}")]
    InvalidImport {
        /// Why it was rejected (never contains key material).
        reason: String,
    },

    /// An argument is outside what the API accepts (a length limit, a window size, a name).
    #[error("invalid {what}: {reason}")]
    InvalidParameter {
        /// The argument, e.g. "pin peer".
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },

    /// A file is larger than the limit for its kind; it was not read.
    #[error("{} is {size} bytes, more than the {limit}-byte limit; refusing to read it", path.display())]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit that applies (see [`crate::limits`]).
        limit: u64,
    },

    // ----- local state and misuse -------------------------------------------------------------
    /// `keygen` would overwrite an existing identity file.
    #[error("identity file {} already exists; pass --force to replace it", path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },

    /// There is no identity file where one is needed.
    #[error("no identity file at {}; create one with `keyline keygen`", path.display())]
    NoIdentity {
        /// Where it was looked for.
        path: PathBuf,
    },

    /// Neither an explicit home, `KEYLINE_HOME` nor `HOME` is available.
    #[error("cannot locate the keyline home; pass --home DIR or set KEYLINE_HOME or HOME")]
    NoHome,

    /// The keyline home path exists but is not usable as a directory.
    #[error("keyline home {} is unusable: {reason}", path.display())]
    InvalidHome {
        /// The home path.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },

    /// `PinStore::add` found a different key already pinned and `replace` was not requested.
    #[error(
        "{protocol} peer `{peer}` already has a different pinned key ({pinned_fingerprint}); \
         remove it first or replace it explicitly"
    )]
    PinExists {
        /// Protocol of the pin.
        protocol: String,
        /// Peer name or address.
        peer: String,
        /// Fingerprint of the key that stays pinned.
        pinned_fingerprint: String,
    },

    /// The pin store holds the maximum number of pins for a protocol; nothing was added.
    #[error(
        "pin store holds the maximum of {limit} pins for {protocol}; \
         remove unused ones with `keyline pin remove`"
    )]
    PinStoreFull {
        /// Protocol whose pin count is at the limit.
        protocol: String,
        /// The limit that applies.
        limit: u64,
    },

    /// The `prompt` policy was used without a [`crate::Prompt`] to ask.
    #[error(
        "pin policy `prompt` needs an interactive prompt to decide on {protocol} peer `{peer}` \
         ({fingerprint}); pin the key with `keyline pin add` or use another policy"
    )]
    PromptUnavailable {
        /// Protocol of the connection.
        protocol: String,
        /// Peer name or address.
        peer: String,
        /// Fingerprint of the presented key.
        fingerprint: String,
    },

    // ----- the peer's key was rejected ------------------------------------------------------
    /// The peer presented a key different from the pinned one.
    #[error(
        "{protocol} peer `{peer}` presented key {presented_fingerprint} but {pinned_fingerprint} \
         is pinned; if the change is expected, run `keyline pin remove {protocol} {peer}`"
    )]
    PinMismatch {
        /// Protocol of the connection.
        protocol: String,
        /// Peer name or address.
        peer: String,
        /// Fingerprint of the pinned key.
        pinned_fingerprint: String,
        /// Fingerprint of the key the peer presented.
        presented_fingerprint: String,
    },

    /// Policy `strict` and the peer has no pin.
    #[error(
        "{protocol} peer `{peer}` ({fingerprint}) is not pinned; \
         pin it with `keyline pin add` or use the tofu policy"
    )]
    NotPinned {
        /// Protocol of the connection.
        protocol: String,
        /// Peer name or address.
        peer: String,
        /// Fingerprint of the presented key.
        fingerprint: String,
    },

    /// Policy `prompt` and the prompt rejected the key.
    #[error("{protocol} peer `{peer}` ({fingerprint}) was rejected at the prompt")]
    PinRefused {
        /// Protocol of the connection.
        protocol: String,
        /// Peer name or address.
        peer: String,
        /// Fingerprint of the presented key.
        fingerprint: String,
    },

    /// A packet counter was rejected by a [`crate::ReplayWindow`].
    #[error("replayed packet: {0}")]
    Replay(#[from] ReplayError),

    // ----- I/O and storage ------------------------------------------------------------------
    /// A file system operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "read", "create", "rename to".
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The operating system's random number generator failed.
    #[error("the OS random number generator failed: {0}")]
    Rng(#[source] getrandom::Error),

    /// The pin store's database reported an error.
    #[error("pin store {}: {op} failed: {source}", path.display())]
    Storage {
        /// The operation, e.g. "open", "insert pin".
        op: &'static str,
        /// The database file (`:memory:` for an in-memory store).
        path: PathBuf,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },

    /// The pin store holds data keyline did not write.
    #[error("pin store is corrupt: {reason}; move it away and re-pin your peers")]
    CorruptStore {
        /// What is wrong.
        reason: String,
    },

    /// The pin store was created by a newer keyline.
    #[error(
        "pin store schema version {found} is newer than this keyline supports ({supported}); \
         upgrade keyline"
    )]
    UnsupportedSchema {
        /// Version found in the database.
        found: i64,
        /// Highest version this build understands.
        supported: i64,
    },
}

/// The category of an [`Error`], for exit codes and for protocol crates that must tell
/// "the peer misbehaved" from "something is wrong here".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Malformed or out-of-range input: keys, files, arguments.
    InvalidInput,
    /// Local state prevents the operation, or the API was used wrongly.
    Misuse,
    /// The peer's key or packet was rejected (pin mismatch, not pinned, refused, replay).
    PeerRejected,
    /// A file system or OS failure.
    Io,
    /// The pin store's database failed or holds unexpected data.
    Storage,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidInput => "invalid input",
            Self::Misuse => "misuse",
            Self::PeerRejected => "peer rejected",
            Self::Io => "i/o",
            Self::Storage => "storage",
        })
    }
}

impl Error {
    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidKey { .. }
            | Self::InvalidIdentityFile { .. }
            | Self::InvalidImport { .. }
            | Self::InvalidParameter { .. }
            | Self::FileTooLarge { .. } => ErrorKind::InvalidInput,
            Self::AlreadyExists { .. }
            | Self::NoIdentity { .. }
            | Self::NoHome
            | Self::InvalidHome { .. }
            | Self::PinExists { .. }
            | Self::PinStoreFull { .. }
            | Self::PromptUnavailable { .. } => ErrorKind::Misuse,
            Self::PinMismatch { .. }
            | Self::NotPinned { .. }
            | Self::PinRefused { .. }
            | Self::Replay(_) => ErrorKind::PeerRejected,
            Self::Io { .. } | Self::Rng(_) => ErrorKind::Io,
            Self::Storage { .. } | Self::CorruptStore { .. } | Self::UnsupportedSchema { .. } => {
                ErrorKind::Storage
            }
        }
    }

    /// Shorthand for [`Error::Io`].
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`Error::InvalidParameter`].
    pub(crate) fn param(what: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            what,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        let errors = [
            Error::AlreadyExists {
                path: "/h/identity.toml".into(),
            },
            Error::PinMismatch {
                protocol: "shs".into(),
                peer: "host:8008".into(),
                pinned_fingerprint: "SHA256:aaa".into(),
                presented_fingerprint: "SHA256:bbb".into(),
            },
            Error::io(
                "read",
                "/x",
                io::Error::new(io::ErrorKind::NotFound, "gone"),
            ),
            Error::NoHome,
            Error::Replay(ReplayError::Duplicate),
        ];
        for e in errors {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "{msg}");
            assert!(!msg.is_empty());
        }
    }

    #[test]
    fn mismatch_shows_both_fingerprints() {
        let e = Error::PinMismatch {
            protocol: "shs".into(),
            peer: "p".into(),
            pinned_fingerprint: "SHA256:pinned".into(),
            presented_fingerprint: "SHA256:presented".into(),
        };
        let msg = e.to_string();
        assert!(msg.contains("SHA256:pinned") && msg.contains("SHA256:presented"));
        assert_eq!(e.kind(), ErrorKind::PeerRejected);
    }

    #[test]
    fn already_exists_says_what_to_do() {
        let e = Error::AlreadyExists {
            path: "/h/identity.toml".into(),
        };
        assert_eq!(
            e.to_string(),
            "identity file /h/identity.toml already exists; pass --force to replace it"
        );
        assert_eq!(e.kind(), ErrorKind::Misuse);
    }

    #[test]
    fn error_is_send_sync_static() {
        fn check<T: Send + Sync + 'static + std::error::Error>() {}
        check::<Error>();
    }
}
