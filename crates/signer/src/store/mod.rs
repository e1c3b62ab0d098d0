//! Persisted signer state on sqlx (spec §9): keys, nodes, ceremonies, audit log, and nodes'
//! sealed shares.
//!
//! One SQLite file by default (created mode 0600, WAL, `foreign_keys=ON`, `busy_timeout`
//! 5 s). The schema is in the tree under `crates/signer/migrations/sqlite/` and embedded at
//! compile time by `sqlx::migrate!` (no `DATABASE_URL`, no compile-time-checked queries); it
//! is applied on [`Store::open`], and a database written by a newer keyline is refused
//! ([`Error::UnsupportedSchema`]).
//!
//! | table | holds | written by |
//! |---|---|---|
//! | `keys`, `key_members` | public key packages, npub, t, n, ciphersuite, verifying shares | [`Store::put_key`], [`Store::commit_ceremony`] |
//! | `nodes` | pinned node keys and descriptors | [`Store::add_node`] |
//! | `ceremonies`, `ceremony_messages` | ceremony state; public messages unique per (ceremony, round, from, to) | [`Store::create_ceremony`], [`Store::record_ceremony_message`], [`Store::finish_ceremony`] |
//! | `audit_log` | one row per request or operator action, no content | [`Store::audit_append`] |
//! | `keks` | the KEKs blobs were sealed under | [`Store::register_kek`] |
//! | `node_shares` | **sealed** shares only ([`crate::envelope`]), with their public key package | [`ShareVault`] |
//! | `transport_keys` | the bunker's transport key, **sealed** (object type 2) | [`Store::seal_transport_key`], [`Store::open_transport_key`] |
//! | `policies`, `node_pins`, `node_policy`, `node_audit`, and the bunker tables of `0002_bunker.sql` | created by the migrations; their queries belong to the code that uses them | — |
//!
//! What a node calls: [`ShareVault::seal_and_store`] (a share from a ceremony, pending or
//! active), [`ShareVault::commit_pending`] (after `Commit`: re-seal as active, delete older
//! versions in one transaction), [`ShareVault::load_share`] (open, decode and check against the
//! stored public key package), [`ShareVault::rotate`] (§10.4). What the coordinator calls:
//! [`Store::put_key`] / [`Store::get_key`] / [`Store::list_keys`], [`Store::add_node`] /
//! [`Store::list_nodes`] / [`Store::remove_node`], [`Store::create_ceremony`] /
//! [`Store::record_ceremony_message`] / [`Store::commit_ceremony`] / [`Store::finish_ceremony`],
//! [`Store::audit_append`] / [`Store::audit_list`], and [`Store::seal_transport_key`] /
//! [`Store::open_transport_key`] for its own NIP-46 key.
//!
//! # Portability
//!
//! Every query is plain SQL that SQLite and Postgres both accept: `$n` placeholders (sqlx's
//! SQLite driver takes them too), `INSERT … ON CONFLICT … DO NOTHING`, `RETURNING`, `BIGINT`
//! millisecond timestamps passed in by the caller, `TEXT` hex ids, no `AUTOINCREMENT`, no
//! `INSERT OR REPLACE`, no date functions. Writes inside a transaction write first and read
//! after, so SQLite's deferred transactions never need a lock upgrade. The SQLite-only parts
//! are confined to [`Store::open`]: the connection options (WAL, busy timeout, file mode) and
//! the migration directory; the `audit_log.seq` column is an `INTEGER PRIMARY KEY` (rowid) in
//! the SQLite migrations and would be an identity column in the Postgres set. A Postgres
//! backend needs `migrations/postgres/` (BYTEA for BLOB) and a pool type behind these methods.
//!
//! Never stored: nonces, ceremony secrets, ECDH partials, conversation keys, plaintext shares,
//! PINs (spec §9). Timestamps are inputs (`now_ms`, Unix milliseconds), so tests control them.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Row, Sqlite, Transaction};

pub use self::bunker::{ApprovalRecord, Connection, SecretUse};
pub use self::transport::TransportKey;
pub use self::vault::ShareVault;
use crate::limits::{
    AUDIT_PAGE_SIZE, MAX_AUDIT_FIELD, MAX_AUDIT_PAGE, MAX_CEREMONY_MESSAGE, MAX_ENCODED_LEN,
    MAX_NODE_FIELD, MAX_SEALED_BLOB, STORE_ACQUIRE_TIMEOUT, STORE_BUSY_TIMEOUT,
    STORE_MAX_CONNECTIONS,
};
use crate::wire::{CeremonyId, CeremonyKind, KeyId};
use crate::{Error, KeyOrigin, ParticipantId, PublicKeyPackage, Result};

macro_rules! select_key {
    () => {
        "SELECT key_id, npub, ciphersuite, threshold, total, public_key_package, share_version, \
         status, created_at FROM keys"
    };
}

macro_rules! select_node {
    () => {
        "SELECT node_id, descriptor, hpke_pk, address, label, pinned_at, status, cooldown_until \
         FROM nodes"
    };
}

macro_rules! select_share {
    () => {
        "SELECT node_id, key_id, share_version, identifier, sealed_blob, kek_id, \
         public_key_package, status, created_at FROM node_shares"
    };
}

// After the macros, so the vault sees them.
mod bunker;
mod transport;
mod vault;

/// The schema, embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The ciphersuite every key of this crate uses.
pub const CIPHERSUITE: &str = "FROST-secp256k1-SHA256-TR-v1";

/// A node's identity: its pinned Ed25519 SHS key.
pub type NodeId = [u8; 32];

/// Status of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyStatus {
    /// In use.
    Active,
    /// Revoked by the operator; kept for the audit trail.
    Revoked,
}

/// A key as the coordinator stores it: public data only.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyRecord {
    /// The key id.
    pub key_id: KeyId,
    /// The x-only group key.
    pub npub: [u8; 32],
    /// Threshold t.
    pub threshold: u16,
    /// Share count n.
    pub total: u16,
    /// [`CIPHERSUITE`].
    pub ciphersuite: String,
    /// DKG (tweaked) or imported.
    pub origin: KeyOrigin,
    /// The public key package.
    pub public: PublicKeyPackage,
    /// The share version in force (bumped by refresh and repair).
    pub share_version: u32,
    /// Active or revoked.
    pub status: KeyStatus,
    /// When it was stored (Unix ms).
    pub created_at_ms: u64,
}

/// One participant of a key as the coordinator stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyMember {
    /// The FROST identifier.
    pub identifier: ParticipantId,
    /// The node holding it, once known.
    pub node_id: Option<NodeId>,
    /// Its verifying share (33-byte SEC1).
    pub verifying_share: [u8; 33],
    /// The share version.
    pub share_version: u32,
}

/// Status of a pinned node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeStatus {
    /// Used for signing.
    Active,
    /// Pinned but not used.
    Disabled,
}

