//! `keyline signer serve` (and the bunker inside `keyline serve`): the NIP-46 bunker with the
//! threshold key, its operator page and, without `--relay`, an embedded Nostr relay; and the
//! operator's CLI verbs `connect`, `connections`, `revoke`, `allow`.
//!
//! The operator token lives in `<home>/signer/operator-token` (mode 0600) so that the CLI of
//! the same home can reach the running bunker's operator API; the server keeps only its hash.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use keyline_core::Home;
use keyline_signer::bunker::embedded::EmbeddedRelay;
use keyline_signer::bunker::engine::CoordinatorKey;
use keyline_signer::bunker::operator::{self, OperatorConfig};
use keyline_signer::bunker::policy::{Decision, Grant};
use keyline_signer::bunker::service::{Bunker, BunkerConfig};
use keyline_signer::net::coordinator::KeyHandle;
use keyline_signer::store::{Store, TransportKey};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::cli::{BunkerArgs, KekArgs, NodesArgs};
use crate::error::{CliError, Result};
use crate::output::emit;
use crate::signer_cmd::{CreateKind, Signer, open_store};

/// The transport key's id in the store.
const TRANSPORT_KEY_ID: &str = "bunker-transport-1";

/// A started bunker: what to print, and what keeps it running.
pub(crate) struct BunkerService {
    announcement: Value,
    bunker: Bunker<CoordinatorKey>,
    operator: tokio::task::JoinHandle<std::io::Result<()>>,
    relay: Option<EmbeddedRelay>,
    /// Keeps in-process nodes (dev mode) alive.
    _signer: Signer,
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn operator_token_path(home: &Home) -> std::path::PathBuf {
    home.path().join("signer").join("operator-token")
}

/// Where the running bunker of a home says its operator page is.
fn operator_url_path(home: &Home) -> std::path::PathBuf {
    home.path().join("signer").join("operator-url")
}

/// The operator token of this home (created on first use, printed on stderr once).
fn operator_token(home: &Home) -> Result<Zeroizing<String>> {
    home.ensure()?;
    let path = operator_token_path(home);
    let (token, created) = keyline_core::load_or_create_secret_file(&path, || {
        operator::new_token()
            .map(|(t, _)| Zeroizing::new(format!("{}\n", t.as_str())))
            .unwrap_or_default()
    })?;
    let token = Zeroizing::new(token.trim().to_string());
    if token.is_empty() {
        return Err(CliError::Failed(format!(
            "{} is empty; delete it to mint a new operator token",
            path.display()
        )));
    }
    if created {
        eprintln!(
            "keyline: new operator token (log in to the operator page with it): {}\nkeyline: \
             saved in {} (mode 0600)",
            token.as_str(),
            path.display()
        );
    }
    Ok(token)
}

/// The transport key, created and sealed on first use.
async fn transport_key(
    store: &Store,
    kek: &dyn keyline_signer::envelope::Kek,
) -> Result<TransportKey> {
    if let Some(key) = store.open_transport_key(kek).await? {
        return Ok(key);
    }
    let secret = loop {
        let mut secret = Zeroizing::new([0u8; 32]);
        getrandom::fill(secret.as_mut_slice())
            .map_err(|e| CliError::Failed(format!("rng: {e}")))?;
        if k256::schnorr::SigningKey::from_slice(secret.as_slice()).is_ok() {
            break secret;
        }
    };
    store
        .seal_transport_key(kek, TRANSPORT_KEY_ID, &secret, unix_ms())
        .await?;
    store
        .open_transport_key(kek)
        .await?
        .ok_or_else(|| CliError::Failed("the transport key was not stored".into()))
}

impl BunkerService {
    /// Opens (or creates) the key, the transport key and the token, starts the relay (when
    /// `relays` is empty), the bunker and the operator page.
    pub(crate) async fn start(
        home: &Home,
        relays: Vec<String>,
        args: &BunkerArgs,
        kek: &KekArgs,
    ) -> Result<BunkerService> {
        if !args.operator_listen.ip().is_loopback() {
            return Err(CliError::Usage(
                "the operator page listens on loopback only (put a TLS proxy in front to reach \
                 it from elsewhere)"
                    .into(),
            ));
        }
        let mut signer = Signer::open(home, kek).await?;
        let record = match signer.store.list_keys().await?.into_iter().next() {
            Some(record) => record,
            None => {
                eprintln!(
                    "keyline: no threshold key yet: creating a 2-of-3 key on local nodes (dev \
                     mode: every share on this machine)"
                );
                let created = Signer::open(home, kek)
                    .await?
                    .create(CreateKind::Dkg, 2, 3, &NodesArgs { nodes: Vec::new() })
                    .await?;
                signer
                    .store
                    .get_key_by_npub(&created.public.npub())
                    .await?
                    .ok_or_else(|| CliError::Failed("the new key was not stored".into()))?
            }
        };
        let holders = signer.holders(&record).await?;
        let handle = KeyHandle {
            key_id: record.key_id,
            public: record.public.clone(),
            holders,
        };
        let transport = transport_key(&signer.store, signer.kek.as_ref()).await?;
        let token = operator_token(home)?;

        let mut relay = None;
        let relays = if relays.is_empty() {
            let embedded = EmbeddedRelay::start(args.relay_listen).await?;
            let url = embedded.url();
            relay = Some(embedded);
            vec![url]
        } else {
            relays
        };

        let listener = tokio::net::TcpListener::bind(args.operator_listen)
            .await
            .map_err(CliError::io(format!("binding {}", args.operator_listen)))?;
        let operator_addr: SocketAddr = listener
            .local_addr()
            .map_err(CliError::io("reading the operator address"))?;
        let operator_url = format!("http://{operator_addr}");
        std::fs::write(operator_url_path(home), format!("{operator_url}\n"))
            .map_err(CliError::io("writing the operator URL file"))?;
        let config = BunkerConfig {
            approval_timeout: Duration::from_secs(args.approval_timeout.clamp(5, 600)),
            ..BunkerConfig::new(operator_url.clone())
        };
        let key = CoordinatorKey::new(signer.coordinator.clone(), handle.clone());
        let bunker = Bunker::start(
            signer.store.clone(),
            key,
            record.key_id,
            transport,
            relays.clone(),
            config,
        )
        .await?;
        bunker.set_key_info(nodes_info(&signer, &handle));
        let router = operator::router(
            Arc::new(bunker.clone()),
            OperatorConfig::for_listen(operator::token_hash(&token), operator_addr),
        );
        let operator = tokio::spawn(operator::serve(
            listener,
            router,
            std::future::pending::<()>(),
        ));
        let uri = bunker.mint_uri(None, None).await?;
        let mut announcement = json!({
            "bunker_uri": uri.to_uri(),
            "npub": keyline_core::npub(&record.npub),
            "pubkey": hex::encode(record.npub),
            "transport_pubkey": hex::encode(bunker.transport_pubkey()),
            "relays": relays,
            "operator_url": operator_url,
            "operator_token_file": operator_token_path(home),
            "listen": operator_addr.to_string(),
        });
        if signer.dev_mode {
            announcement["dev_mode"] = json!(true);
        }
        Ok(BunkerService {
            announcement,
            bunker,
            operator,
            relay,
            _signer: signer,
        })
    }

