//! The signer store (spec §9) and the share vault (§10 on top of it): migrations, round trips,
//! idempotency and conflicts, atomic commits, file permissions, and that no plaintext share
//! reaches the database.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use keyline_signer::envelope::{FileKek, Kek};
use keyline_signer::store::{
    AuditEntry, CeremonyOutcome, KeyStatus, MessageSlot, NewCeremony, NodeRecord, NodeStatus,
    Recorded, ShareStatus, ShareVault, Store,
};
use keyline_signer::wire::CeremonyKind;
use keyline_signer::{Error, ErrorKind, NodeShare, OsRng, ParticipantId, bip340, local};

const KEY: [u8; 16] = [0xa1; 16];
const NODES: [[u8; 32]; 3] = [[1; 32], [2; 32], [3; 32]];

async fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("signer.db")).await.unwrap();
    (dir, store)
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn node(id: u8) -> NodeRecord {
    NodeRecord {
        node_id: [id; 32],
        descriptor: vec![id; 140],
        hpke_pk: [id ^ 0xff; 32],
        address: Some(format!("10.0.0.{id}:7000")),
        label: Some(format!("node {id}")),
        pinned_at_ms: 1_000 + u64::from(id),
        status: NodeStatus::Active,
        cooldown_until_ms: None,
    }
}

fn ceremony(id: u8, kind: CeremonyKind) -> NewCeremony {
    NewCeremony {
        ceremony_id: [id; 16],
        kind,
        key_id: KEY,
        threshold: 2,
        total: 3,
        started_at_ms: 10_000,
        deadline_at_ms: 130_000,
    }
}

fn slot(round: u8, from: u16, to: u16) -> MessageSlot {
    MessageSlot { round, from, to }
}

#[tokio::test]
async fn migrations_apply_to_a_fresh_database_and_survive_reopen() {
    // The schema is embedded by `sqlx::migrate!` at compile time: no DATABASE_URL at build or
    // run time.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer.db");
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.schema_versions().await.unwrap(), vec![1, 2, 3]);
    assert_eq!(mode(&path), 0o600, "the database is created 0600");
    let (public, _) = local::dkg(2, 3, &mut OsRng).unwrap();
    store.put_key(&KEY, &public, 1, 5).await.unwrap();
    store
        .audit_append(&AuditEntry::new(6, "operator", "keygen"))
        .await
        .unwrap();
    // WAL mode: the write-ahead log sits next to the database, with the same mode.
    let wal = dir.path().join("signer.db-wal");
    assert!(wal.exists(), "journal_mode=WAL");
    assert_eq!(mode(&wal), 0o600);
    store.close().await;

    let again = Store::open(&path).await.unwrap();
    assert_eq!(again.schema_versions().await.unwrap(), vec![1, 2, 3]);
    let key = again.get_key(&KEY).await.unwrap().unwrap();
    assert_eq!(key.public, public);
    assert_eq!(again.audit_list(0, 0).await.unwrap().len(), 1);
    assert_eq!(mode(&path), 0o600);
}

#[tokio::test]
async fn keys_round_trip_and_conflicts_are_refused() {
    let (_dir, store) = fresh().await;
    let (public, _) = local::dkg(2, 3, &mut OsRng).unwrap();
    store.put_key(&KEY, &public, 1, 42).await.unwrap();
    // Idempotent.
    store.put_key(&KEY, &public, 1, 43).await.unwrap();

    let key = store.get_key(&KEY).await.unwrap().unwrap();
    assert_eq!(key.key_id, KEY);
    assert_eq!(key.npub, public.npub());
    assert_eq!((key.threshold, key.total), (2, 3));
    assert_eq!(key.ciphersuite, "FROST-secp256k1-SHA256-TR-v1");
    assert_eq!(key.origin, keyline_signer::KeyOrigin::Dkg);
    assert_eq!(key.public, public);
    assert_eq!(key.share_version, 1);
    assert_eq!(key.status, KeyStatus::Active);
    assert_eq!(key.created_at_ms, 42);
    assert_eq!(
        store
            .get_key_by_npub(&public.npub())
            .await
            .unwrap()
            .unwrap(),
        key
    );
    assert!(store.get_key(&[0; 16]).await.unwrap().is_none());

    let members = store.key_members(&KEY).await.unwrap();
    assert_eq!(members.len(), 3);
    for m in &members {
        assert_eq!(
            Some(m.verifying_share),
            public.verifying_share(m.identifier)
        );
        assert_eq!(m.node_id, None);
    }
    let id2 = ParticipantId::new(2).unwrap();
    store.assign_member(&KEY, id2, &NODES[1]).await.unwrap();
    let members = store.key_members(&KEY).await.unwrap();
    assert_eq!(members[1].node_id, Some(NODES[1]));

    // Another package under the same key id, or the same npub under another id.
    let (other, _) = local::dkg(2, 3, &mut OsRng).unwrap();
    let err = store.put_key(&KEY, &other, 1, 44).await.unwrap_err();
    assert_eq!(err, Error::StoreConflict { what: "key id" });
    let err = store
        .put_key(&[0xb2; 16], &public, 1, 44)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "store_conflict");
    store.put_key(&[0xb2; 16], &other, 1, 45).await.unwrap();
    let keys = store.list_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].key_id, KEY);

    store
        .set_key_status(&KEY, KeyStatus::Revoked)
        .await
        .unwrap();
    assert_eq!(
        store.get_key(&KEY).await.unwrap().unwrap().status,
        KeyStatus::Revoked
    );
    assert_eq!(
        store
            .set_key_status(&[9; 16], KeyStatus::Revoked)
            .await
            .unwrap_err(),
        Error::NotFound { what: "key" }
    );
}

