//! The operator page (spec §11): keys, connections and their grants, pending approvals and the
//! audit log, over HTTP on loopback, for the bunker's operator.
//!
//! * **Authentication**: the operator token (32 random bytes, base64url) as
//!   `Authorization: Bearer <token>`, or — for the browser — a session cookie obtained once
//!   with `POST /api/login {"token"}` (`HttpOnly`, `SameSite=Strict`, `Path=/`, 12 h). Only the
//!   token's SHA-256 is kept; comparisons are constant time.
//! * **Browser hardening**: the `Host` header must be one of the configured names (DNS
//!   rebinding); every state-changing request is `POST`/`PUT`/`DELETE` with JSON and the
//!   header `X-Keyline-Operator: 1` (cross-site forms cannot send it); no CORS headers are ever
//!   sent; `Content-Security-Policy: default-src 'self'` (the page is plain HTML plus one
//!   script, no inline code); responses are not cached and not framed.
//! * **Data**: everything comes from an [`OperatorBackend`] (the bunker implements it);
//!   operator actions are audited there.
//!
//! Routes: `GET /` and `GET /approve/{id}` (the page; `auth_url` links point at the second),
//! `GET /app.js`, `POST /api/login`, `POST /api/logout`, `GET /api/keys`,
//! `GET /api/connections`, `PUT /api/connections/{pubkey}/grants`,
//! `DELETE /api/connections/{pubkey}` (revoke, immediate), `GET /api/approvals`,
//! `GET /api/approvals/{id}`, `POST /api/approvals/{id}` `{"decision": "allow_once" |
//! "allow_always" | "allow_for" | "deny", "duration": seconds}`, `GET /api/audit?before=&limit=`,
//! `POST /api/bunker-uris`, `POST /api/nostrconnect` `{"uri": "nostrconnect://…"}`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::Result;

/// The page's HTML (also served for `/approve/{id}`).
const INDEX_HTML: &str = include_str!("operator/index.html");
/// The page's one script.
const APP_JS: &str = include_str!("operator/app.js");

/// Header every state-changing request must carry.
pub const CSRF_HEADER: &str = "x-keyline-operator";
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "keyline_operator";
/// How long a browser session lasts (spec §11: 12 h).
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Browser sessions kept at once; the oldest is dropped beyond.
pub const MAX_SESSIONS: usize = 64;
/// Largest request body the operator API reads.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest page of audit entries.
pub const MAX_AUDIT_PAGE: usize = 500;

/// What the operator decides for a pending approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalDecision {
    /// Allow this one request.
    AllowOnce,
    /// Allow this request and grant the method (and kind) to the client from now on.
    AllowAlways,
    /// Allow this request and grant the method (and kind) for the given time.
    AllowFor(Duration),
    /// Refuse the request.
    Deny,
}

/// The bunker state the page shows and changes. Every method that changes state records an
/// audit entry with actor `operator`.
pub trait OperatorBackend: Send + Sync + 'static {
    /// Keys: npub, threshold, shares, nodes and their health.
    fn keys(&self) -> impl Future<Output = Result<Value>> + Send;
    /// Connections with their grants.
    fn connections(&self) -> impl Future<Output = Result<Value>> + Send;
    /// Replaces a client's grants (the JSON array the page edits). `false`: no such client.
    fn set_grants(&self, client: &str, grants: Value) -> impl Future<Output = Result<bool>> + Send;
    /// Revokes a client at once. `false`: no such client.
    fn revoke(&self, client: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Pending approvals (with their deadlines).
    fn approvals(&self) -> impl Future<Output = Result<Value>> + Send;
    /// One approval, pending or decided; `None` if unknown.
    fn approval(&self, id: &str) -> impl Future<Output = Result<Option<Value>>> + Send;
    /// Decides a pending approval; `false` if it is unknown, decided or expired.
    fn decide(
        &self,
        id: &str,
        decision: ApprovalDecision,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Audit entries, newest first, older than `before` (a sequence number) if given.
    fn audit(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> impl Future<Output = Result<Value>> + Send;
    /// Mints a new `bunker://` URI with a fresh single-use secret.
    fn mint_bunker_uri(&self) -> impl Future<Output = Result<String>> + Send;
    /// Accepts a client's `nostrconnect://` URI (spec §3.3, client-initiated flow); returns
    /// `{"client_pubkey"}`.
    fn nostrconnect(&self, uri: &str) -> impl Future<Output = Result<Value>> + Send;
}

/// How the operator page is reached and protected.
#[derive(Clone)]
pub struct OperatorConfig {
    /// SHA-256 of the operator token.
    pub token_sha256: [u8; 32],
    /// Accepted `Host` header values (e.g. `127.0.0.1:7090`, `localhost:7090`).
    pub allowed_hosts: Vec<String>,
}

impl std::fmt::Debug for OperatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorConfig")
            .field("allowed_hosts", &self.allowed_hosts)
            .finish_non_exhaustive()
    }
}

