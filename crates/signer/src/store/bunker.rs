//! The bunker's tables (spec §9, §12): connect secrets (hashed, single use), connections,
//! grants, approvals, the relay list, and cap counting over the audit log.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{AuditRecord, Store, audit_from_row, corrupt, db, from_hex, int, sha256_hex, uint};
use crate::bunker::policy::{Constraints, Decision, Grant, MAX_GRANTS, Usage};
use crate::limits::{MAX_AUDIT_PAGE, MAX_RELAY_URL_LEN, MAX_URI_RELAYS};
use crate::wire::KeyId;
use crate::{Error, Result};

/// A NIP-46 client connection (spec §12.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The client's x-only key.
    pub client: [u8; 32],
    /// The user key it is bound to.
    pub key_id: KeyId,
    /// `bunker` (the client used a bunker URI) or `nostrconnect`.
    pub origin: String,
    /// Display hints from the client (unauthenticated).
    pub name: Option<String>,
    /// Display hint.
    pub url: Option<String>,
    /// Display hint.
    pub image: Option<String>,
    /// The connection's own relays (`nostrconnect://`), else empty.
    pub relays: Vec<String>,
    /// `nip44` or `nip04` (the transport the client last used).
    pub encryption: Option<String>,
    /// When it connected (Unix ms).
    pub connected_at_ms: u64,
    /// Last request (Unix ms).
    pub last_seen_at_ms: Option<u64>,
    /// When it logged out.
    pub logged_out_at_ms: Option<u64>,
    /// When the operator revoked it.
    pub revoked_at_ms: Option<u64>,
}

impl Connection {
    /// Connected: neither logged out nor revoked.
    pub fn is_active(&self) -> bool {
        self.logged_out_at_ms.is_none() && self.revoked_at_ms.is_none()
    }
}

/// What consuming a connect secret found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretUse {
    /// Consumed now; the template minted with it, if any.
    Consumed {
        /// The template name.
        template: Option<String>,
    },
    /// Consumed before (`secret already used`), by this client (hex).
    AlreadyUsed {
        /// The client that consumed it.
        by: Option<String>,
    },
    /// Never minted, or its unused lifetime ran out.
    Unknown,
}

/// A pending or decided approval (spec §3.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRecord {
    /// 128 random bits, base64url.
    pub approval_id: String,
    /// The client.
    pub client: [u8; 32],
    /// The NIP-46 request id.
    pub request_id: String,
    /// The method.
    pub method: String,
    /// The kind (`sign_event`).
    pub kind: Option<u16>,
    /// What the operator is shown (JSON).
    pub summary: serde_json::Value,
    /// Unix ms.
    pub created_at_ms: u64,
    /// Unix ms.
    pub expires_at_ms: u64,
    /// When decided.
    pub decided_at_ms: Option<u64>,
    /// `allow_once`, `allow_always`, `allow_for`, `deny`, `timeout`, `cancelled`.
    pub decision: Option<String>,
}

fn connection_from_row(r: &SqliteRow) -> Result<Connection> {
    let g = db("decode row");
    let client: String = r.try_get("client_pubkey").map_err(&g)?;
    let key_id: String = r.try_get("key_id").map_err(&g)?;
    let relays: Option<String> = r.try_get("relays").map_err(&g)?;
    let opt = |name: &str| -> Result<Option<u64>> {
        let v: Option<i64> = r.try_get(name).map_err(&g)?;
        v.map(|v| uint(v, "timestamp")).transpose()
    };
    Ok(Connection {
        client: from_hex(&client, "client pubkey")?,
        key_id: from_hex(&key_id, "key id")?,
        origin: r.try_get("origin").map_err(&g)?,
        name: r.try_get("name").map_err(&g)?,
        url: r.try_get("url").map_err(&g)?,
        image: r.try_get("image").map_err(&g)?,
        relays: match relays {
            Some(text) => serde_json::from_str(&text).map_err(|_| corrupt("relay list"))?,
            None => Vec::new(),
        },
        encryption: r.try_get("encryption").map_err(&g)?,
        connected_at_ms: uint(r.try_get("connected_at").map_err(&g)?, "timestamp")?,
        last_seen_at_ms: opt("last_seen_at")?,
        logged_out_at_ms: opt("logged_out_at")?,
        revoked_at_ms: opt("revoked_at")?,
    })
}

