//! HPKE sealed bodies (B.11), OHTTP-style, for the default suite only:
//! DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305 (`kem_id` 0x0020, `kdf_id` 1,
//! `aead_id` 3). Other suites (AES-128-GCM) are refused as unknown (400).
//!
//! ```text
//! hdr   = key_id (1) ‖ kem_id (2) ‖ kdf_id (2) ‖ aead_id (2)                 (big-endian)
//! info  = "keyline-http-v1 request" ‖ 0x00 ‖ hdr ‖ 0x00 ‖ keyid ‖ 0x00 ‖ nonce
//! pt    = u16-BE(len(inner content type)) ‖ inner content type ‖ inner body
//! body  = hdr ‖ enc ‖ SetupBaseS(pkR, info).Seal(aad = "", pt)
//! ```
//!
//! The response to a sealed request is RFC 9458 §4.4 with the label
//! `"keyline-http-v1 response"`: `secret = Export(label, 32)`, `salt = enc ‖ response_nonce`,
//! `prk = Extract(salt, secret)`, key and nonce expanded with `"key"` / `"nonce"`, and
//! `body = response_nonce ‖ Seal(key, nonce, "", pt)`.
//!
//! Randomness is an argument: the ephemeral key comes from a 32-byte `ikm_e` (DeriveKeyPair
//! input) and the response nonce is passed in. The server layer ([`crate::server`]) opens
//! sealed request bodies after [`crate::verify_request`] and seals the responses; the client
//! ([`crate::client`]) fetches the [`KeyConfig`] from [`WELL_KNOWN_PATH`] and seals. A
//! body-less request asking for a sealed response carries the encapsulation of an empty
//! plaintext (`0x0000`) in the `Keyline-Seal` header ([`seal_header_value`]).

use chacha20poly1305::aead::{Aead as _, KeyInit};
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use crate::error::{Error, InvalidInput, Malformed, Result};

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::ChaCha20Poly1305;

/// `kem_id` of DHKEM(X25519, HKDF-SHA256).
pub const KEM_ID: u16 = 0x0020;
/// `kdf_id` of HKDF-SHA256.
pub const KDF_ID: u16 = 0x0001;
/// `aead_id` of ChaCha20-Poly1305.
pub const AEAD_ID: u16 = 0x0003;
/// Length of the sealed-body header.
pub const HEADER_LEN: usize = 7;
/// Length of the encapsulated key (X25519 public key).
pub const ENC_LEN: usize = 32;
/// AEAD tag length.
pub const TAG_LEN: usize = 16;
/// `max(Nn, Nk)` for ChaCha20-Poly1305: the response nonce and exported secret length.
pub const RESPONSE_NONCE_LEN: usize = 32;
/// Longest inner content type (visible ASCII).
pub const MAX_INNER_CONTENT_TYPE: usize = 255;

/// Content type of a sealed request or response body.
pub const SEALED_CONTENT_TYPE: &str = "application/keyline-sealed";
/// Path of the key configuration (B.11).
pub const WELL_KNOWN_PATH: &str = "/.well-known/keyline-http";
/// Largest overhead of a sealed request body over its inner body:
/// header, `enc`, tag, content-type length and the longest content type (B.11 limits).
pub const SEAL_OVERHEAD: usize = HEADER_LEN + ENC_LEN + TAG_LEN + 2 + MAX_INNER_CONTENT_TYPE;

/// The `Keyline-Seal` header value (an RFC 9651 Byte Sequence) of an encapsulation.
pub fn seal_header_value(sealed: &[u8]) -> String {
    use sfv::FieldType as _;
    sfv::Item::new(sealed.to_vec()).serialize()
}

/// Parses a `Keyline-Seal` header value (a Byte Sequence, no parameters).
pub fn parse_seal_header(value: &str) -> Result<Vec<u8>> {
    let item: sfv::Item = sfv::Parser::new(value)
        .parse()
        .map_err(|_| Malformed::StructuredField("keyline-seal"))?;
    match item {
        sfv::Item {
            bare_item: sfv::BareItem::ByteSequence(bytes),
            params,
        } if params.is_empty() => Ok(bytes),
        _ => Err(Malformed::WrongType("keyline-seal").into()),
    }
}

