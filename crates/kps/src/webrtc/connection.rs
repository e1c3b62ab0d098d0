//! A KPS connection over WebRTC (spec §7–§12): the tokio adapter around the sans-IO
//! [`Engine`]. One driver task per connection owns the str0m `Rtc`: it feeds datagrams and
//! timeouts in, hands the engine's messages to data channels (keeping a refused message
//! queued until SCTP has room again, so no byte is ever dropped), reports channel events to the
//! engine and wakes the application. The application side ([`Connection`], [`Stream`]) locks
//! the engine state briefly and pokes the driver when it queued something.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use str0m::channel::ChannelId;
use str0m::net::{Protocol, Receive};
use str0m::{Event as RtcEvent, Input, Output, Rtc};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, mpsc};

use super::peer;
use super::proto::control::Limits;
use super::proto::engine::{CONTROL_CHANNEL, Engine, Event, MAX_DATAGRAM, Request, Side, StreamId};
use super::proto::stream::{PeerState, Read, SendState, WriteError};
use crate::demux::canonical;
use crate::error::{Code, Error, Result};

/// How long a closing connection waits for its CONNECTION_CLOSE to leave (spec §9.4).
const CLOSE_GRACE: Duration = Duration::from_millis(250);

/// A datagram from the socket: arrival time, source, bytes.
pub(crate) type Packet = (Instant, SocketAddr, Bytes);

// ----- shared state ---------------------------------------------------------------------------

struct State {
    engine: Engine,
    readers: HashMap<StreamId, Waker>,
    writers: HashMap<StreamId, Waker>,
    /// Streams opened for [`Connection::open_stream`] callers, in order.
    opened: VecDeque<StreamId>,
    /// The driver ended (transport gone).
    ended: bool,
}

pub(crate) struct Inner {
    state: Mutex<State>,
    /// Wakes the driver: something was queued to send, or a stream was released.
    poke: Notify,
    /// Wakes waiters for establishment, accepts, opens, datagrams and close.
    changed: Notify,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Routes the engine's events to the wakers they concern.
    fn dispatch(&self, state: &mut State) {
        let mut changed = false;
        while let Some(event) = state.engine.poll_event() {
            match event {
                Event::Readable(id) => {
                    if let Some(w) = state.readers.remove(&id) {
                        w.wake();
                    }
                }
                Event::Writable(id) => {
                    if let Some(w) = state.writers.remove(&id) {
                        w.wake();
                    }
                }
                Event::StreamOpened(id) => state.opened.push_back(id),
                Event::Closed { .. } => wake_all(state),
                Event::Established | Event::StreamIncoming | Event::Datagram => {}
            }
            // Every event may answer a waiter; stream progress matters to `closed()` and
            // `stopped()` too.
            changed = true;
        }
        if changed {
            self.changed.notify_waiters();
        }
    }

    /// Waits until `check` gives an answer; `check` runs under the lock and is re-run after
    /// every change.
    async fn wait<T>(&self, mut check: impl FnMut(&mut State) -> Option<T>) -> T {
        loop {
            let notified = self.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                if let Some(answer) = check(&mut state) {
                    drop(state);
                    self.poke.notify_one();
                    return answer;
                }
            }
            notified.await;
        }
    }
}

fn wake_all(state: &mut State) {
    for (_, w) in state.readers.drain() {
        w.wake();
    }
    for (_, w) in state.writers.drain() {
        w.wake();
    }
}

/// The error for a closed connection: the peer's code, ours, `timeout` or `network-error`.
fn close_error(engine: &Engine) -> Option<Error> {
    engine.close_reason().map(|(code, remote)| Error::Kps {
        code: Code::from_wire(code.into()),
        remote,
    })
}

/// The error operations report after close (spec §12.3: locally closed → `closed`).
fn failure(engine: &Engine) -> Error {
    let (code, remote) = engine.failure();
    Error::Kps {
        code: Code::from_wire(code.into()),
        remote,
    }
}

// ----- the driver -----------------------------------------------------------------------------

/// Where a connection's UDP datagrams go.
pub(crate) enum Outbound {
    /// The listener's one socket, through the demux.
    Demux(Arc<crate::demux::Demux>),
    /// A dialing client's own socket.
    Socket(Arc<tokio::net::UdpSocket>),
}