impl OperatorConfig {
    /// Accepts the `Host` forms of a loopback listen address: `IP:PORT`, and `localhost:PORT`
    /// for 127.0.0.1 / ::1.
    pub fn for_listen(token_sha256: [u8; 32], listen: SocketAddr) -> Self {
        let mut allowed_hosts = vec![listen.to_string()];
        if listen.ip().is_loopback() {
            allowed_hosts.push(format!("localhost:{}", listen.port()));
        }
        OperatorConfig {
            token_sha256,
            allowed_hosts,
        }
    }
}

/// A new operator token: (the token to show once, its SHA-256 to keep).
pub fn new_token() -> Result<(Zeroizing<String>, [u8; 32])> {
    let mut raw = Zeroizing::new([0u8; 32]);
    getrandom::fill(raw.as_mut_slice()).map_err(|_| crate::Error::Internal {
        reason: "the operating system's random number generator failed",
    })?;
    let token = Zeroizing::new(URL_SAFE_NO_PAD.encode(raw.as_slice()));
    Ok((token.clone(), token_hash(&token)))
}

/// SHA-256 of a token's text.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

struct Shared<B> {
    backend: Arc<B>,
    config: OperatorConfig,
    /// SHA-256 of session id → expiry.
    sessions: Mutex<HashMap<[u8; 32], Instant>>,
}

/// The operator page's router.
pub fn router<B: OperatorBackend>(backend: Arc<B>, config: OperatorConfig) -> Router {
    let shared = Arc::new(Shared {
        backend,
        config,
        sessions: Mutex::new(HashMap::new()),
    });
    let api = Router::new()
        .route("/api/keys", get(keys::<B>))
        .route("/api/connections", get(connections::<B>))
        .route("/api/connections/{client}/grants", put(set_grants::<B>))
        .route(
            "/api/connections/{client}",
            axum::routing::delete(revoke::<B>),
        )
        .route("/api/approvals", get(approvals::<B>))
        .route("/api/approvals/{id}", get(approval::<B>).post(decide::<B>))
        .route("/api/audit", get(audit::<B>))
        .route("/api/bunker-uris", post(mint::<B>))
        .route("/api/nostrconnect", post(nostrconnect::<B>))
        .route("/api/logout", post(logout::<B>))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            require_operator::<B>,
        ));
    Router::new()
        .route("/", get(page))
        .route("/approve/{id}", get(page))
        .route("/app.js", get(script))
        .route("/api/login", post(login::<B>))
        .merge(api)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            guard::<B>,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": code, "message": message})),
    )
        .into_response()
}

/// Host check, CSRF header on state-changing requests, security headers on every response.
async fn guard<B: OperatorBackend>(
    State(shared): State<Arc<Shared<B>>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let mut response = if !shared.config.allowed_hosts.iter().any(|h| h == host) {
        error(
            StatusCode::MISDIRECTED_REQUEST,
            "bad_host",
            "this Host is not served here",
        )
    } else if !matches!(*request.method(), Method::GET | Method::HEAD)
        && request
            .headers()
            .get(CSRF_HEADER)
            .is_none_or(|v| v.as_bytes() != b"1")
    {
        error(
            StatusCode::FORBIDDEN,
            "missing_header",
            "state-changing requests need the X-Keyline-Operator: 1 header",
        )
    } else {
        next.run(request).await
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The operator token (bearer) or a live session cookie.
async fn require_operator<B: OperatorBackend>(
    State(shared): State<Arc<Shared<B>>>,
    request: Request,
    next: Next,
) -> Response {
    if is_operator(&shared, request.headers()) {
        next.run(request).await
    } else {
        error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "log in with the operator token",
        )
    }
}

fn is_operator<B>(shared: &Shared<B>, headers: &HeaderMap) -> bool {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return bool::from(token_hash(token.trim()).ct_eq(&shared.config.token_sha256));
    }
    let Some(session) = session_cookie(headers) else {
        return false;
    };
    let id = token_hash(session);
    let now = Instant::now();
    let mut sessions = lock(&shared.sessions);
    sessions.retain(|_, expiry| *expiry > now);
    sessions.keys().any(|k| bool::from(k.ct_eq(&id)))
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(SESSION_COOKIE)
                .and_then(|r| r.strip_prefix('='))
        })
}

async fn page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
        .into_response()
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

