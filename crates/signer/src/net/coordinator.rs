//! The coordinator's side: one maintained link per pinned node, and the drivers that run the
//! sans-IO [`SignSession`] / [`EcdhSession`] against those links with real time.
//!
//! Each link is a task that connects (TCP or in-memory), runs the SHS handshake against the
//! node's pinned key and the `Hello` exchange, then keeps the connection: a writer sends
//! requests (and a `Ping` when idle), a reader routes replies to the session that asked, by
//! `req_id`. A lost link is redialled with backoff (100 ms doubling to
//! [`LINK_BACKOFF_MAX`]). Requests to a node whose link is down, and requests in flight when a
//! link drops, are answered at once with a local `unreachable` error, so a session fails
//! over to the other nodes immediately instead of waiting for its round deadline.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyline_shs::{ClientConfig, Keypair};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, timeout};

use super::node::{NodeServer, lock};
use super::{peer_name, protocol, read_frame, since, write_frame};
use crate::ceremony::{DkgEvent, DkgSession};
use crate::descriptor::NodeDescriptor;
use crate::ecdh::{SessionId, SharedX};
use crate::limits::{
    LINK_BACKOFF_MAX, LINK_CONNECT_TIMEOUT, LINK_HELLO_TIMEOUT, LINK_PING_INTERVAL, NODE_INFLIGHT,
};
use crate::session::{
    EcdhConfig, EcdhRequest, EcdhSession, Outgoing, SignConfig, SignRequest, SignSession, Step,
};
use crate::wire::{self, Body, ErrorCode, KeyId, Message, Role};
use crate::{Error, OsRng, ParticipantId, PublicKeyPackage, Result};

/// Where a node listens.
#[derive(Clone, Debug)]
pub enum NodeEndpoint {
    /// A node process reachable over TCP.
    Tcp(SocketAddr),
    /// A node served in this process over an in-memory pipe (dev mode, tests); the full SHS
    /// handshake and wire protocol still run.
    Local(NodeServer),
}

/// A pinned node: its SHS key and where to reach it.
#[derive(Clone, Debug)]
pub struct NodeAddr {
    /// The node's Ed25519 key (pinned: the handshake proves it).
    pub key: [u8; 32],
    /// Where it listens.
    pub endpoint: NodeEndpoint,
}

/// A key as the coordinator drives it: its id, public key package and which node holds which
/// share.
#[derive(Clone, Debug)]
pub struct KeyHandle {
    /// The key id nodes know it by.
    pub key_id: KeyId,
    /// The public key package (npub, verifying shares).
    pub public: PublicKeyPackage,
    /// Share holder identifier → node key.
    pub holders: BTreeMap<ParticipantId, [u8; 32]>,
}

/// A reply routed to a session.
struct Reply {
    from: ParticipantId,
    session_id: SessionId,
    /// The signing round of the request this answers (1 commit, 2 share; 0 otherwise).
    round: u8,
    body: Body,
}

struct Pending {
    reply: mpsc::Sender<Reply>,
    from: ParticipantId,
    session_id: SessionId,
    round: u8,
}

/// The signing round a request belongs to, for routing refusals (see `SignSession::on_error`).
fn request_round(body: &Body) -> u8 {
    match body {
        Body::SignCommitReq { .. } => 1,
        Body::SignShareReq { .. } => 2,
        _ => 0,
    }
}

type PendingMap = Arc<Mutex<HashMap<u64, Pending>>>;

struct Connected {
    tx: mpsc::Sender<Message>,
    pending: PendingMap,
}

struct Link {
    key: [u8; 32],
    name: String,
    descriptor: Mutex<Option<NodeDescriptor>>,
    state: Mutex<Option<Connected>>,
    up: Notify,
    next_req: AtomicU64,
}

impl Link {
    fn is_up(&self) -> bool {
        lock(&self.state).is_some()
    }

    /// Queues `body` for the node; the reply (if the body has one) goes to `reply`. `Err`
    /// when the link is down or its queue is full.
    fn send(
        &self,
        body: Body,
        route: Option<(&mpsc::Sender<Reply>, ParticipantId, SessionId)>,
    ) -> std::result::Result<u64, ()> {
        let state = lock(&self.state);
        let Some(conn) = state.as_ref() else {
            return Err(());
        };
        let req_id = self.next_req.fetch_add(1, Ordering::Relaxed);
        if let Some((reply, from, session_id)) = route {
            lock(&conn.pending).insert(
                req_id,
                Pending {
                    reply: reply.clone(),
                    from,
                    session_id,
                    round: request_round(&body),
                },
            );
        }
        if conn.tx.try_send(Message::new(req_id, body)).is_err() {
            lock(&conn.pending).remove(&req_id);
            return Err(());
        }
        Ok(req_id)
    }

