//! Unit tests of the handshake internals against the vectors.
//!
//! * `intermediates_of_every_case`: every intermediate value of the 3 positive cases of
//!   `shs/handshake-vectors.json` (labels → seeds → keys → DH values → signatures → box keys),
//!   both from keyline's primitives and from the state the real client and server cores hold.
//! * `js_crypto_records_replay`: every one of the 159 recorded JS `crypto.js` calls in
//!   `shs/test-secret-handshake-data.json`, recomputed from its arguments with keyline's
//!   primitives and replayed through keyline's real typestates.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, VerifyingKey};
use keyline_testkit::{array, hex, hex_n, load_json, sha256_label, str_field};
use serde_json::Value;
use sha2::{Digest, Sha512};

use super::{
    ClientAwaitingAccept, ClientHandshake, OutcomeInputs, ServerHandshake, client_signed_message,
    hello, outcome, server_signed_message,
};
use crate::keys::{EphemeralKey, Keypair, NetworkKey, PublicKey};
use crate::proto::boxstream::{BoxDecoder, BoxEncoder};
use crate::proto::crypto::{ZERO_NONCE, dh, hash, hmac, hmac_verify};
use crate::proto::outcome::HandshakeOutcome;
use crate::proto::secretbox::{BoxKey, open_combined, seal_combined};

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// Asserts two byte strings are equal, printing both as hex with a context.
#[track_caller]
fn same(ctx: &str, what: &str, got: &[u8], want: &[u8]) {
    assert_eq!(hex::encode(got), hex::encode(want), "{ctx}: {what}");
}

/// `x25519(k, 9)`: the public key of a scalar, computed without keyline's wrappers.
fn x25519_base(secret: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(*secret, x25519_dalek::X25519_BASEPOINT_BYTES)
}

/// `clamp(SHA-512(seed)[0..32])`, spec §2, computed independently of `Keypair`.
fn ed2curve_sk(seed: &[u8; 32]) -> [u8; 32] {
    let digest = Sha512::digest(seed);
    let mut scalar = [0u8; 32];
    scalar.copy_from_slice(&digest[..32]);
    scalar[0] &= 248;
    scalar[31] &= 127;
    scalar[31] |= 64;
    scalar
}

fn sign(keypair: &Keypair, message: &[u8]) -> [u8; 64] {
    keypair.signing_key().sign(message).to_bytes()
}

/// Strict Ed25519 verification (spec §2) with a raw 32-byte key.
fn verify_strict(public: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(public), Ok(signature)) = (
        <[u8; 32]>::try_from(public),
        <[u8; 64]>::try_from(signature),
    ) else {
        return false;
    };
    VerifyingKey::from_bytes(&public)
        .and_then(|key| key.verify_strict(message, &Signature::from_bytes(&signature)))
        .is_ok()
}

/// `seal(k, 0^24, m)`.
fn seal_zero(key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 16 + plaintext.len()];
    seal_combined(&BoxKey::new(key), &ZERO_NONCE, plaintext, &mut out);
    out
}

/// `open(k, 0^24, c)`, `None` when the tag does not verify.
fn open_zero(key: &[u8; 32], boxed: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0u8; boxed.len().checked_sub(16)?];
    open_combined(&BoxKey::new(key), &ZERO_NONCE, boxed, &mut out).then_some(out)
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Encodes `payloads` (one write each) and the goodbye.
fn encode_stream(keys: &crate::proto::DirectionKeys, payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut encoder = BoxEncoder::new(keys);
    let mut wire = Vec::new();
    for payload in payloads {
        encoder
            .encode(payload, &mut wire)
            .expect("encode a payload");
    }
    wire.extend_from_slice(&encoder.goodbye().expect("seal the goodbye"));
    wire
}

/// Decodes a whole stream into its packets' plaintexts; panics unless it ends cleanly.
fn decode_stream(keys: &crate::proto::DirectionKeys, wire: &[u8]) -> Vec<Vec<u8>> {
    let mut decoder = BoxDecoder::new(keys);
    let mut packets = Vec::new();
    let mut at = 0;
    while !decoder.is_finished() {
        assert!(at < wire.len(), "stream ended before the goodbye");
        at += decoder.feed(&wire[at..]).expect("decode the stream");
        let plaintext = decoder.plaintext().to_vec();
        if !plaintext.is_empty() {
            decoder.consume(plaintext.len());
            packets.push(plaintext);
        }
    }
    decoder.finish().expect("clean end");
    assert_eq!(at, wire.len(), "bytes after the goodbye");
    packets
}

// ---------------------------------------------------------------------------------------------
// 1. handshake-vectors.json: every intermediate value of the 3 positive cases
// ---------------------------------------------------------------------------------------------

/// The keys of one side of a case, checked against every key field of the vector.
struct Side {
    keypair: Keypair,
    curve_sk: [u8; 32],
    ephemeral_sk: [u8; 32],
    ephemeral_pk: [u8; 32],
}

fn check_labels(case: &Value, name: &str) {
    let labels = case["labels"]
        .as_object()
        .unwrap_or_else(|| panic!("{name}: no labels"));
    let mut expected: Vec<&str> = vec![
        "client_ephemeral_seed",
        "client_longterm_seed",
        "server_ephemeral_seed",
        "server_longterm_seed",
    ];
    if name != "case0" {
        expected.push("network_key");
    }
    expected.sort_unstable();
    let mut seen: Vec<&str> = labels.keys().map(String::as_str).collect();
    seen.sort_unstable();
    assert_eq!(seen, expected, "{name}: label names");
    for (field, label) in labels {
        let label = label
            .as_str()
            .unwrap_or_else(|| panic!("{name}: label {field} not a string"));
        let target = match field.split_once('_') {
            _ if field == "network_key" => &case["network_key"],
            Some((side @ ("client" | "server"), rest)) => &case[side][rest],
            _ => panic!("{name}: unexpected label {field}"),
        };
        same(
            name,
            &format!("SHA-256(label) = {field}"),
            &sha256_label(label),
            &hex(target),
        );
    }
    if name == "case0" {
        same(
            name,
            "network_key = SSB main net",
            &hex(&case["network_key"]),
            &NetworkKey::SSB_MAIN_NET.0,
        );
    }
}

