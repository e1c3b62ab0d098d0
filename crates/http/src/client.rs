//! A signing, verifying HTTP client over reqwest (feature `client`).
//!
//! [`SignedClient::send`]:
//!
//! 1. signs the request with the client key — keyline-http-v1 ([`sign_request`]) by default,
//!    or NIP-98 ([`crate::nip98::sign`], BIP340 keys only) — with `created` = local time + the
//!    clock offset known for the origin;
//! 2. sends it without following redirects (B.8);
//! 3. verifies the response (B.10): signed, bound to this request (nonce, method, target URI),
//!    digest over the exact body, by the server key — given explicitly
//!    ([`ServerTrust::Key`]) or pinned per origin in keyline-core's `PinStore` (protocol
//!    `http`, peer = the origin, key = the `keyid` string's bytes; [`ServerTrust::Pins`] with
//!    `Policy::Tofu` pins on first use). Unsigned or mismatched responses are errors, never a
//!    response "with a flag";
//! 4. sets the origin's clock offset from the verified `Date`;
//! 5. on a verified 401, retries **once**: keyline-http-v1 with the server nonce from
//!    `Accept-Signature`, NIP-98 with the corrected clock.
//!
//! ## Sealed bodies (B.11)
//!
//! With [`SignedClient::sealed`] (every request with a body) or [`SignedClient::send_sealed`]
//! (one request), the body is sealed with HPKE to the server's key: the client fetches the
//! key configuration from `/.well-known/keyline-http` (a signed response, verified like any
//! other against the configured or pinned server key, and cached per origin for
//! [`KEY_CONFIG_CACHE_LIFETIME`](crate::limits::KEY_CONFIG_CACHE_LIFETIME), or until a
//! sealed request gets a 400), takes the first listed key and, of its suites, the first it
//! supports (ChaCha20-Poly1305 and AES-128-GCM by default; [`SignedClient::with_hpke_suites`]),
//! seals the body and its content type bound to this request's `keyid` and `nonce`, signs the
//! ciphertext, and opens the sealed response. [`SignedResponse::body`] and its `Content-Type` are then the
//! inner ones. A body-less sealed request carries the encapsulation of an empty plaintext in
//! the `Keyline-Seal` header (covered by the signature), and its response is sealed too.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use keyline_core::{Clock, PinStore, Policy, SystemClock};

use crate::error::{Error, InvalidInput, Malformed, Result};
use crate::keys::{PublicKey, SigningKey};
use crate::message::{Headers, Request, Response};
use crate::nonce::encode_nonce;
use crate::random::{OsRandom, RandomSource, bytes};
use crate::request::{SentRequest, SignOptions, sign_request};
use crate::response::verify_response;
use crate::seal::{
    KeyConfig, SEALED_CONTENT_TYPE, SealTarget, SenderContext, Suite, WELL_KNOWN_PATH,
    is_sealed_content_type, open_response, seal_request_to,
};

/// The pin-store protocol name of keyline-http servers.
pub const PIN_PROTOCOL: &str = "http";

/// Default limit on a response body the client buffers: 16 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// How the client decides whether a response's signing key is the server's.
#[derive(Clone)]
pub enum ServerTrust {
    /// Only this key is accepted, for every origin.
    Key(PublicKey),
    /// Keys pinned per origin (protocol [`PIN_PROTOCOL`], peer = the origin) under `policy`.
    Pins {
        /// The pin store.
        store: Arc<PinStore>,
        /// `Tofu` pins an unknown origin's key on its first verified response.
        policy: Policy,
    },
}

impl fmt::Debug for ServerTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerTrust::Key(key) => f.debug_tuple("Key").field(key).finish(),
            ServerTrust::Pins { policy, .. } => f
                .debug_struct("Pins")
                .field("policy", policy)
                .finish_non_exhaustive(),
        }
    }
}

/// The scheme the client signs with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ClientScheme {
    /// keyline-http-v1 (RFC 9421 profile), Ed25519 or BIP340 keys.
    #[default]
    KeylineHttpV1,
    /// NIP-98 (`Authorization: Nostr`), BIP340 keys only.
    Nip98,
}

/// A verified response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedResponse {
    /// The status code.
    pub status: u16,
    /// The header field lines as received.
    pub headers: Headers,
    /// The exact body bytes.
    pub body: Vec<u8>,
    /// The key that signed it (the pinned or configured server key).
    pub server_key: PublicKey,
    /// Whether the request was retried after a 401.
    pub retried: bool,
    /// Whether the request body was sealed and the response opened (B.11): `body` and the
    /// `Content-Type` line are then the inner ones.
    pub sealed: bool,
}

