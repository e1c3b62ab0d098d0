//! Dialing a KPS address over WebRTC from Rust (spec §6.2, §6.3): a fresh ufrag, the ice-pwd
//! derived from the certhash, full ICE as the controlling agent towards the address, DTLS
//! active with the server's certificate pinned to the certhash.
//!
//! [`dial`] returns the connection once established (HELLO both ways). A wrong certhash
//! derives the wrong pwd and the wrong fingerprint: the server never answers, and the dial ends
//! at its deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::connection::{self, Connection, Outbound};
use super::peer::{self, Credentials};
use super::proto::control::Limits;
use super::proto::engine::Side;
use super::server::ice_pwd;
use crate::error::{Code, Error, Result};
use crate::{Address, Config, limits};

/// A new client ufrag: 8 random bytes as 16 lower-case hex characters (spec §6.1).
pub fn new_ufrag() -> Result<String> {
    let mut raw = [0u8; 8];
    getrandom::fill(&mut raw).map_err(|_| Error::InvalidInput("no randomness".into()))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// Dials `address` over WebRTC with the default [`Config`] (15 s timeout, 1 MiB / 8 MiB / 100
/// granted to the server).
pub async fn dial_webrtc(address: &Address) -> Result<crate::Connection> {
    dial_webrtc_with(address, &Config::default()).await
}

/// Dials `address` over WebRTC with the dial timeout and windows of `config`.
pub async fn dial_webrtc_with(address: &Address, config: &Config) -> Result<crate::Connection> {
    let limits = Limits {
        initial_max_stream_data: config.stream_window.into(),
        initial_max_data: config.connection_window.into(),
        initial_max_streams: config.max_streams.into(),
    };
    Ok(dial(address, config.dial_timeout, limits).await?.into())
}

/// Dials `address` over WebRTC and waits at most `timeout` for the connection to be
/// established (ICE, DTLS with the pinned certificate, SCTP, HELLO both ways). `wire_limits`
/// are the credit we grant the server.
pub async fn dial(address: &Address, timeout: Duration, wire_limits: Limits) -> Result<Connection> {
    let server = address.socket_addr();
    let digest = *address.certhash().digest();
    let bind = if server.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = crate::demux::bind_udp(bind)
        .and_then(tokio::net::UdpSocket::from_std)
        .map_err(|e| Error::io("binding the WebRTC client socket", e))?;
    // The host candidate must be a concrete address: connect() picks the route's source.
    socket
        .connect(server)
        .await
        .map_err(|e| Error::io("routing to the server", e))?;
    let local = socket
        .local_addr()
        .map_err(|e| Error::io("reading the local address", e))?;
    let socket = Arc::new(socket);
    let ufrag = new_ufrag()?;
    let credentials = Credentials {
        pwd: ice_pwd(&digest, &ufrag),
        ufrag,
    };
    let rtc = peer::client_rtc(&digest, &credentials, local, server, Instant::now())?;
    let (inbox_tx, inbox_rx) = mpsc::channel(limits::WEBRTC_PEER_INBOX);
    let reader = {
        let socket = Arc::clone(&socket);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok(n) = socket.recv(&mut buf).await {
                let packet = (Instant::now(), server, Bytes::copy_from_slice(&buf[..n]));
                if inbox_tx.send(packet).await.is_err() {
                    break;
                }
            }
        })
    };
    let (connection, driver) = connection::new(
        Side::Client,
        rtc,
        local,
        server,
        Outbound::Socket(socket),
        wire_limits,
    );
    tokio::spawn(async move {
        driver.run(inbox_rx).await;
        reader.abort();
    });
    match tokio::time::timeout(timeout, connection.established()).await {
        Ok(Ok(())) => Ok(connection),
        Ok(Err(err)) => {
            connection.close(Code::Closed);
            Err(err)
        }
        Err(_) => {
            // A wrong certhash derives the wrong pwd: the server stays silent until here.
            connection.close(Code::Timeout);
            Err(Error::Timeout {
                what: "WebRTC dial (ICE, DTLS, SCTP, HELLO)",
                after: timeout,
            })
        }
    }
}
