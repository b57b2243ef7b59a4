//! Device links: a new device of a user asks to join the user's identity, and one of the
//! user's devices that holds the identity key approves (registering the new device, signed by
//! that key) or rejects it. The server keeps the request and the approving device's envelope
//! (opaque bytes for the new device) until the request expires.

use crate::key_directory::{DeviceError, NewDevice};
use crate::{Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Where a link request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Pending,
    Approved,
    Rejected,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }

    fn from_stored(text: &str) -> Self {
        match text {
            "approved" => Self::Approved,
            "rejected" => Self::Rejected,
            _ => Self::Pending,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLinkRecord {
    pub id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub signature_key: Vec<u8>,
    pub transfer_key: Vec<u8>,
    pub state: LinkState,
    /// The device registered on approval.
    pub device_id: Option<String>,
    pub envelope: Option<Vec<u8>>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl DeviceLinkRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            name: row.try_get("name")?,
            signature_key: row.try_get("signature_key")?,
            transfer_key: row.try_get("transfer_key")?,
            state: LinkState::from_stored(&row.try_get::<String, _>("state")?),
            device_id: row.try_get("device_id")?,
            envelope: row.try_get("envelope")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewDeviceLink<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub name: Option<&'a str>,
    pub signature_key: &'a [u8],
    pub transfer_key: &'a [u8],
    pub created_at: i64,
    pub expires_at: i64,
}

/// Why a link could not be approved.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No pending, unexpired request of this user with that id.
    #[error("no such pending link request")]
    NotPending,
    #[error(transparent)]
    Device(#[from] DeviceError),
}

impl From<sqlx::Error> for LinkError {
    fn from(e: sqlx::Error) -> Self {
        Self::Device(DeviceError::Store(e.into()))
    }
}

const LINK_COLUMNS: &str = "id, user_id, name, signature_key, transfer_key, state, device_id, \
                            envelope, created_at, expires_at";

impl Store {
    /// Stores a link request unless the user already has `max_pending` unexpired ones; true
    /// when stored.
    pub async fn create_device_link(
        &self,
        link: &NewDeviceLink<'_>,
        max_pending: i64,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM device_links WHERE user_id = $1 AND state = 'pending' \
             AND expires_at > $2",
        )
        .bind(link.user_id)
        .bind(link.created_at)
        .fetch_one(&self.pool)
        .await?;
        if row.try_get::<i64, _>("n")? >= max_pending {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO device_links (id, user_id, name, signature_key, transfer_key, state, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7)",
        )
        .bind(link.id)
        .bind(link.user_id)
        .bind(link.name)
        .bind(link.signature_key)
        .bind(link.transfer_key)
        .bind(link.created_at)
        .bind(link.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    /// The user's link request `id` if it has not expired.
    pub async fn device_link(
        &self,
        user_id: &str,
        id: &str,
        now: i64,
    ) -> Result<Option<DeviceLinkRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM device_links WHERE id = $1 AND user_id = $2 \
             AND expires_at > $3"
        ))
        .bind(id)
        .bind(user_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(DeviceLinkRecord::from_row).transpose()?)
    }

    /// The user's pending, unexpired link requests, oldest first.
    pub async fn pending_device_links(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<DeviceLinkRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM device_links WHERE user_id = $1 AND state = 'pending' \
             AND expires_at > $2 ORDER BY created_at, id"
        ))
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(DeviceLinkRecord::from_row).collect::<Result<_, _>>()?)
    }

    /// Approves a pending request: registers `device` (the request's key, signed by the
    /// identity key) and keeps `envelope` for the new device, in one transaction.
    pub async fn approve_device_link(
        &self,
        link_id: &str,
        device: &NewDevice<'_>,
        envelope: Option<&[u8]>,
    ) -> Result<(), LinkError> {
        let mut tx = self.begin_write().await?;
        let taken = sqlx::query(
            "UPDATE device_links SET state = 'approved', envelope = $3, decided_at = $4 \
             WHERE id = $1 AND user_id = $2 AND state = 'pending' AND expires_at > $4",
        )
        .bind(link_id)
        .bind(device.user_id)
        .bind(envelope)
        .bind(device.created_at)
        .execute(&mut **tx)
        .await?;
        if taken.rows_affected() != 1 {
            return Err(LinkError::NotPending);
        }
        crate::key_directory::insert_device(&mut **tx, device).await?;
        sqlx::query("UPDATE device_links SET device_id = $2 WHERE id = $1")
            .bind(link_id)
            .bind(device.id)
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Rejects a pending request; false when there is no such pending request of the user.
    pub async fn reject_device_link(
        &self,
        user_id: &str,
        link_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE device_links SET state = 'rejected', decided_at = $3 \
             WHERE id = $1 AND user_id = $2 AND state = 'pending' AND expires_at > $3",
        )
        .bind(link_id)
        .bind(user_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets a request (the new device has its answer); false when there is none.
    pub async fn delete_device_link(
        &self,
        user_id: &str,
        link_id: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM device_links WHERE id = $1 AND user_id = $2")
            .bind(link_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes requests that expired before `now` (with their envelopes); returns how many.
    pub async fn prune_device_links(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM device_links WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