impl Outbound {
    async fn send(&self, data: &[u8], to: SocketAddr) {
        let _ = match self {
            Outbound::Demux(demux) => demux.send_to(data, to).await,
            Outbound::Socket(socket) => socket.send_to(data, to).await,
        };
    }
}

/// One connection's task: owns the `Rtc`.
pub(crate) struct Driver {
    rtc: Rtc,
    local: SocketAddr,
    out: Outbound,
    inner: Arc<Inner>,
    channels: HashMap<u16, ChannelId>,
    sids: HashMap<ChannelId, u16>,
    pending_opens: VecDeque<ChannelId>,
}

/// A new connection around `rtc` and the driver that runs it.
pub(crate) fn new(
    side: Side,
    rtc: Rtc,
    local: SocketAddr,
    remote: SocketAddr,
    out: Outbound,
    limits: Limits,
) -> (Connection, Driver) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            engine: Engine::new(side, limits, Instant::now()),
            readers: HashMap::new(),
            writers: HashMap::new(),
            opened: VecDeque::new(),
            ended: false,
        }),
        poke: Notify::new(),
        changed: Notify::new(),
    });
    let connection = Connection {
        owner: Arc::new(Owner {
            inner: Arc::clone(&inner),
        }),
        remote: canonical(remote),
    };
    let driver = Driver {
        rtc,
        local,
        out,
        inner,
        channels: HashMap::new(),
        sids: HashMap::new(),
        pending_opens: VecDeque::new(),
    };
    (connection, driver)
}

