//! The seed corpus, built from `shared/vectors/shs/` in the input layouts of the entry points.
//!
//! * `cargo test --test seeds -- --ignored write_seeds` rewrites `seeds/<target>/`.
//! * `seeds_are_current` (normal run) fails if a generated seed is missing or differs.
//! * `fixtures_match_vectors` checks the keys hard-coded in `src/fixtures.rs`.
//!
//! The vectors are read from `../../shared/vectors/shs` relative to this crate; a missing
//! folder is a failure, not a skip.

use std::fs;
use std::path::PathBuf;

use keyline_shs_fuzz::fixtures;
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/shs")
}

fn load(name: &str) -> Value {
    let path = vectors_dir().join(name);
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("vector file {} missing: {e}", path.display()));
    serde_json::from_str(&text).expect("vector file is JSON")
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn list(v: &Value) -> &Vec<Value> {
    v.as_array().expect("array")
}

/// One seed: target folder, file name, content.
struct Seed {
    target: &'static str,
    name: String,
    data: Vec<u8>,
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn flip(len: usize, at: usize, bit: u8) -> Vec<u8> {
    let mut mask = vec![0u8; len];
    mask[at] = bit;
    mask
}

fn handshake_seeds(out: &mut Vec<Seed>) {
    let vectors = load("handshake-vectors.json");
    let cases = list(&vectors["cases"]);
    assert_eq!(cases.len(), 3, "handshake cases");
    let server = "shs_server_messages";
    let client = "shs_client_messages";
    let mut add = |target, name: String, data| out.push(Seed { target, name, data });

    for case in cases {
        let name = case["name"].as_str().expect("name");
        let [m1, m2, m3, m4] = ["msg1", "msg2", "msg3", "msg4"].map(|m| bytes(&case[m]));
        add(server, format!("{name}_raw"), cat(&[&[1], &m1, &m3]));
        add(client, format!("{name}_raw"), cat(&[&[1], &m2, &m4]));
    }
    let c0 = &cases[0];
    let [m1, m2, m3, m4] = ["msg1", "msg2", "msg3", "msg4"].map(|m| bytes(&c0[m]));
    let a_sk = bytes(&c0["client"]["ephemeral_sk"]);
    let a_pk = bytes(&c0["client"]["ephemeral_pk"]);
    let b_sk = bytes(&c0["server"]["ephemeral_sk"]);
    let b_pk = bytes(&c0["server"]["ephemeral_pk"]);
    let server_pk = bytes(&c0["server"]["longterm_pk"]);

    add(server, "case0_raw_deny".into(), cat(&[&[0x81], &m1, &m3]));
    add(
        server,
        "case0_honest".into(),
        cat(&[&[0], &a_sk, &[0; 112]]),
    );
    add(
        server,
        "case0_honest_deny".into(),
        cat(&[&[0x80], &a_sk, &[0; 112]]),
    );
    add(
        server,
        "case0_honest_flip_tag".into(),
        cat(&[&[0], &a_sk, &flip(112, 0, 0x01)]),
    );
    add(
        server,
        "case0_honest_flip_last".into(),
        cat(&[&[0], &a_sk, &flip(112, 111, 0x80)]),
    );
    add(
        server,
        "case0_honest_replace".into(),
        cat(&[&[2], &a_sk, &m3]),
    );
    add(server, "case0_valid_hmac".into(), cat(&[&[3], &a_pk, &m3]));
    add(
        server,
        "valid_hmac_zero_key".into(),
        cat(&[&[3], &[0; 32], &[0; 112]]),
    );

    add(
        client,
        "case0_raw_server_key".into(),
        cat(&[&[0x41], &m2, &m4, &server_pk]),
    );
    add(client, "case0_honest".into(), cat(&[&[0], &b_sk, &[0; 80]]));
    add(
        client,
        "case0_honest_flip_tag".into(),
        cat(&[&[0], &b_sk, &flip(80, 0, 0x01)]),
    );
    add(
        client,
        "case0_honest_flip_last".into(),
        cat(&[&[0], &b_sk, &flip(80, 79, 0x80)]),
    );
    add(
        client,
        "case0_honest_replace".into(),
        cat(&[&[2], &b_sk, &m4]),
    );
    add(client, "case0_valid_hmac".into(), cat(&[&[3], &b_pk, &m4]));
    let mut u1 = [0u8; 32];
    u1[0] = 1;
    add(client, "valid_hmac_u1".into(), cat(&[&[3], &u1, &[0; 80]]));

    let negatives = list(&vectors["negative_cases"]);
    assert_eq!(negatives.len(), 17, "negative cases");
    for case in negatives {
        let name = case["name"].as_str().expect("name");
        let sends: Vec<Vec<u8>> = list(&case["peer_sends"]).iter().map(bytes).collect();
        let first = &sends[0];
        match case["side_under_test"].as_str() {
            Some("server") => {
                let deny = case["overrides"]["authorize"].as_str() == Some("deny");
                let mode = if deny { 0x81 } else { 0x01 };
                let msg3 = sends.get(1).cloned().unwrap_or_default();
                add(server, format!("neg_{name}"), cat(&[&[mode], first, &msg3]));
            }
            Some("client") => {
                let mut msg4 = sends.get(1).cloned().unwrap_or_default();
                msg4.resize(80, 0);
                let data = match case["overrides"].get("server_longterm_pk") {
                    Some(key) => cat(&[&[0x41], first, &msg4, &bytes(key)]),
                    None => cat(&[&[0x01], first, &msg4]),
                };
                add(client, format!("neg_{name}"), data);
            }
            other => panic!("side_under_test {other:?}"),
        }
    }
    add(server, "empty".into(), Vec::new());
    add(client, "empty".into(), Vec::new());
}

/// Index of (key, nonce) in `fixtures::BOX_KEYS`.
fn key_index(case: &Value) -> u8 {
    let key = bytes(&case["key"]);
    let nonce = bytes(&case["nonce"]);
    let i = fixtures::BOX_KEYS
        .iter()
        .position(|(k, n)| k[..] == key[..] && n[..] == nonce[..])
        .unwrap_or_else(|| panic!("{}: key/nonce not in BOX_KEYS", case["name"]));
    u8::try_from(i).expect("small table")
}

/// Wires longer than this get only the whole-input seed, to keep the corpus small.
const PIECES_UP_TO: usize = 2048;

fn boxstream_seeds(out: &mut Vec<Seed>) {
    let vectors = load("boxstream-vectors.json");
    let target = "boxstream_decoder";
    let mut add = |name: String, data| out.push(Seed { target, name, data });
    let streams = list(&vectors["streams"]);
    let decode_cases = list(&vectors["decode_cases"]);
    assert_eq!(
        (streams.len(), decode_cases.len()),
        (9, 12),
        "box-stream vectors"
    );

    for case in streams.iter().chain(decode_cases) {
        let name = case["name"].as_str().expect("name");
        let flags = key_index(case) << 1;
        let wire = bytes(&case["wire"]);
        add(format!("{name}_whole"), cat(&[&[flags, 0], &wire]));
        if wire.len() <= PIECES_UP_TO {
            // The piece sizes the JS vectors were checked with, plus an empty feed.
            add(
                format!("{name}_pieces"),
                cat(&[&[flags | 0x40, 5, 1, 7, 34, 35, 0], &wire]),
            );
        }
    }
    for case in streams {
        let name = case["name"].as_str().expect("name");
        let goodbye = if case["goodbye"].is_null() { 0 } else { 0x10 };
        let flags = key_index(case) << 1 | 0x01 | goodbye;
        let mut writes = Vec::new();
        for write in list(&case["writes"]) {
            let write = bytes(write);
            writes.extend_from_slice(
                &u16::try_from(write.len())
                    .expect("short write")
                    .to_be_bytes(),
            );
            writes.extend_from_slice(&write);
        }
        add(format!("{name}_encode"), cat(&[&[flags, 0], &writes]));
        if writes.len() <= PIECES_UP_TO {
            // Byte 40: inside the first body, or the tag of a lone goodbye.
            let mutate = [0, 0, 0, 40, 0x01];
            add(
                format!("{name}_encode_flip"),
                cat(&[&[flags | 0x20, 1, 13], &mutate, &writes]),
            );
        }
    }
    add("empty".into(), Vec::new());
}

/// `seeds/relay_tokens/`: every token of `sbrp/sbrp-v1-vectors.json` `jwt.cases` as presented
/// (selector 0), and its header and claims re-signed by the entry point (selector 1).
fn relay_token_seeds(out: &mut Vec<Seed>) {
    use base64::Engine as _;
    let path = vectors_dir().join("../sbrp/sbrp-v1-vectors.json");
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("vector file {} missing: {e}", path.display()));
    let vectors: Value = serde_json::from_str(&text).expect("vector file is JSON");
    for case in list(&vectors["jwt"]["cases"]) {
        let name = case["name"].as_str().expect("name");
        let token = case["token"].as_str().expect("token");
        out.push(Seed {
            target: "relay_tokens",
            name: format!("{name}_raw"),
            data: cat(&[&[0], token.as_bytes()]),
        });
        let parts: Vec<&str> = token.split('.').collect();
        let decode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s);
        if let [header, claims, _] = parts[..]
            && let (Ok(header), Ok(claims)) = (decode(header), decode(claims))
        {
            let len = u16::try_from(header.len()).expect("short header");
            out.push(Seed {
                target: "relay_tokens",
                name: format!("{name}_signed"),
                data: cat(&[&[1], &len.to_le_bytes(), &header, &claims]),
            });
        }
    }
}

