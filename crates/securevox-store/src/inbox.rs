//! Every device's inbox: what it has to process, in order, with a cursor; and the fan-out
//! that queues a group's message (or a Welcome) for devices.
//!
//! A device's items must become visible in the order of their ids, or a device syncing
//! between two commits could move its cursor past an item not yet committed. SQLite has one
//! writer at a time; on PostgreSQL, a transaction locks the rows of the devices it queues for
//! (in id order, so two transactions cannot deadlock) before taking ids, and holds them to
//! its commit.

use crate::{Backend, Store, StoreError};
use securevox_domain::delivery::ContentType;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

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

/// One item queued for a device by a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub device_id: String,
    pub user_id: String,
    /// The item's id in the device's inbox (its cursor).
    pub item_id: i64,
    /// The id of the device's item before it, if one is still stored: a device whose cursor
    /// is at `prev` (or past it) misses nothing by taking this item directly.
    pub prev: Option<i64>,
    /// A Welcome rather than a group message.
    pub welcome: bool,
}

/// Locks the rows of `devices` (sorted, once each) until the transaction ends, on PostgreSQL.
pub(crate) async fn lock_devices(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    devices: &mut Vec<String>,
) -> Result<(), sqlx::Error> {
    devices.sort();
    devices.dedup();
    if backend == Backend::Postgres && !devices.is_empty() {
        for device in devices.iter() {
            sqlx::query("SELECT id FROM devices WHERE id = $1 FOR NO KEY UPDATE")
                .bind(device)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// Queues group message `seq` for every device of the group but `sender_device`; returns
/// what was queued, in device order.
pub(crate) async fn queue_message(
    tx: &mut Transaction<'_, Any>,
    conversation_id: &str,
    seq: i64,
    sender_device: &str,
    now: i64,
) -> Result<Vec<Queued>, sqlx::Error> {
    sqlx::query(
        "INSERT INTO inbox (device_id, conversation_id, seq, created_at) \
         SELECT device_id, $1, $2, $3 FROM conversation_devices \
         WHERE conversation_id = $1 AND device_id <> $4 ORDER BY device_id",
    )
    .bind(conversation_id)
    .bind(seq)
    .bind(now)
    .bind(sender_device)
    .execute(&mut **tx)
    .await?;
    let rows = sqlx::query(
        "SELECT i.id, i.device_id, d.user_id, \
         (SELECT MAX(j.id) FROM inbox j WHERE j.device_id = i.device_id AND j.id < i.id) AS prev \
         FROM inbox i JOIN devices d ON d.id = i.device_id \
         WHERE i.conversation_id = $1 AND i.seq = $2 ORDER BY i.device_id",
    )
    .bind(conversation_id)
    .bind(seq)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Queued {
                device_id: row.try_get("device_id")?,
                user_id: row.try_get("user_id")?,
                item_id: row.try_get("id")?,
                prev: row.try_get("prev")?,
                welcome: false,
            })
        })
        .collect()
}

/// Queues a Welcome for one device.
pub(crate) async fn queue_welcome(
    tx: &mut Transaction<'_, Any>,
    conversation_id: &str,
    device_id: &str,
    welcome: &[u8],
    now: i64,
) -> Result<Queued, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO inbox (device_id, conversation_id, welcome, created_at) \
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(device_id)
    .bind(conversation_id)
    .bind(welcome)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    let item_id: i64 = row.try_get("id")?;
    let row = sqlx::query(
        "SELECT user_id, (SELECT MAX(j.id) FROM inbox j WHERE j.device_id = $1 AND j.id < $2) \
         AS prev FROM devices WHERE id = $1",
    )
    .bind(device_id)
    .bind(item_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Queued {
        device_id: device_id.to_owned(),
        user_id: row.try_get("user_id")?,
        item_id,
        prev: row.try_get("prev")?,
        welcome: true,
    })
}