impl Driver {
    /// Runs the connection until it ends; `inbox` carries its UDP datagrams.
    pub(crate) async fn run(mut self, mut inbox: mpsc::Receiver<Packet>) {
        let mut closing_since: Option<Instant> = None;
        loop {
            let Some(rtc_deadline) = self.turn().await else {
                break;
            };
            let now = Instant::now();
            let (engine_deadline, teardown) = {
                let state = self.inner.lock();
                let teardown = state.engine.close_reason().is_some_and(|(_, remote)| {
                    let since = *closing_since.get_or_insert(now);
                    // The peer closed, or our CONNECTION_CLOSE left (or cannot): tear down.
                    remote || !state.engine.close_pending() || now >= since + CLOSE_GRACE
                });
                (state.engine.deadline(), teardown)
            };
            if teardown {
                self.linger().await;
                break;
            }
            let mut wake = rtc_deadline;
            if let Some(d) = engine_deadline {
                wake = wake.min(d);
            }
            if let Some(since) = closing_since {
                wake = wake.min(since + CLOSE_GRACE);
            }
            tokio::select! {
                packet = inbox.recv() => {
                    let Some((at, from, data)) = packet else { break };
                    self.receive(at, from, &data);
                }
                () = self.inner.poke.notified() => {}
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                    let now = Instant::now();
                    let _ = self.rtc.handle_input(Input::Timeout(now));
                    let mut state = self.inner.lock();
                    state.engine.on_timeout(now);
                    self.inner.dispatch(&mut state);
                }
            }
            if !self.rtc.is_alive() {
                break;
            }
        }
        self.rtc.disconnect();
        let mut state = self.inner.lock();
        state.engine.on_transport_lost();
        state.ended = true;
        self.inner.dispatch(&mut state);
        wake_all(&mut state);
        drop(state);
        self.inner.changed.notify_waiters();
    }

    /// Lets a sent CONNECTION_CLOSE leave the SCTP buffer (bounded).
    async fn linger(&mut self) {
        let until = Instant::now() + CLOSE_GRACE;
        while Instant::now() < until {
            let buffered = self
                .channels
                .get(&CONTROL_CHANNEL)
                .and_then(|id| self.rtc.channel(*id))
                .map_or(0, |mut ch| ch.buffered_amount());
            if buffered == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            let _ = self.rtc.handle_input(Input::Timeout(Instant::now()));
            if self.turn().await.is_none() {
                break;
            }
        }
    }

    fn receive(&mut self, at: Instant, from: SocketAddr, data: &[u8]) {
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            at,
            Receive {
                proto: Protocol::Udp,
                source: from,
                destination: self.local,
                contents,
            },
        );
        if self.rtc.accepts(&input) {
            let _ = self.rtc.handle_input(input);
        }
    }

    /// Moves engine output into str0m and str0m output onto the wire and into the engine
    /// until both are quiet; returns str0m's next deadline, `None` when the peer is over.
    async fn turn(&mut self) -> Option<Instant> {
        loop {
            self.feed_rtc();
            let mut events = Vec::new();
            let deadline = loop {
                match self.rtc.poll_output() {
                    Ok(Output::Timeout(at)) => break at,
                    Ok(Output::Transmit(t)) => self.out.send(&t.contents, t.destination).await,
                    Ok(Output::Event(event)) => events.push(event),
                    Err(err) => {
                        tracing::debug!(%err, "WebRTC peer failed");
                        return None;
                    }
                }
            };
            if events.is_empty() {
                return Some(deadline);
            }
            self.feed_engine(events);
        }
    }

    /// The engine's channel requests and messages, into str0m. A message SCTP refuses stays
    /// queued in the engine and is retried on the next turn.
    fn feed_rtc(&mut self) {
        let inner = Arc::clone(&self.inner);
        let mut state = inner.lock();
        let mut wrote = false;
        while let Some(request) = state.engine.poll_request() {
            match request {
                Request::OpenChannel => {
                    let id = self
                        .rtc
                        .direct_api()
                        .create_data_channel(peer::stream_channel(""));
                    self.pending_opens.push_back(id);
                }
                Request::CloseChannel(sid) => {
                    if let Some(&id) = self.channels.get(&sid) {
                        self.rtc.direct_api().close_data_channel(id);
                    }
                }
            }
        }
        while let Some((sid, message)) = state.engine.peek_transmit() {
            let Some(&id) = self.channels.get(&sid) else {
                break;
            };
            let Some(mut channel) = self.rtc.channel(id) else {
                break;
            };
            match channel.write(true, &message) {
                Ok(true) => {
                    state.engine.transmitted();
                    wrote = true;
                }
                Ok(false) => break,
                Err(err) => {
                    tracing::debug!(%err, sid, "data channel write failed");
                    break;
                }
            }
        }
        inner.dispatch(&mut state);
        drop(state);
        if wrote {
            // A terminal frame may have left: `stopped()`/`closed()` waiters re-check.
            inner.changed.notify_waiters();
        }
    }

    fn feed_engine(&mut self, events: Vec<RtcEvent>) {
        let inner = Arc::clone(&self.inner);
        let mut state = inner.lock();
        for event in events {
            match event {
                RtcEvent::ChannelOpen(id, _) => {
                    let Some(sid) = self.rtc.direct_api().sctp_stream_id_by_channel_id(id) else {
                        continue;
                    };
                    self.channels.insert(sid, id);
                    self.sids.insert(id, sid);
                    if let Some(i) = self.pending_opens.iter().position(|p| *p == id) {
                        self.pending_opens.remove(i);
                        state.engine.on_local_channel_open(sid);
                    } else {
                        state.engine.on_channel_open(sid);
                    }
                }
                RtcEvent::ChannelData(data) => {
                    if let Some(&sid) = self.sids.get(&data.id) {
                        state.engine.on_channel_message(sid, &data.data);
                    }
                }
                RtcEvent::ChannelClose(id) => {
                    if let Some(sid) = self.sids.remove(&id) {
                        self.channels.remove(&sid);
                        state.engine.on_channel_closed(sid);
                    }
                    if let Some(i) = self.pending_opens.iter().position(|p| *p == id) {
                        self.pending_opens.remove(i);
                        state.engine.on_local_channel_failed();
                    }
                }
                _ => {}
            }
        }
        inner.dispatch(&mut state);
    }
}

// ----- the application side -------------------------------------------------------------------

/// Closes the connection (code 0) when the last [`Connection`] clone and the last stream go
/// away.
struct Owner {
    inner: Arc<Inner>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        if state.engine.close_reason().is_none() {
            state.engine.close(Code::None.wire());
            self.inner.dispatch(&mut state);
        }
        drop(state);
        self.inner.poke.notify_one();
    }
}

