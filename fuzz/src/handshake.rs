//! The handshake state machines (spec §4–§6): server fed msg1/msg3, client fed msg2/msg4.

use keyline_shs::proto::{
    ClientAwaitingAccept, ClientHandshake, ServerAuthorizing, ServerHandshake,
};
use keyline_shs::{EphemeralKey, Error, HandshakeOutcome, PublicKey, Step};

use crate::Cursor;
use crate::fixtures::{
    CASE0_MSG1, CASE0_MSG2, CLIENT_EPH_SK, CLIENT_PK, NETWORK, SERVER_EPH_SK, SERVER_PK,
    client_keypair, hello_for, server_keypair,
};

/// Mode byte, low two bits: how the peer's messages are made.
const MODE_HONEST_XOR: u8 = 0;
const MODE_RAW: u8 = 1;
const MODE_HONEST_REPLACE: u8 = 2;
const MODE_VALID_HMAC: u8 = 3;
/// Mode bit (server target): authorize denies the client.
const DENY: u8 = 0x80;
/// Mode bit (client target, raw and valid-HMAC modes): the server key the client dials comes
/// from the input (after the messages) instead of being case 0's.
const FUZZ_SERVER_KEY: u8 = 0x40;

/// Checks that `err` is one of the `allowed` (step, code) pairs and that it formats.
fn expect_error(err: &Error, allowed: &[(Step, &str)]) {
    let text = format!("{err} / {err:?}");
    assert!(!text.is_empty());
    assert!(
        allowed
            .iter()
            .any(|&(step, code)| err.step() == step && err.code() == code),
        "unexpected error {:?} ({}) at step {:?}; allowed: {allowed:?}",
        err,
        err.code(),
        err.step()
    );
}

/// The errors a server may report for msg3.
const MSG3_ERRORS: &[(Step, &str)] = &[
    (Step::Msg3, "box_open"),
    (Step::Msg3, "signature"),
    (Step::Msg3, "invalid_client_key"),
    (Step::Msg3, "low_order_ephemeral"),
];

/// Server under test, with case 0's long-term and ephemeral keys, network key N.
///
/// Layout: `mode` byte, then by `mode & 3`:
/// * 0 (honest, XOR): `a_sec[32] | mask[112]`. An honest client core (case 0 client key,
///   ephemeral secret `a_sec`) makes msg1 and the real msg3; the server gets
///   `msg3 XOR mask`. Zero mask: the handshake must complete and both outcomes agree;
///   otherwise msg3 must fail with `box_open`.
/// * 1 (raw): `msg1[64] | msg3[112]`.
/// * 2 (honest, replace): `a_sec[32] | msg3[112]`: honest msg1, arbitrary msg3.
/// * 3 (valid HMAC): `a_pub[32] | msg3[112]`: msg1 = `hmac(N, a_pub) | a_pub` for an
///   arbitrary `a_pub` (reaches the low-order checks), arbitrary msg3.
///
/// `mode & 0x80`: authorize denies the client. Missing bytes read as zero.
pub fn shs_server_messages(data: &[u8]) {
    let mut input = Cursor::new(data);
    let mode = input.byte();
    let deny = mode & DENY != 0;
    let server = ServerHandshake::new(
        NETWORK,
        server_keypair(),
        EphemeralKey::from_secret(SERVER_EPH_SK),
    );
    match mode & 3 {
        MODE_RAW => {
            let msg1 = input.array::<64>();
            let msg3 = input.array::<112>();
            server_raw(server, &msg1, &msg3, deny);
        }
        MODE_VALID_HMAC => {
            let msg1 = hello_for(&input.array::<32>());
            let msg3 = input.array::<112>();
            server_raw(server, &msg1, &msg3, deny);
        }
        honest => {
            debug_assert!(honest == MODE_HONEST_XOR || honest == MODE_HONEST_REPLACE);
            let a_sec = input.array::<32>();
            let fuzz = input.array::<112>();
            server_honest(server, a_sec, &fuzz, honest == MODE_HONEST_XOR, deny);
        }
    }
}

fn server_raw(server: ServerHandshake, msg1: &[u8; 64], msg3: &[u8; 112], deny: bool) {
    let (msg2, awaiting) = match server.read_hello(msg1) {
        Ok(next) => next,
        Err(err) => {
            expect_error(
                &err,
                &[(Step::Msg1, "hmac"), (Step::Msg1, "low_order_ephemeral")],
            );
            return;
        }
    };
    assert_eq!(
        msg2, CASE0_MSG2,
        "msg2 depends only on N and the server's ephemeral key"
    );
    match awaiting.read_auth(msg3) {
        Err(err) => expect_error(&err, MSG3_ERRORS),
        Ok(authorizing) => {
            let _ = server_decide(authorizing, msg1, &msg2, deny);
        }
    }
}