/// A pinned node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRecord {
    /// The pinned SHS identity (Ed25519 public key).
    pub node_id: NodeId,
    /// Its signed descriptor (at most [`MAX_NODE_FIELD`] bytes).
    pub descriptor: Vec<u8>,
    /// Its HPKE public key.
    pub hpke_pk: [u8; 32],
    /// Where to reach it.
    pub address: Option<String>,
    /// Operator's label.
    pub label: Option<String>,
    /// When it was pinned (Unix ms).
    pub pinned_at_ms: u64,
    /// Active or disabled.
    pub status: NodeStatus,
    /// Cool-down after misbehaviour (Unix ms), if any.
    pub cooldown_until_ms: Option<u64>,
}

/// A new ceremony.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewCeremony {
    /// 16 random bytes.
    pub ceremony_id: CeremonyId,
    /// DKG, refresh, repair or import.
    pub kind: CeremonyKind,
    /// The key made or changed.
    pub key_id: KeyId,
    /// Threshold t.
    pub threshold: u16,
    /// Share count n.
    pub total: u16,
    /// Start (Unix ms).
    pub started_at_ms: u64,
    /// Overall deadline (Unix ms).
    pub deadline_at_ms: u64,
}

/// How a ceremony ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CeremonyOutcome {
    /// All results agreed; the key or new shares are in force.
    Committed,
    /// Aborted (equivocation, bad share, operator).
    Aborted,
    /// A deadline passed.
    TimedOut,
}

/// A stored ceremony.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CeremonyRecord {
    /// What was created.
    pub ceremony: NewCeremony,
    /// The current round.
    pub round: u8,
    /// `None` while running.
    pub outcome: Option<CeremonyOutcome>,
    /// When it finished (Unix ms).
    pub finished_at_ms: Option<u64>,
    /// The error that ended it, if any.
    pub error: Option<String>,
}

/// A recorded ceremony message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CeremonyMessage {
    /// The round.
    pub round: u8,
    /// Sender identifier (0 = coordinator).
    pub from: u16,
    /// Recipient identifier (0 = everyone).
    pub to: u16,
    /// SHA-256 of the message.
    pub sha256: [u8; 32],
    /// The message, for public messages; `None` for sealed ones (kept by hash only).
    pub payload: Option<Vec<u8>>,
    /// When it arrived (Unix ms).
    pub received_at_ms: u64,
}

/// Where a ceremony message belongs: the unique key `(round, from, to)` within its ceremony.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MessageSlot {
    /// The round.
    pub round: u8,
    /// Sender identifier (0 = coordinator).
    pub from: u16,
    /// Recipient identifier (0 = everyone).
    pub to: u16,
}

/// What [`Store::record_ceremony_message`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// The message was new and is now recorded.
    New,
    /// The identical message was already recorded (a harmless resubmission).
    Duplicate,
}

/// One audit record (spec §12.7): identifiers and decisions, never content. Text fields are
/// at most [`MAX_AUDIT_FIELD`] bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEntry {
    /// When (Unix ms).
    pub ts_ms: u64,
    /// Who: `client:<pubkey>`, `operator`, `coordinator`, `node:<id>` …
    pub actor: String,
    /// What: `sign_event`, `connect`, `revoke`, `dkg` …
    pub action: String,
    /// The key concerned.
    pub key_id: Option<KeyId>,
    /// The NIP-46 client (hex).
    pub client_pubkey: Option<String>,
    /// The NIP-46 method.
    pub method: Option<String>,
    /// The event kind.
    pub kind: Option<u32>,
    /// The signed event id (hex).
    pub event_id: Option<String>,
    /// The ECDH peer (hex).
    pub peer: Option<String>,
    /// `allow`, `deny`, `ask` …
    pub decision: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// The nodes used.
    pub nodes: Vec<String>,
    /// How long it took.
    pub latency_ms: Option<u64>,
    /// The error code, if it failed.
    pub error_code: Option<String>,
}

impl AuditEntry {
    /// An entry with the required fields; set the others directly.
    pub fn new(ts_ms: u64, actor: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            ts_ms,
            actor: actor.into(),
            action: action.into(),
            ..Self::default()
        }
    }
}

/// A stored audit record: its sequence number and entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Increasing sequence number.
    pub seq: u64,
    /// The entry.
    pub entry: AuditEntry,
}

/// Status of a node's sealed share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShareStatus {
    /// From a ceremony that has not committed; sealed as a pending share.
    Pending,
    /// In use.
    Active,
    /// Superseded (kept only until the new version is committed).
    Retired,
}

/// A node's sealed share as stored (no plaintext).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareRow {
    /// The node holding it.
    pub node_id: NodeId,
    /// The key.
    pub key_id: KeyId,
    /// The share version.
    pub share_version: u32,
    /// The FROST identifier.
    pub identifier: ParticipantId,
    /// The envelope ([`crate::envelope`]).
    pub sealed_blob: Vec<u8>,
    /// The KEK it is sealed under.
    pub kek_id: String,
    /// The public key package of this version ([`PublicKeyPackage::serialize`]).
    pub public_key_package: Vec<u8>,
    /// Pending, active or retired.
    pub status: ShareStatus,
    /// When it was stored (Unix ms).
    pub created_at_ms: u64,
}

/// A KEK known to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KekRecord {
    /// The id in blob headers.
    pub kek_id: String,
    /// `pkcs11` or `file`.
    pub provider: String,
    /// Token label or file path.
    pub label: String,
    /// When first used (Unix ms).
    pub created_at_ms: u64,
    /// When retired by rotation (Unix ms).
    pub retired_at_ms: Option<u64>,
}

// ----- small conversions -------------------------------------------------------------------

fn db(op: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| Error::Storage {
        op,
        reason: e.to_string(),
    }
}

fn corrupt(what: &'static str) -> Error {
    Error::Storage {
        op: "decode row",
        reason: format!("invalid {what} in the database"),
    }
}

fn int(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::params("timestamp or counter above 2^63"))
}

fn uint(v: i64, what: &'static str) -> Result<u64> {
    u64::try_from(v).map_err(|_| corrupt(what))
}

fn from_hex<const N: usize>(s: &str, what: &'static str) -> Result<[u8; N]> {
    let bytes = hex::decode(s).map_err(|_| corrupt(what))?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| corrupt(what))
}

fn check_field(what: &'static str, value: &[u8], max: usize) -> Result<()> {
    if value.len() > max {
        return Err(Error::TooLarge {
            what,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

fn opt_field(what: &'static str, value: &Option<String>, max: usize) -> Result<()> {
    value
        .as_deref()
        .map_or(Ok(()), |v| check_field(what, v.as_bytes(), max))
}

fn origin_name(origin: KeyOrigin) -> &'static str {
    match origin {
        KeyOrigin::Dkg => "dkg",
        KeyOrigin::Imported => "import",
    }
}

fn key_status_name(status: KeyStatus) -> &'static str {
    match status {
        KeyStatus::Active => "active",
        KeyStatus::Revoked => "revoked",
    }
}

fn node_status_name(status: NodeStatus) -> &'static str {
    match status {
        NodeStatus::Active => "active",
        NodeStatus::Disabled => "disabled",
    }
}

fn kind_name(kind: CeremonyKind) -> &'static str {
    match kind {
        CeremonyKind::Dkg => "dkg",
        CeremonyKind::Refresh => "refresh",
        CeremonyKind::Repair => "repair",
        CeremonyKind::Import => "import",
    }
}

