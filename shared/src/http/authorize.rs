//! `GET` and `POST /oauth/authorize`: cookies, security headers and HTML around
//! `oauth::authorize`. Never emits CORS headers (docs/SECURITY.md A13).
use super::browser::{
    self, PageCookies, csrf_cookie, error_page, form_page, html_response, put_session_cookie, redirect, same_origin,
    session_cookie, set_csrf_cookie, unavailable_page,
};
use super::{Request, Response};
use crate::App;
use crate::html;
use crate::oauth::OAuthError;
use crate::oauth::authorize::{self, Outcome, Submission};
use http::StatusCode;

pub(super) fn render(app: &App, outcome: Outcome, redirect_status: StatusCode, new_cookie: Option<&str>) -> Response {
    let mut resp = match outcome {
        Outcome::ErrorPage(message) => error_page(&message),
        Outcome::ErrorLink { message, host, link } => match html::error_link(&message, &host, &link) {
            Ok(body) => html_response(StatusCode::BAD_REQUEST, body, None),
            Err(_) => error_page(&message),
        },
        Outcome::Unavailable => unavailable_page(),
        Outcome::Redirect(location) => redirect(&location, redirect_status),
        Outcome::SignedIn { location, session_cookie } => {
            let mut r = redirect(&location, redirect_status);
            put_session_cookie(app, &mut r, Some(&session_cookie));
            r
        }
        Outcome::Upstream { location, flow_cookie } => browser::to_upstream(app, &location, &flow_cookie),
        Outcome::Login(page, status) => {
            // The "Continue with" buttons post here and are redirected to the providers.
            let targets = browser::form_targets(&page.redirect_origin, &page.upstream_origins);
            form_page(app, status, html::login(&page, &app.settings.url(crate::paths::AUTHORIZE)), Some(&targets))
        }
    };
    if let Some(value) = new_cookie {
        set_csrf_cookie(app, &mut resp, value);
    }
    resp
}

/// `GET /oauth/authorize`.
pub(super) async fn get(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let cookies = PageCookies::read(app, req)?;
    let query = req.uri().query().unwrap_or("").as_bytes();
    let outcome = authorize::start(app, query, cookies.browser(), app.clock.now()).await;
    Ok(render(app, outcome, StatusCode::FOUND, cookies.new_csrf()))
}

/// `POST /oauth/authorize`: the login form, or an authorization request sent as a form.
pub(super) async fn post(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let form = match browser::form(req) {
        Ok(f) => f,
        Err(why) => return Ok(error_page(why)),
    };
    let body = req.body().as_ref();
    if form.get("request").is_none() {
        // An authorization request by POST (OIDC Core §3.1.2.1): same as the GET.
        let cookies = PageCookies::read(app, req)?;
        let outcome = authorize::start(app, body, cookies.browser(), app.clock.now()).await;
        return Ok(render(app, outcome, StatusCode::SEE_OTHER, cookies.new_csrf()));
    }
    let session = session_cookie(app, req);
    let submission = Submission {
        form: &form,
        csrf_cookie: csrf_cookie(app, req),
        session: session.as_ref(),
        same_origin: same_origin(app, req),
        source_ip: super::source_ip(req),
    };
    let outcome = authorize::submit(app, submission, app.clock.now()).await;
    // "303 See Other" after the POST, never 307 (RFC 9700 §4.12).
    Ok(render(app, outcome, StatusCode::SEE_OTHER, None))
}
