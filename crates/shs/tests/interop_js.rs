//! Interop with the JavaScript reference (npm `secret-handshake` + `pull-box-stream`) over real
//! TCP sockets, both roles (spec §16, checklist 22–23). The peer is `interop/peer.js`; without
//! it these tests skip, unless `KEYLINE_REQUIRE_INTEROP=1`, which makes a missing peer fail.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use keyline_shs::proto::{ClientHandshake, ServerHandshake};
use keyline_shs::{
    ClientConfig, EphemeralKey, Error, HandshakeOutcome, Keypair, NetworkKey, ServerConfig, Step,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NET: &str = "d4a1cb88a66f02f8db635ce26441cc5dac1b08420ceaac230839b755845a9ffb";
const JS_SEED: &str = "4a5320736565642020202020202020202020202020202020202020202020204a";
const LENGTHS: [usize; 6] = [0, 1, 4095, 4096, 4097, 1 << 20];

/// interop/README.md: byte j of payload i is (j*31 + i*7 + 1) & 0xff.
fn payloads() -> Vec<u8> {
    LENGTHS
        .iter()
        .enumerate()
        .flat_map(|(i, &len)| (0..len).map(move |j| ((j * 31 + i * 7 + 1) & 0xff) as u8))
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A running `peer.js` and its JSON lines.
struct Peer {
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn(dir: &Path, args: &[&str]) -> Peer {
        let mut child = Command::new("node")
            .arg(dir.join("peer.js"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node peer.js");
        let lines = BufReader::new(child.stdout.take().expect("stdout"));
        Peer { child, lines }
    }

    /// The next JSON line whose `event` is `event` (others are skipped).
    fn expect(&mut self, event: &str) -> Value {
        loop {
            let mut line = String::new();
            let n = self.lines.read_line(&mut line).expect("read peer output");
            assert!(n > 0, "peer.js ended before printing {event:?}");
            let value: Value = serde_json::from_str(&line).expect("peer prints JSON lines");
            if value["event"] == event {
                return value;
            }
            assert_ne!(
                value["event"], "done",
                "peer.js finished before {event:?}: {value}"
            );
        }
    }

    fn finish(mut self) -> Value {
        let done = self.expect("done");
        let status = self.child.wait().expect("wait peer");
        assert_eq!(
            status.success(),
            done["ok"] == true,
            "exit status matches {done}"
        );
        done
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn js_public_key(dir: &Path) -> [u8; 32] {
    // The JS key of JS_SEED, read from a server announcement.
    let mut peer = Peer::spawn(
        dir,
        &[
            "server", "--net", NET, "--seed", JS_SEED, "--mode", "silent",
        ],
    );
    let listening = peer.expect("listening");
    hex_key(&listening["pk"])
}

fn hex_key(value: &Value) -> [u8; 32] {
    hex::decode(value.as_str().expect("hex"))
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

fn js_server(dir: &Path, mode: &str) -> (Peer, u16, [u8; 32]) {
    let mut peer = Peer::spawn(
        dir,
        &["server", "--net", NET, "--seed", JS_SEED, "--mode", mode],
    );
    let listening = peer.expect("listening");
    let port = listening["port"].as_u64().expect("port") as u16;
    (peer, port, hex_key(&listening["pk"]))
}

fn check_keys(ours: &HandshakeOutcome, theirs: &Value) {
    assert_eq!(
        hex::encode(ours.send().key()),
        theirs["decryptKey"],
        "our send key is their receive key"
    );
    assert_eq!(hex::encode(ours.send().nonce()), theirs["decryptNonce"]);
    assert_eq!(hex::encode(ours.recv().key()), theirs["encryptKey"]);
    assert_eq!(hex::encode(ours.recv().nonce()), theirs["encryptNonce"]);
}

/// Ends a box-stream with the sans-IO codec: our goodbye, then the peer's, then close.
fn finish_by_hand(mut tcp: StdTcpStream, outcome: HandshakeOutcome) {
    let (mut encoder, mut decoder) = outcome.into_codec();
    tcp.write_all(&encoder.goodbye().expect("goodbye"))
        .expect("send goodbye");
    let mut buf = [0u8; 4096];
    while !decoder.is_finished() {
        let n = tcp.read(&mut buf).expect("read");
        assert!(n > 0, "the peer closed without a goodbye");
        let mut at = 0;
        while at < n && !decoder.is_finished() {
            at += decoder.feed(&buf[at..n]).expect("valid box-stream");
            let pending = decoder.plaintext().len();
            decoder.consume(pending);
        }
    }
}

#[test]
fn keyline_client_and_js_server_derive_the_same_keys() {
    let Some(dir) = keyline_testkit::interop_peers() else {
        return;
    };
    let (mut peer, port, server_pk) = js_server(&dir, "echo");
    let me = Keypair::generate();
    let mut tcp = StdTcpStream::connect(("127.0.0.1", port)).expect("connect");
    let c = ClientHandshake::new(
        NetworkKey::default(),
        me.clone(),
        &server_pk,
        EphemeralKey::generate(),
    )
    .expect("key");
    let (msg1, c) = c.hello();
    tcp.write_all(&msg1).expect("msg1");
    let mut msg2 = [0u8; 64];
    tcp.read_exact(&mut msg2).expect("msg2");
    let (msg3, c) = c.read_hello(&msg2).expect("valid msg2");
    tcp.write_all(&msg3).expect("msg3");
    let mut msg4 = [0u8; 80];
    tcp.read_exact(&mut msg4).expect("msg4");
    let outcome = c.read_accept(&msg4).expect("valid msg4");
    let theirs = peer.expect("handshake");
    assert_eq!(theirs["remote"], hex::encode(me.public().as_bytes()));
    check_keys(&outcome, &theirs);
    finish_by_hand(tcp, outcome);
    assert_eq!(peer.finish()["ok"], true);
}

#[test]
fn js_client_and_keyline_server_derive_the_same_keys() {
    let Some(dir) = keyline_testkit::interop_peers() else {
        return;
    };
    let me = Keypair::generate();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port().to_string();
    let server_pk = hex::encode(me.public().as_bytes());
    let mut peer = Peer::spawn(
        &dir,
        &[
            "client",
            "--net",
            NET,
            "--seed",
            JS_SEED,
            "--port",
            &port,
            "--server-pk",
            &server_pk,
            "--mode",
            "send",
            "--payloads",
            "",
        ],
    );
    let (mut tcp, _) = listener.accept().expect("accept");
    let s = ServerHandshake::new(NetworkKey::default(), me, EphemeralKey::generate());
    let mut msg1 = [0u8; 64];
    tcp.read_exact(&mut msg1).expect("msg1");
    let (msg2, s) = s.read_hello(&msg1).expect("valid msg1");
    tcp.write_all(&msg2).expect("msg2");
    let mut msg3 = [0u8; 112];
    tcp.read_exact(&mut msg3).expect("msg3");
    let pending = s.read_auth(&msg3).expect("valid msg3");
    assert_eq!(pending.client().as_bytes(), &js_public_key(&dir));
    let (msg4, outcome) = pending.accept();
    tcp.write_all(&msg4).expect("msg4");
    check_keys(&outcome, &peer.expect("handshake"));
    finish_by_hand(tcp, outcome);
    assert_eq!(peer.finish()["ok"], true);
}

/// Sends `data`, reads everything until the peer's goodbye, closes; returns what arrived.
async fn exchange(
    stream: keyline_shs::BoxStream<tokio::net::TcpStream>,
    data: &[u8],
) -> Result<Vec<u8>, Error> {
    let (mut reader, mut writer) = stream.split();
    let write = async {
        writer.write_all(data).await?;
        writer.shutdown().await
    };
    let read = async {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.map(|_| got)
    };
    let (written, got) = tokio::join!(write, read);
    written.map_err(|e| Error::from_io(e, Step::BoxStream))?;
    got.map_err(|e| Error::from_io(e, Step::BoxStream))
}

async fn dial(
    port: u16,
    server_pk: [u8; 32],
    config: impl FnOnce(ClientConfig) -> ClientConfig,
) -> Result<keyline_shs::BoxStream<tokio::net::TcpStream>, Error> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    keyline_shs::connect(
        tcp,
        config(ClientConfig::new(Keypair::generate(), server_pk)),
    )
    .await
}

#[tokio::test]
async fn keyline_client_to_js_echo_server_round_trips_every_payload() {
    let Some(dir) = keyline_testkit::interop_peers() else {
        return;
    };
    let (peer, port, server_pk) = js_server(&dir, "echo");
    let stream = dial(port, server_pk, |c| c)
        .await
        .expect("handshake with JS");
    let data = payloads();
    let echoed = exchange(stream, &data).await.expect("echo");
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "echo differs");
    let done = tokio::task::spawn_blocking(move || peer.finish())
        .await
        .expect("join");
    assert_eq!(done["ok"], true, "{done}");
}

#[tokio::test]
async fn keyline_client_and_js_server_both_send_and_both_goodbyes_arrive() {
    let Some(dir) = keyline_testkit::interop_peers() else {
        return;
    };
    let (mut peer, port, server_pk) = js_server(&dir, "send");
    let stream = dial(port, server_pk, |c| c)
        .await
        .expect("handshake with JS");
    let data = payloads();
    let got = exchange(stream, &data).await.expect("exchange");
    let received = tokio::task::spawn_blocking(move || {
        let received = peer.expect("received");
        (received, peer.finish())
    })
    .await
    .expect("join");
    let (theirs, done) = received;
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(
        sha256_hex(&got),
        theirs["sent_sha256"],
        "we got what JS sent"
    );
    assert_eq!(theirs["sha256"], sha256_hex(&data), "JS got what we sent");
    assert_eq!(theirs["bytes"].as_u64(), Some(data.len() as u64));
}

async fn keyline_server(
    mode: &'static str,
    deny: bool,
) -> (
    u16,
    [u8; 32],
    tokio::task::JoinHandle<Result<Vec<u8>, Error>>,
) {
    let me = Keypair::generate();
    let server_pk = *me.public().as_bytes();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let config = ServerConfig::new(me).handshake_timeout(Duration::from_secs(3));
        let (stream, ()) =
            keyline_shs::accept(tcp, &config, |_| async move { (!deny).then_some(()) }).await?;
        match mode {
            "echo" => {
                let (mut reader, mut writer) = stream.split();
                let copied = tokio::io::copy(&mut reader, &mut writer).await;
                copied.map_err(|e| Error::from_io(e, Step::BoxStream))?;
                writer
                    .shutdown()
                    .await
                    .map_err(|e| Error::from_io(e, Step::BoxStream))?;
                Ok(Vec::new())
            }
            _ => exchange(stream, &payloads()).await,
        }
    });
    (port, server_pk, task)
}

fn js_client(dir: &Path, port: u16, server_pk: &[u8; 32], mode: &str) -> Peer {
    Peer::spawn(
        dir,
        &[
            "client",
            "--net",
            NET,
            "--seed",
            JS_SEED,
            "--port",
            &port.to_string(),
            "--server-pk",
            &hex::encode(server_pk),
            "--mode",
            mode,
        ],
    )
}

#[tokio::test]
async fn js_client_to_keyline_echo_server_round_trips_every_payload() {
    let Some(dir) = keyline_testkit::interop_peers() else {
        return;
    };
    let (port, server_pk, server) = keyline_server("echo", false).await;
    let mut peer = js_client(&dir, port, &server_pk, "send");
    let (received, done) =
        tokio::task::spawn_blocking(move || (peer.expect("received"), peer.finish()))
            .await
            .expect("join");
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(
        received["sha256"], received["sent_sha256"],
        "JS got its own bytes back"
    );
    assert_eq!(received["sha256"], sha256_hex(&payloads()));
    server.await.expect("join").expect("keyline server");
}

#[tokio::test]
async fn js_client_and_keyline_server_both_send() {
    let Some(dir) = keyline_testkit::interop_peers() else {
        return;
    };
    let (port, server_pk, server) = keyline_server("send", false).await;
    let mut peer = js_client(&dir, port, &server_pk, "send");
    let (received, done) =
        tokio::task::spawn_blocking(move || (peer.expect("received"), peer.finish()))
            .await
            .expect("join");
    assert_eq!(done["ok"], true, "{done}");
    let got = server.await.expect("join").expect("keyline server");
    assert_eq!(sha256_hex(&got), received["sent_sha256"]);
    assert_eq!(received["sha256"], sha256_hex(&payloads()));
}

#[tokio::test]
async fn js_client_denied_by_keyline_server_hears_nothing() {
    let Some(dir) = keyline_testkit::interop_peers() else {
        return;
    };
    let (port, server_pk, server) = keyline_server("echo", true).await;
    let peer = js_client(&dir, port, &server_pk, "send");
    let done = tokio::task::spawn_blocking(move || peer.finish())
        .await
        .expect("join");
    assert_eq!(done["ok"], false);
    assert!(
        done["error"]
            .as_str()
            .unwrap_or_default()
            .contains("phase 3"),
        "{done}"
    );
    assert_eq!(
        server.await.expect("join").expect_err("denied").code(),
        "unauthorized"
    );
}

#[tokio::test]
async fn wrong_network_key_against_js_server_is_eof_at_msg2() {
    let Some(dir) = keyline_testkit::interop_peers() else {
        return;
    };
    let (peer, port, server_pk) = js_server(&dir, "echo");
    let err = dial(port, server_pk, |c| c.network(NetworkKey([9; 32])))
        .await
        .expect_err("wrong net");
    assert!(
        matches!(err, Error::UnexpectedEof { step: Step::Msg2 }),
        "{err}"
    );
    let done = tokio::task::spawn_blocking(move || peer.finish())
        .await
        .expect("join");
    assert_eq!(done["ok"], false, "the JS server noticed: {done}");
}

#[tokio::test]
async fn wrong_server_key_against_js_server_is_closed_after_hello() {
    let Some(dir) = keyline_testkit::interop_peers() else {
        return;
    };
    let (peer, port, _) = js_server(&dir, "echo");
    let other = *Keypair::generate().public().as_bytes();
    let err = dial(port, other, |c| c).await.expect_err("wrong key");
    assert_eq!(err.code(), "server_closed_after_hello", "{err}");
    drop(peer);
}

#[tokio::test]
async fn js_server_that_denies_us_is_closed_after_hello() {
    let Some(dir) = keyline_testkit::interop_peers() else {
        return;
    };
    let (peer, port, server_pk) = js_server(&dir, "deny");
    let err = dial(port, server_pk, |c| c).await.expect_err("denied");
    assert_eq!(err.code(), "server_closed_after_hello", "{err}");
    let done = tokio::task::spawn_blocking(move || peer.finish())
        .await
        .expect("join");
    assert_eq!(done["ok"], false);
}

#[tokio::test]
async fn silent_js_server_times_out_within_the_deadline() {
    let Some(dir) = keyline_testkit::interop_peers() else {
        return;
    };
    let (peer, port, server_pk) = js_server(&dir, "silent");
    let started = std::time::Instant::now();
    let err = dial(port, server_pk, |c| {
        c.handshake_timeout(Duration::from_secs(2))
    })
    .await
    .expect_err("silent");
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
    assert!(started.elapsed() < Duration::from_secs(4));
    drop(peer);
}

#[tokio::test]
async fn silent_js_client_times_out_at_msg1() {
    let Some(dir) = keyline_testkit::interop_peers() else {
        return;
    };
    let (port, server_pk, server) = keyline_server("echo", false).await;
    let peer = js_client(&dir, port, &server_pk, "silent");
    let err = server.await.expect("join").expect_err("silent client");
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
    drop(peer);
}
