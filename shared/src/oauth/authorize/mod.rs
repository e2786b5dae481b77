//! The authorization endpoint (RFC 6749 §4.1.1–4.1.2, RFC 7636, RFC 9207, RFC 9700), as a
//! pipeline: validate the request in the order §4.1.2.1 requires ([`request`]), seal it
//! into the login and consent page ([`super::sealed`]), authenticate the user on submit
//! ([`login`]: throttle, argon2id, hash upgrade), and redirect with a single-use code
//! ([`code`]). Each step returns `Result<_, Outcome>`: the first refusal is what the browser
//! is shown.
pub mod code;
pub mod login;
pub mod request;

use super::params::Params;
use super::sealed::{self, PendingRequest};
use super::{Description, OAuthError};
use crate::App;
use crate::crypto::{ct_eq, random_id, sha256_b64};
use crate::domain::{Client, ScopeSet};
pub use code::CODE_TTL_SECONDS;
pub use login::LOGIN_FAILED;
use request::Reply;
use std::borrow::Cow;
use time::OffsetDateTime;

/// How long the login form stays valid.
pub const FORM_TTL_SECONDS: i64 = 600;

/// What the browser is shown.
#[derive(Debug)]
pub enum Outcome {
    /// An error page, never a redirect (the client or redirect URI cannot be trusted, or
    /// the form was tampered with): 400.
    ErrorPage(Description),
    /// A redirect to the client (`Location`), 302 for the GET and 303 after the POST.
    Redirect(String),
    /// A dependency failed (after retries): an error page with 503 and `Retry-After`.
    Unavailable,
    /// The login and consent page, with the HTTP status to send (200, 401 or 429).
    Login(Box<LoginPage>, u16),
    /// An authorization error for a client from open registration, before anyone signed in:
    /// a page that names the error and where the link goes, instead of a redirect (RFC 9700
    /// §4.11.2: anyone could register a redirect URI and use the issuer's domain to bounce
    /// users there): 400.
    ErrorLink {
        /// The error's description.
        message: Description,
        /// The host the link leads to.
        host: String,
        /// The redirect URI with `error`, `state` and `iss`, as a redirect would carry them.
        link: String,
    },
}

/// Everything the login and consent page shows.
#[derive(Debug)]
pub struct LoginPage {
    /// The client's name, or its id.
    pub client_name: String,
    /// The client's id.
    pub client_id: String,
    /// Host (or scheme) the user will be sent back to.
    pub redirect_host: String,
    /// Origin of the redirect URI, for the CSP `form-action`.
    pub redirect_origin: String,
    /// Each requested scope and what it allows, in plain words.
    pub scopes: Vec<(&'static str, &'static str)>,
    /// The sealed pending request (hidden field).
    pub sealed: String,
    /// Username to prefill after a failed attempt.
    pub username: String,
    /// The failure message, if any.
    pub error: Option<&'static str>,
}

/// Build the redirect to `uri` with `params` appended to its query (percent-encoded).
pub fn redirect_to(uri: &str, params: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", q.finish())
}

fn error_link(app: &App, uri: &str, err: &OAuthError, state: Option<&str>) -> String {
    let desc = err.description();
    let mut params = vec![("error", err.code()), ("error_description", desc.as_ref())];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", &app.settings.issuer));
    redirect_to(uri, &params)
}

fn error_redirect(app: &App, uri: &str, err: &OAuthError, state: Option<&str>) -> Outcome {
    Outcome::Redirect(error_link(app, uri, err, state))
}

/// An authorization error before anyone signed in: redirected for a trusted client, a
/// page with the link otherwise (see [`Outcome::ErrorLink`]).
fn refuse(app: &App, client: &Client, reply: &Reply, err: &OAuthError) -> Outcome {
    let link = error_link(app, &reply.redirect_uri, err, reply.state.as_deref());
    if client.trusted {
        return Outcome::Redirect(link);
    }
    Outcome::ErrorLink {
        message: err.description(),
        host: url::Url::parse(&reply.redirect_uri)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| reply.redirect_uri.split(':').next().unwrap_or_default().to_owned()),
        link,
    }
}

fn page(text: &'static str) -> Outcome {
    Outcome::ErrorPage(Cow::Borrowed(text))
}

fn page_for_store(e: &crate::store::StoreError) -> Outcome {
    tracing::error!(error = %e, "store failed at the authorization endpoint");
    Outcome::Unavailable
}

async fn client(app: &App, client_id: &str) -> Result<Client, Outcome> {
    app.clients.client(client_id).await.map_err(|e| page_for_store(&e))?.ok_or_else(|| page("Unknown client."))
}

/// Validate an authorization request (from the query, or a POSTed form without a sealed
/// request) and show the login page, or say why not.
///
/// `csrf_cookie` is the value of the CSRF cookie the page's form will be bound to; `now`
/// is the request's time.
pub async fn start(app: &App, raw: &[u8], csrf_cookie: &str, now: OffsetDateTime) -> Outcome {
    start_inner(app, raw, csrf_cookie, now).await.unwrap_or_else(|refused| refused)
}

