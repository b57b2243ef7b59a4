//! Accounts: registration under the capacity limit and invite policy, lookups, admin changes.

use crate::{Store, StoreError};
use securevox_domain::{clock, PasswordHash, Role};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

/// A stored account, without its password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
}

impl UserRecord {
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }

    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            username: row.try_get("username")?,
            display_name: row.try_get("display_name")?,
            role: Role::from_stored(&row.try_get::<String, _>("role")?),
            disabled_at: row.try_get("disabled_at")?,
            created_at: row.try_get("created_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
        })
    }
}

pub(crate) const USER_COLUMNS: &str =
    "u.id, u.username, u.display_name, u.role, u.disabled_at, u.created_at, u.last_seen_at";

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: String,
    pub username: String,
    /// Case-folded username; unique.
    pub username_key: String,
    pub display_name: Option<String>,
    pub password_hash: PasswordHash,
    pub role: Role,
}

/// Whether an invite is needed to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvitePolicy {
    /// Anyone may register (open mode, or an operator adding a user).
    NotNeeded,
    /// A valid invite is needed; carries the digest of the code the client sent, if any.
    Required(Option<String>),
    /// Registration is closed.
    Closed,
}

/// The rules one registration must pass, checked atomically with the insert.
#[derive(Debug, Clone)]
pub struct Admission {
    /// 0 = unlimited.
    pub max_users: u64,
    pub invite: InvitePolicy,
    /// The very first account skips the invite policy and becomes an admin.
    pub first_user_is_admin: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("username is taken")]
    UsernameTaken,
    #[error("the server has reached its limit of {0} registered users")]
    CapacityReached(u64),
    #[error("invite code is missing, wrong, expired or used up")]
    InvalidInvite,
    #[error("registration is closed")]
    Closed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for RegisterError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

impl Store {
    /// Creates an account if `admission` allows it. Registrations are serialised through one
    /// gate row, so the user limit, the invite's use count and "first user is admin" hold under
    /// concurrent requests on both backends.
    pub async fn register_user(
        &self,
        new: NewUser,
        admission: &Admission,
    ) -> Result<UserRecord, RegisterError> {
        let now = clock::now();
        let mut tx = self.pool.begin().await?;
        // First statement is a write, so SQLite takes its write lock now, not on upgrade.
        sqlx::query("UPDATE registration_gate SET count = count + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *tx)
            .await?;
        let count = count as u64;
        if admission.max_users > 0 && count >= admission.max_users {
            return Err(RegisterError::CapacityReached(admission.max_users));
        }
        let first = count == 0;
        if !(first && admission.first_user_is_admin) {
            consume_invite(&mut tx, &admission.invite, now).await?;
        }
        let taken: Option<String> =
            sqlx::query_scalar("SELECT id FROM users WHERE username_key = $1")
                .bind(&new.username_key)
                .fetch_optional(&mut *tx)
                .await?;
        if taken.is_some() {
            return Err(RegisterError::UsernameTaken);
        }
        let role = if first && admission.first_user_is_admin {
            Role::Admin
        } else {
            new.role
        };
        sqlx::query(
            "INSERT INTO users (id, username, username_key, display_name, password_hash, role, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&new.id)
        .bind(&new.username)
        .bind(&new.username_key)
        .bind(&new.display_name)
        .bind(new.password_hash.as_str())
        .bind(role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => RegisterError::UsernameTaken,
            _ => e.into(),
        })?;
        tx.commit().await?;
        Ok(UserRecord {
            id: new.id,
            username: new.username,
            display_name: new.display_name,
            role,
            disabled_at: None,
            created_at: now,
            last_seen_at: None,
        })
    }

    pub async fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(UserRecord::from_row).transpose()?)
    }

    /// The account and its password hash, by case-folded username.
    pub async fn user_for_login(
        &self,
        username_key: &str,
    ) -> Result<Option<(UserRecord, PasswordHash)>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.username_key = $1"
        );
        let row = sqlx::query(&sql)
            .bind(username_key)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let hash = PasswordHash::from_stored(row.try_get("password_hash")?);
        Ok(Some((UserRecord::from_row(&row)?, hash)))
    }

    pub async fn password_hash(&self, user_id: &str) -> Result<Option<PasswordHash>, StoreError> {
        let hash: Option<String> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(hash.map(PasswordHash::from_stored))
    }

    /// Accounts ordered by username, a page at a time.
    pub async fn list_users(&self, limit: i64, offset: i64) -> Result<Vec<UserRecord>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u ORDER BY u.username_key LIMIT $1 OFFSET $2"
        );
        let rows = sqlx::query(&sql)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(UserRecord::from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn user_by_username(
        &self,
        username_key: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        Ok(self
            .user_for_login(username_key)
            .await?
            .map(|(user, _)| user))
    }

    pub async fn count_users(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    /// Enabled admins; used to refuse removing the last one.
    pub async fn count_active_admins(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(n as u64)
    }

    /// Users seen at or after `since` (Unix seconds).
    pub async fn count_users_seen_since(&self, since: i64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE last_seen_at >= $1")
            .bind(since)
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    pub async fn touch_user_seen(&self, user_id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET last_seen_at = $1 WHERE id = $2")
            .bind(at)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Disables (revoking every session) or re-enables an account. Returns false if unknown.
    pub async fn set_user_disabled(
        &self,
        user_id: &str,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let now = clock::now();
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE users SET disabled_at = CASE WHEN $1 = 1 THEN COALESCE(disabled_at, $2) \
             ELSE NULL END, updated_at = $2 WHERE id = $3",
        )
        .bind(i64::from(disabled))
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if disabled {
            revoke_all_sessions(&mut tx, user_id, now).await?;
        }
        tx.commit().await?;
        Ok(changed == 1)
    }

    pub async fn set_user_role(&self, user_id: &str, role: Role) -> Result<bool, StoreError> {
        let changed = sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3")
            .bind(role.as_str())
            .bind(clock::now())
            .bind(user_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(changed == 1)
    }

    /// Replaces the password hash and revokes every session but `keep_session`.
    pub async fn set_password_hash(
        &self,
        user_id: &str,
        hash: &PasswordHash,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = clock::now();
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(hash.as_str())
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
             AND id <> $3",
        )
        .bind(now)
        .bind(user_id)
        .bind(keep_session.unwrap_or(""))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes an account and (by cascade) its sessions. Returns false if unknown.
    pub async fn delete_user(&self, user_id: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted == 1)
    }
}

async fn consume_invite(
    tx: &mut Transaction<'_, Any>,
    policy: &InvitePolicy,
    now: i64,
) -> Result<(), RegisterError> {
    match policy {
        InvitePolicy::NotNeeded => Ok(()),
        InvitePolicy::Closed => Err(RegisterError::Closed),
        InvitePolicy::Required(None) => Err(RegisterError::InvalidInvite),
        InvitePolicy::Required(Some(digest)) => {
            let used = sqlx::query(
                "UPDATE invites SET uses = uses + 1 WHERE code_hash = $1 AND revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $2) AND (max_uses = 0 OR uses < max_uses)",
            )
            .bind(digest)
            .bind(now)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if used == 1 {
                Ok(())
            } else {
                Err(RegisterError::InvalidInvite)
            }
        }
    }
}

pub(crate) async fn revoke_all_sessions(
    tx: &mut Transaction<'_, Any>,
    user_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    pub async fn set_display_name(
        &self,
        user_id: &str,
        name: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET display_name = $1, updated_at = $2 WHERE id = $3")
            .bind(name)
            .bind(clock::now())
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
