//! The account page's forms (`POST /account`): the sign-in, and the signed-in page's
//! disconnect, sign-out, sign-out-everywhere and password-change forms.
use super::{
    Notice, Outcome, PendingSignIn, SessionCookieChange, account_page, page, sign_in_page, signed_in, token_matches,
    unavailable,
};
use crate::App;
use crate::crypto::{ct_eq, hash_password, sha256_b64};
use crate::domain::{AuthMethodRef, Password, Session};
use crate::oauth::authorize::request::MAX_CLIENT_ID;
use crate::oauth::federation::{self, Begun, Purpose};
use crate::oauth::login::{self, LOGIN_FAILED, Refused};
use crate::oauth::params::Params;
use crate::oauth::sealed;
use crate::oauth::session::{self, Browser, SessionCookie};
use crate::store::{StoreError, Unlink};
use std::borrow::Cow;
use time::OffsetDateTime;

/// A form posted to the account page.
#[derive(Debug)]
pub struct Submission<'a> {
    /// The parsed form.
    pub form: &'a Params,
    /// The browser's cookies (a fresh CSRF cookie for a sign-in form shown again).
    pub browser: Browser<'a>,
    /// The CSRF cookie that came with the form, if this server minted it.
    pub csrf_cookie: Option<&'a str>,
    /// Whether `Origin`/`Sec-Fetch-Site` allow a same-origin form post.
    pub same_origin: bool,
    /// The caller's address, for the sign-in throttle.
    pub source_ip: Option<std::net::IpAddr>,
}

/// `POST /account` at `now`: the sign-in form (with a sealed `request`), or one of the
/// signed-in forms (`action` = `disconnect`, `signout`, `signout_all`, `password`).
pub async fn submit(app: &App, s: Submission<'_>, now: OffsetDateTime) -> Outcome {
    if !s.same_origin {
        return page("This form was submitted from another site.");
    }
    let result = if s.form.get("request").is_some() { sign_in(app, &s, now).await } else { act(app, &s, now).await };
    result.unwrap_or_else(|o| o)
}

async fn sign_in(app: &App, s: &Submission<'_>, now: OffsetDateTime) -> Result<Outcome, Outcome> {
    let t = now.unix_timestamp();
    let sealed = s.form.get("request").unwrap_or_default();
    let Some(pending) = sealed::open_with_app::<PendingSignIn>(app, sealed, t).await else {
        return Err(page("This sign-in form is invalid or has expired. Open the account page again."));
    };
    if !s.csrf_cookie.is_some_and(|c| ct_eq(sha256_b64(c).as_bytes(), pending.csrf.as_bytes())) {
        return Err(page("This sign-in form does not belong to this browser. Open the account page again."));
    }
    let username = s.form.get("username").unwrap_or_default();
    let password = s.form.get("password").unwrap_or_default();
    let user = match login::authenticate(app, username, password, None, s.source_ip, now).await {
        Ok(u) => u,
        Err(Refused::Unavailable) => return Err(Outcome::Unavailable),
        Err(r) => {
            let again = sign_in_page(app, s.browser.csrf_cookie, username, Some(LOGIN_FAILED), None, t)?;
            return Ok(Outcome::SignIn(Box::new(again), r.status()));
        }
    };
    tracing::info!(event = "login_succeeded", sub = %user.sub, source_ip = ?s.source_ip, "login succeeded (account page)");
    let (cookie, _) =
        session::begin(app, s.browser.session, &user.sub, AuthMethodRef::Password, now).await.map_err(|e| {
            tracing::error!(error = %e, "could not begin a session");
            Outcome::Unavailable
        })?;
    Ok(Outcome::Done { notice: Some(Notice::SignedIn), cookie: SessionCookieChange::Set(cookie) })
}

async fn act(app: &App, s: &Submission<'_>, now: OffsetDateTime) -> Result<Outcome, Outcome> {
    let Some(session) = signed_in(app, s.browser.session, now).await? else {
        // Signed out meanwhile (or never): the page shows the sign-in form.
        return Ok(Outcome::Done { notice: None, cookie: SessionCookieChange::Clear });
    };
    if !s.form.get("csrf").is_some_and(|t| token_matches(app, &session.id_hash, t)) {
        return Err(page("This form does not belong to this browser's session. Open the account page again."));
    }
    let cookie = SessionCookie { sub: session.sub.clone(), id_hash: session.id_hash.clone() };
    match s.form.get("action") {
        Some("disconnect") => {
            // No client has a longer id: a longer one is no key to look up (and not one the
            // store would take).
            let client_id = s.form.get("client_id").filter(|c| c.len() <= MAX_CLIENT_ID).unwrap_or_default();
            disconnect(app, &session.sub, client_id).await.map_err(|e| unavailable(&e))?;
            Ok(Outcome::Done { notice: Some(Notice::Disconnected), cookie: SessionCookieChange::Keep })
        }
        Some("signout") => {
            session::end(app, &cookie).await.map_err(|e| unavailable(&e))?;
            tracing::info!(event = "logout", sub = %session.sub, "signed out on the account page");
            Ok(Outcome::Done { notice: Some(Notice::SignedOut), cookie: SessionCookieChange::Clear })
        }
        Some("signout_all") => {
            session::end_all(app, &session.sub, None).await.map_err(|e| unavailable(&e))?;
            Ok(Outcome::Done { notice: Some(Notice::SignedOutEverywhere), cookie: SessionCookieChange::Clear })
        }
        Some("password") => change_password(app, s, &session, now).await,
        Some("connect") => connect(app, s, &session, now).await,
        Some("unlink") => {
            let key = s.form.get("identity").filter(|k| k.len() == 43).unwrap_or_default();
            let notice = match crate::oauth::federation::unlink(app, &session.sub, key).await {
                Ok(Unlink::Removed | Unlink::NotFound) => Notice::Unlinked,
                Ok(Unlink::LastMethod) => Notice::LastMethod,
                Err(e) => return Err(unavailable(&e)),
            };
            Ok(Outcome::Done { notice: Some(notice), cookie: SessionCookieChange::Keep })
        }
        _ => Err(page("The form has no action.")),
    }
}

