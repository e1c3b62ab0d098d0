//! `keyline signer` end to end: dev-mode keys on local nodes, and three `keyline signer node`
//! processes with their own homes over real SHS links, as an operator would run them.

use std::path::{Path, PathBuf};

mod common;
use common::{Server, new_home, run, run_ok, stderr};

const MESSAGE: &str = "0101010101010101010101010101010101010101010101010101010101010101";

/// The signature verifies under the x-only key (k256, independent of the FROST crate).
fn assert_verifies(pubkey_hex: &str, message_hex: &str, sig_hex: &str) {
    let key =
        k256::schnorr::VerifyingKey::try_from(hex::decode(pubkey_hex).unwrap().as_slice()).unwrap();
    let sig = k256::schnorr::Signature::try_from(hex::decode(sig_hex).unwrap().as_slice()).unwrap();
    key.verify_raw(&hex::decode(message_hex).unwrap(), &sig)
        .expect("BIP340 signature verifies under the npub");
}

#[test]
fn dev_mode_keygen_sign_refresh_import() {
    let (_dir, home) = new_home();
    let key = run_ok(
        &home,
        &[
            "signer",
            "keygen",
            "--threshold",
            "2",
            "--shares",
            "3",
            "--json",
        ],
    );
    assert_eq!(key["threshold"], 2);
    assert_eq!(key["shares"], 3);
    assert_eq!(key["dev_mode"], true);
    let npub = key["npub"].as_str().unwrap().to_string();
    let pubkey = key["pubkey"].as_str().unwrap().to_string();
    assert!(npub.starts_with("npub1"));

    let sig = run_ok(
        &home,
        &["signer", "sign", "--key", &npub, MESSAGE, "--json"],
    );
    assert_verifies(&pubkey, MESSAGE, sig["sig"].as_str().unwrap());

    let listed = run_ok(&home, &["signer", "keys", "--json"]);
    assert_eq!(listed["npub"], npub.as_str());

    let refreshed = run_ok(&home, &["signer", "refresh", "--key", &pubkey, "--json"]);
    assert_eq!(refreshed["share_version"], 2);
    let sig = run_ok(
        &home,
        &["signer", "sign", "--key", &npub, MESSAGE, "--json"],
    );
    assert_verifies(&pubkey, MESSAGE, sig["sig"].as_str().unwrap());

    // Import keeps the npub of the imported secret.
    let secret = "0000000000000000000000000000000000000000000000000000000000000003";
    let expected = "f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9";
    let imported = run_ok(&home, &["signer", "import", secret, "--json"]);
    assert_eq!(imported["pubkey"], expected);
    let sig = run_ok(
        &home,
        &["signer", "sign", "--key", expected, MESSAGE, "--json"],
    );
    assert_verifies(expected, MESSAGE, sig["sig"].as_str().unwrap());

    // Shares are sealed: the database holds no key package in the clear, the files are
    // private.
    use std::os::unix::fs::PermissionsExt;
    for file in ["keyline.db", "signer.kek", "signer/local-node-1.key"] {
        let mode = std::fs::metadata(home.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{file} is readable by others");
    }

    // Unknown key and bad message: clear errors.
    let out = run(
        &home,
        &["signer", "sign", "--key", &"ab".repeat(32), MESSAGE],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no threshold key"),
        "{}",
        stderr(&out)
    );
    let out = run(&home, &["signer", "sign", "--key", &npub, "zz"]);
    assert_eq!(out.status.code(), Some(2));
}

struct Node {
    home: PathBuf,
    server: Option<Server>,
    key: String,
    listen: String,
}

/// Three node processes, each pinning the coordinator of `coordinator_home` and the others'
/// descriptors.
fn start_nodes(dir: &Path, coordinator_home: &Path, allow_raw: bool) -> Vec<Node> {
    let coordinator = run_ok(coordinator_home, &["id", "--json"]);
    let coordinator_key = coordinator["ssb_id"].as_str().unwrap().to_string();
    let mut described = Vec::new();
    for i in 0..3 {
        let home = dir.join(format!("node{i}"));
        let d = run_ok(&home, &["signer", "node", "--describe"]);
        described.push((home, d));
    }
    let mut nodes = Vec::new();
    for (i, (home, d)) in described.iter().enumerate() {
        let mut args = vec![
            "signer".to_string(),
            "node".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--coordinator".into(),
            coordinator_key.clone(),
        ];
        if allow_raw {
            args.push("--allow-raw-sign".into());
        }
        for (j, (_, other)) in described.iter().enumerate() {
            if i != j {
                args.push("--peer".into());
                args.push(other["descriptor"].as_str().unwrap().to_string());
            }
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = Server::start(home, &refs);
        assert_eq!(server.announce["node"], d["node"]);
        let listen = server.announce["listen"].as_str().unwrap().to_string();
        nodes.push(Node {
            home: home.clone(),
            key: d["node"].as_str().unwrap().to_string(),
            listen,
            server: Some(server),
        });
    }
    nodes
}

fn node_list(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(|n| format!("{}@{}", n.key, n.listen))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn nodes_in_separate_processes_keygen_and_sign_with_one_down() {
    let (dir, home) = new_home();
    run_ok(&home, &["keygen", "--json"]);
    let mut nodes = start_nodes(dir.path(), &home, true);
    let list = node_list(&nodes);
    let key = run_ok(&home, &["signer", "keygen", "--nodes", &list, "--json"]);
    assert!(key.get("dev_mode").is_none());
    let npub = key["npub"].as_str().unwrap().to_string();
    let pubkey = key["pubkey"].as_str().unwrap().to_string();
    let sig = run_ok(
        &home,
        &["signer", "sign", "--key", &npub, MESSAGE, "--json"],
    );
    assert_verifies(&pubkey, MESSAGE, sig["sig"].as_str().unwrap());

    // Each node sealed its own share in its own home; none is in the coordinator's.
    for node in &nodes {
        assert!(node.home.join("keyline.db").exists());
    }

    // One node down: the other two still sign.
    nodes[0].server.take();
    let sig = run_ok(
        &home,
        &["signer", "sign", "--key", &npub, MESSAGE, "--json"],
    );
    assert_verifies(&pubkey, MESSAGE, sig["sig"].as_str().unwrap());

    // Two down: a clear error, well before the 8 s signing deadline.
    nodes[1].server.take();
    let started = std::time::Instant::now();
    let out = run(&home, &["signer", "sign", "--key", &npub, MESSAGE]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("unavailable") && err.contains("1 of 2"),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "{err}"
    );
}

#[test]
fn nodes_refuse_raw_signing_unless_allowed_and_unpinned_coordinators() {
    let (dir, home) = new_home();
    run_ok(&home, &["keygen", "--json"]);
    let nodes = start_nodes(dir.path(), &home, false);
    let list = node_list(&nodes);
    let key = run_ok(&home, &["signer", "keygen", "--nodes", &list, "--json"]);
    let npub = key["npub"].as_str().unwrap();
    let out = run(&home, &["signer", "sign", "--key", npub, MESSAGE]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("policy"), "{}", stderr(&out));

    // Another coordinator (another home) is not served: its links never come up.
    let (_other_dir, other) = new_home();
    run_ok(&other, &["keygen", "--json"]);
    let out = run(&other, &["signer", "keygen", "--nodes", &list]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no link to 3 node(s)"),
        "{}",
        stderr(&out)
    );
}

/// Shares sealed under a key generated inside a SoftHSM2 token, end to end through the CLI.
#[test]
fn dev_mode_with_the_kek_in_a_softhsm_token() {
    let module = std::env::var("KEYLINE_PKCS11_MODULE")
        .unwrap_or_else(|_| "/usr/lib/softhsm/libsofthsm2.so".to_string());
    let util = std::process::Command::new("softhsm2-util")
        .arg("--version")
        .output();
    if !Path::new(&module).exists() || util.is_err() {
        assert!(
            !keyline_testkit::interop_required(),
            "SoftHSM2 is required (KEYLINE_REQUIRE_INTEROP=1) but {module} or softhsm2-util is missing"
        );
        eprintln!("SKIPPED: SoftHSM2 not installed (apt-get install softhsm2)");
        return;
    }
    let (dir, home) = new_home();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            tokens.display()
        ),
    )
    .unwrap();
    let init = std::process::Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", "keyline-cli"])
        .args(["--pin", "1234", "--so-pin", "5678"])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );

    let hsm = |pin: &str, args: &[&str]| {
        common::keyline(&home)
            .env("SOFTHSM2_CONF", &conf)
            .env("KEYLINE_PKCS11_PIN", pin)
            .args(args)
            .args(["--pkcs11-module", &module, "--pkcs11-token", "keyline-cli"])
            .output()
            .unwrap()
    };
    let out = hsm("1234", &["signer", "keygen", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pubkey = key["pubkey"].as_str().unwrap().to_string();
    assert!(!home.join("signer.kek").exists(), "a file KEK was created");

    let out = hsm(
        "1234",
        &["signer", "sign", "--key", &pubkey, MESSAGE, "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let sig: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_verifies(&pubkey, MESSAGE, sig["sig"].as_str().unwrap());

    // A wrong PIN: a clear error, and the key still signs with the right one afterwards.
    let out = hsm("9999", &["signer", "sign", "--key", &pubkey, MESSAGE]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("PIN"), "{}", stderr(&out));
    let out = hsm("1234", &["signer", "sign", "--key", &pubkey, MESSAGE]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Without the token the sealed shares do not open.
    let out = run(&home, &["signer", "sign", "--key", &pubkey, MESSAGE]);
    assert!(!out.status.success(), "shares opened without the HSM");
}
