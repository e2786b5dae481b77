//! `GET` and `POST /oauth/authorize`: cookies, security headers and HTML around
//! `oauth::authorize`. Never emits CORS headers (docs/SECURITY.md A13).
use super::request::{has_media_type, header_values};
use super::{Request, Response};
use crate::App;
use crate::html;
use crate::oauth::OAuthError;
use crate::oauth::authorize::{self, Browser, Outcome, Submission};
use crate::oauth::params::Params;
use crate::oauth::session::SessionCookie;
use axum::body::Body;
use http::{HeaderValue, StatusCode, header};

/// Name of the cookie the login form is bound to, on an `http` (loopback) issuer.
pub const CSRF_COOKIE: &str = "oauth_csrf";
/// Its name on an `https` issuer: the `__Host-` prefix makes browsers refuse it unless it is
/// `Secure`, `Path=/` and host-only, so a sibling subdomain cannot plant or overwrite it.
pub const CSRF_COOKIE_HOST: &str = "__Host-oauth_csrf";

/// The CSRF cookie's name for this issuer.
pub fn csrf_cookie_name(app: &App) -> &'static str {
    if app.settings.is_https() { CSRF_COOKIE_HOST } else { CSRF_COOKIE }
}

/// Name of the session cookie on an `http` (loopback) issuer.
pub const SESSION_COOKIE: &str = "session";
/// Its name on an `https` issuer (`__Host-`: `Secure`, `Path=/`, host-only, as above).
pub const SESSION_COOKIE_HOST: &str = "__Host-session";

/// The session cookie's name for this issuer.
pub fn session_cookie_name(app: &App) -> &'static str {
    if app.settings.is_https() { SESSION_COOKIE_HOST } else { SESSION_COOKIE }
}

/// The values of the cookies named `name` (a browser may send one name more than once).
fn cookies<'r>(req: &'r Request, name: &'r str) -> impl Iterator<Item = &'r str> + 'r {
    header_values(req, header::COOKIE)
        .into_iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The browser's session cookie, if it holds a value this server could have set (whether
/// it names a live session is the store's answer).
pub fn session_cookie(app: &App, req: &Request) -> Option<SessionCookie> {
    cookies(req, session_cookie_name(app)).find_map(SessionCookie::parse)
}

/// The `Set-Cookie` value of a session cookie holding `value` (`None`: clear it).
pub fn set_session_cookie(app: &App, value: Option<&str>) -> Option<HeaderValue> {
    let secure = if app.settings.is_https() { "; Secure" } else { "" };
    let name = session_cookie_name(app);
    let (value, max_age) = match value {
        Some(v) => (v, app.settings.sessions.absolute),
        None => ("", 0),
    };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")).ok()
}

/// MAC of a CSRF cookie's random part under the form key: only this server mints values
/// it will accept, so a value planted in the browser (a cookie-tossing sibling host, a
/// man-in-the-middle on plain http elsewhere) is replaced, never adopted.
fn csrf_mac(key: &aws_lc_rs::hmac::Key, nonce: &str) -> String {
    use base64::Engine;
    let tag = aws_lc_rs::hmac::sign(key, format!("oauth-core/csrf/v1|{nonce}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref().get(..16).unwrap_or_default())
}

/// A fresh CSRF cookie value: 128 random bits, a dot, their MAC.
fn mint_csrf(app: &App) -> Result<String, OAuthError> {
    use base64::Engine;
    let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(crate::crypto::random_bytes::<16>().map_err(OAuthError::server)?);
    let mac = csrf_mac(&app.form_key(), &nonce);
    Ok(format!("{nonce}.{mac}"))
}

/// The browser's CSRF cookie, if this server minted it (its MAC verifies).
fn cookie<'r>(app: &App, req: &'r Request) -> Option<&'r str> {
    let keys = app.form_keys();
    cookies(req, csrf_cookie_name(app)).find(|v| {
        v.split_once('.').is_some_and(|(nonce, mac)| {
            nonce.len() == 22
                && keys.iter().any(|k| crate::crypto::ct_eq(mac.as_bytes(), csrf_mac(k, nonce).as_bytes()))
        })
    })
}

