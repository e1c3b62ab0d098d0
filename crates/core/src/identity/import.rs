//! Importing one key into an existing identity: an SSB secret file or a Nostr `nsec`.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::Identity;
use crate::error::{Error, Result};
use crate::fsutil::read_secret_text;
use crate::keys::{SSB_SUFFIX, ed25519_public_of, parse_nsec, ssb_id};
use crate::limits::MAX_IMPORT_FILE_BYTES;

/// A key to import with [`Identity::import_into_file`].
///
/// `Debug` shows the variant and file path only, never secret text.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum ImportSource<'a> {
    /// An SSB secret file (`~/.ssb/secret`); replaces the Ed25519 key.
    SsbSecretFile(&'a Path),
    /// The text of an SSB secret file; replaces the Ed25519 key.
    SsbSecret(&'a str),
    /// A Nostr secret key, `nsec1…` or 64 hex digits; replaces the secp256k1 key.
    Nsec(&'a str),
}

impl std::fmt::Debug for ImportSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SsbSecretFile(path) => f.debug_tuple("SsbSecretFile").field(path).finish(),
            Self::SsbSecret(_) => f.write_str("SsbSecret(<redacted>)"),
            Self::Nsec(_) => f.write_str("Nsec(<redacted>)"),
        }
    }
}

impl Identity {
    /// Replaces one key of the identity stored at `path` and saves it atomically.
    ///
    /// The existing file is read and the new key fully parsed and validated before anything
    /// is written, so on any error the file is left byte for byte as it was. Fails with
    /// [`Error::NoIdentity`] if there is no identity yet. Returns the updated identity.
    pub fn import_into_file(path: impl AsRef<Path>, source: ImportSource<'_>) -> Result<Identity> {
        let path = path.as_ref();
        let identity = Identity::load(path)?;
        let updated = match source {
            ImportSource::SsbSecretFile(file) => {
                let (text, _) = read_secret_text(file, MAX_IMPORT_FILE_BYTES)?;
                identity.with_ed25519_seed(*import_ssb_secret(&text)?)
            }
            ImportSource::SsbSecret(text) => identity.with_ed25519_seed(*import_ssb_secret(text)?),
            ImportSource::Nsec(text) => {
                let secret = parse_nsec(text).map_err(|e| Error::InvalidImport {
                    reason: match e {
                        Error::InvalidKey { reason, .. } => format!("nsec: {reason}"),
                        other => other.to_string(),
                    },
                })?;
                identity.with_secp256k1_secret(*secret)?
            }
        };
        updated.save(path, true)?;
        Ok(updated)
    }
}

/// The fields keyline reads from an SSB secret; others are ignored.
#[derive(Deserialize)]
struct SsbSecret {
    curve: Option<String>,
    public: Option<String>,
    #[serde(default, deserialize_with = "zeroizing_opt_string")]
    private: Option<Zeroizing<String>>,
    id: Option<String>,
}

fn zeroizing_opt_string<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Zeroizing<String>>, D::Error> {
    Option::<String>::deserialize(d).map(|s| s.map(Zeroizing::new))
}

