//! The SQLite-backed pin store.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};
use sqlx::{Row, Sqlite, Transaction};
use subtle::ConstantTimeEq as _;

use super::{Pin, validate_key, validate_note, validate_peer, validate_protocol};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::fsutil::{PRIVATE_FILE_MODE, is_shared_mode};
use crate::limits::{
    MAX_PINS_PER_PROTOCOL, PIN_DB_ACQUIRE_TIMEOUT, PIN_DB_BUSY_TIMEOUT, PIN_DB_MAX_CONNECTIONS,
};

/// Schema version stored in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "\
    CREATE TABLE IF NOT EXISTS pins (
        protocol   TEXT    NOT NULL,
        peer       TEXT    NOT NULL,
        key        BLOB    NOT NULL,
        first_seen INTEGER NOT NULL,
        note       TEXT,
        PRIMARY KEY (protocol, peer)
    );
    CREATE INDEX IF NOT EXISTS pins_by_key ON pins (protocol, key);";

/// `SELECT` of every pin column, followed by the given clauses (a literal).
macro_rules! select_pin {
    ($rest:literal) => {
        concat!(
            "SELECT protocol, peer, key, first_seen, note FROM pins ",
            $rest
        )
    };
}

/// Sets `user_version` to [`SCHEMA_VERSION`] (checked by a test).
const SET_SCHEMA_VERSION: &str = "PRAGMA user_version = 1";

/// Tunables of a [`PinStore`]; [`Default`] takes every value from [`crate::limits`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PinStoreConfig {
    /// How long to wait for another process's database lock ([`PIN_DB_BUSY_TIMEOUT`]).
    pub busy_timeout: Duration,
    /// How long to wait for a pooled connection ([`PIN_DB_ACQUIRE_TIMEOUT`]).
    pub acquire_timeout: Duration,
    /// Connections kept to the database ([`PIN_DB_MAX_CONNECTIONS`]).
    pub max_connections: u32,
    /// Most pins per protocol ([`MAX_PINS_PER_PROTOCOL`]).
    pub max_pins_per_protocol: u64,
}

impl Default for PinStoreConfig {
    fn default() -> Self {
        Self {
            busy_timeout: PIN_DB_BUSY_TIMEOUT,
            acquire_timeout: PIN_DB_ACQUIRE_TIMEOUT,
            max_connections: PIN_DB_MAX_CONNECTIONS,
            max_pins_per_protocol: MAX_PINS_PER_PROTOCOL,
        }
    }
}

/// Known peers and their pinned keys, in SQLite. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct PinStore {
    pool: SqlitePool,
    path: PathBuf,
    config: PinStoreConfig,
}

/// What an insert-if-absent found.
pub(super) enum Inserted {
    /// The pin was created.
    New,
    /// A pin already existed; here it is.
    Existing(Pin),
}

impl PinStore {
    /// Opens (creating if needed, with mode 0600) the pin store at `path` with default limits.
    /// The directory must exist.
    pub async fn open(path: &Path) -> Result<PinStore> {
        Self::open_with(path, PinStoreConfig::default()).await
    }

    /// [`open`](Self::open) with explicit tunables.
    pub async fn open_with(path: &Path, config: PinStoreConfig) -> Result<PinStore> {
        if config.max_connections == 0 {
            return Err(Error::param(
                "pin store max_connections",
                "must be at least 1",
            ));
        }
        create_private_file(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(config.busy_timeout);
        let pool_options = SqlitePoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout);

        // Switching a new database to WAL takes an exclusive lock that SQLite does not wait
        // for, so two processes creating the store at once may see "busy": retry until the
        // busy timeout.
        let deadline = Instant::now() + config.busy_timeout;
        let pool = loop {
            match pool_options.clone().connect_with(options.clone()).await {
                Ok(pool) => break pool,
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(source) => {
                    return Err(Error::Storage {
                        op: "open",
                        path: path.into(),
                        source,
                    });
                }
            }
        };
        let store = PinStore {
            pool,
            path: path.into(),
            config,
        };
        store.init_schema().await?;
        Ok(store)
    }

