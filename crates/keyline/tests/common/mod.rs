//! Helpers shared by the CLI test files: run `keyline` with a home, read its JSON, keep a
//! server process alive for a test.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

pub fn keyline(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyline"));
    cmd.env("KEYLINE_HOME", home).env("RUST_LOG", "warn");
    cmd
}

pub fn run(home: &Path, args: &[&str]) -> Output {
    keyline(home).args(args).output().expect("run keyline")
}

pub fn run_ok(home: &Path, args: &[&str]) -> Value {
    let out = run(home, args);
    assert!(
        out.status.success(),
        "keyline {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("--json output")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn new_home() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    (dir, home)
}

/// A server process and its announcement line.
pub struct Server {
    pub child: Child,
    pub announce: Value,
}

impl Server {
    pub fn start(home: &Path, args: &[&str]) -> Server {
        let mut child = keyline(home)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("announcement");
        let announce = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("bad announcement {line:?}: {e}"));
        Server { child, announce }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
