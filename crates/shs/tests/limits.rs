//! One test per bound in `keyline_shs::limits`: at the edge and one past it.

use std::time::Duration;

use keyline_shs::bench_support::RawBox;
use keyline_shs::limits::{
    AUTHORIZE_TIMEOUT, CLOSE_TIMEOUT, HANDSHAKE_TIMEOUT, HEADER_LEN, MAX_PACKET, MSG1_LEN,
    MSG2_LEN, MSG3_LEN, MSG4_LEN,
};
use keyline_shs::proto::{
    BoxDecoder, BoxEncoder, ClientHandshake, ServerHandshake, boxstream::increment_nonce,
};
use keyline_shs::{
    ClientConfig, DirectionKeys, EphemeralKey, Keypair, NetworkKey, ServerConfig, accept, connect,
};
use tokio::io::duplex;

fn keys() -> DirectionKeys {
    DirectionKeys::new([5; 32], [6; 24])
}

/// A validly sealed packet whose header declares `declared` bytes and carries `body`.
fn packet_declaring(declared: u16, body: &[u8]) -> Vec<u8> {
    let raw = RawBox::new(&[5; 32]);
    let header_nonce = [6u8; 24];
    let mut body_nonce = header_nonce;
    increment_nonce(&mut body_nonce);
    let mut sealed_body = body.to_vec();
    let body_tag = raw.seal(&body_nonce, &mut sealed_body);
    let mut header = [0u8; 18];
    header[..2].copy_from_slice(&declared.to_be_bytes());
    header[2..].copy_from_slice(&body_tag);
    let header_tag = raw.seal(&header_nonce, &mut header);
    [&header_tag[..], &header[..], &sealed_body[..]].concat()
}

#[test]
fn max_packet_is_accepted_and_one_more_is_refused_before_the_body() {
    let body = vec![0xabu8; MAX_PACKET];
    let mut decoder = BoxDecoder::new(&keys());
    let wire = packet_declaring(MAX_PACKET as u16, &body);
    assert_eq!(wire.len(), HEADER_LEN + MAX_PACKET);
    assert_eq!(decoder.feed(&wire).expect("4096 is allowed"), wire.len());
    assert_eq!(decoder.plaintext(), &body[..]);

    let mut decoder = BoxDecoder::new(&keys());
    let wire = packet_declaring(MAX_PACKET as u16 + 1, &[0u8; MAX_PACKET + 1]);
    // The header alone is enough to refuse: the body is never read.
    let err = decoder
        .feed(&wire[..HEADER_LEN])
        .expect_err("4097 is too long");
    assert_eq!(err.code(), "packet_too_long");
    assert_eq!(
        decoder
            .feed(&wire[HEADER_LEN..])
            .expect_err("errors are final")
            .code(),
        "packet_too_long"
    );

    let mut encoder = BoxEncoder::new(&keys());
    let mut out = Vec::new();
    encoder
        .seal_packet(&body, &mut out)
        .expect("4096 is allowed");
    assert_eq!(out.len(), HEADER_LEN + MAX_PACKET);
    assert!(
        encoder
            .seal_packet(&[0u8; MAX_PACKET + 1], &mut out)
            .is_err()
    );
}

#[test]
fn message_sizes_are_exact() {
    let server = Keypair::from_seed(&[1; 32]);
    let c = ClientHandshake::new(
        NetworkKey::default(),
        Keypair::from_seed(&[2; 32]),
        server.public().as_bytes(),
        EphemeralKey::generate(),
    )
    .expect("key");
    let (msg1, c) = c.hello();
    let (msg2, s) = ServerHandshake::new(NetworkKey::default(), server, EphemeralKey::generate())
        .read_hello(&msg1)
        .expect("msg1");
    let (msg3, c) = c.read_hello(&msg2).expect("msg2");
    let (msg4, _) = s.read_auth(&msg3).expect("msg3").accept();
    c.read_accept(&msg4).expect("msg4");
    assert_eq!(
        [msg1.len(), msg2.len(), msg3.len(), msg4.len()],
        [MSG1_LEN, MSG2_LEN, MSG3_LEN, MSG4_LEN]
    );
    assert_eq!([MSG1_LEN, MSG2_LEN, MSG3_LEN, MSG4_LEN], [64, 64, 112, 80]);
}

#[tokio::test(start_paused = true)]
async fn handshake_deadline_is_ten_seconds() {
    assert_eq!(HANDSHAKE_TIMEOUT, Duration::from_secs(10));
    let (a, _b) = duplex(1024);
    let started = tokio::time::Instant::now();
    let err = connect(
        a,
        ClientConfig::new(
            Keypair::generate(),
            *Keypair::generate().public().as_bytes(),
        ),
    )
    .await
    .expect_err("silent");
    assert_eq!(err.code(), "timeout");
    assert_eq!(started.elapsed(), HANDSHAKE_TIMEOUT);
}

async fn authorize_taking(delay: Duration) -> Result<(), keyline_shs::Error> {
    let server = Keypair::from_seed(&[1; 32]);
    let server_pk = *server.public().as_bytes();
    let (a, b) = duplex(4096);
    let client = tokio::spawn(async move {
        connect(
            a,
            ClientConfig::new(Keypair::from_seed(&[2; 32]), server_pk),
        )
        .await
        .map(|_| ())
    });
    let result = accept(b, &ServerConfig::new(server), |_| async move {
        tokio::time::sleep(delay).await;
        Some(())
    })
    .await
    .map(|_| ());
    let _ = client.await;
    result
}

#[tokio::test(start_paused = true)]
async fn authorize_bound_is_three_seconds() {
    assert_eq!(AUTHORIZE_TIMEOUT, Duration::from_secs(3));
    authorize_taking(AUTHORIZE_TIMEOUT - Duration::from_millis(1))
        .await
        .expect("just in time");
    let err = authorize_taking(AUTHORIZE_TIMEOUT + Duration::from_millis(1))
        .await
        .expect_err("too slow");
    assert_eq!(err.code(), "unauthorized");
}

#[test]
fn close_timeout_default() {
    // Driven end to end in tests/tokio_stream.rs (close_gives_up_after_the_close_timeout).
    assert_eq!(CLOSE_TIMEOUT, Duration::from_secs(5));
}
