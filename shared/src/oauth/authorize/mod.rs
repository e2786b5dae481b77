//! The authorization endpoint (RFC 6749 §4.1.1–4.1.2, RFC 7636, RFC 9207, RFC 9700), as a
//! pipeline: validate the request in the order §4.1.2.1 requires ([`request`]), seal it
//! into the login and consent page ([`super::sealed`]), authenticate the user on submit
//! ([`super::login`]: throttle, argon2id, hash upgrade) or find their sign-in session
//! ([`signed_in`]), and redirect with a single-use code ([`code`]). Each step returns `Result<_, Outcome>`: the first refusal is what the browser
//! is shown.
pub mod code;
pub mod federated;
pub mod request;
pub mod signed_in;
mod submit;
pub use submit::{LoginForm, Submission, submit};

pub use super::login::LOGIN_FAILED;
use super::params::Params;
use super::sealed::{self, PendingRequest};
use super::session;
use super::session::Browser;
use super::{Description, OAuthError};
use crate::App;
use crate::catalog::Catalog;
use crate::crypto::{random_id, sha256_b64};
use crate::domain::{Client, ConsentGrant, ScopeSet, Session};
pub use code::CODE_TTL_SECONDS;
use code::{answer, issue_and_redirect};
use request::{AuthorizationRequest, Reply};
use signed_in::{Decision, Hint};
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
    /// A redirect to the client after a password login, which began a browser session.
    SignedIn {
        /// The redirect (`Location`).
        location: String,
        /// The new session cookie's value.
        session_cookie: String,
    },
    /// A dependency failed (after retries): an error page with 503 and `Retry-After`.
    Unavailable,
    /// To an upstream provider's authorization endpoint (303), with the sealed flow cookie.
    Upstream {
        /// The provider's authorization request.
        location: String,
        /// The flow cookie's value.
        flow_cookie: String,
    },
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

impl LoginPage {
    /// Make it the consent page of the signed-in `user`: their name, no sign-in buttons.
    pub(crate) fn show_signed_in(&mut self, user: &crate::domain::User) {
        self.signed_in_as = Some(user.username.as_str().to_owned());
        self.providers.clear();
        self.upstream_origins.clear();
    }
}

/// Everything the login and consent page shows.
#[derive(Debug)]
pub struct LoginPage {
    /// The client's name, or its id.
    pub client_name: String,
    /// The client's id.
    pub client_id: String,
    /// For a client described by a metadata document: the host serving it, shown next to
    /// the name (the name is the document's own claim; the host is what was verified).
    pub document_host: Option<String>,
    /// Host (or scheme) the user will be sent back to.
    pub redirect_host: String,
    /// Origin of the redirect URI, for the CSP `form-action`.
    pub redirect_origin: String,
    /// Each requested scope and what it allows, in plain words.
    pub scopes: Vec<(String, String)>,
    /// Each resource server the tokens will be for: its name and identifier (RFC 8707).
    pub resources: Vec<(String, String)>,
    /// The sealed pending request (hidden field).
    pub sealed: String,
    /// Username to prefill after a failed attempt.
    pub username: String,
    /// The consent page of a signed-in user (no password): their username.
    pub signed_in_as: Option<String>,
    /// The failure message, if any.
    pub error: Option<Cow<'static, str>>,
    /// "Continue with" buttons: each upstream provider's id and name (not on the consent
    /// page of a signed-in user).
    pub providers: Vec<(String, String)>,
    /// The origins those buttons' form posts are redirected to (the CSP `form-action`).
    pub upstream_origins: Vec<String>,
    /// A device's request (RFC 8628): the user code it shows, and the page warns that only
    /// its holder should allow it.
    pub device: Option<String>,
    /// Public sign-up is on: a first "Continue with" creates an account, and the page says so.
    pub signup: bool,
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

/// The client: registered, or described by its metadata document (a refused document is
/// a page naming why; never a redirect, its redirect URIs are not known to be its own).
pub(crate) async fn client(app: &App, client_id: &str, now: OffsetDateTime) -> Result<Client, Outcome> {
    match super::cimd::lookup(app, client_id, now.unix_timestamp()).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(page("Unknown client.")),
        Err(OAuthError::TemporarilyUnavailable(e) | OAuthError::ServerError(e)) => {
            tracing::error!(error = %e, "client lookup failed at the authorization endpoint");
            Err(Outcome::Unavailable)
        }
        Err(e) => Err(Outcome::ErrorPage(e.description())),
    }
}

