//! `keyline bench shs`: handshakes against the sum of their primitives, box-stream against the
//! raw secretbox of the same implementation.

use std::hint::black_box;
use std::time::Duration;

use cpu_time::ThreadTime;
use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signer, SigningKey};
use hmac::{KeyInit, Mac};
use keyline_shs::bench_support::RawBox;
use keyline_shs::proto::{BoxDecoder, BoxEncoder, ClientHandshake, ServerHandshake};
use keyline_shs::{DirectionKeys, EphemeralKey, Keypair, NetworkKey};
use sha2::Digest;
use x25519_dalek::StaticSecret;

use super::Row;
use super::measure::{Sample, measure, measure_part};
use crate::error::Result;

const AREA: &str = "shs";
const PACKET: usize = 4096;

pub(super) fn run(quick: bool, print: &dyn Fn(&Row)) -> Result<()> {
    let costs = PrimitiveCosts::measure(quick);
    for (name, seconds) in costs.rows() {
        print(&Row {
            area: AREA,
            metric: format!("primitive: {name}"),
            value: seconds * 1e6,
            unit: "µs CPU",
            limit: None,
            spread: (seconds * 1e6, seconds * 1e6),
        });
    }
    let both_bound = costs.both_roles();
    let server_bound = costs.server_role();

    let both = measure(quick, handshake_both_roles);
    print(&cost_row(
        "handshake, both roles (sans-IO)",
        both,
        both_bound,
        "sum of primitive ops, both roles",
    ));
    let per_second = 1.0 / both.median;
    print(&Row {
        area: AREA,
        metric: "handshakes per second, both roles".into(),
        value: per_second,
        unit: "1/s",
        limit: Some((1.0 / both_bound, "primitive bound".into())),
        spread: (1.0 / both.max, 1.0 / both.min),
    });
    let server = measure_part(quick, handshake_server_part);
    print(&cost_row(
        "server CPU per handshake",
        server,
        server_bound,
        "sum of server primitive ops",
    ));
    let tcp = measure(quick, tcp_handshake_runner());
    print(&cost_row(
        "handshake over loopback TCP, both ends",
        tcp,
        both_bound,
        "sum of primitive ops, both roles",
    ));

    let raw_seal = measure(quick, raw_seal_step());
    let raw_open = measure(quick, raw_open_step());
    let raw_packet = measure(quick, raw_packet_seal_step());
    let seal = measure(quick, seal_step());
    let open = measure(quick, open_step());
    let raw_both = Sample {
        median: raw_seal.median + raw_open.median,
        min: raw_seal.min + raw_open.min,
        max: raw_seal.max + raw_open.max,
    };
    let both_ways = measure(quick, seal_open_step());
    print(&throughput_row(
        "box-stream seal+open, 4 KiB packets",
        both_ways,
        raw_both,
        "raw secretbox seal+open 4 KiB",
    ));
    print(&throughput_row(
        "box-stream seal, 4 KiB packets",
        seal,
        raw_seal,
        "raw secretbox seal 4 KiB",
    ));
    print(&throughput_row(
        "box-stream seal vs raw packet seal",
        seal,
        raw_packet,
        "raw header box + body box",
    ));
    print(&throughput_row(
        "box-stream open, 4 KiB packets",
        open,
        raw_open,
        "raw secretbox open 4 KiB",
    ));
    Ok(())
}

fn cost_row(metric: &str, sample: Sample, bound: f64, what: &str) -> Row {
    let (value, min, max) = sample.micros();
    Row {
        area: AREA,
        metric: metric.into(),
        value,
        unit: "µs CPU",
        limit: Some((bound * 1e6, what.into())),
        spread: (min, max),
    }
}

fn throughput_row(metric: &str, ours: Sample, raw: Sample, what: &str) -> Row {
    let (value, min, max) = ours.rate(PACKET as f64 / 1e9);
    Row {
        area: AREA,
        metric: metric.into(),
        value,
        unit: "GB/s",
        limit: Some((raw.rate(PACKET as f64 / 1e9).0, what.into())),
        spread: (min, max),
    }
}

/// Median seconds of each primitive the handshake uses.
struct PrimitiveCosts {
    keygen: f64,
    dh: f64,
    hmac: f64,
    sha256: [f64; 4], // 32, 64, 96, 128 bytes
    sign: f64,
    decode_verify_strict: f64,
    key_check: f64,
    ed2curve_sk: f64,
    small_box: f64,
}

