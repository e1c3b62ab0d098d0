//! `keyline shs serve` and `keyline shs connect`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use keyline_core::{HandshakeLimiter, Home, LimiterConfig, PinStore};
use keyline_shs::{
    ClientConfig, Error as ShsError, Keypair, NetworkKey, PublicKey, ServerConfig, Step,
};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::cli::{NetworkArgs, ShsCommand};
use crate::error::{CliError, Result};
use crate::identity_cmd::load_or_create;
use crate::limits::{
    ACCEPT_BACKOFF, SHS_HANDSHAKE_RATE, SHS_HANDSHAKE_RATE_PER_IP, SHS_LIMITER_SOURCES,
    SHS_MAX_CONNECTIONS, SHS_MAX_HANDSHAKES_IN_FLIGHT,
};
use crate::output::announce;

/// The protocol name of SHS pins.
pub(crate) const PIN_PROTOCOL: &str = "shs";

pub(crate) async fn run(home: &Home, command: ShsCommand) -> Result<()> {
    match command {
        ShsCommand::Serve {
            listen,
            network,
            allow,
            allow_any,
            echo,
        } => {
            let network = network_key(&network)?;
            let admission = if allow_any {
                Admission::Any
            } else if !allow.is_empty() {
                let keys = allow
                    .iter()
                    .map(|k| parse_key(k))
                    .collect::<Result<HashSet<_>>>()?;
                Admission::Listed(keys)
            } else {
                home.ensure()?;
                Admission::Pinned(Arc::new(PinStore::open(&home.db_path()).await?))
            };
            let mode = if echo { Mode::Echo } else { Mode::Sink };
            let service = ShsService::bind(home, listen, network, admission, mode).await?;
            announce(&service.announcement());
            service.run().await
        }
        ShsCommand::Connect {
            target,
            server_key,
            network,
        } => connect(home, &target, server_key.as_deref(), network_key(&network)?).await,
    }
}

fn network_key(args: &NetworkArgs) -> Result<NetworkKey> {
    match &args.network_key {
        None => Ok(NetworkKey::default()),
        Some(hex) => Ok(NetworkKey::from_hex(hex)?),
    }
}

fn parse_key(text: &str) -> Result<[u8; 32]> {
    Ok(keyline_core::keys::parse_ed25519_public(text)?)
}

/// The base64 form SSB addresses use.
pub(crate) fn base64_key(key: &[u8; 32]) -> String {
    BASE64.encode(key)
}

/// Which clients a server lets in (decided after the client proved its key, before msg4).
#[derive(Clone)]
pub(crate) enum Admission {
    /// Every client key.
    Any,
    /// These keys only.
    Listed(HashSet<[u8; 32]>),
    /// Keys pinned under protocol `shs` (any peer name).
    Pinned(Arc<PinStore>),
}

impl Admission {
    async fn admits(&self, key: &PublicKey) -> bool {
        match self {
            Admission::Any => true,
            Admission::Listed(keys) => keys.contains(key.as_bytes()),
            Admission::Pinned(store) => match store.find_by_key(PIN_PROTOCOL, key.as_bytes()).await
            {
                Ok(pins) => !pins.is_empty(),
                Err(err) => {
                    tracing::warn!(%err, "pin store lookup failed; denying");
                    false
                }
            },
        }
    }

    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Admission::Any => "any",
            Admission::Listed(_) => "listed",
            Admission::Pinned(_) => "pinned",
        }
    }
}

/// What a server does with an accepted connection.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    /// Send the stream back.
    Echo,
    /// Write what arrives to stdout.
    Sink,
}

/// A bound SHS listener.
pub(crate) struct ShsService {
    listener: TcpListener,
    local: SocketAddr,
    config: ServerConfig,
    admission: Admission,
    mode: Mode,
}

impl ShsService {
    pub(crate) async fn bind(
        home: &Home,
        listen: SocketAddr,
        network: NetworkKey,
        admission: Admission,
        mode: Mode,
    ) -> Result<Self> {
        let identity = load_or_create(home)?;
        let keypair = Keypair::from_seed(identity.ed25519_seed());
        let listener = TcpListener::bind(listen)
            .await
            .map_err(CliError::io(format!("cannot listen on {listen}")))?;
        let local = listener
            .local_addr()
            .map_err(CliError::io("local address"))?;
        let config = ServerConfig::new(keypair).network(network);
        Ok(ShsService {
            listener,
            local,
            config,
            admission,
            mode,
        })
    }

