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

impl Blobs {
    /// Deletes blob files (and leftover partial writes) that are not in `recorded` and were
    /// last written before `cutoff` — orphans of conversations deleted with their records, or
    /// of uploads whose record never landed. Returns how many went.
    pub async fn sweep(
        &self,
        recorded: &std::collections::HashSet<String>,
        cutoff: std::time::SystemTime,
    ) -> io::Result<u64> {
        let mut removed = 0;
        let mut fans = match tokio::fs::read_dir(&self.dir).await {
            Ok(fans) => fans,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        while let Some(fan) = fans.next_entry().await? {
            if !fan.file_type().await?.is_dir() {
                continue;
            }
            let mut files = tokio::fs::read_dir(fan.path()).await?;
            while let Some(file) = files.next_entry().await? {
                let name = file.file_name().to_string_lossy().into_owned();
                let old = file.metadata().await?.modified()? < cutoff;
                if old && !recorded.contains(&name) {
                    tokio::fs::remove_file(file.path()).await?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
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

    #[tokio::test]
    async fn sweep_deletes_old_unrecorded_blobs_only() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::at(dir.path());
        let (kept, orphan) =
            ("0a1b2c3d-0000-4000-8000-000000000001", "0a1b2c3d-0000-4000-8000-000000000002");
        blobs.put(kept, b"a").await.unwrap();
        blobs.put(orphan, b"b").await.unwrap();
        let recorded = std::collections::HashSet::from([kept.to_owned()]);
        let past = std::time::SystemTime::now() - std::time::Duration::from_hours(1);
        assert_eq!(blobs.sweep(&recorded, past).await.unwrap(), 0, "too fresh to judge");
        let future = std::time::SystemTime::now() + std::time::Duration::from_mins(1);
        assert_eq!(blobs.sweep(&recorded, future).await.unwrap(), 1);
        assert!(blobs.get(kept).await.unwrap().is_some());
        assert_eq!(blobs.get(orphan).await.unwrap(), None);
        assert_eq!(Blobs::at(&dir.path().join("none")).sweep(&recorded, future).await.unwrap(), 0);
    }
}
