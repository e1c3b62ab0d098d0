//! The tokio/axum adapter: HTTP endpoints, WebSocket connections, queues and timers around
//! the sans-IO [`DaemonCore`]s, [`validate_token`] and the [`Issuer`].

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes as BodyBytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use keyline_core::{Clock, SystemClock};
use keyline_sbrp::proto::control::ControlCode;
use keyline_sbrp::proto::relay::{Rejection, control_frame};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};
use zeroize::Zeroizing;

use crate::error::{Error, IssuerError, Result, TokenError};
use crate::issuer::{ClientProof, DaemonStatus, Issuer, PresenceProof};
use crate::limits::{FrameBucket, Limits};
use crate::metrics::Metrics;
use crate::pairing::{Action, Admission, CloseKind, ConnId, DaemonCore, PairState};
use crate::token::{AUDIENCE, KeySet, TokenPolicy, TokenRole, validate_token};

/// Configuration of a relay (and its built-in issuer).
#[non_exhaustive]
pub struct RelayConfig {
    /// The `iss` the relay requires and its issuer signs with. Default `keyline-relay`.
    pub issuer: String,
    /// The audience required in `aud`. Default `sideband-relay`.
    pub audience: String,
    /// The relay's region: tokens with another `region` are refused; `None` accepts any.
    pub region: Option<String>,
    /// Every bound ([`Limits::default`] follows the spec).
    pub limits: Limits,
    /// The `ws://`/`wss://` URL handed out by the issuer. Default: `ws://<listen address>/`.
    pub public_url: Option<String>,
    /// Mount the issuer endpoints (`/v1/presence*`, `/v1/sessions*`). Default `true`. The
    /// JWKS is always published.
    pub issuer_enabled: bool,
    /// Extra trusted keys (a JWKS document) for tokens from another issuer.
    pub trusted_jwks: Option<Value>,
    /// Per-daemon allow-lists of client Ed25519 keys for `POST /v1/sessions`. Daemons not
    /// listed are open to anyone (local use).
    pub allow_lists: HashMap<String, Vec<[u8; 32]>>,
    /// A fixed signing key `(kid, seed)` instead of a fresh random one.
    pub signing_key: Option<(String, Zeroizing<[u8; 32]>)>,
    /// Time source (tests use [`keyline_core::ManualClock`]).
    pub clock: Arc<dyn Clock>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            issuer: "keyline-relay".to_owned(),
            audience: AUDIENCE.to_owned(),
            region: None,
            limits: Limits::default(),
            public_url: None,
            issuer_enabled: true,
            trusted_jwks: None,
            allow_lists: HashMap::new(),
            signing_key: None,
            clock: Arc::new(SystemClock),
        }
    }
}

impl fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("region", &self.region)
            .field("limits", &self.limits)
            .field("public_url", &self.public_url)
            .field("issuer_enabled", &self.issuer_enabled)
            .field("trusted_jwks", &self.trusted_jwks.is_some())
            .field("allow_lists", &self.allow_lists.len())
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|(kid, _)| kid),
            )
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

enum Out {
    Frame(Bytes),
    Close(CloseKind),
    GoingAway,
}

/// The relay's side of one connection's send queue.
struct ConnHandle {
    tx: mpsc::Sender<Out>,
    queued_frames: Arc<AtomicUsize>,
    queued_bytes: Arc<AtomicUsize>,
    kill: Arc<Notify>,
    max_frames: usize,
    max_bytes: usize,
}

impl ConnHandle {
    fn send(&self, frame: Bytes) {
        let len = frame.len();
        let frames = self.queued_frames.fetch_add(1, Ordering::AcqRel) + 1;
        let bytes = self.queued_bytes.fetch_add(len, Ordering::AcqRel) + len;
        if frames > self.max_frames || bytes > self.max_bytes {
            self.queued_frames.fetch_sub(1, Ordering::AcqRel);
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            // Slow consumer: `backpressure`, then close (spec 8.6). Never a silent drop.
            self.kill.notify_one();
            return;
        }
        if self.tx.try_send(Out::Frame(frame)).is_err() {
            self.queued_frames.fetch_sub(1, Ordering::AcqRel);
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            self.kill.notify_one();
        }
    }