    fn forget(&self, req_ids: &[u64]) {
        if let Some(conn) = lock(&self.state).as_ref() {
            let mut pending = lock(&conn.pending);
            for id in req_ids {
                pending.remove(id);
            }
        }
    }
}

/// Node key → its link and the task keeping it up.
type Links = HashMap<[u8; 32], (Arc<Link>, JoinHandle<()>)>;

struct Inner {
    keypair: Keypair,
    links: Mutex<Links>,
    start: Instant,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for (_, (_, task)) in lock(&self.links).drain() {
            task.abort();
        }
    }
}

/// The coordinator: links to pinned nodes and the signing/ECDH drivers.
#[derive(Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("key", &peer_name(self.inner.keypair.public().as_bytes()))
            .field("nodes", &lock(&self.inner.links).len())
            .finish()
    }
}

impl Coordinator {
    /// A coordinator with SHS identity `keypair` and no nodes yet.
    pub fn new(keypair: Keypair) -> Self {
        Self {
            inner: Arc::new(Inner {
                keypair,
                links: Mutex::new(HashMap::new()),
                start: Instant::now(),
            }),
        }
    }

    /// This coordinator's public key (what nodes pin).
    pub fn public_key(&self) -> [u8; 32] {
        *self.inner.keypair.public().as_bytes()
    }

    /// Pins `node` and starts maintaining a link to it (replacing an earlier link to the same
    /// key). Must be called inside a tokio runtime.
    pub fn add_node(&self, node: NodeAddr) {
        let node_key = node.key;
        let link = Arc::new(Link {
            key: node.key,
            descriptor: Mutex::new(None),
            name: peer_name(&node.key),
            state: Mutex::new(None),
            up: Notify::new(),
            next_req: AtomicU64::new(1),
        });
        let task = tokio::spawn(maintain(
            Arc::clone(&link),
            node,
            self.inner.keypair.clone(),
        ));
        if let Some((_, old)) = lock(&self.inner.links).insert(node_key, (link, task)) {
            old.abort();
        }
    }

    /// The verified descriptor `node` sent in its `Hello` (once its link has been up).
    pub fn descriptor(&self, node: &[u8; 32]) -> Option<NodeDescriptor> {
        self.link(node).and_then(|link| *lock(&link.descriptor))
    }

    /// Whether the link to `node` is up.
    pub fn is_connected(&self, node: &[u8; 32]) -> bool {
        lock(&self.inner.links)
            .get(node)
            .is_some_and(|(link, _)| link.is_up())
    }