    /// A private, empty store in memory, for tests.
    pub async fn open_in_memory() -> Result<PinStore> {
        let path = PathBuf::from(":memory:");
        let storage = |source| Error::Storage {
            op: "open",
            path: path.clone(),
            source,
        };
        let options = SqliteConnectOptions::from_str("sqlite::memory:").map_err(storage)?;
        let config = PinStoreConfig::default();
        // The database lives as long as one connection does: keep them all.
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(storage)?;
        let store = PinStore { pool, path, config };
        store.init_schema().await?;
        Ok(store)
    }

    /// The database file (`:memory:` for [`open_in_memory`](Self::open_in_memory)).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tunables in force.
    pub fn config(&self) -> &PinStoreConfig {
        &self.config
    }

    /// Closes every connection, after waiting for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Pins `key` for `peer`, stamped with the current time (see [`add_at`](Self::add_at)).
    pub async fn add(
        &self,
        protocol: &str,
        peer: &str,
        key: &[u8],
        note: Option<&str>,
        replace: bool,
    ) -> Result<()> {
        self.add_at(protocol, peer, key, note, replace, SystemClock.unix_now())
            .await
    }

    /// Pins `key` for `peer` with first-seen time `now_unix`.
    ///
    /// Pinning the key that is already pinned succeeds and keeps its first-seen time (a given
    /// `note` replaces the old one). A different pinned key is an [`Error::PinExists`] unless
    /// `replace`, which replaces key, time and note. A new pin past
    /// [`PinStoreConfig::max_pins_per_protocol`] is an [`Error::PinStoreFull`].
    pub async fn add_at(
        &self,
        protocol: &str,
        peer: &str,
        key: &[u8],
        note: Option<&str>,
        replace: bool,
        now_unix: u64,
    ) -> Result<()> {
        validate_protocol(protocol)?;
        validate_peer(peer)?;
        validate_key(key)?;
        if let Some(note) = note {
            validate_note(note)?;
        }
        let now = unix_to_sql(now_unix)?;
        let mut tx = self.begin_write().await?;
        match self.get_in(&mut tx, protocol, peer).await? {
            None => {
                self.ensure_room(&mut tx, protocol).await?;
                self.write(&mut tx, protocol, peer, key, now, note).await?;
            }
            Some(existing) if keys_equal(&existing.key, key) => {
                if note.is_some() {
                    sqlx::query("UPDATE pins SET note = ?3 WHERE protocol = ?1 AND peer = ?2")
                        .bind(protocol)
                        .bind(peer)
                        .bind(note)
                        .execute(&mut *tx)
                        .await
                        .map_err(self.err("update pin"))?;
                }
            }
            Some(_) if replace => {
                self.write(&mut tx, protocol, peer, key, now, note).await?;
            }
            Some(existing) => {
                return Err(Error::PinExists {
                    protocol: protocol.into(),
                    peer: peer.into(),
                    pinned_fingerprint: existing.fingerprint(),
                });
            }
        }
        self.commit(tx).await
    }

    /// Removes the pin for `peer`; returns whether there was one.
    pub async fn remove(&self, protocol: &str, peer: &str) -> Result<bool> {
        validate_protocol(protocol)?;
        validate_peer(peer)?;
        let done = sqlx::query("DELETE FROM pins WHERE protocol = ?1 AND peer = ?2")
            .bind(protocol)
            .bind(peer)
            .execute(&self.pool)
            .await
            .map_err(self.err("remove pin"))?;
        Ok(done.rows_affected() > 0)
    }