fn check_side(name: &str, role: &str, side: &Value, network: &NetworkKey) -> Side {
    let ctx = format!("{name} {role}");
    let seed: [u8; 32] = hex_n(&side["longterm_seed"]);
    let keypair = Keypair::from_seed(&seed);
    same(
        &ctx,
        "longterm_pk",
        keypair.public().as_bytes(),
        &hex(&side["longterm_pk"]),
    );
    same(
        &ctx,
        "longterm_sk (64)",
        &keypair.to_libsodium_secret()[..],
        &hex(&side["longterm_sk"]),
    );
    let imported = Keypair::from_libsodium_secret(&hex_n(&side["longterm_sk"])).expect("import sk");
    same(
        &ctx,
        "imported pk",
        imported.public().as_bytes(),
        keypair.public().as_bytes(),
    );

    let curve_sk = keypair.curve25519_secret().to_bytes();
    same(
        &ctx,
        "longterm_curve_sk",
        &curve_sk,
        &hex(&side["longterm_curve_sk"]),
    );
    same(
        &ctx,
        "longterm_curve_sk = clamp(SHA-512(seed))",
        &curve_sk,
        &ed2curve_sk(&seed),
    );
    let curve_pk = hex(&side["longterm_curve_pk"]);
    same(
        &ctx,
        "longterm_curve_pk",
        keypair.public().curve25519(),
        &curve_pk,
    );
    let parsed = PublicKey::from_bytes(keypair.public().as_bytes()).expect("usable pk");
    same(
        &ctx,
        "PublicKey::from_bytes curve",
        parsed.curve25519(),
        &curve_pk,
    );
    same(
        &ctx,
        "X25519(curve_sk, 9) = curve_pk",
        &x25519_base(&curve_sk),
        &curve_pk,
    );

    let ephemeral_seed: [u8; 32] = hex_n(&side["ephemeral_seed"]);
    let js_ephemeral = Keypair::from_seed(&ephemeral_seed);
    let ephemeral_sk = js_ephemeral.curve25519_secret().to_bytes();
    same(
        &ctx,
        "ephemeral_sk = ed2curve_sk(seed)",
        &ephemeral_sk,
        &hex(&side["ephemeral_sk"]),
    );
    let ephemeral_pk: [u8; 32] = hex_n(&side["ephemeral_pk"]);
    same(
        &ctx,
        "ephemeral_pk = ed2curve_pk(pk(seed))",
        js_ephemeral.public().curve25519(),
        &ephemeral_pk,
    );
    same(
        &ctx,
        "X25519(ephemeral_sk, 9)",
        &x25519_base(&ephemeral_sk),
        &ephemeral_pk,
    );
    same(
        &ctx,
        "EphemeralKey public",
        EphemeralKey::from_secret(ephemeral_sk).public(),
        &ephemeral_pk,
    );
    same(
        &ctx,
        "ephemeral_hmac",
        &hmac(network, &ephemeral_pk),
        &hex(&side["ephemeral_hmac"]),
    );
    Side {
        keypair,
        curve_sk,
        ephemeral_sk,
        ephemeral_pk,
    }
}

/// The expected intermediates of a case, checked against keyline's primitives (both sides'
/// formulas where there are two).
fn check_derived(name: &str, case: &Value, network: &NetworkKey, client: &Side, server: &Side) {
    let ctx = name;
    let field = |key: &str| hex(&case[key]);
    let c_eph = EphemeralKey::from_secret(client.ephemeral_sk);
    let s_eph = EphemeralKey::from_secret(server.ephemeral_sk);
    let a_pub = *client.keypair.public().as_bytes();
    let b_pub = *server.keypair.public().as_bytes();
    let dh_ok = |s, p: &[u8; 32]| dh(s, p).expect("contributory DH");

    let ab = dh_ok(c_eph.secret(), &server.ephemeral_pk);
    same(ctx, "ab (client)", &ab[..], &field("ab"));
    same(
        ctx,
        "ab (server)",
        &dh_ok(s_eph.secret(), &client.ephemeral_pk)[..],
        &field("ab"),
    );
    let a_big_b = dh_ok(c_eph.secret(), server.keypair.public().curve25519());
    same(ctx, "aB (client)", &a_big_b[..], &field("aB"));
    let server_curve = x25519_dalek::StaticSecret::from(server.curve_sk);
    same(
        ctx,
        "aB (server)",
        &dh_ok(&server_curve, &client.ephemeral_pk)[..],
        &field("aB"),
    );
    let client_curve = x25519_dalek::StaticSecret::from(client.curve_sk);
    let big_a_b = dh_ok(&client_curve, &server.ephemeral_pk);
    same(ctx, "Ab (client)", &big_a_b[..], &field("Ab"));
    let ab_server = dh_ok(s_eph.secret(), client.keypair.public().curve25519());
    same(ctx, "Ab (server)", &ab_server[..], &field("Ab"));

    let ab_hash = hash(&[&ab[..]]);
    same(ctx, "H_ab", &ab_hash[..], &field("H_ab"));
    let sig_a_message = client_signed_message(network, &b_pub, &ab_hash);
    same(
        ctx,
        "sig_A_message",
        &sig_a_message,
        &field("sig_A_message"),
    );
    same(
        ctx,
        "sig_A_message = N|B_pub|H_ab",
        &sig_a_message,
        &concat(&[&network.0, &b_pub, &ab_hash[..]]),
    );
    let sig_a = sign(&client.keypair, &sig_a_message);
    same(ctx, "sig_A", &sig_a, &field("sig_A"));
    assert!(
        verify_strict(&a_pub, &sig_a_message, &sig_a),
        "{ctx}: sig_A verifies strictly"
    );
    let k3 = hash(&[&network.0, &ab[..], &a_big_b[..]]);
    same(ctx, "K3", &k3[..], &field("K3"));
    let msg3_plaintext = concat(&[&sig_a, &a_pub]);
    same(
        ctx,
        "msg3_plaintext",
        &msg3_plaintext,
        &field("msg3_plaintext"),
    );
    same(
        ctx,
        "msg3 = seal(K3, 0, plaintext)",
        &seal_zero(&k3, &msg3_plaintext),
        &field("msg3"),
    );

    let sig_b_message = server_signed_message(network, &sig_a, &a_pub, &ab_hash);
    same(
        ctx,
        "sig_B_message",
        &sig_b_message,
        &field("sig_B_message"),
    );
    same(
        ctx,
        "sig_B_message = N|msg3_plaintext|H_ab",
        &sig_b_message,
        &concat(&[&network.0, &msg3_plaintext, &ab_hash[..]]),
    );
    let sig_b = sign(&server.keypair, &sig_b_message);
    same(ctx, "sig_B", &sig_b, &field("sig_B"));
    assert!(
        verify_strict(&b_pub, &sig_b_message, &sig_b),
        "{ctx}: sig_B verifies strictly"
    );
    let k4 = hash(&[&network.0, &ab[..], &a_big_b[..], &big_a_b[..]]);
    same(ctx, "K4", &k4[..], &field("K4"));
    same(
        ctx,
        "msg4 = seal(K4, 0, sig_B)",
        &seal_zero(&k4, &sig_b),
        &field("msg4"),
    );
    same(ctx, "S = SHA-256(K4)", &hash(&[&k4[..]])[..], &field("S"));
}

