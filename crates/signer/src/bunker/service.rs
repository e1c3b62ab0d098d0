//! The bunker (spec §3): NIP-46 requests from the relay pool, checked, decided by the
//! permissions (§12) and the operator (`auth_url`, §3.5), answered with the threshold key.
//!
//! One task reads the pool's inbound queue and runs each request in its own task, at most
//! [`BUNKER_WORKERS`] at once (the pool's bounded queue absorbs bursts, dropping the newest
//! when full). Every request and operator action is audited (§12.7); caps are counted from the
//! audit log, so they survive restarts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::engine::{ClientRate, RecentRequests, UserKey, reply_event};
use super::operator::{ApprovalDecision, OperatorBackend};
use super::policy::{self, Ask, Decision, Grant, Verdict};
use super::pool::{Inbound, PoolConfig, RelayPool};
use crate::ecdh::SharedX;
use crate::limits::{
    BUNKER_APPROVAL_TIMEOUT, BUNKER_MAX_APPROVAL_TIMEOUT, BUNKER_MAX_PENDING_APPROVALS,
    BUNKER_PENDING_APPROVALS_PER_CLIENT, BUNKER_WORKERS, CLIENT_REQUESTS_PER_MINUTE,
};
use crate::nip44::ConversationKey;
use crate::nip46::{
    self, BunkerUri, ConnectParams, Encryption, Method, NostrConnectUri, Request, Response,
    SignedEvent,
};
use crate::store::{ApprovalRecord, AuditEntry, Connection, SecretUse, Store, TransportKey};
use crate::wire::{self, KeyId, RequestContext};
use crate::{Error, OsRng, Result, nip04, nip44};

/// How the bunker behaves.
#[derive(Clone, Debug)]
pub struct BunkerConfig {
    /// Base URL of the operator page (`auth_url` links are `<base>/approve/<id>`).
    pub operator_url: String,
    /// How long an `ask` waits for the operator (at most 10 min).
    pub approval_timeout: Duration,
    /// Accept NIP-04 transport from legacy clients (spec §3.7).
    pub allow_nip04: bool,
    /// Requests per client per minute before decryption.
    pub requests_per_minute: u32,
}

impl BunkerConfig {
    /// Defaults with the operator page at `operator_url`.
    pub fn new(operator_url: impl Into<String>) -> Self {
        Self {
            operator_url: operator_url.into(),
            approval_timeout: BUNKER_APPROVAL_TIMEOUT,
            allow_nip04: true,
            requests_per_minute: CLIENT_REQUESTS_PER_MINUTE,
        }
    }
}

/// A running bunker. Cheap to clone.
pub struct Bunker<K: UserKey> {
    inner: Arc<Inner<K>>,
}

impl<K: UserKey> Clone for Bunker<K> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<K> {
    store: Store,
    key: K,
    key_id: KeyId,
    npub: [u8; 32],
    transport: TransportKey,
    pool: RelayPool,
    config: BunkerConfig,
    relays: Mutex<Vec<String>>,
    pending: Mutex<HashMap<String, PendingApproval>>,
    recent: Mutex<RecentRequests>,
    rate: Mutex<ClientRate>,
    /// Per-key status for the operator page (nodes etc.), set by the embedder.
    key_info: Mutex<Value>,
}

struct PendingApproval {
    client: [u8; 32],
    decided: oneshot::Sender<ApprovalDecision>,
}

/// Where and how to answer one request.
struct Reply<'a> {
    relay: &'a str,
    client: [u8; 32],
    shared: &'a SharedX,
    encryption: Encryption,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|_| Error::Internal {
        reason: "the OS random source failed",
    })?;
    Ok(out)
}

fn parse_client(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let key = if text.starts_with("npub1") {
        keyline_core::parse_npub(text).ok()?
    } else {
        let mut key = [0u8; 32];
        hex::decode_to_slice(text, &mut key).ok()?;
        key
    };
    Some(key)
}

fn encryption_name(e: Encryption) -> &'static str {
    match e {
        Encryption::Nip44 => "nip44",
        Encryption::Nip04 => "nip04",
    }
}

/// The wire method a node is told about.
fn wire_method(method: &Method) -> Option<wire::Method> {
    Some(match method {
        Method::SignEvent => wire::Method::SignEvent,
        Method::Nip44Encrypt => wire::Method::Nip44Encrypt,
        Method::Nip44Decrypt => wire::Method::Nip44Decrypt,
        Method::Nip04Encrypt => wire::Method::Nip04Encrypt,
        Method::Nip04Decrypt => wire::Method::Nip04Decrypt,
        _ => return None,
    })
}

