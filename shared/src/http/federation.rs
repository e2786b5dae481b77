//! `GET /federation/<id>/callback`: cookies and HTML around `oauth::federation::callback`.
//! The flow cookie is cleared on every answer (it is single use whatever happened). Never
//! emits CORS headers.
use super::browser::{csrf_cookie, flow_cookie, put_flow_cookie, redirect, session_cookie};
use super::{Request, Response};
use crate::App;
use crate::oauth::OAuthError;
use crate::oauth::federation::{self, Callback, CallbackOutcome};
use http::StatusCode;

/// The provider id of a callback path (`/federation/<id>/callback`).
fn provider_of(path: &str) -> &str {
    path.strip_prefix("/federation/").and_then(|p| p.strip_suffix("/callback")).unwrap_or_default()
}

/// `GET /federation/<id>/callback`.
pub(super) async fn callback(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let session = session_cookie(app, req);
    let cb = Callback {
        provider: provider_of(req.uri().path()),
        query: req.uri().query().unwrap_or("").as_bytes(),
        flow_cookie: flow_cookie(app, req),
        csrf_cookie: csrf_cookie(app, req),
        session: session.as_ref(),
    };
    let mut resp = match federation::callback(app, cb, app.clock.now()).await {
        // 303: the next request is a GET whatever this one was (RFC 9700 §4.12).
        CallbackOutcome::Authorize(outcome) => super::authorize::render(app, outcome, StatusCode::SEE_OTHER, None),
        CallbackOutcome::Account(notice) => redirect(
            &format!("{}?done={}", app.settings.url(crate::paths::ACCOUNT), notice.as_str()),
            StatusCode::SEE_OTHER,
        ),
    };
    put_flow_cookie(app, &mut resp, None);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::provider_of;

    #[test]
    fn the_provider_is_the_path_segment_between_prefix_and_suffix() {
        assert_eq!(provider_of("/federation/google/callback"), "google");
        assert_eq!(provider_of("/federation//callback"), "");
        assert_eq!(provider_of("/other"), "");
    }
}
