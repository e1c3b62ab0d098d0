//! keyline-http's parsers of peer-supplied header values and sealed-body framing.

use keyline_http::base::{parse_signature, parse_signature_input};
use keyline_http::digest::ContentDigest;
use keyline_http::{nip98, seal};

/// Input: one selector byte, then the value (UTF-8, invalid bytes replaced, for header
/// fields; raw for the sealed framing). 0 `Signature-Input`, 1 `Signature`, 2
/// `Content-Digest`, 3 NIP-98 `Authorization`, 4 the HPKE seal header, 5 the sealed-body
/// plaintext framing. Invariants: no panic; a parsed `Content-Digest` verifies only bodies
/// whose digest it lists (checked on the empty body against the real digest).
pub fn http_parsers(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match selector % 6 {
        0 => {
            if let Ok(inputs) = parse_signature_input(&text) {
                for (label, input) in inputs {
                    let _ = input.to_field(&label);
                }
            }
        }
        1 => {
            let _ = parse_signature(&text);
        }
        2 => {
            if let Ok(digest) = ContentDigest::parse(&text) {
                let empty = keyline_http::digest::content_digest(b"");
                if digest.verify(b"").is_ok() {
                    assert!(
                        text.contains(empty.trim_start_matches("sha-256=")),
                        "{text:?}"
                    );
                }
            }
        }
        3 => {
            let _ = nip98::decode(&text);
        }
        4 => {
            let _ = seal::SealHeader::parse(rest);
        }
        _ => {
            let _ = seal::unframe(rest);
        }
    }
}
