//! The PKCS#11 KEK (spec §10.2): an AES-256 key generated inside a token, never exported; the
//! token runs AES-256-GCM (`CKM_AES_GCM`) itself.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, MutexGuard};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use super::{IV_LEN, KEY_LEN, Kek, Provider, TAG_LEN};
use crate::limits::MAX_PIN_LEN;

/// The GCM tag length in bits, as `CK_GCM_PARAMS.ulTagBits` wants it.
const TAG_BITS: u64 = (TAG_LEN * 8) as u64;
use crate::{Error, Result};

/// Which token holds the KEK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSelector {
    /// The token with this label (the usual choice; labels survive slot renumbering).
    Label(String),
    /// The token in this slot id.
    Slot(u64),
}

impl fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Label(label) => f.write_str(label),
            Self::Slot(id) => write!(f, "slot {id}"),
        }
    }
}

/// How to reach a PKCS#11 KEK. The PIN is a `secrecy` string: zeroized on drop and printed as
/// `[REDACTED]` by `Debug`. Read it from an environment variable or a 0600 file, never from
/// the command line (spec §10.2).
#[derive(Clone)]
pub struct Pkcs11Config {
    /// The module (`/usr/lib/softhsm/libsofthsm2.so` for Debian's SoftHSM).
    pub module: PathBuf,
    /// The token.
    pub token: TokenSelector,
    /// The user PIN.
    pub pin: AuthPin,
    /// The KEK's `CKA_LABEL`.
    pub kek_label: String,
}

impl Pkcs11Config {
    /// A configuration selecting the token by label.
    pub fn new(
        module: impl Into<PathBuf>,
        token_label: impl Into<String>,
        pin: AuthPin,
        kek_label: impl Into<String>,
    ) -> Self {
        Self {
            module: module.into(),
            token: TokenSelector::Label(token_label.into()),
            pin,
            kek_label: kek_label.into(),
        }
    }
}

impl Pkcs11Config {
    /// Reads a user PIN from the environment variable `name`.
    pub fn pin_from_env(name: &str) -> Result<AuthPin> {
        match std::env::var(name) {
            Ok(pin) if !pin.is_empty() && pin.len() <= MAX_PIN_LEN => Ok(AuthPin::from(pin)),
            Ok(pin) => {
                drop(Zeroizing::new(pin));
                Err(pin_error(format!(
                    "{name} must hold 1 to {MAX_PIN_LEN} bytes"
                )))
            }
            Err(_) => Err(pin_error(format!("{name} is not set or not UTF-8"))),
        }
    }

    /// Reads a user PIN from a file that only its owner may access (mode 0600 or stricter),
    /// at most [`MAX_PIN_LEN`] bytes; one trailing newline is removed.
    pub fn pin_from_file(path: &Path) -> Result<AuthPin> {
        use std::io::Read;
        use std::os::unix::fs::PermissionsExt;
        let shown = path.display();
        let meta =
            std::fs::symlink_metadata(path).map_err(|e| pin_error(format!("{shown}: {e}")))?;
        if !meta.file_type().is_file() {
            return Err(pin_error(format!("{shown} is not a regular file")));
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(pin_error(format!(
                "{shown} has mode {mode:04o}; run chmod 600 on it"
            )));
        }
        let file = std::fs::File::open(path).map_err(|e| pin_error(format!("{shown}: {e}")))?;
        let mut buf = Zeroizing::new(Vec::with_capacity(MAX_PIN_LEN + 2));
        file.take(MAX_PIN_LEN as u64 + 2)
            .read_to_end(&mut buf)
            .map_err(|e| pin_error(format!("{shown}: {e}")))?;
        let mut len = buf.len();
        if buf.ends_with(b"\r\n") {
            len -= 2;
        } else if buf.ends_with(b"\n") {
            len -= 1;
        }
        if len == 0 || len > MAX_PIN_LEN {
            return Err(pin_error(format!(
                "{shown} must hold 1 to {MAX_PIN_LEN} bytes"
            )));
        }
        let pin = std::str::from_utf8(&buf[..len])
            .map_err(|_| pin_error(format!("{shown} is not UTF-8")))?;
        Ok(AuthPin::from(pin))
    }
}

fn pin_error(reason: String) -> Error {
    Error::Pkcs11 {
        op: "read the user PIN",
        reason,
    }
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token", &self.token)
            .field("pin", &"[REDACTED]")
            .field("kek_label", &self.kek_label)
            .finish()
    }
}