/// Whether a `Content-Type` value is [`SEALED_CONTENT_TYPE`] (parameters ignored, case-insensitive).
pub fn is_sealed_content_type(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(SEALED_CONTENT_TYPE))
}

/// One HPKE suite of a key configuration entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SuiteConfig {
    /// KDF id.
    pub kdf_id: u16,
    /// AEAD id.
    pub aead_id: u16,
}

/// One HPKE key of the key configuration.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HpkeKeyConfig {
    /// The one-byte key id.
    pub key_id: u8,
    /// KEM id (0x0020).
    pub kem_id: u16,
    /// The X25519 public key, base64url without padding.
    pub public_key: String,
    /// Supported suites, preferred first.
    pub suites: Vec<SuiteConfig>,
}

/// Freshness settings announced in the key configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SkewConfig {
    /// Max age of `created`, seconds.
    pub max_age: u64,
    /// Max future skew, seconds.
    pub max_future: u64,
}

/// The JSON document served at [`WELL_KNOWN_PATH`] (B.11).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyConfig {
    /// `"keyline-http-v1"`.
    pub profile: String,
    /// The server's signing keys (`keyid` strings).
    pub signing_keys: Vec<String>,
    /// The HPKE keys.
    pub hpke_keys: Vec<HpkeKeyConfig>,
    /// The plain body limit.
    pub max_body_bytes: usize,
    /// Freshness settings.
    pub skew: SkewConfig,
}

impl KeyConfig {
    /// The configuration announcing `keys` (default suite only).
    pub fn new(
        signing_keys: Vec<String>,
        keys: &[HpkeKeyPair],
        max_body_bytes: usize,
        skew: SkewConfig,
    ) -> Self {
        use base64::Engine as _;
        Self {
            profile: crate::profile::TAG.to_string(),
            signing_keys,
            hpke_keys: keys
                .iter()
                .map(|k| HpkeKeyConfig {
                    key_id: k.key_id(),
                    kem_id: KEM_ID,
                    public_key: base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(k.public_key()),
                    suites: vec![SuiteConfig {
                        kdf_id: KDF_ID,
                        aead_id: AEAD_ID,
                    }],
                })
                .collect(),
            max_body_bytes,
            skew,
        }
    }

    /// Parses the JSON document; the profile must be `keyline-http-v1`.
    pub fn from_json(json: &[u8]) -> Result<Self> {
        let config: Self = serde_json::from_slice(json)
            .map_err(|_| Malformed::Sealed("invalid key configuration"))?;
        if config.profile != crate::profile::TAG {
            return Err(Malformed::Sealed("key configuration of another profile").into());
        }
        Ok(config)
    }

    /// The JSON document.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The first key offering the default suite (what a client seals to): `(key_id, public key)`.
    pub fn select(&self) -> Option<(u8, [u8; 32])> {
        use base64::Engine as _;
        self.hpke_keys
            .iter()
            .filter(|k| k.kem_id == KEM_ID)
            .filter(|k| {
                k.suites
                    .iter()
                    .any(|s| (s.kdf_id, s.aead_id) == (KDF_ID, AEAD_ID))
            })
            .find_map(|k| {
                let pk = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(&k.public_key)
                    .ok()?;
                Some((k.key_id, pk.try_into().ok()?))
            })
    }
}

const REQUEST_LABEL: &[u8] = b"keyline-http-v1 request";
const RESPONSE_LABEL: &[u8] = b"keyline-http-v1 response";

/// The 7-byte header of a sealed body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealHeader {
    /// The server's HPKE key id.
    pub key_id: u8,
    /// KEM id.
    pub kem_id: u16,
    /// KDF id.
    pub kdf_id: u16,
    /// AEAD id.
    pub aead_id: u16,
}

impl SealHeader {
    /// The default suite under `key_id`.
    pub fn new(key_id: u8) -> Self {
        Self {
            key_id,
            kem_id: KEM_ID,
            kdf_id: KDF_ID,
            aead_id: AEAD_ID,
        }
    }