/// Validate an authorization request (from the query, or a POSTed form without a sealed
/// request) at the request's time `now`, and answer it: the code at once for a signed-in
/// user whose consent is remembered, else the consent or the login page, or say why not.
pub async fn start(app: &App, raw: &[u8], browser: Browser<'_>, now: OffsetDateTime) -> Outcome {
    start_inner(app, raw, browser, now).await.unwrap_or_else(|refused| refused)
}

async fn start_inner(app: &App, raw: &[u8], browser: Browser<'_>, now: OffsetDateTime) -> Result<Outcome, Outcome> {
    let (params, repeated) = Params::parse_lenient(raw).map_err(|_| page("The request's parameters are malformed."))?;
    // Step 1 of §4.1.2.1: errors here are pages, never redirects ("the authorization
    // server ... MUST NOT automatically redirect the user-agent to the invalid redirection URI").
    let client = client(app, request::client_id(&params, &repeated).map_err(page)?, now).await?;
    let reply = request::reply(&client, &params).map_err(page)?;
    // Step 2: these errors go back to the client.
    let catalog = app.resources.catalog(now.unix_timestamp()).await.map_err(|e| page_for_store(&e))?;
    let asked =
        request::validate(&client, &catalog, &params, &repeated).map_err(|e| refuse(app, &client, &reply, &e))?;
    let mut pending = PendingRequest {
        id: random_id("req_").map_err(|_| Outcome::Unavailable)?,
        client_id: client.client_id.clone(),
        redirect_uri: reply.redirect_uri.clone(),
        redirect_uri_sent: reply.redirect_uri_sent,
        scope: asked.scope.to_string(),
        resources: asked.resources.clone(),
        state: reply.state.clone(),
        nonce: asked.nonce.clone(),
        code_challenge: asked.code_challenge.clone(),
        expires_at: now.unix_timestamp() + FORM_TTL_SECONDS,
        csrf: sha256_b64(browser.csrf_cookie),
        sub: None,
        hint_sub: None,
        prompt_login: asked.prompt.login || asked.prompt.select_account,
        max_age: asked.max_age,
        dpop_jkt: super::dpop::requested_jkt(&params).map_err(|e| refuse(app, &client, &reply, &e))?,
        device: None,
    };
    let hint = match asked.id_token_hint.as_deref() {
        Some(h) => hint(app, h, now.unix_timestamp()).await,
        None => Hint::Absent,
    };
    let mut signed_in = match browser.session {
        Some(c) => session::find(app, c, Some(&client.client_id), now).await.map_err(|e| page_for_store(&e))?,
        None => None,
    };
    // A grant from before resource indicators was consent on the default API only.
    if let Some((_, Some(g))) = signed_in.as_mut()
        && g.resources.is_empty()
    {
        g.resources.push(catalog.default_server().id.clone());
    }
    let decision =
        signed_in::decide(&client, &pending.redirect_uri, &asked, signed_in.as_ref(), &hint, now.unix_timestamp());
    // The signed-in user allowed this client before: its registered redirect URI is vouched
    // for by them, so an error may go there as a code would.
    let allowed_before = signed_in.as_ref().is_some_and(|(_, g)| g.is_some());
    match (decision, signed_in) {
        (Decision::Issue, Some((session, _))) => {
            tracing::info!(event = "authorized_silently", sub = %session.sub, client_id = %client.client_id, "remembered consent, live session");
            issue_and_redirect(app, &pending, &session, now).await
        }
        (Decision::Consent { new, new_resource }, Some((session, grant))) => {
            consent_page(app, &catalog, &client, &reply, &asked, pending, (session, grant), (new, new_resource)).await
        }
        _ if asked.prompt.none && allowed_before => {
            Err(error_redirect(app, &reply.redirect_uri, &OAuthError::LoginRequired, reply.state.as_deref()))
        }
        _ if asked.prompt.none => Err(refuse(app, &client, &reply, &OAuthError::LoginRequired)),
        _ => {
            if let Hint::User(sub) = hint {
                pending.hint_sub = Some(sub);
            }
            let page = login_page(app, &catalog, &client, &pending, "", None).map_err(|_| Outcome::Unavailable)?;
            Ok(Outcome::Login(Box::new(page), 200))
        }
    }
}

/// The user an `id_token_hint` names, if this server issued it.
async fn hint(app: &App, token: &str, now: i64) -> Hint {
    match session::verified_hint(app, token, now).await {
        Ok(claims) => Hint::User(claims.sub),
        Err(why) => {
            tracing::info!(reason = %why, "id_token_hint not verified");
            Hint::Unverified
        }
    }
}

