//! The MLS Delivery Service's records: the group's ordered log of Commits and messages, and
//! every device's inbox.
//!
//! Ordering rests on one row per conversation: accepting a Commit moves `epoch` on with a
//! compare-and-set (`WHERE epoch = $expected`), so exactly one Commit per epoch wins on both
//! backends, and every message takes the next `seq` from the same row in the same transaction,
//! so a group's log has no gaps and one order for everyone.

use crate::conversations::add_member;
use crate::inbox::{self, Queued};
use crate::{Store, StoreError};
use securevox_domain::delivery::{ContentType, MemberRole};
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
    /// Set for an external Commit: the sending device joins the group (its user, a member).
    pub joining_user: Option<&'a str>,
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
    /// Every inbox item queued, for pushing it to connected devices.
    pub queued: Vec<Queued>,
}

impl Delivered {
    fn new(seq: i64, queued: Vec<Queued>) -> Self {
        let (welcomes, messages): (Vec<&Queued>, Vec<&Queued>) =
            queued.iter().partition(|q| q.welcome);
        let mut users: Vec<String> = queued.iter().map(|q| q.user_id.clone()).collect();
        users.sort();
        users.dedup();
        Self {
            seq,
            recipients: messages.iter().map(|q| q.device_id.clone()).collect(),
            welcomed: welcomes.iter().map(|q| q.device_id.clone()).collect(),
            users,
            queued,
        }
    }
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

impl Store {
    /// Accepts a Commit if the group is still at its epoch (else [`DeliveryError::StaleEpoch`]):
    /// logs it, delivers it to every device of the group but the sender (the removed ones
    /// included, so they learn it), then applies the device changes and queues the Welcome.
    pub async fn accept_commit(&self, c: &NewCommit<'_>) -> Result<Delivered, DeliveryError> {
        let mut tx = self.begin_write().await?;
        let seq = advance(&mut tx, c.conversation_id, c.epoch, true, c.now).await?;
        // A Commit without a GroupInfo clears the old one: a stale GroupInfo only leads
        // external joins into `stale_epoch`.
        sqlx::query("UPDATE conversations SET group_info = $2 WHERE id = $1")
            .bind(c.conversation_id)
            .bind(c.group_info)
            .execute(&mut **tx)
            .await?;
        let mut devices = group_devices(&mut tx, c.conversation_id).await?;
        if let Some(welcome) = &c.welcome {
            devices.extend(welcome.devices.iter().map(|(device, _)| device.clone()));
        }
        inbox::lock_devices(&mut tx, self.backend, &mut devices).await?;
        let message = LogEntry {
            conversation_id: c.conversation_id,
            seq,
            epoch: c.epoch,
            content_type: ContentType::Commit,
            sender_device: c.sender_device,
            data: c.data,
            now: c.now,
        };
        let mut queued = log_and_fan_out(&mut tx, &message).await?;
        for device in c.removed_devices {
            // A user whose last device in the group goes is no longer a member (else they
            // could join again by external Commit).
            let gone = sqlx::query(
                "DELETE FROM conversation_devices WHERE conversation_id = $1 AND device_id = $2 \
                 RETURNING user_id",
            )
            .bind(c.conversation_id)
            .bind(device)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(row) = gone {
                let user: String = row.try_get("user_id")?;
                sqlx::query(
                    "DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2 \
                     AND NOT EXISTS (SELECT 1 FROM conversation_devices d \
                     WHERE d.conversation_id = $1 AND d.user_id = $2)",
                )
                .bind(c.conversation_id)
                .bind(&user)
                .execute(&mut **tx)
                .await?;
            }
        }
        if let Some(user) = c.joining_user {
            add_device(&mut tx, c.conversation_id, c.sender_device, user, c.now).await?;
        }
        if let Some(NewWelcome { data: welcome, devices }) = c.welcome {
            for (device, user) in devices {
                add_member(&mut tx, c.conversation_id, user, MemberRole::Member, c.now).await?;
                add_device(&mut tx, c.conversation_id, device, user, c.now).await?;
                queued.push(
                    inbox::queue_welcome(&mut tx, c.conversation_id, device, welcome, c.now)
                        .await?,
                );
            }
        }
        tx.commit().await?;
        Ok(Delivered::new(seq, queued))
    }

    /// Accepts an application message or proposal made at the group's current epoch.
    pub async fn post_group_message(
        &self,
        m: &NewGroupMessage<'_>,
    ) -> Result<Delivered, DeliveryError> {
        let mut tx = self.begin_write().await?;
        let seq = advance(&mut tx, m.conversation_id, m.epoch, false, m.now).await?;
        let mut devices = group_devices(&mut tx, m.conversation_id).await?;
        inbox::lock_devices(&mut tx, self.backend, &mut devices).await?;
        let entry = LogEntry {
            conversation_id: m.conversation_id,
            seq,
            epoch: m.epoch,
            content_type: m.content_type,
            sender_device: m.sender_device,
            data: m.data,
            now: m.now,
        };
        let queued = log_and_fan_out(&mut tx, &entry).await?;
        tx.commit().await?;
        Ok(Delivered::new(seq, queued))
    }

    /// The group's GroupInfo as of its last Commit.
    pub async fn group_info(&self, conversation_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT group_info FROM conversations WHERE id = $1")
            .bind(conversation_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<Option<Vec<u8>>, _>("group_info")).transpose()?.flatten())
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

/// The devices in the group now.
async fn group_devices(
    tx: &mut Transaction<'_, Any>,
    conversation_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query("SELECT device_id FROM conversation_devices WHERE conversation_id = $1")
        .bind(conversation_id)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(|r| r.try_get("device_id")).collect()
}

async fn add_device(
    tx: &mut Transaction<'_, Any>,
    conversation_id: &str,
    device_id: &str,
    user_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO conversation_devices (conversation_id, device_id, user_id, added_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(conversation_id)
    .bind(device_id)
    .bind(user_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Appends to the group's log and queues the entry for every device of the group but the
/// sender.
async fn log_and_fan_out(
    tx: &mut Transaction<'_, Any>,
    m: &LogEntry<'_>,
) -> Result<Vec<Queued>, sqlx::Error> {
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
    inbox::queue_message(tx, m.conversation_id, m.seq, m.sender_device, m.now).await
}