async fn login<B: OperatorBackend>(
    State(shared): State<Arc<Shared<B>>>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(login) = serde_json::from_slice::<Login>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "expected {\"token\"}",
        );
    };
    let login = Zeroizing::new(login.token);
    if !bool::from(token_hash(login.trim()).ct_eq(&shared.config.token_sha256)) {
        tracing::warn!("operator login with a wrong token");
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong operator token",
        );
    }
    let session = match new_token() {
        Ok((session, _)) => session,
        Err(_) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "no randomness",
            );
        }
    };
    {
        let mut sessions = lock(&shared.sessions);
        let now = Instant::now();
        sessions.retain(|_, expiry| *expiry > now);
        while sessions.len() >= MAX_SESSIONS {
            let Some(oldest) = sessions.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k) else {
                break;
            };
            sessions.remove(&oldest);
        }
        sessions.insert(token_hash(&session), now + SESSION_TTL);
    }
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        session.as_str(),
        SESSION_TTL.as_secs()
    );
    let mut response = axum::Json(json!({"ok": true})).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout<B: OperatorBackend>(
    State(shared): State<Arc<Shared<B>>>,
    headers: HeaderMap,
) -> Response {
    if let Some(session) = session_cookie(&headers) {
        lock(&shared.sessions).remove(&token_hash(session));
    }
    let mut response = axum::Json(json!({"ok": true})).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("keyline_operator=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}

fn respond(result: Result<Value>) -> Response {
    match result {
        Ok(value) => axum::Json(value).into_response(),
        Err(err) => {
            tracing::warn!(%err, "operator API");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the bunker could not answer; see its log",
            )
        }
    }
}

fn found(result: Result<bool>, what: &str) -> Response {
    match result {
        Ok(true) => axum::Json(json!({"ok": true})).into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, "not_found", what),
        Err(err) => respond(Err(err)),
    }
}

async fn keys<B: OperatorBackend>(State(s): State<Arc<Shared<B>>>) -> Response {
    respond(s.backend.keys().await)
}

async fn connections<B: OperatorBackend>(State(s): State<Arc<Shared<B>>>) -> Response {
    respond(s.backend.connections().await)
}

async fn set_grants<B: OperatorBackend>(
    State(s): State<Arc<Shared<B>>>,
    Path(client): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(grants) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "expected a JSON array of grants",
        );
    };
    if !grants.is_array() {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "expected a JSON array of grants",
        );
    }
    found(
        s.backend.set_grants(&client, grants).await,
        "no such connection",
    )
}

async fn revoke<B: OperatorBackend>(
    State(s): State<Arc<Shared<B>>>,
    Path(client): Path<String>,
) -> Response {
    found(s.backend.revoke(&client).await, "no such connection")
}

async fn approvals<B: OperatorBackend>(State(s): State<Arc<Shared<B>>>) -> Response {
    respond(s.backend.approvals().await)
}

async fn approval<B: OperatorBackend>(
    State(s): State<Arc<Shared<B>>>,
    Path(id): Path<String>,
) -> Response {
    match s.backend.approval(&id).await {
        Ok(Some(value)) => axum::Json(value).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "not_found", "no such approval"),
        Err(err) => respond(Err(err)),
    }
}

#[derive(Deserialize)]
struct Decide {
    decision: String,
    duration: Option<u64>,
}

async fn decide<B: OperatorBackend>(
    State(s): State<Arc<Shared<B>>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(d) = serde_json::from_slice::<Decide>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "expected {\"decision\"}",
        );
    };
    let decision = match (d.decision.as_str(), d.duration) {
        ("allow_once", _) => ApprovalDecision::AllowOnce,
        ("allow_always", _) => ApprovalDecision::AllowAlways,
        ("allow_for", Some(secs)) if secs > 0 => {
            ApprovalDecision::AllowFor(Duration::from_secs(secs))
        }
        ("deny", _) => ApprovalDecision::Deny,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "decision is allow_once, allow_always, allow_for (with duration) or deny",
            );
        }
    };
    found(
        s.backend.decide(&id, decision).await,
        "no such pending approval (decided or expired)",
    )
}

#[derive(Deserialize)]
struct AuditQuery {
    before: Option<u64>,
    limit: Option<usize>,
}

async fn audit<B: OperatorBackend>(
    State(s): State<Arc<Shared<B>>>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_AUDIT_PAGE);
    respond(s.backend.audit(q.before, limit).await)
}

async fn mint<B: OperatorBackend>(State(s): State<Arc<Shared<B>>>) -> Response {
    respond(
        s.backend
            .mint_bunker_uri()
            .await
            .map(|uri| json!({"bunker_uri": uri})),
    )
}

#[derive(Deserialize)]
struct NostrConnect {
    uri: String,
}

async fn nostrconnect<B: OperatorBackend>(
    State(s): State<Arc<Shared<B>>>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<NostrConnect>(&body) else {
        return error(StatusCode::BAD_REQUEST, "bad_request", "expected {\"uri\"}");
    };
    match s.backend.nostrconnect(&body.uri).await {
        Ok(value) => axum::Json(value).into_response(),
        Err(err) if err.kind() == crate::ErrorKind::InvalidInput => {
            error(StatusCode::BAD_REQUEST, "bad_request", &err.to_string())
        }
        Err(err) => respond(Err(err)),
    }
}