fn html_response(status: StatusCode, body: String, form_target: Option<&str>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(&html::csp(form_target)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

fn error_page(message: &str) -> Response {
    let body = html::error(message).unwrap_or_else(|_| "Sign-in problem.".to_owned());
    html_response(StatusCode::BAD_REQUEST, body, None)
}

fn render(app: &App, outcome: Outcome, redirect_status: StatusCode, new_cookie: Option<&str>) -> Response {
    let mut resp = match outcome {
        Outcome::ErrorPage(message) => error_page(&message),
        Outcome::ErrorLink { message, host, link } => match html::error_link(&message, &host, &link) {
            Ok(body) => html_response(StatusCode::BAD_REQUEST, body, None),
            Err(_) => error_page(&message),
        },
        Outcome::Unavailable => {
            let body = html::error("The service is temporarily unavailable. Try again in a moment.")
                .unwrap_or_else(|_| "Temporarily unavailable.".to_owned());
            let mut r = html_response(StatusCode::SERVICE_UNAVAILABLE, body, None);
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Outcome::Redirect(location) => redirect(&location, redirect_status),
        Outcome::SignedIn { location, session_cookie } => {
            let mut r = redirect(&location, redirect_status);
            if let Some(v) = set_session_cookie(app, Some(&session_cookie)) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Outcome::Login(page, status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            match html::login(&page, &app.settings.url(crate::paths::AUTHORIZE)) {
                Ok(body) => {
                    let mut r = html_response(status, body, Some(&page.redirect_origin));
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(app.settings.login_window));
                    }
                    r
                }
                Err(_) => error_page("The page could not be shown."),
            }
        }
    };
    if let Some(value) = new_cookie {
        let secure = if app.settings.is_https() { "; Secure" } else { "" };
        let name = csrf_cookie_name(app);
        let c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600{secure}");
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

fn redirect(location: &str, status: StatusCode) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut r = html_response(status, String::new(), None);
            r.headers_mut().insert(header::LOCATION, v);
            r
        }
        Err(_) => error_page("The redirect URI cannot be used."),
    }
}

/// The CSRF cookie to bind a new form to: the browser's if this server minted it, or a
/// fresh one to set.
fn cookie_for_new_form(app: &App, req: &Request) -> Result<(String, Option<String>), OAuthError> {
    match cookie(app, req) {
        Some(c) => Ok((c.to_owned(), None)),
        None => {
            let fresh = mint_csrf(app)?;
            Ok((fresh.clone(), Some(fresh)))
        }
    }
}

/// `GET /oauth/authorize`.
pub(super) async fn get(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let (csrf, new_cookie) = cookie_for_new_form(app, req)?;
    let query = req.uri().query().unwrap_or("").as_bytes();
    let session = session_cookie(app, req);
    let browser = Browser { csrf_cookie: &csrf, session: session.as_ref() };
    let outcome = authorize::start(app, query, browser, app.clock.now()).await;
    Ok(render(app, outcome, StatusCode::FOUND, new_cookie.as_deref()))
}

/// Whether `Origin` and `Sec-Fetch-Site` allow this form post (docs/SECURITY.md A10). Under
/// `Referrer-Policy: no-referrer` browsers send `Origin: null` even for same-origin form
/// posts (Fetch, "serializing a request origin"), so `null` proves nothing either way:
/// `Sec-Fetch-Site` and the SameSite CSRF cookie decide then.
fn same_origin(app: &App, req: &Request) -> bool {
    let origin_ok =
        header_values(req, header::ORIGIN).iter().all(|o| *o == app.settings.issuer_origin() || *o == "null");
    let fetch_ok = header_values(req, header::HeaderName::from_static("sec-fetch-site"))
        .iter()
        .all(|s| matches!(*s, "same-origin" | "none"));
    origin_ok && fetch_ok
}

/// `POST /oauth/authorize`: the login form, or an authorization request sent as a form.
pub(super) async fn post(app: &App, req: &Request) -> Result<Response, OAuthError> {
    if !has_media_type(req, "application/x-www-form-urlencoded").unwrap_or(false) {
        return Ok(error_page("The form must be sent as application/x-www-form-urlencoded."));
    }
    let body = req.body().as_ref();
    let Ok(form) = Params::parse(body) else {
        return Ok(error_page("The form is malformed."));
    };
    if form.get("request").is_none() {
        // An authorization request by POST (OIDC Core §3.1.2.1): same as the GET.
        let (csrf, new_cookie) = cookie_for_new_form(app, req)?;
        let session = session_cookie(app, req);
        let browser = Browser { csrf_cookie: &csrf, session: session.as_ref() };
        let outcome = authorize::start(app, body, browser, app.clock.now()).await;
        return Ok(render(app, outcome, StatusCode::SEE_OTHER, new_cookie.as_deref()));
    }
    let session = session_cookie(app, req);
    let submission = Submission {
        form: &form,
        csrf_cookie: cookie(app, req),
        session: session.as_ref(),
        same_origin: same_origin(app, req),
        source_ip: super::source_ip(req),
    };
    let outcome = authorize::submit(app, submission, app.clock.now()).await;
    // "303 See Other" after the POST, never 307 (RFC 9700 §4.12).
    Ok(render(app, outcome, StatusCode::SEE_OTHER, None))
}