    /// The pin for `peer`, if any.
    pub async fn get(&self, protocol: &str, peer: &str) -> Result<Option<Pin>> {
        validate_protocol(protocol)?;
        validate_peer(peer)?;
        let row = sqlx::query(select_pin!("WHERE protocol = ?1 AND peer = ?2"))
            .bind(protocol)
            .bind(peer)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err("read pin"))?;
        row.map(|r| self.row_to_pin(&r)).transpose()
    }

    /// All pins, or those of one protocol, ordered by protocol and peer.
    pub async fn list(&self, protocol: Option<&str>) -> Result<Vec<Pin>> {
        if let Some(protocol) = protocol {
            validate_protocol(protocol)?;
        }
        let rows = sqlx::query(select_pin!(
            "WHERE ?1 IS NULL OR protocol = ?1 ORDER BY protocol, peer"
        ))
        .bind(protocol)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("list pins"))?;
        rows.iter().map(|r| self.row_to_pin(r)).collect()
    }

    /// Every pin of `protocol` whose key is `key`, whatever the peer name, ordered by peer.
    ///
    /// A server uses this to accept any pinned client key regardless of the name it was
    /// pinned under.
    pub async fn find_by_key(&self, protocol: &str, key: &[u8]) -> Result<Vec<Pin>> {
        validate_protocol(protocol)?;
        validate_key(key)?;
        let rows = sqlx::query(select_pin!(
            "WHERE protocol = ?1 AND key = ?2 ORDER BY peer"
        ))
        .bind(protocol)
        .bind(key)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("find pins by key"))?;
        rows.iter().map(|r| self.row_to_pin(r)).collect()
    }

    // ----- building blocks for `check` -----------------------------------------------------

    /// Inserts the pin unless `peer` already has one, atomically across processes.
    pub(super) async fn insert_if_absent(
        &self,
        protocol: &str,
        peer: &str,
        key: &[u8],
        now_unix: u64,
        note: Option<&str>,
    ) -> Result<Inserted> {
        let now = unix_to_sql(now_unix)?;
        let mut tx = self.begin_write().await?;
        if let Some(existing) = self.get_in(&mut tx, protocol, peer).await? {
            return Ok(Inserted::Existing(existing));
        }
        self.ensure_room(&mut tx, protocol).await?;
        self.write(&mut tx, protocol, peer, key, now, note).await?;
        self.commit(tx).await?;
        Ok(Inserted::New)
    }

    /// Replaces the pin for `peer` with `key` only if it is still `expected`; returns the pin
    /// found instead otherwise (`None` if it was removed).
    pub(super) async fn replace_if(
        &self,
        protocol: &str,
        peer: &str,
        expected: &[u8],
        key: &[u8],
        now_unix: u64,
        note: Option<&str>,
    ) -> Result<std::result::Result<(), Option<Pin>>> {
        let now = unix_to_sql(now_unix)?;
        let mut tx = self.begin_write().await?;
        match self.get_in(&mut tx, protocol, peer).await? {
            Some(current) if keys_equal(&current.key, expected) => {
                self.write(&mut tx, protocol, peer, key, now, note).await?;
                self.commit(tx).await?;
                Ok(Ok(()))
            }
            other => Ok(Err(other)),
        }
    }

    // ----- internals ------------------------------------------------------------------------

    async fn init_schema(&self) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(self.err("read schema version"))?;
        if version > SCHEMA_VERSION {
            return Err(Error::UnsupportedSchema {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < 0 {
            return Err(Error::CorruptStore {
                reason: format!("negative schema version {version}"),
            });
        }
        sqlx::raw_sql(SCHEMA)
            .execute(&mut *tx)
            .await
            .map_err(self.err("create schema"))?;
        if version < SCHEMA_VERSION {
            sqlx::query(SET_SCHEMA_VERSION)
                .execute(&mut *tx)
                .await
                .map_err(self.err("set schema version"))?;
        }
        self.commit(tx).await
    }

    /// Starts a transaction that holds the write lock from the start, so the reads inside it
    /// cannot be invalidated by another writer before it writes.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.err("begin transaction"))
    }

    async fn commit(&self, tx: Transaction<'static, Sqlite>) -> Result<()> {
        tx.commit().await.map_err(self.err("commit"))
    }

    async fn get_in(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        protocol: &str,
        peer: &str,
    ) -> Result<Option<Pin>> {
        let row = sqlx::query(select_pin!("WHERE protocol = ?1 AND peer = ?2"))
            .bind(protocol)
            .bind(peer)
            .fetch_optional(&mut **tx)
            .await
            .map_err(self.err("read pin"))?;
        row.map(|r| self.row_to_pin(&r)).transpose()
    }

    async fn ensure_room(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        protocol: &str,
    ) -> Result<()> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pins WHERE protocol = ?1")
            .bind(protocol)
            .fetch_one(&mut **tx)
            .await
            .map_err(self.err("count pins"))?;
        let limit = self.config.max_pins_per_protocol;
        if u64::try_from(count).unwrap_or(0) >= limit {
            return Err(Error::PinStoreFull {
                protocol: protocol.into(),
                limit,
            });
        }
        Ok(())
    }

    /// Writes the pin for (`protocol`, `peer`), inserting it or replacing the one there.
    /// Callers decide under the same transaction whether that is allowed.
    async fn write(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        protocol: &str,
        peer: &str,
        key: &[u8],
        now: i64,
        note: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO pins (protocol, peer, key, first_seen, note) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (protocol, peer) DO UPDATE SET \
             key = excluded.key, first_seen = excluded.first_seen, note = excluded.note",
        )
        .bind(protocol)
        .bind(peer)
        .bind(key)
        .bind(now)
        .bind(note)
        .execute(&mut **tx)
        .await
        .map_err(self.err("write pin"))?;
        Ok(())
    }

    fn row_to_pin(&self, row: &SqliteRow) -> Result<Pin> {
        let get_err = self.err("decode pin");
        let first_seen: i64 = row.try_get("first_seen").map_err(&get_err)?;
        let pin = Pin {
            protocol: row.try_get("protocol").map_err(&get_err)?,
            peer: row.try_get("peer").map_err(&get_err)?,
            key: row.try_get("key").map_err(&get_err)?,
            first_seen: u64::try_from(first_seen).map_err(|_| Error::CorruptStore {
                reason: format!("negative first_seen {first_seen}"),
            })?,
            note: row.try_get("note").map_err(&get_err)?,
        };
        Ok(pin)
    }

    fn err(&self, op: &'static str) -> impl Fn(sqlx::Error) -> Error + '_ {
        move |source| Error::Storage {
            op,
            path: self.path.clone(),
            source,
        }
    }

    /// The underlying pool, for tests that need to hold connections or locks.
    #[cfg(test)]
    pub(super) fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Compares keys without an early exit (keys are public, but it costs nothing).
pub(super) fn keys_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

fn unix_to_sql(now_unix: u64) -> Result<i64> {
    i64::try_from(now_unix).map_err(|_| Error::param("time", "beyond year 292 billion"))
}

/// Creates the database file with mode 0600 if it does not exist yet; SQLite would create
/// it world-readable (0644 minus umask), and its WAL files copy the main file's mode.
fn create_private_file(path: &Path) -> Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if let Ok(meta) = std::fs::metadata(path) {
                let mode = meta.permissions().mode();
                if is_shared_mode(mode) {
                    tracing::warn!(
                        path = %path.display(),
                        mode = format_args!("{:o}", mode & 0o7777),
                        "pin store is accessible to group or others; run chmod 600 on it"
                    );
                }
            }
            Ok(())
        }
        Err(e) => Err(Error::io("create", path, e)),
    }
}

