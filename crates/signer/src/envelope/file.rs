//! The file KEK (spec §10.3): development fallback.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit, Nonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{IV_LEN, KEY_LEN, Kek, Provider, TAG_LEN};
use crate::{Error, Result};

/// Mode of the key file.
const KEY_FILE_MODE: u32 = 0o600;

/// A KEK held in a 32-byte file, mode 0600, used in process with RustCrypto `aes-gcm`.
///
/// **For local use only**: the shares are then protected by a file on the same disk as the
/// database. [`FileKek::open`] logs a warning saying so every time. Its id is
/// `file-` followed by 16 hex digits of a hash of the key, so blobs sealed under another key
/// file are recognised as such ([`Error::WrongKek`]).
pub struct FileKek {
    cipher: Aes256Gcm,
    kek_id: String,
    path: PathBuf,
}

impl fmt::Debug for FileKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileKek")
            .field("kek_id", &self.kek_id)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn kek_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::KekFile {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

impl FileKek {
    /// Creates a new key file at `path` with 32 random bytes, mode 0600, atomically: the file
    /// appears complete or not at all, and an existing file is never replaced (→
    /// [`Error::KekFile`]). The directory must exist.
    pub fn create(path: &Path) -> Result<Self> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(&mut key[..]).map_err(|_| Error::Internal {
            reason: "the operating system's random number generator failed",
        })?;
        write_new_private(path, &key[..]).map_err(|(step, e)| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                kek_error(path, "already exists; refusing to replace a KEK")
            } else {
                kek_error(path, format!("{step}: {e}"))
            }
        })?;
        let kek = Self::from_key(&key, path)?;
        warn_local(&kek);
        Ok(kek)
    }

    /// Opens an existing key file. Refuses a file that is not a regular file, is readable or
    /// writable by group or others, or is not exactly 32 bytes.
    pub fn open(path: &Path) -> Result<Self> {
        let meta = fs::symlink_metadata(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => kek_error(path, "does not exist"),
            _ => kek_error(path, format!("stat: {e}")),
        })?;
        if !meta.file_type().is_file() {
            return Err(kek_error(path, "not a regular file"));
        }
        let mut file = File::open(path).map_err(|e| kek_error(path, format!("open: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| kek_error(path, format!("stat: {e}")))?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(kek_error(
                path,
                format!("mode {mode:04o} lets group or others access it; run chmod 600 on it"),
            ));
        }
        if meta.len() != KEY_LEN as u64 {
            return Err(kek_error(
                path,
                format!("is {} bytes; a KEK file is exactly 32 bytes", meta.len()),
            ));
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        file.read_exact(&mut key[..])
            .map_err(|e| kek_error(path, format!("read: {e}")))?;
        let mut extra = [0u8; 1];
        if file
            .read(&mut extra)
            .map_err(|e| kek_error(path, format!("read: {e}")))?
            != 0
        {
            return Err(kek_error(path, "grew while being read"));
        }
        let kek = Self::from_key(&key, path)?;
        warn_local(&kek);
        Ok(kek)
    }

    /// Opens the key file at `path`, creating it first if it does not exist.
    pub fn open_or_create(path: &Path) -> Result<Self> {
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => match Self::create(path) {
                // Another process created it in between: open theirs.
                Err(Error::KekFile { .. }) if path.exists() => Self::open(path),
                other => other,
            },
            _ => Self::open(path),
        }
    }

    fn from_key(key: &Zeroizing<[u8; KEY_LEN]>, path: &Path) -> Result<Self> {
        let mut hasher = Sha256::new();
        hasher.update(b"keyline/signer/file-kek-id/v1");
        hasher.update(&key[..]);
        let digest = hasher.finalize();
        let cipher = Aes256Gcm::new_from_slice(&key[..]).map_err(|_| Error::Internal {
            reason: "an AES-256 key is not 32 bytes",
        })?;
        Ok(Self {
            cipher,
            kek_id: format!("file-{}", hex::encode(&digest[..8])),
            path: path.to_path_buf(),
        })
    }

    /// The key file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn warn_local(kek: &FileKek) {
    tracing::warn!(
        path = %kek.path.display(),
        kek_id = %kek.kek_id,
        "file KEK in use: shares are protected only by a key file on this machine's disk; \
         for local and development use only (use a PKCS#11 token in production)"
    );
}

impl Kek for FileKek {
    fn provider(&self) -> Provider {
        Provider::File
    }

    fn kek_id(&self) -> &str {
        &self.kek_id
    }

    fn encrypt(&self, iv: &mut [u8; IV_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let nonce = Nonce::<Aes256Gcm>::from(*iv);
        // Room for the tag up front: the buffer never reallocates, so no plaintext copy is
        // left behind; it is wiped if encryption fails.
        let mut buffer = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG_LEN));
        buffer.extend_from_slice(plaintext);
        self.cipher
            .encrypt_in_place(&nonce, aad, &mut *buffer)
            .map_err(|_| Error::Internal {
                reason: "AES-GCM refused to encrypt",
            })?;
        Ok(std::mem::take(&mut *buffer))
    }

    fn decrypt(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let nonce = Nonce::<Aes256Gcm>::from(*iv);
        let mut buffer = Zeroizing::new(Vec::with_capacity(ciphertext_and_tag.len()));
        buffer.extend_from_slice(ciphertext_and_tag);
        self.cipher
            .decrypt_in_place(&nonce, aad, &mut *buffer)
            .map_err(|_| Error::SealedBlobAuth)?;
        Ok(buffer)
    }
}

/// Writes `contents` to a new file `path` (mode 0600) atomically: temp file in the same
/// directory, write, fsync, hard link to `path` (fails if it exists), remove the temp name,
/// fsync the directory.
fn write_new_private(
    path: &Path,
    contents: &[u8],
) -> std::result::Result<(), (&'static str, io::Error)> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or((
        "name",
        io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
    ))?;
    if fs::symlink_metadata(path).is_ok() {
        return Err((
            "create",
            io::Error::new(io::ErrorKind::AlreadyExists, "exists"),
        ));
    }
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|_| ("random", io::Error::other("getrandom failed")))?;
    let temp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        hex::encode(suffix)
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(KEY_FILE_MODE)
            .open(&temp)
            .map_err(|e| ("create", e))?;
        file.write_all(contents).map_err(|e| ("write", e))?;
        file.sync_all().map_err(|e| ("fsync", e))?;
        fs::hard_link(&temp, path).map_err(|e| ("link", e))?;
        Ok(())
    })();
    let _ = fs::remove_file(&temp);
    result?;
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