    /// The JSON line printed once listening.
    pub(crate) fn announcement(&self) -> Value {
        self.announcement.clone()
    }

    /// Runs until the operator page stops (it does not on its own).
    pub(crate) async fn run(self) -> Result<()> {
        let result = self.operator.await;
        self.bunker.shutdown().await;
        if let Some(relay) = &self.relay {
            relay.shutdown().await;
        }
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CliError::Failed(format!("operator page: {e}"))),
            Err(e) => Err(CliError::Failed(format!("operator page task: {e}"))),
        }
    }
}

fn nodes_info(signer: &Signer, handle: &KeyHandle) -> Value {
    handle
        .holders
        .iter()
        .map(|(id, node)| {
            json!({
                "identifier": id.get(),
                "node": keyline_core::ssb_id(node),
                "connected": signer.coordinator.is_connected(node),
            })
        })
        .collect()
}

/// `keyline signer serve`.
pub(crate) async fn serve(
    home: &Home,
    relays: Vec<String>,
    args: &BunkerArgs,
    kek: &KekArgs,
) -> Result<()> {
    let service = BunkerService::start(home, relays, args, kek).await?;
    crate::output::announce(&service.announcement());
    tokio::select! {
        result = service.run() => result,
        () = crate::serve_cmd::shutdown_signal() => Ok(()),
    }
}

fn parse_client(text: &str) -> Result<[u8; 32]> {
    let text = text.trim();
    if text.starts_with("npub1") {
        return Ok(keyline_core::parse_npub(text)?);
    }
    let mut key = [0u8; 32];
    hex::decode_to_slice(text, &mut key).map_err(|_| {
        CliError::Usage(format!(
            "{text:?}: expected a client pubkey (64 hex or npub1…)"
        ))
    })?;
    Ok(key)
}

