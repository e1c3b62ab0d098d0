//! The daemon: one outbound WebSocket to the relay carrying every session, multiplexed by
//! sid, with reconnect and bounded queues.
//!
//! One task owns the WebSocket and every session's keys (read → route → write on one task,
//! DESIGN principle 7). It answers Inits ([`DaemonIdentity::accept`]), runs the inner SBP
//! handshake, decrypts and reassembles, and hands established sessions to
//! [`Daemon::accept`] as [`DaemonSession`]s. Applications talk to a session through bounded
//! queues; see the queue policy in [`crate::limits`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use zeroize::Zeroizing;

use super::channel::{Channel, Inbound};
use super::ws::{self, Ws};
use super::{ByteGauge, EndSlot, Notification, RpcError, reserve};
use crate::error::{Error, Result, SbpCode};
use crate::keys::EphemeralKey;
use crate::limits;
use crate::proto::control::ControlCode;
use crate::proto::frame::{Frame, SignalCode, SignalReason};
use crate::proto::handshake::DaemonIdentity;
use crate::proto::rpc::{Cid, Envelope};
use crate::proto::sbp::SbpHandshake;
use crate::proto::session::SessionConfig;

/// Settings of a [`Daemon`]. Every bound defaults to its constant in [`crate::limits`].
#[derive(Clone)]
#[non_exhaustive]
pub struct DaemonConfig {
    /// The relay's WebSocket URL (`ws://host:port/`; wss is not supported yet).
    pub url: String,
    /// Session settings (replay window, handshake deadline).
    pub session: SessionConfig,
    /// The `peerId` of the SBP handshake (default: the daemon id).
    pub peer_id: Option<String>,
    /// Largest reassembled message accepted (default 16 MiB).
    pub max_message: usize,
    /// Sessions per connection, handshakes included.
    pub max_sessions: usize,
    /// Inbound messages queued per session.
    pub session_queue: usize,
    /// Inbound bytes queued per session.
    pub session_queue_bytes: usize,
    /// Established sessions waiting for [`Daemon::accept`].
    pub accept_queue: usize,
    /// Outbound messages queued for the connection task.
    pub command_queue: usize,
    /// Outbound bytes queued for the connection task.
    pub queued_bytes: usize,
    /// Longest wait for room in the outbound queue.
    pub queue_timeout: Duration,
    /// One WebSocket write.
    pub write_timeout: Duration,
    /// Connect plus upgrade.
    pub connect_timeout: Duration,
    /// SBRP Ping interval.
    pub ping_interval: Duration,
    /// Nothing received for this long: reconnect.
    pub idle_timeout: Duration,
    /// First reconnect delay.
    pub reconnect_initial: Duration,
    /// Largest reconnect delay.
    pub reconnect_max: Duration,
}

impl DaemonConfig {
    /// Defaults for the relay at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            session: SessionConfig::default(),
            peer_id: None,
            max_message: limits::DEFAULT_MAX_CHUNKED_MESSAGE,
            max_sessions: limits::MAX_DAEMON_SESSIONS,
            session_queue: limits::SESSION_QUEUE,
            session_queue_bytes: limits::SESSION_QUEUE_BYTES,
            accept_queue: limits::ACCEPT_QUEUE,
            command_queue: limits::COMMAND_QUEUE,
            queued_bytes: limits::QUEUED_BYTES,
            queue_timeout: limits::QUEUE_TIMEOUT,
            write_timeout: limits::WRITE_TIMEOUT,
            connect_timeout: limits::CONNECT_TIMEOUT,
            ping_interval: limits::DAEMON_PING_INTERVAL,
            idle_timeout: limits::IDLE_TIMEOUT,
            reconnect_initial: limits::RECONNECT_INITIAL,
            reconnect_max: limits::RECONNECT_MAX,
        }
    }
}

impl std::fmt::Debug for DaemonConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonConfig")
            .field("url", &self.url)
            .field("session", &self.session)
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

/// The state of the daemon's relay connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DaemonStatus {
    /// Connected; `generation` counts connections, from 1.
    Connected {
        /// 1 for the first connection, +1 per reconnect.
        generation: u64,
    },
    /// Disconnected, waiting to reconnect.
    Reconnecting {
        /// Failed attempts since the last connection.
        attempt: u32,
        /// Why the last connection or attempt ended (one line, no token).
        last_error: String,
    },
    /// Stopped ([`Daemon::shutdown`] or the handle was dropped).
    Stopped,
}

