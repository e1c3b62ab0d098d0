//! `keyline serve`: every service in one process on embedded defaults.

use std::sync::Arc;

use keyline_core::{Home, PinStore};
use keyline_shs::NetworkKey;
use serde_json::json;

use crate::cli::ServeArgs;
use crate::config::{AllowSetting, Config};
use crate::error::Result;
use crate::output::announce;
use crate::shs_cmd::{Admission, Mode, ShsService};

pub(crate) async fn run(home: &Home, args: ServeArgs) -> Result<()> {
    home.ensure()?;
    let config = Config::load(&home.config_path())?;
    let mut services = serde_json::Map::new();
    let mut tasks = tokio::task::JoinSet::new();

    if config.shs.enabled && !args.no_shs {
        let listen = args.shs_listen.unwrap_or(config.shs.listen);
        let network = match &config.shs.network_key {
            Some(hex) => NetworkKey::from_hex(hex)?,
            None => NetworkKey::default(),
        };
        // Safe default: anyone may connect on loopback, only pinned clients elsewhere.
        let allow = config.shs.allow.unwrap_or(if listen.ip().is_loopback() {
            AllowSetting::Any
        } else {
            AllowSetting::Pinned
        });
        let admission = match allow {
            AllowSetting::Any => Admission::Any,
            AllowSetting::Pinned => {
                Admission::Pinned(Arc::new(PinStore::open(&home.db_path()).await?))
            }
        };
        let mode = if config.shs.echo {
            Mode::Echo
        } else {
            Mode::Sink
        };
        let service = ShsService::bind(home, listen, network, admission, mode).await?;
        let mut shs = service.announcement();
        shs["allow"] = json!(format!("{allow:?}").to_lowercase());
        shs["echo"] = json!(config.shs.echo);
        services.insert("shs".into(), shs);
        tasks.spawn(service.run());
    }
    if config.http.enabled && !args.no_http {
        let listen = args.http_listen.unwrap_or(config.http.listen);
        let service = crate::http_cmd::HttpService::bind(
            home,
            listen,
            config.http.origin.as_deref(),
            crate::cli::HttpKey::Ed25519,
        )
        .await?;
        services.insert("http".into(), service.announcement());
        tasks.spawn(service.run());
    }
    if config.kps.enabled && !args.no_kps {
        let listen = args.kps_listen.unwrap_or(config.kps.listen);
        let listener = crate::kps_cmd::bind(home, &listen.to_string(), config.kps.key.clone())?;
        let address = listener.address(None);
        services.insert(
            "kps".into(),
            crate::kps_cmd::announcement(&listener, &address),
        );
        tasks.spawn(async move { Ok(keyline_kps::echo::serve(&listener).await?) });
    }
    if config.relay.enabled && !args.no_relay {
        let listen = args.relay_listen.unwrap_or(config.relay.listen);
        let service =
            crate::relay_cmd::RelayService::bind(home, listen, config.relay.public_url.clone())
                .await?;
        services.insert("relay".into(), service.announcement());
        tasks.spawn(service.run());
    }
    if config.bunker.enabled && !args.no_bunker {
        let bunker_args = crate::cli::BunkerArgs {
            relay_listen: args
                .bunker_relay_listen
                .unwrap_or(config.bunker.relay_listen),
            operator_listen: args
                .bunker_operator_listen
                .unwrap_or(config.bunker.operator_listen),
            approval_timeout: 120,
        };
        let service = crate::bunker_cmd::BunkerService::start(
            home,
            config.bunker.relays.clone(),
            &bunker_args,
            &crate::bunker_cmd::default_kek_args(),
        )
        .await?;
        services.insert("bunker".into(), service.announcement());
        tasks.spawn(service.run());
    }
    if services.is_empty() {
        return Err(crate::error::CliError::Usage(
            "every service is turned off".into(),
        ));
    }
    let listen: serde_json::Map<_, _> = services
        .iter()
        .map(|(name, s)| (name.clone(), s["listen"].clone()))
        .collect();
    announce(&json!({"listen": listen, "home": home.path(), "services": services}));
    for (name, service) in &services {
        let reach = service["address"]
            .as_str()
            .or_else(|| service["origin"].as_str())
            .or_else(|| service["url"].as_str())
            .or_else(|| service["bunker_uri"].as_str())
            .unwrap_or_default();
        tracing::info!("{name}: {reach}");
    }
    tokio::select! {
        Some(done) = tasks.join_next() => match done {
            Ok(result) => result,
            Err(err) => Err(crate::error::CliError::Usage(format!("a service stopped: {err}"))),
        },
        () = shutdown_signal() => {
            tracing::info!("stopping");
            Ok(())
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
