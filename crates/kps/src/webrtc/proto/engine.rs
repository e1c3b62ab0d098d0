//! One KPS connection over WebRTC data channels, sans-IO (spec §7–§12): HELLO sequencing,
//! cross-channel staging of early peer streams, control messages, streams with credit, stream
//! slots and retirement, datagrams, close. The adapter feeds channel events in
//! (`on_channel_*`), performs what [`Engine::poll_request`] asks (open or close a channel),
//! hands [`Engine::peek_transmit`] messages to their channel and confirms with
//! [`Engine::transmitted`] only when the channel accepted them (str0m may refuse a message when
//! its send buffer is full; it then stays queued), and surfaces [`Engine::poll_event`].

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::control::{Control, Limits};
use super::flow::{OpenCredit, PeerStreams, RecvWindow, SendCredit};
use super::frame::Frame;
use super::stream::{PeerState, Read, SendState, Stream, WriteError};
use crate::error::Code;

/// Channel 0: control messages.
pub const CONTROL_CHANNEL: u16 = 0;
/// Channel 1: datagrams.
pub const DATAGRAM_CHANNEL: u16 = 1;
/// Largest datagram payload on WebRTC (spec §11).
pub const MAX_DATAGRAM: usize = 1200;
/// Datagrams kept for the application, oldest dropped beyond (spec §11).
pub const DATAGRAM_QUEUE: usize = 256;
/// Datagrams waiting for channel 1, newest refused beyond.
pub const DATAGRAM_SEND_QUEUE: usize = 256;
/// Payload bytes admitted to the send queues and not yet taken by the channels, over the
/// connection: beyond it writes wait, whatever credit the peer grants (peer credit is a ceiling
/// for the peer, not a licence to buffer that much here, §10.2).
pub const MAX_UNSENT: u64 = 1 << 20;
/// How long the HELLO exchange may take (spec §9.2).
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(15);
/// Streams waiting in the accept queue (staged or established), beyond the peer's slots this
/// is bounded by our `initialMaxStreams` anyway.
const MAX_ACCEPT_QUEUE: usize = 1024;

/// An application stream of one connection. Unlike the channel id, which SCTP reuses once a
/// channel closed, a `StreamId` is never reused: the application keeps reading a retired
/// stream's EOF or error through it until it [releases](Engine::release) the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(pub u64);

/// Which end of the connection this engine is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Opens even stream channels (2, 4, …).
    Client,
    /// Opens odd stream channels (3, 5, …).
    Server,
}

/// What the adapter must do with the data channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Open a new (DCEP) channel for a local stream; report it with
    /// [`Engine::on_local_channel_open`] (or [`Engine::on_local_channel_failed`]).
    OpenChannel,
    /// Close this channel (the stream is wire-complete and drained, §10.4).
    CloseChannel(u16),
}

/// What the application learns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// HELLO sent and received: the connection is usable.
    Established,
    /// A peer stream can be accepted ([`Engine::accept`]).
    StreamIncoming,
    /// A stream we asked for is open (in the order of [`Engine::open_stream`] calls).
    StreamOpened(StreamId),
    /// Data, EOF or an error is ready to read.
    Readable(StreamId),
    /// Credit or queue space arrived.
    Writable(StreamId),
    /// A datagram arrived.
    Datagram,
    /// The connection ended with a code (`remote`: the peer's CONNECTION_CLOSE).
    Closed {
        /// The registry code (0: clean).
        code: u32,
        /// Whether the peer chose it.
        remote: bool,
    },
}

