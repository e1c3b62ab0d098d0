//! Known peers: which public key each (protocol, peer) pair is pinned to.
//!
//! A [`PinStore`] keeps pins in SQLite (`$KEYLINE_HOME/keyline.db`), safe to share between
//! processes: WAL journal, a busy timeout, and every read-decide-write step inside one
//! `BEGIN IMMEDIATE` transaction, so two processes pinning the same peer at once agree on
//! one key.
//!
//! [`PinStore::check`] applies a [`Policy`] to a key a peer presented:
//!
//! | policy | pinned, same key | pinned, other key | not pinned |
//! |---|---|---|---|
//! | `strict` | [`PinOutcome::Known`] | [`Error::PinMismatch`] | [`Error::NotPinned`] |
//! | `tofu` | [`PinOutcome::Known`] | [`Error::PinMismatch`] | pin it: [`PinOutcome::NewlyPinned`] |
//! | `prompt` | [`PinOutcome::Known`] | ask the [`Prompt`] | ask the [`Prompt`] |
//!
//! Call `check` only after the peer proved it holds the key (the handshake authenticated),
//! so that `tofu` never pins a key nobody owns.

mod policy;
mod store;

pub use policy::{PinOutcome, Policy, Prompt, PromptDecision};
pub use store::{PinStore, PinStoreConfig};

use crate::error::{Error, Result};
use crate::keys::fingerprint;
use crate::limits::{MAX_PIN_KEY_LEN, MAX_PIN_NOTE_LEN, MAX_PIN_PEER_LEN, MAX_PIN_PROTOCOL_LEN};

/// One pinned key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// Protocol the pin applies to, e.g. `shs`, `sbrp`, `kps`, `nostr`.
    pub protocol: String,
    /// Peer name or address as the protocol identifies it.
    pub peer: String,
    /// The pinned public key (or certificate hash), raw bytes.
    pub key: Vec<u8>,
    /// When the pin was created, in seconds since the Unix epoch.
    pub first_seen: u64,
    /// Free-form note for humans.
    pub note: Option<String>,
}

impl Pin {
    /// [`fingerprint`] of the pinned key.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.key)
    }
}

/// Checks a protocol name: 1 to [`MAX_PIN_PROTOCOL_LEN`] printable ASCII characters, no
/// spaces.
fn validate_protocol(protocol: &str) -> Result<()> {
    if protocol.is_empty() || protocol.len() > MAX_PIN_PROTOCOL_LEN {
        return Err(Error::param(
            "pin protocol",
            format!("must be 1 to {MAX_PIN_PROTOCOL_LEN} bytes"),
        ));
    }
    if !protocol.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::param(
            "pin protocol",
            "must be printable ASCII without spaces",
        ));
    }
    Ok(())
}

/// Checks a peer name: 1 to [`MAX_PIN_PEER_LEN`] bytes without control characters (it is
/// printed in one-line messages and listings).
fn validate_peer(peer: &str) -> Result<()> {
    if peer.is_empty() || peer.len() > MAX_PIN_PEER_LEN {
        return Err(Error::param(
            "pin peer",
            format!("must be 1 to {MAX_PIN_PEER_LEN} bytes"),
        ));
    }
    if peer.chars().any(char::is_control) {
        return Err(Error::param(
            "pin peer",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks a note: at most [`MAX_PIN_NOTE_LEN`] bytes without control characters.
fn validate_note(note: &str) -> Result<()> {
    if note.len() > MAX_PIN_NOTE_LEN {
        return Err(Error::param(
            "pin note",
            format!("longer than {MAX_PIN_NOTE_LEN} bytes"),
        ));
    }
    if note.chars().any(char::is_control) {
        return Err(Error::param(
            "pin note",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks a key: 1 to [`MAX_PIN_KEY_LEN`] bytes.
fn validate_key(key: &[u8]) -> Result<()> {
    if key.is_empty() || key.len() > MAX_PIN_KEY_LEN {
        return Err(Error::param(
            "pin key",
            format!("must be 1 to {MAX_PIN_KEY_LEN} bytes, got {}", key.len()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(validate_protocol("shs").is_ok());
        assert!(validate_protocol("").is_err());
        assert!(validate_protocol("s hs").is_err());
        assert!(validate_protocol("shs\n").is_err());
        assert!(validate_peer("127.0.0.1:8008").is_ok());
        assert!(validate_peer("alice's laptop").is_ok());
        assert!(validate_peer("").is_err());
        assert!(validate_peer("a\nb").is_err());
        assert!(validate_peer("a\u{1b}[31m").is_err());
        assert!(validate_note("").is_ok());
        assert!(validate_note("line\nbreak").is_err());
        assert!(validate_key(&[]).is_err());
    }

    #[test]
    fn pin_fingerprint() {
        let pin = Pin {
            protocol: "shs".into(),
            peer: "p".into(),
            key: vec![1; 32],
            first_seen: 0,
            note: None,
        };
        assert_eq!(pin.fingerprint(), fingerprint(&[1; 32]));
    }
}
