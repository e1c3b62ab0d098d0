//! The built-in methods of spec 10.2 (`keyline_sbrp::tokio::builtins`), called directly:
//! results, refusals (traversal, symlinks, dotfiles, absolute paths) and size caps.
#![cfg(feature = "tokio")]

use std::os::unix::fs::symlink;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keyline_sbrp::limits::{FS_LIST_MAX, FS_READ_UNCHUNKED, MAX_PLAINTEXT};
use keyline_sbrp::tokio::RpcError;
use keyline_sbrp::tokio::builtins::Registry;
use serde_json::{Value, json};

const CHUNKED: bool = true;
const UNCHUNKED: bool = false;

struct Fixture {
    root: tempfile::TempDir,
    outside: tempfile::TempDir,
    registry: Registry,
}

fn fixture() -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::write(r.join("b.txt"), "bee\n").unwrap();
    std::fs::write(r.join("A.md"), "# A\n").unwrap();
    std::fs::write(r.join(".env"), "SECRET=1").unwrap();
    std::fs::create_dir(r.join("zdir")).unwrap();
    std::fs::create_dir(r.join("Adir")).unwrap();
    std::fs::write(r.join("zdir/inner.txt"), "inner").unwrap();
    std::fs::create_dir(r.join(".git")).unwrap();
    std::fs::write(r.join(".git/config"), "[core]").unwrap();
    std::fs::write(outside.path().join("loot.txt"), "loot").unwrap();
    symlink(outside.path().join("loot.txt"), r.join("loot-link.txt")).unwrap();
    symlink(outside.path(), r.join("out-dir")).unwrap();
    symlink(r.join("b.txt"), r.join("inside-link.txt")).unwrap();
    symlink(r.join(".env"), r.join("env-link")).unwrap();
    let registry = Registry::new("d_test").expose_dir(r).unwrap();
    Fixture {
        root,
        outside,
        registry,
    }
}

fn read(reg: &Registry, params: Value, chunking: bool) -> Result<Value, RpcError> {
    reg.call("$sideband/fs.read", Some(params), chunking)
}