fn all_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    handshake_seeds(&mut seeds);
    boxstream_seeds(&mut seeds);
    relay_token_seeds(&mut seeds);
    seeds
}

fn seed_path(seed: &Seed) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(seed.target)
        .join(&seed.name)
}

/// Rewrites the seed corpus from the vectors. Other files in `seeds/` (e.g. reproducers of
/// fixed crashes) are left alone.
#[test]
#[ignore = "writes files; run explicitly to regenerate seeds/"]
fn write_seeds() {
    let seeds = all_seeds();
    for seed in &seeds {
        let path = seed_path(seed);
        fs::create_dir_all(path.parent().expect("parent")).expect("create seed folder");
        fs::write(&path, &seed.data).expect("write seed");
    }
    let total: usize = seeds.iter().map(|s| s.data.len()).sum();
    eprintln!("wrote {} seeds, {total} bytes", seeds.len());
}

#[test]
fn seeds_are_current() {
    let mut stale = Vec::new();
    for seed in all_seeds() {
        let path = seed_path(&seed);
        if fs::read(&path).ok().as_deref() != Some(&seed.data[..]) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "seeds missing or stale (run `cargo test --test seeds -- --ignored write_seeds`): {stale:#?}"
    );
}

#[test]
fn fixtures_match_vectors() {
    use fixtures::*;
    let vectors = load("handshake-vectors.json");
    let c0 = &list(&vectors["cases"])[0];
    let check = |field: &Value, fixed: &[u8]| assert_eq!(bytes(field), fixed, "{field}");
    check(&c0["network_key"], &NETWORK.0);
    check(&c0["client"]["longterm_seed"], &CLIENT_SEED);
    check(&c0["client"]["longterm_pk"], &CLIENT_PK);
    check(&c0["client"]["ephemeral_sk"], &CLIENT_EPH_SK);
    check(&c0["server"]["longterm_seed"], &SERVER_SEED);
    check(&c0["server"]["longterm_pk"], &SERVER_PK);
    check(&c0["server"]["ephemeral_sk"], &SERVER_EPH_SK);
    check(&c0["msg1"], &CASE0_MSG1);
    check(&c0["msg2"], &CASE0_MSG2);
    check(&c0["outcome"]["client_to_server"]["key"], &C2S_KEY);
    check(&c0["outcome"]["client_to_server"]["nonce"], &C2S_NONCE);
    check(&c0["outcome"]["server_to_client"]["key"], &S2C_KEY);
    check(&c0["outcome"]["server_to_client"]["nonce"], &S2C_NONCE);
    assert_eq!(client_keypair().public().as_bytes(), &CLIENT_PK);
    assert_eq!(server_keypair().public().as_bytes(), &SERVER_PK);
    // The valid-HMAC helper rebuilds both hellos.
    check(
        &c0["msg1"],
        &hello_for(&bytes(&c0["client"]["ephemeral_pk"]).try_into().expect("32")),
    );
    check(
        &c0["msg2"],
        &hello_for(&bytes(&c0["server"]["ephemeral_pk"]).try_into().expect("32")),
    );
    // Every box-stream vector's key and nonce is in the table.
    let boxes = load("boxstream-vectors.json");
    for case in list(&boxes["streams"])
        .iter()
        .chain(list(&boxes["decode_cases"]))
    {
        key_index(case);
    }
}

