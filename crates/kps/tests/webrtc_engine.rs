//! The adversarial protocol-engine checklist (spec §18 G, cases 51–78, plus 85 and 86) against
//! the sans-IO wire-v1 engine: two engines joined by an in-memory channel bus, or one engine fed
//! hand-made peer messages.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use keyline_kps::Code;
use keyline_kps::webrtc::proto::control::{Control, HELLO_LEN, Limits};
use keyline_kps::webrtc::proto::engine::{
    CONTROL_CHANNEL, DATAGRAM_CHANNEL, Engine, Event, MAX_DATAGRAM, Request, Side, StreamId,
};
use keyline_kps::webrtc::proto::flow::{SendCredit, StreamSend};
use keyline_kps::webrtc::proto::frame::{Frame, MAX_DATA_PAYLOAD, MAX_OFFSET};
use keyline_kps::webrtc::proto::stream::{Read, WriteError};

const PROTOCOL_ERROR: u32 = Code::ProtocolError as u32;

fn limits(stream: u64, data: u64, streams: u64) -> Limits {
    Limits {
        initial_max_stream_data: stream,
        initial_max_data: data,
        initial_max_streams: streams,
    }
}

// ----- the bus --------------------------------------------------------------------------------

struct Peer {
    engine: Engine,
    events: Vec<Event>,
    /// Every message this side handed to a channel, in order.
    sent: Vec<(u16, Vec<u8>)>,
    /// The channel refuses every n-th message ("buffer full"); 0: never.
    refuse_every: usize,
    attempts: usize,
}

impl Peer {
    fn new(side: Side, limits: Limits) -> Self {
        Peer {
            engine: Engine::new(side, limits, Instant::now()),
            events: Vec::new(),
            sent: Vec::new(),
            refuse_every: 0,
            attempts: 0,
        }
    }

    fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn controls(&self) -> Vec<Control> {
        self.sent
            .iter()
            .filter(|(c, _)| *c == CONTROL_CHANNEL)
            .map(|(_, m)| Control::decode(m).unwrap())
            .collect()
    }

    fn frames_on(&self, channel: u16) -> Vec<Vec<u8>> {
        self.sent
            .iter()
            .filter(|(c, _)| *c == channel)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

/// Two engines, a client (`a`, even channels) and a server (`b`, odd channels), joined by
/// in-order channels that open and close for both at once, as SCTP does.
struct Bus {
    a: Peer,
    b: Peer,
    live: BTreeSet<u16>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    A,
    B,
}

impl Bus {
    /// A connection established with these limits on each side.
    fn new(a: Limits, b: Limits) -> Self {
        let mut bus = Bus {
            a: Peer::new(Side::Client, a),
            b: Peer::new(Side::Server, b),
            live: BTreeSet::new(),
        };
        for peer in [&mut bus.a, &mut bus.b] {
            peer.engine.on_channel_open(CONTROL_CHANNEL);
            peer.engine.on_channel_open(DATAGRAM_CHANNEL);
        }
        bus.pump();
        assert!(bus.a.engine.is_established() && bus.b.engine.is_established());
        assert!(bus.a.take_events().contains(&Event::Established));
        assert!(bus.b.take_events().contains(&Event::Established));
        bus
    }

    fn default_pair() -> Self {
        Bus::new(Limits::default(), Limits::default())
    }

    fn peer(&mut self, who: Who) -> &mut Peer {
        match who {
            Who::A => &mut self.a,
            Who::B => &mut self.b,
        }
    }

    fn engine(&mut self, who: Who) -> &mut Engine {
        &mut self.peer(who).engine
    }

    /// Runs both engines until neither has anything left to do.
    fn pump(&mut self) {
        loop {
            let progress = self.step(Who::A) | self.step(Who::B);
            if !progress {
                break;
            }
        }
    }

    fn step(&mut self, who: Who) -> bool {
        let mut progress = false;
        let (me, other) = match who {
            Who::A => (&mut self.a, &mut self.b),
            Who::B => (&mut self.b, &mut self.a),
        };
        while let Some(request) = me.engine.poll_request() {
            progress = true;
            match request {
                Request::OpenChannel => {
                    // The lowest free id of the opener's parity (SCTP reuses closed ids).
                    let mut id = if who == Who::A { 2 } else { 3 };
                    while self.live.contains(&id) {
                        id += 2;
                    }
                    self.live.insert(id);
                    me.engine.on_local_channel_open(id);
                    other.engine.on_channel_open(id);
                }
                Request::CloseChannel(id) => {
                    if self.live.remove(&id) {
                        me.engine.on_channel_closed(id);
                        other.engine.on_channel_closed(id);
                    }
                }
            }
        }
        while let Some((channel, message)) = me.engine.peek_transmit() {
            me.attempts += 1;
            if me.refuse_every > 0 && me.attempts % me.refuse_every == 0 {
                // The channel's buffer is full: the engine keeps the message for the retry.
                progress = true;
                break;
            }
            progress = true;
            assert!(
                channel < 2 || self.live.contains(&channel),
                "message on closed channel {channel}"
            );
            other.engine.on_channel_message(channel, &message);
            me.sent.push((channel, message));
            me.engine.transmitted();
        }
        while let Some(event) = me.engine.poll_event() {
            progress = true;
            me.events.push(event);
        }
        progress
    }

    /// Opens a stream from `who`; returns its id on both sides.
    fn open(&mut self, who: Who) -> (StreamId, StreamId) {
        assert_eq!(self.engine(who).open_stream(), Ok(true));
        self.pump();
        let opened = self
            .peer(who)
            .events
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::StreamOpened(id) => Some(*id),
                _ => None,
            })
            .expect("stream opened");
        let other = if who == Who::A { Who::B } else { Who::A };
        let accepted = self.engine(other).accept().expect("stream accepted");
        (opened, accepted)
    }

