//! A replay store in SQLite (feature `sqlx-replay`), shared by several server instances
//! behind one origin (B.7): they open the same database file and refuse each other's
//! replays.
//!
//! One table, `keyline_http_replay`, with the primary key (namespace, public key, nonce) as
//! the unique constraint. [`SqliteReplayStore`] checks and inserts inside one
//! `BEGIN IMMEDIATE` transaction (the write lock is taken first, so two instances cannot both
//! see a nonce as new; the unique constraint is the backstop), deletes expired entries in the
//! same transaction, and applies the same bounds and 429 semantics as
//! [`MemoryReplayCache`](super::MemoryReplayCache): at most [`ReplayLimits::capacity`] live
//! entries and [`ReplayLimits::per_key`] per key, live entries never evicted, `Retry-After`
//! = seconds until the oldest relevant entry expires. A database failure is
//! [`Error::Storage`] (500), never an acceptance.

use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::{ReplayFuture, ReplayKey, ReplayLimits, ReplayStore};
use crate::error::{AuthFailure, Error, Result};
use crate::limits::{SQLITE_REPLAY_BUSY_TIMEOUT as BUSY_TIMEOUT, SQLITE_REPLAY_CONNECTIONS};

const SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS keyline_http_replay (
        namespace TEXT NOT NULL,
        public_key BLOB NOT NULL,
        nonce TEXT NOT NULL,
        retain_until INTEGER NOT NULL,
        PRIMARY KEY (namespace, public_key, nonce)
    ) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS keyline_http_replay_expiry
        ON keyline_http_replay (retain_until)",
    "CREATE INDEX IF NOT EXISTS keyline_http_replay_owner
        ON keyline_http_replay (namespace, public_key, retain_until)",
];

fn storage(op: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| Error::Storage(format!("replay store, {op}: {e}"))
}

fn int(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

fn retry_after(oldest: Option<i64>, now: u64) -> Error {
    let oldest = oldest.and_then(|t| u64::try_from(t).ok()).unwrap_or(now);
    Error::ReplayCacheFull {
        retry_after: oldest.saturating_sub(now).max(1),
    }
}

/// The SQLite [`ReplayStore`]. Cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct SqliteReplayStore {
    pool: SqlitePool,
    limits: ReplayLimits,
}

impl SqliteReplayStore {
    /// Opens (creating if needed) the database at `path` with the default bounds.
    pub async fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, ReplayLimits::default()).await
    }

    /// Opens (creating if needed) the database at `path` with `limits` (each at least 1), in
    /// WAL mode, waiting up to
    /// [`SQLITE_REPLAY_BUSY_TIMEOUT`](crate::limits::SQLITE_REPLAY_BUSY_TIMEOUT) for another
    /// instance's lock.
    pub async fn open_with(path: &Path, limits: ReplayLimits) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(BUSY_TIMEOUT);
        let pool_options = SqlitePoolOptions::new().max_connections(SQLITE_REPLAY_CONNECTIONS);
        // Switching a new database to WAL takes a lock SQLite does not wait for: two
        // instances opening the file at once may see "busy", so retry until the timeout.
        let deadline = Instant::now() + BUSY_TIMEOUT;
        let pool = loop {
            match pool_options.clone().connect_with(options.clone()).await {
                Ok(pool) => break pool,
                Err(sqlx::Error::Database(e))
                    if e.message().contains("locked") && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(storage("open")(e)),
            }
        };
        Self::from_pool(pool, limits).await
    }

    /// A store on an existing pool (creating the table if needed).
    pub async fn from_pool(pool: SqlitePool, limits: ReplayLimits) -> Result<Self> {
        for statement in SCHEMA {
            sqlx::query(statement)
                .execute(&pool)
                .await
                .map_err(storage("create schema"))?;
        }
        Ok(Self {
            pool,
            limits: ReplayLimits {
                capacity: limits.capacity.max(1),
                per_key: limits.per_key.max(1),
            },
        })
    }

    /// The bounds in force.
    pub fn limits(&self) -> ReplayLimits {
        self.limits
    }

    /// Deletes every entry whose `retain_until` is at or before `now`; returns how many.
    pub async fn purge(&self, now: u64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM keyline_http_replay WHERE retain_until <= ?")
            .bind(int(now))
            .execute(&self.pool)
            .await
            .map_err(storage("purge"))?;
        Ok(done.rows_affected())
    }

    /// Live entries at `now`.
    pub async fn len(&self, now: u64) -> Result<u64> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM keyline_http_replay WHERE retain_until > ?")
                .bind(int(now))
                .fetch_one(&self.pool)
                .await
                .map_err(storage("count"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn check(&self, key: ReplayKey, retain_until: u64, now: u64) -> Result<()> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(storage("begin"))?;
        sqlx::query("DELETE FROM keyline_http_replay WHERE retain_until <= ?")
            .bind(int(now))
            .execute(&mut *tx)
            .await
            .map_err(storage("expire"))?;
        let outcome = self.decide(&mut tx, &key, retain_until, now).await;
        // Commit the expiry cleanup (and the insert, if any) whatever the outcome.
        tx.commit().await.map_err(storage("commit"))?;
        outcome
    }

    async fn decide(
        &self,
        tx: &mut sqlx::SqliteConnection,
        key: &ReplayKey,
        retain_until: u64,
        now: u64,
    ) -> Result<()> {
        let seen: Option<i64> = sqlx::query_scalar(
            "SELECT retain_until FROM keyline_http_replay
             WHERE namespace = ? AND public_key = ? AND nonce = ?",
        )
        .bind(key.namespace)
        .bind(&key.public_key[..])
        .bind(&key.nonce)
        .fetch_optional(&mut *tx)
        .await
        .map_err(storage("look up"))?;
        if seen.is_some() {
            return Err(AuthFailure::Replay.into());
        }
        let (per_key, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(retain_until) FROM keyline_http_replay
             WHERE namespace = ? AND public_key = ?",
        )
        .bind(key.namespace)
        .bind(&key.public_key[..])
        .fetch_one(&mut *tx)
        .await
        .map_err(storage("count per key"))?;
        if usize::try_from(per_key).unwrap_or(usize::MAX) >= self.limits.per_key {
            return Err(retry_after(oldest, now));
        }
        let (total, oldest): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MIN(retain_until) FROM keyline_http_replay")
                .fetch_one(&mut *tx)
                .await
                .map_err(storage("count"))?;
        if usize::try_from(total).unwrap_or(usize::MAX) >= self.limits.capacity {
            return Err(retry_after(oldest, now));
        }
        if retain_until <= now {
            // Already outside any window: nothing to remember (freshness rejects it anyway).
            return Ok(());
        }
        let inserted = sqlx::query(
            "INSERT INTO keyline_http_replay (namespace, public_key, nonce, retain_until)
             VALUES (?, ?, ?, ?)",
        )
        .bind(key.namespace)
        .bind(&key.public_key[..])
        .bind(&key.nonce)
        .bind(int(retain_until))
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(AuthFailure::Replay.into())
            }
            Err(e) => Err(storage("insert")(e)),
        }
    }
}

impl ReplayStore for SqliteReplayStore {
    fn check_and_insert(&self, key: ReplayKey, retain_until: u64, now: u64) -> ReplayFuture<'_> {
        Box::pin(self.check(key, retain_until, now))
    }
}
