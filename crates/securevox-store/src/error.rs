use std::path::PathBuf;
use thiserror::Error;

/// A storage failure that callers cannot fix by changing their input.
///
/// Driver errors are shown as they are (`transparent`), so a caller that adds its own context
/// ("opening the database …") prints the cause once, not once per layer.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database URL must start with sqlite: or postgres://")]
    UnsupportedUrl,
    /// [`crate::Store::connect_existing`] found no SQLite file to open.
    #[error("no database at {}", .0.display())]
    NotFound(PathBuf),
    /// The lock that serialises SQLite migrations between processes could not be taken.
    #[error("cannot lock {}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migration(#[from] sqlx::migrate::MigrateError),
}