/// Runs both cores with the case's keys and injected ephemerals; checks the state each core
/// holds against the vector. Returns both outcomes.
fn run_cores(
    name: &str,
    case: &Value,
    network: NetworkKey,
    client: &Side,
    server: &Side,
) -> (HandshakeOutcome, HandshakeOutcome) {
    let ctx = name;
    let field = |key: &str| hex(&case[key]);
    let b_pub = *server.keypair.public().as_bytes();
    let c = ClientHandshake::new(
        network,
        client.keypair.clone(),
        &b_pub,
        EphemeralKey::from_secret(client.ephemeral_sk),
    )
    .expect("client setup");
    let s = ServerHandshake::new(
        network,
        server.keypair.clone(),
        EphemeralKey::from_secret(server.ephemeral_sk),
    );

    let (msg1, c) = c.hello();
    same(ctx, "msg1", &msg1, &field("msg1"));
    let (msg2, s) = s.read_hello(&msg1).expect("server reads msg1");
    same(ctx, "msg2", &msg2, &field("msg2"));
    {
        let (ab, ab_hash) = s.trace_ab();
        same(ctx, "server ab", &ab[..], &field("ab"));
        same(ctx, "server H_ab", &ab_hash[..], &field("H_ab"));
    }
    let (msg3, c) = c.read_hello(&msg2).expect("client reads msg2");
    same(ctx, "msg3", &msg3, &field("msg3"));
    check_client_state(ctx, &c, case);
    let pending = s.read_auth(&msg3).expect("server reads msg3");
    same(
        ctx,
        "server sees the client key",
        pending.client().as_bytes(),
        client.keypair.public().as_bytes(),
    );
    {
        let (sig_a, ab_hash, k4) = pending.trace();
        same(ctx, "server sig_A", sig_a, &field("sig_A"));
        same(ctx, "server H_ab", &ab_hash[..], &field("H_ab"));
        same(ctx, "server K4", &k4[..], &field("K4"));
    }
    let (msg4, server_outcome) = pending.accept();
    same(ctx, "msg4", &msg4, &field("msg4"));
    let sig_b =
        open_zero(&c.k4, &msg4).unwrap_or_else(|| panic!("{ctx}: msg4 opens with the client's K4"));
    same(ctx, "sig_B (opened from msg4)", &sig_b, &field("sig_B"));
    let client_outcome = c.read_accept(&msg4).expect("client reads msg4");

    // The outcome follows from S (spec §7).
    let s_bytes = field("S");
    let a_pub = client.keypair.public().as_bytes();
    let to_server = hash(&[&s_bytes, &b_pub]);
    let to_client = hash(&[&s_bytes, a_pub]);
    same(
        ctx,
        "client send key = hash(S|B_pub)",
        client_outcome.send().key(),
        &to_server[..],
    );
    same(
        ctx,
        "client send nonce = msg2[..24]",
        client_outcome.send().nonce(),
        &msg2[..24],
    );
    same(
        ctx,
        "client recv key = hash(S|A_pub)",
        client_outcome.recv().key(),
        &to_client[..],
    );
    same(
        ctx,
        "client recv nonce = msg1[..24]",
        client_outcome.recv().nonce(),
        &msg1[..24],
    );
    same(
        ctx,
        "server send key = hash(S|A_pub)",
        server_outcome.send().key(),
        &to_client[..],
    );
    same(
        ctx,
        "server send nonce = msg1[..24]",
        server_outcome.send().nonce(),
        &msg1[..24],
    );
    same(
        ctx,
        "server recv key = hash(S|B_pub)",
        server_outcome.recv().key(),
        &to_server[..],
    );
    same(
        ctx,
        "server recv nonce = msg2[..24]",
        server_outcome.recv().nonce(),
        &msg2[..24],
    );
    same(ctx, "client peer", client_outcome.peer().as_bytes(), &b_pub);
    same(ctx, "server peer", server_outcome.peer().as_bytes(), a_pub);
    same(
        ctx,
        "outcome.client_to_server.key",
        &to_server[..],
        &hex(&case["outcome"]["client_to_server"]["key"]),
    );
    same(
        ctx,
        "outcome.server_to_client.key",
        &to_client[..],
        &hex(&case["outcome"]["server_to_client"]["key"]),
    );
    (client_outcome, server_outcome)
}

/// The client's state after msg2 (`ClientAwaitingAccept`) holds exactly the vector's values.
fn check_client_state(ctx: &str, c: &ClientAwaitingAccept, case: &Value) {
    let field = |key: &str| hex(&case[key]);
    same(ctx, "client ab", &c.trace.ab[..], &field("ab"));
    same(ctx, "client aB", &c.trace.a_b[..], &field("aB"));
    same(ctx, "client Ab", &c.trace.big_a_b[..], &field("Ab"));
    same(ctx, "client K3", &c.trace.k3[..], &field("K3"));
    same(ctx, "client H_ab", &c.ab_hash[..], &field("H_ab"));
    same(ctx, "client sig_A", &c.sig_a, &field("sig_A"));
    same(ctx, "client K4", &c.k4[..], &field("K4"));
    same(
        ctx,
        "S = SHA-256(client K4)",
        &hash(&[&c.k4[..]])[..],
        &field("S"),
    );
}

fn check_after_handshake(case: &Value, client: &HandshakeOutcome, server: &HandshakeOutcome) {
    let after = &case["after_handshake"];
    for (sender, receiver, payloads_key, wire_key) in [
        (
            client,
            server,
            "client_payloads",
            "client_to_server_boxstream",
        ),
        (
            server,
            client,
            "server_payloads",
            "server_to_client_boxstream",
        ),
    ] {
        let payloads: Vec<Vec<u8>> = array(after, payloads_key).iter().map(hex).collect();
        assert!(!payloads.is_empty(), "case0: {payloads_key} is empty");
        let wire = hex(&after[wire_key]);
        same(
            "case0",
            wire_key,
            &encode_stream(sender.send(), &payloads),
            &wire,
        );
        assert_eq!(
            decode_stream(receiver.recv(), &wire),
            payloads,
            "case0: {wire_key} decodes"
        );
    }
}

#[test]
fn intermediates_of_every_case() {
    let file = load_json("shs/handshake-vectors.json");
    let cases = array(&file, "cases");
    assert_eq!(cases.len(), 3, "number of positive cases");
    let mut checked = Vec::new();
    for case in cases {
        let name = str_field(case, "name");
        check_labels(case, name);
        let network = NetworkKey(hex_n(&case["network_key"]));
        let client = check_side(name, "client", &case["client"], &network);
        let server = check_side(name, "server", &case["server"], &network);
        check_derived(name, case, &network, &client, &server);
        let (client_outcome, server_outcome) = run_cores(name, case, network, &client, &server);
        let has_after = !case["after_handshake"].is_null();
        assert_eq!(
            has_after,
            name == "case0",
            "{name}: after_handshake only in case0"
        );
        if has_after {
            check_after_handshake(case, &client_outcome, &server_outcome);
        }
        checked.push(name.to_string());
    }
    assert_eq!(checked, ["case0", "case1", "case2"]);
}

