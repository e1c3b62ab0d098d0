//! Credit (spec §10): what a sender may send and what a receiver must accept, as plain
//! counters. Every value is an absolute cumulative count ≤ [`MAX_OFFSET`], updates that would
//! lower a limit are ignored, every addition is checked.

use super::control::Limits;
use super::frame::{MAX_DATA_PAYLOAD, MAX_OFFSET};
use crate::error::Code;

// ----- sender ---------------------------------------------------------------------------------

/// One stream's send-side counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamSend {
    /// Payload bytes handed to the transport.
    pub sent: u64,
    /// Payload bytes admitted to the send queue, not yet handed over.
    pub reserved: u64,
    /// Largest MAX_STREAM_DATA received for this stream.
    pub granted: u64,
}

impl StreamSend {
    /// A MAX_STREAM_DATA frame for this stream (lower values are ignored).
    pub fn on_max_stream_data(&mut self, value: u64) {
        self.granted = self.granted.max(value.min(MAX_OFFSET));
    }
}

/// The connection's send-side credit: the peer's limits (0 until its HELLO) and what is
/// sent and reserved over every stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendCredit {
    peer: Option<Limits>,
    max_data: u64,
    sent: u64,
    reserved: u64,
}

impl SendCredit {
    /// The peer's HELLO seeds the limits.
    pub fn on_hello(&mut self, limits: Limits) {
        self.peer = Some(limits);
        self.max_data = self.max_data.max(limits.initial_max_data);
    }

    /// A MAX_DATA message (lower values are ignored).
    pub fn on_max_data(&mut self, value: u64) {
        self.max_data = self.max_data.max(value.min(MAX_OFFSET));
    }

    /// The stream's current limit: max(the peer's initial stream credit, its largest grant).
    pub fn stream_limit(&self, stream: &StreamSend) -> u64 {
        self.peer
            .map_or(0, |p| p.initial_max_stream_data)
            .max(stream.granted)
    }

    /// Reserves up to `want` payload bytes for one DATA frame on `stream`: the grant is
    /// `min(want, stream room, connection room, MAX_DATA_PAYLOAD)`; 0 means wait for credit.
    pub fn reserve(&mut self, stream: &mut StreamSend, want: usize) -> usize {
        let stream_room = self
            .stream_limit(stream)
            .saturating_sub(stream.sent.saturating_add(stream.reserved));
        let conn_room = self
            .max_data
            .saturating_sub(self.sent.saturating_add(self.reserved));
        let grant = (want as u64)
            .min(stream_room)
            .min(conn_room)
            .min(MAX_DATA_PAYLOAD as u64);
        stream.reserved += grant;
        self.reserved += grant;
        // `grant` ≤ MAX_DATA_PAYLOAD, so it fits a usize.
        usize::try_from(grant).unwrap_or(0)
    }

    /// `n` reserved bytes were handed to the transport.
    pub fn commit(&mut self, stream: &mut StreamSend, n: usize) {
        let n = n as u64;
        debug_assert!(n <= stream.reserved && n <= self.reserved);
        stream.reserved = stream.reserved.saturating_sub(n);
        self.reserved = self.reserved.saturating_sub(n);
        stream.sent = stream.sent.saturating_add(n);
        self.sent = self.sent.saturating_add(n);
    }

    /// `n` reserved bytes were discarded unsent (reset, STOP_SENDING, teardown).
    pub fn release(&mut self, stream: &mut StreamSend, n: usize) {
        let n = n as u64;
        stream.reserved = stream.reserved.saturating_sub(n);
        self.reserved = self.reserved.saturating_sub(n);
    }

    /// Payload bytes handed to the transport over the connection.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Payload bytes admitted to send queues over the connection, not yet handed over.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }
}

/// Streams we may open (the peer's MAX_STREAMS), spec §10.1 "stream open".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenCredit {
    peer_max: u64,
    opened: u64,
    reserved: u64,
}