#[tokio::test]
async fn imported_keys_keep_their_origin() {
    let (_dir, store) = fresh().await;
    let mut secret = [0x42u8; 32];
    let (public, _) = local::import(&mut secret, 2, 3, &mut OsRng).unwrap();
    store.put_key(&KEY, &public, 1, 1).await.unwrap();
    let key = store.get_key(&KEY).await.unwrap().unwrap();
    assert_eq!(key.origin, keyline_signer::KeyOrigin::Imported);
    assert_eq!(key.npub, public.npub());
}

#[tokio::test]
async fn nodes_are_pinned_listed_and_removed() {
    let (_dir, store) = fresh().await;
    for id in [3u8, 1, 2] {
        store.add_node(&node(id)).await.unwrap();
    }
    // Re-pinning the same node is harmless.
    store.add_node(&node(1)).await.unwrap();
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(
        nodes.iter().map(|n| n.node_id[0]).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(nodes[0], node(1));

    // Another descriptor or HPKE key under a pinned id is refused and changes nothing.
    let mut other = node(1);
    other.descriptor = vec![0xee; 140];
    assert_eq!(
        store.add_node(&other).await.unwrap_err(),
        Error::StoreConflict { what: "node pin" }
    );
    let mut other = node(1);
    other.hpke_pk = [0; 32];
    assert_eq!(
        store.add_node(&other).await.unwrap_err().code(),
        "store_conflict"
    );
    assert_eq!(store.get_node(&[1; 32]).await.unwrap().unwrap(), node(1));

    store
        .set_node_cooldown(&[2; 32], Some(99_000))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_node(&[2; 32])
            .await
            .unwrap()
            .unwrap()
            .cooldown_until_ms,
        Some(99_000)
    );

    assert!(store.remove_node(&[1; 32]).await.unwrap());
    assert!(!store.remove_node(&[1; 32]).await.unwrap());
    assert!(store.get_node(&[1; 32]).await.unwrap().is_none());
    // After removal the node may be pinned with a new descriptor.
    store.add_node(&other).await.unwrap();

    let mut huge = node(4);
    huge.descriptor = vec![0; keyline_signer::limits::MAX_NODE_FIELD + 1];
    assert_eq!(store.add_node(&huge).await.unwrap_err().code(), "too_large");
}

