//! keyline-http's parsers of peer-supplied header values and sealed-body framing.

use keyline_http::base::{parse_signature, parse_signature_input};
use keyline_http::digest::ContentDigest;
use keyline_http::{compat, nip98, seal};

/// Input: one selector byte, then the value (UTF-8, invalid bytes replaced, for header
/// fields; raw for the sealed framing). 0 `Signature-Input`, 1 `Signature`, 2
/// `Content-Digest`, 3 NIP-98 `Authorization`, 4 the HPKE seal header, 5 the sealed-body
/// plaintext framing, 6 the crypto-sessions v1.1.10 decoders (compat mode: lenient base64url,
/// the legacy token and its signature, raw signature bytes, the POST body `{"data": …}`).
/// Invariants: no panic; a parsed `Content-Digest` verifies only bodies whose digest it lists
/// (checked on the empty body against the real digest); legacy base64url re-encodes
/// canonically to the same bytes; a parsed legacy token has a compressed key; a decoded
/// legacy `data` is at least 32 bytes of whole AES blocks.
pub fn http_parsers(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match selector % 7 {
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
        5 => {
            let _ = seal::unframe(rest);
        }
        _ => legacy(rest, &text),
    }
}

/// Selector 6: the compat-mode (crypto-sessions v1.1.10) decoders.
fn legacy(raw: &[u8], text: &str) {
    if let Some(bytes) = compat::decode_base64url(text) {
        let canonical = compat::encode_base64url(&bytes);
        assert!(canonical.len() <= text.len(), "{text:?}");
        assert_eq!(
            compat::decode_base64url(&canonical).as_deref(),
            Some(&bytes[..])
        );
    }
    if let Ok(token) = compat::LegacyToken::parse(text) {
        assert!(matches!(token.key()[0], 0x02 | 0x03), "{text:?}");
        let _ = token.signature();
    }
    let _ = compat::parse_signature(raw);
    if let Ok(data) = compat::decode_post_body(raw) {
        assert!(data.len() >= 32 && data.len() % 16 == 0, "{}", data.len());
    }
}

#[cfg(test)]
mod tests {
    use super::http_parsers;

    /// The compat-mode seeds (`seeds/http_parsers/legacy-*`, from the crypto-sessions
    /// vectors) and every truncation and single-bit flip of them run without a panic.
    #[test]
    fn legacy_seeds_and_their_mutations() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/http_parsers");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("seed folder") {
            let path = entry.expect("entry").path();
            let is_legacy = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("legacy-"));
            if !is_legacy {
                continue;
            }
            seen += 1;
            let seed = std::fs::read(&path).expect("seed");
            assert_eq!(seed[0] % 7, 6, "{}", path.display());
            http_parsers(&seed);
            for len in 1..seed.len() {
                http_parsers(&seed[..len]);
            }
            for i in 1..seed.len() {
                for bit in 0..8 {
                    let mut mutated = seed.clone();
                    mutated[i] ^= 1 << bit;
                    http_parsers(&mutated);
                }
            }
        }
        assert_eq!(seen, 3, "legacy seeds");
    }
}
