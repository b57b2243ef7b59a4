//! Conversations (C1): each is one MLS group whose group id is the conversation id. The
//! server keeps its members (user ids with a role) and the devices in the group — where its
//! messages are delivered (see `delivery`).

use crate::{Store, StoreError};
use securevox_domain::delivery::{ConversationKind, MemberRole};
use sqlx::{Any, Row, Transaction};

#[derive(Debug, Clone)]
pub struct NewConversation<'a> {
    pub id: &'a str,
    pub kind: ConversationKind,
    pub name: Option<&'a str>,
    pub creator: &'a str,
    /// The creator's device: the only member of the MLS group at epoch 0.
    pub creator_device: &'a str,
    /// The other users, who join as members (the creator is admin).
    pub members: &'a [String],
    pub now: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRecord {
    pub id: String,
    pub kind: ConversationKind,
    pub name: Option<String>,
    pub epoch: i64,
    /// The seq the next message will get.
    pub next_seq: i64,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Every member, in the order they joined.
    pub members: Vec<(String, MemberRole)>,
}

impl Store {
    pub async fn create_conversation(&self, c: &NewConversation<'_>) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO conversations (id, kind, name, epoch, next_seq, created_by, created_at, \
             updated_at) VALUES ($1, $2, $3, 0, 1, $4, $5, $5)",
        )
        .bind(c.id)
        .bind(c.kind.as_str())
        .bind(c.name)
        .bind(c.creator)
        .bind(c.now)
        .execute(&mut **tx)
        .await?;
        let members = std::iter::once((c.creator, MemberRole::Admin))
            .chain(c.members.iter().map(|m| (m.as_str(), MemberRole::Member)));
        for (user_id, role) in members {
            add_member(&mut tx, c.id, user_id, role, c.now).await?;
        }
        sqlx::query(
            "INSERT INTO conversation_devices (conversation_id, device_id, user_id, added_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(c.id)
        .bind(c.creator_device)
        .bind(c.creator)
        .bind(c.now)
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn conversation(&self, id: &str) -> Result<Option<ConversationRecord>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT id, kind, name, epoch, next_seq, created_by, created_at, updated_at \
             FROM conversations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let members = sqlx::query(
            "SELECT user_id, role FROM conversation_members WHERE conversation_id = $1 \
             ORDER BY joined_at, user_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok::<_, sqlx::Error>((
                r.try_get("user_id")?,
                MemberRole::from_stored(&r.try_get::<String, _>("role")?),
            ))
        })
        .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(ConversationRecord {
            id: row.try_get("id")?,
            kind: ConversationKind::from_stored(&row.try_get::<String, _>("kind")?),
            name: row.try_get("name")?,
            epoch: row.try_get("epoch")?,
            next_seq: row.try_get("next_seq")?,
            created_by: row.try_get("created_by")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            members,
        }))
    }

    /// The ids of the conversations `user_id` is a member of, most recently active first.
    pub async fn conversation_ids_of(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.id FROM conversations c JOIN conversation_members m \
             ON m.conversation_id = c.id WHERE m.user_id = $1 ORDER BY c.updated_at DESC, c.id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?)
    }

    /// The users who share at least one conversation with `user_id` (not `user_id`).
    pub async fn conversation_peers(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT o.user_id FROM conversation_members m JOIN conversation_members o \
             ON o.conversation_id = m.conversation_id WHERE m.user_id = $1 AND o.user_id <> $1 \
             ORDER BY o.user_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| r.try_get("user_id")).collect::<Result<_, _>>()?)
    }

    /// The devices the group's messages go to.
    pub async fn conversation_devices(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT device_id FROM conversation_devices WHERE conversation_id = $1 \
             ORDER BY device_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| r.try_get("device_id")).collect::<Result<_, _>>()?)
    }

    pub async fn set_member_role(
        &self,
        conversation_id: &str,
        user_id: &str,
        role: MemberRole,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE conversation_members SET role = $3 WHERE conversation_id = $1 AND user_id = $2",
        )
        .bind(conversation_id)
        .bind(user_id)
        .bind(role.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn rename_conversation(
        &self,
        id: &str,
        name: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE conversations SET name = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(name)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes `user_id` out of the conversation: membership and message routing to their
    /// devices. (Their leaves in the MLS tree go with the next Commit of a remaining member.)
    /// When the last member leaves, the conversation goes with everything it holds: its log,
    /// queued items and attachment records (their blobs are swept by maintenance).
    pub async fn remove_member(
        &self,
        conversation_id: &str,
        user_id: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2",
        )
        .bind(conversation_id)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
        sqlx::query("DELETE FROM conversation_devices WHERE conversation_id = $1 AND user_id = $2")
            .bind(conversation_id)
            .bind(user_id)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "DELETE FROM conversations WHERE id = $1 AND NOT EXISTS \
             (SELECT 1 FROM conversation_members m WHERE m.conversation_id = $1)",
        )
        .bind(conversation_id)
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}

pub(crate) async fn add_member(
    tx: &mut Transaction<'_, Any>,
    conversation_id: &str,
    user_id: &str,
    role: MemberRole,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO conversation_members (conversation_id, user_id, role, joined_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(conversation_id)
    .bind(user_id)
    .bind(role.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
