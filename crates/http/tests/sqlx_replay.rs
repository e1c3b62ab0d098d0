//! The SQLite replay store (feature `sqlx-replay`, B.7): two server instances sharing one
//! database file refuse each other's replays; the store keeps the memory cache's bounds and
//! 429 semantics.
#![cfg(all(feature = "sqlx-replay", feature = "client"))]

use std::sync::{Arc, Mutex};

use keyline_core::ManualClock;
use keyline_http::replay::sqlite::SqliteReplayStore;
use keyline_http::{
    MemoryReplayCache, PublicOrigin, ReplayKey, ReplayLimits, ReplayStore, Request, ServerConfig,
    SignOptions, SigningKey, demo_app, sign_request,
};

const NOW: u64 = 1_767_225_600;
const ORIGIN: &str = "https://api.example.com";

/// Starts the demo app for the public origin [`ORIGIN`] with `store`; returns its address.
async fn start(store: keyline_http::server::SharedReplayCache) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = format!("http://{}", listener.local_addr().expect("addr"));
    let config = ServerConfig::new(
        PublicOrigin::new(ORIGIN).expect("origin"),
        SigningKey::ed25519_from_seed(&[1; 32]),
    )
    .expect("config")
    .with_clock(Arc::new(ManualClock::new(NOW)))
    .with_replay_cache(store);
    let app = demo_app(config);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn signed_whoami(nonce: u8) -> Request {
    let mut request = Request::new("GET", format!("{ORIGIN}/whoami"));
    let nonce = keyline_http::nonce::encode_nonce(&[nonce; 16]);
    sign_request(
        &mut request,
        &SigningKey::ed25519_from_seed(&[2; 32]),
        &SignOptions::new(NOW, nonce, [3; 32]),
    )
    .expect("sign");
    request
}

/// Sends `request` (signed for [`ORIGIN`]) to the server at `addr`; returns the status.
async fn send(addr: &str, request: &Request) -> u16 {
    let mut builder = reqwest::Client::new().get(format!("{addr}/whoami"));
    for (name, value) in request.headers.iter() {
        builder = builder.header(name, value);
    }
    builder.send().await.expect("send").status().as_u16()
}

#[tokio::test]
async fn two_instances_sharing_one_database_refuse_cross_replays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("replay.sqlite");
    let (a, b) = tokio::join!(
        SqliteReplayStore::open(&path),
        SqliteReplayStore::open(&path)
    );
    let a = start(Arc::new(a.expect("store a"))).await;
    let b = start(Arc::new(b.expect("store b"))).await;

    let first = signed_whoami(1);
    assert_eq!(send(&a, &first).await, 200);
    assert_eq!(send(&b, &first).await, 401, "replayed from A to B");
    assert_eq!(send(&a, &first).await, 401, "and on A itself");
    let second = signed_whoami(2);
    assert_eq!(send(&b, &second).await, 200);
    assert_eq!(send(&a, &second).await, 401, "replayed from B to A");

    // Control: with a memory cache each, the cross replay would pass.
    let c = start(Arc::new(Mutex::new(MemoryReplayCache::new()))).await;
    let d = start(Arc::new(Mutex::new(MemoryReplayCache::new()))).await;
    let third = signed_whoami(3);
    assert_eq!(send(&c, &third).await, 200);
    assert_eq!(send(&d, &third).await, 200);
}

fn key(pk: u8, nonce: &str) -> ReplayKey {
    ReplayKey {
        namespace: "ed25519",
        public_key: [pk; 32],
        nonce: nonce.to_string(),
    }
}

#[tokio::test]
async fn bounds_expiry_and_429() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteReplayStore::open_with(
        &dir.path().join("r.sqlite"),
        ReplayLimits {
            capacity: 3,
            per_key: 2,
        },
    )
    .await
    .expect("store");
    assert_eq!(store.limits().per_key, 2);
    store
        .check_and_insert(key(1, "a"), 161, 100)
        .await
        .expect("a");
    let replay = store
        .check_and_insert(key(1, "a"), 161, 150)
        .await
        .unwrap_err();
    assert_eq!(
        (replay.status(), replay.code()),
        (401, "unauthorized.replay")
    );
    // Same nonce, another key or namespace: independent.
    store
        .check_and_insert(key(2, "a"), 170, 100)
        .await
        .expect("other key");
    store
        .check_and_insert(key(1, "b"), 165, 100)
        .await
        .expect("b");
    // Per-key bound: 429 with the seconds until the oldest of this key's entries expires.
    let full = store
        .check_and_insert(key(1, "c"), 170, 101)
        .await
        .unwrap_err();
    assert_eq!((full.status(), full.retry_after()), (429, Some(60)));
    // Total bound (3 live entries): another key also gets 429.
    let full = store
        .check_and_insert(key(3, "a"), 170, 102)
        .await
        .unwrap_err();
    assert_eq!((full.status(), full.retry_after()), (429, Some(59)));
    assert_eq!(store.len(102).await.expect("len"), 3);
    // Live entries are never evicted; once "a" of key 1 expires (at 161) there is room.
    store
        .check_and_insert(key(1, "c"), 222, 161)
        .await
        .expect("after expiry");
    assert_eq!(store.len(161).await.expect("len"), 3);
    // The expired nonce may be recorded again (freshness rejects such requests anyway).
    store
        .check_and_insert(key(1, "a"), 100, 200)
        .await
        .expect("outside any window");
    assert_eq!(
        store.len(200).await.expect("len"),
        1,
        "a past window is not stored"
    );
    assert_eq!(store.purge(300).await.expect("purge"), 1);
    assert_eq!(store.len(300).await.expect("len"), 0);
}

#[tokio::test]
async fn concurrent_inserts_of_one_nonce_admit_exactly_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("race.sqlite");
    let a = Arc::new(SqliteReplayStore::open(&path).await.expect("a"));
    let b = Arc::new(SqliteReplayStore::open(&path).await.expect("b"));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store.check_and_insert(key(9, "same"), 500, 100).await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) => ok += 1,
            Err(e) => assert_eq!(e.code(), "unauthorized.replay"),
        }
    }
    assert_eq!(ok, 1);
}