    /// The 7 header bytes.
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = self.key_id;
        out[1..3].copy_from_slice(&self.kem_id.to_be_bytes());
        out[3..5].copy_from_slice(&self.kdf_id.to_be_bytes());
        out[5..7].copy_from_slice(&self.aead_id.to_be_bytes());
        out
    }

    /// Parses the first 7 bytes; any suite but the default is refused.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let b: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(Malformed::Sealed("shorter than its header"))?;
        let header = Self {
            key_id: b[0],
            kem_id: u16::from_be_bytes([b[1], b[2]]),
            kdf_id: u16::from_be_bytes([b[3], b[4]]),
            aead_id: u16::from_be_bytes([b[5], b[6]]),
        };
        if (header.kem_id, header.kdf_id, header.aead_id) != (KEM_ID, KDF_ID, AEAD_ID) {
            return Err(Malformed::Sealed("unknown suite").into());
        }
        Ok(header)
    }
}

/// The HPKE `info` of a sealed request: binds the plaintext to the signer's `keyid` and
/// `nonce`.
pub fn request_info(header: &SealHeader, keyid: &str, nonce: &str) -> Vec<u8> {
    labelled_info(REQUEST_LABEL, header, Some((keyid, nonce)))
}

/// `label ‖ 0x00 ‖ hdr`, followed by `0x00 ‖ keyid ‖ 0x00 ‖ nonce` when `binding` is given.
/// With the label `"message/bhttp request"` and no binding this is RFC 9458's `info`.
pub fn labelled_info(label: &[u8], header: &SealHeader, binding: Option<(&str, &str)>) -> Vec<u8> {
    let extra = binding.map_or(0, |(k, n)| 2 + k.len() + n.len());
    let mut info = Vec::with_capacity(label.len() + 1 + HEADER_LEN + extra);
    info.extend_from_slice(label);
    info.push(0);
    info.extend_from_slice(&header.to_bytes());
    if let Some((keyid, nonce)) = binding {
        info.push(0);
        info.extend_from_slice(keyid.as_bytes());
        info.push(0);
        info.extend_from_slice(nonce.as_bytes());
    }
    info
}

/// `u16-BE(len(content type)) ‖ content type ‖ body`; the content type is at most 255 bytes
/// of visible ASCII (it may be empty).
pub fn frame(content_type: &str, body: &[u8]) -> Result<Vec<u8>> {
    if content_type.len() > MAX_INNER_CONTENT_TYPE
        || !content_type
            .bytes()
            .all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(InvalidInput::Message(
            "inner content type: at most 255 visible ASCII bytes".into(),
        )
        .into());
    }
    let mut pt = Vec::with_capacity(2 + content_type.len() + body.len());
    pt.extend_from_slice(&(content_type.len() as u16).to_be_bytes());
    pt.extend_from_slice(content_type.as_bytes());
    pt.extend_from_slice(body);
    Ok(pt)
}

/// Splits a framed plaintext into content type and body.
pub fn unframe(pt: &[u8]) -> Result<(String, Vec<u8>)> {
    let bad = || Error::from(Malformed::Sealed("bad inner framing"));
    let len = pt
        .get(..2)
        .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        .ok_or_else(bad)?;
    if len > MAX_INNER_CONTENT_TYPE {
        return Err(bad());
    }
    let ct = pt.get(2..2 + len).ok_or_else(bad)?;
    if !ct.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return Err(bad());
    }
    let content_type = String::from_utf8(ct.to_vec()).map_err(|_| bad())?;
    Ok((content_type, pt[2 + len..].to_vec()))
}

/// A server HPKE key pair with its one-byte `key_id`. `Debug` shows the id and public key only.
#[derive(Clone)]
pub struct HpkeKeyPair {
    key_id: u8,
    secret: <Kem as hpke::Kem>::PrivateKey,
    public: [u8; 32],
}