#[tokio::test]
async fn ceremony_messages_are_idempotent_and_equivocation_is_named() {
    let (_dir, store) = fresh().await;
    let c = ceremony(1, CeremonyKind::Dkg);
    store.create_ceremony(&c).await.unwrap();
    assert_eq!(
        store.create_ceremony(&c).await.unwrap_err(),
        Error::StoreConflict { what: "ceremony" }
    );
    let id = c.ceremony_id;

    let r1 = b"round-1 package of participant 2";
    assert_eq!(
        store
            .record_ceremony_message(&id, slot(1, 2, 0), r1, true, 11_000)
            .await
            .unwrap(),
        Recorded::New
    );
    // The identical message again: accepted, nothing new.
    assert_eq!(
        store
            .record_ceremony_message(&id, slot(1, 2, 0), r1, true, 11_500)
            .await
            .unwrap(),
        Recorded::Duplicate
    );
    // A different message under the same key: equivocation, naming the sender.
    let err = store
        .record_ceremony_message(&id, slot(1, 2, 0), b"another package", true, 12_000)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::Equivocation {
            from: 2,
            round: 1,
            to: 0
        }
    );
    assert_eq!(err.kind(), ErrorKind::Peer);
    assert_eq!(err.culprits(), vec![ParticipantId::new(2).unwrap()]);

    // Same content under other keys is fine; sealed messages are kept by hash only.
    store
        .record_ceremony_message(&id, slot(1, 3, 0), r1, true, 12_000)
        .await
        .unwrap();
    store
        .record_ceremony_message(&id, slot(2, 2, 3), b"sealed to 3", false, 13_000)
        .await
        .unwrap();
    store.set_ceremony_round(&id, 2).await.unwrap();

    let all = store.ceremony_messages(&id, None).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].payload.as_deref(), Some(&r1[..]));
    assert_eq!(all[0].received_at_ms, 11_000, "the first copy is kept");
    let round2 = store.ceremony_messages(&id, Some(2)).await.unwrap();
    assert_eq!(round2.len(), 1);
    assert_eq!(round2[0].payload, None);
    assert_eq!((round2[0].from, round2[0].to), (2, 3));
    use sha2::Digest;
    assert_eq!(
        round2[0].sha256,
        <[u8; 32]>::from(sha2::Sha256::digest(b"sealed to 3"))
    );

    // Unknown ceremony.
    assert_eq!(
        store
            .record_ceremony_message(&[9; 16], slot(1, 1, 0), r1, true, 1)
            .await
            .unwrap_err(),
        Error::NotFound { what: "ceremony" }
    );

    // Finished: new messages refused, duplicates still answered, finishing twice refused.
    store
        .finish_ceremony(
            &id,
            CeremonyOutcome::Aborted,
            Some("equivocation by 2"),
            14_000,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .record_ceremony_message(&id, slot(3, 1, 0), b"late", true, 15_000)
            .await
            .unwrap_err(),
        Error::CeremonyClosed
    );
    assert_eq!(
        store
            .record_ceremony_message(&id, slot(1, 2, 0), r1, true, 15_000)
            .await
            .unwrap(),
        Recorded::Duplicate
    );
    assert_eq!(
        store
            .finish_ceremony(&id, CeremonyOutcome::Committed, None, 16_000)
            .await
            .unwrap_err(),
        Error::CeremonyClosed
    );
    assert_eq!(
        store.set_ceremony_round(&id, 3).await.unwrap_err(),
        Error::CeremonyClosed
    );
    let rec = store.get_ceremony(&id).await.unwrap().unwrap();
    assert_eq!(rec.ceremony, c);
    assert_eq!(rec.round, 2);
    assert_eq!(rec.outcome, Some(CeremonyOutcome::Aborted));
    assert_eq!(rec.finished_at_ms, Some(14_000));
    assert_eq!(rec.error.as_deref(), Some("equivocation by 2"));
}

#[tokio::test]
async fn concurrent_identical_messages_record_once() {
    let (_dir, store) = fresh().await;
    let c = ceremony(2, CeremonyKind::Dkg);
    store.create_ceremony(&c).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .record_ceremony_message(&[2; 16], slot(1, 1, 0), b"same", true, i)
                .await
        }));
    }
    let mut new = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() == Recorded::New {
            new += 1;
        }
    }
    assert_eq!(new, 1);
}

#[tokio::test]
async fn a_ceremony_commit_is_atomic() {
    let (_dir, store) = fresh().await;
    let (public, shares) = local::dkg(2, 3, &mut OsRng).unwrap();
    // Another key already holds this npub: the commit fails and changes nothing.
    store.put_key(&[0xcc; 16], &public, 1, 1).await.unwrap();
    let c = ceremony(3, CeremonyKind::Dkg);
    store.create_ceremony(&c).await.unwrap();
    assert_eq!(
        store
            .commit_ceremony(&c.ceremony_id, &public, 1, 20_000)
            .await
            .unwrap_err()
            .code(),
        "store_conflict"
    );
    let rec = store.get_ceremony(&c.ceremony_id).await.unwrap().unwrap();
    assert_eq!(rec.outcome, None, "the ceremony is still running");
    assert!(store.get_key(&KEY).await.unwrap().is_none());

    // A clean DKG commit stores the key and closes the ceremony together.
    let (public, shares2) = local::dkg(2, 3, &mut OsRng).unwrap();
    drop(shares);
    let c = ceremony(4, CeremonyKind::Dkg);
    store.create_ceremony(&c).await.unwrap();
    store
        .commit_ceremony(&c.ceremony_id, &public, 1, 21_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_ceremony(&c.ceremony_id)
            .await
            .unwrap()
            .unwrap()
            .outcome,
        Some(CeremonyOutcome::Committed)
    );
    assert_eq!(store.get_key(&KEY).await.unwrap().unwrap().public, public);

    // A refresh commit swaps the package and bumps the version.
    let refs: Vec<&NodeShare> = shares2.iter().collect();
    let (refreshed, _) = local::refresh(&refs, &mut OsRng).unwrap();
    let c = ceremony(5, CeremonyKind::Refresh);
    store.create_ceremony(&c).await.unwrap();
    store
        .commit_ceremony(&c.ceremony_id, &refreshed, 2, 22_000)
        .await
        .unwrap();
    let key = store.get_key(&KEY).await.unwrap().unwrap();
    assert_eq!(key.public, refreshed);
    assert_eq!(key.share_version, 2);
    let members = store.key_members(&KEY).await.unwrap();
    assert!(members.iter().all(|m| m.share_version == 2
        && Some(m.verifying_share) == refreshed.verifying_share(m.identifier)));
}