    fn close(&self, kind: CloseKind) {
        // The channel has slack beyond `max_frames` for closes.
        if self.tx.try_send(Out::Close(kind)).is_err() {
            self.kill.notify_one();
        }
    }
}

/// State shared by every handler and connection task.
struct Shared {
    limits: Limits,
    policy: TokenPolicy,
    clock: Arc<dyn Clock>,
    issuer_enabled: bool,
    issuer: Mutex<Issuer>,
    extra_keys: KeySet,
    keys: RwLock<KeySet>,
    registry: Mutex<HashMap<String, Arc<Mutex<DaemonCore>>>>,
    conns: Mutex<HashMap<ConnId, ConnHandle>>,
    next_conn: AtomicU64,
    connections: AtomicUsize,
    metrics: Arc<Metrics>,
    public_url: OnceLock<String>,
}

impl Shared {
    fn refresh_keys(&self) {
        let mut keys = lock(&self.issuer).key_set();
        keys.extend(&self.extra_keys);
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
    }

    fn execute(&self, actions: &[Action]) {
        if actions.is_empty() {
            return;
        }
        let conns = lock(&self.conns);
        for action in actions {
            match action {
                Action::Send { conn, frame } => {
                    if let Some(handle) = conns.get(conn) {
                        handle.send(frame.clone());
                    }
                }
                Action::Close { conn, kind } => {
                    if let Some(handle) = conns.get(conn) {
                        handle.close(*kind);
                    }
                }
            }
        }
    }

    /// Runs `f` on a core and executes its actions while the core is locked, so actions for
    /// one daemon are queued in the order the core produced them.
    fn drive(
        &self,
        core: &Mutex<DaemonCore>,
        f: impl FnOnce(&mut DaemonCore) -> Vec<Action>,
    ) -> Vec<Action> {
        let mut guard = lock(core);
        let actions = f(&mut guard);
        self.execute(&actions);
        actions
    }

    fn core(&self, daemon_id: &str) -> Option<Arc<Mutex<DaemonCore>>> {
        lock(&self.registry).get(daemon_id).cloned()
    }

    fn core_or_insert(&self, daemon_id: &str) -> Option<Arc<Mutex<DaemonCore>>> {
        let mut registry = lock(&self.registry);
        if let Some(core) = registry.get(daemon_id) {
            return Some(core.clone());
        }
        if registry.len() >= self.limits.max_daemons {
            return None;
        }
        let core = Arc::new(Mutex::new(DaemonCore::new(
            &self.limits,
            self.metrics.clone(),
        )));
        registry.insert(daemon_id.to_owned(), core.clone());
        Some(core)
    }

    fn status(&self, daemon_id: &str) -> DaemonStatus {
        match self.core(daemon_id) {
            None => DaemonStatus::Unknown,
            Some(core) if lock(&core).is_online() => DaemonStatus::Online,
            Some(_) => DaemonStatus::Offline,
        }
    }

    fn url(&self) -> String {
        self.public_url.get().cloned().unwrap_or_default()
    }

    fn sweep(&self) {
        let now = self.clock.now();
        let now_unix = self.clock.unix_now();
        let cores: Vec<Arc<Mutex<DaemonCore>>> = lock(&self.registry).values().cloned().collect();
        for core in cores {
            self.drive(&core, |c| c.on_tick(now, now_unix));
        }
        lock(&self.issuer).sweep(now);
    }

