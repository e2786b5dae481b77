//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0; docs/API.md, "GET/POST
//! /oauth/logout"): validate the request, then end the browser's session at once when a
//! verified `id_token_hint` names its user, or after the user confirms on a page otherwise,
//! so that a third-party page cannot sign people out. Ending a session revokes the refresh
//! families issued under it without `offline_access` ([`super::session::end`]).
use super::Description;
use super::authorize::{host_and_origin, redirect_to};
use super::params::Params;
use super::sealed::{self, Sealable};
use super::session::{self, Browser, SessionCookie};
use crate::App;
use crate::crypto::{ct_eq, random_id, sha256_b64};
use crate::domain::Client;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use time::OffsetDateTime;

/// How long the confirmation form stays valid.
pub const CONFIRM_TTL_SECONDS: i64 = 600;
const MAX_STATE: usize = 1024;

/// What the browser is shown.
#[derive(Debug)]
pub enum Outcome {
    /// The request cannot be honoured as sent (a hint this server did not issue, a
    /// `post_logout_redirect_uri` the client did not register, ...): 400, no redirect.
    ErrorPage(Description),
    /// A dependency failed: 503 with `Retry-After`.
    Unavailable,
    /// The confirmation page: 200.
    Confirm(Box<ConfirmPage>),
    /// The browser is signed out (its session ended now, or it had none): 200. `link` is
    /// the application's post-logout URI when it asked for one but is not sent there
    /// automatically: (host, URI).
    SignedOut {
        /// Where the application asked the user to go next.
        link: Option<(String, String)>,
    },
    /// The browser is signed out; on to the application (302 for the GET, 303 after a POST).
    Redirect(String),
    /// The user chose to stay signed in: 200.
    StillSignedIn,
}

/// Everything the confirmation page shows.
#[derive(Debug)]
pub struct ConfirmPage {
    /// The signed-in user's name.
    pub username: String,
    /// The application that asked, if it said.
    pub client_name: Option<String>,
    /// Where the user goes after signing out, if anywhere: its host.
    pub redirect_host: Option<String>,
    /// Its origin, for the CSP `form-action` (the 303 goes there).
    pub redirect_origin: Option<String>,
    /// The sealed request (hidden field).
    pub sealed: String,
}

/// The sign-out request as the confirmation form carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogout {
    /// Unique id.
    pub id: String,
    /// The user whose session the form ends: the same browser must still be theirs.
    pub sub: String,
    /// Where to go afterwards: a registered post-logout URI with `state`.
    pub redirect: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
    /// SHA-256 of the CSRF cookie the form is bound to.
    pub csrf: String,
}

impl Sealable for PendingLogout {
    const PURPOSE: &'static str = "logout";
    fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

fn page(text: &'static str) -> Outcome {
    Outcome::ErrorPage(Cow::Borrowed(text))
}

fn unavailable(e: &crate::store::StoreError) -> Outcome {
    tracing::error!(error = %e, "store failed at the logout endpoint");
    Outcome::Unavailable
}

/// A validated logout request.
struct LogoutRequest {
    /// The application, from `client_id` or the hint's audience.
    client: Option<Client>,
    /// The user a verified `id_token_hint` names.
    hint_sub: Option<String>,
    /// The post-logout redirect with `state`.
    redirect: Option<String>,
}

/// Validate the request's parameters. Every refusal is a page, never a redirect: nothing
/// is known to be the client's yet.
async fn validate(app: &App, raw: &[u8], now: i64) -> Result<LogoutRequest, Outcome> {
    let (params, repeated) = Params::parse_lenient(raw).map_err(|_| page("The sign-out request is malformed."))?;
    let known = ["id_token_hint", "client_id", "post_logout_redirect_uri", "state", "logout_hint", "ui_locales"];
    if repeated.iter().any(|p| known.contains(&p.as_str())) {
        return Err(page("The sign-out request repeats a parameter."));
    }
    let hint = match params.get("id_token_hint") {
        None => None,
        // "When an id_token_hint parameter is present, the OP MUST validate that it was the
        // issuer of the ID Token" (§2). An expired one is still a valid hint.
        Some(h) => Some(session::verified_hint(app, h, now).await.map_err(|why| {
            tracing::info!(reason = %why, "logout id_token_hint refused");
            page("The sign-out request's id_token_hint was not issued by this server.")
        })?),
    };
    let client_id = match (params.get("client_id"), &hint) {
        (Some(id), Some(h)) if !h.is_for(id) => {
            return Err(page("The sign-out request's id_token_hint was issued to another application."));
        }
        (Some(id), _) => Some(id.to_owned()),
        (None, Some(h)) => h.single_audience().map(str::to_owned),
        (None, None) => None,
    };
    let client = match client_id {
        Some(id) if id.len() <= super::authorize::request::MAX_CLIENT_ID => {
            match super::cimd::lookup(app, &id, now).await {
                Ok(c) => c,
                // A client whose document cannot be had now: as an unknown client.
                Err(super::OAuthError::InvalidClient { .. }) => None,
                Err(_) => return Err(Outcome::Unavailable),
            }
        }
        _ => None,
    };
    if params.get("client_id").is_some() && client.is_none() {
        return Err(page("The application that asked to sign you out is not known here."));
    }
    let state = params.get("state");
    if state.is_some_and(|s| s.len() > MAX_STATE) {
        return Err(page("The sign-out request's state is too long."));
    }
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            // "The OP MUST NOT perform post-logout redirection if the post_logout_redirect_uri
            // value supplied does not exactly match one of the previously registered
            // post_logout_redirect_uris values" (§3).
            let registered =
                client.as_ref().is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r.as_str() == uri));
            if !registered {
                return Err(page("The address to return to after signing out is not registered for this application."));
            }
            Some(match state {
                Some(st) => redirect_to(uri, &[("state", st)]),
                None => uri.to_owned(),
            })
        }
    };
    Ok(LogoutRequest { client, hint_sub: hint.map(|h| h.sub), redirect })
}