#[tokio::test]
async fn audit_appends_and_pages() {
    let (_dir, store) = fresh().await;
    let mut entry = AuditEntry::new(1_000, "client:ab12", "sign_event");
    entry.key_id = Some(KEY);
    entry.client_pubkey = Some("ab12".into());
    entry.method = Some("sign_event".into());
    entry.kind = Some(1);
    entry.event_id = Some("ee".repeat(32));
    entry.decision = Some("allow".into());
    entry.nodes = vec!["1".into(), "3".into()];
    entry.latency_ms = Some(7);
    let seq = store.audit_append(&entry).await.unwrap();
    let first = store.audit_list(0, 0).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].seq, seq);
    assert_eq!(first[0].entry, entry);

    let mut last = seq;
    for i in 0..250u64 {
        let s = store
            .audit_append(&AuditEntry::new(2_000 + i, "operator", "allow"))
            .await
            .unwrap();
        assert!(s > last, "sequence numbers increase");
        last = s;
    }
    let page = store.audit_list(0, 0).await.unwrap();
    assert_eq!(page.len(), keyline_signer::limits::AUDIT_PAGE_SIZE);
    let next = store
        .audit_list(page.last().unwrap().seq, 200)
        .await
        .unwrap();
    assert_eq!(next.len(), 151);
    assert_eq!(next[0].seq, page.last().unwrap().seq + 1);
    let capped = store.audit_list(0, usize::MAX).await.unwrap();
    assert_eq!(capped.len(), 251);

    let mut big = AuditEntry::new(1, "operator", "x");
    big.reason = Some("r".repeat(keyline_signer::limits::MAX_AUDIT_FIELD + 1));
    assert_eq!(
        store.audit_append(&big).await.unwrap_err().code(),
        "too_large"
    );
}

#[tokio::test]
async fn an_existing_database_keeps_its_mode_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer.db");
    Store::open(&path).await.unwrap().close().await;
    assert_eq!(mode(&path), 0o600);

    // A database with a migration this build does not know (written by a newer keyline).
    let store = Store::open(&path).await.unwrap();
    store.close().await;
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99, 'future', TRUE, x'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let err = Store::open(&path).await.unwrap_err();
    assert_eq!(err.code(), "unsupported_schema", "{err}");
}

// ----- share vault -----------------------------------------------------------------------

fn file_kek(dir: &tempfile::TempDir, name: &str) -> Arc<dyn Kek> {
    Arc::new(FileKek::create(&dir.path().join(name)).unwrap())
}

fn vaults(store: &Store, kek: &Arc<dyn Kek>) -> Vec<ShareVault> {
    NODES
        .iter()
        .map(|n| ShareVault::new(store.clone(), kek.clone(), *n))
        .collect()
}

#[tokio::test]
async fn share_vault_round_trip_with_a_real_2_of_3_key() {
    let (dir, store) = fresh().await;
    let kek = file_kek(&dir, "kek.bin");
    let (public, shares) = local::dkg(2, 3, &mut OsRng).unwrap();
    let vaults = vaults(&store, &kek);
    for (vault, share) in vaults.iter().zip(&shares) {
        vault
            .seal_and_store(&KEY, share, 1, ShareStatus::Active, 100)
            .await
            .unwrap();
        // Idempotent for the same share.
        vault
            .seal_and_store(&KEY, share, 1, ShareStatus::Active, 101)
            .await
            .unwrap();
    }
    // Another share under a stored version is refused.
    assert_eq!(
        vaults[0]
            .seal_and_store(&KEY, &shares[1], 1, ShareStatus::Active, 102)
            .await
            .unwrap_err()
            .code(),
        "store_conflict"
    );

    let mut loaded = Vec::new();
    for (vault, share) in vaults.iter().zip(&shares) {
        let got = vault.load_share(&KEY).await.unwrap();
        assert_eq!(got.id(), share.id());
        assert_eq!(*got.serialize().unwrap(), *share.serialize().unwrap());
        loaded.push(got);
    }
    for pair in [[0usize, 1], [0, 2], [1, 2]] {
        let signers = [&loaded[pair[0]], &loaded[pair[1]]];
        let message = [pair[0] as u8 + 7; 32];
        let sig = local::sign(&public, &signers, &message, &mut OsRng).unwrap();
        bip340::verify(&public.npub(), &message, &sig).unwrap();
    }

    let row = store.get_share(&NODES[0], &KEY, 1).await.unwrap().unwrap();
    assert_eq!(row.kek_id, kek.kek_id());
    assert_eq!(row.status, ShareStatus::Active);
    let keks = store.list_keks().await.unwrap();
    assert_eq!(keks.len(), 1);
    assert_eq!(keks[0].provider, "file");

    assert_eq!(
        vaults[0].load_share(&[0x77; 16]).await.unwrap_err().code(),
        "not_found"
    );
}