/// An RPC request received by a daemon session.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The method (`m`).
    pub method: String,
    /// The params (`p`).
    pub params: Option<Value>,
    /// The correlation id to answer with ([`DaemonSession::respond`]).
    pub cid: Cid,
}

/// What a daemon session receives.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Incoming {
    /// An RPC request: answer it with [`DaemonSession::respond`].
    Request(Request),
    /// An event or a non-RPC message.
    Notification(Notification),
}

enum Command {
    Send {
        sid: u64,
        serial: u64,
        subject: String,
        data: Vec<u8>,
        _permit: OwnedSemaphorePermit,
    },
    Envelope {
        sid: u64,
        serial: u64,
        env: Envelope,
        _permit: OwnedSemaphorePermit,
    },
    Close {
        sid: u64,
        serial: u64,
    },
}

/// A daemon: keeps one WebSocket to the relay and yields established sessions.
///
/// Dropping it (or [`Daemon::shutdown`]) stops the connection task; every session ends.
#[derive(Debug)]
pub struct Daemon {
    sessions: mpsc::Receiver<DaemonSession>,
    status: watch::Receiver<DaemonStatus>,
    token: Arc<Mutex<Zeroizing<String>>>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    fingerprint: String,
}

impl Daemon {
    /// Connects to the relay with the presence `token` (sent as `Authorization: Bearer`) and
    /// starts serving. The first connection must succeed (a bad token is an immediate
    /// [`Error::RelayRefused`]); later drops reconnect with backoff.
    pub async fn connect(
        identity: DaemonIdentity,
        token: impl Into<String>,
        config: DaemonConfig,
    ) -> Result<Daemon> {
        if config.max_sessions == 0
            || config.session_queue == 0
            || config.accept_queue == 0
            || config.command_queue == 0
            || config.queued_bytes == 0
            || config.queued_bytes > u32::MAX as usize
        {
            return Err(Error::param("daemon config", "queue sizes must be ≥ 1"));
        }
        let token = Zeroizing::new(token.into());
        let ws = ws::connect(&config.url, Some(&token), config.connect_timeout).await?;
        let (accept_tx, sessions) = mpsc::channel(config.accept_queue);
        let (cmd_tx, cmd_rx) = mpsc::channel(config.command_queue);
        let (status_tx, status) = watch::channel(DaemonStatus::Connected { generation: 1 });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let token = Arc::new(Mutex::new(token));
        let fingerprint = identity.fingerprint();
        let budget = Arc::new(Semaphore::new(config.queued_bytes));
        let runner = Runner {
            budget,
            peer_id: config
                .peer_id
                .clone()
                .unwrap_or_else(|| identity.daemon_id().to_owned()),
            identity,
            config,
            token: token.clone(),
            sessions: HashMap::new(),
            next_serial: 0,
            accept_tx,
            cmd_tx,
            cmd_rx,
            status_tx,
            shutdown: shutdown_rx,
        };
        let task = tokio::spawn(runner.run(ws));
        Ok(Daemon {
            sessions,
            status,
            token,
            shutdown,
            task: Some(task),
            fingerprint,
        })
    }

    /// The next established session; `None` once the daemon stopped.
    pub async fn accept(&mut self) -> Option<DaemonSession> {
        self.sessions.recv().await
    }

    /// The connection state, to watch.
    pub fn status(&self) -> watch::Receiver<DaemonStatus> {
        self.status.clone()
    }

    /// The identity key fingerprint clients will see.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Replaces the presence token used by the next reconnect (presence tokens live 1 h).
    pub fn set_token(&self, token: impl Into<String>) {
        let mut slot = self.token.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Zeroizing::new(token.into());
    }

    /// Stops: sends `Signal(close, shutdown)` for every session, closes the WebSocket and
    /// waits (bounded) for the task.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(limits::WRITE_TIMEOUT * 4, task).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// An established session on a daemon: the client's messages in, ours out.
///
/// Ends when the client leaves (`session_ended`), on `decrypt_failed`, a fatal SBP error,
/// the handshake deadline, a relay disconnect (keyline daemons do not resume sessions) or
/// [`DaemonSession::close`]; [`DaemonSession::recv`] then returns the reason. Dropping it
/// closes the session.
#[derive(Debug)]
pub struct DaemonSession {
    sid: u64,
    serial: u64,
    client_ephemeral: [u8; 32],
    peer: SbpHandshake,
    chunking: bool,
    max_message: usize,
    queue_timeout: Duration,
    inbound: mpsc::Receiver<(Incoming, usize)>,
    queued: Arc<ByteGauge>,
    cmd: mpsc::Sender<Command>,
    budget: Arc<Semaphore>,
    queued_bytes: usize,
    end: Arc<EndSlot>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command(..)")
    }
}