    /// `{"listen", "public_key", "address"}`.
    pub(crate) fn announcement(&self) -> serde_json::Value {
        let key = base64_key(self.config.public_key().as_bytes());
        json!({
            "listen": self.local.to_string(),
            "public_key": key,
            "address": format!("net:{}~shs:{key}", self.local),
        })
    }

    /// Accepts connections until the process ends. Handshakes and connections beyond the
    /// limits are closed at once, before any crypto.
    pub(crate) async fn run(self) -> Result<()> {
        tracing::info!(listen = %self.local, admission = self.admission.describe(), mode = ?self.mode, "shs listening");
        let handshakes = Arc::new(Semaphore::new(SHS_MAX_HANDSHAKES_IN_FLIGHT));
        let connections = Arc::new(Semaphore::new(SHS_MAX_CONNECTIONS));
        let config = Arc::new(self.config);
        let mut limiter = HandshakeLimiter::new(
            LimiterConfig {
                global_rate: SHS_HANDSHAKE_RATE.0,
                global_burst: SHS_HANDSHAKE_RATE.1,
                per_source_rate: SHS_HANDSHAKE_RATE_PER_IP.0,
                per_source_burst: SHS_HANDSHAKE_RATE_PER_IP.1,
                max_sources: SHS_LIMITER_SOURCES,
            },
            std::time::Instant::now(),
        );
        loop {
            let (socket, from) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors or similar: back off instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            // Cheap checks before any crypto: the rate per source and overall, then the
            // number of handshakes and connections in progress.
            if let Err(why) = limiter.allow(from.ip(), std::time::Instant::now()) {
                tracing::debug!(%from, ?why, "handshake rate limit; closing");
                continue;
            }
            let (Ok(connection), Ok(handshake)) = (
                connections.clone().try_acquire_owned(),
                handshakes.clone().try_acquire_owned(),
            ) else {
                tracing::warn!(%from, "connection limit reached; closing");
                continue;
            };
            let (config, admission, mode) = (config.clone(), self.admission.clone(), self.mode);
            tokio::spawn(async move {
                let _connection = connection;
                let _ = socket.set_nodelay(true);
                let accepted = keyline_shs::accept(socket, &config, |key| async move {
                    admission.admits(&key).await.then_some(())
                })
                .await;
                drop(handshake);
                match accepted {
                    Ok((stream, ())) => {
                        let peer = base64_key(stream.peer().as_bytes());
                        tracing::info!(%from, %peer, "client authenticated");
                        let served = match mode {
                            Mode::Echo => echo(stream).await,
                            Mode::Sink => sink(stream).await,
                        };
                        match served {
                            Ok(bytes) => tracing::info!(%from, %peer, bytes, "connection closed"),
                            Err(err) => tracing::info!(%from, %peer, %err, "connection failed"),
                        }
                    }
                    Err(err) => tracing::info!(%from, %err, "handshake failed"),
                }
            });
        }
    }
}

fn stream_error(err: std::io::Error) -> ShsError {
    ShsError::from_io(err, Step::BoxStream)
}

/// Sends every byte back; our goodbye follows the peer's.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: keyline_shs::BoxStream<S>,
) -> std::result::Result<u64, ShsError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf).await.map_err(stream_error)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        stream.write_all(&buf[..n]).await.map_err(stream_error)?;
        stream.flush().await.map_err(stream_error)?;
    }
    stream.close().await?;
    Ok(total)
}

/// Writes what arrives to stdout; our goodbye follows the peer's.
async fn sink<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: keyline_shs::BoxStream<S>,
) -> std::result::Result<u64, ShsError> {
    let mut stdout = tokio::io::stdout();
    let total = tokio::io::copy(&mut stream, &mut stdout)
        .await
        .map_err(stream_error)?;
    stdout.flush().await.map_err(stream_error)?;
    stream.close().await?;
    Ok(total)
}

/// Where and whom to dial.
#[derive(Debug, PartialEq)]
struct Target {
    address: String,
    key: Option<[u8; 32]>,
}

/// Parses `net:HOST:PORT~shs:KEY` or `HOST:PORT`.
fn parse_target(text: &str) -> Result<Target> {
    if let Some(rest) = text.strip_prefix("net:") {
        let (address, key) = rest
            .split_once("~shs:")
            .ok_or_else(|| CliError::Usage(format!("{text:?}: expected net:HOST:PORT~shs:KEY")))?;
        return Ok(Target {
            address: address.to_string(),
            key: Some(parse_key(key)?),
        });
    }
    if text
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
    {
        return Ok(Target {
            address: text.to_string(),
            key: None,
        });
    }
    Err(CliError::Usage(format!(
        "{text:?} is not a target: use net:HOST:PORT~shs:KEY, or HOST:PORT with --server-key or a pin"
    )))
}

