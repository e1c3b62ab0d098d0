//! `keyline bench relay`: frames forwarded through the SBRP relay next to a raw WebSocket hop,
//! added latency, relay memory per idle session, and endpoint AEAD next to raw
//! ChaCha20-Poly1305 — all measured in the same run.
//!
//! Both hops run as child processes of this binary (`keyline bench relay --hop relay|raw`,
//! hidden), so each gets its own process whose RSS can be read and the load generator's
//! memory is not counted. The load generator (this process) connects one daemon and 1000
//! clients to each hop, completes a handshake exchange on every session, then:
//!
//! * **frames/s**: clients send Data frames of 64 B / 1 KiB / 16 KiB payload to the daemon
//!   (1 session, then round-robin over 1000 sessions) with at most [`WINDOW`] frames in flight,
//!   so the relay's bounded queues never trip its slow-consumer rule; rounds alternate relay
//!   and raw hop, the ratio is taken per round;
//! * **latency**: one 64-B Data frame at a time, echoed by the daemon, samples alternating
//!   between the hops; "added" is relay − raw at the same percentile, for the round trip (two
//!   traversals of the hop);
//! * **memory**: RSS of the hop process with the daemon connected, and again with 1000 idle
//!   sessions, per session;
//! * **AEAD**: `keyline_sbrp::proto::{Sealer, Opener}` (seal + open with the replay window)
//!   against raw `chacha20poly1305` seal + open of the same size, thread CPU time.
//!
//! The raw hop is tokio-tungstenite with the same topology (many clients, one daemon socket,
//! a bounded writer queue per connection): it reads the 8-byte sid from the frame header only
//! to send the daemon's replies back, and does nothing else — no tokens, no validation, no
//! pairing, no rate limit, no metrics; its WebSocket buffers are configured like the relay's.
//! The relay runs with its rate limit lifted and room for 1000 sessions per daemon; every
//! other bound is its default.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use keyline_core::ReplayWindow;
use keyline_sbrp::proto::frame::{FrameType, Header};
use keyline_sbrp::proto::session::{Direction, Opener, Sealer};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::Row;
use super::measure::{Rounds, Step, summary};
use crate::error::{CliError, Result};

const AREA: &str = "relay";
/// Sessions in the many-sessions runs and the memory figure.
const SESSIONS: usize = 1000;
/// Frames in flight (sent, not yet received by the daemon) across all senders.
const WINDOW: usize = 64;
/// Payload sizes of the Data frames.
const SIZES: [usize; 3] = [64, 1024, 16 * 1024];
/// The daemon id both hops serve.
const DAEMON_ID: &str = "bench-daemon";

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Which hop a child process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Hop {
    /// keyline-relay with its issuer.
    Relay,
    /// The raw WebSocket forwarder.
    Raw,
}

pub(super) fn run(quick: bool, print: &dyn Fn(&Row)) -> Result<()> {
    aead(quick, print);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::io("starting the runtime"))?;
    runtime.block_on(transport(quick, print))
}

// ----- hops (child processes) --------------------------------------------------------------

/// `keyline bench relay --hop KIND`: serves one hop on 127.0.0.1:0, prints `{"addr"}`, runs
/// until killed.
pub(crate) fn serve_hop(hop: Hop) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::io("starting the runtime"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(CliError::io("binding the hop"))?;
        let addr = listener
            .local_addr()
            .map_err(CliError::io("reading the hop address"))?;
        println!("{}", serde_json::json!({ "addr": addr.to_string() }));
        match hop {
            Hop::Relay => {
                let mut config = keyline_relay::RelayConfig::default();
                config.limits.frames_per_second = u32::MAX / 2;
                config.limits.frame_burst = u32::MAX / 2;
                config.limits.sessions_per_daemon = 4 * SESSIONS;
                let relay = keyline_relay::Relay::new(config)?;
                relay.serve(listener, std::future::pending::<()>()).await?;
            }
            Hop::Raw => raw_hop(listener).await,
        }
        Ok(())
    })
}

/// Per-connection writer queue of the raw hop (the relay's default frame queue).
const RAW_QUEUE: usize = keyline_relay::limits::SEND_QUEUE_FRAMES;

struct RawState {
    daemon: std::sync::Mutex<Option<mpsc::Sender<Message>>>,
    clients: std::sync::Mutex<HashMap<u64, mpsc::Sender<Message>>>,
}

