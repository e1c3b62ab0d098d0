//! One WebSocket connection: the reader (validation, routing, pacing, keepalive) and the
//! writer (bounded queue, write timeout, Pings).

use super::*;

pub(super) enum Out {
    Frame(Bytes),
    Close(CloseKind),
    GoingAway,
}

/// The relay's side of one connection's send queue.
pub(super) struct ConnHandle {
    pub(super) tx: mpsc::Sender<Out>,
    pub(super) queued_frames: Arc<AtomicUsize>,
    pub(super) queued_bytes: Arc<AtomicUsize>,
    pub(super) kill: Arc<Notify>,
    pub(super) max_frames: usize,
    pub(super) max_bytes: usize,
}

impl ConnHandle {
    pub(super) fn send(&self, frame: Bytes) {
        let len = frame.len();
        let frames = self.queued_frames.fetch_add(1, Ordering::AcqRel) + 1;
        let bytes = self.queued_bytes.fetch_add(len, Ordering::AcqRel) + len;
        if frames > self.max_frames || bytes > self.max_bytes {
            self.queued_frames.fetch_sub(1, Ordering::AcqRel);
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            // Slow consumer: `backpressure`, then close (spec 8.6). Never a silent drop.
            self.kill.notify_one();
            return;
        }
        if self.tx.try_send(Out::Frame(frame)).is_err() {
            self.queued_frames.fetch_sub(1, Ordering::AcqRel);
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            self.kill.notify_one();
        }
    }

    pub(super) fn close(&self, kind: CloseKind) {
        // The channel has slack beyond `max_frames` for closes.
        if self.tx.try_send(Out::Close(kind)).is_err() {
            self.kill.notify_one();
        }
    }
}

pub(super) struct ConnSlot(pub(super) Arc<Shared>);

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(super) enum ConnRole {
    Client {
        core: Option<Arc<Mutex<DaemonCore>>>,
        sid: u64,
    },
    Daemon {
        core: Arc<Mutex<DaemonCore>>,
        resumable: bool,
        cap: Option<u64>,
    },
}

fn is_capacity_error(err: &axum::Error) -> bool {
    use std::error::Error as _;
    matches!(
        err.source()
            .and_then(|inner| inner.downcast_ref::<tungstenite::Error>()),
        Some(tungstenite::Error::Capacity(_))
    )
}

