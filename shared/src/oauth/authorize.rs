//! The authorization endpoint (RFC 6749 §4.1.1–4.1.2, RFC 7636, RFC 9207, RFC 9700):
//! validate the request in the order §4.1.2.1 requires, show the login and consent page,
//! authenticate the user (argon2id, throttled), and redirect with a single-use code.
use super::params::Params;
use super::sealed::{self, PendingRequest};
use super::{Description, OAuthError, pkce, store_failure};
use crate::App;
use crate::crypto::{Secret, ct_eq, hash_password, needs_rehash, random_id, random_token, sha256_b64, verify_password};
use crate::domain::{AuthCode, Client, GrantType, ScopeSet};
use std::borrow::Cow;

/// How long the login form stays valid.
pub const FORM_TTL_SECONDS: i64 = 600;
/// How long an authorization code lives (RFC 6749 §4.1.2: "maximum ... of 10 minutes").
pub const CODE_TTL_SECONDS: i64 = 60;
const MAX_STATE: usize = 1024;
const MAX_NONCE: usize = 512;
/// The one message for every failed login, so it reveals nothing about which part was wrong.
pub const LOGIN_FAILED: &str =
    "Sign-in failed: the username or password is wrong, or there were too many attempts. Try again later.";

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

fn error_redirect(app: &App, uri: &str, err: &OAuthError, state: Option<&str>) -> Outcome {
    let desc = err.description();
    let mut params = vec![("error", err.code()), ("error_description", desc.as_ref())];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", &app.settings.issuer));
    Outcome::Redirect(redirect_to(uri, &params))
}

fn page(text: &'static str) -> Outcome {
    Outcome::ErrorPage(Cow::Borrowed(text))
}

/// Step 1 of §4.1.2.1: the client and the redirect URI. Errors here are pages, never
/// redirects ("the authorization server ... MUST NOT automatically redirect the user-agent
/// to the invalid redirection URI").
async fn client_and_redirect(
    app: &App,
    params: &Params,
    repeated: &[String],
) -> Result<(Client, String, bool), Outcome> {
    if repeated.iter().any(|k| k == "client_id" || k == "redirect_uri") {
        return Err(page("The request repeats client_id or redirect_uri."));
    }
    let client_id = params.get("client_id").ok_or_else(|| page("The request has no client_id."))?;
    if client_id.len() > 128 {
        return Err(page("Unknown client."));
    }
    let client =
        app.clients.client(client_id).await.map_err(|e| page_for_store(&e))?.ok_or_else(|| page("Unknown client."))?;
    let (redirect, sent) = match params.get("redirect_uri") {
        Some(requested) => {
            let ok = client.redirect_uris.iter().any(|r| r.matches(requested));
            if !ok {
                return Err(page("The redirect_uri is not registered for this client."));
            }
            (requested.to_owned(), true)
        }
        None => match client.redirect_uris.as_slice() {
            [only] => (only.as_str().to_owned(), false),
            _ => return Err(page("The request must name one of the client's registered redirect URIs.")),
        },
    };
    Ok((client, redirect, sent))
}

fn page_for_store(e: &crate::store::StoreError) -> Outcome {
    tracing::error!(error = %e, "store failed at the authorization endpoint");
    Outcome::Unavailable
}