// tungstenite's accept callback has a large error type (an HTTP response) by design.
#[allow(clippy::result_large_err)]
async fn raw_hop(listener: tokio::net::TcpListener) {
    let state = Arc::new(RawState {
        daemon: std::sync::Mutex::new(None),
        clients: std::sync::Mutex::new(HashMap::new()),
    });
    while let Ok((tcp, _)) = listener.accept().await {
        let _ = tcp.set_nodelay(true);
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let mut is_daemon = false;
            let callback = |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                            resp| {
                is_daemon = req.uri().path() == "/daemon";
                Ok(resp)
            };
            // The relay's read chunk, so both hops hold the same buffers per connection.
            let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                .read_buffer_size(keyline_relay::limits::READ_BUFFER)
                .write_buffer_size(0);
            let accepted =
                tokio_tungstenite::accept_hdr_async_with_config(tcp, callback, Some(config)).await;
            let Ok(ws) = accepted else {
                return;
            };
            let (mut sink, mut stream) = ws.split();
            let (tx, mut rx) = mpsc::channel::<Message>(RAW_QUEUE);
            tokio::spawn(async move {
                while let Some(m) = rx.recv().await {
                    if sink.send(m).await.is_err() {
                        break;
                    }
                }
            });
            if is_daemon {
                *lock(&state.daemon) = Some(tx.clone());
            }
            while let Some(Ok(message)) = stream.next().await {
                let Message::Binary(bytes) = message else {
                    continue;
                };
                let sid = Header::parse(&bytes).map(|h| h.sid).unwrap_or(0);
                let target = if is_daemon {
                    lock(&state.clients).get(&sid).cloned()
                } else {
                    lock(&state.clients)
                        .entry(sid)
                        .or_insert_with(|| tx.clone());
                    lock(&state.daemon).clone()
                };
                if let Some(target) = target {
                    let _ = target.send(Message::Binary(bytes)).await;
                }
            }
        });
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A hop child process.
struct HopProcess {
    child: Child,
    addr: SocketAddr,
}

impl HopProcess {
    fn start(hop: Hop) -> Result<HopProcess> {
        let exe = std::env::current_exe().map_err(CliError::io("finding the keyline binary"))?;
        let name = match hop {
            Hop::Relay => "relay",
            Hop::Raw => "raw",
        };
        let mut child = Command::new(exe)
            .args(["bench", "relay", "--hop", name])
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(CliError::io("starting a hop process"))?;
        let mut line = String::new();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| CliError::Failed("hop process has no stdout".into()))?;
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .map_err(CliError::io("reading the hop address"))?;
        let addr = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["addr"].as_str().and_then(|a| a.parse().ok()))
            .ok_or_else(|| CliError::Failed(format!("hop process said {line:?}")))?;
        Ok(HopProcess { child, addr })
    }

    /// Resident set size in KiB (Linux `/proc`).
    fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for HopProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ----- the load generator ------------------------------------------------------------------

/// One client session: its sid and the sending half of its connection.
struct ClientConn {
    sid: u64,
    sink: Mutex<SplitSink<Ws, Message>>,
}

/// The daemon side of one hop and every session's client.
struct Bench {
    name: &'static str,
    clients: Vec<Arc<ClientConn>>,
    /// Data frames the daemon received.
    received: Arc<AtomicU64>,
    /// Window permits, returned by the daemon reader per received frame.
    window: Arc<Semaphore>,
    /// Whether the daemon echoes Data frames (latency runs).
    echo: Arc<AtomicBool>,
    /// Echoed frames arriving at clients: (sid).
    echoes: Mutex<mpsc::Receiver<u64>>,
}

