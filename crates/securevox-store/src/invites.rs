//! Invite codes for registration on a private server. Only a digest of each code is stored.

use crate::{Store, StoreError};
use securevox_domain::clock;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRecord {
    pub id: String,
    /// First characters of the code, so admins can tell codes apart.
    pub code_hint: String,
    pub created_by: Option<String>,
    /// 0 = unlimited.
    pub max_uses: i64,
    pub uses: i64,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl InviteRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            code_hint: row.try_get("code_hint")?,
            created_by: row.try_get("created_by")?,
            max_uses: row.try_get("max_uses")?,
            uses: row.try_get("uses")?,
            expires_at: row.try_get("expires_at")?,
            created_at: row.try_get("created_at")?,
            revoked_at: row.try_get("revoked_at")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewInvite {
    pub id: String,
    pub code_digest: String,
    pub code_hint: String,
    pub created_by: String,
    pub max_uses: i64,
    pub expires_at: Option<i64>,
}

impl Store {
    pub async fn create_invite(&self, new: &NewInvite) -> Result<InviteRecord, StoreError> {
        let now = clock::now();
        sqlx::query(
            "INSERT INTO invites (id, code_hash, code_hint, created_by, max_uses, expires_at, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&new.id)
        .bind(&new.code_digest)
        .bind(&new.code_hint)
        .bind(&new.created_by)
        .bind(new.max_uses)
        .bind(new.expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(InviteRecord {
            id: new.id.clone(),
            code_hint: new.code_hint.clone(),
            created_by: Some(new.created_by.clone()),
            max_uses: new.max_uses,
            uses: 0,
            expires_at: new.expires_at,
            created_at: now,
            revoked_at: None,
        })
    }

    /// Every invite, newest first.
    pub async fn list_invites(&self) -> Result<Vec<InviteRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, code_hint, created_by, max_uses, uses, expires_at, created_at, revoked_at \
             FROM invites ORDER BY created_at DESC, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(InviteRecord::from_row).collect::<Result<_, _>>()?)
    }

    /// Revokes an invite. False if unknown or already revoked.
    pub async fn revoke_invite(&self, id: &str) -> Result<bool, StoreError> {
        let changed =
            sqlx::query("UPDATE invites SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(clock::now())
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(changed == 1)
    }
}