impl HpkeKeyPair {
    /// DeriveKeyPair(ikm) (RFC 9180 §7.1.3) under `key_id`.
    pub fn derive(key_id: u8, ikm: &[u8]) -> Self {
        let (secret, public) = Kem::derive_keypair(ikm);
        Self {
            key_id,
            secret,
            public: public.to_bytes().into(),
        }
    }

    /// A fresh random key pair.
    pub fn generate(key_id: u8) -> Result<Self> {
        let mut ikm = Zeroizing::new([0u8; 32]);
        getrandom::fill(ikm.as_mut()).map_err(Error::Rng)?;
        Ok(Self::derive(key_id, ikm.as_ref()))
    }

    /// The key id.
    pub fn key_id(&self) -> u8 {
        self.key_id
    }

    /// The X25519 public key (what `/.well-known/keyline-http` announces).
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }
}

impl std::fmt::Debug for HpkeKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HpkeKeyPair({}, {})",
            self.key_id,
            hex::encode(self.public)
        )
    }
}

/// The client's side of a sealed exchange, kept to open the response.
pub struct SenderContext {
    enc: [u8; ENC_LEN],
    ctx: hpke::aead::AeadCtxS<Aead, Kdf, Kem>,
}

/// The server's side of a sealed exchange, kept to seal the response.
pub struct ReceiverContext {
    enc: [u8; ENC_LEN],
    ctx: hpke::aead::AeadCtxR<Aead, Kdf, Kem>,
}

impl std::fmt::Debug for SenderContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SenderContext(..)")
    }
}

impl std::fmt::Debug for ReceiverContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReceiverContext(..)")
    }
}

/// An RNG that yields exactly the given bytes (the ephemeral key's DeriveKeyPair input).
struct FixedRng<'a>(&'a [u8]);

impl hpke::rand_core::TryRng for FixedRng<'_> {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> std::result::Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> std::result::Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> std::result::Result<(), Self::Error> {
        let n = dst.len().min(self.0.len());
        dst[..n].copy_from_slice(&self.0[..n]);
        dst[n..].fill(0);
        self.0 = &self.0[n..];
        Ok(())
    }
}

impl hpke::rand_core::TryCryptoRng for FixedRng<'_> {}

/// Seals a request body to the server key `server_public` under `key_id`, bound to this
/// request's `keyid` and `nonce`. `ikm_e` (32 fresh random bytes) derives the ephemeral key.
/// Returns the body (`hdr ‖ enc ‖ ct`) and the context for the response.
pub fn seal_request(
    server_public: &[u8; 32],
    key_id: u8,
    keyid: &str,
    nonce: &str,
    content_type: &str,
    body: &[u8],
    ikm_e: &[u8; 32],
) -> Result<(Vec<u8>, SenderContext)> {
    let header = SealHeader::new(key_id);
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(server_public)
        .map_err(|_| InvalidInput::Message("invalid HPKE public key".into()))?;
    let info = request_info(&header, keyid, nonce);
    let (enc, mut ctx) = hpke::setup_sender_with_rng::<Aead, Kdf, Kem>(
        &OpModeS::Base,
        &pk,
        &info,
        &mut FixedRng(ikm_e),
    )
    .map_err(|_| InvalidInput::Message("HPKE setup failed".into()))?;
    let pt = frame(content_type, body)?;
    let ct = ctx
        .seal(&pt, b"")
        .map_err(|_| InvalidInput::Message("HPKE seal failed".into()))?;
    let enc: [u8; ENC_LEN] = enc.to_bytes().into();
    let mut out = Vec::with_capacity(HEADER_LEN + ENC_LEN + ct.len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(&enc);
    out.extend_from_slice(&ct);
    Ok((out, SenderContext { enc, ctx }))
}

/// Opens a sealed request body (B.5 step 9, after the signature, replay and policy checks).
/// `key_for` looks up the server key by `key_id` (unknown → 400). Returns the inner content
/// type, inner body, and the context for the response. Any failure is 400.
pub fn open_request(
    sealed: &[u8],
    key_for: impl Fn(u8) -> Option<HpkeKeyPair>,
    keyid: &str,
    nonce: &str,
) -> Result<(String, Vec<u8>, ReceiverContext)> {
    let header = SealHeader::parse(sealed)?;
    let key = key_for(header.key_id).ok_or(Malformed::Sealed("unknown key_id"))?;
    let enc_bytes = sealed
        .get(HEADER_LEN..HEADER_LEN + ENC_LEN)
        .ok_or(Malformed::Sealed("truncated"))?;
    let ct = &sealed[HEADER_LEN + ENC_LEN..];
    if ct.len() < TAG_LEN {
        return Err(Malformed::Sealed("truncated").into());
    }
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc_bytes)
        .map_err(|_| Malformed::Sealed("bad encapsulated key"))?;
    let info = request_info(&header, keyid, nonce);
    let mut ctx = hpke::setup_receiver::<Aead, Kdf, Kem>(&OpModeR::Base, &key.secret, &enc, &info)
        .map_err(|_| Malformed::Sealed("decapsulation failed"))?;
    let pt = Zeroizing::new(
        ctx.open(ct, b"")
            .map_err(|_| Malformed::Sealed("open failed"))?,
    );
    let (content_type, body) = unframe(&pt)?;
    let mut enc_arr = [0u8; ENC_LEN];
    enc_arr.copy_from_slice(enc_bytes);
    Ok((content_type, body, ReceiverContext { enc: enc_arr, ctx }))
}