    fn pairing_gauge(&self) -> [(&'static str, u64); 3] {
        let cores: Vec<Arc<Mutex<DaemonCore>>> = lock(&self.registry).values().cloned().collect();
        let mut counts = [0u64; 3];
        for core in cores {
            let core = lock(&core);
            for (i, state) in [PairState::Paired, PairState::Paused, PairState::Pending]
                .into_iter()
                .enumerate()
            {
                counts[i] += core.count_in_state(state) as u64;
            }
        }
        [
            ("paired", counts[0]),
            ("paused", counts[1]),
            ("pending", counts[2]),
        ]
    }
}

/// A relay: the WebSocket endpoint, its issuer and its metrics. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    shared: Arc<Shared>,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("issuer", &self.shared.policy.issuer)
            .field("kids", &self.kids())
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// Builds a relay from its configuration.
    pub fn new(config: RelayConfig) -> Result<Relay> {
        if config.issuer.is_empty() {
            return Err(Error::Config("issuer must not be empty".into()));
        }
        if config.limits.send_queue_frames == 0 || config.limits.max_message < 13 {
            return Err(Error::Config(
                "limits.send_queue_frames must be ≥ 1 and limits.max_message ≥ 13".into(),
            ));
        }
        let mut issuer = Issuer::new(config.issuer.clone(), config.limits.clone())?;
        if let Some((kid, seed)) = &config.signing_key {
            issuer.install_key(kid.clone(), seed);
            // Publish only the configured key.
            issuer.retain_current();
        }
        issuer.set_region(config.region.clone());
        issuer.set_audience(config.audience.clone());
        for (daemon_id, keys) in &config.allow_lists {
            issuer.set_allow_list(daemon_id, Some(keys.clone()));
        }
        let mut extra_keys = KeySet::new();
        if let Some(jwks) = &config.trusted_jwks {
            extra_keys.extend_from_jwks(jwks);
        }
        let mut policy = TokenPolicy::new(config.issuer.clone());
        policy.audience = config.audience.clone();
        policy.region = config.region.clone();
        policy.clock_skew = config.limits.clock_skew;
        policy.client_max_ttl = config.limits.client_max_ttl;
        policy.client_warn_ttl = config.limits.client_warn_ttl;
        policy.max_token_len = config.limits.max_token_len;
        policy.max_daemon_id_len = config.limits.max_daemon_id_len;
        let shared = Arc::new(Shared {
            limits: config.limits,
            policy,
            clock: config.clock,
            issuer_enabled: config.issuer_enabled,
            issuer: Mutex::new(issuer),
            extra_keys,
            keys: RwLock::new(KeySet::new()),
            registry: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
            metrics: Arc::new(Metrics::default()),
            public_url: OnceLock::new(),
        });
        if let Some(url) = config.public_url {
            let _ = shared.public_url.set(url);
        }
        shared.refresh_keys();
        Ok(Relay { shared })
    }

    /// Issuer key rotation: a fresh key signs from now on, the previous one stays published
    /// and accepted, older ones are dropped. Returns the new `kid`.
    pub fn rotate_keys(&self) -> Result<String> {
        let kid = lock(&self.shared.issuer).rotate()?;
        self.shared.refresh_keys();
        Ok(kid)
    }

    /// Published kids, oldest first.
    pub fn kids(&self) -> Vec<String> {
        lock(&self.shared.issuer).kids()
    }

    /// The JWKS document.
    pub fn jwks(&self) -> Value {
        lock(&self.shared.issuer).jwks()
    }

    /// Sets (or with `None` removes) the client allow-list of `daemon_id`.
    pub fn set_allow_list(&self, daemon_id: &str, keys: Option<Vec<[u8; 32]>>) {
        lock(&self.shared.issuer).set_allow_list(daemon_id, keys);
    }

    /// Operator action: forget the identity key registered for `daemon_id`.
    pub fn reset_identity(&self, daemon_id: &str) -> bool {
        lock(&self.shared.issuer).reset_identity(daemon_id)
    }

    /// Signs arbitrary claims with the current issuer key (tests, tooling).
    pub fn sign_claims(&self, claims: &Value) -> Result<String> {
        Ok(lock(&self.shared.issuer).sign(claims)?)
    }