fn grant_from_row(r: &SqliteRow) -> Result<Grant> {
    let g = db("decode row");
    let kind: Option<i64> = r.try_get("kind").map_err(&g)?;
    let decision: String = r.try_get("decision").map_err(&g)?;
    let constraints: Option<String> = r.try_get("constraints").map_err(&g)?;
    let expires: Option<i64> = r.try_get("expires_at").map_err(&g)?;
    let cap = |name: &str| -> Result<Option<u32>> {
        let v: Option<i64> = r.try_get(name).map_err(&g)?;
        v.map(|v| u32::try_from(v).map_err(|_| corrupt("cap")))
            .transpose()
    };
    Ok(Grant {
        method: r.try_get("method").map_err(&g)?,
        kind: kind
            .map(|k| u16::try_from(k).map_err(|_| corrupt("kind")))
            .transpose()?,
        decision: Decision::from_name(&decision).ok_or_else(|| corrupt("grant decision"))?,
        expires_at: expires.map(|e| uint(e, "expiry")).transpose()?,
        per_minute: cap("per_minute")?,
        per_day: cap("per_day")?,
        constraints: match constraints {
            Some(text) => serde_json::from_str(&text).map_err(|_| corrupt("grant constraints"))?,
            None => Constraints::default(),
        },
    })
}

fn approval_from_row(r: &SqliteRow) -> Result<ApprovalRecord> {
    let g = db("decode row");
    let client: String = r.try_get("client_pubkey").map_err(&g)?;
    let kind: Option<i64> = r.try_get("kind").map_err(&g)?;
    let summary: Option<String> = r.try_get("summary").map_err(&g)?;
    let decided: Option<i64> = r.try_get("decided_at").map_err(&g)?;
    Ok(ApprovalRecord {
        approval_id: r.try_get("approval_id").map_err(&g)?,
        client: from_hex(&client, "client pubkey")?,
        request_id: r.try_get("request_id").map_err(&g)?,
        method: r.try_get("method").map_err(&g)?,
        kind: kind
            .map(|k| u16::try_from(k).map_err(|_| corrupt("kind")))
            .transpose()?,
        summary: summary
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Null),
        created_at_ms: uint(r.try_get("created_at").map_err(&g)?, "timestamp")?,
        expires_at_ms: uint(r.try_get("expires_at").map_err(&g)?, "timestamp")?,
        decided_at_ms: decided.map(|d| uint(d, "timestamp")).transpose()?,
        decision: r.try_get("decision").map_err(&g)?,
    })
}

fn check_relays(relays: &[String]) -> Result<String> {
    if relays.len() > MAX_URI_RELAYS || relays.iter().any(|r| r.len() > MAX_RELAY_URL_LEN) {
        return Err(Error::params("too many or too long relay URLs"));
    }
    serde_json::to_string(relays).map_err(|_| Error::Internal {
        reason: "a list of strings does not serialize",
    })
}

impl Store {
    // ----- secrets -------------------------------------------------------------------------

    /// Stores a new connect secret (hashed) with an optional template and expiry (Unix ms).
    pub async fn add_connect_secret(
        &self,
        secret: &str,
        template: Option<&str>,
        now_ms: u64,
        expires_at_ms: Option<u64>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO bunker_secrets (secret_sha256, template, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(sha256_hex(secret.as_bytes()))
        .bind(template)
        .bind(int(now_ms)?)
        .bind(expires_at_ms.map(int).transpose()?)
        .execute(self.pool())
        .await
        .map_err(db("store connect secret"))?;
        Ok(())
    }

    /// Consumes `secret` for `client` atomically: the first caller gets
    /// [`SecretUse::Consumed`], every later one [`SecretUse::AlreadyUsed`].
    pub async fn consume_connect_secret(
        &self,
        secret: &str,
        client: &[u8; 32],
        now_ms: u64,
    ) -> Result<SecretUse> {
        let hash = sha256_hex(secret.as_bytes());
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "SELECT template, expires_at, used_at, used_by FROM bunker_secrets WHERE secret_sha256 = $1",
        )
        .bind(&hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("read connect secret"))?;
        let Some(row) = row else {
            return Ok(SecretUse::Unknown);
        };
        let g = db("decode row");
        let used: Option<i64> = row.try_get("used_at").map_err(&g)?;
        let expires: Option<i64> = row.try_get("expires_at").map_err(&g)?;
        if used.is_some() {
            return Ok(SecretUse::AlreadyUsed {
                by: row.try_get("used_by").map_err(&g)?,
            });
        }
        if expires.is_some_and(|e| e <= int(now_ms).unwrap_or(i64::MAX)) {
            return Ok(SecretUse::Unknown);
        }
        let template: Option<String> = row.try_get("template").map_err(&g)?;
        sqlx::query(
            "UPDATE bunker_secrets SET used_at = $1, used_by = $2 WHERE secret_sha256 = $3 \
             AND used_at IS NULL",
        )
        .bind(int(now_ms)?)
        .bind(hex::encode(client))
        .bind(&hash)
        .execute(&mut *tx)
        .await
        .map_err(db("consume connect secret"))?;
        tx.commit().await.map_err(db("commit"))?;
        Ok(SecretUse::Consumed { template })
    }

