//! `GET` and `POST /device`: the device verification page (RFC 8628 §3.3) around
//! `oauth::device::verify`. The login and consent page that follows is the authorization
//! endpoint's, rendered the same way.
use super::browser::{PageCookies, error_page, form_page, same_origin, set_csrf_cookie};
use super::{Request, Response, authorize};
use crate::App;
use crate::html;
use crate::oauth::OAuthError;
use crate::oauth::device::verify::{self, Entry, EntryPage, Submitted};
use crate::oauth::params::Params;
use crate::paths;
use http::StatusCode;

fn form(app: &App, page: &EntryPage, status: u16, new_cookie: Option<&str>) -> Response {
    let rendered = html::device(page, &app.settings.url(paths::DEVICE), &app.settings.url(paths::ACCOUNT));
    let mut resp = form_page(app, status, rendered, Some(&app.settings.issuer_origin()));
    if status == 429 {
        resp.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(app.settings.device.code_ttl));
    }
    if let Some(value) = new_cookie {
        set_csrf_cookie(app, &mut resp, value);
    }
    resp
}

/// `GET /device`.
pub(super) async fn get(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let cookies = PageCookies::read(app, req)?;
    let Ok((query, _)) = Params::parse_lenient(req.uri().query().unwrap_or("").as_bytes()) else {
        return Ok(error_page("The request's parameters are malformed."));
    };
    Ok(form(app, &verify::show(&query), 200, cookies.new_csrf()))
}

/// `POST /device`: a typed code.
pub(super) async fn post(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let params = match super::browser::form(req) {
        Ok(f) => f,
        Err(why) => return Ok(error_page(why)),
    };
    let cookies = PageCookies::read(app, req)?;
    let submitted = Submitted {
        form: &params,
        browser: cookies.browser(),
        same_origin: same_origin(app, req),
        source_ip: super::source_ip(req),
    };
    Ok(match verify::enter(app, submitted, app.clock.now()).await {
        Entry::Form(page, status) => form(app, &page, status, cookies.new_csrf()),
        Entry::Authorize(outcome) => authorize::render(app, outcome, StatusCode::SEE_OTHER, cookies.new_csrf()),
    })
}