impl OpenCredit {
    /// The peer's HELLO.
    pub fn on_hello(&mut self, limits: Limits) {
        self.peer_max = self.peer_max.max(limits.initial_max_streams);
    }

    /// A MAX_STREAMS message (lower values are ignored).
    pub fn on_max_streams(&mut self, value: u64) {
        self.peer_max = self.peer_max.max(value.min(MAX_OFFSET));
    }

    /// Reserves a slot; false means wait for MAX_STREAMS.
    pub fn reserve(&mut self) -> bool {
        if self.opened + self.reserved < self.peer_max {
            self.reserved += 1;
            true
        } else {
            false
        }
    }

    /// The channel was created: the slot is used for good.
    pub fn commit(&mut self) {
        self.reserved = self.reserved.saturating_sub(1);
        self.opened += 1;
    }

    /// Creating the channel failed: the slot is free again.
    pub fn release(&mut self) {
        self.reserved = self.reserved.saturating_sub(1);
    }
}

// ----- receiver -------------------------------------------------------------------------------

/// One receive window (a stream's, or the connection's): what the peer may send, what it
/// sent, what the application consumed, and when to advertise more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvWindow {
    window: u64,
    limit: u64,
    received: u64,
    consumed: u64,
    advertised_at: u64,
}

impl RecvWindow {
    /// A window of `window` bytes (our HELLO's initial value).
    pub fn new(window: u64) -> Self {
        let window = window.min(MAX_OFFSET);
        RecvWindow {
            window,
            limit: window,
            received: 0,
            consumed: 0,
            advertised_at: 0,
        }
    }

    /// The current limit the peer must respect.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes received and not yet consumed.
    pub fn unconsumed(&self) -> u64 {
        self.received - self.consumed
    }

    fn room(&self) -> u64 {
        self.limit - self.received
    }

    /// Counts `n` consumed bytes (read or discarded); returns the new limit to advertise once
    /// half the window was consumed since the last advertisement.
    pub fn consume(&mut self, n: u64) -> Option<u64> {
        self.consumed = (self.consumed + n).min(self.received);
        if self.consumed - self.advertised_at >= (self.window / 2).max(1) {
            self.advertised_at = self.consumed;
            let limit = self.consumed.saturating_add(self.window).min(MAX_OFFSET);
            if limit > self.limit {
                self.limit = limit;
                return Some(limit);
            }
        }
        None
    }
}

/// Admits `n` inbound payload bytes against a stream's and the connection's window together:
/// over either limit is `protocol-error` (and nothing is counted).
pub fn receive(stream: &mut RecvWindow, connection: &mut RecvWindow, n: u64) -> Result<(), Code> {
    if n > stream.room() || n > connection.room() {
        return Err(Code::ProtocolError);
    }
    stream.received += n;
    connection.received += n;
    Ok(())
}

/// Streams the peer opened against what we allow (spec §10.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerStreams {
    initial: u64,
    opened: u64,
    retired: u64,
}

impl PeerStreams {
    /// Our HELLO's `initialMaxStreams`.
    pub fn new(initial: u64) -> Self {
        PeerStreams {
            initial: initial.min(MAX_OFFSET),
            opened: 0,
            retired: 0,
        }
    }

    /// The limit we advertise.
    pub fn advertised(&self) -> u64 {
        self.initial.saturating_add(self.retired).min(MAX_OFFSET)
    }

    /// A peer channel appeared: `protocol-error` past the advertised limit.
    pub fn on_open(&mut self) -> Result<(), Code> {
        if self.opened >= self.advertised() {
            return Err(Code::ProtocolError);
        }
        self.opened += 1;
        Ok(())
    }