/// Answer a logout request (`GET` query, or a `POST` form without a sealed `request`) at `now`.
pub async fn start(app: &App, raw: &[u8], browser: Browser<'_>, now: OffsetDateTime) -> Outcome {
    start_inner(app, raw, browser, now).await.unwrap_or_else(|refused| refused)
}

async fn start_inner(app: &App, raw: &[u8], browser: Browser<'_>, now: OffsetDateTime) -> Result<Outcome, Outcome> {
    let t = now.unix_timestamp();
    let req = validate(app, raw, t).await?;
    let signed_in = match browser.session {
        Some(c) => session::find(app, c, None, now).await.map_err(|e| unavailable(&e))?,
        None => None,
    };
    let Some((s, _)) = signed_in else {
        // Nothing to end. The application gets its user back automatically only when it was
        // vouched for (registered with the registration token or by the operator): anyone
        // else's registered URI is a link, so this endpoint is no open redirector (RFC 9700
        // §4.11.2).
        return Ok(match req.redirect {
            Some(r) if req.client.as_ref().is_some_and(|c| c.trusted) => Outcome::Redirect(r),
            Some(r) => Outcome::SignedOut { link: Some((host_and_origin(&r).0, r)) },
            None => Outcome::SignedOut { link: None },
        });
    };
    if req.hint_sub.as_deref() == Some(s.sub.as_str()) {
        // The application proved it signed this very user in: no question asked.
        let cookie = SessionCookie { sub: s.sub.clone(), id_hash: s.id_hash.clone() };
        session::end(app, &cookie).await.map_err(|e| unavailable(&e))?;
        tracing::info!(event = "logout", sub = %s.sub, client_id = ?req.client.as_ref().map(|c| &c.client_id), confirmed = false, "signed out by the application");
        return Ok(req.redirect.map_or(Outcome::SignedOut { link: None }, Outcome::Redirect));
    }
    let user = app.users.user_by_sub(&s.sub).await.map_err(|e| unavailable(&e))?;
    let pending = PendingLogout {
        id: random_id("lo_").map_err(|_| Outcome::Unavailable)?,
        sub: s.sub.clone(),
        redirect: req.redirect.clone(),
        expires_at: t + CONFIRM_TTL_SECONDS,
        csrf: sha256_b64(browser.csrf_cookie),
    };
    let sealed = sealed::seal(&app.form_key(), &pending).map_err(|_| Outcome::Unavailable)?;
    let (host, origin) = req.redirect.as_deref().map(host_and_origin).unzip();
    Ok(Outcome::Confirm(Box::new(ConfirmPage {
        username: user.map(|u| u.username.as_str().to_owned()).unwrap_or_default(),
        client_name: req.client.map(|c| c.client_name.unwrap_or(c.client_id)),
        redirect_host: host,
        redirect_origin: origin,
        sealed,
    })))
}

/// The confirmation form as submitted.
#[derive(Debug)]
pub struct Confirmation<'a> {
    /// The parsed form.
    pub form: &'a Params,
    /// The CSRF cookie that came with it.
    pub csrf_cookie: Option<&'a str>,
    /// The session cookie that came with it.
    pub session: Option<&'a SessionCookie>,
    /// Whether `Origin`/`Sec-Fetch-Site` allow a same-origin form post.
    pub same_origin: bool,
}

/// Handle the confirmation form at `now`: a genuine, unexpired form from this origin and
/// this browser; `decision=logout` ends the browser's session (if it is still the user's the
/// form was for) and goes on to the application, `decision=stay` keeps it.
pub async fn confirm(app: &App, c: Confirmation<'_>, now: OffsetDateTime) -> Outcome {
    if !c.same_origin {
        return page("This form was submitted from another site.");
    }
    let t = now.unix_timestamp();
    let sealed = c.form.get("request").unwrap_or_default();
    let Some(pending) = sealed::open_with_app::<PendingLogout>(app, sealed, t).await else {
        return page("This sign-out form is invalid or has expired. Sign out again from the application.");
    };
    if !c.csrf_cookie.is_some_and(|k| ct_eq(sha256_b64(k).as_bytes(), pending.csrf.as_bytes())) {
        return page("This sign-out form does not belong to this browser. Sign out again from the application.");
    }
    match c.form.get("decision") {
        Some("logout") => {
            match c.session {
                // Another user signed in on this browser since the page was shown.
                Some(cookie) if cookie.sub != pending.sub => {
                    return page("Someone else is signed in on this browser now; nothing was changed.");
                }
                Some(cookie) => {
                    if let Err(e) = session::end(app, cookie).await {
                        return unavailable(&e);
                    }
                }
                None => {}
            }
            tracing::info!(event = "logout", sub = %pending.sub, confirmed = true, "signed out on the confirmation page");
            pending.redirect.map_or(Outcome::SignedOut { link: None }, Outcome::Redirect)
        }
        Some("stay") => Outcome::StillSignedIn,
        _ => page("The form has no decision."),
    }
}
