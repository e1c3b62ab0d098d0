//! KPS streams and datagrams over WebRTC, Rust client ↔ Rust listener on loopback (spec §18
//! A5–A11, C28–C32, D37–D38): echo, several streams, payloads across the stream window,
//! datagrams and `too-large`, reset / cancel / close codes, backpressure against a reader that
//! does not read, and the stream limit.
#![cfg(feature = "webrtc")]

use std::sync::Arc;
use std::time::Duration;

use keyline_kps::{Code, Connection, Error, Identity, Listener, Transport, dial_webrtc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A listener whose WebRTC connections go to `serve`; returns the client's connection.
async fn pair<F, Fut>(serve: F) -> (Connection, Arc<Listener>)
where
    F: FnOnce(Connection) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = Arc::new(Listener::bind("127.0.0.1:0", Identity::generate().unwrap()).unwrap());
    let address = listener.address(None);
    let server = Arc::clone(&listener);
    tokio::spawn(async move {
        let conn = server.accept().await.unwrap();
        assert_eq!(conn.transport(), Transport::WebRtc);
        serve(conn).await;
    });
    let conn = dial_webrtc(&address).await.unwrap();
    (conn, listener)
}

async fn echo_pair() -> (Connection, Arc<Listener>) {
    pair(keyline_kps::echo::serve_connection).await
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

/// Writes `data` and reads the echo concurrently (the echo would stall a writer that does not
/// read once both windows are full).
async fn echo(conn: &Connection, data: &[u8]) -> Vec<u8> {
    let stream = conn.open_stream().await.unwrap();
    let (mut recv, mut send) = stream.into_split();
    let data = data.to_vec();
    let writer = tokio::spawn(async move {
        send.write_all(&data).await.unwrap();
        send.close_write().unwrap();
        send
    });
    let mut back = Vec::new();
    recv.read_to_end(&mut back).await.unwrap();
    drop(writer.await.unwrap());
    back
}

fn kps_error(e: std::io::Error) -> Error {
    Error::from_io(e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_echo_and_remote_addresses() {
    let listener = Arc::new(Listener::bind("127.0.0.1:0", Identity::generate().unwrap()).unwrap());
    let address = listener.address(None);
    let server = Arc::clone(&listener);
    let accepted = tokio::spawn(async move {
        let conn = server.accept().await.unwrap();
        let remote = conn.remote_address();
        tokio::spawn(keyline_kps::echo::serve_connection(conn));
        remote
    });
    let conn = dial_webrtc(&address).await.unwrap();
    assert_eq!(conn.remote_address(), address.socket_addr());
    assert_eq!(echo(&conn, b"hello-webrtc").await, b"hello-webrtc");
    let remote = accepted.await.unwrap();
    assert!(
        !remote.ip().is_unspecified() && remote.port() != 0,
        "{remote}"
    );
    conn.close(Code::None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_four_concurrent_streams() {
    let (conn, _listener) = echo_pair().await;
    let mut tasks = Vec::new();
    for i in 0..4u8 {
        let conn = conn.clone();
        tasks.push(tokio::spawn(async move {
            let data = pattern(100_000 + usize::from(i) * 777, i);
            assert_eq!(echo(&conn, &data).await, data, "stream {i}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_large_payload_crosses_the_stream_window() {
    let (conn, _listener) = echo_pair().await;
    // 1.5 MiB: more than the 1 MiB stream window, so credit flows back in both directions.
    let data = pattern(3 * 512 * 1024, 7);
    let back = echo(&conn, &data).await;
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echoed 1572864 bytes byte-exact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_datagrams_round_trip_and_too_large_is_refused() {
    let (conn, _listener) = echo_pair().await;
    let received = {
        let conn = conn.clone();
        tokio::spawn(async move { conn.recv_datagram().await })
    };
    // Datagrams are unreliable: retry every 100 ms for up to 10 s.
    let mut got = None;
    for _ in 0..100 {
        conn.send_datagram(&b"ping-datagram"[..]).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        if received.is_finished() {
            got = Some(received.await.unwrap().unwrap());
            break;
        }
    }
    assert_eq!(got.as_deref(), Some(&b"ping-datagram"[..]));
    assert_eq!(conn.max_datagram_size(), 1200);
    for size in [4096, 1300] {
        match conn.send_datagram(vec![0u8; size]) {
            Err(Error::DatagramTooLarge { size: s, max }) => {
                assert_eq!((s, max), (size, 1200));
            }
            other => panic!("{size} bytes: {other:?}"),
        }
    }
    conn.send_datagram(vec![0u8; 1200]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_reset_write_is_an_error_with_its_code_not_eof() {
    let (conn, _listener) = pair(|conn| async move {
        let mut stream = conn.accept_stream().await.unwrap();
        let mut first = [0u8; 4];
        stream.read_exact(&mut first).await.unwrap();
        stream.reset_write(Code::Reset);
        conn.closed().await;
    })
    .await;
    let mut stream = conn.open_stream().await.unwrap();
    stream.write_all(b"ping").await.unwrap();
    let mut buf = Vec::new();
    let err = kps_error(stream.read_to_end(&mut buf).await.unwrap_err());
    assert_eq!((err.code(), err.is_remote()), (Code::Reset, true), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_cancel_read_stops_the_writer() {
    let (conn, _listener) = pair(|conn| async move {
        let mut stream = conn.accept_stream().await.unwrap();
        let mut first = [0u8; 1];
        stream.read_exact(&mut first).await.unwrap();
        stream.cancel_read(Code::Cancelled);
        conn.closed().await;
    })
    .await;
    let mut stream = conn.open_stream().await.unwrap();
    let chunk = vec![9u8; 16 * 1024];
    let outcome = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Err(e) = stream.write_all(&chunk).await {
                return kps_error(e);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the writer failed within 5 s");
    assert_eq!(
        (outcome.code(), outcome.is_remote()),
        (Code::Cancelled, true),
        "{outcome}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_connection_close_code_reaches_the_peer() {
    let (server_side, rx) = tokio::sync::oneshot::channel();
    let (conn, _listener) = pair(|conn| async move {
        let _ = server_side.send(conn.closed().await);
    })
    .await;
    conn.close(Code::ProtocolError);
    let seen = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .expect("the server saw the close within 5 s")
        .unwrap();
    assert_eq!((seen.code(), seen.is_remote()), (Code::ProtocolError, true));
    let local = conn.closed().await;
    assert_eq!(
        (local.code(), local.is_remote()),
        (Code::ProtocolError, false)
    );
    let err = conn.open_stream().await.unwrap_err();
    assert_eq!(err.code(), Code::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_parked_reads_fail_on_local_close_never_eof() {
    let (conn, _listener) = pair(|conn| async move {
        let _s = conn.accept_stream().await;
        conn.closed().await;
    })
    .await;
    let mut stream = conn.open_stream().await.unwrap();
    stream.write_all(b"x").await.unwrap();
    let (mut recv, _send) = stream.into_split();
    let parked = tokio::spawn(async move {
        let mut buf = [0u8; 8];
        recv.read(&mut buf).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!parked.is_finished(), "the read is parked");
    conn.close(Code::None);
    let err = kps_error(parked.await.unwrap().unwrap_err());
    assert_eq!((err.code(), err.is_remote()), (Code::Closed, false));
}

/// A10: a receiver that does not read holds a writer of window + 64 KiB; reading then
/// completes the write with the bytes intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_backpressure_against_a_non_reading_receiver() {
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let (result_tx, result) = tokio::sync::oneshot::channel();
    let (conn, _listener) = pair(|conn| async move {
        let mut stream = conn.accept_stream().await.unwrap();
        let _ = wait.await;
        let mut all = Vec::new();
        stream.read_to_end(&mut all).await.unwrap();
        let _ = result_tx.send(all);
        conn.closed().await;
    })
    .await;
    let data = pattern(1024 * 1024 + 64 * 1024, 3);
    let mut stream = conn.open_stream().await.unwrap();
    let writer = {
        let data = data.clone();
        tokio::spawn(async move {
            stream.write_all(&data).await.unwrap();
            stream.close_write().unwrap();
            stream
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !writer.is_finished(),
        "the writer is held by the receiver's window"
    );
    go.send(()).unwrap();
    let _stream = writer.await.unwrap();
    let got = result.await.unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes intact after backpressure");
}

/// A11: with the server's 100 streams open the 101st open waits; retiring one (both ends
/// closed, drained) lets it proceed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_stream_limit_blocks_and_retires() {
    let (conn, _listener) = pair(|conn| async move {
        let mut held = Vec::new();
        while let Ok(mut stream) = conn.accept_stream().await {
            let mut first = [0u8; 1];
            if stream.read_exact(&mut first).await.is_err() {
                continue;
            }
            if first[0] == 0xff {
                // The retiring stream: read to EOF and finish our half.
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest).await;
                let _ = stream.close_write();
                drop(stream);
            } else {
                held.push(stream);
            }
        }
    })
    .await;
    let mut streams = Vec::new();
    for i in 0..100 {
        let mut s = conn.open_stream().await.unwrap();
        s.write_all(&[if i == 0 { 0xff } else { 1 }]).await.unwrap();
        streams.push(s);
    }
    let opener = {
        let conn = conn.clone();
        tokio::spawn(async move { conn.open_stream().await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!opener.is_finished(), "the 101st open waits for a slot");
    let mut first = streams.remove(0);
    first.close_write().unwrap();
    let mut rest = Vec::new();
    first.read_to_end(&mut rest).await.unwrap();
    drop(first);
    let next = tokio::time::timeout(Duration::from_secs(10), opener)
        .await
        .expect("a retirement released a slot")
        .unwrap();
    assert!(next.is_ok());
}

/// One-way throughput over WebRTC (8 MiB), printed. Not an assertion. Run with
/// `cargo test --release -p keyline-kps --test webrtc_streams -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement"]
async fn webrtc_one_way_throughput() {
    let (done_tx, done) = tokio::sync::oneshot::channel();
    let (conn, listener) = pair(|conn| async move {
        let mut stream = conn.accept_stream().await.unwrap();
        let mut n = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf).await.unwrap() {
                0 => break,
                k => n += k,
            }
        }
        let _ = done_tx.send(n);
        conn.closed().await;
    })
    .await;
    let data = vec![7u8; 8 << 20];
    let started = std::time::Instant::now();
    let mut stream = conn.open_stream().await.unwrap();
    stream.write_all(&data).await.unwrap();
    stream.close_write().unwrap();
    let n = done.await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "webrtc one way: {} MiB in {secs:.2} s = {:.0} Mbit/s; demux drops {}",
        n >> 20,
        n as f64 * 8.0 / secs / 1e6,
        listener.demux().dropped()
    );
}
