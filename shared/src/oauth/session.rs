//! Sign in once (docs/API.md, "Sessions and consent"): the session cookie's value, and
//! beginning, finding and ending a browser session, with the refresh families that end with
//! it.
//!
//! The cookie is `<sub>.<43 base64url characters>`: 256 random bits after the user id. The
//! store keeps only the SHA-256 of the random part, under the user, so a copy of the store
//! signs nobody in, and a cookie whose `sub` was edited finds nothing.
use super::{OAuthError, store_failure};
use crate::App;
use crate::crypto::{random_token, sha256_b64};
use crate::domain::{AuthMethodRef, ConsentGrant, RefreshFamily, Session};
use crate::jwt::{HintClaims, TokenRejected};
use crate::store::StoreError;
use time::OffsetDateTime;

/// What the browser sent with a page's request besides its parameters.
#[derive(Debug, Clone, Copy)]
pub struct Browser<'a> {
    /// The value of the CSRF cookie the page's form will be bound to.
    pub csrf_cookie: &'a str,
    /// The session cookie, if it has one this server could have set.
    pub session: Option<&'a SessionCookie>,
}

/// A session is touched (its idle end moved) at most this often: a sign-in used again
/// within this many seconds costs no write.
pub const TOUCH_AFTER_SECONDS: i64 = 300;

/// A session cookie as the browser sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCookie {
    /// The user it claims.
    pub sub: String,
    /// SHA-256 of its random part: the key the store holds.
    pub id_hash: String,
}

impl SessionCookie {
    /// Parse a cookie value; `None` for anything this server could not have set.
    pub fn parse(value: &str) -> Option<Self> {
        let (sub, secret) = value.split_once('.')?;
        let b64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if sub.is_empty() || sub.len() > 64 || !sub.chars().all(b64url) {
            return None;
        }
        if secret.len() != 43 || !secret.chars().all(b64url) {
            return None;
        }
        Some(Self { sub: sub.to_owned(), id_hash: sha256_b64(secret) })
    }
}

/// A new session for `sub`, authenticated at `now` by `method`: a new id every time, and the
/// browser's `earlier` session (if any) ends, so a planted or stolen cookie does not outlive
/// the login (no fixation). Returns the cookie value and the record.
///
/// # Errors
/// No randomness, or the store failed.
pub async fn begin(
    app: &App,
    earlier: Option<&SessionCookie>,
    sub: &str,
    method: AuthMethodRef,
    now: OffsetDateTime,
) -> Result<(String, Session), OAuthError> {
    begin_at(app, earlier, sub, method, now.unix_timestamp(), now).await
}

/// [`begin`] for a user who authenticated at `auth_time` (an upstream provider's, never
/// later than `now`).
///
/// # Errors
/// No randomness, or the store failed.
pub async fn begin_at(
    app: &App,
    earlier: Option<&SessionCookie>,
    sub: &str,
    method: AuthMethodRef,
    auth_time: i64,
    now: OffsetDateTime,
) -> Result<(String, Session), OAuthError> {
    if let Some(old) = earlier {
        end(app, old).await.map_err(store_failure)?;
    }
    let now = now.unix_timestamp();
    let auth_time = auth_time.min(now);
    let limits = app.settings.sessions;
    // Ids are 256 random bits: a collision means a broken random source, so the retry is
    // bounded.
    for _ in 0..3 {
        let secret = random_token().map_err(OAuthError::server)?;
        let session = Session {
            id_hash: sha256_b64(&secret),
            sub: sub.to_owned(),
            auth_time,
            method,
            created_at: now,
            last_seen: now,
            idle_expires_at: now + limits.idle,
            expires_at: now + limits.absolute,
        };
        match app.sessions.create_session(&session).await {
            Ok(()) => {
                tracing::info!(event = "session_started", sub = %sub, "browser session started");
                return Ok((format!("{sub}.{secret}"), session));
            }
            Err(StoreError::AlreadyExists) => continue,
            Err(e) => return Err(store_failure(e)),
        }
    }
    Err(OAuthError::server(anyhow::anyhow!("session id collided three times")))
}