/// Everything decided about one request, for its audit entry.
#[derive(Default)]
struct Audit {
    decision: Option<&'static str>,
    reason: Option<String>,
    kind: Option<u16>,
    event_id: Option<String>,
    peer: Option<String>,
}

impl<K: UserKey> Bunker<K> {
    /// Starts the bunker: opens a relay pool on `relays` (plus the relays of `nostrconnect://`
    /// connections) listening for the transport key, and begins answering. Approvals left
    /// pending by a previous run are closed (their requests are gone).
    pub async fn start(
        store: Store,
        key: K,
        key_id: KeyId,
        transport: TransportKey,
        relays: Vec<String>,
        mut config: BunkerConfig,
    ) -> Result<Self> {
        config.approval_timeout = config.approval_timeout.min(BUNKER_MAX_APPROVAL_TIMEOUT);
        store.close_pending_approvals("abandoned", now_ms()).await?;
        let npub = key.npub();
        let (pool, inbound) = RelayPool::start(Vec::new(), PoolConfig::new(transport.pubkey));
        let bunker = Self {
            inner: Arc::new(Inner {
                store,
                key,
                key_id,
                npub,
                transport,
                pool,
                rate: Mutex::new(ClientRate::new(config.requests_per_minute)),
                config,
                relays: Mutex::new(relays),
                pending: Mutex::new(HashMap::new()),
                recent: Mutex::new(RecentRequests::default()),
                key_info: Mutex::new(Value::Null),
            }),
        };
        bunker.refresh_pool_relays().await?;
        tokio::spawn(bunker.clone().run(inbound));
        Ok(bunker)
    }

    /// The transport (remote-signer) public key.
    pub fn transport_pubkey(&self) -> [u8; 32] {
        self.inner.transport.pubkey
    }

    /// The user public key.
    pub fn npub(&self) -> [u8; 32] {
        self.inner.npub
    }

    /// The configured relays.
    pub fn relays(&self) -> Vec<String> {
        lock(&self.inner.relays).clone()
    }