async fn start_inner(app: &App, raw: &[u8], csrf_cookie: &str, now: OffsetDateTime) -> Result<Outcome, Outcome> {
    let (params, repeated) = Params::parse_lenient(raw).map_err(|_| page("The request's parameters are malformed."))?;
    // Step 1 of §4.1.2.1: errors here are pages, never redirects ("the authorization
    // server ... MUST NOT automatically redirect the user-agent to the invalid redirection URI").
    let client = client(app, request::client_id(&params, &repeated).map_err(page)?).await?;
    let reply = request::reply(&client, &params).map_err(page)?;
    // Step 2: these errors go back to the client.
    let asked = request::validate(&client, &params, &repeated).map_err(|e| refuse(app, &client, &reply, &e))?;
    let pending = PendingRequest {
        id: random_id("req_").map_err(|_| Outcome::Unavailable)?,
        client_id: client.client_id.clone(),
        redirect_uri: reply.redirect_uri,
        redirect_uri_sent: reply.redirect_uri_sent,
        scope: asked.scope.to_string(),
        state: reply.state,
        nonce: asked.nonce,
        code_challenge: asked.code_challenge,
        expires_at: now.unix_timestamp() + FORM_TTL_SECONDS,
        csrf: sha256_b64(csrf_cookie),
    };
    let page = login_page(app, &client, &pending, "", None).map_err(|_| Outcome::Unavailable)?;
    Ok(Outcome::Login(Box::new(page), 200))
}

fn login_page(
    app: &App,
    client: &Client,
    pending: &PendingRequest,
    username: &str,
    error: Option<&'static str>,
) -> Result<LoginPage, serde_json::Error> {
    let sealed = sealed::seal(&app.form_key(), pending)?;
    let (host, origin) = match url::Url::parse(&pending.redirect_uri) {
        Ok(u) if u.host_str().is_some() => {
            (u.host_str().unwrap_or_default().to_owned(), u.origin().ascii_serialization())
        }
        Ok(u) => (format!("{}:", u.scheme()), format!("{}:", u.scheme())),
        Err(_) => (String::new(), String::new()),
    };
    let scope = ScopeSet::parse(&pending.scope).unwrap_or_default();
    Ok(LoginPage {
        client_name: client.client_name.clone().unwrap_or_else(|| client.client_id.clone()),
        client_id: client.client_id.clone(),
        redirect_host: host,
        redirect_origin: origin,
        scopes: scope.iter().map(|s| (s.as_str(), s.description())).collect(),
        sealed,
        username: username.chars().take(64).collect(),
        error,
    })
}

/// The form a browser submits from the login page.
#[derive(Debug)]
pub struct Submission<'a> {
    /// The parsed form.
    pub form: &'a Params,
    /// The CSRF cookie that came with it.
    pub csrf_cookie: Option<&'a str>,
    /// Whether `Origin`/`Sec-Fetch-Site` allow a same-origin form post.
    pub same_origin: bool,
    /// The caller's address, for the per-address throttle.
    pub source_ip: Option<std::net::IpAddr>,
}

/// The credentials of a submitted login form, and what showing the page again needs.
pub struct LoginForm<'a> {
    app: &'a App,
    client: &'a Client,
    pending: &'a PendingRequest,
    /// The `username` field (empty when absent).
    pub username: &'a str,
    /// The `password` field (empty when absent).
    pub password: &'a str,
}

impl LoginForm<'_> {
    /// The login page again, with the one failure message and `status`.
    pub fn again(&self, status: u16) -> Outcome {
        match login_page(self.app, self.client, self.pending, self.username, Some(LOGIN_FAILED)) {
            Ok(p) => Outcome::Login(Box::new(p), status),
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
    let client = client(app, &pending.client_id).await?;
    match s.form.get("decision") {
        Some("deny") => {
            use_form_once(app, &pending, now).await?;
            tracing::info!(event = "consent_denied", client_id = %client.client_id, "user denied the request");
            let denied = OAuthError::AccessDenied("the user denied the request".into());
            Ok(error_redirect(app, &pending.redirect_uri, &denied, pending.state.as_deref()))
        }
        Some("allow") => {
            let form = LoginForm {
                app,
                client: &client,
                pending: &pending,
                username: s.form.get("username").unwrap_or_default(),
                password: s.form.get("password").unwrap_or_default(),
            };
            let user = login::authenticate(app, &client, &form, s.source_ip, now).await?;
            use_form_once(app, &pending, now).await?;
            tracing::info!(event = "login_succeeded", sub = %user.sub, client_id = %client.client_id, source_ip = ?s.source_ip, "login succeeded");
            let code = code::issue(app, &pending, &user.sub, now.unix_timestamp()).await.map_err(|e| {
                tracing::error!(error = %e, "could not issue a code");
                Outcome::Unavailable
            })?;
            let mut params = vec![("code", code.as_str())];
            if let Some(st) = pending.state.as_deref() {
                params.push(("state", st));
            }
            params.push(("iss", &app.settings.issuer));
            Ok(Outcome::Redirect(redirect_to(&pending.redirect_uri, &params)))
        }
        _ => Err(page("The form has no decision.")),
    }
}

/// The sealed request of a submitted form, if it is genuine, unexpired, posted from our own
/// origin and bound to this browser's CSRF cookie. Refusals are 400 pages, never redirects.
async fn open_form(app: &App, s: &Submission<'_>, now: i64) -> Result<PendingRequest, Outcome> {
    if !s.same_origin {
        return Err(page("This form was submitted from another site."));
    }
    let sealed = s.form.get("request");
    let open = |r: &str| app.form_keys().iter().find_map(|k| sealed::open(k, r, now));
    let mut pending = sealed.and_then(open);
    // Sealed with a form key this process does not hold yet (the secret was rotated and
    // another container already has the new value): re-read once, rate-limited.
    if pending.is_none() && sealed.is_some() && app.refresh_form_keys(now, true).await {
        let open = |r: &str| app.form_keys().iter().find_map(|k| sealed::open(k, r, now));
        pending = sealed.and_then(open);
    }
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
