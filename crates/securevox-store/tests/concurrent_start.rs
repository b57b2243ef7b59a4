//! Several processes starting on the same new SQLite file at once (two replicas under a process
//! manager, or the server and the admin CLI) must all come up: sqlx takes no migration lock on
//! SQLite, so `Store::connect` serialises creating and migrating the file with a lock file.
//!
//! The tasks run in one process, which is enough: the lock is a file lock on a file each
//! `connect` opens itself, so tasks exclude each other as processes do.
//!
//! The same race on PostgreSQL (where sqlx's migrator takes an advisory lock) runs when
//! `SECUREVOX_TEST_DATABASE_URL` names a server where the user may create databases.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use securevox_store::{Store, StoreError};
use sqlx::{Connection, Executor};
use std::sync::Arc;
use tokio::sync::Barrier;

const TASKS: usize = 4;

/// Starts [`TASKS`] `Store::connect(url)` at the same moment; panics unless all succeed.
async fn connect_all_at_once(url: &str) -> Vec<Store> {
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (url, barrier) = (url.to_owned(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                Store::connect(&url).await
            })
        })
        .collect();
    let mut stores = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(store) => stores.push(store),
            Err(e) => panic!("a concurrent start failed: {e}"),
        }
    }
    for store in &stores {
        assert_eq!(store.count_users().await.unwrap(), 0, "migrated and usable");
    }
    stores
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_start_on_one_sqlite_file_succeeds() {
    // A few rounds, each on a fresh file, so a lucky interleaving does not hide a race.
    for _round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("securevox.db").display());
        for store in connect_all_at_once(&url).await {
            store.close().await;
        }
        assert!(dir.path().join("securevox.db.lock").exists(), "the lock file sits beside it");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_start_on_one_postgres_database_succeeds() {
    let admin_url = match std::env::var("SECUREVOX_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            assert!(
                std::env::var("SECUREVOX_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "SECUREVOX_TEST_REQUIRE_POSTGRES=1 but SECUREVOX_TEST_DATABASE_URL is not set"
            );
            println!("PostgreSQL variant did not run: SECUREVOX_TEST_DATABASE_URL is not set");
            return;
        }
    };
    let name = format!("sv_start_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    admin.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
    let (base, _) = admin_url.split('?').next().unwrap().rsplit_once('/').unwrap();
    let url = format!("{base}/{name}");
    let outcome = tokio::spawn(async move {
        for store in connect_all_at_once(&url).await {
            store.close().await;
        }
    })
    .await;
    admin.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await.unwrap();
    admin.close().await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test]
async fn connect_existing_never_creates_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("securevox.db");
    let url = format!("sqlite://{}", path.display());
    let err = Store::connect_existing(&url).await.err();
    assert!(matches!(&err, Some(StoreError::NotFound(p)) if *p == path), "got {err:?}");
    assert!(!path.exists(), "no file was created");

    Store::connect(&url).await.unwrap().close().await;
    let store = Store::connect_existing(&url).await.unwrap();
    assert_eq!(store.count_users().await.unwrap(), 0);
    store.close().await;
}

#[tokio::test]
async fn a_data_dir_with_url_special_characters_works() {
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("50% off?#1");
    std::fs::create_dir(&odd).unwrap();
    let encoded = odd.join("securevox.db").display().to_string();
    let encoded = encoded.replace('%', "%25").replace('?', "%3F").replace('#', "%23");
    let store = Store::connect(&format!("sqlite://{encoded}")).await.unwrap();
    store.close().await;
    assert!(odd.join("securevox.db").exists(), "the file is where the path says");
}
