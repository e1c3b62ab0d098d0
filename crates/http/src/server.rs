//! The axum 0.8 / tower 0.5 server layer (feature `server`), a demo API and [`serve`].
//!
//! [`KeylineHttpLayer`] drives the sans-IO core around an inner service:
//!
//! 1. the target URI is the configured [`PublicOrigin`] ‖ the raw request-target of the
//!    **original** URI (axum's [`OriginalUri`] when the router is nested under a prefix), never
//!    `Host` or `X-Forwarded-*` (B.8);
//! 2. the body is buffered up to [`VerifyConfig::max_body_bytes`] while reading (413 beyond);
//! 3. [`verify_request`] runs with the injected [`Clock`] and the shared replay cache; a failure
//!    is answered by the layer: the uniform signed 401 with `WWW-Authenticate` and an
//!    `Accept-Signature` carrying a fresh server nonce, or a signed 400/413/429 (B.9). The
//!    precise cause is logged at DEBUG, never sent;
//! 4. on success the [`VerifiedPeer`] goes into the request extensions and the inner service
//!    runs; its response is buffered and signed with the server key, bound to the request
//!    (B.10), with `Date` added.
//!
//! ## Sealed bodies (B.11)
//!
//! `GET /.well-known/keyline-http` (the original URI's path) is answered by the layer itself:
//! the signed [`KeyConfig`] of [`ServerConfig::hpke_keys`] (current
//! key first, each with ChaCha20-Poly1305 then AES-128-GCM), not verified,
//! `Cache-Control: no-store`. Keys rotate explicitly ([`ServerConfig::rotate_hpke_key`]) or
//! on a schedule ([`ServerConfig::with_hpke_rotation`], checked on every request with the
//! configured clock); a retired key opens requests for the grace period
//! ([`ServerConfig::with_hpke_grace`], default
//! [`DEFAULT_HPKE_KEY_GRACE`](crate::limits::DEFAULT_HPKE_KEY_GRACE)), then its `key_id` is
//! unknown (400). A request with `Content-Type:
//! application/keyline-sealed` is verified as usual over the ciphertext (body limit raised by
//! the sealing overhead; a tampered body fails the digest or signature: the uniform 401), then
//! opened with the signature's `keyid` and `nonce` (B.5 step 9: unknown key id or suite, or a
//! body that does not open under this binding, is 400). The handler sees the inner body and
//! `Content-Type`; its response is sealed under the exported key (with the request's suite)
//! and the signature covers the sealed body.
//!
//! ## Replay store (B.7)
//!
//! The layer takes the replay cache as a trait object ([`SharedReplayCache`] =
//! `Arc<dyn ReplayStore>`): an in-memory cache by default, or with
//! [`ServerConfig::with_replay_cache`] any store — for several instances behind one origin,
//! `replay::sqlite::SqliteReplayStore` (feature `sqlx-replay`) on one shared database file.
//! The sans-IO verification hands its replay entry to the store right after the signature
//! check ([`DeferredReplay`]).
//!
//! ## CORS (B.17)
//!
//! Off by default (no CORS header at all). With [`ServerConfig::with_cors`], preflights
//! without credentials are answered before verification and responses to allowed origins
//! expose the signature headers; see [`CorsConfig`].
//!
//! ## crypto-sessions v1.1.10 compat mode (feature `compat-crypto-sessions`, A.10)
//!
//! With `ServerConfig::with_compat`, a request on a route of the compat allow-list (not a
//! bypassed one) whose `Authorization` is a bare base64url token and that has no
//! `Signature-Input`/`Signature` is verified as crypto-sessions v1.1.10 (with one of them: 400,
//! two schemes). A blocked legacy key gets 429 before any work; the body is read under the
//! plain limit (413); `compat::verify_token` runs and a failure counts
//! against the key (uniform signed 401 of B.9, or 429 once the limit is reached). On success a
//! WARN line names the key (`secp256k1:<hex33>`), method and path with "crypto-sessions
//! v1.1.10: no replay protection", the handler gets the plaintext (`application/json` if it
//! parses, else `text/plain; charset=utf-8`) and a legacy [`VerifiedPeer`], and a 2xx answer
//! is sent in the legacy format (server token in `authorization`, body `base64url(IV ‖
//! AES-256-CBC)` with a fresh IV from [`ServerConfig::random`], `text/plain; charset=utf-8`);
//! other statuses go out unchanged. Legacy responses carry no keyline signature (legacy
//! requests have no nonce to bind to). What compat mode cannot do is listed in the `compat`
//! module.
//!
//! ## Per-route modes (B.17)
//!
//! Every path is [`RouteMode::Protected`] unless listed with [`ServerConfig::public_path`]
//! (responses signed, requests not verified) or [`ServerConfig::bypass_path`] (neither). Paths
//! are compared exactly with the path of the original URI (without the query).
//!
//! The recommended way to leave routes such as `/metrics` or health checks completely
//! untouched is to keep them **outside** the layer: apply the layer to the protected
//! sub-router only and merge the rest next to it.
//!
//! ```no_run
//! # use keyline_http::server::{KeylineHttpLayer, ServerConfig, demo_router};
//! # fn f(config: ServerConfig) -> axum::Router {
//! use axum::routing::get;
//! axum::Router::new()
//!     .nest("/api", demo_router().layer(KeylineHttpLayer::new(config)))
//!     .route("/metrics", get(|| async { "ok" }))
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, OriginalUri};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use keyline_core::{Clock, SystemClock};
use tower::{Layer, Service};

