//! The WebRTC side of a listener (spec §4.1, §4.2, §6.4, §6.5): it consumes the demux inbox
//! of the listener's one UDP socket, admits a new client only after its first STUN Binding
//! request verifies under the ice-pwd derived from the certhash, and runs one task per peer
//! that owns the peer's `Rtc` (read → `handle_input` → drain `poll_output` → write).
//!
//! This layer carries data channels, not KPS streams: each admitted peer surfaces as a
//! [`RtcPeer`] whose channel events and commands travel over bounded queues. The wire-v1
//! engine (`webrtc::proto`) runs on top of it.
//!
//! Bounds: peers in the table ([`crate::limits::MAX_WEBRTC_PEERS`]), addresses per peer,
//! per-source new-ufrag rate, per-peer inbox (drop and count when full), handshake deadline
//! (a peer that does not connect in time is reaped).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use hmac::{KeyInit, Mac};
use sha2::Sha256;
use str0m::channel::ChannelId;
use str0m::net::{Protocol, Receive};
use str0m::{Event, Input, Output, Rtc};
use tokio::sync::{mpsc, oneshot};

use super::peer::{self, Credentials};
use crate::Identity;
use crate::demux::{Demux, Route};
use crate::limits;

/// A channel event of one peer.
#[derive(Debug)]
pub enum ChannelEvent {
    /// DTLS and SCTP are up.
    Connected,
    /// A channel opened (either side; the negotiated channels 0 and 1 included).
    Open {
        /// SCTP stream id.
        sid: u16,
        /// The label (not semantic).
        label: String,
    },
    /// A message on a channel.
    Message {
        /// SCTP stream id.
        sid: u16,
        /// The bytes.
        data: Bytes,
    },
    /// The channel's buffered amount fell below its low mark.
    Writable {
        /// SCTP stream id.
        sid: u16,
    },
    /// A channel closed.
    Closed {
        /// SCTP stream id.
        sid: u16,
    },
    /// The peer is gone (ICE, DTLS or SCTP ended, or the handshake deadline passed).
    Disconnected,
}

/// A command to one peer's task.
#[derive(Debug)]
pub enum ChannelCommand {
    /// Writes one message; the answer is false when str0m's buffer is full (retry after
    /// [`ChannelEvent::Writable`]), never a silent drop.
    Send {
        /// SCTP stream id.
        sid: u16,
        /// The bytes.
        data: Bytes,
        /// Whether it was accepted.
        done: oneshot::Sender<bool>,
    },
    /// Opens a stream channel (DCEP); answers with its SCTP stream id once open.
    Open {
        /// The label.
        label: String,
        /// The new channel's id.
        done: oneshot::Sender<Option<u16>>,
    },
    /// Closes a channel.
    Close {
        /// SCTP stream id.
        sid: u16,
    },
    /// Ends the peer.
    Disconnect,
}

/// One admitted WebRTC peer.
#[derive(Debug)]
pub struct RtcPeer {
    /// The client's ufrag.
    pub ufrag: String,
    /// Where its first verified STUN request came from (canonical form).
    pub remote: SocketAddr,
    /// Channel events, in order.
    pub events: mpsc::Receiver<ChannelEvent>,
    /// Commands to the peer's task.
    pub commands: mpsc::Sender<ChannelCommand>,
}

/// The ice-pwd for `ufrag` under a certhash digest (spec §6.1).
pub fn ice_pwd(digest: &[u8; 32], ufrag: &str) -> String {
    let mut mac = match hmac::Hmac::<Sha256>::new_from_slice(digest) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes any key length"),
    };
    mac.update(b"kps-ice-pwd-v1:");
    mac.update(ufrag.as_bytes());
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Verifies a STUN Binding request for a new peer (spec §6.5 steps 1–3): returns the ufrag
/// when the request parses, the ufrag is 4–256 ICE characters and MESSAGE-INTEGRITY verifies
/// under the derived pwd; `None` otherwise (nothing is allocated, nothing is answered).
pub fn gate(datagram: &[u8], digest: &[u8; 32]) -> Option<String> {
    let message = str0m::ice::StunMessage::parse(datagram).ok()?;
    if !message.is_binding_request() {
        return None;
    }
    let (ufrag, _) = message.split_username()?;
    if !(4..=256).contains(&ufrag.len())
        || !ufrag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return None;
    }
    if !trailer_ok(datagram) {
        return None;
    }
    let pwd = ice_pwd(digest, ufrag);
    message
        .verify(pwd.as_bytes(), hmac_sha1)
        .then(|| ufrag.to_owned())
}

