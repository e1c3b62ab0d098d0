//! Signing and verifying requests (B.3, B.5, B.6, B.8).
//!
//! [`sign_request`] adds `Content-Digest` (with content), `Signature-Input` and `Signature`.
//! [`verify_request`] runs the checks of B.5 in their order — scheme, field sizes and syntax,
//! profile, freshness, body limit and digest, signature, replay — and returns a [`Verified`]
//! or an [`Error`] whose [`Error::status`] is the answer: 400 for anything malformed, one
//! uniform 401 for every authentication failure, 413, 429. Authorization policy (allow-lists,
//! pins) is the caller's next step, and its refusal is the same 401.
//!
//! Time is an argument (`now`, Unix seconds): nothing here reads a clock.

use crate::base::{
    SignatureInput, parse_signature_input_label, parse_signature_label, signature_field,
};
use crate::component::MessageRef;
use crate::digest::{ContentDigest, content_digest};
use crate::error::{AuthFailure, Error, InvalidInput, Malformed, Result};
use crate::keys::{PublicKey, SigningKey};
use crate::limits::{
    DEFAULT_MAX_AGE, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_FUTURE, DEFAULT_SIGNATURE_LIFETIME,
    MAX_SIGNATURE_FIELD_BYTES, MAX_SIGNATURE_LIFETIME, REPLAY_RETENTION_SLACK,
    SERVER_NONCE_VALIDITY,
};
use crate::message::Request;
use crate::nonce::{ServerNonceKey, decode_nonce, encode_nonce};
use crate::profile::{LABEL, ProfileParams, Shape};
use crate::replay::{ReplayCache, ReplayKey};
use crate::uri::{PublicOrigin, TargetUri};

/// The authenticated peer's key (B.17).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerKey {
    /// An Ed25519 key (keyline-http-v1).
    Ed25519([u8; 32]),
    /// A BIP340 x-only key (keyline-http-v1 or NIP-98).
    Bip340([u8; 32]),
    /// A SEC1 compressed secp256k1 key (crypto-sessions v1.1.10 compat mode, A.10).
    #[cfg(feature = "compat-crypto-sessions")]
    Secp256k1Compressed([u8; 33]),
}

impl From<PublicKey> for PeerKey {
    fn from(key: PublicKey) -> Self {
        match key {
            PublicKey::Ed25519(k) => PeerKey::Ed25519(k),
            PublicKey::Bip340(k) => PeerKey::Bip340(k),
        }
    }
}

/// The scheme that authenticated the peer (B.17).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// keyline-http-v1 (RFC 9421 profile).
    KeylineHttpV1,
    /// NIP-98 (`Authorization: Nostr …`).
    Nip98,
    /// crypto-sessions v1.1.10, verify-only compat mode (A.10): no replay protection.
    #[cfg(feature = "compat-crypto-sessions")]
    CryptoSessionsV1_1_10,
}

impl Scheme {
    /// The scheme's name: `keyline-http-v1`, `nip98` or `crypto-sessions-v1.1.10`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::KeylineHttpV1 => "keyline-http-v1",
            Scheme::Nip98 => "nip98",
            #[cfg(feature = "compat-crypto-sessions")]
            Scheme::CryptoSessionsV1_1_10 => "crypto-sessions-v1.1.10",
        }
    }
}

/// Who sent a verified request, and how they proved it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VerifiedPeer {
    /// The peer's public key: its identity.
    pub key: PeerKey,
    /// The scheme used.
    pub scheme: Scheme,
}

/// The request values a response signature binds to (`"@method";req`, `"@target-uri";req`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestBinding {
    /// The method as sent.
    pub method: String,
    /// The `@target-uri` (server: public origin ‖ raw request-target).
    pub target_uri: String,
}

impl RequestBinding {
    /// The binding of `request`.
    pub fn of(request: &Request) -> Self {
        Self {
            method: request.method.clone(),
            target_uri: request.target_uri.clone(),
        }
    }
}

/// A verified request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The authenticated peer.
    pub peer: VerifiedPeer,
    /// The nonce the response must echo (B.10): the `sig1` nonce, or the NIP-98 event id.
    pub nonce: String,
    /// What the response binds to.
    pub binding: RequestBinding,
    /// The signature covers `keyline-seal`: a body-less request asking for a sealed response
    /// (B.11); the server opens its `Keyline-Seal` header.
    pub keyline_seal: bool,
}