use crate::error::{Error, Result};
use crate::keys::{PublicKey, SigningKey};
use crate::message::{Request, Response};
use crate::nonce::{ServerNonceKey, encode_nonce};
use crate::random::{OsRandom, RandomSource, bytes};
use crate::replay::{DeferredReplay, MemoryReplayCache, ReplayStore};
use crate::request::{PeerKey, RequestBinding, Scheme, VerifiedPeer, VerifyConfig, verify_request};
use crate::response::{Challenge, response_nonce, sign_response, unauthorized_response};
use crate::seal::{
    HpkeKeyPair, HpkeKeyring, KeyConfig, RESPONSE_NONCE_LEN, ReceiverContext, SEAL_OVERHEAD,
    SEALED_CONTENT_TYPE, SkewConfig, WELL_KNOWN_PATH, is_sealed_content_type, open_request,
    seal_response,
};
use crate::uri::PublicOrigin;

mod cors;

pub use cors::CorsConfig;

/// The replay store shared by every request of a server (and by several layers or server
/// instances, if they share one origin): a trait object, so an `Arc<Mutex<MemoryReplayCache>>`
/// or (feature `sqlx-replay`) an `Arc<SqliteReplayStore>` (B.7).
pub type SharedReplayCache = Arc<dyn ReplayStore>;

/// What the layer does for a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteMode {
    /// Verify the request, sign the response (the default).
    Protected,
    /// Do not verify; sign the response (echoing a syntactically valid request nonce).
    Public,
    /// Neither verify nor sign: the inner service answers alone.
    Bypass,
}

/// Configuration of [`KeylineHttpLayer`] and [`serve`].
#[derive(Clone)]
pub struct ServerConfig {
    /// The server's signing key; its public key is what clients pin.
    pub key: SigningKey,
    /// Verification settings: public origin, freshness, body limit, server nonce key, NIP-98.
    pub verify: VerifyConfig,
    /// The replay store (an in-memory cache by default).
    pub replay: SharedReplayCache,
    /// The clock (`SystemClock` by default).
    pub clock: Arc<dyn Clock>,
    /// Random bytes for server nonces and BIP340 `aux_rand` (`OsRandom` by default).
    pub random: Arc<dyn RandomSource>,
    /// Paths whose requests are not verified but whose responses are signed.
    pub public_paths: Vec<String>,
    /// Paths the layer leaves alone.
    pub bypass_paths: Vec<String>,
    /// HPKE keys for sealed bodies (B.11), announced at [`WELL_KNOWN_PATH`] (current key
    /// first): one fresh key with `key_id` 1 by default, rotated with
    /// [`rotate_hpke_key`](Self::rotate_hpke_key) or on a schedule
    /// ([`with_hpke_rotation`](Self::with_hpke_rotation)). No key: sealed requests are
    /// refused (400). Shared by clones of the configuration and the layer.
    pub hpke: Arc<HpkeKeyring>,
    /// CORS (B.17); `None` (the default): no CORS headers at all.
    pub cors: Option<Arc<CorsConfig>>,
    /// crypto-sessions v1.1.10 compat mode (A.10); `None` (the default): off.
    #[cfg(feature = "compat-crypto-sessions")]
    pub compat: Option<Arc<crate::compat::CompatConfig>>,
    /// The per-key failure limiter of compat mode, shared by every request.
    #[cfg(feature = "compat-crypto-sessions")]
    pub legacy_failures: Arc<Mutex<crate::compat::FailureLimiter>>,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("ServerConfig");
        f.field("key", &self.key)
            .field("verify", &self.verify)
            .field("clock", &self.clock)
            .field("random", &self.random)
            .field("public_paths", &self.public_paths)
            .field("bypass_paths", &self.bypass_paths)
            .field("hpke", &self.hpke)
            .field("cors", &self.cors);
        #[cfg(feature = "compat-crypto-sessions")]
        f.field("compat", &self.compat);
        f.finish_non_exhaustive()
    }
}