    /// The relay's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Whether a daemon with this id is connected.
    pub fn is_online(&self, daemon_id: &str) -> bool {
        self.shared.status(daemon_id) == DaemonStatus::Online
    }

    /// The axum router (all endpoints).
    pub fn router(&self) -> Router {
        let mut router = Router::new()
            .route("/", get(relay_endpoint))
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics))
            .route("/.well-known/jwks.json", get(jwks));
        if self.shared.issuer_enabled {
            router = router
                .route("/v1/presence/challenge", post(presence_challenge))
                .route("/v1/presence", post(presence))
                .route("/v1/sessions/challenge", post(session_challenge))
                .route("/v1/sessions", post(sessions));
        }
        router
            .layer(DefaultBodyLimit::max(self.shared.limits.max_request_body))
            .with_state(self.shared.clone())
    }

    /// Serves on `listener` until `shutdown` completes, then closes every WebSocket
    /// (close code 1001) and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let addr = listener.local_addr()?;
        let _ = self.shared.public_url.set(default_url(addr));
        let sweeper = {
            let shared = self.shared.clone();
            let every = self.shared.limits.sweep_interval.max(Duration::from_millis(10));
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    shared.sweep();
                }
            })
        };
        let listener = crate::listener::DeadlineListener {
            inner: listener,
            timeout: self.shared.limits.pre_upgrade_timeout,
        };
        let result = axum::serve(listener, self.router().into_make_service())
            .with_graceful_shutdown(shutdown)
            .await;
        sweeper.abort();
        {
            let conns = lock(&self.shared.conns);
            for handle in conns.values() {
                let _ = handle.tx.try_send(Out::GoingAway);
            }
        }
        result.map_err(Error::Io)
    }
}

fn default_url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

/// Runs a relay with `config` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: RelayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    Relay::new(config)?.serve(listener, shutdown).await
}

// ---------------------------------------------------------------------------------------
// HTTP helpers

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({"error": code, "message": message}))).into_response()
}

fn issuer_error(err: &IssuerError) -> Response {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_error(status, err.code(), &err.to_string())
}

/// A request body that is not the expected JSON: 400 `bad_request`.
struct BadBody;

impl IntoResponse for BadBody {
    fn into_response(self) -> Response {
        json_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "request body must be a JSON object with the documented fields",
        )
    }
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, BadBody> {
    serde_json::from_slice(body).map_err(|_| BadBody)
}

async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let text = shared.metrics.render(shared.pairing_gauge());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    let doc = lock(&shared.issuer).jwks();
    axum::Json(doc).into_response()
}

#[derive(Deserialize)]
struct PresenceChallengeRequest {
    daemon_id: String,
    identity_key: String,
}

#[derive(Deserialize)]
struct PresenceRequest {
    daemon_id: String,
    identity_key: String,
    challenge: String,
    signature: String,
    #[serde(default)]
    resumable: bool,
}

#[derive(Deserialize)]
struct SessionChallengeRequest {
    daemon_id: String,
    client_key: String,
}

#[derive(Deserialize)]
struct SessionRequest {
    daemon_id: String,
    client_key: Option<String>,
    challenge: Option<String>,
    signature: Option<String>,
}

async fn presence_challenge(State(shared): State<Arc<Shared>>, body: BodyBytes) -> Response {
    let req: PresenceChallengeRequest = match parse_body(&body) {
        Ok(req) => req,
        Err(bad) => return bad.into_response(),
    };
    let now = shared.clock.now();
    let result = lock(&shared.issuer).presence_challenge(&req.daemon_id, &req.identity_key, now);
    match result {
        Ok(grant) => axum::Json(json!({"challenge": grant.challenge, "expires_in": grant.expires_in}))
            .into_response(),
        Err(err) => issuer_error(&err),
    }
}