/// A client that signs requests and accepts only responses signed by the server's key.
pub struct SignedClient {
    http: reqwest::Client,
    key: SigningKey,
    scheme: ClientScheme,
    trust: ServerTrust,
    clock: Arc<dyn Clock>,
    random: Arc<dyn RandomSource>,
    offsets: Mutex<HashMap<String, i64>>,
    max_response_bytes: usize,
    seal: bool,
    /// The HPKE suites this client seals with; the server's order picks among them.
    suites: Vec<Suite>,
    /// Per origin: the key and suite to seal to, and when (local clock) it was fetched.
    key_configs: Mutex<HashMap<String, (SealTarget, u64)>>,
}

impl fmt::Debug for SignedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedClient")
            .field("key", &self.key)
            .field("scheme", &self.scheme)
            .field("trust", &self.trust)
            .field("seal", &self.seal)
            .finish_non_exhaustive()
    }
}

impl SignedClient {
    /// A client signing with `key` (keyline-http-v1), trusting servers per `trust`, with the
    /// system clock, the OS RNG and no redirects.
    pub fn new(key: SigningKey, trust: ServerTrust) -> Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Transport(e.to_string()))?;
        Ok(Self {
            http,
            key,
            scheme: ClientScheme::default(),
            trust,
            clock: Arc::new(SystemClock),
            random: Arc::new(OsRandom),
            offsets: Mutex::new(HashMap::new()),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            seal: false,
            suites: Suite::ALL.to_vec(),
            key_configs: Mutex::new(HashMap::new()),
        })
    }

    /// Seals every request (B.11; keyline-http-v1 only): the body, or for a body-less request
    /// an empty plaintext in the `Keyline-Seal` header, so that the response is sealed.
    pub fn sealed(mut self, seal: bool) -> Self {
        self.seal = seal;
        self
    }

    /// Seals only with `suites` (default: both, ChaCha20-Poly1305 and AES-128-GCM). The
    /// client takes the first key and suite the server lists that is among them (B.11).
    pub fn with_hpke_suites(mut self, suites: &[Suite]) -> Self {
        self.suites = suites.to_vec();
        self
    }

    /// Signs with `scheme` (NIP-98 needs a BIP340 key).
    pub fn with_scheme(mut self, scheme: ClientScheme) -> Result<Self> {
        if scheme == ClientScheme::Nip98 && !matches!(self.key, SigningKey::Bip340(_)) {
            return Err(InvalidInput::Message("NIP-98 needs a BIP340 key".into()).into());
        }
        self.scheme = scheme;
        Ok(self)
    }

    /// Uses `clock` (tests: `keyline_core::ManualClock`).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `random` for nonces and `aux_rand`.
    pub fn with_random(mut self, random: Arc<dyn RandomSource>) -> Self {
        self.random = random;
        self
    }

    /// Sets the largest response body accepted.
    pub fn with_max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// The client's public key.
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// The known offset of `origin`'s clock from ours, in seconds (0 until a response came).
    pub fn clock_offset(&self, origin: &str) -> i64 {
        self.offsets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(origin)
            .copied()
            .unwrap_or(0)
    }

    fn corrected_now(&self, origin: &str) -> u64 {
        self.clock
            .unix_now()
            .saturating_add_signed(self.clock_offset(origin))
    }

    /// `GET url` without a body.
    pub async fn get(&self, url: &str) -> Result<SignedResponse> {
        self.send("GET", url, &[], Vec::new()).await
    }

    /// Sends `method url` with `headers` and `body`, signed; returns the verified response
    /// (any status) or an error. A body without a `Content-Type` header is sent as
    /// `application/octet-stream`.
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<SignedResponse> {
        self.send_with(method, url, headers, body, self.seal).await
    }

    /// Like [`send`](Self::send), with the body sealed to the server's HPKE key (B.11),
    /// whatever [`sealed`](Self::sealed) says. A body-less request sends `Keyline-Seal`.
    pub async fn send_sealed(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<SignedResponse> {
        self.send_with(method, url, headers, body, true).await
    }

    /// Fetches `GET <origin>/.well-known/keyline-http` (signed, verified against the server
    /// key like any response) and parses it; the response's signing key must be listed in
    /// `signing_keys`. `url` may be any URL of the origin.
    pub async fn key_config(&self, url: &str) -> Result<KeyConfig> {
        let url = url::Url::parse(url).map_err(|e| InvalidInput::Message(format!("URL: {e}")))?;
        let origin = url.origin().ascii_serialization();
        let well_known = format!("{origin}{WELL_KNOWN_PATH}");
        let response = self
            .exchange("GET", &well_known, &[], Vec::new(), None)
            .await?;
        if response.status != 200 {
            return Err(Error::ServerKey(format!(
                "key configuration: status {}",
                response.status
            )));
        }
        let config = KeyConfig::from_json(&response.body)?;
        if !config.signing_keys.contains(&response.server_key.keyid()) {
            return Err(Error::ServerKey(
                "key configuration does not list the server's signing key".into(),
            ));
        }
        Ok(config)
    }

    /// The cached (or freshly fetched) HPKE key and suite of `origin`: the first listed key
    /// and, of its suites, the first this client supports. The cache lasts
    /// [`KEY_CONFIG_CACHE_LIFETIME`](crate::limits::KEY_CONFIG_CACHE_LIFETIME), so a rotated
    /// key is picked up within the server's grace period.
    async fn hpke_key(&self, origin: &str) -> Result<SealTarget> {
        let now = self.clock.unix_now();
        if let Some((target, fetched_at)) = self
            .key_configs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(origin)
            && now.saturating_sub(*fetched_at) < crate::limits::KEY_CONFIG_CACHE_LIFETIME
        {
            return Ok(*target);
        }
        let target = self
            .key_config(origin)
            .await?
            .select_from(&self.suites)
            .ok_or_else(|| Error::ServerKey("no HPKE key with a supported suite".into()))?;
        self.key_configs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(origin.to_string(), (target, now));
        Ok(target)
    }

    /// Seals `body` (with its content type) into `request` for `nonce`.
    fn seal_into(
        &self,
        request: &mut Request,
        target: &SealTarget,
        nonce: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<SenderContext> {
        let ikm_e = zeroize::Zeroizing::new(bytes::<32>(&*self.random)?);
        let (sealed, context) = seal_request_to(
            target,
            &self.key.public_key().keyid(),
            nonce,
            content_type,
            body,
            &ikm_e,
        )?;
        if body.is_empty() {
            request
                .headers
                .set("Keyline-Seal", crate::seal::seal_header_value(&sealed));
        } else {
            request.headers.set("Content-Type", SEALED_CONTENT_TYPE);
            request.body = sealed;
        }
        Ok(context)
    }

    async fn send_with(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        seal: bool,
    ) -> Result<SignedResponse> {
        if seal && self.scheme != ClientScheme::KeylineHttpV1 {
            return Err(InvalidInput::Message("sealed bodies need keyline-http-v1".into()).into());
        }
        let seal_key = if seal {
            let parsed =
                url::Url::parse(url).map_err(|e| InvalidInput::Message(format!("URL: {e}")))?;
            Some(
                self.hpke_key(&parsed.origin().ascii_serialization())
                    .await?,
            )
        } else {
            None
        };
        self.exchange(method, url, headers, body, seal_key).await
    }

    /// Sign, send, verify, retry once on a 401; seals to `seal_key` when given.
    async fn exchange(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        seal_key: Option<SealTarget>,
    ) -> Result<SignedResponse> {
        let mut url =
            url::Url::parse(url).map_err(|e| InvalidInput::Message(format!("URL: {e}")))?;
        url.set_fragment(None);
        if !matches!(url.scheme(), "http" | "https") {
            return Err(InvalidInput::Message("URL scheme must be http or https".into()).into());
        }
        let origin = url.origin().ascii_serialization();
        let mut server_nonce: Option<String> = None;
        let mut retried = false;
        loop {
            let mut request = Request::new(method, url.as_str());
            for (name, value) in headers {
                request.headers.push(*name, *value);
            }
            request.body.clone_from(&body);
            if request.has_content() && !request.headers.contains("content-type") {
                request
                    .headers
                    .push("Content-Type", "application/octet-stream");
            }
            let mut nonce = server_nonce.take();
            let context = if let Some(seal_key) = &seal_key {
                // The nonce is bound into the HPKE info: choose it before sealing.
                let n = match nonce {
                    Some(n) => n,
                    None => encode_nonce(&bytes::<{ crate::limits::CLIENT_NONCE_BYTES }>(
                        &*self.random,
                    )?),
                };
                let inner_type = request.headers.combined("content-type").unwrap_or_default();
                let context = self.seal_into(&mut request, seal_key, &n, &inner_type, &body)?;
                nonce = Some(n);
                Some(context)
            } else {
                None
            };
            let sent = self.sign(&mut request, &origin, nonce)?;
            let mut response = self.transmit(&url, &request).await?;
            let received_at = self.clock.unix_now();
            let server_key = self.verify(&origin, &response, &sent).await?;
            if let Some(date) = response
                .headers
                .combined("date")
                .and_then(|d| crate::date::parse_imf_fixdate(&d))
            {
                let offset = i64::try_from(date).unwrap_or(i64::MAX)
                    - i64::try_from(received_at).unwrap_or(i64::MAX);
                self.offsets
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(origin.clone(), offset);
            }
            if response.status == 401 && !retried {
                server_nonce = response
                    .headers
                    .combined("accept-signature")
                    // Not covered by the signature: bounded like every signature field.
                    .filter(|v| v.len() <= crate::limits::MAX_SIGNATURE_FIELD_BYTES)
                    .and_then(|v| crate::profile::sig1_nonce(&v));
                if self.scheme == ClientScheme::Nip98 || server_nonce.is_some() {
                    tracing::debug!(%origin, "keyline-http: 401, retrying once");
                    retried = true;
                    continue;
                }
            }
            if let Some(context) = &context {
                if response.status == 400 {
                    // Perhaps a rotated key: fetch the configuration again next time.
                    self.key_configs
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&origin);
                }
                open_sealed_response(context, &mut response)?;
            }
            return Ok(SignedResponse {
                status: response.status,
                headers: response.headers,
                body: response.body,
                server_key,
                retried,
                sealed: context.is_some(),
            });
        }
    }

    fn sign(
        &self,
        request: &mut Request,
        origin: &str,
        server_nonce: Option<String>,
    ) -> Result<SentRequest> {
        let now = self.corrected_now(origin);
        let aux = bytes::<32>(&*self.random)?;
        match self.scheme {
            ClientScheme::KeylineHttpV1 => {
                let nonce = match server_nonce {
                    Some(nonce) => nonce,
                    None => encode_nonce(&bytes::<{ crate::limits::CLIENT_NONCE_BYTES }>(
                        &*self.random,
                    )?),
                };
                sign_request(request, &self.key, &SignOptions::new(now, nonce, aux))
            }
            ClientScheme::Nip98 => crate::nip98::sign(request, &self.key, now, &aux),
        }
    }

    async fn transmit(&self, url: &url::Url, request: &Request) -> Result<Response> {
        let transport = |e: reqwest::Error| Error::Transport(e.to_string());
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| InvalidInput::Message("invalid method".into()))?;
        let mut builder = self.http.request(method, url.clone());
        for (name, value) in request.headers.iter() {
            builder = builder.header(name, value);
        }
        if request.has_content() {
            builder = builder.body(request.body.clone());
        }
        let mut reply = builder.send().await.map_err(transport)?;
        let mut response = Response::new(reply.status().as_u16());
        for (name, value) in reply.headers() {
            response.headers.push(
                name.as_str(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            );
        }
        while let Some(chunk) = reply.chunk().await.map_err(transport)? {
            if response.body.len() + chunk.len() > self.max_response_bytes {
                return Err(Error::BodyTooLarge {
                    len: response.body.len() + chunk.len(),
                    limit: self.max_response_bytes,
                });
            }
            response.body.extend_from_slice(&chunk);
        }
        Ok(response)
    }

    /// B.10 client checks, then the pin policy (only for a response that verified).
    async fn verify(
        &self,
        origin: &str,
        response: &Response,
        sent: &SentRequest,
    ) -> Result<PublicKey> {
        let presented = match &self.trust {
            ServerTrust::Key(key) => *key,
            ServerTrust::Pins { .. } => {
                if !response.headers.contains("signature-input") {
                    return Err(Malformed::MissingField("signature-input").into());
                }
                crate::request::parse_sig1(&response.headers, true)?
                    .params
                    .key
            }
        };
        verify_response(response, sent, &presented)?;
        if let ServerTrust::Pins { store, policy } = &self.trust {
            store
                .check(
                    *policy,
                    PIN_PROTOCOL,
                    origin,
                    presented.keyid().as_bytes(),
                    self.clock.unix_now(),
                    None,
                )
                .await
                .map_err(|e| Error::ServerKey(e.to_string()))?;
        }
        Ok(presented)
    }
}

/// Opens the (verified) response to a sealed request in place. Responses without content (the
/// layer's own 400/401/413/429) are not sealed; any other unsealed response is an error.
fn open_sealed_response(context: &SenderContext, response: &mut Response) -> Result<()> {
    let sealed = response
        .headers
        .combined("content-type")
        .is_some_and(|ct| is_sealed_content_type(&ct));
    if !sealed {
        if response.has_content() {
            return Err(Malformed::Sealed("the response to a sealed request is not sealed").into());
        }
        return Ok(());
    }
    let (content_type, body) = open_response(context, &response.body)?;
    response.headers.remove("content-type");
    response.headers.remove("content-length");
    if !content_type.is_empty() {
        response.headers.push("Content-Type", content_type);
    }
    response.body = body;
    Ok(())
}
