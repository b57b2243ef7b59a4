//! Account use cases: register, log in, refresh, change password, create a user from the CLI.
//! Handlers parse input and call these; these apply the domain rules and talk to the store.

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::{password_work, runtime_settings};
use axum::http::StatusCode;
use securevox_domain::{
    clock, DeviceName, DisplayName, Password, PasswordHash, RegistrationMode, Role, SecretToken,
    Username,
};
use securevox_store::{
    AccountChange, AccountChangeError, Admission, InvitePolicy, NewSession, NewUser,
    RefreshOutcome, RegisterError, Store, UserRecord,
};

/// Where a request came from, recorded on the session it opens.
#[derive(Debug, Clone, Default)]
pub struct ClientContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub device_name: Option<String>,
}

/// Tokens for a freshly opened or refreshed session.
#[derive(Debug)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: SecretToken,
    pub expires_in: u64,
    pub session_id: String,
}

pub struct Registration {
    pub username: String,
    pub password: String,
    pub display_name: Option<String>,
    pub invite_code: Option<String>,
}

pub fn parse_username(raw: &str) -> ApiResult<Username> {
    Username::try_from(raw).map_err(|e| ApiError::bad_request("invalid_username", e.to_string()))
}

pub fn parse_new_password(raw: &str, config: &Config) -> ApiResult<Password> {
    Password::new(raw, config.auth.min_password_length)
        .map_err(|e| ApiError::bad_request("invalid_password", e.to_string()))
}

pub fn parse_display_name(raw: Option<&str>) -> ApiResult<Option<String>> {
    DisplayName::parse_optional(raw)
        .map(|name| name.map(DisplayName::into_string))
        .map_err(|e| ApiError::bad_request("invalid_display_name", format!("display name {e}")))
}

fn parse_device_name(raw: Option<&str>) -> ApiResult<Option<String>> {
    DeviceName::parse_optional(raw)
        .map(|name| name.map(DeviceName::into_string))
        .map_err(|e| ApiError::bad_request("invalid_device_name", format!("device name {e}")))
}

/// Hashes off the async executor: argon2id is deliberately slow.
pub async fn hash_password(password: Password) -> ApiResult<PasswordHash> {
    password_work::run(move |memory| password.hash_with(memory))
        .await
        .map_err(|e| ApiError::internal(&e))
}

async fn verify_password(password: Password, hash: Option<PasswordHash>) -> ApiResult<bool> {
    password_work::run(move |memory| {
        if let Some(hash) = hash {
            password.verify_with(&hash, memory)
        } else {
            password.verify_against_nothing(memory);
            false
        }
    })
    .await
    .map_err(|e| ApiError::internal(&e))
}

fn register_error(e: RegisterError) -> ApiError {
    match e {
        RegisterError::UsernameTaken => {
            ApiError::conflict("username_taken", "that username is taken")
        }
        RegisterError::CapacityReached(max) => ApiError::forbidden(
            "capacity_reached",
            format!("this server has reached its limit of {max} registered users"),
        ),
        RegisterError::InvalidInvite => ApiError::forbidden(
            "invalid_invite",
            "an invite code is needed, and this one is missing, wrong, expired or used up",
        ),
        RegisterError::Closed => {
            ApiError::forbidden("registration_closed", "registration on this server is closed")
        }
        RegisterError::Store(e) => e.into(),
    }
}

