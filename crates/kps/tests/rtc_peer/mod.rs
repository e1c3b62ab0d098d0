//! A synchronous str0m peer for tests: its `Rtc`, a non-blocking loopback UDP socket, and what
//! it has seen (connected, channels opened, messages by SCTP stream id).
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use keyline_kps::Identity;
use keyline_kps::webrtc::peer;
use sha2::{Digest, Sha256};
use str0m::channel::ChannelId;
use str0m::net::{Protocol, Receive};
use str0m::{Event, Input, Output, Rtc};

/// A peer: its `Rtc`, its socket and what it has seen.
pub struct Peer {
    pub rtc: Rtc,
    pub socket: UdpSocket,
    pub addr: SocketAddr,
    pub deadline: Instant,
    pub connected: bool,
    pub opened: Vec<(u16, String)>,
    pub data: Vec<(u16, Vec<u8>)>,
    pub ids: HashMap<ChannelId, u16>,
}

pub fn creds(digest: &[u8; 32], ufrag: &str) -> peer::Credentials {
    peer::Credentials {
        ufrag: ufrag.to_owned(),
        pwd: keyline_kps::webrtc::server::ice_pwd(digest, ufrag),
    }
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub fn socket() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_nonblocking(true).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

pub fn server(identity: &Identity, ufrag: &str) -> Peer {
    let digest = sha256(identity.cert_der());
    let now = Instant::now();
    let (socket, addr) = socket();
    let rtc = peer::server_rtc(identity, &creds(&digest, ufrag), addr, now).unwrap();
    Peer::new(rtc, socket, addr, now)
}

pub fn client(pinned: &[u8; 32], ufrag: &str, server: SocketAddr) -> Peer {
    let now = Instant::now();
    let (socket, addr) = socket();
    let rtc = peer::client_rtc(pinned, &creds(pinned, ufrag), addr, server, now).unwrap();
    Peer::new(rtc, socket, addr, now)
}

impl Peer {
    pub fn new(rtc: Rtc, socket: UdpSocket, addr: SocketAddr, now: Instant) -> Peer {
        Peer {
            rtc,
            socket,
            addr,
            deadline: now,
            connected: false,
            opened: Vec::new(),
            data: Vec::new(),
            ids: HashMap::new(),
        }
    }

    /// Drains outputs (sending transmits) until the next timeout.
    pub fn drain(&mut self) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.deadline = t;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(event)) => match event {
                    Event::Connected => self.connected = true,
                    Event::ChannelOpen(id, label) => {
                        let sid = self
                            .rtc
                            .direct_api()
                            .sctp_stream_id_by_channel_id(id)
                            .unwrap_or(u16::MAX);
                        self.ids.insert(id, sid);
                        self.opened.push((sid, label));
                    }
                    Event::ChannelData(d) => {
                        let sid = self.ids.get(&d.id).copied().unwrap_or(u16::MAX);
                        self.data.push((sid, d.data.to_vec()));
                    }
                    _ => {}
                },
                Err(e) => panic!("poll_output: {e}"),
            }
        }
    }

    /// Feeds every datagram waiting on the socket, then a timeout if one is due.
    pub fn pump(&mut self) {
        let mut buf = [0u8; 2048];
        while let Ok((n, source)) = self.socket.recv_from(&mut buf) {
            let input = Input::Receive(
                Instant::now(),
                Receive {
                    proto: Protocol::Udp,
                    source,
                    destination: self.addr,
                    contents: buf[..n].try_into().unwrap(),
                },
            );
            if self.rtc.accepts(&input) {
                let _ = self.rtc.handle_input(input);
            }
            self.drain();
        }
        let now = Instant::now();
        if now >= self.deadline {
            let _ = self.rtc.handle_input(Input::Timeout(now));
            self.drain();
        }
    }

    pub fn channel_by_sid(&self, sid: u16) -> Option<ChannelId> {
        self.ids.iter().find(|(_, s)| **s == sid).map(|(id, _)| *id)
    }
}

/// Runs both peers until `done` or the time limit.
pub fn run(
    a: &mut Peer,
    b: &mut Peer,
    limit: Duration,
    mut done: impl FnMut(&mut Peer, &mut Peer) -> bool,
) -> bool {
    a.drain();
    b.drain();
    let end = Instant::now() + limit;
    while Instant::now() < end {
        a.pump();
        b.pump();
        if done(a, b) {
            return true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    false
}

/// Runs one peer until `done` or the time limit.
pub fn run_one(a: &mut Peer, limit: Duration, mut done: impl FnMut(&mut Peer) -> bool) -> bool {
    a.drain();
    let end = Instant::now() + limit;
    while Instant::now() < end {
        a.pump();
        if done(a) {
            return true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    false
}

/// Opens a stream channel from `a`, waits for it to open (running `b` too when given), and
/// writes `message` on it; returns the channel.
pub fn open_and_write(
    a: &mut Peer,
    mut b: Option<&mut Peer>,
    label: &str,
    message: &[u8],
) -> ChannelId {
    let stream = a
        .rtc
        .direct_api()
        .create_data_channel(peer::stream_channel(label));
    a.drain();
    let end = Instant::now() + Duration::from_secs(5);
    while !a.ids.contains_key(&stream) {
        assert!(Instant::now() < end, "stream channel {label} did not open");
        a.pump();
        if let Some(b) = b.as_deref_mut() {
            b.pump();
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    assert!(a.rtc.channel(stream).unwrap().write(true, message).unwrap());
    a.drain();
    stream
}
