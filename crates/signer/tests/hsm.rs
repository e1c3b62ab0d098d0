//! The PKCS#11 KEK against SoftHSM2 (spec §10.5).
//!
//! `SOFTHSM2_CONF` is read by the module at `C_Initialize` and is process-global, and this
//! workspace forbids `unsafe` (so no `std::env::set_var`). The test [`softhsm2`] therefore
//! prepares a private token directory, initialises tokens with `softhsm2-util`, and re-runs
//! this test binary as a child process with `SOFTHSM2_CONF` set, executing only
//! [`hsm_checks`]; every HSM check runs in that one child process, which works the same under
//! `cargo test` and nextest. Without SoftHSM2 the test prints a loud skip, or fails when
//! `KEYLINE_REQUIRE_INTEROP=1`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::UserType;
use keyline_signer::envelope::{
    self, FileKek, Kek, ObjectType, Pkcs11Config, Pkcs11Kek, Provider, SealContext, TokenSelector,
};
use keyline_signer::store::{ShareStatus, ShareVault, Store};
use keyline_signer::{Error, OsRng, bip340, local};

/// Set in the child process: the temporary directory holding `softhsm2.conf` and the tokens.
const CHILD_ENV: &str = "KEYLINE_HSM_TEST_DIR";
const DONE: &str = "keyline hsm checks: all passed";
const TOKEN: &str = "keyline-test";
const OTHER_TOKEN: &str = "keyline-other";
const PIN: &str = "1234";
const SO_PIN: &str = "5678";
const KEY: [u8; 16] = [0x4b; 16];

fn module_path() -> PathBuf {
    std::env::var_os("KEYLINE_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
}

/// Prints a loud skip, or panics when interop is required.
fn unavailable(why: &str) {
    if keyline_testkit::interop_required() {
        panic!("SoftHSM2 required (KEYLINE_REQUIRE_INTEROP=1) but unavailable: {why}");
    }
    eprintln!();
    eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    eprintln!("!! SKIPPED: PKCS#11 KEK tests: {why}");
    eprintln!("!! Install SoftHSM2 (`apt-get install -y softhsm2`) or set KEYLINE_PKCS11_MODULE.");
    eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    eprintln!();
}

fn init_token(conf: &Path, label: &str) {
    let out = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            PIN,
            "--so-pin",
            SO_PIN,
        ])
        .env("SOFTHSM2_CONF", conf)
        .output()
        .expect("run softhsm2-util");
    assert!(
        out.status.success(),
        "softhsm2-util --init-token failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn softhsm2() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return; // We are the child; only `hsm_checks` runs here.
    }
    let module = module_path();
    if !module.is_file() {
        unavailable(&format!("no PKCS#11 module at {}", module.display()));
        return;
    }
    if Command::new("softhsm2-util")
        .arg("--version")
        .output()
        .is_err()
    {
        unavailable("`softhsm2-util` is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    init_token(&conf, TOKEN);
    init_token(&conf, OTHER_TOKEN);

    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hsm_checks",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .env("KEYLINE_PKCS11_MODULE", &module)
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(out.status.success(), "the HSM checks failed (output above)");
    assert!(stdout.contains(DONE), "the HSM checks did not run");
}

fn config(kek_label: &str) -> Pkcs11Config {
    Pkcs11Config::new(module_path(), TOKEN, PIN.to_string().into(), kek_label)
}

fn ctx() -> SealContext<'static> {
    SealContext {
        object: ObjectType::KeyPackage,
        key_id: &KEY,
        identifier: 1,
        share_version: 1,
    }
}

fn check_errors_before_login(dir: &Path) {
    // Module missing, or not a PKCS#11 library.
    let mut missing = config("kek-a");
    missing.module = dir.join("no-such-module.so");
    let err = Pkcs11Kek::open(&missing).unwrap_err();
    assert_eq!(err.code(), "pkcs11_module", "{err}");
    assert!(err.to_string().contains("no such file"), "{err}");
    let mut not_a_library = config("kek-a");
    not_a_library.module = dir.join("softhsm2.conf");
    assert_eq!(
        Pkcs11Kek::open(&not_a_library).unwrap_err().code(),
        "pkcs11_module"
    );

    // Wrong PIN (on a token this process has not logged in to: PKCS#11 login state is per
    // process and token, so a second login while logged in reports "already logged in").
    let mut wrong_pin = config("kek-a");
    wrong_pin.token = TokenSelector::Label(OTHER_TOKEN.into());
    wrong_pin.pin = "0000".to_string().into();
    let err = Pkcs11Kek::open(&wrong_pin).unwrap_err();
    assert_eq!(err, Error::PinIncorrect);
    assert_eq!(err.to_string(), "PKCS#11 login failed: incorrect PIN");
    assert!(!format!("{wrong_pin:?}").contains("0000"), "PIN in Debug");
    assert!(format!("{wrong_pin:?}").contains("REDACTED"));

    // Unknown token label.
    let mut no_token = config("kek-a");
    no_token.token = TokenSelector::Label("no-such-token".into());
    let err = Pkcs11Kek::open(&no_token).unwrap_err();
    assert_eq!(
        err,
        Error::TokenNotFound {
            label: "no-such-token".into()
        }
    );
    assert_eq!(err.to_string(), "PKCS#11 token `no-such-token` not found");

    // No KEK yet.
    assert_eq!(
        Pkcs11Kek::open(&config("kek-a")).unwrap_err(),
        Error::KekNotFound {
            label: "kek-a".into()
        }
    );
}