fn kind_from(name: &str) -> Result<CeremonyKind> {
    Ok(match name {
        "dkg" => CeremonyKind::Dkg,
        "refresh" => CeremonyKind::Refresh,
        "repair" => CeremonyKind::Repair,
        "import" => CeremonyKind::Import,
        _ => return Err(corrupt("ceremony kind")),
    })
}

fn outcome_name(outcome: CeremonyOutcome) -> &'static str {
    match outcome {
        CeremonyOutcome::Committed => "committed",
        CeremonyOutcome::Aborted => "aborted",
        CeremonyOutcome::TimedOut => "timed_out",
    }
}

fn outcome_from(name: &str) -> Result<CeremonyOutcome> {
    Ok(match name {
        "committed" => CeremonyOutcome::Committed,
        "aborted" => CeremonyOutcome::Aborted,
        "timed_out" => CeremonyOutcome::TimedOut,
        _ => return Err(corrupt("ceremony outcome")),
    })
}

pub(crate) fn share_status_name(status: ShareStatus) -> &'static str {
    match status {
        ShareStatus::Pending => "pending",
        ShareStatus::Active => "active",
        ShareStatus::Retired => "retired",
    }
}

fn share_status_from(name: &str) -> Result<ShareStatus> {
    Ok(match name {
        "pending" => ShareStatus::Pending,
        "active" => ShareStatus::Active,
        "retired" => ShareStatus::Retired,
        _ => return Err(corrupt("share status")),
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

// ----- the store ---------------------------------------------------------------------------

/// The signer's database. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

impl Store {
    /// Opens the database at `path`, creating it with mode 0600 if needed (the directory must
    /// exist), in WAL mode with `foreign_keys=ON` and a 5 s busy timeout, and applies the
    /// embedded migrations.
    pub async fn open(path: &Path) -> Result<Store> {
        create_private_file(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(STORE_BUSY_TIMEOUT);
        let pool_options = SqlitePoolOptions::new()
            .max_connections(STORE_MAX_CONNECTIONS)
            .acquire_timeout(STORE_ACQUIRE_TIMEOUT);
        // Switching a new database to WAL takes an exclusive lock SQLite does not wait for:
        // two processes creating the store at once may see "busy"; retry until the timeout.
        let deadline = Instant::now() + STORE_BUSY_TIMEOUT;
        let pool = loop {
            match pool_options.clone().connect_with(options.clone()).await {
                Ok(pool) => break pool,
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(db("open")(e)),
            }
        };
        // SQLite's migrator takes no lock: a process migrating the same new file at the same
        // time makes this run fail; once it is done, a retry finds the schema applied.
        loop {
            match MIGRATOR.run(&pool).await {
                Ok(()) => break,
                Err(MigrateError::VersionMissing(v)) => {
                    return Err(Error::UnsupportedSchema {
                        reason: format!(
                            "the database has migration {v}, which this build does not know"
                        ),
                    });
                }
                Err(MigrateError::VersionMismatch(v)) => {
                    return Err(Error::UnsupportedSchema {
                        reason: format!("migration {v} in the database differs from this build's"),
                    });
                }
                Err(MigrateError::Dirty(v)) => {
                    return Err(Error::UnsupportedSchema {
                        reason: format!("migration {v} was left partially applied"),
                    });
                }
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(other) => {
                    return Err(Error::Storage {
                        op: "migrate",
                        reason: other.to_string(),
                    });
                }
            }
        }
        Ok(Store {
            pool,
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The migration versions applied, ascending (for status output and tests).
    pub async fn schema_versions(&self) -> Result<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("read schema version"))
    }

    /// Closes every connection after the ones in use are returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction. SQLite: `BEGIN IMMEDIATE`, so the write lock is taken (waiting up
    /// to the busy timeout) before the first read; a deferred transaction that reads, then
    /// writes after another connection committed fails at once with `SQLITE_BUSY_SNAPSHOT`
    /// (several in-process nodes committing a ceremony into one file do exactly that). The one
    /// SQLite-specific statement of the store; a Postgres store would use `BEGIN`.
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db("begin transaction"))
    }

    // ----- keys --------------------------------------------------------------------------

    /// Stores a key (coordinator, after a ceremony commits; or a node keeping its copy).
    /// Storing the identical key again is a no-op; a different package under the same key id
    /// or npub is [`Error::StoreConflict`].
    pub async fn put_key(
        &self,
        key_id: &KeyId,
        public: &PublicKeyPackage,
        share_version: u32,
        now_ms: u64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_key(&mut tx, key_id, public, share_version, now_ms).await?;
        tx.commit().await.map_err(db("commit"))
    }

    /// The key with this id.
    pub async fn get_key(&self, key_id: &KeyId) -> Result<Option<KeyRecord>> {
        let row = sqlx::query(concat!(select_key!(), " WHERE key_id = $1"))
            .bind(hex::encode(key_id))
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read key"))?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// The key with this npub.
    pub async fn get_key_by_npub(&self, npub: &[u8; 32]) -> Result<Option<KeyRecord>> {
        let row = sqlx::query(concat!(select_key!(), " WHERE npub = $1"))
            .bind(hex::encode(npub))
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read key"))?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// Every key, oldest first.
    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>> {
        let rows = sqlx::query(concat!(select_key!(), " ORDER BY created_at, key_id"))
            .fetch_all(&self.pool)
            .await
            .map_err(db("list keys"))?;
        rows.iter().map(key_from_row).collect()
    }

    /// Marks a key revoked (or active again).
    pub async fn set_key_status(&self, key_id: &KeyId, status: KeyStatus) -> Result<()> {
        let done = sqlx::query("UPDATE keys SET status = $1 WHERE key_id = $2")
            .bind(key_status_name(status))
            .bind(hex::encode(key_id))
            .execute(&self.pool)
            .await
            .map_err(db("update key"))?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound { what: "key" });
        }
        Ok(())
    }

    /// The participants of a key, by identifier.
    pub async fn key_members(&self, key_id: &KeyId) -> Result<Vec<KeyMember>> {
        let rows = sqlx::query(
            "SELECT identifier, node_id, verifying_share, share_version FROM key_members \
             WHERE key_id = $1 ORDER BY identifier",
        )
        .bind(hex::encode(key_id))
        .fetch_all(&self.pool)
        .await
        .map_err(db("read key members"))?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("identifier").map_err(db("decode row"))?;
                let node: Option<String> = r.try_get("node_id").map_err(db("decode row"))?;
                let share: String = r.try_get("verifying_share").map_err(db("decode row"))?;
                let version: i64 = r.try_get("share_version").map_err(db("decode row"))?;
                Ok(KeyMember {
                    identifier: participant(id)?,
                    node_id: node.map(|n| from_hex(&n, "node id")).transpose()?,
                    verifying_share: from_hex(&share, "verifying share")?,
                    share_version: u32::try_from(version).map_err(|_| corrupt("version"))?,
                })
            })
            .collect()
    }

    /// Records which node holds identifier `id` of a key.
    pub async fn assign_member(
        &self,
        key_id: &KeyId,
        id: ParticipantId,
        node_id: &NodeId,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE key_members SET node_id = $1 WHERE key_id = $2 AND identifier = $3",
        )
        .bind(hex::encode(node_id))
        .bind(hex::encode(key_id))
        .bind(i64::from(id.get()))
        .execute(&self.pool)
        .await
        .map_err(db("update key member"))?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound { what: "key member" });
        }
        Ok(())
    }

    // ----- nodes -------------------------------------------------------------------------

    /// Pins a node. Pinning the same node with the same descriptor and HPKE key again is a
    /// no-op; a different descriptor or key under the same node id is
    /// [`Error::StoreConflict`] (remove the node first to re-pin it).
    pub async fn add_node(&self, node: &NodeRecord) -> Result<()> {
        check_field("node descriptor", &node.descriptor, MAX_NODE_FIELD)?;
        opt_field("node address", &node.address, MAX_NODE_FIELD)?;
        opt_field("node label", &node.label, MAX_NODE_FIELD)?;
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO nodes (node_id, descriptor, hpke_pk, address, label, pinned_at, status, \
             cooldown_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (node_id) DO NOTHING",
        )
        .bind(hex::encode(node.node_id))
        .bind(&node.descriptor)
        .bind(hex::encode(node.hpke_pk))
        .bind(&node.address)
        .bind(&node.label)
        .bind(int(node.pinned_at_ms)?)
        .bind(node_status_name(node.status))
        .bind(node.cooldown_until_ms.map(int).transpose()?)
        .execute(&mut *tx)
        .await
        .map_err(db("pin node"))?;
        if inserted.rows_affected() == 0 {
            let row = sqlx::query("SELECT descriptor, hpke_pk FROM nodes WHERE node_id = $1")
                .bind(hex::encode(node.node_id))
                .fetch_one(&mut *tx)
                .await
                .map_err(db("read node"))?;
            let descriptor: Vec<u8> = row.try_get("descriptor").map_err(db("decode row"))?;
            let hpke: String = row.try_get("hpke_pk").map_err(db("decode row"))?;
            if descriptor != node.descriptor || hpke != hex::encode(node.hpke_pk) {
                return Err(Error::StoreConflict { what: "node pin" });
            }
        }
        tx.commit().await.map_err(db("commit"))
    }

    /// The pinned node with this id.
    pub async fn get_node(&self, node_id: &NodeId) -> Result<Option<NodeRecord>> {
        let row = sqlx::query(concat!(select_node!(), " WHERE node_id = $1"))
            .bind(hex::encode(node_id))
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read node"))?;
        row.as_ref().map(node_from_row).transpose()
    }

    /// Every pinned node, in pinning order.
    pub async fn list_nodes(&self) -> Result<Vec<NodeRecord>> {
        let rows = sqlx::query(concat!(select_node!(), " ORDER BY pinned_at, node_id"))
            .fetch_all(&self.pool)
            .await
            .map_err(db("list nodes"))?;
        rows.iter().map(node_from_row).collect()
    }

    /// Unpins a node; returns whether it was pinned.
    pub async fn remove_node(&self, node_id: &NodeId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM nodes WHERE node_id = $1")
            .bind(hex::encode(node_id))
            .execute(&self.pool)
            .await
            .map_err(db("remove node"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets or clears a node's cool-down.
    pub async fn set_node_cooldown(&self, node_id: &NodeId, until_ms: Option<u64>) -> Result<()> {
        let done = sqlx::query("UPDATE nodes SET cooldown_until = $1 WHERE node_id = $2")
            .bind(until_ms.map(int).transpose()?)
            .bind(hex::encode(node_id))
            .execute(&self.pool)
            .await
            .map_err(db("update node"))?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound { what: "node" });
        }
        Ok(())
    }

    // ----- ceremonies --------------------------------------------------------------------

    /// Records a new running ceremony (round 0). An existing id is [`Error::StoreConflict`].
    pub async fn create_ceremony(&self, c: &NewCeremony) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO ceremonies (ceremony_id, kind, key_id, threshold, total, state, round, \
             started_at, deadline_at) VALUES ($1, $2, $3, $4, $5, 'running', 0, $6, $7) \
             ON CONFLICT (ceremony_id) DO NOTHING",
        )
        .bind(hex::encode(c.ceremony_id))
        .bind(kind_name(c.kind))
        .bind(hex::encode(c.key_id))
        .bind(i64::from(c.threshold))
        .bind(i64::from(c.total))
        .bind(int(c.started_at_ms)?)
        .bind(int(c.deadline_at_ms)?)
        .execute(&self.pool)
        .await
        .map_err(db("create ceremony"))?;
        if done.rows_affected() == 0 {
            return Err(Error::StoreConflict { what: "ceremony" });
        }
        Ok(())
    }

    /// The ceremony with this id.
    pub async fn get_ceremony(&self, id: &CeremonyId) -> Result<Option<CeremonyRecord>> {
        let row = sqlx::query(
            "SELECT ceremony_id, kind, key_id, threshold, total, round, started_at, deadline_at, \
             finished_at, outcome, error FROM ceremonies WHERE ceremony_id = $1",
        )
        .bind(hex::encode(id))
        .fetch_optional(&self.pool)
        .await
        .map_err(db("read ceremony"))?;
        let Some(r) = row else { return Ok(None) };
        let g = db("decode row");
        let kind: String = r.try_get("kind").map_err(&g)?;
        let key_id: String = r.try_get("key_id").map_err(&g)?;
        let threshold: i64 = r.try_get("threshold").map_err(&g)?;
        let total: i64 = r.try_get("total").map_err(&g)?;
        let round: i64 = r.try_get("round").map_err(&g)?;
        let started: i64 = r.try_get("started_at").map_err(&g)?;
        let deadline: i64 = r.try_get("deadline_at").map_err(&g)?;
        let finished: Option<i64> = r.try_get("finished_at").map_err(&g)?;
        let outcome: Option<String> = r.try_get("outcome").map_err(&g)?;
        let error: Option<String> = r.try_get("error").map_err(&g)?;
        Ok(Some(CeremonyRecord {
            ceremony: NewCeremony {
                ceremony_id: *id,
                kind: kind_from(&kind)?,
                key_id: from_hex(&key_id, "key id")?,
                threshold: u16::try_from(threshold).map_err(|_| corrupt("threshold"))?,
                total: u16::try_from(total).map_err(|_| corrupt("total"))?,
                started_at_ms: uint(started, "timestamp")?,
                deadline_at_ms: uint(deadline, "timestamp")?,
            },
            round: u8::try_from(round).map_err(|_| corrupt("round"))?,
            outcome: outcome.as_deref().map(outcome_from).transpose()?,
            finished_at_ms: finished.map(|f| uint(f, "timestamp")).transpose()?,
            error,
        }))
    }

    /// Advances a running ceremony's round.
    pub async fn set_ceremony_round(&self, id: &CeremonyId, round: u8) -> Result<()> {
        let done = sqlx::query(
            "UPDATE ceremonies SET round = $1 WHERE ceremony_id = $2 AND state = 'running'",
        )
        .bind(i64::from(round))
        .bind(hex::encode(id))
        .execute(&self.pool)
        .await
        .map_err(db("update ceremony"))?;
        if done.rows_affected() == 0 {
            return Err(self.ceremony_missing_or_closed(id).await);
        }
        Ok(())
    }

    /// Records a ceremony message under `(ceremony, round, from, to)` (spec §8.7). The same
    /// message again is [`Recorded::Duplicate`] (answer with the stored reply); a different
    /// one is [`Error::Equivocation`] naming the sender. With `keep_payload` false (sealed
    /// messages) only the hash is kept. Messages to a finished ceremony are refused
    /// ([`Error::CeremonyClosed`]) unless they are duplicates.
    pub async fn record_ceremony_message(
        &self,
        id: &CeremonyId,
        slot: MessageSlot,
        message: &[u8],
        keep_payload: bool,
        now_ms: u64,
    ) -> Result<Recorded> {
        let MessageSlot { round, from, to } = slot;
        check_field("ceremony message", message, MAX_CEREMONY_MESSAGE)?;
        let digest = sha256_hex(message);
        if let Some(found) = self.message_hash(id, round, from, to).await? {
            return same_message(&found, &digest, round, from, to);
        }
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM ceremonies WHERE ceremony_id = $1")
                .bind(hex::encode(id))
                .fetch_optional(&self.pool)
                .await
                .map_err(db("read ceremony"))?;
        match state.as_deref() {
            None => return Err(Error::NotFound { what: "ceremony" }),
            Some("running") => {}
            Some(_) => return Err(Error::CeremonyClosed),
        }
        let done = sqlx::query(
            "INSERT INTO ceremony_messages (ceremony_id, round, from_id, to_id, sha256, payload, \
             received_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (ceremony_id, round, from_id, to_id) DO NOTHING",
        )
        .bind(hex::encode(id))
        .bind(i64::from(round))
        .bind(i64::from(from))
        .bind(i64::from(to))
        .bind(&digest)
        .bind(keep_payload.then_some(message))
        .bind(int(now_ms)?)
        .execute(&self.pool)
        .await
        .map_err(db("record ceremony message"))?;
        if done.rows_affected() == 1 {
            return Ok(Recorded::New);
        }
        // Another connection recorded one in between.
        let found = self
            .message_hash(id, round, from, to)
            .await?
            .ok_or(Error::Internal {
                reason: "a conflicting ceremony message vanished",
            })?;
        same_message(&found, &digest, round, from, to)
    }

    async fn message_hash(
        &self,
        id: &CeremonyId,
        round: u8,
        from: u16,
        to: u16,
    ) -> Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT sha256 FROM ceremony_messages \
             WHERE ceremony_id = $1 AND round = $2 AND from_id = $3 AND to_id = $4",
        )
        .bind(hex::encode(id))
        .bind(i64::from(round))
        .bind(i64::from(from))
        .bind(i64::from(to))
        .fetch_optional(&self.pool)
        .await
        .map_err(db("read ceremony message"))
    }

    /// The messages of a ceremony (of one round, if given), by round, sender, recipient.
    pub async fn ceremony_messages(
        &self,
        id: &CeremonyId,
        round: Option<u8>,
    ) -> Result<Vec<CeremonyMessage>> {
        let rows = sqlx::query(
            "SELECT round, from_id, to_id, sha256, payload, received_at FROM ceremony_messages \
             WHERE ceremony_id = $1 AND ($2 < 0 OR round = $2) ORDER BY round, from_id, to_id",
        )
        .bind(hex::encode(id))
        .bind(round.map_or(-1, i64::from))
        .fetch_all(&self.pool)
        .await
        .map_err(db("read ceremony messages"))?;
        rows.iter()
            .map(|r| {
                let g = db("decode row");
                let round: i64 = r.try_get("round").map_err(&g)?;
                let from: i64 = r.try_get("from_id").map_err(&g)?;
                let to: i64 = r.try_get("to_id").map_err(&g)?;
                let sha: String = r.try_get("sha256").map_err(&g)?;
                let received: i64 = r.try_get("received_at").map_err(&g)?;
                Ok(CeremonyMessage {
                    round: u8::try_from(round).map_err(|_| corrupt("round"))?,
                    from: u16::try_from(from).map_err(|_| corrupt("identifier"))?,
                    to: u16::try_from(to).map_err(|_| corrupt("identifier"))?,
                    sha256: from_hex(&sha, "message hash")?,
                    payload: r.try_get("payload").map_err(&g)?,
                    received_at_ms: uint(received, "timestamp")?,
                })
            })
            .collect()
    }

    /// Ends a running ceremony. Finishing one that already finished is
    /// [`Error::CeremonyClosed`].
    pub async fn finish_ceremony(
        &self,
        id: &CeremonyId,
        outcome: CeremonyOutcome,
        error: Option<&str>,
        now_ms: u64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        finish_in(&mut tx, id, outcome, error, now_ms).await?;
        tx.commit().await.map_err(db("commit"))
    }

    /// Commits a ceremony in one transaction: stores the agreed key (a new key for DKG and
    /// import; the new public key package and `share_version` for refresh and repair, with
    /// the members' verifying shares) and marks the ceremony committed. Nothing changes if
    /// any step fails.
    pub async fn commit_ceremony(
        &self,
        id: &CeremonyId,
        public: &PublicKeyPackage,
        share_version: u32,
        now_ms: u64,
    ) -> Result<()> {
        let record = self
            .get_ceremony(id)
            .await?
            .ok_or(Error::NotFound { what: "ceremony" })?;
        let key_id = record.ceremony.key_id;
        let group = public.group_key();
        if matches!(
            record.ceremony.kind,
            CeremonyKind::Dkg | CeremonyKind::Import
        ) && (group.threshold() != record.ceremony.threshold
            || group.shares() != record.ceremony.total)
        {
            return Err(Error::Mismatch {
                reason: "the key's threshold or share count differs from the ceremony's",
            });
        }
        let mut tx = self.begin().await?;
        finish_in(&mut tx, id, CeremonyOutcome::Committed, None, now_ms).await?;
        match record.ceremony.kind {
            CeremonyKind::Dkg | CeremonyKind::Import => {
                insert_key(&mut tx, &key_id, public, share_version, now_ms).await?;
            }
            CeremonyKind::Refresh | CeremonyKind::Repair => {
                replace_key_package(&mut tx, &key_id, public, share_version).await?;
            }
        }
        tx.commit().await.map_err(db("commit"))
    }

    async fn ceremony_missing_or_closed(&self, id: &CeremonyId) -> Error {
        match sqlx::query_scalar::<_, String>("SELECT state FROM ceremonies WHERE ceremony_id = $1")
            .bind(hex::encode(id))
            .fetch_optional(&self.pool)
            .await
        {
            Ok(None) => Error::NotFound { what: "ceremony" },
            Ok(Some(_)) => Error::CeremonyClosed,
            Err(e) => db("read ceremony")(e),
        }
    }

    // ----- audit -------------------------------------------------------------------------

    /// Appends an audit record; returns its sequence number.
    pub async fn audit_append(&self, entry: &AuditEntry) -> Result<u64> {
        check_field("audit actor", entry.actor.as_bytes(), MAX_AUDIT_FIELD)?;
        check_field("audit action", entry.action.as_bytes(), MAX_AUDIT_FIELD)?;
        for (what, value) in [
            ("audit client", &entry.client_pubkey),
            ("audit method", &entry.method),
            ("audit event id", &entry.event_id),
            ("audit peer", &entry.peer),
            ("audit decision", &entry.decision),
            ("audit reason", &entry.reason),
            ("audit error code", &entry.error_code),
        ] {
            opt_field(what, value, MAX_AUDIT_FIELD)?;
        }
        let nodes = serde_json::to_string(&entry.nodes).map_err(|_| Error::Internal {
            reason: "a list of strings does not serialize",
        })?;
        check_field("audit nodes", nodes.as_bytes(), MAX_AUDIT_FIELD * 4)?;
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO audit_log (ts, actor, action, key_id, client_pubkey, method, kind, \
             event_id, peer, decision, reason, nodes, latency_ms, error_code) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING seq",
        )
        .bind(int(entry.ts_ms)?)
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(entry.key_id.map(hex::encode))
        .bind(&entry.client_pubkey)
        .bind(&entry.method)
        .bind(entry.kind.map(i64::from))
        .bind(&entry.event_id)
        .bind(&entry.peer)
        .bind(&entry.decision)
        .bind(&entry.reason)
        .bind(nodes)
        .bind(entry.latency_ms.map(int).transpose()?)
        .bind(&entry.error_code)
        .fetch_one(&self.pool)
        .await
        .map_err(db("append audit record"))?;
        uint(seq, "audit sequence number")
    }

    /// Audit records with a sequence number above `after_seq`, oldest first: at most `limit`
    /// (0 = [`AUDIT_PAGE_SIZE`]; capped at [`MAX_AUDIT_PAGE`]). Page by passing the last
    /// `seq` seen.
    pub async fn audit_list(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        let limit = match limit {
            0 => AUDIT_PAGE_SIZE,
            n => n.min(MAX_AUDIT_PAGE),
        };
        let rows = sqlx::query(
            "SELECT seq, ts, actor, action, key_id, client_pubkey, method, kind, event_id, peer, \
             decision, reason, nodes, latency_ms, error_code FROM audit_log WHERE seq > $1 \
             ORDER BY seq LIMIT $2",
        )
        .bind(int(after_seq)?)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list audit records"))?;
        rows.iter().map(audit_from_row).collect()
    }

    // ----- KEKs --------------------------------------------------------------------------

    /// Records a KEK (idempotent).
    pub async fn register_kek(
        &self,
        kek_id: &str,
        provider: &str,
        label: &str,
        now_ms: u64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO keks (kek_id, provider, label, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kek_id) DO NOTHING",
        )
        .bind(kek_id)
        .bind(provider)
        .bind(label)
        .bind(int(now_ms)?)
        .execute(&self.pool)
        .await
        .map_err(db("register KEK"))?;
        Ok(())
    }

    /// Every KEK recorded.
    pub async fn list_keks(&self) -> Result<Vec<KekRecord>> {
        let rows = sqlx::query(
            "SELECT kek_id, provider, label, created_at, retired_at FROM keks \
             ORDER BY created_at, kek_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("list KEKs"))?;
        rows.iter()
            .map(|r| {
                let g = db("decode row");
                let created: i64 = r.try_get("created_at").map_err(&g)?;
                let retired: Option<i64> = r.try_get("retired_at").map_err(&g)?;
                Ok(KekRecord {
                    kek_id: r.try_get("kek_id").map_err(&g)?,
                    provider: r.try_get("provider").map_err(&g)?,
                    label: r.try_get("label").map_err(&g)?,
                    created_at_ms: uint(created, "timestamp")?,
                    retired_at_ms: retired.map(|t| uint(t, "timestamp")).transpose()?,
                })
            })
            .collect()
    }

    // ----- node shares (sealed) -----------------------------------------------------------

    /// Stores a sealed share. The same row again is a no-op; a different blob for the same
    /// (node, key, version) is [`Error::StoreConflict`]: nothing is ever overwritten here.
    pub async fn put_share(&self, row: &ShareRow) -> Result<()> {
        check_field("sealed blob", &row.sealed_blob, MAX_SEALED_BLOB)?;
        check_field(
            "public key package",
            &row.public_key_package,
            MAX_ENCODED_LEN,
        )?;
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "INSERT INTO node_shares (node_id, key_id, share_version, identifier, sealed_blob, \
             kek_id, public_key_package, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (node_id, key_id, share_version) DO NOTHING",
        )
        .bind(hex::encode(row.node_id))
        .bind(hex::encode(row.key_id))
        .bind(i64::from(row.share_version))
        .bind(i64::from(row.identifier.get()))
        .bind(&row.sealed_blob)
        .bind(&row.kek_id)
        .bind(&row.public_key_package)
        .bind(share_status_name(row.status))
        .bind(int(row.created_at_ms)?)
        .execute(&mut *tx)
        .await
        .map_err(db("store share"))?;
        if done.rows_affected() == 0 {
            let existing = share_in(&mut tx, &row.node_id, &row.key_id, row.share_version)
                .await?
                .ok_or(Error::Internal {
                    reason: "a conflicting share row vanished",
                })?;
            if existing.sealed_blob != row.sealed_blob
                || existing.public_key_package != row.public_key_package
                || existing.status != row.status
            {
                return Err(Error::StoreConflict {
                    what: "sealed share of this version",
                });
            }
        }
        tx.commit().await.map_err(db("commit"))
    }

    /// The sealed share of `node` for `key` at `version`.
    pub async fn get_share(
        &self,
        node_id: &NodeId,
        key_id: &KeyId,
        version: u32,
    ) -> Result<Option<ShareRow>> {
        let mut tx = self.begin().await?;
        let row = share_in(&mut tx, node_id, key_id, version).await?;
        tx.commit().await.map_err(db("commit"))?;
        Ok(row)
    }

    /// The active sealed share of `node` for `key` (the highest active version).
    pub async fn active_share(&self, node_id: &NodeId, key_id: &KeyId) -> Result<Option<ShareRow>> {
        let row = sqlx::query(concat!(
            select_share!(),
            " WHERE node_id = $1 AND key_id = $2 AND status = 'active' \
             ORDER BY share_version DESC LIMIT 1"
        ))
        .bind(hex::encode(node_id))
        .bind(hex::encode(key_id))
        .fetch_optional(&self.pool)
        .await
        .map_err(db("read share"))?;
        row.as_ref().map(share_from_row).transpose()
    }

    /// Every sealed share of `node` (all keys, versions and statuses).
    pub async fn list_shares(&self, node_id: &NodeId) -> Result<Vec<ShareRow>> {
        let rows = sqlx::query(concat!(
            select_share!(),
            " WHERE node_id = $1 ORDER BY key_id, share_version"
        ))
        .bind(hex::encode(node_id))
        .fetch_all(&self.pool)
        .await
        .map_err(db("list shares"))?;
        rows.iter().map(share_from_row).collect()
    }

    /// Deletes a **pending** share (ceremony aborted); returns whether one was deleted.
    pub async fn delete_pending_share(
        &self,
        node_id: &NodeId,
        key_id: &KeyId,
        version: u32,
    ) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM node_shares WHERE node_id = $1 AND key_id = $2 AND share_version = $3 \
             AND status = 'pending'",
        )
        .bind(hex::encode(node_id))
        .bind(hex::encode(key_id))
        .bind(i64::from(version))
        .execute(&self.pool)
        .await
        .map_err(db("delete share"))?;
        Ok(done.rows_affected() > 0)
    }
}