/// Authorize step; on accept checks the outcome's keys against §7 and returns it.
fn server_decide(
    authorizing: ServerAuthorizing,
    msg1: &[u8; 64],
    msg2: &[u8; 64],
    deny: bool,
) -> Option<([u8; 80], HandshakeOutcome)> {
    let client = *authorizing.client();
    assert!(
        PublicKey::from_bytes(client.as_bytes()).is_ok(),
        "authorizing an unusable key"
    );
    if deny {
        expect_error(&authorizing.deny(), &[(Step::Authorize, "unauthorized")]);
        return None;
    }
    let (msg4, outcome) = authorizing.accept();
    assert_eq!(outcome.peer(), &client);
    assert_eq!(
        outcome.send().nonce()[..],
        msg1[..24],
        "server sends with nonce_SC = msg1[..24]"
    );
    assert_eq!(
        outcome.recv().nonce()[..],
        msg2[..24],
        "server receives with nonce_CS = msg2[..24]"
    );
    Some((msg4, outcome))
}

fn server_honest(
    server: ServerHandshake,
    a_sec: [u8; 32],
    fuzz: &[u8; 112],
    xor: bool,
    deny: bool,
) {
    let client = ClientHandshake::new(
        NETWORK,
        client_keypair(),
        &SERVER_PK,
        EphemeralKey::from_secret(a_sec),
    )
    .expect("case 0 server key is usable");
    let (msg1, client) = client.hello();
    let (msg2, awaiting) = server
        .read_hello(&msg1)
        .expect("an honest msg1 must be accepted");
    assert_eq!(msg2, CASE0_MSG2);
    let (real_msg3, client) = client
        .read_hello(&msg2)
        .expect("an honest msg2 must be accepted");
    let msg3 = if xor {
        xor_bytes(&real_msg3, fuzz)
    } else {
        *fuzz
    };
    let tampered = msg3 != real_msg3;
    match awaiting.read_auth(&msg3) {
        Err(err) => {
            assert!(tampered, "the honest msg3 was rejected: {err:?}");
            expect_error(&err, &[(Step::Msg3, "box_open")]);
        }
        Ok(authorizing) => {
            assert!(!tampered, "a modified msg3 was accepted (forgery)");
            assert_eq!(authorizing.client().as_bytes(), &CLIENT_PK);
            if let Some((msg4, server_outcome)) = server_decide(authorizing, &msg1, &msg2, deny) {
                let client_outcome = client
                    .read_accept(&msg4)
                    .expect("an honest msg4 must be accepted");
                outcomes_agree(&client_outcome, &server_outcome);
            }
        }
    }
}

/// Client under test, with case 0's long-term and ephemeral keys, dialling case 0's server
/// key (or a fuzzed one).
///
/// Layout: `mode` byte, then by `mode & 3`:
/// * 0 (honest, XOR): `b_sec[32] | mask[80]`. An honest server core (case 0 server key,
///   ephemeral secret `b_sec`) answers; the client gets `msg4 XOR mask`. Zero mask: the
///   handshake must complete and both outcomes agree; otherwise msg4 must fail with
///   `box_open`.
/// * 1 (raw): `msg2[64] | msg4[80]`.
/// * 2 (honest, replace): `b_sec[32] | msg4[80]`: honest msg2, arbitrary msg4.
/// * 3 (valid HMAC): `b_pub[32] | msg4[80]`: msg2 = `hmac(N, b_pub) | b_pub`.
///
/// `mode & 0x40` (modes 1 and 3): 32 more bytes follow, the server key the client dials.
/// Missing bytes read as zero.
pub fn shs_client_messages(data: &[u8]) {
    let mut input = Cursor::new(data);
    let mode = input.byte();
    match mode & 3 {
        MODE_RAW | MODE_VALID_HMAC => {
            let msg2 = if mode & 3 == MODE_RAW {
                input.array::<64>()
            } else {
                hello_for(&input.array::<32>())
            };
            let msg4 = input.array::<80>();
            let server_key = if mode & FUZZ_SERVER_KEY != 0 {
                input.array::<32>()
            } else {
                SERVER_PK
            };
            client_raw(&server_key, &msg2, &msg4);
        }
        honest => {
            debug_assert!(honest == MODE_HONEST_XOR || honest == MODE_HONEST_REPLACE);
            let b_sec = input.array::<32>();
            let fuzz = input.array::<80>();
            client_honest(b_sec, &fuzz, honest == MODE_HONEST_XOR);
        }
    }
}

