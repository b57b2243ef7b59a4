//! The key directory of end-to-end encrypted chat: users' identity keys, their devices (each an
//! MLS member with its own signature key) and the devices' KeyPackages. The server stores the
//! public halves only; the checks that these bytes are what they claim are the API's, before
//! they get here.

use crate::{Backend, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub signature_key: Vec<u8>,
    pub identity_signature: Vec<u8>,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
}

impl DeviceRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            name: row.try_get("name")?,
            signature_key: row.try_get("signature_key")?,
            identity_signature: row.try_get("identity_signature")?,
            created_at: row.try_get("created_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewDevice<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub name: Option<&'a str>,
    pub signature_key: &'a [u8],
    pub identity_signature: &'a [u8],
    pub created_at: i64,
}

/// Why a device could not be added.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("another device already uses this signature key")]
    SignatureKeyTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A KeyPackage as uploaded, with what its inspection found.
#[derive(Debug, Clone)]
pub struct NewKeyPackage {
    /// Its KeyPackageRef (RFC 9420 §5.2): how a Welcome names it.
    pub reference: Vec<u8>,
    pub data: Vec<u8>,
    pub last_resort: bool,
    /// Unix seconds after which it must not be used.
    pub not_after: i64,
}

/// A KeyPackage handed out to someone adding the device to a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedKeyPackage {
    pub device_id: String,
    pub reference: Vec<u8>,
    pub data: Vec<u8>,
    pub last_resort: bool,
}

/// What a device has left on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPackageCount {
    /// Unclaimed, unexpired, not last-resort.
    pub available: u64,
    pub has_last_resort: bool,
}

const DEVICE_COLUMNS: &str =
    "id, user_id, name, signature_key, identity_signature, created_at, last_seen_at";

