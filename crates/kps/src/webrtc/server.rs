//! The WebRTC side of a listener (spec §4.1, §4.2, §6.4, §6.5): it consumes the demux inbox
//! of the listener's one UDP socket, admits a new client only after its first STUN Binding
//! request verifies under the ice-pwd derived from the certhash, and runs one task per peer
//! that owns the peer's `Rtc` (read → `handle_input` → drain `poll_output` → write).
//!
//! Each admitted peer gets a [`Connection`] whose driver task runs the wire-v1 engine over
//! the peer's data channels; the connection is surfaced once established.
//!
//! Bounds: peers in the table ([`crate::limits::MAX_WEBRTC_PEERS`]), addresses per peer,
//! per-source new-ufrag rate, per-peer inbox (drop and count when full), handshake deadline
//! (a peer that does not connect in time is reaped).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

use super::connection::{self, Connection, Outbound, Packet};
use super::peer::{self, Credentials};
use super::proto::control::Limits;
use super::proto::engine::Side;
use crate::Identity;
use crate::demux::{Demux, Route};
use crate::limits;

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
    inbox: mpsc::Sender<Packet>,
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

/// Serves WebRTC on a listener's socket until the task is aborted; connections arrive on the
/// returned queue once established (HELLO both ways, spec §9.2). `wire_limits` are the credit we
/// grant each peer.
pub(crate) fn spawn(
    demux: Arc<Demux>,
    identity: Identity,
    local: SocketAddr,
    wire_limits: Limits,
) -> (mpsc::Receiver<Connection>, tokio::task::JoinHandle<()>) {
    let (admitted, connections) = mpsc::channel(limits::WEBRTC_ACCEPT_BACKLOG);
    let task = tokio::spawn(route(demux, identity, local, wire_limits, admitted));
    (connections, task)
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
    wire_limits: Limits,
    admitted: mpsc::Sender<Connection>,
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
        if !admit_rate(&table, packet.from.ip(), now) {
            continue;
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
        let (connection, driver) = connection::new(
            Side::Server,
            rtc,
            local,
            packet.from,
            Outbound::Demux(Arc::clone(&demux)),
            wire_limits,
        );
        let cleanup = {
            let table = Arc::clone(&table);
            let demux = Arc::clone(&demux);
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
            driver.run(inbox_rx).await;
            cleanup();
        });
        // Surfaced once established; a peer that never gets there is reaped by the engine's
        // HELLO deadline (15 s), which also bounds ICE and DTLS.
        let admitted = admitted.clone();
        tokio::spawn(async move {
            if connection.established().await.is_ok() && admitted.try_send(connection).is_err() {
                tracing::debug!("WebRTC accept backlog full; connection dropped");
            }
        });
    }
}

/// The table bound and the per-source new-ufrag rate (spec §6.5 step 4).
fn admit_rate(table: &Mutex<Table>, ip: IpAddr, now: Instant) -> bool {
    let mut t = lock(table);
    if t.by_ufrag.len() >= limits::MAX_WEBRTC_PEERS {
        return false;
    }
    let slot = t.rate.entry(ip).or_insert((now, 0));
    if now.duration_since(slot.0) >= Duration::from_secs(1) {
        *slot = (now, 0);
    }
    if slot.1 >= limits::WEBRTC_NEW_UFRAGS_PER_SECOND {
        return false;
    }
    slot.1 += 1;
    if t.rate.len() > limits::MAX_WEBRTC_PEERS {
        t.rate
            .retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(1));
    }
    true
}
