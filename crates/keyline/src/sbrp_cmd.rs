//! `keyline sbrp daemon` and `keyline sbrp call`.

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keyline_core::{Home, PinOutcome, PinStore, Policy};
use keyline_sbrp::proto::DaemonIdentity;
use keyline_sbrp::tokio::builtins::Registry;
use keyline_sbrp::tokio::issuer::{self, SessionGrant};
use keyline_sbrp::tokio::{Client, ClientConfig, Daemon, DaemonConfig, DaemonStatus, Trust};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::cli::{RelayArgs, SbrpCommand};
use crate::error::{CliError, Result};
use crate::identity_cmd::load_or_create;
use crate::output::{announce, emit};

/// How often a daemon renews its presence token (tokens live 1 h).
const PRESENCE_REFRESH: Duration = Duration::from_secs(30 * 60);

/// How long `call` waits for a daemon that the issuer knows but the relay does not see yet
/// (it is reconnecting, or its connection is still being registered).
const OFFLINE_GRACE: Duration = Duration::from_secs(3);

/// Largest params read from a file or standard input.
const MAX_PARAMS: u64 = 16 * 1024 * 1024;

pub(crate) async fn run(home: &Home, command: SbrpCommand, json: bool) -> Result<()> {
    match command {
        SbrpCommand::Daemon {
            relay,
            expose_dir,
            allow_dotfiles,
        } => daemon(home, relay, expose_dir, allow_dotfiles).await,
        SbrpCommand::Call {
            relay,
            method,
            params,
        } => call(home, relay, &method, params.as_deref(), json).await,
    }
}

/// One-line errors; a changed daemon key names the SBRP error code.
fn sbrp_error(err: keyline_sbrp::Error) -> CliError {
    match err {
        e @ keyline_sbrp::Error::IdentityKeyChanged { .. } => {
            CliError::Failed(format!("identity_key_changed: {e}"))
        }
        e => CliError::Sbrp(e),
    }
}

async fn daemon(
    home: &Home,
    relay: RelayArgs,
    expose_dir: Option<PathBuf>,
    allow_dotfiles: bool,
) -> Result<()> {
    let issuer_url = issuer::issuer_base(&relay.relay)?;
    let daemon_id = relay.daemon_id;
    let seed = Zeroizing::new(*load_or_create(home)?.ed25519_seed());
    let mut registry = Registry::new(&daemon_id)
        .with_name(format!("keyline {daemon_id}"))
        .with_version(env!("CARGO_PKG_VERSION"))
        .allow_dotfiles(allow_dotfiles);
    if let Some(dir) = &expose_dir {
        registry = registry
            .expose_dir(dir)
            .map_err(|e| CliError::Usage(format!("--expose-dir {}: {e}", dir.display())))?;
    }
    let registry = Arc::new(registry);
    let (mut daemon, relay_url, fingerprint) =
        first_connection(&issuer_url, &daemon_id, &seed).await?;
    announce(&json!({
        "daemon_id": daemon_id,
        "relay": relay_url,
        "identity": fingerprint,
    }));
    tracing::info!(%daemon_id, identity = %fingerprint, "sbrp daemon registered");

    let refresh =
        async |why: &str| match issuer::presence_token(&issuer_url, &daemon_id, &seed).await {
            Ok(grant) => Some(grant.token),
            Err(err) => {
                tracing::warn!(%err, "presence token refresh ({why}) failed");
                None
            }
        };
    let mut status = daemon.status();
    let mut renew = tokio::time::interval_at(
        tokio::time::Instant::now() + PRESENCE_REFRESH,
        PRESENCE_REFRESH,
    );
    let shutdown = crate::serve_cmd::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            session = daemon.accept() => match session {
                Some(session) => {
                    let registry = registry.clone();
                    tokio::spawn(async move {
                        let sid = session.sid();
                        if let Err(err) = registry.serve(session).await {
                            tracing::debug!(sid, %err, "session ended");
                        }
                    });
                }
                None => return Err(CliError::Failed("the daemon stopped".into())),
            },
            changed = status.changed() => {
                if changed.is_err() {
                    return Err(CliError::Failed("the daemon stopped".into()));
                }
                let now = status.borrow_and_update().clone();
                match now {
                    DaemonStatus::Reconnecting { attempt, last_error } => {
                        tracing::warn!(attempt, error = %last_error, "relay connection lost; reconnecting");
                        // The relay may have restarted (new issuer key, no registration).
                        if let Some(token) = refresh("reconnect").await {
                            daemon.set_token(token.as_str());
                        }
                    }
                    DaemonStatus::Connected { generation } => {
                        tracing::info!(generation, "connected to the relay");
                    }
                    _ => return Err(CliError::Failed("the daemon stopped".into())),
                }
            }
            _ = renew.tick() => {
                if let Some(token) = refresh("renewal").await {
                    daemon.set_token(token.as_str());
                }
            }
            () = &mut shutdown => {
                tracing::info!("stopping");
                daemon.shutdown().await;
                return Ok(());
            }
        }
    }
}

