//! The built-in RPC methods of spec 10.2 and a registry of application methods, for a
//! daemon to serve on every session.
//!
//! | method | params | result |
//! |---|---|---|
//! | `$sideband/info` | none | `{daemonId, name, version, platform, arch, uptime, capabilities, implementation: "keyline"}` |
//! | `$sideband/rpc.list` | none | `{methods: [sorted names]}`, every method of the registry |
//! | `$sideband/rpc.describe` | none | `{method: {description?}}`, sparse |
//! | `$sideband/echo` | any | the params (`null` without) |
//! | `$sideband/fs.list` | `{path?}` | `{entries: [{name, type, size, modified}], hasMore}` |
//! | `$sideband/fs.read` | `{path, offset?, length?}` | `{content, encoding, mediaType, size, truncated, offset, length}` |
//!
//! The file methods exist only when a directory is exposed ([`Registry::expose_dir`]) and
//! are read-only. A `path` is relative and POSIX-normalised (backslashes become `/`);
//! absolute paths, `..` segments, dotfiles (unless [`Registry::allow_dotfiles`]) and
//! anything whose real path (symlinks resolved) leaves the exposed directory are refused
//! with error 2000 and `data: {"reason": …}`; messages never contain a filesystem path.
//! Listings hide dotfiles and symlinks that lead out. `fs.read` returns at most
//! [`crate::limits::FS_READ_MAX`] bytes to a peer with `keyline.chunk/1` (the adapter
//! chunks the result) and [`crate::limits::FS_READ_UNCHUNKED`] to any other peer (spec 11:
//! `truncated: true`, `offset`/`length` to page; without them a truncated binary has
//! `content: ""` and truncated text its first part). Text (by file name) is returned as
//! UTF-8, everything else as base64.
//!
//! File work runs on tokio's blocking pool under [`crate::limits::FS_CALL_TIMEOUT`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use keyline_sbrp::tokio::builtins::Registry;
//! use keyline_sbrp::tokio::{Daemon, DaemonConfig};
//! # async fn run(mut daemon: Daemon) -> keyline_sbrp::Result<()> {
//! let mut registry = Registry::new("d_example").expose_dir("/srv/share")?;
//! registry.register("app/hello", Some("says hello"), |_params| Ok("hello".into()))?;
//! let registry = Arc::new(registry);
//! while let Some(session) = daemon.accept().await {
//!     tokio::spawn(registry.clone().serve(session));
//! }
//! # Ok(()) }
//! ```
//!
//! Non-features: `$sideband/stats*` (not advertised), writes of any kind.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::{DaemonSession, Incoming, RpcError};
use crate::error::{Error, Result};
use crate::limits::{
    FS_CALL_TIMEOUT, FS_LIST_MAX, FS_LIST_SCAN_MAX, FS_MAX_PATH_LEN, FS_READ_MAX,
    FS_READ_UNCHUNKED, MAX_PLAINTEXT,
};
use crate::proto::control::ControlCode;

/// `$sideband/info`.
pub const INFO: &str = "$sideband/info";
/// `$sideband/rpc.list`.
pub const RPC_LIST: &str = "$sideband/rpc.list";
/// `$sideband/rpc.describe`.
pub const RPC_DESCRIBE: &str = "$sideband/rpc.describe";
/// `$sideband/echo`.
pub const ECHO: &str = "$sideband/echo";
/// `$sideband/fs.list`.
pub const FS_LIST: &str = "$sideband/fs.list";
/// `$sideband/fs.read`.
pub const FS_READ: &str = "$sideband/fs.read";
/// The prefix reserved for built-in methods.
pub const RESERVED_PREFIX: &str = "$sideband/";

/// Room left for the RPC envelope and SBP header around a result (`{"t":"R","cid":…}`).
const ENVELOPE_ROOM: usize = 128;

/// An application method: params in, result or error out. It runs on the session's task, so
/// it should not block for long.
pub type Handler = Arc<dyn Fn(Option<Value>) -> std::result::Result<Value, RpcError> + Send + Sync>;

struct Method {
    handler: Handler,
    description: Option<String>,
}

struct ExposedDir {
    root: PathBuf,
    name: String,
}

