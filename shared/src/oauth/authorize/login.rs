//! The user's authentication on the login form: the per-user and per-address throttle
//! (the decision taken on the count the atomic increment returns), argon2id against the
//! stored hash (a dummy hash for unknown users: the same work either way), and the hash
//! upgrade when the stored parameters are below the current policy.
use super::{LoginForm, Outcome, page_for_store};
use crate::App;
use crate::crypto::{Secret, hash_password, needs_rehash, sha256_b64, verify_password};
use crate::domain::{Client, User, Username};
use time::OffsetDateTime;

/// The one message for every failed login, so it reveals nothing about which part was wrong.
pub const LOGIN_FAILED: &str =
    "Sign-in failed: the username or password is wrong, or there were too many attempts. Try again later.";

/// Check the submitted username and password.
///
/// # Errors
/// The login page again (401 wrong or malformed, 429 throttled), or `Unavailable` when the
/// store or the hash fails.
pub async fn authenticate(
    app: &App,
    client: &Client,
    form: &LoginForm<'_>,
    source_ip: Option<std::net::IpAddr>,
    now: OffsetDateTime,
) -> Result<User, Outcome> {
    let (username, password) = (form.username, form.password);
    if username.is_empty() || password.is_empty() || password.len() > 1024 || username.len() > 256 {
        return Err(form.again(401));
    }
    // Counters are keyed by a hash, so any input (even invalid usernames) maps to a bounded key.
    let user_key = format!("login#user#{}", sha256_b64(&username.to_lowercase()));
    let ip_key = source_ip.map(|ip| format!("login#ip#{}", crate::oauth::abuse::address_bucket(ip)));
    // docs/API.md: "an attempt is counted before its password is checked, and the decision uses
    // the count that write returned". A count read before the 25-60 ms argon2 run would let
    // every concurrent guess through (check-then-act); the atomic increment's own result
    // cannot be raced, so N simultaneous guesses get at most the limit's password checks.
    let window = app.settings.login_window;
    let user_count = app.throttle.hit(&user_key, window, now).await.map_err(|e| page_for_store(&e))?;
    let ip_count = match &ip_key {
        Some(key) => app.throttle.hit(key, window, now).await.map_err(|e| page_for_store(&e))?,
        None => 0,
    };
    if user_count > app.settings.login_max_failures || ip_count > app.settings.login_max_failures_per_ip {
        tracing::warn!(event = "login_throttled", client_id = %client.client_id, source_ip = ?source_ip, "login throttled");
        return Err(form.again(429));
    }
    let user = match Username::parse(username) {
        Ok(u) => app.users.user_by_username(&u.key()).await.map_err(|e| page_for_store(&e))?,
        Err(_) => None,
    };
    // An unknown user is checked against a dummy hash: the same argon2 work either way.
    let verified = verify_password(Secret::new(password), user.as_ref().map(|u| u.password_hash.clone())).await;
    let user = match (verified, user) {
        (Ok(true), Some(user)) => user,
        (Ok(_), _) => {
            tracing::warn!(event = "login_failed", client_id = %client.client_id, source_ip = ?source_ip, "login failed");
            return Err(form.again(401));
        }
        (Err(e), _) => {
            tracing::error!(error = %e, "password verification failed");
            return Err(Outcome::Unavailable);
        }
    };
    // A success clears the user name's count and takes back its own attempt at the
    // address, so the per-address limit counts failures. When the address's counter holds
    // only this attempt, the write is skipped (the usual login costs no extra request): the
    // success then stays counted there until the window ends: one attempt stricter.
    app.throttle.reset(&user_key).await.map_err(|e| page_for_store(&e))?;
    if ip_count > 1
        && let Some(key) = &ip_key
    {
        app.throttle.forgive(key, now).await.map_err(|e| page_for_store(&e))?;
    }
    upgrade_hash(app, &user.sub, &user.password_hash, password).await;
    Ok(user)
}

/// Re-hash a password whose stored parameters are below the current policy (ASVS 11.4.2).
/// A failure is logged and the login goes on: the old hash still verifies.
async fn upgrade_hash(app: &App, sub: &str, stored: &str, password: &str) {
    if !needs_rehash(stored) {
        return;
    }
    match hash_password(Secret::new(password)).await {
        Ok(h) => {
            if let Err(e) = app.users.update_password_hash(sub, &h).await {
                tracing::warn!(error = %e, "could not upgrade a password hash");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not upgrade a password hash"),
    }
}
