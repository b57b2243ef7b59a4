//! Account use cases: register, log in, refresh, change password, create a user from the CLI.
//! Handlers parse input and call these; these apply the domain rules and talk to the store.

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::{password_work, runtime_settings};
use axum::http::StatusCode;
use securevox_domain::{
    clock, Password, PasswordHash, RegistrationMode, Role, SecretToken, Username,
};
use securevox_store::{
    Admission, InvitePolicy, NewSession, NewUser, RefreshOutcome, RegisterError, Store, UserRecord,
};

/// Longest display name accepted, in characters.
pub const MAX_DISPLAY_NAME: usize = 64;
/// Longest device name accepted, in characters.
pub const MAX_DEVICE_NAME: usize = 64;

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

pub fn parse_display_name(raw: Option<String>) -> ApiResult<Option<String>> {
    let Some(name) = raw.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > MAX_DISPLAY_NAME || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_display_name",
            format!("display name must be at most {MAX_DISPLAY_NAME} printable characters"),
        ));
    }
    Ok(Some(name))
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
        RegisterError::Closed => ApiError::forbidden(
            "registration_closed",
            "registration on this server is closed",
        ),
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
    let display_name = parse_display_name(input.display_name)?;
    let mode = runtime_settings::registration_mode(&state.store, &state.config).await?;
    let invite = match mode {
        RegistrationMode::Open => InvitePolicy::NotNeeded,
        RegistrationMode::Invite => InvitePolicy::Required(
            input
                .invite_code
                .as_deref()
                .map(|c| SecretToken::from_client(c.trim()).digest()),
        ),
        RegistrationMode::Closed => InvitePolicy::Closed,
    };
    let (limits, _) = runtime_settings::limits(&state.store, &state.config).await?;
    let admission = Admission {
        max_users: limits.max_registered_users,
        invite,
        first_user_is_admin: true,
    };
    let user = create_user(
        &state.store,
        username,
        password,
        display_name,
        Role::User,
        &admission,
    )
    .await?;
    tracing::info!(user_id = %user.id, username = %user.username, role = user.role.as_str(), "user registered");
    let tokens = open_session(state, &user, ctx).await?;
    Ok((user, tokens))
}

/// Creates an account; shared by registration and the admin CLI.
pub async fn create_user(
    store: &Store,
    username: Username,
    password: Password,
    display_name: Option<String>,
    role: Role,
    admission: &Admission,
) -> ApiResult<UserRecord> {
    let password_hash = hash_password(password).await?;
    let new = NewUser {
        id: uuid::Uuid::now_v7().to_string(),
        username_key: username.key(),
        username: username.as_str().to_owned(),
        display_name,
        password_hash,
        role,
    };
    store
        .register_user(new, admission)
        .await
        .map_err(register_error)
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
    let key = username.trim().to_ascii_lowercase();
    let found = state.store.user_for_login(&key).await?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    // Verify even for unknown users so timing does not reveal which usernames exist.
    let matches = verify_password(password, hash).await?;
    let Some(user) = user.filter(|_| matches) else {
        state.metrics.auth_failure("invalid_credentials");
        return Err(invalid());
    };
    if user.is_disabled() {
        state.metrics.auth_failure("account_disabled");
        return Err(ApiError::forbidden(
            "account_disabled",
            "this account is disabled",
        ));
    }
    let tokens = open_session(state, &user, ctx).await?;
    Ok((user, tokens))
}

/// Opens a device session and issues its first tokens.
pub async fn open_session(
    state: &AppState,
    user: &UserRecord,
    ctx: ClientContext,
) -> ApiResult<IssuedTokens> {
    let device_name = match ctx.device_name {
        Some(name) if name.chars().count() > MAX_DEVICE_NAME => {
            return Err(ApiError::bad_request(
                "invalid_device_name",
                format!("device name must be at most {MAX_DEVICE_NAME} characters"),
            ))
        }
        other => other,
    };
    let refresh_token = SecretToken::generate();
    let session = NewSession {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user.id.clone(),
        device_name,
        refresh_digest: refresh_token.digest(),
        expires_at: clock::now() + state.config.auth.refresh_token_ttl_s as i64,
        ip: ctx.ip,
        user_agent: ctx.user_agent.map(|ua| ua.chars().take(200).collect()),
    };
    state.store.create_session(&session).await?;
    if let Some(at) = state.activity.mark(&user.id) {
        state.store.touch_user_seen(&user.id, at).await?;
    }
    Ok(IssuedTokens {
        access_token: state.tokens.issue(&user.id, &session.id),
        refresh_token,
        expires_in: state.tokens.ttl_s(),
        session_id: session.id,
    })
}

/// Exchanges a refresh token for new tokens; the presented one stops working.
pub async fn refresh(state: &AppState, presented: &str) -> ApiResult<(UserRecord, IssuedTokens)> {
    let next = SecretToken::generate();
    let expires_at = clock::now() + state.config.auth.refresh_token_ttl_s as i64;
    let outcome = state
        .store
        .rotate_refresh(
            &SecretToken::from_client(presented).digest(),
            &next.digest(),
            expires_at,
        )
        .await?;
    match outcome {
        RefreshOutcome::Rotated { session_id, user } => {
            if user.is_disabled() {
                return Err(ApiError::unauthorized(
                    "account_disabled",
                    "this account is disabled",
                ));
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
        return Err(ApiError::forbidden(
            "invalid_credentials",
            "current password is wrong",
        ));
    }
    let hash = hash_password(new).await?;
    state
        .store
        .set_password_hash(user_id, &hash, Some(session_id))
        .await?;
    Ok(())
}

/// Refuses a change that would leave the server with no enabled admin.
pub async fn ensure_not_last_admin(store: &Store, target: &UserRecord) -> ApiResult<()> {
    if target.role == Role::Admin
        && !target.is_disabled()
        && store.count_active_admins().await? <= 1
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "last_admin",
            "this is the last enabled admin; promote another user first",
        ));
    }
    Ok(())
}
