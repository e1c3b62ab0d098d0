//! The `keyline` binary end to end: identity files, pins, `shs serve` / `shs connect`, and
//! `keyline serve`, as a user would run them.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod common;
use common::{Server, keyline, new_home, run, run_ok, stderr};

#[test]
fn keygen_id_and_refusal_to_overwrite() {
    let (_dir, home) = new_home();
    let created = run_ok(&home, &["keygen", "--json"]);
    let id = run_ok(&home, &["id", "--json"]);
    assert_eq!(created["public"], id);
    assert!(id["ssb_id"].as_str().unwrap().starts_with('@'));
    assert!(id["npub"].as_str().unwrap().starts_with("npub1"));
    assert!(
        id["ed25519_fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:")
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(home.join("identity.toml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let again = run(&home, &["keygen"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert_eq!(run_ok(&home, &["id", "--json"]), id, "nothing changed");
    let forced = run_ok(&home, &["keygen", "--force", "--json"]);
    assert_ne!(forced["public"]["ed25519_hex"], id["ed25519_hex"]);
}

#[test]
fn imports_replace_one_key_and_bad_input_leaves_the_file_untouched() {
    let (dir, home) = new_home();
    run_ok(&home, &["keygen", "--json"]);
    let before = std::fs::read(home.join("identity.toml")).unwrap();
    let bad = dir.path().join("secret");
    std::fs::write(
        &bad,
        "# not a secret\n{\"curve\": \"ed25519\", \"private\": \"AAAA.ed25519\"}",
    )
    .unwrap();
    let out = run(&home, &["import", "ssb", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("keyline: "), "{}", stderr(&out));
    let out = run(&home, &["import", "nsec", "nsec1notakey"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read(home.join("identity.toml")).unwrap(),
        before,
        "file untouched"
    );

    // A real SSB secret (seed 0x01…, its public key) replaces only the Ed25519 key.
    let seed = [1u8; 32];
    let public = ed25519_public(&seed);
    let mut secret = seed.to_vec();
    secret.extend_from_slice(&public);
    let b64 = |b: &[u8]| base64_std(b);
    let ssb = format!(
        "# this is your SECRET name.\n{{\n  \"curve\": \"ed25519\",\n  \"public\": \"{}.ed25519\",\n  \"private\": \"{}.ed25519\",\n  \"id\": \"@{}.ed25519\"\n}}\n",
        b64(&public),
        b64(&secret),
        b64(&public)
    );
    let good = dir.path().join("good-secret");
    std::fs::write(&good, ssb).unwrap();
    let old = run_ok(&home, &["id", "--json"]);
    let updated = run_ok(&home, &["import", "ssb", good.to_str().unwrap(), "--json"]);
    assert_eq!(updated["public"]["ed25519_hex"], hex_string(&public));
    assert_eq!(
        updated["public"]["npub"], old["npub"],
        "the secp256k1 key is kept"
    );
}

fn ed25519_public(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
}

fn hex_string(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn pins_add_list_remove() {
    let (_dir, home) = new_home();
    let key = hex_string(&ed25519_public(&[1u8; 32]));
    run_ok(
        &home,
        &[
            "pin",
            "add",
            "shs",
            "example:8008",
            &key,
            "--note",
            "test peer",
            "--json",
        ],
    );
    let list = run_ok(&home, &["pin", "list", "--json"]);
    assert_eq!(list[0]["peer"], "example:8008");
    assert_eq!(list[0]["key"], key);
    assert_eq!(list[0]["note"], "test peer");
    let other = hex_string(&keyline_other_key());
    let clash = run(&home, &["pin", "add", "shs", "example:8008", &other]);
    assert_eq!(
        clash.status.code(),
        Some(1),
        "a different key needs --replace"
    );
    assert_eq!(
        run_ok(&home, &["pin", "remove", "shs", "example:8008", "--json"])["removed"],
        true
    );
    assert_eq!(
        run_ok(&home, &["pin", "list", "--json"]),
        serde_json::json!([])
    );
}

fn keyline_other_key() -> [u8; 32] {
    ed25519_public(&[2u8; 32])
}

fn connect(home: &Path, args: &[&str], input: &[u8]) -> Output {
    let mut child = keyline(home)
        .args(["shs", "connect"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn connect");
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("connect output");
    writer.join().unwrap().expect("write stdin");
    out
}

#[test]
fn shs_serve_echo_and_connect_pin_on_first_use() {
    let (_dir, server_home) = new_home();
    let (_dir2, client_home) = new_home();
    let server = Server::start(
        &server_home,
        &[
            "shs",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--echo",
            "--allow-any",
        ],
    );
    let address = server.announce["address"].as_str().unwrap().to_string();
    let listen = server.announce["listen"].as_str().unwrap().to_string();
    assert!(address.starts_with("net:127.0.0.1:") && address.contains("~shs:"));
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
    let out = connect(&client_home, &[&address], &data);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout == data, "echo differs");
    // The server key is now pinned: HOST:PORT alone works.
    let out = connect(&client_home, &[&listen], b"again");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"again");
    // A different key for the pinned address is refused, showing both fingerprints.
    let other = base64_std(&keyline_other_key());
    let out = connect(&client_home, &[&listen, "--server-key", &other], b"x");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).matches("SHA256:").count() >= 2,
        "{}",
        stderr(&out)
    );
}

#[test]
fn shs_serve_without_allow_admits_only_pinned_clients() {
    let (_dir, server_home) = new_home();
    let (_dir2, client_home) = new_home();
    let client = run_ok(&client_home, &["keygen", "--json"]);
    let server = Server::start(
        &server_home,
        &["shs", "serve", "--listen", "127.0.0.1:0", "--echo"],
    );
    let address = server.announce["address"].as_str().unwrap().to_string();
    let out = connect(&client_home, &[&address], b"hello");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("does not accept this client"),
        "{}",
        stderr(&out)
    );
    let key = client["public"]["ed25519_hex"].as_str().unwrap();
    run_ok(&server_home, &["pin", "add", "shs", "alice", key, "--json"]);
    let out = connect(&client_home, &[&address], b"hello");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello");
}

#[test]
fn connect_without_a_key_explains_what_to_do() {
    let (_dir, home) = new_home();
    let out = run(&home, &["shs", "connect", "127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--server-key"), "{}", stderr(&out));
    let out = run(&home, &["shs", "connect", "not-an-address"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn serve_announces_every_service() {
    let (_dir, home) = new_home();
    let server = Server::start(
        &home,
        &[
            "serve",
            "--shs-listen",
            "127.0.0.1:0",
            "--kps-listen",
            "127.0.0.1:0",
            "--relay-listen",
            "127.0.0.1:0",
            "--bunker-relay-listen",
            "127.0.0.1:0",
            "--bunker-operator-listen",
            "127.0.0.1:0",
        ],
    );
    let bunker = &server.announce["services"]["bunker"];
    assert!(
        bunker["bunker_uri"]
            .as_str()
            .unwrap()
            .starts_with("bunker://"),
        "{bunker}"
    );
    assert!(bunker["npub"].as_str().unwrap().starts_with("npub1"));
    assert_eq!(server.announce["listen"]["bunker"], bunker["listen"]);
    let relay = &server.announce["services"]["relay"];
    assert_eq!(server.announce["listen"]["relay"], relay["listen"]);
    let relay_listen = relay["listen"].as_str().unwrap();
    assert_eq!(relay["url"], format!("ws://{relay_listen}/"));
    assert_eq!(
        relay["sessions"],
        format!("http://{relay_listen}/v1/sessions")
    );
    let shs = &server.announce["services"]["shs"];
    let kps = &server.announce["services"]["kps"];
    assert_eq!(server.announce["listen"]["kps"], kps["listen"]);
    let out = run(
        &home,
        &[
            "kps",
            "dial",
            "--addr",
            kps["address"].as_str().unwrap(),
            "--message",
            "via serve",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"via serve");
    assert_eq!(server.announce["listen"]["shs"], shs["listen"]);
    assert_eq!(shs["allow"], "any", "loopback default");
    let (_dir2, client_home) = new_home();
    let out = connect(&client_home, &[shs["address"].as_str().unwrap()], b"ping");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"ping");
}

#[test]
fn js_reference_client_talks_to_keyline_shs_serve() {
    let Some(dir) = keyline_testkit::interop_peers() else {
        return;
    };
    let (_dir, home) = new_home();
    let server = Server::start(
        &home,
        &[
            "shs",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--echo",
            "--allow-any",
        ],
    );
    let port = server.announce["listen"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let key_b64 = server.announce["public_key"].as_str().unwrap();
    let key = run_ok(&home, &["id", "--json"])["ed25519_hex"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(base64_std(&hex_bytes(&key)), key_b64);
    let out = Command::new("node")
        .arg(dir.join("peer.js"))
        .args([
            "client",
            "--net",
            "d4a1cb88a66f02f8db635ce26441cc5dac1b08420ceaac230839b755845a9ffb",
        ])
        .args([
            "--seed",
            &"11".repeat(32),
            "--port",
            &port,
            "--server-pk",
            &key,
            "--mode",
            "send",
        ])
        .output()
        .expect("node peer.js");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let received = lines
        .iter()
        .find(|l| l["event"] == "received")
        .expect("received line");
    assert_eq!(received["sha256"], received["sent_sha256"]);
    assert_eq!(lines.last().unwrap()["ok"], true, "{lines:?}");
}

fn hex_bytes(text: &str) -> Vec<u8> {
    hex::decode(text).expect("hex")
}

/// Starts `keyline kps serve` the way the upstream harness does (single-dash flags) and
/// returns it with the dial address parsed from its first stdout line.
fn kps_server(home: &Path) -> (Server, String) {
    std::fs::create_dir_all(home).expect("home");
    let key = home.join("kps.key");
    let mut child = keyline(home)
        .args([
            "kps",
            "serve",
            "-listen",
            "127.0.0.1:0",
            "-ip",
            "127.0.0.1",
            "-key",
        ])
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn kps serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("first line");
    let address = line
        .strip_prefix("listening; dial with kps.dial(\"")
        .and_then(|rest| rest.trim_end().strip_suffix("\")"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (
        Server {
            child,
            announce: Value::Null,
        },
        address,
    )
}

#[test]
fn kps_serve_and_dial_streams_datagrams_and_refuse_a_wrong_certhash() {
    let (_dir, home) = new_home();
    let (_server, address) = kps_server(&home);
    let certhash = run(
        &home,
        &["kps", "certhash", home.join("kps.key").to_str().unwrap()],
    );
    assert!(certhash.status.success());
    assert!(address.ends_with(String::from_utf8_lossy(&certhash.stdout).trim()));

    let out = run(&home, &["kps", "dial", "-addr", &address]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello-kps", "the default message, no newline");
    let message = "x".repeat(24);
    let out = run(
        &home,
        &[
            "kps",
            "dial",
            "--addr",
            &address,
            "--message",
            &message,
            "--repeat",
            "65536",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "echoed 1572864 bytes OK"
    );
    let out = run(
        &home,
        &[
            "kps",
            "dial",
            "--addr",
            &address,
            "--datagram",
            "--message",
            "dgram",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"dgram");

    // The same contract over WebRTC, on the same port.
    let out = run(
        &home,
        &["kps", "dial", "--addr", &address, "--transport", "webrtc"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello-kps");
    let out = run(
        &home,
        &[
            "kps",
            "dial",
            "--addr",
            &address,
            "--transport",
            "webrtc",
            "--message",
            &message,
            "--repeat",
            "65536",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "echoed 1572864 bytes OK"
    );
    let out = run(
        &home,
        &[
            "kps",
            "dial",
            "--addr",
            &address,
            "--transport",
            "webrtc",
            "--datagram",
            "--message",
            "dgram",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"dgram");

    // Another server's certhash: refused before any application byte, exit 1, one line.
    let (_dir2, other_home) = new_home();
    let (_other, other_address) = kps_server(&other_home);
    let other_hash = other_address.rsplit(':').next().unwrap();
    let (host_port, _) = address.rsplit_once(':').unwrap();
    let wrong = format!("{host_port}:{other_hash}");
    let out = run(&home, &["kps", "dial", "--addr", &wrong, "--timeout", "5s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("certhash"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    // Over WebRTC a wrong certhash derives a wrong ice-pwd: the server stays silent.
    let out = run(
        &home,
        &[
            "kps",
            "dial",
            "--addr",
            &wrong,
            "--timeout",
            "3s",
            "--transport",
            "webrtc",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("wrong certhash"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());

    let out = run(&home, &["kps", "dial", "--addr", "not-an-address"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        &home,
        &[
            "kps",
            "dial",
            "--addr",
            &address,
            "--transport",
            "carrier-pigeon",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn http_serve_and_fetch_both_schemes_and_pin_the_server() {
    let (_dir, server_home) = new_home();
    let (_dir2, client_home) = new_home();
    let server = Server::start(&server_home, &["http", "serve", "--listen", "127.0.0.1:0"]);
    let origin = server.announce["origin"].as_str().unwrap().to_string();
    let server_keyid = server.announce["keyid"].as_str().unwrap().to_string();
    let client = run_ok(&client_home, &["keygen", "--json"]);

    let out = run(
        &client_home,
        &["http", "fetch", &format!("{origin}/whoami")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let whoami: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(whoami["scheme"], "keyline-http-v1");
    let expected = format!(
        "ed25519:{}",
        base64_url(&hex_bytes(
            client["public"]["ed25519_hex"].as_str().unwrap()
        ))
    );
    assert_eq!(whoami["key"], expected, "the server saw our key");

    let out = run(
        &client_home,
        &[
            "http",
            "fetch",
            "-X",
            "POST",
            "-d",
            "echo me",
            &format!("{origin}/echo"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"echo me");

    let out = run(
        &client_home,
        &[
            "http",
            "fetch",
            "--scheme",
            "nip98",
            &format!("{origin}/whoami"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let whoami: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(whoami["scheme"], "nip98");
    assert_eq!(
        whoami["key"],
        format!(
            "bip340:{}",
            client["public"]["secp256k1_hex"].as_str().unwrap()
        )
    );

    let pins = run_ok(
        &client_home,
        &["pin", "list", "--protocol", "http", "--json"],
    );
    assert_eq!(pins[0]["peer"], origin.as_str(), "TOFU pinned the server");

    // Trusting another key: the response is refused.
    let out = run(
        &client_home,
        &[
            "http",
            "fetch",
            "--server-key",
            "ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            &format!("{origin}/whoami"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing unverified is printed");
    let out = run(
        &client_home,
        &[
            "http",
            "fetch",
            "--server-key",
            &server_keyid,
            &format!("{origin}/whoami"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