    fn close_reason(&mut self, who: Who) -> Option<(u32, bool)> {
        self.engine(who).close_reason()
    }
}

/// Reads everything available: the bytes and the outcome that stopped the loop.
fn read_available(engine: &mut Engine, id: StreamId) -> (Vec<u8>, Read) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match engine.read(id, &mut buf) {
            Read::Data(n) => out.extend_from_slice(&buf[..n]),
            other => return (out, other),
        }
    }
}

/// Writes all of `data` (pumping the bus between frames) as far as credit allows; returns how
/// many bytes were accepted.
fn write_some(bus: &mut Bus, who: Who, id: StreamId, data: &[u8]) -> usize {
    let mut done = 0;
    while done < data.len() {
        let n = bus.engine(who).write(id, &data[done..]).expect("write");
        if n == 0 {
            break;
        }
        done += n;
        bus.pump();
    }
    done
}

// ----- one engine fed by hand -----------------------------------------------------------------

/// A server engine whose channels 0 and 1 are open and which received `peer`'s HELLO.
fn established(local: Limits, peer: Limits) -> Engine {
    let mut engine = Engine::new(Side::Server, local, Instant::now());
    engine.on_channel_open(CONTROL_CHANNEL);
    engine.on_channel_open(DATAGRAM_CHANNEL);
    engine.on_channel_message(CONTROL_CHANNEL, &Control::Hello(peer).encode());
    let sent = drain(&mut engine);
    assert_eq!(sent[0], (CONTROL_CHANNEL, Control::Hello(local).encode()));
    assert!(engine.is_established());
    engine
}

/// Everything the engine wants to send, accepted by the channels.
fn drain(engine: &mut Engine) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(message) = engine.peek_transmit() {
        engine.transmitted();
        out.push(message);
    }
    out
}

fn events(engine: &mut Engine) -> Vec<Event> {
    std::iter::from_fn(|| engine.poll_event()).collect()
}

/// The engine closed itself with `code` and told the peer so.
fn assert_failed(engine: &mut Engine, code: u32) {
    assert_eq!(engine.close_reason(), Some((code, false)));
    let sent = drain(engine);
    assert!(
        sent.contains(&(CONTROL_CHANNEL, Control::ConnectionClose(code).encode())),
        "CONNECTION_CLOSE({code}) sent: {sent:?}"
    );
    assert!(events(engine).contains(&Event::Closed {
        code,
        remote: false
    }));
}

// ----- 51, 52: codecs -------------------------------------------------------------------------

#[test]
fn g51_frame_codec_rejects_and_accepts_the_edges() {
    let mut over = vec![0x04];
    over.extend_from_slice(&(MAX_OFFSET + 1).to_be_bytes());
    let rejects: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x00],
        vec![0x00; 16385],
        vec![0x01, 0x00],
        vec![0x02, 0, 0],
        vec![0x03, 0, 0, 0, 0, 1],
        vec![0x04, 0, 0, 0],
        vec![0x05],
        over,
    ];
    for message in &rejects {
        assert_eq!(
            Frame::decode(message),
            Err(Code::ProtocolError),
            "{message:02x?}"
        );
    }
    let mut max = vec![0x04];
    max.extend_from_slice(&MAX_OFFSET.to_be_bytes());
    assert_eq!(Frame::decode(&max), Ok(Frame::MaxStreamData(MAX_OFFSET)));
    let mut data = vec![0x00];
    data.extend(std::iter::repeat_n(7u8, MAX_DATA_PAYLOAD));
    assert_eq!(data.len(), 16384);
    assert_eq!(
        Frame::decode(&data),
        Ok(Frame::Data(&data[1..])),
        "a 16383-byte payload is the largest DATA"
    );
}