/// Validate an authorization request (from the query, or a POSTed form without a sealed
/// request) and show the login page, or say why not.
///
/// `csrf_cookie` is the value of the CSRF cookie the page's form will be bound to.
pub async fn start(app: &App, raw: &[u8], csrf_cookie: &str) -> Outcome {
    let Ok((params, repeated)) = Params::parse_lenient(raw) else {
        return page("The request's parameters are malformed.");
    };
    let (client, redirect, sent) = match client_and_redirect(app, &params, &repeated).await {
        Ok(x) => x,
        Err(outcome) => return outcome,
    };
    let state = params.get("state");
    if state.is_some_and(|s| s.len() > MAX_STATE) {
        return page("The state parameter is too long.");
    }
    match validate(&client, &params, &repeated) {
        Ok((scope, challenge, nonce)) => {
            let now = app.clock.now().unix_timestamp();
            let pending = PendingRequest {
                id: match random_id("req_") {
                    Ok(id) => id,
                    Err(_) => return Outcome::Unavailable,
                },
                client_id: client.client_id.clone(),
                redirect_uri: redirect,
                redirect_uri_sent: sent,
                scope: scope.to_string(),
                state: state.map(str::to_owned),
                nonce: nonce.map(str::to_owned),
                code_challenge: challenge.to_owned(),
                expires_at: now + FORM_TTL_SECONDS,
                csrf: sha256_b64(csrf_cookie),
            };
            match login_page(app, &client, &pending, "", None) {
                Ok(p) => Outcome::Login(Box::new(p), 200),
                Err(_) => Outcome::Unavailable,
            }
        }
        Err(e) if client.trusted => error_redirect(app, &redirect, &e, state),
        Err(e) => match error_redirect(app, &redirect, &e, state) {
            Outcome::Redirect(link) => Outcome::ErrorLink {
                message: e.description(),
                host: url::Url::parse(&redirect)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_else(|| redirect.split(':').next().unwrap_or_default().to_owned()),
                link,
            },
            other => other,
        },
    }
}