fn same_message(found: &str, digest: &str, round: u8, from: u16, to: u16) -> Result<Recorded> {
    if found == digest {
        Ok(Recorded::Duplicate)
    } else {
        Err(Error::Equivocation { from, round, to })
    }
}

fn participant(id: i64) -> Result<ParticipantId> {
    u16::try_from(id)
        .ok()
        .and_then(|v| ParticipantId::new(v).ok())
        .ok_or_else(|| corrupt("identifier"))
}

async fn finish_in(
    tx: &mut Transaction<'static, Sqlite>,
    id: &CeremonyId,
    outcome: CeremonyOutcome,
    error: Option<&str>,
    now_ms: u64,
) -> Result<()> {
    if let Some(e) = error {
        check_field("ceremony error", e.as_bytes(), MAX_AUDIT_FIELD)?;
    }
    let done = sqlx::query(
        "UPDATE ceremonies SET state = 'finished', outcome = $1, error = $2, finished_at = $3 \
         WHERE ceremony_id = $4 AND state = 'running'",
    )
    .bind(outcome_name(outcome))
    .bind(error)
    .bind(int(now_ms)?)
    .bind(hex::encode(id))
    .execute(&mut **tx)
    .await
    .map_err(db("finish ceremony"))?;
    if done.rows_affected() == 0 {
        let exists: Option<String> =
            sqlx::query_scalar("SELECT state FROM ceremonies WHERE ceremony_id = $1")
                .bind(hex::encode(id))
                .fetch_optional(&mut **tx)
                .await
                .map_err(db("read ceremony"))?;
        return Err(match exists {
            None => Error::NotFound { what: "ceremony" },
            Some(_) => Error::CeremonyClosed,
        });
    }
    Ok(())
}

