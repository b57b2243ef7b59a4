//! The database a test server runs on: SQLite in its data directory, or a fresh database on
//! the PostgreSQL server `SECUREVOX_TEST_DATABASE_URL` names (one where the user may create
//! databases; `.ci/run` sets one up). Without it PostgreSQL variants report that they did not
//! run; with `SECUREVOX_TEST_REQUIRE_POSTGRES=1` (set by CI) they fail instead. Shared by the
//! server's and the client crate's test harnesses.

use sqlx::Connection;

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// Admin URL of a PostgreSQL server.
    Postgres(String),
}

impl Backend {
    /// The PostgreSQL backend if configured; panics if CI requires it and it is missing.
    pub fn postgres() -> Option<Self> {
        match std::env::var("SECUREVOX_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Some(Self::Postgres(url)),
            _ => {
                assert!(
                    std::env::var("SECUREVOX_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                    "SECUREVOX_TEST_REQUIRE_POSTGRES=1 but SECUREVOX_TEST_DATABASE_URL is not set"
                );
                eprintln!("PostgreSQL variant not run: SECUREVOX_TEST_DATABASE_URL is not set");
                None
            }
        }
    }
}

/// Runs an async test body against SQLite and PostgreSQL, as two test functions.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::common::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(backend) = super::common::Backend::postgres() {
                    super::$name(backend).await;
                }
            }
        }
    )*};
}

/// A fresh, empty database on `backend` and its URL; dropped by [`TestDb::drop_database`].
pub struct TestDb {
    pub url: String,
    admin: Option<(String, String)>,
}

impl TestDb {
    pub async fn create(backend: &Backend, dir: &std::path::Path) -> Self {
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}", dir.join("securevox.db").display()),
                admin: None,
            },
            Backend::Postgres(admin_url) => {
                let name = format!("sv_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn =
                    sqlx::PgConnection::connect(admin_url).await.expect("connect to PostgreSQL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create db");
                conn.close().await.ok();
                let (base, _) = admin_url.rsplit_once('/').expect("URL with a database name");
                Self { url: format!("{base}/{name}"), admin: Some((admin_url.clone(), name)) }
            }
        }
    }

    pub async fn drop_database(&self) {
        if let Some((admin_url, name)) = &self.admin {
            if let Ok(mut conn) = sqlx::PgConnection::connect(admin_url).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        }
    }
}
