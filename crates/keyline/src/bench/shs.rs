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
use super::measure::{Rounds, Step, summary};
use crate::error::Result;

const AREA: &str = "shs";
const PACKET: usize = 4096;

pub(super) fn run(quick: bool, print: &dyn Fn(&Row)) -> Result<()> {
    handshakes(quick, print);
    box_stream(quick, print);
    Ok(())
}

/// Handshakes against the sum of their primitives, all in the same rounds.
fn handshakes(quick: bool, print: &dyn Fn(&Row)) {
    let primitives = Primitives::new();
    let mut steps = vec![
        Step::Whole(Box::new(handshake_both_roles)),
        Step::Part(Box::new(handshake_server_part)),
        Step::Whole(Box::new(tcp_handshake_runner())),
    ];
    let first_primitive = steps.len();
    steps.extend(primitives.steps());
    let rounds = Rounds::measure(quick, steps);
    let one_role = rounds.per_round(|t| {
        PRIMITIVES
            .iter()
            .enumerate()
            .map(|(p, primitive)| primitive.per_role * t(first_primitive + p))
            .sum()
    });
    let both_roles: Vec<f64> = one_role.iter().map(|c| 2.0 * c).collect();
    for (p, primitive) in PRIMITIVES.iter().enumerate() {
        let (value, min, max) = summary(rounds.of(first_primitive + p));
        print(&Row {
            area: AREA,
            metric: format!("primitive: {}", primitive.name),
            value: value * 1e6,
            unit: "µs CPU",
            limit: None,
            ratio: None,
            spread: (min * 1e6, max * 1e6),
        });
    }
    let bound = "sum of primitive ops, both roles";
    print(&cost_row(
        "handshake, both roles (sans-IO)",
        rounds.of(0),
        &both_roles,
        bound,
    ));
    let (ours, _, _) = summary(rounds.of(0));
    let (limit, _, _) = summary(&both_roles);
    let (_, slowest, fastest) = summary(rounds.of(0));
    print(&Row {
        area: AREA,
        metric: "handshakes per second, both roles (sans-IO)".into(),
        value: 1.0 / ours,
        unit: "1/s",
        limit: Some((1.0 / limit, "primitive bound".into())),
        ratio: Some(ratio(&both_roles, rounds.of(0))),
        spread: (1.0 / fastest, 1.0 / slowest),
    });
    print(&cost_row(
        "server CPU per handshake",
        rounds.of(1),
        &one_role,
        "sum of server primitive ops",
    ));
    print(&cost_row(
        "handshake over loopback TCP, both ends",
        rounds.of(2),
        &both_roles,
        bound,
    ));
}

/// Box-stream against the raw secretbox of the same implementation, in the same rounds.
fn box_stream(quick: bool, print: &dyn Fn(&Row)) {
    let rounds = Rounds::measure(
        quick,
        vec![
            Step::Whole(Box::new(seal_step())),
            Step::Whole(Box::new(raw_seal_step())),
            Step::Whole(Box::new(raw_packet_seal_step())),
            Step::Whole(Box::new(open_step())),
            Step::Whole(Box::new(raw_open_step())),
            Step::Whole(Box::new(seal_open_step())),
        ],
    );
    let raw_both = rounds.per_round(|t| t(1) + t(4));
    print(&throughput_row(
        "box-stream seal+open, 4 KiB packets",
        rounds.of(5),
        &raw_both,
        "raw secretbox seal+open 4 KiB",
    ));
    print(&throughput_row(
        "box-stream seal, 4 KiB packets",
        rounds.of(0),
        rounds.of(1),
        "raw secretbox seal 4 KiB",
    ));
    print(&throughput_row(
        "box-stream seal vs raw packet seal",
        rounds.of(0),
        rounds.of(2),
        "raw header box + body box",
    ));
    print(&throughput_row(
        "box-stream open, 4 KiB packets",
        rounds.of(3),
        rounds.of(4),
        "raw secretbox open 4 KiB",
    ));
}

/// Median over rounds of bound time / our time (= our speed relative to the bound).
fn ratio(bound: &[f64], ours: &[f64]) -> f64 {
    let per_round: Vec<f64> = bound.iter().zip(ours).map(|(b, o)| b / o).collect();
    summary(&per_round).0
}

fn cost_row(metric: &str, ours: &[f64], bound: &[f64], what: &str) -> Row {
    let (value, min, max) = summary(ours);
    Row {
        area: AREA,
        metric: metric.into(),
        value: value * 1e6,
        unit: "µs CPU",
        limit: Some((summary(bound).0 * 1e6, what.into())),
        ratio: Some(ratio(bound, ours)),
        spread: (min * 1e6, max * 1e6),
    }
}