/// Server-side verification settings. Defaults come from [`crate::limits`].
#[derive(Clone, Debug)]
pub struct VerifyConfig {
    /// The public origin; requests whose target URI names another origin are refused (400).
    pub origin: PublicOrigin,
    /// Max age of `created` / `created_at` (default [`DEFAULT_MAX_AGE`]).
    pub max_age: u64,
    /// Max future skew (default [`DEFAULT_MAX_FUTURE`]).
    pub max_future: u64,
    /// Plain body limit (default [`DEFAULT_MAX_BODY_BYTES`]).
    pub max_body_bytes: usize,
    /// Key for stateless server nonces; `None` disables them.
    pub server_nonce_key: Option<ServerNonceKey>,
    /// Validity of a server nonce after its `issued_at` (default [`SERVER_NONCE_VALIDITY`]).
    pub server_nonce_validity: u64,
    /// Whether `Authorization: Nostr` (NIP-98) is accepted (default true). When false, such a
    /// header is an unrelated scheme and is left alone.
    pub nip98: bool,
}

impl VerifyConfig {
    /// Defaults for `origin`.
    pub fn new(origin: PublicOrigin) -> Self {
        Self {
            origin,
            max_age: DEFAULT_MAX_AGE,
            max_future: DEFAULT_MAX_FUTURE,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            server_nonce_key: None,
            server_nonce_validity: SERVER_NONCE_VALIDITY,
            nip98: true,
        }
    }
}

/// What [`sign_request`] needs besides the key: the time, the nonce and (BIP340) `aux_rand`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignOptions {
    /// `created` (Unix seconds, corrected by the client's offset to the server clock).
    pub created: u64,
    /// `expires`; [`SignOptions::new`] sets `created + 60`.
    pub expires: u64,
    /// The nonce: 16 fresh random bytes, or a server nonce from `Accept-Signature`.
    pub nonce: String,
    /// BIP340 auxiliary randomness (ignored by Ed25519).
    pub aux_rand: [u8; 32],
}

impl SignOptions {
    /// Options with `expires = created + 60`.
    pub fn new(created: u64, nonce: impl Into<String>, aux_rand: [u8; 32]) -> Self {
        Self {
            created,
            expires: created.saturating_add(DEFAULT_SIGNATURE_LIFETIME),
            nonce: nonce.into(),
            aux_rand,
        }
    }

    /// Options with a fresh 16-byte nonce and fresh `aux_rand` from the operating system.
    pub fn random(created: u64) -> Result<Self> {
        let mut bytes = [0u8; 48];
        getrandom::fill(&mut bytes).map_err(Error::Rng)?;
        let mut aux = [0u8; 32];
        aux.copy_from_slice(&bytes[16..]);
        Ok(Self::new(created, encode_nonce(&bytes[..16]), aux))
    }
}

/// What a client keeps of a signed request to check the response (B.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentRequest {
    /// The nonce the response must echo.
    pub nonce: String,
    /// Method and target URI the response must bind to.
    pub binding: RequestBinding,
}

/// Signs `request` in place with the profile: sets `Content-Digest` (when it has content;
/// `Content-Type` must be present then), `Signature-Input` and `Signature` under `sig1`.
pub fn sign_request(
    request: &mut Request,
    key: &SigningKey,
    options: &SignOptions,
) -> Result<SentRequest> {
    decode_nonce(&options.nonce).map_err(|_| InvalidInput::SignParameter("nonce"))?;
    if options.expires <= options.created
        || options.expires - options.created > MAX_SIGNATURE_LIFETIME
    {
        return Err(
            InvalidInput::SignParameter("expires must be in (created, created + 300]").into(),
        );
    }
    TargetUri::parse(&request.target_uri).map_err(|e| InvalidInput::Message(e.to_string()))?;
    for name in ["content-digest", "signature-input", "signature"] {
        request.headers.remove(name);
    }
    let shape = if request.has_content() {
        if !request.headers.contains("content-type") {
            return Err(
                InvalidInput::Message("a request with content needs Content-Type".into()).into(),
            );
        }
        request
            .headers
            .push("Content-Digest", content_digest(&request.body));
        Shape::RequestWithBody
    } else if request.headers.contains("keyline-seal") {
        Shape::RequestSealed
    } else {
        Shape::Request
    };
    let params = ProfileParams {
        created: options.created,
        expires: options.expires,
        nonce: options.nonce.clone(),
        key: key.public_key(),
        alg: key.algorithm(),
    };
    let input = params.signature_input(shape)?;
    let base = input.signature_base(&MessageRef::Request(request))?;
    let signature = key.sign(base.as_bytes(), &options.aux_rand)?;
    request
        .headers
        .push("Signature-Input", input.to_field(LABEL)?);
    request
        .headers
        .push("Signature", signature_field(LABEL, &signature)?);
    Ok(SentRequest {
        nonce: options.nonce.clone(),
        binding: RequestBinding::of(request),
    })
}

