//! Share envelopes (spec §10.1) and the file KEK (§10.3): format, round trips, tampering,
//! wrong KEK, key-file permissions and the local-use warning.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

use keyline_signer::envelope::{self, FileKek, Kek, ObjectType, Provider, SealContext};
use keyline_signer::limits::{MAX_SEALED_BLOB, MAX_SEALED_PLAINTEXT};
use keyline_signer::{Error, ErrorKind};

const KEY_ID: [u8; 16] = [0x11; 16];

fn ctx() -> SealContext<'static> {
    SealContext {
        object: ObjectType::KeyPackage,
        key_id: &KEY_ID,
        identifier: 2,
        share_version: 1,
    }
}

fn new_kek(dir: &tempfile::TempDir, name: &str) -> FileKek {
    FileKek::create(&dir.path().join(name)).unwrap()
}

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn file_kek_is_created_0600_with_32_bytes_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek.bin");
    let kek = FileKek::create(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(fs::read(&path).unwrap().len(), 32);
    assert_eq!(kek.provider(), Provider::File);
    assert!(kek.kek_id().starts_with("file-"));
    // No temp file left behind.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

    let blob = envelope::seal(&kek, &ctx(), b"secret share bytes").unwrap();
    drop(kek);
    let again = FileKek::open(&path).unwrap();
    assert_eq!(
        &envelope::open(&again, &ctx(), &blob).unwrap()[..],
        b"secret share bytes"
    );
    let other = FileKek::open_or_create(&path).unwrap();
    assert_eq!(other.kek_id(), again.kek_id());
}

#[test]
fn file_kek_create_never_replaces_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek.bin");
    let first = FileKek::create(&path).unwrap();
    let before = fs::read(&path).unwrap();
    let err = FileKek::create(&path).unwrap_err();
    assert_eq!(err.code(), "kek_file");
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(FileKek::open(&path).unwrap().kek_id(), first.kek_id());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn file_kek_refuses_shared_modes_wrong_lengths_and_non_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek.bin");
    FileKek::create(&path).unwrap();
    for bad in [0o644, 0o640, 0o604, 0o660, 0o606] {
        fs::set_permissions(&path, fs::Permissions::from_mode(bad)).unwrap();
        let err = FileKek::open(&path).unwrap_err();
        assert_eq!(err.code(), "kek_file", "mode {bad:o}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert_eq!(err.kind(), ErrorKind::Storage);
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    FileKek::open(&path).unwrap();

    for len in [0usize, 16, 31, 33, 64] {
        let p = dir.path().join(format!("len{len}.bin"));
        let mut f = fs::File::create(&p).unwrap();
        f.write_all(&vec![7u8; len]).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        let err = FileKek::open(&p).unwrap_err();
        assert!(err.to_string().contains("exactly 32 bytes"), "{len}: {err}");
    }

    let missing = FileKek::open(&dir.path().join("missing.bin")).unwrap_err();
    assert!(missing.to_string().contains("does not exist"), "{missing}");
    let not_file = FileKek::open(dir.path()).unwrap_err();
    assert!(
        not_file.to_string().contains("not a regular file"),
        "{not_file}"
    );
    let link = dir.path().join("link.bin");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert_eq!(FileKek::open(&link).unwrap_err().code(), "kek_file");
}

/// A `MakeWriter` collecting everything logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Everything logged in this test binary. A process-wide subscriber (not a scoped one): tracing
/// caches per-callsite interest, and a scoped subscriber races with other test threads hitting
/// the same callsite.
fn captured_log() -> &'static Captured {
    static LOG: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    })
}

#[test]
fn file_kek_warns_that_it_is_for_local_use_and_logs_no_key() {
    let captured = captured_log();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek.bin");
    FileKek::create(&path).unwrap();
    FileKek::open(&path).unwrap();
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let mine: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&*path.to_string_lossy()))
        .collect();
    assert_eq!(mine.len(), 2, "{log}");
    for line in &mine {
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("local and development use only"), "{line}");
    }
    let key = fs::read(&path).unwrap();
    assert!(!log.contains(&hex::encode(&key)), "{log}");
    assert!(!log.contains(&hex::encode(&key[..8])), "{log}");
}

#[test]
fn debug_never_shows_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let kek = new_kek(&dir, "kek.bin");
    let key = fs::read(dir.path().join("kek.bin")).unwrap();
    let debug = format!("{kek:?}");
    assert!(debug.contains(kek.kek_id()));
    assert!(!debug.contains(&hex::encode(&key[..4])), "{debug}");
    assert!(!debug.contains(&format!("{:?}", &key[..4])), "{debug}");
}

