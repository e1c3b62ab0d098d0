//! The CLI's error type: what failed and what to do, one line, with an exit code.

use std::io;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CliError {
    /// keyline-core (identity, pins, files).
    #[error(transparent)]
    Core(#[from] keyline_core::Error),
    /// The secret-handshake or box-stream.
    #[error(transparent)]
    Shs(#[from] keyline_shs::Error),
    /// Signed HTTP.
    #[error(transparent)]
    Http(#[from] keyline_http::Error),
    /// KPS (QUIC key-pinned streams).
    #[error(transparent)]
    Kps(#[from] keyline_kps::Error),
    /// The threshold signer (engine, nodes, store, key protection).
    #[error(transparent)]
    Signer(#[from] keyline_signer::Error),
    /// SBRP (daemon, client, issuer client, built-in methods).
    #[error(transparent)]
    Sbrp(#[from] keyline_sbrp::Error),
    /// The SBRP relay server.
    #[error(transparent)]
    Relay(#[from] keyline_relay::Error),
    /// A command ran but did not succeed (an echo mismatch, no answer in time).
    #[error("{0}")]
    Failed(String),
    /// A bad argument the parser could not catch.
    #[error("{0}")]
    Usage(String),
    /// Local I/O (sockets, stdin/stdout).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl CliError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> CliError {
        let what = what.into();
        move |source| CliError::Io { what, source }
    }

    /// 2 for usage errors, 1 for everything else.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }
}

pub(crate) type Result<T> = std::result::Result<T, CliError>;
