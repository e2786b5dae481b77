//! A user proving who they are with their password, wherever a page asks for it (the
//! authorization endpoint's login form, the account page's sign-in and its password change):
//! the per-user and per-address throttle (the decision taken on the count the atomic
//! increment returns), argon2id against the stored hash (a dummy hash for unknown users: the
//! same work either way), and the hash upgrade when the stored parameters are below the
//! current policy.
use crate::App;
use crate::crypto::{Secret, hash_password, needs_rehash, sha256_b64, verify_password};
use crate::domain::{User, Username};
use crate::store::StoreError;
use time::OffsetDateTime;

/// The one message for every failed login, so it reveals nothing about which part was wrong.
pub const LOGIN_FAILED: &str =
    "Sign-in failed: the username or password is wrong, or there were too many attempts. Try again later.";

/// Why a sign-in was refused; the page shows [`LOGIN_FAILED`] for the first two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Wrong, unknown or malformed credentials: 401.
    Failed,
    /// Too many attempts for the username or the address: 429.
    Throttled,
    /// The store or the hash failed: 503, never a way in.
    Unavailable,
}

impl Refused {
    /// The HTTP status of the page shown again.
    pub fn status(self) -> u16 {
        match self {
            Self::Failed => 401,
            Self::Throttled => 429,
            Self::Unavailable => 503,
        }
    }
}

fn unavailable(e: &StoreError) -> Refused {
    tracing::error!(error = %e, "store failed during a sign-in");
    Refused::Unavailable
}

/// Check `username` and `password` for a sign-in from `source_ip` at `now`; `client_id` is
/// the application asking (for the audit line), if any.
///
/// # Errors
/// Why the sign-in was refused.
pub async fn authenticate(
    app: &App,
    username: &str,
    password: &str,
    client_id: Option<&str>,
    source_ip: Option<std::net::IpAddr>,
    now: OffsetDateTime,
) -> Result<User, Refused> {
    if username.is_empty() || password.is_empty() || password.len() > 1024 || username.len() > 256 {
        return Err(Refused::Failed);
    }
    // Counters are keyed by a hash, so any input (even invalid usernames) maps to a bounded key.
    let user_key = format!("login#user#{}", sha256_b64(&username.to_lowercase()));
    let ip_key = source_ip.map(|ip| format!("login#ip#{}", crate::oauth::abuse::address_bucket(ip)));
    // docs/API.md: "an attempt is counted before its password is checked, and the decision uses
    // the count that write returned". A count read before the 25-60 ms argon2 run would let
    // every concurrent guess through (check-then-act); the atomic increment's own result
    // cannot be raced, so N simultaneous guesses get at most the limit's password checks.
    let window = app.settings.login_window;
    let user_count = app.throttle.hit(&user_key, window, now).await.map_err(|e| unavailable(&e))?;
    let ip_count = match &ip_key {
        Some(key) => app.throttle.hit(key, window, now).await.map_err(|e| unavailable(&e))?,
        None => 0,
    };
    if user_count > app.settings.login_max_failures || ip_count > app.settings.login_max_failures_per_ip {
        crate::telemetry::metrics::login_failed();
        tracing::warn!(event = "login_throttled", client_id = ?client_id, source_ip = ?source_ip, "login throttled");
        return Err(Refused::Throttled);
    }
    let user = match Username::parse(username) {
        Ok(u) => app.users.user_by_username(&u.key()).await.map_err(|e| unavailable(&e))?,
        Err(_) => None,
    };
    // An unknown user, or one without a password (created by an upstream provider), is
    // checked against a dummy hash: the same argon2 work either way, and never a match.
    let hash = user.as_ref().filter(|u| u.has_password()).map(|u| u.password_hash.clone());
    let verified = verify_password(Secret::new(password), hash).await;
    let user = match (verified, user) {
        // A disabled account: the same refusal as a wrong password (docs/OPERATIONS.md).
        (Ok(true), Some(user)) if user.disabled => {
            crate::telemetry::metrics::login_failed();
            tracing::warn!(event = "login_refused_disabled", sub = %user.sub, client_id = ?client_id, source_ip = ?source_ip, "login of a disabled user refused");
            return Err(Refused::Failed);
        }
        (Ok(true), Some(user)) => user,
        (Ok(_), user) => {
            crate::telemetry::metrics::login_failed();
            // The account's stored name, when there is one, so an operator finds one user's
            // failed logins (docs/OPERATIONS.md); never the text typed, which may be a
            // password typed into the wrong field.
            let (sub, name) = user.as_ref().map_or((None, None), |u| (Some(u.sub.as_str()), Some(u.username.as_str())));
            tracing::warn!(event = "login_failed", username = name, sub = sub, client_id = ?client_id, source_ip = ?source_ip, "login failed");
            return Err(Refused::Failed);
        }
        (Err(e), _) => {
            tracing::error!(error = %e, "password verification failed");
            return Err(Refused::Unavailable);
        }
    };
    // A success clears the user name's count and takes back its own attempt at the
    // address, so the per-address limit counts failures. When the address's counter holds
    // only this attempt, the write is skipped (the usual login costs no extra request): the
    // success then stays counted there until the window ends: one attempt stricter.
    app.throttle.reset(&user_key).await.map_err(|e| unavailable(&e))?;
    if ip_count > 1
        && let Some(key) = &ip_key
    {
        app.throttle.forgive(key, now).await.map_err(|e| unavailable(&e))?;
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
