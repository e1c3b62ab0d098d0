//! `keyline signer serve` end to end with real clients: the npm `nostr-tools` NIP-46 client
//! (`interop/nip46-client.mjs`) in both flows (bunker:// and nostrconnect://), the operator
//! page in headless Chromium (`web/operator/decide.mjs`) deciding `auth_url` approvals, and
//! the operator CLI (`allow`, `connections`, `revoke`, `connect`).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{Server, new_home, run_ok};
use serde_json::Value;

const CLIENT_SECRET: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const OTHER_SECRET: &str = "2222222222222222222222222222222222222222222222222222222222222222";

fn serve(home: &Path) -> Server {
    Server::start(
        home,
        &[
            "signer",
            "serve",
            "--relay-listen",
            "127.0.0.1:0",
            "--operator-listen",
            "127.0.0.1:0",
            "--approval-timeout",
            "90",
        ],
    )
}

/// The client's pubkey for a secret, via nostr-tools (an independent derivation).
fn pubkey_of(interop: &Path, secret: &str) -> String {
    let out = Command::new("node")
        .current_dir(interop)
        .args([
            "--input-type=module",
            "-e",
            &format!(
                "import {{ getPublicKey }} from 'nostr-tools/pure'; import {{ hexToBytes }} from \
                 'nostr-tools/utils'; console.log(getPublicKey(hexToBytes('{secret}')))"
            ),
        ])
        .output()
        .unwrap();
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(key.len(), 64, "{}", String::from_utf8_lossy(&out.stderr));
    key
}

/// The harness with `args`, its stdout as JSON lines (auth_url lines handled by `on_auth`).
fn harness(interop: &Path, args: &[&str], mut on_auth: impl FnMut(&Value)) -> Vec<Value> {
    let mut child = Command::new("node")
        .arg(interop.join("nip46-client.mjs"))
        .args(args)
        .args(["--timeout", "60000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = read_lines(&mut child, |v| {
        if v.get("auth_url").is_some() {
            on_auth(v);
        }
    });
    assert!(child.wait().unwrap().success(), "harness failed: {lines:?}");
    lines
}

fn read_lines(child: &mut Child, mut each: impl FnMut(&Value)) -> Vec<Value> {
    let mut out = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let value: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"));
        each(&value);
        let done = value.get("done").is_some();
        out.push(value);
        if done {
            break;
        }
    }
    out
}

fn step<'a>(lines: &'a [Value], name: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["step"] == name && l.get("ok").is_some())
        .collect()
}