impl ServerConfig {
    /// Defaults for `origin` and `key`: limits from [`crate::limits`], a fresh random server
    /// nonce key, an in-memory replay cache, the system clock and the OS RNG, every path
    /// protected, one fresh HPKE key (`key_id` 1) with the default grace period
    /// ([`crate::limits::DEFAULT_HPKE_KEY_GRACE`]) and no scheduled rotation, no CORS.
    pub fn new(origin: PublicOrigin, key: SigningKey) -> Result<Self> {
        let mut verify = VerifyConfig::new(origin);
        verify.server_nonce_key = Some(ServerNonceKey::generate()?);
        // Anchored at the first request, so a clock set later (`with_clock`) is the one used.
        let hpke = HpkeKeyring::unanchored(HpkeKeyPair::generate(1)?);
        Ok(Self {
            key,
            verify,
            replay: Arc::new(Mutex::new(MemoryReplayCache::new())),
            clock: Arc::new(SystemClock),
            random: Arc::new(OsRandom),
            public_paths: Vec::new(),
            bypass_paths: Vec::new(),
            hpke: Arc::new(hpke),
            cors: None,
            #[cfg(feature = "compat-crypto-sessions")]
            compat: None,
            #[cfg(feature = "compat-crypto-sessions")]
            legacy_failures: Arc::new(Mutex::new(crate::compat::FailureLimiter::new())),
        })
    }

    /// Turns on crypto-sessions v1.1.10 compat mode (A.10) for the routes of `compat`, with a
    /// fresh failure limiter using its limits. Every legacy request is logged at WARN.
    #[cfg(feature = "compat-crypto-sessions")]
    pub fn with_compat(mut self, compat: crate::compat::CompatConfig) -> Self {
        self.legacy_failures = Arc::new(Mutex::new(crate::compat::FailureLimiter::with_limits(
            compat.limits,
        )));
        self.compat = Some(Arc::new(compat));
        self
    }

    /// Uses `keys` for sealed bodies, replacing the current ones: the first is current, the
    /// others count as retired now (by the configured clock) and open requests for the grace
    /// period only. Keeps the grace period and rotation schedule. Empty: no sealing.
    pub fn with_hpke_keys(mut self, keys: Vec<HpkeKeyPair>) -> Self {
        let ring = HpkeKeyring::with_keys(keys, self.clock.unix_now());
        ring.set_grace(self.hpke.grace());
        ring.set_rotation_interval(self.hpke.rotation_interval());
        self.hpke = Arc::new(ring);
        self
    }

    /// Rotates the HPKE key every `every` seconds (B.11): the layer checks on each request
    /// (with its clock) whether the current key is that old, then makes a fresh key current
    /// under the next free `key_id`; the old one opens requests for the grace period, then
    /// is deleted.
    pub fn with_hpke_rotation(self, every: u64) -> Self {
        self.hpke.set_rotation_interval(Some(every));
        self
    }

    /// Sets how long a retired HPKE key still opens requests. B.11 asks for at least
    /// `max_age` + the clients' key-configuration cache lifetime
    /// ([`crate::limits::KEY_CONFIG_CACHE_LIFETIME`]); less is refused.
    pub fn with_hpke_grace(self, secs: u64) -> Result<Self> {
        let minimum = self
            .verify
            .max_age
            .saturating_add(crate::limits::KEY_CONFIG_CACHE_LIFETIME);
        if secs < minimum {
            return Err(crate::error::InvalidInput::Message(format!(
                "HPKE key grace period: at least {minimum} s (max age + key configuration cache lifetime)"
            ))
            .into());
        }
        self.hpke.set_grace(secs);
        Ok(self)
    }

    /// Rotates the HPKE key now (by the configured clock): a fresh key becomes current under
    /// the next free `key_id`, listed first at [`WELL_KNOWN_PATH`]; the previous key opens
    /// requests for the grace period, then is deleted (400 unknown key id). Returns the new
    /// `key_id`. Works through the layer too: `layer.config().rotate_hpke_key()`.
    pub fn rotate_hpke_key(&self) -> Result<u8> {
        let key_id = self.hpke.rotate(self.clock.unix_now())?;
        tracing::info!(key_id, "keyline-http: HPKE key rotated");
        Ok(key_id)
    }

    /// The HPKE keys in use now: the current key first, then retired keys in their grace
    /// period.
    pub fn hpke_keys(&self) -> Vec<HpkeKeyPair> {
        self.hpke.keys(self.clock.unix_now())
    }

    /// Answers CORS preflights and adds CORS headers for the origins of `cors` (B.17).
    pub fn with_cors(mut self, cors: CorsConfig) -> Self {
        self.cors = Some(Arc::new(cors));
        self
    }

    /// The key configuration served at [`WELL_KNOWN_PATH`].
    pub fn key_config(&self) -> KeyConfig {
        KeyConfig::new(
            vec![self.key.public_key().keyid()],
            &self.hpke_keys(),
            self.verify.max_body_bytes,
            SkewConfig {
                max_age: self.verify.max_age,
                max_future: self.verify.max_future,
            },
        )
    }

    /// Uses `clock` (tests: `keyline_core::ManualClock`).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `random` for server nonces and `aux_rand`.
    pub fn with_random(mut self, random: Arc<dyn RandomSource>) -> Self {
        self.random = random;
        self
    }