async fn presence(State(shared): State<Arc<Shared>>, body: BodyBytes) -> Response {
    let req: PresenceRequest = match parse_body(&body) {
        Ok(req) => req,
        Err(bad) => return bad.into_response(),
    };
    let now = shared.clock.now();
    let now_unix = shared.clock.unix_now();
    let result = lock(&shared.issuer).presence(
        PresenceProof {
            daemon_id: &req.daemon_id,
            identity_key: &req.identity_key,
            challenge: &req.challenge,
            signature: &req.signature,
            resumable: req.resumable,
        },
        now,
        now_unix,
    );
    match result {
        Ok(grant) => {
            // The relay now knows this daemon id (offline until it connects).
            if shared.core_or_insert(&req.daemon_id).is_none() {
                return issuer_error(&IssuerError::TooMany);
            }
            axum::Json(json!({
                "token": grant.token,
                "url": shared.url(),
                "expires_in": grant.expires_in,
            }))
            .into_response()
        }
        Err(err) => issuer_error(&err),
    }
}

async fn session_challenge(State(shared): State<Arc<Shared>>, body: BodyBytes) -> Response {
    let req: SessionChallengeRequest = match parse_body(&body) {
        Ok(req) => req,
        Err(bad) => return bad.into_response(),
    };
    let now = shared.clock.now();
    let result = lock(&shared.issuer).session_challenge(&req.daemon_id, &req.client_key, now);
    match result {
        Ok(grant) => axum::Json(json!({"challenge": grant.challenge, "expires_in": grant.expires_in}))
            .into_response(),
        Err(err) => issuer_error(&err),
    }
}

async fn sessions(State(shared): State<Arc<Shared>>, body: BodyBytes) -> Response {
    let req: SessionRequest = match parse_body(&body) {
        Ok(req) => req,
        Err(bad) => return bad.into_response(),
    };
    let status = shared.status(&req.daemon_id);
    let proof = match (&req.client_key, &req.challenge, &req.signature) {
        (Some(client_key), Some(challenge), Some(signature)) => Some(ClientProof {
            client_key,
            challenge,
            signature,
        }),
        (None, None, None) => None,
        _ => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "client_key, challenge and signature go together",
            );
        }
    };
    let now = shared.clock.now();
    let now_unix = shared.clock.unix_now();
    let result = lock(&shared.issuer).session(&req.daemon_id, status, proof, now, now_unix);
    match result {
        Ok(grant) => axum::Json(json!({
            "token": grant.token,
            "sid": grant.sid,
            "url": shared.url(),
        }))
        .into_response(),
        Err(err) => issuer_error(&err),
    }
}

// ---------------------------------------------------------------------------------------
// The relay endpoint

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The token from `Authorization: Bearer` (preferred) or `?token=`. Never logged.
fn request_token(headers: &HeaderMap, uri: &Uri) -> Option<Zeroizing<String>> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))?;
        return Some(Zeroizing::new(token.trim().to_owned()));
    }
    let query = Query::<TokenQuery>::try_from_uri(uri).ok()?;
    query.0.token.map(Zeroizing::new)
}

/// One slot of the relay-wide connection cap; released on drop.
struct ConnSlot(Arc<Shared>);

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

enum ConnRole {
    Client {
        core: Option<Arc<Mutex<DaemonCore>>>,
        sid: u64,
    },
    Daemon {
        core: Arc<Mutex<DaemonCore>>,
        resumable: bool,
        cap: Option<u64>,
    },
}

