//! The node's server: accepts pinned coordinators over SHS and answers their requests with a
//! shared [`NodeCore`].
//!
//! ```no_run
//! # async fn run() -> keyline_signer::Result<()> {
//! use std::sync::{Arc, Mutex};
//! use keyline_signer::net::node::{NodeServer, NodeServerConfig};
//! use keyline_signer::node::{NodeCore, NodePolicy};
//!
//! let keypair = keyline_shs::Keypair::generate();
//! let coordinator_key = [7u8; 32]; // the pinned coordinator's Ed25519 key
//! let config = NodeServerConfig::new(keypair, vec![coordinator_key]);
//! let core = Arc::new(Mutex::new(NodeCore::new(NodePolicy::default())));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! NodeServer::new(config, core).serve(listener, std::future::pending()).await;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use keyline_shs::{Keypair, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::timeout;

use super::{link, peer_name, protocol, read_frame, since, unix_ms, write_frame};
use crate::descriptor::{NodeDescriptor, NodeKeys};
use crate::limits::{LINK_HELLO_TIMEOUT, NODE_CEREMONIES, NODE_IDLE_TIMEOUT, NODE_MAX_LINKS};
use crate::node::NodeCore;
use crate::node_ceremony::{CurrentShare, NodeCeremony, NodeCeremonyEvent};
use crate::store::{ShareStatus, ShareVault};
use crate::wire::{self, Body, CeremonyId, CeremonyKind, ErrorCode, Message, Role};
use crate::{Error, OsRng, Result};

/// How a node serves: its SHS identity, the coordinators it pins, its signed descriptor.
#[derive(Clone)]
pub struct NodeServerConfig {
    shs: ServerConfig,
    coordinators: Vec<[u8; 32]>,
    descriptor: Vec<u8>,
}

impl std::fmt::Debug for NodeServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeServerConfig")
            .field("node", &peer_name(self.shs.public_key().as_bytes()))
            .field("coordinators", &self.coordinators.len())
            .finish_non_exhaustive()
    }
}

impl NodeServerConfig {
    /// A node with identity `keypair` serving the coordinators whose keys are `coordinators`.
    pub fn new(keypair: Keypair, coordinators: Vec<[u8; 32]>) -> Self {
        Self {
            shs: ServerConfig::new(keypair).network(super::network_key()),
            coordinators,
            descriptor: Vec::new(),
        }
    }

    /// The configuration of a node with `keys` (its SHS identity is the Ed25519 key of
    /// `keys`; `Hello` carries `descriptor`, which must be one of `keys`).
    pub fn for_node(
        keys: &NodeKeys,
        descriptor: &NodeDescriptor,
        coordinators: Vec<[u8; 32]>,
    ) -> Self {
        let secret = keys.to_secret_bytes();
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&secret[..32]);
        Self::new(Keypair::from_seed(&seed), coordinators).descriptor(descriptor.encode().to_vec())
    }

    /// The signed node descriptor sent in `Hello` (empty until set).
    pub fn descriptor(mut self, descriptor: Vec<u8>) -> Self {
        self.descriptor = descriptor;
        self
    }

    /// This node's public key.
    pub fn public_key(&self) -> [u8; 32] {
        *self.shs.public_key().as_bytes()
    }
}

/// What a node needs to take part in key ceremonies (spec §8.7, §8.8): its keys, the
/// descriptors of the nodes it accepts as fellow participants, and where committed shares are
/// sealed (`None`: memory only, for tests).
pub struct CeremonyHost {
    keys: Arc<NodeKeys>,
    pinned: Vec<NodeDescriptor>,
    vault: Option<ShareVault>,
    running: tokio::sync::Mutex<BTreeMap<CeremonyId, NodeCeremony>>,
}

impl std::fmt::Debug for CeremonyHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CeremonyHost")
            .field("node", &peer_name(&self.keys.node_id()))
            .field("pinned", &self.pinned.len())
            .finish_non_exhaustive()
    }
}