async fn insert_key(
    tx: &mut Transaction<'static, Sqlite>,
    key_id: &KeyId,
    public: &PublicKeyPackage,
    share_version: u32,
    now_ms: u64,
) -> Result<()> {
    let group = public.group_key();
    let encoded = public.serialize()?;
    let fingerprint = hex::encode(public.fingerprint()?);
    let done = sqlx::query(
        "INSERT INTO keys (key_id, npub, group_key, ciphersuite, threshold, total, origin, \
         tweaked, public_key_package, pkp_sha256, share_version, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'active', $12) \
         ON CONFLICT DO NOTHING",
    )
    .bind(hex::encode(key_id))
    .bind(hex::encode(group.npub()))
    .bind(hex::encode(group.verifying_key()))
    .bind(CIPHERSUITE)
    .bind(i64::from(group.threshold()))
    .bind(i64::from(group.shares()))
    .bind(origin_name(group.origin()))
    .bind(i64::from(group.origin() == KeyOrigin::Dkg))
    .bind(&encoded)
    .bind(&fingerprint)
    .bind(i64::from(share_version))
    .bind(int(now_ms)?)
    .execute(&mut **tx)
    .await
    .map_err(db("store key"))?;
    if done.rows_affected() == 0 {
        // Either the key id or the npub exists: identical is fine, anything else conflicts.
        let existing: Option<(String, String, i64)> =
            sqlx::query_as("SELECT pkp_sha256, npub, share_version FROM keys WHERE key_id = $1")
                .bind(hex::encode(key_id))
                .fetch_optional(&mut **tx)
                .await
                .map_err(db("read key"))?;
        return match existing {
            Some((fp, _, version)) if fp == fingerprint && version == i64::from(share_version) => {
                Ok(())
            }
            Some(_) => Err(Error::StoreConflict { what: "key id" }),
            None => Err(Error::StoreConflict {
                what: "key with this npub",
            }),
        };
    }
    write_members(tx, key_id, public, share_version).await
}

