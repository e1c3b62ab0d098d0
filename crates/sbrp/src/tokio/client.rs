//! The client: one WebSocket per session, the handshake with pinning, then RPC calls with
//! cid matching and timeouts, events, and close.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::StreamExt as _;
use keyline_core::{PinOutcome, PinStore, Policy, Prompt};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::Notification;
use super::channel::{Channel, Inbound};
use super::ws::{self, Ws};
use super::{ByteGauge, EndSlot, reserve};
use crate::error::{Error, Result, SbpCode};
use crate::keys::EphemeralKey;
use crate::limits;
use crate::pins::finish_with_pins;
use crate::proto::control::ControlCode;
use crate::proto::frame::{Accept, Frame};
use crate::proto::handshake::ClientHandshake;
use crate::proto::rpc::{Cid, Envelope};
use crate::proto::sbp::SbpHandshake;
use crate::proto::session::{Session, SessionConfig};
use crate::proto::sid::decode_sid;
use crate::proto::trust;

/// How the client decides whether to trust the daemon's identity key (spec 5).
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum Trust<'a> {
    /// The pin store with a policy (`tofu`, `strict`, `prompt`); a new pin is written only
    /// after the handshake verified ([`crate::pins::finish_with_pins`]).
    Pins {
        /// The store (protocol `sbrp`, peer = daemon id).
        store: &'a PinStore,
        /// The policy.
        policy: Policy,
        /// Asked under `prompt`.
        prompt: Option<&'a dyn Prompt>,
    },
    /// Exactly this Ed25519 identity key (e.g. from configuration); anything else is
    /// `identity_key_changed`.
    Key([u8; 32]),
}

impl std::fmt::Debug for Trust<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pins { policy, .. } => write!(f, "Trust::Pins({policy})"),
            Self::Key(k) => write!(f, "Trust::Key({})", trust::fingerprint(k)),
        }
    }
}

/// Settings of a [`Client`]. Every bound defaults to its constant in [`crate::limits`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Session settings (replay window, handshake deadline: the whole connect, from the
    /// first TCP byte through the inner SBP handshake, must finish within it).
    pub session: SessionConfig,
    /// The session id; `None` reads the `sid` claim of the `token` in the URL.
    pub sid: Option<u64>,
    /// The `peerId` of our SBP handshake.
    pub peer_id: String,
    /// Default timeout of [`ClientSession::call`].
    pub call_timeout: Duration,
    /// Longest wait for room in the outbound queue.
    pub queue_timeout: Duration,
    /// One WebSocket write.
    pub write_timeout: Duration,
    /// Largest reassembled message accepted.
    pub max_message: usize,
    /// Events not yet read.
    pub event_queue: usize,
    /// Event bytes not yet read.
    pub event_queue_bytes: usize,
    /// Outbound messages queued for the session task.
    pub command_queue: usize,
    /// Outbound bytes queued for the session task.
    pub queued_bytes: usize,
    /// Calls in flight.
    pub max_pending_calls: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            session: SessionConfig::default(),
            sid: None,
            peer_id: "keyline-client".into(),
            call_timeout: limits::CALL_TIMEOUT,
            queue_timeout: limits::QUEUE_TIMEOUT,
            write_timeout: limits::WRITE_TIMEOUT,
            max_message: limits::DEFAULT_MAX_CHUNKED_MESSAGE,
            event_queue: limits::EVENT_QUEUE,
            event_queue_bytes: limits::EVENT_QUEUE_BYTES,
            command_queue: limits::COMMAND_QUEUE,
            queued_bytes: limits::QUEUED_BYTES,
            max_pending_calls: limits::MAX_PENDING_CALLS,
        }
    }
}

/// Opens client sessions.
#[derive(Debug, Clone, Default)]
pub struct Client {
    config: ClientConfig,
}

