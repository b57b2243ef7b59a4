//! The MLS Delivery Service's records: the group's ordered log of Commits and messages, and
//! every device's inbox.
//!
//! Ordering rests on one row per conversation: accepting a Commit moves `epoch` on with a
//! compare-and-set (`WHERE epoch = $expected`), so exactly one Commit per epoch wins on both
//! backends, and every message takes the next `seq` from the same row in the same transaction,
//! so a group's log has no gaps and one order for everyone.

use crate::conversations::add_member;
use crate::{Store, StoreError};
use securevox_domain::delivery::{ContentType, MemberRole};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

/// A Commit to accept into a conversation at `epoch`.
#[derive(Debug, Clone)]
pub struct NewCommit<'a> {
    pub conversation_id: &'a str,
    pub epoch: i64,
    pub sender_device: &'a str,
    pub data: &'a [u8],
    /// The group's GroupInfo after the Commit, for external joins.
    pub group_info: Option<&'a [u8]>,
    /// The Welcome for the devices the Commit adds.
    pub welcome: Option<NewWelcome<'a>>,
    pub removed_devices: &'a [String],
    pub now: i64,
}

/// A Welcome and the devices it adds, each with its user: `(device id, user id)`.
#[derive(Debug, Clone, Copy)]
pub struct NewWelcome<'a> {
    pub data: &'a [u8],
    pub devices: &'a [(String, String)],
}

/// An application message or proposal for the group at `epoch`.
#[derive(Debug, Clone)]
pub struct NewGroupMessage<'a> {
    pub conversation_id: &'a str,
    pub epoch: i64,
    pub content_type: ContentType,
    pub sender_device: &'a str,
    pub data: &'a [u8],
    pub now: i64,
}

/// Where an accepted message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub seq: i64,
    /// Devices that got it in their inbox (the sender's other devices included).
    pub recipients: Vec<String>,
    /// Devices that got a Welcome.
    pub welcomed: Vec<String>,
    /// The users of all those devices, once each (whom to tell that their inbox has news).
    pub users: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("no such conversation")]
    NotFound,
    /// The group has moved on: the sender must process what it missed and try again.
    #[error("the group is at epoch {current}")]
    StaleEpoch { current: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for DeliveryError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// An item of a device's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxItem {
    /// The cursor: sync with `after = id` of the last item handled.
    pub id: i64,
    pub conversation_id: String,
    pub created_at: i64,
    pub body: InboxBody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxBody {
    Message {
        seq: i64,
        epoch: i64,
        content_type: ContentType,
        sender_device: Option<String>,
        data: Vec<u8>,
    },
    Welcome {
        data: Vec<u8>,
    },
}

impl InboxItem {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let welcome: Option<Vec<u8>> = row.try_get("welcome")?;
        let body = match welcome {
            Some(data) => InboxBody::Welcome { data },
            None => InboxBody::Message {
                seq: row.try_get("seq")?,
                epoch: row.try_get("epoch")?,
                content_type: ContentType::from_stored(&row.try_get::<String, _>("content_type")?),
                sender_device: row.try_get("sender_device")?,
                data: row.try_get("data")?,
            },
        };
        Ok(Self {
            id: row.try_get("id")?,
            conversation_id: row.try_get("conversation_id")?,
            created_at: row.try_get("created_at")?,
            body,
        })
    }
}

impl Store {
    /// Accepts a Commit if the group is still at its epoch (else [`DeliveryError::StaleEpoch`]):
    /// logs it, delivers it to every device of the group but the sender (the removed ones
    /// included, so they learn it), then applies the device changes and queues the Welcome.
    pub async fn accept_commit(&self, c: &NewCommit<'_>) -> Result<Delivered, DeliveryError> {
        let mut tx = self.pool.begin().await?;
        let seq = advance(&mut tx, c.conversation_id, c.epoch, true, c.now).await?;
        if let Some(info) = c.group_info {
            sqlx::query("UPDATE conversations SET group_info = $2 WHERE id = $1")
                .bind(c.conversation_id)
                .bind(info)
                .execute(&mut *tx)
                .await?;
        }
        let message = LogEntry {
            conversation_id: c.conversation_id,
            seq,
            epoch: c.epoch,
            content_type: ContentType::Commit,
            sender_device: c.sender_device,
            data: c.data,
            now: c.now,
        };
        let (recipients, mut users) = log_and_fan_out(&mut tx, &message).await?;
        for device in c.removed_devices {
            sqlx::query(
                "DELETE FROM conversation_devices WHERE conversation_id = $1 AND device_id = $2",
            )
            .bind(c.conversation_id)
            .bind(device)
            .execute(&mut *tx)
            .await?;
        }
        let mut welcomed = Vec::new();
        if let Some(NewWelcome { data: welcome, devices }) = c.welcome {
            for (device, user) in devices {
                add_member(&mut tx, c.conversation_id, user, MemberRole::Member, c.now).await?;
                sqlx::query(
                    "INSERT INTO conversation_devices (conversation_id, device_id, user_id, \
                     added_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(c.conversation_id)
                .bind(device)
                .bind(user)
                .bind(c.now)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO inbox (device_id, conversation_id, welcome, created_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(device)
                .bind(c.conversation_id)
                .bind(welcome)
                .bind(c.now)
                .execute(&mut *tx)
                .await?;
                welcomed.push(device.clone());
                users.push(user.clone());
            }
        }
        tx.commit().await?;
        users.sort();
        users.dedup();
        Ok(Delivered { seq, recipients, welcomed, users })
    }

    /// Accepts an application message or proposal made at the group's current epoch.
    pub async fn post_group_message(
        &self,
        m: &NewGroupMessage<'_>,
    ) -> Result<Delivered, DeliveryError> {
        let mut tx = self.pool.begin().await?;
        let seq = advance(&mut tx, m.conversation_id, m.epoch, false, m.now).await?;
        let entry = LogEntry {
            conversation_id: m.conversation_id,
            seq,
            epoch: m.epoch,
            content_type: m.content_type,
            sender_device: m.sender_device,
            data: m.data,
            now: m.now,
        };
        let (recipients, users) = log_and_fan_out(&mut tx, &entry).await?;
        tx.commit().await?;
        Ok(Delivered { seq, recipients, welcomed: Vec::new(), users })
    }

    /// The group's GroupInfo as of its last Commit.
    pub async fn group_info(&self, conversation_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT group_info FROM conversations WHERE id = $1")
            .bind(conversation_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<Option<Vec<u8>>, _>("group_info")).transpose()?.flatten())
    }

    /// Up to `limit` items of the device's inbox after the cursor `after`, oldest first.
    pub async fn inbox(
        &self,
        device_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<InboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.id, i.conversation_id, i.created_at, i.welcome, i.seq, g.epoch, \
             g.content_type, g.sender_device, g.data FROM inbox i \
             LEFT JOIN group_messages g ON g.conversation_id = i.conversation_id AND g.seq = i.seq \
             WHERE i.device_id = $1 AND i.id > $2 ORDER BY i.id LIMIT $3",
        )
        .bind(device_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(InboxItem::from_row).collect::<Result<_, _>>()?)
    }

