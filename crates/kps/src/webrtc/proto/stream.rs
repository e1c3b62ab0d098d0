//! One KPS stream over one data channel (spec §8.2–§8.5, §10): the send half with its ordered
//! DATA+FIN queue and lifecycle frames, the read half with its buffer and credit, and the
//! conditions of retirement (§10.4). Sans-IO: the engine feeds decoded frames in, asks for the
//! next message to hand to the channel, and confirms when the channel took it.

use std::collections::VecDeque;

use super::flow::{RecvWindow, SendCredit, StreamSend, receive};
use super::frame::Frame;
use crate::error::Code;

/// The local send half (spec §8.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendState {
    /// Writes accepted.
    Open,
    /// FIN queued behind the accepted DATA.
    FinQueued,
    /// RESET queued (unsent DATA discarded).
    ResetQueued(u32),
    /// FIN on the wire.
    FinSent,
    /// RESET on the wire.
    ResetSent(u32),
}

/// The peer's send half as we see it (spec §8.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    /// Sending.
    Open,
    /// FIN received: reads end with EOF once the buffer is read.
    Finished,
    /// RESET received with a code: reads fail with it.
    Reset(u32),
}

/// What a read produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// `n` bytes copied.
    Data(usize),
    /// The peer finished and everything was read.
    Eof,
    /// The read half failed with a code (`remote`: the peer's RESET; else a local cancel).
    Failed {
        /// The registry code.
        code: u32,
        /// From the peer.
        remote: bool,
    },
    /// Nothing yet.
    Blocked,
}

/// Why a write was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// The half was closed locally (FIN).
    Closed,
    /// The half was reset locally, or the peer sent STOP_SENDING: the code.
    Stopped(u32),
}

/// A queued outbound message: its frame bytes and the credit it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Outbound {
    bytes: Vec<u8>,
    data_len: usize,
}

/// Which queue [`Stream::peek_transmit`] took its message from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Reset,
    StopSending,
    MaxStreamData,
    Ordered,
}

/// One stream.
#[derive(Debug)]
pub struct Stream {
    send: SendState,
    credit: StreamSend,
    ordered: VecDeque<Outbound>,
    reset: Option<u32>,
    stop_sending: Option<u32>,
    max_stream_data: Option<u64>,
    stop_received: bool,
    peer: PeerState,
    window: RecvWindow,
    buffer: VecDeque<u8>,
    read_cancelled: Option<u32>,
    stop_sent: bool,
    next: Option<Source>,
}

impl Stream {
    /// A new stream whose receive window is our `initialMaxStreamData`.
    pub fn new(local_window: u64) -> Self {
        Stream {
            send: SendState::Open,
            credit: StreamSend::default(),
            ordered: VecDeque::new(),
            reset: None,
            stop_sending: None,
            max_stream_data: None,
            stop_received: false,
            peer: PeerState::Open,
            window: RecvWindow::new(local_window),
            buffer: VecDeque::new(),
            read_cancelled: None,
            stop_sent: false,
            next: None,
        }
    }

    /// The send half.
    pub fn send_state(&self) -> SendState {
        self.send
    }

    /// The peer's send half.
    pub fn peer_state(&self) -> PeerState {
        self.peer
    }

    // ----- writing ----------------------------------------------------------------------------

    /// Queues up to one frame of `data` (as much as credit allows, at most 16383 bytes);
    /// returns how many bytes were taken (0: wait for credit).
    pub fn write(&mut self, credit: &mut SendCredit, data: &[u8]) -> Result<usize, WriteError> {
        match self.send {
            SendState::Open => {}
            SendState::FinQueued | SendState::FinSent => return Err(WriteError::Closed),
            SendState::ResetQueued(code) | SendState::ResetSent(code) => {
                return Err(WriteError::Stopped(code));
            }
        }
        if data.is_empty() {
            return Ok(0);
        }
        let n = credit.reserve(&mut self.credit, data.len());
        if n > 0 {
            self.ordered.push_back(Outbound {
                bytes: Frame::Data(&data[..n]).encode(),
                data_len: n,
            });
        }
        Ok(n)
    }

    /// Queues FIN behind the accepted DATA (idempotent).
    pub fn close_write(&mut self) {
        if self.send == SendState::Open {
            self.send = SendState::FinQueued;
            self.ordered.push_back(Outbound {
                bytes: Frame::Fin.encode(),
                data_len: 0,
            });
        }
    }

