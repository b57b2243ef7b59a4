//! Accounts: registration under the capacity limit and invite policy, lookups, admin changes.

use crate::sessions::revoke_sessions;
use crate::{Store, StoreError};
use securevox_domain::{clock, PasswordHash, Role};
use sqlx::any::AnyRow;
use sqlx::Row;

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

/// One account by id, on the pool or inside a transaction.
pub(crate) async fn fetch_user<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: &str,
) -> Result<Option<UserRecord>, sqlx::Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(executor).await?;
    row.as_ref().map(UserRecord::from_row).transpose()
}

pub(crate) const USER_COLUMNS: &str =
    "u.id, u.username, u.display_name, u.role, u.disabled_at, u.created_at, u.last_seen_at";

impl Store {
    pub async fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(fetch_user(&self.pool, id).await?)
    }

    /// The users among `ids` that exist, by id (one query; unknown ids are left out).
    pub async fn users_by_id(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, UserRecord>, StoreError> {
        let mut found = std::collections::HashMap::new();
        // In slices, so that no query takes more parameters than a backend allows.
        for chunk in ids.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
            let sql =
                format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id IN ({})", marks.join(", "));
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            for row in query.fetch_all(&self.pool).await? {
                let user = UserRecord::from_row(&row)?;
                found.insert(user.id.clone(), user);
            }
        }
        Ok(found)
    }

    /// The account and its password hash, by case-folded username.
    pub async fn user_for_login(
        &self,
        username_key: &str,
    ) -> Result<Option<(UserRecord, PasswordHash)>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.username_key = $1"
        );
        let row = sqlx::query(&sql).bind(username_key).fetch_optional(&self.pool).await?;
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
        let rows = sqlx::query(&sql).bind(limit).bind(offset).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(UserRecord::from_row).collect::<Result<_, _>>()?)
    }

    pub async fn user_by_username(
        &self,
        username_key: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.username_key = $1");
        let row = sqlx::query(&sql).bind(username_key).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(UserRecord::from_row).transpose()?)
    }

    pub async fn count_users(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?;
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

    /// Replaces the password hash and revokes every session but `keep_session`.
    pub async fn set_password_hash(
        &self,
        user_id: &str,
        hash: &PasswordHash,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = clock::now();
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(hash.as_str())
            .bind(now)
            .bind(user_id)
            .execute(&mut **tx)
            .await?;
        revoke_sessions(&mut tx, user_id, now, keep_session).await?;
        tx.commit().await?;
        Ok(())
    }
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
