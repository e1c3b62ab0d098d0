//! [`ShareVault`]: a node's shares, sealed under its KEK and kept in the [`Store`].

use std::fmt;
use std::sync::Arc;

use frost_secp256k1_tr::keys::KeyPackage;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{NodeId, ShareRow, ShareStatus, Store, db, share_from_row, share_in};
use crate::envelope::{self, Kek, ObjectType, SealContext};
use crate::wire::KeyId;
use crate::{Error, NodeShare, PublicKeyPackage, Result, codec};

/// One node's sealed shares: [`Store`] + [`Kek`].
///
/// The blob holds the FROST `KeyPackage` serialization (spec §10.1); the public key package of
/// the same version is stored next to it in clear, and [`ShareVault::load_share`] checks the
/// opened share against it (group key, threshold, the node's verifying share). Pending shares
/// (a ceremony that has not committed) are sealed with object type 3 and re-sealed as type 1
/// by [`ShareVault::commit_pending`], so a pending blob cannot be passed off as an active one.
#[derive(Clone)]
pub struct ShareVault {
    store: Store,
    kek: Arc<dyn Kek>,
    node_id: NodeId,
}

impl fmt::Debug for ShareVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShareVault")
            .field("store", &self.store.path())
            .field("kek_id", &self.kek.kek_id())
            .field("node_id", &hex::encode(self.node_id))
            .finish()
    }
}

fn object_type(status: ShareStatus) -> ObjectType {
    match status {
        ShareStatus::Pending => ObjectType::PendingShare,
        ShareStatus::Active | ShareStatus::Retired => ObjectType::KeyPackage,
    }
}

fn context(key_id: &KeyId, row_id: u16, version: u32, status: ShareStatus) -> SealContext<'_> {
    SealContext {
        object: object_type(status),
        key_id,
        identifier: row_id,
        share_version: version,
    }
}

fn key_package_bytes(share: &NodeShare) -> Result<Zeroizing<Vec<u8>>> {
    Ok(Zeroizing::new(
        share.key_package().serialize().map_err(Error::from_frost)?,
    ))
}

impl ShareVault {
    /// The vault of node `node_id` in `store`, sealing under `kek`.
    pub fn new(store: Store, kek: Arc<dyn Kek>, node_id: NodeId) -> Self {
        Self {
            store,
            kek,
            node_id,
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The KEK.
    pub fn kek(&self) -> &dyn Kek {
        &*self.kek
    }

    /// The node whose shares these are.
    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }

    /// Seals `share` and stores it as `version` of key `key_id` with `status` (`Pending` for
    /// a ceremony that has not committed, `Active` otherwise). Storing the same share again is
    /// a no-op; a different share under the same version is [`Error::StoreConflict`] and
    /// changes nothing.
    pub async fn seal_and_store(
        &self,
        key_id: &KeyId,
        share: &NodeShare,
        version: u32,
        status: ShareStatus,
        now_ms: u64,
    ) -> Result<()> {
        if status == ShareStatus::Retired {
            return Err(Error::params("a share is stored pending or active"));
        }
        let plaintext = key_package_bytes(share)?;
        if let Some(existing) = self.store.get_share(&self.node_id, key_id, version).await? {
            let stored = self.open_row(&existing)?;
            let same = existing.status == status
                && bool::from(key_package_bytes(&stored)?.as_slice().ct_eq(&plaintext))
                && stored.public() == share.public();
            return if same {
                Ok(())
            } else {
                Err(Error::StoreConflict {
                    what: "sealed share of this version",
                })
            };
        }
        let ctx = context(key_id, share.id().get(), version, status);
        let blob = envelope::seal(&*self.kek, &ctx, &plaintext)?;
        self.store
            .register_kek(
                self.kek.kek_id(),
                self.kek.provider().name(),
                self.kek.kek_id(),
                now_ms,
            )
            .await?;
        self.store
            .put_share(&ShareRow {
                node_id: self.node_id,
                key_id: *key_id,
                share_version: version,
                identifier: share.id(),
                sealed_blob: blob,
                kek_id: self.kek.kek_id().to_string(),
                public_key_package: share.public().serialize()?,
                status,
                created_at_ms: now_ms,
            })
            .await
    }

    /// Opens, decodes and checks this node's **active** share of `key_id`.
    pub async fn load_share(&self, key_id: &KeyId) -> Result<NodeShare> {
        let row = self
            .store
            .active_share(&self.node_id, key_id)
            .await?
            .ok_or(Error::NotFound {
                what: "active share of this key",
            })?;
        self.open_row(&row)
    }

    /// Opens, decodes and checks this node's share of `key_id` at `version`, whatever its
    /// status.
    pub async fn load_share_version(&self, key_id: &KeyId, version: u32) -> Result<NodeShare> {
        let row = self
            .store
            .get_share(&self.node_id, key_id, version)
            .await?
            .ok_or(Error::NotFound {
                what: "share of this version",
            })?;
        self.open_row(&row)
    }

    /// Opens a stored row: envelope (AAD bound to key, identifier, version and status), then
    /// the `KeyPackage` (canonical encoding only), then the check against the row's public key
    /// package ([`NodeShare`]'s invariants).
    fn open_row(&self, row: &ShareRow) -> Result<NodeShare> {
        self.open_row_with(&*self.kek, row)
    }

    fn open_row_with(&self, kek: &dyn Kek, row: &ShareRow) -> Result<NodeShare> {
        let ctx = context(
            &row.key_id,
            row.identifier.get(),
            row.share_version,
            row.status,
        );
        let plaintext = envelope::open(kek, &ctx, &row.sealed_blob)?;
        let key = codec::decode_canonical(
            "sealed key package",
            &plaintext,
            KeyPackage::deserialize,
            |k| k.serialize().ok().map(Zeroizing::new),
        )?;
        let public = PublicKeyPackage::deserialize(&row.public_key_package)?;
        let share = NodeShare::from_parts(key, public)?;
        if share.id() != row.identifier {
            return Err(Error::Mismatch {
                reason: "the sealed share belongs to another identifier",
            });
        }
        Ok(share)
    }

    /// After a ceremony's `Commit`: re-seals the pending `version` as an active share and
    /// deletes this node's older versions of the key, in one transaction (spec §8.7, §10.2:
    /// the old blob goes only once the new one is committed). Committing an already active
    /// version is a no-op.
    pub async fn commit_pending(&self, key_id: &KeyId, version: u32) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let row = share_in(&mut tx, &self.node_id, key_id, version)
            .await?
            .ok_or(Error::NotFound {
                what: "pending share of this version",
            })?;
        match row.status {
            ShareStatus::Pending => {}
            ShareStatus::Active => return Ok(()),
            ShareStatus::Retired => {
                return Err(Error::params("a retired share cannot be committed"));
            }
        }
        let share = self.open_row(&row)?;
        let plaintext = key_package_bytes(&share)?;
        let ctx = context(key_id, row.identifier.get(), version, ShareStatus::Active);
        let blob = envelope::seal(&*self.kek, &ctx, &plaintext)?;
        let done = sqlx::query(
            "UPDATE node_shares SET sealed_blob = $1, kek_id = $2, status = 'active' \
             WHERE node_id = $3 AND key_id = $4 AND share_version = $5 AND status = 'pending'",
        )
        .bind(&blob)
        .bind(self.kek.kek_id())
        .bind(hex::encode(self.node_id))
        .bind(hex::encode(key_id))
        .bind(i64::from(version))
        .execute(&mut *tx)
        .await
        .map_err(db("activate share"))?;
        if done.rows_affected() != 1 {
            return Err(Error::StoreConflict {
                what: "pending share changed during commit",
            });
        }
        sqlx::query(
            "DELETE FROM node_shares WHERE node_id = $1 AND key_id = $2 AND share_version < $3",
        )
        .bind(hex::encode(self.node_id))
        .bind(hex::encode(key_id))
        .bind(i64::from(version))
        .execute(&mut *tx)
        .await
        .map_err(db("delete old shares"))?;
        tx.commit().await.map_err(db("commit"))
    }

