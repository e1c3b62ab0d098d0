//! Dialing: pinned QUIC client connections (spec §5).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;

use crate::address::Address;
use crate::certhash::Certhash;
use crate::connection::Connection;
use crate::demux::bind_udp;
use crate::error::{Error, Result};
use crate::quic::config::{Config, client_config};
use crate::quic::connection::{Connection as QuicConnection, connection_error};

/// Dials a KPS address over QUIC with the default [`Config`] (15 s timeout).
pub async fn dial(addr: &Address) -> Result<Connection> {
    dial_with(addr, &Config::default()).await
}

/// Dials a KPS address with an explicit configuration.
pub async fn dial_with(addr: &Address, config: &Config) -> Result<Connection> {
    dial_pinned(addr.socket_addr(), &[addr.certhash()], config).await
}

/// Dials an endpoint accepting any certificate whose certhash is in `pins` (a server
/// rotating its identity). An empty pin set is refused: there is no unpinned dial.
pub async fn dial_pinned(
    endpoint_addr: SocketAddr,
    pins: &[Certhash],
    config: &Config,
) -> Result<Connection> {
    let (client, mismatch) = client_config(pins, config)?;
    let local = match endpoint_addr.ip() {
        IpAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        IpAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let socket = bind_udp(local).map_err(|e| Error::io("binding the UDP socket", e))?;
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        socket,
        std::sync::Arc::new(quinn::TokioRuntime),
    )
    .map_err(|e| Error::io("starting the QUIC endpoint", e))?;
    // The IP literal as server name: rustls sends no SNI for an IP address.
    let server_name = endpoint_addr.ip().to_string();
    let connecting = endpoint
        .connect_with(client, endpoint_addr, &server_name)
        .map_err(|e| Error::InvalidInput(format!("cannot dial {endpoint_addr}: {e}")))?;
    let result = tokio::time::timeout(config.dial_timeout, connecting).await;
    match result {
        Ok(Ok(conn)) => Ok(QuicConnection::new(conn, endpoint_addr, Some(endpoint)).into()),
        Ok(Err(_)) if mismatch.load(Ordering::Relaxed) => Err(Error::PinMismatch),
        Ok(Err(e)) => Err(connection_error(&e)),
        Err(_) => Err(Error::Timeout {
            what: "dialing",
            after: config.dial_timeout,
        }),
    }
}