    /// Uses `cache`: for example an `Arc<Mutex<MemoryReplayCache>>` shared with another
    /// layer, or a store shared by several instances (`replay::sqlite::SqliteReplayStore`,
    /// feature `sqlx-replay`).
    pub fn with_replay_cache(mut self, cache: SharedReplayCache) -> Self {
        self.replay = cache;
        self
    }

    /// Sets the plain body limit (413 beyond).
    pub fn with_max_body_bytes(mut self, limit: usize) -> Self {
        self.verify.max_body_bytes = limit;
        self
    }

    /// Marks `path` public: responses signed, requests not verified.
    pub fn public_path(mut self, path: impl Into<String>) -> Self {
        self.public_paths.push(path.into());
        self
    }

    /// Marks `path` bypassed: neither verified nor signed.
    pub fn bypass_path(mut self, path: impl Into<String>) -> Self {
        self.bypass_paths.push(path.into());
        self
    }

    /// The mode of `path` (the original URI's path, without the query).
    pub fn mode(&self, path: &str) -> RouteMode {
        if self.bypass_paths.iter().any(|p| p == path) {
            RouteMode::Bypass
        } else if self.public_paths.iter().any(|p| p == path) {
            RouteMode::Public
        } else {
            RouteMode::Protected
        }
    }

    /// The server's public key (what clients pin).
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    fn server_nonce(&self, now: u64) -> Result<String> {
        match &self.verify.server_nonce_key {
            Some(key) => Ok(key.issue(now, bytes::<8>(&*self.random)?)),
            None => Ok(encode_nonce(&bytes::<32>(&*self.random)?)),
        }
    }

    /// The layer's own signed answer to a failed request.
    fn failure(&self, request: &Request, error: &Error, now: u64) -> Result<Response> {
        let server_nonce = self.server_nonce(now)?;
        let aux = bytes::<32>(&*self.random)?;
        if error.status() == 401 {
            return unauthorized_response(
                &Challenge {
                    request,
                    server_nonce: &server_nonce,
                    nip98: self.verify.nip98,
                },
                &self.key,
                now,
                &aux,
            );
        }
        let mut response = Response::new(error.status()).with_header("Cache-Control", "no-store");
        if let Some(retry_after) = error.retry_after() {
            response
                .headers
                .push("Retry-After", retry_after.to_string());
        }
        let nonce = response_nonce(request).unwrap_or(server_nonce);
        sign_response(
            &mut response,
            &RequestBinding::of(request),
            &self.key,
            now,
            &nonce,
            &aux,
        )?;
        Ok(response)
    }

    /// Signs a buffered handler response.
    fn sign(&self, response: &mut Response, binding: &RequestBinding, nonce: &str) -> Result<()> {
        if response.has_content() && !response.headers.contains("content-type") {
            response
                .headers
                .push("Content-Type", "application/octet-stream");
        }
        let aux = bytes::<32>(&*self.random)?;
        sign_response(
            response,
            binding,
            &self.key,
            self.clock.unix_now(),
            nonce,
            &aux,
        )
    }
}

/// The tower layer: verify requests, sign responses. Cheap to clone.
#[derive(Clone, Debug)]
pub struct KeylineHttpLayer {
    config: Arc<ServerConfig>,
}

impl KeylineHttpLayer {
    /// A layer with `config`.
    pub fn new(config: ServerConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }
}

impl<S> Layer<S> for KeylineHttpLayer {
    type Service = KeylineHttpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        KeylineHttpService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service [`KeylineHttpLayer`] wraps around an inner service.
#[derive(Clone, Debug)]
pub struct KeylineHttpService<S> {
    inner: S,
    config: Arc<ServerConfig>,
}

impl<S> Service<axum::http::Request<Body>> for KeylineHttpService<S>
where
    S: Service<axum::http::Request<Body>, Response = AxumResponse> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = AxumResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<AxumResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<Body>) -> Self::Future {
        // The clone may not be ready; use the instance that was polled.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(handle(config, inner, request))
    }
}

/// The raw request-target: origin-form path and query, or the absolute form as received.
fn request_target(uri: &Uri) -> String {
    if uri.scheme().is_some() {
        uri.to_string()
    } else {
        uri.path_and_query()
            .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string())
    }
}

fn core_headers(headers: &HeaderMap) -> crate::message::Headers {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn internal_error() -> AxumResponse {
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// Converts a signed core response to an axum response.
fn to_axum(response: Response) -> AxumResponse {
    let Ok(status) = StatusCode::from_u16(response.status) else {
        return internal_error();
    };
    let mut out = AxumResponse::new(Body::from(response.body));
    *out.status_mut() = status;
    for (name, value) in response.headers.iter() {
        match (
            HeaderName::try_from(name),
            HeaderValue::try_from(value.to_string()),
        ) {
            (Ok(name), Ok(value)) => {
                out.headers_mut().append(name, value);
            }
            _ => return internal_error(),
        }
    }
    out
}

/// Reads a request body of at most `limit` bytes (B.5 step 5): over the limit is
/// [`Error::BodyTooLarge`], a broken transport [`Error::Transport`].
async fn read_body(body: Body, limit: usize) -> Result<Bytes> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Error::BodyTooLarge {
                len: limit.saturating_add(1),
                limit,
            })
        }
        Err(error) => {
            tracing::debug!(%error, "keyline-http: reading the request body failed");
            Err(Error::Transport("reading the request body failed".into()))
        }
    }
}