/// An established KPS connection over WebRTC: the same operations and error semantics as over
/// QUIC (applications use it through [`crate::Connection`]). Cheap to clone; closes (code 0)
/// when the last clone and the last stream are dropped.
#[derive(Clone)]
pub struct Connection {
    owner: Arc<Owner>,
    remote: SocketAddr,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("transport", &"webrtc")
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Waits until HELLO went both ways: `Ok` when established, the close reason otherwise.
    pub(crate) async fn established(&self) -> Result<()> {
        self.owner
            .inner
            .wait(|s| {
                if s.engine.is_established() {
                    Some(Ok(()))
                } else {
                    close_error(&s.engine).map(Err)
                }
            })
            .await
    }

    /// Opens a stream (a new data channel). Waits while the peer's stream limit is reached.
    pub async fn open_stream(&self) -> Result<Stream> {
        self.owner
            .inner
            .wait(|s| match s.engine.open_stream() {
                Ok(true) => Some(Ok(())),
                Ok(false) => None,
                Err(_) => Some(Err(failure(&s.engine))),
            })
            .await?;
        let id = self
            .owner
            .inner
            .wait(|s| {
                if let Some(id) = s.opened.pop_front() {
                    Some(Ok(id))
                } else if s.engine.close_reason().is_some() {
                    Some(Err(failure(&s.engine)))
                } else {
                    None
                }
            })
            .await?;
        Ok(Stream::new(Arc::clone(&self.owner), id))
    }

    /// Waits for the next stream the peer opens.
    pub async fn accept_stream(&self) -> Result<Stream> {
        let id = self
            .owner
            .inner
            .wait(|s| {
                if let Some(id) = s.engine.accept() {
                    Some(Ok(id))
                } else if s.engine.close_reason().is_some() {
                    Some(Err(failure(&s.engine)))
                } else {
                    None
                }
            })
            .await?;
        Ok(Stream::new(Arc::clone(&self.owner), id))
    }

    /// Sends an unreliable datagram (at most [`MAX_DATAGRAM`] = 1200 bytes, else
    /// [`Error::DatagramTooLarge`]); `queue-full` when 256 wait for the channel.
    pub fn send_datagram(&self, data: impl Into<Bytes>) -> Result<()> {
        let data = data.into();
        let mut state = self.owner.inner.lock();
        match state.engine.send_datagram(&data) {
            Ok(()) => {}
            Err(Code::TooLarge) => {
                return Err(Error::DatagramTooLarge {
                    size: data.len(),
                    max: MAX_DATAGRAM,
                });
            }
            Err(Code::QueueFull) => return Err(Error::local(Code::QueueFull)),
            Err(_) => return Err(failure(&state.engine)),
        }
        drop(state);
        self.owner.inner.poke.notify_one();
        Ok(())
    }

    /// Waits for the next datagram (oldest first; the queue drops the oldest beyond 256).
    pub async fn recv_datagram(&self) -> Result<Bytes> {
        self.owner
            .inner
            .wait(|s| {
                if let Some(d) = s.engine.recv_datagram() {
                    Some(Ok(Bytes::from(d)))
                } else if s.engine.close_reason().is_some() {
                    Some(Err(failure(&s.engine)))
                } else {
                    None
                }
            })
            .await
    }

    /// The largest datagram payload: 1200 bytes (spec §11).
    pub fn max_datagram_size(&self) -> usize {
        MAX_DATAGRAM
    }

    /// Closes the connection with a registry code (`Code::None` = clean): CONNECTION_CLOSE goes
    /// out best effort, then the peer connection is torn down.
    pub fn close(&self, code: Code) {
        let mut state = self.owner.inner.lock();
        state.engine.close(code.wire());
        self.owner.inner.dispatch(&mut state);
        drop(state);
        self.owner.inner.poke.notify_one();
    }

    /// Waits until the connection is closed and returns the reason.
    pub async fn closed(&self) -> Error {
        self.owner.inner.wait(|s| close_error(&s.engine)).await
    }

    /// The close reason, if the connection is closed.
    pub fn close_reason(&self) -> Option<Error> {
        close_error(&self.owner.inner.lock().engine)
    }

    /// The peer's address (canonical form).
    pub fn remote_address(&self) -> SocketAddr {
        self.remote
    }
}