impl DaemonSession {
    /// The session id.
    pub fn sid(&self) -> u64 {
        self.sid
    }

    /// The client's X25519 ephemeral public key (its only per-session identifier).
    pub fn client_ephemeral(&self) -> [u8; 32] {
        self.client_ephemeral
    }

    /// The client's SBP handshake (peer id, capabilities).
    pub fn peer(&self) -> &SbpHandshake {
        &self.peer
    }

    /// Whether large messages are chunked (`keyline.chunk/1` on both sides).
    pub fn chunking(&self) -> bool {
        self.chunking
    }

    /// The next message from the client, or why the session ended.
    pub async fn recv(&mut self) -> Result<Incoming> {
        match self.inbound.recv().await {
            Some((m, size)) => {
                self.queued.sub(size);
                Ok(m)
            }
            None => Err(self.end.get().unwrap_or(Error::SessionClosed)),
        }
    }

    /// Queues a command built around a permit for `size` bytes of the outbound budget; both
    /// waits share one deadline.
    async fn push(
        &self,
        size: usize,
        make: impl FnOnce(OwnedSemaphorePermit) -> Command,
    ) -> Result<()> {
        if let Some(e) = self.end.get() {
            return Err(e);
        }
        let what = "daemon send queue";
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
                .map_err(|_| Error::SessionClosed)
        };
        match tokio::time::timeout(self.queue_timeout, queued).await {
            Err(_) => Err(Error::Timeout { what }),
            Ok(result) => result,
        }
    }

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

    /// Sends a Message with `subject` (`app/…` for application data). Chunked when larger
    /// than one frame and negotiated; else [`Error::PayloadTooLarge`].
    pub async fn send(&self, subject: &str, data: Vec<u8>) -> Result<()> {
        let size = 22 + subject.len() + data.len();
        self.fits(size)?;
        self.push(size, |permit| Command::Send {
            sid: self.sid,
            serial: self.serial,
            subject: subject.to_owned(),
            data,
            _permit: permit,
        })
        .await
    }

    /// Answers the request `cid`. A result too large for the peer is answered with the
    /// `result_too_large` error (code 2000) instead.
    pub async fn respond(
        &self,
        cid: Cid,
        result: std::result::Result<Value, RpcError>,
    ) -> Result<()> {
        let mut env = match result {
            Ok(value) => Envelope::Response {
                cid,
                result: Some(value),
            },
            Err(e) => e.into_envelope(cid),
        };
        let len = 25 + env.to_json().len();
        if len > self.max_message && self.chunking {
            env = Envelope::error(
                cid,
                SbpCode::ApplicationError,
                "result too large",
                Some(serde_json::json!({"reason": "result_too_large", "limit": self.max_message})),
            );
        }
        self.push(len, |permit| Command::Envelope {
            sid: self.sid,
            serial: self.serial,
            env,
            _permit: permit,
        })
        .await
    }

    /// Sends an event (`t: "N"`, subject `event`).
    pub async fn notify(&self, name: &str, data: Option<Value>) -> Result<()> {
        let env = Envelope::Event {
            name: name.to_owned(),
            data,
        };
        let size = 25 + env.to_json().len();
        self.fits(size)?;
        self.push(size, |permit| Command::Envelope {
            sid: self.sid,
            serial: self.serial,
            env,
            _permit: permit,
        })
        .await
    }

    /// Closes the session: SBP Close, then `Signal(close)` to the relay.
    pub async fn close(self) {
        if self.end.get().is_some() {
            return;
        }
        let close = Command::Close {
            sid: self.sid,
            serial: self.serial,
        };
        let _ = tokio::time::timeout(self.queue_timeout, self.cmd.send(close)).await;
    }

    /// Answers requests with `handler` until the session ends; events and other messages
    /// are ignored. Returns the reason the session ended (`Ok` when the client left).
    pub async fn serve<F>(mut self, mut handler: F) -> Result<()>
    where
        F: FnMut(&str, Option<Value>) -> std::result::Result<Value, RpcError> + Send,
    {
        let outcome = loop {
            match self.recv().await {
                Ok(Incoming::Request(req)) => {
                    let result = handler(&req.method, req.params);
                    if let Err(e) = self.respond(req.cid, result).await {
                        break e;
                    }
                }
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        match outcome {
            Error::Relay {
                code: ControlCode::SessionEnded,
                ..
            } => Ok(()),
            e => Err(e),
        }
    }
}

impl Drop for DaemonSession {
    fn drop(&mut self) {
        if self.end.get().is_none() {
            let _ = self.cmd.try_send(Command::Close {
                sid: self.sid,
                serial: self.serial,
            });
        }
    }
}

struct Slot {
    serial: u64,
    channel: Channel,
    client_ephemeral: [u8; 32],
    inbound: Option<mpsc::Sender<(Incoming, usize)>>,
    queued: Arc<ByteGauge>,
    end: Arc<EndSlot>,
}

struct Runner {
    budget: Arc<Semaphore>,
    identity: DaemonIdentity,
    peer_id: String,
    config: DaemonConfig,
    token: Arc<Mutex<Zeroizing<String>>>,
    sessions: HashMap<u64, Slot>,
    next_serial: u64,
    accept_tx: mpsc::Sender<DaemonSession>,
    cmd_tx: mpsc::Sender<Command>,
    cmd_rx: mpsc::Receiver<Command>,
    status_tx: watch::Sender<DaemonStatus>,
    shutdown: watch::Receiver<bool>,
}

/// How often idle sessions are swept for dropped handles.
const SWEEP: Duration = Duration::from_secs(1);

fn signal(sid: u64, signal: SignalCode, reason: SignalReason) -> Result<Vec<u8>> {
    Frame::Signal {
        sid,
        signal,
        reason,
    }
    .to_vec()
}

impl Runner {
    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    async fn run(mut self, first: Ws) {
        let mut ws = Some(first);
        let mut generation = 1u64;
        let mut attempt = 0u32;
        let mut last_error = String::new();
        loop {
            if let Some(mut conn) = ws.take() {
                let _ = self.status_tx.send(DaemonStatus::Connected { generation });
                let reason = self.serve(&mut conn).await;
                tracing::info!(error = %reason, "relay connection ended");
                last_error = reason.to_string();
                self.end_all(&reason);
                ws::close(&mut conn, self.config.write_timeout).await;
                attempt = 0;
            }
            if self.stopping() {
                break;
            }
            attempt = attempt.saturating_add(1);
            let _ = self.status_tx.send(DaemonStatus::Reconnecting {
                attempt,
                last_error: last_error.clone(),
            });
            let delay = backoff(
                attempt,
                self.config.reconnect_initial,
                self.config.reconnect_max,
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.shutdown.changed() => {}
            }
            if self.stopping() {
                break;
            }
            // Messages queued for sessions of the lost connection go nowhere.
            while self.cmd_rx.try_recv().is_ok() {}
            let token = {
                let guard = self.token.lock().unwrap_or_else(|p| p.into_inner());
                Zeroizing::new(guard.as_str().to_owned())
            };
            match ws::connect(&self.config.url, Some(&token), self.config.connect_timeout).await {
                Ok(conn) => {
                    generation += 1;
                    ws = Some(conn);
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "relay reconnect failed");
                    last_error = e.to_string();
                }
            }
        }
        self.end_all(&Error::SessionClosed);
        let _ = self.status_tx.send(DaemonStatus::Stopped);
    }

    fn end_all(&mut self, reason: &Error) {
        for (_, mut slot) in self.sessions.drain() {
            slot.channel.session.close();
            slot.end.set(reason.duplicate());
        }
    }

    fn next_wake(&self, last_rx: Instant, next_ping: Instant, next_sweep: Instant) -> Instant {
        let mut wake = next_ping
            .min(last_rx + self.config.idle_timeout)
            .min(next_sweep);
        for slot in self.sessions.values() {
            if let Some(d) = slot.channel.session.handshake_deadline() {
                wake = wake.min(d);
            }
        }
        wake
    }

    /// Serves one connection until it ends; returns why.
    async fn serve(&mut self, ws: &mut Ws) -> Error {
        let mut last_rx = Instant::now();
        let mut next_ping = last_rx + self.config.ping_interval;
        let mut next_sweep = last_rx + SWEEP;
        loop {
            let wake = self.next_wake(last_rx, next_ping, next_sweep);
            let outcome = tokio::select! {
                _ = self.shutdown.changed() => {
                    self.shutdown_sessions(ws).await;
                    return Error::SessionClosed;
                }
                msg = ws.next() => match msg {
                    None => Err(Error::RelayClosed { code: None, reason: String::new() }),
                    Some(Err(e)) => Err(ws::map_error(e)),
                    Some(Ok(Message::Binary(bytes))) => {
                        last_rx = Instant::now();
                        self.on_frame(ws, &bytes).await
                    }
                    Some(Ok(Message::Close(frame))) => Err(ws::closed(frame.as_ref())),
                    Some(Ok(_)) => {
                        last_rx = Instant::now();
                        Ok(())
                    }
                },
                cmd = self.cmd_rx.recv() => match cmd {
                    Some(cmd) => self.on_command(ws, cmd).await,
                    None => Ok(()),
                },
                _ = tokio::time::sleep_until(wake.into()) => {
                    let now = Instant::now();
                    if now >= last_rx + self.config.idle_timeout {
                        Err(Error::Timeout { what: "relay traffic" })
                    } else if now >= next_ping {
                        next_ping = now + self.config.ping_interval;
                        let ping = Frame::Ping { payload: &[] }.to_vec();
                        match ping {
                            Ok(p) => ws::write(ws, p, self.config.write_timeout).await,
                            Err(e) => Err(e),
                        }
                    } else {
                        if now >= next_sweep {
                            next_sweep = now + SWEEP;
                        }
                        self.on_timer(ws, now).await
                    }
                }
            };
            if let Err(e) = outcome {
                return e;
            }
        }
    }

    async fn shutdown_sessions(&mut self, ws: &mut Ws) {
        let sids: Vec<u64> = self.sessions.keys().copied().collect();
        for sid in sids {
            let _ = self
                .end_session(ws, sid, Some(SignalReason::Shutdown), Error::SessionClosed)
                .await;
        }
    }

    async fn write(&self, ws: &mut Ws, frame: Vec<u8>) -> Result<()> {
        ws::write(ws, frame, self.config.write_timeout).await
    }

    /// Ends `sid`: drops its keys, records `err` for the application and, with a reason,
    /// sends `Signal(close, reason)`. Only write failures are returned.
    async fn end_session(
        &mut self,
        ws: &mut Ws,
        sid: u64,
        reason: Option<SignalReason>,
        err: Error,
    ) -> Result<()> {
        let Some(mut slot) = self.sessions.remove(&sid) else {
            return Ok(());
        };
        tracing::debug!(sid, error = %err, "session ended");
        slot.channel.session.close();
        slot.end.set(err);
        drop(slot.inbound.take());
        if let Some(reason) = reason {
            self.write(ws, signal(sid, SignalCode::Close, reason)?)
                .await?;
        }
        Ok(())
    }

    async fn on_timer(&mut self, ws: &mut Ws, now: Instant) -> Result<()> {
        let mut expired = Vec::new();
        let mut abandoned = Vec::new();
        for (sid, slot) in &mut self.sessions {
            if slot.channel.session.handle_timeout(now).is_err() {
                expired.push(*sid);
            } else if slot.inbound.as_ref().is_some_and(|tx| tx.is_closed()) {
                abandoned.push(*sid);
            }
        }
        for sid in expired {
            self.end_session(ws, sid, Some(SignalReason::Error), Error::HandshakeTimeout)
                .await?;
        }
        for sid in abandoned {
            self.end_session(ws, sid, Some(SignalReason::None), Error::SessionClosed)
                .await?;
        }
        Ok(())
    }

    async fn on_frame(&mut self, ws: &mut Ws, bytes: &[u8]) -> Result<()> {
        let frame = match Frame::decode(bytes) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(error = %e, "dropped an undecodable frame from the relay");
                return Ok(());
            }
        };
        match frame {
            Frame::Ping { payload } => self.write(ws, Frame::Pong { payload }.to_vec()?).await,
            Frame::HandshakeInit {
                sid,
                client_ephemeral,
            } => self.on_init(ws, sid, client_ephemeral).await,
            Frame::Data { sid, payload } => self.on_data(ws, sid, payload).await,
            Frame::Control { sid, code, .. } => {
                if sid != 0 {
                    if code == ControlCode::SessionEnded || code.is_terminal() {
                        // The relay already ended the pairing: no Signal back.
                        self.end_session(ws, sid, None, Error::Relay { code, sid })
                            .await?;
                    }
                    Ok(())
                } else if code == ControlCode::RateLimited {
                    Ok(())
                } else {
                    Err(Error::Relay { code, sid })
                }
            }
            Frame::Pong { .. } | Frame::HandshakeAccept { .. } | Frame::Signal { .. } => Ok(()),
        }
    }

    async fn on_init(&mut self, ws: &mut Ws, sid: u64, client_ephemeral: [u8; 32]) -> Result<()> {
        if self.sessions.contains_key(&sid) {
            // A repeated Init for a live sid is a client bug: ignored [K].
            return Ok(());
        }
        if self.sessions.len() >= self.config.max_sessions {
            return self
                .write(ws, signal(sid, SignalCode::Close, SignalReason::Policy)?)
                .await;
        }
        let ephemeral = match EphemeralKey::generate() {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "no ephemeral key");
                return self
                    .write(ws, signal(sid, SignalCode::Close, SignalReason::Error)?)
                    .await;
            }
        };
        let (accept, session) = match self.identity.accept(
            sid,
            &client_ephemeral,
            ephemeral,
            Instant::now(),
            &self.config.session,
        ) {
            Ok(v) => v,
            // All-zero shared secret: send nothing, drop the sid (spec 3.3).
            Err(_) => return Ok(()),
        };
        let mut channel = Channel::new(session, &self.peer_id, self.config.max_message);
        let sbp_handshake = channel.handshake_frame()?;
        self.next_serial += 1;
        self.sessions.insert(
            sid,
            Slot {
                serial: self.next_serial,
                channel,
                client_ephemeral,
                inbound: None,
                queued: Arc::new(ByteGauge::default()),
                end: Arc::new(EndSlot::default()),
            },
        );
        self.write(ws, DaemonIdentity::accept_frame(sid, &accept)?)
            .await?;
        self.write(ws, sbp_handshake).await
    }

    async fn on_data(&mut self, ws: &mut Ws, sid: u64, payload: &[u8]) -> Result<()> {
        let Some(slot) = self.sessions.get_mut(&sid) else {
            return Ok(());
        };
        let (incoming, size) = match slot.channel.receive(payload) {
            Ok(Inbound::Nothing | Inbound::PeerError) => return Ok(()),
            Ok(Inbound::Established(peer)) => return self.established(ws, sid, peer).await,
            Ok(Inbound::Ping(data)) => {
                let pong = slot.channel.pong_frame(&data)?;
                return self.write(ws, pong).await;
            }
            Ok(Inbound::PeerClosed) => {
                return self
                    .end_session(ws, sid, Some(SignalReason::None), Error::SessionClosed)
                    .await;
            }
            Ok(Inbound::PeerFatal(e)) => {
                return self
                    .end_session(ws, sid, Some(SignalReason::Error), e)
                    .await;
            }
            Ok(Inbound::Envelope(
                Envelope::Request {
                    method,
                    params,
                    cid,
                },
                size,
            )) => (
                Incoming::Request(Request {
                    method,
                    params,
                    cid,
                }),
                size,
            ),
            Ok(Inbound::Envelope(Envelope::Event { name, data }, size)) => (
                Incoming::Notification(Notification::Event { name, data }),
                size,
            ),
            // The daemon sends no requests: stray responses are dropped (1102).
            Ok(Inbound::Envelope(..)) => return Ok(()),
            Ok(Inbound::Other { subject, data }) => {
                let size = data.len();
                (
                    Incoming::Notification(Notification::Message { subject, data }),
                    size,
                )
            }
            Err(Error::Sbp { code, reason }) => {
                let frame = slot.channel.error_frame(code, &reason)?;
                self.write(ws, frame).await?;
                if code.is_fatal() {
                    return self
                        .end_session(
                            ws,
                            sid,
                            Some(SignalReason::Error),
                            Error::Sbp { code, reason },
                        )
                        .await;
                }
                return Ok(());
            }
            // decrypt_failed and anything else: Signal(close, error), drop the session.
            Err(e) => {
                return self
                    .end_session(ws, sid, Some(SignalReason::Error), e)
                    .await;
            }
        };
        let delivered = match &slot.inbound {
            Some(_) if !slot.queued.try_add(size, self.config.session_queue_bytes) => {
                Err(mpsc::error::TrySendError::Full((incoming, size)))
            }
            Some(tx) => tx.try_send((incoming, size)),
            None => return Ok(()),
        };
        match delivered {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.end_session(
                    ws,
                    sid,
                    Some(SignalReason::Policy),
                    Error::Backpressure {
                        what: "daemon session inbound queue",
                    },
                )
                .await
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.end_session(ws, sid, Some(SignalReason::None), Error::SessionClosed)
                    .await
            }
        }
    }

    async fn established(&mut self, ws: &mut Ws, sid: u64, peer: SbpHandshake) -> Result<()> {
        let Some(slot) = self.sessions.get_mut(&sid) else {
            return Ok(());
        };
        let (tx, rx) = mpsc::channel(self.config.session_queue);
        slot.inbound = Some(tx);
        let session = DaemonSession {
            sid,
            serial: slot.serial,
            client_ephemeral: slot.client_ephemeral,
            peer,
            chunking: slot.channel.chunking(),
            max_message: self.config.max_message,
            queue_timeout: self.config.queue_timeout,
            inbound: rx,
            queued: slot.queued.clone(),
            cmd: self.cmd_tx.clone(),
            budget: self.budget.clone(),
            queued_bytes: self.config.queued_bytes,
            end: slot.end.clone(),
        };
        match self.accept_tx.try_send(session) {
            Ok(()) => Ok(()),
            Err(e) => {
                let full = matches!(e, mpsc::error::TrySendError::Full(_));
                // Mark the end first so the dropped handle does not queue a Close.
                let err = if full {
                    Error::Backpressure {
                        what: "daemon accept queue",
                    }
                } else {
                    Error::SessionClosed
                };
                slot.end.set(err.duplicate());
                drop(e);
                self.end_session(ws, sid, Some(SignalReason::Policy), err)
                    .await
            }
        }
    }

    async fn on_command(&mut self, ws: &mut Ws, cmd: Command) -> Result<()> {
        let (sid, serial) = match &cmd {
            Command::Send { sid, serial, .. }
            | Command::Envelope { sid, serial, .. }
            | Command::Close { sid, serial } => (*sid, *serial),
        };
        let Some(slot) = self.sessions.get_mut(&sid) else {
            return Ok(());
        };
        if slot.serial != serial {
            return Ok(());
        }
        let frames = match cmd {
            Command::Send { subject, data, .. } => slot.channel.message_frames(&subject, &data),
            Command::Envelope { env, .. } => slot.channel.envelope_frames(&env),
            Command::Close { .. } => {
                if let Ok(frame) = slot.channel.close_frame() {
                    self.write(ws, frame).await?;
                }
                return self
                    .end_session(ws, sid, Some(SignalReason::None), Error::SessionClosed)
                    .await;
            }
        };
        match frames {
            Ok(frames) => {
                for frame in frames {
                    self.write(ws, frame).await?;
                }
                Ok(())
            }
            Err(e @ (Error::SequenceExhausted | Error::SessionClosed)) => {
                self.end_session(ws, sid, Some(SignalReason::None), e).await
            }
            Err(e) => {
                tracing::debug!(sid, error = %e, "message not sent");
                Ok(())
            }
        }
    }
}

/// Reconnect delay for `attempt` (from 1): `initial` doubling to `max`, ±20 % jitter
/// ([`limits::RECONNECT_JITTER_PERCENT`]). Also for callers retrying the first connection.
pub fn backoff(attempt: u32, initial: Duration, max: Duration) -> Duration {
    let shift = attempt.saturating_sub(1).min(16);
    let base = initial.saturating_mul(1u32 << shift).min(max);
    let mut r = [0u8; 4];
    let unit = match getrandom::fill(&mut r) {
        Ok(()) => f64::from(u32::from_le_bytes(r)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    };
    let spread = f64::from(limits::RECONNECT_JITTER_PERCENT) / 100.0;
    base.mul_f64(1.0 - spread + 2.0 * spread * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        let s = Duration::from_secs(1);
        let m = Duration::from_secs(30);
        for _ in 0..50 {
            let d = backoff(1, s, m);
            assert!(d >= Duration::from_millis(800) && d <= Duration::from_millis(1200));
            let d = backoff(3, s, m);
            assert!(d >= Duration::from_millis(3200) && d <= Duration::from_millis(4800));
            let d = backoff(40, s, m);
            assert!(d >= Duration::from_secs(24) && d <= Duration::from_secs(36));
        }
    }
}