// ---------------------------------------------------------------------------------------------
// 2. test-secret-handshake-data.json: the 159 recorded JS crypto.js calls
// ---------------------------------------------------------------------------------------------

/// Accessors for a recorded JS state object (`args[0]`, which shows the state *after* the call).
struct State<'a>(&'a Value);

impl<'a> State<'a> {
    fn network(&self) -> NetworkKey {
        NetworkKey(hex_n(&self.0["app_key"]))
    }
    fn local(&self, key: &str) -> &'a Value {
        &self.0["local"][key]
    }
    fn remote(&self, key: &str) -> &'a Value {
        &self.0["remote"][key]
    }
    fn get(&self, key: &str) -> &'a Value {
        &self.0[key]
    }
    fn b32(value: &Value) -> [u8; 32] {
        hex_n(value)
    }
    fn kx_pk(&self) -> [u8; 32] {
        Self::b32(self.local("kx_pk"))
    }
    fn kx_sk(&self) -> [u8; 32] {
        Self::b32(self.local("kx_sk"))
    }
    fn keypair(&self) -> Keypair {
        let keypair = Keypair::from_libsodium_secret(&hex_n(self.local("secretKey")))
            .expect("the recorded 64-byte secret key imports");
        assert_eq!(
            keypair.public().as_bytes()[..],
            hex(self.local("publicKey"))[..],
            "local key halves"
        );
        keypair
    }
    fn ephemeral(&self) -> EphemeralKey {
        let key = EphemeralKey::from_secret(self.kx_sk());
        assert_eq!(
            key.public()[..],
            self.kx_pk()[..],
            "kx_pk = X25519(kx_sk, 9)"
        );
        key
    }
    /// The peer's hello as it arrived: `remote.app_mac | remote.kx_pk`.
    fn remote_hello(&self) -> [u8; 64] {
        let mut msg = [0u8; 64];
        msg[..32].copy_from_slice(&hex(self.remote("app_mac")));
        msg[32..].copy_from_slice(&hex(self.remote("kx_pk")));
        msg
    }
    fn is_client(&self) -> bool {
        let client = self.local("hello").is_string();
        let server = self.remote("hello").is_string();
        assert!(client != server, "cannot tell the role of this state");
        client
    }
}

struct Replay<'a> {
    records: &'a [Value],
    /// Rejections (records with `result: null`) that keyline reproduced.
    rejections: usize,
    /// Complete handshakes driven through both real cores.
    handshakes: usize,
}