/// Step 2 of §4.1.2.1: everything else; these errors are redirected to the client.
fn validate<'a>(
    client: &Client,
    params: &'a Params,
    repeated: &[String],
) -> Result<(ScopeSet, &'a str, Option<&'a str>), OAuthError> {
    // "Request and response parameters MUST NOT be included more than once." (RFC 6749 §3.1)
    if let Some(k) = repeated.first() {
        let k: String = k.chars().filter(|c| c.is_ascii_graphic()).take(40).collect();
        return Err(OAuthError::InvalidRequest(format!("parameter {k} is repeated").into()));
    }
    match params.get("response_type") {
        None => return Err(OAuthError::invalid_request("response_type is required")),
        Some("code") => {}
        Some(_) => return Err(OAuthError::UnsupportedResponseType("only response_type=code is supported".into())),
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(OAuthError::UnauthorizedClient("this client may not use the authorization code grant".into()));
    }
    // PKCE is required for every client (OAuth 2.1 §4.1.1, RFC 9700 §2.1.1); a missing
    // method means "plain" (RFC 7636 §4.3), which is refused.
    match params.get("code_challenge_method") {
        Some("S256") => {}
        None => {
            return Err(OAuthError::invalid_request("code_challenge_method=S256 is required (plain is not allowed)"));
        }
        Some(_) => return Err(OAuthError::invalid_request("code_challenge_method must be S256")),
    }
    let challenge =
        params.get("code_challenge").ok_or_else(|| OAuthError::invalid_request("code_challenge is required (PKCE)"))?;
    if !pkce::valid_s256_challenge(challenge) {
        return Err(OAuthError::invalid_request("code_challenge must be 43 base64url characters"));
    }
    let scope = match params.get("scope") {
        None => client.scope.clone(),
        Some(s) => {
            ScopeSet::parse(s).map_err(|bad| OAuthError::InvalidScope(format!("unknown scope {bad:?}").into()))?
        }
    };
    if scope.is_empty() || !scope.is_subset_of(&client.scope) {
        return Err(OAuthError::InvalidScope("the requested scope is not allowed for this client".into()));
    }
    let nonce = params.get("nonce");
    if nonce.is_some_and(|n| n.len() > MAX_NONCE) {
        return Err(OAuthError::invalid_request("nonce is too long"));
    }
    // No sessions here: a request that forbids showing a login page cannot succeed. "The
    // Authorization Server MUST NOT display any authentication or consent user interface
    // pages. An error is returned if an End-User is not already authenticated" (OIDC Core
    // §3.1.2.1), and that error is login_required (§3.1.2.6).
    if params.get("prompt").is_some_and(|p| p.split(' ').any(|v| v == "none")) {
        return Err(OAuthError::LoginRequired);
    }
    Ok((scope, challenge, nonce))
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

/// Handle the login and consent form (POST).
pub async fn submit(app: &App, s: Submission<'_>) -> Outcome {
    let now = app.clock.now().unix_timestamp();
    // Tampering, expiry, a missing or foreign CSRF cookie, or a cross-site post: 400, no redirect.
    if !s.same_origin {
        return page("This form was submitted from another site.");
    }
    let open = |r: &str| app.form_keys().iter().find_map(|k| sealed::open(k, r, now));
    let mut pending = s.form.get("request").and_then(open);
    // Sealed with a form key this process does not hold yet (the secret was rotated and
    // another container already has the new value): re-read once, rate-limited.
    if pending.is_none() && s.form.get("request").is_some() && app.refresh_form_keys(now, true).await {
        let open = |r: &str| app.form_keys().iter().find_map(|k| sealed::open(k, r, now));
        pending = s.form.get("request").and_then(open);
    }
    let Some(pending) = pending else {
        return page("This sign-in form is invalid or has expired. Start again from the application.");
    };
    let cookie_ok = s.csrf_cookie.is_some_and(|c| ct_eq(sha256_b64(c).as_bytes(), pending.csrf.as_bytes()));
    if !cookie_ok {
        return page("This sign-in form does not belong to this browser session. Start again from the application.");
    }
    let client = match app.clients.client(&pending.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return page("Unknown client."),
        Err(e) => return page_for_store(&e),
    };
    let state = pending.state.as_deref();
    match s.form.get("decision") {
        Some("deny") => {
            if let Err(o) = use_form_once(app, &pending).await {
                return o;
            }
            tracing::info!(event = "consent_denied", client_id = %client.client_id, "user denied the request");
            error_redirect(
                app,
                &pending.redirect_uri,
                &OAuthError::AccessDenied("the user denied the request".into()),
                state,
            )
        }
        Some("allow") => login(app, &client, &pending, &s, now).await,
        _ => page("The form has no decision."),
    }
}

/// A submitted form is accepted once: a replay of the same hidden fields is refused.
async fn use_form_once(app: &App, pending: &PendingRequest) -> Result<(), Outcome> {
    let key = format!("form#{}", pending.id);
    match app.throttle.hit(&key, FORM_TTL_SECONDS + 60, app.clock.now()).await {
        Ok(1) => Ok(()),
        Ok(_) => Err(page("This sign-in form was already used. Start again from the application.")),
        Err(e) => Err(page_for_store(&e)),
    }
}

async fn login(app: &App, client: &Client, pending: &PendingRequest, s: &Submission<'_>, now: i64) -> Outcome {
    let username = s.form.get("username").unwrap_or_default();
    let password = s.form.get("password").unwrap_or_default();
    let again = |status: u16| match login_page(app, client, pending, username, Some(LOGIN_FAILED)) {
        Ok(p) => Outcome::Login(Box::new(p), status),
        Err(_) => Outcome::Unavailable,
    };
    if username.is_empty() || password.is_empty() || password.len() > 1024 || username.len() > 256 {
        return again(401);
    }
    // Counters are keyed by a hash, so any input (even invalid usernames) maps to a bounded key.
    let user_key = format!("login#user#{}", sha256_b64(&username.to_lowercase()));
    let ip_key = s.source_ip.map(|ip| format!("login#ip#{}", super::abuse::address_bucket(ip)));
    // docs/API.md: "an attempt is counted before its password is checked, and the decision uses
    // the count that write returned". A count read before the 25-60 ms argon2 run would let
    // every concurrent guess through (check-then-act); the atomic increment's own result
    // cannot be raced, so N simultaneous guesses get at most the limit's password checks.
    let (mut over, mut ip_count) = (false, 0);
    for (key, limit, is_ip) in std::iter::once((&user_key, app.settings.login_max_failures, false))
        .chain(ip_key.as_ref().map(|k| (k, app.settings.login_max_failures_per_ip, true)))
    {
        match app.throttle.hit(key, app.settings.login_window, app.clock.now()).await {
            Ok(n) => {
                over |= n > limit;
                if is_ip {
                    ip_count = n;
                }
            }
            Err(e) => return page_for_store(&e),
        }
    }
    if over {
        tracing::warn!(event = "login_throttled", client_id = %client.client_id, source_ip = ?s.source_ip, "login throttled");
        return again(429);
    }
    let user = match crate::domain::Username::parse(username) {
        Ok(u) => match app.users.user_by_username(&u.key()).await {
            Ok(user) => user,
            Err(e) => return page_for_store(&e),
        },
        Err(_) => None,
    };
    // An unknown user is checked against a dummy hash: the same argon2 work either way.
    let verified = verify_password(Secret::new(password), user.as_ref().map(|u| u.password_hash.clone())).await;
    let user = match (verified, user) {
        (Ok(true), Some(user)) => user,
        (Ok(_), _) => {
            tracing::warn!(event = "login_failed", client_id = %client.client_id, source_ip = ?s.source_ip, "login failed");
            return again(401);
        }
        (Err(e), _) => {
            tracing::error!(error = %e, "password verification failed");
            return Outcome::Unavailable;
        }
    };
    // A success clears the user name's count and takes back its own attempt at the
    // address, so the per-address limit counts failures. When the address's counter holds
    // only this attempt, the write is skipped (the usual login costs no extra request): the
    // success then stays counted there until the window ends: one attempt stricter.
    if let Err(e) = app.throttle.reset(&user_key).await {
        return page_for_store(&e);
    }
    if ip_count > 1
        && let Some(key) = &ip_key
        && let Err(e) = app.throttle.forgive(key, app.clock.now()).await
    {
        return page_for_store(&e);
    }
    upgrade_hash(app, &user.sub, &user.password_hash, password).await;
    if let Err(o) = use_form_once(app, pending).await {
        return o;
    }
    tracing::info!(event = "login_succeeded", sub = %user.sub, client_id = %client.client_id, source_ip = ?s.source_ip, "login succeeded");
    match issue_code(app, pending, &user.sub, now).await {
        Ok(code) => {
            let mut params = vec![("code", code.as_str())];
            if let Some(st) = pending.state.as_deref() {
                params.push(("state", st));
            }
            params.push(("iss", &app.settings.issuer));
            Outcome::Redirect(redirect_to(&pending.redirect_uri, &params))
        }
        Err(e) => {
            tracing::error!(error = %e, "could not issue a code");
            Outcome::Unavailable
        }
    }
}

/// Re-hash a password whose stored parameters are below the current policy (ASVS 11.4.2).
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

async fn issue_code(app: &App, p: &PendingRequest, sub: &str, now: i64) -> Result<String, OAuthError> {
    let code = random_token().map_err(OAuthError::server)?;
    let record = AuthCode {
        code_hash: sha256_b64(&code),
        client_id: p.client_id.clone(),
        redirect_uri: p.redirect_uri.clone(),
        redirect_uri_sent: p.redirect_uri_sent,
        code_challenge: p.code_challenge.clone(),
        scope: ScopeSet::parse(&p.scope)
            .map_err(|s| OAuthError::server(anyhow::anyhow!("sealed scope {s:?} is unknown")))?,
        nonce: p.nonce.clone(),
        sub: sub.to_owned(),
        auth_time: now,
        family_id: random_id("fam_").map_err(OAuthError::server)?,
        expires_at: now + CODE_TTL_SECONDS,
        consumed_at: None,
        consumed_by: None,
    };
    app.codes.put_code(&record).await.map_err(store_failure)?;
    tracing::info!(event = "code_issued", sub = %sub, client_id = %p.client_id, family_id = %record.family_id, "authorization code issued");
    Ok(code)
}