fn throughput_row(metric: &str, ours: &[f64], raw: &[f64], what: &str) -> Row {
    let gb = PACKET as f64 / 1e9;
    let (value, fastest, slowest) = summary(ours);
    Row {
        area: AREA,
        metric: metric.into(),
        value: gb / value,
        unit: "GB/s",
        limit: Some((gb / summary(raw).0, what.into())),
        ratio: Some(ratio(raw, ours)),
        spread: (gb / slowest, gb / fastest),
    }
}

/// A primitive and how many times one role of the handshake uses it.
struct Primitive {
    name: &'static str,
    per_role: f64,
}

/// One role: 1 key generation, 3 DH, 2 HMAC, SHA-256 of 32, 32, 64, 64, 96 and 128 bytes,
/// 1 signature, 1 strict verification (with key decoding), 1 key check, 1 Ed25519→X25519
/// secret conversion, 2 small boxes. The order matches [`Primitives::steps`].
const PRIMITIVES: [Primitive; 12] = [
    Primitive {
        name: "X25519 key generation",
        per_role: 1.0,
    },
    Primitive {
        name: "X25519 DH",
        per_role: 3.0,
    },
    Primitive {
        name: "HMAC-SHA-512 of 32 bytes",
        per_role: 2.0,
    },
    Primitive {
        name: "SHA-256 of 32 bytes",
        per_role: 2.0,
    },
    Primitive {
        name: "SHA-256 of 64 bytes",
        per_role: 2.0,
    },
    Primitive {
        name: "SHA-256 of 96 bytes",
        per_role: 1.0,
    },
    Primitive {
        name: "SHA-256 of 128 bytes",
        per_role: 1.0,
    },
    Primitive {
        name: "Ed25519 sign",
        per_role: 1.0,
    },
    Primitive {
        name: "Ed25519 decode + verify_strict",
        per_role: 1.0,
    },
    Primitive {
        name: "Ed25519 key check (decode, order, torsion)",
        per_role: 1.0,
    },
    Primitive {
        name: "Ed25519→X25519 secret",
        per_role: 1.0,
    },
    Primitive {
        name: "secretbox of 96 bytes",
        per_role: 2.0,
    },
];

/// Inputs of the primitive steps.
struct Primitives {
    secret: StaticSecret,
    peer: x25519_dalek::PublicKey,
    signing: SigningKey,
    public: [u8; 32],
    message: [u8; 160],
    signature: ed25519_dalek::Signature,
    boxed: RawBox,
}

impl Primitives {
    fn new() -> Self {
        let signing = SigningKey::from_bytes(&[7u8; 32]);
        let message = [9u8; 160];
        Primitives {
            secret: StaticSecret::from([5u8; 32]),
            peer: x25519_dalek::PublicKey::from(&StaticSecret::from([6u8; 32])),
            public: signing.verifying_key().to_bytes(),
            signature: signing.sign(&message),
            signing,
            message,
            boxed: RawBox::new(&[1u8; 32]),
        }
    }

    /// One step per entry of [`PRIMITIVES`], in order.
    fn steps(&self) -> Vec<Step<'_>> {
        let sha = |len: usize| -> Step<'_> {
            let data = vec![3u8; len];
            Step::Whole(Box::new(move || {
                black_box(sha2::Sha256::digest(black_box(&data)));
            }))
        };
        vec![
            Step::Whole(Box::new(|| {
                black_box(x25519_dalek::PublicKey::from(black_box(&self.secret)));
            })),
            Step::Whole(Box::new(|| {
                black_box(
                    self.secret
                        .diffie_hellman(black_box(&self.peer))
                        .was_contributory(),
                );
            })),
            Step::Whole(Box::new(|| {
                let mut mac = <hmac::Hmac<sha2::Sha512> as KeyInit>::new_from_slice(&[1u8; 32])
                    .expect("any key length");
                mac.update(black_box(&[2u8; 32]));
                black_box(mac.finalize());
            })),
            sha(32),
            sha(64),
            sha(96),
            sha(128),
            Step::Whole(Box::new(|| {
                black_box(self.signing.sign(black_box(&self.message[..96])));
            })),
            Step::Whole(Box::new(|| {
                let key =
                    ed25519_dalek::VerifyingKey::from_bytes(black_box(&self.public)).expect("key");
                black_box(key.verify_strict(&self.message, &self.signature)).expect("valid");
            })),
            Step::Whole(Box::new(|| {
                let point = CompressedEdwardsY(black_box(self.public))
                    .decompress()
                    .expect("point");
                black_box(point.is_small_order() || !point.is_torsion_free());
                black_box(point.to_montgomery());
            })),
            Step::Whole(Box::new(|| {
                let hash = sha2::Sha512::digest(black_box(&[7u8; 32]));
                let mut scalar = [0u8; 32];
                scalar.copy_from_slice(&hash[..32]);
                black_box(StaticSecret::from(scalar));
            })),
            Step::Whole(Box::new(|| {
                let mut buf = [0u8; 96];
                black_box(self.boxed.seal(&[0u8; 24], black_box(&mut buf)));
            })),
        ]
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