/// Verifies a request against the profile (keyline-http-v1) or NIP-98, in the order of B.5.
///
/// `request.target_uri` must be the public origin ‖ the raw request-target
/// ([`PublicOrigin::target_uri`]); a target URI on another origin is refused (400). `now` is
/// the server's Unix time. `cache` is consulted only after the signature verified.
pub fn verify_request(
    request: &Request,
    config: &VerifyConfig,
    now: u64,
    cache: &mut dyn ReplayCache,
) -> Result<Verified> {
    // Step 1: choose the scheme.
    let has_v1 =
        request.headers.contains("signature-input") || request.headers.contains("signature");
    let nostr = if config.nip98 {
        crate::nip98::authorization_value(request)
    } else {
        None
    };
    match (has_v1, nostr) {
        (true, Some(_)) => Err(Malformed::SchemeConflict.into()),
        (true, None) => verify_v1(request, config, now, cache),
        (false, Some(value)) => crate::nip98::verify(request, &value, config, now, cache),
        (false, None) => Err(AuthFailure::Missing.into()),
    }
}

fn check_origin(request: &Request, origin: &PublicOrigin) -> Result<()> {
    let ours = TargetUri::parse(origin.as_str())?;
    let theirs = TargetUri::parse(&request.target_uri)?;
    if theirs.scheme != ours.scheme || theirs.authority != ours.authority {
        return Err(Malformed::ForeignAuthority.into());
    }
    Ok(())
}

/// The parsed `sig1` of a request or response: its input, validated parameters and
/// signature.
pub(crate) struct Sig1 {
    pub(crate) input: SignatureInput,
    pub(crate) params: ProfileParams,
    pub(crate) shape: Shape,
    pub(crate) signature: [u8; 64],
}

/// Steps 2 and 3 of B.5 (and the same for responses on the client): sizes, syntax, label,
/// signature length, profile parameters, covered-component list.
pub(crate) fn parse_sig1(headers: &crate::message::Headers, response: bool) -> Result<Sig1> {
    for field in [
        "signature-input",
        "signature",
        "content-digest",
        "keyline-seal",
    ] {
        let len = headers.combined_len(field);
        if len > MAX_SIGNATURE_FIELD_BYTES {
            return Err(Malformed::FieldTooLong {
                field: match field {
                    "signature-input" => "signature-input",
                    "signature" => "signature",
                    "content-digest" => "content-digest",
                    _ => "keyline-seal",
                },
                len,
            }
            .into());
        }
    }
    let input_value = headers
        .combined_ref("signature-input")
        .ok_or(Malformed::MissingField("signature-input"))?;
    let sig_value = headers
        .combined_ref("signature")
        .ok_or(Malformed::MissingField("signature"))?;
    // Every member of both fields is parsed and validated before the labels are looked up.
    let input = parse_signature_input_label(&input_value, LABEL)?;
    let signature = parse_signature_label(&sig_value, LABEL)?;
    let input = input.ok_or(Malformed::MissingLabel("signature-input"))?;
    let signature = signature.ok_or(Malformed::MissingLabel("signature"))?;
    let signature: [u8; 64] = signature
        .as_slice()
        .try_into()
        .map_err(|_| Malformed::SignatureLength(signature.len()))?;
    let params = if response {
        ProfileParams::from_response_input(&input)?
    } else {
        ProfileParams::from_input(&input)?
    };
    let shape = Shape::of(&input).ok_or(Malformed::CoveredComponents)?;
    Ok(Sig1 {
        input,
        params,
        shape,
        signature,
    })
}

