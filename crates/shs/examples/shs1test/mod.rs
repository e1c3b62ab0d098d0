//! What both `shs1-test` executables share: hex arguments, exact reads, flushed writes, and
//! exiting 1 with a message on stderr (never a panic, nothing more on stdout).

use std::io::{Read, Write};
use std::process::ExitCode;

/// Decodes a hex argument of exactly `N` bytes.
pub(crate) fn hex_arg<const N: usize>(text: &str, what: &str) -> Result<[u8; N], String> {
    hex::decode(text)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| format!("{what} must be {} hex characters", 2 * N))
}

/// Reads exactly one message of `N` bytes from stdin.
pub(crate) fn receive<const N: usize>(what: &str) -> Result<[u8; N], String> {
    let mut msg = [0u8; N];
    std::io::stdin()
        .lock()
        .read_exact(&mut msg)
        .map_err(|e| format!("reading {what}: {e}"))?;
    Ok(msg)
}

/// Writes to stdout and flushes at once.
pub(crate) fn send(bytes: &[u8]) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| e.to_string())
}

/// Exit code 0, or 1 with the error on stderr.
pub(crate) fn exit(name: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{name}: {err}");
            ExitCode::FAILURE
        }
    }
}