impl PrimitiveCosts {
    fn measure(quick: bool) -> Self {
        let secret = StaticSecret::from([5u8; 32]);
        let peer = x25519_dalek::PublicKey::from(&StaticSecret::from([6u8; 32]));
        let signing = SigningKey::from_bytes(&[7u8; 32]);
        let public = signing.verifying_key().to_bytes();
        let message = [9u8; 160];
        let signature = signing.sign(&message);
        let boxed = RawBox::new(&[1u8; 32]);
        let median = |s: Sample| s.median;
        let sha = |len: usize| {
            let data = vec![3u8; len];
            median(measure(quick, || {
                black_box(sha2::Sha256::digest(black_box(&data)));
            }))
        };
        PrimitiveCosts {
            keygen: median(measure(quick, || {
                black_box(x25519_dalek::PublicKey::from(black_box(&secret)));
            })),
            dh: median(measure(quick, || {
                black_box(secret.diffie_hellman(black_box(&peer)).was_contributory());
            })),
            hmac: median(measure(quick, || {
                let mut mac = <hmac::Hmac<sha2::Sha512> as KeyInit>::new_from_slice(&[1u8; 32])
                    .expect("any key length");
                mac.update(black_box(&[2u8; 32]));
                black_box(mac.finalize());
            })),
            sha256: [sha(32), sha(64), sha(96), sha(128)],
            sign: median(measure(quick, || {
                black_box(signing.sign(black_box(&message[..96])));
            })),
            decode_verify_strict: median(measure(quick, || {
                let key = ed25519_dalek::VerifyingKey::from_bytes(black_box(&public)).expect("key");
                black_box(key.verify_strict(&message, &signature)).expect("valid");
            })),
            key_check: median(measure(quick, || {
                let point = CompressedEdwardsY(black_box(public))
                    .decompress()
                    .expect("point");
                black_box(point.is_small_order() || !point.is_torsion_free());
                black_box(point.to_montgomery());
            })),
            ed2curve_sk: median(measure(quick, || {
                let hash = sha2::Sha512::digest(black_box(&[7u8; 32]));
                let mut scalar = [0u8; 32];
                scalar.copy_from_slice(&hash[..32]);
                black_box(StaticSecret::from(scalar));
            })),
            small_box: median(measure(quick, || {
                let mut buf = [0u8; 96];
                black_box(boxed.seal(&[0u8; 24], black_box(&mut buf)));
            })),
        }
    }

    fn rows(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("X25519 key generation", self.keygen),
            ("X25519 DH", self.dh),
            ("HMAC-SHA-512 of 32 bytes", self.hmac),
            ("SHA-256 of 128 bytes", self.sha256[3]),
            ("Ed25519 sign", self.sign),
            ("Ed25519 decode + verify_strict", self.decode_verify_strict),
            ("Ed25519 key check (decode, order, torsion)", self.key_check),
            ("Ed25519→X25519 secret", self.ed2curve_sk),
            ("secretbox of 96 bytes", self.small_box),
        ]
    }

    /// One role's primitives: 1 key generation, 3 DH, 2 HMAC, SHA-256 of 32, 32, 64, 64, 96
    /// and 128 bytes, 1 signature, 1 strict verification (with key decoding), 1 key check,
    /// 1 Ed25519→X25519 secret conversion, 2 small boxes.
    fn one_role(&self) -> f64 {
        let [s32, s64, s96, s128] = self.sha256;
        self.keygen
            + 3.0 * self.dh
            + 2.0 * self.hmac
            + 2.0 * s32
            + 2.0 * s64
            + s96
            + s128
            + self.sign
            + self.decode_verify_strict
            + self.key_check
            + self.ed2curve_sk
            + 2.0 * self.small_box
    }

    fn both_roles(&self) -> f64 {
        2.0 * self.one_role()
    }

    fn server_role(&self) -> f64 {
        self.one_role()
    }
}

fn keys() -> (Keypair, Keypair, [u8; 32]) {
    let client = Keypair::from_seed(&[1u8; 32]);
    let server = Keypair::from_seed(&[2u8; 32]);
    let server_pk = *server.public().as_bytes();
    (client, server, server_pk)
}

fn handshake_both_roles() {
    thread_local! {
        static KEYS: (Keypair, Keypair, [u8; 32]) = keys();
    }
    KEYS.with(|(client, server, server_pk)| {
        let net = NetworkKey::default();
        let c = ClientHandshake::new(net, client.clone(), server_pk, EphemeralKey::generate())
            .expect("key");
        let s = ServerHandshake::new(net, server.clone(), EphemeralKey::generate());
        let (msg1, c) = c.hello();
        let (msg2, s) = s.read_hello(&msg1).expect("msg1");
        let (msg3, c) = c.read_hello(&msg2).expect("msg2");
        let (msg4, outcome) = s.read_auth(&msg3).expect("msg3").accept();
        black_box(outcome);
        black_box(c.read_accept(&msg4).expect("msg4"));
    });
}

