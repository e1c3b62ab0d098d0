//! Share envelopes: AES-256-GCM under a key-encryption key (spec §10).
//!
//! No HSM computes BIP340 or FROST, so shares cannot live inside a token. Instead every share
//! (and the bunker's transport key) is **sealed** with AES-256-GCM under a key-encryption key
//! (KEK) before it touches a disk. Two [`Kek`] providers exist:
//!
//! | provider | where the KEK lives | who runs AES-GCM | for |
//! |---|---|---|---|
//! | [`Pkcs11Kek`] | generated inside a PKCS#11 token (`CKA_SENSITIVE`, not extractable, `CKA_LOCAL`) | the token (`CKM_AES_GCM`) | production |
//! | [`FileKek`] | 32 random bytes in a 0600 file | this process (RustCrypto `aes-gcm`) | development; warns on every open |
//!
//! The token performs the encryption itself: there is no data key, nothing to unwrap, and the
//! KEK never exists outside the token.
//!
//! # Sealed blob, version 1 (spec §10.1)
//!
//! | field | bytes | value |
//! |---|---|---|
//! | magic | 4 | `"KLS1"` |
//! | version | 1 | `1` |
//! | provider | 1 | `1` = PKCS#11, `2` = file ([`Provider`]) |
//! | kek_id_len | 1 | 1 ..= [`MAX_KEK_ID_LEN`] |
//! | kek_id | kek_id_len | ASCII id of the KEK ([`Kek::kek_id`]) |
//! | iv | 12 | random per seal (as returned by the token, which may choose it) |
//! | ciphertext | plaintext length | AES-256-GCM |
//! | tag | 16 | 128-bit GCM tag |
//!
//! The header is everything from the magic to the kek_id. The additional authenticated data
//! binds the blob to what it holds:
//!
//! ```text
//! AAD = "keyline/signer/sealed/v1" ‖ header ‖ object type (u8) ‖ key_id_len (u8) ‖ key_id
//!       ‖ identifier (u16) ‖ share_version (u32)          (integers big-endian)
//! ```
//!
//! with the object types of [`ObjectType`] (1 key package, 2 transport secret key, 3 pending
//! ceremony share). A blob copied to another key, identifier, share version or object type,
//! or sealed under another KEK, fails authentication ([`Error::SealedBlobAuth`]); a blob whose
//! header names another KEK is refused before decryption ([`Error::WrongKek`]). Any decryption
//! failure — SoftHSM reports a bad tag as `CKR_GENERAL_ERROR` — is reported as
//! [`Error::SealedBlobAuth`], and nothing is returned.
//!
//! # Threat model
//!
//! The KEK protects shares **at rest**: a copy of the database, a backup, a stolen disk or a
//! leaked file yields only sealed blobs. With [`Pkcs11Kek`] the attacker additionally needs the
//! token and its user PIN (or code running on the node while it is logged in); the KEK cannot
//! be exported, so access ends when the token is taken away. The AAD stops an attacker with
//! write access to the database from moving a sealed share to another key, identifier,
//! version or object type (for example promoting a retired share or a pending one).
//!
//! It does **not** protect against:
//!
//! * code running as the node's user while the node is up: it can ask the token to decrypt
//!   (PKCS#11 has no per-caller policy) or read the share from the node's memory while it signs;
//! * with [`FileKek`], anyone who can read the key file — normally anyone who can read the
//!   database next to it. The file KEK only keeps shares out of database copies and backups
//!   that do not include the key file;
//! * rollback: an attacker with database write access can put back an **older blob of the same
//!   key, identifier, version and type** (the store's transactions, not the envelope, retire
//!   old versions), or delete blobs (denial of service);
//! * the unsealed public key package next to the blob: it is public, and
//!   [`crate::store::ShareVault`] checks the opened share against it (group key, threshold,
//!   verifying share), so a swapped package cannot make a node use a wrong share;
//! * side channels of the token or of the software AES (RustCrypto `aes` uses constant-time
//!   bitsliced code or AES-NI).
//!
//! Secrets: opened plaintexts are returned in [`Zeroizing`] buffers; the file KEK's key and
//! AES key schedule are wiped on drop; PINs are `secrecy` strings, never printed by `Debug`,
//! never logged.

mod file;
mod pkcs11;

use zeroize::Zeroizing;

pub use self::file::FileKek;
pub use self::pkcs11::{KekAttributes, Pkcs11Config, Pkcs11Kek, TokenSelector};
use crate::limits::{MAX_KEK_ID_LEN, MAX_SEALED_BLOB, MAX_SEALED_KEY_ID_LEN, MAX_SEALED_PLAINTEXT};
use crate::{Error, Result};
/// The PKCS#11 user PIN type (`cryptoki`), zeroized on drop.
pub use cryptoki::types::AuthPin;