/// The consent page of a signed-in user, listing what is new (everything asked when the
/// page is shown again for a client that cannot be answered silently).
#[allow(clippy::too_many_arguments)] // one call site; the pieces of one decision
async fn consent_page(
    app: &App,
    catalog: &Catalog,
    client: &Client,
    reply: &Reply,
    asked: &AuthorizationRequest,
    mut pending: PendingRequest,
    (session, grant): (Session, Option<ConsentGrant>),
    (new, new_resource): (ScopeSet, bool),
) -> Result<Outcome, Outcome> {
    if asked.prompt.none {
        // The user allowed this client before: the answer may go to it, as a code would.
        let err =
            if new.is_empty() && !new_resource { OAuthError::InteractionRequired } else { OAuthError::ConsentRequired };
        return Err(if grant.is_some() {
            error_redirect(app, &reply.redirect_uri, &err, reply.state.as_deref())
        } else {
            refuse(app, client, reply, &err)
        });
    }
    let Some(user) = app.users.user_by_sub(&session.sub).await.map_err(|e| page_for_store(&e))? else {
        return Err(page("This account no longer exists. Start again from the application."));
    };
    pending.sub = Some(session.sub);
    let mut page = login_page(app, catalog, client, &pending, "", None).map_err(|_| Outcome::Unavailable)?;
    if !new.is_empty() {
        page.scopes = describe(catalog, &new);
    }
    page.show_signed_in(&user);
    Ok(Outcome::Login(Box::new(page), 200))
}

/// The host a redirect URI sends the user to (its scheme, for an app's URI) and the
/// CSP source that allows a form's redirect there: the URI's origin, or `scheme:` when the
/// origin is opaque (a private-use scheme, `com.example.app://cb` included: its origin
/// serializes as `null`, which is no CSP source).
pub(crate) fn host_and_origin(uri: &str) -> (String, String) {
    match url::Url::parse(uri) {
        Ok(u) => {
            let scheme = format!("{}:", u.scheme());
            let origin = u.origin();
            if origin.is_tuple() {
                (u.host_str().unwrap_or_default().to_owned(), origin.ascii_serialization())
            } else {
                (scheme.clone(), scheme)
            }
        }
        Err(_) => (String::new(), String::new()),
    }
}

/// Each scope of `scope` and its words for the consent page.
fn describe(catalog: &Catalog, scope: &ScopeSet) -> Vec<(String, String)> {
    scope.iter().map(|s| (s.to_string(), catalog.describe(s))).collect()
}

pub(crate) fn login_page(
    app: &App,
    catalog: &Catalog,
    client: &Client,
    pending: &PendingRequest,
    username: &str,
    error: Option<Cow<'static, str>>,
) -> Result<LoginPage, serde_json::Error> {
    let sealed = sealed::seal(&app.form_key(), pending)?;
    let (host, origin) = host_and_origin(&pending.redirect_uri);
    let scope = ScopeSet::parse(&pending.scope).unwrap_or_default();
    Ok(LoginPage {
        client_name: client.client_name.clone().unwrap_or_else(|| client.client_id.clone()),
        client_id: client.client_id.clone(),
        document_host: super::cimd::is_document_url(&client.client_id)
            .then(|| url::Url::parse(&client.client_id).ok().and_then(|u| u.host_str().map(str::to_owned)))
            .flatten(),
        redirect_host: host,
        redirect_origin: origin,
        scopes: describe(catalog, &scope),
        resources: pending
            .resources
            .iter()
            .map(|id| (catalog.get(id).map_or_else(|| id.to_string(), |s| s.name.clone()), id.to_string()))
            .collect(),
        sealed,
        username: username.chars().take(64).collect(),
        signed_in_as: None,
        error,
        providers: app.federation.all().map(|u| (u.config.id.clone(), u.config.name.clone())).collect(),
        upstream_origins: app.federation.all().map(|u| app.federation.form_action_origin(u)).collect(),
        device: pending.device.as_ref().map(|d| d.user_code.clone()),
        signup: app.settings.signup_enabled,
    })
}

#[cfg(test)]
mod tests {
    use super::host_and_origin;

    #[test]
    fn a_redirect_uri_names_its_host_and_the_csp_source_of_its_origin() {
        let cases = [
            ("https://client.example:8443/cb?x=1", ("client.example", "https://client.example:8443")),
            ("http://127.0.0.1:9000/cb", ("127.0.0.1", "http://127.0.0.1:9000")),
            // An app's private-use scheme: its origin is opaque ("null" is no CSP source).
            ("com.example.app:/cb", ("com.example.app:", "com.example.app:")),
            ("com.example.app://cb/x", ("com.example.app:", "com.example.app:")),
            ("not a uri", ("", "")),
        ];
        for (uri, (host, source)) in cases {
            assert_eq!(host_and_origin(uri), (host.to_owned(), source.to_owned()), "{uri}");
        }
    }
}