#[test]
fn blob_layout_matches_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let kek = new_kek(&dir, "kek.bin");
    let plaintext = [0x5au8; 136];
    let blob = envelope::seal(&kek, &ctx(), &plaintext).unwrap();
    let id = kek.kek_id().as_bytes();
    assert_eq!(&blob[..4], b"KLS1");
    assert_eq!(blob[4], 1);
    assert_eq!(blob[5], 2, "provider 2 = file");
    assert_eq!(usize::from(blob[6]), id.len());
    assert_eq!(&blob[7..7 + id.len()], id);
    assert_eq!(blob.len(), 7 + id.len() + 12 + 136 + 16);
    assert!(!blob.windows(16).any(|w| w == &plaintext[..16]));
    let header = envelope::header(&blob).unwrap();
    assert_eq!(header.provider, Provider::File);
    assert_eq!(header.kek_id, kek.kek_id());

    // A fresh IV per seal.
    let again = envelope::seal(&kek, &ctx(), &plaintext).unwrap();
    let iv = 7 + id.len();
    assert_ne!(blob[iv..iv + 12], again[iv..iv + 12]);
    assert_ne!(blob, again);
}

#[test]
fn round_trip_for_every_object_type_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let kek = new_kek(&dir, "kek.bin");
    for object in [
        ObjectType::KeyPackage,
        ObjectType::TransportSecret,
        ObjectType::PendingShare,
    ] {
        for len in [0usize, 1, 32, 136, MAX_SEALED_PLAINTEXT] {
            let plaintext: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let c = SealContext { object, ..ctx() };
            let blob = envelope::seal(&kek, &c, &plaintext).unwrap();
            assert!(blob.len() <= MAX_SEALED_BLOB);
            assert_eq!(
                &envelope::open(&kek, &c, &blob).unwrap()[..],
                &plaintext[..]
            );
        }
    }
    let too_long = vec![0u8; MAX_SEALED_PLAINTEXT + 1];
    assert_eq!(
        envelope::seal(&kek, &ctx(), &too_long).unwrap_err().code(),
        "too_large"
    );
    let huge = vec![0u8; MAX_SEALED_BLOB + 1];
    assert_eq!(
        envelope::open(&kek, &ctx(), &huge).unwrap_err().code(),
        "too_large"
    );
}

#[test]
fn every_flipped_byte_truncation_and_extension_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let kek = new_kek(&dir, "kek.bin");
    let blob = envelope::seal(&kek, &ctx(), &[9u8; 136]).unwrap();
    let header_len = 7 + kek.kek_id().len();
    for i in 0..blob.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bad = blob.clone();
            bad[i] ^= mask;
            let err = envelope::open(&kek, &ctx(), &bad).unwrap_err();
            if i >= header_len {
                // IV, ciphertext, tag: authentication.
                assert_eq!(err, Error::SealedBlobAuth, "byte {i} mask {mask:#x}");
            }
        }
    }
    for cut in 0..blob.len() {
        assert!(
            envelope::open(&kek, &ctx(), &blob[..cut]).is_err(),
            "cut {cut}"
        );
    }
    let mut longer = blob.clone();
    longer.push(0);
    assert_eq!(
        envelope::open(&kek, &ctx(), &longer).unwrap_err(),
        Error::SealedBlobAuth
    );
    assert_eq!(
        &envelope::open(&kek, &ctx(), &blob).unwrap()[..],
        &[9u8; 136]
    );
}

#[test]
fn a_blob_moved_to_another_key_share_version_or_type_fails() {
    let dir = tempfile::tempdir().unwrap();
    let kek = new_kek(&dir, "kek.bin");
    let blob = envelope::seal(&kek, &ctx(), b"share").unwrap();
    let other_key = [0x12u8; 16];
    let moved = [
        SealContext {
            key_id: &other_key,
            ..ctx()
        },
        SealContext {
            key_id: &KEY_ID[..15],
            ..ctx()
        },
        SealContext {
            identifier: 3,
            ..ctx()
        },
        SealContext {
            share_version: 2,
            ..ctx()
        },
        SealContext {
            object: ObjectType::PendingShare,
            ..ctx()
        },
        SealContext {
            object: ObjectType::TransportSecret,
            ..ctx()
        },
    ];
    for c in moved {
        assert_eq!(
            envelope::open(&kek, &c, &blob).unwrap_err(),
            Error::SealedBlobAuth,
            "{c:?}"
        );
    }
}