/// Creates an account under the server's registration policy and capacity limit, and opens a
/// session for it.
pub async fn register(
    state: &AppState,
    input: Registration,
    ctx: ClientContext,
) -> ApiResult<(UserRecord, IssuedTokens)> {
    let username = parse_username(&input.username)?;
    let password = parse_new_password(&input.password, &state.config)?;
    let display_name = parse_display_name(input.display_name.as_deref())?;
    let mode = runtime_settings::registration_mode(&state.store, &state.config).await?;
    let (limits, _) = runtime_settings::limits(&state.store, &state.config).await?;
    let invite_digest =
        input.invite_code.as_deref().map(|c| SecretToken::from_client(c.trim()).digest());
    // Refuse what policy refuses before spending a password hash on it; the transaction
    // below checks again, atomically, for requests that race.
    let users = state.store.count_users().await?;
    match mode {
        RegistrationMode::Closed => return Err(register_error(RegisterError::Closed)),
        RegistrationMode::Invite if users > 0 => {
            let usable = match &invite_digest {
                Some(digest) => state.store.invite_usable(digest).await?,
                None => false,
            };
            if !usable {
                return Err(register_error(RegisterError::InvalidInvite));
            }
        }
        RegistrationMode::Invite | RegistrationMode::Open => {}
    }
    if limits.max_registered_users > 0 && users >= limits.max_registered_users {
        return Err(register_error(RegisterError::CapacityReached(limits.max_registered_users)));
    }
    let invite = match mode {
        RegistrationMode::Open => InvitePolicy::NotNeeded,
        RegistrationMode::Invite => InvitePolicy::Required(invite_digest),
        RegistrationMode::Closed => InvitePolicy::Closed,
    };
    let admission =
        Admission { max_users: limits.max_registered_users, invite, first_user_is_admin: true };
    let (user, hash) =
        create_user(&state.store, username, password, display_name, Role::User, &admission).await?;
    tracing::info!(user_id = %user.id, username = %user.username, role = user.role.as_str(), "user registered");
    let tokens = open_session(state, &user, &hash, ctx).await?;
    Ok((user, tokens))
}

/// Creates an account; shared by registration and the admin CLI. Returns the account and its
/// password hash (a session opened next checks it). The display name is validated here so that
/// every way in applies the same rule.
pub async fn create_user(
    store: &Store,
    username: Username,
    password: Password,
    display_name: Option<String>,
    role: Role,
    admission: &Admission,
) -> ApiResult<(UserRecord, PasswordHash)> {
    let display_name = parse_display_name(display_name.as_deref())?;
    let password_hash = hash_password(password).await?;
    let new = NewUser {
        id: uuid::Uuid::now_v7().to_string(),
        username_key: username.key(),
        username: username.as_str().to_owned(),
        display_name,
        password_hash: password_hash.clone(),
        role,
    };
    let user = store.register_user(new, admission).await.map_err(register_error)?;
    Ok((user, password_hash))
}

/// Checks a username and password and opens a session on success.
pub async fn login(
    state: &AppState,
    username: &str,
    password: &str,
    ctx: ClientContext,
) -> ApiResult<(UserRecord, IssuedTokens)> {
    let invalid = || ApiError::unauthorized("invalid_credentials", "wrong username or password");
    let password = Password::for_login(password).map_err(|_| invalid())?;
    // A name that cannot be a username is looked up nowhere (odd bytes never reach the
    // database), but costs the same time as a real check.
    let found = match Username::try_from(username.trim()) {
        Ok(name) => state.store.user_for_login(&name.key()).await?,
        Err(_) => None,
    };
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let matches = verify_password(password, hash.clone()).await?;
    let (Some(user), Some(hash)) = (user.filter(|_| matches), hash) else {
        state.metrics.auth_failure("invalid_credentials");
        return Err(invalid());
    };
    if user.is_disabled() {
        state.metrics.auth_failure("account_disabled");
        return Err(ApiError::forbidden("account_disabled", "this account is disabled"));
    }
    let tokens = open_session(state, &user, &hash, ctx).await?;
    Ok((user, tokens))
}

