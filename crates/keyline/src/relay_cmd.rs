//! `keyline relay serve`: an SBRP relay with its token issuer.

use std::net::SocketAddr;

use ed25519_dalek::SigningKey;
use keyline_core::Home;
use keyline_relay::RelayConfig;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;
use zeroize::Zeroizing;

use crate::cli::RelayCommand;
use crate::error::{CliError, Result};
use crate::output::announce;

/// The issuer's signing key (64 hex characters, mode 0600) in the home directory.
const SIGNING_KEY_FILE: &str = "relay-issuer.key";

pub(crate) async fn run(home: &Home, command: RelayCommand) -> Result<()> {
    match command {
        RelayCommand::Serve { listen, public_url } => {
            let service = RelayService::bind(home, listen, public_url).await?;
            announce(&service.announcement());
            service.run().await
        }
    }
}

/// A bound relay.
pub(crate) struct RelayService {
    listener: TcpListener,
    config: RelayConfig,
    announcement: serde_json::Value,
}

/// The issuer's signing key: loaded from the home, or created there on first use.
fn signing_key(home: &Home) -> Result<(String, Zeroizing<[u8; 32]>)> {
    home.ensure()?;
    let path = home.path().join(SIGNING_KEY_FILE);
    let (text, created) = keyline_core::load_or_create_secret_file(&path, || {
        let mut seed = Zeroizing::new([0u8; 32]);
        if getrandom::fill(seed.as_mut()).is_err() {
            // An empty file fails to parse below instead of holding a weak key.
            return Zeroizing::new(String::new());
        }
        Zeroizing::new(hex::encode(seed.as_ref()))
    })?;
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), seed.as_mut()).map_err(|_| {
        CliError::Usage(format!(
            "{} must hold 64 hex characters (an Ed25519 seed); remove it to create a new key",
            path.display()
        ))
    })?;
    if created {
        tracing::info!(path = %path.display(), "created the relay issuer's signing key");
    }
    let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    let kid = format!("k-{}", &hex::encode(Sha256::digest(public))[..16]);
    Ok((kid, seed))
}

/// `ws://` → `http://`, `wss://` → `https://`, no trailing slash.
fn http_base(url: &str) -> String {
    let base = if let Some(rest) = url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else if let Some(rest) = url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else {
        url.to_owned()
    };
    base.split(['?', '#'])
        .next()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned()
}

impl RelayService {
    pub(crate) async fn bind(
        home: &Home,
        listen: SocketAddr,
        public_url: Option<String>,
    ) -> Result<Self> {
        if let Some(url) = &public_url
            && !(url.starts_with("ws://") || url.starts_with("wss://"))
        {
            return Err(CliError::Usage(format!(
                "--public-url {url:?}: expected a ws:// or wss:// URL"
            )));
        }
        let signing_key = signing_key(home)?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(CliError::io(format!("cannot listen on {listen}")))?;
        let local = listener
            .local_addr()
            .map_err(CliError::io("local address"))?;
        let url = public_url.unwrap_or_else(|| format!("ws://{local}/"));
        let base = http_base(&url);
        let mut config = RelayConfig::default();
        config.public_url = Some(url.clone());
        config.issuer_enabled = true;
        config.signing_key = Some(signing_key);
        let announcement = json!({
            "listen": local.to_string(),
            "url": url,
            "jwks": format!("{base}/.well-known/jwks.json"),
            "sessions": format!("{base}/v1/sessions"),
        });
        Ok(RelayService {
            listener,
            config,
            announcement,
        })
    }

    /// `{"listen", "url", "jwks", "sessions"}`.
    pub(crate) fn announcement(&self) -> serde_json::Value {
        self.announcement.clone()
    }

    pub(crate) async fn run(self) -> Result<()> {
        tracing::info!(url = %self.announcement["url"], "sbrp relay listening");
        keyline_relay::serve(
            self.listener,
            self.config,
            crate::serve_cmd::shutdown_signal(),
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_bases() {
        assert_eq!(http_base("ws://127.0.0.1:7070/"), "http://127.0.0.1:7070");
        assert_eq!(
            http_base("wss://relay.example/x/"),
            "https://relay.example/x"
        );
    }
}
