//! The conformance harness: every scenario runs against SQLite and PostgreSQL, as two tests
//! named `<scenario>::sqlite` and `<scenario>::postgres`.
//!
//! SQLite uses a fresh file in a temporary directory. PostgreSQL uses a fresh database
//! `sv_store_<uuid>` created through the admin URL in `SECUREVOX_TEST_DATABASE_URL` and dropped
//! afterwards (even when the scenario fails). Without that variable the PostgreSQL variants say
//! they did not run and pass, unless `SECUREVOX_TEST_REQUIRE_POSTGRES=1`, which makes them fail.

// Each test binary uses part of the harness.
#![allow(dead_code)]

pub mod chat;

use securevox_domain::{Password, PasswordHash, Role, Username};
use securevox_store::{
    Admission, Backend, InvitePolicy, NewUser, RegisterError, Store, UserRecord,
};
use sqlx::{Connection, Executor};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use tokio::sync::Barrier;
use tokio::task::JoinError;
use uuid::Uuid;

pub const DATABASE_URL_VAR: &str = "SECUREVOX_TEST_DATABASE_URL";
pub const REQUIRE_POSTGRES_VAR: &str = "SECUREVOX_TEST_REQUIRE_POSTGRES";

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// What a scenario gets: a migrated, empty store and the URL it was opened with.
#[derive(Clone)]
pub struct TestDb {
    pub store: Store,
    pub url: String,
}

/// Turns each scenario `async fn name(db: TestDb)` into `name::sqlite` and `name::postgres`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                crate::harness::run_sqlite(super::$name).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                crate::harness::run_postgres(super::$name).await;
            }
        }
    )*};
}

pub async fn run_sqlite<F, Fut>(scenario: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::connect(&url).await.expect("open SQLite store");
    assert_eq!(store.backend(), Backend::Sqlite);
    let outcome = tokio::spawn(scenario(TestDb { store: store.clone(), url })).await;
    store.close().await;
    drop(dir);
    finish(outcome);
}

pub async fn run_postgres<F, Fut>(scenario: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(admin_url) = postgres_admin_url() else {
        return;
    };
    let name = format!("sv_store_{}", Uuid::new_v4().simple());
    let mut admin =
        sqlx::PgConnection::connect(&admin_url).await.expect("connect to the PostgreSQL admin URL");
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create the test database");
    let url = database_url(&admin_url, &name);
    let outcome = match Store::connect(&url).await {
        Ok(store) => {
            assert_eq!(store.backend(), Backend::Postgres);
            let outcome = tokio::spawn(scenario(TestDb { store: store.clone(), url })).await;
            store.close().await;
            Ok(outcome)
        }
        Err(e) => Err(e),
    };
    // Clean-up, best effort: an autovacuum worker that happens to be on the database makes
    // DROP … WITH (FORCE) fail ("must be a member of the role whose process is being
    // terminated"); it is gone a moment later. A database left behind fails no test.
    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    for attempt in 1..=5 {
        match admin.execute(drop.as_str()).await {
            Ok(_) => break,
            Err(e) if attempt == 5 => eprintln!("test database {name} left behind: {e}"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
    admin.close().await.expect("close the admin connection");
    finish(outcome.expect("open PostgreSQL store"));
}

/// The admin URL, or `None` (after saying so) when PostgreSQL is not configured.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var(DATABASE_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var(REQUIRE_POSTGRES_VAR).as_deref() != Ok("1"),
                "{REQUIRE_POSTGRES_VAR}=1 but {DATABASE_URL_VAR} is not set"
            );
            println!("PostgreSQL variant did not run: {DATABASE_URL_VAR} is not set");
            None
        }
    }
}

/// `admin_url` with its database name replaced by `name` (query parameters kept).
pub fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let mut url = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// Re-raises a scenario's panic (after cleanup) so the test fails with its message.
pub fn finish(outcome: Result<(), JoinError>) {
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("scenario task did not finish: {e}"),
        }
    }
}

#[test]
fn database_url_replaces_only_the_database_name() {
    assert_eq!(
        database_url("postgres://u:p@127.0.0.1:5432/securevox", "x"),
        "postgres://u:p@127.0.0.1:5432/x"
    );
    assert_eq!(
        database_url("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(database_url("postgresql://h:5432", "x"), "postgresql://h:5432/x");
}

// ---------------------------------------------------------------------------------------------
// Users for scenarios
// ---------------------------------------------------------------------------------------------

/// One argon2 hash for the whole run: hashing is deliberately slow.
pub fn password_hash() -> PasswordHash {
    static HASH: OnceLock<PasswordHash> = OnceLock::new();
    HASH.get_or_init(|| Password::new("correct horse battery", 8).expect("valid password").hash())
        .clone()
}

pub fn new_user(username: &str) -> NewUser {
    let name = Username::try_from(username).expect("valid username");
    NewUser {
        id: Uuid::now_v7().to_string(),
        username: name.as_str().to_owned(),
        username_key: name.key(),
        display_name: None,
        password_hash: password_hash(),
        role: Role::User,
    }
}

pub fn admission(max_users: u64, invite: InvitePolicy) -> Admission {
    Admission { max_users, invite, first_user_is_admin: true }
}

pub fn open() -> Admission {
    admission(0, InvitePolicy::NotNeeded)
}

pub async fn register(
    store: &Store,
    username: &str,
    admission: &Admission,
) -> Result<UserRecord, RegisterError> {
    store.register_user(new_user(username), admission).await
}

/// Registers `username` where nothing stands in the way.
pub async fn user(store: &Store, username: &str) -> UserRecord {
    register(store, username, &open()).await.expect("open registration")
}

/// Runs `n` futures made by `make` at once: each task waits on a barrier before starting.
pub async fn race<T, F, Fut>(n: usize, make: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let work = make(i);
            tokio::spawn(async move {
                barrier.wait().await;
                work.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.expect("racing task panicked"));
    }
    results
}
