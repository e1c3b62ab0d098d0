//! `identity.toml`: reading and writing the identity file.
//!
//! ```toml
//! # keyline identity — secret, keep this file private (mode 0600)
//! version = 1
//!
//! [ed25519]
//! seed = "<64 hex digits>"
//! public = "<64 hex digits>"  # informational; checked on load
//!
//! [secp256k1]
//! secret = "<64 hex digits>"
//! public = "<64 hex digits, x-only>"  # informational; checked on load
//! ```
//!
//! The `public` entries are optional on load; when present they must match the secrets, which
//! catches a file edited by hand or corrupted on disk.

use std::fmt::Write as _;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

use super::Identity;
use crate::error::{Error, Result};
use crate::fsutil::{Overwrite, is_shared_mode, read_secret_text, write_private_atomic};
use crate::keys::decode_hex32;
use crate::limits::MAX_IDENTITY_FILE_BYTES;

/// The file format version this build reads and writes.
pub(crate) const IDENTITY_FILE_VERSION: i64 = 1;

/// Only the version, read first so a newer file gets a clear "upgrade" error.
#[derive(Deserialize)]
struct VersionProbe {
    version: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    #[allow(dead_code)] // checked by `VersionProbe`
    version: i64,
    ed25519: Ed25519Section,
    secp256k1: Secp256k1Section,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ed25519Section {
    #[serde(deserialize_with = "zeroizing_string")]
    seed: Zeroizing<String>,
    public: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Secp256k1Section {
    #[serde(deserialize_with = "zeroizing_string")]
    secret: Zeroizing<String>,
    public: Option<String>,
}

fn zeroizing_string<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Zeroizing<String>, D::Error> {
    String::deserialize(d).map(Zeroizing::new)
}

impl Identity {
    /// Reads an identity file.
    ///
    /// Fails with [`Error::NoIdentity`] if the file does not exist, [`Error::FileTooLarge`]
    /// past [`MAX_IDENTITY_FILE_BYTES`] and [`Error::InvalidIdentityFile`] if it does not parse
    /// or its public keys do not match its secrets. Logs a warning if group or others may
    /// read the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Identity> {
        let path = path.as_ref();
        let (text, meta) = match read_secret_text(path, MAX_IDENTITY_FILE_BYTES) {
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NoIdentity { path: path.into() });
            }
            other => other?,
        };
        let mode = meta.permissions().mode();
        if is_shared_mode(mode) {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{:o}", mode & 0o7777),
                "identity file is accessible to group or others; run chmod 600 on it"
            );
        }
        parse(&text).map_err(|reason| Error::InvalidIdentityFile {
            path: path.into(),
            reason,
        })
    }

    /// Parses the text of an identity file (the part of [`load`](Self::load) after reading).
    pub fn from_toml(text: &str) -> Result<Identity> {
        parse(text).map_err(|reason| Error::InvalidIdentityFile {
            path: "<input>".into(),
            reason,
        })
    }

    /// The identity file text for this identity, in a zeroizing string.
    pub fn to_toml(&self) -> Zeroizing<String> {
        // Sized up front so the string never reallocates and leaves a copy behind.
        let mut out = Zeroizing::new(String::with_capacity(512));
        let seed = Zeroizing::new(hex::encode(self.ed25519_seed));
        let secret = Zeroizing::new(hex::encode(self.secp256k1_secret));
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "# keyline identity — secret, keep this file private (mode 0600)\n\
             version = {IDENTITY_FILE_VERSION}\n\
             \n\
             [ed25519]\n\
             seed = \"{}\"\n\
             public = \"{}\"  # informational; checked on load\n\
             \n\
             [secp256k1]\n\
             secret = \"{}\"\n\
             public = \"{}\"  # informational, x-only; checked on load\n",
            seed.as_str(),
            hex::encode(self.ed25519_public),
            secret.as_str(),
            hex::encode(self.secp256k1_xonly),
        );
        out
    }

    /// Writes the identity file atomically with mode 0600: a temp file in the same directory,
    /// fsync, then rename (or link, without `force`).
    ///
    /// Without `force`, fails with [`Error::AlreadyExists`] if `path` exists, and never
    /// replaces a file another process created meanwhile. The directory must exist.
    pub fn save(&self, path: impl AsRef<Path>, force: bool) -> Result<()> {
        let path = path.as_ref();
        let overwrite = if force {
            Overwrite::Replace
        } else {
            Overwrite::Refuse
        };
        let text = self.to_toml();
        write_private_atomic(path, text.as_bytes(), overwrite).map_err(|(action, p, source)| {
            if source.kind() == io::ErrorKind::AlreadyExists && overwrite == Overwrite::Refuse {
                Error::AlreadyExists { path: path.into() }
            } else {
                Error::io(action, p, source)
            }
        })
    }
}