fn answer(result: Result<Response>) -> AxumResponse {
    match result {
        Ok(response) => to_axum(response),
        Err(error) => {
            tracing::error!(code = error.code(), %error, "keyline-http: cannot sign a response");
            internal_error()
        }
    }
}

/// Buffers and signs an inner response. A response to `HEAD` is signed (and sent) without
/// content, as B.10 asks: no body, `Content-Length` and `Content-Digest` dropped.
async fn sign_inner(
    config: &ServerConfig,
    response: AxumResponse,
    binding: &RequestBinding,
    nonce: &str,
    sealed: Option<&ReceiverContext>,
) -> AxumResponse {
    let head = binding.method == "HEAD";
    let (parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            tracing::error!(%error, "keyline-http: the handler's response body failed");
            return internal_error();
        }
    };
    let mut core = Response::new(parts.status.as_u16());
    core.headers = core_headers(&parts.headers);
    if head {
        core.headers.remove("content-length");
        core.headers.remove("transfer-encoding");
    } else {
        core.body = body.to_vec();
    }
    if let (Some(context), false) = (sealed, head) {
        // B.11: the response to an opened sealed request is always sealed.
        let inner_type = core.headers.combined("content-type").unwrap_or_else(|| {
            if core.body.is_empty() {
                String::new()
            } else {
                "application/octet-stream".to_string()
            }
        });
        // `max(Nn, Nk)` fresh bytes: 32 for ChaCha20-Poly1305, 16 for AES-128-GCM.
        let n = context.suite().response_nonce_len();
        let sealed_body = bytes::<RESPONSE_NONCE_LEN>(&*config.random)
            .and_then(|nonce| seal_response(context, &nonce[..n], &inner_type, &core.body));
        match sealed_body {
            Ok(sealed_body) => core.body = sealed_body,
            Err(error) => return answer(Err(error)),
        }
        core.headers.remove("content-length");
        core.headers.remove("content-digest");
        core.headers.set("content-type", SEALED_CONTENT_TYPE);
    }
    answer(config.sign(&mut core, binding, nonce).map(|()| core))
}

async fn handle<S>(
    config: Arc<ServerConfig>,
    mut inner: S,
    request: axum::http::Request<Body>,
) -> std::result::Result<AxumResponse, S::Error>
where
    S: Service<axum::http::Request<Body>, Response = AxumResponse>,
{
    let uri = request
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| request.uri().clone(), |original| original.0.clone());
    let mode = config.mode(uri.path());
    if mode == RouteMode::Bypass {
        return inner.call(request).await;
    }
    // CORS (B.17): only when configured, only for requests with an `Origin`.
    let cors = config.cors.clone().and_then(|cors| {
        let origin = request
            .headers()
            .get(axum::http::header::ORIGIN)?
            .to_str()
            .ok()?
            .to_string();
        Some((cors, origin))
    });
    let preflight = cors.is_some() && cors::is_preflight(request.method(), request.headers());
    let mut response = handle_layer(&config, inner, request, &uri, mode, preflight).await?;
    if let Some((cors, origin)) = cors {
        cors::decorate(
            &cors,
            &origin,
            preflight,
            config.verify.nip98,
            response.headers_mut(),
        );
    }
    Ok(response)
}

