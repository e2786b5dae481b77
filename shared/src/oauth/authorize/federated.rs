//! The authorization endpoint's side of upstream federation (docs/API.md, "Federation"):
//! the login page's "Continue with" button (its form checked as any login form is, then the
//! browser sent to the provider with the flow cookie), and, once the provider's callback has
//! proved who the user is, the same session, consent and code as a password sign-in, or the
//! login page again with a plain message.
use super::{Outcome, answer, client, error_redirect, login_page, page, page_for_store};
use crate::App;
use crate::domain::{AuthMethodRef, ScopeSet};
use crate::federation::id_token::LEEWAY_SECONDS;
use crate::oauth::OAuthError;
use crate::oauth::federation::{self, Begun, Purpose};
use crate::oauth::sealed::PendingRequest;
use crate::oauth::session::{self, SessionCookie};
use std::borrow::Cow;
use time::OffsetDateTime;

/// The "Continue with <provider>" button of the login page, whose form (`pending`, bound to
/// `csrf_cookie`) was already checked.
pub(super) async fn federate(
    app: &App,
    pending: &PendingRequest,
    provider: &str,
    csrf_cookie: &str,
    now: OffsetDateTime,
) -> Result<Outcome, Outcome> {
    let purpose = Purpose::SignIn { pending: Box::new(pending.clone()) };
    let (prompt_login, max_age) = (pending.prompt_login, pending.max_age);
    match federation::begin(app, provider, purpose, csrf_cookie, (prompt_login, max_age), now).await {
        Begun::Redirect { location, flow_cookie } => Ok(Outcome::Upstream { location, flow_cookie }),
        Begun::UnknownProvider => Err(page("Unknown sign-in provider.")),
        Begun::Unavailable(name) => Err(login_again(
            app,
            pending,
            format!("{name} cannot be reached right now. Try again in a moment, or sign in with your password.").into(),
            503,
            now,
        )
        .await),
    }
}

/// The login page of `pending` again, with `message` and `status`.
pub async fn login_again(
    app: &App,
    pending: &PendingRequest,
    message: Cow<'static, str>,
    status: u16,
    now: OffsetDateTime,
) -> Outcome {
    let client = match client(app, &pending.client_id, now).await {
        Ok(c) => c,
        Err(o) => return o,
    };
    let catalog = match app.resources.catalog(now.unix_timestamp()).await {
        Ok(c) => c,
        Err(e) => return page_for_store(&e),
    };
    let fresh = PendingRequest { expires_at: now.unix_timestamp() + super::FORM_TTL_SECONDS, ..pending.clone() };
    match login_page(app, &catalog, &client, &fresh, "", Some(message)) {
        Ok(p) => Outcome::Login(Box::new(p), status),
        Err(_) => Outcome::Unavailable,
    }
}

/// The user `sub` signed in upstream at `auth_time`: begin their session (replacing the
/// browser's `earlier` one), record the consent the login page showed, and redirect to the
/// client with a code.
pub async fn finish(
    app: &App,
    pending: &PendingRequest,
    sub: &str,
    auth_time: i64,
    earlier: Option<&SessionCookie>,
    now: OffsetDateTime,
) -> Outcome {
    finish_inner(app, pending, sub, auth_time, earlier, now).await.unwrap_or_else(|o| o)
}

async fn finish_inner(
    app: &App,
    pending: &PendingRequest,
    sub: &str,
    auth_time: i64,
    earlier: Option<&SessionCookie>,
    now: OffsetDateTime,
) -> Result<Outcome, Outcome> {
    if pending.hint_sub.as_ref().is_some_and(|h| h != sub) {
        return Ok(error_redirect(app, &pending.redirect_uri, &OAuthError::LoginRequired, pending.state.as_deref()));
    }
    // The provider may keep its own session: its sign-in must still be recent enough.
    if let Some(max_age) = pending.max_age
        && now.unix_timestamp().saturating_sub(auth_time) > max_age.saturating_add(LEEWAY_SECONDS)
    {
        let why = "The provider did not ask you to sign in again, as the application requires. Try again.";
        return Err(login_again(app, pending, why.into(), 401, now).await);
    }
    let client = client(app, &pending.client_id, now).await?;
    // An account an operator disabled signs in no way at all.
    if app.users.user_by_sub(sub).await.map_err(|e| page_for_store(&e))?.is_none_or(|u| u.disabled) {
        tracing::warn!(event = "login_refused_disabled", sub = %sub, method = "fed", "federated sign-in of a disabled user refused");
        let why = "This account is disabled. Ask the administrator.";
        return Err(login_again(app, pending, why.into(), 403, now).await);
    }
    let (cookie, session) =
        session::begin_at(app, earlier, sub, AuthMethodRef::Federated, auth_time, now).await.map_err(|e| {
            tracing::error!(error = %e, "could not begin a session");
            Outcome::Unavailable
        })?;
    tracing::info!(event = "login_succeeded", sub = %sub, client_id = %client.client_id, method = "fed", "federated sign-in succeeded");
    let scope = ScopeSet::parse(&pending.scope).map_err(|_| page("The form is invalid."))?;
    app.grants
        .add_grant(sub, &client.client_id, &scope, &pending.resources, now)
        .await
        .map_err(|e| page_for_store(&e))?;
    match answer(app, pending, &session, now).await? {
        Outcome::Redirect(location) => Ok(Outcome::SignedIn { location, session_cookie: cookie }),
        other => Ok(other),
    }
}
