//! The `securevox` binary's library half: loading configuration, generating secrets, setting up
//! logs, and starting the server — kept here so integration tests launch exactly what
//! `securevox serve` launches, on a port-0 listener.
//!
//! This crate wires the others together; nothing depends on it. `anyhow` is used only here.

pub mod cli;
pub mod secrets;
pub mod settings;
pub mod telemetry;

use anyhow::{Context, Result};
use securevox_api::{AppState, Config};
use securevox_store::Store;
use std::future::Future;
use tokio::net::TcpListener;

/// Prepares the data directory and secrets, and opens (and migrates) the database.
pub async fn open(mut config: Config) -> Result<(Config, Store)> {
    if !config.data_dir.exists() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
        // The database holds password hashes and session digests: only the server's user.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    if config.auth.jwt_secret.is_empty() {
        config.auth.jwt_secret.0 = secrets::load_or_create(&config.data_dir, "jwt.key")?;
    }
    let url = config.effective_database_url();
    let store = Store::connect(&url)
        .await
        .with_context(|| format!("opening the database ({})", redact_url(&url)))?;
    Ok((config, store))
}

/// Runs the server on `listener` until `shutdown` resolves.
pub async fn launch(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (config, store) = open(config).await?;
    let backend = store.backend();
    let state = AppState::new(config, store).map_err(anyhow::Error::msg)?;
    tracing::info!(
        database = backend.as_str(),
        data_dir = %state.config.data_dir.display(),
        "securevox {} ready",
        env!("CARGO_PKG_VERSION")
    );
    securevox_api::serve(listener, state, shutdown)
        .await
        .context("serving HTTP")
}

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{user}:***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
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
    #[test]
    fn database_passwords_never_reach_messages() {
        assert_eq!(
            super::redact_url("postgres://sv:hunter2@db:5432/securevox"),
            "postgres://sv:***@db:5432/securevox"
        );
        assert_eq!(
            super::redact_url("sqlite://./data/securevox.db"),
            "sqlite://./data/securevox.db"
        );
    }
}