    /// Discards unsent DATA (releasing its credit) and queues RESET(code); a no-op once a
    /// terminal frame is on the wire.
    pub fn reset_write(&mut self, credit: &mut SendCredit, code: u32) {
        if matches!(self.send, SendState::FinSent | SendState::ResetSent(_)) {
            return;
        }
        if matches!(self.send, SendState::ResetQueued(_)) {
            return;
        }
        for out in self.ordered.drain(..) {
            credit.release(&mut self.credit, out.data_len);
        }
        self.send = SendState::ResetQueued(code);
        self.reset = Some(code);
    }

    // ----- reading ----------------------------------------------------------------------------

    /// Copies buffered bytes into `out`; returns the outcome and, when the connection window
    /// should be re-advertised, the new MAX_DATA.
    pub fn read(&mut self, connection: &mut RecvWindow, out: &mut [u8]) -> (Read, Option<u64>) {
        if let Some(code) = self.read_cancelled {
            return (
                Read::Failed {
                    code,
                    remote: false,
                },
                None,
            );
        }
        if !self.buffer.is_empty() && !out.is_empty() {
            let n = out.len().min(self.buffer.len());
            for (slot, byte) in out.iter_mut().zip(self.buffer.drain(..n)) {
                *slot = byte;
            }
            let max_data = self.consumed(connection, n as u64);
            return (Read::Data(n), max_data);
        }
        let outcome = match self.peer {
            PeerState::Open => Read::Blocked,
            PeerState::Finished if self.buffer.is_empty() => Read::Eof,
            PeerState::Finished => Read::Blocked,
            PeerState::Reset(code) => Read::Failed { code, remote: true },
        };
        (outcome, None)
    }

    /// Bytes consumed: queue MAX_STREAM_DATA when due (not after a cancelled read), return
    /// the connection's MAX_DATA when due.
    fn consumed(&mut self, connection: &mut RecvWindow, n: u64) -> Option<u64> {
        if let Some(limit) = self.window.consume(n)
            && self.read_cancelled.is_none()
            && self.peer == PeerState::Open
        {
            self.max_stream_data = Some(limit);
        }
        connection.consume(n)
    }

    /// Stops reading: discards the buffer, queues STOP_SENDING(code) unless the peer's half
    /// already ended; later reads fail with `code`. Returns a MAX_DATA to send, if due.
    pub fn cancel_read(&mut self, connection: &mut RecvWindow, code: u32) -> Option<u64> {
        if self.read_cancelled.is_some() {
            return None;
        }
        self.read_cancelled = Some(code);
        self.max_stream_data = None;
        if self.peer == PeerState::Open && !self.stop_sent {
            self.stop_sending = Some(code);
        }
        let n = self.buffer.len() as u64;
        self.buffer.clear();
        self.consumed(connection, n)
    }

    // ----- inbound frames ---------------------------------------------------------------------

    /// A decoded frame from the peer. `Err` is connection-fatal (`protocol-error`); `Ok` may
    /// carry a MAX_DATA to send.
    pub fn on_frame(
        &mut self,
        frame: Frame<'_>,
        connection: &mut RecvWindow,
        credit: &mut SendCredit,
    ) -> Result<Option<u64>, Code> {
        match frame {
            Frame::Data(payload) => {
                if self.peer != PeerState::Open {
                    return Err(Code::ProtocolError);
                }
                receive(&mut self.window, connection, payload.len() as u64)?;
                if self.read_cancelled.is_some() {
                    return Ok(self.consumed(connection, payload.len() as u64));
                }
                self.buffer.extend(payload);
                Ok(None)
            }
            Frame::Fin => {
                if self.peer != PeerState::Open {
                    return Err(Code::ProtocolError);
                }
                self.peer = PeerState::Finished;
                self.stop_sending = None;
                Ok(None)
            }
            Frame::Reset(code) => {
                if self.peer != PeerState::Open {
                    return Err(Code::ProtocolError);
                }
                self.peer = PeerState::Reset(code);
                self.stop_sending = None;
                self.max_stream_data = None;
                let n = self.buffer.len() as u64;
                self.buffer.clear();
                Ok(self.consumed(connection, n))
            }
            Frame::StopSending(code) => {
                if self.stop_received {
                    return Ok(None);
                }
                self.stop_received = true;
                match self.send {
                    SendState::Open | SendState::FinQueued => {
                        // keyline answers with RESET carrying the peer's code, replacing a
                        // merely queued FIN (spec §8.2).
                        self.reset_write(credit, code);
                    }
                    _ => {}
                }
                Ok(None)
            }
            Frame::MaxStreamData(value) => {
                self.credit.on_max_stream_data(value);
                Ok(None)
            }
        }
    }