fn refusal(err: RpcError) -> String {
    assert_eq!(err.code, 2000, "{err:?}");
    err.data.as_ref().unwrap()["reason"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn assert_no_path(err: &RpcError, f: &Fixture) {
    for dir in [f.root.path(), f.outside.path()] {
        let text = dir.to_str().unwrap();
        assert!(!err.message.contains(text), "{}", err.message);
    }
    assert!(!err.message.contains("/tmp"), "{}", err.message);
}

#[test]
fn info_list_describe_echo() {
    let f = fixture();
    let info = f.registry.call("$sideband/info", None, CHUNKED).unwrap();
    assert_eq!(info["daemonId"], "d_test");
    assert_eq!(info["implementation"], "keyline");
    let root_name = f.root.path().file_name().unwrap().to_str().unwrap();
    assert_eq!(
        info["capabilities"]["fs"],
        json!({"name": root_name, "write": false})
    );
    for key in ["name", "version", "platform", "arch", "uptime"] {
        assert!(!info[key].is_null(), "{key}");
    }

    let mut reg = Registry::new("d_plain");
    reg.register("app/ping", Some("pong"), |_| Ok(json!("pong")))
        .unwrap();
    assert!(
        reg.register("$sideband/evil", None, |_| Ok(Value::Null))
            .is_err()
    );
    assert!(reg.register("", None, |_| Ok(Value::Null)).is_err());
    let list = reg.call("$sideband/rpc.list", None, CHUNKED).unwrap();
    assert_eq!(
        list["methods"],
        json!([
            "$sideband/echo",
            "$sideband/info",
            "$sideband/rpc.describe",
            "$sideband/rpc.list",
            "app/ping"
        ])
    );
    let info = reg.call("$sideband/info", None, CHUNKED).unwrap();
    assert_eq!(info["capabilities"], json!({}));
    assert_eq!(reg.call("app/ping", None, CHUNKED).unwrap(), "pong");
    let described = reg.call("$sideband/rpc.describe", None, CHUNKED).unwrap();
    assert_eq!(described["app/ping"]["description"], "pong");

    // No directory exposed: the file methods do not exist.
    let err = reg
        .call("$sideband/fs.read", Some(json!({"path": "x"})), CHUNKED)
        .unwrap_err();
    assert_eq!(err.code, 1101);
    assert_eq!(reg.call("nope", None, CHUNKED).unwrap_err().code, 1101);

    let p = json!({"a": [1, "two", null], "b": {"c": true}});
    assert_eq!(
        reg.call("$sideband/echo", Some(p.clone()), CHUNKED)
            .unwrap(),
        p
    );
    assert_eq!(
        reg.call("$sideband/echo", None, CHUNKED).unwrap(),
        Value::Null
    );
}

#[test]
fn fs_list_orders_and_hides() {
    let f = fixture();
    let list = f.registry.call("$sideband/fs.list", None, CHUNKED).unwrap();
    let names: Vec<&str> = list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    // Directories first, then case-insensitive names; dotfiles, links out and links to
    // dotfiles hidden; a link inside shown.
    assert_eq!(names, ["Adir", "zdir", "A.md", "b.txt", "inside-link.txt"]);
    assert_eq!(list["hasMore"], false);
    let first = &list["entries"][0];
    assert_eq!(first["type"], "directory");
    assert!(first["size"].is_null());
    let file = &list["entries"][3];
    assert_eq!(file["type"], "file");
    assert_eq!(file["size"], 4);
    let modified = file["modified"].as_str().unwrap();
    assert!(
        modified.ends_with('Z') && modified.len() == 24,
        "{modified}"
    );

    let sub = f
        .registry
        .call("$sideband/fs.list", Some(json!({"path": "zdir"})), CHUNKED)
        .unwrap();
    assert_eq!(sub["entries"][0]["name"], "inner.txt");

    for (path, reason) in [
        ("..", "parent_segment"),
        ("out-dir", "outside_root"),
        (".git", "dotfile"),
        ("/", "absolute_path"),
        ("b.txt", "not_a_directory"),
    ] {
        let err = f
            .registry
            .call("$sideband/fs.list", Some(json!({ "path": path })), CHUNKED)
            .unwrap_err();
        assert_no_path(&err, &f);
        assert_eq!(refusal(err), reason, "{path}");
    }
}

#[test]
fn fs_list_caps_entries() {
    let root = tempfile::tempdir().unwrap();
    for i in 0..FS_LIST_MAX + 5 {
        std::fs::write(root.path().join(format!("f{i:05}")), "").unwrap();
    }
    let reg = Registry::new("d").expose_dir(root.path()).unwrap();
    let list = reg.call("$sideband/fs.list", None, CHUNKED).unwrap();
    assert_eq!(list["entries"].as_array().unwrap().len(), FS_LIST_MAX);
    assert_eq!(list["hasMore"], true);
}

#[test]
fn fs_read_refuses_traversal_symlinks_dotfiles_and_absolute_paths() {
    let f = fixture();
    for (path, reason) in [
        ("../loot.txt", "parent_segment"),
        ("zdir/../../x", "parent_segment"),
        ("zdir\\..\\..\\x", "parent_segment"),
        ("..\\x", "parent_segment"),
        ("/etc/passwd", "absolute_path"),
        ("\\etc\\passwd", "absolute_path"),
        ("C:/x", "absolute_path"),
        ("loot-link.txt", "outside_root"),
        ("out-dir/loot.txt", "outside_root"),
        (".env", "dotfile"),
        (".git/config", "dotfile"),
        ("zdir/./.hidden", "dotfile"),
        ("env-link", "dotfile"),
        ("missing.txt", "not_found"),
        ("zdir", "not_a_file"),
        ("", "not_a_file"),
        ("a\0b", "invalid_path"),
    ] {
        let err = read(&f.registry, json!({ "path": path }), CHUNKED).unwrap_err();
        assert_no_path(&err, &f);
        assert_eq!(refusal(err), reason, "{path:?}");
    }
    let long = "a/".repeat(3000);
    assert_eq!(
        refusal(read(&f.registry, json!({ "path": long }), CHUNKED).unwrap_err()),
        "invalid_path"
    );
    for params in [
        json!({}),
        json!({"path": 1}),
        json!({"path": "b.txt", "offset": -1}),
    ] {
        assert_eq!(
            refusal(read(&f.registry, params, CHUNKED).unwrap_err()),
            "invalid_params"
        );
    }
    // Links that stay inside, `.` and `./` segments are fine.
    let ok = read(&f.registry, json!({"path": "./zdir/./inner.txt"}), CHUNKED).unwrap();
    assert_eq!(ok["content"], "inner");
    let ok = read(&f.registry, json!({"path": "inside-link.txt"}), CHUNKED).unwrap();
    assert_eq!(ok["content"], "bee\n");

    // Dotfiles on request.
    let reg = Registry::new("d")
        .expose_dir(f.root.path())
        .unwrap()
        .allow_dotfiles(true);
    let ok = read(&reg, json!({"path": ".env"}), CHUNKED).unwrap();
    assert_eq!(ok["content"], "SECRET=1");
    assert_eq!(
        refusal(read(&reg, json!({"path": "loot-link.txt"}), CHUNKED).unwrap_err()),
        "outside_root"
    );
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 131 % 251) as u8).collect()
}

fn decoded(result: &Value) -> Vec<u8> {
    STANDARD
        .decode(result["content"].as_str().unwrap())
        .unwrap()
}

/// The RPC response envelope around `result` fits one Data frame.
fn fits_one_frame(result: &Value) -> bool {
    let env = json!({"t": "R", "cid": "0".repeat(32), "result": result});
    serde_json::to_vec(&env).unwrap().len() + 25 <= MAX_PLAINTEXT
}