/// Writes `seeds/signer_decoders/` from a real in-process 2-of-3 key: every encoding the
/// decoders accept, each behind its selector byte. Run with `--ignored write_signer_seeds`.
#[test]
#[ignore]
fn write_signer_seeds() {
    use keyline_signer::local;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/signer_decoders");
    std::fs::create_dir_all(&dir).expect("seed dir");
    let mut rng = keyline_signer::OsRng;
    let (public, shares) = local::dkg(2, 3, &mut rng).expect("dkg");
    let write = |name: &str, selector: u8, bytes: &[u8]| {
        let mut data = vec![selector];
        data.extend_from_slice(bytes);
        std::fs::write(dir.join(name), data).expect("write seed");
    };
    write(
        "public_key_package",
        4,
        &public.serialize().expect("encode"),
    );
    write("node_share", 5, &shares[0].serialize().expect("encode"));
    let (_nonces, commitments) = keyline_signer::sign::commit(&shares[0], &mut rng);
    write("commitments", 2, &commitments.serialize().expect("encode"));
    use keyline_signer::wire::{Body, Message, encode_message};
    for (name, body) in [
        ("wire_ping", Body::Ping { nonce: 7 }),
        (
            "wire_pong",
            Body::Pong {
                nonce: 7,
                active_sessions: 3,
            },
        ),
        (
            "wire_hello_ack",
            Body::HelloAck {
                version: 1,
                clock_ms: 1_795_000_000_000,
            },
        ),
    ] {
        let frame = encode_message(&Message::new(42, body)).expect("encode");
        write(name, 6, &frame);
    }
    for selector in 0..7u8 {
        write(&format!("empty_{selector}"), selector, &[]);
        write(&format!("short_{selector}"), selector, &[1, 2, 3]);
    }
}
