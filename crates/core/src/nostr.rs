//! NIP-01 event ids, shared by every keyline component that meets Nostr events (NIP-98 in
//! keyline-http, `sign_event` in keyline-signer).
//!
//! The id of an event is SHA-256 of `[0,<pubkey>,<created_at>,<kind>,<tags>,<content>]`
//! serialized as JSON without whitespace. NIP-01 fixes the string escapes `\n`, `\"`, `\\`,
//! `\r`, `\t`, `\b`, `\f` and says every other character is written verbatim; the remaining
//! C0 controls are written `\u00xx` here, as `JSON.stringify` and `serde_json` do (verbatim
//! control characters would not be valid JSON).
//!
//! ```
//! use keyline_core::nostr::UnsignedEvent;
//! let event = UnsignedEvent::parse(r#"{"kind":1,"content":"hi","tags":[["t","x"]],"created_at":1700000000}"#).unwrap();
//! let id = event.id(&[0x11; 32]);
//! assert_eq!(id.len(), 32);
//! ```

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::limits::{MAX_EVENT_TAG_ITEMS, MAX_EVENT_TAGS, MAX_UNSIGNED_EVENT_BYTES};

/// The NIP-01 serialization whose SHA-256 is the event id.
pub fn id_preimage(
    pubkey_hex: &str,
    created_at: u64,
    kind: u64,
    tags: &[Vec<String>],
    content: &str,
) -> String {
    let mut out = String::with_capacity(64 + content.len());
    out.push_str("[0,");
    push_json_string(&mut out, pubkey_hex);
    out.push_str(&format!(",{created_at},{kind},["));
    for (i, tag) in tags.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        for (j, item) in tag.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            push_json_string(&mut out, item);
        }
        out.push(']');
    }
    out.push_str("],");
    push_json_string(&mut out, content);
    out.push(']');
    out
}

/// SHA-256 of [`id_preimage`].
pub fn event_id(
    pubkey_hex: &str,
    created_at: u64,
    kind: u64,
    tags: &[Vec<String>],
    content: &str,
) -> [u8; 32] {
    Sha256::digest(id_preimage(pubkey_hex, created_at, kind, tags, content).as_bytes()).into()
}

/// A JSON string with NIP-01's escapes (see the module docs).
pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// An event to be signed, as a NIP-46 `sign_event` request carries it: `kind`, `content`,
/// `tags`, `created_at`, and optionally `pubkey` (which must then be the signer's key).
/// `id` and `sig`, if present, are ignored: they are recomputed.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct UnsignedEvent {
    /// Event kind, 0–65535.
    pub kind: u16,
    /// Content.
    pub content: String,
    /// Tags: arrays of strings.
    pub tags: Vec<Vec<String>>,
    /// Unix seconds.
    pub created_at: u64,
    /// Lowercase hex x-only public key, when the client included one.
    #[serde(default)]
    pub pubkey: Option<String>,
}

impl UnsignedEvent {
    /// Parses the JSON text of an unsigned event with the limits of signer.md §12.5: at most
    /// [`MAX_UNSIGNED_EVENT_BYTES`], [`MAX_EVENT_TAGS`] tags of at most
    /// [`MAX_EVENT_TAG_ITEMS`] elements each.
    pub fn parse(json: &str) -> Result<Self> {
        if json.len() > MAX_UNSIGNED_EVENT_BYTES {
            return Err(invalid(format!(
                "{} bytes, at most {MAX_UNSIGNED_EVENT_BYTES}",
                json.len()
            )));
        }
        let event: Self =
            serde_json::from_str(json).map_err(|e| invalid(format!("not an event: {e}")))?;
        if event.tags.len() > MAX_EVENT_TAGS {
            return Err(invalid(format!("more than {MAX_EVENT_TAGS} tags")));
        }
        if event.tags.iter().any(|t| t.len() > MAX_EVENT_TAG_ITEMS) {
            return Err(invalid(format!(
                "a tag has more than {MAX_EVENT_TAG_ITEMS} elements"
            )));
        }
        Ok(event)
    }

    /// Checks an included `pubkey` against the signer's x-only key `pubkey`.
    pub fn check_pubkey(&self, pubkey: &[u8; 32]) -> Result<()> {
        match &self.pubkey {
            Some(given) if !given.eq_ignore_ascii_case(&hex::encode(pubkey)) => {
                Err(invalid("pubkey mismatch".to_string()))
            }
            _ => Ok(()),
        }
    }

    /// The NIP-01 id of this event signed by `pubkey`.
    pub fn id(&self, pubkey: &[u8; 32]) -> [u8; 32] {
        event_id(
            &hex::encode(pubkey),
            self.created_at,
            u64::from(self.kind),
            &self.tags,
            &self.content,
        )
    }
}

fn invalid(reason: String) -> Error {
    Error::InvalidParameter {
        what: "event",
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_nip01() {
        let mut s = String::new();
        push_json_string(&mut s, "a\"b\\c\nd\te\u{1}é");
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\te\\u0001é\"");
        // The same as serde_json (and JSON.stringify) for every character class.
        let all = "a\n\"\\\r\t\u{8}\u{c}\u{1}é/<";
        let mut ours = String::new();
        push_json_string(&mut ours, all);
        assert_eq!(serde_json::to_string(all).unwrap(), ours);
    }

    #[test]
    fn parse_limits_and_pubkey() {
        let e = UnsignedEvent::parse(
            r#"{"kind":1,"content":"x","tags":[],"created_at":1,"pubkey":"11","id":"zz","sig":"yy"}"#,
        )
        .unwrap();
        assert!(e.check_pubkey(&[0x11; 32]).is_err());
        assert!(
            UnsignedEvent::parse(r#"{"kind":70000,"content":"","tags":[],"created_at":1}"#)
                .is_err()
        );
        assert!(
            UnsignedEvent::parse(r#"{"kind":1,"content":"","tags":[[1]],"created_at":1}"#).is_err()
        );
        let big = format!(
            r#"{{"kind":1,"content":"","tags":[{}],"created_at":1}}"#,
            vec!["[]"; MAX_EVENT_TAGS + 1].join(",")
        );
        assert!(UnsignedEvent::parse(&big).is_err());
        let ok =
            UnsignedEvent::parse(r#"{"kind":1,"content":"","tags":[],"created_at":1}"#).unwrap();
        assert!(ok.check_pubkey(&[0x11; 32]).is_ok());
    }
}