pub(super) async fn run_connection(
    shared: Arc<Shared>,
    socket: WebSocket,
    role: ConnRole,
    slot: ConnSlot,
) {
    let limits = shared.limits.clone();
    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel(limits.send_queue_frames.saturating_add(4));
    let queued_frames = Arc::new(AtomicUsize::new(0));
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let kill = Arc::new(Notify::new());
    let (done_tx, done_rx) = watch::channel(false);
    lock(&shared.conns).insert(
        conn,
        ConnHandle {
            tx,
            queued_frames: queued_frames.clone(),
            queued_bytes: queued_bytes.clone(),
            kill: kill.clone(),
            max_frames: limits.send_queue_frames,
            max_bytes: limits.send_queue_bytes,
        },
    );
    let gauge = match role {
        ConnRole::Client { .. } => &shared.metrics.client_connections,
        ConnRole::Daemon { .. } => &shared.metrics.daemon_connections,
    };
    gauge.fetch_add(1, Ordering::Relaxed);
    let writer = tokio::spawn(write_loop(
        sink,
        rx,
        WriterState {
            queued_frames,
            queued_bytes,
            kill,
            done: done_tx,
            limits: limits.clone(),
            metrics: shared.metrics.clone(),
        },
    ));

    let now = shared.clock.now();
    let closed_by_core = match &role {
        ConnRole::Client {
            core: Some(core),
            sid,
        } => {
            let actions = shared.drive(core, |c| c.client_connected(conn, *sid));
            closes(&actions, conn)
        }
        ConnRole::Client { core: None, sid } => {
            // P3.
            let actions = [
                Action::Send {
                    conn,
                    frame: Bytes::from(control_frame(ControlCode::DaemonNotFound, *sid)),
                },
                Action::Close {
                    conn,
                    kind: CloseKind::AfterControl,
                },
            ];
            shared.execute(&actions);
            true
        }
        ConnRole::Daemon {
            core,
            resumable,
            cap,
        } => {
            tracing::debug!("daemon connected");
            let actions = shared.drive(core, |c| c.daemon_connected(conn, *resumable, *cap, now));
            closes(&actions, conn)
        }
    };
    if !closed_by_core {
        read_loop(&shared, conn, &role, &mut stream, done_rx).await;
    }

    // The connection is over: tell the core (P8/P9/P15/P18/P22/P23).
    let now = shared.clock.now();
    match &role {
        ConnRole::Client {
            core: Some(core),
            sid,
        } => {
            shared.drive(core, |c| c.client_closed(conn, *sid, now));
        }
        ConnRole::Client { core: None, .. } => {}
        ConnRole::Daemon { core, .. } => {
            shared.drive(core, |c| c.daemon_closed(conn, now));
        }
    }
    // Dropping the handle ends the writer once it has written what is queued.
    lock(&shared.conns).remove(&conn);
    let _ = writer.await;
    // Closing handshake: read (and discard) until the peer's Close or EOF, bounded by the
    // write timeout, so the last Control frame is not lost to a TCP reset caused by unread
    // data.
    let _ = tokio::time::timeout(limits.write_timeout, async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    gauge.fetch_sub(1, Ordering::Relaxed);
    drop(slot);
}

fn closes(actions: &[Action], conn: ConnId) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Close { conn: c, .. } if *c == conn))
}

async fn read_loop(
    shared: &Arc<Shared>,
    conn: ConnId,
    role: &ConnRole,
    stream: &mut SplitStream<WebSocket>,
    mut done: watch::Receiver<bool>,
) {
    let limits = &shared.limits;
    let mut bucket = FrameBucket::new(limits.frames_per_second, limits.frame_burst);
    let mut last_rate_limited: Option<tokio::time::Instant> = None;
    let silence = limits
        .keepalive_interval
        .saturating_mul(limits.keepalive_missed.max(1));
    let mut deadline = tokio::time::Instant::now() + silence;
    loop {
        // Read-side pacing (spec 8.6): stop reading until a token is available.
        if let Err(wait) = bucket.take(std::time::Instant::now()) {
            let now = tokio::time::Instant::now();
            if last_rate_limited.is_none_or(|t| now.duration_since(t) >= limits.rate_limited_window)
            {
                last_rate_limited = Some(now);
                shared.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
                shared.execute(&[Action::Send {
                    conn,
                    frame: Bytes::from(control_frame(ControlCode::RateLimited, 0)),
                }]);
            }
            tokio::select! {
                _ = done.wait_for(|d| *d) => return,
                () = tokio::time::sleep(wait) => {}
            }
            // Pacing is not silence.
            deadline = deadline.max(tokio::time::Instant::now() + silence);
            continue;
        }
        let message = tokio::select! {
            _ = done.wait_for(|d| *d) => return,
            () = tokio::time::sleep_until(deadline) => {
                shared.metrics.keepalive_closes.fetch_add(1, Ordering::Relaxed);
                shared.execute(&[Action::Close { conn, kind: CloseKind::AfterControl }]);
                return;
            }
            message = stream.next() => message,
        };
        deadline = tokio::time::Instant::now() + silence;
        let actions = match message {
            None => return,
            Some(Err(err)) if is_capacity_error(&err) => {
                reject(shared, conn, role, Rejection::oversize_message())
            }
            Some(Err(_)) => return,
            Some(Ok(Message::Binary(bytes))) => match role {
                ConnRole::Client {
                    core: Some(core),
                    sid,
                } => {
                    let now = shared.clock.now();
                    shared.drive(core, |c| c.on_client_message(conn, *sid, bytes, now))
                }
                ConnRole::Client { core: None, .. } => return,
                ConnRole::Daemon { core, .. } => {
                    let now = shared.clock.now();
                    shared.drive(core, |c| c.on_daemon_message(conn, bytes, now))
                }
            },
            Some(Ok(Message::Text(_))) => reject(shared, conn, role, Rejection::text_message()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) => return,
        };
        if closes(&actions, conn) {
            return;
        }
    }
}