#[tokio::test]
async fn a_moved_or_swapped_blob_does_not_open_and_nothing_changes() {
    let (dir, store) = fresh().await;
    let kek = file_kek(&dir, "kek.bin");
    let (_, shares) = local::dkg(2, 3, &mut OsRng).unwrap();
    let vaults = vaults(&store, &kek);
    for (vault, share) in vaults.iter().zip(&shares) {
        vault
            .seal_and_store(&KEY, share, 1, ShareStatus::Active, 100)
            .await
            .unwrap();
    }
    let row1 = store.get_share(&NODES[0], &KEY, 1).await.unwrap().unwrap();
    let row2 = store.get_share(&NODES[1], &KEY, 1).await.unwrap().unwrap();

    // Node 1's blob stored as node 2's share (identifier 2 in the AAD).
    let pool = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new().filename(store.path()),
    )
    .await
    .unwrap();
    sqlx::query("UPDATE node_shares SET sealed_blob = $1 WHERE node_id = $2")
        .bind(&row1.sealed_blob)
        .bind(hex::encode(NODES[1]))
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        vaults[1].load_share(&KEY).await.unwrap_err(),
        Error::SealedBlobAuth
    );
    // Node 1's blob under version 2 of node 1.
    sqlx::query(
        "INSERT INTO node_shares SELECT node_id, key_id, 2, identifier, sealed_blob, kek_id, \
         public_key_package, status, created_at FROM node_shares WHERE node_id = $1",
    )
    .bind(hex::encode(NODES[0]))
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(
        vaults[0].load_share(&KEY).await.unwrap_err(),
        Error::SealedBlobAuth,
        "the highest active version is the moved copy"
    );
    assert_eq!(
        vaults[0].load_share_version(&KEY, 2).await.unwrap_err(),
        Error::SealedBlobAuth
    );
    // A pending blob passed off as active.
    sqlx::query("DELETE FROM node_shares WHERE share_version = 2")
        .execute(&pool)
        .await
        .unwrap();
    let (_, other) = local::dkg(2, 3, &mut OsRng).unwrap();
    vaults[2]
        .seal_and_store(&[0x55; 16], &other[2], 1, ShareStatus::Pending, 5)
        .await
        .unwrap();
    sqlx::query("UPDATE node_shares SET status = 'active' WHERE key_id = $1")
        .bind(hex::encode([0x55u8; 16]))
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        vaults[2].load_share(&[0x55; 16]).await.unwrap_err(),
        Error::SealedBlobAuth
    );
    // Every flipped blob byte fails, and the failed opens change nothing.
    sqlx::query("UPDATE node_shares SET sealed_blob = $1 WHERE node_id = $2")
        .bind(&row2.sealed_blob)
        .bind(hex::encode(NODES[1]))
        .execute(&pool)
        .await
        .unwrap();
    vaults[1].load_share(&KEY).await.unwrap();
    for i in 0..row2.sealed_blob.len() {
        let mut bad = row2.sealed_blob.clone();
        bad[i] ^= 0x01;
        sqlx::query("UPDATE node_shares SET sealed_blob = $1 WHERE node_id = $2")
            .bind(&bad)
            .bind(hex::encode(NODES[1]))
            .execute(&pool)
            .await
            .unwrap();
        let before = store.list_shares(&NODES[1]).await.unwrap();
        assert!(vaults[1].load_share(&KEY).await.is_err(), "byte {i}");
        assert_eq!(store.list_shares(&NODES[1]).await.unwrap(), before);
    }
    pool.close().await;
}