    // ----- connections ---------------------------------------------------------------------

    /// Creates or re-activates a connection (clearing logout and revocation), replacing its
    /// display hints and relays.
    pub async fn upsert_connection(&self, c: &Connection) -> Result<()> {
        let relays = check_relays(&c.relays)?;
        sqlx::query(
            "INSERT INTO connections (client_pubkey, key_id, origin, name, url, image, relays, \
             encryption, connected_at, last_seen_at, logged_out_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL) \
             ON CONFLICT (client_pubkey) DO UPDATE SET key_id = excluded.key_id, \
             origin = excluded.origin, name = excluded.name, url = excluded.url, \
             image = excluded.image, relays = excluded.relays, encryption = excluded.encryption, \
             connected_at = excluded.connected_at, last_seen_at = excluded.last_seen_at, \
             logged_out_at = NULL, revoked_at = NULL",
        )
        .bind(hex::encode(c.client))
        .bind(hex::encode(c.key_id))
        .bind(&c.origin)
        .bind(&c.name)
        .bind(&c.url)
        .bind(&c.image)
        .bind(relays)
        .bind(&c.encryption)
        .bind(int(c.connected_at_ms)?)
        .bind(c.last_seen_at_ms.map(int).transpose()?)
        .execute(self.pool())
        .await
        .map_err(db("store connection"))?;
        Ok(())
    }

    /// One connection (active or not).
    pub async fn get_connection(&self, client: &[u8; 32]) -> Result<Option<Connection>> {
        sqlx::query("SELECT * FROM connections WHERE client_pubkey = $1")
            .bind(hex::encode(client))
            .fetch_optional(self.pool())
            .await
            .map_err(db("read connection"))?
            .as_ref()
            .map(connection_from_row)
            .transpose()
    }

    /// Every connection, most recent first.
    pub async fn list_connections(&self) -> Result<Vec<Connection>> {
        sqlx::query("SELECT * FROM connections ORDER BY connected_at DESC LIMIT 10000")
            .fetch_all(self.pool())
            .await
            .map_err(db("list connections"))?
            .iter()
            .map(connection_from_row)
            .collect()
    }