    // ----- outbound ---------------------------------------------------------------------------

    /// The next message for the channel, without taking it: lifecycle frames (RESET,
    /// STOP_SENDING, MAX_STREAM_DATA) first, then the ordered DATA+FIN queue.
    pub fn peek_transmit(&mut self) -> Option<Vec<u8>> {
        let (source, bytes) = if let Some(code) = self.reset {
            // RESET goes behind DATA already handed over; unsent DATA was discarded.
            (Source::Reset, Frame::Reset(code).encode())
        } else if let Some(code) = self.stop_sending {
            (Source::StopSending, Frame::StopSending(code).encode())
        } else if let Some(limit) = self.max_stream_data {
            (Source::MaxStreamData, Frame::MaxStreamData(limit).encode())
        } else {
            (Source::Ordered, self.ordered.front()?.bytes.clone())
        };
        self.next = Some(source);
        Some(bytes)
    }

    /// The channel took the message [`Stream::peek_transmit`] returned.
    pub fn transmitted(&mut self, credit: &mut SendCredit) {
        match self.next.take() {
            Some(Source::Reset) => {
                if let Some(code) = self.reset.take() {
                    self.send = SendState::ResetSent(code);
                }
            }
            Some(Source::StopSending) => {
                self.stop_sending = None;
                self.stop_sent = true;
            }
            Some(Source::MaxStreamData) => self.max_stream_data = None,
            Some(Source::Ordered) => {
                if let Some(out) = self.ordered.pop_front() {
                    if out.data_len > 0 {
                        credit.commit(&mut self.credit, out.data_len);
                    } else {
                        self.send = SendState::FinSent;
                    }
                }
            }
            None => {}
        }
    }

    /// Credit counters of the send half (for MAX_STREAM_DATA bookkeeping and tests).
    pub fn send_credit(&self) -> &StreamSend {
        &self.credit
    }

    // ----- retirement -------------------------------------------------------------------------

    /// Both halves ended on the wire: ours handed over, the peer's received (spec §10.4).
    pub fn is_wire_complete(&self) -> bool {
        matches!(self.send, SendState::FinSent | SendState::ResetSent(_))
            && self.peer != PeerState::Open
    }

    /// Every inbound byte was consumed or discarded.
    pub fn is_drained(&self) -> bool {
        self.buffer.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::super::control::Limits;
    use super::*;

    fn credit(stream: u64, data: u64) -> SendCredit {
        let mut c = SendCredit::default();
        c.on_hello(Limits {
            initial_max_stream_data: stream,
            initial_max_data: data,
            initial_max_streams: 10,
        });
        c
    }

    fn drain(s: &mut Stream, c: &mut SendCredit) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(m) = s.peek_transmit() {
            s.transmitted(c);
            out.push(m);
        }
        out
    }

    #[test]
    fn write_fin_and_retire() {
        let mut c = credit(100, 100);
        let mut conn = RecvWindow::new(1000);
        let mut s = Stream::new(1000);
        assert_eq!(s.write(&mut c, b"hello"), Ok(5));
        s.close_write();
        s.close_write();
        assert_eq!(s.write(&mut c, b"x"), Err(WriteError::Closed));
        assert_eq!(
            drain(&mut s, &mut c),
            vec![b"\x00hello".to_vec(), vec![0x01]]
        );
        assert_eq!(s.send_state(), SendState::FinSent);
        assert_eq!(s.send_credit().sent, 5);
        assert!(!s.is_wire_complete());
        s.on_frame(Frame::Data(b"hi"), &mut conn, &mut c).unwrap();
        s.on_frame(Frame::Fin, &mut conn, &mut c).unwrap();
        assert!(s.is_wire_complete() && !s.is_drained());
        let mut buf = [0u8; 8];
        assert_eq!(s.read(&mut conn, &mut buf).0, Read::Data(2));
        assert_eq!(&buf[..2], b"hi");
        assert_eq!(s.read(&mut conn, &mut buf).0, Read::Eof);
        assert!(s.is_drained());
    }

    #[test]
    fn writes_wait_for_credit_and_split() {
        let mut c = credit(3, 100);
        let mut s = Stream::new(10);
        assert_eq!(s.write(&mut c, b"hello"), Ok(3));
        assert_eq!(s.write(&mut c, b"lo"), Ok(0));
        let mut conn = RecvWindow::new(10);
        s.on_frame(Frame::MaxStreamData(5), &mut conn, &mut c)
            .unwrap();
        assert_eq!(s.write(&mut c, b"lo"), Ok(2));
    }