async fn replace_key_package(
    tx: &mut Transaction<'static, Sqlite>,
    key_id: &KeyId,
    public: &PublicKeyPackage,
    share_version: u32,
) -> Result<()> {
    let npub = hex::encode(public.npub());
    let done = sqlx::query(
        "UPDATE keys SET public_key_package = $1, pkp_sha256 = $2, share_version = $3, \
         threshold = $4, total = $5 WHERE key_id = $6 AND npub = $7",
    )
    .bind(public.serialize()?)
    .bind(hex::encode(public.fingerprint()?))
    .bind(i64::from(share_version))
    .bind(i64::from(public.threshold()))
    .bind(i64::from(public.group_key().shares()))
    .bind(hex::encode(key_id))
    .bind(&npub)
    .execute(&mut **tx)
    .await
    .map_err(db("update key"))?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound {
            what: "key with this id and npub",
        });
    }
    // Members not in the new package were removed from the key (subset refresh).
    let ids: Vec<i64> = public
        .participants()
        .iter()
        .map(|p| i64::from(p.get()))
        .collect();
    let existing: Vec<i64> =
        sqlx::query_scalar("SELECT identifier FROM key_members WHERE key_id = $1")
            .bind(hex::encode(key_id))
            .fetch_all(&mut **tx)
            .await
            .map_err(db("read key members"))?;
    for gone in existing.iter().filter(|id| !ids.contains(id)) {
        sqlx::query("DELETE FROM key_members WHERE key_id = $1 AND identifier = $2")
            .bind(hex::encode(key_id))
            .bind(gone)
            .execute(&mut **tx)
            .await
            .map_err(db("update key members"))?;
    }
    write_members(tx, key_id, public, share_version).await
}