// ----- streams --------------------------------------------------------------------------------

/// Releases the stream in the engine when both halves are gone.
struct Handle {
    owner: Arc<Owner>,
    id: StreamId,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut state = self.owner.inner.lock();
        state.engine.release(self.id);
        state.readers.remove(&self.id);
        state.writers.remove(&self.id);
        self.owner.inner.dispatch(&mut state);
        drop(state);
        self.owner.inner.poke.notify_one();
    }
}

/// The write half of a WebRTC stream.
pub struct SendHalf {
    handle: Arc<Handle>,
    reset: Option<Code>,
}

/// The read half of a WebRTC stream (EOF only after the peer's FIN).
pub struct RecvHalf {
    handle: Arc<Handle>,
    cancelled: Option<Code>,
}

/// A KPS stream over one data channel.
pub struct Stream {
    recv: RecvHalf,
    send: SendHalf,
    orderly: bool,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.send.handle.id)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SendHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendHalf")
            .field("id", &self.handle.id)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RecvHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvHalf")
            .field("id", &self.handle.id)
            .finish_non_exhaustive()
    }
}

impl Stream {
    fn new(owner: Arc<Owner>, id: StreamId) -> Stream {
        let handle = Arc::new(Handle { owner, id });
        Stream {
            recv: RecvHalf {
                handle: Arc::clone(&handle),
                cancelled: None,
            },
            send: SendHalf {
                handle,
                reset: None,
            },
            orderly: false,
        }
    }

    /// Splits into independently owned read and write halves.
    pub fn into_split(self) -> (RecvHalf, SendHalf) {
        (self.recv, self.send)
    }

    /// Finishes the write half (FIN).
    pub fn close_write(&mut self) -> Result<()> {
        self.send.close_write()
    }

    /// Aborts the write half (RESET with `code`).
    pub fn reset_write(&mut self, code: Code) {
        self.send.reset_write(code)
    }

    /// Stops reading (STOP_SENDING with `code`).
    pub fn cancel_read(&mut self, code: Code) {
        self.recv.cancel_read(code)
    }

    /// `close()` of §8.4: FIN plus STOP_SENDING(`closed`).
    pub fn close(&mut self) {
        if self.send.reset.is_none() && self.recv.cancelled.is_none() {
            self.orderly = true;
        }
        let _ = self.send.close_write();
        self.recv.cancel_read(Code::Closed);
    }

    /// `close(code)` of §8.4: RESET(code) plus STOP_SENDING(code).
    pub fn close_with(&mut self, code: Code) {
        self.send.reset_write(code);
        self.recv.cancel_read(code);
    }

    /// `closed` of §8.4: `Ok(())` for an orderly local teardown ([`Stream::close`]) or a normal
    /// completion of both halves; otherwise the first reason seen (see the halves' `closed`).
    pub async fn closed(&mut self) -> Result<()> {
        if self.orderly {
            return Ok(());
        }
        self.recv.closed().await?;
        self.send.closed().await
    }
}

fn with_engine<T>(handle: &Handle, f: impl FnOnce(&mut Engine, StreamId) -> T) -> T {
    let mut state = handle.owner.inner.lock();
    let out = f(&mut state.engine, handle.id);
    handle.owner.inner.dispatch(&mut state);
    drop(state);
    handle.owner.inner.poke.notify_one();
    out
}

impl SendHalf {
    /// Finishes the write half (FIN). Idempotent; a no-op after a reset.
    pub fn close_write(&mut self) -> Result<()> {
        with_engine(&self.handle, |e, id| e.finish(id)).map_err(|_| Error::local(Code::Closed))
    }

    /// Aborts the write half with RESET(`code`). Idempotent; a no-op after FIN went out.
    pub fn reset_write(&mut self, code: Code) {
        if self.reset.is_none() {
            self.reset = Some(code);
            let _ = with_engine(&self.handle, |e, id| e.reset(id, code.wire()));
        }
    }

