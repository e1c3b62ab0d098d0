//! Dialing a KPS address over WebRTC from Rust (spec §6.2, §6.3): a fresh ufrag, the ice-pwd
//! derived from the certhash, full ICE as the controlling agent towards the address, DTLS
//! active with the server's certificate pinned to the certhash.
//!
//! [`dial_channels`] returns the peer once ICE, DTLS and SCTP are up and both reserved
//! channels are open; the wire-v1 engine runs on top of it. A wrong certhash derives the wrong
//! pwd and the wrong fingerprint: the server never answers, and the dial ends at its deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::peer::{self, CONTROL_CHANNEL, Credentials, DATAGRAM_CHANNEL};
use super::server::{ChannelEvent, Outbound, PeerTask, RtcPeer, ice_pwd};
use crate::error::{Code, Error, Result};
use crate::{Address, limits};

/// A new client ufrag: 8 random bytes as 16 lower-case hex characters (spec §6.1).
pub fn new_ufrag() -> Result<String> {
    let mut raw = [0u8; 8];
    getrandom::fill(&mut raw).map_err(|_| Error::InvalidInput("no randomness".into()))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// Dials `address` over WebRTC; waits at most `timeout` for the reserved channels to open.
/// Events already seen while waiting (`Connected`, the two `Open`s) are consumed.
pub async fn dial_channels(address: &Address, timeout: Duration) -> Result<RtcPeer> {
    let server = address.socket_addr();
    let certhash = address.certhash();
    let digest = *certhash.digest();
    let bind = if server.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|e| Error::io("binding the WebRTC client socket", e))?;
    // The host candidate must be a concrete address: connect() picks the route's source.
    socket
        .connect(server)
        .await
        .map_err(|e| Error::io("routing to the server", e))?;
    let local = socket
        .local_addr()
        .map_err(|e| Error::io("reading the local address", e))?;
    let socket = Arc::new(socket);
    let ufrag = new_ufrag()?;
    let credentials = Credentials {
        pwd: ice_pwd(&digest, &ufrag),
        ufrag: ufrag.clone(),
    };
    let rtc = peer::client_rtc(&digest, &credentials, local, server, Instant::now())?;
    let (inbox_tx, inbox_rx) = mpsc::channel(limits::WEBRTC_PEER_INBOX);
    let (events_tx, mut events) = mpsc::channel(limits::WEBRTC_PEER_EVENTS);
    let (commands, commands_rx) = mpsc::channel(limits::WEBRTC_PEER_COMMANDS);
    let reader = {
        let socket = Arc::clone(&socket);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok(n) = socket.recv(&mut buf).await {
                let packet = (Instant::now(), server, Bytes::copy_from_slice(&buf[..n]));
                if inbox_tx.send(packet).await.is_err() {
                    break;
                }
            }
        })
    };
    tokio::spawn(async move {
        PeerTask::new(rtc, local, Outbound::Socket(socket), events_tx)
            .run(inbox_rx, commands_rx)
            .await;
        reader.abort();
    });
    let ready = async {
        let (mut connected, mut control, mut datagrams) = (false, false, false);
        while !(connected && control && datagrams) {
            match events.recv().await {
                Some(ChannelEvent::Connected) => connected = true,
                Some(ChannelEvent::Open { sid, .. }) if sid == CONTROL_CHANNEL => control = true,
                Some(ChannelEvent::Open { sid, .. }) if sid == DATAGRAM_CHANNEL => {
                    datagrams = true;
                }
                Some(ChannelEvent::Disconnected) | None => return false,
                Some(_) => {}
            }
        }
        true
    };
    match tokio::time::timeout(timeout, ready).await {
        Ok(true) => Ok(RtcPeer {
            ufrag,
            remote: server,
            events,
            commands,
        }),
        Ok(false) => {
            let _ = commands.try_send(super::server::ChannelCommand::Disconnect);
            // The peer ended before it was up (ICE or DTLS failed, e.g. a pin mismatch).
            Err(Error::local(Code::NetworkError))
        }
        Err(_) => {
            let _ = commands.try_send(super::server::ChannelCommand::Disconnect);
            Err(Error::Timeout {
                what: "WebRTC dial (ICE, DTLS, SCTP)",
                after: timeout,
            })
        }
    }
}