/// The blob magic: `"KLS1"`.
pub const MAGIC: &[u8; 4] = b"KLS1";
/// The blob format version: 1.
pub const VERSION: u8 = 1;
/// The AES-GCM IV length: 12 bytes.
pub const IV_LEN: usize = 12;
/// The AES-GCM tag length: 16 bytes.
pub const TAG_LEN: usize = 16;
/// The AES key length of every KEK: 32 bytes (AES-256).
pub const KEY_LEN: usize = 32;
/// The domain separator at the start of the AAD.
pub const AAD_DOMAIN: &[u8] = b"keyline/signer/sealed/v1";

const WHAT: &str = "sealed blob";

/// Who holds the KEK of a blob (header byte 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    /// A PKCS#11 token ([`Pkcs11Kek`]).
    Pkcs11,
    /// A key file ([`FileKek`]).
    File,
}

impl Provider {
    /// The header byte: 1 = PKCS#11, 2 = file.
    pub fn code(self) -> u8 {
        match self {
            Self::Pkcs11 => 1,
            Self::File => 2,
        }
    }

    /// The provider of header byte `code`.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Pkcs11),
            2 => Some(Self::File),
            _ => None,
        }
    }

    /// `pkcs11` or `file`, as stored in the `keks` table.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pkcs11 => "pkcs11",
            Self::File => "file",
        }
    }
}

/// What a sealed blob holds (bound into the AAD).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectType {
    /// An active (or retired) share: the FROST `KeyPackage` serialization.
    KeyPackage,
    /// The bunker's 32-byte transport secret key.
    TransportSecret,
    /// A share of a ceremony that has not committed yet.
    PendingShare,
}

impl ObjectType {
    /// The AAD byte: 1, 2 or 3.
    pub fn code(self) -> u8 {
        match self {
            Self::KeyPackage => 1,
            Self::TransportSecret => 2,
            Self::PendingShare => 3,
        }
    }
}

/// Where a sealed blob belongs; every field is bound into the AAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealContext<'a> {
    /// What the blob holds.
    pub object: ObjectType,
    /// The key id (16 bytes for user keys; the transport key's id for transport secrets), at
    /// most [`MAX_SEALED_KEY_ID_LEN`] bytes.
    pub key_id: &'a [u8],
    /// The FROST identifier of the share (0 for a transport secret).
    pub identifier: u16,
    /// The share version (0 for a transport secret).
    pub share_version: u32,
}

/// A key-encryption key: AES-256-GCM under a key the caller never sees.
///
/// Implementations must run AES-256-GCM with a 12-byte IV and a 128-bit tag, so that every
/// provider reads the same [blob format](self). Calls are blocking (a PKCS#11 call or
/// in-process AES, microseconds on SoftHSM); callers on an async runtime with a slow network
/// HSM may wrap them in `spawn_blocking`.
pub trait Kek: Send + Sync {
    /// Which provider this is (header byte).
    fn provider(&self) -> Provider;

    /// The KEK's id as written into each blob header: printable ASCII, 1 ..=
    /// [`MAX_KEK_ID_LEN`] bytes.
    fn kek_id(&self) -> &str;

    /// Encrypts `plaintext` with `aad` under IV `iv` and returns `ciphertext ‖ tag`. A token
    /// that generates IVs itself writes the IV it used back into `iv`.
    fn encrypt(&self, iv: &mut [u8; IV_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>>;

    /// Decrypts `ciphertext ‖ tag`. Any failure that could be a wrong tag is
    /// [`Error::SealedBlobAuth`].
    fn decrypt(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>>;
}

/// The public header of a sealed blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobHeader {
    /// Who holds the KEK.
    pub provider: Provider,
    /// The KEK's id.
    pub kek_id: String,
}

fn check_kek_id(kek_id: &str) -> Result<()> {
    if kek_id.is_empty()
        || kek_id.len() > MAX_KEK_ID_LEN
        || !kek_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::Internal {
            reason: "a KEK id must be 1..=64 printable ASCII bytes",
        });
    }
    Ok(())
}

fn encode_header(provider: Provider, kek_id: &str) -> Result<Vec<u8>> {
    check_kek_id(kek_id)?;
    let mut out = Vec::with_capacity(7 + kek_id.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(provider.code());
    out.push(kek_id.len() as u8);
    out.extend_from_slice(kek_id.as_bytes());
    Ok(out)
}

/// A blob split into its parts.
struct Parsed<'a> {
    header_bytes: &'a [u8],
    header: BlobHeader,
    iv: [u8; IV_LEN],
    sealed: &'a [u8],
}