#[test]
fn g52_control_codec_rejects_and_round_trips() {
    let mut over = vec![0x02];
    over.extend_from_slice(&(MAX_OFFSET + 1).to_be_bytes());
    for message in [
        vec![],
        vec![0x00, 0, 0, 0],
        vec![0x01, 0x01, 0, 0],
        vec![0x07],
        over,
    ] {
        assert_eq!(
            Control::decode(&message),
            Err(Code::ProtocolError),
            "{message:02x?}"
        );
    }
    let hello = Control::Hello(Limits::default()).encode();
    assert_eq!(hello.len(), HELLO_LEN);
    assert_eq!(hello[1], 1, "version 1");
    assert_eq!(
        Control::decode(&hello),
        Ok(Control::Hello(Limits::default()))
    );
    assert_eq!(
        Control::decode(&[0, 0, 0, 0, 3]),
        Ok(Control::ConnectionClose(3))
    );
    for message in [
        Control::MaxData(42),
        Control::MaxStreams(7),
        Control::ConnectionClose(11),
    ] {
        assert_eq!(Control::decode(&message.encode()), Ok(message));
    }
}

// ----- 53–58: credit --------------------------------------------------------------------------

#[test]
fn g53_credit_waits_for_the_peers_hello() {
    let mut credit = SendCredit::default();
    let mut stream = StreamSend::default();
    assert_eq!(credit.reserve(&mut stream, 10), 0, "no credit before HELLO");
    credit.on_hello(limits(100, 100, 1));
    assert_eq!(credit.reserve(&mut stream, 10), 10);

    // And the engine itself: nothing on a stream until established (HELLO sent and received).
    let mut engine = Engine::new(Side::Client, Limits::default(), Instant::now());
    engine.on_channel_open(CONTROL_CHANNEL);
    engine.on_channel_open(DATAGRAM_CHANNEL);
    assert_eq!(engine.open_stream(), Err(Code::Closed));
    drain(&mut engine);
    assert!(
        !engine.is_established(),
        "our HELLO alone does not establish"
    );
    engine.on_channel_message(CONTROL_CHANNEL, &Control::Hello(Limits::default()).encode());
    assert!(engine.is_established());
    assert_eq!(engine.open_stream(), Ok(true));
}

#[test]
fn g54_the_stream_window_bounds_a_writer_and_lower_grants_are_ignored() {
    let mut bus = Bus::new(Limits::default(), limits(10, 1 << 20, 10));
    let (s, _) = bus.open(Who::A);
    let a = &mut bus.a.engine;
    assert_eq!(a.write(s, &[1; 10]), Ok(10));
    assert_eq!(a.write(s, &[2]), Ok(0), "the 11th byte waits");
    let channel = bus
        .a
        .sent
        .iter()
        .rev()
        .find(|(c, _)| *c >= 2)
        .map(|(c, _)| *c);
    let channel = channel.unwrap_or(2);
    let a = &mut bus.a.engine;
    a.on_channel_message(channel, &Frame::MaxStreamData(5).encode());
    assert_eq!(
        a.write(s, &[2]),
        Ok(0),
        "a lower MAX_STREAM_DATA is ignored"
    );
    a.on_channel_message(channel, &Frame::MaxStreamData(11).encode());
    assert_eq!(a.write(s, &[2, 3]), Ok(1), "11 releases exactly one byte");
}

#[test]
fn g55_the_connection_window_is_shared_without_double_spend() {
    let mut bus = Bus::new(Limits::default(), limits(100, 15, 10));
    let (s1, _) = bus.open(Who::A);
    let (s2, _) = bus.open(Who::A);
    let a = &mut bus.a.engine;
    assert_eq!(a.write(s1, &[1; 10]), Ok(10));
    assert_eq!(a.write(s2, &[2; 10]), Ok(5), "the residual 5, partially");
    assert_eq!(a.write(s2, &[2; 10]), Ok(0), "nothing left to take twice");
    // Resetting s1 before its DATA left releases its 10 reserved bytes.
    a.reset(s1, Code::Reset.wire()).unwrap();
    assert_eq!(a.write(s2, &[2; 10]), Ok(10));
}

