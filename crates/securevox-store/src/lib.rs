//! SecureVox storage: one [`Store`] over SQLite (the zero-configuration default) or PostgreSQL
//! (chosen by a `postgres://` URL), with the same queries and behaviour on both.
//!
//! Queries use sqlx's runtime-generic `Any` driver with `$N` placeholders, which both SQLite and
//! PostgreSQL accept, and only column types the two share (TEXT, BIGINT). Each backend keeps its
//! own migrations directory so their DDL may diverge when a feature needs it. The conformance
//! suite in `tests/` runs every behaviour against both backends.
//!
//! Depends on `securevox-domain` for its types; must not depend on HTTP or the real-time layer.

mod account_admin;
mod attachments;
mod calls;
mod contacts;
mod conversations;
mod delivery;
mod device_links;
mod error;
mod inbox;
mod invites;
mod key_directory;
mod registration;
mod sessions;
mod settings;
mod users;
mod write_tx;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Executor};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};
use std::time::Duration;

pub use account_admin::{AccountChange, AccountChangeError};
pub use attachments::AttachmentRecord;
pub use calls::{CallHistoryEntry, NewCall};
pub use contacts::{ContactRecord, ContactState};
pub use conversations::{ConversationRecord, NewConversation};
pub use delivery::{Delivered, DeliveryError, NewCommit, NewGroupMessage, NewWelcome};
pub use device_links::{DeviceLinkRecord, LinkError, LinkState, NewDeviceLink};
pub use error::StoreError;
pub use inbox::{InboxBody, InboxItem, Queued};
pub use invites::{InviteRecord, NewInvite};
pub use key_directory::{
    ClaimedKeyPackage, DeviceError, DeviceRecord, KeyPackageCount, NewDevice, NewKeyPackage,
};
pub use registration::{Admission, InvitePolicy, NewUser, RegisterError};
pub use sessions::{NewSession, RefreshOutcome, SessionAuth, SessionRecord};
pub use users::UserRecord;

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The database, shared by every part of the server (cheap to clone).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite's writers, one at a time (see [`write_tx`]).
    writer: Arc<tokio::sync::Mutex<()>>,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Backend {
    fn of_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://…`) and applies pending migrations.
    /// A SQLite file is created if missing (its directory must exist).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::open(url, true).await
    }

    /// Like [`Store::connect`], but a SQLite database must already exist: a missing file is
    /// [`StoreError::NotFound`], never a new empty database. For tools that work on the data of
    /// an existing server, where a wrong path must be an error.
    pub async fn connect_existing(url: &str) -> Result<Self, StoreError> {
        Self::open(url, false).await
    }

    /// Opens one connection to a PostgreSQL `url` and closes it, without the pool's retries, so
    /// a refused connection, an unknown host, a wrong password or a missing database is
    /// reported at once. A host that drops packets is waited on as long as the OS allows: bound
    /// the call with a timeout. For SQLite (a local file) there is nothing to reach: `Ok`.
    pub async fn probe(url: &str) -> Result<(), StoreError> {
        sqlx::any::install_default_drivers();
        if Backend::of_url(url)? == Backend::Sqlite {
            return Ok(());
        }
        let conn = AnyConnection::connect(url).await?;
        conn.close().await?;
        Ok(())
    }

    async fn open(url: &str, create: bool) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let file = sqlite_file(url);
        if let Some(path) = &file {
            if !create && !path.exists() {
                return Err(StoreError::NotFound(path.clone()));
            }
        }
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode={}", if create { "rwc" } else { "rw" })
            }
            _ => url.to_owned(),
        };
        // sqlx takes no migration lock on SQLite: two processes starting on a new file would
        // both create the tables, and one would fail. Serialise creating the file, switching it
        // to WAL and migrating it with a lock file beside it (PostgreSQL migrations take an
        // advisory lock of their own).
        let migration_lock = match &file {
            Some(path) => {
                let lock = lock_path(path);
                Some(
                    lock_exclusive(lock.clone())
                        .await
                        .map_err(|source| StoreError::Lock { path: lock, source })?,
                )
            }
            None => None,
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let mut pool = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(10))
            .max_connections(match backend {
                // SQLite has one writer anyway; a few readers are enough for WAL.
                Backend::Sqlite => 4,
                Backend::Postgres => 10,
            });
        if backend == Backend::Sqlite {
            pool = pool.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers proceed while the writer commits; the busy timeout lets
                    // the admin CLI write while the server runs.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                         PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                    )
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = pool.connect_with(options).await?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        if let Err(e) = migrator.run(&pool).await {
            pool.close().await;
            return Err(e.into());
        }
        drop(migration_lock);
        Ok(Self { pool, backend, writer: Arc::default() })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Round trip to the database, for health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The store was closed (the server is stopping).
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// Connections open and idle in the pool, for metrics.
    pub fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// Waits for in-flight queries and closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The file a `sqlite:` URL names: the part after `sqlite://` (or `sqlite:`) up to any `?query`,
/// percent-decoded as sqlx decodes it (so `%3F` is a `?` in the name). `None` for PostgreSQL and
/// for in-memory databases.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory") {
        return None;
    }
    Some(PathBuf::from(percent_decode(path)))
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        char::from(b).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
            {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `<database file>.lock`
fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes an exclusive lock on `path` (created if missing); released when the file is dropped.
/// Waiting happens on a helper thread, so a task waiting for another process's (or task's)
/// migration does not block the async executor.
async fn lock_exclusive(path: PathBuf) -> std::io::Result<File> {
    struct Waiting {
        result: Option<std::io::Result<File>>,
        waker: Option<Waker>,
    }

    let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
    match file.try_lock() {
        Ok(()) => return Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {}
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    let shared = Arc::new(Mutex::new(Waiting { result: None, waker: None }));
    let helper = Arc::clone(&shared);
    std::thread::Builder::new().name("securevox-db-lock".into()).spawn(move || {
        let result = file.lock().map(|()| file);
        let mut waiting = helper.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.result = Some(result);
        if let Some(waker) = waiting.waker.take() {
            waker.wake();
        }
    })?;
    std::future::poll_fn(move |cx| {
        let mut waiting = shared.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(result) = waiting.result.take() {
            Poll::Ready(result)
        } else {
            waiting.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_file_is_the_decoded_path_without_the_query() {
        let file = |url: &str| sqlite_file(url).map(|p| p.display().to_string());
        assert_eq!(file("sqlite://./data/securevox.db").as_deref(), Some("./data/securevox.db"));
        assert_eq!(
            file("sqlite:///srv/sv/securevox.db?mode=rwc").as_deref(),
            Some("/srv/sv/securevox.db")
        );
        assert_eq!(file("sqlite:x.db").as_deref(), Some("x.db"));
        assert_eq!(file("sqlite:///d/50%25%3Fa%23b/x.db").as_deref(), Some("/d/50%?a#b/x.db"));
        assert_eq!(file("sqlite:///d/100%/x.db").as_deref(), Some("/d/100%/x.db"), "stray %");
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("sqlite://?mode=memory"), None);
        assert_eq!(file("postgres://u:p@h/db"), None);
        assert_eq!(lock_path(Path::new("/d/x.db")), Path::new("/d/x.db.lock"));
    }
}