/// Runs a handshake and returns the CPU time of the server's part only.
fn handshake_server_part() -> Duration {
    thread_local! {
        static KEYS: (Keypair, Keypair, [u8; 32]) = keys();
    }
    KEYS.with(|(client, server, server_pk)| {
        let net = NetworkKey::default();
        let c = ClientHandshake::new(net, client.clone(), server_pk, EphemeralKey::generate())
            .expect("key");
        let (msg1, c) = c.hello();
        let t = ThreadTime::now();
        let s = ServerHandshake::new(net, server.clone(), EphemeralKey::generate());
        let (msg2, s) = s.read_hello(&msg1).expect("msg1");
        let mut spent = t.elapsed();
        let (msg3, c) = c.read_hello(&msg2).expect("msg2");
        let t = ThreadTime::now();
        let (msg4, outcome) = s.read_auth(&msg3).expect("msg3").accept();
        black_box(outcome);
        spent += t.elapsed();
        black_box(c.read_accept(&msg4).expect("msg4"));
        spent
    })
}

/// Handshakes over loopback TCP with both ends on one thread (a current-thread runtime), so
/// the thread's CPU time covers both sides, the system calls included.
fn tcp_handshake_runner() -> impl FnMut() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (client, server, server_pk) = keys();
    let config = keyline_shs::ServerConfig::new(server);
    move || {
        runtime.block_on(async {
            let connect = async {
                let tcp = tokio::net::TcpStream::connect(address)
                    .await
                    .expect("connect");
                keyline_shs::connect(
                    tcp,
                    keyline_shs::ClientConfig::new(client.clone(), server_pk),
                )
                .await
                .expect("client handshake")
            };
            let accept = async {
                let (tcp, _) = listener.accept().await.expect("accept");
                keyline_shs::accept(tcp, &config, |_| async { Some(()) })
                    .await
                    .expect("server handshake")
            };
            black_box(tokio::join!(connect, accept));
        });
    }
}

fn direction() -> DirectionKeys {
    DirectionKeys::new([4u8; 32], [8u8; 24])
}

fn raw_seal_step() -> impl FnMut() {
    let raw = RawBox::new(&[4u8; 32]);
    let mut buf = vec![0u8; PACKET];
    move || {
        black_box(raw.seal(&[8u8; 24], &mut buf));
    }
}

fn raw_open_step() -> impl FnMut() {
    let raw = RawBox::new(&[4u8; 32]);
    let mut sealed = vec![0u8; PACKET];
    let tag = raw.seal(&[8u8; 24], &mut sealed);
    let mut buf = sealed.clone();
    move || {
        buf.copy_from_slice(&sealed);
        black_box(raw.open(&[8u8; 24], &mut buf, &tag));
    }
}

fn raw_packet_seal_step() -> impl FnMut() {
    let raw = RawBox::new(&[4u8; 32]);
    let mut body = vec![0u8; PACKET];
    let mut header = [0u8; 18];
    move || {
        let tag = raw.seal(&[9u8; 24], &mut body);
        header[2..].copy_from_slice(&tag);
        black_box(raw.seal(&[8u8; 24], &mut header));
    }
}

fn seal_step() -> impl FnMut() {
    let mut encoder = BoxEncoder::new(&direction());
    let mut packet = vec![0u8; 34 + PACKET];
    move || {
        encoder.seal_in_place(&mut packet).expect("seal");
        black_box(&packet);
    }
}

/// Opens a prepared stream of packets, restarting the decoder when it runs out.
fn open_step() -> impl FnMut() {
    const STREAM: usize = 256;
    let mut encoder = BoxEncoder::new(&direction());
    let mut wire = Vec::with_capacity(STREAM * (34 + PACKET));
    for _ in 0..STREAM {
        encoder
            .seal_packet(&[0u8; PACKET], &mut wire)
            .expect("seal");
    }
    let mut decoder = BoxDecoder::new(&direction());
    let mut at = 0;
    move || {
        if at == wire.len() {
            decoder = BoxDecoder::new(&direction());
            at = 0;
        }
        at += decoder.feed(&wire[at..]).expect("valid stream");
        let n = decoder.plaintext().len();
        black_box(decoder.plaintext());
        decoder.consume(n);
    }
}

fn seal_open_step() -> impl FnMut() {
    let mut encoder = BoxEncoder::new(&direction());
    let mut decoder = BoxDecoder::new(&direction());
    let mut packet = vec![0u8; 34 + PACKET];
    move || {
        packet[34..].fill(1);
        encoder.seal_in_place(&mut packet).expect("seal");
        let used = decoder.feed(&packet).expect("open");
        debug_assert_eq!(used, packet.len());
        let n = decoder.plaintext().len();
        decoder.consume(n);
    }
}