/// Reads `CKA_VALUE` of the key labelled `label` through cryptoki directly (a second context on
/// the already-initialised module).
fn try_read_value(label: &str) -> Option<Vec<u8>> {
    let ctx = Pkcs11::new(module_path()).unwrap();
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::CryptokiAlreadyInitialized,
            _,
        )) => {}
        Err(e) => panic!("{e}"),
    }
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == TOKEN)
        .unwrap();
    let session = ctx.open_ro_session(slot).unwrap();
    let _ = session.login(UserType::User, Some(&PIN.to_string().into()));
    let key = session
        .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .unwrap()[0];
    let attrs = session
        .get_attributes(key, &[AttributeType::Value, AttributeType::Sensitive])
        .unwrap();
    assert!(
        attrs
            .iter()
            .any(|a| matches!(a, Attribute::Sensitive(true))),
        "{attrs:?}"
    );
    attrs.into_iter().find_map(|a| match a {
        Attribute::Value(v) => Some(v),
        _ => None,
    })
}

/// Creates an **imported**, extractable AES key through cryptoki, which keyline must refuse.
fn create_imported_key(label: &str) {
    let ctx = Pkcs11::new(module_path()).unwrap();
    let _ = ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == TOKEN)
        .unwrap();
    let session = ctx.open_rw_session(slot).unwrap();
    let _ = session.login(UserType::User, Some(&PIN.to_string().into()));
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(vec![7u8; 32]),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(vec![1, 2, 3]),
        ])
        .unwrap();
}

fn check_envelopes(a: &Pkcs11Kek, b: &Pkcs11Kek) {
    assert_eq!(a.provider(), Provider::Pkcs11);
    assert!(a.kek_id().starts_with("p11-"));
    assert_ne!(a.kek_id(), b.kek_id());
    let plaintext = [0x3cu8; 136];
    let blob = envelope::seal(a, &ctx(), &plaintext).unwrap();
    assert_eq!(blob[5], 1, "provider 1 = pkcs11");
    assert_eq!(&envelope::open(a, &ctx(), &blob).unwrap()[..], &plaintext);
    assert!(!blob.windows(16).any(|w| w == &plaintext[..16]));
    let again = envelope::seal(a, &ctx(), &plaintext).unwrap();
    assert_ne!(blob, again, "fresh IV per seal");

    // Every flipped byte fails; after the header it is an authentication failure (SoftHSM
    // reports a bad tag as CKR_GENERAL_ERROR, mapped the same way).
    let header_len = 7 + a.kek_id().len();
    for i in 0..blob.len() {
        let mut bad = blob.clone();
        bad[i] ^= 0x01;
        let err = envelope::open(a, &ctx(), &bad).unwrap_err();
        if i >= header_len {
            assert_eq!(err, Error::SealedBlobAuth, "byte {i}");
        }
    }
    let mut short = blob.clone();
    short.pop();
    assert_eq!(
        envelope::open(a, &ctx(), &short).unwrap_err(),
        Error::SealedBlobAuth
    );
    // Changed AAD fields.
    for moved in [
        SealContext {
            key_id: &[0x4c; 16],
            ..ctx()
        },
        SealContext {
            identifier: 2,
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
    ] {
        assert_eq!(
            envelope::open(a, &moved, &blob).unwrap_err(),
            Error::SealedBlobAuth
        );
    }
    // KEK B cannot open KEK A's blob, even with the header rewritten to name B.
    assert_eq!(
        envelope::open(b, &ctx(), &blob).unwrap_err().code(),
        "wrong_kek"
    );
    let mut forged = blob[..7].to_vec();
    forged[6] = b.kek_id().len() as u8;
    forged.extend_from_slice(b.kek_id().as_bytes());
    forged.extend_from_slice(&blob[header_len..]);
    assert_eq!(
        envelope::open(b, &ctx(), &forged).unwrap_err(),
        Error::SealedBlobAuth
    );
    // A file KEK and a token KEK never read each other's blobs.
    let dir = tempfile::tempdir().unwrap();
    let file = FileKek::create(&dir.path().join("kek.bin")).unwrap();
    assert_eq!(
        envelope::open(&file, &ctx(), &blob).unwrap_err().code(),
        "wrong_kek"
    );
}

async fn check_vault(a: Arc<dyn Kek>, b: Arc<dyn Kek>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("signer.db")).await.unwrap();
    let file: Arc<dyn Kek> = Arc::new(FileKek::create(&dir.path().join("kek.bin")).unwrap());
    let (public, shares) = local::dkg(2, 3, &mut OsRng).unwrap();
    let nodes = [[1u8; 32], [2; 32]];
    // Node 1 starts on the file KEK and rotates to the token (§10.4); node 2 uses the token.
    let v1 = ShareVault::new(store.clone(), file.clone(), nodes[0]);
    v1.seal_and_store(&KEY, &shares[0], 1, ShareStatus::Active, 1)
        .await
        .unwrap();
    assert_eq!(v1.rotate(&*a, 2).await.unwrap(), 1);
    let v1 = ShareVault::new(store.clone(), a.clone(), nodes[0]);
    let v2 = ShareVault::new(store.clone(), a.clone(), nodes[1]);
    v2.seal_and_store(&KEY, &shares[1], 1, ShareStatus::Pending, 3)
        .await
        .unwrap();
    v2.commit_pending(&KEY, 1).await.unwrap();
    let s1 = v1.load_share(&KEY).await.unwrap();
    let s2 = v2.load_share(&KEY).await.unwrap();
    let sig = local::sign(&public, &[&s1, &s2], &[9; 32], &mut OsRng).unwrap();
    bip340::verify(&public.npub(), &[9; 32], &sig).unwrap();

    // The wrong KEK fails and the database is unchanged.
    let before = store.list_shares(&nodes[0]).await.unwrap();
    let wrong = ShareVault::new(store.clone(), b, nodes[0]);
    assert_eq!(
        wrong.load_share(&KEY).await.unwrap_err().code(),
        "wrong_kek"
    );
    let old = ShareVault::new(store.clone(), file, nodes[0]);
    assert_eq!(old.load_share(&KEY).await.unwrap_err().code(), "wrong_kek");
    assert_eq!(store.list_shares(&nodes[0]).await.unwrap(), before);
    store.close().await;
}