#[test]
fn g56_the_receiver_enforces_the_stream_and_connection_windows() {
    let mut b = established(limits(10, 1 << 20, 10), Limits::default());
    b.on_channel_open(2);
    b.on_channel_message(2, &Frame::Data(&[0; 10]).encode());
    assert_eq!(b.close_reason(), None, "10 bytes fit the window");
    b.on_channel_message(2, &Frame::Data(&[0]).encode());
    assert_failed(&mut b, PROTOCOL_ERROR);

    let mut b = established(limits(10, 15, 10), Limits::default());
    b.on_channel_open(2);
    b.on_channel_open(4);
    b.on_channel_message(2, &Frame::Data(&[0; 10]).encode());
    b.on_channel_message(4, &Frame::Data(&[0; 5]).encode());
    assert_eq!(b.close_reason(), None, "15 bytes fit the connection");
    b.on_channel_message(4, &Frame::Data(&[0]).encode());
    assert_failed(&mut b, PROTOCOL_ERROR);
}

#[test]
fn g57_credit_is_re_advertised_at_half_a_window_and_never_for_a_cancelled_stream() {
    let mut b = established(limits(10, 100, 10), Limits::default());
    b.on_channel_open(2);
    let s = b.accept().unwrap();
    b.on_channel_message(2, &Frame::Data(&[9; 10]).encode());
    let mut buf = [0u8; 4];
    assert_eq!(b.read(s, &mut buf), Read::Data(4));
    assert!(drain(&mut b).is_empty(), "4 of 10 consumed: nothing yet");
    assert_eq!(b.read(s, &mut buf[..1]), Read::Data(1));
    assert_eq!(
        drain(&mut b),
        vec![(2, Frame::MaxStreamData(15).encode())],
        "the 5th byte re-advertises consumed + window, and 5 of 100 sends no MAX_DATA"
    );

    b.on_channel_open(4);
    let t = b.accept().unwrap();
    b.on_channel_message(4, &Frame::Data(&[9; 10]).encode());
    b.stop(t, Code::Cancelled.wire()).unwrap();
    let sent = drain(&mut b);
    assert_eq!(
        sent,
        vec![(4, Frame::StopSending(Code::Cancelled.wire()).encode())],
        "a cancelled stream sends STOP_SENDING and no stream credit; 15 of 100 sends no MAX_DATA"
    );
}

#[test]
fn g58_stream_slots_on_both_sides() {
    // Sender: the peer allows 1 stream.
    let mut bus = Bus::new(Limits::default(), limits(100, 1000, 1));
    assert_eq!(bus.a.engine.open_stream(), Ok(true));
    assert_eq!(
        bus.a.engine.open_stream(),
        Ok(false),
        "the second open waits"
    );
    bus.a
        .engine
        .on_channel_message(CONTROL_CHANNEL, &Control::MaxStreams(2).encode());
    assert_eq!(
        bus.a.engine.open_stream(),
        Ok(true),
        "MAX_STREAMS 2 lets it go"
    );

    // Receiver: we allow 2 streams; a third is a violation, a retirement makes room.
    let mut b = established(limits(100, 1000, 2), Limits::default());
    b.on_channel_open(2);
    b.on_channel_open(4);
    let s = b.accept().unwrap();
    b.on_channel_message(2, &Frame::Fin.encode());
    b.finish(s).unwrap();
    assert_eq!(
        drain(&mut b),
        vec![(2, Frame::Fin.encode())],
        "our FIN; nothing retired yet"
    );
    assert_eq!(b.read(s, &mut [0; 8]), Read::Eof);
    assert_eq!(b.poll_request(), Some(Request::CloseChannel(2)));
    b.on_channel_closed(2);
    assert_eq!(
        drain(&mut b),
        vec![(CONTROL_CHANNEL, Control::MaxStreams(3).encode())],
        "one retirement grants MAX_STREAMS 3"
    );
    b.on_channel_open(6);
    assert_eq!(b.close_reason(), None, "the replacement slot is usable");
    b.on_channel_open(8);
    assert_failed(&mut b, PROTOCOL_ERROR);
}

// ----- 59–64: two engines ---------------------------------------------------------------------

#[test]
fn g59_mutual_hello_establishes_and_a_stream_echoes() {
    let mut bus = Bus::default_pair();
    let (a, b) = bus.open(Who::A);
    assert_eq!(write_some(&mut bus, Who::A, a, b"hello kps"), 9);
    bus.a.engine.finish(a).unwrap();
    bus.pump();
    let (got, end) = read_available(&mut bus.b.engine, b);
    assert_eq!((got.as_slice(), end), (&b"hello kps"[..], Read::Eof));
    assert_eq!(write_some(&mut bus, Who::B, b, &got), 9);
    bus.b.engine.finish(b).unwrap();
    bus.pump();
    let (echo, end) = read_available(&mut bus.a.engine, a);
    assert_eq!((echo.as_slice(), end), (&b"hello kps"[..], Read::Eof));
    bus.pump();
    assert_eq!(
        bus.a.engine.stream_count(),
        1,
        "a keeps its handle until released"
    );
    assert_eq!(bus.b.engine.stream_count(), 1);
    bus.a.engine.release(a);
    bus.b.engine.release(b);
    bus.pump();
    assert_eq!(
        (bus.a.engine.stream_count(), bus.b.engine.stream_count()),
        (0, 0)
    );
    assert!(bus.live.is_empty(), "the channel closed");
}