/// Opens a device session and issues its first tokens, if the account still has the password
/// hash that was just verified and is still enabled.
async fn open_session(
    state: &AppState,
    user: &UserRecord,
    verified_hash: &PasswordHash,
    ctx: ClientContext,
) -> ApiResult<IssuedTokens> {
    let refresh_token = SecretToken::generate();
    let session = NewSession {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user.id.clone(),
        device_name: parse_device_name(ctx.device_name.as_deref())?,
        refresh_digest: refresh_token.digest(),
        expires_at: clock::now().saturating_add(ttl_seconds(state.config.auth.refresh_token_ttl_s)),
        ip: ctx.ip,
        user_agent: ctx.user_agent.map(|ua| ua.chars().take(200).collect()),
    };
    if !state.store.open_session(&session, verified_hash).await? {
        // The password changed or the account was disabled while this login was checked.
        state.metrics.auth_failure("invalid_credentials");
        return Err(ApiError::unauthorized("invalid_credentials", "wrong username or password"));
    }
    state.activity.mark(&user.id);
    Ok(IssuedTokens {
        access_token: state.tokens.issue(&user.id, &session.id),
        refresh_token,
        expires_in: state.tokens.ttl_s(),
        session_id: session.id,
    })
}

/// A configured lifetime in seconds as a timestamp offset (saturating: never wraps).
fn ttl_seconds(ttl_s: u64) -> i64 {
    i64::try_from(ttl_s).unwrap_or(i64::MAX)
}

/// Exchanges a refresh token for new tokens; the presented one stops working.
pub async fn refresh(state: &AppState, presented: &str) -> ApiResult<(UserRecord, IssuedTokens)> {
    let next = SecretToken::generate();
    let expires_at =
        clock::now().saturating_add(ttl_seconds(state.config.auth.refresh_token_ttl_s));
    let outcome = state
        .store
        .rotate_refresh(&SecretToken::from_client(presented).digest(), &next.digest(), expires_at)
        .await?;
    match outcome {
        RefreshOutcome::Rotated { session_id, user } => {
            if user.is_disabled() {
                return Err(ApiError::unauthorized("account_disabled", "this account is disabled"));
            }
            let access_token = state.tokens.issue(&user.id, &session_id);
            let tokens = IssuedTokens {
                access_token,
                refresh_token: next,
                expires_in: state.tokens.ttl_s(),
                session_id,
            };
            Ok((user, tokens))
        }
        RefreshOutcome::Reused => {
            state.metrics.auth_failure("refresh_token_reused");
            tracing::warn!("a rotated refresh token was presented again; its session is revoked");
            Err(ApiError::unauthorized(
                "refresh_token_reused",
                "this refresh token was already used; the session has been ended for safety",
            ))
        }
        RefreshOutcome::Invalid => {
            state.metrics.auth_failure("invalid_refresh_token");
            Err(ApiError::unauthorized(
                "invalid_refresh_token",
                "refresh token is unknown, expired or revoked",
            ))
        }
    }
}

/// Changes the caller's password after checking the current one; other sessions are ended.
pub async fn change_password(
    state: &AppState,
    user_id: &str,
    session_id: &str,
    current: &str,
    new: &str,
) -> ApiResult<()> {
    let new = parse_new_password(new, &state.config)?;
    let current = Password::for_login(current)
        .map_err(|_| ApiError::forbidden("invalid_credentials", "current password is wrong"))?;
    let stored = state.store.password_hash(user_id).await?;
    if !verify_password(current, stored).await? {
        return Err(ApiError::forbidden("invalid_credentials", "current password is wrong"));
    }
    let hash = hash_password(new).await?;
    state.store.set_password_hash(user_id, &hash, Some(session_id)).await?;
    Ok(())
}

/// Applies admin changes to an account (see [`Store::change_account`]), mapping its refusals to
/// API errors. `Ok(None)` after a deletion.
pub async fn change_account(
    store: &Store,
    user_id: &str,
    changes: &[AccountChange],
) -> ApiResult<Option<UserRecord>> {
    match store.change_account(user_id, changes).await {
        Ok(user) => Ok(user),
        Err(AccountChangeError::NotFound) => Err(ApiError::not_found("user")),
        Err(AccountChangeError::LastAdmin) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "last_admin",
            "this is the last enabled admin; promote another user first",
        )),
        Err(AccountChangeError::Store(e)) => Err(e.into()),
    }
}