/// Remove `sub`'s grant to `client_id` and revoke that client's refresh families of `sub`.
/// From the grant's removal on, no code or refresh token draws on it (the store's check).
///
/// # Errors
/// The store failed.
pub async fn disconnect(app: &App, sub: &str, client_id: &str) -> Result<(), StoreError> {
    let removed = app.grants.delete_grant(sub, client_id).await?;
    let families = app.grants.families_of(sub).await?;
    let revoked = session::revoke(app, families.iter().filter(|f| f.client_id == client_id)).await?;
    if removed || revoked > 0 {
        tracing::info!(event = "grant_revoked", sub = %sub, client_id = %client_id, families = revoked, "application disconnected");
    }
    Ok(())
}

async fn change_password(
    app: &App,
    s: &Submission<'_>,
    session: &Session,
    now: OffsetDateTime,
) -> Result<Outcome, Outcome> {
    let refused = |status: u16, why: Cow<'static, str>| async move {
        let page = account_page(app, session, None, Some(why), now).await?;
        Ok(Outcome::Account(Box::new(page), status))
    };
    let current = s.form.get("current_password").unwrap_or_default();
    let new = s.form.get("new_password").unwrap_or_default();
    if new != s.form.get("confirm_password").unwrap_or_default() {
        return refused(400, "The new password and its confirmation differ.".into()).await;
    }
    let Some(user) = app.users.user_by_sub(&session.sub).await.map_err(|e| unavailable(&e))? else {
        return Err(page("This account no longer exists."));
    };
    // The same throttled check as a sign-in: the form is no way around the login limits.
    let status = match login::authenticate(app, user.username.as_str(), current, None, s.source_ip, now).await {
        Ok(u) if u.sub == user.sub => None,
        Ok(_) => Some(Refused::Failed.status()),
        Err(Refused::Unavailable) => return Err(Outcome::Unavailable),
        Err(r) => Some(r.status()),
    };
    if let Some(status) = status {
        let why = "The current password is wrong, or there were too many attempts. Try again later.";
        return refused(status, why.into()).await;
    }
    let password = match Password::parse(new, &user.username) {
        Ok(p) => p,
        Err(why) => return refused(400, format!("The new password cannot be used: {why}.").into()).await,
    };
    let hash = hash_password(password.into_secret()).await.map_err(|e| {
        tracing::error!(error = %e, "could not hash a new password");
        Outcome::Unavailable
    })?;
    app.users.update_password_hash(&user.sub, &hash).await.map_err(|e| unavailable(&e))?;
    // Whoever else knew the old password is signed out everywhere but here.
    session::end_all(app, &user.sub, Some(&session.id_hash)).await.map_err(|e| unavailable(&e))?;
    tracing::info!(event = "password_changed", sub = %user.sub, "password changed on the account page");
    Ok(Outcome::Done { notice: Some(Notice::PasswordChanged), cookie: SessionCookieChange::Keep })
}

/// "Connect <provider>": send the signed-in user to the provider to link their account
/// there; the callback links it to this session's user only.
async fn connect(app: &App, s: &Submission<'_>, session: &Session, now: OffsetDateTime) -> Result<Outcome, Outcome> {
    let provider = s.form.get("provider").unwrap_or_default();
    let purpose = Purpose::Link { sub: session.sub.clone(), session: session.id_hash.clone() };
    match federation::begin(app, provider, purpose, s.browser.csrf_cookie, (false, None), now).await {
        Begun::Redirect { location, flow_cookie } => Ok(Outcome::Upstream { location, flow_cookie }),
        Begun::UnknownProvider => Err(page("Unknown sign-in provider.")),
        Begun::Unavailable(_) => {
            Ok(Outcome::Done { notice: Some(Notice::LinkFailed), cookie: SessionCookieChange::Keep })
        }
    }
}