/// Everything but bypass and the CORS headers: preflight, key configuration, compat mode,
/// public routes, verification, opening, the handler and signing.
async fn handle_layer<S>(
    config: &ServerConfig,
    mut inner: S,
    request: axum::http::Request<Body>,
    uri: &Uri,
    mode: RouteMode,
    preflight: bool,
) -> std::result::Result<AxumResponse, S::Error>
where
    S: Service<axum::http::Request<Body>, Response = AxumResponse>,
{
    let (mut parts, body) = request.into_parts();
    let target = config.verify.origin.target_uri(&request_target(uri));
    let mut core = Request::new(
        parts.method.as_str(),
        target
            .as_ref()
            .map_or_else(|_| config.verify.origin.as_str().to_string(), String::clone),
    );
    core.headers = core_headers(&parts.headers);
    let now = config.clock.unix_now();
    if let Err(malformed) = target {
        let error = Error::from(malformed);
        tracing::debug!(code = error.code(), "keyline-http: request refused");
        return Ok(answer(config.failure(&core, &error, now)));
    }

    if preflight {
        // B.17: answered before verification; the CORS headers are added by the caller.
        return Ok(answer(preflight_response(config, &core, now)));
    }

    // Scheduled HPKE key rotation and deletion of keys past their grace period (B.11).
    match config.hpke.maintain(now) {
        Ok(Some(key_id)) => tracing::info!(key_id, "keyline-http: HPKE key rotated"),
        Ok(None) => {}
        Err(error) => tracing::error!(%error, "keyline-http: HPKE key rotation failed"),
    }

    if uri.path() == WELL_KNOWN_PATH && matches!(parts.method.as_str(), "GET" | "HEAD") {
        return Ok(answer(key_config_response(config, &core, now)));
    }

    #[cfg(feature = "compat-crypto-sessions")]
    if let Some(compat) = &config.compat {
        match crate::compat::detect(&core.headers, uri.path(), compat) {
            crate::compat::Detection::NotLegacy => {}
            crate::compat::Detection::Conflict => {
                let error = Error::from(crate::error::Malformed::SchemeConflict);
                tracing::debug!(code = error.code(), "keyline-http: request refused");
                return Ok(answer(config.failure(&core, &error, now)));
            }
            crate::compat::Detection::Legacy(token) => {
                let legacy = LegacyCall {
                    config,
                    compat,
                    core: &core,
                    request_target: request_target(uri),
                    path: uri.path().to_string(),
                    token,
                    now,
                };
                return legacy.handle(inner, parts, body).await;
            }
        }
    }

    if mode == RouteMode::Public {
        let binding = RequestBinding::of(&core);
        let nonce = match response_nonce(&core).map_or_else(|| config.server_nonce(now), Ok) {
            Ok(nonce) => nonce,
            Err(error) => return Ok(answer(Err(error))),
        };
        let response = inner
            .call(axum::http::Request::from_parts(parts, body))
            .await?;
        return Ok(sign_inner(config, response, &binding, &nonce, None).await);
    }

    // Read the body under the limit (B.5 step 5); a sealed body may carry the sealing overhead.
    let sealed = parts
        .headers
        .get_all(axum::http::header::CONTENT_TYPE)
        .iter()
        .any(|v| v.to_str().is_ok_and(is_sealed_content_type));
    let limit = if sealed {
        config.verify.max_body_bytes.saturating_add(SEAL_OVERHEAD)
    } else {
        config.verify.max_body_bytes
    };
    let body = match read_body(body, limit).await {
        Ok(body) => body,
        Err(error) => {
            tracing::debug!(code = error.code(), "keyline-http: request refused");
            return Ok(answer(config.failure(&core, &error, now)));
        }
    };
    core.body = body.to_vec();

    // Steps 2–6 in the sans-IO core; its replay entry (step 7) then goes to the shared store.
    let mut deferred = DeferredReplay::default();
    let verified = if sealed {
        let mut verify = config.verify.clone();
        verify.max_body_bytes = limit;
        verify_request(&core, &verify, now, &mut deferred)
    } else {
        verify_request(&core, &config.verify, now, &mut deferred)
    };
    let verified = match (verified, deferred.take()) {
        (Ok(verified), Some((key, retain_until))) => config
            .replay
            .check_and_insert(key, retain_until, now)
            .await
            .map(|()| verified),
        (verified, _) => verified,
    };
    let verified = match verified {
        Ok(verified) => verified,
        Err(error) => {
            tracing::debug!(
                code = error.code(),
                method = %core.method,
                target = %core.target_uri,
                "keyline-http: request refused"
            );
            return Ok(answer(config.failure(&core, &error, now)));
        }
    };
    tracing::debug!(key = %peer_keyid(&verified.peer.key), "keyline-http: request verified");
    parts.extensions.insert(verified.peer);
    let (body, context) = if verified.keyline_seal {
        // A body-less request asking for a sealed response: open its `Keyline-Seal`.
        match open_seal_header(config, &verified, &core, now) {
            Ok(context) => (body, Some(context)),
            Err(error) => {
                tracing::debug!(
                    code = error.code(),
                    key = %peer_keyid(&verified.peer.key),
                    "keyline-http: Keyline-Seal refused"
                );
                return Ok(answer(config.failure(&core, &error, now)));
            }
        }
    } else if sealed {
        // B.5 step 9: open after the signature, replay and policy checks.
        match open_sealed(config, &verified, &core.body, now) {
            Ok((content_type, inner_body, context)) => {
                let headers = &mut parts.headers;
                headers.remove(axum::http::header::CONTENT_TYPE);
                headers.remove(axum::http::header::CONTENT_LENGTH);
                headers.remove("content-digest");
                if !content_type.is_empty() {
                    // `unframe` admits visible ASCII and spaces only: a valid header value.
                    if let Ok(value) = HeaderValue::try_from(content_type) {
                        headers.insert(axum::http::header::CONTENT_TYPE, value);
                    }
                }
                if let Ok(value) = HeaderValue::try_from(inner_body.len().to_string()) {
                    headers.insert(axum::http::header::CONTENT_LENGTH, value);
                }
                (Bytes::from(inner_body), Some(context))
            }
            Err(error) => {
                tracing::debug!(
                    code = error.code(),
                    key = %peer_keyid(&verified.peer.key),
                    "keyline-http: sealed request refused"
                );
                return Ok(answer(config.failure(&core, &error, now)));
            }
        }
    } else {
        (body, None)
    };
    let response = inner
        .call(axum::http::Request::from_parts(parts, Body::from(body)))
        .await?;
    Ok(sign_inner(
        config,
        response,
        &verified.binding,
        &verified.nonce,
        context.as_ref(),
    )
    .await)
}

