//! `POST /register`: create a resource owner. The password is hashed with argon2id on a
//! blocking thread and never stored or logged in clear.
use super::{OAuthError, store_failure};
use crate::App;
use crate::crypto::{hash_password, random_id};
use crate::domain::{Email, Password, User, Username};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};

/// The request body, after JSON decoding.
#[derive(Deserialize)]
pub struct RegisterUser {
    /// 3–64 characters.
    pub username: Option<serde_json::Value>,
    /// 8–1024 bytes.
    pub password: Option<serde_json::Value>,
    /// Optional.
    pub email: Option<serde_json::Value>,
}

/// The 201 body.
#[derive(Debug, Serialize)]
pub struct UserRegistered {
    /// Always "User registered successfully!".
    pub message: &'static str,
    /// The new user's stable id.
    pub sub: String,
    /// The username as registered.
    pub username: String,
}

fn string_field<'a>(v: Option<&'a serde_json::Value>, name: &'static str) -> Result<Option<&'a str>, OAuthError> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(OAuthError::InvalidRequest(format!("{name} must be a string").into())),
    }
}

/// Refuse at once when public sign-up is off; otherwise count one registration attempt from
/// `source_ip` against its per-address limit, before the body is even decoded (a malformed
/// attempt counts too).
///
/// # Errors
/// `signup_disabled`; `too_many_requests` beyond the limit; a 503 when the counter cannot be
/// updated.
pub async fn admit(
    app: &App,
    source_ip: Option<std::net::IpAddr>,
    now: time::OffsetDateTime,
) -> Result<(), OAuthError> {
    if !app.settings.signup_enabled {
        return Err(OAuthError::SignUpDisabled);
    }
    super::abuse::count_attempt(app, super::abuse::Limit::Register, source_ip, now).await
}

/// Register a user.
///
/// # Errors
/// `invalid_request` for a missing or invalid field, `username_taken` for a duplicate.
#[tracing::instrument(skip_all)]
pub async fn register_user(
    app: &App,
    req: RegisterUser,
    now: time::OffsetDateTime,
) -> Result<UserRegistered, OAuthError> {
    create_user(&*app.users, req, now).await
}

/// Create a user in `users` (the public endpoint, and the operator's `oauth-admin
/// create-user`): the same rules, the same hash.
///
/// # Errors
/// As [`register_user`].
pub async fn create_user(
    users: &dyn crate::store::UserStore,
    req: RegisterUser,
    now: time::OffsetDateTime,
) -> Result<UserRegistered, OAuthError> {
    let username = string_field(req.username.as_ref(), "username")?
        .ok_or_else(|| OAuthError::invalid_request("username is required"))?;
    let password = string_field(req.password.as_ref(), "password")?
        .ok_or_else(|| OAuthError::invalid_request("password is required"))?;
    let email = string_field(req.email.as_ref(), "email")?;
    let username = Username::parse(username).map_err(OAuthError::invalid_request)?;
    let password = Password::parse(password, &username).map_err(OAuthError::invalid_request)?;
    let email = email.filter(|e| !e.is_empty()).map(Email::parse).transpose().map_err(OAuthError::invalid_request)?;
    // Cheap check first, so a taken name does not cost an argon2 hash; the insert below
    // is what actually guarantees uniqueness.
    if users.user_by_username(&username.key()).await.map_err(store_failure)?.is_some() {
        return Err(OAuthError::UsernameTaken);
    }
    let password_hash = hash_password(password.into_secret()).await.map_err(|e| match e {
        crate::crypto::PasswordError::Busy => OAuthError::TemporarilyUnavailable(anyhow::anyhow!(e)),
        e => OAuthError::server(e),
    })?;
    let user = User {
        sub: random_id("usr_").map_err(OAuthError::server)?,
        username,
        email,
        password_hash,
        created_at: now.unix_timestamp(),
        disabled: false,
    };
    match users.create_user(&user).await {
        Ok(()) => {}
        Err(StoreError::AlreadyExists) => return Err(OAuthError::UsernameTaken),
        Err(e) => return Err(store_failure(e)),
    }
    tracing::info!(event = "user_registered", sub = %user.sub, "user registered");
    Ok(UserRegistered {
        message: "User registered successfully!",
        sub: user.sub,
        username: user.username.as_str().to_owned(),
    })
}