    /// Marks a connection logged out (`revoke = false`) or revoked. `false` if it was not
    /// active.
    pub async fn end_connection(
        &self,
        client: &[u8; 32],
        revoke: bool,
        now_ms: u64,
    ) -> Result<bool> {
        let sql = if revoke {
            "UPDATE connections SET revoked_at = $1 WHERE client_pubkey = $2 AND revoked_at IS NULL"
        } else {
            "UPDATE connections SET logged_out_at = $1 WHERE client_pubkey = $2 \
             AND logged_out_at IS NULL AND revoked_at IS NULL"
        };
        let done = sqlx::query(sql)
            .bind(int(now_ms)?)
            .bind(hex::encode(client))
            .execute(self.pool())
            .await
            .map_err(db("end connection"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a request from the client (last seen, transport encryption).
    pub async fn touch_connection(
        &self,
        client: &[u8; 32],
        encryption: &str,
        now_ms: u64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE connections SET last_seen_at = $1, encryption = $2 WHERE client_pubkey = $3",
        )
        .bind(int(now_ms)?)
        .bind(encryption)
        .bind(hex::encode(client))
        .execute(self.pool())
        .await
        .map_err(db("touch connection"))?;
        Ok(())
    }

    /// Replaces a connection's relays.
    pub async fn set_connection_relays(&self, client: &[u8; 32], relays: &[String]) -> Result<()> {
        sqlx::query("UPDATE connections SET relays = $1 WHERE client_pubkey = $2")
            .bind(check_relays(relays)?)
            .bind(hex::encode(client))
            .execute(self.pool())
            .await
            .map_err(db("set connection relays"))?;
        Ok(())
    }

    // ----- grants --------------------------------------------------------------------------

    /// A client's grants.
    pub async fn grants(&self, client: &[u8; 32]) -> Result<Vec<Grant>> {
        sqlx::query(
            "SELECT * FROM grants WHERE client_pubkey = $1 ORDER BY created_at, id LIMIT $2",
        )
        .bind(hex::encode(client))
        .bind(MAX_GRANTS as i64)
        .fetch_all(self.pool())
        .await
        .map_err(db("read grants"))?
        .iter()
        .map(grant_from_row)
        .collect()
    }

    /// Adds grants to a client; with `replace`, its grants become exactly `grants`. At most
    /// [`MAX_GRANTS`] per client.
    pub async fn put_grants(
        &self,
        client: &[u8; 32],
        grants: &[Grant],
        replace: bool,
        by: &str,
        now_ms: u64,
    ) -> Result<()> {
        let client_hex = hex::encode(client);
        let mut tx = self.begin().await?;
        if replace {
            sqlx::query("DELETE FROM grants WHERE client_pubkey = $1")
                .bind(&client_hex)
                .execute(&mut *tx)
                .await
                .map_err(db("delete grants"))?;
        }
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM grants WHERE client_pubkey = $1")
            .bind(&client_hex)
            .fetch_one(&mut *tx)
            .await
            .map_err(db("count grants"))?;
        if usize::try_from(held).unwrap_or(usize::MAX) + grants.len() > MAX_GRANTS {
            return Err(Error::TooLarge {
                what: "grants of one connection",
                len: usize::try_from(held).unwrap_or(usize::MAX) + grants.len(),
                max: MAX_GRANTS,
            });
        }
        for grant in grants {
            let mut id = [0u8; 16];
            getrandom::fill(&mut id).map_err(|_| Error::Internal {
                reason: "the OS random source failed",
            })?;
            let constraints = if grant.constraints.is_empty() {
                None
            } else {
                Some(
                    serde_json::to_string(&grant.constraints).map_err(|_| Error::Internal {
                        reason: "constraints do not serialize",
                    })?,
                )
            };
            sqlx::query(
                "INSERT INTO grants (id, client_pubkey, method, kind, decision, constraints, \
                 expires_at, per_minute, per_day, created_at, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(hex::encode(id))
            .bind(&client_hex)
            .bind(&grant.method)
            .bind(grant.kind.map(i64::from))
            .bind(grant.decision.name())
            .bind(constraints)
            .bind(grant.expires_at.map(int).transpose()?)
            .bind(grant.per_minute.map(i64::from))
            .bind(grant.per_day.map(i64::from))
            .bind(int(now_ms)?)
            .bind(by)
            .execute(&mut *tx)
            .await
            .map_err(db("store grant"))?;
        }
        tx.commit().await.map_err(db("commit"))?;
        Ok(())
    }

    /// Allowed requests of `client` for `method` (and `kind`) since the windows of a minute
    /// and a day before `now_ms`, counted from the audit log (so caps survive restarts).
    pub async fn usage(
        &self,
        client: &[u8; 32],
        method: &str,
        kind: Option<u16>,
        now_ms: u64,
    ) -> Result<Usage> {
        let count = |since: u64| {
            let client = hex::encode(client);
            async move {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM audit_log WHERE client_pubkey = $1 AND method = $2 \
                     AND ($3 IS NULL OR kind = $3) AND decision = 'allow' AND ts > $4",
                )
                .bind(client)
                .bind(method)
                .bind(kind.map(i64::from))
                .bind(int(since)?)
                .fetch_one(self.pool())
                .await
                .map_err(db("count usage"))?;
                Ok::<u32, Error>(u32::try_from(n).unwrap_or(u32::MAX))
            }
        };
        Ok(Usage {
            last_minute: count(now_ms.saturating_sub(60_000)).await?,
            last_day: count(now_ms.saturating_sub(86_400_000)).await?,
        })
    }

    // ----- approvals -----------------------------------------------------------------------

    /// Stores a new pending approval.
    pub async fn add_approval(&self, a: &ApprovalRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO approvals (approval_id, client_pubkey, request_id, method, kind, summary, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&a.approval_id)
        .bind(hex::encode(a.client))
        .bind(&a.request_id)
        .bind(&a.method)
        .bind(a.kind.map(i64::from))
        .bind(a.summary.to_string())
        .bind(int(a.created_at_ms)?)
        .bind(int(a.expires_at_ms)?)
        .execute(self.pool())
        .await
        .map_err(db("store approval"))?;
        Ok(())
    }

    /// Records the decision of a pending approval; `false` if it was already decided.
    pub async fn decide_approval(&self, id: &str, decision: &str, now_ms: u64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE approvals SET decided_at = $1, decision = $2 WHERE approval_id = $3 \
             AND decided_at IS NULL",
        )
        .bind(int(now_ms)?)
        .bind(decision)
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(db("decide approval"))?;
        Ok(done.rows_affected() > 0)
    }

    /// One approval.
    pub async fn get_approval(&self, id: &str) -> Result<Option<ApprovalRecord>> {
        sqlx::query("SELECT * FROM approvals WHERE approval_id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db("read approval"))?
            .as_ref()
            .map(approval_from_row)
            .transpose()
    }

    /// Undecided approvals, oldest first.
    pub async fn pending_approvals(&self) -> Result<Vec<ApprovalRecord>> {
        sqlx::query(
            "SELECT * FROM approvals WHERE decided_at IS NULL ORDER BY created_at LIMIT 1000",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db("list approvals"))?
        .iter()
        .map(approval_from_row)
        .collect()
    }

    /// Marks every undecided approval as `reason` (at start: the requests they held are gone).
    pub async fn close_pending_approvals(&self, reason: &str, now_ms: u64) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE approvals SET decided_at = $1, decision = $2 WHERE decided_at IS NULL",
        )
        .bind(int(now_ms)?)
        .bind(reason)
        .execute(self.pool())
        .await
        .map_err(db("close approvals"))?;
        Ok(done.rows_affected())
    }