    /// Waits until the links to all `nodes` are up, or `within` passes; returns the nodes
    /// still down.
    pub async fn wait_connected(&self, nodes: &[[u8; 32]], within: Duration) -> Vec<[u8; 32]> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let down: Vec<[u8; 32]> = nodes
                .iter()
                .filter(|n| !self.is_connected(n))
                .copied()
                .collect();
            if down.is_empty() || tokio::time::Instant::now() >= deadline {
                return down;
            }
            let links: Vec<Arc<Link>> = {
                let map = lock(&self.inner.links);
                down.iter()
                    .filter_map(|n| map.get(n).map(|(l, _)| Arc::clone(l)))
                    .collect()
            };
            let wait = async {
                match links.first() {
                    Some(link) => link.up.notified().await,
                    None => std::future::pending().await,
                }
            };
            let _ = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(50)),
                wait,
            )
            .await;
        }
    }

    fn link(&self, node: &[u8; 32]) -> Option<Arc<Link>> {
        lock(&self.inner.links)
            .get(node)
            .map(|(link, _)| Arc::clone(link))
    }

    /// Share holders of `key` in order of preference: connected links first.
    fn preference(&self, key: &KeyHandle) -> Vec<ParticipantId> {
        let (mut up, down): (Vec<_>, Vec<_>) = key
            .holders
            .iter()
            .partition(|(_, node)| self.is_connected(node));
        up.extend(down);
        up.into_iter().map(|(id, _)| *id).collect()
    }

    /// Sends a session's messages; a node that cannot be reached gets a local `unreachable`
    /// reply on `replies`, so the session fails over at once.
    fn dispatch(
        &self,
        holders: &BTreeMap<ParticipantId, [u8; 32]>,
        send: Vec<Outgoing>,
        replies: &mpsc::Sender<Reply>,
        sent: &mut Vec<(Arc<Link>, u64)>,
    ) {
        for out in send {
            let session_id = routing_id(&out.body);
            let round = request_round(&out.body);
            let expects_reply = !matches!(
                out.body,
                Body::SignAbort { .. } | Body::CeremonyAbort { .. }
            );
            let link = holders.get(&out.to).and_then(|node| self.link(node));
            let result = match &link {
                Some(link) => link.send(
                    out.body,
                    expects_reply.then_some((replies, out.to, session_id)),
                ),
                None => Err(()),
            };
            match (result, link) {
                (Ok(req_id), Some(link)) if expects_reply => sent.push((link, req_id)),
                (Ok(_), _) => {}
                (Err(()), _) if expects_reply => {
                    let _ = replies.try_send(Reply {
                        from: out.to,
                        session_id,
                        round,
                        body: unreachable_body(),
                    });
                }
                (Err(()), _) => {}
            }
        }
    }

    /// Signs `request` with `key` over the node links (spec §8.5): t + spares nodes asked,
    /// failover on silence, refusal or bad shares, the aggregate verified under the npub.
    pub async fn sign(&self, key: &KeyHandle, request: SignRequest) -> Result<[u8; 64]> {
        self.sign_with(key, request, SignConfig::default()).await
    }

    /// [`Coordinator::sign`] with explicit deadlines and spares.
    pub async fn sign_with(
        &self,
        key: &KeyHandle,
        request: SignRequest,
        config: SignConfig,
    ) -> Result<[u8; 64]> {
        let capacity = 4 * key.holders.len() + 8;
        let (tx, mut rx) = mpsc::channel(capacity);
        let mut sent = Vec::new();
        let (mut session, step) = SignSession::new(
            key.public.clone(),
            request,
            self.preference(key),
            config,
            self.now(),
            &mut OsRng,
        )?;
        self.dispatch(&key.holders, step.send, &tx, &mut sent);
        let outcome = loop {
            if let Some(outcome) = session.outcome() {
                break outcome.clone();
            }
            let Some(deadline) = session.deadline() else {
                break Err(internal("signing session without a deadline"));
            };
            let step = tokio::select! {
                Some(reply) = rx.recv() => {
                    let now = self.now();
                    match &reply.body {
                        Body::Error { code, .. } => session.on_error(reply.from, &reply.session_id, reply.round, *code, now, &mut OsRng),
                        body => session.on_message(reply.from, body, now, &mut OsRng),
                    }
                }
                () = sleep_until(self.instant(deadline)) => session.on_timeout(self.now(), &mut OsRng),
            };
            self.dispatch(&key.holders, step.send, &tx, &mut sent);
        };
        forget(&sent);
        outcome
    }

    /// Threshold ECDH of `key` with the request's peer over the node links (spec §8.6).
    pub async fn ecdh(&self, key: &KeyHandle, request: EcdhRequest) -> Result<SharedX> {
        let capacity = 4 * key.holders.len() + 8;
        let (tx, mut rx) = mpsc::channel(capacity);
        let mut sent = Vec::new();
        let (mut session, step) = EcdhSession::new(
            key.public.clone(),
            request,
            self.preference(key),
            EcdhConfig::default(),
            self.now(),
            &mut OsRng,
        )?;
        self.dispatch(&key.holders, step.send, &tx, &mut sent);
        let outcome = loop {
            if session.is_done() {
                break session
                    .take_outcome()
                    .unwrap_or_else(|| Err(internal("ECDH outcome taken twice")));
            }
            let Some(deadline) = session.deadline() else {
                break Err(internal("ECDH session without a deadline"));
            };
            let step = tokio::select! {
                Some(reply) = rx.recv() => {
                    let now = self.now();
                    match &reply.body {
                        Body::Error { code, .. } => session.on_error(reply.from, &reply.session_id, *code, now, &mut OsRng),
                        body => session.on_message(reply.from, body, now, &mut OsRng),
                    }
                }
                () = sleep_until(self.instant(deadline)) => session.on_timeout(self.now(), &mut OsRng),
            };
            self.dispatch(&key.holders, step.send, &tx, &mut sent);
        };
        forget(&sent);
        outcome
    }

    /// Runs a key ceremony (DKG, refresh, import; spec §8.7–§8.8) over the node links: the
    /// sans-IO `session` was created with `first` as its initial step, `holders` maps its
    /// participants to node keys. Returns the agreed public key package once every node
    /// committed.
    pub async fn run_ceremony(
        &self,
        mut session: DkgSession,
        first: Step<DkgEvent>,
        holders: &BTreeMap<ParticipantId, [u8; 32]>,
    ) -> Result<PublicKeyPackage> {
        let capacity = 8 * holders.len() + 8;
        let (tx, mut rx) = mpsc::channel(capacity);
        let mut sent = Vec::new();
        self.dispatch(holders, first.send, &tx, &mut sent);
        let outcome = loop {
            if let Some(outcome) = session.outcome() {
                break outcome.clone();
            }
            let Some(deadline) = session.deadline() else {
                break Err(internal("ceremony without a deadline"));
            };
            let step = tokio::select! {
                Some(reply) = rx.recv() => session.on_message(reply.from, &reply.body, self.now()),
                () = sleep_until(self.instant(deadline)) => session.on_timeout(self.now()),
            };
            self.dispatch(holders, step.send, &tx, &mut sent);
        };
        forget(&sent);
        outcome
    }

    /// The clock the sans-IO machines of this coordinator run on (for creating sessions).
    pub fn now(&self) -> Duration {
        since(self.inner.start)
    }

    fn instant(&self, at: Duration) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.inner.start + at)
    }
}

