//! Handshake vectors, byte for byte (spec §18, checklist items 1–6 and 9).

use keyline_shs::proto::{ClientHandshake, ServerHandshake};
use keyline_shs::{EphemeralKey, Error, HandshakeOutcome, Keypair, NetworkKey, Step};
use keyline_testkit::{array, hex, hex_n, load_json, str_field};
use serde_json::Value;

fn keypair(side: &Value) -> Keypair {
    Keypair::from_seed(&hex_n(&side["longterm_seed"]))
}

fn ephemeral(side: &Value) -> EphemeralKey {
    EphemeralKey::from_secret(hex_n(&side["ephemeral_sk"]))
}

fn check_outcome(outcome: &HandshakeOutcome, expected: &Value) {
    assert_eq!(
        outcome.send().key()[..],
        hex(&expected["encrypt_key"])[..],
        "encrypt_key"
    );
    assert_eq!(
        outcome.send().nonce()[..],
        hex(&expected["encrypt_nonce"])[..],
        "encrypt_nonce"
    );
    assert_eq!(
        outcome.recv().key()[..],
        hex(&expected["decrypt_key"])[..],
        "decrypt_key"
    );
    assert_eq!(
        outcome.recv().nonce()[..],
        hex(&expected["decrypt_nonce"])[..],
        "decrypt_nonce"
    );
    assert_eq!(
        outcome.peer().as_bytes()[..],
        hex(&expected["peer_longterm_pk"])[..],
        "peer"
    );
    if !expected["shs1_test_outcome"].is_null() {
        assert_eq!(
            outcome.shs1_test_bytes()[..],
            hex(&expected["shs1_test_outcome"])[..]
        );
    }
}

/// Runs both cores against each other with injected ephemerals; returns the four messages
/// and both outcomes.
struct Run {
    msgs: [Vec<u8>; 4],
    client: HandshakeOutcome,
    server: HandshakeOutcome,
}

fn run(
    network: NetworkKey,
    client: Keypair,
    client_eph: EphemeralKey,
    server: Keypair,
    server_eph: EphemeralKey,
) -> Run {
    let server_pk = *server.public().as_bytes();
    let c = ClientHandshake::new(network, client, &server_pk, client_eph).expect("client setup");
    let s = ServerHandshake::new(network, server, server_eph);
    let (msg1, c) = c.hello();
    let (msg2, s) = s.read_hello(&msg1).expect("server reads msg1");
    let (msg3, c) = c.read_hello(&msg2).expect("client reads msg2");
    let pending = s.read_auth(&msg3).expect("server reads msg3");
    let (msg4, server_outcome) = pending.accept();
    let client_outcome = c.read_accept(&msg4).expect("client reads msg4");
    Run {
        msgs: [msg1.to_vec(), msg2.to_vec(), msg3.to_vec(), msg4.to_vec()],
        client: client_outcome,
        server: server_outcome,
    }
}

#[test]
fn positive_cases_match_every_message_and_outcome() {
    let file = load_json("shs/handshake-vectors.json");
    let cases = array(&file, "cases");
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = str_field(case, "name");
        let network = NetworkKey(hex_n(&case["network_key"]));
        let (client, server) = (&case["client"], &case["server"]);
        assert_eq!(
            keypair(client).public().as_bytes()[..],
            hex(&client["longterm_pk"])[..],
            "{name}"
        );
        assert_eq!(
            keypair(client).to_libsodium_secret()[..],
            hex(&client["longterm_sk"])[..]
        );
        assert_eq!(
            keypair(server).public().curve25519()[..],
            hex(&server["longterm_curve_pk"])[..]
        );
        assert_eq!(
            ephemeral(client).public()[..],
            hex(&client["ephemeral_pk"])[..]
        );
        let r = run(
            network,
            keypair(client),
            ephemeral(client),
            keypair(server),
            ephemeral(server),
        );
        for (i, field) in ["msg1", "msg2", "msg3", "msg4"].iter().enumerate() {
            assert_eq!(r.msgs[i], hex(&case[*field]), "{name} {field}");
        }
        check_outcome(&r.client, &case["outcome"]["client"]);
        check_outcome(&r.server, &case["outcome"]["server"]);
    }
}

#[test]
fn shs1_c_vector() {
    let v = load_json("shs/shs1-c-test-vector.json");
    let network = NetworkKey(hex_n(&v["network_key"]));
    let client =
        Keypair::from_libsodium_secret(&hex_n(&v["client_longterm_sk"])).expect("client sk");
    let server =
        Keypair::from_libsodium_secret(&hex_n(&v["server_longterm_sk"])).expect("server sk");
    let client_eph = EphemeralKey::from_secret(hex_n(&v["client_ephemeral_sk"]));
    let server_eph = EphemeralKey::from_secret(hex_n(&v["server_ephemeral_sk"]));
    assert_eq!(client_eph.public()[..], hex(&v["client_ephemeral_pk"])[..]);
    assert_eq!(server_eph.public()[..], hex(&v["server_ephemeral_pk"])[..]);
    let r = run(network, client, client_eph, server, server_eph);
    for (i, field) in ["msg1", "msg2", "msg3", "msg4"].iter().enumerate() {
        assert_eq!(r.msgs[i], hex(&v[*field]), "{field}");
    }
    check_outcome(&r.client, &v["client_outcome"]);
    check_outcome(&r.server, &v["server_outcome"]);
}