#[test]
fn another_kek_cannot_open_a_blob() {
    let dir = tempfile::tempdir().unwrap();
    let a = new_kek(&dir, "a.bin");
    let b = new_kek(&dir, "b.bin");
    assert_ne!(a.kek_id(), b.kek_id());
    let blob = envelope::seal(&a, &ctx(), b"share").unwrap();

    let err = envelope::open(&b, &ctx(), &blob).unwrap_err();
    assert_eq!(err.code(), "wrong_kek");
    assert!(err.to_string().contains(a.kek_id()), "{err}");
    assert!(err.to_string().contains(b.kek_id()), "{err}");

    // The header rewritten to name B: authentication fails (the header is in the AAD, and the
    // key differs anyway).
    let mut forged = blob.clone();
    forged[7..7 + a.kek_id().len()].copy_from_slice(b.kek_id().as_bytes());
    assert_eq!(
        envelope::open(&b, &ctx(), &forged).unwrap_err(),
        Error::SealedBlobAuth
    );

    // A different key file copied over A's path: same path, different key → refused.
    let a_path = dir.path().join("a.bin");
    fs::remove_file(&a_path).unwrap();
    let replaced = FileKek::create(&a_path).unwrap();
    assert_eq!(
        envelope::open(&replaced, &ctx(), &blob).unwrap_err().code(),
        "wrong_kek"
    );
}

#[test]
fn unknown_format_versions_and_providers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let kek = new_kek(&dir, "kek.bin");
    let blob = envelope::seal(&kek, &ctx(), b"share").unwrap();
    let mut v2 = blob.clone();
    v2[4] = 2;
    assert_eq!(
        envelope::open(&kek, &ctx(), &v2).unwrap_err(),
        Error::UnsupportedVersion { version: 2 }
    );
    let mut p = blob.clone();
    p[5] = 3;
    assert_eq!(
        envelope::open(&kek, &ctx(), &p).unwrap_err().code(),
        "malformed"
    );
    let mut p11 = blob.clone();
    p11[5] = 1;
    assert_eq!(
        envelope::open(&kek, &ctx(), &p11).unwrap_err().code(),
        "wrong_kek"
    );
    let mut no_id = blob.clone();
    no_id[6] = 0;
    assert!(envelope::open(&kek, &ctx(), &no_id).is_err());
    assert!(envelope::header(b"KLS1").is_err());
}

#[test]
fn envelope_limits_hold_at_their_edges() {
    use keyline_signer::limits::MAX_SEALED_KEY_ID_LEN;
    let dir = tempfile::tempdir().unwrap();
    let kek = new_kek(&dir, "kek.bin");
    let long_id = vec![0x44u8; MAX_SEALED_KEY_ID_LEN];
    let c = SealContext {
        key_id: &long_id,
        ..ctx()
    };
    let blob = envelope::seal(&kek, &c, b"x").unwrap();
    assert_eq!(&envelope::open(&kek, &c, &blob).unwrap()[..], b"x");
    let too_long = vec![0x44u8; MAX_SEALED_KEY_ID_LEN + 1];
    let c = SealContext {
        key_id: &too_long,
        ..ctx()
    };
    assert_eq!(
        envelope::seal(&kek, &c, b"x").unwrap_err().code(),
        "too_large"
    );
    assert_eq!(
        envelope::open(&kek, &c, &blob).unwrap_err().code(),
        "too_large"
    );
    // The largest plaintext makes exactly the largest blob a file KEK produces.
    let max = vec![0u8; MAX_SEALED_PLAINTEXT];
    let blob = envelope::seal(&kek, &ctx(), &max).unwrap();
    assert_eq!(
        blob.len(),
        MAX_SEALED_BLOB - (keyline_signer::limits::MAX_KEK_ID_LEN - kek.kek_id().len())
    );
}

#[test]
fn pins_come_only_from_private_files_or_the_environment() {
    use keyline_signer::envelope::Pkcs11Config;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pin");
    fs::write(&path, "1234\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let err = Pkcs11Config::pin_from_file(&path).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let pin = Pkcs11Config::pin_from_file(&path).unwrap();
    assert!(!format!("{pin:?}").contains("1234"));

    for bad in [
        &b""[..],
        b"\n",
        &[b'9'; keyline_signer::limits::MAX_PIN_LEN + 1],
    ] {
        fs::write(&path, bad).unwrap();
        assert!(Pkcs11Config::pin_from_file(&path).is_err());
    }
    fs::write(&path, [b'9'; keyline_signer::limits::MAX_PIN_LEN]).unwrap();
    Pkcs11Config::pin_from_file(&path).unwrap();
    assert!(Pkcs11Config::pin_from_file(&dir.path().join("missing")).is_err());
    assert!(Pkcs11Config::pin_from_file(dir.path()).is_err());

    let err = Pkcs11Config::pin_from_env("KEYLINE_TEST_SURELY_UNSET_PIN").unwrap_err();
    assert!(err.to_string().contains("not set"), "{err}");
}