async fn connect(
    home: &Home,
    target: &str,
    server_key: Option<&str>,
    network: NetworkKey,
) -> Result<()> {
    let mut target = parse_target(target)?;
    if let Some(key) = server_key {
        let key = parse_key(key)?;
        if target.key.is_some_and(|k| k != key) {
            return Err(CliError::Usage(
                "the address and --server-key name different keys".into(),
            ));
        }
        target.key = Some(key);
    }
    let identity = load_or_create(home)?;
    let pins = PinStore::open(&home.db_path()).await?;
    let pinned = pins.get(PIN_PROTOCOL, &target.address).await?;
    let key = match (target.key, &pinned) {
        (Some(key), _) => key,
        (None, Some(pin)) => pin.key.as_slice().try_into().map_err(|_| {
            CliError::Usage(format!(
                "the pin for {} is not an Ed25519 key",
                target.address
            ))
        })?,
        (None, None) => {
            return Err(CliError::Usage(format!(
                "no key for {}: pass --server-key KEY, use net:HOST:PORT~shs:KEY, or pin it with `keyline pin add shs {} KEY`",
                target.address, target.address
            )));
        }
    };
    // A pinned key that differs is refused before connecting.
    let check = |policy| {
        pins.check(
            policy,
            PIN_PROTOCOL,
            &target.address,
            &key,
            unix_now(),
            None,
        )
    };
    if pinned.is_some() {
        check(keyline_core::Policy::Strict).await?;
    }
    let tcp = TcpStream::connect(&target.address)
        .await
        .map_err(CliError::io(format!(
            "cannot connect to {}",
            target.address
        )))?;
    let _ = tcp.set_nodelay(true);
    let keypair = Keypair::from_seed(identity.ed25519_seed());
    let stream =
        keyline_shs::connect(tcp, ClientConfig::new(keypair, key).network(network)).await?;
    // Trust on first use: pin the key now that the server proved it holds it.
    if pinned.is_none() {
        check(keyline_core::Policy::Tofu).await?;
    }
    netcat(stream).await
}

/// stdin → peer, peer → stdout; done when both goodbyes are.
async fn netcat<S: AsyncRead + AsyncWrite + Unpin>(
    stream: keyline_shs::BoxStream<S>,
) -> Result<()> {
    let close_timeout = keyline_shs::limits::CLOSE_TIMEOUT;
    let (mut reader, mut writer) = stream.split();
    let upload = async {
        let mut stdin = tokio::io::stdin();
        tokio::io::copy(&mut stdin, &mut writer)
            .await
            .map_err(stream_error)?;
        writer.shutdown().await.map_err(stream_error)?;
        Ok::<_, ShsError>(tokio::time::Instant::now())
    };
    let download = async {
        let mut stdout = tokio::io::stdout();
        tokio::io::copy(&mut reader, &mut stdout)
            .await
            .map_err(stream_error)?;
        stdout.flush().await.map_err(stream_error)?;
        Ok::<_, ShsError>(())
    };
    tokio::pin!(upload, download);
    let (mut uploaded, mut downloaded) = (None, false);
    while uploaded.is_none() || !downloaded {
        let deadline = uploaded.map(|at| at + close_timeout);
        tokio::select! {
            done = &mut upload, if uploaded.is_none() => uploaded = Some(done?),
            done = &mut download, if !downloaded => { done?; downloaded = true; }
            () = sleep_until(deadline), if deadline.is_some() && !downloaded => {
                return Err(ShsError::Timeout { step: Step::Close, after: close_timeout }.into());
            }
        }
    }
    Ok(())
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let key = *Keypair::from_seed(&[7u8; 32]).public().as_bytes();
        let b64 = base64_key(&key);
        assert_eq!(
            parse_target(&format!("net:127.0.0.1:8008~shs:{b64}")).unwrap(),
            Target {
                address: "127.0.0.1:8008".into(),
                key: Some(key)
            }
        );
        assert_eq!(
            parse_target("localhost:1").unwrap(),
            Target {
                address: "localhost:1".into(),
                key: None
            }
        );
        assert!(parse_target("nonsense").is_err());
        assert!(parse_target("net:127.0.0.1:8008").is_err());
    }
}