fn new_client(server_key: &[u8; 32]) -> Result<ClientHandshake, Error> {
    ClientHandshake::new(
        NETWORK,
        client_keypair(),
        server_key,
        EphemeralKey::from_secret(CLIENT_EPH_SK),
    )
}

fn client_raw(server_key: &[u8; 32], msg2: &[u8; 64], msg4: &[u8; 80]) {
    let client = match new_client(server_key) {
        Ok(client) => client,
        Err(err) => {
            expect_error(&err, &[(Step::Setup, "invalid_server_longterm_key")]);
            assert!(PublicKey::from_bytes(server_key).is_err());
            return;
        }
    };
    let (msg1, client) = client.hello();
    assert_eq!(
        msg1, CASE0_MSG1,
        "msg1 depends only on N and the client's ephemeral key"
    );
    let (msg3, client): ([u8; 112], ClientAwaitingAccept) = match client.read_hello(msg2) {
        Ok(next) => next,
        Err(err) => {
            expect_error(
                &err,
                &[
                    (Step::Msg2, "hmac"),
                    (Step::Msg2, "low_order_ephemeral"),
                    (Step::Setup, "invalid_server_longterm_key"),
                ],
            );
            return;
        }
    };
    assert_eq!(msg3.len(), 112);
    assert_eq!(client.server().as_bytes(), server_key);
    match client.read_accept(msg4) {
        Err(err) => expect_error(&err, &[(Step::Msg4, "box_open"), (Step::Msg4, "signature")]),
        Ok(outcome) => {
            assert_eq!(outcome.peer().as_bytes(), server_key);
            assert_eq!(
                outcome.send().nonce()[..],
                msg2[..24],
                "client sends with nonce_CS = msg2[..24]"
            );
            assert_eq!(
                outcome.recv().nonce()[..],
                msg1[..24],
                "client receives with nonce_SC = msg1[..24]"
            );
        }
    }
}

fn client_honest(b_sec: [u8; 32], fuzz: &[u8; 80], xor: bool) {
    let server = ServerHandshake::new(NETWORK, server_keypair(), EphemeralKey::from_secret(b_sec));
    let client = new_client(&SERVER_PK).expect("case 0 server key is usable");
    let (msg1, client) = client.hello();
    assert_eq!(msg1, CASE0_MSG1);
    let (msg2, awaiting) = server
        .read_hello(&msg1)
        .expect("an honest msg1 must be accepted");
    let (msg3, client) = client
        .read_hello(&msg2)
        .expect("an honest msg2 must be accepted");
    let authorizing = awaiting
        .read_auth(&msg3)
        .expect("an honest msg3 must be accepted");
    assert_eq!(authorizing.client().as_bytes(), &CLIENT_PK);
    let (real_msg4, server_outcome) = authorizing.accept();
    let msg4 = if xor {
        xor_bytes(&real_msg4, fuzz)
    } else {
        *fuzz
    };
    let tampered = msg4 != real_msg4;
    match client.read_accept(&msg4) {
        Err(err) => {
            assert!(tampered, "the honest msg4 was rejected: {err:?}");
            expect_error(&err, &[(Step::Msg4, "box_open")]);
        }
        Ok(client_outcome) => {
            assert!(!tampered, "a modified msg4 was accepted (forgery)");
            outcomes_agree(&client_outcome, &server_outcome);
        }
    }
}

/// Spec §7: what one side sends with, the other receives with; each knows the other's key.
fn outcomes_agree(client: &HandshakeOutcome, server: &HandshakeOutcome) {
    assert_eq!(client.peer().as_bytes(), &SERVER_PK);
    assert_eq!(server.peer().as_bytes(), &CLIENT_PK);
    assert_eq!(client.send().key(), server.recv().key());
    assert_eq!(client.send().nonce(), server.recv().nonce());
    assert_eq!(client.recv().key(), server.send().key());
    assert_eq!(client.recv().nonce(), server.send().nonce());
    assert_ne!(
        client.send().key(),
        client.recv().key(),
        "directions must use different keys"
    );
    let (c, s) = (client.shs1_test_bytes(), server.shs1_test_bytes());
    assert_eq!(c[..56], s[56..]);
    assert_eq!(c[56..], s[..56]);
}

fn xor_bytes<const N: usize>(a: &[u8; N], b: &[u8; N]) -> [u8; N] {
    let mut out = *a;
    for (o, m) in out.iter_mut().zip(b) {
        *o ^= m;
    }
    out
}