/// The built-in methods plus application methods; share it as `Arc<Registry>` across
/// sessions ([`Registry::serve`]).
pub struct Registry {
    daemon_id: String,
    name: String,
    version: String,
    started: Instant,
    fs: Option<ExposedDir>,
    allow_dotfiles: bool,
    fs_read_max: usize,
    methods: BTreeMap<String, Method>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("daemon_id", &self.daemon_id)
            .field("fs", &self.fs.as_ref().map(|d| &d.name))
            .field("methods", &self.methods.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

type RpcResult = std::result::Result<Value, RpcError>;

fn refused(reason: &'static str, message: &str) -> RpcError {
    RpcError::application(message).with_data(json!({ "reason": reason }))
}

fn bad_params(message: &str) -> RpcError {
    refused("invalid_params", message)
}

impl Registry {
    /// The built-ins for `daemon_id`, no directory exposed; `name` defaults to the daemon id
    /// and `version` to this crate's.
    pub fn new(daemon_id: impl Into<String>) -> Self {
        let daemon_id = daemon_id.into();
        Registry {
            name: daemon_id.clone(),
            daemon_id,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started: Instant::now(),
            fs: None,
            allow_dotfiles: false,
            fs_read_max: FS_READ_MAX,
            methods: BTreeMap::new(),
        }
    }

    /// The `name` in `$sideband/info`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The `version` in `$sideband/info`.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Exposes `dir` read-only through `$sideband/fs.list` and `$sideband/fs.read`. The
    /// directory is resolved (symlinks followed) now; it must exist.
    pub fn expose_dir(mut self, dir: impl AsRef<Path>) -> Result<Self> {
        let root = fs::canonicalize(dir.as_ref())
            .map_err(|e| Error::param("exposed directory", e.to_string()))?;
        if !root.is_dir() {
            return Err(Error::param("exposed directory", "not a directory"));
        }
        let name = root
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("/")
            .to_owned();
        self.fs = Some(ExposedDir { root, name });
        Ok(self)
    }

    /// Shows and serves dotfiles (default: hidden and refused).
    pub fn allow_dotfiles(mut self, allow: bool) -> Self {
        self.allow_dotfiles = allow;
        self
    }

    /// Largest `fs.read` result for `keyline.chunk/1` peers (default
    /// [`crate::limits::FS_READ_MAX`]); at least the unchunked cap.
    pub fn with_fs_read_max(mut self, max: usize) -> Self {
        self.fs_read_max = max.max(FS_READ_UNCHUNKED);
        self
    }

    /// Adds an application method. Names starting with `$sideband/` are reserved; a name
    /// is 1–256 bytes.
    pub fn register<F>(&mut self, name: &str, description: Option<&str>, handler: F) -> Result<()>
    where
        F: Fn(Option<Value>) -> RpcResult + Send + Sync + 'static,
    {
        if name.is_empty() || name.len() > 256 || name.starts_with(RESERVED_PREFIX) {
            return Err(Error::param(
                "method name",
                "1–256 bytes, not starting with `$sideband/`",
            ));
        }
        self.methods.insert(
            name.to_owned(),
            Method {
                handler: Arc::new(handler),
                description: description.map(str::to_owned),
            },
        );
        Ok(())
    }

    /// Every method name, sorted (built-ins included).
    pub fn method_names(&self) -> Vec<String> {
        let mut names: Vec<String> = [INFO, RPC_LIST, RPC_DESCRIBE, ECHO]
            .into_iter()
            .map(str::to_owned)
            .collect();
        if self.fs.is_some() {
            names.push(FS_LIST.to_owned());
            names.push(FS_READ.to_owned());
        }
        names.extend(self.methods.keys().cloned());
        names.sort();
        names
    }

    /// Answers one request. `chunking` is whether the peer negotiated `keyline.chunk/1`
    /// ([`DaemonSession::chunking`]); it sets the `fs.read` cap. File methods do blocking
    /// file I/O here; [`Registry::serve`] runs them on the blocking pool.
    pub fn call(&self, method: &str, params: Option<Value>, chunking: bool) -> RpcResult {
        match method {
            INFO => Ok(self.info()),
            RPC_LIST => Ok(json!({ "methods": self.method_names() })),
            RPC_DESCRIBE => Ok(self.describe()),
            ECHO => Ok(params.unwrap_or(Value::Null)),
            FS_LIST | FS_READ => {
                let Some(dir) = &self.fs else {
                    return Err(RpcError::unsupported_method(method));
                };
                if method == FS_LIST {
                    self.fs_list(dir, params.as_ref())
                } else {
                    self.fs_read(dir, params.as_ref(), chunking)
                }
            }
            other => match self.methods.get(other) {
                Some(m) => (m.handler)(params),
                None => Err(RpcError::unsupported_method(other)),
            },
        }
    }

    /// A handler for [`DaemonSession::serve`] (file methods then run on the session task).
    pub fn handler(
        self: Arc<Self>,
        chunking: bool,
    ) -> impl FnMut(&str, Option<Value>) -> RpcResult + Send {
        move |method, params| self.call(method, params, chunking)
    }

    /// Serves `session` until it ends: each request in turn, file methods on the blocking
    /// pool under [`crate::limits::FS_CALL_TIMEOUT`]. `Ok` when the client left.
    pub async fn serve(self: Arc<Self>, mut session: DaemonSession) -> Result<()> {
        let chunking = session.chunking();
        let outcome = loop {
            match session.recv().await {
                Ok(Incoming::Request(req)) => {
                    let result = self
                        .clone()
                        .dispatch(req.method, req.params, chunking)
                        .await;
                    if let Err(e) = session.respond(req.cid, result).await {
                        break e;
                    }
                }
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        match outcome {
            Error::SessionClosed
            | Error::Relay {
                code: ControlCode::SessionEnded,
                ..
            } => Ok(()),
            e => Err(e),
        }
    }

    async fn dispatch(
        self: Arc<Self>,
        method: String,
        params: Option<Value>,
        chunking: bool,
    ) -> RpcResult {
        if !(method == FS_LIST || method == FS_READ) || self.fs.is_none() {
            return self.call(&method, params, chunking);
        }
        let me = self.clone();
        let task = tokio::task::spawn_blocking(move || me.call(&method, params, chunking));
        match tokio::time::timeout(FS_CALL_TIMEOUT, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(refused("internal", "the file operation failed")),
            Err(_) => Err(refused("timeout", "the file operation timed out")),
        }
    }

    fn info(&self) -> Value {
        let mut capabilities = Map::new();
        if let Some(dir) = &self.fs {
            capabilities.insert("fs".into(), json!({"name": dir.name, "write": false}));
        }
        json!({
            "daemonId": self.daemon_id,
            "name": self.name,
            "version": self.version,
            "platform": platform(),
            "arch": arch(),
            "uptime": self.started.elapsed().as_secs(),
            "capabilities": capabilities,
            "implementation": "keyline",
        })
    }

    fn describe(&self) -> Value {
        let mut out = Map::new();
        let mut put = |name: &str, text: &str| {
            let entry = if text.is_empty() {
                json!({})
            } else {
                json!({ "description": text })
            };
            out.insert(name.to_owned(), entry);
        };
        put(INFO, "daemon id, name, version, platform and capabilities");
        put(RPC_LIST, "the names of every method");
        put(RPC_DESCRIBE, "descriptions of the methods that have one");
        put(ECHO, "returns its params");
        if self.fs.is_some() {
            put(
                FS_LIST,
                "lists a directory of the exposed folder (read-only)",
            );
            put(FS_READ, "reads a file of the exposed folder (read-only)");
        }
        for (name, m) in &self.methods {
            match &m.description {
                Some(d) => put(name, d),
                None => put(name, ""),
            }
        }
        Value::Object(out)
    }

    /// Resolves a relative `path` inside `dir`: returns the real path. Refusals never carry
    /// a filesystem path.
    fn resolve(&self, dir: &ExposedDir, path: &str) -> std::result::Result<PathBuf, RpcError> {
        if path.len() > FS_MAX_PATH_LEN {
            return Err(refused("invalid_path", "the path is too long"));
        }
        if path.contains('\0') {
            return Err(refused("invalid_path", "the path contains NUL"));
        }
        let path = path.replace('\\', "/");
        if path.starts_with('/') || has_drive_prefix(&path) {
            return Err(refused("absolute_path", "absolute paths are not allowed"));
        }
        let mut joined = dir.root.clone();
        for segment in path.split('/') {
            match segment {
                "" | "." => {}
                ".." => {
                    return Err(refused("parent_segment", "`..` is not allowed in paths"));
                }
                s if s.starts_with('.') && !self.allow_dotfiles => {
                    return Err(refused("dotfile", "dotfiles are not served"));
                }
                s => joined.push(s),
            }
        }
        let real = fs::canonicalize(&joined).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => refused("not_found", "no such file or directory"),
            std::io::ErrorKind::PermissionDenied => {
                refused("permission_denied", "permission denied")
            }
            _ => refused("io_error", "the path cannot be resolved"),
        })?;
        self.check_inside(dir, &real)?;
        Ok(real)
    }

    /// Refuses a real path outside the root, or one through a dot-named component.
    fn check_inside(&self, dir: &ExposedDir, real: &Path) -> std::result::Result<(), RpcError> {
        let Ok(relative) = real.strip_prefix(&dir.root) else {
            return Err(refused(
                "outside_root",
                "the path leads outside the exposed directory",
            ));
        };
        if !self.allow_dotfiles
            && relative.components().any(|c| match c {
                Component::Normal(n) => n.to_str().is_none_or(|n| n.starts_with('.')),
                _ => true,
            })
        {
            return Err(refused("dotfile", "dotfiles are not served"));
        }
        Ok(())
    }

    fn fs_list(&self, dir: &ExposedDir, params: Option<&Value>) -> RpcResult {
        let path = match params.and_then(|p| p.get("path")) {
            None | Some(Value::Null) => ".",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(bad_params("`path` must be a string")),
        };
        let real = self.resolve(dir, path)?;
        let reader = fs::read_dir(&real).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotADirectory => refused("not_a_directory", "not a directory"),
            std::io::ErrorKind::PermissionDenied => {
                refused("permission_denied", "permission denied")
            }
            _ => refused("io_error", "the directory cannot be read"),
        })?;
        let mut has_more = false;
        let mut entries: Vec<(bool, String, Value)> = Vec::new();
        for (i, entry) in reader.enumerate() {
            if i >= FS_LIST_SCAN_MAX {
                has_more = true;
                break;
            }
            let Ok(entry) = entry else { continue };
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') && !self.allow_dotfiles {
                continue;
            }
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            let meta = if file_type.is_symlink() {
                // Shown only when it resolves inside the root (and not to a dotfile).
                let Ok(target) = fs::canonicalize(entry.path()) else {
                    continue;
                };
                if self.check_inside(dir, &target).is_err() {
                    continue;
                }
                fs::metadata(&target)
            } else {
                entry.metadata()
            };
            let Ok(meta) = meta else { continue };
            let is_dir = meta.is_dir();
            if !is_dir && !meta.is_file() {
                continue;
            }
            let modified = meta.modified().map(iso8601).ok();
            let value = json!({
                "name": name,
                "type": if is_dir { "directory" } else { "file" },
                "size": if is_dir { Value::Null } else { json!(meta.len()) },
                "modified": modified,
            });
            entries.push((is_dir, name, value));
        }
        entries.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| a.1.to_lowercase().cmp(&b.1.to_lowercase()))
                .then_with(|| a.1.cmp(&b.1))
        });
        if entries.len() > FS_LIST_MAX {
            entries.truncate(FS_LIST_MAX);
            has_more = true;
        }
        let entries: Vec<Value> = entries.into_iter().map(|(_, _, v)| v).collect();
        Ok(json!({ "entries": entries, "hasMore": has_more }))
    }

    fn fs_read(&self, dir: &ExposedDir, params: Option<&Value>, chunking: bool) -> RpcResult {
        let params = params.ok_or_else(|| bad_params("`path` is required"))?;
        let path = params
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_params("`path` must be a string"))?;
        let number = |name: &str| -> std::result::Result<Option<u64>, RpcError> {
            match params.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                    bad_params("`offset` and `length` must be non-negative integers")
                }),
            }
        };
        let offset = number("offset")?;
        let length = number("length")?;
        let explicit = offset.is_some() || length.is_some();
        let real = self.resolve(dir, path)?;
        let meta =
            fs::metadata(&real).map_err(|_| refused("io_error", "the file cannot be read"))?;
        if !meta.is_file() {
            return Err(refused("not_a_file", "not a regular file"));
        }
        let size = meta.len();
        let cap = if chunking {
            self.fs_read_max
        } else {
            FS_READ_UNCHUNKED
        } as u64;
        let file_name = real
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let (media_type, text) = media_type(file_name);
        let start = offset.unwrap_or(0).min(size);
        let want = length.unwrap_or(cap).min(cap).min(size - start);
        // Upstream's "too large to preview": a truncated binary without paging is empty.
        let want = if !explicit && !text && size > cap {
            0
        } else {
            want
        };
        let mut bytes = read_range(&real, start, want)?;
        let mut truncated = start + (bytes.len() as u64) < size;

        let mut encoding = "base64";
        if text {
            match std::str::from_utf8(&bytes) {
                Ok(_) => encoding = "utf8",
                // An incomplete character at the cut: trim to the boundary.
                Err(e) if e.error_len().is_none() => {
                    bytes.truncate(e.valid_up_to());
                    truncated = true;
                    encoding = "utf8";
                }
                Err(_) => {}
            }
        }
        let (content, returned) = if encoding == "utf8" {
            let mut text = String::from_utf8(bytes).unwrap_or_default();
            if !chunking {
                // Trim until the encoded response fits one frame (escapes can grow text).
                while json_len(&Value::String(text.clone())) + ENVELOPE_ROOM + 256 > MAX_PLAINTEXT {
                    let mut cut = text.len() * 3 / 4;
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    text.truncate(cut);
                    truncated = true;
                }
            }
            let len = text.len();
            (Value::String(text), len)
        } else {
            let len = bytes.len();
            (Value::String(STANDARD.encode(&bytes)), len)
        };
        Ok(json!({
            "content": content,
            "encoding": encoding,
            "mediaType": media_type,
            "size": size,
            "truncated": truncated,
            "offset": start,
            "length": returned,
        }))
    }
}