async fn relay_endpoint(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let now = shared.clock.now();
    let now_unix = shared.clock.unix_now();
    let token = request_token(&headers, &uri);
    let validated = {
        let keys = shared.keys.read().unwrap_or_else(PoisonError::into_inner);
        match &token {
            None => Err(TokenError::Missing),
            Some(token) => validate_token(token, &keys, &shared.policy, now_unix),
        }
    };
    let valid = match validated {
        Ok(valid) => valid,
        Err(reason) => {
            shared.metrics.token_rejected(reason);
            tracing::debug!(reason = reason.reason(), "relay token rejected");
            return json_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing, invalid or expired relay token",
            );
        }
    };
    if valid.warn_ttl {
        tracing::warn!("client token lifetime above the warning threshold (120 s)");
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let claims = valid.claims;
    // Connection cap (P4).
    if shared.connections.fetch_add(1, Ordering::AcqRel) >= shared.limits.max_connections {
        shared.connections.fetch_sub(1, Ordering::AcqRel);
        shared.metrics.too_many.fetch_add(1, Ordering::Relaxed);
        return json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections",
            "the relay is at its connection limit",
        );
    }
    let slot = ConnSlot(shared.clone());
    let role = match claims.role {
        TokenRole::Client => {
            let sid = claims.sid.unwrap_or_default();
            let core = shared.core(&claims.daemon_id);
            if let Some(core) = &core {
                match lock(core).admit_client(sid, claims.exp, now, now_unix) {
                    Admission::Admitted => {}
                    Admission::SidInUse => {
                        shared.metrics.sid_in_use.fetch_add(1, Ordering::Relaxed);
                        return json_error(
                            StatusCode::CONFLICT,
                            "sid_in_use",
                            "this session id is in use or was used recently",
                        );
                    }
                    Admission::TooManySessions => {
                        shared.metrics.too_many.fetch_add(1, Ordering::Relaxed);
                        return json_error(
                            StatusCode::TOO_MANY_REQUESTS,
                            "too_many_sessions",
                            "the daemon is at its session limit",
                        );
                    }
                }
            }
            ConnRole::Client { core, sid }
        }
        TokenRole::Daemon => {
            let Some(core) = shared.core_or_insert(&claims.daemon_id) else {
                shared.metrics.too_many.fetch_add(1, Ordering::Relaxed);
                return json_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_connections",
                    "the relay tracks too many daemons",
                );
            };
            ConnRole::Daemon {
                core,
                resumable: claims.resumable,
                cap: claims.concurrent_sessions,
            }
        }
    };
    let limits = &shared.limits;
    let write_buffer = limits.max_message.saturating_add(1024);
    let upgrade = upgrade
        .max_message_size(limits.max_message)
        .max_frame_size(limits.max_message)
        .write_buffer_size(0)
        .max_write_buffer_size(write_buffer.saturating_mul(2));
    let task_shared = shared.clone();
    upgrade.on_upgrade(move |socket| async move {
        run_connection(task_shared, socket, role, slot).await;
    })
}

fn is_capacity_error(err: &axum::Error) -> bool {
    use std::error::Error as _;
    matches!(
        err.source()
            .and_then(|inner| inner.downcast_ref::<tungstenite::Error>()),
        Some(tungstenite::Error::Capacity(_))
    )
}

