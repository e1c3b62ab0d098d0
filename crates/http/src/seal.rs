//! HPKE sealed bodies (B.11), OHTTP-style: DHKEM(X25519, HKDF-SHA256) (`kem_id` 0x0020) and
//! HKDF-SHA256 (`kdf_id` 1) with either AEAD of [`Suite`]: ChaCha20-Poly1305 (`aead_id` 3,
//! the default and the server's first choice) or AES-128-GCM (`aead_id` 1). Any other suite
//! is refused as unknown (400).
//!
//! ```text
//! hdr   = key_id (1) ‖ kem_id (2) ‖ kdf_id (2) ‖ aead_id (2)                 (big-endian)
//! info  = "keyline-http-v1 request" ‖ 0x00 ‖ hdr ‖ 0x00 ‖ keyid ‖ 0x00 ‖ nonce
//! pt    = u16-BE(len(inner content type)) ‖ inner content type ‖ inner body
//! body  = hdr ‖ enc ‖ SetupBaseS(pkR, info).Seal(aad = "", pt)
//! ```
//!
//! The response to a sealed request is RFC 9458 §4.4 with the label
//! `"keyline-http-v1 response"`: `secret = Export(label, max(Nn, Nk))` (32 bytes for
//! ChaCha20-Poly1305, 16 for AES-128-GCM), `salt = enc ‖ response_nonce` (a fresh
//! `max(Nn, Nk)`-byte nonce), `prk = Extract(salt, secret)`, key and nonce expanded with
//! `"key"` / `"nonce"`, and `body = response_nonce ‖ Seal(key, nonce, "", pt)`. The same code
//! with the OHTTP labels ([`open_labelled`], [`seal_response_labelled`]) reproduces RFC 9458
//! Appendix A byte for byte.
//!
//! Randomness is an argument: the ephemeral key comes from a 32-byte `ikm_e` (DeriveKeyPair
//! input) and the response nonce is passed in. The server layer ([`crate::server`]) opens
//! sealed request bodies after [`crate::verify_request`] and seals the responses; the client
//! ([`crate::client`]) fetches the [`KeyConfig`] from [`WELL_KNOWN_PATH`], picks the first
//! listed key and suite it supports ([`KeyConfig::select`]) and seals. A body-less request
//! asking for a sealed response carries the encapsulation of an empty plaintext (`0x0000`) in
//! the `Keyline-Seal` header ([`seal_header_value`]). The server's keys over time (one
//! current key, retired keys kept for a grace period, then deleted) are a [`HpkeKeyring`].

use chacha20poly1305::aead::{Aead as _, KeyInit};
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use crate::error::{Error, InvalidInput, Malformed, Result};

mod keyring;

pub use keyring::HpkeKeyring;

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type ChaCha = hpke::aead::ChaCha20Poly1305;
type AesGcm = hpke::aead::AesGcm128;

/// `kem_id` of DHKEM(X25519, HKDF-SHA256).
pub const KEM_ID: u16 = 0x0020;
/// `kdf_id` of HKDF-SHA256.
pub const KDF_ID: u16 = 0x0001;
/// `aead_id` of ChaCha20-Poly1305 (the default suite).
pub const AEAD_ID: u16 = 0x0003;
/// `aead_id` of AES-128-GCM.
pub const AEAD_ID_AES_128_GCM: u16 = 0x0001;
/// Length of the sealed-body header.
pub const HEADER_LEN: usize = 7;
/// Length of the encapsulated key (X25519 public key).
pub const ENC_LEN: usize = 32;
/// AEAD tag length (both suites).
pub const TAG_LEN: usize = 16;
/// The longest response nonce and exported secret, `max(Nn, Nk)` of ChaCha20-Poly1305 (32);
/// AES-128-GCM uses 16 ([`Suite::response_nonce_len`]).
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

/// An HPKE suite keyline seals with: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and an AEAD.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Suite {
    /// ChaCha20-Poly1305 (`aead_id` 3): the default, listed first.
    #[default]
    ChaCha20Poly1305,
    /// AES-128-GCM (`aead_id` 1).
    Aes128Gcm,
}

impl Suite {
    /// Every suite, in the order a server lists them (B.11).
    pub const ALL: [Suite; 2] = [Suite::ChaCha20Poly1305, Suite::Aes128Gcm];

