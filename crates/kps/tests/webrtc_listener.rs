//! The WebRTC side of a real listener (spec §4, §6.4, §6.5): one UDP port serves a QUIC client
//! and a WebRTC client at the same time; the STUN gate admits a peer only when its first
//! Binding request verifies under the derived ice-pwd, and answers nothing otherwise.
#![cfg(feature = "webrtc")]

mod rtc_peer;

use std::sync::Arc;
use std::time::Duration;

use keyline_kps::webrtc::server::{self, ChannelCommand, ChannelEvent, gate, ice_pwd};
use keyline_kps::{Code, Identity, Listener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// The spec's STUN vector (kps.md §6.1): a Binding request for ufrag `abcd1234`, integrity
/// under the ice-pwd of digest 32 × 0x11.
const STUN_VECTOR: &str = "000100502112a442000102030405060708090a0b0006001161626364313233343a6162636431323334000000002400046e7f1eff802a00080102030405060708002500000008001407f31b8fb93eddc747ec9ba99bd394da5568ab58802800040b4a5d78";

#[test]
fn ice_pwd_vectors() {
    for (digest, ufrag, pwd) in [
        (
            [0x11; 32],
            "abcd1234",
            "RRs7qx3BRfTDtuvZU0gi+pWO23X9mRHwsjVL+Q3WnlM",
        ),
        (
            [0x11; 32],
            "abcd1235",
            "ygSw0HT9LDnjxSL0LS/Jdm+yaRYvwQZ4uWmSNYyNqXw",
        ),
        (
            [0x12; 32],
            "abcd1234",
            "qTlpLCCXDvT51pEPOfxEihx73lU4/vp6iyWxSI2cht0",
        ),
        (
            [0x00; 32],
            "test",
            "dn9pWWCBP6fiDbQLjNcQVFAYWVSdPNzYf5JQ8JzVSso",
        ),
    ] {
        assert_eq!(ice_pwd(&digest, ufrag), pwd, "{ufrag}");
    }
}

#[test]
fn the_gate_admits_the_stun_vector_only_under_its_pwd() {
    let vector = hex::decode(STUN_VECTOR).unwrap();
    assert_eq!(vector.len(), 100);
    assert_eq!(gate(&vector, &[0x11; 32]).as_deref(), Some("abcd1234"));
    assert_eq!(
        gate(&vector, &[0x12; 32]),
        None,
        "another certhash derives another pwd"
    );
    for i in 0..vector.len() {
        let mut flipped = vector.clone();
        flipped[i] ^= 0x01;
        assert_ne!(
            gate(&flipped, &[0x11; 32]).as_deref(),
            Some("abcd1234"),
            "a flipped bit at {i} still verified"
        );
    }
    assert_eq!(gate(&vector[..60], &[0x11; 32]), None);
    assert_eq!(gate(b"", &[0x11; 32]), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_and_webrtc_clients_share_the_port() {
    let identity = Identity::generate().unwrap();
    let listener = Arc::new(Listener::bind("127.0.0.1:0", identity.clone()).unwrap());
    let addr = listener.local_addr();
    let address = listener.address(None);
    let mut peers = server::spawn(Arc::clone(listener.demux()), identity.clone(), addr);
    // A raw channel echo on the WebRTC side.
    let echo = tokio::spawn(async move {
        let mut peer = peers.recv().await.expect("a WebRTC peer");
        let remote = peer.remote;
        while let Some(event) = peer.events.recv().await {
            if let ChannelEvent::Message { sid, data } = &event {
                let (sid, data) = (*sid, data.clone());
                let (done, accepted) = oneshot::channel();
                peer.commands
                    .send(ChannelCommand::Send { sid, data, done })
                    .await
                    .unwrap();
                assert!(accepted.await.unwrap());
                // One echo is the test; then the server ends the peer.
                peer.commands
                    .send(ChannelCommand::Disconnect)
                    .await
                    .unwrap();
            }
            if matches!(event, ChannelEvent::Disconnected) {
                break;
            }
        }
        remote
    });
    // The QUIC echo on the same listener.
    let quic = Arc::clone(&listener);
    tokio::spawn(async move { keyline_kps::echo::serve(&quic).await });

    let digest = *identity.certhash().digest();
    let webrtc = tokio::task::spawn_blocking(move || {
        let mut cli = rtc_peer::client(&digest, "a1b2c3d4e5f60718", addr);
        assert!(
            rtc_peer::run_one(&mut cli, Duration::from_secs(10), |c| c.connected
                && c.opened.len() >= 2),
            "the WebRTC client connected to the listener's port"
        );
        rtc_peer::open_and_write(&mut cli, None, "kps-1", b"over webrtc");
        assert!(rtc_peer::run_one(&mut cli, Duration::from_secs(5), |c| !c
            .data
            .is_empty()));
        cli.data[0].1.clone()
    });
    // Meanwhile a QUIC client echoes on the same port.
    let conn = keyline_kps::dial(&address).await.unwrap();
    let mut stream = conn.open_stream().await.unwrap();
    stream.write_all(b"over quic").await.unwrap();
    stream.close_write().unwrap();
    let mut back = Vec::new();
    stream.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, b"over quic");
    conn.close(Code::None);

    assert_eq!(webrtc.await.unwrap(), b"over webrtc");
    listener.close(Code::None);
    let remote = tokio::time::timeout(Duration::from_secs(20), echo)
        .await
        .expect("the peer's task ends after a Disconnect command")
        .unwrap();
    assert!(remote.ip().is_loopback());
}

#[tokio::test]
async fn a_stun_probe_without_the_certhash_gets_silence_and_allocates_nothing() {
    let identity = Identity::generate().unwrap();
    let listener = Listener::bind("127.0.0.1:0", identity.clone()).unwrap();
    let addr = listener.local_addr();
    let mut peers = server::spawn(Arc::clone(listener.demux()), identity, addr);
    let probe = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // A well-formed Binding request whose integrity key is the pwd of another certhash.
    let vector = hex::decode(STUN_VECTOR).unwrap();
    for _ in 0..5 {
        probe.send_to(&vector, addr).await.unwrap();
    }
    let mut buf = [0u8; 2048];
    let answer = tokio::time::timeout(Duration::from_secs(1), probe.recv_from(&mut buf)).await;
    assert!(answer.is_err(), "the listener answered a probe");
    assert!(peers.try_recv().is_err(), "no peer was admitted");
    assert!(!listener.demux().is_webrtc_peer(probe.local_addr().unwrap()));
}

/// The tokio client: dial, open a stream channel, echo through the listener; a wrong
/// certhash ends at the dial deadline with no connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_dials_the_listener_and_a_wrong_certhash_fails() {
    use keyline_kps::webrtc::client::dial_channels;
    let identity = Identity::generate().unwrap();
    let listener = Listener::bind("127.0.0.1:0", identity.clone()).unwrap();
    let addr = listener.local_addr();
    let mut peers = server::spawn(Arc::clone(listener.demux()), identity, addr);
    tokio::spawn(async move {
        while let Some(mut peer) = peers.recv().await {
            tokio::spawn(async move {
                while let Some(event) = peer.events.recv().await {
                    if let ChannelEvent::Message { sid, data } = event {
                        let (done, _) = oneshot::channel();
                        let _ = peer
                            .commands
                            .send(ChannelCommand::Send { sid, data, done })
                            .await;
                    }
                }
            });
        }
    });

    let mut conn = dial_channels(&listener.address(None), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(conn.remote, addr);
    assert_eq!(conn.ufrag.len(), 16);
    let (done, opened) = oneshot::channel();
    conn.commands
        .send(ChannelCommand::Open {
            label: "kps-1".into(),
            done,
        })
        .await
        .unwrap();
    let sid = opened.await.unwrap().expect("the stream channel opened");
    assert_eq!(sid % 2, 0, "client-opened ids are even");
    let (done, accepted) = oneshot::channel();
    conn.commands
        .send(ChannelCommand::Send {
            sid,
            data: bytes::Bytes::from_static(b"ping"),
            done,
        })
        .await
        .unwrap();
    assert!(accepted.await.unwrap());
    loop {
        match tokio::time::timeout(Duration::from_secs(5), conn.events.recv()).await {
            Ok(Some(ChannelEvent::Message { sid: s, data })) => {
                assert_eq!((s, data.as_ref()), (sid, &b"ping"[..]));
                break;
            }
            Ok(Some(_)) => continue,
            other => panic!("no echo: {other:?}"),
        }
    }

    // Another identity's certhash at the same ip:port: the gate stays silent.
    let other = Identity::generate().unwrap();
    let wrong = keyline_kps::Address::new(addr.ip(), addr.port(), other.certhash()).unwrap();
    let err = dial_channels(&wrong, Duration::from_secs(3))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Timeout, "{err}");
}