    /// The relay pool (status, statistics).
    pub fn pool(&self) -> &RelayPool {
        &self.inner.pool
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Sets what the operator page shows about the key besides npub and threshold (nodes and
    /// their health).
    pub fn set_key_info(&self, info: Value) {
        *lock(&self.inner.key_info) = info;
    }

    /// Replaces the configured relays (takes effect at once; `switch_relays` then reports the
    /// new list to clients).
    pub async fn set_relays(&self, relays: Vec<String>) -> Result<()> {
        for r in &relays {
            nip46::check_relay_url(r).map_err(|reason| Error::RelayUrl {
                url: r.clone(),
                reason,
            })?;
        }
        *lock(&self.inner.relays) = relays;
        self.refresh_pool_relays().await
    }

    async fn refresh_pool_relays(&self) -> Result<()> {
        let mut all = self.relays();
        for c in self.inner.store.list_connections().await? {
            if c.is_active() && c.origin == "nostrconnect" {
                for r in c.relays {
                    if !all.contains(&r) {
                        all.push(r);
                    }
                }
            }
        }
        self.inner.pool.set_relays(all);
        Ok(())
    }

    /// A `bunker://` URI for this bunker with `secret`.
    pub fn bunker_uri(&self, secret: Option<String>) -> BunkerUri {
        BunkerUri {
            remote_signer: self.inner.transport.pubkey,
            relays: self.relays(),
            secret,
        }
    }

    /// Mints a single-use connect secret (16 random bytes, hex) with an optional template and
    /// lifetime, and returns the `bunker://` URI carrying it.
    pub async fn mint_uri(
        &self,
        template: Option<&str>,
        lifetime: Option<Duration>,
    ) -> Result<BunkerUri> {
        if let Some(t) = template
            && policy::template(t).is_none()
        {
            return Err(Error::params("unknown template"));
        }
        let secret = hex::encode(random_bytes::<16>()?);
        let now = now_ms();
        let expires = lifetime.map(|l| now + u64::try_from(l.as_millis()).unwrap_or(u64::MAX));
        self.inner
            .store
            .add_connect_secret(&secret, template, now, expires)
            .await?;
        Ok(self.bunker_uri(Some(secret)))
    }

    /// The client-initiated flow (spec §3.3): records the connection of a `nostrconnect://`
    /// URI, listens on its relays and sends the client its secret as the first response.
    pub async fn accept_nostrconnect(&self, uri: &str) -> Result<[u8; 32]> {
        let uri = NostrConnectUri::parse(uri)?;
        let now = now_ms();
        let connection = Connection {
            client: uri.client,
            key_id: self.inner.key_id,
            origin: "nostrconnect".into(),
            name: uri.metadata.name.clone(),
            url: uri.metadata.url.clone(),
            image: uri.metadata.image.clone(),
            relays: uri.relays.clone(),
            encryption: Some("nip44".into()),
            connected_at_ms: now,
            last_seen_at_ms: None,
            logged_out_at_ms: None,
            revoked_at_ms: None,
        };
        self.inner.store.upsert_connection(&connection).await?;
        let mut audit = AuditEntry::new(now, "operator", "nostrconnect");
        audit.client_pubkey = Some(hex::encode(uri.client));
        audit.decision = Some("allow".into());
        audit.reason = Some(format!(
            "perms requested: {}",
            uri.perms
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ));
        self.record(audit).await;
        self.refresh_pool_relays().await?;
        let shared = SharedX::from_secret(self.inner.transport.secret(), &uri.client)?;
        let response = Response::ok(hex::encode(random_bytes::<8>()?), uri.secret.clone());
        let reply = Reply {
            relay: "",
            client: uri.client,
            shared: &shared,
            encryption: Encryption::Nip44,
        };
        // The pool connects to the new relays in the background: retry until one accepts.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.publish_to(&reply, &response, &uri.relays).await {
                Ok(()) => return Ok(uri.client),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Stops the relay pool (pending approvals time out with their tasks).
    pub async fn shutdown(&self) {
        self.inner.pool.shutdown().await;
    }

    async fn run(self, mut inbound: mpsc::Receiver<Inbound>) {
        let workers = Arc::new(Semaphore::new(BUNKER_WORKERS));
        while let Some(item) = inbound.recv().await {
            let Ok(permit) = Arc::clone(&workers).acquire_owned().await else {
                return;
            };
            let bunker = self.clone();
            tokio::spawn(async move {
                bunker.handle(item).await;
                drop(permit);
            });
        }
    }

    async fn record(&self, entry: AuditEntry) {
        if let Err(e) = self.inner.store.audit_append(&entry).await {
            tracing::warn!(error = %e, "could not write an audit record");
        }
    }

    /// One inbound event (spec §3.1 rules 4–7; the pool did 1–3).
    async fn handle(&self, inbound: Inbound) {
        let client = inbound.event.pubkey;
        let now = Instant::now();
        if !lock(&self.inner.rate).allow(&client, now) {
            tracing::debug!(client = %hex::encode(client), "client over its request rate");
            return;
        }
        let Ok(shared) = SharedX::from_secret(self.inner.transport.secret(), &client) else {
            return;
        };
        let content = &inbound.event.content;
        let encryption = Encryption::detect(content);
        let reply = Reply {
            relay: &inbound.relay,
            client,
            shared: &shared,
            encryption,
        };
        let request = match nip46::open_request(&shared, content, self.inner.config.allow_nip04) {
            Ok((_, request)) => request,
            Err(e) => {
                if let Some(response) = Response::for_invalid_request(&e) {
                    self.send(&reply, &response).await;
                }
                tracing::debug!(error = %e, "dropped an unreadable request");
                return;
            }
        };
        if !lock(&self.inner.recent).first_time(&client, &request.id, now) {
            return;
        }
        if encryption == Encryption::Nip04 {
            tracing::warn!(client = %hex::encode(client), "legacy NIP-04 transport");
        }
        let started = Instant::now();
        let mut audit = Audit::default();
        let response = self.dispatch(&request, &reply, &mut audit).await;
        let logged_out =
            request.method == Method::Logout && response.as_ref().is_some_and(|r| !r.is_error());
        if logged_out {
            // End the session before the "ack" leaves, so a request the client sends right
            // after it is already refused (spec §12.8).
            let _ = self
                .inner
                .store
                .end_connection(&client, false, now_ms())
                .await;
            self.cancel_approvals(&client);
        }
        if let Some(response) = &response {
            self.send(&reply, response).await;
        }
        let failed = response.as_ref().filter(|r| r.is_error());
        let mut entry = AuditEntry::new(
            now_ms(),
            format!("client:{}", hex::encode(client)),
            request.method.name().chars().take(64).collect::<String>(),
        );
        entry.key_id = Some(self.inner.key_id);
        entry.client_pubkey = Some(hex::encode(client));
        entry.method = Some(request.method.name().chars().take(64).collect());
        entry.kind = audit.kind.map(u32::from);
        entry.event_id = audit.event_id;
        entry.peer = audit.peer;
        entry.decision = audit
            .decision
            .map(str::to_owned)
            .or_else(|| failed.map(|_| "error".to_owned()));
        entry.reason = audit.reason.map(|r| r.chars().take(200).collect());
        entry.latency_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        entry.error_code = failed
            .and_then(|r| r.error.clone())
            .map(|e| e.chars().take(200).collect());
        self.record(entry).await;
    }

    /// The response to `request` (`None`: nothing more to send).
    async fn dispatch(
        &self,
        request: &Request,
        reply: &Reply<'_>,
        audit: &mut Audit,
    ) -> Option<Response> {
        let id = request.id.clone();
        let client = reply.client;
        match &request.method {
            Method::Ping => {
                audit.decision = Some("allow");
                return Some(Response::ok(id, "pong"));
            }
            Method::Unknown(_) => {
                return Some(Response::unsupported(id, &request.method));
            }
            Method::Connect => return Some(self.connect(request, reply, audit).await),
            _ => {}
        }
        let connection = match self.inner.store.get_connection(&client).await {
            Ok(Some(c)) if c.is_active() => c,
            Ok(_) => {
                audit.decision = Some("deny");
                audit.reason = Some("not connected".into());
                return Some(Response::error(id, "not connected"));
            }
            Err(e) => return Some(internal(id, &e)),
        };
        // Last seen is kept to the minute: one write less per request under load.
        let now = now_ms();
        let encryption = encryption_name(reply.encryption);
        if connection
            .last_seen_at_ms
            .is_none_or(|t| now.saturating_sub(t) >= 60_000)
            || connection.encryption.as_deref() != Some(encryption)
        {
            let _ = self
                .inner
                .store
                .touch_connection(&client, encryption, now)
                .await;
        }
        match &request.method {
            Method::GetPublicKey => {
                audit.decision = Some("allow");
                Some(Response::ok(id, hex::encode(self.inner.npub)))
            }
            Method::Logout => {
                audit.decision = Some("allow");
                Some(Response::ok(id, "ack"))
            }
            Method::SwitchRelays => {
                audit.decision = Some("allow");
                Some(self.switch_relays(&id, &connection).await)
            }
            _ => Some(self.guarded(request, reply, audit).await),
        }
    }

    /// `switch_relays` (spec §3.6).
    async fn switch_relays(&self, id: &str, connection: &Connection) -> Response {
        if connection.origin == "nostrconnect" {
            return Response::ok(id, "null");
        }
        let current = self.relays();
        if connection.relays == current {
            return Response::ok(id, "null");
        }
        if let Err(e) = self
            .inner
            .store
            .set_connection_relays(&connection.client, &current)
            .await
        {
            return internal(id.to_owned(), &e);
        }
        Response::ok(id, Value::from(current).to_string())
    }

    /// `connect` (spec §3.3).
    async fn connect(&self, request: &Request, reply: &Reply<'_>, audit: &mut Audit) -> Response {
        let id = request.id.clone();
        let client = reply.client;
        let params = match ConnectParams::parse(&request.params) {
            Ok(p) => p,
            Err(e) => return Response::error(id, nip46::reply_text(&e)),
        };
        if params.remote_signer != self.inner.transport.pubkey
            && params.remote_signer != self.inner.npub
        {
            audit.decision = Some("deny");
            return Response::error(id, "wrong remote signer");
        }
        if params.remote_signer == self.inner.npub {
            audit.reason = Some("client named the user key as remote signer".into());
        }
        let now = now_ms();
        let existing = match self.inner.store.get_connection(&client).await {
            Ok(c) => c.filter(Connection::is_active),
            Err(e) => return internal(id, &e),
        };
        let mut template = None;
        match &params.secret {
            Some(secret) => match self
                .inner
                .store
                .consume_connect_secret(secret, &client, now)
                .await
            {
                Ok(SecretUse::Consumed { template: t }) => template = Some(t),
                Ok(SecretUse::AlreadyUsed { by }) => {
                    // The same, still connected client repeating its connect is harmless.
                    if existing.is_some() && by.as_deref() == Some(&hex::encode(client)) {
                        audit.decision = Some("allow");
                        return Response::ok(id, "ack");
                    }
                    audit.decision = Some("deny");
                    audit.reason = Some("secret already used".into());
                    return Response::error(id, "secret already used");
                }
                Ok(SecretUse::Unknown) => {
                    audit.reason = Some("unknown or expired secret".into());
                }
                Err(e) => return internal(id, &e),
            },
            None if existing.is_some() => {
                audit.decision = Some("allow");
                return Response::ok(id, "ack");
            }
            None => {}
        }
        if template.is_none() {
            let summary = json!({
                "client": hex::encode(client),
                "method": "connect",
                "name": params.metadata.as_ref().and_then(|m| m.name.clone()),
                "url": params.metadata.as_ref().and_then(|m| m.url.clone()),
                "perms": params.perms.iter().map(ToString::to_string).collect::<Vec<_>>(),
            });
            match self.ask(request, reply, None, summary, audit).await {
                Ok(_) => {}
                Err(response) => return response,
            }
        }
        let metadata = params.metadata.unwrap_or_default();
        let connection = Connection {
            client,
            key_id: self.inner.key_id,
            origin: "bunker".into(),
            name: metadata.name,
            url: metadata.url,
            image: metadata.image,
            relays: self.relays(),
            encryption: Some(encryption_name(reply.encryption).into()),
            connected_at_ms: now,
            last_seen_at_ms: Some(now),
            logged_out_at_ms: None,
            revoked_at_ms: None,
        };
        if let Err(e) = self.inner.store.upsert_connection(&connection).await {
            return internal(id, &e);
        }
        if let Some(Some(name)) = template
            && let Some(grants) = policy::template(&name)
            && let Err(e) = self
                .inner
                .store
                .put_grants(&client, &grants, true, &format!("template:{name}"), now)
                .await
        {
            return internal(id, &e);
        }
        audit.decision = Some("allow");
        if !params.perms.is_empty() {
            audit.reason = Some(format!(
                "perms requested: {}",
                params
                    .perms
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        Response::ok(id, "ack")
    }

    /// The methods behind permissions: `sign_event` and the encrypt/decrypt family.
    async fn guarded(&self, request: &Request, reply: &Reply<'_>, audit: &mut Audit) -> Response {
        let id = request.id.clone();
        let client = reply.client;
        let npub = self.inner.npub;
        let mut event = None;
        let mut peer = None;
        let mut text = "";
        if request.method == Method::SignEvent {
            match nip46::sign_event_param(&request.params, &npub) {
                Ok(e) => {
                    audit.kind = Some(e.kind);
                    audit.event_id = Some(hex::encode(e.id(&npub)));
                    event = Some(e);
                }
                Err(e) => return Response::error(id, nip46::reply_text(&e)),
            }
        } else {
            match nip46::peer_and_text(&request.params) {
                Ok((p, t)) => {
                    audit.peer = Some(hex::encode(p));
                    peer = Some(p);
                    text = t;
                }
                Err(e) => return Response::error(id, nip46::reply_text(&e)),
            }
        }
        let peer_hex = peer.map(hex::encode);
        let ask = Ask {
            method: &request.method,
            event: event.as_ref(),
            peer: peer_hex.as_deref(),
        };
        let now_s = now_ms() / 1000;
        let grants = match self.inner.store.grants(&client).await {
            Ok(g) => g,
            Err(e) => return internal(id, &e),
        };
        let (_, scope) = policy::select(&ask, &grants, now_s);
        let usage = match &scope {
            Some(s) => match self
                .inner
                .store
                .usage(&client, &s.method, s.kind, now_ms())
                .await
            {
                Ok(u) => u,
                Err(e) => return internal(id, &e),
            },
            None => policy::Usage::default(),
        };
        match policy::evaluate(&ask, &grants, usage, now_s) {
            Verdict::Allow => {}
            Verdict::Deny {
                reply: text,
                reason,
            } => {
                audit.decision = Some("deny");
                audit.reason = Some(reason);
                return Response::error(id, text);
            }
            Verdict::RateLimited { window } => {
                audit.decision = Some("rate_limited");
                audit.reason = Some(format!("over the per-{window} cap"));
                return Response::error(id, "rate limited");
            }
            Verdict::Ask => {
                let mut summary = json!({
                    "client": hex::encode(client),
                    "method": request.method.name(),
                });
                if let Some(e) = &event {
                    summary["kind"] = json!(e.kind);
                    summary["content"] = json!(e.content.chars().take(2000).collect::<String>());
                    summary["tags"] = json!(e.tags.iter().take(50).collect::<Vec<_>>());
                }
                if let Some(p) = &peer_hex {
                    summary["peer"] = json!(p);
                }
                if let Err(response) = self.ask(request, reply, audit.kind, summary, audit).await {
                    return response;
                }
                // Revoked or logged out (by another process, e.g. the CLI) while it waited.
                if !matches!(self.inner.store.get_connection(&client).await, Ok(Some(c)) if c.is_active())
                {
                    audit.decision = Some("deny");
                    return Response::error(id, "not connected");
                }
            }
        }
        audit.decision = Some("allow");
        let context = RequestContext {
            method: wire_method(&request.method).unwrap_or(wire::Method::SignEvent),
            client_pubkey: client,
            connection_id: connection_id(&client),
            unsigned_event: String::new(),
            peer,
            policy_version: 0,
            timestamp_ms: now_ms(),
        };
        let result = match (&request.method, event, peer) {
            (Method::SignEvent, Some(event), _) => {
                let context = RequestContext {
                    unsigned_event: request.params[0].clone(),
                    ..context
                };
                let event_id = event.id(&npub);
                self.inner
                    .key
                    .sign(event_id, context)
                    .await
                    .and_then(|sig| {
                        let signed = SignedEvent::new(event, npub, sig);
                        signed.verify()?;
                        Ok(signed.to_json())
                    })
            }
            (method, _, Some(peer)) => match self.inner.key.ecdh(peer, context).await {
                Ok(shared) => crypt(method, &shared, text),
                Err(e) => Err(e),
            },
            _ => Err(Error::Internal {
                reason: "request without its parameters",
            }),
        };
        match result {
            Ok(value) if value.is_empty() => Response::error(id, "empty plaintext"),
            Ok(value) => Response::ok(id, value),
            Err(e) => {
                tracing::warn!(error = %e, method = %request.method, "request failed");
                Response::error(id, nip46::reply_text(&e))
            }
        }
    }

    /// Asks the operator (spec §3.5): sends `auth_url`, waits for the decision. `Ok` when
    /// allowed (grants for "always" / "for" already stored), else the final error response.
    async fn ask(
        &self,
        request: &Request,
        reply: &Reply<'_>,
        kind: Option<u16>,
        summary: Value,
        audit: &mut Audit,
    ) -> std::result::Result<ApprovalDecision, Response> {
        let id = request.id.clone();
        let client = reply.client;
        let approval_id = match random_bytes::<16>() {
            Ok(b) => URL_SAFE_NO_PAD.encode(b),
            Err(e) => return Err(internal(id, &e)),
        };
        // Check the bounds and take the slot under one lock: concurrent asks of one client
        // cannot all pass the check.
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = lock(&self.inner.pending);
            let held = pending.values().filter(|p| p.client == client).count();
            if held >= BUNKER_PENDING_APPROVALS_PER_CLIENT
                || pending.len() >= BUNKER_MAX_PENDING_APPROVALS
            {
                audit.decision = Some("rate_limited");
                audit.reason = Some("too many pending approvals".into());
                return Err(Response::error(id, "rate limited"));
            }
            pending.insert(
                approval_id.clone(),
                PendingApproval {
                    client,
                    decided: tx,
                },
            );
        }
        let now = now_ms();
        let timeout = self.inner.config.approval_timeout;
        let record = ApprovalRecord {
            approval_id: approval_id.clone(),
            client,
            request_id: id.clone(),
            method: request.method.name().to_owned(),
            kind,
            summary,
            created_at_ms: now,
            expires_at_ms: now + u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            decided_at_ms: None,
            decision: None,
        };
        if let Err(e) = self.inner.store.add_approval(&record).await {
            lock(&self.inner.pending).remove(&approval_id);
            return Err(internal(id, &e));
        }
        let url = format!(
            "{}/approve/{approval_id}",
            self.inner.config.operator_url.trim_end_matches('/')
        );
        self.send(reply, &Response::auth_url(id.clone(), url)).await;
        let outcome = tokio::time::timeout(timeout, rx).await;
        lock(&self.inner.pending).remove(&approval_id);
        match outcome {
            Ok(Ok(ApprovalDecision::Deny)) => {
                audit.decision = Some("deny");
                audit.reason = Some("denied by operator".into());
                Err(Response::error(id, "denied by operator"))
            }
            Ok(Ok(decision)) => {
                audit.reason = Some(format!("approved by operator ({decision:?})"));
                Ok(decision)
            }
            Ok(Err(_)) => {
                audit.decision = Some("deny");
                audit.reason = Some("approval cancelled".into());
                Err(Response::error(id, "not connected"))
            }
            Err(_) => {
                let _ = self
                    .inner
                    .store
                    .decide_approval(&approval_id, "timeout", now_ms())
                    .await;
                audit.decision = Some("deny");
                audit.reason = Some("approval timed out".into());
                Err(Response::error(id, "approval timed out"))
            }
        }
    }

    /// Drops the pending approvals of `client` (their requests fail with `not connected`).
    fn cancel_approvals(&self, client: &[u8; 32]) {
        lock(&self.inner.pending).retain(|_, p| p.client != *client);
    }

    /// Encrypts, signs and publishes `response` on the request's relay, falling back to the
    /// other relays (spec §3.6). Failures are logged: the client will time out.
    async fn send(&self, reply: &Reply<'_>, response: &Response) {
        let mut relays = vec![reply.relay.to_owned()];
        relays.extend(self.relays().into_iter().filter(|r| r != reply.relay));
        if let Err(e) = self.publish_to(reply, response, &relays).await {
            tracing::warn!(error = %e, "could not deliver a response");
        }
    }

    async fn publish_to(
        &self,
        reply: &Reply<'_>,
        response: &Response,
        relays: &[String],
    ) -> Result<()> {
        let content = nip46::seal_response(reply.shared, reply.encryption, response, &mut OsRng)?;
        let event = reply_event(
            self.inner.transport.secret(),
            &reply.client,
            content,
            now_ms() / 1000,
        )?;
        let mut last = Error::RelayUnavailable {
            relay: String::new(),
            reason: "no relay to publish to",
        };
        for relay in relays.iter().filter(|r| !r.is_empty()) {
            match self.inner.pool.publish(relay, &event).await {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

fn internal(id: String, e: &Error) -> Response {
    tracing::warn!(error = %e, "internal error answering a request");
    Response::error(id, "internal error")
}

/// A stable per-client connection id for the nodes' request context.
fn connection_id(client: &[u8; 32]) -> [u8; 16] {
    let digest = Sha256::digest(client);
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

/// The encrypt/decrypt methods once the ECDH is done.
fn crypt(method: &Method, shared: &SharedX, text: &str) -> Result<String> {
    match method {
        Method::Nip44Encrypt => {
            nip44::encrypt_with_rng(&ConversationKey::from_shared_x(shared), text, &mut OsRng)
        }
        Method::Nip44Decrypt => nip44::decrypt(&ConversationKey::from_shared_x(shared), text),
        Method::Nip04Encrypt => nip04::encrypt_with_rng(shared, text, &mut OsRng),
        Method::Nip04Decrypt => nip04::decrypt(shared, text),
        _ => Err(Error::Internal {
            reason: "not an encrypt/decrypt method",
        }),
    }
}

fn approval_json(a: &ApprovalRecord) -> Value {
    json!({
        "approval_id": a.approval_id,
        "client": hex::encode(a.client),
        "request_id": a.request_id,
        "method": a.method,
        "kind": a.kind,
        "summary": a.summary,
        "created_at": a.created_at_ms / 1000,
        "expires_at": a.expires_at_ms / 1000,
        "decided_at": a.decided_at_ms.map(|t| t / 1000),
        "decision": a.decision,
    })
}

fn connection_json(c: &Connection, grants: &[Grant]) -> Value {
    let state = if c.revoked_at_ms.is_some() {
        "revoked"
    } else if c.logged_out_at_ms.is_some() {
        "logged_out"
    } else {
        "connected"
    };
    json!({
        "client_pubkey": hex::encode(c.client),
        "state": state,
        "origin": c.origin,
        "name": c.name,
        "url": c.url,
        "relays": c.relays,
        "encryption": c.encryption,
        "connected_at": c.connected_at_ms / 1000,
        "last_seen_at": c.last_seen_at_ms.map(|t| t / 1000),
        "grants": grants,
    })
}

impl<K: UserKey> Bunker<K> {
    /// Connections with their grants (operator page, CLI).
    pub async fn connections_json(&self) -> Result<Value> {
        connections_json(&self.inner.store).await
    }

    /// Revokes `client` at once: its next request is refused, its pending approvals fail.
    pub async fn revoke(&self, client: &[u8; 32]) -> Result<bool> {
        let done = self
            .inner
            .store
            .end_connection(client, true, now_ms())
            .await?;
        self.cancel_approvals(client);
        let mut audit = AuditEntry::new(now_ms(), "operator", "revoke");
        audit.client_pubkey = Some(hex::encode(client));
        self.record(audit).await;
        let _ = self.refresh_pool_relays().await;
        Ok(done)
    }
}

/// Every connection with its grants, as the operator page and `keyline signer connections`
/// show them.
pub async fn connections_json(store: &Store) -> Result<Value> {
    let mut out = Vec::new();
    for c in store.list_connections().await? {
        let grants = store.grants(&c.client).await?;
        out.push(connection_json(&c, &grants));
    }
    Ok(json!({ "connections": out }))
}

impl<K: UserKey> OperatorBackend for Bunker<K> {
    async fn keys(&self) -> Result<Value> {
        let mut keys = Vec::new();
        if let Some(k) = self.inner.store.get_key(&self.inner.key_id).await? {
            keys.push(json!({
                "npub": keyline_core::npub(&k.npub),
                "pubkey": hex::encode(k.npub),
                "threshold": k.threshold,
                "shares": k.total,
                "share_version": k.share_version,
                "bunker": hex::encode(self.inner.transport.pubkey),
                "relays": self.inner.pool.status().iter().map(|s| json!({
                    "url": s.url, "connected": s.connected, "subscribed": s.subscribed,
                })).collect::<Vec<_>>(),
                "nodes": lock(&self.inner.key_info).clone(),
            }));
        }
        Ok(json!({ "keys": keys }))
    }

    async fn connections(&self) -> Result<Value> {
        self.connections_json().await
    }

    async fn set_grants(&self, client: &str, grants: Value) -> Result<bool> {
        let Some(client) = parse_client(client) else {
            return Ok(false);
        };
        if self.inner.store.get_connection(&client).await?.is_none() {
            return Ok(false);
        }
        let grants: Vec<Grant> = serde_json::from_value(grants)
            .map_err(|_| Error::params("grants: expected an array of grant objects"))?;
        for g in &grants {
            g.validate()
                .map_err(|_| Error::params("grants: a grant is invalid"))?;
        }
        self.inner
            .store
            .put_grants(&client, &grants, true, "operator", now_ms())
            .await?;
        let mut audit = AuditEntry::new(now_ms(), "operator", "set_grants");
        audit.client_pubkey = Some(hex::encode(client));
        self.record(audit).await;
        Ok(true)
    }

    async fn revoke(&self, client: &str) -> Result<bool> {
        match parse_client(client) {
            Some(client) => Bunker::revoke(self, &client).await,
            None => Ok(false),
        }
    }

    async fn approvals(&self) -> Result<Value> {
        let pending = self.inner.store.pending_approvals().await?;
        Ok(json!({ "approvals": pending.iter().map(approval_json).collect::<Vec<_>>() }))
    }

    async fn approval(&self, id: &str) -> Result<Option<Value>> {
        Ok(self
            .inner
            .store
            .get_approval(id)
            .await?
            .map(|a| approval_json(&a)))
    }

    async fn decide(&self, id: &str, decision: ApprovalDecision) -> Result<bool> {
        let Some(record) = self.inner.store.get_approval(id).await? else {
            return Ok(false);
        };
        let Some(pending) = lock(&self.inner.pending).remove(id) else {
            return Ok(false);
        };
        let now = now_ms();
        let name = match decision {
            ApprovalDecision::AllowOnce => "allow_once",
            ApprovalDecision::AllowAlways => "allow_always",
            ApprovalDecision::AllowFor(_) => "allow_for",
            ApprovalDecision::Deny => "deny",
        };
        if !self.inner.store.decide_approval(id, name, now).await? {
            return Ok(false);
        }
        let expires_at = match decision {
            ApprovalDecision::AllowAlways => Some(None),
            ApprovalDecision::AllowFor(d) => Some(Some(now / 1000 + d.as_secs())),
            _ => None,
        };
        if let Some(expires_at) = expires_at
            && record.method != "connect"
        {
            let grant = Grant {
                expires_at,
                ..Grant::new(&record.method, record.kind, Decision::Allow)
            };
            self.inner
                .store
                .put_grants(&record.client, &[grant], false, "operator", now)
                .await?;
        }
        let mut audit = AuditEntry::new(now, "operator", "approval");
        audit.client_pubkey = Some(hex::encode(record.client));
        audit.method = Some(format!("approve:{}", record.method));
        audit.kind = record.kind.map(u32::from);
        audit.decision = Some(name.to_owned());
        self.record(audit).await;
        let _ = pending.decided.send(decision);
        Ok(true)
    }

    async fn audit(&self, before: Option<u64>, limit: usize) -> Result<Value> {
        let records = self.inner.store.audit_page(before, limit).await?;
        let entries: Vec<Value> = records
            .iter()
            .map(|r| {
                let e = &r.entry;
                json!({
                    "seq": r.seq, "ts": e.ts_ms / 1000, "actor": e.actor, "action": e.action,
                    "client": e.client_pubkey, "method": e.method, "kind": e.kind,
                    "event_id": e.event_id, "peer": e.peer, "decision": e.decision,
                    "reason": e.reason, "latency_ms": e.latency_ms, "error": e.error_code,
                })
            })
            .collect();
        Ok(json!({ "entries": entries }))
    }

    async fn mint_bunker_uri(&self) -> Result<String> {
        let uri = self.mint_uri(None, None).await?;
        let mut audit = AuditEntry::new(now_ms(), "operator", "mint_bunker_uri");
        audit.decision = Some("allow".into());
        self.record(audit).await;
        Ok(uri.to_uri())
    }

    async fn nostrconnect(&self, uri: &str) -> Result<Value> {
        let client = self.accept_nostrconnect(uri).await?;
        Ok(json!({ "client_pubkey": hex::encode(client) }))
    }
}