#[test]
fn hsm_checks() {
    let Some(dir) = std::env::var_os(CHILD_ENV).map(PathBuf::from) else {
        return; // Run only as the child of `softhsm2`.
    };
    check_errors_before_login(&dir);

    // KEK generated in the token with safe attributes, never replaced.
    let a = Pkcs11Kek::generate(&config("kek-a")).unwrap();
    let attrs = a.attributes().unwrap();
    assert!(attrs.sensitive && !attrs.extractable && attrs.never_extractable && attrs.local);
    assert!(attrs.aes && attrs.value_len == 32);
    assert!(!attrs.value_readable, "CKA_VALUE must not be readable");
    assert_eq!(
        try_read_value("kek-a"),
        None,
        "CKA_VALUE must not be readable"
    );
    assert_eq!(
        Pkcs11Kek::generate(&config("kek-a")).unwrap_err(),
        Error::KekExists {
            label: "kek-a".into()
        }
    );
    assert!(!format!("{a:?}").contains(PIN));
    let b = Pkcs11Kek::generate(&config("kek-b")).unwrap();

    check_envelopes(&a, &b);

    // Reopened in a new session, the KEK is the same and still opens old blobs.
    let blob = envelope::seal(&a, &ctx(), b"kept across sessions").unwrap();
    let id = a.kek_id().to_string();
    drop(a);
    let a = Pkcs11Kek::open(&config("kek-a")).unwrap();
    assert_eq!(a.kek_id(), id);
    assert_eq!(
        &envelope::open(&a, &ctx(), &blob).unwrap()[..],
        b"kept across sessions"
    );

    // The PIN read from a 0600 file works the same.
    let pin_file = dir.join("pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    std::fs::set_permissions(
        &pin_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let mut from_file = config("kek-a");
    from_file.pin = Pkcs11Config::pin_from_file(&pin_file).unwrap();
    assert_eq!(Pkcs11Kek::open(&from_file).unwrap().kek_id(), id);

    // An imported, extractable key under a KEK label is refused.
    create_imported_key("imported");
    let err = Pkcs11Kek::open(&config("imported")).unwrap_err();
    assert_eq!(err.code(), "kek_unsafe", "{err}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(check_vault(Arc::new(a), Arc::new(b)));

    // Found again after C_Finalize and a new C_Initialize.
    assert!(Pkcs11Kek::finalize_module(&module_path()).unwrap());
    assert!(!Pkcs11Kek::finalize_module(&module_path()).unwrap());
    let a = Pkcs11Kek::open(&config("kek-a")).unwrap();
    assert_eq!(a.kek_id(), id);
    assert_eq!(
        &envelope::open(&a, &ctx(), &blob).unwrap()[..],
        b"kept across sessions"
    );
    println!("{DONE}");
}
