//! The listener: one UDP socket, the demux, a quinn endpoint, an accept queue (spec §4.4).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use tokio::sync::{Mutex, Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::address::Address;
use crate::connection::Connection;
use crate::demux::{Demux, DemuxSocket, bind_udp};
use crate::error::{Code, Error, Result};
use crate::identity::Identity;
use crate::quic::config::{Config, server_config};
use crate::quic::connection::Connection as QuicConnection;

/// Parses a listen address: `host:port`, `[v6]:port`, or a bare `:port` meaning the
/// dual-stack wildcard `[::]:port`.
pub fn parse_listen(s: &str) -> Result<SocketAddr> {
    if let Some(port) = s.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| Error::InvalidInput(format!("bad listen port in {s:?}")))?;
        return Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port));
    }
    s.parse().map_err(|_| {
        Error::InvalidInput(format!(
            "bad listen address {s:?}; expected ip:port, [ipv6]:port or :port"
        ))
    })
}

/// A KPS listener: accepts QUIC and (feature `webrtc`, [`Config::webrtc`]) WebRTC
/// connections on one UDP port. Dropping it stops accepting; established connections live on.
pub struct Listener {
    endpoint: quinn::Endpoint,
    identity: Identity,
    demux: Arc<Demux>,
    local: SocketAddr,
    incoming: Mutex<mpsc::Receiver<Connection>>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("local", &self.local)
            .field("certhash", &self.identity.certhash())
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// Binds `listen` (see [`parse_listen`]) with the default [`Config`]. Must be called inside
    /// a tokio runtime.
    pub fn bind(listen: &str, identity: Identity) -> Result<Listener> {
        Listener::bind_with(parse_listen(listen)?, identity, Config::default())
    }

    /// Binds a socket address with an explicit configuration.
    pub fn bind_with(addr: SocketAddr, identity: Identity, config: Config) -> Result<Listener> {
        let socket = bind_udp(addr).map_err(|e| Error::io("binding the UDP socket", e))?;
        let demux = Arc::new(Demux::new(config.demux_inbox));
        let shim = DemuxSocket::new(socket, demux.clone())
            .map_err(|e| Error::io("configuring the UDP socket", e))?;
        let local = quinn::AsyncUdpSocket::local_addr(&*shim)
            .map_err(|e| Error::io("reading the local address", e))?;
        let endpoint = quinn::Endpoint::new_with_abstract_socket(
            quinn::EndpointConfig::default(),
            Some(server_config(&identity, &config)?),
            shim,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| Error::io("starting the QUIC endpoint", e))?;
        let (tx, rx) = mpsc::channel(config.accept_backlog.max(1));
        let mut tasks = Vec::new();
        #[cfg(feature = "webrtc")]
        if config.webrtc {
            let limits = crate::webrtc::proto::control::Limits {
                initial_max_stream_data: config.stream_window.into(),
                initial_max_data: config.connection_window.into(),
                initial_max_streams: config.max_streams.into(),
            };
            let (mut rtc, route) =
                crate::webrtc::server::spawn(Arc::clone(&demux), identity.clone(), local, limits);
            let tx = tx.clone();
            tasks.push(route);
            tasks.push(tokio::spawn(async move {
                while let Some(conn) = rtc.recv().await {
                    if tx.send(conn.into()).await.is_err() {
                        break;
                    }
                }
            }));
        }
        tasks.push(tokio::spawn(accept_loop(endpoint.clone(), tx, config)));
        Ok(Listener {
            endpoint,
            identity,
            demux,
            local,
            incoming: Mutex::new(rx),
            tasks,
        })
    }

    /// The next established connection, QUIC or WebRTC ([`Connection::transport`]).
    pub async fn accept(&self) -> Result<Connection> {
        self.incoming
            .lock()
            .await
            .recv()
            .await
            .ok_or(Error::ListenerClosed)
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The dial address for an advertised IP; with `None`, the bound IP, or `127.0.0.1` for a
    /// wildcard bind.
    pub fn address(&self, ip: Option<IpAddr>) -> Address {
        let ip = ip.unwrap_or_else(|| {
            let bound = self.local.ip();
            if bound.is_unspecified() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                bound
            }
        });
        // The port of a bound socket is never 0.
        Address::from_parts(ip, self.local.port(), self.identity.certhash())
    }

    /// The identity presented to clients.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The demux state (non-QUIC inbox, WebRTC peer table) for the WebRTC transport.
    pub fn demux(&self) -> &Arc<Demux> {
        &self.demux
    }

    /// Stops accepting and closes every connection with `code`.
    pub fn close(&self, code: Code) {
        for task in &self.tasks {
            task.abort();
        }
        self.endpoint
            .close(quinn::VarInt::from_u32(code.wire()), b"");
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.endpoint.set_server_config(None);
    }
}

async fn accept_loop(endpoint: quinn::Endpoint, tx: mpsc::Sender<Connection>, config: Config) {
    let handshakes = Arc::new(Semaphore::new(config.max_handshakes.max(1)));
    while let Some(incoming) = endpoint.accept().await {
        // `open_connections` counts established and handshaking connections.
        if endpoint.open_connections() >= config.max_connections {
            tracing::debug!(remote = %incoming.remote_address(), "connection limit reached; refused");
            incoming.refuse();
            continue;
        }
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            tracing::debug!("handshake limit reached; refused");
            incoming.refuse();
            continue;
        };
        let tx = tx.clone();
        let timeout = config.handshake_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let connecting = match incoming.accept() {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "incoming connection failed");
                    return;
                }
            };
            match tokio::time::timeout(timeout, connecting).await {
                Ok(Ok(conn)) => {
                    let remote = conn.remote_address();
                    drop(_permit);
                    let _ = tx
                        .send(QuicConnection::new(conn, remote, None).into())
                        .await;
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "handshake failed"),
                Err(_) => tracing::debug!("handshake timed out"),
            }
        });
    }
}
