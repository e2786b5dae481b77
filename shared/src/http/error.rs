//! The only place an error becomes an HTTP response. Bodies are
//! `{"error", "error_description"}`; internals are logged, never sent.
use super::Response;
use super::request::json_response;
use crate::oauth::OAuthError;
use http::{HeaderValue, StatusCode, header};

/// Map an error to its response (status, challenge headers, JSON body).
pub fn into_response(err: &OAuthError) -> Response {
    let status = match err {
        OAuthError::InvalidClient { .. } | OAuthError::MissingToken | OAuthError::InvalidToken(_) => {
            StatusCode::UNAUTHORIZED
        }
        OAuthError::InsufficientScope { .. } | OAuthError::Forbidden(_) => StatusCode::FORBIDDEN,
        OAuthError::UsernameTaken => StatusCode::CONFLICT,
        OAuthError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        OAuthError::NotFound => StatusCode::NOT_FOUND,
        OAuthError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        OAuthError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        OAuthError::TemporarilyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        OAuthError::ServerError(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    match err {
        OAuthError::ServerError(src) | OAuthError::TemporarilyUnavailable(src) => {
            tracing::error!(error = %err.code(), cause = format!("{src:#}"), "request failed");
        }
        _ => tracing::debug!(error = %err.code(), "request refused"),
    }
    let body = serde_json::json!({"error": err.code(), "error_description": err.description()});
    let mut resp = json_response(status, &body);
    let challenge = match err {
        // RFC 9110 §15.5.2: a 401 carries a challenge; Basic is the scheme we accept.
        OAuthError::InvalidClient { .. } => Some("Basic realm=\"oauth\"".to_owned()),
        OAuthError::MissingToken => Some("Bearer realm=\"api\"".to_owned()),
        OAuthError::InvalidToken(_) => Some("Bearer error=\"invalid_token\"".to_owned()),
        OAuthError::InsufficientScope { scope } => {
            Some(format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\""))
        }
        _ => None,
    };
    let headers = resp.headers_mut();
    if let Some(v) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::WWW_AUTHENTICATE, v);
    }
    if let OAuthError::MethodNotAllowed { allow } = err {
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    match err {
        OAuthError::TemporarilyUnavailable(_) => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        OAuthError::TooManyRequests { retry_after } => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from((*retry_after).max(1)));
        }
        _ => {}
    }
    resp
}
