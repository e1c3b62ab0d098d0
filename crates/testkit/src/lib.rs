//! Test support shared by keyline's crates (dev-dependency only): locating and loading the
//! vectors in `shared/vectors/`, hex helpers, and finding the interop peers.
//!
//! The vectors live beside the project (`../shared/vectors` from the project root). A missing
//! folder is a test failure, never a skip. `KEYLINE_VECTORS` overrides the location.
#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub)]

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The project root (the workspace folder).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|err| {
            panic!(
                "cannot resolve the project root from {}: {err}",
                env!("CARGO_MANIFEST_DIR")
            )
        })
}

/// The vectors folder; panics with a clear message when it is missing.
pub fn vectors_dir() -> PathBuf {
    let dir = match std::env::var_os("KEYLINE_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => project_root().join("../shared/vectors"),
    };
    assert!(
        dir.is_dir(),
        "test vectors not found at {} (expected shared/vectors beside the project, or set KEYLINE_VECTORS)",
        dir.display()
    );
    dir
}

/// Parses `shared/vectors/<relative>` as JSON.
pub fn load_json(relative: &str) -> Value {
    let path = vectors_dir().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read vector file {}: {err}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("vector file {} is not JSON: {err}", path.display()))
}

/// Decodes a JSON string of hex.
pub fn hex(value: &Value) -> Vec<u8> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("expected a hex string, got {value}"));
    hex::decode(text).unwrap_or_else(|err| panic!("bad hex {text:?}: {err}"))
}

/// Decodes a JSON string of hex into exactly `N` bytes.
pub fn hex_n<const N: usize>(value: &Value) -> [u8; N] {
    let bytes = hex(value);
    bytes
        .as_slice()
        .try_into()
        .unwrap_or_else(|_| panic!("expected {N} bytes of hex, got {} in {value}", bytes.len()))
}

/// A JSON string field.
pub fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string field {key:?} in {value}"))
}

/// A JSON array field.
pub fn array<'a>(value: &'a Value, key: &str) -> &'a Vec<Value> {
    value[key]
        .as_array()
        .unwrap_or_else(|| panic!("missing array field {key:?}"))
}

/// SHA-256 of a string's UTF-8 bytes: the vectors' label → seed rule.
pub fn sha256_label(label: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(label.as_bytes()).into()
}

/// True when `KEYLINE_REQUIRE_INTEROP=1`: a missing interop peer must fail the test.
pub fn interop_required() -> bool {
    std::env::var("KEYLINE_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

/// The `interop/` folder if its Node peers are installed and `node` runs; otherwise `None`
/// after printing why. Panics instead when [`interop_required`].
pub fn interop_peers() -> Option<PathBuf> {
    node_package("interop", false)
}

/// The Chromium binary the browser tests use (`KEYLINE_CHROMIUM`, default Debian's).
pub fn chromium() -> PathBuf {
    std::env::var_os("KEYLINE_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// The Node package at `relative` (from the project root) if its `node_modules` is installed,
/// `node` runs and — with `needs_chromium` — [`chromium`] exists; otherwise `None` after
/// printing why. Panics instead when [`interop_required`].
pub fn node_package(relative: &str, needs_chromium: bool) -> Option<PathBuf> {
    let dir = project_root().join(relative);
    let problem = if !dir.join("node_modules").is_dir() {
        Some(format!(
            "{} has no node_modules (run `npm ci` there)",
            dir.display()
        ))
    } else if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        Some("`node` is not installed".to_string())
    } else if needs_chromium && !chromium().exists() {
        Some(format!(
            "{} does not exist (Debian `chromium`)",
            chromium().display()
        ))
    } else {
        None
    };
    match problem {
        None => Some(dir),
        Some(why) if interop_required() => panic!("interop peer missing: {why}"),
        Some(why) => {
            eprintln!(
                "SKIPPED (interop peer missing: {why}; set KEYLINE_REQUIRE_INTEROP=1 to fail)"
            );
            None
        }
    }
}