/// Splits a blob into header bytes, parsed header, IV and `ciphertext ‖ tag`.
fn parse(blob: &[u8]) -> Result<Parsed<'_>> {
    if blob.len() > MAX_SEALED_BLOB {
        return Err(Error::TooLarge {
            what: WHAT,
            len: blob.len(),
            max: MAX_SEALED_BLOB,
        });
    }
    let malformed = Error::Malformed { what: WHAT };
    if blob.len() < 7 || &blob[..4] != MAGIC {
        return Err(malformed);
    }
    if blob[4] != VERSION {
        return Err(Error::UnsupportedVersion { version: blob[4] });
    }
    let provider = Provider::from_code(blob[5]).ok_or(malformed.clone())?;
    let id_len = usize::from(blob[6]);
    if id_len == 0 || id_len > MAX_KEK_ID_LEN || blob.len() < 7 + id_len + IV_LEN + TAG_LEN {
        return Err(malformed);
    }
    let kek_id = std::str::from_utf8(&blob[7..7 + id_len]).map_err(|_| malformed.clone())?;
    if !kek_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(malformed);
    }
    let header_len = 7 + id_len;
    let mut iv = [0u8; IV_LEN];
    iv.copy_from_slice(&blob[header_len..header_len + IV_LEN]);
    Ok(Parsed {
        header_bytes: &blob[..header_len],
        header: BlobHeader {
            provider,
            kek_id: kek_id.to_string(),
        },
        iv,
        sealed: &blob[header_len + IV_LEN..],
    })
}

/// The AAD of spec §10.1 for `header` and `ctx`.
fn aad(header: &[u8], ctx: &SealContext<'_>) -> Result<Vec<u8>> {
    if ctx.key_id.len() > MAX_SEALED_KEY_ID_LEN {
        return Err(Error::TooLarge {
            what: "sealed blob key id",
            len: ctx.key_id.len(),
            max: MAX_SEALED_KEY_ID_LEN,
        });
    }
    let mut out = Vec::with_capacity(AAD_DOMAIN.len() + header.len() + 8 + ctx.key_id.len());
    out.extend_from_slice(AAD_DOMAIN);
    out.extend_from_slice(header);
    out.push(ctx.object.code());
    out.push(ctx.key_id.len() as u8);
    out.extend_from_slice(ctx.key_id);
    out.extend_from_slice(&ctx.identifier.to_be_bytes());
    out.extend_from_slice(&ctx.share_version.to_be_bytes());
    Ok(out)
}

/// Reads the public header of a blob without decrypting it (to find its KEK, e.g. during
/// rotation).
pub fn header(blob: &[u8]) -> Result<BlobHeader> {
    parse(blob).map(|p| p.header)
}

/// Seals `plaintext` for `ctx` under `kek` with a fresh random IV.
pub fn seal(kek: &dyn Kek, ctx: &SealContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
    if plaintext.len() > MAX_SEALED_PLAINTEXT {
        return Err(Error::TooLarge {
            what: "sealed plaintext",
            len: plaintext.len(),
            max: MAX_SEALED_PLAINTEXT,
        });
    }
    let header = encode_header(kek.provider(), kek.kek_id())?;
    let aad = aad(&header, ctx)?;
    let mut iv = [0u8; IV_LEN];
    getrandom::fill(&mut iv).map_err(|_| Error::Internal {
        reason: "the operating system's random number generator failed",
    })?;
    let sealed = kek.encrypt(&mut iv, &aad, plaintext)?;
    if sealed.len() != plaintext.len() + TAG_LEN {
        return Err(Error::Internal {
            reason: "AES-GCM output is not plaintext length plus a 16-byte tag",
        });
    }
    let mut out = Vec::with_capacity(header.len() + IV_LEN + sealed.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&iv);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens a blob sealed for `ctx`. Fails with [`Error::WrongKek`] when the header names another
/// KEK and with [`Error::SealedBlobAuth`] when authentication fails; returns nothing then.
pub fn open(kek: &dyn Kek, ctx: &SealContext<'_>, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let Parsed {
        header_bytes,
        header,
        iv,
        sealed,
    } = parse(blob)?;
    if header.provider != kek.provider() || header.kek_id != kek.kek_id() {
        return Err(Error::WrongKek {
            blob: header.kek_id,
            blob_provider: header.provider.name(),
            configured: kek.kek_id().to_string(),
        });
    }
    let aad = aad(header_bytes, ctx)?;
    let plaintext = kek.decrypt(&iv, &aad, sealed)?;
    if plaintext.len() + TAG_LEN != sealed.len() {
        return Err(Error::SealedBlobAuth);
    }
    Ok(plaintext)
}