enum Command {
    Call {
        method: String,
        params: Option<Value>,
        reply: oneshot::Sender<Result<Value>>,
        _permit: OwnedSemaphorePermit,
    },
    Send {
        subject: String,
        data: Vec<u8>,
        _permit: OwnedSemaphorePermit,
    },
    Notify {
        name: String,
        data: Option<Value>,
        _permit: OwnedSemaphorePermit,
    },
    Close,
}

struct Shared {
    end: EndSlot,
    events_dropped: AtomicU64,
    event_bytes: ByteGauge,
}

/// An established client session.
///
/// Calls may run concurrently (`&self`). The session ends on a relay Control code that is
/// terminal (`session_expired` after the daemon closed, `backpressure`, …), a relay close,
/// `decrypt_failed`, a fatal SBP error, or [`ClientSession::close`]; later calls return the
/// reason. Dropping the handle closes the WebSocket.
pub struct ClientSession {
    sid: u64,
    daemon_id: String,
    identity_key: [u8; 32],
    pin_outcome: Option<PinOutcome>,
    peer: SbpHandshake,
    chunking: bool,
    call_timeout: Duration,
    queue_timeout: Duration,
    cmd: mpsc::Sender<Command>,
    budget: Arc<Semaphore>,
    queued_bytes: usize,
    max_message: usize,
    events: tokio::sync::Mutex<mpsc::Receiver<(Notification, usize)>>,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("sid", &self.sid)
            .field("daemon_id", &self.daemon_id)
            .field("fingerprint", &trust::fingerprint(&self.identity_key))
            .finish_non_exhaustive()
    }
}

/// The `sid` claim of the `token` query parameter (the relay validates the token; the client
/// only needs the sid for its Init).
pub fn sid_from_url(url: &str) -> Result<u64> {
    let invalid = |reason| Error::InvalidSid { reason };
    let query = url
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(q))
        .ok_or(invalid("the URL has no token query parameter"))?;
    let token = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .ok_or(invalid("the URL has no token query parameter"))?;
    let payload = token
        .split('.')
        .nth(1)
        .ok_or(invalid("the token is not a JWT"))?;
    if payload.len() > 4096 {
        return Err(invalid("the token is too long"));
    }
    let json = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| invalid("the token payload is not base64url"))?;
    let claims: Value =
        serde_json::from_slice(&json).map_err(|_| invalid("the token payload is not JSON"))?;
    let sid = claims
        .get("sid")
        .and_then(Value::as_str)
        .ok_or(invalid("the token has no sid claim"))?;
    decode_sid(sid)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads the next SBRP frame (binary message) before `deadline`, answering SBRP Pings.
async fn next_frame(ws: &mut Ws, deadline: Instant, write_timeout: Duration) -> Result<Vec<u8>> {
    loop {
        let msg = match tokio::time::timeout_at(deadline.into(), ws.next()).await {
            Err(_) => return Err(Error::HandshakeTimeout),
            Ok(None) => {
                return Err(Error::RelayClosed {
                    code: None,
                    reason: String::new(),
                });
            }
            Ok(Some(Err(e))) => return Err(ws::map_error(e)),
            Ok(Some(Ok(m))) => m,
        };
        match msg {
            Message::Binary(bytes) => {
                if let Ok(Frame::Ping { payload }) = Frame::decode(&bytes) {
                    ws::write(ws, Frame::Pong { payload }.to_vec()?, write_timeout).await?;
                    continue;
                }
                return Ok(bytes.to_vec());
            }
            Message::Close(frame) => return Err(ws::closed(frame.as_ref())),
            _ => continue,
        }
    }
}

impl Client {
    /// A client with `config`.
    pub fn new(config: ClientConfig) -> Self {
        Self { config }
    }