fn forget(sent: &[(Arc<Link>, u64)]) {
    for (link, req_id) in sent {
        link.forget(std::slice::from_ref(req_id));
    }
}

/// The id a reply is routed under: the signing/ECDH session or the ceremony.
fn routing_id(body: &Body) -> [u8; 16] {
    if let Some(id) = body.session_id() {
        return *id;
    }
    match body {
        Body::CeremonyStart { ceremony_id, .. }
        | Body::Round1Set { ceremony_id, .. }
        | Body::EchoSet { ceremony_id, .. }
        | Body::SealedDeliver { ceremony_id, .. }
        | Body::Commit { ceremony_id, .. }
        | Body::CeremonyAbort { ceremony_id, .. }
        | Body::ImportShare { ceremony_id, .. } => *ceremony_id,
        _ => [0; 16],
    }
}

fn unreachable_body() -> Body {
    Body::error(ErrorCode::UNREACHABLE, None, "node unreachable")
}

fn internal(what: &'static str) -> Error {
    Error::Internal { reason: what }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Opens the transport to `endpoint`.
async fn open(endpoint: &NodeEndpoint) -> std::io::Result<Box<dyn Io>> {
    match endpoint {
        NodeEndpoint::Tcp(addr) => {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream))
        }
        NodeEndpoint::Local(server) => {
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            let server = server.clone();
            tokio::spawn(async move {
                if let Err(e) = server.serve_link(theirs).await {
                    tracing::debug!(error = %e, "in-process node link closed");
                }
            });
            Ok(Box::new(ours))
        }
    }
}

/// Keeps one link up for as long as the coordinator lives.
async fn maintain(link: Arc<Link>, node: NodeAddr, keypair: Keypair) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match connect(&link, &node, &keypair).await {
            Ok((reader, writer)) => {
                backoff = Duration::from_millis(100);
                run(&link, reader, writer).await;
            }
            Err(e) => tracing::debug!(node = %link.name, error = %e, "node link not up"),
        }
        sleep(backoff).await;
        backoff = (backoff * 2).min(LINK_BACKOFF_MAX);
    }
}

type Reader = tokio::io::ReadHalf<keyline_shs::BoxStream<Box<dyn Io>>>;
type Writer = tokio::io::WriteHalf<keyline_shs::BoxStream<Box<dyn Io>>>;

