//! The bunker's Nostr relay pool (spec §3.1, §3.6).
//!
//! One tokio task per relay keeps one WebSocket open, subscribes to kind 24133 events tagged
//! with the bunker's transport key (`{"kinds":[24133],"#p":[<key>],"since":…}`), and
//! reconnects with exponential backoff and jitter, resubscribing each time. Every inbound event
//! is checked here, cheapest first, before anything else sees it:
//!
//! 1. the relay message is at most [`PoolConfig::max_message`] bytes (before parsing);
//! 2. kind 24133, a `p` tag with exactly the transport key, `content` at most
//!    [`PoolConfig::max_content`] bytes, `created_at` within ±[`PoolConfig::max_skew`] of now;
//! 3. the id recomputes and the BIP340 signature verifies ([`SignedEvent::verify`]);
//! 4. not delivered before (the same event id from another relay is a duplicate).
//!
//! Failures are dropped, logged at debug level and counted ([`PoolStats`]); nothing a relay
//! sends can end the pool. [`Inbound::relay`] is the first relay an event came from: the reply
//! goes there.
//!
//! **Inbound queue policy.** The channel returned by [`RelayPool::start`] is bounded
//! ([`PoolConfig::inbound_capacity`]). When it is full the arriving event is dropped and counted
//! in [`PoolStats::queue_full`]; its id is forgotten by duplicate suppression, so a copy from
//! another relay may still be delivered. Relay tasks never wait for the consumer (pings,
//! publish acknowledgements and other relays keep flowing), memory never grows, and NIP-46
//! clients retry requests that get no answer.
//!
//! **TLS.** `wss://` relays are reached over rustls (ring) with the Mozilla root certificates
//! of `webpki-roots` ([`PoolConfig::tls_roots`] replaces them, e.g. for a private CA); `ws://`
//! is accepted for loopback relays only (spec §3.6).
//!
//! The WebSocket protocol is [`tungstenite`]'s state machine over an in-memory buffer; this
//! module moves the bytes between that buffer and a tokio stream (TCP, or TLS over TCP), so every read, write and
//! handshake step is under a deadline of its own.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{
    self, HandshakeError, Message, WebSocket, client::IntoClientRequest, protocol::WebSocketConfig,
};

use crate::error::{Error, Result};
use crate::limits;
use crate::nip46::{self, SignedEvent};

/// Settings of a [`RelayPool`]. [`PoolConfig::new`] fills in the defaults of
/// [`crate::limits`] ("bunker relay pool").
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// The bunker's transport key (x-only): the `#p` the pool subscribes to and the `p` tag
    /// every accepted event must carry.
    pub listen_pubkey: [u8; 32],
    /// Subscription look-back: `since = now −` this (after a reconnect: newest event seen on
    /// that relay − this).
    pub lookback: Duration,
    /// Freshness window: events whose `created_at` is further than this from now, in either
    /// direction, are dropped (stale or future).
    pub max_skew: Duration,
    /// Longest relay text message parsed; longer ones are dropped unparsed.
    pub max_message: usize,
    /// Longest `content` of an accepted event.
    pub max_content: usize,
    /// First reconnection delay.
    pub reconnect_min: Duration,
    /// Longest reconnection delay (the delay doubles from `reconnect_min` up to this).
    pub reconnect_max: Duration,
    /// Jitter on reconnection delays, in percent (±).
    pub jitter_percent: u32,
    /// A connection that lasted this long resets the delay to `reconnect_min`.
    pub stable_after: Duration,
    /// Deadline for TCP connect plus WebSocket handshake.
    pub connect_timeout: Duration,
    /// Deadline for one write to a relay.
    pub write_timeout: Duration,
    /// How long [`RelayPool::publish`] waits for the relay's `OK`.
    pub publish_timeout: Duration,
    /// Ping a relay after this long without a frame from it.
    pub ping_interval: Duration,
    /// Drop a relay connection after this long without a frame from it.
    pub idle_timeout: Duration,
    /// Capacity of the inbound channel (see the module documentation for the policy when full).
    pub inbound_capacity: usize,
    /// Event ids remembered for duplicate suppression.
    pub dedupe_capacity: usize,
    /// Trust anchors for `wss://` relays; `None`: the Mozilla roots of `webpki-roots`.
    pub tls_roots: Option<Arc<rustls::RootCertStore>>,
}