/// `keyline signer connections`.
pub(crate) async fn connections(home: &Home, json: bool) -> Result<()> {
    let store = open_store(home).await?;
    let value = keyline_signer::bunker::service::connections_json(&store).await?;
    emit(json, &value, || {
        let list = value["connections"].as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            return "no connections".into();
        }
        list.iter()
            .map(|c| {
                format!(
                    "{}  {}  {}  grants: {}",
                    c["client_pubkey"].as_str().unwrap_or_default(),
                    c["state"].as_str().unwrap_or_default(),
                    c["name"].as_str().unwrap_or("-"),
                    c["grants"]
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// `keyline signer revoke`.
pub(crate) async fn revoke(home: &Home, client: &str, json: bool) -> Result<()> {
    let client = parse_client(client)?;
    let store = open_store(home).await?;
    if store.get_connection(&client).await?.is_none() {
        return Err(CliError::Failed(format!(
            "no connection {} (`keyline signer connections` lists them)",
            hex::encode(client)
        )));
    }
    let changed = store.end_connection(&client, true, unix_ms()).await?;
    let mut audit = keyline_signer::store::AuditEntry::new(unix_ms(), "operator", "revoke");
    audit.client_pubkey = Some(hex::encode(client));
    store.audit_append(&audit).await?;
    emit(
        json,
        &json!({"client_pubkey": hex::encode(client), "revoked": true, "was_active": changed}),
        || format!("revoked {}", hex::encode(client)),
    );
    Ok(())
}

/// The arguments of `keyline signer allow`.
pub(crate) struct AllowArgs {
    pub(crate) client: String,
    pub(crate) grants: Vec<String>,
    pub(crate) decision: Decision,
    pub(crate) expires: Option<String>,
    pub(crate) per_minute: Option<u32>,
    pub(crate) per_day: Option<u32>,
}

/// `15m`, `1h`, `1d`, `1w`, or seconds.
fn parse_duration(text: &str) -> Result<Duration> {
    let bad = || {
        CliError::Usage(format!(
            "{text:?}: expected a duration like 15m, 1h, 1d, 1w"
        ))
    };
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(bad)
}

/// `keyline signer allow`: adds grants for a client (connected or not yet).
pub(crate) async fn allow(home: &Home, args: AllowArgs, json: bool) -> Result<()> {
    let client = parse_client(&args.client)?;
    let expires_at = match &args.expires {
        Some(d) => Some(unix_ms() / 1000 + parse_duration(d)?.as_secs()),
        None => None,
    };
    let mut grants = Vec::new();
    for spec in &args.grants {
        let mut grant = Grant::parse_spec(spec, args.decision).map_err(CliError::Usage)?;
        grant
            .validate()
            .map_err(|e| CliError::Usage(format!("{spec}: {e}")))?;
        grant.expires_at = expires_at;
        grant.per_minute = args.per_minute;
        grant.per_day = args.per_day;
        grants.push(grant);
    }
    let store = open_store(home).await?;
    store
        .put_grants(&client, &grants, false, "operator", unix_ms())
        .await?;
    let mut audit = keyline_signer::store::AuditEntry::new(unix_ms(), "operator", "allow");
    audit.client_pubkey = Some(hex::encode(client));
    audit.reason = Some(args.grants.join(",").chars().take(200).collect());
    store.audit_append(&audit).await?;
    let connected = store
        .get_connection(&client)
        .await?
        .is_some_and(|c| c.is_active());
    emit(
        json,
        &json!({"client_pubkey": hex::encode(client), "grants": grants, "connected": connected}),
        || {
            format!(
                "{} {} for {}{}",
                args.decision.name(),
                args.grants.join(" "),
                hex::encode(client),
                if connected {
                    ""
                } else {
                    " (not connected yet)"
                }
            )
        },
    );
    Ok(())
}

/// `keyline signer connect <nostrconnect-uri>`: hands the URI to the running bunker of this
/// home through its operator API.
pub(crate) async fn connect(home: &Home, uri: &str, json: bool) -> Result<()> {
    let token = std::fs::read_to_string(operator_token_path(home)).map_err(|_| {
        CliError::Failed(
            "no operator token in this home: start `keyline signer serve` first".into(),
        )
    })?;
    let base = std::fs::read_to_string(operator_url_path(home)).map_err(|_| {
        CliError::Failed(
            "no running bunker in this home: start `keyline signer serve` first".into(),
        )
    })?;
    let url = format!("{}/api/nostrconnect", base.trim());
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token.trim())
        .header(operator::CSRF_HEADER, "1")
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(json!({"uri": uri}).to_string())
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| {
            CliError::Failed(format!(
                "reaching the bunker at {url}: {e} (is `keyline signer serve` running?)"
            ))
        })?;
    let status = response.status();
    let body: Value = response
        .text()
        .await
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(CliError::Failed(format!(
            "the bunker refused the URI: {}",
            body["message"].as_str().unwrap_or(status.as_str())
        )));
    }
    emit(json, &body, || {
        format!(
            "connected {}",
            body["client_pubkey"].as_str().unwrap_or_default()
        )
    });
    Ok(())
}

/// Used by `keyline serve`: the bunker with default KEK arguments.
pub(crate) fn default_kek_args() -> KekArgs {
    KekArgs {
        pkcs11_module: None,
        pkcs11_token: None,
        pkcs11_pin_env: "KEYLINE_PKCS11_PIN".into(),
        pkcs11_key_label: "keyline-signer-kek".into(),
    }
}
