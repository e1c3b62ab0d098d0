//! keyline-kps's WebRTC connection engine (spec §7–§12) driven by arbitrary sequences of peer
//! messages, channel events and application calls. Invariants: nothing panics; every message
//! the engine emits is well formed for its channel (control, datagram ≤ 1200 B, stream frame
//! with DATA ≤ 16383 B); after the connection closed only CONNECTION_CLOSE leaves; the DATA
//! bytes it sends never exceed the largest connection credit the peer ever granted.
//!
//! Input layout: one byte for the side (bit 0) and three for our limits, then operations of
//! one op byte (mod 16) followed by its arguments (see the match below).

use std::time::{Duration, Instant};

use keyline_kps::webrtc::proto::control::{Control, Limits};
use keyline_kps::webrtc::proto::engine::{
    CONTROL_CHANNEL, DATAGRAM_CHANNEL, Engine, MAX_DATAGRAM, Request, Side, StreamId,
};
use keyline_kps::webrtc::proto::frame::{Frame, MAX_DATA_PAYLOAD};

use crate::Cursor;

/// Runs one engine through the operations in `data`; panics only on a broken invariant.
pub fn kps_engine(data: &[u8]) {
    let mut input = Cursor::new(data);
    let side = if input.byte() & 1 == 0 {
        Side::Server
    } else {
        Side::Client
    };
    let local = Limits {
        initial_max_stream_data: u64::from(input.byte()) * 64,
        initial_max_data: u64::from(input.byte()) * 256,
        initial_max_streams: u64::from(input.byte() % 8),
    };
    let start = Instant::now();
    let mut engine = Engine::new(side, local, start);
    let mut state = State::default();
    let mut buf = [0u8; 1024];
    while !input.is_empty() {
        let op = input.byte() % 16;
        match op {
            0 => {
                state.opens += 1;
                engine.on_channel_open(u16::from(input.byte() % 12));
            }
            1 => {
                let channel = u16::from(input.byte() % 12);
                let len = usize::from(input.byte());
                let message = input.take(len);
                state.note_grant(channel, message);
                engine.on_channel_message(channel, message);
            }
            2 => {
                let peer = Limits {
                    initial_max_stream_data: u64::from(input.byte()) * 32,
                    initial_max_data: u64::from(input.byte()) * 128,
                    initial_max_streams: u64::from(input.byte() % 8),
                };
                let message = Control::Hello(peer).encode();
                state.note_grant(CONTROL_CHANNEL, &message);
                engine.on_channel_message(CONTROL_CHANNEL, &message);
            }
            3 => engine.on_channel_closed(u16::from(input.byte() % 12)),
            4 => {
                let _ = engine.open_stream();
            }
            5 => match engine.poll_request() {
                Some(Request::OpenChannel) => {
                    if input.byte() & 1 == 0 {
                        engine.on_local_channel_failed();
                    } else {
                        state.opens += 1;
                        engine.on_local_channel_open(u16::from(input.byte() % 12));
                    }
                }
                Some(Request::CloseChannel(channel)) => engine.on_channel_closed(channel),
                None => {}
            },
            6 => {
                if let Some(id) = state.pick(&mut input) {
                    let len = usize::from(input.byte()) * 128;
                    let _ = engine.write(id, &vec![0x5a; len]);
                }
            }
            7 => {
                if let Some(id) = state.pick(&mut input) {
                    let len = usize::from(input.byte()) * 4;
                    let _ = engine.read(id, &mut buf[..len.min(1024)]);
                }
            }
            8 => {
                if let Some(id) = state.pick(&mut input) {
                    let code = u32::from(input.byte() % 13);
                    let _ = match input.byte() % 4 {
                        0 => engine.finish(id),
                        1 => engine.reset(id, code),
                        2 => engine.stop(id, code),
                        _ => engine.close_stream(id),
                    };
                }
            }
            9 => {
                if let Some(id) = state.pick(&mut input) {
                    engine.release(id);
                    state.handles.retain(|h| *h != id);
                }
            }
            10 => {
                if let Some(id) = engine.accept() {
                    state.handles.push(id);
                }
            }
            11 => {
                // The channel takes the message, or refuses it (buffer full) for a retry.
                let accept = input.byte() & 1 == 1;
                if let Some((channel, message)) = engine.peek_transmit() {
                    state.check_outbound(&engine, channel, &message, accept);
                    if accept {
                        engine.transmitted();
                    }
                }
            }
            12 => {
                let len = usize::from(input.byte()) * 8;
                let _ = engine.send_datagram(&vec![1; len]);
                let _ = engine.recv_datagram();
            }
            13 => engine.on_timeout(start + Duration::from_secs(u64::from(input.byte()))),
            14 => match input.byte() % 8 {
                0 => engine.close(u32::from(input.byte())),
                1 => engine.on_transport_lost(),
                _ => {}
            },
            _ => {}
        }
        while let Some(event) = engine.poll_event() {
            if let keyline_kps::webrtc::proto::engine::Event::StreamOpened(id) = event {
                state.handles.push(id);
            }
        }
        assert!(
            engine.stream_count() <= state.opens,
            "every stream came from a channel that opened"
        );
    }
    // Flush: whatever is left must be well formed too.
    for _ in 0..10_000 {
        let Some((channel, message)) = engine.peek_transmit() else {
            break;
        };
        state.check_outbound(&engine, channel, &message, true);
        engine.transmitted();
    }
}

#[derive(Default)]
struct State {
    handles: Vec<StreamId>,
    /// The largest connection credit the peer ever offered (HELLO or MAX_DATA).
    granted: u64,
    /// DATA payload bytes the engine handed to channels.
    sent: u64,
    /// Channel opens reported to the engine.
    opens: usize,
}

impl State {
    fn pick(&mut self, input: &mut Cursor<'_>) -> Option<StreamId> {
        let byte = usize::from(input.byte());
        (!self.handles.is_empty()).then(|| self.handles[byte % self.handles.len()])
    }

    fn note_grant(&mut self, channel: u16, message: &[u8]) {
        if channel == CONTROL_CHANNEL {
            match Control::decode(message) {
                Ok(Control::Hello(l)) => self.granted = self.granted.max(l.initial_max_data),
                Ok(Control::MaxData(v)) => self.granted = self.granted.max(v),
                _ => {}
            }
        }
    }

    /// Checks one outbound message; `taken`: the channel accepted it (else it is retried).
    fn check_outbound(&mut self, engine: &Engine, channel: u16, message: &[u8], taken: bool) {
        match channel {
            CONTROL_CHANNEL => {
                let control = Control::decode(message).expect("well-formed control message");
                if engine.close_reason().is_some() {
                    assert!(
                        matches!(control, Control::ConnectionClose(_)),
                        "only CONNECTION_CLOSE after close"
                    );
                }
            }
            DATAGRAM_CHANNEL => {
                assert!(engine.close_reason().is_none(), "no datagram after close");
                assert!(message.len() <= MAX_DATAGRAM);
            }
            _ => {
                assert!(
                    engine.close_reason().is_none(),
                    "no stream frame after close"
                );
                let frame = Frame::decode(message).expect("well-formed stream frame");
                if let Frame::Data(payload) = frame {
                    assert!(payload.len() <= MAX_DATA_PAYLOAD);
                    if !taken {
                        return;
                    }
                    self.sent += payload.len() as u64;
                    assert!(
                        self.sent <= self.granted,
                        "{} DATA bytes sent, the peer granted {}",
                        self.sent,
                        self.granted
                    );
                }
            }
        }
    }
}
