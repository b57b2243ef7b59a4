//! Contacts (U2): whom a user has added and whom they have blocked, the user directory search
//! that finds people to add, and the two questions the rest of the server asks: may these two
//! users reach each other, and who sees a user's presence.

use crate::users::{UserRecord, USER_COLUMNS};
use crate::{Store, StoreError};
use sqlx::Row;

/// One user's relation to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactState {
    Contact,
    Blocked,
}

impl ContactState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contact => "contact",
            Self::Blocked => "blocked",
        }
    }

    fn from_stored(text: &str) -> Self {
        if text == "blocked" {
            Self::Blocked
        } else {
            Self::Contact
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRecord {
    pub user: UserRecord,
    pub state: ContactState,
    pub since: i64,
}

impl Store {
    /// Adds `contact_id` to `owner_id`'s contacts, or blocks them (a block replaces a contact
    /// and the other way round).
    pub async fn set_contact(
        &self,
        owner_id: &str,
        contact_id: &str,
        state: ContactState,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO contacts (owner_id, contact_id, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (owner_id, contact_id) \
             DO UPDATE SET state = $3, updated_at = $4",
        )
        .bind(owner_id)
        .bind(contact_id)
        .bind(state.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes the relation if it is in `state`; false when there was none.
    pub async fn remove_contact(
        &self,
        owner_id: &str,
        contact_id: &str,
        state: ContactState,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM contacts WHERE owner_id = $1 AND contact_id = $2 AND state = $3",
        )
        .bind(owner_id)
        .bind(contact_id)
        .bind(state.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// `owner_id`'s contacts and blocked users, by username.
    pub async fn contacts_of(&self, owner_id: &str) -> Result<Vec<ContactRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, c.state, c.updated_at AS since FROM contacts c \
             JOIN users u ON u.id = c.contact_id WHERE c.owner_id = $1 ORDER BY u.username_key"
        ))
        .bind(owner_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ContactRecord {
                    user: UserRecord::from_row(r)?,
                    state: ContactState::from_stored(&r.try_get::<String, _>("state")?),
                    since: r.try_get("since")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Whether either of the two users has blocked the other.
    pub async fn blocked_between(&self, a: &str, b: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 AS hit FROM contacts WHERE state = 'blocked' AND \
             ((owner_id = $1 AND contact_id = $2) OR (owner_id = $2 AND contact_id = $1))",
        )
        .bind(a)
        .bind(b)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Who sees `user_id`'s presence: users either of the two added as a contact, or who
    /// shared a call with them — never across a block in either direction.
    pub async fn presence_audience(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT other FROM ( \
               SELECT contact_id AS other FROM contacts WHERE owner_id = $1 AND state = 'contact' \
               UNION SELECT owner_id FROM contacts WHERE contact_id = $1 AND state = 'contact' \
               UNION SELECT o.user_id FROM call_members m JOIN call_members o \
                 ON o.call_id = m.call_id WHERE m.user_id = $1 AND o.user_id <> $1 \
             ) audience WHERE other NOT IN ( \
               SELECT contact_id FROM contacts WHERE owner_id = $1 AND state = 'blocked' \
               UNION SELECT owner_id FROM contacts WHERE contact_id = $1 AND state = 'blocked' \
             ) ORDER BY other",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| r.try_get("other").map_err(StoreError::from)).collect()
    }

    /// Enabled users whose username starts with `prefix` (case-folded), at most `limit`.
    pub async fn search_users(
        &self,
        prefix_key: &str,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError> {
        // LIKE wildcards in the prefix are matched literally.
        let escaped = prefix_key.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.username_key LIKE $1 ESCAPE '\\' \
             AND u.disabled_at IS NULL ORDER BY u.username_key LIMIT $2"
        ))
        .bind(format!("{escaped}%"))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(UserRecord::from_row).collect::<Result<_, _>>()?)
    }
}
