//! The tokio layer over in-memory transports (spec checklist 16–21). Time is paused: the
//! deadlines fire without sleeping.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use keyline_shs::proto::ServerHandshake;
use keyline_shs::{
    ClientConfig, EphemeralKey, Error, Keypair, NetworkKey, ServerConfig, Step, accept, connect,
};
use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf, duplex,
};

/// A transport that records whether it was half-closed (a TCP FIN).
struct Recording {
    inner: DuplexStream,
    shut: Arc<AtomicBool>,
}

impl AsyncRead for Recording {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Recording {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shut.store(true, Ordering::SeqCst);
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn pair() -> (Keypair, Keypair) {
    (Keypair::from_seed(&[1; 32]), Keypair::from_seed(&[2; 32]))
}

fn payload(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

#[tokio::test]
async fn handshake_data_both_ways_and_both_goodbyes() {
    let (client_key, server_key) = pair();
    let (a, b) = duplex(8 * 1024);
    let server_pk = *server_key.public().as_bytes();
    let client_pk = *client_key.public();
    let server = tokio::spawn(async move {
        let config = ServerConfig::new(server_key);
        let (mut stream, tag) =
            accept(b, &config, |peer| async move { Some(*peer.as_bytes()) }).await?;
        assert_eq!(tag, *client_pk.as_bytes(), "authorize got the client's key");
        let mut got = Vec::new();
        stream
            .read_to_end(&mut got)
            .await
            .map_err(|e| Error::from_io(e, Step::BoxStream))?;
        // The client said goodbye; we can still write, then say goodbye ourselves.
        stream
            .write_all(&got)
            .await
            .map_err(|e| Error::from_io(e, Step::BoxStream))?;
        stream
            .write_all(&payload(10_000, 9))
            .await
            .map_err(|e| Error::from_io(e, Step::BoxStream))?;
        stream.close().await?;
        Ok::<_, Error>(got)
    });
    let stream = connect(a, ClientConfig::new(client_key, server_pk))
        .await
        .expect("handshake");
    assert_eq!(stream.peer().as_bytes(), &server_pk);
    let sent = [
        payload(0, 1),
        payload(1, 2),
        payload(4095, 3),
        payload(4096, 4),
        payload(4097, 5),
        payload(1 << 20, 6),
    ]
    .concat();
    let (mut reader, mut writer) = stream.split();
    let write = async {
        writer.write_all(&sent).await?;
        writer.shutdown().await?;
        Ok::<_, io::Error>(writer)
    };
    let read = async {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.map(|_| got)
    };
    let (writer, echoed) = tokio::join!(write, read);
    writer.expect("write");
    let echoed = echoed.expect("read to the server's goodbye");
    assert_eq!(echoed, [sent.clone(), payload(10_000, 9)].concat());
    assert_eq!(server.await.expect("join").expect("server"), sent);
}

#[tokio::test(start_paused = true)]
async fn silent_server_times_out_at_msg2() {
    let (client_key, server_key) = pair();
    let (a, _b) = duplex(1024);
    let started = tokio::time::Instant::now();
    let err = connect(
        a,
        ClientConfig::new(client_key, *server_key.public().as_bytes()),
    )
    .await
    .expect_err("silent peer");
    assert!(
        matches!(
            err,
            Error::Timeout {
                step: Step::Msg2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(started.elapsed(), keyline_shs::limits::HANDSHAKE_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn silent_client_times_out_at_msg1() {
    let (_, server_key) = pair();
    let (_a, b) = duplex(1024);
    let err = accept(b, &ServerConfig::new(server_key), |_| async { Some(()) })
        .await
        .expect_err("silent peer");
    assert!(
        matches!(
            err,
            Error::Timeout {
                step: Step::Msg1,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn trickling_peer_cannot_stretch_the_deadline() {
    let (client_key, server_key) = pair();
    let (a, mut b) = duplex(1024);
    let server_pk = *server_key.public().as_bytes();
    // An honest msg2, one byte per second: 64 s in all, far past the 10 s deadline.
    tokio::spawn(async move {
        let mut msg1 = [0u8; 64];
        b.read_exact(&mut msg1).await?;
        let server =
            ServerHandshake::new(NetworkKey::default(), server_key, EphemeralKey::generate());
        let (msg2, _next) = server.read_hello(&msg1).map_err(Error::into_io)?;
        for byte in msg2 {
            b.write_all(&[byte]).await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok::<_, io::Error>(b)
    });
    let started = tokio::time::Instant::now();
    let err = connect(a, ClientConfig::new(client_key, server_pk))
        .await
        .expect_err("trickle");
    assert!(
        matches!(
            err,
            Error::Timeout {
                step: Step::Msg2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn slow_authorize_is_a_denial_and_no_msg4_is_sent() {
    let (client_key, server_key) = pair();
    let (a, b) = duplex(1024);
    let server_pk = *server_key.public().as_bytes();
    let server = tokio::spawn(async move {
        accept(b, &ServerConfig::new(server_key), |_| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Some(())
        })
        .await
        .map(|_| ())
    });
    let client = connect(
        a,
        ClientConfig::new(client_key, server_pk).handshake_timeout(Duration::from_secs(30)),
    );
    let err = client.await.expect_err("denied");
    assert_eq!(err.code(), "server_closed_after_hello", "{err}");
    let server_err = server.await.expect("join").expect_err("server denies");
    assert_eq!(server_err.code(), "unauthorized");
}

#[tokio::test]
async fn denied_client_sees_the_server_close_after_its_hello() {
    let (client_key, server_key) = pair();
    let (a, b) = duplex(1024);
    let server_pk = *server_key.public().as_bytes();
    let server = tokio::spawn(async move {
        let mut called = 0;
        let result = accept(b, &ServerConfig::new(server_key), |_| {
            called += 1;
            async { None::<()> }
        })
        .await;
        (result.map(|_| ()), called)
    });
    let err = connect(a, ClientConfig::new(client_key, server_pk))
        .await
        .expect_err("denied");
    assert_eq!(err.code(), "server_closed_after_hello");
    let (result, called) = server.await.expect("join");
    assert_eq!(result.expect_err("denied").code(), "unauthorized");
    assert_eq!(called, 1, "authorize is called exactly once");
}

#[tokio::test]
async fn wrong_network_key_fails_at_msg1_and_the_client_sees_eof() {
    let (client_key, server_key) = pair();
    let (a, b) = duplex(1024);
    let server_pk = *server_key.public().as_bytes();
    let server = tokio::spawn(async move {
        let config = ServerConfig::new(server_key).network(NetworkKey([7; 32]));
        accept(b, &config, |_| async { Some(()) }).await.map(|_| ())
    });
    let err = connect(a, ClientConfig::new(client_key, server_pk))
        .await
        .expect_err("wrong net");
    assert!(
        matches!(err, Error::UnexpectedEof { step: Step::Msg2 }),
        "{err}"
    );
    assert_eq!(
        server.await.expect("join").expect_err("hmac").code(),
        "hmac"
    );
}

#[tokio::test]
async fn goodbye_is_not_followed_by_a_fin_until_the_peer_said_goodbye() {
    let (client_key, server_key) = pair();
    let (a, b) = duplex(64 * 1024);
    let shut = Arc::new(AtomicBool::new(false));
    let transport = Recording {
        inner: a,
        shut: shut.clone(),
    };
    let server_pk = *server_key.public().as_bytes();
    let server = tokio::spawn(async move {
        let (mut stream, ()) =
            accept(b, &ServerConfig::new(server_key), |_| async { Some(()) }).await?;
        let mut got = Vec::new();
        stream
            .read_to_end(&mut got)
            .await
            .map_err(|e| Error::from_io(e, Step::BoxStream))?;
        Ok::<_, Error>((stream, got))
    });
    let mut client = connect(transport, ClientConfig::new(client_key, server_pk))
        .await
        .expect("handshake");
    client.write_all(b"ping").await.expect("write");
    client.shutdown().await.expect("goodbye");
    assert!(client.goodbye_sent());
    assert!(
        !shut.load(Ordering::SeqCst),
        "no FIN while the peer has not said goodbye"
    );
    let (mut server_stream, got) = server.await.expect("join").expect("server");
    assert_eq!(got, b"ping");
    // After the client's goodbye the server may still send, then says goodbye.
    server_stream
        .write_all(b"pong")
        .await
        .expect("write after peer goodbye");
    server_stream.shutdown().await.expect("server goodbye");
    let mut reply = Vec::new();
    client
        .read_to_end(&mut reply)
        .await
        .expect("read to goodbye");
    assert_eq!(reply, b"pong");
    assert!(client.peer_said_goodbye());
    assert!(
        client.write_all(b"late").await.is_err(),
        "write after goodbye fails"
    );
    client
        .shutdown()
        .await
        .expect("second shutdown is harmless");
    assert!(
        shut.load(Ordering::SeqCst),
        "both goodbyes done: the transport is closed"
    );
}

#[tokio::test(start_paused = true)]
async fn close_gives_up_after_the_close_timeout() {
    let (client_key, server_key) = pair();
    let (a, b) = duplex(64 * 1024);
    let server_pk = *server_key.public().as_bytes();
    let server = tokio::spawn(async move {
        let (stream, ()) =
            accept(b, &ServerConfig::new(server_key), |_| async { Some(()) }).await?;
        // Never says goodbye; holds the connection open.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok::<_, Error>(stream)
    });
    let client = connect(
        a,
        ClientConfig::new(client_key, server_pk).close_timeout(Duration::from_secs(5)),
    )
    .await
    .expect("handshake");
    let started = tokio::time::Instant::now();
    let err = client.close().await.expect_err("no goodbye from the peer");
    assert!(
        matches!(
            err,
            Error::Timeout {
                step: Step::Close,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    server.abort();
}

#[tokio::test]
async fn eof_without_goodbye_is_an_error_and_after_goodbye_a_clean_end() {
    let (client_key, server_key) = pair();
    let (a, b) = duplex(64 * 1024);
    let server_pk = *server_key.public().as_bytes();
    let server = tokio::spawn(async move {
        let (mut stream, ()) =
            accept(b, &ServerConfig::new(server_key), |_| async { Some(()) }).await?;
        stream
            .write_all(b"partial")
            .await
            .map_err(|e| Error::from_io(e, Step::BoxStream))?;
        stream
            .flush()
            .await
            .map_err(|e| Error::from_io(e, Step::BoxStream))?;
        drop(stream); // abort: no goodbye
        Ok::<_, Error>(())
    });
    let mut client = connect(a, ClientConfig::new(client_key, server_pk))
        .await
        .expect("handshake");
    server.await.expect("join").expect("server");
    let mut got = Vec::new();
    let err = client.read_to_end(&mut got).await.expect_err("cut stream");
    assert_eq!(got, b"partial");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(
        Error::from_io(err, Step::BoxStream).code(),
        "eof_before_goodbye"
    );
}

#[tokio::test]
async fn msg4_and_the_first_packet_in_one_segment_lose_nothing() {
    let (client_key, server_key) = pair();
    let (a, mut b) = duplex(64 * 1024);
    let server_pk = *server_key.public().as_bytes();
    tokio::spawn(async move {
        let mut msg1 = [0u8; 64];
        b.read_exact(&mut msg1).await?;
        let server =
            ServerHandshake::new(NetworkKey::default(), server_key, EphemeralKey::generate());
        let (msg2, server) = server.read_hello(&msg1).map_err(Error::into_io)?;
        b.write_all(&msg2).await?;
        let mut msg3 = [0u8; 112];
        b.read_exact(&mut msg3).await?;
        let (msg4, outcome) = server.read_auth(&msg3).map_err(Error::into_io)?.accept();
        let (mut encoder, _) = outcome.into_codec();
        let mut segment = msg4.to_vec();
        encoder
            .encode(b"right behind msg4", &mut segment)
            .map_err(Error::into_io)?;
        segment.extend_from_slice(&encoder.goodbye().map_err(Error::into_io)?);
        b.write_all(&segment).await?;
        Ok::<_, io::Error>(b)
    });
    let mut client = connect(a, ClientConfig::new(client_key, server_pk))
        .await
        .expect("handshake");
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.expect("clean end");
    assert_eq!(got, b"right behind msg4");
}

#[tokio::test]
async fn tiny_reader_buffers_get_every_byte() {
    let (client_key, server_key) = pair();
    let (a, b) = duplex(1024);
    let server_pk = *server_key.public().as_bytes();
    let data = payload(9000, 77);
    let expected = data.clone();
    tokio::spawn(async move {
        let (mut stream, ()) =
            accept(b, &ServerConfig::new(server_key), |_| async { Some(()) }).await?;
        stream
            .write_all(&data)
            .await
            .map_err(|e| Error::from_io(e, Step::BoxStream))?;
        stream
            .shutdown()
            .await
            .map_err(|e| Error::from_io(e, Step::BoxStream))?;
        Ok::<_, Error>(stream)
    });
    let mut client = connect(a, ClientConfig::new(client_key, server_pk))
        .await
        .expect("handshake");
    let mut got = Vec::new();
    let mut one = [0u8; 1];
    loop {
        match client.read(&mut one).await.expect("read") {
            0 => break,
            n => got.extend_from_slice(&one[..n]),
        }
    }
    assert_eq!(got, expected);
}
