//! Registration: creating an account under the user limit and the invite policy, atomically.

use crate::users::UserRecord;
use crate::{Store, StoreError};
use securevox_domain::{clock, PasswordHash, Role};
use sqlx::{Any, Transaction};

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
        let mut tx = self.begin_write().await?;
        // First statement is a write, so SQLite takes its write lock now, not on upgrade.
        sqlx::query("UPDATE account_gate SET writes = writes + 1 WHERE id = 1")
            .execute(&mut **tx)
            .await?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&mut **tx).await?;
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
                .fetch_optional(&mut **tx)
                .await?;
        if taken.is_some() {
            return Err(RegisterError::UsernameTaken);
        }
        let role = if first && admission.first_user_is_admin { Role::Admin } else { new.role };
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
        .execute(&mut **tx)
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

    /// True if an invite with this code digest would be accepted now (a cheap pre-check; the
    /// registration transaction checks again when it consumes the invite).
    pub async fn invite_usable(&self, code_digest: &str) -> Result<bool, StoreError> {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT id FROM invites WHERE code_hash = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2) AND (max_uses = 0 OR uses < max_uses)",
        )
        .bind(code_digest)
        .bind(clock::now())
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
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