impl CeremonyHost {
    /// A host for node `keys`, accepting the nodes of `pinned` as participants and sealing
    /// committed shares into `vault`.
    pub fn new(
        keys: Arc<NodeKeys>,
        pinned: Vec<NodeDescriptor>,
        vault: Option<ShareVault>,
    ) -> Self {
        Self {
            keys,
            pinned,
            vault,
            running: tokio::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// The node's keys.
    pub fn keys(&self) -> &Arc<NodeKeys> {
        &self.keys
    }
}

/// Serves coordinators: one task per link, at most [`NODE_MAX_LINKS`] at once.
#[derive(Clone)]
pub struct NodeServer {
    config: Arc<NodeServerConfig>,
    core: Arc<Mutex<NodeCore>>,
    host: Option<Arc<CeremonyHost>>,
    start: Instant,
    links: Arc<Semaphore>,
}

impl std::fmt::Debug for NodeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeServer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl NodeServer {
    /// A server answering with `core` (shared with whoever loads keys into it).
    pub fn new(config: NodeServerConfig, core: Arc<Mutex<NodeCore>>) -> Self {
        Self {
            config: Arc::new(config),
            core,
            host: None,
            start: Instant::now(),
            links: Arc::new(Semaphore::new(NODE_MAX_LINKS)),
        }
    }

    /// Takes part in key ceremonies through `host` (without one, ceremony messages are
    /// answered `unsupported_type`).
    pub fn with_ceremonies(mut self, host: CeremonyHost) -> Self {
        self.host = Some(Arc::new(host));
        self
    }

    /// The signing core (to load keys into, or inspect).
    pub fn core(&self) -> &Arc<Mutex<NodeCore>> {
        &self.core
    }

    /// Accepts connections on `listener` until `shutdown` completes (or this future is
    /// dropped); then every link closes. A ticker wipes expired nonces every second even when
    /// no request arrives.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tokio::pin!(shutdown);
        // Dropping the set (shutdown, or this future being dropped) ends every link.
        let mut links = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = links.join_next(), if !links.is_empty() => {}
                _ = tick.tick() => lock(&self.core).on_timeout(since(self.start)),
                accepted = listener.accept() => {
                    let Ok((stream, addr)) = accepted else { continue };
                    let Ok(permit) = Arc::clone(&self.links).try_acquire_owned() else {
                        tracing::warn!(%addr, "node link limit reached; dropping connection");
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let server = self.clone();
                    links.spawn(async move {
                        if let Err(e) = server.serve_link(stream).await {
                            tracing::info!(%addr, error = %e, "node link closed");
                        }
                        drop(permit);
                    });
                }
            }
        }
        links.shutdown().await;
    }

    /// Serves one coordinator on `stream` (TCP or an in-memory pipe) until it closes.
    pub async fn serve_link<S>(&self, stream: S) -> Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let pinned = &self.config.coordinators;
        let (mut boxed, coordinator) = keyline_shs::accept(stream, &self.config.shs, |peer| {
            let key = *peer.as_bytes();
            async move { pinned.contains(&key).then_some(key) }
        })
        .await
        .map_err(|e| link("coordinator", format!("handshake: {e}")))?;
        let peer = peer_name(&coordinator);

        // Hello from the coordinator, then our Hello and HelloAck.
        let hello = timeout(LINK_HELLO_TIMEOUT, read_frame(&mut boxed, &peer))
            .await
            .map_err(|_| link(&peer, "no Hello in time".into()))??
            .ok_or_else(|| link(&peer, "closed before Hello".into()))?;
        let version = match &hello.body {
            Body::Hello {
                min_version,
                max_version,
                role: Role::Coordinator,
                ..
            } => wire::negotiate_version(*min_version, *max_version),
            _ => return Err(protocol(&peer, "expected a coordinator Hello".into())),
        };
        let Some(version) = version else {
            let reply = Message::new(
                hello.req_id,
                Body::error(ErrorCode::UNSUPPORTED_VERSION, None, "no common version"),
            );
            write_frame(&mut boxed, &reply, &peer).await?;
            return Err(protocol(&peer, "no common protocol version".into()));
        };
        let ours = Body::Hello {
            min_version: wire::VERSION,
            max_version: wire::VERSION,
            role: Role::Node,
            descriptor: self.config.descriptor.clone(),
        };
        write_frame(&mut boxed, &Message::new(hello.req_id, ours), &peer).await?;
        let ack = Body::HelloAck {
            version,
            clock_ms: unix_ms(),
        };
        write_frame(&mut boxed, &Message::new(hello.req_id, ack), &peer).await?;
        tracing::debug!(%peer, "node link up");

