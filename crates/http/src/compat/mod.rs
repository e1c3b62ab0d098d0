//! crypto-sessions v1.1.10 verify-only compatibility mode (feature `compat-crypto-sessions`,
//! `shared/specs/http.md` A.10). Sans-IO: no sockets, no clock, no RNG; `now` and the
//! response IV are arguments.
//!
//! Legacy clients of crypto-sessions v1.1.10 send `authorization: <token>` with
//! `token = base64url-nopad(pubkey33 ‖ DER-ECDSA(SHA-256(payload)))` on secp256k1. A GET signs
//! `host ‖ request-target`; a POST sends `{"data": base64url-nopad(IV ‖ AES-256-CBC(payload))}`
//! with the raw ECDH x-coordinate as the key, and signs the plaintext. This module lets such
//! clients keep working against a keyline server during a migration. It never sends legacy
//! requests; it verifies them and answers in the legacy format.
//!
//! - **Off unless configured**: compiled in only with the feature, and then active only with a
//!   [`CompatConfig`] and only on the routes of its allow-list. Recommend idempotent, read-only
//!   routes.
//! - **Detection** ([`detect`]): no `Signature-Input`/`Signature`, an `Authorization` value
//!   without spaces matching `^[A-Za-z0-9_-]+$`, and an allow-listed path. Otherwise the request
//!   is not legacy and is handled as any other request.
//! - **Verification** ([`verify_request`], in the order of A.10): token decode (lenient
//!   base64url, `33 + 8 ..= 33 + 72` bytes), SEC1 compressed key, strict DER or 64-byte `r ‖ s`
//!   with low S, then for exactly `GET` (no body) `payload = host ‖ raw request-target`, for
//!   exactly `POST` `{"data": s}` decrypted with AES-256-CBC under the ECDH x-coordinate and
//!   PKCS#7-unpadded; on a padding failure one ECDSA verification over a fixed dummy digest
//!   still runs, so both failure paths do the same work; finally ECDSA over
//!   SHA-256(payload). Any other method fails. Every failure is the uniform 401
//!   ([`LegacyFailure`] says why, for DEBUG logs only).
//! - **Failure rate limit** ([`FailureLimiter`]): 5 failures in 60 s per legacy key → 429 for
//!   600 s, bounded memory. It bounds the padding oracle; it cannot remove it.
//! - **Responses** ([`LegacyVerified::respond`]): `authorization: base64url-nopad(server
//!   pubkey33 ‖ DER-ECDSA(SHA-256(plaintext)))` (RFC 6979, low S) and body
//!   `base64url-nopad(IV ‖ AES-256-CBC(plaintext))`, the IV passed in (fresh random in the
//!   server layer; the recorded ones in the vector tests).
//!
//! ## What compat mode cannot do
//!
//! By construction of the v1.1.10 format, compat mode **cannot detect replays** (identical
//! legitimate requests carry identical tokens, and nothing carries a time or nonce), **cannot
//! bind POST bodies to routes** (the signature covers only the body: a captured POST is valid
//! on every allow-listed POST route and with any query string; a body-less POST's token is also
//! a GET token for its URL), **cannot remove the plaintext-guess leak** (the signature over
//! SHA-256 of the plaintext travels with the key in clear, so anyone can confirm a guessed
//! body), and **cannot give forward secrecy** (static-static ECDH with the raw x-coordinate:
//! whoever obtains the legacy server secret decrypts all recorded traffic). The ciphertext is
//! unauthenticated AES-CBC: the rate limit and the equal-work rule reduce the padding oracle,
//! they do not remove it. Responses are not bound to requests and their status is not signed.
//! Any key is an identity. Use keyline-http-v1 for anything that matters, and retire compat
//! mode as soon as the clients are migrated.

mod limiter;
mod token;

use std::fmt;