    /// The suite of (`kdf_id`, `aead_id`), if keyline implements it.
    pub fn from_ids(kdf_id: u16, aead_id: u16) -> Option<Self> {
        match (kdf_id, aead_id) {
            (KDF_ID, AEAD_ID) => Some(Suite::ChaCha20Poly1305),
            (KDF_ID, AEAD_ID_AES_128_GCM) => Some(Suite::Aes128Gcm),
            _ => None,
        }
    }

    /// The `kdf_id` (HKDF-SHA256 for both).
    pub fn kdf_id(self) -> u16 {
        KDF_ID
    }

    /// The `aead_id`.
    pub fn aead_id(self) -> u16 {
        match self {
            Suite::ChaCha20Poly1305 => AEAD_ID,
            Suite::Aes128Gcm => AEAD_ID_AES_128_GCM,
        }
    }

    /// `Nk`: the AEAD key length (32 or 16).
    pub fn key_len(self) -> usize {
        match self {
            Suite::ChaCha20Poly1305 => 32,
            Suite::Aes128Gcm => 16,
        }
    }

    /// `Nn`: the AEAD nonce length (12 for both).
    pub fn nonce_len(self) -> usize {
        12
    }

    /// `max(Nn, Nk)`: the response nonce and exported secret length (32 or 16).
    pub fn response_nonce_len(self) -> usize {
        self.key_len().max(self.nonce_len())
    }

    /// The key configuration entry of this suite.
    pub fn config(self) -> SuiteConfig {
        SuiteConfig {
            kdf_id: self.kdf_id(),
            aead_id: self.aead_id(),
        }
    }
}

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
    /// The configuration announcing `keys` in this order (the current key first), each with
    /// every [`Suite`] (ChaCha20-Poly1305 first, then AES-128-GCM).
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
                    suites: Suite::ALL.iter().map(|s| s.config()).collect(),
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

    /// What a client seals to (B.11): the first listed key with a supported KEM and a
    /// well-formed public key, with the first of its listed suites that keyline supports.
    pub fn select(&self) -> Option<SealTarget> {
        self.select_from(&Suite::ALL)
    }

    /// Like [`select`](Self::select) for a client that supports only `supported`: the first
    /// listed key with one of them, and the first of its listed suites among them (the
    /// server's order decides, not the order of `supported`).
    pub fn select_from(&self, supported: &[Suite]) -> Option<SealTarget> {
        use base64::Engine as _;
        self.hpke_keys
            .iter()
            .filter(|k| k.kem_id == KEM_ID)
            .find_map(|k| {
                let suite = k
                    .suites
                    .iter()
                    .filter_map(|s| Suite::from_ids(s.kdf_id, s.aead_id))
                    .find(|s| supported.contains(s))?;
                let public_key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(&k.public_key)
                    .ok()?
                    .try_into()
                    .ok()?;
                Some(SealTarget {
                    key_id: k.key_id,
                    public_key,
                    suite,
                })
            })
    }
}

/// A server HPKE key and suite a client seals to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealTarget {
    /// The server key's one-byte id.
    pub key_id: u8,
    /// The server's X25519 public key.
    pub public_key: [u8; 32],
    /// The suite.
    pub suite: Suite,
}

impl SealTarget {
    /// `public_key` under `key_id` with the default suite (ChaCha20-Poly1305).
    pub fn new(key_id: u8, public_key: [u8; 32]) -> Self {
        Self {
            key_id,
            public_key,
            suite: Suite::default(),
        }
    }

    /// The same key with `suite`.
    pub fn with_suite(mut self, suite: Suite) -> Self {
        self.suite = suite;
        self
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
        Self::with_suite(key_id, Suite::default())
    }

    /// `suite` under `key_id`.
    pub fn with_suite(key_id: u8, suite: Suite) -> Self {
        Self {
            key_id,
            kem_id: KEM_ID,
            kdf_id: suite.kdf_id(),
            aead_id: suite.aead_id(),
        }
    }