    /// Marks the device's items up to `up_to` as handled; pruning removes them later.
    pub async fn ack_inbox(
        &self,
        device_id: &str,
        up_to: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE inbox SET acked_at = $3 WHERE device_id = $1 AND id <= $2 AND acked_at IS NULL",
        )
        .bind(device_id)
        .bind(up_to)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes inbox items acknowledged before `acked_before`, then group messages older than
    /// `logged_before` that no inbox still points at. Returns (items, messages) deleted.
    pub async fn prune_delivered(
        &self,
        acked_before: i64,
        logged_before: i64,
    ) -> Result<(u64, u64), StoreError> {
        let items = sqlx::query("DELETE FROM inbox WHERE acked_at IS NOT NULL AND acked_at < $1")
            .bind(acked_before)
            .execute(&self.pool)
            .await?;
        let messages = sqlx::query(
            "DELETE FROM group_messages WHERE created_at < $1 AND NOT EXISTS \
             (SELECT 1 FROM inbox i WHERE i.conversation_id = group_messages.conversation_id \
              AND i.seq = group_messages.seq)",
        )
        .bind(logged_before)
        .execute(&self.pool)
        .await?;
        Ok((items.rows_affected(), messages.rows_affected()))
    }
}
/// Takes the conversation's next seq if it is at `epoch` (moving it to the next epoch for a
/// Commit); the compare-and-set that orders a group.
async fn advance(
    tx: &mut Transaction<'_, Any>,
    conversation_id: &str,
    epoch: i64,
    commit: bool,
    now: i64,
) -> Result<i64, DeliveryError> {
    let row = sqlx::query(
        "UPDATE conversations SET next_seq = next_seq + 1, epoch = epoch + $3, updated_at = $4 \
         WHERE id = $1 AND epoch = $2 RETURNING next_seq - 1 AS seq",
    )
    .bind(conversation_id)
    .bind(epoch)
    .bind(i64::from(commit))
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = row {
        return Ok(row.try_get("seq")?);
    }
    let current = sqlx::query("SELECT epoch FROM conversations WHERE id = $1")
        .bind(conversation_id)
        .fetch_optional(&mut **tx)
        .await?;
    match current {
        Some(row) => Err(DeliveryError::StaleEpoch { current: row.try_get("epoch")? }),
        None => Err(DeliveryError::NotFound),
    }
}

struct LogEntry<'a> {
    conversation_id: &'a str,
    seq: i64,
    epoch: i64,
    content_type: ContentType,
    sender_device: &'a str,
    data: &'a [u8],
    now: i64,
}

/// Appends to the group's log and queues the entry for every device of the group but the
/// sender; returns those devices and their users (each once).
async fn log_and_fan_out(
    tx: &mut Transaction<'_, Any>,
    m: &LogEntry<'_>,
) -> Result<(Vec<String>, Vec<String>), sqlx::Error> {
    sqlx::query(
        "INSERT INTO group_messages (conversation_id, seq, epoch, content_type, sender_device, \
         data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(m.conversation_id)
    .bind(m.seq)
    .bind(m.epoch)
    .bind(m.content_type.as_str())
    .bind(m.sender_device)
    .bind(m.data)
    .bind(m.now)
    .execute(&mut **tx)
    .await?;
    let rows = sqlx::query(
        "SELECT device_id, user_id FROM conversation_devices WHERE conversation_id = $1 \
         AND device_id <> $2 ORDER BY device_id",
    )
    .bind(m.conversation_id)
    .bind(m.sender_device)
    .fetch_all(&mut **tx)
    .await?;
    let recipients: Vec<String> =
        rows.iter().map(|r| r.try_get("device_id")).collect::<Result<_, _>>()?;
    let mut users: Vec<String> =
        rows.iter().map(|r| r.try_get("user_id")).collect::<Result<_, _>>()?;
    users.sort();
    users.dedup();
    sqlx::query(
        "INSERT INTO inbox (device_id, conversation_id, seq, created_at) \
         SELECT device_id, $1, $2, $3 FROM conversation_devices \
         WHERE conversation_id = $1 AND device_id <> $4",
    )
    .bind(m.conversation_id)
    .bind(m.seq)
    .bind(m.now)
    .bind(m.sender_device)
    .execute(&mut **tx)
    .await?;
    Ok((recipients, users))
}
