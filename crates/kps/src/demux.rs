//! One UDP port for both transports (spec §4): the sans-IO classifier and the socket shim
//! that sits under quinn.
//!
//! [`classify`], [`is_stun`], [`canonical`] and [`route_batch`] are pure. [`DemuxSocket`]
//! implements [`quinn::AsyncUdpSocket`] over one real socket (through `quinn_udp`, so GSO,
//! GRO, ECN and DONTFRAG stay on): when quinn polls it for packets it reads a batch,
//! canonicalises each source address, and routes every datagram in the order of §4.1 —
//! known WebRTC peer address, then STUN, then QUIC. Non-QUIC datagrams go to a bounded inbox
//! ([`Demux`]) with a drop counter; QUIC datagrams go to quinn with no hand-off between tasks.
//! The WebRTC transport (a later issue) consumes the inbox and sends through [`Demux::send_to`].

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use quinn::udp::{RecvMeta, Transmit, UdpSocketState};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::io::Interest;
use tokio::sync::Notify;

use crate::limits::MAX_WEBRTC_ADDRS;

/// The STUN magic cookie (RFC 5389) at bytes 4–7.
pub const STUN_MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

/// Where an inbound datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// From a known WebRTC peer address (DTLS, SCTP, STUN after ICE).
    WebRtcPeer,
    /// A STUN message from an address not yet known.
    Stun,
    /// Everything else: quinn demultiplexes and drops what is not QUIC.
    Quic,
}

/// True when the datagram has a STUN header (spec §4.1 step 3): at least 20 bytes, the top two
/// bits of byte 0 zero, the magic cookie at bytes 4–7, and a length field that is a multiple of
/// 4 and equals the datagram length − 20.
pub fn is_stun(datagram: &[u8]) -> bool {
    if datagram.len() < 20 || datagram[0] & 0xC0 != 0 || datagram[4..8] != STUN_MAGIC_COOKIE {
        return false;
    }
    let len = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    len % 4 == 0 && len == datagram.len() - 20
}

/// Classifies one datagram (spec §4.1): known WebRTC peer address → STUN → QUIC. QUIC headers
/// are never sniffed.
pub fn classify(datagram: &[u8], from_known_webrtc_peer: bool) -> Route {
    if from_known_webrtc_peer {
        Route::WebRtcPeer
    } else if is_stun(datagram) {
        Route::Stun
    } else {
        Route::Quic
    }
}

/// The canonical form of a source address: a v4-mapped IPv6 address (`::ffff:a.b.c.d`, as a
/// dual-stack socket reports IPv4 peers) becomes the plain IPv4 socket address.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

/// The destination to pass to an `AF_INET6` socket: IPv4 becomes v4-mapped.
pub fn for_socket(addr: SocketAddr, socket_is_v6: bool) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) if socket_is_v6 => {
            SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
        }
        other => other,
    }
}

/// Routes one received batch in place: `buf` holds datagrams of `stride` bytes (the last may be
/// shorter) from one source. Non-QUIC datagrams are handed to `other`; the QUIC ones are
/// compacted to the front, keeping the stride. Returns the number of QUIC bytes kept.
pub fn route_batch(
    buf: &mut [u8],
    stride: usize,
    from_known_webrtc_peer: bool,
    mut other: impl FnMut(Route, &[u8]),
) -> usize {
    let stride = if stride == 0 {
        buf.len().max(1)
    } else {
        stride
    };
    let mut read = 0;
    let mut write = 0;
    while read < buf.len() {
        let end = (read + stride).min(buf.len());
        match classify(&buf[read..end], from_known_webrtc_peer) {
            Route::Quic => {
                if write != read {
                    buf.copy_within(read..end, write);
                }
                write += end - read;
            }
            route => other(route, &buf[read..end]),
        }
        read = end;
    }
    write
}

/// A datagram for the WebRTC side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Canonical source address.
    pub from: SocketAddr,
    /// How it was classified ([`Route::WebRtcPeer`] or [`Route::Stun`]).
    pub route: Route,
    /// The bytes.
    pub data: Bytes,
}

/// A bounded FIFO that drops new items when full and counts the drops.
#[derive(Debug)]
pub struct Inbox<T> {
    queue: VecDeque<T>,
    capacity: usize,
    dropped: u64,
}

impl<T> Inbox<T> {
    /// An empty inbox holding at most `capacity` items.
    pub fn new(capacity: usize) -> Inbox<T> {
        Inbox {
            queue: VecDeque::new(),
            capacity,
            dropped: 0,
        }
    }

