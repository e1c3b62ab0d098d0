//! Plain quinn endpoints with exactly the TLS and transport settings of [`crate::Listener`]
//! and [`crate::dial`], for `keyline bench kps` to measure the listener's overhead (the
//! demux socket, the accept path) against. Not a stable API.

use std::net::SocketAddr;

use crate::certhash::Certhash;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::quic::config::{Config, client_config, server_config};

/// A quinn server endpoint on its own UDP socket, without keyline's demux.
pub fn plain_server(
    identity: &Identity,
    config: &Config,
    addr: SocketAddr,
) -> Result<quinn::Endpoint> {
    quinn::Endpoint::server(server_config(identity, config)?, addr)
        .map_err(|e| Error::io("starting the plain QUIC endpoint", e))
}

/// A quinn client endpoint and the pinned client configuration [`crate::dial`] uses.
pub fn plain_client(
    pin: &Certhash,
    config: &Config,
) -> Result<(quinn::Endpoint, quinn::ClientConfig)> {
    let (client, _) = client_config(&[*pin], config)?;
    let endpoint = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0)))
        .map_err(|e| Error::io("starting the plain QUIC client", e))?;
    Ok((endpoint, client))
}