/// The connection engine.
#[derive(Debug)]
pub struct Engine {
    side: Side,
    local: Limits,
    deadline: Instant,
    control_open: bool,
    datagram_open: bool,
    hello_sent: bool,
    peer_hello: bool,
    established: bool,
    closed: Option<(u32, bool)>,
    /// What reads and writes report once closed (spec §12.3).
    failure: (u32, bool),
    close_queued: Option<u32>,
    credit: SendCredit,
    open: OpenCredit,
    window: RecvWindow,
    peer_streams: PeerStreams,
    pending_opens: usize,
    streams: BTreeMap<StreamId, Entry>,
    channels: BTreeMap<u16, StreamId>,
    next_stream: u64,
    accept: VecDeque<StreamId>,
    max_data: Option<u64>,
    max_streams: Option<u64>,
    datagrams_in: VecDeque<Vec<u8>>,
    datagrams_out: VecDeque<Vec<u8>>,
    requests: VecDeque<Request>,
    events: VecDeque<Event>,
    next: Option<Next>,
    /// A write waited for [`MAX_UNSENT`]: wake writers once the queues drained to half.
    unsent_blocked: bool,
}

#[derive(Debug)]
struct Entry {
    stream: Stream,
    channel: u16,
    peer_initiated: bool,
    /// The application holds it (accepted, or opened locally).
    held: bool,
    /// The application let it go ([`Engine::release`]).
    released: bool,
    close_requested: bool,
    channel_closed: bool,
    retired: bool,
}