#[tokio::test]
async fn a_different_public_key_package_is_caught_on_load() {
    let (dir, store) = fresh().await;
    let kek = file_kek(&dir, "kek.bin");
    let (_, shares) = local::dkg(2, 3, &mut OsRng).unwrap();
    let (other_public, _) = local::dkg(2, 3, &mut OsRng).unwrap();
    let vault = ShareVault::new(store.clone(), kek, NODES[0]);
    vault
        .seal_and_store(&KEY, &shares[0], 1, ShareStatus::Active, 1)
        .await
        .unwrap();
    let pool = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new().filename(store.path()),
    )
    .await
    .unwrap();
    sqlx::query("UPDATE node_shares SET public_key_package = $1")
        .bind(other_public.serialize().unwrap())
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(vault.load_share(&KEY).await.unwrap_err().code(), "mismatch");
    pool.close().await;
}

#[tokio::test]
async fn another_kek_cannot_load_and_nothing_is_overwritten() {
    let (dir, store) = fresh().await;
    let a = file_kek(&dir, "a.bin");
    let b = file_kek(&dir, "b.bin");
    let (_, shares) = local::dkg(2, 3, &mut OsRng).unwrap();
    let va = ShareVault::new(store.clone(), a, NODES[0]);
    va.seal_and_store(&KEY, &shares[0], 1, ShareStatus::Active, 1)
        .await
        .unwrap();
    let before = store.list_shares(&NODES[0]).await.unwrap();
    let vb = ShareVault::new(store.clone(), b, NODES[0]);
    assert_eq!(vb.load_share(&KEY).await.unwrap_err().code(), "wrong_kek");
    // Storing under B for the same version cannot replace A's blob.
    assert!(
        vb.seal_and_store(&KEY, &shares[0], 1, ShareStatus::Active, 2)
            .await
            .is_err()
    );
    assert_eq!(store.list_shares(&NODES[0]).await.unwrap(), before);
    va.load_share(&KEY).await.unwrap();
}

#[tokio::test]
async fn pending_shares_commit_replace_old_versions_or_are_discarded() {
    let (dir, store) = fresh().await;
    let kek = file_kek(&dir, "kek.bin");
    let (public, shares) = local::dkg(2, 3, &mut OsRng).unwrap();
    let vaults = vaults(&store, &kek);
    for (vault, share) in vaults.iter().zip(&shares) {
        vault
            .seal_and_store(&KEY, share, 1, ShareStatus::Pending, 1)
            .await
            .unwrap();
        assert_eq!(
            vault.load_share(&KEY).await.unwrap_err().code(),
            "not_found"
        );
        vault.commit_pending(&KEY, 1).await.unwrap();
        vault.commit_pending(&KEY, 1).await.unwrap(); // idempotent
        vault.load_share(&KEY).await.unwrap();
    }

    // Refresh: version 2 pending next to the active version 1.
    let refs: Vec<&NodeShare> = shares.iter().collect();
    let (new_public, new_shares) = local::refresh(&refs, &mut OsRng).unwrap();
    assert_eq!(new_public.npub(), public.npub());
    for (vault, share) in vaults.iter().zip(&new_shares) {
        vault
            .seal_and_store(&KEY, share, 2, ShareStatus::Pending, 2)
            .await
            .unwrap();
        // Still version 1 until the commit.
        assert_eq!(vault.load_share(&KEY).await.unwrap().public(), &public);
        assert_eq!(
            vault.load_share_version(&KEY, 2).await.unwrap().public(),
            &new_public
        );
    }
    // Node 3 aborts: its pending version 2 is discarded, version 1 stays.
    assert!(vaults[2].discard_pending(&KEY, 2).await.unwrap());
    assert!(!vaults[2].discard_pending(&KEY, 2).await.unwrap());
    assert_eq!(vaults[2].load_share(&KEY).await.unwrap().public(), &public);
    // Nodes 1 and 2 commit: version 1 is deleted.
    for vault in &vaults[..2] {
        vault.commit_pending(&KEY, 2).await.unwrap();
        let rows = store.list_shares(vault.node_id()).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].share_version, 2);
        assert_eq!(rows[0].status, ShareStatus::Active);
    }
    let a = vaults[0].load_share(&KEY).await.unwrap();
    let b = vaults[1].load_share(&KEY).await.unwrap();
    let sig = local::sign(&new_public, &[&a, &b], &[1; 32], &mut OsRng).unwrap();
    bip340::verify(&public.npub(), &[1; 32], &sig).unwrap();
    assert_eq!(
        vaults[2].commit_pending(&KEY, 2).await.unwrap_err().code(),
        "not_found"
    );
}