    /// Opens a session to `daemon_id` through the relay URL carrying the session token
    /// (`ws://relay/?token=<jwt>`, as the issuer's `POST /v1/sessions` returns it): the SBRP
    /// handshake, the trust decision and pinning, the inner SBP handshake, all within the
    /// handshake deadline.
    ///
    /// Errors: [`Error::HandshakeTimeout`], [`Error::IdentityKeyChanged`] (both
    /// fingerprints), [`Error::HandshakeFailed`] (bad signature, `strict` without a pin),
    /// [`Error::Relay`] (`daemon_offline`, …), [`Error::RelayRefused`] (HTTP 401/404/409/429).
    pub async fn connect(
        &self,
        url: &str,
        daemon_id: &str,
        trust: Trust<'_>,
    ) -> Result<ClientSession> {
        let config = &self.config;
        let sid = match config.sid {
            Some(sid) => sid,
            None => sid_from_url(url)?,
        };
        let opened_at = Instant::now();
        let deadline = opened_at + config.session.handshake_timeout;
        let handshake = ClientHandshake::new(
            daemon_id,
            sid,
            EphemeralKey::generate()?,
            opened_at,
            config.session,
        )?;
        let connect_timeout = deadline.saturating_duration_since(Instant::now());
        let mut ws = match ws::connect(url, None, connect_timeout).await {
            Err(Error::Timeout { .. }) => return Err(Error::HandshakeTimeout),
            other => other?,
        };
        match self.handshake(&mut ws, handshake, trust, deadline).await {
            Ok((accept, pin_outcome, channel, peer)) => {
                Ok(self.start(ws, sid, daemon_id, accept, pin_outcome, channel, peer))
            }
            Err(e) => {
                ws::close(&mut ws, config.write_timeout).await;
                Err(e)
            }
        }
    }

    async fn handshake(
        &self,
        ws: &mut Ws,
        handshake: ClientHandshake,
        trust: Trust<'_>,
        deadline: Instant,
    ) -> Result<(Accept, Option<PinOutcome>, Channel, SbpHandshake)> {
        let config = &self.config;
        ws::write(ws, handshake.init_frame().to_vec(), config.write_timeout).await?;
        let accept = loop {
            let bytes = next_frame(ws, deadline, config.write_timeout).await?;
            let frame = Frame::decode(&bytes)?;
            if let Some(accept) = handshake.handle_frame(&frame)? {
                break accept;
            }
        };
        let now = Instant::now();
        handshake.handle_timeout(now)?;
        let daemon_id = handshake.daemon_id().to_owned();
        let (session, pin_outcome): (Session, Option<PinOutcome>) = match trust {
            Trust::Pins {
                store,
                policy,
                prompt,
            } => {
                let (s, o) =
                    finish_with_pins(store, policy, prompt, handshake, &accept, now, unix_now())
                        .await?;
                (s, Some(o))
            }
            Trust::Key(key) => {
                trust::decide(Policy::Strict, &daemon_id, Some(&key), &accept.identity_key)?;
                (handshake.finish(&accept, &key, now)?, None)
            }
        };
        let mut channel = Channel::new(session, &config.peer_id, config.max_message);
        ws::write(ws, channel.handshake_frame()?, config.write_timeout).await?;
        // The daemon's SBP handshake, within what is left of the deadline.
        let peer = loop {
            let bytes = next_frame(ws, deadline, config.write_timeout).await?;
            match Frame::decode(&bytes)? {
                Frame::Data { sid, payload } if sid == channel.session.sid() => {
                    match channel.receive(payload)? {
                        Inbound::Established(peer) => break peer,
                        Inbound::Nothing => {}
                        _ => {
                            return Err(Error::HandshakeFailed {
                                reason: "unexpected SBP frame before the daemon's handshake",
                            });
                        }
                    }
                }
                Frame::Control { code, sid, .. } if code.is_terminal() => {
                    return Err(Error::Relay { code, sid });
                }
                _ => {}
            }
        };
        Ok((accept, pin_outcome, channel, peer))
    }

