//! The only place an error becomes an HTTP response. Bodies are
//! `{"error", "error_description"}`; internals are logged, never sent.
//!
//! [`HttpError`] is what the HTTP layer can fail with: a protocol error from an endpoint
//! ([`OAuthError`], unchanged), or one of the cases only HTTP knows (no route, a method the
//! path does not serve, a body over the 64 KiB limit, a CORS preflight from an origin that
//! is not allowed). docs/API.md's error table gives those four the code `invalid_request`;
//! that choice is made here, not in the protocol error.
use super::Response;
use super::request::json_response;
use crate::oauth::OAuthError;
use http::{HeaderValue, StatusCode, header};
use std::borrow::Cow;

/// A failure of one HTTP request.
#[derive(Debug)]
pub enum HttpError {
    /// The endpoint refused the request (or failed) with a protocol error.
    OAuth(OAuthError),
    /// No route for this path: 404.
    NotFound,
    /// The path exists but not for this method: 405 with `Allow`.
    MethodNotAllowed {
        /// Value of the `Allow` header.
        allow: &'static str,
    },
    /// The body is larger than `MAX_BODY_BYTES`: 413, whatever the route.
    BodyTooLarge,
    /// A CORS preflight from an origin this route does not allow: 403.
    CorsRefused,
}

impl From<OAuthError> for HttpError {
    fn from(e: OAuthError) -> Self {
        Self::OAuth(e)
    }
}

impl HttpError {
    /// The exact wire string of the `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            Self::OAuth(e) => e.code(),
            Self::NotFound | Self::MethodNotAllowed { .. } | Self::BodyTooLarge | Self::CorsRefused => {
                "invalid_request"
            }
        }
    }

    /// Client-safe human text for `error_description`.
    pub fn description(&self) -> Cow<'static, str> {
        match self {
            Self::OAuth(e) => e.description(),
            Self::NotFound => "no such endpoint".into(),
            Self::MethodNotAllowed { allow } => format!("method not allowed; use {allow}").into(),
            Self::BodyTooLarge => "the request body is larger than 64 KiB".into(),
            Self::CorsRefused => "this origin may not call this endpoint from a browser".into(),
        }
    }

    /// The response status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::OAuth(e) => oauth_status(e),
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::CorsRefused => StatusCode::FORBIDDEN,
        }
    }
}

/// The status of a protocol error: docs/API.md's error table. Exhaustive on purpose: a new
/// protocol error has to be given its status here.
fn oauth_status(e: &OAuthError) -> StatusCode {
    match e {
        OAuthError::InvalidClient { .. }
        | OAuthError::MissingToken
        | OAuthError::InvalidToken(_)
        | OAuthError::InvalidDpopToken(_) => StatusCode::UNAUTHORIZED,
        OAuthError::InsufficientScope { .. } | OAuthError::SignUpDisabled => StatusCode::FORBIDDEN,
        OAuthError::UsernameTaken => StatusCode::CONFLICT,
        OAuthError::ValueTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        OAuthError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        OAuthError::TemporarilyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        OAuthError::ServerError(_) => StatusCode::INTERNAL_SERVER_ERROR,
        OAuthError::InvalidRequest(_)
        | OAuthError::InvalidGrant(_)
        | OAuthError::UnauthorizedClient(_)
        | OAuthError::UnsupportedGrantType(_)
        | OAuthError::UnsupportedResponseType(_)
        | OAuthError::InvalidScope(_)
        | OAuthError::InvalidTarget(_)
        | OAuthError::AccessDenied(_)
        | OAuthError::AuthorizationPending
        | OAuthError::SlowDown { .. }
        | OAuthError::ExpiredToken
        | OAuthError::LoginRequired
        | OAuthError::ConsentRequired
        | OAuthError::InteractionRequired
        | OAuthError::InvalidRedirectUri(_)
        | OAuthError::InvalidClientMetadata(_)
        // At the token endpoint; a resource answers these 401 (`respond`).
        | OAuthError::InvalidDpopProof(_)
        | OAuthError::UseDpopNonce { .. } => StatusCode::BAD_REQUEST,
    }
}

/// Map an error to its response (status, challenge headers, JSON body).
pub fn into_response(err: &HttpError) -> Response {
    respond(err, None)
}

/// A protected resource's refusal (RFC 9728 §5.1, RFC 6750 §3): as [`into_response`], and
/// the Bearer challenge also names the resource's metadata (`resource_metadata`) and, when
/// the token is missing, the `scope` the route needs.
pub fn protected_resource_response(err: OAuthError, metadata: &str, scope: &str) -> Response {
    respond(&HttpError::OAuth(err), Some((metadata, scope)))
}

