//! What every browser-facing page shares (the authorization endpoint, logout, the account
//! page): the CSRF and session cookies, the same-origin check of a form post, and HTML
//! responses with the pages' security headers (docs/SECURITY.md A10-A12, G6).
use super::Request;
use super::Response;
use super::request::{has_media_type, header_values};
use crate::App;
use crate::html;
use crate::oauth::OAuthError;
use crate::oauth::params::Params;
use crate::oauth::session::{Browser, SessionCookie};
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
pub(super) fn csrf_cookie<'r>(app: &App, req: &'r Request) -> Option<&'r str> {
    let keys = app.form_keys();
    cookies(req, csrf_cookie_name(app)).find(|v| {
        v.split_once('.').is_some_and(|(nonce, mac)| {
            nonce.len() == 22
                && keys.iter().any(|k| crate::crypto::ct_eq(mac.as_bytes(), csrf_mac(k, nonce).as_bytes()))
        })
    })
}

pub(super) fn html_response(status: StatusCode, body: String, form_target: Option<&str>) -> Response {
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

pub(super) fn error_page(message: &str) -> Response {
    let body = html::error(message).unwrap_or_else(|_| "Sign-in problem.".to_owned());
    html_response(StatusCode::BAD_REQUEST, body, None)
}

pub(super) fn redirect(location: &str, status: StatusCode) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut r = html_response(status, String::new(), None);
            r.headers_mut().insert(header::LOCATION, v);
            r
        }
        Err(_) => error_page("The redirect URI cannot be used."),
    }
}

/// The cookies a page's request brings: the CSRF cookie a new form binds to (the
/// browser's if this server minted it, or a fresh one to set) and the session cookie.
pub(super) struct PageCookies {
    csrf: String,
    new_csrf: Option<String>,
    session: Option<SessionCookie>,
}

impl PageCookies {
    /// Read them from `req`, minting a CSRF cookie when the browser has none of ours.
    pub(super) fn read(app: &App, req: &Request) -> Result<Self, OAuthError> {
        let (csrf, new_csrf) = match csrf_cookie(app, req) {
            Some(c) => (c.to_owned(), None),
            None => {
                let fresh = mint_csrf(app)?;
                (fresh.clone(), Some(fresh))
            }
        };
        Ok(Self { csrf, new_csrf, session: session_cookie(app, req) })
    }

    /// What the protocol side sees of them.
    pub(super) fn browser(&self) -> Browser<'_> {
        Browser { csrf_cookie: &self.csrf, session: self.session.as_ref() }
    }

    /// The CSRF cookie to set on the response, when it was minted for it.
    pub(super) fn new_csrf(&self) -> Option<&str> {
        self.new_csrf.as_deref()
    }
}

/// Whether `Origin` and `Sec-Fetch-Site` allow this form post (docs/SECURITY.md A10). Under
/// `Referrer-Policy: no-referrer` browsers send `Origin: null` even for same-origin form
/// posts (Fetch, "serializing a request origin"), so `null` proves nothing either way:
/// `Sec-Fetch-Site` and the SameSite CSRF cookie decide then.
pub(super) fn same_origin(app: &App, req: &Request) -> bool {
    let origin_ok =
        header_values(req, header::ORIGIN).iter().all(|o| *o == app.settings.issuer_origin() || *o == "null");
    let fetch_ok = header_values(req, header::HeaderName::from_static("sec-fetch-site"))
        .iter()
        .all(|s| matches!(*s, "same-origin" | "none"));
    origin_ok && fetch_ok
}

/// A rendered form page with its status (200, or 400/401/429 when a form was refused:
/// a 429 carries `Retry-After` of the login window); the 400 page when rendering failed.
pub(super) fn form_page(
    app: &App,
    status: u16,
    rendered: Result<String, askama::Error>,
    form_target: Option<&str>,
) -> Response {
    let Ok(body) = rendered else { return error_page("The page could not be shown.") };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut r = html_response(status, body, form_target);
    if status == StatusCode::TOO_MANY_REQUESTS {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(app.settings.login_window));
    }
    r
}

/// The 503 page (a dependency failed after retries), with `Retry-After: 1`.
pub(super) fn unavailable_page() -> Response {
    let body = html::error("The service is temporarily unavailable. Try again in a moment.")
        .unwrap_or_else(|_| "Temporarily unavailable.".to_owned());
    let mut r = html_response(StatusCode::SERVICE_UNAVAILABLE, body, None);
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Add the `Set-Cookie` of a new CSRF cookie holding `value`.
pub(super) fn set_csrf_cookie(app: &App, resp: &mut Response, value: &str) {
    let secure = if app.settings.is_https() { "; Secure" } else { "" };
    let name = csrf_cookie_name(app);
    let c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600{secure}");
    if let Ok(v) = HeaderValue::from_str(&c) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Add the `Set-Cookie` of the session cookie: a new session's `value`, or `None` to clear it.
pub(super) fn put_session_cookie(app: &App, resp: &mut Response, value: Option<&str>) {
    if let Some(v) = set_session_cookie(app, value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The form of a browser's POST: `application/x-www-form-urlencoded` and well formed, or
/// what the 400 page says.
pub(super) fn form(req: &Request) -> Result<Params, &'static str> {
    if !has_media_type(req, "application/x-www-form-urlencoded").unwrap_or(false) {
        return Err("The form must be sent as application/x-www-form-urlencoded.");
    }
    Params::parse(req.body().as_ref()).map_err(|_| "The form is malformed.")
}

/// The flow cookie of an upstream sign-in, if the browser sent one.
pub(super) fn flow_cookie<'r>(app: &App, req: &'r Request) -> Option<&'r str> {
    cookies(req, crate::oauth::federation::flow_cookie_name(app)).find(|v| !v.is_empty())
}

/// A page's CSP `form-action` sources: where its own forms lead (`first`), and the origins
/// of the upstream providers its buttons are redirected to.
pub(super) fn form_targets(first: &str, upstream: &[String]) -> String {
    std::iter::once(first)
        .chain(upstream.iter().map(String::as_str).filter(|o| !o.is_empty()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The 303 to an upstream provider's authorization endpoint, setting the flow cookie.
pub(super) fn to_upstream(app: &App, location: &str, flow_cookie: &str) -> Response {
    let mut r = redirect(location, StatusCode::SEE_OTHER);
    put_flow_cookie(app, &mut r, Some(flow_cookie));
    r
}

/// Add the `Set-Cookie` of the flow cookie: `value` for its lifetime, or `None` to clear it.
pub(super) fn put_flow_cookie(app: &App, resp: &mut Response, value: Option<&str>) {
    let secure = if app.settings.is_https() { "; Secure" } else { "" };
    let name = crate::oauth::federation::flow_cookie_name(app);
    let (value, max_age) = match value {
        Some(v) => (v, crate::oauth::federation::FLOW_TTL_SECONDS),
        None => ("", 0),
    };
    // SameSite=Lax: the provider's redirect back is a top-level GET, which carries it.
    let c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    if let Ok(v) = HeaderValue::from_str(&c) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}