    #[allow(clippy::too_many_arguments)]
    fn start(
        &self,
        ws: Ws,
        sid: u64,
        daemon_id: &str,
        accept: Accept,
        pin_outcome: Option<PinOutcome>,
        channel: Channel,
        peer: SbpHandshake,
    ) -> ClientSession {
        let config = &self.config;
        let (cmd_tx, cmd_rx) = mpsc::channel(config.command_queue.max(1));
        let (event_tx, event_rx) = mpsc::channel(config.event_queue.max(1));
        let shared = Arc::new(Shared {
            end: EndSlot::default(),
            events_dropped: AtomicU64::new(0),
            event_bytes: ByteGauge::default(),
        });
        let queued_bytes = config.queued_bytes.clamp(1, u32::MAX as usize);
        let chunking = channel.chunking();
        let task = SessionTask {
            ws,
            channel,
            cmd_rx,
            events: event_tx,
            event_queue_bytes: config.event_queue_bytes,
            pending: HashMap::new(),
            max_pending: config.max_pending_calls.max(1),
            write_timeout: config.write_timeout,
            shared: shared.clone(),
            paused: false,
        };
        ClientSession {
            sid,
            daemon_id: daemon_id.to_owned(),
            identity_key: accept.identity_key,
            pin_outcome,
            peer,
            chunking,
            call_timeout: config.call_timeout,
            queue_timeout: config.queue_timeout,
            cmd: cmd_tx,
            budget: Arc::new(Semaphore::new(queued_bytes)),
            queued_bytes,
            max_message: config.max_message,
            events: tokio::sync::Mutex::new(event_rx),
            shared,
            task: Some(tokio::spawn(task.run())),
        }
    }
}

impl ClientSession {
    /// The session id.
    pub fn sid(&self) -> u64 {
        self.sid
    }

    /// The daemon id.
    pub fn daemon_id(&self) -> &str {
        &self.daemon_id
    }

    /// The daemon's verified identity key.
    pub fn identity_key(&self) -> [u8; 32] {
        self.identity_key
    }

    /// Its fingerprint (`SHA256:…`).
    pub fn fingerprint(&self) -> String {
        trust::fingerprint(&self.identity_key)
    }

    /// What the pin store did (`None` with [`Trust::Key`]).
    pub fn pin_outcome(&self) -> Option<&PinOutcome> {
        self.pin_outcome.as_ref()
    }

    /// The daemon's SBP handshake.
    pub fn peer(&self) -> &SbpHandshake {
        &self.peer
    }

    /// Whether large messages are chunked (`keyline.chunk/1` on both sides).
    pub fn chunking(&self) -> bool {
        self.chunking
    }

    /// Events dropped because the event queue was full.
    pub fn events_dropped(&self) -> u64 {
        self.shared.events_dropped.load(Ordering::Relaxed)
    }

    /// Why the session ended, once it has.
    pub fn end_reason(&self) -> Option<Error> {
        self.shared.end.get()
    }

    /// Refuses a message the daemon could not take: larger than one frame without
    /// `keyline.chunk/1`, or than the chunked-message maximum (assumed equal to ours).
    fn fits(&self, encoded: usize) -> Result<()> {
        let limit = if self.chunking {
            self.max_message
        } else {
            limits::MAX_PLAINTEXT
        };
        if encoded > limit {
            return Err(Error::PayloadTooLarge {
                len: encoded as u64,
                limit,
            });
        }
        Ok(())
    }

    /// Queues a command built around a permit for `size` bytes of the outbound budget; both
    /// waits share one deadline.
    async fn push(
        &self,
        size: usize,
        make: impl FnOnce(OwnedSemaphorePermit) -> Command,
    ) -> Result<()> {
        if let Some(e) = self.shared.end.get() {
            return Err(e);
        }
        let what = "client send queue";
        let queued = async {
            let permit = reserve(
                &self.budget,
                size,
                self.queued_bytes,
                self.queue_timeout,
                what,
            )
            .await?;
            self.cmd
                .send(make(permit))
                .await
                .map_err(|_| self.shared.end.get().unwrap_or(Error::SessionClosed))
        };
        match tokio::time::timeout(self.queue_timeout, queued).await {
            Err(_) => Err(Error::Timeout { what }),
            Ok(result) => result,
        }
    }