impl PoolConfig {
    /// The defaults of [`crate::limits`] for the transport key `listen_pubkey`.
    pub fn new(listen_pubkey: [u8; 32]) -> Self {
        Self {
            listen_pubkey,
            lookback: limits::BUNKER_SUBSCRIBE_LOOKBACK,
            max_skew: limits::BUNKER_EVENT_MAX_SKEW,
            max_message: limits::BUNKER_MAX_RELAY_MESSAGE,
            max_content: limits::MAX_REQUEST_CONTENT,
            reconnect_min: limits::BUNKER_RECONNECT_MIN,
            reconnect_max: limits::BUNKER_RECONNECT_MAX,
            jitter_percent: limits::BUNKER_RECONNECT_JITTER_PERCENT,
            stable_after: limits::BUNKER_STABLE_CONNECTION,
            connect_timeout: limits::BUNKER_CONNECT_TIMEOUT,
            write_timeout: limits::BUNKER_WRITE_TIMEOUT,
            publish_timeout: limits::BUNKER_PUBLISH_TIMEOUT,
            ping_interval: limits::BUNKER_PING_INTERVAL,
            idle_timeout: limits::BUNKER_IDLE_TIMEOUT,
            inbound_capacity: limits::BUNKER_INBOUND_QUEUE,
            dedupe_capacity: limits::BUNKER_DEDUPE_CAPACITY,
            tls_roots: None,
        }
    }
}

/// An event that passed every check of the pool, delivered once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    /// The first relay the event arrived on (reply there).
    pub relay: String,
    /// The verified event.
    pub event: SignedEvent,
}

/// The state of one relay of the pool.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayStatus {
    /// The relay URL as configured.
    pub url: String,
    /// The WebSocket is open.
    pub connected: bool,
    /// Our subscription is active: the relay sent `EOSE` for it and has not `CLOSED` it.
    pub subscribed: bool,
    /// The last connection error, `CLOSED` or `NOTICE` text, if any (one line).
    pub last_error: Option<String>,
    /// Connection attempts after the first.
    pub reconnects: u64,
    /// Events first delivered from this relay.
    pub delivered: u64,
}

/// Counters of the pool (totals over all relays since [`RelayPool::start`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Events delivered to the inbound channel.
    pub delivered: u64,
    /// Events already delivered (same id, from this or another relay).
    pub duplicate: u64,
    /// Events dropped because the inbound channel was full (or closed).
    pub queue_full: u64,
    /// Relay messages longer than [`PoolConfig::max_message`], dropped unparsed.
    pub message_too_large: u64,
    /// Relay messages or events that do not parse.
    pub malformed: u64,
    /// `EVENT`s for a subscription that is not ours.
    pub unsolicited: u64,
    /// Events of another kind than 24133.
    pub wrong_kind: u64,
    /// Events without a `p` tag equal to the transport key.
    pub wrong_p: u64,
    /// Events whose `content` is longer than [`PoolConfig::max_content`].
    pub content_too_large: u64,
    /// Events older than the freshness window.
    pub stale: u64,
    /// Events further in the future than the freshness window.
    pub future: u64,
    /// Events whose id does not recompute or whose signature does not verify.
    pub bad_signature: u64,
}

/// The relay pool: cheap to clone; every clone drives the same tasks. Dropping the last clone
/// stops the tasks; [`RelayPool::shutdown`] stops them and waits.
#[derive(Clone, Debug)]
pub struct RelayPool {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: Arc<PoolConfig>,
    counters: Arc<Counters>,
    dedupe: Arc<Mutex<Dedupe>>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// `None` once shut down.
    inbound: Option<mpsc::Sender<Inbound>>,
    relays: Vec<RelayEntry>,
}

#[derive(Debug)]
struct RelayEntry {
    url: String,
    status: Arc<Mutex<RelayStatus>>,
    /// `Err` for a URL the pool cannot use.
    link: std::result::Result<RelayLink, Error>,
}