    /// Queues an item; returns false (and counts a drop) if the inbox is full.
    pub fn push(&mut self, item: T) -> bool {
        if self.queue.len() >= self.capacity {
            self.dropped += 1;
            false
        } else {
            self.queue.push_back(item);
            true
        }
    }

    /// The oldest item.
    pub fn pop(&mut self) -> Option<T> {
        self.queue.pop_front()
    }

    /// Items queued.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Items dropped because the inbox was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The shared demux state of one listener: the known-WebRTC-peer table and the inbox of
/// non-QUIC datagrams. Obtained from [`crate::Listener::demux`].
pub struct Demux {
    peers: Mutex<HashSet<SocketAddr>>,
    inbox: Mutex<Inbox<Packet>>,
    notify: Notify,
    quic_packets: AtomicU64,
    socket: Mutex<Option<Arc<DemuxSocket>>>,
}

impl fmt::Debug for Demux {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Demux")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl Demux {
    pub(crate) fn new(inbox: usize) -> Demux {
        Demux {
            peers: Mutex::new(HashSet::new()),
            inbox: Mutex::new(Inbox::new(inbox)),
            notify: Notify::new(),
            quic_packets: AtomicU64::new(0),
            socket: Mutex::new(None),
        }
    }

    /// Routes datagrams from `addr` (canonicalised) to the WebRTC side from now on. Returns
    /// false when the table already holds [`MAX_WEBRTC_ADDRS`] addresses.
    pub fn add_webrtc_peer(&self, addr: SocketAddr) -> bool {
        let mut peers = lock(&self.peers);
        let addr = canonical(addr);
        if peers.len() >= MAX_WEBRTC_ADDRS && !peers.contains(&addr) {
            return false;
        }
        peers.insert(addr);
        true
    }

    /// Forgets a WebRTC peer address.
    pub fn remove_webrtc_peer(&self, addr: SocketAddr) {
        lock(&self.peers).remove(&canonical(addr));
    }

    /// Whether `addr` is a known WebRTC peer address.
    pub fn is_webrtc_peer(&self, addr: SocketAddr) -> bool {
        lock(&self.peers).contains(&canonical(addr))
    }

    /// The next non-QUIC datagram, if one is queued.
    pub fn try_recv(&self) -> Option<Packet> {
        lock(&self.inbox).pop()
    }

    /// Waits for the next non-QUIC datagram. Datagrams are only read while the listener's
    /// QUIC endpoint runs.
    pub async fn recv(&self) -> Packet {
        loop {
            let notified = self.notify.notified();
            if let Some(p) = self.try_recv() {
                return p;
            }
            notified.await;
        }
    }

    /// Non-QUIC datagrams dropped because the inbox was full.
    pub fn dropped(&self) -> u64 {
        lock(&self.inbox).dropped()
    }

    /// QUIC datagrams handed to quinn so far.
    pub fn quic_packets(&self) -> u64 {
        self.quic_packets.load(Ordering::Relaxed)
    }

