//! `keyline.toml` in the home directory: settings of `keyline serve`. Every field is optional;
//! a missing file means the embedded defaults.
//!
//! ```toml
//! [shs]
//! enabled = true
//! listen = "127.0.0.1:8008"
//! network_key = "d4a1cb88a66f02f8db635ce26441cc5dac1b08420ceaac230839b755845a9ffb"
//! allow = "any"        # any | pinned; default: any on loopback, pinned elsewhere
//! echo = true
//!
//! [http]
//! enabled = true
//! listen = "127.0.0.1:7080"
//! origin = "http://127.0.0.1:7080"   # default: http://LISTEN
//!
//! [kps]
//! enabled = true
//! listen = "127.0.0.1:4433"
//! key = "/path/to/kps.key"   # default: <home>/kps.key
//!
//! [relay]
//! enabled = true
//! listen = "127.0.0.1:7070"
//! public_url = "ws://127.0.0.1:7070/"   # default: ws://LISTEN/
//!
//! [bunker]
//! enabled = true
//! relays = []                            # default: an embedded Nostr relay on relay_listen
//! relay_listen = "127.0.0.1:7447"
//! operator_listen = "127.0.0.1:7090"
//! ```

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

use crate::error::{CliError, Result};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    #[serde(default)]
    pub(crate) shs: ShsSection,
    #[serde(default)]
    pub(crate) kps: KpsSection,
    #[serde(default)]
    pub(crate) http: HttpSection,
    #[serde(default)]
    pub(crate) relay: RelaySection,
    #[serde(default)]
    pub(crate) bunker: BunkerSection,
}

/// `[bunker]`: the NIP-46 bunker with the threshold key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BunkerSection {
    #[serde(default = "yes")]
    pub(crate) enabled: bool,
    #[serde(default)]
    pub(crate) relays: Vec<String>,
    #[serde(default = "default_bunker_relay_listen")]
    pub(crate) relay_listen: SocketAddr,
    #[serde(default = "default_operator_listen")]
    pub(crate) operator_listen: SocketAddr,
}

impl Default for BunkerSection {
    fn default() -> Self {
        BunkerSection {
            enabled: true,
            relays: Vec::new(),
            relay_listen: default_bunker_relay_listen(),
            operator_listen: default_operator_listen(),
        }
    }
}

fn default_bunker_relay_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7447))
}

fn default_operator_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7090))
}

/// `[relay]`: the SBRP relay and its token issuer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RelaySection {
    #[serde(default = "yes")]
    pub(crate) enabled: bool,
    #[serde(default = "default_relay_listen")]
    pub(crate) listen: SocketAddr,
    pub(crate) public_url: Option<String>,
}

impl Default for RelaySection {
    fn default() -> Self {
        RelaySection {
            enabled: true,
            listen: default_relay_listen(),
            public_url: None,
        }
    }
}

fn default_relay_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7070))
}

/// `[http]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpSection {
    #[serde(default = "yes")]
    pub(crate) enabled: bool,
    #[serde(default = "default_http_listen")]
    pub(crate) listen: SocketAddr,
    pub(crate) origin: Option<String>,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            enabled: true,
            listen: default_http_listen(),
            origin: None,
        }
    }
}

fn default_http_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7080))
}

/// `[kps]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KpsSection {
    #[serde(default = "yes")]
    pub(crate) enabled: bool,
    #[serde(default = "default_kps_listen")]
    pub(crate) listen: SocketAddr,
    pub(crate) key: Option<std::path::PathBuf>,
}

impl Default for KpsSection {
    fn default() -> Self {
        KpsSection {
            enabled: true,
            listen: default_kps_listen(),
            key: None,
        }
    }
}

fn default_kps_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4433))
}

/// `[shs]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShsSection {
    #[serde(default = "yes")]
    pub(crate) enabled: bool,
    #[serde(default = "default_shs_listen")]
    pub(crate) listen: SocketAddr,
    pub(crate) network_key: Option<String>,
    pub(crate) allow: Option<AllowSetting>,
    #[serde(default = "yes")]
    pub(crate) echo: bool,
}

/// Who may connect.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AllowSetting {
    Any,
    Pinned,
}

impl Default for ShsSection {
    fn default() -> Self {
        ShsSection {
            enabled: true,
            listen: default_shs_listen(),
            network_key: None,
            allow: None,
            echo: true,
        }
    }
}

fn yes() -> bool {
    true
}

fn default_shs_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8008))
}

impl Config {
    /// Reads `path`, or the defaults when it does not exist.
    pub(crate) fn load(path: &Path) -> Result<Config> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|err| CliError::Usage(format!("{}: {err}", path.display()))),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(err) => Err(CliError::Io {
                what: format!("reading {}", path.display()),
                source: err,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_defaults() {
        let config: Config =
            toml::from_str("[shs]\nlisten = \"127.0.0.1:9\"\nallow = \"pinned\"\n").unwrap();
        assert_eq!(config.shs.listen.port(), 9);
        assert_eq!(config.shs.allow, Some(AllowSetting::Pinned));
        assert!(config.shs.echo);
        assert!(config.relay.enabled);
        assert_eq!(config.relay.listen.port(), 7070);
        let config: Config =
            toml::from_str("[relay]\nenabled = false\nlisten = \"127.0.0.1:9\"\n").unwrap();
        assert!(!config.relay.enabled);
        assert_eq!(config.relay.listen.port(), 9);
        assert!(
            toml::from_str::<Config>("[shs]\nlisen = 1\n").is_err(),
            "typos are errors"
        );
    }
}
