//! `keyline relay serve`, `keyline sbrp daemon` and `keyline sbrp call` end to end, as
//! separate processes over loopback.

mod common;
use common::*;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use base64::Engine as _;
use serde_json::{Value, json};

fn relay(home: &Path) -> (Server, String) {
    let server = Server::start(home, &["relay", "serve", "--listen", "127.0.0.1:0"]);
    let url = server.announce["url"].as_str().expect("url").to_owned();
    (server, url)
}

fn daemon(home: &Path, url: &str, daemon_id: &str, dir: Option<&Path>) -> Server {
    let mut args = vec!["sbrp", "daemon", "--relay", url, "--daemon-id", daemon_id];
    if let Some(dir) = dir {
        args.push("--expose-dir");
        args.push(dir.to_str().unwrap());
    }
    Server::start(home, &args)
}

fn call(home: &Path, url: &str, daemon_id: &str, method: &str, params: Option<&str>) -> Value {
    let mut args = vec![
        "--json",
        "sbrp",
        "call",
        "--relay",
        url,
        "--daemon-id",
        daemon_id,
        method,
    ];
    args.extend(params);
    run_ok(home, &args)
}

fn call_fails(home: &Path, url: &str, daemon_id: &str, method: &str, params: &str) -> String {
    let out = run(
        home,
        &[
            "sbrp",
            "call",
            "--relay",
            url,
            "--daemon-id",
            daemon_id,
            method,
            params,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    stderr(&out)
}

#[test]
fn relay_daemon_and_call_info_echo_and_files() {
    let (_relay_dir, relay_home) = new_home();
    let (relay, url) = relay(&relay_home);
    let a = &relay.announce;
    let listen = a["listen"].as_str().unwrap();
    assert_eq!(url, format!("ws://{listen}/"));
    assert_eq!(a["sessions"], json!(format!("http://{listen}/v1/sessions")));
    assert_eq!(
        a["jwks"],
        json!(format!("http://{listen}/.well-known/jwks.json"))
    );
    let key_file = relay_home.join("relay-issuer.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the issuer key is private");

    let files = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(files.path().join("big.bin"), &big).unwrap();
    std::fs::write(files.path().join("note.txt"), "hello sbrp\n").unwrap();
    std::fs::write(files.path().join(".secret"), "hidden").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("loot.txt"), "outside").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("loot.txt"),
        files.path().join("link.txt"),
    )
    .unwrap();

    let (_daemon_dir, daemon_home) = new_home();
    let d = daemon(&daemon_home, &url, "demo-daemon", Some(files.path()));
    assert_eq!(d.announce["daemon_id"], "demo-daemon");
    assert_eq!(d.announce["relay"], json!(url));
    let fingerprint = d.announce["identity"].as_str().unwrap().to_owned();
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");

    // The issuer URL may be given as http:// or as the relay's ws:// URL.
    let issuer = format!("http://{listen}");
    let (_client_dir, client) = new_home();
    let info = call(&client, &issuer, "demo-daemon", "$sideband/info", None);
    assert_eq!(info["daemonId"], "demo-daemon");
    assert_eq!(info["implementation"], "keyline");
    assert_eq!(info["capabilities"]["fs"]["write"], false);
    assert!(info["uptime"].is_u64() && info["platform"].is_string());

    let params = r#"{"hello":"daemon","n":[1,2,3]}"#;
    let echo = call(&client, &url, "demo-daemon", "$sideband/echo", Some(params));
    assert_eq!(echo, serde_json::from_str::<Value>(params).unwrap());

    let list = call(&client, &url, "demo-daemon", "$sideband/rpc.list", None);
    let methods: Vec<&str> = list["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(methods.contains(&"$sideband/fs.read") && methods.is_sorted());

    // The pin was taken on first use.
    let pins = run_ok(&client, &["--json", "pin", "list", "--protocol", "sbrp"]);
    assert!(pins.to_string().contains("demo-daemon"), "{pins}");

    // A 1 MiB file arrives intact (chunked by keyline.chunk/1).
    let read = call(
        &client,
        &url,
        "demo-daemon",
        "$sideband/fs.read",
        Some(r#"{"path":"big.bin"}"#),
    );
    assert_eq!(read["size"], 1024 * 1024);
    assert_eq!(read["truncated"], false);
    assert_eq!(read["encoding"], "base64");
    let content = base64::engine::general_purpose::STANDARD
        .decode(read["content"].as_str().unwrap())
        .unwrap();
    assert!(content == big, "the 1 MiB file differs");

    let text = call(
        &client,
        &url,
        "demo-daemon",
        "$sideband/fs.read",
        Some(r#"{"path":"note.txt"}"#),
    );
    assert_eq!(text["content"], "hello sbrp\n");
    assert_eq!(text["encoding"], "utf8");

    let listing = call(&client, &url, "demo-daemon", "$sideband/fs.list", None);
    let names: Vec<&str> = listing["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["big.bin", "note.txt"],
        "dotfiles and links out hidden"
    );

    // Traversal, symlinks out, dotfiles and absolute paths are refused without a path in
    // the message.
    for (path, what) in [
        ("../x", "`..`"),
        ("sub/../../x", "`..`"),
        ("link.txt", "outside"),
        (".secret", "dotfiles"),
        ("/etc/passwd", "absolute"),
    ] {
        let params = json!({ "path": path }).to_string();
        let err = call_fails(&client, &url, "demo-daemon", "$sideband/fs.read", &params);
        assert!(err.contains("2000") && err.contains(what), "{path}: {err}");
        let root = files.path().to_str().unwrap();
        assert!(!err.contains(root) && !err.contains("/tmp"), "{err}");
    }
    let err = call_fails(&client, &url, "demo-daemon", "no/such", "{}");
    assert!(err.contains("1101"), "{err}");
    drop(d);
    drop(relay);
}

#[test]
fn a_changed_daemon_key_is_refused_with_both_fingerprints() {
    let (_relay_dir, relay_home) = new_home();
    let (_client_dir, client) = new_home();
    let (_d1_dir, home1) = new_home();
    let (_d2_dir, home2) = new_home();

    let (relay1, url1) = relay(&relay_home);
    let d1 = daemon(&home1, &url1, "tofu-daemon", None);
    let first = d1.announce["identity"].as_str().unwrap().to_owned();
    let echo = call(&client, &url1, "tofu-daemon", "$sideband/echo", Some("7"));
    assert_eq!(echo, json!(7));
    drop(d1);
    drop(relay1);

    // A fresh relay (registrations live in memory) lets another key claim the id; the
    // client's pin catches it.
    let (_relay2, url2) = relay(&relay_home);
    let d2 = daemon(&home2, &url2, "tofu-daemon", None);
    let second = d2.announce["identity"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    let err = call_fails(&client, &url2, "tofu-daemon", "$sideband/echo", "7");
    assert!(err.contains("identity_key_changed"), "{err}");
    assert!(err.contains(&first) && err.contains(&second), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    drop(d2);
}

/// A daemon started before its relay keeps retrying (connection refused is not final) and
/// registers once the relay is up.
#[test]
fn daemon_started_before_its_relay_waits_for_it() {
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::Duration;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (_daemon_dir, daemon_home) = new_home();
    let mut child = keyline(&daemon_home)
        .args(["sbrp", "daemon", "--relay", &url, "--daemon-id", "early"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let (lines_tx, lines) = mpsc::channel::<(bool, String)>();
    for (is_stdout, pipe) in [
        (
            true,
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        ),
        (false, Box::new(child.stderr.take().unwrap())),
    ] {
        let tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send((is_stdout, line)).is_err() {
                    break;
                }
            }
        });
    }
    let _child = Kill(child);
    let next = |what: &str, want_stdout: bool, pred: &dyn Fn(&str) -> bool| loop {
        let (is_stdout, line) = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("daemon: no {what} within 60 s"));
        if is_stdout == want_stdout && pred(&line) {
            return line;
        }
        assert!(
            !is_stdout,
            "daemon announced before its relay existed: {line}"
        );
    };
    next("retry message", false, &|l| {
        l.contains("relay not reachable")
    });

    let (_relay_dir, relay_home) = new_home();
    let listen = format!("127.0.0.1:{port}");
    let relay = Server::start(&relay_home, &["relay", "serve", "--listen", &listen]);
    let url = relay.announce["url"].as_str().unwrap().to_owned();
    let announce: Value = serde_json::from_str(&next("announcement", true, &|_| true)).unwrap();
    assert_eq!(announce["daemon_id"], json!("early"));

    let (_client_dir, client_home) = new_home();
    let info = call(&client_home, &url, "early", "$sideband/info", None);
    assert_eq!(info["daemonId"], json!("early"), "{info}");
}