    /// The suite named by the header, if keyline implements it.
    pub fn suite(&self) -> Option<Suite> {
        if self.kem_id != KEM_ID {
            return None;
        }
        Suite::from_ids(self.kdf_id, self.aead_id)
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

    /// Parses the first 7 bytes; a suite other than those of [`Suite`] is refused (400).
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
        if header.suite().is_none() {
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

/// A server HPKE key pair with its one-byte `key_id`. `Debug` shows the id and public key only;
/// the `hpke` crate zeroizes the secret key when it is dropped.
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

    /// The key pair of a serialized X25519 secret key (32 bytes, as RFC 9180 prints `skR`).
    pub fn from_secret_bytes(key_id: u8, secret: &[u8]) -> Result<Self> {
        let secret = <Kem as hpke::Kem>::PrivateKey::from_bytes(secret)
            .map_err(|_| InvalidInput::SecretKey("HPKE secret key: expected 32 bytes"))?;
        let public = Kem::sk_to_pk(&secret).to_bytes().into();
        Ok(Self {
            key_id,
            secret,
            public,
        })
    }

    /// The key id.
    pub fn key_id(&self) -> u8 {
        self.key_id
    }

    /// The X25519 public key (what `/.well-known/keyline-http` announces).
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    /// This key with the default suite, as a client seals to it.
    pub fn target(&self, suite: Suite) -> SealTarget {
        SealTarget::new(self.key_id, self.public).with_suite(suite)
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

enum SenderCtx {
    ChaCha(hpke::aead::AeadCtxS<ChaCha, Kdf, Kem>),
    /// Boxed: the AES key schedule is about 900 bytes.
    Aes(Box<hpke::aead::AeadCtxS<AesGcm, Kdf, Kem>>),
}

enum ReceiverCtx {
    ChaCha(hpke::aead::AeadCtxR<ChaCha, Kdf, Kem>),
    /// Boxed: the AES key schedule is about 900 bytes.
    Aes(Box<hpke::aead::AeadCtxR<AesGcm, Kdf, Kem>>),
}

/// The client's side of a sealed exchange, kept to open the response.
pub struct SenderContext {
    enc: [u8; ENC_LEN],
    suite: Suite,
    ctx: SenderCtx,
}

/// The server's side of a sealed exchange, kept to seal the response.
pub struct ReceiverContext {
    enc: [u8; ENC_LEN],
    suite: Suite,
    ctx: ReceiverCtx,
}

impl SenderContext {
    /// The suite of the exchange.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    fn export(&self, label: &[u8], out: &mut [u8]) -> std::result::Result<(), hpke::HpkeError> {
        match &self.ctx {
            SenderCtx::ChaCha(ctx) => ctx.export(label, out),
            SenderCtx::Aes(ctx) => ctx.export(label, out),
        }
    }
}

impl ReceiverContext {
    /// The suite of the exchange.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    fn export(&self, label: &[u8], out: &mut [u8]) -> std::result::Result<(), hpke::HpkeError> {
        match &self.ctx {
            ReceiverCtx::ChaCha(ctx) => ctx.export(label, out),
            ReceiverCtx::Aes(ctx) => ctx.export(label, out),
        }
    }
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

/// Seals a request body to the server key `server_public` under `key_id` with the default
/// suite (ChaCha20-Poly1305); see [`seal_request_to`].
pub fn seal_request(
    server_public: &[u8; 32],
    key_id: u8,
    keyid: &str,
    nonce: &str,
    content_type: &str,
    body: &[u8],
    ikm_e: &[u8; 32],
) -> Result<(Vec<u8>, SenderContext)> {
    seal_request_to(
        &SealTarget::new(key_id, *server_public),
        keyid,
        nonce,
        content_type,
        body,
        ikm_e,
    )
}

/// Seals a request body to `target` (server key, key id and suite), bound to this request's
/// `keyid` and `nonce`. `ikm_e` (32 fresh random bytes) derives the ephemeral key. Returns the
/// body (`hdr ‖ enc ‖ ct`) and the context for the response.
pub fn seal_request_to(
    target: &SealTarget,
    keyid: &str,
    nonce: &str,
    content_type: &str,
    body: &[u8],
    ikm_e: &[u8; 32],
) -> Result<(Vec<u8>, SenderContext)> {
    let header = SealHeader::with_suite(target.key_id, target.suite);
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&target.public_key)
        .map_err(|_| InvalidInput::Message("invalid HPKE public key".into()))?;
    let info = request_info(&header, keyid, nonce);
    let pt = Zeroizing::new(frame(content_type, body)?);
    let setup_failed = |_| Error::from(InvalidInput::Message("HPKE setup failed".into()));
    let seal_failed = |_| Error::from(InvalidInput::Message("HPKE seal failed".into()));
    let mut rng = FixedRng(ikm_e);
    let (enc, ct, ctx) = match target.suite {
        Suite::ChaCha20Poly1305 => {
            let (enc, mut ctx) = hpke::setup_sender_with_rng::<ChaCha, Kdf, Kem>(
                &OpModeS::Base,
                &pk,
                &info,
                &mut rng,
            )
            .map_err(setup_failed)?;
            let ct = ctx.seal(&pt, b"").map_err(seal_failed)?;
            (enc, ct, SenderCtx::ChaCha(ctx))
        }
        Suite::Aes128Gcm => {
            let (enc, mut ctx) = hpke::setup_sender_with_rng::<AesGcm, Kdf, Kem>(
                &OpModeS::Base,
                &pk,
                &info,
                &mut rng,
            )
            .map_err(setup_failed)?;
            let ct = ctx.seal(&pt, b"").map_err(seal_failed)?;
            (enc, ct, SenderCtx::Aes(Box::new(ctx)))
        }
    };
    let enc: [u8; ENC_LEN] = enc.to_bytes().into();
    let mut out = Vec::with_capacity(HEADER_LEN + ENC_LEN + ct.len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(&enc);
    out.extend_from_slice(&ct);
    Ok((
        out,
        SenderContext {
            enc,
            suite: target.suite,
            ctx,
        },
    ))
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
    let (pt, context) = open_labelled(sealed, key_for, REQUEST_LABEL, Some((keyid, nonce)))?;
    let (content_type, body) = unframe(&pt)?;
    Ok((content_type, body, context))
}

/// Opens `hdr ‖ enc ‖ ct` with `info` = [`labelled_info`]`(label, hdr, binding)` and returns
/// the raw plaintext and the context. With `label` = `"keyline-http-v1 request"` and the
/// request's (`keyid`, `nonce`) this is [`open_request`] before unframing; with
/// `"message/bhttp request"` and no binding it is RFC 9458's gateway. Any failure is 400.
pub fn open_labelled(
    sealed: &[u8],
    key_for: impl Fn(u8) -> Option<HpkeKeyPair>,
    label: &[u8],
    binding: Option<(&str, &str)>,
) -> Result<(Zeroizing<Vec<u8>>, ReceiverContext)> {
    let header = SealHeader::parse(sealed)?;
    let suite = header.suite().ok_or(Malformed::Sealed("unknown suite"))?;
    let key = key_for(header.key_id).ok_or(Malformed::Sealed("unknown key_id"))?;
    let enc_bytes: [u8; ENC_LEN] = sealed
        .get(HEADER_LEN..HEADER_LEN + ENC_LEN)
        .and_then(|e| e.try_into().ok())
        .ok_or(Malformed::Sealed("truncated"))?;
    let ct = &sealed[HEADER_LEN + ENC_LEN..];
    if ct.len() < TAG_LEN {
        return Err(Malformed::Sealed("truncated").into());
    }
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc_bytes)
        .map_err(|_| Malformed::Sealed("bad encapsulated key"))?;
    let info = labelled_info(label, &header, binding);
    let setup_failed = |_| Error::from(Malformed::Sealed("decapsulation failed"));
    let open_failed = |_| Error::from(Malformed::Sealed("open failed"));
    let (pt, ctx) = match suite {
        Suite::ChaCha20Poly1305 => {
            let mut ctx =
                hpke::setup_receiver::<ChaCha, Kdf, Kem>(&OpModeR::Base, &key.secret, &enc, &info)
                    .map_err(setup_failed)?;
            let pt = ctx.open(ct, b"").map_err(open_failed)?;
            (pt, ReceiverCtx::ChaCha(ctx))
        }
        Suite::Aes128Gcm => {
            let mut ctx =
                hpke::setup_receiver::<AesGcm, Kdf, Kem>(&OpModeR::Base, &key.secret, &enc, &info)
                    .map_err(setup_failed)?;
            let pt = ctx.open(ct, b"").map_err(open_failed)?;
            (pt, ReceiverCtx::Aes(Box::new(ctx)))
        }
    };
    Ok((
        Zeroizing::new(pt),
        ReceiverContext {
            enc: enc_bytes,
            suite,
            ctx,
        },
    ))
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

/// The response AEAD of `suite` (key and nonce from [`response_key_schedule`]), sealing or
/// opening `input` with empty AAD.
fn response_aead(
    suite: Suite,
    secret: &[u8],
    enc: &[u8; ENC_LEN],
    response_nonce: &[u8],
    input: &[u8],
    seal: bool,
) -> std::result::Result<Vec<u8>, ()> {
    let mut key = Zeroizing::new([0u8; 32]);
    let mut nonce = [0u8; 12];
    let key = &mut key[..suite.key_len()];
    response_key_schedule(secret, enc, response_nonce, key, &mut nonce).map_err(|_| ())?;
    let nonce = (&nonce).into();
    match suite {
        Suite::ChaCha20Poly1305 => {
            let aead = chacha20poly1305::ChaCha20Poly1305::new_from_slice(key).map_err(|_| ())?;
            if seal {
                aead.encrypt(nonce, input)
            } else {
                aead.decrypt(nonce, input)
            }
        }
        Suite::Aes128Gcm => {
            let aead = aes_gcm::Aes128Gcm::new_from_slice(key).map_err(|_| ())?;
            if seal {
                aes_gcm::aead::Aead::encrypt(&aead, nonce, input)
            } else {
                aes_gcm::aead::Aead::decrypt(&aead, nonce, input)
            }
        }
    }
    .map_err(|_| ())
}

/// Seals the response to a sealed request: `response_nonce ‖ Seal(key, nonce, "", pt)` with
/// `pt` framed as for requests. `response_nonce` is `max(Nn, Nk)` fresh random bytes of the
/// context's suite ([`Suite::response_nonce_len`]: 32 for ChaCha20-Poly1305, 16 for
/// AES-128-GCM).
pub fn seal_response(
    context: &ReceiverContext,
    response_nonce: &[u8],
    content_type: &str,
    body: &[u8],
) -> Result<Vec<u8>> {
    let pt = Zeroizing::new(frame(content_type, body)?);
    seal_response_labelled(context, RESPONSE_LABEL, response_nonce, &pt)
}

/// RFC 9458 §4.4 under `label`: `secret = Export(label, max(Nn, Nk))`, then
/// `response_nonce ‖ Seal(key, nonce, "", pt)` over the raw `pt`. With
/// `"keyline-http-v1 response"` and a framed `pt` this is [`seal_response`]; with
/// `"message/bhttp response"` it is RFC 9458's gateway.
pub fn seal_response_labelled(
    context: &ReceiverContext,
    label: &[u8],
    response_nonce: &[u8],
    pt: &[u8],
) -> Result<Vec<u8>> {
    let n = context.suite.response_nonce_len();
    if response_nonce.len() != n {
        return Err(InvalidInput::Message(format!("the response nonce must be {n} bytes")).into());
    }
    let mut secret = Zeroizing::new([0u8; RESPONSE_NONCE_LEN]);
    let secret = &mut secret[..n];
    context
        .export(label, secret)
        .map_err(|_| InvalidInput::Message("HPKE export failed".into()))?;
    let ct = response_aead(
        context.suite,
        secret,
        &context.enc,
        response_nonce,
        pt,
        true,
    )
    .map_err(|()| InvalidInput::Message("AEAD seal failed".into()))?;
    let mut out = Vec::with_capacity(n + ct.len());
    out.extend_from_slice(response_nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens the sealed response on the client (inner content type and body).
pub fn open_response(context: &SenderContext, sealed: &[u8]) -> Result<(String, Vec<u8>)> {
    let pt = open_response_labelled(context, RESPONSE_LABEL, sealed)?;
    unframe(&pt)
}

/// Opens `response_nonce ‖ ct` under `label` and returns the raw plaintext (the reverse of
/// [`seal_response_labelled`]). Any failure is [`Malformed::Sealed`].
pub fn open_response_labelled(
    context: &SenderContext,
    label: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let n = context.suite.response_nonce_len();
    let (response_nonce, ct) = sealed
        .split_at_checked(n)
        .ok_or(Malformed::Sealed("truncated"))?;
    let mut secret = Zeroizing::new([0u8; RESPONSE_NONCE_LEN]);
    let secret = &mut secret[..n];
    context
        .export(label, secret)
        .map_err(|_| Malformed::Sealed("HPKE export failed"))?;
    let pt = response_aead(
        context.suite,
        secret,
        &context.enc,
        response_nonce,
        ct,
        false,
    )
    .map_err(|()| Malformed::Sealed("open failed"))?;
    Ok(Zeroizing::new(pt))
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
    fn aes_128_gcm_round_trip() {
        let server = HpkeKeyPair::derive(2, b"server ikm");
        let keys = |id: u8| (id == 2).then(|| server.clone());
        let target = server.target(Suite::Aes128Gcm);
        let (body, sender) =
            seal_request_to(&target, "ed25519:k", "n", "text/plain", b"hello", &[3; 32]).unwrap();
        assert_eq!(body[5..7], [0, 1]);
        let (ct, inner, receiver) = open_request(&body, keys, "ed25519:k", "n").unwrap();
        assert_eq!(
            (ct.as_str(), inner.as_slice()),
            ("text/plain", &b"hello"[..])
        );
        assert_eq!(
            (sender.suite(), receiver.suite()),
            (Suite::Aes128Gcm, Suite::Aes128Gcm)
        );
        // The response nonce is max(Nn, Nk) = 16 bytes; 32 is refused.
        assert!(seal_response(&receiver, &[1; 32], "", b"x").is_err());
        let resp = seal_response(&receiver, &[1; 16], "text/plain", b"bye").unwrap();
        assert_eq!(resp.len(), 16 + 2 + 10 + 3 + TAG_LEN);
        assert_eq!(
            open_response(&sender, &resp).unwrap(),
            ("text/plain".to_string(), b"bye".to_vec())
        );
        for i in [0, 15, 16, resp.len() - 1] {
            let mut t = resp.clone();
            t[i] ^= 1;
            assert!(open_response(&sender, &t).is_err(), "{i}");
        }
        assert!(open_response(&sender, &resp[..15]).is_err());
        // A ChaCha20-Poly1305 context cannot open it.
        let (_, chacha) =
            seal_request(&server.public_key(), 2, "ed25519:k", "n", "", b"", &[3; 32]).unwrap();
        assert!(open_response(&chacha, &resp).is_err());
    }

    #[test]
    fn suites_and_selection() {
        assert_eq!(Suite::ChaCha20Poly1305.response_nonce_len(), 32);
        assert_eq!(Suite::Aes128Gcm.response_nonce_len(), 16);
        let a = HpkeKeyPair::derive(5, b"a");
        let b = HpkeKeyPair::derive(4, b"b");
        let skew = SkewConfig {
            max_age: 60,
            max_future: 30,
        };
        let mut config = KeyConfig::new(vec![], &[a.clone(), b], 10, skew);
        let json: serde_json::Value = serde_json::from_slice(&config.to_json()).unwrap();
        assert_eq!(
            json["hpke_keys"][0]["suites"],
            serde_json::json!([{"kdf_id": 1, "aead_id": 3}, {"kdf_id": 1, "aead_id": 1}])
        );
        assert_eq!(config.select(), Some(a.target(Suite::ChaCha20Poly1305)));
        // The first listed suite the client supports wins.
        config.hpke_keys[0].suites = vec![
            SuiteConfig {
                kdf_id: 1,
                aead_id: 2,
            },
            Suite::Aes128Gcm.config(),
            Suite::ChaCha20Poly1305.config(),
        ];
        assert_eq!(config.select(), Some(a.target(Suite::Aes128Gcm)));
        // A key without a supported suite is skipped.
        config.hpke_keys[0].suites.truncate(1);
        assert_eq!(config.select().map(|t| t.key_id), Some(4));
        assert_eq!(
            config.select_from(&[Suite::Aes128Gcm]),
            Some(HpkeKeyPair::derive(4, b"b").target(Suite::Aes128Gcm))
        );
        assert_eq!(config.select_from(&[]), None);
        assert_eq!(
            HpkeKeyPair::from_secret_bytes(5, &[1; 32])
                .unwrap()
                .key_id(),
            5
        );
        assert!(HpkeKeyPair::from_secret_bytes(5, &[1; 31]).is_err());
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
        assert_eq!(
            SealHeader::parse(&[1, 0, 0x20, 0, 1, 0, 1])
                .unwrap()
                .suite(),
            Some(Suite::Aes128Gcm)
        );
        for unknown in [
            [1, 0, 0x20, 0, 1, 0, 2],
            [1, 0, 0x20, 0, 2, 0, 3],
            [1, 0, 0x21, 0, 1, 0, 3],
        ] {
            assert!(SealHeader::parse(&unknown).is_err(), "{unknown:?}");
        }
        assert_eq!(
            SealHeader::parse(&SealHeader::new(4).to_bytes()).unwrap(),
            SealHeader::new(4)
        );
    }
}
