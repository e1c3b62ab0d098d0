//! Two OS processes racing to pin the same peers under `tofu` on one database file: for every
//! peer exactly one wins and the other sees a mismatch.
//!
//! The child processes are this test binary re-run on `child_process_entry_point`, which does
//! nothing unless the parent set its environment variables.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyline_core::{Error, PinOutcome, PinStore, Policy};

const ENV_DB: &str = "KEYLINE_TEST_CHILD_DB";
const ENV_KEY: &str = "KEYLINE_TEST_CHILD_KEY";
const ENV_START_MS: &str = "KEYLINE_TEST_CHILD_START_MS";
const PEERS: usize = 40;
const NOW: u64 = 1_700_000_000;

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// Runs in a child process only: pins `PEERS` peers with this child's key and prints one
/// `RESULT <peer> <won|lost|known>` line per peer.
#[tokio::test]
async fn child_process_entry_point() {
    let (Some(db), Some(key), Some(start)) = (
        std::env::var_os(ENV_DB),
        std::env::var(ENV_KEY).ok(),
        std::env::var(ENV_START_MS).ok(),
    ) else {
        return;
    };
    let key = [key.parse::<u8>().unwrap(); 32];
    let store = PinStore::open(std::path::Path::new(&db)).await.unwrap();
    // Start together so the two processes really overlap.
    let start: u128 = start.parse().unwrap();
    let wait = start.saturating_sub(unix_ms());
    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    for i in 0..PEERS {
        let peer = format!("peer-{i}");
        let tag = match store
            .check(Policy::Tofu, "shs", &peer, &key, NOW, None)
            .await
        {
            Ok(PinOutcome::NewlyPinned) => "won",
            Ok(PinOutcome::Known) => "known",
            Err(Error::PinMismatch { .. }) => "lost",
            other => panic!("{peer}: {other:?}"),
        };
        println!("RESULT {peer} {tag}");
    }
}

#[test]
fn tofu_race_between_two_processes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keyline.db");
    let exe = std::env::current_exe().unwrap();
    let start = unix_ms() + 500;
    let children: Vec<_> = [1u8, 2]
        .into_iter()
        .map(|key| {
            let child = Command::new(&exe)
                .args(["--exact", "child_process_entry_point", "--nocapture"])
                .args(["--test-threads", "1"])
                .env(ENV_DB, &db)
                .env(ENV_KEY, key.to_string())
                .env(ENV_START_MS, start.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            (key, child)
        })
        .collect();

    let mut results: BTreeMap<String, Vec<(u8, String)>> = BTreeMap::new();
    for (key, child) in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "child {key} failed");
        let stdout = String::from_utf8(out.stdout).unwrap();
        // libtest may print "test … ... " on the same line as the first result.
        for line in stdout
            .lines()
            .filter_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
        {
            let (peer, tag) = line.split_once(' ').unwrap();
            results
                .entry(peer.to_string())
                .or_default()
                .push((key, tag.to_string()));
        }
    }
    assert_eq!(results.len(), PEERS, "every peer reported");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(PinStore::open(&db)).unwrap();
    for (peer, outcomes) in &results {
        let winners: Vec<u8> = outcomes
            .iter()
            .filter(|(_, tag)| tag == "won")
            .map(|(key, _)| *key)
            .collect();
        let losers = outcomes.iter().filter(|(_, tag)| tag == "lost").count();
        assert_eq!((winners.len(), losers), (1, 1), "{peer}: {outcomes:?}");
        let pin = rt.block_on(store.get("shs", peer)).unwrap().unwrap();
        assert_eq!(pin.key, vec![winners[0]; 32], "{peer}");
    }
}