/// Key and nonce of the response AEAD (RFC 9458 §4.4 with keyline's label).
fn response_keys(
    secret: &[u8; RESPONSE_NONCE_LEN],
    enc: &[u8; ENC_LEN],
    response_nonce: &[u8; RESPONSE_NONCE_LEN],
) -> (Zeroizing<[u8; 32]>, [u8; 12]) {
    let mut key = Zeroizing::new([0u8; 32]);
    let mut nonce = [0u8; 12];
    // 32 and 12 bytes are far below HKDF-SHA256's 8160-byte limit.
    response_key_schedule(secret, enc, response_nonce, key.as_mut(), &mut nonce)
        .unwrap_or_else(|_| unreachable!("HKDF output length"));
    (key, nonce)
}

/// The RFC 9458 §4.4 key schedule for any suite: `salt = enc ‖ response_nonce`,
/// `prk = Extract(salt, secret)`, `key = Expand(prk, "key", key.len())`,
/// `nonce = Expand(prk, "nonce", nonce.len())` (HKDF-SHA256).
pub fn response_key_schedule(
    secret: &[u8],
    enc: &[u8],
    response_nonce: &[u8],
    key: &mut [u8],
    nonce: &mut [u8],
) -> Result<()> {
    let mut salt = Vec::with_capacity(enc.len() + response_nonce.len());
    salt.extend_from_slice(enc);
    salt.extend_from_slice(response_nonce);
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(&salt), secret);
    let too_long = |_| Error::from(InvalidInput::Message("HKDF output too long".into()));
    hk.expand(b"key", key).map_err(too_long)?;
    hk.expand(b"nonce", nonce).map_err(too_long)?;
    Ok(())
}

fn chacha(key: &[u8; 32]) -> chacha20poly1305::ChaCha20Poly1305 {
    chacha20poly1305::ChaCha20Poly1305::new(key.into())
}