/// Parses identity file text; the error is a reason without key material.
fn parse(text: &str) -> std::result::Result<Identity, String> {
    let probe: VersionProbe = toml::from_str(text).map_err(|e| toml_reason(text, &e))?;
    match probe.version {
        Some(IDENTITY_FILE_VERSION) => {}
        Some(v) if v > IDENTITY_FILE_VERSION => {
            return Err(format!(
                "version {v} is newer than this keyline supports ({IDENTITY_FILE_VERSION}); \
                 upgrade keyline"
            ));
        }
        Some(v) => return Err(format!("unsupported version {v}")),
        None => return Err("missing `version`".into()),
    }
    let file: FileV1 = toml::from_str(text).map_err(|e| toml_reason(text, &e))?;

    let seed = Zeroizing::new(
        decode_hex32(&file.ed25519.seed, "").map_err(|_| "ed25519.seed is not 64 hex digits")?,
    );
    let secret = Zeroizing::new(
        decode_hex32(&file.secp256k1.secret, "")
            .map_err(|_| "secp256k1.secret is not 64 hex digits")?,
    );
    let identity = Identity::from_parts(*seed, *secret)
        .map_err(|_| "secp256k1.secret is zero or not below the group order")?;

    check_public(
        "ed25519.public",
        file.ed25519.public.as_deref(),
        &identity.ed25519_public,
        "ed25519.seed",
    )?;
    check_public(
        "secp256k1.public",
        file.secp256k1.public.as_deref(),
        &identity.secp256k1_xonly,
        "secp256k1.secret",
    )?;
    Ok(identity)
}

fn check_public(
    field: &str,
    given: Option<&str>,
    derived: &[u8; 32],
    secret_field: &str,
) -> std::result::Result<(), String> {
    let Some(given) = given else { return Ok(()) };
    let given = decode_hex32(given, "").map_err(|_| format!("{field} is not 64 hex digits"))?;
    if given != *derived {
        return Err(format!(
            "{field} does not match {secret_field}; the file was edited or is corrupt"
        ));
    }
    Ok(())
}

