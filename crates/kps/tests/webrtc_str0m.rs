//! str0m as KPS's WebRTC transport (spec §6, §7, §16.3), before the engine is wired in: an
//! ICE-lite server and a controlling client, both set up through str0m's direct API (no SDP),
//! over real loopback UDP sockets. Same credentials on both halves (spec §6.1), the server
//! presents the KPS identity certificate, the client pins its fingerprint to the certhash.
//!
//! What this establishes: DTLS + SCTP come up; the negotiated channels 0 and 1 open on both
//! sides; a DCEP channel opened by the client arrives at the server (even id) and echoes; a
//! client pinned to another certhash never connects.
#![cfg(feature = "webrtc")]

mod rtc_peer;
use std::time::{Duration, Instant};

use keyline_kps::Identity;
use rtc_peer::*;

#[test]
fn a_pinned_client_connects_opens_a_stream_channel_and_echoes() {
    let identity = Identity::generate().unwrap();
    let digest = sha256(identity.cert_der());
    let mut srv = server(&identity, "0123456789abcdef");
    let mut cli = client(&digest, "0123456789abcdef", srv.addr);
    let up = run(&mut cli, &mut srv, Duration::from_secs(10), |c, s| {
        c.connected && s.connected && c.opened.len() >= 2 && s.opened.len() >= 2
    });
    assert!(up, "client {:?} / server {:?}", cli.opened, srv.opened);
    let mut reserved: Vec<u16> = srv.opened.iter().map(|(sid, _)| *sid).collect();
    reserved.sort();
    assert_eq!(
        reserved,
        [0, 1],
        "negotiated channels 0 and 1 open on the server"
    );

    // The client opens a stream channel (DCEP); the server sees it with an even id.
    open_and_write(&mut cli, Some(&mut srv), "kps-1", b"hello kps");
    let opened = run(&mut cli, &mut srv, Duration::from_secs(5), |_, s| {
        s.opened.len() >= 3
    });
    assert!(opened, "server saw {:?}", srv.opened);
    let (sid, _) = srv.opened[2].clone();
    assert_eq!(sid % 2, 0, "client-opened stream ids are even (RFC 8832)");
    assert!(run(&mut cli, &mut srv, Duration::from_secs(5), |_, s| !s
        .data
        .is_empty()));
    assert_eq!(srv.data[0], (sid, b"hello kps".to_vec()));
    let back = srv.channel_by_sid(sid).unwrap();
    assert!(
        srv.rtc
            .channel(back)
            .unwrap()
            .write(true, b"hello kps")
            .unwrap()
    );
    srv.drain();
    assert!(run(&mut cli, &mut srv, Duration::from_secs(5), |c, _| !c
        .data
        .is_empty()));
    assert_eq!(cli.data[0].1, b"hello kps");

    // Control channel 0 carries data both ways too.
    let control = srv.channel_by_sid(0).unwrap();
    assert!(
        srv.rtc
            .channel(control)
            .unwrap()
            .write(true, &[0x05; 26])
            .unwrap()
    );
    srv.drain();
    assert!(run(&mut cli, &mut srv, Duration::from_secs(5), |c, _| c
        .data
        .iter()
        .any(|(s, _)| *s == 0)));
}

#[test]
fn a_client_pinned_to_another_certhash_never_connects() {
    let identity = Identity::generate().unwrap();
    let other = sha256(Identity::generate().unwrap().cert_der());
    let mut srv = server(&identity, "fedcba9876543210");
    let mut cli = client(&other, "fedcba9876543210", srv.addr);
    let up = run(&mut cli, &mut srv, Duration::from_secs(4), |c, _| {
        c.connected
    });
    assert!(!up, "a wrong pin must not connect");
    assert!(cli.opened.is_empty() && srv.data.is_empty());
}

/// Raw str0m data-channel throughput over loopback (no KPS framing or credit), the ceiling the
/// WebRTC transport works under. Not an assertion: prints Mbit/s. Run with
/// `cargo test --release -p keyline-kps --test webrtc_str0m -- --ignored --nocapture`.
#[test]
#[ignore = "measurement"]
fn raw_channel_throughput() {
    let identity = Identity::generate().unwrap();
    let digest = sha256(identity.cert_der());
    let mut srv = server(&identity, "00112233aabbccdd");
    let mut cli = client(&digest, "00112233aabbccdd", srv.addr);
    assert!(run(&mut cli, &mut srv, Duration::from_secs(10), |c, s| {
        c.connected && s.connected && c.opened.len() >= 2 && s.opened.len() >= 2
    }));
    let stream = open_and_write(&mut cli, Some(&mut srv), "bulk", b"x");
    assert!(run(&mut cli, &mut srv, Duration::from_secs(5), |_, s| s
        .opened
        .len()
        >= 3));
    let chunk = vec![0x42u8; 16 * 1024];
    let total: usize = 64 << 20;
    let (mut sent, started) = (0usize, Instant::now());
    let mut received = 0usize;
    while received < total && started.elapsed() < Duration::from_secs(60) {
        while sent < total
            && cli
                .rtc
                .channel(stream)
                .unwrap()
                .write(true, &chunk)
                .unwrap()
        {
            sent += chunk.len();
            cli.drain();
        }
        cli.drain();
        cli.pump();
        srv.pump();
        received += srv.data.drain(..).map(|(_, d)| d.len()).sum::<usize>();
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "raw str0m channel: {} MiB in {secs:.2} s = {:.0} Mbit/s",
        received >> 20,
        received as f64 * 8.0 / secs / 1e6
    );
    assert_eq!(received, total + 1, "the opening byte and the bulk");
}
