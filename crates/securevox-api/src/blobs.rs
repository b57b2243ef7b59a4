//! The blob store for encrypted attachments: files under `<data_dir>/blobs/`, named by id and
//! fanned out by the id's first two characters. Writes go to a temporary file renamed into
//! place, so a blob is either whole or absent. (An S3-compatible backend comes with
//! scale-out.)

use std::io;
use std::path::{Path, PathBuf};

pub struct Blobs {
    dir: PathBuf,
}

impl Blobs {
    pub fn at(data_dir: &Path) -> Self {
        Self { dir: data_dir.join("blobs") }
    }

    /// Ids are UUIDs (checked by the caller), so they make safe file names.
    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id.get(..2).unwrap_or("__")).join(id)
    }

    pub async fn put(&self, id: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(id);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let partial = path.with_extension("partial");
        tokio::fs::write(&partial, bytes).await?;
        tokio::fs::rename(&partial, &path).await
    }

    pub async fn get(&self, id: &str) -> io::Result<Option<Vec<u8>>> {
        match tokio::fs::read(self.path(id)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a blob; one already gone is not an error.
    pub async fn delete(&self, id: &str) -> io::Result<()> {
        match tokio::fs::remove_file(self.path(id)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_delete() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::at(dir.path());
        let id = "0a1b2c3d-0000-4000-8000-000000000000";
        assert_eq!(blobs.get(id).await.unwrap(), None);
        blobs.put(id, b"ciphertext").await.unwrap();
        assert_eq!(blobs.get(id).await.unwrap().as_deref(), Some(&b"ciphertext"[..]));
        assert!(dir.path().join("blobs/0a").join(id).is_file());
        blobs.delete(id).await.unwrap();
        blobs.delete(id).await.unwrap();
        assert_eq!(blobs.get(id).await.unwrap(), None);
    }
}
