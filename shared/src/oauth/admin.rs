//! The operator's actions on users and clients (`oauth-admin`; docs/OPERATIONS.md, "Users
//! and clients"): on the stores directly, with the same rules as the public endpoints.
//! Disabling, deleting and a password reset end what the account had: its sign-in sessions
//! and refresh families (their access tokens with them), and for disabling and deleting its
//! consents too.
use super::OAuthError;
use super::register::{RegisterUser, UserRegistered};
use crate::domain::{Client, Password, User, Username};
use crate::store::{StoreError, Stores};
use serde::Serialize;
use time::OffsetDateTime;

/// What ending an account's access came to.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Ended {
    /// Sign-in sessions ended.
    pub sessions: usize,
    /// Refresh families revoked (with their access tokens).
    pub families: usize,
    /// Consents removed.
    pub consents: usize,
}

/// The user named by `who`: a `sub` (`usr_…`) or a username (any case).
///
/// # Errors
/// The store failed.
pub async fn find_user(stores: &Stores, who: &str) -> Result<Option<User>, StoreError> {
    if who.starts_with("usr_") {
        return stores.users.user_by_sub(who).await;
    }
    match Username::parse(who) {
        Ok(name) => stores.users.user_by_username(&name.key()).await,
        Err(_) => Ok(None),
    }
}

/// Create a user with `username`, `password` and `email`, as `POST /register` would (even
/// with public sign-up off).
///
/// # Errors
/// `invalid_request` (a rule of the fields), `username_taken`, a store failure.
pub async fn create_user(
    stores: &Stores,
    username: &str,
    password: &str,
    email: Option<&str>,
    now: OffsetDateTime,
) -> Result<UserRegistered, OAuthError> {
    let req =
        RegisterUser { username: Some(username.into()), password: Some(password.into()), email: email.map(Into::into) };
    super::register::create_user(&*stores.users, req, now).await
}

/// End `sub`'s sessions and revoke its refresh families; with `consents`, remove its
/// consents too (nothing then can issue it a token without a new sign-in and consent).
///
/// # Errors
/// The store failed (what was ended before stays ended; the call may be repeated).
pub async fn end_access(stores: &Stores, sub: &str, consents: bool, now: OffsetDateTime) -> Result<Ended, StoreError> {
    let mut ended = Ended { sessions: stores.sessions.end_sessions_of(sub, None).await?, ..Ended::default() };
    for f in stores.grants.families_of(sub).await? {
        // The entry lasts as long as the family's revocation must.
        let until = OffsetDateTime::from_unix_timestamp(f.expires_at).map_or(now, |t| t.max(now));
        stores.tokens.revoke_family(&f.family_id, until).await?;
        stores.grants.forget_family(sub, &f.client_id, &f.family_id).await?;
        ended.families += 1;
    }
    if consents {
        for g in stores.grants.grants_of(sub).await? {
            if stores.grants.delete_grant(sub, &g.client_id).await? {
                ended.consents += 1;
            }
        }
    }
    tracing::info!(event = "access_ended", sub = %sub, sessions = ended.sessions, families = ended.families, consents = ended.consents, "an operator ended an account's access");
    Ok(ended)
}

/// Disable `sub`: it can no longer sign in (password or provider), then everything it had
/// ends. `NotFound` when there is no such user.
///
/// # Errors
/// The store failed.
pub async fn disable_user(stores: &Stores, sub: &str, now: OffsetDateTime) -> Result<Ended, StoreError> {
    // First the flag, so no new session can begin while the old ones are ended.
    stores.users.set_disabled(sub, true).await?;
    tracing::warn!(event = "user_disabled", sub = %sub, "an operator disabled a user");
    end_access(stores, sub, true, now).await
}

/// Enable `sub` again (it signs in again; nothing it had comes back).
///
/// # Errors
/// `NotFound`, or the store failed.
pub async fn enable_user(stores: &Stores, sub: &str) -> Result<(), StoreError> {
    stores.users.set_disabled(sub, false).await?;
    tracing::warn!(event = "user_enabled", sub = %sub, "an operator enabled a user");
    Ok(())
}

/// Delete `sub` after ending everything it had; its username is free again. `false` when
/// there was no such user.
///
/// # Errors
/// The store failed.
pub async fn delete_user(stores: &Stores, sub: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
    if stores.users.user_by_sub(sub).await?.is_none() {
        return Ok(false);
    }
    // Disabled first: a sign-in racing the deletion cannot begin a session that outlives it.
    stores.users.set_disabled(sub, true).await?;
    end_access(stores, sub, true, now).await?;
    let deleted = stores.users.delete_user(sub).await?;
    tracing::warn!(event = "user_deleted", sub = %sub, "an operator deleted a user");
    Ok(deleted)
}

/// Set `user`'s password (the registration rules apply) and end its sessions and refresh
/// families (its consents stay).
///
/// # Errors
/// `invalid_request` for a password the rules refuse; a store failure.
pub async fn reset_password(
    stores: &Stores,
    user: &User,
    password: &str,
    now: OffsetDateTime,
) -> Result<Ended, OAuthError> {
    let password = Password::parse(password, &user.username).map_err(OAuthError::invalid_request)?;
    let hash = crate::crypto::hash_password(password.into_secret()).await.map_err(OAuthError::server)?;
    stores.users.update_password_hash(&user.sub, &hash).await.map_err(super::store_failure)?;
    tracing::warn!(event = "password_reset", sub = %user.sub, "an operator reset a password");
    end_access(stores, &user.sub, false, now).await.map_err(super::store_failure)
}

/// Every registered client, without its secret hash.
///
/// # Errors
/// The store failed.
pub async fn list_clients(stores: &Stores) -> Result<Vec<Client>, StoreError> {
    let mut clients = stores.clients.clients().await?;
    for c in &mut clients {
        c.secret_hash = None;
    }
    Ok(clients)
}