/// The safety-relevant attributes of a token KEK, as the token reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KekAttributes {
    /// `CKA_SENSITIVE`.
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE`.
    pub extractable: bool,
    /// `CKA_NEVER_EXTRACTABLE`.
    pub never_extractable: bool,
    /// `CKA_LOCAL`: generated inside the token.
    pub local: bool,
    /// `CKA_KEY_TYPE` is AES.
    pub aes: bool,
    /// `CKA_VALUE_LEN` in bytes.
    pub value_len: u64,
    /// Whether the token returned `CKA_VALUE` when asked. Always `false` for a usable KEK.
    pub value_readable: bool,
}

impl KekAttributes {
    /// The reason the key may not be used as a KEK, if any (spec §10.2).
    fn problem(&self) -> Option<&'static str> {
        if !self.aes || self.value_len != KEY_LEN as u64 {
            Some("not a 256-bit AES key")
        } else if !self.sensitive {
            Some("CKA_SENSITIVE is false")
        } else if self.extractable {
            Some("CKA_EXTRACTABLE is true")
        } else if !self.never_extractable {
            Some("CKA_NEVER_EXTRACTABLE is false (it was extractable once)")
        } else if !self.local {
            Some("CKA_LOCAL is false (imported, not generated in the token)")
        } else if self.value_readable {
            Some("the token reveals CKA_VALUE")
        } else {
            None
        }
    }
}

/// Initialised modules, one per path: `C_Initialize` may run once per process (a second call
/// fails with `CKR_CRYPTOKI_ALREADY_INITIALIZED`), so every [`Pkcs11Kek`] of one module shares
/// one context for the life of the process.
static MODULES: LazyLock<Mutex<HashMap<PathBuf, Pkcs11>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn module(path: &Path) -> Result<Pkcs11> {
    let module_error = |reason: String| Error::Pkcs11Module {
        path: path.display().to_string(),
        reason,
    };
    let mut modules = MODULES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(ctx) = modules.get(path) {
        return Ok(ctx.clone());
    }
    if !path.is_file() {
        return Err(module_error("no such file".to_string()));
    }
    let ctx = Pkcs11::new(path).map_err(|e| module_error(e.to_string()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(module_error(format!("C_Initialize: {e}"))),
    }
    modules.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

fn ck(op: &'static str) -> impl Fn(CkError) -> Error {
    move |e| Error::Pkcs11 {
        op,
        reason: e.to_string(),
    }
}

fn rv(e: &CkError) -> Option<RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// One logged-in session and the KEK's handle in it.
struct Live {
    session: Session,
    key: ObjectHandle,
}

/// A KEK generated inside a PKCS#11 token. Seal and open run `CKM_AES_GCM` in the token.
///
/// One session per KEK, behind a mutex (PKCS#11 sessions must not be used concurrently); when
/// the token reports the session gone or logged out (a token reset), it logs in again once.
///
/// PKCS#11 login state belongs to the process and token, not the session: while one session of
/// this process is logged in to a token, another login reports `CKR_USER_ALREADY_LOGGED_IN`
/// whatever PIN it carries, and keyline accepts that (spec §10.2). The PIN therefore guards
/// the token against other processes and the first open, not against code inside this process.
pub struct Pkcs11Kek {
    ctx: Pkcs11,
    slot: Slot,
    pin: AuthPin,
    label: String,
    kek_id: String,
    live: Mutex<Live>,
}

impl fmt::Debug for Pkcs11Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Kek")
            .field("slot", &self.slot.id())
            .field("label", &self.label)
            .field("kek_id", &self.kek_id)
            .finish_non_exhaustive()
    }
}

fn find_slot(ctx: &Pkcs11, token: &TokenSelector) -> Result<Slot> {
    let slots = ctx.get_slots_with_token().map_err(ck("list slots"))?;
    for slot in slots {
        let found = match token {
            TokenSelector::Slot(id) => slot.id() == *id,
            TokenSelector::Label(label) => {
                let info = ctx.get_token_info(slot).map_err(ck("read token info"))?;
                info.label().trim_end() == label.as_str()
            }
        };
        if found {
            return Ok(slot);
        }
    }
    Err(Error::TokenNotFound {
        label: token.to_string(),
    })
}

fn login(ctx: &Pkcs11, slot: Slot, pin: &AuthPin) -> Result<Session> {
    let session = ctx.open_rw_session(slot).map_err(|e| match rv(&e) {
        Some(RvError::TokenNotPresent | RvError::SlotIdInvalid) => Error::TokenNotFound {
            label: format!("slot {}", slot.id()),
        },
        _ => ck("open session")(e),
    })?;
    match session.login(UserType::User, Some(pin)) {
        Ok(()) => Ok(session),
        Err(e) => match rv(&e) {
            Some(RvError::UserAlreadyLoggedIn) => Ok(session),
            Some(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange) => {
                Err(Error::PinIncorrect)
            }
            Some(RvError::PinLocked) => Err(Error::PinLocked),
            _ => Err(ck("login")(e)),
        },
    }
}

fn label_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

/// Finds the single KEK labelled `label`; returns its handle and `CKA_ID`.
fn find_key(session: &Session, label: &str) -> Result<Option<(ObjectHandle, Vec<u8>)>> {
    let found = session
        .find_objects(&label_template(label))
        .map_err(ck("find KEK"))?;
    match found.as_slice() {
        [] => Ok(None),
        [key] => {
            let attrs = session
                .get_attributes(*key, &[AttributeType::Id])
                .map_err(ck("read KEK id"))?;
            let id = attrs
                .into_iter()
                .find_map(|a| match a {
                    Attribute::Id(id) => Some(id),
                    _ => None,
                })
                .unwrap_or_default();
            Ok(Some((*key, id)))
        }
        _ => Err(Error::KekUnsafe {
            label: label.to_string(),
            reason: "several keys carry this label",
        }),
    }
}

fn read_attributes(session: &Session, key: ObjectHandle) -> Result<KekAttributes> {
    let attrs = session
        .get_attributes(
            key,
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::NeverExtractable,
                AttributeType::Local,
                AttributeType::KeyType,
                AttributeType::ValueLen,
                AttributeType::Value,
            ],
        )
        .map_err(ck("read KEK attributes"))?;
    let mut out = KekAttributes {
        sensitive: false,
        extractable: true,
        never_extractable: false,
        local: false,
        aes: false,
        value_len: 0,
        value_readable: false,
    };
    for attr in attrs {
        match attr {
            Attribute::Sensitive(v) => out.sensitive = v,
            Attribute::Extractable(v) => out.extractable = v,
            Attribute::NeverExtractable(v) => out.never_extractable = v,
            Attribute::Local(v) => out.local = v,
            Attribute::KeyType(t) => out.aes = t == KeyType::AES,
            Attribute::ValueLen(len) => out.value_len = *len,
            Attribute::Value(mut value) => {
                // Never kept: wipe whatever the token returned.
                zeroize::Zeroize::zeroize(&mut value);
                out.value_readable = true;
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The blob-header id of a token KEK: `p11-` and the hex of its `CKA_ID`.
fn kek_id_of(label: &str, id: &[u8]) -> Result<String> {
    if id.is_empty() || id.len() > 30 {
        return Err(Error::KekUnsafe {
            label: label.to_string(),
            reason: "CKA_ID must be 1 to 30 bytes (keyline sets 16 random bytes)",
        });
    }
    Ok(format!("p11-{}", hex::encode(id)))
}

impl Pkcs11Kek {
    /// Generates a new KEK in the token (`keyline signer hsm init`; never implicit): AES-256 by
    /// `CKM_AES_KEY_GEN` with `CKA_TOKEN`, `CKA_PRIVATE`, `CKA_SENSITIVE` true, `CKA_EXTRACTABLE`,
    /// `CKA_WRAP`, `CKA_UNWRAP` false, `CKA_ENCRYPT`/`CKA_DECRYPT` true, the configured label
    /// and a random 16-byte `CKA_ID`. Refuses if a key with the label exists
    /// ([`Error::KekExists`]); nothing is replaced.
    pub fn generate(config: &Pkcs11Config) -> Result<Self> {
        let ctx = module(&config.module)?;
        let slot = find_slot(&ctx, &config.token)?;
        let session = login(&ctx, slot, &config.pin)?;
        if find_key(&session, &config.kek_label)?.is_some() {
            return Err(Error::KekExists {
                label: config.kek_label.clone(),
            });
        }
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|_| Error::Internal {
            reason: "the operating system's random number generator failed",
        })?;
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen((KEY_LEN as u64).into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Label(config.kek_label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ];
        session
            .generate_key(&Mechanism::AesKeyGen, &template)
            .map_err(ck("generate KEK"))?;
        tracing::info!(label = %config.kek_label, "generated a KEK in the PKCS#11 token");
        drop(session);
        Self::open(config)
    }

    /// Opens the KEK labelled `config.kek_label`: loads and initialises the module, finds the
    /// token, logs in and checks the key's attributes (sensitive, never extractable, generated
    /// in the token, AES-256). Each failure has its own error: [`Error::Pkcs11Module`],
    /// [`Error::TokenNotFound`], [`Error::PinIncorrect`], [`Error::PinLocked`],
    /// [`Error::KekNotFound`], [`Error::KekUnsafe`].
    pub fn open(config: &Pkcs11Config) -> Result<Self> {
        let ctx = module(&config.module)?;
        let slot = find_slot(&ctx, &config.token)?;
        let session = login(&ctx, slot, &config.pin)?;
        let (key, id) =
            find_key(&session, &config.kek_label)?.ok_or_else(|| Error::KekNotFound {
                label: config.kek_label.clone(),
            })?;
        let attributes = read_attributes(&session, key)?;
        if let Some(reason) = attributes.problem() {
            return Err(Error::KekUnsafe {
                label: config.kek_label.clone(),
                reason,
            });
        }
        let kek_id = kek_id_of(&config.kek_label, &id)?;
        Ok(Self {
            ctx,
            slot,
            pin: config.pin.clone(),
            label: config.kek_label.clone(),
            kek_id,
            live: Mutex::new(Live { session, key }),
        })
    }

    /// Finalises the module at `path` (`C_Finalize`) and forgets it, so the next
    /// [`Pkcs11Kek::open`] loads and initialises it again (e.g. after a token was replaced).
    /// Call it only once every [`Pkcs11Kek`] of that module has been dropped: their sessions
    /// stop working. Returns whether the module was loaded.
    pub fn finalize_module(path: &Path) -> Result<bool> {
        let ctx = MODULES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(path);
        match ctx {
            None => Ok(false),
            Some(ctx) => {
                ctx.finalize().map_err(ck("finalize"))?;
                Ok(true)
            }
        }
    }

    /// The KEK's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The KEK's attributes as the token reports them now (for status output and tests).
    pub fn attributes(&self) -> Result<KekAttributes> {
        self.with_session(|live| read_attributes(&live.session, live.key).map_err(Retry::Fail))
    }

    fn lock(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the session; if the token lost the session or the login, logs in again
    /// once and retries.
    fn with_session<T>(&self, f: impl Fn(&Live) -> std::result::Result<T, Retry>) -> Result<T> {
        let mut live = self.lock();
        match f(&live) {
            Ok(v) => Ok(v),
            Err(Retry::Fail(e)) => Err(e),
            Err(Retry::Relogin(_)) => {
                tracing::warn!(label = %self.label, "PKCS#11 session lost; logging in again");
                let session = login(&self.ctx, self.slot, &self.pin)?;
                let (key, id) =
                    find_key(&session, &self.label)?.ok_or_else(|| Error::KekNotFound {
                        label: self.label.clone(),
                    })?;
                if kek_id_of(&self.label, &id)? != self.kek_id {
                    return Err(Error::KekNotFound {
                        label: self.label.clone(),
                    });
                }
                *live = Live { session, key };
                f(&live).map_err(|e| match e {
                    Retry::Fail(e) | Retry::Relogin(e) => e,
                })
            }
        }
    }
}

/// A failed token call: final, or worth one new login.
enum Retry {
    Fail(Error),
    Relogin(Error),
}

/// Sorts a failed encrypt/decrypt: a lost session or login is retried after a new login;
/// anything else is final, and for decryption it is a failed authentication.
fn classify(op: &'static str, e: CkError, decrypting: bool) -> Retry {
    match rv(&e) {
        Some(
            RvError::UserNotLoggedIn
            | RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::KeyHandleInvalid
            | RvError::ObjectHandleInvalid,
        ) => Retry::Relogin(ck(op)(e)),
        _ if decrypting => Retry::Fail(Error::SealedBlobAuth),
        _ => Retry::Fail(ck(op)(e)),
    }
}

impl Kek for Pkcs11Kek {
    fn provider(&self) -> Provider {
        Provider::Pkcs11
    }

    fn kek_id(&self) -> &str {
        &self.kek_id
    }

    fn encrypt(&self, iv: &mut [u8; IV_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let start = *iv;
        let (out, used_iv) = self.with_session(|live| {
            let mut iv_buf = start;
            let params = GcmParams::new(&mut iv_buf, aad, TAG_BITS.into())
                .map_err(|e| Retry::Fail(ck("set up AES-GCM")(e)))?;
            let out = live
                .session
                .encrypt(&Mechanism::AesGcm(params), live.key, plaintext)
                .map_err(|e| classify("encrypt", e, false))?;
            // Some tokens choose the IV themselves and write it back (spec §10.2): keep the
            // IV as it is after C_Encrypt.
            Ok((out, iv_buf))
        })?;
        *iv = used_iv;
        Ok(out)
    }

    fn decrypt(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let start = *iv;
        self.with_session(|live| {
            let mut iv_buf = start;
            let params = GcmParams::new(&mut iv_buf, aad, TAG_BITS.into())
                .map_err(|e| Retry::Fail(ck("set up AES-GCM")(e)))?;
            live.session
                .decrypt(&Mechanism::AesGcm(params), live.key, ciphertext_and_tag)
                .map(Zeroizing::new)
                // Any other decrypt failure is a failed authentication: SoftHSM reports a bad
                // tag as CKR_GENERAL_ERROR (spec §10.2).
                .map_err(|e| classify("decrypt", e, true))
        })
    }
}
