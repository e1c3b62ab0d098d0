//! The WebRTC side of a real listener (spec §4, §6.4, §6.5): one UDP port serves a QUIC client
//! and a WebRTC client at the same time; the STUN gate admits a peer only when its first
//! Binding request verifies under the derived ice-pwd, and answers nothing otherwise.
#![cfg(feature = "webrtc")]

use std::sync::Arc;
use std::time::Duration;

use keyline_kps::webrtc::server::{gate, ice_pwd};
use keyline_kps::{Code, Connection, Identity, Listener, Transport, dial_webrtc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

async fn echo_once(conn: &Connection, payload: &[u8]) -> Vec<u8> {
    let mut stream = conn.open_stream().await.unwrap();
    stream.write_all(payload).await.unwrap();
    stream.close_write().unwrap();
    let mut back = Vec::new();
    stream.read_to_end(&mut back).await.unwrap();
    back
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_and_webrtc_clients_share_the_port() {
    let identity = Identity::generate().unwrap();
    let listener = Arc::new(Listener::bind("127.0.0.1:0", identity).unwrap());
    let address = listener.address(None);
    let server = Arc::clone(&listener);
    let accepted = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let conn = server.accept().await.unwrap();
            seen.push((conn.transport(), conn.remote_address()));
            tokio::spawn(keyline_kps::echo::serve_connection(conn));
        }
        seen
    });
    let rtc_address = address;
    let webrtc = tokio::spawn(async move {
        let conn = dial_webrtc(&rtc_address).await.unwrap();
        assert_eq!(conn.transport(), Transport::WebRtc);
        assert_eq!(conn.remote_address(), rtc_address.socket_addr());
        let back = echo_once(&conn, b"via-webrtc").await;
        conn.close(Code::None);
        back
    });
    let conn = keyline_kps::dial(&address).await.unwrap();
    assert_eq!(echo_once(&conn, b"via-quic").await, b"via-quic");
    conn.close(Code::None);
    assert_eq!(webrtc.await.unwrap(), b"via-webrtc");
    let mut seen = accepted.await.unwrap();
    seen.sort_by_key(|(t, _)| *t == Transport::WebRtc);
    assert_eq!(seen[0].0, Transport::Quic);
    assert_eq!(seen[1].0, Transport::WebRtc);
    for (_, remote) in seen {
        assert!(remote.ip().is_loopback() && remote.port() != 0, "{remote}");
    }
}

#[tokio::test]
async fn a_stun_probe_without_the_certhash_gets_silence_and_allocates_nothing() {
    let identity = Identity::generate().unwrap();
    let listener = Listener::bind("127.0.0.1:0", identity).unwrap();
    let addr = listener.local_addr();
    let probe = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // A well-formed Binding request whose integrity key is the pwd of another certhash.
    let vector = hex::decode(STUN_VECTOR).unwrap();
    for _ in 0..5 {
        probe.send_to(&vector, addr).await.unwrap();
    }
    let mut buf = [0u8; 2048];
    let answer = tokio::time::timeout(Duration::from_secs(1), probe.recv_from(&mut buf)).await;
    assert!(answer.is_err(), "the listener answered a probe");
    assert!(!listener.demux().is_webrtc_peer(probe.local_addr().unwrap()));
    let none = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(none.is_err(), "no connection was admitted");
}

/// A wrong certhash ends at the dial deadline with no connection: the gate stays silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webrtc_dial_with_a_wrong_certhash_times_out() {
    let listener = Listener::bind("127.0.0.1:0", Identity::generate().unwrap()).unwrap();
    let addr = listener.local_addr();
    let other = Identity::generate().unwrap();
    let wrong = keyline_kps::Address::new(addr.ip(), addr.port(), other.certhash()).unwrap();
    let mut config = keyline_kps::Config::default();
    config.dial_timeout = Duration::from_secs(3);
    let started = std::time::Instant::now();
    let err = keyline_kps::dial_webrtc_with(&wrong, &config)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!listener.demux().is_webrtc_peer(addr));
}
