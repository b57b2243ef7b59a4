//! Device sessions: one per logged-in device, each with a rotating refresh token stored as a
//! digest. Access tokens name their session, so revoking a session cuts its device off at once.

use crate::users::{UserRecord, USER_COLUMNS};
use crate::{Store, StoreError};
use securevox_domain::{clock, PasswordHash};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    pub device_name: Option<String>,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl SessionRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            device_name: row.try_get("device_name")?,
            created_at: row.try_get("created_at")?,
            last_used_at: row.try_get("last_used_at")?,
            expires_at: row.try_get("expires_at")?,
            ip: row.try_get("ip")?,
            user_agent: row.try_get("user_agent")?,
        })
    }
}

const SESSION_COLUMNS: &str =
    "id, user_id, device_name, created_at, last_used_at, expires_at, ip, user_agent";

#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub user_id: String,
    pub device_name: Option<String>,
    pub refresh_digest: String,
    pub expires_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// What an access token's session resolves to on each request.
#[derive(Debug, Clone)]
pub struct SessionAuth {
    pub user: UserRecord,
    pub session_id: String,
    /// False once revoked or past its refresh expiry.
    pub session_live: bool,
}

/// The result of presenting a refresh token.
#[derive(Debug, Clone)]
pub enum RefreshOutcome {
    /// The token was current: it is replaced by the new digest.
    Rotated { session_id: String, user: UserRecord },
    /// The token was the one *before* the current one: someone replayed it, so the session is
    /// revoked (the legitimate device logs in again; a thief is cut off).
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

impl Store {
    /// Inserts a session as is, with no check of the account (imports, tests). Logins use
    /// [`Store::open_session`].
    pub async fn create_session(&self, new: &NewSession) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        insert_session(&mut tx, new).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Opens a session for a login that just verified `verified_hash` (or for a registration),
    /// only if the account is still enabled and its password is still that hash. False if not.
    ///
    /// The first statement updates the user's row (marking it seen), which takes its row lock:
    /// a concurrent password change or disable either commits first — then the condition
    /// fails — or waits for this session to commit and then revokes it. Without this, a login
    /// verified just before a password change could keep a session the change never saw.
    pub async fn open_session(
        &self,
        new: &NewSession,
        verified_hash: &PasswordHash,
    ) -> Result<bool, StoreError> {
        let now = clock::now();
        let mut tx = self.begin_write().await?;
        let still_valid = sqlx::query(
            "UPDATE users SET last_seen_at = $1 WHERE id = $2 AND disabled_at IS NULL \
             AND password_hash = $3",
        )
        .bind(now)
        .bind(&new.user_id)
        .bind(verified_hash.as_str())
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1;
        if !still_valid {
            return Ok(false);
        }
        insert_session(&mut tx, new).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The session an access token names, with its user, in one indexed lookup.
    pub async fn session_auth(&self, session_id: &str) -> Result<Option<SessionAuth>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, s.id AS session_id, s.revoked_at, s.expires_at \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1"
        );
        let row = sqlx::query(&sql).bind(session_id).fetch_optional(&self.pool).await?;
        let Some(row) = row else { return Ok(None) };
        let revoked: Option<i64> = row.try_get("revoked_at")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        Ok(Some(SessionAuth {
            user: UserRecord::from_row(&row)?,
            session_id: row.try_get("session_id")?,
            session_live: revoked.is_none() && expires_at > clock::now(),
        }))
    }

    /// Swaps a current refresh token for a new one, detecting replay of the previous one.
    pub async fn rotate_refresh(
        &self,
        presented_digest: &str,
        new_digest: &str,
        new_expires_at: i64,
    ) -> Result<RefreshOutcome, StoreError> {
        let now = clock::now();
        let rotated: Option<(String, String)> = sqlx::query_as(
            "UPDATE sessions SET previous_refresh_hash = refresh_hash, refresh_hash = $1, \
             expires_at = $2, last_used_at = $3 \
             WHERE refresh_hash = $4 AND revoked_at IS NULL AND expires_at > $3 \
             RETURNING id, user_id",
        )
        .bind(new_digest)
        .bind(new_expires_at)
        .bind(now)
        .bind(presented_digest)
        .fetch_optional(&self.pool)
        .await?;
        if let Some((session_id, user_id)) = rotated {
            return Ok(match self.user(&user_id).await? {
                Some(user) => RefreshOutcome::Rotated { session_id, user },
                None => RefreshOutcome::Invalid,
            });
        }
        let replayed = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE previous_refresh_hash = $2 \
             AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(presented_digest)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(if replayed > 0 { RefreshOutcome::Reused } else { RefreshOutcome::Invalid })
    }

    /// The user's live sessions, most recently used first.
    pub async fn list_sessions(&self, user_id: &str) -> Result<Vec<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL \
             AND expires_at > $2 ORDER BY last_used_at DESC"
        );
        let rows = sqlx::query(&sql).bind(user_id).bind(clock::now()).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(SessionRecord::from_row).collect::<Result<_, _>>()?)
    }

    /// Revokes one of the user's sessions. False if it is not theirs or already gone.
    pub async fn revoke_session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool, StoreError> {
        let changed = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND user_id = $3 \
             AND revoked_at IS NULL",
        )
        .bind(clock::now())
        .bind(session_id)
        .bind(user_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    pub async fn revoke_all_sessions(&self, user_id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        revoke_sessions(&mut tx, user_id, clock::now(), None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes sessions that expired or were revoked before `before`; returns how many.
    pub async fn delete_dead_sessions(&self, before: i64) -> Result<u64, StoreError> {
        let n = sqlx::query(
            "DELETE FROM sessions WHERE expires_at < $1 OR (revoked_at IS NOT NULL AND revoked_at < $1)",
        )
        .bind(before)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n)
    }
}

async fn insert_session(
    tx: &mut Transaction<'_, Any>,
    new: &NewSession,
) -> Result<(), sqlx::Error> {
    let now = clock::now();
    sqlx::query(
        "INSERT INTO sessions (id, user_id, device_name, refresh_hash, created_at, \
         last_used_at, expires_at, ip, user_agent) VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8)",
    )
    .bind(&new.id)
    .bind(&new.user_id)
    .bind(&new.device_name)
    .bind(&new.refresh_digest)
    .bind(now)
    .bind(new.expires_at)
    .bind(&new.ip)
    .bind(&new.user_agent)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Revokes the user's live sessions, all or all but `except`.
pub(crate) async fn revoke_sessions(
    tx: &mut Transaction<'_, Any>,
    user_id: &str,
    now: i64,
    except: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
         AND id <> $3",
    )
    .bind(now)
    .bind(user_id)
    // Session ids are UUIDs, never empty: "" excludes nothing.
    .bind(except.unwrap_or(""))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