/// Seals the response to a sealed request: `response_nonce ‖ Seal(key, nonce, "", pt)`.
/// `response_nonce` is 32 fresh random bytes.
pub fn seal_response(
    context: &ReceiverContext,
    response_nonce: &[u8; RESPONSE_NONCE_LEN],
    content_type: &str,
    body: &[u8],
) -> Result<Vec<u8>> {
    let mut secret = Zeroizing::new([0u8; RESPONSE_NONCE_LEN]);
    context
        .ctx
        .export(RESPONSE_LABEL, secret.as_mut())
        .map_err(|_| InvalidInput::Message("HPKE export failed".into()))?;
    let (key, nonce) = response_keys(&secret, &context.enc, response_nonce);
    let pt = Zeroizing::new(frame(content_type, body)?);
    let ct = chacha(&key)
        .encrypt((&nonce).into(), pt.as_slice())
        .map_err(|_| InvalidInput::Message("AEAD seal failed".into()))?;
    let mut out = Vec::with_capacity(RESPONSE_NONCE_LEN + ct.len());
    out.extend_from_slice(response_nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens the sealed response on the client.
pub fn open_response(context: &SenderContext, sealed: &[u8]) -> Result<(String, Vec<u8>)> {
    let response_nonce: &[u8; RESPONSE_NONCE_LEN] = sealed
        .get(..RESPONSE_NONCE_LEN)
        .and_then(|n| n.try_into().ok())
        .ok_or(Malformed::Sealed("truncated"))?;
    let mut secret = Zeroizing::new([0u8; RESPONSE_NONCE_LEN]);
    context
        .ctx
        .export(RESPONSE_LABEL, secret.as_mut())
        .map_err(|_| Malformed::Sealed("HPKE export failed"))?;
    let (key, nonce) = response_keys(&secret, &context.enc, response_nonce);
    let pt = Zeroizing::new(
        chacha(&key)
            .decrypt((&nonce).into(), &sealed[RESPONSE_NONCE_LEN..])
            .map_err(|_| Malformed::Sealed("open failed"))?,
    );
    unframe(&pt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let server = HpkeKeyPair::derive(1, b"server ikm");
        let keys = |id: u8| (id == 1).then(|| server.clone());
        let (body, sender) = seal_request(
            &server.public_key(),
            1,
            "ed25519:k",
            "nonce-a",
            "application/json",
            b"{}",
            &[7; 32],
        )
        .unwrap();
        assert_eq!(body.len(), HEADER_LEN + ENC_LEN + 2 + 16 + 2 + TAG_LEN);
        let (ct, inner, receiver) = open_request(&body, keys, "ed25519:k", "nonce-a").unwrap();
        assert_eq!(
            (ct.as_str(), inner.as_slice()),
            ("application/json", &b"{}"[..])
        );
        // Re-signed by another key or with another nonce: info differs, open fails.
        for (keyid, nonce) in [("ed25519:other", "nonce-a"), ("ed25519:k", "nonce-b")] {
            assert_eq!(
                open_request(&body, keys, keyid, nonce).unwrap_err().code(),
                "malformed.sealed"
            );
        }
        // Any bit flipped fails; unknown key id and suite fail.
        for i in [0, 3, 8, body.len() - 1] {
            let mut t = body.clone();
            t[i] ^= 1;
            assert!(
                open_request(&t, keys, "ed25519:k", "nonce-a").is_err(),
                "{i}"
            );
        }
        let resp = seal_response(&receiver, &[9; 32], "text/plain", b"hi").unwrap();
        assert_eq!(
            open_response(&sender, &resp).unwrap(),
            ("text/plain".to_string(), b"hi".to_vec())
        );
        let mut t = resp.clone();
        t[40] ^= 1;
        assert!(open_response(&sender, &t).is_err());
        assert!(format!("{server:?}").starts_with("HpkeKeyPair(1, "));
        assert_eq!(
            format!("{sender:?} {receiver:?}"),
            "SenderContext(..) ReceiverContext(..)"
        );
    }

    #[test]
    fn framing_limits() {
        assert_eq!(
            unframe(&frame("", b"").unwrap()).unwrap(),
            (String::new(), vec![])
        );
        let ct = "a".repeat(MAX_INNER_CONTENT_TYPE);
        assert_eq!(unframe(&frame(&ct, b"x").unwrap()).unwrap().0, ct);
        assert!(frame(&"a".repeat(MAX_INNER_CONTENT_TYPE + 1), b"").is_err());
        assert!(frame("a\nb", b"").is_err());
        assert!(unframe(&[0]).is_err());
        assert!(unframe(&[0, 5, b'a']).is_err());
        assert!(unframe(&[1, 0]).is_err());
        assert!(
            SealHeader::parse(&[1, 0, 0x20, 0, 1, 0, 1]).is_err(),
            "AES-128-GCM"
        );
        assert_eq!(
            SealHeader::parse(&SealHeader::new(4).to_bytes()).unwrap(),
            SealHeader::new(4)
        );
    }
}