    /// Calls `method` with `params` and waits for the result (`null` when the response has
    /// none), at most the configured call timeout.
    ///
    /// Errors: [`Error::Remote`] for an error response (the session continues),
    /// [`Error::Timeout`] (`rpc call`, code 1103), the session's end reason.
    pub async fn call(&self, method: &str, params: Option<Value>) -> Result<Value> {
        self.call_with_timeout(method, params, self.call_timeout)
            .await
    }

    /// [`call`](Self::call) with an explicit timeout.
    pub async fn call_with_timeout(
        &self,
        method: &str,
        params: Option<Value>,
        timeout: Duration,
    ) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        let (reply, rx) = oneshot::channel();
        let size = params
            .as_ref()
            .map_or(0, |p| serde_json::to_vec(p).map_or(0, |v| v.len()))
            + method.len();
        // Envelope overhead: `{"t":"r","m":…,"p":…,"cid":"<32 hex>"}` plus the SBP header.
        self.fits(size + 96)?;
        let cmd = |permit| Command::Call {
            method: method.to_owned(),
            params,
            reply,
            _permit: permit,
        };
        tokio::time::timeout_at(deadline, self.push(size, cmd))
            .await
            .map_err(|_| Error::Timeout { what: "rpc call" })??;
        match tokio::time::timeout_at(deadline, rx).await {
            Err(_) => Err(Error::Timeout { what: "rpc call" }),
            Ok(Err(_)) => Err(self.shared.end.get().unwrap_or(Error::SessionClosed)),
            Ok(Ok(result)) => result,
        }
    }

    /// Sends an event (`t: "N"`).
    pub async fn notify(&self, name: &str, data: Option<Value>) -> Result<()> {
        let size = data
            .as_ref()
            .map_or(0, |d| serde_json::to_vec(d).map_or(0, |v| v.len()))
            + name.len();
        self.fits(size + 64)?;
        self.push(size, |permit| Command::Notify {
            name: name.to_owned(),
            data,
            _permit: permit,
        })
        .await
    }

    /// Sends a Message with a non-RPC subject (`app/…`).
    pub async fn send(&self, subject: &str, data: Vec<u8>) -> Result<()> {
        self.fits(22 + subject.len() + data.len())?;
        self.push(subject.len() + data.len(), |permit| Command::Send {
            subject: subject.to_owned(),
            data,
            _permit: permit,
        })
        .await
    }

    /// The next event or non-RPC message from the daemon; `None` once the session ended and
    /// the queue is drained.
    pub async fn next_event(&self) -> Option<Notification> {
        let (note, size) = self.events.lock().await.recv().await?;
        self.shared.event_bytes.sub(size);
        Some(note)
    }

    /// Closes the session (SBP Close, then the WebSocket close) and waits, bounded, for the
    /// session task.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(self.queue_timeout, self.cmd.send(Command::Close)).await;
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(limits::WRITE_TIMEOUT * 2, task).await;
        }
    }
}

impl Drop for ClientSession {
    fn drop(&mut self) {
        let _ = self.cmd.try_send(Command::Close);
    }
}

struct SessionTask {
    ws: Ws,
    channel: Channel,
    cmd_rx: mpsc::Receiver<Command>,
    events: mpsc::Sender<(Notification, usize)>,
    event_queue_bytes: usize,
    pending: HashMap<Cid, oneshot::Sender<Result<Value>>>,
    max_pending: usize,
    write_timeout: Duration,
    shared: Arc<Shared>,
    paused: bool,
}

/// How often abandoned calls are pruned.
const PRUNE: Duration = Duration::from_secs(1);