    #[test]
    fn reset_discards_unsent_data_and_releases_credit() {
        let mut c = credit(10, 10);
        let mut s = Stream::new(10);
        assert_eq!(s.write(&mut c, b"0123456789"), Ok(10));
        s.reset_write(&mut c, Code::Cancelled.wire());
        assert_eq!(drain(&mut s, &mut c), vec![vec![0x02, 0, 0, 0, 1]]);
        assert_eq!(s.send_state(), SendState::ResetSent(1));
        assert_eq!(s.write(&mut c, b"x"), Err(WriteError::Stopped(1)));
        let mut other = Stream::new(10);
        assert_eq!(
            other.write(&mut c, b"0123456789"),
            Ok(10),
            "credit released"
        );
    }

    #[test]
    fn stop_sending_is_answered_with_reset_even_over_a_queued_fin() {
        let mut c = credit(10, 10);
        let mut conn = RecvWindow::new(10);
        let mut s = Stream::new(10);
        s.write(&mut c, b"abc").unwrap();
        s.close_write();
        s.on_frame(Frame::StopSending(2), &mut conn, &mut c)
            .unwrap();
        assert_eq!(drain(&mut s, &mut c), vec![vec![0x02, 0, 0, 0, 2]]);
        // A duplicate is ignored; after the terminal frame it only fails writes.
        s.on_frame(Frame::StopSending(9), &mut conn, &mut c)
            .unwrap();
        assert_eq!(s.send_state(), SendState::ResetSent(2));
    }

    #[test]
    fn peer_violations_are_protocol_errors() {
        let mut c = credit(10, 10);
        let mut conn = RecvWindow::new(100);
        let mut s = Stream::new(4);
        assert_eq!(
            s.on_frame(Frame::Data(b"12345"), &mut conn, &mut c),
            Err(Code::ProtocolError),
            "over the stream window"
        );
        s.on_frame(Frame::Fin, &mut conn, &mut c).unwrap();
        for frame in [Frame::Data(b"x"), Frame::Fin, Frame::Reset(1)] {
            assert_eq!(
                s.on_frame(frame, &mut conn, &mut c),
                Err(Code::ProtocolError)
            );
        }
    }

    #[test]
    fn peer_reset_discards_and_fails_reads() {
        let mut c = credit(10, 10);
        let mut conn = RecvWindow::new(100);
        let mut s = Stream::new(100);
        s.on_frame(Frame::Data(b"unread"), &mut conn, &mut c)
            .unwrap();
        s.on_frame(Frame::Reset(3), &mut conn, &mut c).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(
            s.read(&mut conn, &mut buf).0,
            Read::Failed {
                code: 3,
                remote: true
            }
        );
        assert!(s.is_drained());
        assert_eq!(conn.unconsumed(), 0, "discarded bytes count as consumed");
    }

    #[test]
    fn cancel_read_sends_stop_sending_and_discards_later_data() {
        let mut c = credit(10, 10);
        let mut conn = RecvWindow::new(100);
        let mut s = Stream::new(100);
        s.on_frame(Frame::Data(b"abc"), &mut conn, &mut c).unwrap();
        s.cancel_read(&mut conn, 1);
        assert_eq!(drain(&mut s, &mut c), vec![vec![0x03, 0, 0, 0, 1]]);
        s.on_frame(Frame::Data(b"late"), &mut conn, &mut c).unwrap();
        assert_eq!(conn.unconsumed(), 0);
        let mut buf = [0u8; 4];
        assert_eq!(
            s.read(&mut conn, &mut buf).0,
            Read::Failed {
                code: 1,
                remote: false
            }
        );
    }

    #[test]
    fn reading_half_the_window_re_advertises() {
        let mut c = credit(10, 10);
        let mut conn = RecvWindow::new(1000);
        let mut s = Stream::new(8);
        s.on_frame(Frame::Data(b"12345678"), &mut conn, &mut c)
            .unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(s.read(&mut conn, &mut buf).0, Read::Data(4));
        assert_eq!(
            drain(&mut s, &mut c),
            vec![Frame::MaxStreamData(12).encode()]
        );
        s.on_frame(Frame::Data(b"abcd"), &mut conn, &mut c).unwrap();
    }
}