#[tokio::test]
async fn rotation_reseals_everything_and_old_blobs_need_the_old_kek() {
    let (dir, store) = fresh().await;
    let old = file_kek(&dir, "old.bin");
    let new = file_kek(&dir, "new.bin");
    let (_, shares) = local::dkg(2, 3, &mut OsRng).unwrap();
    let vault = ShareVault::new(store.clone(), old.clone(), NODES[0]);
    vault
        .seal_and_store(&KEY, &shares[0], 1, ShareStatus::Active, 1)
        .await
        .unwrap();
    vault
        .seal_and_store(&[0x0b; 16], &shares[0], 1, ShareStatus::Pending, 1)
        .await
        .unwrap();
    let before = store.list_shares(&NODES[0]).await.unwrap();
    assert_eq!(vault.rotate(&*new, 50).await.unwrap(), 2);
    let after = store.list_shares(&NODES[0]).await.unwrap();
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a.kek_id, new.kek_id());
        assert_ne!(a.sealed_blob, b.sealed_blob);
        // The old blob still opens only under the old KEK.
        assert_eq!(
            keyline_signer::envelope::header(&b.sealed_blob)
                .unwrap()
                .kek_id,
            old.kek_id()
        );
    }
    assert_eq!(
        vault.load_share(&KEY).await.unwrap_err().code(),
        "wrong_kek"
    );
    let rotated = ShareVault::new(store.clone(), new.clone(), NODES[0]);
    rotated.load_share(&KEY).await.unwrap();
    rotated.load_share_version(&[0x0b; 16], 1).await.unwrap();
    let keks = store.list_keks().await.unwrap();
    let old_rec = keks.iter().find(|k| k.kek_id == old.kek_id()).unwrap();
    assert_eq!(old_rec.retired_at_ms, Some(50));
    // Nothing left under the old KEK: rotating again does nothing.
    assert_eq!(vault.rotate(&*new, 60).await.unwrap(), 0);
}

#[tokio::test]
async fn no_plaintext_share_reaches_the_database() {
    let (dir, store) = fresh().await;
    let kek = file_kek(&dir, "kek.bin");
    let (_, shares) = local::dkg(2, 3, &mut OsRng).unwrap();
    let vaults = vaults(&store, &kek);
    for (vault, share) in vaults.iter().zip(&shares) {
        vault
            .seal_and_store(&KEY, share, 1, ShareStatus::Active, 1)
            .await
            .unwrap();
        vault.load_share(&KEY).await.unwrap();
    }
    store.close().await;
    let mut disk = Vec::new();
    for name in ["signer.db", "signer.db-wal"] {
        if let Ok(bytes) = fs::read(dir.path().join(name)) {
            disk.extend_from_slice(&bytes);
        }
    }
    assert!(disk.len() > 4096);
    let mut checked = 0;
    for share in &shares {
        let encoded = share.serialize().unwrap();
        let len = usize::from(u16::from_be_bytes([encoded[5], encoded[6]]));
        let key_package = &encoded[7..7 + len];
        let public = share.public().serialize().unwrap();
        // Every 16-byte window of the key package that is not public data (the signing share).
        for w in key_package.windows(16) {
            let distinct: BTreeSet<u8> = w.iter().copied().collect();
            if distinct.len() < 8 || public.windows(16).any(|p| p == w) {
                continue;
            }
            checked += 1;
            assert!(
                !disk.windows(16).any(|d| d == w),
                "plaintext share bytes found in the database"
            );
        }
    }
    assert!(
        checked >= 3 * 16,
        "the secret windows were checked ({checked})"
    );
}