        loop {
            let frame = match timeout(NODE_IDLE_TIMEOUT, read_frame(&mut boxed, &peer)).await {
                Err(_) => return Err(link(&peer, "idle timeout".into())),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(frame))) => frame,
                Ok(Err(Error::UnsupportedType { ty, req_id })) => {
                    let reply = Body::error(
                        ErrorCode::UNSUPPORTED_TYPE,
                        None,
                        &format!("type {ty:#04x} is not supported"),
                    );
                    write_frame(&mut boxed, &Message::new(req_id, reply), &peer).await?;
                    continue;
                }
                Ok(Err(e @ Error::Link { .. })) => return Err(e),
                Ok(Err(e)) => {
                    let reply = Body::error(ErrorCode::MALFORMED, None, "undecodable frame");
                    let _ = write_frame(&mut boxed, &Message::new(0, reply), &peer).await;
                    return Err(protocol(&peer, e.to_string()));
                }
            };
            if frame.body.ceremony_id().is_some() {
                for reply in self.ceremony(&frame.body).await {
                    write_frame(&mut boxed, &Message::new(frame.req_id, reply), &peer).await?;
                }
            } else if let Some(reply) = self.handle(&frame.body) {
                write_frame(&mut boxed, &Message::new(frame.req_id, reply), &peer).await?;
            }
        }
        let _ = boxed.close().await;
        Ok(())
    }

    /// Runs a ceremony message through its machine; committed shares are sealed and stored
    /// **before** the `Committed` reply goes out, then served.
    async fn ceremony(&self, body: &Body) -> Vec<Body> {
        let Some(host) = &self.host else {
            return vec![Body::error(
                ErrorCode::UNSUPPORTED_TYPE,
                None,
                "this node takes no part in ceremonies",
            )];
        };
        let Some(ceremony_id) = body.ceremony_id().copied() else {
            return Vec::new();
        };
        let now = since(self.start);
        let mut running = host.running.lock().await;
        // Forget finished and expired machines (their secrets are already wiped).
        running.retain(|_, m| {
            m.on_timeout(now);
            !m.is_finished()
        });
        if !running.contains_key(&ceremony_id) {
            let Body::CeremonyStart { kind, key_id, .. } = body else {
                return vec![Body::error(
                    ErrorCode::UNKNOWN_SESSION,
                    None,
                    "no such ceremony",
                )];
            };
            if running.len() >= NODE_CEREMONIES {
                return vec![Body::error(ErrorCode::BUSY, None, "too many ceremonies")];
            }
            let current = match kind {
                CeremonyKind::Refresh => match lock(&self.core).current_share(key_id) {
                    Some((share, version)) => Some(CurrentShare {
                        key_id: *key_id,
                        share,
                        version,
                    }),
                    None => {
                        return vec![Body::error(
                            ErrorCode::UNKNOWN_KEY,
                            None,
                            "key not held by this node",
                        )];
                    }
                },
                _ => None,
            };
            running.insert(
                ceremony_id,
                NodeCeremony::new(Arc::clone(&host.keys), &host.pinned, current),
            );
        }
        let Some(machine) = running.get_mut(&ceremony_id) else {
            return Vec::new();
        };
        let step = machine.handle(body, now, &mut OsRng);
        for event in step.events {
            match event {
                NodeCeremonyEvent::Committed(done) => {
                    if let Some(vault) = &host.vault {
                        let stored = vault
                            .seal_and_store(
                                &done.key_id,
                                &done.share,
                                done.share_version,
                                ShareStatus::Pending,
                                super::unix_ms(),
                            )
                            .await;
                        let committed = match stored {
                            Ok(()) => vault.commit_pending(&done.key_id, done.share_version).await,
                            Err(e) => Err(e),
                        };
                        if let Err(e) = committed {
                            tracing::error!(error = %e, "could not store the committed share");
                            return vec![Body::error(
                                ErrorCode::INTERNAL,
                                None,
                                "the node could not store its share",
                            )];
                        }
                    }
                    tracing::info!(
                        key = %hex::encode(done.key_id),
                        version = done.share_version,
                        kind = ?done.kind,
                        "ceremony committed; share active"
                    );
                    lock(&self.core).add_key(done.key_id, done.share, done.share_version);
                }
                NodeCeremonyEvent::Failed(e) => {
                    tracing::warn!(error = %e, "ceremony failed; its secrets are wiped");
                }
            }
        }
        step.replies
    }

    fn handle(&self, body: &Body) -> Option<Body> {
        match body {
            Body::HelloAck { .. } | Body::Pong { .. } | Body::Error { .. } => None,
            Body::SignAbort { .. } => {
                lock(&self.core).handle(body, since(self.start), &mut OsRng);
                None
            }
            Body::Hello { .. } => Some(Body::error(
                ErrorCode::REJECTED,
                None,
                "Hello after the link is up",
            )),
            _ => Some(
                lock(&self.core)
                    .handle(body, since(self.start), &mut OsRng)
                    .unwrap_or_else(|| {
                        Body::error(ErrorCode::UNSUPPORTED_TYPE, None, "not served by this node")
                    }),
            ),
        }
    }
}

/// Locks the core; a poisoned lock (a panic elsewhere) still yields the data, whose
/// invariants hold between calls.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