use aes::Aes256;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use k256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use k256::ecdsa::{Signature, SigningKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use limiter::{FailureLimiter, FailureLimits};
pub use token::{LegacyToken, decode_base64url, encode_base64url, is_base64url, parse_signature};

use crate::error::{Error, InvalidInput, LegacyFailure, Result};
use crate::limits::LEGACY_MIN_DATA_BYTES;
use crate::message::Headers;
use crate::request::{PeerKey, Scheme, VerifiedPeer};

/// The text of the per-request warning (A.10).
pub const WARNING: &str = "crypto-sessions v1.1.10: no replay protection";

/// Content type given to the handler for a POST plaintext that parses as JSON.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// Content type given to the handler for any other POST plaintext.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// The digest of the dummy verification run after a padding failure: SHA-256 of this label.
const DUMMY_LABEL: &[u8] = b"keyline/crypto-sessions/padding-failure";

/// The legacy server secret (`CRYPTO_SESSION_KEY`): a secp256k1 scalar. Zeroized on drop,
/// never printed.
#[derive(Clone)]
pub struct LegacySecret(SigningKey);

impl LegacySecret {
    /// From the 32-byte secret.
    pub fn from_bytes(secret: &[u8; 32]) -> Result<Self> {
        SigningKey::from_slice(secret)
            .map(Self)
            .map_err(|_| InvalidInput::SecretKey("not a secp256k1 scalar in [1, n)").into())
    }

    /// From 64 hex digits (as v1.1.10 configures it).
    pub fn from_hex(secret: &str) -> Result<Self> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(secret.trim(), &mut bytes[..])
            .map_err(|_| InvalidInput::SecretKey("expected 64 hex digits"))?;
        Self::from_bytes(&bytes)
    }

    /// The 33-byte compressed public key legacy clients are configured with.
    pub fn public_key(&self) -> [u8; 33] {
        let point = self.0.verifying_key().to_sec1_point(true);
        let mut out = [0u8; 33];
        out.copy_from_slice(point.as_bytes());
        out
    }

    /// The AES-256 key shared with `peer`: the raw x-coordinate of ECDH(secret, peer), used
    /// for both directions (no KDF, as v1.1.10).
    pub fn shared_key(&self, peer: &LegacyToken) -> Zeroizing<[u8; 32]> {
        let shared = k256::ecdh::diffie_hellman(
            self.0.as_nonzero_scalar(),
            peer.verifying_key().as_affine(),
        );
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(shared.raw_secret_bytes());
        key
    }
}

impl fmt::Debug for LegacySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LegacySecret(secp256k1:{})",
            hex::encode(self.public_key())
        )
    }
}

/// Configuration of compat mode (A.10).
#[derive(Clone)]
pub struct CompatConfig {
    /// The exact `CRYPTO_SESSION_HOST` string legacy clients use (for example
    /// `http://localhost:3001`); GET signatures cover `host ‖ request-target`.
    pub host: String,
    /// The legacy server secret.
    pub secret: LegacySecret,
    /// Paths (of the original URI, without the query, compared exactly) on which legacy
    /// requests are accepted.
    pub routes: Vec<String>,
    /// The failure rate limit.
    pub limits: FailureLimits,
}

impl fmt::Debug for CompatConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompatConfig")
            .field("host", &self.host)
            .field("server_key", &hex::encode(self.secret.public_key()))
            .field("routes", &self.routes)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl CompatConfig {
    /// `host` and `secret`, no routes yet, default limits.
    pub fn new(host: impl Into<String>, secret: LegacySecret) -> Self {
        Self {
            host: host.into(),
            secret,
            routes: Vec::new(),
            limits: FailureLimits::default(),
        }
    }

    /// Adds `path` to the allow-list.
    pub fn allow_route(mut self, path: impl Into<String>) -> Self {
        self.routes.push(path.into());
        self
    }

    /// Whether `path` is on the allow-list.
    pub fn allows(&self, path: &str) -> bool {
        self.routes.iter().any(|r| r == path)
    }
}

/// What [`detect`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detection {
    /// Not a legacy request: handle it as any other request.
    NotLegacy,
    /// A legacy token on an allow-listed route; the token string.
    Legacy(String),
    /// A legacy token on an allow-listed route together with `Signature-Input`/`Signature`:
    /// more than one scheme ([`Malformed::SchemeConflict`](crate::Malformed::SchemeConflict),
    /// 400, B.5 step 1).
    Conflict,
}