#[tokio::test]
async fn store_limits_hold_at_their_edges() {
    use keyline_signer::limits::{
        AUDIT_PAGE_SIZE, MAX_AUDIT_FIELD, MAX_AUDIT_PAGE, MAX_CEREMONY_MESSAGE, MAX_NODE_FIELD,
    };
    let (_dir, store) = fresh().await;

    // Ceremony messages: exactly the limit is recorded, one byte more is refused.
    let c = ceremony(7, CeremonyKind::Dkg);
    store.create_ceremony(&c).await.unwrap();
    let edge = vec![0x33u8; MAX_CEREMONY_MESSAGE];
    store
        .record_ceremony_message(&c.ceremony_id, slot(1, 1, 0), &edge, true, 1)
        .await
        .unwrap();
    let past = vec![0x33u8; MAX_CEREMONY_MESSAGE + 1];
    assert_eq!(
        store
            .record_ceremony_message(&c.ceremony_id, slot(1, 2, 0), &past, true, 1)
            .await
            .unwrap_err()
            .code(),
        "too_large"
    );

    // Node fields.
    let mut n = node(5);
    n.descriptor = vec![1; MAX_NODE_FIELD];
    n.label = Some("l".repeat(MAX_NODE_FIELD));
    store.add_node(&n).await.unwrap();
    let mut n = node(6);
    n.label = Some("l".repeat(MAX_NODE_FIELD + 1));
    assert_eq!(store.add_node(&n).await.unwrap_err().code(), "too_large");

    // Audit fields and pages.
    let mut e = AuditEntry::new(1, "a".repeat(MAX_AUDIT_FIELD), "act");
    e.reason = Some("r".repeat(MAX_AUDIT_FIELD));
    store.audit_append(&e).await.unwrap();
    let e = AuditEntry::new(1, "a".repeat(MAX_AUDIT_FIELD + 1), "act");
    assert_eq!(
        store.audit_append(&e).await.unwrap_err().code(),
        "too_large"
    );
    for i in 0..MAX_AUDIT_PAGE as u64 {
        store
            .audit_append(&AuditEntry::new(2 + i, "operator", "x"))
            .await
            .unwrap();
    }
    assert_eq!(store.audit_list(0, 0).await.unwrap().len(), AUDIT_PAGE_SIZE);
    assert_eq!(
        store.audit_list(0, MAX_AUDIT_PAGE).await.unwrap().len(),
        MAX_AUDIT_PAGE
    );
    assert_eq!(
        store.audit_list(0, MAX_AUDIT_PAGE + 1).await.unwrap().len(),
        MAX_AUDIT_PAGE,
        "one page never exceeds MAX_AUDIT_PAGE"
    );
    assert_eq!(
        store
            .audit_list(0, usize::MAX)
            .await
            .unwrap()
            .last()
            .unwrap()
            .seq,
        MAX_AUDIT_PAGE as u64
    );
}

#[tokio::test]
async fn the_transport_key_is_sealed_and_checked() {
    let (dir, store) = fresh().await;
    let kek = FileKek::create(&dir.path().join("kek.bin")).unwrap();
    assert!(store.open_transport_key(&kek).await.unwrap().is_none());
    let secret = [0x21u8; 32];
    let pubkey = store
        .seal_transport_key(&kek, "transport-1", &secret, 10)
        .await
        .unwrap();
    let opened = store.open_transport_key(&kek).await.unwrap().unwrap();
    assert_eq!(opened.id, "transport-1");
    assert_eq!(opened.pubkey, pubkey);
    assert_eq!(opened.secret(), &secret);
    assert!(!format!("{opened:?}").contains(&hex::encode(secret)));
    // Same id again: refused, nothing replaced.
    assert_eq!(
        store
            .seal_transport_key(&kek, "transport-1", &[0x22; 32], 11)
            .await
            .unwrap_err()
            .code(),
        "store_conflict"
    );
    // A new key becomes the active one.
    store
        .seal_transport_key(&kek, "transport-2", &[0x22; 32], 12)
        .await
        .unwrap();
    let opened = store.open_transport_key(&kek).await.unwrap().unwrap();
    assert_eq!(opened.id, "transport-2");
    // Another KEK cannot open it; the zero scalar is not a key.
    let other = FileKek::create(&dir.path().join("other.bin")).unwrap();
    assert_eq!(
        store.open_transport_key(&other).await.unwrap_err().code(),
        "wrong_kek"
    );
    assert_eq!(
        store
            .seal_transport_key(&kek, "zero", &[0; 32], 13)
            .await
            .unwrap_err(),
        Error::InvalidSecretKey
    );
    // A blob moved to another id fails authentication.
    store.close().await;
    let pool = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("signer.db")),
    )
    .await
    .unwrap();
    sqlx::query(
        "UPDATE transport_keys SET sealed_secret = \
         (SELECT sealed_secret FROM transport_keys WHERE id = 'transport-1') \
         WHERE id = 'transport-2'",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let store = Store::open(&dir.path().join("signer.db")).await.unwrap();
    assert_eq!(
        store.open_transport_key(&kek).await.unwrap_err(),
        Error::SealedBlobAuth
    );
}

#[tokio::test]
async fn a_dkg_commit_must_match_the_ceremony_parameters() {
    let (_dir, store) = fresh().await;
    let (public, _) = local::dkg(2, 3, &mut OsRng).unwrap();
    let mut c = ceremony(8, CeremonyKind::Dkg);
    c.total = 4;
    store.create_ceremony(&c).await.unwrap();
    assert_eq!(
        store
            .commit_ceremony(&c.ceremony_id, &public, 1, 1)
            .await
            .unwrap_err()
            .code(),
        "mismatch"
    );
    assert!(store.get_key(&KEY).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_of_a_new_database_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer.db");
    let (a, b, c) = tokio::join!(Store::open(&path), Store::open(&path), Store::open(&path));
    for store in [a.unwrap(), b.unwrap(), c.unwrap()] {
        assert_eq!(store.schema_versions().await.unwrap(), vec![1, 2, 3]);
    }
}