fn reject(
    shared: &Arc<Shared>,
    conn: ConnId,
    role: &ConnRole,
    rejection: Rejection,
) -> Vec<Action> {
    match role {
        ConnRole::Client {
            core: Some(core),
            sid,
        } => {
            let now = shared.clock.now();
            shared.drive(core, |c| c.reject_client(conn, *sid, rejection, now))
        }
        ConnRole::Client { core: None, .. } => {
            let actions = vec![
                Action::Send {
                    conn,
                    frame: Bytes::from(rejection.control_frame()),
                },
                Action::Close {
                    conn,
                    kind: CloseKind::AfterControl,
                },
            ];
            shared.execute(&actions);
            actions
        }
        ConnRole::Daemon { core, .. } => {
            let now = shared.clock.now();
            shared.drive(core, |c| c.reject_daemon(conn, rejection, now))
        }
    }
}

struct WriterState {
    pub(super) queued_frames: Arc<AtomicUsize>,
    pub(super) queued_bytes: Arc<AtomicUsize>,
    pub(super) kill: Arc<Notify>,
    done: watch::Sender<bool>,
    limits: Limits,
    metrics: Arc<Metrics>,
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Out>,
    state: WriterState,
) {
    let timeout = state.limits.write_timeout;
    let interval = state
        .limits
        .keepalive_interval
        .max(Duration::from_millis(10));
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let out = tokio::select! {
            biased;
            () = state.kill.notified() => {
                // Slow consumer: the Control goes out directly (bounded by the write
                // timeout), ahead of the queue; then close.
                state.metrics.backpressure_closes.fetch_add(1, Ordering::Relaxed);
                let frame = Bytes::from(control_frame(ControlCode::Backpressure, 0));
                let _ = tokio::time::timeout(timeout, sink.send(Message::Binary(frame))).await;
                let _ = tokio::time::timeout(timeout, sink.send(Message::Close(None))).await;
                break;
            }
            out = rx.recv() => out,
            _ = ping.tick() => {
                match tokio::time::timeout(timeout, sink.send(Message::Ping(Bytes::new()))).await {
                    Ok(Ok(())) => continue,
                    Ok(Err(_)) => break,
                    Err(_) => {
                        state.metrics.write_timeout_closes.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
        };
        let message = match out {
            None => break,
            Some(Out::Frame(frame)) => {
                state.queued_frames.fetch_sub(1, Ordering::AcqRel);
                state.queued_bytes.fetch_sub(frame.len(), Ordering::AcqRel);
                Message::Binary(frame)
            }
            Some(Out::Close(CloseKind::AfterControl)) => Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "".into(),
            })),
            Some(Out::Close(CloseKind::Replaced)) => Message::Close(Some(CloseFrame {
                code: 1008,
                reason: "".into(),
            })),
            Some(Out::GoingAway) => Message::Close(Some(CloseFrame {
                code: 1001,
                reason: "".into(),
            })),
        };
        let is_close = matches!(message, Message::Close(_));
        match tokio::time::timeout(timeout, sink.send(message)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break,
            Err(_) => {
                state
                    .metrics
                    .write_timeout_closes
                    .fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        if is_close {
            break;
        }
    }
    let _ = state.done.send(true);
    let _ = tokio::time::timeout(timeout, sink.close()).await;
}