impl<'a> Replay<'a> {
    /// The latest record before `index` with this name whose state has this `local.kx_pk`.
    fn earlier(
        &self,
        index: usize,
        kx_pk: &[u8; 32],
        pred: impl Fn(&Value) -> bool,
    ) -> Option<&'a Value> {
        let kx = hex::encode(kx_pk);
        self.records[..index]
            .iter()
            .rev()
            .find(|r| r["args"][0]["local"]["kx_pk"].as_str() == Some(kx.as_str()) && pred(r))
    }

    fn earlier_named(&self, index: usize, kx_pk: &[u8; 32], name: &str) -> Option<&'a Value> {
        self.earlier(index, kx_pk, |r| r["name"] == name)
    }

    fn check(&mut self, index: usize) {
        let record = &self.records[index];
        let name = str_field(record, "name");
        let ctx = format!("record {index} ({name})");
        let args = array(record, "args");
        let result = &record["result"];
        match name {
            "initialize" => check_initialize(&ctx, args, result),
            "createChallenge" => check_create_challenge(&ctx, args, result),
            "verifyChallenge" => self.check_verify_challenge(&ctx, index, args, result),
            "clientVerifyChallenge" => {
                self.check_client_verify_challenge(&ctx, index, args, result)
            }
            "clientCreateAuth" => check_client_create_auth(&ctx, args, result),
            "serverVerifyAuth" => self.check_server_verify_auth(&ctx, args, result),
            "serverCreateAccept" => self.check_server_create_accept(&ctx, index, args, result),
            "clientVerifyAccept" => self.check_client_verify_accept(&ctx, args, result),
            "clean" => self.check_clean(&ctx, index, args, result),
            "toKeys" => check_to_keys(&ctx, args, result),
            other => panic!(
                "{ctx}: no check for the JS function {other:?}; the record cannot be verified"
            ),
        }
    }

    fn check_verify_challenge(&mut self, ctx: &str, index: usize, args: &[Value], result: &Value) {
        assert_eq!(args.len(), 2, "{ctx}: args");
        let st = State(&args[0]);
        let network = st.network();
        let msg: [u8; 64] = hex_n(&args[1]);
        let (mac, remote_kx) = (&msg[..32], <[u8; 32]>::try_from(&msg[32..]).expect("32"));
        let hmac_ok = hmac_verify(&network, &remote_kx, mac);
        let secret = dh(st.ephemeral().secret(), &remote_kx);
        let is_client = st.remote("publicKey").is_string();
        if result.is_null() {
            assert!(
                !hmac_ok || secret.is_none(),
                "{ctx}: JS rejected a hello that keyline's checks accept"
            );
        } else {
            assert_eq!(result, &args[0], "{ctx}: the result is the state");
            assert!(
                hmac_ok,
                "{ctx}: JS accepted a hello whose HMAC keyline rejects"
            );
            same(ctx, "remote.kx_pk", &remote_kx, &hex(st.remote("kx_pk")));
            same(ctx, "remote.app_mac", mac, &hex(st.remote("app_mac")));
            let secret = secret.unwrap_or_else(|| panic!("{ctx}: all-zero DH accepted by JS"));
            same(
                ctx,
                "secret = DH(kx_sk, remote.kx_pk)",
                &secret[..],
                &hex(st.get("secret")),
            );
            same(
                ctx,
                "shash = hash(secret)",
                &hash(&[&secret[..]])[..],
                &hex(st.get("shash")),
            );
        }
        if is_client {
            // The inner call of clientVerifyChallenge: the outer record must follow with the
            // same message and the same verdict; the client core is driven there.
            let next = self
                .records
                .get(index + 1)
                .unwrap_or_else(|| panic!("{ctx}: no outer record"));
            assert_eq!(
                next["name"], "clientVerifyChallenge",
                "{ctx}: a client state's verifyChallenge is the inner call"
            );
            assert_eq!(
                next["args"][1], args[1],
                "{ctx}: outer call got the same msg2"
            );
            assert_eq!(
                next["args"][0]["local"]["kx_pk"], args[0]["local"]["kx_pk"],
                "{ctx}: same state"
            );
            assert_eq!(
                next["result"].is_null(),
                result.is_null(),
                "{ctx}: same verdict as the outer call"
            );
            if result.is_null() {
                // Counted with the outer record's rejection, where the core is driven.
                self.rejections += 1;
            }
            return;
        }
        // Server role: keyline's server core reads msg1.
        let server = ServerHandshake::new(network, st.keypair(), st.ephemeral());
        match server.read_hello(&msg) {
            Ok((msg2, s)) => {
                assert!(
                    !result.is_null(),
                    "{ctx}: keyline's server accepted a msg1 that JS rejected"
                );
                same(
                    ctx,
                    "msg2 = app_mac|kx_pk",
                    &msg2,
                    &concat(&[&hex(st.local("app_mac")), &st.kx_pk()]),
                );
                let (ab, ab_hash) = s.trace_ab();
                same(ctx, "server core ab", &ab[..], &hex(st.get("secret")));
                same(ctx, "server core H_ab", &ab_hash[..], &hex(st.get("shash")));
            }
            Err(err) => {
                assert!(
                    result.is_null(),
                    "{ctx}: keyline's server rejected a msg1 that JS accepted: {err}"
                );
                let expected = if hmac_ok {
                    "low_order_ephemeral"
                } else {
                    "hmac"
                };
                assert_eq!(err.code(), expected, "{ctx}: rejection reason");
                self.rejections += 1;
            }
        }
    }

    fn check_client_verify_challenge(
        &mut self,
        ctx: &str,
        index: usize,
        args: &[Value],
        result: &Value,
    ) {
        assert_eq!(args.len(), 2, "{ctx}: args");
        let inner = &self.records[index.checked_sub(1).expect("an earlier record")];
        assert_eq!(
            inner["name"], "verifyChallenge",
            "{ctx}: the inner verifyChallenge is recorded first"
        );
        let st = State(&args[0]);
        let network = st.network();
        let msg: [u8; 64] = hex_n(&args[1]);
        let server_key: [u8; 32] = hex_n(st.remote("publicKey"));
        let keypair = st.keypair();

        // Drive keyline's client core with the same keys and the same msg2.
        let core = ClientHandshake::new(network, keypair.clone(), &server_key, st.ephemeral());
        let core = match core {
            Ok(core) => core,
            Err(err) => {
                assert!(
                    result.is_null(),
                    "{ctx}: keyline refused a server key JS accepted: {err}"
                );
                self.rejections += 1;
                return;
            }
        };
        let (msg1, core) = core.hello();
        same(
            ctx,
            "msg1 = local.app_mac|kx_pk",
            &msg1,
            &concat(&[&hex(st.local("app_mac")), &st.kx_pk()]),
        );
        let created = self
            .earlier_named(index, &st.kx_pk(), "createChallenge")
            .unwrap_or_else(|| panic!("{ctx}: no createChallenge for this state"));
        same(
            ctx,
            "msg1 = the recorded createChallenge",
            &msg1,
            &hex(&created["result"]),
        );
        let outcome = core.read_hello(&msg);

        if result.is_null() {
            let err = match outcome {
                Ok(_) => panic!("{ctx}: keyline's client accepted a msg2 that JS rejected"),
                Err(err) => err,
            };
            let remote_kx: [u8; 32] = msg[32..].try_into().expect("32");
            let expected = if !hmac_verify(&network, &remote_kx, &msg[..32]) {
                "hmac"
            } else if dh(st.ephemeral().secret(), &remote_kx).is_none() {
                "low_order_ephemeral"
            } else {
                panic!("{ctx}: JS rejected msg2 for a reason keyline's checks do not see")
            };
            assert_eq!(err.code(), expected, "{ctx}: rejection reason");
            self.rejections += 1;
            return;
        }
        assert_eq!(result, &args[0], "{ctx}: the result is the state");
        let (msg3, state) =
            outcome.unwrap_or_else(|err| panic!("{ctx}: keyline's client rejected msg2: {err}"));

        // Primitives.
        let remote = PublicKey::from_bytes(&server_key).expect("usable server key");
        let a_bob = dh(st.ephemeral().secret(), remote.curve25519()).expect("contributory aB");
        same(
            ctx,
            "a_bob = DH(kx_sk, curve(remote.publicKey))",
            &a_bob[..],
            &hex(st.get("a_bob")),
        );
        let secret = hex(st.get("secret"));
        let secret2 = hash(&[&network.0, &secret, &a_bob[..]]);
        same(
            ctx,
            "secret2 = hash(app_key|secret|a_bob)",
            &secret2[..],
            &hex(st.get("secret2")),
        );
        let shash: [u8; 32] = hex_n(st.get("shash"));
        let signed = client_signed_message(&network, &server_key, &shash);
        same(
            ctx,
            "signed = app_key|remote.publicKey|shash",
            &signed,
            &concat(&[&network.0, &server_key, &shash]),
        );
        let hello_js = hex(st.local("hello"));
        same(
            ctx,
            "hello = sign(...)|publicKey",
            &hello_js,
            &concat(&[&sign(&keypair, &signed), keypair.public().as_bytes()]),
        );
        assert!(
            verify_strict(keypair.public().as_bytes(), &signed, &hello_js[..64]),
            "{ctx}: sig_A verifies strictly"
        );

        // The core's state.
        same(ctx, "core ab = secret", &state.trace.ab[..], &secret);
        same(ctx, "core H_ab = shash", &state.ab_hash[..], &shash);
        same(ctx, "core aB = a_bob", &state.trace.a_b[..], &a_bob[..]);
        same(ctx, "core K3 = secret2", &state.trace.k3[..], &secret2[..]);
        same(ctx, "core sig_A", &state.sig_a, &hello_js[..64]);
        let opened = open_zero(&secret2, &msg3)
            .unwrap_or_else(|| panic!("{ctx}: core msg3 opens with secret2"));
        same(ctx, "core msg3 plaintext = hello", &opened, &hello_js);
    }

    fn check_server_verify_auth(&mut self, ctx: &str, args: &[Value], result: &Value) {
        assert_eq!(args.len(), 2, "{ctx}: args");
        let st = State(&args[0]);
        let network = st.network();
        let msg3: [u8; 112] = hex_n(&args[1]);
        let keypair = st.keypair();
        let remote_kx: [u8; 32] = hex_n(st.remote("kx_pk"));

        // Values JS computes before it tries to open msg3 (present in both outcomes).
        let secret = dh(st.ephemeral().secret(), &remote_kx).expect("contributory ab");
        same(
            ctx,
            "secret = DH(kx_sk, remote.kx_pk)",
            &secret[..],
            &hex(st.get("secret")),
        );
        let shash = hash(&[&secret[..]]);
        same(ctx, "shash", &shash[..], &hex(st.get("shash")));
        let a_bob = dh(&keypair.curve25519_secret(), &remote_kx).expect("contributory aB");
        same(
            ctx,
            "a_bob = DH(curve(local.secretKey), remote.kx_pk)",
            &a_bob[..],
            &hex(st.get("a_bob")),
        );
        let secret2 = hash(&[&network.0, &secret[..], &a_bob[..]]);
        same(ctx, "secret2", &secret2[..], &hex(st.get("secret2")));

        let opened = open_zero(&secret2, &msg3);
        let signed = client_signed_message(&network, keypair.public().as_bytes(), &shash);
        let verified = opened
            .as_ref()
            .is_some_and(|p| verify_strict(&p[64..], &signed, &p[..64]));

        // Drive keyline's server core: msg1 as it arrived, then msg3.
        let core = ServerHandshake::new(network, keypair.clone(), st.ephemeral());
        let (msg2, core) = core
            .read_hello(&st.remote_hello())
            .expect("server core reads the recorded msg1");
        same(
            ctx,
            "core msg2 = local.app_mac|kx_pk",
            &msg2,
            &concat(&[&hex(st.local("app_mac")), &st.kx_pk()]),
        );
        let read = core.read_auth(&msg3);

        if result.is_null() {
            assert!(
                !verified,
                "{ctx}: JS rejected a msg3 that opens and verifies strictly"
            );
            let err = match read {
                Ok(_) => panic!("{ctx}: keyline's server accepted a msg3 that JS rejected"),
                Err(err) => err,
            };
            let expected = if opened.is_none() {
                "box_open"
            } else {
                "signature"
            };
            assert_eq!(err.code(), expected, "{ctx}: rejection reason");
            assert!(
                st.remote("hello").is_null() == opened.is_none(),
                "{ctx}: JS stored remote.hello iff msg3 opened"
            );
            self.rejections += 1;
            return;
        }
        assert_eq!(result, &args[0], "{ctx}: the result is the state");
        assert!(
            verified,
            "{ctx}: JS accepted a msg3 that does not open and verify strictly"
        );
        let plaintext = opened.expect("opened");
        same(
            ctx,
            "remote.hello = open(secret2, msg3)",
            &plaintext,
            &hex(st.remote("hello")),
        );
        let client_key: [u8; 32] = hex_n(st.remote("publicKey"));
        same(
            ctx,
            "remote.publicKey = hello[64..]",
            &plaintext[64..],
            &client_key,
        );
        let client = PublicKey::from_bytes(&client_key).expect("usable client key");
        let b_alice = dh(st.ephemeral().secret(), client.curve25519()).expect("contributory Ab");
        same(
            ctx,
            "b_alice = DH(kx_sk, curve(remote.publicKey))",
            &b_alice[..],
            &hex(st.get("b_alice")),
        );
        let secret3 = hash(&[&network.0, &secret[..], &a_bob[..], &b_alice[..]]);
        same(ctx, "secret3", &secret3[..], &hex(st.get("secret3")));

        let pending =
            read.unwrap_or_else(|err| panic!("{ctx}: keyline's server rejected msg3: {err}"));
        same(
            ctx,
            "core client key",
            pending.client().as_bytes(),
            &client_key,
        );
        let (sig_a, ab_hash, k4) = pending.trace();
        same(ctx, "core sig_A", sig_a, &plaintext[..64]);
        same(ctx, "core H_ab", &ab_hash[..], &shash[..]);
        same(ctx, "core K4 = secret3", &k4[..], &secret3[..]);
    }

    fn check_server_create_accept(
        &mut self,
        ctx: &str,
        index: usize,
        args: &[Value],
        result: &Value,
    ) {
        assert_eq!(args.len(), 1, "{ctx}: args");
        let st = State(&args[0]);
        let network = st.network();
        let keypair = st.keypair();
        let hello_js = hex(st.remote("hello"));
        let shash: [u8; 32] = hex_n(st.get("shash"));
        let sig_a: [u8; 64] = hello_js[..64].try_into().expect("64");
        let client_key: [u8; 32] = hello_js[64..].try_into().expect("32");
        let signed = server_signed_message(&network, &sig_a, &client_key, &shash);
        same(
            ctx,
            "signed = app_key|remote.hello|shash",
            &signed,
            &concat(&[&network.0, &hello_js, &shash]),
        );
        let secret3: [u8; 32] = hex_n(st.get("secret3"));
        let expected = seal_zero(&secret3, &sign(&keypair, &signed));
        same(
            ctx,
            "result = seal(secret3, 0, sign(local, signed))",
            &expected,
            &hex(result),
        );

        // Drive keyline's server core through msg1 and the msg3 recorded by serverVerifyAuth.
        let verify = self
            .earlier_named(index, &st.kx_pk(), "serverVerifyAuth")
            .unwrap_or_else(|| panic!("{ctx}: no serverVerifyAuth for this state"));
        let msg3: [u8; 112] = hex_n(&verify["args"][1]);
        let core = ServerHandshake::new(network, keypair, st.ephemeral());
        let (_, core) = core
            .read_hello(&st.remote_hello())
            .expect("server core reads msg1");
        let pending = core.read_auth(&msg3).expect("server core reads msg3");
        let (msg4, _) = pending.accept();
        same(ctx, "core msg4", &msg4, &hex(result));
    }

    fn check_client_verify_accept(&mut self, ctx: &str, args: &[Value], result: &Value) {
        assert_eq!(args.len(), 2, "{ctx}: args");
        let st = State(&args[0]);
        let network = st.network();
        let keypair = st.keypair();
        let msg4: [u8; 80] = hex_n(&args[1]);
        let server_key: [u8; 32] = hex_n(st.remote("publicKey"));
        let remote_kx: [u8; 32] = hex_n(st.remote("kx_pk"));

        let b_alice = dh(&keypair.curve25519_secret(), &remote_kx).expect("contributory Ab");
        same(
            ctx,
            "b_alice = DH(curve(local.secretKey), remote.kx_pk)",
            &b_alice[..],
            &hex(st.get("b_alice")),
        );
        let (secret, a_bob) = (hex(st.get("secret")), hex(st.get("a_bob")));
        let secret3 = hash(&[&network.0, &secret, &a_bob, &b_alice[..]]);
        same(
            ctx,
            "secret3 = hash(app_key|secret|a_bob|b_alice)",
            &secret3[..],
            &hex(st.get("secret3")),
        );
        let hello_js = hex(st.local("hello"));
        let shash: [u8; 32] = hex_n(st.get("shash"));
        let sig_a: [u8; 64] = hello_js[..64].try_into().expect("64");
        let signed = server_signed_message(&network, &sig_a, keypair.public().as_bytes(), &shash);
        same(
            ctx,
            "signed = app_key|local.hello|shash",
            &signed,
            &concat(&[&network.0, &hello_js, &shash]),
        );
        let sig_b = open_zero(&secret3, &msg4);
        let verified = sig_b
            .as_ref()
            .is_some_and(|sig| verify_strict(&server_key, &signed, sig));

        // Drive keyline's client core: msg2 as it arrived, then msg4.
        let core = ClientHandshake::new(network, keypair, &server_key, st.ephemeral())
            .expect("client setup");
        let (_, core) = core.hello();
        let (_, core) = core
            .read_hello(&st.remote_hello())
            .expect("client core reads msg2");
        same(
            ctx,
            "core Ab = b_alice",
            &core.trace.big_a_b[..],
            &b_alice[..],
        );
        same(ctx, "core K4 = secret3", &core.k4[..], &secret3[..]);
        let read = core.read_accept(&msg4);
        if result.is_null() {
            assert!(
                !verified,
                "{ctx}: JS rejected a msg4 that opens and verifies strictly"
            );
            assert!(
                read.is_err(),
                "{ctx}: keyline's client accepted a msg4 that JS rejected"
            );
            self.rejections += 1;
            return;
        }
        assert_eq!(result, &args[0], "{ctx}: the result is the state");
        assert!(
            verified,
            "{ctx}: JS accepted a msg4 that does not open and verify strictly"
        );
        let outcome =
            read.unwrap_or_else(|err| panic!("{ctx}: keyline's client rejected msg4: {err}"));
        same(ctx, "core peer", outcome.peer().as_bytes(), &server_key);
    }

    fn check_clean(&mut self, ctx: &str, index: usize, args: &[Value], result: &Value) {
        assert_eq!(args.len(), 1, "{ctx}: args");
        assert_eq!(result, &args[0], "{ctx}: the result is the state");
        let st = State(&args[0]);
        for wiped in ["shash", "secret2", "secret3", "a_bob", "b_alice"] {
            assert!(st.get(wiped).is_null(), "{ctx}: {wiped} is wiped");
        }
        assert!(st.local("kx_sk").is_null(), "{ctx}: kx_sk is wiped");
        // `clean` zeroes secret3 in place, so take it from the same state recorded earlier.
        let before = self
            .earlier(index, &st.kx_pk(), |r| r["args"][0]["secret3"].is_string())
            .unwrap_or_else(|| panic!("{ctx}: no earlier record of this state holds secret3"));
        let secret3: [u8; 32] = hex_n(&before["args"][0]["secret3"]);
        let s = hash(&[&secret3]);
        same(
            ctx,
            "secret = S = hash(secret3)",
            &s[..],
            &hex(st.get("secret")),
        );
        let local_pk: [u8; 32] = hex_n(st.local("publicKey"));
        let remote_pk: [u8; 32] = hex_n(st.remote("publicKey"));
        let encrypt_key = hex(st.get("encryptKey"));
        let decrypt_key = hex(st.get("decryptKey"));
        same(
            ctx,
            "encryptKey = hash(S|remote.publicKey)",
            &hash(&[&s[..], &remote_pk])[..],
            &encrypt_key,
        );
        same(
            ctx,
            "decryptKey = hash(S|local.publicKey)",
            &hash(&[&s[..], &local_pk])[..],
            &decrypt_key,
        );

        // keyline's outcome derivation from K4 and the two hellos' MACs.
        let local_mac: [u8; 32] = hex_n(st.local("app_mac"));
        let remote_mac: [u8; 32] = hex_n(st.remote("app_mac"));
        let local = PublicKey::from_bytes(&local_pk).expect("usable local key");
        let remote = PublicKey::from_bytes(&remote_pk).expect("usable remote key");
        let is_client = st.is_client();
        let k4 = zeroize::Zeroizing::new(secret3);
        let (client, server, client_mac, server_mac) = if is_client {
            (&local, &remote, &local_mac, &remote_mac)
        } else {
            (&remote, &local, &remote_mac, &local_mac)
        };
        let keys = outcome(
            OutcomeInputs {
                k4: &k4,
                client,
                server,
                client_hello_mac: client_mac,
                server_hello_mac: server_mac,
            },
            is_client,
        );
        check_js_outcome(ctx, &keys, &st);
    }
}

