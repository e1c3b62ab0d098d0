//! keyline-http's parsers of peer-supplied header values and sealed-body framing.

use keyline_http::base::{parse_signature, parse_signature_input};
use keyline_http::digest::ContentDigest;
use keyline_http::{compat, nip98, seal};

/// Input: one selector byte, then the value (UTF-8, invalid bytes replaced, for header
/// fields; raw for the sealed framing). 0 `Signature-Input` and `Accept-Signature` (same
/// syntax; the client takes the server nonce from the latter), 1 `Signature`, 2
/// `Content-Digest`, 3 NIP-98 `Authorization`, 4 the sealed-body decoders (the 7-byte HPKE
/// header with its suites, a whole sealed body opened against a fixed server key, the
/// `Keyline-Seal` header value, the key configuration JSON a client fetches), 5 the
/// sealed-body plaintext framing, 6 the crypto-sessions v1.1.10 decoders (compat mode: lenient
/// base64url, the legacy token and its signature, raw signature bytes, the POST body
/// `{"data": …}`).
/// Invariants: no panic; a parsed `Content-Digest` verifies only bodies whose digest it lists
/// (checked on the empty body against the real digest); legacy base64url re-encodes
/// canonically to the same bytes; a parsed legacy token has a compressed key; a decoded
/// legacy `data` is at least 32 bytes of whole AES blocks; a parsed seal header names a
/// supported suite; an `Accept-Signature` nonce is a valid nonce; a key configuration's
/// selection names one of its keys.
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
            if let Some(nonce) = keyline_http::profile::sig1_nonce(&text) {
                assert!(
                    keyline_http::nonce::decode_nonce(&nonce).is_ok(),
                    "{text:?}"
                );
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
        4 => sealed(rest, &text),
        5 => {
            let _ = seal::unframe(rest);
        }
        _ => legacy(rest, &text),
    }
}

/// A fixed server HPKE key (key id 1), derived once.
fn server_key() -> &'static seal::HpkeKeyPair {
    static KEY: std::sync::OnceLock<seal::HpkeKeyPair> = std::sync::OnceLock::new();
    KEY.get_or_init(|| seal::HpkeKeyPair::derive(1, b"keyline fuzz server key"))
}

/// Selector 4: the sealed-body decoders.
fn sealed(raw: &[u8], text: &str) {
    if let Ok(header) = seal::SealHeader::parse(raw) {
        assert!(header.suite().is_some(), "{header:?}");
        assert_eq!(header.to_bytes()[..], raw[..seal::HEADER_LEN]);
    }
    let key = server_key();
    let _ = seal::open_request(raw, |id| (id == 1).then(|| key.clone()), "ed25519:x", "n");
    if let Ok(bytes) = seal::parse_seal_header(text) {
        assert_eq!(
            seal::parse_seal_header(&seal::seal_header_value(&bytes)).ok(),
            Some(bytes)
        );
    }
    if let Ok(config) = seal::KeyConfig::from_json(raw)
        && let Some(target) = config.select()
    {
        assert!(config.hpke_keys.iter().any(|k| k.key_id == target.key_id));
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