/// One legacy request (compat mode, A.10) on its way through the layer.
#[cfg(feature = "compat-crypto-sessions")]
struct LegacyCall<'a> {
    config: &'a ServerConfig,
    compat: &'a crate::compat::CompatConfig,
    core: &'a Request,
    request_target: String,
    path: String,
    token: String,
    now: u64,
}

#[cfg(feature = "compat-crypto-sessions")]
impl LegacyCall<'_> {
    fn refuse(&self, error: &Error, key: Option<&[u8; 33]>) -> AxumResponse {
        tracing::debug!(
            code = error.code(),
            key = key.map(hex::encode).unwrap_or_default(),
            method = %self.core.method,
            path = %self.path,
            "keyline-http: legacy request refused"
        );
        answer(self.config.failure(self.core, error, self.now))
    }

    fn record_failure(&self, key: &[u8; 33]) -> Option<Error> {
        let mut limiter = self
            .config
            .legacy_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        limiter.record_failure(key, self.now).err()
    }

    /// Verifies (A.10 steps 1–7), runs the handler with the plaintext, answers in the legacy
    /// format. Every failure is the uniform 401 of B.9 (429 when rate limited).
    async fn handle<S>(
        self,
        mut inner: S,
        mut parts: axum::http::request::Parts,
        body: Body,
    ) -> std::result::Result<AxumResponse, S::Error>
    where
        S: Service<axum::http::Request<Body>, Response = AxumResponse>,
    {
        use crate::compat::{LegacyRequest, LegacyToken, WARNING, verify_token};

        let token = match LegacyToken::parse(&self.token) {
            Ok(token) => token,
            Err(error) => return Ok(self.refuse(&error, None)),
        };
        let key = *token.key();
        let checked = self
            .config
            .legacy_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .check(&key, self.now);
        if let Err(error) = checked {
            return Ok(self.refuse(&error, Some(&key)));
        }
        let limit = self.config.verify.max_body_bytes;
        let body = match read_body(body, limit).await {
            Ok(body) => body,
            Err(error) => return Ok(self.refuse(&error, Some(&key))),
        };
        let request = LegacyRequest {
            method: parts.method.as_str(),
            request_target: &self.request_target,
            authorization: &self.token,
            body: &body,
        };
        let mut verified = match verify_token(&request, &token, self.compat) {
            Ok(verified) => verified,
            Err(error) => {
                let error = self.record_failure(&key).unwrap_or(error);
                return Ok(self.refuse(&error, Some(&key)));
            }
        };
        tracing::warn!(
            key = %peer_keyid(&verified.peer.key),
            method = %parts.method,
            path = %self.path,
            "{WARNING}"
        );
        parts.extensions.insert(verified.peer);
        let headers = &mut parts.headers;
        headers.remove(axum::http::header::CONTENT_TYPE);
        headers.remove(axum::http::header::CONTENT_LENGTH);
        if let Some(content_type) = verified.content_type {
            headers.insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static(content_type),
            );
            headers.insert(
                axum::http::header::CONTENT_LENGTH,
                HeaderValue::from(verified.body.len()),
            );
        }
        let plaintext_in = Body::from(std::mem::take(&mut verified.body));
        let response = inner
            .call(axum::http::Request::from_parts(parts, plaintext_in))
            .await?;
        if !response.status().is_success() {
            // Non-2xx responses go out as they are (A.10): v1.1.10 clients ignore their bodies.
            return Ok(response);
        }
        let (mut parts, body) = response.into_parts();
        let plaintext = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                tracing::error!(%error, "keyline-http: the handler's response body failed");
                return Ok(internal_error());
            }
        };
        let legacy = bytes::<16>(&*self.config.random)
            .and_then(|iv| verified.respond(self.compat, &plaintext, &iv));
        let legacy = match legacy {
            Ok(legacy) => legacy,
            Err(error) => return Ok(answer(Err(error))),
        };
        let headers = &mut parts.headers;
        for name in [
            axum::http::header::CONTENT_TYPE,
            axum::http::header::CONTENT_LENGTH,
            axum::http::header::CONTENT_ENCODING,
            axum::http::header::TRANSFER_ENCODING,
            axum::http::header::AUTHORIZATION,
        ] {
            headers.remove(name);
        }
        headers.remove("content-digest");
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static(crate::compat::TEXT_CONTENT_TYPE),
        );
        match HeaderValue::try_from(legacy.authorization) {
            Ok(value) => {
                headers.insert(axum::http::header::AUTHORIZATION, value);
            }
            Err(_) => return Ok(internal_error()),
        }
        Ok(AxumResponse::from_parts(parts, Body::from(legacy.body)))
    }
}

