//! `keyline http serve|fetch`.

use std::net::SocketAddr;
use std::sync::Arc;

use keyline_core::{Home, Identity, PinStore, Policy};
use keyline_http::client::{ClientScheme, ServerTrust, SignedClient};
use keyline_http::server::ServerConfig;
use keyline_http::{PublicKey, PublicOrigin, SigningKey};
use serde_json::json;

use crate::cli::{FetchArgs, HttpCommand, HttpKey, HttpScheme};
use crate::error::{CliError, Result};
use crate::identity_cmd::load_or_create;
use crate::output::announce;

pub(crate) async fn run(home: &Home, command: HttpCommand) -> Result<()> {
    match command {
        HttpCommand::Serve {
            listen,
            origin,
            key,
        } => {
            let service = HttpService::bind(home, listen, origin.as_deref(), key).await?;
            announce(&service.announcement());
            service.run().await
        }
        HttpCommand::Fetch(args) => fetch(home, args).await,
    }
}

fn signing_key(identity: &Identity, key: HttpKey) -> Result<SigningKey> {
    Ok(match key {
        HttpKey::Ed25519 => SigningKey::ed25519_from_seed(identity.ed25519_seed()),
        HttpKey::Bip340 => SigningKey::bip340_from_secret(identity.secp256k1_secret())?,
    })
}

/// A bound demo API server.
pub(crate) struct HttpService {
    listener: tokio::net::TcpListener,
    origin: String,
    config: ServerConfig,
}

impl HttpService {
    pub(crate) async fn bind(
        home: &Home,
        listen: SocketAddr,
        origin: Option<&str>,
        key: HttpKey,
    ) -> Result<Self> {
        let identity = load_or_create(home)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(CliError::io(format!("cannot listen on {listen}")))?;
        let local = listener
            .local_addr()
            .map_err(CliError::io("local address"))?;
        let origin = origin.map_or_else(|| format!("http://{local}"), str::to_string);
        let config = ServerConfig::new(PublicOrigin::new(&origin)?, signing_key(&identity, key)?)?;
        Ok(HttpService {
            listener,
            origin,
            config,
        })
    }

    /// `{"listen", "origin", "keyid"}`.
    pub(crate) fn announcement(&self) -> serde_json::Value {
        json!({
            "listen": self.listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            "origin": self.origin,
            "keyid": self.config.public_key().keyid(),
        })
    }

    pub(crate) async fn run(self) -> Result<()> {
        tracing::info!(origin = %self.origin, keyid = %self.config.public_key().keyid(), "http demo API listening");
        keyline_http::server::serve_with_shutdown(
            self.listener,
            self.config,
            crate::serve_cmd::shutdown_signal(),
        )
        .await?;
        Ok(())
    }
}

async fn fetch(home: &Home, args: FetchArgs) -> Result<()> {
    let identity = load_or_create(home)?;
    let (key, scheme) = match args.scheme {
        HttpScheme::Keyline => (
            signing_key(&identity, args.key)?,
            ClientScheme::KeylineHttpV1,
        ),
        HttpScheme::Nip98 => (
            signing_key(&identity, HttpKey::Bip340)?,
            ClientScheme::Nip98,
        ),
    };
    let trust = match &args.server_key {
        Some(keyid) => ServerTrust::Key(
            PublicKey::from_keyid(keyid)
                .map_err(|e| CliError::Usage(format!("--server-key {keyid:?}: {e}")))?,
        ),
        None => {
            home.ensure()?;
            ServerTrust::Pins {
                store: Arc::new(PinStore::open(&home.db_path()).await?),
                policy: Policy::Tofu,
            }
        }
    };
    let client = SignedClient::new(key, trust)?
        .with_scheme(scheme)?
        .sealed(args.seal);
    let body = match &args.data {
        None => Vec::new(),
        Some(data) => match data.strip_prefix('@') {
            Some(path) => std::fs::read(path).map_err(CliError::io(format!("reading {path}")))?,
            None => data.clone().into_bytes(),
        },
    };
    let headers = args
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(name, value)| (name.trim(), value.trim()))
                .ok_or_else(|| CliError::Usage(format!("-H {h:?}: expected \"Name: value\"")))
        })
        .collect::<Result<Vec<_>>>()?;
    let response = client
        .send(
            &args.request.to_ascii_uppercase(),
            &args.url,
            &headers,
            body,
        )
        .await?;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if args.include {
        let _ = writeln!(out, "HTTP {}", response.status);
        for (name, value) in response.headers.iter() {
            let _ = writeln!(out, "{name}: {value}");
        }
        let _ = writeln!(out);
    }
    let _ = out.write_all(&response.body);
    let _ = out.flush();
    if response.status >= 400 {
        return Err(CliError::Failed(format!(
            "the server answered {} (verified, signed by {})",
            response.status,
            response.server_key.keyid()
        )));
    }
    Ok(())
}