/// A TOML error as "line N: message", without the source excerpt (it could hold a secret).
fn toml_reason(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(0, |before| before.matches('\n').count())
                + 1;
            format!("line {line}: {}", e.message().trim_end())
        }
        None => e.message().trim_end().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::tests::fixed;
    use std::fs;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.toml");
        let id = Identity::generate().unwrap();
        id.save(&path, false).unwrap();
        assert_eq!(mode(&path), 0o600);
        let loaded = Identity::load(&path).unwrap();
        assert_eq!(loaded.ed25519_seed(), id.ed25519_seed());
        assert_eq!(loaded.secp256k1_secret(), id.secp256k1_secret());
        assert_eq!(loaded.public(), id.public());
    }

    #[test]
    fn file_looks_as_documented() {
        let text = fixed().to_toml();
        assert!(text.starts_with("# keyline identity"));
        assert!(text.contains("version = 1\n"));
        assert!(text.contains(&format!("seed = \"{}\"", hex::encode([1u8; 32]))));
        assert!(text.contains(&format!("secret = \"{}\"", hex::encode([2u8; 32]))));
        assert!(text.len() < 512, "fits the preallocated buffer");
        let back = Identity::from_toml(&text).unwrap();
        assert_eq!(back.public(), fixed().public());
    }

    #[test]
    fn save_refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.toml");
        fixed().save(&path, false).unwrap();
        let before = fs::read(&path).unwrap();
        let err = Identity::generate()
            .unwrap()
            .save(&path, false)
            .unwrap_err();
        assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
        assert!(err.to_string().contains("--force"));
        assert_eq!(fs::read(&path).unwrap(), before);

        let other = Identity::generate().unwrap();
        other.save(&path, true).unwrap();
        assert_eq!(
            Identity::load(&path).unwrap().ed25519_seed(),
            other.ed25519_seed()
        );
        assert_eq!(mode(&path), 0o600);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp files left");
    }

    #[test]
    fn missing_file_says_run_keygen() {
        let dir = tempfile::tempdir().unwrap();
        let err = Identity::load(dir.path().join("identity.toml")).unwrap_err();
        assert!(matches!(err, Error::NoIdentity { .. }), "{err}");
        assert!(err.to_string().contains("keyline keygen"));
    }

    #[test]
    fn loads_with_shared_mode_but_still_works() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.toml");
        fixed().save(&path, false).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Identity::load(&path).is_ok());
    }

    #[test]
    fn public_halves_are_optional_but_checked() {
        let text = fixed().to_toml();
        let without: String = text
            .lines()
            .filter(|l| !l.starts_with("public"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(Identity::from_toml(&without).is_ok());

        let other = hex::encode(Identity::generate().unwrap().ed25519_public());
        let wrong = text.replacen(&hex::encode(fixed().ed25519_public()), &other, 1);
        let err = Identity::from_toml(&wrong).unwrap_err().to_string();
        assert!(err.contains("ed25519.public does not match"), "{err}");

        let other = hex::encode(Identity::generate().unwrap().secp256k1_xonly_public());
        let wrong = text.replacen(&hex::encode(fixed().secp256k1_xonly_public()), &other, 1);
        let err = Identity::from_toml(&wrong).unwrap_err().to_string();
        assert!(err.contains("secp256k1.public does not match"), "{err}");
    }

    #[test]
    fn corrupt_files_are_rejected_without_echoing_secrets() {
        let good = fixed().to_toml();
        let seed_hex = hex::encode([1u8; 32]);
        let secret_hex = hex::encode([2u8; 32]);
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "missing `version`"),
            (
                good.replace("version = 1", "version = 2"),
                "upgrade keyline",
            ),
            (
                good.replace("version = 1", "version = 0"),
                "unsupported version 0",
            ),
            (
                good.replace(&seed_hex, &seed_hex[..62]),
                "ed25519.seed is not 64 hex",
            ),
            (
                good.replace(&seed_hex, &format!("{}zz", &seed_hex[..62])),
                "ed25519.seed",
            ),
            (good.replace(&secret_hex, &"0".repeat(64)), "group order"),
            (good.replace(&secret_hex, &"f".repeat(64)), "group order"),
            (good.replace("[secp256k1]", "[secp256k1x]"), "line"),
            (good.replace("seed =", "sed ="), "line"),
            (good.replace("secret = \"", "secret = \"\"\"\n"), "line"),
            (format!("{}\nextra = 1\n", good.as_str()), "line"),
            (
                good.replace(&format!("\"{seed_hex}\""), &format!("\"{seed_hex}")),
                "line",
            ),
        ];
        for (text, expected) in cases {
            let err = Identity::from_toml(&text).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, Error::InvalidIdentityFile { .. }), "{msg}");
            assert!(msg.contains(expected), "expected {expected:?} in {msg:?}");
            assert!(!msg.contains('\n'), "{msg:?}");
            for secret in [&seed_hex, &secret_hex] {
                assert!(!msg.contains(&secret[..16]), "secret leaked: {msg}");
            }
        }
    }
}
