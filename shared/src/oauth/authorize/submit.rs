//! The login and consent form as submitted (POST): the sealed request opened and checked
//! (genuine, unexpired, same origin, this browser's CSRF cookie, used once), then the
//! password or the live session, the consent recorded, and the code.
use super::{
    FORM_TTL_SECONDS, LOGIN_FAILED, Outcome, ScopeSet, answer, client, error_redirect, login_page, page, page_for_store,
};
use crate::App;
use crate::catalog::Catalog;
use crate::crypto::{ct_eq, sha256_b64};
use crate::domain::{AuthMethodRef, Client, ConsentGrant, Session};
use crate::oauth::OAuthError;
use crate::oauth::login::{self, Refused};
use crate::oauth::params::Params;
use crate::oauth::sealed::{self, PendingRequest};
use crate::oauth::session::{self, SessionCookie};
use time::OffsetDateTime;

/// The form a browser submits from the login page.
#[derive(Debug)]
pub struct Submission<'a> {
    /// The parsed form.
    pub form: &'a Params,
    /// The CSRF cookie that came with it.
    pub csrf_cookie: Option<&'a str>,
    /// The session cookie that came with it.
    pub session: Option<&'a SessionCookie>,
    /// Whether `Origin`/`Sec-Fetch-Site` allow a same-origin form post.
    pub same_origin: bool,
    /// The caller's address, for the per-address throttle.
    pub source_ip: Option<std::net::IpAddr>,
}

/// The credentials of a submitted login form, and what showing the page again needs.
pub struct LoginForm<'a> {
    app: &'a App,
    catalog: &'a Catalog,
    client: &'a Client,
    pending: &'a PendingRequest,
    /// The `username` field (empty when absent).
    pub username: &'a str,
    /// The `password` field (empty when absent).
    pub password: &'a str,
}

impl LoginForm<'_> {
    /// The login page again, with the one failure message and the refusal's status.
    pub fn again(&self, refused: Refused) -> Outcome {
        if refused == Refused::Unavailable {
            return Outcome::Unavailable;
        }
        match login_page(self.app, self.catalog, self.client, self.pending, self.username, Some(LOGIN_FAILED.into())) {
            Ok(p) => Outcome::Login(Box::new(p), refused.status()),
            Err(_) => Outcome::Unavailable,
        }
    }
}

/// Handle the login and consent form (POST) at the request's time `now`.
pub async fn submit(app: &App, s: Submission<'_>, now: OffsetDateTime) -> Outcome {
    submit_inner(app, &s, now).await.unwrap_or_else(|refused| refused)
}