/// Extracts the Ed25519 seed from the text of an SSB secret file (`~/.ssb/secret`).
///
/// Lines whose first non-blank character is `#` are removed, the rest must be a JSON object
/// with `"curve": "ed25519"` and `private`: base64 of the 64-byte libsodium secret key
/// (`seed | public key`) followed by `.ed25519`. The public half must be the seed's public
/// key, and `public` (required) and `id` (optional) must name that same key. Every failure is
/// an [`Error::InvalidImport`] whose reason never contains key material.
pub fn import_ssb_secret(text: &str) -> Result<Zeroizing<[u8; 32]>> {
    let invalid = |reason: &str| Error::InvalidImport {
        reason: format!("SSB secret: {reason}"),
    };
    if text.len() as u64 > MAX_IMPORT_FILE_BYTES {
        return Err(invalid(&format!(
            "longer than {MAX_IMPORT_FILE_BYTES} bytes"
        )));
    }
    let mut json = Zeroizing::new(String::with_capacity(text.len()));
    for line in text.lines() {
        if !line.trim_start().starts_with('#') {
            json.push_str(line);
            json.push('\n');
        }
    }
    let secret: SsbSecret = serde_json::from_str(&json).map_err(|e| {
        // serde_json's message can quote input; report only the position and the category.
        let what = match e.classify() {
            serde_json::error::Category::Data => "wrong field type",
            serde_json::error::Category::Eof => "unexpected end of input",
            _ => "not valid JSON",
        };
        invalid(&format!(
            "{what} at line {} column {} (after removing # comment lines)",
            e.line(),
            e.column()
        ))
    })?;

    match secret.curve.as_deref() {
        Some("ed25519") => {}
        Some(_) => return Err(invalid("`curve` is not \"ed25519\"")),
        None => return Err(invalid("missing `curve`")),
    }
    let private = secret.private.ok_or_else(|| invalid("missing `private`"))?;
    let b64 = private
        .strip_suffix(SSB_SUFFIX)
        .ok_or_else(|| invalid("`private` does not end in .ed25519"))?;
    let mut keypair = Zeroizing::new([0u8; 64]);
    match STANDARD.decode_slice(b64, keypair.as_mut()) {
        Ok(64) => {}
        Ok(_) | Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
            return Err(invalid("`private` is not 64 bytes"));
        }
        Err(_) => return Err(invalid("`private` is not valid base64")),
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&keypair[..32]);
    let public = ed25519_public_of(&seed);
    if !bool::from(public.ct_eq(&keypair[32..])) {
        return Err(invalid(
            "the public half of `private` does not match its secret half",
        ));
    }

    let expected_public = &ssb_id(&public)[1..];
    match secret.public.as_deref() {
        Some(p) if p == expected_public => {}
        Some(_) => return Err(invalid("`public` does not match `private`")),
        None => return Err(invalid("missing `public`")),
    }
    if let Some(id) = secret.id.as_deref()
        && id.strip_prefix('@') != Some(expected_public)
    {
        return Err(invalid("`id` does not match `private`"));
    }
    Ok(seed)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::identity::tests::fixed;
    use crate::keys::nsec;
    use std::fs;

    /// An SSB secret file as `ssb-keys` writes it.
    pub(crate) fn ssb_secret_text(seed: &[u8; 32]) -> String {
        let pk = ed25519_public_of(seed);
        let mut keypair = seed.to_vec();
        keypair.extend_from_slice(&pk);
        let public = &ssb_id(&pk)[1..];
        format!(
            "# this is your SECRET name.\n\
             # this name gives you magical powers.\n\
             # with it you can mark your messages so that your friends can verify\n\
             # that they really did come from you.\n\
             #\n\
             # if any one learns this name, they can use it to destroy your identity\n\
             # NEVER show this to anyone!!!\n\
             \n\
             {{\n  \"curve\": \"ed25519\",\n  \"public\": \"{public}\",\n  \
             \"private\": \"{}.ed25519\",\n  \"id\": \"@{public}\"\n}}\n\
             \n\
             # WARNING! It's vital that you DO NOT edit OR share your secret name\n\
             # instead, share your public name\n\
             # your public name: @{public}\n",
            STANDARD.encode(&keypair)
        )
    }

    #[test]
    fn imports_a_real_format_secret() {
        let seed = [42u8; 32];
        assert_eq!(*import_ssb_secret(&ssb_secret_text(&seed)).unwrap(), seed);
        // Indented comment lines are comments too; `id` is optional.
        let text = ssb_secret_text(&seed)
            .replace("# this name", "   # this name")
            .replace(",\n  \"id\": \"@", ",\n  \"x\": \"@");
        assert_eq!(*import_ssb_secret(&text).unwrap(), seed);
    }

    #[test]
    fn rejects_inconsistent_or_corrupt_secrets() {
        let seed = [42u8; 32];
        let good = ssb_secret_text(&seed);
        let pk = ed25519_public_of(&seed);
        let other_pk = ed25519_public_of(&[43u8; 32]);
        let other_public = &ssb_id(&other_pk)[1..];
        let public = &ssb_id(&pk)[1..];
        let private_b64 = {
            let mut kp = seed.to_vec();
            kp.extend_from_slice(&pk);
            STANDARD.encode(kp)
        };
        let swapped_half = {
            let mut kp = seed.to_vec();
            kp.extend_from_slice(&other_pk);
            STANDARD.encode(kp)
        };
        let cases: Vec<(String, &str)> = vec![
            (good.replace("\"ed25519\",", "\"k256\","), "`curve` is not"),
            (good.replace("\"curve\"", "\"kurve\""), "missing `curve`"),
            (
                good.replace("\"private\"", "\"privat\""),
                "missing `private`",
            ),
            (good.replace("\"public\"", "\"publik\""), "missing `public`"),
            (
                good.replace(&format!("{private_b64}.ed25519"), &private_b64),
                "does not end in .ed25519",
            ),
            (
                good.replace(&private_b64, &private_b64[4..]),
                "not 64 bytes",
            ),
            (
                good.replace(&private_b64, &format!("{private_b64}AAAA")),
                "not 64 bytes",
            ),
            (
                good.replace(&private_b64, &private_b64.replace('A', "*")),
                "base64",
            ),
            (good.replace(&private_b64, &swapped_half), "public half"),
            (
                good.replacen(
                    &format!("\"public\": \"{public}\""),
                    &format!("\"public\": \"{other_public}\""),
                    1,
                ),
                "`public` does not match",
            ),
            (
                good.replace(
                    &format!("\"@{public}\"\n}}"),
                    &format!("\"@{other_public}\"\n}}"),
                ),
                "`id` does not match",
            ),
            (good.replace('{', "["), "line"),
            (good.replace("}\n", ""), "unexpected end"),
            (good.replace("\"ed25519\",", "25519,"), "wrong field type"),
            (String::new(), "unexpected end"),
        ];
        for (text, expected) in cases {
            let err = import_ssb_secret(&text).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, Error::InvalidImport { .. }), "{msg}");
            assert!(msg.contains(expected), "expected {expected:?} in {msg:?}");
            assert!(!msg.contains(&private_b64[..12]), "secret leaked: {msg}");
        }
    }

    fn setup() -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.toml");
        fixed().save(&path, false).unwrap();
        let bytes = fs::read(&path).unwrap();
        (dir, path, bytes)
    }

    #[test]
    fn import_replaces_one_key() {
        let (dir, path, _) = setup();
        let secret_file = dir.path().join("secret");
        fs::write(&secret_file, ssb_secret_text(&[9u8; 32])).unwrap();
        let id =
            Identity::import_into_file(&path, ImportSource::SsbSecretFile(&secret_file)).unwrap();
        assert_eq!(id.ed25519_seed(), &[9u8; 32]);
        assert_eq!(id.secp256k1_secret(), fixed().secp256k1_secret());
        assert_eq!(Identity::load(&path).unwrap().public(), id.public());

        let id = Identity::import_into_file(&path, ImportSource::Nsec(&nsec(&[5u8; 32]))).unwrap();
        assert_eq!(id.ed25519_seed(), &[9u8; 32]);
        assert_eq!(id.secp256k1_secret(), &[5u8; 32]);

        let id =
            Identity::import_into_file(&path, ImportSource::Nsec(&hex::encode([6u8; 32]))).unwrap();
        assert_eq!(id.secp256k1_secret(), &[6u8; 32]);
        let id =
            Identity::import_into_file(&path, ImportSource::SsbSecret(&ssb_secret_text(&[8; 32])))
                .unwrap();
        assert_eq!(Identity::load(&path).unwrap().ed25519_seed(), &[8; 32]);
        assert_eq!(id.ed25519_seed(), &[8; 32]);
    }

    #[test]
    fn failed_import_leaves_file_untouched() {
        let (dir, path, before) = setup();
        let corrupt = dir.path().join("corrupt");
        fs::write(
            &corrupt,
            ssb_secret_text(&[9u8; 32]).replace("ed25519\",", "x\","),
        )
        .unwrap();
        let big = dir.path().join("big");
        fs::write(&big, " ".repeat(MAX_IMPORT_FILE_BYTES as usize + 1)).unwrap();
        let missing = dir.path().join("missing");
        let sources = [
            ImportSource::SsbSecretFile(&corrupt),
            ImportSource::SsbSecretFile(&big),
            ImportSource::SsbSecretFile(&missing),
            ImportSource::SsbSecret("{}"),
            ImportSource::Nsec("nsec1garbage"),
            ImportSource::Nsec(&"0".repeat(64)),
            ImportSource::Nsec(""),
        ];
        for source in sources {
            let err = Identity::import_into_file(&path, source).unwrap_err();
            assert!(!err.to_string().contains('\n'), "{err}");
            assert_eq!(fs::read(&path).unwrap(), before, "after {source:?}: {err}");
        }
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 3, "no temp files left");
    }

    #[test]
    fn debug_redacts_secret_text() {
        let n = nsec(&[5u8; 32]);
        let dbg = format!(
            "{:?} {:?}",
            ImportSource::Nsec(&n),
            ImportSource::SsbSecret("s3cr3t")
        );
        assert!(!dbg.contains(&n[5..]) && !dbg.contains("s3cr3t"), "{dbg}");
        let p = Path::new("/x/secret");
        assert!(format!("{:?}", ImportSource::SsbSecretFile(p)).contains("/x/secret"));
    }

    #[test]
    fn import_needs_an_existing_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.toml");
        let err = Identity::import_into_file(&path, ImportSource::Nsec(&hex::encode([6u8; 32])))
            .unwrap_err();
        assert!(matches!(err, Error::NoIdentity { .. }), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn import_over_corrupt_identity_fails_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.toml");
        fs::write(&path, "version = 1\n").unwrap();
        let err = Identity::import_into_file(&path, ImportSource::Nsec(&hex::encode([6u8; 32])))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidIdentityFile { .. }), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "version = 1\n");
    }
}