/// The params argument: JSON text, `@FILE`, or `-` for standard input.
fn read_params(params: Option<&str>) -> Result<Option<Value>> {
    let Some(text) = params else {
        return Ok(None);
    };
    let bytes = if text == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .take(MAX_PARAMS + 1)
            .read_to_end(&mut buf)
            .map_err(CliError::io("reading params from standard input"))?;
        buf
    } else if let Some(path) = text.strip_prefix('@') {
        let file = std::fs::File::open(path).map_err(CliError::io(format!("reading {path}")))?;
        let mut buf = Vec::new();
        file.take(MAX_PARAMS + 1)
            .read_to_end(&mut buf)
            .map_err(CliError::io(format!("reading {path}")))?;
        buf
    } else {
        text.as_bytes().to_vec()
    };
    if bytes.len() as u64 > MAX_PARAMS {
        return Err(CliError::Usage(format!(
            "params larger than {MAX_PARAMS} bytes"
        )));
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| CliError::Usage(format!("params are not JSON: {e}")))
}

/// Registers with the issuer and opens the daemon's relay connection. A relay that cannot be
/// reached yet (connection refused, timeout) is retried with the daemon's reconnect backoff
/// (1 s doubling to 30 s, with jitter), so a daemon may start before its relay; a refusal
/// (bad token, unknown or taken daemon id) is final.
async fn first_connection(
    issuer_url: &str,
    daemon_id: &str,
    seed: &[u8; 32],
) -> Result<(Daemon, String, String)> {
    use keyline_sbrp::limits::{RECONNECT_INITIAL, RECONNECT_MAX};
    let mut attempt = 0u32;
    loop {
        let outcome = async {
            let grant = issuer::presence_token(issuer_url, daemon_id, seed).await?;
            let identity = DaemonIdentity::new(daemon_id, seed)?;
            let fingerprint = identity.fingerprint();
            let relay_url = grant.url.clone();
            let config = DaemonConfig::new(relay_url.as_str());
            let daemon = Daemon::connect(identity, grant.token.as_str(), config).await?;
            Ok::<_, keyline_sbrp::Error>((daemon, relay_url, fingerprint))
        }
        .await;
        match outcome {
            Ok(done) => return Ok(done),
            Err(err) if err.kind() == keyline_sbrp::ErrorKind::Io => {
                attempt = attempt.saturating_add(1);
                let delay = keyline_sbrp::tokio::backoff(attempt, RECONNECT_INITIAL, RECONNECT_MAX);
                tracing::warn!(%err, retry_in = ?delay, "relay not reachable yet");
                eprintln!("keyline: relay not reachable ({err}); retrying in {delay:.1?}");
                tokio::time::sleep(delay).await;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// A session token; a daemon the relay does not see yet is retried for a moment.
async fn session_token(issuer_url: &str, daemon_id: &str) -> Result<SessionGrant> {
    let give_up = Instant::now() + OFFLINE_GRACE;
    loop {
        match issuer::session_token(issuer_url, daemon_id).await {
            Err(keyline_sbrp::Error::IssuerRefused {
                status: 404, error, ..
            }) if error == "daemon_offline" && Instant::now() < give_up => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return Ok(other?),
        }
    }
}

async fn call(
    home: &Home,
    relay: RelayArgs,
    method: &str,
    params: Option<&str>,
    json: bool,
) -> Result<()> {
    let params = read_params(params)?;
    let issuer_url = issuer::issuer_base(&relay.relay)?;
    home.ensure()?;
    let pins = PinStore::open(&home.db_path()).await?;
    let grant = session_token(&issuer_url, &relay.daemon_id).await?;
    let url = grant.connect_url();
    let trust = Trust::Pins {
        store: &pins,
        policy: Policy::Tofu,
        prompt: None,
    };
    let session = Client::new(ClientConfig::default())
        .connect(url.as_str(), &relay.daemon_id, trust)
        .await
        .map_err(sbrp_error)?;
    drop(url);
    if let Some(PinOutcome::NewlyPinned) = session.pin_outcome() {
        tracing::info!(
            daemon_id = %relay.daemon_id,
            identity = %session.fingerprint(),
            "pinned the daemon's identity key (trust on first use)"
        );
    }
    let result = session.call(method, params).await;
    session.close().await;
    let result = result.map_err(sbrp_error)?;
    emit(json, &result, || {
        serde_json::to_string_pretty(&result).unwrap_or_else(|_| result.to_string())
    });
    Ok(())
}