    /// A peer stream retired: returns the MAX_STREAMS value to send.
    pub fn on_retire(&mut self) -> u64 {
        self.retired = (self.retired + 1).min(self.opened);
        self.advertised()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(stream: u64, data: u64, streams: u64) -> Limits {
        Limits {
            initial_max_stream_data: stream,
            initial_max_data: data,
            initial_max_streams: streams,
        }
    }

    #[test]
    fn nothing_is_sent_before_the_peers_hello() {
        let mut credit = SendCredit::default();
        let mut s = StreamSend::default();
        assert_eq!(credit.reserve(&mut s, 10), 0);
        credit.on_hello(hello(100, 150, 1));
        assert_eq!(credit.reserve(&mut s, 10), 10);
    }

    #[test]
    fn grants_are_partial_and_connection_credit_is_shared() {
        let mut credit = SendCredit::default();
        credit.on_hello(hello(100, 150, 2));
        let (mut a, mut b) = (StreamSend::default(), StreamSend::default());
        assert_eq!(credit.reserve(&mut a, 1000), 100, "stream room");
        assert_eq!(credit.reserve(&mut a, 1), 0);
        assert_eq!(
            credit.reserve(&mut b, 1000),
            50,
            "what the connection has left"
        );
        assert_eq!(
            credit.reserve(&mut b, 1),
            0,
            "never the same residual twice"
        );
        credit.commit(&mut a, 100);
        credit.release(&mut b, 50);
        assert_eq!(credit.reserve(&mut b, 1000), 50);
        a.on_max_stream_data(300);
        a.on_max_stream_data(200); // lower: ignored
        credit.on_max_data(400);
        credit.on_max_data(10); // lower: ignored
        assert_eq!(credit.reserve(&mut a, 1000), 200);
        assert_eq!(credit.sent(), 100);
    }

    #[test]
    fn one_frame_takes_at_most_16383_bytes() {
        let mut credit = SendCredit::default();
        credit.on_hello(hello(MAX_OFFSET, MAX_OFFSET, 1));
        let mut s = StreamSend::default();
        assert_eq!(credit.reserve(&mut s, 1 << 20), MAX_DATA_PAYLOAD);
    }

    #[test]
    fn stream_opening_needs_a_slot() {
        let mut open = OpenCredit::default();
        assert!(!open.reserve());
        open.on_hello(hello(0, 0, 1));
        assert!(open.reserve());
        assert!(!open.reserve());
        open.release();
        assert!(open.reserve());
        open.commit();
        assert!(!open.reserve());
        open.on_max_streams(2);
        assert!(open.reserve());
    }

    #[test]
    fn receiver_enforces_both_windows_and_re_advertises_at_half() {
        let mut conn = RecvWindow::new(150);
        let mut a = RecvWindow::new(100);
        let mut b = RecvWindow::new(100);
        assert_eq!(receive(&mut a, &mut conn, 100), Ok(()));
        assert_eq!(receive(&mut a, &mut conn, 1), Err(Code::ProtocolError));
        assert_eq!(
            receive(&mut b, &mut conn, 51),
            Err(Code::ProtocolError),
            "connection"
        );
        assert_eq!(receive(&mut b, &mut conn, 50), Ok(()));
        assert_eq!(a.consume(49), None);
        assert_eq!(a.consume(1), Some(150), "half the window consumed");
        assert_eq!(conn.consume(50), None);
        assert_eq!(conn.consume(25), Some(225));
        assert_eq!(receive(&mut a, &mut conn, 50), Ok(()));
        assert_eq!(a.unconsumed(), 100);
    }

    #[test]
    fn peer_streams_return_credit_on_retirement() {
        let mut peer = PeerStreams::new(2);
        assert_eq!(peer.on_open(), Ok(()));
        assert_eq!(peer.on_open(), Ok(()));
        assert_eq!(peer.on_open(), Err(Code::ProtocolError));
        assert_eq!(peer.on_retire(), 3);
        assert_eq!(peer.on_open(), Ok(()));
        let mut none = PeerStreams::new(0);
        assert_eq!(none.on_open(), Err(Code::ProtocolError));
    }
}
