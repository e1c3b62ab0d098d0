//! HTTP endpoints: health, metrics, JWKS, the issuer, and the relay endpoint's pre-upgrade
//! checks.

use super::conn::{ConnRole, ConnSlot, run_connection};
use super::*;

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": code, "message": message})),
    )
        .into_response()
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

pub(super) async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

pub(super) async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let text = shared.metrics.render(shared.pairing_gauge());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

pub(super) async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
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

pub(super) async fn presence_challenge(
    State(shared): State<Arc<Shared>>,
    body: BodyBytes,
) -> Response {
    let req: PresenceChallengeRequest = match parse_body(&body) {
        Ok(req) => req,
        Err(bad) => return bad.into_response(),
    };
    let now = shared.clock.now();
    let result = lock(&shared.issuer).presence_challenge(&req.daemon_id, &req.identity_key, now);
    match result {
        Ok(grant) => {
            axum::Json(json!({"challenge": grant.challenge, "expires_in": grant.expires_in}))
                .into_response()
        }
        Err(err) => issuer_error(&err),
    }
}

pub(super) async fn presence(State(shared): State<Arc<Shared>>, body: BodyBytes) -> Response {
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

pub(super) async fn session_challenge(
    State(shared): State<Arc<Shared>>,
    body: BodyBytes,
) -> Response {
    let req: SessionChallengeRequest = match parse_body(&body) {
        Ok(req) => req,
        Err(bad) => return bad.into_response(),
    };
    let now = shared.clock.now();
    let result = lock(&shared.issuer).session_challenge(&req.daemon_id, &req.client_key, now);
    match result {
        Ok(grant) => {
            axum::Json(json!({"challenge": grant.challenge, "expires_in": grant.expires_in}))
                .into_response()
        }
        Err(err) => issuer_error(&err),
    }
}

pub(super) async fn sessions(State(shared): State<Arc<Shared>>, body: BodyBytes) -> Response {
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
pub(super) async fn relay_endpoint(
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
    // P1–P5: sid reuse (409), then the caps (429), then the daemon's status.
    let connections_full =
        shared.connections.load(Ordering::Acquire) >= shared.limits.max_connections;
    let role = match claims.role {
        TokenRole::Client => {
            let sid = claims.sid.unwrap_or_default();
            let core = shared.core(&claims.daemon_id);
            let admission = match &core {
                Some(core) => {
                    lock(core).admit_client(sid, claims.exp, connections_full, now, now_unix)
                }
                None => keyline_sbrp::proto::pairing::admit_client(
                    DaemonStatus::Unknown,
                    false,
                    false,
                    connections_full,
                ),
            };
            match admission {
                Admission::Http(status, code) => return admission_refused(&shared, status, code),
                // P1 pairs after the upgrade; P2/P3 are answered with a Control after it.
                Admission::Pair | Admission::Refuse(_) => ConnRole::Client { core, sid },
            }
        }
        TokenRole::Daemon => {
            if connections_full {
                return admission_refused(&shared, 429, "too_many_connections");
            }
            let Some(core) = shared.core_or_insert(&claims.daemon_id) else {
                return admission_refused(&shared, 429, "too_many_connections");
            };
            ConnRole::Daemon {
                core,
                resumable: claims.resumable,
                cap: claims.concurrent_sessions,
            }
        }
    };
    if shared.connections.fetch_add(1, Ordering::AcqRel) >= shared.limits.max_connections {
        shared.connections.fetch_sub(1, Ordering::AcqRel);
        return admission_refused(&shared, 429, "too_many_connections");
    }
    let slot = ConnSlot(shared.clone());
    let limits = &shared.limits;
    let write_buffer = limits.max_message.saturating_add(1024);
    let upgrade = upgrade
        .max_message_size(limits.max_message)
        .max_frame_size(limits.max_message)
        .read_buffer_size(limits.read_buffer)
        .write_buffer_size(0)
        .max_write_buffer_size(write_buffer.saturating_mul(2));
    let task_shared = shared.clone();
    upgrade.on_upgrade(move |socket| async move {
        run_connection(task_shared, socket, role, slot).await;
    })
}

fn admission_refused(shared: &Shared, status: u16, code: &str) -> Response {
    let counter = if status == 409 {
        &shared.metrics.sid_in_use
    } else {
        &shared.metrics.too_many
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let message = match code {
        "sid_in_use" => "this session id is in use or was used recently",
        "too_many_sessions" => "the daemon is at its session limit",
        _ => "the relay is at its connection limit",
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
    json_error(status, code, message)
}
