//! The bunker's transport key (spec §9 `transport_keys`), sealed as object type 2 (§10.1).

use std::fmt;

use sqlx::Row;
use zeroize::Zeroizing;

use super::{Store, db, from_hex, int, uint};
use crate::envelope::{self, Kek, ObjectType, SealContext};
use crate::{Error, Result};

/// The coordinator's transport key (the NIP-46 "remote-signer key"), opened. The secret is
/// zeroized on drop and never printed.
pub struct TransportKey {
    /// Its id (also bound into the sealed blob's AAD).
    pub id: String,
    /// Its x-only public key.
    pub pubkey: [u8; 32],
    /// When it was stored (Unix ms).
    pub created_at_ms: u64,
    secret: Zeroizing<[u8; 32]>,
}

impl TransportKey {
    /// The 32-byte secret key.
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }
}

impl fmt::Debug for TransportKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportKey")
            .field("id", &self.id)
            .field("pubkey", &hex::encode(self.pubkey))
            .finish_non_exhaustive()
    }
}

fn context(id: &str) -> SealContext<'_> {
    SealContext {
        object: ObjectType::TransportSecret,
        key_id: id.as_bytes(),
        identifier: 0,
        share_version: 0,
    }
}

/// The x-only public key of `secret` (k256, zeroized on drop).
fn pubkey_of(secret: &[u8; 32]) -> Result<[u8; 32]> {
    Ok(k256::schnorr::SigningKey::from_slice(secret)
        .map_err(|_| Error::InvalidSecretKey)?
        .verifying_key()
        .to_bytes()
        .into())
}

impl Store {
    /// Seals `secret` under `kek` and stores it as the active transport key `id` (at most 64
    /// bytes), deactivating the others, in one transaction. An existing `id` is
    /// [`Error::StoreConflict`]; nothing is overwritten.
    pub async fn seal_transport_key(
        &self,
        kek: &dyn Kek,
        id: &str,
        secret: &[u8; 32],
        now_ms: u64,
    ) -> Result<[u8; 32]> {
        let pubkey = pubkey_of(secret)?;
        let blob = envelope::seal(kek, &context(id), secret)?;
        self.register_kek(kek.kek_id(), kek.provider().name(), kek.kek_id(), now_ms)
            .await?;
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "INSERT INTO transport_keys (id, pubkey, sealed_secret, kek_id, created_at, active) \
             VALUES ($1, $2, $3, $4, $5, 1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(hex::encode(pubkey))
        .bind(&blob)
        .bind(kek.kek_id())
        .bind(int(now_ms)?)
        .execute(&mut *tx)
        .await
        .map_err(db("store transport key"))?;
        if done.rows_affected() == 0 {
            return Err(Error::StoreConflict {
                what: "transport key id",
            });
        }
        sqlx::query("UPDATE transport_keys SET active = 0 WHERE id <> $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db("deactivate transport keys"))?;
        tx.commit().await.map_err(db("commit"))?;
        Ok(pubkey)
    }

    /// Opens the active transport key under `kek`, checking that the stored public key is the
    /// secret's. `None` when there is none yet.
    pub async fn open_transport_key(&self, kek: &dyn Kek) -> Result<Option<TransportKey>> {
        let row = sqlx::query(
            "SELECT id, pubkey, sealed_secret, created_at FROM transport_keys WHERE active = 1 \
             ORDER BY created_at DESC, id LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await
        .map_err(db("read transport key"))?;
        let Some(r) = row else { return Ok(None) };
        let g = db("decode row");
        let id: String = r.try_get("id").map_err(&g)?;
        let pubkey: String = r.try_get("pubkey").map_err(&g)?;
        let blob: Vec<u8> = r.try_get("sealed_secret").map_err(&g)?;
        let created: i64 = r.try_get("created_at").map_err(&g)?;
        let plaintext = envelope::open(kek, &context(&id), &blob)?;
        let mut secret = Zeroizing::new([0u8; 32]);
        if plaintext.len() != 32 {
            return Err(Error::Malformed {
                what: "sealed transport key",
            });
        }
        secret.copy_from_slice(&plaintext);
        let pubkey: [u8; 32] = from_hex(&pubkey, "transport public key")?;
        if pubkey_of(&secret)? != pubkey {
            return Err(Error::Mismatch {
                reason: "the transport secret does not match its stored public key",
            });
        }
        Ok(Some(TransportKey {
            id,
            pubkey,
            created_at_ms: uint(created, "timestamp")?,
            secret,
        }))
    }
}