    /// After a ceremony abort: deletes the pending `version`; returns whether one existed.
    pub async fn discard_pending(&self, key_id: &KeyId, version: u32) -> Result<bool> {
        self.store
            .delete_pending_share(&self.node_id, key_id, version)
            .await
    }

    /// KEK rotation (spec §10.4): re-seals every share of this node that is sealed under this
    /// vault's KEK with `new_kek`, in one transaction, and marks the old KEK retired. Every
    /// blob is opened and checked first; if any fails, nothing changes. Returns the number of
    /// blobs re-sealed; use a vault with `new_kek` afterwards.
    pub async fn rotate(&self, new_kek: &dyn Kek, now_ms: u64) -> Result<usize> {
        let old_id = self.kek.kek_id().to_string();
        if new_kek.kek_id() == old_id {
            return Err(Error::params("the new KEK is the current one"));
        }
        self.store
            .register_kek(
                new_kek.kek_id(),
                new_kek.provider().name(),
                new_kek.kek_id(),
                now_ms,
            )
            .await?;
        let mut tx = self.store.begin().await?;
        // Write first (SQLite takes the write lock here, so the rows read below cannot change).
        sqlx::query("UPDATE keks SET retired_at = $1 WHERE kek_id = $2 AND retired_at IS NULL")
            .bind(super::int(now_ms)?)
            .bind(&old_id)
            .execute(&mut *tx)
            .await
            .map_err(db("retire KEK"))?;
        let rows = sqlx::query(concat!(
            select_share!(),
            " WHERE node_id = $1 AND kek_id = $2"
        ))
        .bind(hex::encode(self.node_id))
        .bind(&old_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db("list shares"))?;
        let mut count = 0;
        for r in &rows {
            let row = share_from_row(r)?;
            let share = self.open_row(&row)?;
            let plaintext = key_package_bytes(&share)?;
            let ctx = context(
                &row.key_id,
                row.identifier.get(),
                row.share_version,
                row.status,
            );
            let blob = envelope::seal(new_kek, &ctx, &plaintext)?;
            // Check the new blob opens before committing anything.
            self.open_row_with(
                new_kek,
                &ShareRow {
                    sealed_blob: blob.clone(),
                    ..row.clone()
                },
            )?;
            sqlx::query(
                "UPDATE node_shares SET sealed_blob = $1, kek_id = $2 \
                 WHERE node_id = $3 AND key_id = $4 AND share_version = $5",
            )
            .bind(&blob)
            .bind(new_kek.kek_id())
            .bind(hex::encode(self.node_id))
            .bind(hex::encode(row.key_id))
            .bind(i64::from(row.share_version))
            .execute(&mut *tx)
            .await
            .map_err(db("re-seal share"))?;
            count += 1;
        }
        tx.commit().await.map_err(db("commit"))?;
        tracing::info!(
            old = %old_id,
            new = %new_kek.kek_id(),
            count,
            "re-sealed shares under the new KEK"
        );
        Ok(count)
    }
}