/// The `WWW-Authenticate` challenge of a protocol error, if it has one; `resource` is the
/// protected resource's metadata URL and the scope its route needs.
fn challenge(oauth: &OAuthError, resource: Option<(&str, &str)>) -> Option<String> {
    let (mut c, scope) = match oauth {
        // RFC 9110 §15.5.2: a 401 carries a challenge; Basic is the scheme we accept.
        OAuthError::InvalidClient { .. } => return Some("Basic realm=\"oauth\"".to_owned()),
        OAuthError::MissingToken => ("Bearer realm=\"api\"".to_owned(), resource.map(|(_, s)| s)),
        OAuthError::InvalidToken(_) => ("Bearer error=\"invalid_token\"".to_owned(), None),
        OAuthError::InsufficientScope { scope } => ("Bearer error=\"insufficient_scope\"".to_owned(), Some(&**scope)),
        // RFC 9449 §7.1: a resource's DPoP errors are challenges of the DPoP scheme, naming
        // the algorithms it takes (the token endpoint's are plain 400s).
        OAuthError::InvalidDpopToken(_) => (dpop_challenge("invalid_token"), None),
        OAuthError::InvalidDpopProof(_) if resource.is_some() => (dpop_challenge("invalid_dpop_proof"), None),
        OAuthError::UseDpopNonce { .. } if resource.is_some() => (dpop_challenge("use_dpop_nonce"), None),
        _ => return None,
    };
    if let Some((metadata, _)) = resource {
        c.push_str(&format!(", resource_metadata=\"{metadata}\""));
    }
    if let Some(scope) = scope {
        c.push_str(&format!(", scope=\"{scope}\""));
    }
    Some(c)
}

fn dpop_challenge(error: &str) -> String {
    format!("DPoP error=\"{error}\", algs=\"{}\"", crate::dpop::ALGS.join(" "))
}

fn respond(err: &HttpError, resource: Option<(&str, &str)>) -> Response {
    match err {
        HttpError::OAuth(e @ (OAuthError::ServerError(src) | OAuthError::TemporarilyUnavailable(src))) => {
            tracing::error!(error = %e.code(), cause = format!("{src:#}"), "request failed");
        }
        _ => tracing::debug!(error = %err.code(), "request refused"),
    }
    let body = serde_json::json!({"error": err.code(), "error_description": err.description()});
    let status = match err {
        HttpError::OAuth(OAuthError::InvalidDpopProof(_) | OAuthError::UseDpopNonce { .. }) if resource.is_some() => {
            StatusCode::UNAUTHORIZED
        }
        _ => err.status(),
    };
    let mut resp = json_response(status, &body);
    let headers = resp.headers_mut();
    let oauth = match err {
        HttpError::OAuth(e) => e,
        HttpError::MethodNotAllowed { allow } => {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            return resp;
        }
        HttpError::NotFound | HttpError::BodyTooLarge | HttpError::CorsRefused => return resp,
    };
    if let Some(v) = challenge(oauth, resource).and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::WWW_AUTHENTICATE, v);
    }
    match oauth {
        OAuthError::TemporarilyUnavailable(_) => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        OAuthError::TooManyRequests { retry_after } => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from((*retry_after).max(1)));
        }
        OAuthError::UseDpopNonce { nonce } => {
            if let Ok(v) = HeaderValue::from_str(nonce) {
                headers.insert(header::HeaderName::from_static("dpop-nonce"), v);
            }
        }
        _ => {}
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::one_of_each;

    /// docs/API.md's table: status and code of every error, protocol or HTTP-only. The
    /// protocol errors come from `one_of_each`, which an exhaustive match keeps complete.
    #[test]
    fn every_error_has_its_status_and_code() {
        for (e, code) in one_of_each() {
            let want = match &e {
                OAuthError::InvalidClient { .. }
                | OAuthError::MissingToken
                | OAuthError::InvalidToken(_)
                | OAuthError::InvalidDpopToken(_) => 401,
                OAuthError::InsufficientScope { .. } | OAuthError::SignUpDisabled => 403,
                OAuthError::UsernameTaken => 409,
                OAuthError::ValueTooLarge(_) => 413,
                OAuthError::TooManyRequests { .. } => 429,
                OAuthError::TemporarilyUnavailable(_) => 503,
                OAuthError::ServerError(_) => 500,
                _ => 400,
            };
            let err = HttpError::from(e);
            assert_eq!((err.status().as_u16(), err.code()), (want, code), "{err:?}");
        }
        let http_only = [
            (HttpError::NotFound, 404),
            (HttpError::MethodNotAllowed { allow: "GET" }, 405),
            (HttpError::BodyTooLarge, 413),
            (HttpError::CorsRefused, 403),
        ];
        for (err, status) in http_only {
            assert_eq!((err.status().as_u16(), err.code()), (status, "invalid_request"), "{err:?}");
        }
    }

    #[tokio::test]
    async fn headers_follow_the_error() {
        let allow = into_response(&HttpError::MethodNotAllowed { allow: "GET, POST" });
        assert_eq!(allow.headers()[header::ALLOW], "GET, POST");
        let basic = into_response(&OAuthError::InvalidClient { description: "x".into(), basic: true }.into());
        assert_eq!(basic.headers()[header::WWW_AUTHENTICATE], "Basic realm=\"oauth\"");
        let busy = into_response(&OAuthError::TooManyRequests { retry_after: 0 }.into());
        assert_eq!(busy.headers()[header::RETRY_AFTER], "1", "never Retry-After: 0");
        let missing = into_response(&HttpError::NotFound);
        assert!(missing.headers().get(header::WWW_AUTHENTICATE).is_none());
    }
}
