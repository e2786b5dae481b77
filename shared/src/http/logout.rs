//! `GET` and `POST /oauth/logout`: cookies, security headers and HTML around
//! `oauth::logout`. Never emits CORS headers.
use super::browser::{
    self, PageCookies, csrf_cookie, error_page, html_response, put_session_cookie, redirect, same_origin,
    session_cookie, set_csrf_cookie, unavailable_page,
};
use super::{Request, Response};
use crate::oauth::OAuthError;
use crate::oauth::logout::{self, Confirmation, Outcome};
use crate::{App, html, paths};
use http::StatusCode;

fn render(app: &App, outcome: Outcome, redirect_status: StatusCode, new_cookie: Option<&str>) -> Response {
    let account = app.settings.url(paths::ACCOUNT);
    let notice =
        |title: &str, message: &str, link: Option<(&str, &str)>| match html::notice(title, message, link, &account) {
            Ok(body) => html_response(StatusCode::OK, body, None),
            Err(_) => error_page(message),
        };
    let mut resp = match outcome {
        Outcome::ErrorPage(message) => error_page(&message),
        Outcome::Unavailable => unavailable_page(),
        Outcome::Confirm(page) => {
            let target = page.redirect_origin.clone().unwrap_or_else(|| app.settings.issuer_origin());
            match html::logout(&page, &app.settings.url(paths::LOGOUT)) {
                Ok(body) => html_response(StatusCode::OK, body, Some(&target)),
                Err(_) => error_page("The page could not be shown."),
            }
        }
        Outcome::SignedOut { link } => {
            let mut r = notice(
                "Signed out",
                "You are signed out of this server.",
                link.as_ref().map(|(h, l)| (h.as_str(), l.as_str())),
            );
            put_session_cookie(app, &mut r, None);
            r
        }
        Outcome::Redirect(location) => {
            let mut r = redirect(&location, redirect_status);
            put_session_cookie(app, &mut r, None);
            r
        }
        Outcome::StillSignedIn => notice("Still signed in", "You are still signed in.", None),
    };
    if let Some(value) = new_cookie {
        set_csrf_cookie(app, &mut resp, value);
    }
    resp
}

/// `GET /oauth/logout`.
pub(super) async fn get(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let cookies = PageCookies::read(app, req)?;
    let query = req.uri().query().unwrap_or("").as_bytes();
    let outcome = logout::start(app, query, cookies.browser(), app.clock.now()).await;
    Ok(render(app, outcome, StatusCode::FOUND, cookies.new_csrf()))
}

/// `POST /oauth/logout`: the confirmation form (with a sealed `request`), or a logout
/// request sent as a form.
pub(super) async fn post(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let form = match browser::form(req) {
        Ok(f) => f,
        Err(why) => return Ok(error_page(why)),
    };
    if form.get("request").is_none() {
        let cookies = PageCookies::read(app, req)?;
        let outcome = logout::start(app, req.body().as_ref(), cookies.browser(), app.clock.now()).await;
        return Ok(render(app, outcome, StatusCode::SEE_OTHER, cookies.new_csrf()));
    }
    let session = session_cookie(app, req);
    let confirmation = Confirmation {
        form: &form,
        csrf_cookie: csrf_cookie(app, req),
        session: session.as_ref(),
        same_origin: same_origin(app, req),
    };
    let outcome = logout::confirm(app, confirmation, app.clock.now()).await;
    Ok(render(app, outcome, StatusCode::SEE_OTHER, None))
}