impl SessionTask {
    async fn run(mut self) {
        let reason = self.serve().await;
        tracing::debug!(error = %reason, "client session ended");
        self.channel.session.close();
        // The reason is visible before any waiter wakes up.
        self.shared.end.set(reason.duplicate());
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(reason.duplicate()));
        }
        ws::close(&mut self.ws, self.write_timeout).await;
    }

    async fn write_all(&mut self, frames: Vec<Vec<u8>>) -> Result<()> {
        for frame in frames {
            ws::write(&mut self.ws, frame, self.write_timeout).await?;
        }
        Ok(())
    }

    async fn serve(&mut self) -> Error {
        let mut next_prune = tokio::time::Instant::now() + PRUNE;
        loop {
            let outcome = tokio::select! {
                msg = self.ws.next() => match msg {
                    None => Err(Error::RelayClosed { code: None, reason: String::new() }),
                    Some(Err(e)) => Err(ws::map_error(e)),
                    Some(Ok(Message::Binary(bytes))) => self.on_frame(&bytes).await,
                    Some(Ok(Message::Close(frame))) => Err(ws::closed(frame.as_ref())),
                    Some(Ok(_)) => Ok(()),
                },
                // While the daemon is away (session_paused/pending) no Data is sent: commands
                // wait in the bounded queue and callers hit their own deadlines.
                cmd = self.cmd_rx.recv(), if !self.paused => match cmd {
                    Some(cmd) => self.on_command(cmd).await,
                    None => Err(Error::SessionClosed),
                },
                _ = tokio::time::sleep_until(next_prune) => {
                    next_prune += PRUNE;
                    self.pending.retain(|_, reply| !reply.is_closed());
                    if self.cmd_rx.is_closed() && self.cmd_rx.is_empty() {
                        // Every handle is gone (noticed here too while paused).
                        Err(Error::SessionClosed)
                    } else {
                        Ok(())
                    }
                }
            };
            if let Err(e) = outcome {
                return e;
            }
        }
    }

    async fn on_command(&mut self, cmd: Command) -> Result<()> {
        let frames = match cmd {
            Command::Call {
                method,
                params,
                reply,
                ..
            } => {
                if self.pending.len() >= self.max_pending {
                    let _ = reply.send(Err(Error::Backpressure {
                        what: "pending RPC calls",
                    }));
                    return Ok(());
                }
                match self.channel.request_frames(&method, params) {
                    Ok((cid, frames)) => {
                        self.pending.insert(cid, reply);
                        frames
                    }
                    Err(e) => return self.local_failure(e, Some(reply)),
                }
            }
            Command::Notify { name, data, .. } => {
                match self
                    .channel
                    .envelope_frames(&Envelope::Event { name, data })
                {
                    Ok(f) => f,
                    Err(e) => return self.local_failure(e, None),
                }
            }
            Command::Send { subject, data, .. } => {
                match self.channel.message_frames(&subject, &data) {
                    Ok(f) => f,
                    Err(e) => return self.local_failure(e, None),
                }
            }
            Command::Close => {
                if let Ok(frame) = self.channel.close_frame() {
                    let _ = ws::write(&mut self.ws, frame, self.write_timeout).await;
                }
                return Err(Error::SessionClosed);
            }
        };
        self.write_all(frames).await
    }

    /// An outbound message could not be built: the session ends only when it is over
    /// (exhausted/closed); otherwise the caller of a call gets the error.
    fn local_failure(
        &mut self,
        e: Error,
        reply: Option<oneshot::Sender<Result<Value>>>,
    ) -> Result<()> {
        match e {
            Error::SequenceExhausted | Error::SessionClosed => Err(e),
            other => {
                tracing::debug!(error = %other, "message not sent");
                if let Some(reply) = reply {
                    let _ = reply.send(Err(other));
                }
                Ok(())
            }
        }
    }

    async fn on_frame(&mut self, bytes: &[u8]) -> Result<()> {
        let frame = Frame::decode(bytes)?;
        match frame {
            Frame::Ping { payload } => {
                let pong = Frame::Pong { payload }.to_vec()?;
                ws::write(&mut self.ws, pong, self.write_timeout).await
            }
            Frame::Control { code, sid, .. } => match code {
                ControlCode::SessionPaused | ControlCode::SessionPending => {
                    self.paused = true;
                    Ok(())
                }
                ControlCode::SessionResumed => {
                    self.paused = false;
                    Ok(())
                }
                c if c.is_terminal() => Err(Error::Relay { code, sid }),
                _ => Ok(()),
            },
            Frame::Data { sid, payload } if sid == self.channel.session.sid() => {
                self.on_data(payload).await
            }
            _ => Ok(()),
        }
    }

    async fn on_data(&mut self, payload: &[u8]) -> Result<()> {
        let inbound = match self.channel.receive(payload) {
            Ok(i) => i,
            Err(Error::Sbp { code, reason }) => {
                let frame = self.channel.error_frame(code, &reason)?;
                ws::write(&mut self.ws, frame, self.write_timeout).await?;
                return if code.is_fatal() {
                    Err(Error::Sbp { code, reason })
                } else {
                    Ok(())
                };
            }
            // decrypt_failed: the session is over; the WebSocket closes.
            Err(e) => return Err(e),
        };
        let note = match inbound {
            Inbound::Nothing | Inbound::PeerError | Inbound::Established(_) => return Ok(()),
            Inbound::PeerClosed => return Err(Error::SessionClosed),
            Inbound::PeerFatal(e) => return Err(e),
            Inbound::Ping(data) => {
                let pong = self.channel.pong_frame(&data)?;
                return ws::write(&mut self.ws, pong, self.write_timeout).await;
            }
            Inbound::Envelope(Envelope::Response { cid, result }, _) => {
                if let Some(reply) = self.pending.remove(&cid) {
                    let _ = reply.send(Ok(result.unwrap_or(Value::Null)));
                }
                return Ok(());
            }
            Inbound::Envelope(
                Envelope::Error {
                    cid,
                    code,
                    message,
                    data,
                },
                _,
            ) => {
                if let Some(reply) = self.pending.remove(&cid) {
                    let _ = reply.send(Err(Error::Remote {
                        code,
                        message,
                        data,
                    }));
                }
                return Ok(());
            }
            Inbound::Envelope(Envelope::Request { method, cid, .. }, _) => {
                // A client serves no methods.
                let env = Envelope::error(
                    cid,
                    SbpCode::UnsupportedMethod,
                    format!(
                        "unknown method {}",
                        method.chars().take(64).collect::<String>()
                    ),
                    None,
                );
                let frames = self.channel.envelope_frames(&env)?;
                return self.write_all(frames).await;
            }
            Inbound::Envelope(Envelope::Event { name, data }, size) => {
                (Notification::Event { name, data }, size)
            }
            Inbound::Other { subject, data } => {
                let size = data.len();
                (Notification::Message { subject, data }, size)
            }
        };
        let size = note.1;
        let admitted = self
            .shared
            .event_bytes
            .try_add(size, self.event_queue_bytes);
        if !admitted || self.events.try_send(note).is_err() {
            if admitted {
                self.shared.event_bytes.sub(size);
            }
            self.shared.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sid_from_token_url() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sid":"AAALOnPOL_I","role":"client"}"#);
        let url = format!("ws://127.0.0.1:1/?token=e30.{payload}.c2ln");
        assert_eq!(sid_from_url(&url).unwrap(), 0x0000_0B3A_73CE_2FF2);
        assert!(sid_from_url("ws://127.0.0.1:1/").is_err());
        assert!(sid_from_url("ws://x/?token=abc").is_err());
        let bad = URL_SAFE_NO_PAD.encode(br#"{"sid":"AAAAAAAAAAA"}"#);
        assert!(sid_from_url(&format!("ws://x/?token=a.{bad}.c")).is_err());
    }
}