/// A keyline outcome against a cleaned JS state: `encryptKey`/`decryptKey`, the nonces
/// `remote.app_mac[..24]` (sending) and `local.app_mac[..24]` (receiving), and the peer.
fn check_js_outcome(ctx: &str, keys: &HandshakeOutcome, st: &State<'_>) {
    same(
        ctx,
        "send key = encryptKey",
        keys.send().key(),
        &hex(st.get("encryptKey")),
    );
    same(
        ctx,
        "send nonce = remote.app_mac[..24]",
        keys.send().nonce(),
        &hex(st.remote("app_mac"))[..24],
    );
    same(
        ctx,
        "recv key = decryptKey",
        keys.recv().key(),
        &hex(st.get("decryptKey")),
    );
    same(
        ctx,
        "recv nonce = local.app_mac[..24]",
        keys.recv().nonce(),
        &hex(st.local("app_mac"))[..24],
    );
    same(
        ctx,
        "peer = remote.publicKey",
        keys.peer().as_bytes(),
        &hex(st.remote("publicKey")),
    );
}

fn check_initialize(ctx: &str, args: &[Value], result: &Value) {
    assert_eq!(args.len(), 1, "{ctx}: args");
    assert_eq!(result, &args[0], "{ctx}: the result is the state");
    let st = State(&args[0]);
    let keypair = st.keypair();
    if let Some(seed) = st.get("seed").as_str() {
        let from_seed = Keypair::from_seed(&hex_n(&Value::from(seed)));
        same(
            ctx,
            "local.publicKey = pk(seed)",
            from_seed.public().as_bytes(),
            keypair.public().as_bytes(),
        );
        same(
            ctx,
            "local.secretKey = seed|pk",
            &from_seed.to_libsodium_secret()[..],
            &hex(st.local("secretKey")),
        );
    }
    // JS ephemeral: Ed25519 key pair of `random`, both halves converted to Curve25519.
    let random: [u8; 32] = hex_n(st.get("random"));
    let js_ephemeral = Keypair::from_seed(&random);
    same(
        ctx,
        "kx_sk = ed2curve_sk(random)",
        &js_ephemeral.curve25519_secret().to_bytes(),
        &st.kx_sk(),
    );
    same(
        ctx,
        "kx_sk = clamp(SHA-512(random))",
        &ed2curve_sk(&random),
        &st.kx_sk(),
    );
    same(
        ctx,
        "kx_pk = ed2curve_pk(pk(random))",
        js_ephemeral.public().curve25519(),
        &st.kx_pk(),
    );
    same(
        ctx,
        "kx_pk = X25519(kx_sk, 9)",
        &x25519_base(&st.kx_sk()),
        &st.kx_pk(),
    );
    same(
        ctx,
        "EphemeralKey public",
        st.ephemeral().public(),
        &st.kx_pk(),
    );
    same(
        ctx,
        "app_mac = hmac(app_key, kx_pk)",
        &hmac(&st.network(), &st.kx_pk()),
        &hex(st.local("app_mac")),
    );
}