async fn connect(link: &Link, node: &NodeAddr, keypair: &Keypair) -> Result<(Reader, Writer)> {
    let peer = &link.name;
    let stream = timeout(LINK_CONNECT_TIMEOUT, open(&node.endpoint))
        .await
        .map_err(|_| super::link(peer, "connect timed out".into()))?
        .map_err(|e| super::link(peer, format!("connect: {e}")))?;
    let config = ClientConfig::new(keypair.clone(), node.key)
        .network(super::network_key())
        .handshake_timeout(LINK_CONNECT_TIMEOUT);
    let mut boxed = keyline_shs::connect(stream, config)
        .await
        .map_err(|e| super::link(peer, format!("handshake: {e}")))?;
    let hello = Body::Hello {
        min_version: wire::VERSION,
        max_version: wire::VERSION,
        role: Role::Coordinator,
        descriptor: Vec::new(),
    };
    write_frame(&mut boxed, &Message::new(0, hello), peer).await?;
    let exchange = async {
        let mut version = None;
        let mut seen_hello = false;
        while version.is_none() || !seen_hello {
            let frame = read_frame(&mut boxed, peer)
                .await?
                .ok_or_else(|| super::link(peer, "closed during Hello".into()))?;
            match frame.body {
                Body::Hello {
                    role: Role::Node,
                    descriptor,
                    ..
                } => {
                    // An empty descriptor: a node that takes no part in ceremonies.
                    if !descriptor.is_empty() {
                        let d = NodeDescriptor::decode(&descriptor)
                            .map_err(|e| protocol(peer, format!("bad node descriptor: {e}")))?;
                        if d.node_id != link.key {
                            return Err(protocol(peer, "the descriptor names another node".into()));
                        }
                        *lock(&link.descriptor) = Some(d);
                    }
                    seen_hello = true;
                }
                Body::HelloAck { version: v, .. } if v == wire::VERSION => version = Some(v),
                Body::Error { code, text, .. } => {
                    return Err(protocol(
                        peer,
                        format!("refused Hello ({}): {text}", code.0),
                    ));
                }
                _ => return Err(protocol(peer, "unexpected frame during Hello".into())),
            }
        }
        Ok::<_, Error>(version.unwrap_or(wire::VERSION))
    };
    let version = timeout(LINK_HELLO_TIMEOUT, exchange)
        .await
        .map_err(|_| link_timeout(peer))??;
    let ack = Body::HelloAck {
        version,
        clock_ms: super::unix_ms(),
    };
    write_frame(&mut boxed, &Message::new(0, ack), peer).await?;
    Ok(tokio::io::split(boxed))
}

fn link_timeout(peer: &str) -> Error {
    super::link(peer, "Hello exchange timed out".into())
}

/// Runs an established link until it fails; then fails every request in flight.
async fn run(link: &Link, mut reader: Reader, mut writer: Writer) {
    let (tx, mut rx) = mpsc::channel::<Message>(NODE_INFLIGHT);
    let pending: PendingMap = Arc::new(Mutex::new(HashMap::new()));
    *lock(&link.state) = Some(Connected {
        tx,
        pending: Arc::clone(&pending),
    });
    link.up.notify_waiters();
    tracing::debug!(node = %link.name, "node link up");
    let peer = link.name.clone();
    let writing = async {
        let mut ping = tokio::time::interval(LINK_PING_INTERVAL);
        ping.tick().await;
        loop {
            let message = tokio::select! {
                message = rx.recv() => match message {
                    Some(message) => message,
                    None => return,
                },
                _ = ping.tick() => Message::new(0, Body::Ping { nonce: 0 }),
            };
            if write_frame(&mut writer, &message, &peer).await.is_err() {
                return;
            }
        }
    };
    let reading = async {
        loop {
            match read_frame(&mut reader, &peer).await {
                Ok(Some(frame)) => {
                    // Routes stay until the session ends (`forget`): a ceremony request
                    // may be answered by more than one frame.
                    let route = lock(&pending)
                        .get(&frame.req_id)
                        .map(|p| (p.reply.clone(), p.from, p.session_id, p.round));
                    if let Some((reply, from, session_id, round)) = route {
                        let _ = reply.try_send(Reply {
                            from,
                            session_id,
                            round,
                            body: frame.body,
                        });
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::info!(node = %peer, error = %e, "node link failed");
                    return;
                }
            }
        }
    };
    tokio::select! {
        () = writing => {},
        () = reading => {},
    }
    *lock(&link.state) = None;
    let failed: Vec<Pending> = lock(&pending).drain().map(|(_, p)| p).collect();
    for p in failed {
        let _ = p.reply.try_send(Reply {
            from: p.from,
            session_id: p.session_id,
            round: p.round,
            body: unreachable_body(),
        });
    }
}