/// What follows MESSAGE-INTEGRITY (RFC 5389 §15.4, §15.5): nothing, or exactly a FINGERPRINT
/// attribute whose CRC-32 (of everything before it, XOR `0x5354554E`) matches. Stricter than
/// the RFC (which ignores other trailing attributes), as befits a gate; str0m's parser checks
/// neither (spec §6.5 step 3).
fn trailer_ok(datagram: &[u8]) -> bool {
    let mut at = 20;
    while let Some(header) = datagram.get(at..at + 4) {
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let next = at + 4 + len.div_ceil(4) * 4;
        if header[..2] == [0x00, 0x08] {
            let rest = datagram.get(next..).unwrap_or_default();
            return match rest {
                [] => true,
                [0x80, 0x28, 0x00, 0x04, crc @ ..] => {
                    let expected = crc32fast::hash(&datagram[..next]) ^ 0x5354_554E;
                    crc == expected.to_be_bytes()
                }
                _ => false,
            };
        }
        at = next;
    }
    false
}

fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let mut mac = match hmac::Hmac::<sha1::Sha1>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes any key length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

struct PeerEntry {
    inbox: mpsc::Sender<(Instant, SocketAddr, Bytes)>,
    addrs: Vec<SocketAddr>,
}

#[derive(Default)]
struct Table {
    by_ufrag: HashMap<String, PeerEntry>,
    by_addr: HashMap<SocketAddr, String>,
    /// New-ufrag admissions per source IP: (window start, count).
    rate: HashMap<IpAddr, (Instant, u32)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serves WebRTC on a listener's socket until the demux goes away; admitted peers arrive on
/// the returned queue.
pub fn spawn(demux: Arc<Demux>, identity: Identity, local: SocketAddr) -> mpsc::Receiver<RtcPeer> {
    let (admitted, peers) = mpsc::channel(limits::WEBRTC_ACCEPT_BACKLOG);
    tokio::spawn(route(demux, identity, local, admitted));
    peers
}

/// The host candidate address: the bound address, or loopback of the family for a wildcard
/// bind (the server is ICE-lite and its answer is never sent, spec §6.4).
fn candidate_addr(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

async fn route(
    demux: Arc<Demux>,
    identity: Identity,
    local: SocketAddr,
    admitted: mpsc::Sender<RtcPeer>,
) {
    let digest = *identity.certhash().digest();
    let table = Arc::new(Mutex::new(Table::default()));
    let local = candidate_addr(local);
    loop {
        let packet = demux.recv().await;
        let now = Instant::now();
        // Known address → that peer (DTLS, SCTP, later STUN).
        let known = {
            let t = lock(&table);
            t.by_addr
                .get(&packet.from)
                .and_then(|u| t.by_ufrag.get(u))
                .map(|e| e.inbox.clone())
        };
        if let Some(inbox) = known {
            if inbox.try_send((now, packet.from, packet.data)).is_err() {
                tracing::debug!(from = %packet.from, "WebRTC peer inbox full; datagram dropped");
            }
            continue;
        }
        if packet.route != Route::Stun {
            continue;
        }
        let Some(ufrag) = gate(&packet.data, &digest) else {
            tracing::trace!(from = %packet.from, "STUN that does not verify; ignored");
            continue;
        };
        // A verified request from a new address for a known ufrag: add the route (bounded).
        let existing = {
            let mut t = lock(&table);
            let t = &mut *t;
            match t.by_ufrag.get_mut(&ufrag) {
                Some(entry) if entry.addrs.len() < limits::MAX_WEBRTC_ADDRS_PER_PEER => {
                    entry.addrs.push(packet.from);
                    t.by_addr.insert(packet.from, ufrag.clone());
                    Some(Some(entry.inbox.clone()))
                }
                Some(_) => Some(None),
                None => None,
            }
        };
        match existing {
            Some(Some(inbox)) => {
                demux.add_webrtc_peer(packet.from);
                let _ = inbox.try_send((now, packet.from, packet.data));
                continue;
            }
            Some(None) => continue,
            None => {}
        }
        // A new peer: rate limit per source IP, table bound, then allocate.
        {
            let mut t = lock(&table);
            if t.by_ufrag.len() >= limits::MAX_WEBRTC_PEERS {
                continue;
            }
            let slot = t.rate.entry(packet.from.ip()).or_insert((now, 0));
            if now.duration_since(slot.0) >= Duration::from_secs(1) {
                *slot = (now, 0);
            }
            if slot.1 >= limits::WEBRTC_NEW_UFRAGS_PER_SECOND {
                continue;
            }
            slot.1 += 1;
            if t.rate.len() > limits::MAX_WEBRTC_PEERS {
                t.rate
                    .retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(1));
            }
        }
        let credentials = Credentials {
            ufrag: ufrag.clone(),
            pwd: ice_pwd(&digest, &ufrag),
        };
        let rtc = match peer::server_rtc(&identity, &credentials, local, now) {
            Ok(rtc) => rtc,
            Err(err) => {
                tracing::warn!(%err, "WebRTC peer setup failed");
                continue;
            }
        };
        if !demux.add_webrtc_peer(packet.from) {
            continue;
        }
        let (inbox_tx, inbox_rx) = mpsc::channel(limits::WEBRTC_PEER_INBOX);
        let (events_tx, events_rx) = mpsc::channel(limits::WEBRTC_PEER_EVENTS);
        let (commands_tx, commands_rx) = mpsc::channel(limits::WEBRTC_PEER_COMMANDS);
        let _ = inbox_tx.try_send((now, packet.from, packet.data));
        {
            let mut t = lock(&table);
            t.by_addr.insert(packet.from, ufrag.clone());
            t.by_ufrag.insert(
                ufrag.clone(),
                PeerEntry {
                    inbox: inbox_tx,
                    addrs: vec![packet.from],
                },
            );
        }
        let task = PeerTask::new(rtc, local, Outbound::Demux(Arc::clone(&demux)), events_tx);
        let cleanup = {
            let table = Arc::clone(&table);
            let demux = Arc::clone(&demux);
            let ufrag = ufrag.clone();
            move || {
                let mut t = lock(&table);
                if let Some(entry) = t.by_ufrag.remove(&ufrag) {
                    for addr in entry.addrs {
                        t.by_addr.remove(&addr);
                        demux.remove_webrtc_peer(addr);
                    }
                }
            }
        };
        tokio::spawn(async move {
            task.run(inbox_rx, commands_rx).await;
            cleanup();
        });
        let peer = RtcPeer {
            ufrag,
            remote: packet.from,
            events: events_rx,
            commands: commands_tx,
        };
        if admitted.try_send(peer).is_err() {
            tracing::debug!("WebRTC accept backlog full; peer dropped");
        }
    }
}

/// Where a peer's datagrams go: the listener's socket (through the demux) or a client's own.
pub(crate) enum Outbound {
    /// The listener's one socket.
    Demux(Arc<Demux>),
    /// A dialing client's socket.
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

/// One peer's task: owns its `Rtc`; reads its inbox and commands, writes its datagrams.
pub(crate) struct PeerTask {
    rtc: Rtc,
    local: SocketAddr,
    out: Outbound,
    events: mpsc::Sender<ChannelEvent>,
    ids: HashMap<ChannelId, u16>,
    pending_opens: Vec<(ChannelId, oneshot::Sender<Option<u16>>)>,
}

impl PeerTask {
    pub(crate) fn new(
        rtc: Rtc,
        local: SocketAddr,
        out: Outbound,
        events: mpsc::Sender<ChannelEvent>,
    ) -> Self {
        PeerTask {
            rtc,
            local,
            out,
            events,
            ids: HashMap::new(),
            pending_opens: Vec::new(),
        }
    }

