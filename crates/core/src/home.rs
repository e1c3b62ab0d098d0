//! The keyline home directory: where the identity, the pin store and service keys live.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::is_shared_mode;

/// Environment variable that overrides the default home.
pub const HOME_ENV: &str = "KEYLINE_HOME";

/// Name of the home directory under `$HOME` when neither `--home` nor [`HOME_ENV`] is given.
pub const DEFAULT_DIR_NAME: &str = ".keyline";

/// File name of the identity inside the home.
pub const IDENTITY_FILE: &str = "identity.toml";

/// File name of the SQLite database (pins, signer state) inside the home.
pub const DB_FILE: &str = "keyline.db";

/// File name of the optional configuration inside the home.
pub const CONFIG_FILE: &str = "keyline.toml";

/// Mode of the home directory.
const HOME_DIR_MODE: u32 = 0o700;

/// The keyline home directory (not necessarily existing yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    path: PathBuf,
}

impl Home {
    /// Picks the home: `explicit` if given (e.g. `--home DIR`), else `$KEYLINE_HOME` if set
    /// and non-empty, else `$HOME/.keyline`. Fails with [`Error::NoHome`] if none applies.
    pub fn resolve(explicit: Option<PathBuf>) -> Result<Home> {
        Self::resolve_from(
            explicit,
            std::env::var_os(HOME_ENV),
            std::env::var_os("HOME"),
        )
    }

    /// [`resolve`](Self::resolve) with the environment passed in.
    fn resolve_from(
        explicit: Option<PathBuf>,
        keyline_home: Option<OsString>,
        home: Option<OsString>,
    ) -> Result<Home> {
        let non_empty = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
        let path = explicit
            .filter(|p| !p.as_os_str().is_empty())
            .or_else(|| non_empty(keyline_home))
            .or_else(|| non_empty(home).map(|h| h.join(DEFAULT_DIR_NAME)))
            .ok_or(Error::NoHome)?;
        Ok(Home { path })
    }

    /// A home at exactly `path`.
    pub fn at(path: impl Into<PathBuf>) -> Home {
        Home { path: path.into() }
    }

    /// Creates the directory (and missing parents) with mode 0700 if it does not exist.
    ///
    /// Returns whether it was created. An existing directory is left as it is, with a warning
    /// if group or others can access it.
    pub fn ensure(&self) -> Result<bool> {
        match fs::metadata(&self.path) {
            Ok(meta) if meta.is_dir() => {
                let mode = meta.permissions().mode();
                if is_shared_mode(mode) {
                    tracing::warn!(
                        path = %self.path.display(),
                        mode = format_args!("{:o}", mode & 0o7777),
                        "keyline home is accessible to group or others; run chmod 700 on it"
                    );
                }
                Ok(false)
            }
            Ok(_) => Err(Error::InvalidHome {
                path: self.path.clone(),
                reason: "it exists and is not a directory".into(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match fs::DirBuilder::new()
                    .recursive(true)
                    .mode(HOME_DIR_MODE)
                    .create(&self.path)
                {
                    Ok(()) => {}
                    // Another process created it first: fine, it exists now.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
                    Err(e) => return Err(Error::io("create directory", &self.path, e)),
                }
                // The umask may have cleared owner bits; make the mode exact.
                fs::set_permissions(&self.path, fs::Permissions::from_mode(HOME_DIR_MODE))
                    .map_err(|e| Error::io("set permissions on", &self.path, e))?;
                Ok(true)
            }
            Err(e) => Err(Error::io("stat", &self.path, e)),
        }
    }

    /// The home directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `identity.toml` in the home.
    pub fn identity_path(&self) -> PathBuf {
        self.path.join(IDENTITY_FILE)
    }

    /// `keyline.db` in the home.
    pub fn db_path(&self) -> PathBuf {
        self.path.join(DB_FILE)
    }

    /// `keyline.toml` in the home.
    pub fn config_path(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn resolution_order() {
        let r = |e: Option<&str>, k, h| Home::resolve_from(e.map(PathBuf::from), k, h);
        assert_eq!(
            r(Some("/e"), os("/k"), os("/h")).unwrap().path(),
            Path::new("/e")
        );
        assert_eq!(r(None, os("/k"), os("/h")).unwrap().path(), Path::new("/k"));
        assert_eq!(
            r(None, None, os("/h")).unwrap().path(),
            Path::new("/h/.keyline")
        );
        assert_eq!(
            r(None, os(""), os("/h")).unwrap().path(),
            Path::new("/h/.keyline"),
            "empty KEYLINE_HOME counts as unset"
        );
        assert_eq!(r(Some(""), os("/k"), None).unwrap().path(), Path::new("/k"));
        assert!(matches!(r(None, None, None), Err(Error::NoHome)));
        assert!(matches!(r(None, os(""), os("")), Err(Error::NoHome)));
    }

    #[test]
    fn file_names() {
        let home = Home::at("/x");
        assert_eq!(home.identity_path(), Path::new("/x/identity.toml"));
        assert_eq!(home.db_path(), Path::new("/x/keyline.db"));
        assert_eq!(home.config_path(), Path::new("/x/keyline.toml"));
    }

    #[test]
    fn ensure_creates_private_directory_once() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(tmp.path().join("a").join("home"));
        assert!(home.ensure().unwrap());
        let mode = fs::metadata(home.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(!home.ensure().unwrap());
    }

    #[test]
    fn ensure_rejects_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("file");
        fs::write(&path, b"").unwrap();
        let err = Home::at(&path).ensure().unwrap_err();
        assert!(matches!(err, Error::InvalidHome { .. }), "{err}");
    }

    #[test]
    fn ensure_keeps_an_existing_directory() {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        assert!(!Home::at(tmp.path()).ensure().unwrap());
        let mode = fs::metadata(tmp.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode, 0o755,
            "existing directories are not changed, only warned about"
        );
    }
}