#[test]
fn g60_a_never_reading_receiver_holds_the_writer() {
    let mut bus = Bus::new(Limits::default(), limits(64, 1 << 20, 10));
    let (a, b) = bus.open(Who::A);
    let data: Vec<u8> = (0..65u8).collect();
    assert_eq!(write_some(&mut bus, Who::A, a, &data), 64);
    assert_eq!(
        bus.a.engine.write(a, &data[64..]),
        Ok(0),
        "the 65th byte waits"
    );
    let (got, end) = read_available(&mut bus.b.engine, b);
    assert_eq!((got.len(), end), (64, Read::Blocked));
    bus.pump();
    assert_eq!(write_some(&mut bus, Who::A, a, &data[64..]), 1);
    bus.a.engine.finish(a).unwrap();
    bus.pump();
    let (rest, end) = read_available(&mut bus.b.engine, b);
    assert_eq!((rest.as_slice(), end), (&data[64..], Read::Eof));
}

#[test]
fn g61_the_connection_window_spans_streams() {
    let mut bus = Bus::new(Limits::default(), limits(1000, 100, 10));
    let (s1, r1) = bus.open(Who::A);
    let (s2, r2) = bus.open(Who::A);
    assert_eq!(write_some(&mut bus, Who::A, s1, &[1; 100]), 100);
    assert_eq!(
        bus.a.engine.write(s2, &[2]),
        Ok(0),
        "stream 2 waits for the connection"
    );
    let (got, _) = read_available(&mut bus.b.engine, r1);
    assert_eq!(got.len(), 100);
    bus.pump();
    assert_eq!(write_some(&mut bus, Who::A, s2, &[2]), 1);
    let (got, _) = read_available(&mut bus.b.engine, r2);
    assert_eq!(got, [2]);
}

#[test]
fn g62_max_streams_blocks_the_opener_until_a_stream_retires() {
    let mut bus = Bus::new(Limits::default(), limits(1000, 1000, 1));
    let (a, b) = bus.open(Who::A);
    assert_eq!(bus.a.engine.open_stream(), Ok(false));
    assert_eq!(write_some(&mut bus, Who::A, a, b"unread"), 6);
    bus.a.engine.finish(a).unwrap();
    bus.b.engine.finish(b).unwrap();
    bus.pump();
    assert_eq!(
        bus.a.engine.open_stream(),
        Ok(false),
        "b has not read its bytes"
    );
    assert_eq!(read_available(&mut bus.a.engine, a).1, Read::Eof);
    assert_eq!(
        read_available(&mut bus.b.engine, b),
        (b"unread".to_vec(), Read::Eof)
    );
    bus.pump();
    assert!(
        bus.b.controls().contains(&Control::MaxStreams(2)),
        "retirement granted another slot"
    );
    assert_eq!(bus.a.engine.open_stream(), Ok(true));
}

#[test]
fn g63_retirement_credit_is_withheld_while_a_byte_is_unread() {
    let mut bus = Bus::default_pair();
    let (a, b) = bus.open(Who::A);
    assert_eq!(write_some(&mut bus, Who::A, a, b"x"), 1);
    bus.a.engine.finish(a).unwrap();
    bus.b.engine.finish(b).unwrap();
    bus.pump();
    assert!(
        !bus.b
            .controls()
            .iter()
            .any(|c| matches!(c, Control::MaxStreams(_))),
        "no MAX_STREAMS while the byte is unread"
    );
    let (got, end) = read_available(&mut bus.b.engine, b);
    assert_eq!((got.as_slice(), end), (&b"x"[..], Read::Eof));
    bus.pump();
    assert!(bus.live.is_empty(), "the channel closed");
    assert!(bus.b.controls().contains(&Control::MaxStreams(101)));
}

#[test]
fn g64_datagrams_round_trip_and_too_large_is_refused() {
    let mut bus = Bus::default_pair();
    bus.a.engine.send_datagram(b"ping-datagram").unwrap();
    bus.pump();
    assert!(bus.b.take_events().contains(&Event::Datagram));
    assert_eq!(
        bus.b.engine.recv_datagram().as_deref(),
        Some(&b"ping-datagram"[..])
    );
    assert_eq!(bus.a.engine.send_datagram(&[0; 1300]), Err(Code::TooLarge));
    assert_eq!(bus.a.engine.send_datagram(&[0; 4096]), Err(Code::TooLarge));
    assert_eq!(bus.a.engine.send_datagram(&[0; MAX_DATAGRAM]), Ok(()));
}

