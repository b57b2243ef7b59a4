//! Settings an admin may change while the server runs. The config file gives the value until
//! an admin changes it; the change is stored in the database (so it survives restarts and is
//! seen by every node and the CLI) and wins until it is reset.

use crate::config::Config;
use securevox_domain::{Limits, RegistrationMode};
use securevox_store::{Store, StoreError};
use serde::Serialize;

const LIMITS_KEY: &str = "limits";
const REGISTRATION_KEY: &str = "registration_mode";

/// Where a setting's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Config,
    Database,
}

pub async fn limits(store: &Store, config: &Config) -> Result<(Limits, Source), StoreError> {
    let stored = store.setting(LIMITS_KEY).await?;
    // A stored value that no longer parses (e.g. written by a newer version) falls back to the
    // configured limits rather than to none at all.
    Ok(match stored.and_then(|json| serde_json::from_str(&json).ok()) {
        Some(limits) => (limits, Source::Database),
        None => (config.limits, Source::Config),
    })
}

pub async fn set_limits(store: &Store, limits: &Limits) -> Result<(), StoreError> {
    let json = serde_json::to_string(limits).unwrap_or_default();
    store.put_setting(LIMITS_KEY, &json).await
}

pub async fn reset_limits(store: &Store) -> Result<(), StoreError> {
    store.delete_setting(LIMITS_KEY).await
}

pub async fn registration_mode(
    store: &Store,
    config: &Config,
) -> Result<RegistrationMode, StoreError> {
    let stored = store.setting(REGISTRATION_KEY).await?;
    Ok(stored.and_then(|s| s.parse().ok()).unwrap_or(config.auth.registration))
}

pub async fn set_registration_mode(
    store: &Store,
    mode: RegistrationMode,
) -> Result<(), StoreError> {
    store.put_setting(REGISTRATION_KEY, mode.as_str()).await
}
