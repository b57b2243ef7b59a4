//! Encrypted attachments' records (C2): which conversation a blob was posted to, by whom, its
//! size and digest. The blob itself is in the API's blob store; the server never knows a file
//! name or type.

use crate::{Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRecord {
    pub id: String,
    pub conversation_id: String,
    pub uploader_id: Option<String>,
    pub size: i64,
    /// Hex SHA-256 of the stored (encrypted) bytes.
    pub sha256: String,
    pub created_at: i64,
}

impl AttachmentRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            conversation_id: row.try_get("conversation_id")?,
            uploader_id: row.try_get("uploader_id")?,
            size: row.try_get("size")?,
            sha256: row.try_get("sha256")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

const COLUMNS: &str = "id, conversation_id, uploader_id, size, sha256, created_at";

impl Store {
    pub async fn add_attachment(&self, a: &AttachmentRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO attachments (id, conversation_id, uploader_id, size, sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&a.id)
        .bind(&a.conversation_id)
        .bind(&a.uploader_id)
        .bind(a.size)
        .bind(&a.sha256)
        .bind(a.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn attachment(&self, id: &str) -> Result<Option<AttachmentRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM attachments WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(AttachmentRecord::from_row).transpose()?)
    }

    /// Every attachment id still recorded (the blob store deletes files nobody records).
    pub async fn attachment_ids(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM attachments").fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?)
    }

    /// Deletes the records of attachments uploaded before `before`; returns their ids.
    pub async fn prune_attachments(&self, before: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("DELETE FROM attachments WHERE created_at < $1 RETURNING id")
            .bind(before)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?)
    }
}