async fn run_connection(shared: Arc<Shared>, socket: WebSocket, role: ConnRole, slot: ConnSlot) {
    let limits = shared.limits.clone();
    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (sink, stream) = socket.split();
    let (tx, rx) = mpsc::channel(limits.send_queue_frames.saturating_add(4));
    let queued_frames = Arc::new(AtomicUsize::new(0));
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let kill = Arc::new(Notify::new());
    let (done_tx, done_rx) = watch::channel(false);
    lock(&shared.conns).insert(
        conn,
        ConnHandle {
            tx,
            queued_frames: queued_frames.clone(),
            queued_bytes: queued_bytes.clone(),
            kill: kill.clone(),
            max_frames: limits.send_queue_frames,
            max_bytes: limits.send_queue_bytes,
        },
    );
    let gauge = match role {
        ConnRole::Client { .. } => &shared.metrics.client_connections,
        ConnRole::Daemon { .. } => &shared.metrics.daemon_connections,
    };
    gauge.fetch_add(1, Ordering::Relaxed);
    let writer = tokio::spawn(write_loop(
        sink,
        rx,
        WriterState {
            queued_frames,
            queued_bytes,
            kill,
            done: done_tx,
            limits: limits.clone(),
            metrics: shared.metrics.clone(),
        },
    ));

    let now = shared.clock.now();
    let closed_by_core = match &role {
        ConnRole::Client { core: Some(core), sid } => {
            let actions = shared.drive(core, |c| c.client_connected(conn, *sid));
            closes(&actions, conn)
        }
        ConnRole::Client { core: None, sid } => {
            // P3.
            let actions = [
                Action::Send {
                    conn,
                    frame: Bytes::from(control_frame(ControlCode::DaemonNotFound, *sid)),
                },
                Action::Close {
                    conn,
                    kind: CloseKind::AfterControl,
                },
            ];
            shared.execute(&actions);
            true
        }
        ConnRole::Daemon {
            core,
            resumable,
            cap,
        } => {
            tracing::debug!("daemon connected");
            let actions = shared.drive(core, |c| c.daemon_connected(conn, *resumable, *cap, now));
            closes(&actions, conn)
        }
    };
    if !closed_by_core {
        read_loop(&shared, conn, &role, stream, done_rx).await;
    }

    // The connection is over: tell the core (P8/P9/P15/P18/P22/P23).
    let now = shared.clock.now();
    match &role {
        ConnRole::Client {
            core: Some(core),
            sid,
        } => {
            shared.drive(core, |c| c.client_closed(conn, *sid));
        }
        ConnRole::Client { core: None, .. } => {}
        ConnRole::Daemon { core, .. } => {
            shared.drive(core, |c| c.daemon_closed(conn, now));
        }
    }
    // Dropping the handle ends the writer once it has written what is queued.
    lock(&shared.conns).remove(&conn);
    let _ = writer.await;
    gauge.fetch_sub(1, Ordering::Relaxed);
    drop(slot);
}

fn closes(actions: &[Action], conn: ConnId) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Close { conn: c, .. } if *c == conn))
}

async fn read_loop(
    shared: &Arc<Shared>,
    conn: ConnId,
    role: &ConnRole,
    mut stream: SplitStream<WebSocket>,
    mut done: watch::Receiver<bool>,
) {
    let limits = &shared.limits;
    let mut bucket = FrameBucket::new(limits.frames_per_second, limits.frame_burst);
    let mut last_rate_limited: Option<tokio::time::Instant> = None;
    let silence = limits
        .keepalive_interval
        .saturating_mul(limits.keepalive_missed.max(1));
    let mut deadline = tokio::time::Instant::now() + silence;
    loop {
        // Read-side pacing (spec 8.6): stop reading until a token is available.
        if let Err(wait) = bucket.take(std::time::Instant::now()) {
            let now = tokio::time::Instant::now();
            if last_rate_limited.is_none_or(|t| now.duration_since(t) >= limits.rate_limited_window)
            {
                last_rate_limited = Some(now);
                shared.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
                shared.execute(&[Action::Send {
                    conn,
                    frame: Bytes::from(control_frame(ControlCode::RateLimited, 0)),
                }]);
            }
            tokio::select! {
                _ = done.wait_for(|d| *d) => return,
                () = tokio::time::sleep(wait) => {}
            }
            // Pacing is not silence.
            deadline = deadline.max(tokio::time::Instant::now() + silence);
            continue;
        }
        let message = tokio::select! {
            _ = done.wait_for(|d| *d) => return,
            () = tokio::time::sleep_until(deadline) => {
                shared.metrics.keepalive_closes.fetch_add(1, Ordering::Relaxed);
                shared.execute(&[Action::Close { conn, kind: CloseKind::AfterControl }]);
                return;
            }
            message = stream.next() => message,
        };
        deadline = tokio::time::Instant::now() + silence;
        let actions = match message {
            None => return,
            Some(Err(err)) if is_capacity_error(&err) => {
                reject(shared, conn, role, Rejection::oversize_message())
            }
            Some(Err(_)) => return,
            Some(Ok(Message::Binary(bytes))) => match role {
                ConnRole::Client {
                    core: Some(core),
                    sid,
                } => shared.drive(core, |c| c.on_client_message(conn, *sid, bytes)),
                ConnRole::Client { core: None, .. } => return,
                ConnRole::Daemon { core, .. } => {
                    let now = shared.clock.now();
                    shared.drive(core, |c| c.on_daemon_message(conn, bytes, now))
                }
            },
            Some(Ok(Message::Text(_))) => reject(shared, conn, role, Rejection::text_message()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) => return,
        };
        if closes(&actions, conn) {
            return;
        }
    }
}