impl Store {
    /// The user's identity key, if they have published one.
    pub async fn identity_key(&self, user_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT public_key FROM identity_keys WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("public_key")).transpose()?)
    }

    /// Publishes the user's identity key. A new key replaces the old one and removes every
    /// device it signed (their signatures no longer verify); the same key changes nothing.
    /// Returns whether a different key was replaced.
    pub async fn set_identity_key(
        &self,
        user_id: &str,
        public_key: &[u8],
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let old: Option<Vec<u8>> =
            sqlx::query("SELECT public_key FROM identity_keys WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&mut **tx)
                .await?
                .map(|r| r.try_get("public_key"))
                .transpose()?;
        let replaced = match old {
            Some(old) if old == public_key => return Ok(false),
            Some(_) => {
                sqlx::query("DELETE FROM devices WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query(
                    "UPDATE identity_keys SET public_key = $2, updated_at = $3 WHERE user_id = $1",
                )
                .bind(user_id)
                .bind(public_key)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                true
            }
            None => {
                sqlx::query(
                    "INSERT INTO identity_keys (user_id, public_key, created_at, updated_at) \
                     VALUES ($1, $2, $3, $3)",
                )
                .bind(user_id)
                .bind(public_key)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                false
            }
        };
        tx.commit().await?;
        Ok(replaced)
    }

    pub async fn add_device(&self, device: &NewDevice<'_>) -> Result<(), DeviceError> {
        insert_device(&self.pool, device).await
    }

    pub async fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(DeviceRecord::from_row).transpose()?)
    }

    /// A user's devices, oldest first.
    pub async fn devices_of(&self, user_id: &str) -> Result<Vec<DeviceRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE user_id = $1 ORDER BY created_at, id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(DeviceRecord::from_row).collect::<Result<_, _>>()?)
    }

    /// Removes one of the user's devices with its KeyPackages, group places and inbox.
    /// False when the user has no such device.
    pub async fn remove_device(&self, user_id: &str, device_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM devices WHERE id = $1 AND user_id = $2")
            .bind(device_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn touch_device(&self, device_id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE devices SET last_seen_at = $2 WHERE id = $1")
            .bind(device_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores a device's KeyPackages. A new last-resort KeyPackage replaces the previous one;
    /// a reference already stored is skipped. Returns how many were added.
    pub async fn add_key_packages(
        &self,
        device_id: &str,
        packages: &[NewKeyPackage],
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        if packages.iter().any(|p| p.last_resort) {
            sqlx::query("DELETE FROM key_packages WHERE device_id = $1 AND last_resort = 1")
                .bind(device_id)
                .execute(&mut **tx)
                .await?;
        }
        let mut added = 0;
        for package in packages {
            let done = sqlx::query(
                "INSERT INTO key_packages (package_ref, device_id, data, last_resort, not_after, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (package_ref) DO NOTHING",
            )
            .bind(&package.reference)
            .bind(device_id)
            .bind(&package.data)
            .bind(i64::from(package.last_resort))
            .bind(package.not_after)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            added += done.rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    pub async fn key_package_count(
        &self,
        device_id: &str,
        now: i64,
    ) -> Result<KeyPackageCount, StoreError> {
        let row = sqlx::query(
            // SUM is NUMERIC on PostgreSQL, which the Any driver cannot read: counted as BIGINT.
            "SELECT \
             CAST(COALESCE(SUM(CASE WHEN last_resort = 0 AND claimed_at IS NULL THEN 1 ELSE 0 \
               END), 0) AS BIGINT) AS available, \
             CAST(COALESCE(SUM(last_resort), 0) AS BIGINT) AS last_resort \
             FROM key_packages WHERE device_id = $1 AND not_after > $2",
        )
        .bind(device_id)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let available: i64 = row.try_get("available")?;
        let last_resort: i64 = row.try_get("last_resort")?;
        Ok(KeyPackageCount {
            available: u64::try_from(available).unwrap_or(0),
            has_last_resort: last_resort > 0,
        })
    }

    /// Claims one KeyPackage of each of `user_id`'s devices but `except_device` for `claimer`
    /// (a user id): an unclaimed one, never handed out twice even to concurrent claims, or
    /// else the device's last-resort one. Devices with neither are left out.
    pub async fn claim_key_packages(
        &self,
        user_id: &str,
        claimer: &str,
        except_device: Option<&str>,
        now: i64,
    ) -> Result<Vec<ClaimedKeyPackage>, StoreError> {
        // PostgreSQL: concurrent claims skip each other's row instead of waiting for it and
        // then finding it taken. SQLite runs one writer at a time, so the statement is atomic.
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let claim = format!(
            "UPDATE key_packages SET claimed_at = $3, claimed_by = $4 WHERE package_ref = \
             (SELECT package_ref FROM key_packages WHERE device_id = $1 AND last_resort = 0 \
              AND claimed_at IS NULL AND not_after > $2 ORDER BY created_at LIMIT 1{lock}) \
             AND claimed_at IS NULL RETURNING package_ref, data"
        );
        let mut handed = Vec::new();
        let devices = self.devices_of(user_id).await?;
        for device in devices.into_iter().filter(|d| Some(d.id.as_str()) != except_device) {
            let row = sqlx::query(&claim)
                .bind(&device.id)
                .bind(now)
                .bind(now)
                .bind(claimer)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(row) = row {
                handed.push(ClaimedKeyPackage {
                    device_id: device.id,
                    reference: row.try_get("package_ref")?,
                    data: row.try_get("data")?,
                    last_resort: false,
                });
                continue;
            }
            let last = sqlx::query(
                "SELECT package_ref, data FROM key_packages WHERE device_id = $1 \
                 AND last_resort = 1 AND not_after > $2",
            )
            .bind(&device.id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = last {
                handed.push(ClaimedKeyPackage {
                    device_id: device.id,
                    reference: row.try_get("package_ref")?,
                    data: row.try_get("data")?,
                    last_resort: true,
                });
            }
        }
        Ok(handed)
    }

    /// The device whose KeyPackage has this reference (to route a Welcome), and its user.
    pub async fn key_package_device(
        &self,
        reference: &[u8],
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT d.id, d.user_id FROM key_packages k JOIN devices d ON d.id = k.device_id \
             WHERE k.package_ref = $1",
        )
        .bind(reference)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|r| Ok::<_, sqlx::Error>((r.try_get("id")?, r.try_get("user_id")?)))
            .transpose()?)
    }

    /// Deletes expired KeyPackages and claimed ones older than `claimed_before`.
    pub async fn prune_key_packages(
        &self,
        now: i64,
        claimed_before: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM key_packages WHERE not_after <= $1 \
             OR (claimed_at IS NOT NULL AND claimed_at < $2 AND last_resort = 0)",
        )
        .bind(now)
        .bind(claimed_before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

/// Inserts a device (in a transaction or on the pool).
pub(crate) async fn insert_device<'e, E>(
    executor: E,
    device: &NewDevice<'_>,
) -> Result<(), DeviceError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO devices (id, user_id, name, signature_key, identity_signature, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(device.id)
    .bind(device.user_id)
    .bind(device.name)
    .bind(device.signature_key)
    .bind(device.identity_signature)
    .bind(device.created_at)
    .execute(executor)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => DeviceError::SignatureKeyTaken,
        e => DeviceError::Store(e.into()),
    })?;
    Ok(())
}