/// Decides the approval at `url` in Chromium through the operator page.
fn decide(operator: &Path, url: &str, token: &str, decision: &str) {
    let out = Command::new("node")
        .arg(operator.join("decide.mjs"))
        .args(["--url", url, "--token", token, "--decision", decision])
        .env("KEYLINE_CHROMIUM", keyline_testkit::chromium())
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    let result: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| {
        panic!(
            "decide.mjs said {line:?} ({e}); stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(result["ok"], true, "{result}");
}

fn token(home: &Path) -> String {
    std::fs::read_to_string(home.join("signer/operator-token"))
        .unwrap()
        .trim()
        .to_string()
}

fn without_secret(uri: &str) -> String {
    uri.split("&secret=").next().unwrap().to_string()
}

#[test]
fn nostr_tools_signs_through_the_bunker_and_the_operator_decides_in_chromium() {
    let Some(interop) = keyline_testkit::interop_peers() else {
        return;
    };
    let Some(operator) = keyline_testkit::node_package("web/operator", true) else {
        return;
    };
    let (_dir, home) = new_home();
    let server = serve(&home);
    let a = &server.announce;
    let uri = a["bunker_uri"].as_str().unwrap().to_string();
    let npub_hex = a["pubkey"].as_str().unwrap().to_string();
    assert!(a["npub"].as_str().unwrap().starts_with("npub1"));
    assert_eq!(a["dev_mode"], true, "a first-use key is a local 2-of-3");
    assert!(
        a["relays"][0]
            .as_str()
            .unwrap()
            .starts_with("ws://127.0.0.1:")
    );
    assert!(
        a["operator_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let keys = run_ok(&home, &["signer", "keys", "--json"]);
    assert_eq!(keys["threshold"], 2);
    assert_eq!(keys["shares"], 3);

    // 1. The printed URI with a client the operator pre-authorised for kind 1 and encryption.
    let client = pubkey_of(&interop, CLIENT_SECRET);
    let allowed = run_ok(
        &home,
        &[
            "signer",
            "allow",
            &client,
            "kind:1",
            "nip44_encrypt",
            "nip44_decrypt",
            "nip04_encrypt",
            "nip04_decrypt",
            "--json",
        ],
    );
    assert_eq!(allowed["connected"], false);
    let lines = harness(
        &interop,
        &[
            "--bunker-uri",
            &uri,
            "--client-secret",
            CLIENT_SECRET,
            "--steps",
            "connect,get_public_key,sign_event,nip44,nip04,ping,switch_relays,raw:describe,logout,reopen,get_public_key",
        ],
        |v| panic!("unexpected auth_url {v}"),
    );
    let ok = |name: &str, i: usize| step(&lines, name)[i]["ok"] == true;
    assert!(ok("connect", 0), "{lines:?}");
    let pk = step(&lines, "get_public_key")[0];
    assert_eq!(pk["result"], npub_hex.as_str());
    assert_eq!(pk["differs_from_bunker"], true);
    let signed = step(&lines, "sign_event")[0];
    assert_eq!(
        signed["verified"], true,
        "nostr-tools verifies the signature: {signed}"
    );
    assert_eq!(signed["result"]["pubkey"], npub_hex.as_str());
    assert!(
        ok("nip44", 0) && ok("nip04", 0) && ok("ping", 0),
        "{lines:?}"
    );
    assert_eq!(step(&lines, "switch_relays")[0]["result"], "null");
    assert_eq!(
        step(&lines, "raw:describe")[0]["error"],
        "unsupported method: describe"
    );
    assert!(ok("logout", 0));
    assert_eq!(step(&lines, "get_public_key")[1]["error"], "not connected");

    // 2. The secret was single use.
    let lines = harness(
        &interop,
        &[
            "--bunker-uri",
            &uri,
            "--client-secret",
            OTHER_SECRET,
            "--steps",
            "connect",
        ],
        |v| panic!("unexpected auth_url {v}"),
    );
    assert_eq!(
        step(&lines, "connect")[0]["error"],
        "secret already used",
        "{lines:?}"
    );

    // 3. No secret: connect and kind 1 approved, kind 7 denied, on the operator page.
    let token = token(&home);
    let mut decisions = vec!["allow_once", "allow_once", "deny"].into_iter();
    let lines = harness(
        &interop,
        &[
            "--bunker-uri",
            &without_secret(&uri),
            "--client-secret",
            OTHER_SECRET,
            "--steps",
            "connect,sign_event:1,sign_event:7",
        ],
        |v| {
            let decision = decisions.next().expect("more approvals than expected");
            decide(&operator, v["auth_url"].as_str().unwrap(), &token, decision);
        },
    );
    assert!(
        decisions.next().is_none(),
        "every approval was asked for: {lines:?}"
    );
    assert!(ok_step(&lines, "connect"), "{lines:?}");
    assert_eq!(
        step(&lines, "sign_event:1")[0]["verified"],
        true,
        "{lines:?}"
    );
    assert_eq!(
        step(&lines, "sign_event:7")[0]["error"],
        "denied by operator"
    );

    // 4. The operator CLI sees both clients; revoking one refuses it at once.
    let other = pubkey_of(&interop, OTHER_SECRET);
    let connections = run_ok(&home, &["signer", "connections", "--json"]);
    let list = connections["connections"].as_array().unwrap();
    let state_of = |pk: &str| {
        list.iter()
            .find(|c| c["client_pubkey"] == pk)
            .map(|c| c["state"].clone())
    };
    assert_eq!(state_of(&client), Some("logged_out".into()));
    assert_eq!(state_of(&other), Some("connected".into()));
    // The operator edits the client's grants on the page (Chromium).
    let base = a["operator_url"].as_str().unwrap();
    let out = Command::new("node")
        .arg(operator.join("grants.mjs"))
        .args(["--url", base, "--token", &token, "--client", &other])
        .args([
            "--grants",
            r#"[{"method":"sign_event","kind":7,"decision":"allow","per_minute":5}]"#,
        ])
        .env("KEYLINE_CHROMIUM", keyline_testkit::chromium())
        .output()
        .unwrap();
    let edited: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "grants.mjs: {e}; stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(edited["ok"], true, "{edited}");
    let connections = run_ok(&home, &["signer", "connections", "--json"]);
    let grants = connections["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_pubkey"] == other.as_str())
        .map(|c| c["grants"].clone())
        .unwrap();
    assert_eq!(
        grants,
        serde_json::json!([{"method": "sign_event", "kind": 7, "decision": "allow", "per_minute": 5}])
    );
    let lines = harness(
        &interop,
        &[
            "--bunker-uri",
            &without_secret(&uri),
            "--client-secret",
            OTHER_SECRET,
            "--steps",
            "sign_event:7",
        ],
        |v| panic!("kind 7 is granted now, yet: {v}"),
    );
    assert_eq!(
        step(&lines, "sign_event:7")[0]["verified"],
        true,
        "{lines:?}"
    );
    run_ok(&home, &["signer", "revoke", &other, "--json"]);
    let lines = harness(
        &interop,
        &[
            "--bunker-uri",
            &without_secret(&uri),
            "--client-secret",
            OTHER_SECRET,
            "--steps",
            "get_public_key",
        ],
        |v| panic!("unexpected auth_url {v}"),
    );
    assert_eq!(step(&lines, "get_public_key")[0]["error"], "not connected");
}

fn ok_step(lines: &[Value], name: &str) -> bool {
    step(lines, name).first().is_some_and(|v| v["ok"] == true)
}

#[test]
fn nostrconnect_flow_with_nostr_tools() {
    let Some(interop) = keyline_testkit::interop_peers() else {
        return;
    };
    let (_dir, home) = new_home();
    let server = serve(&home);
    let relay = server.announce["relays"][0].as_str().unwrap().to_string();
    let transport = server.announce["transport_pubkey"]
        .as_str()
        .unwrap()
        .to_string();
    let npub_hex = server.announce["pubkey"].as_str().unwrap().to_string();
    let mut child = Command::new("node")
        .arg(interop.join("nip46-client.mjs"))
        .args([
            "--nostrconnect",
            "--relay",
            &relay,
            "--client-name",
            "keyline test",
        ])
        .args([
            "--perms",
            "sign_event:1,nip44_encrypt",
            "--steps",
            "get_public_key,ping",
        ])
        .args(["--timeout", "30000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let home_for_connect: PathBuf = home.clone();
    let lines = read_lines(&mut child, |v| {
        if let Some(uri) = v["nostrconnect"].as_str() {
            let out = run_ok(&home_for_connect, &["signer", "connect", uri, "--json"]);
            assert_eq!(out["client_pubkey"], v["client_pubkey"]);
        }
    });
    assert!(child.wait().unwrap().success());
    let handshake = step(&lines, "nostrconnect")[0];
    assert_eq!(
        handshake["ok"], true,
        "nostr-tools accepted the secret: {lines:?}"
    );
    assert_eq!(handshake["result"]["bunker_pubkey"], transport.as_str());
    assert_eq!(
        step(&lines, "get_public_key")[0]["result"],
        npub_hex.as_str()
    );
    assert_eq!(step(&lines, "ping")[0]["result"], "pong");
}
