//! Small file helpers: bounded reads of secret files and atomic, private writes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Mode of files holding secrets.
pub(crate) const PRIVATE_FILE_MODE: u32 = 0o600;

/// How many temp-file names [`write_private_atomic`] tries before giving up.
const TEMP_NAME_ATTEMPTS: u32 = 16;

/// Whether `mode` lets group or others read, write or search.
pub(crate) fn is_shared_mode(mode: u32) -> bool {
    mode & 0o077 != 0
}

/// Reads a regular file of at most `limit` bytes as UTF-8 into a zeroizing string.
///
/// The returned metadata is that of the opened file. A missing file is returned as the
/// `io::ErrorKind::NotFound` inside [`Error::Io`] so callers can map it.
pub(crate) fn read_secret_text(
    path: &Path,
    limit: u64,
) -> Result<(Zeroizing<String>, fs::Metadata)> {
    let not_regular = || {
        Error::io(
            "read",
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
        )
    };
    // Checked before opening too: opening a FIFO would block.
    if !fs::metadata(path)
        .map_err(|e| Error::io("open", path, e))?
        .is_file()
    {
        return Err(not_regular());
    }
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let meta = file.metadata().map_err(|e| Error::io("stat", path, e))?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    if meta.len() > limit {
        return Err(Error::FileTooLarge {
            path: path.into(),
            size: meta.len(),
            limit,
        });
    }
    // Capacity for the whole file plus one byte, so the buffer never reallocates (which would
    // leave an unzeroized copy behind) and a file that grew since `stat` is still caught.
    let capacity = usize::try_from(meta.len().saturating_add(1)).unwrap_or(usize::MAX);
    let mut buf = Zeroizing::new(Vec::with_capacity(capacity));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", path, e))?;
    let size = buf.len() as u64;
    if size > limit {
        return Err(Error::FileTooLarge {
            path: path.into(),
            size,
            limit,
        });
    }
    let bytes = std::mem::take(&mut *buf);
    match String::from_utf8(bytes) {
        Ok(text) => Ok((Zeroizing::new(text), meta)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            Err(Error::io(
                "read",
                path,
                io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"),
            ))
        }
    }
}

/// What to do when the target of [`write_private_atomic`] exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overwrite {
    /// Replace it.
    Replace,
    /// Fail with `io::ErrorKind::AlreadyExists`, atomically with respect to other writers.
    Refuse,
}

/// Writes `contents` to `path` with mode 0600 so that readers see the old file or the new one,
/// never a mix: temp file in the same directory, write, fsync, link/rename, fsync directory.
///
/// Returns the `io::Error` of the failing step together with a short description of it;
/// `io::ErrorKind::AlreadyExists` means `path` exists and `overwrite` was `Refuse`.
pub(crate) fn write_private_atomic(
    path: &Path,
    contents: &[u8],
    overwrite: Overwrite,
) -> std::result::Result<(), (&'static str, PathBuf, io::Error)> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| {
        (
            "write",
            path.to_path_buf(),
            io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
        )
    })?;

    let (mut file, temp) = create_temp(&dir, name)?;
    let guard = TempGuard(Some(temp.clone()));

    file.write_all(contents).map_err(fail("write", &temp))?;
    file.sync_all().map_err(fail("sync", &temp))?;
    drop(file);

    match overwrite {
        Overwrite::Replace => fs::rename(&temp, path).map_err(fail("rename into", path))?,
        Overwrite::Refuse => match fs::hard_link(&temp, path) {
            // The link is atomic and fails if `path` exists: no check-then-write race.
            Ok(()) => {
                let _ = fs::remove_file(&temp);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(("create", path.to_path_buf(), e));
            }
            // File systems without hard links: check, then rename.
            Err(_) => {
                if path.symlink_metadata().is_ok() {
                    return Err((
                        "create",
                        path.to_path_buf(),
                        io::Error::from(io::ErrorKind::AlreadyExists),
                    ));
                }
                fs::rename(&temp, path).map_err(fail("rename into", path))?;
            }
        },
    }
    guard.disarm();
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(fail("sync directory", &dir))?;
    Ok(())
}

