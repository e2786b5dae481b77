//! Sign in once (docs/API.md, "Sessions and consent"): the session cookie's value, and
//! beginning, finding and ending a browser session.
//!
//! The cookie is `<sub>.<43 base64url characters>`: 256 random bits after the user id. The
//! store keeps only the SHA-256 of the random part, under the user, so a copy of the store
//! signs nobody in, and a cookie whose `sub` was edited finds nothing.
use super::{OAuthError, store_failure};
use crate::App;
use crate::crypto::{random_token, sha256_b64};
use crate::domain::{AuthMethodRef, ConsentGrant, Session};
use crate::store::StoreError;
use time::OffsetDateTime;

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

/// A new session for `sub`, authenticated at `now` by `method`: a new id every time (no
/// fixation). Returns the cookie value and the record.
///
/// # Errors
/// No randomness, or the store failed.
pub async fn begin(
    app: &App,
    sub: &str,
    method: AuthMethodRef,
    now: OffsetDateTime,
) -> Result<(String, Session), OAuthError> {
    let now = now.unix_timestamp();
    let limits = app.settings.sessions;
    // Ids are 256 random bits: a collision means a broken random source, so the retry is
    // bounded.
    for _ in 0..3 {
        let secret = random_token().map_err(OAuthError::server)?;
        let session = Session {
            id_hash: sha256_b64(&secret),
            sub: sub.to_owned(),
            auth_time: now,
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

/// End the session of `cookie` (idempotent).
///
/// # Errors
/// The store failed.
pub async fn end(app: &App, cookie: &SessionCookie) -> Result<bool, StoreError> {
    let ended = app.sessions.end_session(&cookie.sub, &cookie.id_hash).await?;
    if ended {
        tracing::info!(event = "session_ended", sub = %cookie.sub, "browser session ended");
    }
    Ok(ended)
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