/// Legacy detection (A.10): an `Authorization` value without spaces matching
/// `^[A-Za-z0-9_-]+$` (several field lines are joined with `", "` and so never match), an
/// allow-listed `path`, and no `Signature-Input` or `Signature` (with one of them: conflict).
pub fn detect(headers: &Headers, path: &str, config: &CompatConfig) -> Detection {
    if !config.allows(path) {
        return Detection::NotLegacy;
    }
    let Some(value) = headers.combined("authorization") else {
        return Detection::NotLegacy;
    };
    if !is_base64url(&value) {
        return Detection::NotLegacy;
    }
    if headers.contains("signature-input") || headers.contains("signature") {
        return Detection::Conflict;
    }
    Detection::Legacy(value)
}

/// A legacy request as the verifier needs it.
#[derive(Clone, Copy, Debug)]
pub struct LegacyRequest<'a> {
    /// The method exactly as sent.
    pub method: &'a str,
    /// The raw request-target (path and query as received, B.8).
    pub request_target: &'a str,
    /// The `Authorization` value (the token).
    pub authorization: &'a str,
    /// The exact body bytes.
    pub body: &'a [u8],
}

/// A verified legacy request.
pub struct LegacyVerified {
    /// `{ key: Secp256k1Compressed, scheme: CryptoSessionsV1_1_10 }`.
    pub peer: VerifiedPeer,
    /// The peer's 33-byte compressed key.
    pub key: [u8; 33],
    /// The body the handler sees: the POST plaintext; empty for GET.
    pub body: Vec<u8>,
    /// The content type the handler sees (POST only): [`JSON_CONTENT_TYPE`] if the plaintext
    /// parses as JSON, else [`TEXT_CONTENT_TYPE`].
    pub content_type: Option<&'static str>,
    shared_key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for LegacyVerified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyVerified")
            .field("peer", &self.peer)
            .field("body_len", &self.body.len())
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

/// A response in the legacy format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyResponse {
    /// The `authorization` header: the server's token over the plaintext.
    pub authorization: String,
    /// The body: `base64url-nopad(IV ‖ AES-256-CBC(plaintext))`.
    pub body: String,
}

impl LegacyVerified {
    /// The legacy response carrying `plaintext` (A.10): server token over SHA-256(plaintext)
    /// (RFC 6979, low S, DER) and the body encrypted under the shared key with `iv`, which
    /// must be fresh and random (it is an argument so that vectors reproduce).
    pub fn respond(
        &self,
        config: &CompatConfig,
        plaintext: &[u8],
        iv: &[u8; 16],
    ) -> Result<LegacyResponse> {
        respond_with_key(&config.secret, &self.shared_key, plaintext, iv)
    }
}

fn respond_with_key(
    secret: &LegacySecret,
    shared_key: &[u8; 32],
    plaintext: &[u8],
    iv: &[u8; 16],
) -> Result<LegacyResponse> {
    let digest = Sha256::digest(plaintext);
    let signature: Signature = secret
        .0
        .sign_prehash(&digest)
        .map_err(|_| InvalidInput::SecretKey("ECDSA signing failed"))?;
    let mut token = secret.public_key().to_vec();
    token.extend_from_slice(signature.normalize_s().to_der().as_bytes());
    let ciphertext = cbc::Encryptor::<Aes256>::new(shared_key.into(), iv.into())
        .encrypt_padded_vec::<Pkcs7>(plaintext);
    let mut data = iv.to_vec();
    data.extend_from_slice(&ciphertext);
    Ok(LegacyResponse {
        authorization: encode_base64url(&token),
        body: encode_base64url(&data),
    })
}

/// Verifies a legacy request (A.10 steps 1–7) with the failure rate limit: a blocked key gets
/// 429 before any work; every failure after the key is known counts against it.
pub fn verify_request(
    request: &LegacyRequest<'_>,
    config: &CompatConfig,
    now: u64,
    limiter: &mut FailureLimiter,
) -> Result<LegacyVerified> {
    let token = LegacyToken::parse(request.authorization)?;
    limiter.check(token.key(), now)?;
    let result = verify_token(request, &token, config);
    if result.is_err() {
        limiter.record_failure(token.key(), now)?;
    }
    result
}