fn verify_v1(
    request: &Request,
    config: &VerifyConfig,
    now: u64,
    cache: &mut dyn ReplayCache,
) -> Result<Verified> {
    // Steps 2–3: sizes, syntax, profile.
    check_origin(request, &config.origin)?;
    let sig1 = parse_sig1(&request.headers, false)?;
    let has_content = request.has_content();
    match (sig1.shape, has_content) {
        (Shape::Request, false) | (Shape::RequestWithBody, true) => {}
        (Shape::Request | Shape::RequestWithBody, _) => return Err(Malformed::BodyShape.into()),
        (Shape::RequestSealed, false) => {
            if !request.headers.contains("keyline-seal") {
                return Err(Malformed::MissingField("keyline-seal").into());
            }
        }
        (Shape::RequestSealed, true) => return Err(Malformed::BodyShape.into()),
        _ => return Err(Malformed::CoveredComponents.into()),
    }
    let digest = if has_content {
        if !request.headers.contains("content-type") {
            return Err(Malformed::MissingContentType.into());
        }
        let value = request
            .headers
            .combined_ref("content-digest")
            .ok_or(Malformed::MissingContentDigest)?;
        Some(ContentDigest::parse(&value)?)
    } else {
        None
    };

    // Step 4: freshness (B.6).
    let params = &sig1.params;
    let window_start = check_freshness(params, config, now)?;

    // Step 5: body limit and digest over the exact bytes.
    if request.body.len() > config.max_body_bytes {
        return Err(Error::BodyTooLarge {
            len: request.body.len(),
            limit: config.max_body_bytes,
        });
    }
    if let Some(digest) = &digest {
        digest.verify(&request.body)?;
    }

    // Step 6: signature base and signature.
    let base = sig1.input.signature_base(&MessageRef::Request(request))?;
    if !params.key.verify(base.as_bytes(), &sig1.signature) {
        return Err(AuthFailure::BadSignature.into());
    }

    // Step 7: replay cache, only after the signature verified.
    cache.check_and_insert(
        ReplayKey {
            namespace: params.alg.name(),
            public_key: *params.key.bytes(),
            nonce: params.nonce.clone(),
        },
        window_start
            .saturating_add(config.max_age)
            .saturating_add(REPLAY_RETENTION_SLACK),
        now,
    )?;

    Ok(Verified {
        peer: VerifiedPeer {
            key: params.key.into(),
            scheme: Scheme::KeylineHttpV1,
        },
        nonce: params.nonce.clone(),
        binding: RequestBinding::of(request),
        keyline_seal: sig1.shape == Shape::RequestSealed,
    })
}

/// B.6; returns the time the replay retention counts from (`issued_at` of a server nonce,
/// else `created`).
fn check_freshness(params: &ProfileParams, config: &VerifyConfig, now: u64) -> Result<u64> {
    if let Some(issued_at) = config
        .server_nonce_key
        .as_ref()
        .and_then(|key| key.verify(&params.nonce))
    {
        if issued_at > now {
            return Err(AuthFailure::Future.into());
        }
        if now - issued_at > config.server_nonce_validity {
            return Err(AuthFailure::Stale.into());
        }
        return Ok(issued_at);
    }
    if params.created.saturating_add(config.max_age) < now {
        return Err(AuthFailure::Stale.into());
    }
    if params.created > now.saturating_add(config.max_future) {
        return Err(AuthFailure::Future.into());
    }
    if params.expires < now {
        return Err(AuthFailure::Expired.into());
    }
    Ok(params.created)
}

/// The `Accept-Signature` value of a 401 (B.9): the list for the request's shape, with a
/// server nonce and the tag.
pub fn accept_signature(has_content: bool, server_nonce: &str) -> Result<String> {
    let shape = if has_content {
        Shape::RequestWithBody
    } else {
        Shape::Request
    };
    let mut params = sfv::Parameters::new();
    let string = |s: &str| {
        sfv::String::from_string(s.to_string())
            .map(sfv::BareItem::String)
            .map_err(|_| Error::from(InvalidInput::SignParameter("nonce")))
    };
    params.insert(sfv::key_ref("nonce").to_owned(), string(server_nonce)?);
    params.insert(sfv::key_ref("tag").to_owned(), string(crate::profile::TAG)?);
    SignatureInput::new(shape.components()?, params)?.to_field(LABEL)
}