fn check_create_challenge(ctx: &str, args: &[Value], result: &Value) {
    assert_eq!(args.len(), 1, "{ctx}: args");
    let st = State(&args[0]);
    let expected = concat(&[&hex(st.local("app_mac")), &st.kx_pk()]);
    same(ctx, "result = app_mac|kx_pk", &hex(result), &expected);
    same(
        ctx,
        "result = keyline's hello",
        &hello(&st.network(), st.ephemeral().public()),
        &expected,
    );
}

fn check_client_create_auth(ctx: &str, args: &[Value], result: &Value) {
    assert_eq!(args.len(), 1, "{ctx}: args");
    let st = State(&args[0]);
    let secret2: [u8; 32] = hex_n(st.get("secret2"));
    let msg3 = hex(result);
    same(
        ctx,
        "result = seal(secret2, 0, hello)",
        &seal_zero(&secret2, &hex(st.local("hello"))),
        &msg3,
    );
    // keyline's client core produces the same msg3 from the same keys and msg2.
    let server_key: [u8; 32] = hex_n(st.remote("publicKey"));
    let core = ClientHandshake::new(st.network(), st.keypair(), &server_key, st.ephemeral())
        .expect("client setup");
    let (_, core) = core.hello();
    let (core_msg3, _) = core
        .read_hello(&st.remote_hello())
        .expect("client core reads msg2");
    same(ctx, "core msg3", &core_msg3, &msg3);
}

