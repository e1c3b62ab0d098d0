//! One test per public limit: at the edge it works, one step past it the documented refusal.
//!
//! Internal bounds are tested next to their code: `SECP256K1_KEYGEN_ATTEMPTS` in
//! `identity.rs`; `PIN_DB_BUSY_TIMEOUT`, `PIN_DB_ACQUIRE_TIMEOUT`, `PIN_DB_MAX_CONNECTIONS` and
//! `MAX_PINS_PER_PROTOCOL` (at the default value) in `pin/store.rs`.

use std::fs;

use base64::Engine as _;
use keyline_core::limits::*;
use keyline_core::{Error, Identity, ImportSource, PinStore, ReplayWindow, import_ssb_secret};

const NOW: u64 = 1_700_000_000;

/// `text` padded with a trailing comment line to exactly `len` bytes.
fn pad_to(text: &str, len: usize) -> String {
    let pad = len - text.len() - 2; // "#" and "\n"
    let out = format!("{text}#{}\n", "x".repeat(pad));
    assert_eq!(out.len(), len);
    out
}

#[test]
fn max_identity_file_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("identity.toml");
    let id = Identity::generate().unwrap();
    let limit = MAX_IDENTITY_FILE_BYTES as usize;

    fs::write(&path, pad_to(&id.to_toml(), limit)).unwrap();
    let loaded = Identity::load(&path).unwrap();
    assert_eq!(loaded.public(), id.public());

    fs::write(&path, pad_to(&id.to_toml(), limit + 1)).unwrap();
    let err = Identity::load(&path).unwrap_err();
    assert!(
        matches!(err, Error::FileTooLarge { size, limit: l, .. }
            if size == MAX_IDENTITY_FILE_BYTES + 1 && l == MAX_IDENTITY_FILE_BYTES),
        "{err}"
    );
}

fn ssb_secret(seed: &[u8; 32]) -> String {
    let pk = ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes();
    let mut keypair = seed.to_vec();
    keypair.extend_from_slice(&pk);
    let b64 = base64::engine::general_purpose::STANDARD;
    format!(
        "{{\"curve\":\"ed25519\",\"public\":\"{}.ed25519\",\"private\":\"{}.ed25519\"}}\n",
        b64.encode(pk),
        b64.encode(&keypair)
    )
}

#[test]
fn max_import_file_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("identity.toml");
    Identity::generate()
        .unwrap()
        .save(&identity, false)
        .unwrap();
    let secret = dir.path().join("secret");
    let limit = MAX_IMPORT_FILE_BYTES as usize;

    // As text.
    let at_limit = pad_to(&ssb_secret(&[5; 32]), limit);
    assert_eq!(*import_ssb_secret(&at_limit).unwrap(), [5; 32]);
    let past = pad_to(&ssb_secret(&[5; 32]), limit + 1);
    let err = import_ssb_secret(&past).unwrap_err();
    assert!(matches!(err, Error::InvalidImport { .. }), "{err}");

    // As a file.
    fs::write(&secret, &at_limit).unwrap();
    let id = Identity::import_into_file(&identity, ImportSource::SsbSecretFile(&secret)).unwrap();
    assert_eq!(id.ed25519_seed(), &[5; 32]);
    fs::write(&secret, pad_to(&ssb_secret(&[6; 32]), limit + 1)).unwrap();
    let err =
        Identity::import_into_file(&identity, ImportSource::SsbSecretFile(&secret)).unwrap_err();
    assert!(matches!(err, Error::FileTooLarge { .. }), "{err}");
    assert_eq!(Identity::load(&identity).unwrap().ed25519_seed(), &[5; 32]);
}

async fn add(
    store: &PinStore,
    protocol: &str,
    peer: &str,
    key: &[u8],
    note: Option<&str>,
) -> keyline_core::Result<()> {
    store.add_at(protocol, peer, key, note, false, NOW).await
}