async fn write_members(
    tx: &mut Transaction<'static, Sqlite>,
    key_id: &KeyId,
    public: &PublicKeyPackage,
    share_version: u32,
) -> Result<()> {
    for &id in public.participants() {
        let share = public.verifying_share(id).ok_or(Error::Internal {
            reason: "a participant without a verifying share",
        })?;
        sqlx::query(
            "INSERT INTO key_members (key_id, identifier, verifying_share, share_version) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (key_id, identifier) DO UPDATE SET \
             verifying_share = excluded.verifying_share, share_version = excluded.share_version",
        )
        .bind(hex::encode(key_id))
        .bind(i64::from(id.get()))
        .bind(hex::encode(share))
        .bind(i64::from(share_version))
        .execute(&mut **tx)
        .await
        .map_err(db("store key members"))?;
    }
    Ok(())
}

/// Decodes a row of `audit_log` (every column).
fn audit_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<AuditRecord> {
    let g = db("decode row");
    let seq: i64 = r.try_get("seq").map_err(&g)?;
    let ts: i64 = r.try_get("ts").map_err(&g)?;
    let key_id: Option<String> = r.try_get("key_id").map_err(&g)?;
    let kind: Option<i64> = r.try_get("kind").map_err(&g)?;
    let nodes: Option<String> = r.try_get("nodes").map_err(&g)?;
    let latency: Option<i64> = r.try_get("latency_ms").map_err(&g)?;
    Ok(AuditRecord {
        seq: uint(seq, "sequence number")?,
        entry: AuditEntry {
            ts_ms: uint(ts, "timestamp")?,
            actor: r.try_get("actor").map_err(&g)?,
            action: r.try_get("action").map_err(&g)?,
            key_id: key_id.map(|k| from_hex(&k, "key id")).transpose()?,
            client_pubkey: r.try_get("client_pubkey").map_err(&g)?,
            method: r.try_get("method").map_err(&g)?,
            kind: kind
                .map(|k| u32::try_from(k).map_err(|_| corrupt("kind")))
                .transpose()?,
            event_id: r.try_get("event_id").map_err(&g)?,
            peer: r.try_get("peer").map_err(&g)?,
            decision: r.try_get("decision").map_err(&g)?,
            reason: r.try_get("reason").map_err(&g)?,
            nodes: match nodes {
                Some(n) => serde_json::from_str(&n).map_err(|_| corrupt("audit nodes"))?,
                None => Vec::new(),
            },
            latency_ms: latency.map(|l| uint(l, "latency")).transpose()?,
            error_code: r.try_get("error_code").map_err(&g)?,
        },
    })
}