/// Opens a verified sealed request body (B.11) with the `keyid` and `nonce` of its signature.
fn open_sealed(
    config: &ServerConfig,
    verified: &crate::request::Verified,
    sealed: &[u8],
    now: u64,
) -> Result<(String, Vec<u8>, ReceiverContext)> {
    if verified.peer.scheme != Scheme::KeylineHttpV1 {
        return Err(crate::error::Malformed::Sealed(
            "sealed bodies need keyline-http-v1 signatures",
        )
        .into());
    }
    // The profile admits canonical key ids only, so this is the `keyid` string as signed.
    let keyid = peer_keyid(&verified.peer.key);
    let (content_type, body, context) = open_request(
        sealed,
        |id| config.hpke.key(id, now),
        &keyid,
        &verified.nonce,
    )?;
    if body.len() > config.verify.max_body_bytes {
        return Err(Error::BodyTooLarge {
            len: body.len(),
            limit: config.verify.max_body_bytes,
        });
    }
    Ok((content_type, body, context))
}

/// Opens the `Keyline-Seal` header of a verified body-less request; its plaintext must be
/// empty (`0x0000`).
fn open_seal_header(
    config: &ServerConfig,
    verified: &crate::request::Verified,
    request: &Request,
    now: u64,
) -> Result<ReceiverContext> {
    let value = request
        .headers
        .combined("keyline-seal")
        .ok_or(crate::error::Malformed::MissingField("keyline-seal"))?;
    let sealed = crate::seal::parse_seal_header(&value)?;
    let (content_type, body, context) = open_sealed(config, verified, &sealed, now)?;
    if !content_type.is_empty() || !body.is_empty() {
        return Err(crate::error::Malformed::Sealed("Keyline-Seal carries content").into());
    }
    Ok(context)
}

/// The signed answer to a CORS preflight (B.17): `204`, no content; the caller adds the
/// CORS headers.
fn preflight_response(config: &ServerConfig, request: &Request, now: u64) -> Result<Response> {
    let nonce = config.server_nonce(now)?;
    let mut response = Response::new(204);
    config.sign(&mut response, &RequestBinding::of(request), &nonce)?;
    Ok(response)
}

/// The signed key configuration (B.11): public, `Cache-Control: no-store`.
fn key_config_response(config: &ServerConfig, request: &Request, now: u64) -> Result<Response> {
    let nonce = response_nonce(request).map_or_else(|| config.server_nonce(now), Ok)?;
    let mut response = Response::new(200)
        .with_header("Content-Type", "application/json")
        .with_header("Cache-Control", "no-store");
    if request.method != "HEAD" {
        response.body = config.key_config().to_json();
    }
    config.sign(&mut response, &RequestBinding::of(request), &nonce)?;
    Ok(response)
}

/// The canonical `keyid` of a peer key (`ed25519:…` or `bip340:…`; a legacy key in compat
/// mode: `secp256k1:<hex of 33 bytes>`).
pub fn peer_keyid(key: &PeerKey) -> String {
    match key {
        PeerKey::Ed25519(k) => PublicKey::Ed25519(*k).keyid(),
        PeerKey::Bip340(k) => PublicKey::Bip340(*k).keyid(),
        #[cfg(feature = "compat-crypto-sessions")]
        PeerKey::Secp256k1Compressed(k) => format!("secp256k1:{}", hex::encode(k)),
    }
}

/// The name of a scheme as the demo API reports it: `keyline-http-v1`, `nip98` (or, in
/// compat mode, `crypto-sessions-v1.1.10`).
pub fn scheme_name(scheme: Scheme) -> &'static str {
    scheme.name()
}

async fn whoami(peer: Option<Extension<VerifiedPeer>>) -> AxumResponse {
    match peer {
        Some(Extension(peer)) => axum::Json(serde_json::json!({
            "key": peer_keyid(&peer.key),
            "scheme": scheme_name(peer.scheme),
        }))
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn echo(headers: HeaderMap, body: Bytes) -> AxumResponse {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
    ([(axum::http::header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The demo API, without the layer: `GET /whoami` → `{"key": <keyid>, "scheme":
/// "keyline-http-v1"|"nip98"}` (401 if no [`VerifiedPeer`] is present), `POST /echo` → the
/// body with its content type.
pub fn demo_router() -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .route("/echo", post(echo))
}

/// The demo API behind [`KeylineHttpLayer`]: what `keyline http serve` runs.
pub fn demo_app(config: ServerConfig) -> Router {
    demo_router().layer(KeylineHttpLayer::new(config))
}

/// Serves [`demo_app`] on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, config: ServerConfig) -> Result<()> {
    axum::serve(listener, demo_app(config))
        .await
        .map_err(|e| Error::Transport(e.to_string()))
}

/// Serves [`demo_app`] on `listener` until `shutdown` completes, then finishes the requests in
/// flight.
pub async fn serve_with_shutdown(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, demo_app(config))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Transport(e.to_string()))
}