fn is_param(r: &keyline_core::Result<()>) -> bool {
    matches!(r, Err(Error::InvalidParameter { .. }))
}

#[tokio::test]
async fn max_pin_protocol_len() {
    let store = PinStore::open_in_memory().await.unwrap();
    let edge = "p".repeat(MAX_PIN_PROTOCOL_LEN);
    add(&store, &edge, "peer", &[1; 32], None).await.unwrap();
    assert_eq!(store.list(Some(&edge)).await.unwrap().len(), 1);
    let past = "p".repeat(MAX_PIN_PROTOCOL_LEN + 1);
    assert!(is_param(&add(&store, &past, "peer", &[1; 32], None).await));
}

#[tokio::test]
async fn max_pin_peer_len() {
    let store = PinStore::open_in_memory().await.unwrap();
    let edge = "é".repeat(MAX_PIN_PEER_LEN / 2); // bytes, not characters
    assert_eq!(edge.len(), MAX_PIN_PEER_LEN);
    add(&store, "shs", &edge, &[1; 32], None).await.unwrap();
    assert!(store.get("shs", &edge).await.unwrap().is_some());
    let past = format!("{edge}x");
    assert!(is_param(&add(&store, "shs", &past, &[1; 32], None).await));
    assert!(store.get("shs", &past).await.is_err());
}

#[tokio::test]
async fn max_pin_note_len() {
    let store = PinStore::open_in_memory().await.unwrap();
    let edge = "n".repeat(MAX_PIN_NOTE_LEN);
    add(&store, "shs", "a", &[1; 32], Some(&edge))
        .await
        .unwrap();
    let pin = store.get("shs", "a").await.unwrap().unwrap();
    assert_eq!(pin.note.as_deref(), Some(edge.as_str()));
    let past = "n".repeat(MAX_PIN_NOTE_LEN + 1);
    assert!(is_param(
        &add(&store, "shs", "b", &[1; 32], Some(&past)).await
    ));
}

#[tokio::test]
async fn max_pin_key_len() {
    let store = PinStore::open_in_memory().await.unwrap();
    let edge = vec![7u8; MAX_PIN_KEY_LEN];
    add(&store, "shs", "a", &edge, None).await.unwrap();
    assert_eq!(store.find_by_key("shs", &edge).await.unwrap().len(), 1);
    let past = vec![7u8; MAX_PIN_KEY_LEN + 1];
    assert!(is_param(&add(&store, "shs", "b", &past, None).await));
    let err = store
        .check(keyline_core::Policy::Tofu, "shs", "b", &past, NOW, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidParameter { .. }), "{err}");
}

#[test]
fn replay_window_bounds() {
    for ok in [MIN_REPLAY_WINDOW, DEFAULT_REPLAY_WINDOW, MAX_REPLAY_WINDOW] {
        assert_eq!(ReplayWindow::new(ok).unwrap().size(), ok);
    }
    for bad in [
        0,
        MIN_REPLAY_WINDOW - 1,
        MIN_REPLAY_WINDOW + 1,
        MAX_REPLAY_WINDOW + 64,
        MAX_REPLAY_WINDOW + 1,
        usize::MAX,
    ] {
        let err = ReplayWindow::new(bad).unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter { .. }),
            "{bad}: {err}"
        );
    }
    assert_eq!(ReplayWindow::default().size(), DEFAULT_REPLAY_WINDOW);
}

#[test]
fn replay_window_remembers_exactly_its_size() {
    for size in [MIN_REPLAY_WINDOW, MAX_REPLAY_WINDOW] {
        let mut w = ReplayWindow::new(size).unwrap();
        let top = 10 * size as u64;
        w.commit(top);
        // Edge: the oldest counter the window covers.
        assert!(w.check(top - size as u64 + 1).is_ok());
        // Past it.
        assert_eq!(
            w.check(top - size as u64),
            Err(keyline_core::ReplayError::TooOld)
        );
    }
}