impl Entry {
    fn new(channel: u16, peer_initiated: bool, window: u64) -> Self {
        Entry {
            stream: Stream::new(window),
            channel,
            peer_initiated,
            held: !peer_initiated,
            released: false,
            close_requested: false,
            channel_closed: false,
            retired: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Control(ControlKind),
    Datagram,
    Stream(StreamId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ControlKind {
    Hello,
    Close,
    MaxData,
    MaxStreams,
}

impl Engine {
    /// A new connection with our `limits`, created at `now` (the HELLO deadline runs from it).
    pub fn new(side: Side, limits: Limits, now: Instant) -> Self {
        Engine {
            side,
            local: limits,
            deadline: now + HELLO_TIMEOUT,
            control_open: false,
            datagram_open: false,
            hello_sent: false,
            peer_hello: false,
            established: false,
            closed: None,
            failure: (Code::Closed.wire(), false),
            close_queued: None,
            credit: SendCredit::default(),
            open: OpenCredit::default(),
            window: RecvWindow::new(limits.initial_max_data),
            peer_streams: PeerStreams::new(limits.initial_max_streams),
            pending_opens: 0,
            streams: BTreeMap::new(),
            channels: BTreeMap::new(),
            next_stream: 0,
            accept: VecDeque::new(),
            max_data: None,
            max_streams: None,
            datagrams_in: VecDeque::new(),
            datagrams_out: VecDeque::new(),
            requests: VecDeque::new(),
            events: VecDeque::new(),
            next: None,
            unsent_blocked: false,
        }
    }

    fn insert(&mut self, channel: u16, peer_initiated: bool) -> StreamId {
        let id = StreamId(self.next_stream);
        self.next_stream += 1;
        let entry = Entry::new(channel, peer_initiated, self.local.initial_max_stream_data);
        self.streams.insert(id, entry);
        self.channels.insert(channel, id);
        id
    }

    /// Application streams the engine still tracks (live, or retired but not yet released).
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// HELLO sent and received.
    pub fn is_established(&self) -> bool {
        self.established
    }

    /// The close code and whether the peer chose it, once closed.
    pub fn close_reason(&self) -> Option<(u32, bool)> {
        self.closed
    }

    /// What operations report once closed (spec §12.3): the peer's code (a clean close as
    /// `closed`), `closed` after a local close, else the local failure's code.
    pub fn failure(&self) -> (u32, bool) {
        self.failure
    }

    /// The next deadline (the HELLO timeout until established).
    pub fn deadline(&self) -> Option<Instant> {
        (!self.established && self.closed.is_none()).then_some(self.deadline)
    }

    /// Time passed: a missed HELLO deadline closes with `timeout`.
    pub fn on_timeout(&mut self, now: Instant) {
        if !self.established && self.closed.is_none() && now >= self.deadline {
            self.fail(Code::Timeout.wire());
        }
    }

    fn peer_initiated(&self, id: u16) -> bool {
        let even = id.is_multiple_of(2);
        match self.side {
            Side::Client => !even,
            Side::Server => even,
        }
    }

    /// Ends the connection locally with `code` (a violation, a timeout), telling the peer
    /// (best effort); parked reads and writes fail with `code`.
    fn fail(&mut self, code: u32) {
        self.end(code, code);
    }

    fn end(&mut self, code: u32, failure: u32) {
        if self.closed.is_some() {
            return;
        }
        self.close_queued = Some(code);
        self.closed = Some((code, false));
        self.failure = (failure, false);
        self.events.push_back(Event::Closed {
            code,
            remote: false,
        });
    }

    // ----- channel events ---------------------------------------------------------------------

    /// A channel opened that the peer created (DCEP) or a reserved one (0, 1).
    pub fn on_channel_open(&mut self, id: u16) {
        if self.closed.is_some() {
            return;
        }
        match id {
            CONTROL_CHANNEL => self.control_open = true,
            DATAGRAM_CHANNEL => self.datagram_open = true,
            channel if self.peer_initiated(channel) && !self.channels.contains_key(&channel) => {
                if self.peer_streams.on_open().is_err() || self.accept.len() >= MAX_ACCEPT_QUEUE {
                    return self.fail(Code::ProtocolError.wire());
                }
                let id = self.insert(channel, true);
                // Staged until established (§9.3); released in arrival order.
                self.accept.push_back(id);
                if self.established {
                    self.events.push_back(Event::StreamIncoming);
                }
            }
            _ => self.fail(Code::ProtocolError.wire()),
        }
    }

    /// The channel the adapter opened for [`Request::OpenChannel`] is open as `id`.
    pub fn on_local_channel_open(&mut self, channel: u16) {
        self.pending_opens = self.pending_opens.saturating_sub(1);
        if self.closed.is_some() {
            return;
        }
        if self.peer_initiated(channel) || channel < 2 || self.channels.contains_key(&channel) {
            return self.fail(Code::InternalError.wire());
        }
        self.open.commit();
        let id = self.insert(channel, false);
        self.events.push_back(Event::StreamOpened(id));
    }

    /// Opening a channel for a local stream failed: its slot is free again.
    pub fn on_local_channel_failed(&mut self) {
        self.pending_opens = self.pending_opens.saturating_sub(1);
        self.open.release();
    }

    /// A message on channel `id`.
    pub fn on_channel_message(&mut self, id: u16, message: &[u8]) {
        if self.closed.is_some() {
            return;
        }
        match id {
            CONTROL_CHANNEL => self.on_control(message),
            DATAGRAM_CHANNEL => {
                if message.len() > MAX_DATAGRAM * 16 {
                    return;
                }
                if self.datagrams_in.len() >= DATAGRAM_QUEUE {
                    self.datagrams_in.pop_front();
                }
                self.datagrams_in.push_back(message.to_vec());
                self.events.push_back(Event::Datagram);
            }
            channel => {
                let frame = match Frame::decode(message) {
                    Ok(frame) => frame,
                    Err(code) => return self.fail(code.wire()),
                };
                let Some(&id) = self.channels.get(&channel) else {
                    return self.fail(Code::ProtocolError.wire());
                };
                let Some(entry) = self.streams.get_mut(&id) else {
                    return self.fail(Code::ProtocolError.wire());
                };
                match entry
                    .stream
                    .on_frame(frame, &mut self.window, &mut self.credit)
                {
                    Ok(max_data) => {
                        if let Some(v) = max_data {
                            self.max_data = Some(v);
                        }
                        let event = match frame {
                            Frame::MaxStreamData(_) | Frame::StopSending(_) => Event::Writable(id),
                            _ => Event::Readable(id),
                        };
                        self.events.push_back(event);
                        self.maybe_retire(id);
                    }
                    Err(code) => self.fail(code.wire()),
                }
            }
        }
    }

    fn on_control(&mut self, message: &[u8]) {
        let control = match Control::decode(message) {
            Ok(c) => c,
            Err(code) => return self.fail(code.wire()),
        };
        match control {
            Control::ConnectionClose(code) => {
                self.closed = Some((code, true));
                let failure = if code == 0 { Code::Closed.wire() } else { code };
                self.failure = (failure, true);
                self.events.push_back(Event::Closed { code, remote: true });
            }
            Control::Hello(limits) => {
                if self.peer_hello {
                    return self.fail(Code::ProtocolError.wire());
                }
                self.peer_hello = true;
                self.credit.on_hello(limits);
                self.open.on_hello(limits);
                self.check_established();
            }
            Control::MaxData(v) if self.peer_hello => {
                self.credit.on_max_data(v);
                self.wake_writers();
            }
            Control::MaxStreams(v) if self.peer_hello => self.open.on_max_streams(v),
            _ => self.fail(Code::ProtocolError.wire()),
        }
    }

    fn check_established(&mut self) {
        if !self.established && self.hello_sent && self.peer_hello {
            self.established = true;
            self.events.push_back(Event::Established);
            for _ in 0..self.accept.len() {
                self.events.push_back(Event::StreamIncoming);
            }
        }
    }

    fn wake_writers(&mut self) {
        let ids: Vec<StreamId> = self.streams.keys().copied().collect();
        self.events.extend(ids.into_iter().map(Event::Writable));
    }

    /// Channel `id` closed.
    pub fn on_channel_closed(&mut self, id: u16) {
        if self.closed.is_some() {
            return;
        }
        match id {
            CONTROL_CHANNEL | DATAGRAM_CHANNEL => self.fail(Code::ProtocolError.wire()),
            channel => {
                let Some(&id) = self.channels.get(&channel) else {
                    return;
                };
                let Some(entry) = self.streams.get_mut(&id) else {
                    return;
                };
                if !entry.stream.is_wire_complete() {
                    // Credit is ambiguous: connection-fatal (§10.5).
                    return self.fail(Code::ProtocolError.wire());
                }
                entry.channel_closed = true;
                // SCTP may reuse the channel id from now on.
                self.channels.remove(&channel);
                self.maybe_retire(id);
            }
        }
    }

    /// The whole peer connection failed: `network-error`.
    pub fn on_transport_lost(&mut self) {
        if self.closed.is_none() {
            self.closed = Some((Code::NetworkError.wire(), false));
            self.failure = (Code::NetworkError.wire(), false);
            self.events.push_back(Event::Closed {
                code: Code::NetworkError.wire(),
                remote: false,
            });
        }
    }

    /// Closes the stream's channel once wire-complete and drained; retires it once the
    /// channel closed too (spec §10.4).
    fn maybe_retire(&mut self, id: StreamId) {
        let Some(entry) = self.streams.get_mut(&id) else {
            return;
        };
        if !entry.retired {
            if !(entry.stream.is_wire_complete() && entry.stream.is_drained()) {
                return;
            }
            if !entry.channel_closed {
                if !entry.close_requested {
                    entry.close_requested = true;
                    self.requests
                        .push_back(Request::CloseChannel(entry.channel));
                }
                return;
            }
            entry.retired = true;
            if entry.peer_initiated {
                self.max_streams = Some(self.peer_streams.on_retire());
            }
        }
        // Forgotten once nobody can read it any more: released by the application, or a peer
        // stream the application never accepted.
        if entry.released || !entry.held {
            self.streams.remove(&id);
            self.accept.retain(|s| *s != id);
        }
    }

    // ----- application ------------------------------------------------------------------------

    fn usable(&self) -> Result<(), Code> {
        match self.closed {
            Some(_) => Err(Code::from_wire(self.failure.0.into())),
            None if !self.established => Err(Code::Closed),
            None => Ok(()),
        }
    }

    /// Asks for a new local stream: `Ok(true)` when a slot was reserved (the adapter gets
    /// [`Request::OpenChannel`]), `Ok(false)` to wait for MAX_STREAMS.
    pub fn open_stream(&mut self) -> Result<bool, Code> {
        self.usable()?;
        if !self.open.reserve() {
            return Ok(false);
        }
        self.pending_opens += 1;
        self.requests.push_back(Request::OpenChannel);
        Ok(true)
    }

    /// The next staged or incoming peer stream (only once established).
    pub fn accept(&mut self) -> Option<StreamId> {
        if !self.established {
            return None;
        }
        let id = self.accept.pop_front()?;
        if let Some(entry) = self.streams.get_mut(&id) {
            entry.held = true;
        }
        Some(id)
    }

    /// The application let stream `id` go (its handle dropped): an open send half is finished,
    /// an open read half stopped with `closed`, and the engine forgets the stream once retired.
    pub fn release(&mut self, id: StreamId) {
        let Some(entry) = self.streams.get_mut(&id) else {
            return;
        };
        entry.released = true;
        entry.stream.close_write();
        let window = &mut self.window;
        if let Some(v) = entry.stream.cancel_read(window, Code::Closed.wire()) {
            self.max_data = Some(v);
        }
        self.maybe_retire(id);
    }

    fn entry(&mut self, id: StreamId) -> Result<&mut Entry, Code> {
        self.streams.get_mut(&id).ok_or(Code::Closed)
    }

    /// Writes up to one frame of `data` to stream `id` (0: wait for credit).
    pub fn write(&mut self, id: StreamId, data: &[u8]) -> Result<usize, WriteError> {
        if self.closed.is_some() {
            return Err(WriteError::Stopped(self.failure.0));
        }
        if self.credit.reserved() >= MAX_UNSENT && !data.is_empty() {
            self.unsent_blocked = true;
            return Ok(0);
        }
        let credit = &mut self.credit;
        let entry = self
            .streams
            .get_mut(&id)
            .ok_or(WriteError::Stopped(Code::Closed.wire()))?;
        entry.stream.write(credit, data)
    }

    /// Finishes stream `id`'s send half (FIN).
    pub fn finish(&mut self, id: StreamId) -> Result<(), Code> {
        self.entry(id)?.stream.close_write();
        Ok(())
    }

    /// Aborts stream `id`'s send half.
    pub fn reset(&mut self, id: StreamId, code: u32) -> Result<(), Code> {
        let credit = &mut self.credit;
        let entry = self.streams.get_mut(&id).ok_or(Code::Closed)?;
        entry.stream.reset_write(credit, code);
        Ok(())
    }

    /// Stops reading stream `id`.
    pub fn stop(&mut self, id: StreamId, code: u32) -> Result<(), Code> {
        let window = &mut self.window;
        let entry = self.streams.get_mut(&id).ok_or(Code::Closed)?;
        if let Some(v) = entry.stream.cancel_read(window, code) {
            self.max_data = Some(v);
        }
        self.maybe_retire(id);
        Ok(())
    }

    /// Closes stream `id` both ways: FIN after the queued data, reads fail with `closed`.
    pub fn close_stream(&mut self, id: StreamId) -> Result<(), Code> {
        self.finish(id)?;
        self.stop(id, Code::Closed.wire())
    }

    /// Reads from stream `id`.
    pub fn read(&mut self, id: StreamId, out: &mut [u8]) -> Read {
        let (code, remote) = self.failure;
        if self.closed.is_some() && !self.streams.contains_key(&id) {
            return Read::Failed { code, remote };
        }
        let window = &mut self.window;
        let Some(entry) = self.streams.get_mut(&id) else {
            return Read::Failed {
                code: Code::Closed.wire(),
                remote: false,
            };
        };
        let (read, max_data) = entry.stream.read(window, out);
        if let Some(v) = max_data {
            self.max_data = Some(v);
        }
        if read == Read::Blocked && self.closed.is_some() {
            return Read::Failed { code, remote };
        }
        self.maybe_retire(id);
        read
    }

    /// Sends a datagram (at most [`MAX_DATAGRAM`] bytes).
    pub fn send_datagram(&mut self, payload: &[u8]) -> Result<(), Code> {
        self.usable()?;
        if payload.len() > MAX_DATAGRAM {
            return Err(Code::TooLarge);
        }
        if self.datagrams_out.len() >= DATAGRAM_SEND_QUEUE {
            return Err(Code::QueueFull);
        }
        self.datagrams_out.push_back(payload.to_vec());
        Ok(())
    }

    /// The oldest received datagram.
    pub fn recv_datagram(&mut self) -> Option<Vec<u8>> {
        self.datagrams_in.pop_front()
    }

    /// Closes the connection with `code` (0: clean): CONNECTION_CLOSE goes out best effort;
    /// local reads and writes then fail with `closed`.
    pub fn close(&mut self, code: u32) {
        self.end(code, Code::Closed.wire());
    }

    // ----- output -----------------------------------------------------------------------------

    /// A CONNECTION_CLOSE is still waiting for channel 0.
    pub fn close_pending(&self) -> bool {
        self.close_queued.is_some()
    }

    /// Whether stream `id` retired (both halves ended on the wire, its channel closed, every
    /// byte consumed); `true` too once the engine forgot it.
    pub fn is_retired(&self, id: StreamId) -> bool {
        self.streams.get(&id).is_none_or(|e| e.retired)
    }

    /// Stream `id`'s send half, the peer's send half and whether every received byte was
    /// consumed; `None` once the engine forgot the stream.
    pub fn stream_state(&self, id: StreamId) -> Option<(SendState, PeerState, bool)> {
        self.streams.get(&id).map(|e| {
            (
                e.stream.send_state(),
                e.stream.peer_state(),
                e.stream.is_drained(),
            )
        })
    }

    /// The next channel operation the adapter must perform.
    pub fn poll_request(&mut self) -> Option<Request> {
        self.requests.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next message and its channel, without taking it: control first (HELLO, close,
    /// MAX_DATA, MAX_STREAMS), then datagrams, then streams in channel order.
    pub fn peek_transmit(&mut self) -> Option<(u16, Vec<u8>)> {
        if self.control_open {
            let control = if let Some(code) = self.close_queued {
                Some((ControlKind::Close, Control::ConnectionClose(code)))
            } else if self.closed.is_some() {
                None
            } else if !self.hello_sent {
                Some((ControlKind::Hello, Control::Hello(self.local)))
            } else if let Some(v) = self.max_data {
                Some((ControlKind::MaxData, Control::MaxData(v)))
            } else {
                self.max_streams
                    .map(|v| (ControlKind::MaxStreams, Control::MaxStreams(v)))
            };
            if let Some((kind, message)) = control {
                self.next = Some(Next::Control(kind));
                return Some((CONTROL_CHANNEL, message.encode()));
            }
        }
        if self.closed.is_some() {
            return None;
        }
        if self.datagram_open
            && let Some(d) = self.datagrams_out.front()
        {
            self.next = Some(Next::Datagram);
            return Some((DATAGRAM_CHANNEL, d.clone()));
        }
        if !self.established {
            return None;
        }
        for (&id, entry) in &mut self.streams {
            if entry.channel_closed {
                continue;
            }
            if let Some(bytes) = entry.stream.peek_transmit() {
                self.next = Some(Next::Stream(id));
                return Some((entry.channel, bytes));
            }
        }
        None
    }

    /// The channel accepted the message [`Engine::peek_transmit`] returned.
    pub fn transmitted(&mut self) {
        let Some(next) = self.next.take() else {
            return;
        };
        match next {
            Next::Control(ControlKind::Hello) => {
                self.hello_sent = true;
                self.check_established();
            }
            Next::Control(ControlKind::Close) => self.close_queued = None,
            Next::Control(ControlKind::MaxData) => self.max_data = None,
            Next::Control(ControlKind::MaxStreams) => self.max_streams = None,
            Next::Datagram => {
                self.datagrams_out.pop_front();
            }
            Next::Stream(stream) => {
                if let Some(entry) = self.streams.get_mut(&stream) {
                    entry.stream.transmitted(&mut self.credit);
                }
                if self.unsent_blocked && self.credit.reserved() <= MAX_UNSENT / 2 {
                    self.unsent_blocked = false;
                    self.wake_writers();
                }
                self.maybe_retire(stream);
            }
        }
    }
}