fn key_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<KeyRecord> {
    let g = db("decode row");
    let key_id: String = r.try_get("key_id").map_err(&g)?;
    let npub: String = r.try_get("npub").map_err(&g)?;
    let threshold: i64 = r.try_get("threshold").map_err(&g)?;
    let total: i64 = r.try_get("total").map_err(&g)?;
    let pkp: Vec<u8> = r.try_get("public_key_package").map_err(&g)?;
    let version: i64 = r.try_get("share_version").map_err(&g)?;
    let status: String = r.try_get("status").map_err(&g)?;
    let created: i64 = r.try_get("created_at").map_err(&g)?;
    let public = PublicKeyPackage::deserialize(&pkp).map_err(|_| corrupt("public key package"))?;
    let npub: [u8; 32] = from_hex(&npub, "npub")?;
    if public.npub() != npub {
        return Err(corrupt("npub (does not match the public key package)"));
    }
    Ok(KeyRecord {
        key_id: from_hex(&key_id, "key id")?,
        npub,
        threshold: u16::try_from(threshold).map_err(|_| corrupt("threshold"))?,
        total: u16::try_from(total).map_err(|_| corrupt("total"))?,
        ciphersuite: r.try_get("ciphersuite").map_err(&g)?,
        origin: public.origin(),
        public,
        share_version: u32::try_from(version).map_err(|_| corrupt("share version"))?,
        status: match status.as_str() {
            "active" => KeyStatus::Active,
            "revoked" => KeyStatus::Revoked,
            _ => return Err(corrupt("key status")),
        },
        created_at_ms: uint(created, "timestamp")?,
    })
}

fn node_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<NodeRecord> {
    let g = db("decode row");
    let node_id: String = r.try_get("node_id").map_err(&g)?;
    let hpke: String = r.try_get("hpke_pk").map_err(&g)?;
    let pinned: i64 = r.try_get("pinned_at").map_err(&g)?;
    let status: String = r.try_get("status").map_err(&g)?;
    let cooldown: Option<i64> = r.try_get("cooldown_until").map_err(&g)?;
    Ok(NodeRecord {
        node_id: from_hex(&node_id, "node id")?,
        descriptor: r.try_get("descriptor").map_err(&g)?,
        hpke_pk: from_hex(&hpke, "HPKE key")?,
        address: r.try_get("address").map_err(&g)?,
        label: r.try_get("label").map_err(&g)?,
        pinned_at_ms: uint(pinned, "timestamp")?,
        status: match status.as_str() {
            "active" => NodeStatus::Active,
            "disabled" => NodeStatus::Disabled,
            _ => return Err(corrupt("node status")),
        },
        cooldown_until_ms: cooldown.map(|c| uint(c, "timestamp")).transpose()?,
    })
}

pub(crate) fn share_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<ShareRow> {
    let g = db("decode row");
    let node_id: String = r.try_get("node_id").map_err(&g)?;
    let key_id: String = r.try_get("key_id").map_err(&g)?;
    let version: i64 = r.try_get("share_version").map_err(&g)?;
    let identifier: i64 = r.try_get("identifier").map_err(&g)?;
    let status: String = r.try_get("status").map_err(&g)?;
    let created: i64 = r.try_get("created_at").map_err(&g)?;
    Ok(ShareRow {
        node_id: from_hex(&node_id, "node id")?,
        key_id: from_hex(&key_id, "key id")?,
        share_version: u32::try_from(version).map_err(|_| corrupt("share version"))?,
        identifier: participant(identifier)?,
        sealed_blob: r.try_get("sealed_blob").map_err(&g)?,
        kek_id: r.try_get("kek_id").map_err(&g)?,
        public_key_package: r.try_get("public_key_package").map_err(&g)?,
        status: share_status_from(&status)?,
        created_at_ms: uint(created, "timestamp")?,
    })
}

pub(crate) async fn share_in(
    tx: &mut Transaction<'static, Sqlite>,
    node_id: &NodeId,
    key_id: &KeyId,
    version: u32,
) -> Result<Option<ShareRow>> {
    let row = sqlx::query(concat!(
        select_share!(),
        " WHERE node_id = $1 AND key_id = $2 AND share_version = $3"
    ))
    .bind(hex::encode(node_id))
    .bind(hex::encode(key_id))
    .bind(i64::from(version))
    .fetch_optional(&mut **tx)
    .await
    .map_err(db("read share"))?;
    row.as_ref().map(share_from_row).transpose()
}

/// Whether a connection error is SQLite's "database is locked/busy".
fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            // SQLITE_BUSY, SQLITE_LOCKED and their extended codes.
            matches!(d.code().as_deref(), Some("5" | "6" | "261" | "262" | "517"))
        }
        _ => false,
    }
}

/// Creates the database file with mode 0600 if it does not exist yet: SQLite would create it
/// 0644 minus umask, and its `-wal`/`-shm` files copy the main file's mode.
fn create_private_file(path: &Path) -> Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if let Ok(meta) = std::fs::metadata(path) {
                let mode = meta.permissions().mode() & 0o7777;
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        mode = format_args!("{mode:04o}"),
                        "signer store is accessible to group or others; run chmod 600 on it"
                    );
                }
            }
            Ok(())
        }
        Err(e) => Err(Error::Storage {
            op: "create",
            reason: format!("{}: {e}", path.display()),
        }),
    }
}