fn check_to_keys(ctx: &str, args: &[Value], result: &Value) {
    assert_eq!(args.len(), 1, "{ctx}: args");
    let public = hex(&result["publicKey"]);
    let secret: [u8; 64] = hex_n(&result["secretKey"]);
    match &args[0] {
        Value::String(_) => {
            let keypair = Keypair::from_seed(&hex_n(&args[0]));
            same(
                ctx,
                "publicKey of the seed",
                keypair.public().as_bytes(),
                &public,
            );
            same(
                ctx,
                "secretKey = seed|pk",
                &keypair.to_libsodium_secret()[..],
                &secret,
            );
        }
        Value::Object(_) => {
            assert_eq!(result, &args[0], "{ctx}: a key pair is returned unchanged");
        }
        other => panic!("{ctx}: unexpected argument {other}"),
    }
    let imported = Keypair::from_libsodium_secret(&secret).expect("the key pair imports");
    same(ctx, "imported pk", imported.public().as_bytes(), &public);
}

/// One record of a given name whose state has this `local.kx_pk`; exactly one must exist.
fn only<'a>(records: &'a [Value], name: &str, kx_pk: &Value) -> &'a Value {
    let found: Vec<&Value> = records
        .iter()
        .filter(|r| r["name"] == name && &r["args"][0]["local"]["kx_pk"] == kx_pk)
        .collect();
    assert_eq!(found.len(), 1, "exactly one {name} for kx_pk {kx_pk}");
    found[0]
}

/// Runs keyline's client and server cores against each other for one recorded complete
/// handshake (a `serverCreateAccept` and the matching `clientVerifyAccept`) and compares all
/// four messages and both outcomes with the records.
fn replay_complete_handshake(records: &[Value], accept: &Value) {
    let server_st = State(&accept["args"][0]);
    let server_kx = server_st.local("kx_pk");
    let client_kx = server_st.remote("kx_pk");
    let ctx = format!("handshake server kx {server_kx} / client kx {client_kx}");
    let client_accept = only(records, "clientVerifyAccept", client_kx);
    let client_st = State(&client_accept["args"][0]);
    let network = client_st.network();
    assert_eq!(network.0, server_st.network().0, "{ctx}: same app_key");

    let msg1 = hex(&only(records, "createChallenge", client_kx)["result"]);
    let msg2 = hex(&only(records, "createChallenge", server_kx)["result"]);
    let msg3 = hex(&only(records, "clientCreateAuth", client_kx)["result"]);
    same(
        &ctx,
        "msg3 sent = msg3 received",
        &msg3,
        &hex(&only(records, "serverVerifyAuth", server_kx)["args"][1]),
    );
    let msg4 = hex(&accept["result"]);
    same(
        &ctx,
        "msg4 sent = msg4 received",
        &msg4,
        &hex(&client_accept["args"][1]),
    );

    let server_key: [u8; 32] = hex_n(client_st.remote("publicKey"));
    same(
        &ctx,
        "client dials the server's key",
        &server_key,
        &hex(server_st.local("publicKey")),
    );
    let client = ClientHandshake::new(
        network,
        client_st.keypair(),
        &server_key,
        client_st.ephemeral(),
    )
    .expect("client setup");
    let server = ServerHandshake::new(network, server_st.keypair(), server_st.ephemeral());
    let (m1, client) = client.hello();
    same(&ctx, "msg1", &m1, &msg1);
    let (m2, server) = server.read_hello(&m1).expect("server reads msg1");
    same(&ctx, "msg2", &m2, &msg2);
    let (m3, client) = client.read_hello(&m2).expect("client reads msg2");
    same(&ctx, "msg3", &m3, &msg3);
    let pending = server.read_auth(&m3).expect("server reads msg3");
    let (m4, server_outcome) = pending.accept();
    same(&ctx, "msg4", &m4, &msg4);
    let client_outcome = client.read_accept(&m4).expect("client reads msg4");

    let client_clean = State(&only(records, "clean", client_kx)["args"][0]);
    let server_clean = State(&only(records, "clean", server_kx)["args"][0]);
    check_js_outcome(&format!("{ctx} client"), &client_outcome, &client_clean);
    check_js_outcome(&format!("{ctx} server"), &server_outcome, &server_clean);
}

#[test]
fn js_crypto_records_replay() {
    let data = load_json("shs/test-secret-handshake-data.json");
    let records = data.as_array().expect("a JSON array of records");
    assert_eq!(records.len(), 159, "number of records");
    let mut replay = Replay {
        records,
        rejections: 0,
        handshakes: 0,
    };
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut nulls = 0;
    for (index, record) in records.iter().enumerate() {
        replay.check(index);
        *counts
            .entry(str_field(record, "name").to_string())
            .or_default() += 1;
        if record["result"].is_null() {
            nulls += 1;
        }
    }
    for accept in records.iter().filter(|r| r["name"] == "serverCreateAccept") {
        replay_complete_handshake(records, accept);
        replay.handshakes += 1;
    }

    let expected: BTreeMap<String, usize> = [
        ("initialize", 34),
        ("createChallenge", 31),
        ("verifyChallenge", 30),
        ("clientVerifyChallenge", 14),
        ("clientCreateAuth", 12),
        ("serverVerifyAuth", 12),
        ("clean", 12),
        ("serverCreateAccept", 6),
        ("clientVerifyAccept", 6),
        ("toKeys", 2),
    ]
    .into_iter()
    .map(|(name, n)| (name.to_string(), n))
    .collect();
    assert_eq!(counts, expected, "records checked per function");
    assert_eq!(counts.values().sum::<usize>(), 159, "every record checked");
    assert_eq!(nulls, 7, "records with result null");
    assert_eq!(
        replay.rejections, nulls,
        "every null result reproduced as a keyline rejection"
    );
    assert_eq!(
        replay.handshakes, 6,
        "complete handshakes replayed through both cores"
    );
}