/// The live session of `cookie` at `now` and, when `client_id` is given, its user's grant to
/// that client: one store read. A session last used more than [`TOUCH_AFTER_SECONDS`] ago is
/// touched, and if that write finds it ended (a logout in between), it is not returned.
///
/// # Errors
/// The store failed.
pub async fn find(
    app: &App,
    cookie: &SessionCookie,
    client_id: Option<&str>,
    now: OffsetDateTime,
) -> Result<Option<(Session, Option<ConsentGrant>)>, StoreError> {
    let Some((session, grant)) = app.sessions.session_with_grant(&cookie.sub, &cookie.id_hash, client_id, now).await?
    else {
        return Ok(None);
    };
    let t = now.unix_timestamp();
    if !session.is_live(t) || session.sub != cookie.sub {
        return Ok(None);
    }
    if t - session.last_seen >= TOUCH_AFTER_SECONDS
        && !app.sessions.touch_session(&session.sub, &session.id_hash, app.settings.sessions.idle, now).await?
    {
        return Ok(None);
    }
    Ok(Some((session, grant)))
}

/// End the session of `cookie` (idempotent), and revoke the refresh families bound to it
/// (those issued without `offline_access` under it): their refresh and access tokens.
///
/// # Errors
/// The store failed.
pub async fn end(app: &App, cookie: &SessionCookie) -> Result<bool, StoreError> {
    let ended = app.sessions.end_session(&cookie.sub, &cookie.id_hash).await?;
    // Only a session that was there has families to end: a forged cookie costs no query.
    // The session's absence alone already stops its families' refreshes (the store's check);
    // the revocation also stops their access tokens.
    if ended {
        tracing::info!(event = "session_ended", sub = %cookie.sub, "browser session ended");
        let families = app.grants.families_of(&cookie.sub).await?;
        revoke(app, families.iter().filter(|f| f.session.as_deref() == Some(cookie.id_hash.as_str()))).await?;
    }
    Ok(ended)
}

/// End every session of `sub` but `keep` (the id hash of the browser asking, if it stays
/// signed in), and revoke the refresh families bound to any of them; returns how many
/// sessions ended.
///
/// # Errors
/// The store failed.
pub async fn end_all(app: &App, sub: &str, keep: Option<&str>) -> Result<usize, StoreError> {
    let ended = app.sessions.end_sessions_of(sub, keep).await?;
    tracing::info!(event = "sessions_ended", sub = %sub, count = ended, kept = keep.is_some(), "browser sessions ended");
    let families = app.grants.families_of(sub).await?;
    revoke(app, families.iter().filter(|f| f.session.is_some() && f.session.as_deref() != keep)).await?;
    Ok(ended)
}

/// Revoke `families` (their refresh and access tokens, until the last of them would have
/// expired) and forget their entries.
///
/// # Errors
/// The store failed.
pub async fn revoke<'a>(app: &App, families: impl Iterator<Item = &'a RefreshFamily>) -> Result<usize, StoreError> {
    let mut n = 0;
    for f in families {
        let until = OffsetDateTime::from_unix_timestamp(f.expires_at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        app.tokens.revoke_family(&f.family_id, until).await?;
        app.grants.forget_family(&f.sub, &f.client_id, &f.family_id).await?;
        tracing::info!(event = "family_revoked", family_id = %f.family_id, client_id = %f.client_id, sub = %f.sub, "refresh family revoked");
        n += 1;
    }
    Ok(n)
}

/// The claims of an `id_token_hint` (or a logout's), if this server issued it: signature by
/// one of its keys (an unknown `kid` reloads the keys, rate-limited), its issuer.
///
/// # Errors
/// Why it was refused.
pub async fn verified_hint(app: &App, token: &str, now: i64) -> Result<HintClaims, TokenRejected> {
    let verify = || crate::jwt::verify_id_token_hint(&app.keys(), &app.settings, token);
    match verify() {
        Err(TokenRejected::UnknownKey) if app.key_ring.refresh_for_unknown_kid(now).await => verify(),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_values_this_server_could_have_set_parse() {
        let secret = "a".repeat(43);
        let ok = SessionCookie::parse(&format!("usr_1.{secret}"));
        assert_eq!(ok, Some(SessionCookie { sub: "usr_1".into(), id_hash: sha256_b64(&secret) }));
        for bad in [
            String::new(),
            secret.clone(),
            format!(".{secret}"),
            format!("usr_1.{}", "a".repeat(42)),
            format!("usr_1.{}", "a".repeat(44)),
            format!("usr 1.{secret}"),
            format!("{}.{secret}", "u".repeat(65)),
            format!("usr_1.{}=", "a".repeat(42)),
            format!("usr_1.x.{}", "a".repeat(41)),
        ] {
            assert_eq!(SessionCookie::parse(&bad), None, "{bad}");
        }
    }
}