/// Steps 3–5 and 7 for a parsed token (no rate limiting: see [`verify_request`]).
pub fn verify_token(
    request: &LegacyRequest<'_>,
    token: &LegacyToken,
    config: &CompatConfig,
) -> Result<LegacyVerified> {
    let signature = token.signature()?;
    let (payload, shared_key, post) = match request.method {
        "GET" => {
            if !request.body.is_empty() {
                return Err(LegacyFailure::Body.into());
            }
            let mut payload = Zeroizing::new(config.host.as_bytes().to_vec());
            payload.extend_from_slice(request.request_target.as_bytes());
            (payload, config.secret.shared_key(token), false)
        }
        "POST" => {
            let data = decode_post_body(request.body)?;
            let shared_key = config.secret.shared_key(token);
            let plaintext = match decrypt(&shared_key, &data) {
                Ok(plaintext) => plaintext,
                Err(decrypted) => {
                    // Equal work: hash what was decrypted and run one verification over a
                    // fixed dummy digest, then fail like a bad signature would. Nothing else
                    // looks at the plaintext before the signature verified.
                    std::hint::black_box(Sha256::digest(&*decrypted));
                    let dummy = Sha256::digest(DUMMY_LABEL);
                    let _ = std::hint::black_box(
                        token.verifying_key().verify_prehash(&dummy, &signature),
                    );
                    return Err(LegacyFailure::Padding.into());
                }
            };
            (plaintext, shared_key, true)
        }
        _ => return Err(LegacyFailure::Method.into()),
    };
    let digest = Sha256::digest(&*payload);
    token
        .verifying_key()
        .verify_prehash(&digest, &signature)
        .map_err(|_| Error::from(LegacyFailure::Signature))?;
    let (body, content_type) = if post {
        let json = serde_json::from_slice::<serde::de::IgnoredAny>(&payload).is_ok();
        let content_type = if json {
            JSON_CONTENT_TYPE
        } else {
            TEXT_CONTENT_TYPE
        };
        (payload.to_vec(), Some(content_type))
    } else {
        (Vec::new(), None)
    };
    Ok(LegacyVerified {
        peer: VerifiedPeer {
            key: PeerKey::Secp256k1Compressed(*token.key()),
            scheme: Scheme::CryptoSessionsV1_1_10,
        },
        key: *token.key(),
        body,
        content_type,
        shared_key,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostBody {
    data: String,
}

/// A POST body: JSON `{"data": s}`, `s` lenient base64url of at least 32 bytes, a multiple of
/// 16 (IV and whole AES blocks).
pub fn decode_post_body(body: &[u8]) -> Result<Vec<u8>> {
    let parsed: PostBody = serde_json::from_slice(body).map_err(|_| LegacyFailure::Body)?;
    let data = decode_base64url(&parsed.data).ok_or(LegacyFailure::Body)?;
    if data.len() < LEGACY_MIN_DATA_BYTES || data.len() % 16 != 0 {
        return Err(LegacyFailure::CiphertextLength.into());
    }
    Ok(data)
}

/// Decrypts `data = IV ‖ ciphertext` (length already checked). On a padding failure returns
/// the raw decrypted bytes as the error, for the equal-work rule.
fn decrypt(
    key: &[u8; 32],
    data: &[u8],
) -> std::result::Result<Zeroizing<Vec<u8>>, Zeroizing<Vec<u8>>> {
    let (iv, ciphertext) = data.split_at(16);
    let mut iv_bytes = [0u8; 16];
    iv_bytes.copy_from_slice(iv);
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    let decryptor = cbc::Decryptor::<Aes256>::new(key.into(), (&iv_bytes).into());
    match decryptor.decrypt_padded::<Pkcs7>(&mut buffer) {
        Ok(plaintext) => {
            let len = plaintext.len();
            buffer.truncate(len);
            Ok(buffer)
        }
        Err(_) => Err(buffer),
    }
}

/// Encrypts like a v1.1.10 peer: `IV ‖ AES-256-CBC(plaintext)` with PKCS#7 padding. For tests
/// and tools; the server uses [`LegacyVerified::respond`].
pub fn encrypt(key: &[u8; 32], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    let mut data = iv.to_vec();
    data.extend(
        cbc::Encryptor::<Aes256>::new(key.into(), iv.into()).encrypt_padded_vec::<Pkcs7>(plaintext),
    );
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CompatConfig {
        CompatConfig::new(
            "http://localhost:3001",
            LegacySecret::from_bytes(&[7; 32]).expect("secret"),
        )
        .allow_route("/a")
    }

    fn headers(lines: &[(&str, &str)]) -> Headers {
        lines.iter().copied().collect()
    }

    #[test]
    fn detection() {
        let c = config();
        let token = [("authorization", "AbC-_9")];
        assert_eq!(
            detect(&headers(&token), "/a", &c),
            Detection::Legacy("AbC-_9".into())
        );
        assert_eq!(detect(&headers(&token), "/b", &c), Detection::NotLegacy);
        assert_eq!(detect(&headers(&[]), "/a", &c), Detection::NotLegacy);
        for value in ["Bearer abc", "Nostr abc", "abc=", "a.b", ""] {
            let h = headers(&[("authorization", value)]);
            assert_eq!(detect(&h, "/a", &c), Detection::NotLegacy, "{value}");
        }
        // Two field lines are joined with ", ": never a token.
        let two = headers(&[("authorization", "abc"), ("authorization", "def")]);
        assert_eq!(detect(&two, "/a", &c), Detection::NotLegacy);
        for field in ["signature-input", "signature"] {
            let h = headers(&[token[0], (field, "sig1=()")]);
            assert_eq!(detect(&h, "/a", &c), Detection::Conflict, "{field}");
        }
    }

    #[test]
    fn lenient_base64url() {
        // Trailing bits are ignored, padding and other alphabets are not accepted.
        assert_eq!(decode_base64url("QQ"), Some(b"A".to_vec()));
        assert_eq!(decode_base64url("QR"), Some(b"A".to_vec()));
        assert_eq!(decode_base64url("QQ=="), None);
        assert_eq!(decode_base64url("Q+"), None);
        assert_eq!(decode_base64url("QUFBQ"), None, "1 mod 4");
        assert_eq!(decode_base64url(""), None);
        assert_eq!(encode_base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn round_trip_with_a_fresh_client() {
        // A client key, signing like a v1.1.10 client, against this server.
        let c = config();
        let client = LegacySecret::from_bytes(&[9; 32]).expect("client");
        let client_token = |payload: &[u8]| {
            let signature: Signature = client
                .0
                .sign_prehash(&Sha256::digest(payload))
                .expect("sign");
            let mut bytes = client.public_key().to_vec();
            bytes.extend_from_slice(signature.to_der().as_bytes());
            encode_base64url(&bytes)
        };
        let plaintext = br#"{"q":1}"#;
        let mut limiter = FailureLimiter::new();
        let token = client_token(plaintext);
        let parsed = LegacyToken::parse(&token).expect("token");
        let key = c.secret.shared_key(&parsed);
        let body = format!(
            r#"{{"data":"{}"}}"#,
            encode_base64url(&encrypt(&key, &[3; 16], plaintext))
        );
        let request = LegacyRequest {
            method: "POST",
            request_target: "/a",
            authorization: &token,
            body: body.as_bytes(),
        };
        let verified = verify_request(&request, &c, 0, &mut limiter).expect("verify");
        assert_eq!(verified.body, plaintext);
        assert_eq!(verified.content_type, Some(JSON_CONTENT_TYPE));
        let response = verified.respond(&c, b"ok", &[4; 16]).expect("respond");
        let data = decode_base64url(&response.body).expect("body");
        assert_eq!(&data[..16], &[4; 16]);
        assert_eq!(decrypt(&key, &data).expect("decrypts").as_slice(), b"ok");
        let server_token = LegacyToken::parse(&response.authorization).expect("token");
        assert_eq!(server_token.key(), &c.secret.public_key());
        let signature = server_token.signature().expect("strict low-S DER");
        assert!(
            server_token
                .verifying_key()
                .verify_prehash(&Sha256::digest(b"ok"), &signature)
                .is_ok()
        );
        // GET payload = host ‖ request-target.
        let token = client_token(b"http://localhost:3001/a?x=1");
        let request = LegacyRequest {
            method: "GET",
            request_target: "/a?x=1",
            authorization: &token,
            body: b"",
        };
        let verified = verify_request(&request, &c, 0, &mut limiter).expect("GET");
        assert!(verified.body.is_empty() && verified.content_type.is_none());
        assert!(limiter.is_empty());
    }
}