async fn submit_inner(app: &App, s: &Submission<'_>, now: OffsetDateTime) -> Result<Outcome, Outcome> {
    let pending = open_form(app, s, now.unix_timestamp()).await?;
    let client = client(app, &pending.client_id, now).await?;
    let catalog = app.resources.catalog(now.unix_timestamp()).await.map_err(|e| page_for_store(&e))?;
    match s.form.get("decision") {
        Some("deny") => {
            use_form_once(app, &pending, now).await?;
            if let Some(device) = &pending.device {
                return Ok(crate::oauth::device::verify::deny(app, &pending, device, now).await);
            }
            tracing::info!(event = "consent_denied", client_id = %client.client_id, "user denied the request");
            let denied = OAuthError::AccessDenied("the user denied the request".into());
            Ok(error_redirect(app, &pending.redirect_uri, &denied, pending.state.as_deref()))
        }
        Some("allow") => {
            let (session, session_cookie) = match &pending.sub {
                Some(sub) => {
                    let (session, _) = signed_in_session(app, s.session, sub, now).await?;
                    use_form_once(app, &pending, now).await?;
                    (session, None)
                }
                None => {
                    let form = LoginForm {
                        app,
                        catalog: &catalog,
                        client: &client,
                        pending: &pending,
                        username: s.form.get("username").unwrap_or_default(),
                        password: s.form.get("password").unwrap_or_default(),
                    };
                    let user = login::authenticate(
                        app,
                        form.username,
                        form.password,
                        Some(&client.client_id),
                        s.source_ip,
                        now,
                    )
                    .await
                    .map_err(|r| form.again(r))?;
                    use_form_once(app, &pending, now).await?;
                    tracing::info!(event = "login_succeeded", sub = %user.sub, client_id = %client.client_id, source_ip = ?s.source_ip, "login succeeded");
                    if pending.hint_sub.as_ref().is_some_and(|h| *h != user.sub) {
                        let err = OAuthError::LoginRequired;
                        return Ok(error_redirect(app, &pending.redirect_uri, &err, pending.state.as_deref()));
                    }
                    let (cookie, session) =
                        session::begin(app, s.session, &user.sub, AuthMethodRef::Password, now).await.map_err(|e| {
                            tracing::error!(error = %e, "could not begin a session");
                            Outcome::Unavailable
                        })?;
                    (session, Some(cookie))
                }
            };
            let scope = ScopeSet::parse(&pending.scope).map_err(|_| page("The form is invalid."))?;
            app.grants
                .add_grant(&session.sub, &client.client_id, &scope, &pending.resources, now)
                .await
                .map_err(|e| page_for_store(&e))?;
            match (answer(app, &pending, &session, now).await?, session_cookie) {
                (Outcome::Redirect(location), Some(session_cookie)) => {
                    Ok(Outcome::SignedIn { location, session_cookie })
                }
                (outcome, _) => Ok(outcome),
            }
        }
        Some("federate") => {
            let provider = s.form.get("provider").unwrap_or_default();
            super::federated::federate(app, &pending, provider, s.csrf_cookie.unwrap_or_default(), now).await
        }
        _ => Err(page("The form has no decision.")),
    }
}

/// The live session of the browser that submitted a consent page for `sub`.
async fn signed_in_session(
    app: &App,
    cookie: Option<&SessionCookie>,
    sub: &str,
    now: OffsetDateTime,
) -> Result<(Session, Option<ConsentGrant>), Outcome> {
    const SIGNED_OUT: &str = "You are no longer signed in. Start again from the application.";
    let cookie = cookie.filter(|c| c.sub == sub).ok_or_else(|| page(SIGNED_OUT))?;
    session::find(app, cookie, None, now).await.map_err(|e| page_for_store(&e))?.ok_or_else(|| page(SIGNED_OUT))
}

/// The sealed request of a submitted form, if it is genuine, unexpired, posted from our own
/// origin and bound to this browser's CSRF cookie. Refusals are 400 pages, never redirects.
async fn open_form(app: &App, s: &Submission<'_>, now: i64) -> Result<PendingRequest, Outcome> {
    if !s.same_origin {
        return Err(page("This form was submitted from another site."));
    }
    let sealed = s.form.get("request").unwrap_or_default();
    let pending: Option<PendingRequest> = sealed::open_with_app(app, sealed, now).await;
    let pending = pending
        .ok_or_else(|| page("This sign-in form is invalid or has expired. Start again from the application."))?;
    if !s.csrf_cookie.is_some_and(|c| ct_eq(sha256_b64(c).as_bytes(), pending.csrf.as_bytes())) {
        return Err(page(
            "This sign-in form does not belong to this browser session. Start again from the application.",
        ));
    }
    Ok(pending)
}

/// A submitted form is accepted once: a replay of the same hidden fields is refused.
async fn use_form_once(app: &App, pending: &PendingRequest, now: OffsetDateTime) -> Result<(), Outcome> {
    let key = format!("form#{}", pending.id);
    match app.throttle.hit(&key, FORM_TTL_SECONDS + 60, now).await {
        Ok(1) => Ok(()),
        Ok(_) => Err(page("This sign-in form was already used. Start again from the application.")),
        Err(e) => Err(page_for_store(&e)),
    }
}