    /// Sends a datagram from the listener's port (v4 destinations are mapped for a dual-stack
    /// socket).
    pub async fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<usize> {
        let socket = lock(&self.socket)
            .clone()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "socket gone"))?;
        socket.io.send_to(data, for_socket(to, socket.is_v6)).await
    }

    fn deliver(&self, from: SocketAddr, route: Route, data: &[u8]) {
        let queued = lock(&self.inbox).push(Packet {
            from,
            route,
            data: Bytes::copy_from_slice(data),
        });
        if queued {
            self.notify.notify_one();
        } else {
            tracing::debug!(%from, "demux inbox full; datagram dropped");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The socket shim under quinn (spec §4.3).
pub struct DemuxSocket {
    io: tokio::net::UdpSocket,
    state: UdpSocketState,
    is_v6: bool,
    demux: Arc<Demux>,
}

impl fmt::Debug for DemuxSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemuxSocket")
            .field("local", &self.io.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl DemuxSocket {
    /// Wraps a bound non-blocking socket. Must run inside a tokio runtime.
    pub(crate) fn new(socket: std::net::UdpSocket, demux: Arc<Demux>) -> io::Result<Arc<Self>> {
        let state = UdpSocketState::new((&socket).into())?;
        let is_v6 = socket.local_addr()?.is_ipv6();
        let io = tokio::net::UdpSocket::from_std(socket)?;
        let sock = Arc::new(DemuxSocket {
            io,
            state,
            is_v6,
            demux: demux.clone(),
        });
        *lock(&demux.socket) = Some(sock.clone());
        Ok(sock)
    }
}

impl AsyncUdpSocket for DemuxSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(WritablePoller {
            socket: self,
            fut: None,
        })
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        let mapped = Transmit {
            destination: for_socket(transmit.destination, self.is_v6),
            ecn: transmit.ecn,
            contents: transmit.contents,
            segment_size: transmit.segment_size,
            src_ip: transmit.src_ip,
        };
        self.io.try_io(Interest::WRITABLE, || {
            self.state.send((&self.io).into(), &mapped)
        })
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.io.poll_recv_ready(cx))?;
            let n = match self.io.try_io(Interest::READABLE, || {
                self.state.recv((&self.io).into(), bufs, meta)
            }) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "udp receive error ignored");
                    continue;
                }
            };
            let mut kept_any = false;
            for (buf, m) in bufs.iter_mut().zip(meta.iter_mut()).take(n) {
                m.addr = canonical(m.addr);
                let from = m.addr;
                let known = self.demux.is_webrtc_peer(from);
                let len = m.len.min(buf.len());
                let kept = route_batch(&mut buf[..len], m.stride, known, |route, d| {
                    self.demux.deliver(from, route, d)
                });
                m.len = kept;
                if kept > 0 {
                    kept_any = true;
                    self.demux.quic_packets.fetch_add(1, Ordering::Relaxed);
                }
            }
            if kept_any {
                return Poll::Ready(Ok(n));
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    fn may_fragment(&self) -> bool {
        self.state.may_fragment()
    }

    fn max_transmit_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.state.gro_segments()
    }
}

type WritableFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send + Sync>>;

struct WritablePoller {
    socket: Arc<DemuxSocket>,
    fut: Option<WritableFuture>,
}

impl fmt::Debug for WritablePoller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WritablePoller")
    }
}

impl UdpPoller for WritablePoller {
    fn poll_writable(self: Pin<&mut Self>, cx: &mut Context) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let fut = this.fut.get_or_insert_with(|| {
            let socket = this.socket.clone();
            Box::pin(async move { socket.io.writable().await })
        });
        let result = fut.as_mut().poll(cx);
        if result.is_ready() {
            this.fut = None;
        }
        result
    }
}