/// Whether an error is SQLite's "busy" or "locked" (any extended code).
fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6)),
        _ => false,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::keys::fingerprint;

    pub(crate) const NOW: u64 = 1_700_000_000;

    pub(crate) fn key(n: u8) -> Vec<u8> {
        vec![n; 32]
    }

    #[tokio::test]
    async fn add_get_list_remove() {
        let store = PinStore::open_in_memory().await.unwrap();
        assert_eq!(store.get("shs", "a").await.unwrap(), None);
        store
            .add_at("shs", "a", &key(1), Some("laptop"), false, NOW)
            .await
            .unwrap();
        store
            .add_at("shs", "b", &key(2), None, false, NOW + 1)
            .await
            .unwrap();
        store
            .add_at("kps", "a", &key(1), None, false, NOW + 2)
            .await
            .unwrap();

        let pin = store.get("shs", "a").await.unwrap().unwrap();
        assert_eq!(
            pin,
            Pin {
                protocol: "shs".into(),
                peer: "a".into(),
                key: key(1),
                first_seen: NOW,
                note: Some("laptop".into()),
            }
        );
        let all = store.list(None).await.unwrap();
        let names: Vec<_> = all
            .iter()
            .map(|p| format!("{}/{}", p.protocol, p.peer))
            .collect();
        assert_eq!(names, ["kps/a", "shs/a", "shs/b"]);
        assert_eq!(store.list(Some("shs")).await.unwrap().len(), 2);
        assert_eq!(store.list(Some("nostr")).await.unwrap(), []);

        assert!(store.remove("shs", "a").await.unwrap());
        assert!(!store.remove("shs", "a").await.unwrap());
        assert_eq!(store.get("shs", "a").await.unwrap(), None);
        assert!(store.get("kps", "a").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn add_same_key_is_ok_and_keeps_first_seen() {
        let store = PinStore::open_in_memory().await.unwrap();
        store
            .add_at("shs", "a", &key(1), Some("one"), false, NOW)
            .await
            .unwrap();
        store
            .add_at("shs", "a", &key(1), None, false, NOW + 50)
            .await
            .unwrap();
        let pin = store.get("shs", "a").await.unwrap().unwrap();
        assert_eq!((pin.first_seen, pin.note.as_deref()), (NOW, Some("one")));
        store
            .add_at("shs", "a", &key(1), Some("two"), false, NOW + 60)
            .await
            .unwrap();
        let pin = store.get("shs", "a").await.unwrap().unwrap();
        assert_eq!((pin.first_seen, pin.note.as_deref()), (NOW, Some("two")));
    }

    #[tokio::test]
    async fn add_different_key_needs_replace() {
        let store = PinStore::open_in_memory().await.unwrap();
        store
            .add_at("shs", "a", &key(1), Some("old"), false, NOW)
            .await
            .unwrap();
        let err = store
            .add_at("shs", "a", &key(2), None, false, NOW)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PinExists { .. }), "{err}");
        assert!(err.to_string().contains(&fingerprint(&key(1))));
        assert_eq!(store.get("shs", "a").await.unwrap().unwrap().key, key(1));

        store
            .add_at("shs", "a", &key(2), None, true, NOW + 9)
            .await
            .unwrap();
        let pin = store.get("shs", "a").await.unwrap().unwrap();
        assert_eq!((pin.key, pin.first_seen, pin.note), (key(2), NOW + 9, None));
    }

    #[tokio::test]
    async fn find_by_key_ignores_names() {
        let store = PinStore::open_in_memory().await.unwrap();
        store
            .add_at("shs", "a", &key(1), None, false, NOW)
            .await
            .unwrap();
        store
            .add_at("shs", "b", &key(1), None, false, NOW)
            .await
            .unwrap();
        store
            .add_at("shs", "c", &key(2), None, false, NOW)
            .await
            .unwrap();
        store
            .add_at("kps", "d", &key(1), None, false, NOW)
            .await
            .unwrap();
        let found: Vec<_> = store
            .find_by_key("shs", &key(1))
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.peer)
            .collect();
        assert_eq!(found, ["a", "b"]);
        assert_eq!(store.find_by_key("shs", &key(3)).await.unwrap(), []);
    }

    #[tokio::test]
    async fn file_store_is_private_and_persistent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyline.db");
        let store = PinStore::open(&path).await.unwrap();
        store
            .add_at("shs", "a", &key(1), None, false, NOW)
            .await
            .unwrap();
        store.close().await;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let store = PinStore::open(&path).await.unwrap();
        assert_eq!(store.get("shs", "a").await.unwrap().unwrap().key, key(1));
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(journal, "wal");
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let entry = entry.unwrap();
            let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{:?}", entry.file_name());
        }
    }

    #[tokio::test]
    async fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyline.db");
        let store = PinStore::open(&path).await.unwrap();
        sqlx::query("PRAGMA user_version = 2")
            .execute(store.pool())
            .await
            .unwrap();
        store.close().await;
        let err = PinStore::open(&path).await.unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedSchema { found: 2, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn corrupt_rows_are_reported() {
        let store = PinStore::open_in_memory().await.unwrap();
        sqlx::query("INSERT INTO pins VALUES ('shs', 'a', x'01', -5, NULL)")
            .execute(store.pool())
            .await
            .unwrap();
        let err = store.get("shs", "a").await.unwrap_err();
        assert!(matches!(err, Error::CorruptStore { .. }), "{err}");
    }

    #[tokio::test]
    async fn not_a_database_is_a_storage_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyline.db");
        std::fs::write(&path, vec![0x55; 4096]).unwrap();
        let err = PinStore::open(&path).await.unwrap_err();
        assert!(matches!(err, Error::Storage { .. }), "{err}");
        assert!(!err.to_string().contains('\n'), "{err}");
        let config = PinStoreConfig {
            max_connections: 0,
            ..PinStoreConfig::default()
        };
        let err = PinStore::open_with(&path, config).await.unwrap_err();
        assert!(matches!(err, Error::InvalidParameter { .. }), "{err}");
    }

    #[tokio::test]
    async fn missing_directory_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = PinStore::open(&dir.path().join("no/such/keyline.db"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
    }

    #[tokio::test]
    async fn time_beyond_i64_is_refused() {
        let store = PinStore::open_in_memory().await.unwrap();
        let err = store
            .add_at("shs", "a", &key(1), None, false, u64::MAX)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidParameter { .. }), "{err}");
        store
            .add_at("shs", "a", &key(1), None, false, i64::MAX as u64)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn add_uses_the_system_clock() {
        let store = PinStore::open_in_memory().await.unwrap();
        let before = SystemClock.unix_now();
        store.add("shs", "a", &key(1), None, false).await.unwrap();
        let pin = store.get("shs", "a").await.unwrap().unwrap();
        assert!(pin.first_seen >= before && pin.first_seen <= SystemClock.unix_now());
    }

    #[tokio::test]
    async fn inputs_are_validated_before_touching_the_db() {
        let store = PinStore::open_in_memory().await.unwrap();
        for err in [
            store.add_at("", "a", &key(1), None, false, NOW).await,
            store.add_at("shs", "", &key(1), None, false, NOW).await,
            store.add_at("shs", "a", &[], None, false, NOW).await,
            store
                .add_at("shs", "a", &key(1), Some("x\ny"), false, NOW)
                .await,
        ] {
            assert!(
                matches!(err, Err(Error::InvalidParameter { .. })),
                "{err:?}"
            );
        }
        assert!(store.get("shs", "a\n").await.is_err());
        assert!(store.remove("sh s", "a").await.is_err());
        assert!(store.find_by_key("shs", &[]).await.is_err());
        assert!(store.list(Some("")).await.is_err());
        assert_eq!(store.list(None).await.unwrap(), []);
    }

    #[tokio::test]
    async fn busy_timeout_waits_then_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyline.db");
        let config = PinStoreConfig {
            busy_timeout: Duration::from_millis(300),
            ..PinStoreConfig::default()
        };
        let a = PinStore::open_with(&path, config.clone()).await.unwrap();
        let b = PinStore::open_with(&path, config).await.unwrap();

        // Edge: a lock released well within the timeout is waited out.
        let lock = a.begin_write().await.unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            lock.rollback().await.unwrap();
        });
        b.add_at("shs", "a", &key(1), None, false, NOW)
            .await
            .unwrap();
        release.await.unwrap();

        // Past it: a lock held longer than the timeout makes the operation fail, not hang.
        let lock = a.begin_write().await.unwrap();
        let started = Instant::now();
        let err = b
            .add_at("shs", "b", &key(1), None, false, NOW)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Storage { .. }), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(250));
        lock.rollback().await.unwrap();
        b.add_at("shs", "b", &key(1), None, false, NOW)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn connection_limit_and_acquire_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let config = PinStoreConfig {
            acquire_timeout: Duration::from_millis(100),
            ..PinStoreConfig::default()
        };
        assert_eq!(config.max_connections, PIN_DB_MAX_CONNECTIONS);
        let store = PinStore::open_with(&dir.path().join("keyline.db"), config)
            .await
            .unwrap();
        // Edge: all but one connection busy; the last one serves the request.
        let mut held = Vec::new();
        for _ in 1..PIN_DB_MAX_CONNECTIONS {
            held.push(store.pool().acquire().await.unwrap());
        }
        assert_eq!(store.get("shs", "a").await.unwrap(), None);
        // Past it: every connection busy; the request gives up after the acquire timeout.
        held.push(store.pool().acquire().await.unwrap());
        let started = Instant::now();
        let err = store.get("shs", "a").await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Storage {
                    source: sqlx::Error::PoolTimedOut,
                    ..
                }
            ),
            "{err}"
        );
        assert!(started.elapsed() >= Duration::from_millis(90));
        held.pop();
        assert_eq!(store.get("shs", "a").await.unwrap(), None);
    }

    #[tokio::test]
    async fn max_pins_per_protocol_at_the_default() {
        let store = PinStore::open_in_memory().await.unwrap();
        assert_eq!(store.config().max_pins_per_protocol, MAX_PINS_PER_PROTOCOL);
        // Fill to one below the limit in one statement.
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
             INSERT INTO pins SELECT 'shs', 'p' || i, randomblob(32), 0, NULL FROM n",
        )
        .bind(i64::try_from(MAX_PINS_PER_PROTOCOL - 1).unwrap())
        .execute(store.pool())
        .await
        .unwrap();
        // Edge: the last pin fits.
        store
            .add_at("shs", "last", &key(1), None, false, NOW)
            .await
            .unwrap();
        // Past it: refused, for `add` and for TOFU alike; other protocols are unaffected.
        let err = store
            .add_at("shs", "one-more", &key(2), None, false, NOW)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PinStoreFull { .. }), "{err}");
        let err = store
            .check(crate::Policy::Tofu, "shs", "one-more", &key(2), NOW, None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PinStoreFull { .. }), "{err}");
        store
            .add_at("kps", "one-more", &key(2), None, false, NOW)
            .await
            .unwrap();
        // Replacing an existing pin does not need room.
        store
            .add_at("shs", "last", &key(3), None, true, NOW)
            .await
            .unwrap();
    }

    #[test]
    fn schema_version_statement_matches() {
        assert_eq!(
            SET_SCHEMA_VERSION,
            format!("PRAGMA user_version = {SCHEMA_VERSION}")
        );
    }

    #[test]
    fn default_config_uses_limits() {
        let c = PinStoreConfig::default();
        assert_eq!(c.busy_timeout, PIN_DB_BUSY_TIMEOUT);
        assert_eq!(c.acquire_timeout, PIN_DB_ACQUIRE_TIMEOUT);
        assert_eq!(c.max_connections, PIN_DB_MAX_CONNECTIONS);
        assert_eq!(c.max_pins_per_protocol, MAX_PINS_PER_PROTOCOL);
    }
}