// ----- 65–69: HELLO rules and staging ---------------------------------------------------------

fn fresh() -> Engine {
    let mut engine = Engine::new(Side::Server, Limits::default(), Instant::now());
    engine.on_channel_open(CONTROL_CHANNEL);
    engine.on_channel_open(DATAGRAM_CHANNEL);
    engine
}

#[test]
fn g65_an_unsupported_version_is_closed_with_unsupported() {
    let mut engine = fresh();
    let mut hello = Control::Hello(Limits::default()).encode();
    hello[1] = 2;
    engine.on_channel_message(CONTROL_CHANNEL, &hello);
    assert_failed(&mut engine, Code::Unsupported.wire());
    assert!(!engine.is_established());
}

#[test]
fn g66_connection_close_before_hello_is_a_clean_rejection() {
    let mut engine = fresh();
    let denied = Code::PermissionDenied.wire();
    engine.on_channel_message(CONTROL_CHANNEL, &Control::ConnectionClose(denied).encode());
    assert_eq!(engine.close_reason(), Some((denied, true)));
    assert!(events(&mut engine).contains(&Event::Closed {
        code: denied,
        remote: true
    }));
    assert!(!engine.is_established());
    assert_eq!(engine.open_stream(), Err(Code::PermissionDenied));
}

#[test]
fn g67_duplicate_hello_and_early_max_data_are_protocol_errors() {
    let mut engine = established(Limits::default(), Limits::default());
    engine.on_channel_message(CONTROL_CHANNEL, &Control::Hello(Limits::default()).encode());
    assert_failed(&mut engine, PROTOCOL_ERROR);

    for early in [Control::MaxData(1 << 30), Control::MaxStreams(200)] {
        let mut engine = fresh();
        engine.on_channel_message(CONTROL_CHANNEL, &early.encode());
        assert_failed(&mut engine, PROTOCOL_ERROR);
    }
}

#[test]
fn g68_a_malformed_control_message_is_never_a_clean_close() {
    let mut engine = established(Limits::default(), Limits::default());
    engine.on_channel_message(CONTROL_CHANNEL, &[0x00, 0, 0]);
    assert_failed(&mut engine, PROTOCOL_ERROR);
}

#[test]
fn g69_an_early_stream_is_staged_until_hello() {
    let mut engine = fresh();
    drain(&mut engine);
    engine.on_channel_open(2);
    engine.on_channel_message(2, &Frame::Data(b"early").encode());
    assert_eq!(engine.accept(), None, "nothing surfaces before HELLO");
    assert!(
        !events(&mut engine).contains(&Event::StreamIncoming),
        "no event either"
    );
    engine.on_channel_message(CONTROL_CHANNEL, &Control::Hello(Limits::default()).encode());
    let evs = events(&mut engine);
    assert_eq!(
        &evs[..2],
        &[Event::Established, Event::StreamIncoming],
        "{evs:?}"
    );
    let s = engine.accept().expect("released after HELLO");
    let (got, end) = read_available(&mut engine, s);
    assert_eq!((got.as_slice(), end), (&b"early"[..], Read::Blocked));
}

// ----- 70–74: poison, overruns, channel loss --------------------------------------------------

#[test]
fn g70_poison_frames_are_connection_fatal() {
    let poisons: [&[&[u8]]; 5] = [
        &[&[0x00]],
        &[&[0x09]],
        &[&[0x01], &[0x00, 1]],
        &[&[0x01], &[0x02, 0, 0, 0, 3]],
        &[&[0x02, 0, 0]],
    ];
    for messages in poisons {
        let mut engine = established(Limits::default(), Limits::default());
        engine.on_channel_open(2);
        engine.on_channel_message(2, &Frame::Data(b"ok").encode());
        for m in messages {
            engine.on_channel_message(2, m);
        }
        assert_failed(&mut engine, PROTOCOL_ERROR);
    }
}

#[test]
fn g71_a_window_overrun_is_a_protocol_error() {
    let mut engine = established(limits(4, 1000, 10), Limits::default());
    engine.on_channel_open(2);
    engine.on_channel_message(2, &Frame::Data(&[0; 5]).encode());
    assert_failed(&mut engine, PROTOCOL_ERROR);
}