fn create_temp(
    dir: &Path,
    name: &std::ffi::OsStr,
) -> std::result::Result<(File, PathBuf), (&'static str, PathBuf, io::Error)> {
    let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
    for _ in 0..TEMP_NAME_ATTEMPTS {
        let mut tag = [0u8; 8];
        getrandom::fill(&mut tag)
            .map_err(|e| ("create temp file in", dir.to_path_buf(), e.into()))?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".tmp-{}", hex::encode(tag)));
        let temp = dir.join(temp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_FILE_MODE)
            .open(&temp)
        {
            Ok(file) => {
                // The umask can only clear bits, but make the mode exact regardless.
                file.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE_MODE))
                    .map_err(|e| ("set permissions on", temp.clone(), e))?;
                return Ok((file, temp));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(("create temp file in", dir.to_path_buf(), e)),
        }
    }
    Err(("create temp file in", dir.to_path_buf(), last))
}

/// Attaches a step and a path to an `io::Error`.
fn fail(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(io::Error) -> (&'static str, PathBuf, io::Error) {
    let path = path.to_path_buf();
    move |e| (action, path, e)
}

/// Removes the temp file on early return.
struct TempGuard(Option<PathBuf>);

impl TempGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// Reads the small secret text file at `path` (mode 0600, at most 64 KiB, refused if group or
/// others may read it), or creates it atomically with `create()` when it does not exist.
/// Returns the text and whether it was created. Two processes racing to create it both end
/// up with the one that won.
pub fn load_or_create_secret_file(
    path: &Path,
    create: impl FnOnce() -> Zeroizing<String>,
) -> Result<(Zeroizing<String>, bool)> {
    const LIMIT: u64 = 64 * 1024;
    match read_secret_text(path, LIMIT) {
        Ok((text, meta)) => {
            if is_shared_mode(meta.permissions().mode()) {
                return Err(Error::InvalidParameter {
                    what: "secret file",
                    reason: format!(
                        "{} is readable by others (mode {:o}); chmod 600 it",
                        path.display(),
                        meta.permissions().mode() & 0o777
                    ),
                });
            }
            Ok((text, false))
        }
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                use std::os::unix::fs::DirBuilderExt;
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| Error::io("create directory", dir, e))?;
            }
            let text = create();
            match write_private_atomic(path, text.as_bytes(), Overwrite::Refuse) {
                Ok(()) => Ok((text, true)),
                Err((_, _, e)) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let (text, _) = read_secret_text(path, LIMIT)?;
                    Ok((text, false))
                }
                Err((op, p, e)) => Err(Error::io(op, p, e)),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn secret_files_are_created_private_once_and_shared_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("node.key");
        let (text, created) =
            load_or_create_secret_file(&path, || Zeroizing::new("first".into())).unwrap();
        assert!(created);
        assert_eq!(text.as_str(), "first");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let (text, created) =
            load_or_create_secret_file(&path, || Zeroizing::new("second".into())).unwrap();
        assert!(!created);
        assert_eq!(text.as_str(), "first");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create_secret_file(&path, || Zeroizing::new("third".into())).unwrap_err();
        assert!(err.to_string().contains("readable by others"), "{err}");
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn atomic_write_is_private_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.toml");
        write_private_atomic(&path, b"one", Overwrite::Refuse).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(entries(dir.path()), ["secret.toml"]);

        let (_, p, e) = write_private_atomic(&path, b"two", Overwrite::Refuse).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(p, path);
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(entries(dir.path()), ["secret.toml"]);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_private_atomic(&path, b"three", Overwrite::Replace).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"three");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(entries(dir.path()), ["secret.toml"]);
    }

    #[test]
    fn missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("f");
        let (action, _, e) = write_private_atomic(&path, b"x", Overwrite::Replace).unwrap_err();
        assert_eq!(action, "create temp file in");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn bounded_read_edges() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, "x".repeat(10)).unwrap();
        let (text, _) = read_secret_text(&path, 10).unwrap();
        assert_eq!(text.len(), 10);
        let err = read_secret_text(&path, 9).unwrap_err();
        assert!(
            matches!(
                err,
                Error::FileTooLarge {
                    size: 10,
                    limit: 9,
                    ..
                }
            ),
            "{err}"
        );

        fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(matches!(read_secret_text(&path, 10), Err(Error::Io { .. })));
        assert!(matches!(
            read_secret_text(dir.path(), 10),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let err = read_secret_text(&fifo, 10).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn shared_modes() {
        assert!(!is_shared_mode(0o100600));
        assert!(!is_shared_mode(0o700));
        assert!(is_shared_mode(0o640));
        assert!(is_shared_mode(0o604));
    }
}
