//! `GET` and `POST /account`: cookies, security headers and HTML around `oauth::account`.
//! Never emits CORS headers.
use super::browser::{
    self, PageCookies, csrf_cookie, error_page, form_page, put_session_cookie, redirect, same_origin, set_csrf_cookie,
    unavailable_page,
};
use super::{Request, Response};
use crate::oauth::OAuthError;
use crate::oauth::account::{self, Outcome, SessionCookieChange, Submission};
use crate::{App, html, paths};
use http::StatusCode;

pub(super) fn render(app: &App, outcome: Outcome, new_cookie: Option<&str>) -> Response {
    let action = app.settings.url(paths::ACCOUNT);
    let origin = app.settings.issuer_origin();
    let mut resp = match outcome {
        Outcome::ErrorPage(message) => error_page(&message),
        Outcome::Unavailable => unavailable_page(),
        Outcome::SignIn(page, status) => form_page(app, status, html::account_sign_in(&page, &action), Some(&origin)),
        Outcome::Account(page, status) => {
            let targets = browser::form_targets(&origin, &page.upstream_origins);
            form_page(app, status, html::account(&page, &action), Some(&targets))
        }
        Outcome::Upstream { location, flow_cookie } => browser::to_upstream(app, &location, &flow_cookie),
        Outcome::Done { notice, cookie } => {
            let location = match notice {
                Some(n) => format!("{action}?done={}", n.as_str()),
                None => action.clone(),
            };
            // "303 See Other" after every form (RFC 9700 §4.12): a reload does not post again.
            let mut r = redirect(&location, StatusCode::SEE_OTHER);
            match cookie {
                SessionCookieChange::Keep => {}
                SessionCookieChange::Set(v) => put_session_cookie(app, &mut r, Some(&v)),
                SessionCookieChange::Clear => put_session_cookie(app, &mut r, None),
            }
            r
        }
    };
    if let Some(value) = new_cookie {
        set_csrf_cookie(app, &mut resp, value);
    }
    resp
}

/// `GET /account`.
pub(super) async fn get(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let cookies = PageCookies::read(app, req)?;
    let query = crate::oauth::params::Params::parse_lenient(req.uri().query().unwrap_or("").as_bytes()).ok();
    let done = query.as_ref().and_then(|(q, _)| q.get("done"));
    let outcome = account::show(app, cookies.browser(), done, app.clock.now()).await;
    Ok(render(app, outcome, cookies.new_csrf()))
}

/// `POST /account`: the sign-in form, or one of the signed-in page's forms.
pub(super) async fn post(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let form = match browser::form(req) {
        Ok(f) => f,
        Err(why) => return Ok(error_page(why)),
    };
    let cookies = PageCookies::read(app, req)?;
    let submission = Submission {
        form: &form,
        browser: cookies.browser(),
        csrf_cookie: csrf_cookie(app, req),
        same_origin: same_origin(app, req),
        source_ip: super::source_ip(req),
    };
    let outcome = account::submit(app, submission, app.clock.now()).await;
    Ok(render(app, outcome, cookies.new_csrf()))
}
