//! Write transactions. SQLite has one writer at a time; a transaction begun the default
//! (deferred) way that reads before it writes cannot take the write lock once another
//! connection wrote meanwhile, and fails at once with "database is locked"
//! (`SQLITE_BUSY_SNAPSHOT`, no busy timeout applies) — concurrent registrations got 500s so.
//! On SQLite a [`WriteTx`] therefore waits its turn in this process (an async queue, instead of
//! SQLite's busy handler sleeping in 1 … 100 ms steps) and begins `IMMEDIATE`, taking the write
//! lock up front (another process, such as the admin CLI, is waited on by the busy timeout).
//! On PostgreSQL it is a plain transaction.

use crate::{Backend, Store};
use sqlx::{Any, Transaction};
use std::ops::{Deref, DerefMut};

pub(crate) struct WriteTx {
    // Dropped first: an unfinished transaction rolls back before the next writer's turn.
    tx: Transaction<'static, Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Store {
    /// Begins a transaction that will write (see the module's documentation).
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => {
                let turn = self.writer.clone().lock_owned().await;
                let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(WriteTx { tx, _turn: Some(turn) })
            }
            Backend::Postgres => Ok(WriteTx { tx: self.pool.begin().await?, _turn: None }),
        }
    }
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl Deref for WriteTx {
    type Target = Transaction<'static, Any>;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}