fn json_len(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |v| v.len())
}

fn has_drive_prefix(path: &str) -> bool {
    let b = path.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

fn read_range(path: &Path, start: u64, len: u64) -> std::result::Result<Vec<u8>, RpcError> {
    let io = |_| refused("io_error", "the file cannot be read");
    let mut file = fs::File::open(path).map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(refused("not_a_file", "not a regular file"));
    }
    file.seek(SeekFrom::Start(start)).map_err(io)?;
    let cap = usize::try_from(len).unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(cap);
    file.take(len).read_to_end(&mut out).map_err(io)?;
    Ok(out)
}

/// The media type by file name and whether it is returned as text.
fn media_type(name: &str) -> (&'static str, bool) {
    let ext = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => return ("text/plain", true),
    };
    match ext.as_str() {
        "txt" | "log" | "text" => ("text/plain", true),
        "md" | "markdown" => ("text/markdown", true),
        "json" => ("application/json", true),
        "html" | "htm" => ("text/html", true),
        "css" => ("text/css", true),
        "js" | "mjs" | "cjs" | "jsx" => ("text/javascript", true),
        "csv" => ("text/csv", true),
        "xml" => ("application/xml", true),
        "yaml" | "yml" => ("application/yaml", true),
        "toml" => ("application/toml", true),
        "ts" | "tsx" | "rs" | "py" | "go" | "c" | "h" | "cpp" | "hpp" | "java" | "sh" | "ini"
        | "cfg" | "conf" | "sql" | "lock" | "rb" | "kt" | "swift" => ("text/plain", true),
        "png" => ("image/png", false),
        "jpg" | "jpeg" => ("image/jpeg", false),
        "gif" => ("image/gif", false),
        "webp" => ("image/webp", false),
        "svg" => ("image/svg+xml", false),
        "ico" => ("image/x-icon", false),
        "pdf" => ("application/pdf", false),
        "zip" => ("application/zip", false),
        "gz" => ("application/gzip", false),
        "wasm" => ("application/wasm", false),
        _ => ("application/octet-stream", false),
    }
}

/// `process.platform` names.
fn platform() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        other => other,
    }
}

/// `process.arch` names.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        "x86" => "ia32",
        other => other,
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (JavaScript's `toISOString`).
fn iso8601(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_123);
        assert_eq!(iso8601(t), "2024-02-29T23:59:59.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(iso8601(t), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn media_types() {
        assert_eq!(media_type("a.PNG"), ("image/png", false));
        assert_eq!(media_type("notes.md"), ("text/markdown", true));
        assert_eq!(media_type("README"), ("text/plain", true));
        assert_eq!(media_type("x.bin"), ("application/octet-stream", false));
    }
}