    pub(crate) async fn run(
        mut self,
        mut inbox: mpsc::Receiver<(Instant, SocketAddr, Bytes)>,
        mut commands: mpsc::Receiver<ChannelCommand>,
    ) {
        let handshake_deadline = Instant::now() + limits::WEBRTC_HANDSHAKE_TIMEOUT;
        let mut connected = false;
        loop {
            let Some(deadline) = self.drain(&mut connected).await else {
                break;
            };
            if !connected && Instant::now() >= handshake_deadline {
                tracing::debug!("WebRTC peer did not connect in time; reaped");
                break;
            }
            let wake = deadline.min(if connected {
                deadline
            } else {
                handshake_deadline
            });
            tokio::select! {
                packet = inbox.recv() => {
                    let Some((at, from, data)) = packet else { break };
                    let Ok(contents) = data.as_ref().try_into() else { continue };
                    let input = Input::Receive(at, Receive {
                        proto: Protocol::Udp,
                        source: from,
                        destination: self.local,
                        contents,
                    });
                    if self.rtc.accepts(&input) {
                        let _ = self.rtc.handle_input(input);
                    }
                }
                command = commands.recv() => match command {
                    Some(command) => {
                        if !self.apply(command) {
                            break;
                        }
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                    let _ = self.rtc.handle_input(Input::Timeout(Instant::now()));
                }
            }
            if !self.rtc.is_alive() {
                let _ = self.drain(&mut connected).await;
                break;
            }
        }
        let _ = self.events.send(ChannelEvent::Disconnected).await;
    }

    /// Applies a command; false ends the peer.
    fn apply(&mut self, command: ChannelCommand) -> bool {
        match command {
            ChannelCommand::Send { sid, data, done } => {
                let id = self.ids.iter().find(|(_, s)| **s == sid).map(|(id, _)| *id);
                let accepted = id
                    .and_then(|id| self.rtc.channel(id))
                    .and_then(|mut ch| ch.write(true, &data).ok())
                    .unwrap_or(false);
                let _ = done.send(accepted);
            }
            ChannelCommand::Open { label, done } => {
                let id = self
                    .rtc
                    .direct_api()
                    .create_data_channel(peer::stream_channel(label));
                self.pending_opens.push((id, done));
            }
            ChannelCommand::Close { sid } => {
                if let Some(id) = self.ids.iter().find(|(_, s)| **s == sid).map(|(id, _)| *id) {
                    self.rtc.direct_api().close_data_channel(id);
                }
            }
            ChannelCommand::Disconnect => {
                self.rtc.disconnect();
                return false;
            }
        }
        true
    }

    /// Drains outputs until the next timeout; `None` when the peer is over.
    async fn drain(&mut self, connected: &mut bool) -> Option<Instant> {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => return Some(at),
                Ok(Output::Transmit(t)) => {
                    self.out.send(&t.contents, t.destination).await;
                }
                Ok(Output::Event(event)) => {
                    let event = match event {
                        Event::Connected => {
                            *connected = true;
                            ChannelEvent::Connected
                        }
                        Event::ChannelOpen(id, label) => {
                            let sid = self
                                .rtc
                                .direct_api()
                                .sctp_stream_id_by_channel_id(id)
                                .unwrap_or(u16::MAX);
                            self.ids.insert(id, sid);
                            if let Some(i) = self.pending_opens.iter().position(|(p, _)| *p == id) {
                                let (_, done) = self.pending_opens.swap_remove(i);
                                let _ = done.send(Some(sid));
                            }
                            ChannelEvent::Open { sid, label }
                        }
                        Event::ChannelData(d) => match self.ids.get(&d.id) {
                            Some(&sid) => ChannelEvent::Message {
                                sid,
                                data: Bytes::from(d.data),
                            },
                            None => continue,
                        },
                        Event::ChannelBufferedAmountLow(id) => match self.ids.get(&id) {
                            Some(&sid) => ChannelEvent::Writable { sid },
                            None => continue,
                        },
                        Event::ChannelClose(id) => match self.ids.remove(&id) {
                            Some(sid) => ChannelEvent::Closed { sid },
                            None => continue,
                        },
                        _ => continue,
                    };
                    // Bounded: a consumer that does not read stalls this peer, not others.
                    if self.events.send(event).await.is_err() {
                        return None;
                    }
                }
                Err(err) => {
                    tracing::debug!(%err, "WebRTC peer failed");
                    return None;
                }
            }
        }
    }
}