fn reject(shared: &Arc<Shared>, conn: ConnId, role: &ConnRole, rejection: Rejection) -> Vec<Action> {
    match role {
        ConnRole::Client {
            core: Some(core),
            sid,
        } => shared.drive(core, |c| c.reject_client(conn, *sid, rejection)),
        ConnRole::Client { core: None, .. } => {
            let actions = vec![
                Action::Send {
                    conn,
                    frame: Bytes::from(rejection.control_frame()),
                },
                Action::Close {
                    conn,
                    kind: CloseKind::AfterControl,
                },
            ];
            shared.execute(&actions);
            actions
        }
        ConnRole::Daemon { core, .. } => {
            let now = shared.clock.now();
            shared.drive(core, |c| c.reject_daemon(conn, rejection, now))
        }
    }
}

struct WriterState {
    queued_frames: Arc<AtomicUsize>,
    queued_bytes: Arc<AtomicUsize>,
    kill: Arc<Notify>,
    done: watch::Sender<bool>,
    limits: Limits,
    metrics: Arc<Metrics>,
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Out>,
    state: WriterState,
) {
    let timeout = state.limits.write_timeout;
    let interval = state.limits.keepalive_interval.max(Duration::from_millis(10));
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let out = tokio::select! {
            biased;
            () = state.kill.notified() => {
                // Slow consumer: the Control goes out directly (bounded by the write
                // timeout), ahead of the queue; then close.
                state.metrics.backpressure_closes.fetch_add(1, Ordering::Relaxed);
                let frame = Bytes::from(control_frame(ControlCode::Backpressure, 0));
                let _ = tokio::time::timeout(timeout, sink.send(Message::Binary(frame))).await;
                let _ = tokio::time::timeout(timeout, sink.send(Message::Close(None))).await;
                break;
            }
            out = rx.recv() => out,
            _ = ping.tick() => {
                match tokio::time::timeout(timeout, sink.send(Message::Ping(Bytes::new()))).await {
                    Ok(Ok(())) => continue,
                    Ok(Err(_)) => break,
                    Err(_) => {
                        state.metrics.write_timeout_closes.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
        };
        let message = match out {
            None => break,
            Some(Out::Frame(frame)) => {
                state.queued_frames.fetch_sub(1, Ordering::AcqRel);
                state.queued_bytes.fetch_sub(frame.len(), Ordering::AcqRel);
                Message::Binary(frame)
            }
            Some(Out::Close(CloseKind::AfterControl)) => Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "".into(),
            })),
            Some(Out::Close(CloseKind::Replaced)) => Message::Close(Some(CloseFrame {
                code: 1008,
                reason: "".into(),
            })),
            Some(Out::GoingAway) => Message::Close(Some(CloseFrame {
                code: 1001,
                reason: "".into(),
            })),
        };
        let is_close = matches!(message, Message::Close(_));
        match tokio::time::timeout(timeout, sink.send(message)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break,
            Err(_) => {
                state.metrics.write_timeout_closes.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        if is_close {
            break;
        }
    }
    let _ = state.done.send(true);
    let _ = tokio::time::timeout(timeout, sink.close()).await;
}