/// What a side under test did: the messages it wrote and how it ended.
struct Replay {
    sent: Vec<Vec<u8>>,
    failed_at: Option<(&'static str, Error)>,
    authorize_called_with: Option<[u8; 32]>,
}

fn replay_server(case: &Value, base: &Value) -> Replay {
    let network = NetworkKey(hex_n(&base["network_key"]));
    let peer_sends = array(case, "peer_sends");
    let deny = case["overrides"]["authorize"].as_str() == Some("deny");
    let mut out = Replay {
        sent: vec![],
        failed_at: None,
        authorize_called_with: None,
    };
    let s = ServerHandshake::new(
        network,
        keypair(&base["server"]),
        ephemeral(&base["server"]),
    );
    let msg1: [u8; 64] = hex_n(&peer_sends[0]);
    let (msg2, s) = match s.read_hello(&msg1) {
        Ok(next) => next,
        Err(err) => {
            out.failed_at = Some(("msg1", err));
            return out;
        }
    };
    out.sent.push(msg2.to_vec());
    let msg3: [u8; 112] = hex_n(&peer_sends[1]);
    let pending = match s.read_auth(&msg3) {
        Ok(pending) => pending,
        Err(err) => {
            out.failed_at = Some(("msg3", err));
            return out;
        }
    };
    out.authorize_called_with = Some(*pending.client().as_bytes());
    if deny {
        out.failed_at = Some(("authorize", pending.deny()));
        return out;
    }
    let (msg4, _) = pending.accept();
    out.sent.push(msg4.to_vec());
    out
}

fn replay_client(case: &Value, base: &Value) -> Replay {
    let network = NetworkKey(hex_n(&base["network_key"]));
    let peer_sends = array(case, "peer_sends");
    let server_pk: [u8; 32] = match case["overrides"]["server_longterm_pk"].as_str() {
        Some(_) => hex_n(&case["overrides"]["server_longterm_pk"]),
        None => hex_n(&base["server"]["longterm_pk"]),
    };
    let mut out = Replay {
        sent: vec![],
        failed_at: None,
        authorize_called_with: None,
    };
    let c = match ClientHandshake::new(
        network,
        keypair(&base["client"]),
        &server_pk,
        ephemeral(&base["client"]),
    ) {
        Ok(c) => c,
        Err(err) => {
            out.failed_at = Some(("before_msg1", err));
            return out;
        }
    };
    let (msg1, c) = c.hello();
    out.sent.push(msg1.to_vec());
    let (msg3, c) = match c.read_hello(&hex_n(&peer_sends[0])) {
        Ok(next) => next,
        Err(err) => {
            out.failed_at = Some(("msg2", err));
            return out;
        }
    };
    out.sent.push(msg3.to_vec());
    if let Err(err) = c.read_accept(&hex_n(&peer_sends[1])) {
        out.failed_at = Some(("msg4", err));
    }
    out
}

#[test]
fn negative_cases_reject_at_the_right_step_having_sent_exactly_the_expected_bytes() {
    let file = load_json("shs/handshake-vectors.json");
    let cases = array(&file, "negative_cases");
    assert_eq!(cases.len(), 17);
    let mut checked = 0;
    for case in cases {
        let name = str_field(case, "name");
        let base = array(&file, "cases")
            .iter()
            .find(|c| c["name"] == case["base_case"])
            .expect("base case");
        let expected = &case["expected"];
        let replay = match str_field(case, "side_under_test") {
            "server" => replay_server(case, base),
            "client" => replay_client(case, base),
            other => panic!("unknown side {other}"),
        };
        let (step, err) = replay
            .failed_at
            .unwrap_or_else(|| panic!("{name}: accepted"));
        assert_eq!(err.code(), str_field(expected, "reason"), "{name}: {err}");
        let expected_sent: Vec<Vec<u8>> = array(expected, "sent").iter().map(hex).collect();
        if step == "before_msg1" {
            assert_eq!(expected["may_reject_before_msg1"], true, "{name}");
            assert!(replay.sent.is_empty());
        } else {
            assert_eq!(step, str_field(expected, "rejects_at"), "{name}");
            assert_eq!(replay.sent, expected_sent, "{name}: bytes written");
        }
        if str_field(case, "side_under_test") == "server" {
            let js = &case["js_result"]["authorize_called_with"];
            match replay.authorize_called_with {
                Some(key) => assert_eq!(key[..], hex(js)[..], "{name}: authorize argument"),
                None => assert!(js.is_null(), "{name}: authorize should have been called"),
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 17);
}

#[test]
fn invalid_server_key_is_refused_before_anything_is_sent() {
    let me = Keypair::generate();
    for bad in [[0u8; 32], {
        let mut k = [0u8; 32];
        k[0] = 1;
        k
    }] {
        let err = ClientHandshake::new(
            NetworkKey::default(),
            me.clone(),
            &bad,
            EphemeralKey::generate(),
        )
        .expect_err("small-order key");
        assert_eq!(err.code(), "invalid_server_longterm_key");
        assert_eq!(err.step(), Step::Setup);
    }
}

#[test]
fn libsodium_secret_with_mismatched_halves_is_refused() {
    let mut sk = *Keypair::generate().to_libsodium_secret();
    sk[40] ^= 1;
    let err = Keypair::from_libsodium_secret(&sk).expect_err("mismatch");
    assert_eq!(err.code(), "invalid_secret_key");
}