/// Binds a UDP socket: a v6 wildcard is dual-stack (`IPV6_V6ONLY` off), other v6 addresses
/// are v6-only.
pub(crate) fn bind_udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    if addr.is_ipv6() {
        socket.set_only_v6(!addr.ip().is_unspecified())?;
    }
    socket.set_nonblocking(true)?;
    // Best effort (the kernel caps it at net.core.rmem_max / wmem_max): a burst the default
    // ~200 KiB buffer cannot hold is lost, and SCTP over WebRTC recovers from loss slowly.
    let _ = socket.set_recv_buffer_size(crate::limits::UDP_SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(crate::limits::UDP_SOCKET_BUFFER);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::DEMUX_INBOX;

    fn stun(len_field: u16, total: usize) -> Vec<u8> {
        let mut d = vec![0u8; total];
        d[0] = 0x00;
        d[1] = 0x01;
        d[2..4].copy_from_slice(&len_field.to_be_bytes());
        d[4..8].copy_from_slice(&STUN_MAGIC_COOKIE);
        d
    }

    #[test]
    fn stun_classification() {
        assert!(is_stun(&stun(0, 20)));
        assert!(is_stun(&stun(80, 100)));
        // Length field not a multiple of 4, or not matching.
        assert!(!is_stun(&stun(81, 101)));
        assert!(!is_stun(&stun(80, 104)));
        // Too short.
        assert!(!is_stun(&stun(0, 20)[..19]));
        // Top bits set.
        let mut d = stun(0, 20);
        d[0] = 0x40;
        assert!(!is_stun(&d));
        d[0] = 0x80;
        assert!(!is_stun(&d));
        // Wrong cookie.
        let mut d = stun(0, 20);
        d[7] = 0x43;
        assert!(!is_stun(&d));
        assert_eq!(classify(&stun(0, 20), false), Route::Stun);
        assert_eq!(classify(&stun(0, 20), true), Route::WebRtcPeer);
        assert_eq!(classify(b"anything", true), Route::WebRtcPeer);
    }

    #[test]
    fn quic_headers_never_classify_as_stun() {
        // Long header (Initial): top bit set.
        let mut initial = vec![0xC3u8, 0, 0, 0, 1, 8];
        initial.resize(1200, 0);
        assert_eq!(classify(&initial, false), Route::Quic);
        // Short header: fixed bit 0x40 set.
        let mut short = vec![0x41u8; 40];
        short[4..8].copy_from_slice(&STUN_MAGIC_COOKIE);
        assert_eq!(classify(&short, false), Route::Quic);
        // Every first byte with the fixed bit or the long-header bit set is QUIC.
        for b0 in 0x40u8..=0xFF {
            let mut d = stun(0, 20);
            d[0] = b0;
            assert_eq!(classify(&d, false), Route::Quic);
        }
    }

    #[test]
    fn v4_mapped_source_canonicalised() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        assert_eq!(canonical(mapped), "127.0.0.1:5000".parse().unwrap());
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        assert_eq!(canonical(v6), v6);
        let v4: SocketAddr = "10.0.0.1:1".parse().unwrap();
        assert_eq!(canonical(v4), v4);
        assert_eq!(for_socket(v4, true), "[::ffff:10.0.0.1]:1".parse().unwrap());
        assert_eq!(for_socket(v4, false), v4);
        assert_eq!(canonical(for_socket(v4, true)), v4);
    }

    #[test]
    fn full_inbox_drops_and_counts() {
        let mut inbox = Inbox::new(DEMUX_INBOX);
        for i in 0..DEMUX_INBOX {
            assert!(inbox.push(i));
        }
        assert_eq!(inbox.dropped(), 0);
        assert!(!inbox.push(DEMUX_INBOX));
        assert_eq!(inbox.dropped(), 1);
        assert_eq!(inbox.len(), DEMUX_INBOX);
        assert_eq!(inbox.pop(), Some(0));
        assert!(inbox.push(7));
    }

    #[test]
    fn demux_routes_to_inbox_and_counts_drops() {
        let demux = Demux::new(2);
        let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for _ in 0..3 {
            demux.deliver(from, Route::Stun, b"x");
        }
        assert_eq!(demux.dropped(), 1);
        assert_eq!(demux.try_recv().map(|p| p.from), Some(from));
    }

    #[test]
    fn webrtc_peer_table_bound() {
        let demux = Demux::new(1);
        for i in 0..MAX_WEBRTC_ADDRS {
            let a = SocketAddr::new(IpAddr::V4([10, 0, (i >> 8) as u8, i as u8].into()), 1);
            assert!(demux.add_webrtc_peer(a));
        }
        let past: SocketAddr = "10.1.0.0:2".parse().unwrap();
        assert!(!demux.add_webrtc_peer(past));
        // Re-adding a known one is fine; a mapped form is the same key.
        assert!(demux.add_webrtc_peer("[::ffff:10.0.0.0]:1".parse().unwrap()));
        demux.remove_webrtc_peer("10.0.0.0:1".parse().unwrap());
        assert!(demux.add_webrtc_peer(past));
        assert!(demux.is_webrtc_peer(past));
    }

    #[test]
    fn batch_routing_compacts_quic() {
        // Three 24-byte segments and a short 20-byte one: QUIC, STUN, QUIC, STUN(20).
        let mut seg_quic = vec![0x40u8; 24];
        seg_quic[1] = 1;
        let mut stun24 = stun(4, 24);
        stun24[23] = 9;
        let mut buf = Vec::new();
        buf.extend_from_slice(&seg_quic);
        buf.extend_from_slice(&stun24);
        let mut q2 = vec![0x41u8; 24];
        q2[1] = 2;
        buf.extend_from_slice(&q2);
        buf.extend_from_slice(&stun(0, 20));
        let mut others = Vec::new();
        let kept = route_batch(&mut buf, 24, false, |r, d| others.push((r, d.to_vec())));
        assert_eq!(kept, 48);
        assert_eq!(&buf[..24], &seg_quic[..]);
        assert_eq!(&buf[24..48], &q2[..]);
        assert_eq!(others.len(), 2);
        assert_eq!(others[0], (Route::Stun, stun24));
        // A known peer takes everything.
        let mut buf2 = seg_quic.clone();
        let mut n = 0;
        assert_eq!(route_batch(&mut buf2, 24, true, |_, _| n += 1), 0);
        assert_eq!(n, 1);
        // Stride 0 is treated as one datagram.
        let mut buf3 = seg_quic.clone();
        assert_eq!(route_batch(&mut buf3, 0, false, |_, _| {}), 24);
    }
}