#[derive(Debug)]
struct RelayLink {
    commands: mpsc::Sender<Command>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
enum Command {
    Publish {
        id: [u8; 32],
        json: String,
        reply: oneshot::Sender<Result<()>>,
    },
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep going.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl RelayPool {
    /// Starts the pool on `relays` (duplicates merged; URLs the pool cannot use are kept with
    /// their error in [`RelayPool::status`]) and returns it with the receiving end of the
    /// inbound channel. Must be called inside a tokio runtime.
    pub fn start(relays: Vec<String>, config: PoolConfig) -> (RelayPool, mpsc::Receiver<Inbound>) {
        let (tx, rx) = mpsc::channel(config.inbound_capacity.max(1));
        let dedupe = Dedupe::new(
            config.dedupe_capacity.max(1),
            config.max_skew.saturating_mul(2) + config.lookback,
        );
        let pool = RelayPool {
            shared: Arc::new(Shared {
                config: Arc::new(config),
                counters: Arc::new(Counters::default()),
                dedupe: Arc::new(Mutex::new(dedupe)),
                state: Mutex::new(State {
                    inbound: Some(tx),
                    relays: Vec::new(),
                }),
            }),
        };
        pool.set_relays(relays);
        (pool, rx)
    }

    /// Publishes `event` on `relay` (which must be in the pool and connected) and waits for
    /// the relay's `OK`: `Ok(())` on `OK true`, [`Error::RelayRejected`] on `OK false`,
    /// [`Error::RelayTimeout`] after [`PoolConfig::publish_timeout`],
    /// [`Error::RelayUnavailable`] when the relay is not connected or its connection ends
    /// first, [`Error::RelayUrl`] for an unusable relay, [`Error::TooLarge`] for an event over
    /// [`limits::BUNKER_MAX_PUBLISH_EVENT`].
    pub async fn publish(&self, relay: &str, event: &SignedEvent) -> Result<()> {
        let event_json = event.to_json();
        if event_json.len() > limits::BUNKER_MAX_PUBLISH_EVENT {
            return Err(Error::TooLarge {
                what: "published event",
                len: event_json.len(),
                max: limits::BUNKER_MAX_PUBLISH_EVENT,
            });
        }
        let unavailable = |reason| Error::RelayUnavailable {
            relay: relay.to_owned(),
            reason,
        };
        let commands = {
            let state = lock(&self.shared.state);
            let entry = state
                .relays
                .iter()
                .find(|e| e.url == relay)
                .ok_or_else(|| unavailable("not in the pool"))?;
            match &entry.link {
                Ok(link) => link.commands.clone(),
                Err(err) => return Err(err.clone()),
            }
        };
        let (reply, answer) = oneshot::channel();
        let command = Command::Publish {
            id: event.id,
            json: format!("[\"EVENT\",{event_json}]"),
            reply,
        };
        let wait = async {
            commands
                .send(command)
                .await
                .map_err(|_| unavailable("removed from the pool"))?;
            answer
                .await
                .map_err(|_| unavailable("connection ended before OK"))?
        };
        match tokio::time::timeout(self.shared.config.publish_timeout, wait).await {
            Ok(result) => result,
            Err(_) => Err(Error::RelayTimeout {
                relay: relay.to_owned(),
            }),
        }
    }

    /// Replaces the relay set (NIP-46 `switch_relays`, operator changes): connects the new
    /// relays, stops the removed ones (their tasks close the connection), keeps the others
    /// untouched. Does nothing after [`RelayPool::shutdown`].
    pub fn set_relays(&self, relays: Vec<String>) {
        let mut wanted: Vec<String> = Vec::with_capacity(relays.len());
        for url in relays {
            if !wanted.contains(&url) {
                wanted.push(url);
            }
        }
        let mut state = lock(&self.shared.state);
        let Some(inbound) = state.inbound.clone() else {
            return;
        };
        let old = std::mem::take(&mut state.relays);
        let mut kept: HashMap<String, RelayEntry> = HashMap::new();
        for entry in old {
            if wanted.contains(&entry.url) {
                kept.insert(entry.url.clone(), entry);
            } else {
                tracing::debug!(relay = %entry.url, "relay pool: relay removed");
                if let Ok(link) = &entry.link {
                    let _ = link.stop.send(true);
                }
            }
        }
        state.relays = wanted
            .into_iter()
            .map(|url| match kept.remove(&url) {
                Some(entry) => entry,
                None => self.spawn_relay(url, inbound.clone()),
            })
            .collect();
    }

    fn spawn_relay(&self, url: String, inbound: mpsc::Sender<Inbound>) -> RelayEntry {
        let status = Arc::new(Mutex::new(RelayStatus {
            url: url.clone(),
            ..RelayStatus::default()
        }));
        let link = match check_url(&url) {
            Err(err) => {
                lock(&status).last_error = Some(err.to_string());
                tracing::debug!(relay = %url, error = %err, "relay pool: unusable relay");
                Err(err)
            }
            Ok(()) => {
                let (commands, command_rx) = mpsc::channel(limits::BUNKER_PUBLISH_QUEUE);
                let (stop, stop_rx) = watch::channel(false);
                let task = RelayTask {
                    url: url.clone(),
                    config: self.shared.config.clone(),
                    counters: self.shared.counters.clone(),
                    dedupe: self.shared.dedupe.clone(),
                    status: status.clone(),
                    inbound,
                    commands: command_rx,
                    stop: stop_rx,
                    last_seen: None,
                    subscription: String::new(),
                    pending: HashMap::new(),
                };
                let task = tokio::spawn(task.run());
                Ok(RelayLink {
                    commands,
                    stop,
                    task,
                })
            }
        };
        RelayEntry { url, status, link }
    }

    /// The configured relay URLs, in order.
    pub fn relays(&self) -> Vec<String> {
        lock(&self.shared.state)
            .relays
            .iter()
            .map(|e| e.url.clone())
            .collect()
    }

    /// The state of every relay, in the order of [`RelayPool::relays`].
    pub fn status(&self) -> Vec<RelayStatus> {
        lock(&self.shared.state)
            .relays
            .iter()
            .map(|e| lock(&e.status).clone())
            .collect()
    }

    /// The pool's counters (deliveries and drops by reason).
    pub fn stats(&self) -> PoolStats {
        self.shared.counters.snapshot()
    }

    /// Stops every relay task (closing its WebSocket) and waits for them, at most
    /// [`PoolConfig::write_timeout`] each; then the inbound channel ends. Later
    /// [`RelayPool::set_relays`] calls do nothing and [`RelayPool::publish`] fails.
    pub async fn shutdown(&self) {
        let entries = {
            let mut state = lock(&self.shared.state);
            state.inbound = None;
            std::mem::take(&mut state.relays)
        };
        let mut tasks = Vec::new();
        for entry in entries {
            if let Ok(link) = entry.link {
                let _ = link.stop.send(true);
                tasks.push(link.task);
            }
        }
        for mut task in tasks {
            if tokio::time::timeout(self.shared.config.write_timeout, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

/// Syntax (spec §3.6 via [`nip46::check_relay_url`]) and what this build can connect to.
fn check_url(url: &str) -> Result<()> {
    nip46::check_relay_url(url).map_err(|reason| Error::RelayUrl {
        url: url.to_owned(),
        reason,
    })?;
    Ok(())
}

// ----- counters and duplicate suppression -------------------------------------------------------

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    duplicate: AtomicU64,
    queue_full: AtomicU64,
    message_too_large: AtomicU64,
    malformed: AtomicU64,
    unsolicited: AtomicU64,
    wrong_kind: AtomicU64,
    wrong_p: AtomicU64,
    content_too_large: AtomicU64,
    stale: AtomicU64,
    future: AtomicU64,
    bad_signature: AtomicU64,
}

/// Why an inbound event was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DropReason {
    Duplicate,
    QueueFull,
    MessageTooLarge,
    Malformed,
    Unsolicited,
    WrongKind,
    WrongP,
    ContentTooLarge,
    Stale,
    Future,
    BadSignature,
}

impl Counters {
    fn count(&self, reason: DropReason) {
        let counter = match reason {
            DropReason::Duplicate => &self.duplicate,
            DropReason::QueueFull => &self.queue_full,
            DropReason::MessageTooLarge => &self.message_too_large,
            DropReason::Malformed => &self.malformed,
            DropReason::Unsolicited => &self.unsolicited,
            DropReason::WrongKind => &self.wrong_kind,
            DropReason::WrongP => &self.wrong_p,
            DropReason::ContentTooLarge => &self.content_too_large,
            DropReason::Stale => &self.stale,
            DropReason::Future => &self.future,
            DropReason::BadSignature => &self.bad_signature,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> PoolStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PoolStats {
            delivered: get(&self.delivered),
            duplicate: get(&self.duplicate),
            queue_full: get(&self.queue_full),
            message_too_large: get(&self.message_too_large),
            malformed: get(&self.malformed),
            unsolicited: get(&self.unsolicited),
            wrong_kind: get(&self.wrong_kind),
            wrong_p: get(&self.wrong_p),
            content_too_large: get(&self.content_too_large),
            stale: get(&self.stale),
            future: get(&self.future),
            bad_signature: get(&self.bad_signature),
        }
    }
}

/// Event ids seen recently: at most `capacity`, each for at most `window`.
#[derive(Debug)]
struct Dedupe {
    seen: HashMap<[u8; 32], Instant>,
    order: VecDeque<([u8; 32], Instant)>,
    capacity: usize,
    window: Duration,
}

impl Dedupe {
    fn new(capacity: usize, window: Duration) -> Self {
        Self {
            seen: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            window,
        }
    }

    /// Records `id`; false when it was already there.
    fn insert(&mut self, id: [u8; 32], now: Instant) -> bool {
        while let Some(&(old, at)) = self.order.front() {
            if self.order.len() < self.capacity && now.duration_since(at) < self.window {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&old) == Some(&at) {
                self.seen.remove(&old);
            }
        }
        if self.seen.contains_key(&id) {
            return false;
        }
        self.seen.insert(id, now);
        self.order.push_back((id, now));
        true
    }

    fn forget(&mut self, id: &[u8; 32]) {
        self.seen.remove(id);
    }
}

// ----- inbound event checks ---------------------------------------------------------------------

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The checks of the module documentation, cheapest first, on the event object of an
/// `EVENT` message.
fn check_event(
    value: &Value,
    config: &PoolConfig,
    now: u64,
) -> std::result::Result<SignedEvent, DropReason> {
    let kind = value
        .get("kind")
        .and_then(Value::as_u64)
        .ok_or(DropReason::Malformed)?;
    if kind != u64::from(nip46::KIND) {
        return Err(DropReason::WrongKind);
    }
    let listen = hex::encode(config.listen_pubkey);
    let tags = value
        .get("tags")
        .and_then(Value::as_array)
        .ok_or(DropReason::Malformed)?;
    let tagged = tags.iter().any(|tag| {
        tag.as_array().is_some_and(|t| {
            t.first().and_then(Value::as_str) == Some("p")
                && t.get(1).and_then(Value::as_str) == Some(listen.as_str())
        })
    });
    if !tagged {
        return Err(DropReason::WrongP);
    }
    let content = value
        .get("content")
        .and_then(Value::as_str)
        .ok_or(DropReason::Malformed)?;
    if content.len() > config.max_content {
        return Err(DropReason::ContentTooLarge);
    }
    let created_at = value
        .get("created_at")
        .and_then(Value::as_u64)
        .ok_or(DropReason::Malformed)?;
    let skew = config.max_skew.as_secs();
    if created_at.saturating_add(skew) < now {
        return Err(DropReason::Stale);
    }
    if created_at > now.saturating_add(skew) {
        return Err(DropReason::Future);
    }
    let event = SignedEvent::parse(&value.to_string()).map_err(|_| DropReason::Malformed)?;
    event.verify().map_err(|_| DropReason::BadSignature)?;
    Ok(event)
}

/// One line, at most [`limits::MAX_ERROR_TEXT`] bytes, of text a relay sent.
fn one_line(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > limits::MAX_ERROR_TEXT {
            break;
        }
        out.push(c);
    }
    out
}

// ----- WebSocket over an in-memory buffer -------------------------------------------------------

/// The byte stream tungstenite sees: bytes read from the socket wait in `rx` (reading it dry
/// is `WouldBlock`), bytes tungstenite writes collect in `tx` until the task sends them.
#[derive(Debug, Default)]
struct Buffered {
    rx: Vec<u8>,
    rx_pos: usize,
    tx: Vec<u8>,
}

impl Read for Buffered {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = &self.rx[self.rx_pos..];
        if available.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.rx_pos += n;
        if self.rx_pos == self.rx.len() {
            self.rx.clear();
            self.rx_pos = 0;
        }
        Ok(n)
    }
}

impl Write for Buffered {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.tx.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn would_block(err: &tungstenite::Error) -> bool {
    matches!(err, tungstenite::Error::Io(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// Writes out what tungstenite queued, under the write deadline.
async fn drain(
    tcp: &mut Conn,
    ws: &mut WebSocket<Buffered>,
    timeout: Duration,
) -> std::result::Result<(), String> {
    match ws.flush() {
        Ok(()) => {}
        Err(e) if would_block(&e) => {}
        Err(e) => return Err(format!("websocket: {e}")),
    }
    let buffer = &mut ws.get_mut().tx;
    if buffer.is_empty() {
        return Ok(());
    }
    let result = tokio::time::timeout(timeout, tcp.write_all(buffer)).await;
    buffer.clear();
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write failed: {e}")),
        Err(_) => Err("write timed out".to_owned()),
    }
}

/// Queues `text` and writes it out.
async fn send_text(
    tcp: &mut Conn,
    ws: &mut WebSocket<Buffered>,
    text: String,
    timeout: Duration,
) -> std::result::Result<(), String> {
    match ws.write(Message::text(text)) {
        Ok(()) => {}
        Err(e) if would_block(&e) => {}
        Err(e) => return Err(format!("websocket: {e}")),
    }
    drain(tcp, ws, timeout).await
}

/// A relay connection: TCP, or TLS over TCP.
type Conn = Box<dyn Io>;

/// What a relay connection needs.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// The Mozilla root certificates (`webpki-roots`).
fn webpki_roots_store() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// TCP (and for `wss://` TLS) connect and WebSocket handshake.
async fn connect(
    url: &str,
    config: &PoolConfig,
) -> std::result::Result<(Conn, WebSocket<Buffered>), String> {
    let request = url
        .into_client_request()
        .map_err(|e| format!("bad URL: {e}"))?;
    let host = request
        .uri()
        .host()
        .ok_or("URL without host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tls = request.uri().scheme_str() == Some("wss");
    let port = request
        .uri()
        .port_u16()
        .unwrap_or(if tls { 443 } else { 80 });
    let plain = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect failed: {e}"))?;
    let _ = plain.set_nodelay(true);
    let mut tcp: Conn = if tls {
        let roots = config
            .tls_roots
            .clone()
            .unwrap_or_else(|| Arc::new(webpki_roots_store()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| "the relay host is not a valid TLS server name".to_owned())?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect(name, plain)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        Box::new(stream)
    } else {
        Box::new(plain)
    };
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(limits::BUNKER_MAX_WS_MESSAGE))
        .max_frame_size(Some(limits::BUNKER_MAX_WS_MESSAGE));
    let mut step =
        tungstenite::client::client_with_config(request, Buffered::default(), Some(ws_config));
    let mut chunk = vec![0u8; 4096];
    loop {
        match step {
            Ok((mut ws, _response)) => {
                drain(&mut tcp, &mut ws, config.write_timeout).await?;
                return Ok((tcp, ws));
            }
            Err(HandshakeError::Failure(e)) => return Err(format!("handshake failed: {e}")),
            Err(HandshakeError::Interrupted(mut mid)) => {
                let buffered = mid.get_mut().get_mut();
                if !buffered.tx.is_empty() {
                    tcp.write_all(&buffered.tx)
                        .await
                        .map_err(|e| format!("write failed: {e}"))?;
                    buffered.tx.clear();
                }
                let n = tcp
                    .read(&mut chunk)
                    .await
                    .map_err(|e| format!("read failed: {e}"))?;
                if n == 0 {
                    return Err("connection closed during the handshake".to_owned());
                }
                buffered.rx.extend_from_slice(&chunk[..n]);
                step = mid.handshake();
            }
        }
    }
}

// ----- the per-relay task -----------------------------------------------------------------------

/// How a connection ended.
enum End {
    /// The pool asked the task to stop.
    Stop,
    /// The connection failed or closed; reconnect after backoff.
    Lost(String),
}

struct RelayTask {
    url: String,
    config: Arc<PoolConfig>,
    counters: Arc<Counters>,
    dedupe: Arc<Mutex<Dedupe>>,
    status: Arc<Mutex<RelayStatus>>,
    inbound: mpsc::Sender<Inbound>,
    commands: mpsc::Receiver<Command>,
    stop: watch::Receiver<bool>,
    /// Newest `created_at` delivered from this relay (resubscription `since`).
    last_seen: Option<u64>,
    subscription: String,
    /// Published events waiting for `OK`, by id.
    pending: HashMap<[u8; 32], Vec<oneshot::Sender<Result<()>>>>,
}

impl RelayTask {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    fn set_status(&self, f: impl FnOnce(&mut RelayStatus)) {
        f(&mut lock(&self.status));
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .config
            .reconnect_min
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.config.reconnect_max);
        jitter(base, self.config.jitter_percent)
    }

    async fn run(mut self) {
        let mut attempt: u32 = 0;
        let mut first = true;
        let mut sessions: u64 = 0;
        loop {
            if self.stopped() {
                return;
            }
            if !first {
                self.set_status(|s| s.reconnects += 1);
            }
            first = false;
            let connected = {
                let connecting = tokio::time::timeout(
                    self.config.connect_timeout,
                    connect(&self.url, &self.config),
                );
                tokio::pin!(connecting);
                loop {
                    tokio::select! {
                        biased;
                        _ = self.stop.changed() => return,
                        result = &mut connecting => break result,
                        command = self.commands.recv() => match command {
                            None => return,
                            Some(command) => refuse(&self.url, command),
                        },
                    }
                }
            };
            let end = match connected {
                Ok(Ok((tcp, ws))) => {
                    sessions += 1;
                    self.subscription = format!("keyline-{sessions}");
                    let since = Instant::now();
                    let end = self.session(tcp, ws).await;
                    if since.elapsed() >= self.config.stable_after {
                        attempt = 0;
                    }
                    end
                }
                Ok(Err(reason)) => End::Lost(reason),
                Err(_) => End::Lost("connect timed out".to_owned()),
            };
            self.fail_pending("connection ended before OK");
            self.set_status(|s| {
                s.connected = false;
                s.subscribed = false;
            });
            let reason = match end {
                End::Stop => return,
                End::Lost(reason) => reason,
            };
            tracing::debug!(relay = %self.url, %reason, "relay pool: connection lost");
            self.set_status(|s| s.last_error = Some(one_line(&reason)));
            let delay = self.backoff(attempt);
            attempt = attempt.saturating_add(1);
            if !self.wait(delay).await {
                return;
            }
        }
    }

    /// Sleeps `delay` while refusing publishes; false when asked to stop.
    async fn wait(&mut self, delay: Duration) -> bool {
        let deadline = tokio::time::sleep(delay);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                biased;
                _ = self.stop.changed() => return false,
                () = &mut deadline => return !self.stopped(),
                command = self.commands.recv() => match command {
                    None => return false,
                    Some(command) => refuse(&self.url, command),
                },
            }
        }
    }

    fn fail_pending(&mut self, reason: &'static str) {
        for (_, replies) in self.pending.drain() {
            for reply in replies {
                let _ = reply.send(Err(Error::RelayUnavailable {
                    relay: self.url.clone(),
                    reason,
                }));
            }
        }
    }

    fn req(&self) -> String {
        let now = unix_now();
        let since = self
            .last_seen
            .map_or(now, |seen| seen.min(now))
            .saturating_sub(self.config.lookback.as_secs());
        serde_json::json!([
            "REQ",
            self.subscription,
            {"kinds": [nip46::KIND], "#p": [hex::encode(self.config.listen_pubkey)], "since": since}
        ])
        .to_string()
    }

    async fn session(&mut self, mut tcp: Conn, mut ws: WebSocket<Buffered>) -> End {
        let write_timeout = self.config.write_timeout;
        self.set_status(|s| {
            s.connected = true;
            s.last_error = None;
        });
        tracing::debug!(relay = %self.url, "relay pool: connected");
        if let Err(reason) = send_text(&mut tcp, &mut ws, self.req(), write_timeout).await {
            return End::Lost(reason);
        }
        let mut chunk = vec![0u8; 16 * 1024];
        let mut last_frame = Instant::now();
        let mut pinged = false;
        let tick = (self.config.ping_interval / 2).max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut resubscribe: Option<tokio::time::Instant> = None;
        let mut closed_count: u32 = 0;
        loop {
            let resubscribe_at = resubscribe.unwrap_or_else(tokio::time::Instant::now);
            tokio::select! {
                biased;
                _ = self.stop.changed() => {
                    let _ = ws.close(None);
                    let _ = drain(&mut tcp, &mut ws, write_timeout).await;
                    return End::Stop;
                }
                read = tcp.read(&mut chunk) => {
                    let n = match read {
                        Ok(0) => return End::Lost("connection closed by the relay".to_owned()),
                        Ok(n) => n,
                        Err(e) => return End::Lost(format!("read failed: {e}")),
                    };
                    last_frame = Instant::now();
                    pinged = false;
                    ws.get_mut().rx.extend_from_slice(&chunk[..n]);
                    loop {
                        match ws.read() {
                            Ok(Message::Text(text)) => {
                                if self.handle_text(text.as_str()) {
                                    closed_count = closed_count.saturating_add(1);
                                    let delay = self.backoff(closed_count - 1);
                                    resubscribe = Some(tokio::time::Instant::now() + delay);
                                }
                            }
                            Ok(Message::Close(frame)) => {
                                let _ = drain(&mut tcp, &mut ws, write_timeout).await;
                                let why = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                                return End::Lost(format!("closed by the relay {why}"));
                            }
                            // Pings are answered by tungstenite (queued, written by `drain`).
                            Ok(_) => {}
                            Err(e) if would_block(&e) => break,
                            Err(e) => return End::Lost(format!("websocket: {e}")),
                        }
                    }
                    if let Err(reason) = drain(&mut tcp, &mut ws, write_timeout).await {
                        return End::Lost(reason);
                    }
                }
                command = self.commands.recv() => match command {
                    None => return End::Stop,
                    Some(Command::Publish { id, json, reply }) => {
                        self.pending.retain(|_, replies| {
                            replies.retain(|r| !r.is_closed());
                            !replies.is_empty()
                        });
                        self.pending.entry(id).or_default().push(reply);
                        if let Err(reason) = send_text(&mut tcp, &mut ws, json, write_timeout).await {
                            return End::Lost(reason);
                        }
                    }
                },
                () = tokio::time::sleep_until(resubscribe_at), if resubscribe.is_some() => {
                    resubscribe = None;
                    if let Err(reason) = send_text(&mut tcp, &mut ws, self.req(), write_timeout).await {
                        return End::Lost(reason);
                    }
                }
                _ = ticker.tick() => {
                    let quiet = last_frame.elapsed();
                    if quiet >= self.config.idle_timeout {
                        return End::Lost("no frame from the relay (idle timeout)".to_owned());
                    }
                    if quiet >= self.config.ping_interval && !pinged {
                        pinged = true;
                        match ws.write(Message::Ping(Default::default())) {
                            Ok(()) => {}
                            Err(e) if would_block(&e) => {}
                            Err(e) => return End::Lost(format!("websocket: {e}")),
                        }
                        if let Err(reason) = drain(&mut tcp, &mut ws, write_timeout).await {
                            return End::Lost(reason);
                        }
                    }
                }
            }
        }
    }

    /// Handles one relay text message; true when our subscription was `CLOSED`.
    fn handle_text(&mut self, text: &str) -> bool {
        if text.len() > self.config.max_message {
            self.drop_event(DropReason::MessageTooLarge, None);
            return false;
        }
        let Ok(Value::Array(mut message)) = serde_json::from_str::<Value>(text) else {
            self.drop_event(DropReason::Malformed, None);
            return false;
        };
        let verb = message
            .first()
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let ours = message.get(1).and_then(Value::as_str) == Some(self.subscription.as_str());
        match verb.as_str() {
            "EVENT" if !ours => self.drop_event(DropReason::Unsolicited, None),
            "EVENT" => {
                let Some(event) = message.get_mut(2).map(Value::take) else {
                    self.drop_event(DropReason::Malformed, None);
                    return false;
                };
                match check_event(&event, &self.config, unix_now()) {
                    Ok(event) => self.deliver(event),
                    Err(reason) => {
                        let id = event.get("id").and_then(Value::as_str).map(str::to_owned);
                        self.drop_event(reason, id.as_deref());
                    }
                }
            }
            "OK" => self.handle_ok(&message),
            "CLOSED" if ours => {
                let why = message.get(2).and_then(Value::as_str).unwrap_or("");
                tracing::debug!(relay = %self.url, reason = why, "relay pool: subscription closed");
                self.set_status(|s| {
                    s.subscribed = false;
                    s.last_error = Some(one_line(&format!("CLOSED: {why}")));
                });
                return true;
            }
            "NOTICE" => {
                let why = message.get(1).and_then(Value::as_str).unwrap_or("");
                tracing::debug!(relay = %self.url, notice = why, "relay pool: notice");
            }
            "EOSE" if ours => self.set_status(|s| s.subscribed = true),
            // AUTH (NIP-42: the pool does not authenticate), COUNT, our EOSE/CLOSED for another
            // subscription, anything unknown: ignored.
            _ => {}
        }
        false
    }

    fn handle_ok(&mut self, message: &[Value]) {
        let mut id = [0u8; 32];
        let Some(id_hex) = message.get(1).and_then(Value::as_str) else {
            return;
        };
        if hex::decode_to_slice(id_hex, &mut id).is_err() {
            return;
        }
        let Some(replies) = self.pending.remove(&id) else {
            return;
        };
        let accepted = message.get(2).and_then(Value::as_bool).unwrap_or(false);
        let text = one_line(message.get(3).and_then(Value::as_str).unwrap_or(""));
        for reply in replies {
            let _ = reply.send(if accepted {
                Ok(())
            } else {
                Err(Error::RelayRejected {
                    relay: self.url.clone(),
                    message: text.clone(),
                })
            });
        }
    }

    fn drop_event(&self, reason: DropReason, id: Option<&str>) {
        self.counters.count(reason);
        tracing::debug!(relay = %self.url, ?reason, id = id.unwrap_or("-"), "relay pool: event dropped");
    }

    fn deliver(&mut self, event: SignedEvent) {
        let now = Instant::now();
        if !lock(&self.dedupe).insert(event.id, now) {
            self.counters.count(DropReason::Duplicate);
            return;
        }
        let id = event.id;
        let created_at = event.created_at;
        match self.inbound.try_send(Inbound {
            relay: self.url.clone(),
            event,
        }) {
            Ok(()) => {
                self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                self.last_seen = Some(self.last_seen.map_or(created_at, |t| t.max(created_at)));
                self.set_status(|s| s.delivered += 1);
            }
            Err(_) => {
                // Full (or closed): drop the newest, and let a copy from another relay through.
                lock(&self.dedupe).forget(&id);
                self.drop_event(DropReason::QueueFull, Some(&hex::encode(id)));
            }
        }
    }
}

/// Answers a publish that arrives while the relay is not connected.
fn refuse(url: &str, command: Command) {
    match command {
        Command::Publish { reply, .. } => {
            let _ = reply.send(Err(Error::RelayUnavailable {
                relay: url.to_owned(),
                reason: "not connected",
            }));
        }
    }
}

/// `base` ± `percent` %, uniformly (no jitter if the OS RNG fails).
fn jitter(base: Duration, percent: u32) -> Duration {
    let mut bytes = [0u8; 4];
    if percent == 0 || getrandom::fill(&mut bytes).is_err() {
        return base;
    }
    let unit = f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX);
    let spread = f64::from(percent.min(100)) / 100.0;
    base.mul_f64(1.0 - spread + 2.0 * spread * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_is_bounded_and_windowed() {
        let t0 = Instant::now();
        let mut d = Dedupe::new(2, Duration::from_secs(10));
        assert!(d.insert([1; 32], t0));
        assert!(!d.insert([1; 32], t0));
        assert!(d.insert([2; 32], t0));
        assert!(d.insert([3; 32], t0)); // evicts [1]
        assert!(d.insert([1; 32], t0));
        let later = t0 + Duration::from_secs(11);
        assert!(d.insert([3; 32], later));
        d.forget(&[3; 32]);
        assert!(d.insert([3; 32], later));
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            let d = jitter(Duration::from_secs(10), 20);
            assert!(
                d >= Duration::from_secs(8) && d <= Duration::from_secs(12),
                "{d:?}"
            );
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("ws://127.0.0.1:7777").is_ok());
        assert!(check_url("wss://relay.example").is_ok());
        assert_eq!(
            check_url("ws://relay.example").unwrap_err().code(),
            "relay_url"
        );
        assert_eq!(check_url("http://x").unwrap_err().code(), "relay_url");
    }

    #[test]
    fn one_line_bounds_relay_text() {
        assert_eq!(one_line("a\nb"), "a b");
        assert_eq!(one_line(&"x".repeat(1000)).len(), limits::MAX_ERROR_TEXT);
    }
}