#[test]
fn g72_a_stream_limit_overrun_is_a_protocol_error() {
    let mut engine = established(limits(100, 1000, 1), Limits::default());
    engine.on_channel_open(2);
    assert_eq!(engine.close_reason(), None);
    engine.on_channel_open(4);
    assert_failed(&mut engine, PROTOCOL_ERROR);
}

#[test]
fn g73_losing_a_channel_mid_stream_is_a_protocol_error() {
    let mut engine = established(Limits::default(), Limits::default());
    engine.on_channel_open(2);
    engine.on_channel_message(2, &Frame::Data(b"half").encode());
    engine.on_channel_closed(2);
    assert_failed(&mut engine, PROTOCOL_ERROR);
}

#[test]
fn g74_losing_a_reserved_channel_is_a_protocol_error_and_losing_the_peer_a_network_error() {
    for channel in [DATAGRAM_CHANNEL, CONTROL_CHANNEL] {
        let mut engine = established(Limits::default(), Limits::default());
        engine.on_channel_closed(channel);
        assert_eq!(engine.close_reason(), Some((PROTOCOL_ERROR, false)));
    }
    let mut engine = established(Limits::default(), Limits::default());
    engine.on_channel_open(2);
    let s = engine.accept().unwrap();
    engine.on_transport_lost();
    let lost = Code::NetworkError.wire();
    assert_eq!(engine.close_reason(), Some((lost, false)));
    assert_eq!(
        engine.read(s, &mut [0; 4]),
        Read::Failed {
            code: lost,
            remote: false
        }
    );
    assert_eq!(engine.write(s, b"x"), Err(WriteError::Stopped(lost)));
}

// ----- 75–78: stream and connection outcomes ---------------------------------------------------

#[test]
fn g75_stop_sending_is_answered_with_reset_and_fails_writes() {
    let mut bus = Bus::default_pair();
    let (a, b) = bus.open(Who::A);
    let channel = 2;
    assert_eq!(write_some(&mut bus, Who::A, a, b"data"), 4);
    bus.b.engine.stop(b, Code::Cancelled.wire()).unwrap();
    bus.pump();
    let cancelled = Code::Cancelled.wire();
    assert!(
        bus.a
            .frames_on(channel)
            .contains(&Frame::Reset(cancelled).encode()),
        "a answered STOP_SENDING with RESET"
    );
    assert!(bus.a.take_events().contains(&Event::Writable(a)));
    assert_eq!(
        bus.a.engine.write(a, b"more"),
        Err(WriteError::Stopped(cancelled))
    );
    assert_eq!(bus.close_reason(Who::A), None);
}

#[test]
fn g76_cancel_read_stops_the_peer_and_the_connection_stays_open() {
    let mut bus = Bus::new(Limits::default(), limits(8, 1 << 20, 10));
    let (a, b) = bus.open(Who::A);
    assert_eq!(write_some(&mut bus, Who::A, a, &[5; 8]), 8);
    let before = bus.b.sent.len();
    bus.b.engine.stop(b, Code::Cancelled.wire()).unwrap();
    bus.pump();
    let after: Vec<_> = bus.b.sent[before..].to_vec();
    assert!(after.contains(&(2, Frame::StopSending(Code::Cancelled.wire()).encode())));
    assert!(
        !after
            .iter()
            .any(|(c, m)| *c == 2 && m.first() == Some(&0x04)),
        "no MAX_STREAM_DATA after cancelRead: {after:?}"
    );
    bus.b.engine.finish(b).unwrap();
    bus.pump();
    assert_eq!(
        (bus.close_reason(Who::A), bus.close_reason(Who::B)),
        (None, None)
    );
    assert!(
        bus.live.is_empty(),
        "wire complete and drained: the channel closed"
    );
}

#[test]
fn g77_graceful_close_sends_the_code() {
    let mut bus = Bus::default_pair();
    bus.a.engine.close(Code::Closed.wire());
    bus.pump();
    assert!(bus.a.controls().contains(&Control::ConnectionClose(2)));
    assert_eq!(bus.close_reason(Who::B), Some((2, true)));
    assert_eq!(bus.close_reason(Who::A), Some((2, false)));
}