    // ----- relays and audit ----------------------------------------------------------------

    /// The configured relay list.
    pub async fn bunker_relays(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT url FROM relays WHERE enabled = 1 ORDER BY added_at, url")
            .fetch_all(self.pool())
            .await
            .map_err(db("list relays"))
    }

    /// Replaces the configured relay list.
    pub async fn set_bunker_relays(&self, relays: &[String], now_ms: u64) -> Result<()> {
        check_relays(relays)?;
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM relays")
            .execute(&mut *tx)
            .await
            .map_err(db("clear relays"))?;
        for (i, url) in relays.iter().enumerate() {
            sqlx::query("INSERT INTO relays (url, added_at, enabled) VALUES ($1, $2, 1)")
                .bind(url)
                .bind(int(now_ms + i as u64)?)
                .execute(&mut *tx)
                .await
                .map_err(db("store relay"))?;
        }
        tx.commit().await.map_err(db("commit"))?;
        Ok(())
    }

    /// Audit records newest first, older than `before` (a sequence number) when given; at
    /// most `limit` (capped at [`MAX_AUDIT_PAGE`]).
    pub async fn audit_page(&self, before: Option<u64>, limit: usize) -> Result<Vec<AuditRecord>> {
        let before = before.map(int).transpose()?.unwrap_or(i64::MAX);
        sqlx::query("SELECT * FROM audit_log WHERE seq < $1 ORDER BY seq DESC LIMIT $2")
            .bind(before)
            .bind(limit.clamp(1, MAX_AUDIT_PAGE) as i64)
            .fetch_all(self.pool())
            .await
            .map_err(db("list audit records"))?
            .iter()
            .map(audit_from_row)
            .collect()
    }
}