    /// Waits until our FIN was handed to the channel (`None`) or the peer stopped the stream
    /// (`Some(code)`: we answered with RESET).
    pub async fn stopped(&mut self) -> Result<Option<Code>> {
        let (id, reset) = (self.handle.id, self.reset);
        self.handle
            .owner
            .inner
            .wait(|s| match s.engine.stream_state(id) {
                _ if s.engine.close_reason().is_some() => Some(Err(failure(&s.engine))),
                None | Some((SendState::FinSent, ..)) => Some(Ok(None)),
                Some((SendState::ResetQueued(code) | SendState::ResetSent(code), ..)) => {
                    Some(match reset {
                        Some(_) => Err(Error::local(Code::Closed)),
                        None => Ok(Some(Code::from_wire(code.into()))),
                    })
                }
                Some(_) => None,
            })
            .await
    }

    /// Waits until the write half has terminated: `Ok(())` once our FIN left; an error with
    /// the peer's STOP_SENDING code (`remote = true`), our own reset code (at once) or the
    /// connection's close reason.
    pub async fn closed(&mut self) -> Result<()> {
        if let Some(code) = self.reset {
            return Err(Error::local(code));
        }
        match self.stopped().await? {
            None => Ok(()),
            Some(code) => Err(Error::remote(code)),
        }
    }

    fn write_error(&self, state: &State, error: WriteError) -> Error {
        if state.engine.close_reason().is_some() {
            return failure(&state.engine);
        }
        match (error, self.reset) {
            (_, Some(code)) => Error::local(code),
            (WriteError::Closed, None) => Error::local(Code::Closed),
            (WriteError::Stopped(code), None) => Error::remote(Code::from_wire(code.into())),
        }
    }
}

impl RecvHalf {
    /// Stops reading with STOP_SENDING(`code`). Idempotent.
    pub fn cancel_read(&mut self, code: Code) {
        if self.cancelled.is_none() {
            self.cancelled = Some(code);
            let _ = with_engine(&self.handle, |e, id| e.stop(id, code.wire()));
        }
    }

    /// Waits until the read half has terminated: `Ok(())` once the peer's FIN arrived and every
    /// byte was read; an error with the peer's RESET code (`remote = true`), our own
    /// [`RecvHalf::cancel_read`] code (at once) or the connection's close reason.
    pub async fn closed(&mut self) -> Result<()> {
        if let Some(code) = self.cancelled {
            return Err(Error::local(code));
        }
        let id = self.handle.id;
        self.handle
            .owner
            .inner
            .wait(|s| match s.engine.stream_state(id) {
                None | Some((_, PeerState::Finished, true)) => Some(Ok(())),
                Some((_, PeerState::Reset(code), _)) => {
                    Some(Err(Error::remote(Code::from_wire(code.into()))))
                }
                _ if s.engine.close_reason().is_some() => Some(Err(failure(&s.engine))),
                Some(_) => None,
            })
            .await
    }
}

impl AsyncRead for RecvHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let handle = &self.handle;
        let mut state = handle.owner.inner.lock();
        let read = state.engine.read(handle.id, buf.initialize_unfilled());
        let outcome = match read {
            Read::Data(n) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Read::Eof => Poll::Ready(Ok(())),
            Read::Failed { code, remote } => Poll::Ready(Err(Error::Kps {
                code: Code::from_wire(code.into()),
                remote,
            }
            .into_io())),
            Read::Blocked => {
                state.readers.insert(handle.id, cx.waker().clone());
                Poll::Pending
            }
        };
        handle.owner.inner.dispatch(&mut state);
        drop(state);
        if matches!(read, Read::Data(_)) {
            // Reading may have released credit to advertise.
            handle.owner.inner.poke.notify_one();
        }
        outcome
    }
}

impl AsyncWrite for SendHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let handle = &self.handle;
        let mut state = handle.owner.inner.lock();
        let outcome = match state.engine.write(handle.id, buf) {
            Ok(0) => {
                state.writers.insert(handle.id, cx.waker().clone());
                Poll::Pending
            }
            Ok(n) => Poll::Ready(Ok(n)),
            Err(e) => Poll::Ready(Err(self.write_error(&state, e).into_io())),
        };
        handle.owner.inner.dispatch(&mut state);
        drop(state);
        if matches!(outcome, Poll::Ready(Ok(_))) {
            handle.owner.inner.poke.notify_one();
        }
        outcome
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().close_write().map_err(Error::into_io))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().send).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().send).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().send).poll_shutdown(cx)
    }
}
