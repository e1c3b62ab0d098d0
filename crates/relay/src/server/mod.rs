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
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
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
use crate::pairing::{Action, CloseKind, ConnId, DaemonCore};
use crate::token::{AUDIENCE, KeySet, TokenPolicy, TokenRole, validate_token};
use keyline_sbrp::proto::pairing::{Admission, PairingState};

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

mod conn;
mod http;

use conn::{ConnHandle, Out};
use http::{
    healthz, jwks, metrics, presence, presence_challenge, relay_endpoint, session_challenge,
    sessions,
};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
            for (i, state) in [
                PairingState::Paired,
                PairingState::Paused,
                PairingState::Pending,
            ]
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
                .merge(
                    // Browsers fetch session tokens from pages of any origin (no cookies or
                    // credentials are involved: a session token only lets its holder
                    // handshake with the daemon, whose key the client pins).
                    Router::new()
                        .route(
                            "/v1/sessions/challenge",
                            post(session_challenge).options(cors_preflight),
                        )
                        .route("/v1/sessions", post(sessions).options(cors_preflight))
                        .layer(axum::middleware::map_response(allow_any_origin)),
                );
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
            let every = self
                .shared
                .limits
                .sweep_interval
                .max(Duration::from_millis(10));
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

/// CORS preflight of the session endpoints: POST with a JSON body, no credentials.
async fn cors_preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_METHODS, "POST"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"),
            (header::ACCESS_CONTROL_MAX_AGE, "600"),
        ],
    )
        .into_response()
}

/// `Access-Control-Allow-Origin: *` on the session endpoints' responses (never with
/// credentials).
async fn allow_any_origin(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    response
}