#[test]
fn fs_read_sizes_binary() {
    let root = tempfile::tempdir().unwrap();
    let data = bytes(1024 * 1024);
    std::fs::write(root.path().join("big.bin"), &data).unwrap();
    std::fs::write(root.path().join("pic.png"), &data[..1000]).unwrap();
    let reg = Registry::new("d").expose_dir(root.path()).unwrap();

    // keyline peer: the whole MiB.
    let r = read(&reg, json!({"path": "big.bin"}), CHUNKED).unwrap();
    assert_eq!(r["encoding"], "base64");
    assert_eq!(r["mediaType"], "application/octet-stream");
    assert_eq!(
        (r["size"].as_u64(), r["truncated"].as_bool()),
        (Some(1 << 20), Some(false))
    );
    assert!(decoded(&r) == data);

    // Other peers: without paging a truncated binary is empty; the result fits one frame.
    let r = read(&reg, json!({"path": "big.bin"}), UNCHUNKED).unwrap();
    assert_eq!(
        (r["content"].as_str(), r["truncated"].as_bool()),
        (Some(""), Some(true))
    );
    assert_eq!(r["size"], 1 << 20);
    assert!(fits_one_frame(&r));
    // With offset/length: pages of at most 46 080 bytes.
    let r = read(&reg, json!({"path": "big.bin", "offset": 1000}), UNCHUNKED).unwrap();
    assert_eq!(r["length"], FS_READ_UNCHUNKED);
    assert_eq!(r["offset"], 1000);
    assert!(decoded(&r) == data[1000..1000 + FS_READ_UNCHUNKED]);
    assert_eq!(r["truncated"], true);
    assert!(fits_one_frame(&r));
    let r = read(
        &reg,
        json!({"path": "big.bin", "offset": (1 << 20) - 10, "length": 100}),
        UNCHUNKED,
    )
    .unwrap();
    assert!(decoded(&r) == data[(1 << 20) - 10..]);
    assert_eq!(r["truncated"], false);
    let r = read(
        &reg,
        json!({"path": "big.bin", "offset": 5 << 20}),
        UNCHUNKED,
    )
    .unwrap();
    assert_eq!(
        (r["length"].as_u64(), r["offset"].as_u64()),
        (Some(0), Some(1 << 20))
    );

    // A configured cap for keyline peers.
    let small = Registry::new("d")
        .expose_dir(root.path())
        .unwrap()
        .with_fs_read_max(100_000);
    let r = read(&small, json!({"path": "big.bin"}), CHUNKED).unwrap();
    assert_eq!(
        (r["content"].as_str(), r["truncated"].as_bool()),
        (Some(""), Some(true))
    );
    let r = read(
        &small,
        json!({"path": "big.bin", "length": 1 << 20}),
        CHUNKED,
    )
    .unwrap();
    assert_eq!(decoded(&r).len(), 100_000);

    // Images are base64 with their media type.
    let r = read(&reg, json!({"path": "pic.png"}), UNCHUNKED).unwrap();
    assert_eq!(
        (r["mediaType"].as_str(), r["encoding"].as_str()),
        (Some("image/png"), Some("base64"))
    );
    assert!(decoded(&r) == data[..1000]);
}

#[test]
fn fs_read_sizes_text() {
    let root = tempfile::tempdir().unwrap();
    // Multi-byte characters straddle every cut.
    let text: String = "añ€𝄞".repeat(30_000);
    std::fs::write(root.path().join("long.txt"), &text).unwrap();
    // Control characters expand six-fold in JSON.
    let controls = "\u{1}".repeat(40_000);
    std::fs::write(root.path().join("ctl.txt"), &controls).unwrap();
    std::fs::write(root.path().join("bad.txt"), [b'a', 0xff, b'b']).unwrap();
    let reg = Registry::new("d").expose_dir(root.path()).unwrap();

    let r = read(&reg, json!({"path": "long.txt"}), CHUNKED).unwrap();
    assert_eq!(r["content"].as_str().unwrap(), text);
    assert_eq!(r["truncated"], false);

    let r = read(&reg, json!({"path": "long.txt"}), UNCHUNKED).unwrap();
    let part = r["content"].as_str().unwrap();
    assert_eq!(r["encoding"], "utf8");
    assert_eq!(r["truncated"], true);
    assert!(!part.is_empty() && text.starts_with(part));
    assert_eq!(r["length"], part.len());
    assert_eq!(r["size"], text.len());
    assert!(fits_one_frame(&r));

    let r = read(&reg, json!({"path": "ctl.txt"}), UNCHUNKED).unwrap();
    assert_eq!(r["truncated"], true);
    assert!(fits_one_frame(&r), "escaped text trimmed to fit");
    assert!(controls.starts_with(r["content"].as_str().unwrap()));

    // Not UTF-8 after all: base64.
    let r = read(&reg, json!({"path": "bad.txt"}), UNCHUNKED).unwrap();
    assert_eq!(r["encoding"], "base64");
    assert_eq!(decoded(&r), [b'a', 0xff, b'b']);
}

#[test]
fn exposing_a_missing_directory_fails() {
    let root = tempfile::tempdir().unwrap();
    assert!(
        Registry::new("d")
            .expose_dir(root.path().join("nope"))
            .is_err()
    );
    let file = root.path().join("f");
    std::fs::write(&file, "").unwrap();
    assert!(Registry::new("d").expose_dir(Path::new(&file)).is_err());
}