impl Bench {
    async fn connect(hop: &HopProcess, kind: Hop) -> Result<(Bench, u64, u64)> {
        let http = format!("http://{}", hop.addr);
        let seed = [7u8; 32];
        let daemon_url = match kind {
            Hop::Relay => {
                let grant =
                    keyline_sbrp::tokio::issuer::presence_token(&http, DAEMON_ID, &seed).await?;
                format!("{}?token={}", grant.url, grant.token.as_str())
            }
            Hop::Raw => format!("ws://{}/daemon", hop.addr),
        };
        let daemon = ws_connect(&daemon_url).await?;
        let (daemon_sink, daemon_stream) = daemon.split();
        let received = Arc::new(AtomicU64::new(0));
        let window = Arc::new(Semaphore::new(WINDOW));
        let echo = Arc::new(AtomicBool::new(false));
        tokio::spawn(daemon_reader(
            daemon_stream,
            daemon_sink,
            Arc::clone(&received),
            Arc::clone(&window),
            Arc::clone(&echo),
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rss_before = hop.rss_kib().unwrap_or(0);
        let (echo_tx, echo_rx) = mpsc::channel(1024);
        let mut clients = Vec::with_capacity(SESSIONS);
        for i in 0..SESSIONS {
            let (url, sid) = match kind {
                Hop::Relay => {
                    let grant =
                        keyline_sbrp::tokio::issuer::session_token(&http, DAEMON_ID).await?;
                    let sid = keyline_sbrp::proto::sid::decode_sid(&grant.sid)?;
                    (format!("{}?token={}", grant.url, grant.token.as_str()), sid)
                }
                Hop::Raw => (format!("ws://{}/client", hop.addr), 1000 + i as u64),
            };
            let ws = ws_connect(&url).await?;
            let (mut sink, mut stream) = ws.split();
            let init = frame(FrameType::HandshakeInit, sid, &[i as u8; 32]);
            sink.send(Message::Binary(init))
                .await
                .map_err(ws_error("sending HandshakeInit"))?;
            // The daemon answers every Init with an Accept.
            loop {
                match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
                    Ok(Some(Ok(Message::Binary(b))))
                        if b.first() == Some(&(FrameType::HandshakeAccept as u8)) =>
                    {
                        break;
                    }
                    Ok(Some(Ok(_))) => continue,
                    _ => {
                        return Err(CliError::Failed(format!(
                            "{kind:?} hop: session {i} got no HandshakeAccept"
                        )));
                    }
                }
            }
            tokio::spawn(client_reader(stream, sid, echo_tx.clone()));
            clients.push(Arc::new(ClientConn {
                sid,
                sink: Mutex::new(sink),
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss_after = hop.rss_kib().unwrap_or(0);
        let name = match kind {
            Hop::Relay => "relay",
            Hop::Raw => "raw hop",
        };
        Ok((
            Bench {
                name,
                clients,
                received,
                window,
                echo,
                echoes: Mutex::new(echo_rx),
            },
            rss_before,
            rss_after,
        ))
    }

    /// Sends `total` Data frames of `size` over the first `sessions` sessions; frames/s at
    /// the daemon.
    async fn throughput(&self, sessions: usize, size: usize, total: u64) -> Result<f64> {
        self.echo.store(false, Ordering::SeqCst);
        let start_count = self.received.load(Ordering::SeqCst);
        let payload = vec![0x5a; size];
        let started = Instant::now();
        let per_session = total.div_ceil(sessions as u64);
        let mut tasks = Vec::with_capacity(sessions);
        for client in self.clients.iter().take(sessions) {
            let client = Arc::clone(client);
            let window = Arc::clone(&self.window);
            let bytes = frame(FrameType::Data, client.sid, &payload);
            tasks.push(tokio::spawn(async move {
                let mut sink = client.sink.lock().await;
                for _ in 0..per_session {
                    match window.acquire().await {
                        Ok(permit) => permit.forget(),
                        Err(_) => return Err(()),
                    }
                    sink.feed(Message::Binary(bytes.clone()))
                        .await
                        .map_err(|_| ())?;
                    if window.available_permits() == 0 {
                        sink.flush().await.map_err(|_| ())?;
                    }
                }
                sink.flush().await.map_err(|_| ())
            }));
        }
        for task in tasks {
            task.await
                .map_err(|_| CliError::Failed("sender task failed".into()))?
                .map_err(|()| CliError::Failed(format!("{}: a sender failed", self.name)))?;
        }
        let target = start_count + per_session * sessions as u64;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.received.load(Ordering::SeqCst) < target {
            if Instant::now() > deadline {
                return Err(CliError::Failed(format!(
                    "{}: frames lost ({} of {})",
                    self.name,
                    self.received.load(Ordering::SeqCst) - start_count,
                    target - start_count
                )));
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        Ok((per_session * sessions as u64) as f64 / started.elapsed().as_secs_f64())
    }

    /// One echoed 64-B Data frame on session `i`; round-trip time.
    async fn round_trip(&self, i: usize) -> Result<Duration> {
        self.echo.store(true, Ordering::SeqCst);
        let client = &self.clients[i % self.clients.len()];
        let bytes = frame(FrameType::Data, client.sid, &[0x33; 64]);
        let mut echoes = self.echoes.lock().await;
        let started = Instant::now();
        client
            .sink
            .lock()
            .await
            .send(Message::Binary(bytes))
            .await
            .map_err(ws_error("sending a Data frame"))?;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), echoes.recv()).await {
                Ok(Some(sid)) if sid == client.sid => return Ok(started.elapsed()),
                Ok(Some(_)) => continue,
                _ => return Err(CliError::Failed(format!("{}: echo lost", self.name))),
            }
        }
    }
}

fn frame(kind: FrameType, sid: u64, payload: &[u8]) -> Bytes {
    let header = Header {
        frame_type: kind as u8,
        length: payload.len() as u32,
        sid,
    };
    let mut out = Vec::with_capacity(13 + payload.len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(payload);
    Bytes::from(out)
}

async fn ws_connect(url: &str) -> Result<Ws> {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(ws_error("connecting to the hop"))?;
    if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
        let _ = tcp.set_nodelay(true);
    }
    Ok(ws)
}

fn ws_error(what: &'static str) -> impl Fn(tokio_tungstenite::tungstenite::Error) -> CliError {
    move |e| CliError::Failed(format!("{what}: {e}"))
}

/// The daemon: answers every HandshakeInit, counts Data frames (returning window permits),
/// echoes them when asked.
async fn daemon_reader(
    mut stream: SplitStream<Ws>,
    mut sink: SplitSink<Ws, Message>,
    received: Arc<AtomicU64>,
    window: Arc<Semaphore>,
    echo: Arc<AtomicBool>,
) {
    let accept = [0x42u8; 128];
    while let Some(Ok(message)) = stream.next().await {
        let Message::Binary(bytes) = message else {
            continue;
        };
        let Some(header) = Header::parse(&bytes) else {
            continue;
        };
        if header.frame_type == FrameType::HandshakeInit as u8 {
            let reply = frame(FrameType::HandshakeAccept, header.sid, &accept);
            if sink.send(Message::Binary(reply)).await.is_err() {
                return;
            }
        } else if header.frame_type == FrameType::Data as u8 {
            if echo.load(Ordering::SeqCst) {
                if sink.send(Message::Binary(bytes)).await.is_err() {
                    return;
                }
            } else {
                received.fetch_add(1, Ordering::SeqCst);
                window.add_permits(1);
            }
        }
    }
}

/// A client's reader: reports echoed Data frames, drains everything else.
async fn client_reader(mut stream: SplitStream<Ws>, sid: u64, echoes: mpsc::Sender<u64>) {
    while let Some(Ok(message)) = stream.next().await {
        if let Message::Binary(bytes) = message
            && bytes.first() == Some(&(FrameType::Data as u8))
            && echoes.send(sid).await.is_err()
        {
            return;
        }
    }
}

async fn transport(quick: bool, print: &dyn Fn(&Row)) -> Result<()> {
    let relay_hop = HopProcess::start(Hop::Relay)?;
    let raw_hop = HopProcess::start(Hop::Raw)?;
    let (relay, relay_rss0, relay_rss1) = Bench::connect(&relay_hop, Hop::Relay).await?;
    let (raw, raw_rss0, raw_rss1) = Bench::connect(&raw_hop, Hop::Raw).await?;

    let per_session =
        |before: u64, after: u64| after.saturating_sub(before) as f64 / SESSIONS as f64;
    let relay_mem = per_session(relay_rss0, relay_rss1);
    let raw_mem = per_session(raw_rss0, raw_rss1);
    print(&Row {
        area: AREA,
        metric: format!("relay memory per idle session ({SESSIONS} sessions)"),
        value: relay_mem,
        unit: "KiB",
        limit: Some((16.0, format!("issue target; raw hop {raw_mem:.1} KiB"))),
        ratio: Some(16.0 / relay_mem.max(1e-9)),
        spread: (relay_mem, relay_mem),
    });

    let rounds = if quick { 3 } else { 5 };
    for sessions in [1, SESSIONS] {
        for size in SIZES {
            let total: u64 = match size {
                64 => 40_000,
                1024 => 30_000,
                _ => 8_000,
            } / if quick { 4 } else { 1 };
            let (mut ours, mut bound, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..rounds {
                let (a, b) = if round % 2 == 0 {
                    let a = relay.throughput(sessions, size, total).await?;
                    (a, raw.throughput(sessions, size, total).await?)
                } else {
                    let b = raw.throughput(sessions, size, total).await?;
                    (relay.throughput(sessions, size, total).await?, b)
                };
                ours.push(a);
                bound.push(b);
                ratios.push(a / b);
            }
            let (value, min, max) = summary(&ours);
            print(&Row {
                area: AREA,
                metric: format!(
                    "frames/s, {} payload, {sessions} session{}",
                    human(size),
                    if sessions == 1 { "" } else { "s" }
                ),
                value,
                unit: "frames/s",
                limit: Some((summary(&bound).0, "raw WebSocket hop, same run".into())),
                ratio: Some(summary(&ratios).0),
                spread: (min, max),
            });
        }
    }

    let samples = if quick { 400 } else { 2000 };
    for sessions in [1, SESSIONS] {
        let (mut ours, mut bound) = (Vec::new(), Vec::new());
        for i in 0..samples {
            let session = if sessions == 1 {
                0
            } else {
                (i * 7919) % sessions
            };
            if i % 2 == 0 {
                ours.push(relay.round_trip(session).await?);
                bound.push(raw.round_trip(session).await?);
            } else {
                bound.push(raw.round_trip(session).await?);
                ours.push(relay.round_trip(session).await?);
            }
        }
        ours.sort();
        bound.sort();
        for (label, q) in [("p50", 0.50), ("p99", 0.99)] {
            let at = |v: &[Duration]| v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
            let (a, b) = (at(&ours), at(&bound));
            print(&Row {
                area: AREA,
                metric: format!(
                    "round trip {label}, {sessions} session{}",
                    if sessions == 1 { "" } else { "s" }
                ),
                value: a,
                unit: "µs",
                limit: Some((b, "raw WebSocket hop, same run".into())),
                ratio: Some(b / a),
                spread: (a, a),
            });
            print(&Row {
                area: AREA,
                metric: format!(
                    "added latency {label} (round trip), {sessions} session{}",
                    if sessions == 1 { "" } else { "s" }
                ),
                value: (a - b).max(0.0),
                unit: "µs",
                limit: None,
                ratio: None,
                spread: (a - b, a - b),
            });
        }
    }
    drop(relay);
    drop(raw);
    Ok(())
}

fn human(size: usize) -> String {
    if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

// ----- endpoint AEAD -----------------------------------------------------------------------

/// Seal + open through the SBRP session halves against raw ChaCha20-Poly1305 seal + open.
fn aead(quick: bool, print: &dyn Fn(&Row)) {
    for size in [1024usize, 16 * 1024] {
        let key = [9u8; 32];
        let plaintext = vec![0xa5u8; size];
        let mut sealer = Sealer::new(&key, Direction::ClientToDaemon);
        let mut opener = Opener::new(
            &key,
            Direction::ClientToDaemon,
            ReplayWindow::new(128).unwrap_or_else(|e| unreachable!("window: {e}")),
        );
        let mut sealed = vec![0u8; size + 28];
        let mut opened = vec![0u8; size];
        let raw = ChaCha20Poly1305::new(&key.into());
        let mut raw_buf = vec![0u8; size];
        let mut raw_seq = 0u64;
        let steps = vec![
            Step::Whole(Box::new(|| {
                let n = sealer
                    .seal_payload(&plaintext, &mut sealed)
                    .unwrap_or_else(|e| unreachable!("seal: {e}"));
                opener
                    .open_into(&sealed[..n], &mut opened)
                    .unwrap_or_else(|e| unreachable!("open: {e}"));
                std::hint::black_box(&opened);
            })),
            Step::Whole(Box::new(|| {
                raw_seq += 1;
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&raw_seq.to_be_bytes());
                let nonce = Nonce::from(nonce);
                raw_buf.copy_from_slice(&plaintext);
                let tag = raw
                    .encrypt_inout_detached(&nonce, b"", raw_buf.as_mut_slice().into())
                    .unwrap_or_else(|_| unreachable!("raw seal"));
                raw.decrypt_inout_detached(&nonce, b"", raw_buf.as_mut_slice().into(), &tag)
                    .unwrap_or_else(|_| unreachable!("raw open"));
                std::hint::black_box(&raw_buf);
            })),
        ];
        let rounds = Rounds::measure(quick, steps);
        let mib = size as f64 / (1024.0 * 1024.0);
        let ours: Vec<f64> = rounds.of(0).iter().map(|s| mib / s).collect();
        let bound: Vec<f64> = rounds.of(1).iter().map(|s| mib / s).collect();
        let ratios = rounds.per_round(|t| t(1) / t(0));
        let (value, min, max) = summary(&ours);
        print(&Row {
            area: AREA,
            metric: format!("endpoint AEAD seal+open, {} frames", human(size)),
            value,
            unit: "MiB/s",
            limit: Some((summary(&bound).0, "raw ChaCha20-Poly1305 seal+open".into())),
            ratio: Some(summary(&ratios).0),
            spread: (min, max),
        });
    }
}
