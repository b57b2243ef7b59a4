//! The `securevox` binary's library half: loading configuration, generating secrets, setting up
//! logs, and starting the server — kept here so integration tests launch exactly what
//! `securevox serve` launches, on a port-0 listener.
//!
//! Two ways into the data: [`open`] is the server's bootstrap (data directory, secrets, database
//! created and migrated); [`open_store`] is the admin CLI's, which never touches secrets and
//! never creates a database unless told it may.
//!
//! This crate wires the others together; nothing depends on it. `anyhow` is used only here.

pub mod cli;
pub mod secrets;
pub mod settings;
pub mod telemetry;

use anyhow::{bail, Context, Result};
use securevox_api::{AppState, Config};
use securevox_store::{Store, StoreError};
use std::future::Future;
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long a PostgreSQL server may take to accept a connection at start.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's bootstrap: creates the data directory (0700), loads or generates the secrets,
/// and opens the database, creating and migrating it as needed.
pub async fn open(mut config: Config) -> Result<(Config, Store)> {
    ensure_data_dir(&config.data_dir)?;
    for (secret, file) in [
        (&mut config.auth.jwt_secret, "jwt.key"),
        (&mut config.turn.secret, "turn.key"),
        (&mut config.turn.api_key, "turn-api.key"),
    ] {
        if secret.is_empty() {
            secret.0 = secrets::load_or_create(&config.data_dir, file)?;
        }
    }
    let store = connect(&config.effective_database_url(), true).await?;
    Ok((config, store))
}

/// Whether an admin command may create the SQLite database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseAccess {
    /// The database must exist: a missing file is an error, not a new empty database.
    Existing,
    /// A missing database (and data directory) is created, e.g. to add the first admin before
    /// the first `serve`.
    CreateIfMissing,
}

/// The admin CLI's way in: opens (and migrates) the database the server uses. Never reads or
/// generates secrets.
pub async fn open_store(config: &Config, access: DatabaseAccess) -> Result<Store> {
    let url = config.effective_database_url();
    let sqlite_file = securevox_store::sqlite_file(&url);
    match (&sqlite_file, access) {
        (Some(path), DatabaseAccess::Existing) if !path.exists() => return Err(no_database(path)),
        (Some(_), DatabaseAccess::CreateIfMissing) => ensure_data_dir(&config.data_dir)?,
        _ => {}
    }
    connect(&url, access == DatabaseAccess::CreateIfMissing).await
}

fn no_database(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "no database at {}: start the server once, or pass --data-dir / --database-url",
        path.display()
    )
}

/// Connects and migrates. A PostgreSQL server that refuses, rejects or does not answer is
/// reported at once (within [`CONNECT_TIMEOUT`]) rather than after the pool's retries.
async fn connect(url: &str, create: bool) -> Result<Store> {
    let shown = redact_url(url);
    match tokio::time::timeout(CONNECT_TIMEOUT, Store::probe(url)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => bail!("cannot connect to the database ({shown}): {}", flatten(&e)),
        Err(_) => bail!(
            "cannot connect to the database ({shown}): no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ),
    }
    let opened =
        if create { Store::connect(url).await } else { Store::connect_existing(url).await };
    match opened {
        Ok(store) => Ok(store),
        Err(StoreError::NotFound(path)) => Err(no_database(&path)),
        Err(e) => bail!("opening the database ({shown}): {}", flatten(&e)),
    }
}

/// An error and its causes on one line, each said once: sqlx's errors repeat their cause in
/// their own message, which a plain `{:#}` would then print twice.
pub fn flatten(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// Creates the data directory if missing, readable only by the server's user: the database
/// holds password hashes and session digests. An existing directory is left as it is.
fn ensure_data_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("setting permissions of {}", dir.display()))?;
    }
    Ok(())
}

/// Everything `serve` does before it listens: the data directory, secrets, the database
/// (created and migrated) and the checks the application state makes. Nothing listens yet, so
/// a failure here leaves no port open and no client waiting.
pub async fn prepare(config: Config) -> Result<AppState> {
    let (config, store) = open(config).await?;
    match AppState::new(config, store.clone()) {
        Ok(state) => Ok(state),
        Err(e) => {
            store.close().await;
            Err(anyhow::Error::msg(e))
        }
    }
}

/// Serves a [prepared](prepare) server on `listener` until `shutdown` resolves.
pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    tracing::info!(
        database = state.store.backend().as_str(),
        data_dir = %state.config.data_dir.display(),
        address = %listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()),
        "securevox {} ready",
        env!("CARGO_PKG_VERSION")
    );
    securevox_api::serve(listener, state, shutdown).await.context("serving HTTP")
}

/// [`prepare`] then [`run`]: what `securevox serve` does, on a listener the caller bound.
pub async fn launch(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let state = prepare(config).await?;
    run(state, listener, shutdown).await
}

/// A database URL without its password (in the user information or a `password=` query
/// parameter), for messages and `securevox config`. When the URL is ambiguous, more is hidden
/// rather than less.
pub fn redact_url(url: &str) -> String {
    let (head, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    // The user information ends at the last `@` before the query; if there is none there, the
    // password may hold a raw `?`, so take the last `@` anywhere.
    let at = match rest.find('?') {
        Some(q) if rest[..q].contains('@') => rest[..q].rfind('@'),
        _ => rest.rfind('@'),
    };
    let mut out = head.to_owned();
    let after = match at {
        Some(at) if !head.is_empty() => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            out.push_str(user);
            out.push_str(":***@");
            &rest[at + 1..]
        }
        _ => rest,
    };
    match after.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if key.to_ascii_lowercase().ends_with("password") => {
                        format!("{key}=***")
                    }
                    _ => param.to_owned(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(after),
    }
    out
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn database_passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://sv:hunter2@db:5432/securevox"),
            "postgres://sv:***@db:5432/securevox"
        );
        assert_eq!(redact_url("sqlite://./data/securevox.db"), "sqlite://./data/securevox.db");
        assert_eq!(
            redact_url("postgres://db/securevox?user=sv&password=hunter2&sslmode=require"),
            "postgres://db/securevox?user=sv&password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://sv:hunter2@db/sv?PassWord=x&sslpassword=y"),
            "postgres://sv:***@db/sv?PassWord=***&sslpassword=***"
        );
        // Raw special characters in the password: hidden all the same.
        assert_eq!(redact_url("postgres://sv:hun?ter@db/sv"), "postgres://sv:***@db/sv");
        assert_eq!(redact_url("postgres://sv:hun/t@r@db/sv"), "postgres://sv:***@db/sv");
        assert_eq!(
            redact_url("postgres://sv:a@db/sv?password=b@c"),
            "postgres://sv:***@db/sv?password=***"
        );
        for url in [
            "postgres://sv:hunter2@db/sv?password=hunter3",
            "postgresql://sv:hunter2@db:5432/sv?application_name=x@y&password=hunter3#frag",
            "postgres://sv:hunter2?@db/sv",
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains("hunter"), "{url} -> {shown}");
        }
    }
}