#[test]
fn g78_parked_reads_error_and_only_fin_is_eof() {
    let closed = Code::Closed.wire();
    // (a) local stream close.
    let mut bus = Bus::default_pair();
    let (a, _) = bus.open(Who::A);
    assert_eq!(bus.a.engine.read(a, &mut [0; 4]), Read::Blocked, "parked");
    bus.a.engine.close_stream(a).unwrap();
    assert_eq!(
        bus.a.engine.read(a, &mut [0; 4]),
        Read::Failed {
            code: closed,
            remote: false
        }
    );
    // (b) local cancelRead.
    let (a, _) = bus.open(Who::A);
    bus.a.engine.stop(a, Code::Cancelled.wire()).unwrap();
    assert_eq!(
        bus.a.engine.read(a, &mut [0; 4]),
        Read::Failed {
            code: Code::Cancelled.wire(),
            remote: false
        }
    );
    // Peer RESET: its code, remote.
    let (a, b) = bus.open(Who::A);
    bus.b.engine.reset(b, 11).unwrap();
    bus.pump();
    assert_eq!(
        bus.a.engine.read(a, &mut [0; 4]),
        Read::Failed {
            code: 11,
            remote: true
        }
    );
    // Local resetWrite fails our writes with the code, reads unaffected.
    let (a, b) = bus.open(Who::A);
    bus.a.engine.reset(a, Code::Reset.wire()).unwrap();
    assert_eq!(
        bus.a.engine.write(a, b"x"),
        Err(WriteError::Stopped(Code::Reset.wire()))
    );
    assert_eq!(write_some(&mut bus, Who::B, b, b"still"), 5);
    assert_eq!(read_available(&mut bus.a.engine, a).0, b"still");
    // Contrast: the peer's FIN is a clean EOF.
    let (a, b) = bus.open(Who::A);
    bus.b.engine.finish(b).unwrap();
    bus.pump();
    assert_eq!(bus.a.engine.read(a, &mut [0; 4]), Read::Eof);
    // (c) local connection close.
    let (a, _) = bus.open(Who::A);
    assert_eq!(bus.a.engine.read(a, &mut [0; 4]), Read::Blocked);
    bus.a.engine.close(0);
    bus.pump();
    assert_eq!(
        bus.a.engine.read(a, &mut [0; 4]),
        Read::Failed {
            code: closed,
            remote: false
        }
    );
    assert_eq!(
        bus.a.engine.write(a, b"x"),
        Err(WriteError::Stopped(closed))
    );
    assert_eq!(bus.a.engine.open_stream(), Err(Code::Closed));
    assert_eq!(
        bus.close_reason(Who::B),
        Some((0, true)),
        "the peer sees a clean close"
    );
}

// ----- 85, 86 and id reuse --------------------------------------------------------------------

#[test]
fn h85_a_refusing_channel_loses_no_byte() {
    let mut bus = Bus::default_pair();
    bus.a.refuse_every = 3;
    let (a, b) = bus.open(Who::A);
    let data: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    let mut written = 0;
    let mut received = Vec::new();
    while written < data.len() || received.len() < data.len() {
        if written < data.len() {
            written += bus.a.engine.write(a, &data[written..]).unwrap();
        }
        bus.pump();
        received.extend(read_available(&mut bus.b.engine, b).0);
        bus.pump();
    }
    assert!(received == data, "every byte, in order");
    assert!(bus.a.attempts > bus.a.sent.len(), "the channel did refuse");
}

#[test]
fn h86_a_missing_hello_times_out() {
    let start = Instant::now();
    let mut engine = Engine::new(Side::Server, Limits::default(), start);
    engine.on_channel_open(CONTROL_CHANNEL);
    drain(&mut engine);
    let deadline = engine.deadline().expect("a HELLO deadline");
    assert!(deadline <= start + Duration::from_secs(15));
    engine.on_timeout(deadline - Duration::from_millis(1));
    assert_eq!(engine.close_reason(), None);
    engine.on_timeout(deadline);
    assert_failed(&mut engine, Code::Timeout.wire());
}

#[test]
fn twenty_sequential_streams_reuse_channel_ids() {
    let mut bus = Bus::new(Limits::default(), limits(1 << 20, 8 << 20, 2));
    for i in 0..20u8 {
        let (a, b) = bus.open(Who::A);
        assert_eq!(write_some(&mut bus, Who::A, a, &[i; 100]), 100);
        bus.a.engine.finish(a).unwrap();
        bus.pump();
        let (got, end) = read_available(&mut bus.b.engine, b);
        assert_eq!((got, end), (vec![i; 100], Read::Eof));
        bus.b.engine.finish(b).unwrap();
        bus.pump();
        assert_eq!(read_available(&mut bus.a.engine, a).1, Read::Eof);
        bus.a.engine.release(a);
        bus.b.engine.release(b);
        bus.pump();
        assert!(bus.live.is_empty(), "stream {i} retired");
    }
    assert_eq!(
        bus.a.sent.iter().filter(|(c, _)| *c > 2).count(),
        0,
        "channel 2 every time"
    );
    assert_eq!(
        (bus.a.engine.stream_count(), bus.b.engine.stream_count()),
        (0, 0)
    );
}
