//! `OAuthError`: one variant per error code of RFC 6749 §4.1.2.1 / §5.2, RFC 6750 §3.1,
//! RFC 7591 §3.2.2 and the contract's own codes. Descriptions are safe to show a client;
//! internal causes live only in `ServerError`'s source and are logged, never serialized.
use std::borrow::Cow;

/// Client-safe text for `error_description`.
pub type Description = Cow<'static, str>;

/// A protocol error. HTTP mapping lives only in `http::error`.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// RFC 6749 §5.2 `invalid_request`.
    #[error("invalid_request: {0}")]
    InvalidRequest(Description),
    /// A value over its own size limit (the data API's 4 KiB): `invalid_request` with 413.
    #[error("invalid_request: {0}")]
    ValueTooLarge(Description),
    /// RFC 6749 §5.2 `invalid_client`; `basic` says whether HTTP Basic was tried.
    #[error("invalid_client: {description}")]
    InvalidClient {
        /// Client-safe text.
        description: Description,
        /// HTTP Basic was used, so the answer carries `WWW-Authenticate: Basic`.
        basic: bool,
    },
    /// RFC 6749 §5.2 `invalid_grant`.
    #[error("invalid_grant: {0}")]
    InvalidGrant(Description),
    /// RFC 6749 §5.2 `unauthorized_client`.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(Description),
    /// RFC 6749 §5.2 `unsupported_grant_type`.
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(Description),
    /// RFC 6749 §4.1.2.1 `unsupported_response_type`.
    #[error("unsupported_response_type: {0}")]
    UnsupportedResponseType(Description),
    /// RFC 6749 §5.2 `invalid_scope`.
    #[error("invalid_scope: {0}")]
    InvalidScope(Description),
    /// RFC 8707 §2 `invalid_target`: a `resource` that is malformed, unknown, or not one the
    /// grant was authorized for.
    #[error("invalid_target: {0}")]
    InvalidTarget(Description),
    /// RFC 6749 §4.1.2.1 `access_denied`.
    #[error("access_denied: {0}")]
    AccessDenied(Description),
    /// RFC 8628 §3.5 `authorization_pending`: the user has not decided yet.
    #[error("authorization_pending")]
    AuthorizationPending,
    /// RFC 8628 §3.5 `slow_down`: polled too early; the interval grew by 5 seconds.
    #[error("slow_down")]
    SlowDown {
        /// The polling interval from now on, in seconds.
        interval: i64,
    },
    /// RFC 8628 §3.5 `expired_token`: the device code expired.
    #[error("expired_token")]
    ExpiredToken,
    /// `prompt=none` but the user would have to sign in (OIDC Core §3.1.2.6).
    #[error("login_required")]
    LoginRequired,
    /// `prompt=none` but the user would have to allow the request (OIDC Core §3.1.2.6).
    #[error("consent_required")]
    ConsentRequired,
    /// `prompt=none` but the user would have to confirm on a page: the client cannot be
    /// authenticated, so its requests are never answered without the user (OIDC Core §3.1.2.6).
    #[error("interaction_required")]
    InteractionRequired,
    /// No access token at all (RFC 6750 §3.1: no error code in the challenge).
    #[error("missing bearer token")]
    MissingToken,
    /// RFC 6750 §3.1 `invalid_token`.
    #[error("invalid_token: {0}")]
    InvalidToken(Description),
    /// RFC 9449 §5, §7.1 `invalid_dpop_proof`: a DPoP proof is missing where required, or
    /// malformed, replayed, for another request or by another key (400 at the token
    /// endpoint, 401 with a `DPoP` challenge at a resource).
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(Description),
    /// RFC 9449 §8 `use_dpop_nonce`: the proof must carry this server nonce (sent in the
    /// `DPoP-Nonce` header).
    #[error("use_dpop_nonce")]
    UseDpopNonce {
        /// The nonce to use.
        nonce: String,
    },
    /// `invalid_token` for a DPoP-bound token presented without its proof (as Bearer): the
    /// challenge names the `DPoP` scheme (RFC 9449 §7.1).
    #[error("invalid_token (DPoP): {0}")]
    InvalidDpopToken(Description),
    /// RFC 6750 §3.1 `insufficient_scope`, naming the scope needed.
    #[error("insufficient_scope: {scope}")]
    InsufficientScope {
        /// The scope the request needs.
        scope: Description,
    },
    /// `POST /register` while public sign-up is off (`SIGNUP_ENABLED=false`): 403.
    #[error("signup_disabled")]
    SignUpDisabled,
    /// `POST /register`: the username exists.
    #[error("username_taken")]
    UsernameTaken,
    /// RFC 7591 §3.2.2 `invalid_redirect_uri`.
    #[error("invalid_redirect_uri: {0}")]
    InvalidRedirectUri(Description),
    /// RFC 7591 §3.2.2 `invalid_client_metadata`.
    #[error("invalid_client_metadata: {0}")]
    InvalidClientMetadata(Description),
    /// A per-source-address abuse limit was reached: 429 `too_many_requests` with
    /// `Retry-After` (seconds).
    #[error("too_many_requests")]
    TooManyRequests {
        /// Seconds until the window ends if the caller stops now.
        retry_after: i64,
    },
    /// A dependency is failing (after the SDK's retries); retrying later may work:
    /// 503 with `server_error` and `Retry-After`.
    #[error("temporarily unavailable")]
    TemporarilyUnavailable(#[source] anyhow::Error),
    /// A bug or an unexpected failure (500); the source is logged, never sent.
    #[error("server_error")]
    ServerError(#[source] anyhow::Error),
}

impl OAuthError {
    /// The exact wire string of the `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) | Self::ValueTooLarge(_) => "invalid_request",
            Self::InvalidClient { .. } => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::UnsupportedResponseType(_) => "unsupported_response_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidTarget(_) => "invalid_target",
            Self::AccessDenied(_) => "access_denied",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown { .. } => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::MissingToken | Self::InvalidToken(_) | Self::InvalidDpopToken(_) => "invalid_token",
            Self::InvalidDpopProof(_) => "invalid_dpop_proof",
            Self::UseDpopNonce { .. } => "use_dpop_nonce",
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::SignUpDisabled => "signup_disabled",
            Self::UsernameTaken => "username_taken",
            Self::InvalidRedirectUri(_) => "invalid_redirect_uri",
            Self::InvalidClientMetadata(_) => "invalid_client_metadata",
            Self::TooManyRequests { .. } => "too_many_requests",
            // RFC 6749 §5.2 has no "temporarily unavailable" for the token endpoint; the
            // status (503 + Retry-After) carries the retryability.
            Self::TemporarilyUnavailable(_) | Self::ServerError(_) => "server_error",
        }
    }

    /// Client-safe human text for `error_description`.
    pub fn description(&self) -> Cow<'static, str> {
        match self {
            Self::InvalidRequest(d)
            | Self::ValueTooLarge(d)
            | Self::InvalidClient { description: d, .. }
            | Self::InvalidGrant(d)
            | Self::UnauthorizedClient(d)
            | Self::UnsupportedGrantType(d)
            | Self::UnsupportedResponseType(d)
            | Self::InvalidScope(d)
            | Self::InvalidTarget(d)
            | Self::AccessDenied(d)
            | Self::InvalidToken(d)
            | Self::InvalidDpopProof(d)
            | Self::InvalidDpopToken(d)
            | Self::InvalidRedirectUri(d)
            | Self::InvalidClientMetadata(d) => d.clone(),
            Self::MissingToken => "a Bearer access token is required".into(),
            Self::AuthorizationPending => "the user has not yet allowed or denied the request; poll again".into(),
            Self::SlowDown { interval } => format!("polling too fast: wait {interval} seconds between polls").into(),
            Self::ExpiredToken => "the device code has expired; start again".into(),
            Self::UseDpopNonce { .. } => "the DPoP proof must carry the nonce in the DPoP-Nonce header".into(),
            Self::LoginRequired => "the user must sign in, which prompt=none does not allow".into(),
            Self::ConsentRequired => "the user must allow this request, which prompt=none does not allow".into(),
            Self::InteractionRequired => {
                "the user must confirm this request on a page, which prompt=none does not allow".into()
            }
            Self::InsufficientScope { scope } => format!("this request needs the {scope} scope").into(),
            Self::SignUpDisabled => {
                "public sign-up is turned off on this server; ask its administrator for an account".into()
            }
            Self::UsernameTaken => "that username is already registered".into(),
            Self::TooManyRequests { .. } => "too many requests from this address; retry after the time given".into(),
            Self::TemporarilyUnavailable(_) => "the service is temporarily unavailable; retry later".into(),
            Self::ServerError(_) => "the server failed to handle the request".into(),
        }
    }

    /// Shorthand for an `invalid_request` with a static description.
    pub fn invalid_request(d: impl Into<Description>) -> Self {
        Self::InvalidRequest(d.into())
    }
    /// Shorthand for a server error with context.
    pub fn server(e: impl Into<anyhow::Error>) -> Self {
        Self::ServerError(e.into())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The position of `e`'s variant. Exhaustive (no `_` arm), so a new variant does not
    /// compile until it is numbered here, and then [`one_of_each`] misses it until a case
    /// is added there.
    fn variant_index(e: &OAuthError) -> usize {
        match e {
            OAuthError::InvalidRequest(_) => 0,
            OAuthError::ValueTooLarge(_) => 1,
            OAuthError::InvalidClient { .. } => 2,
            OAuthError::InvalidGrant(_) => 3,
            OAuthError::UnauthorizedClient(_) => 4,
            OAuthError::UnsupportedGrantType(_) => 5,
            OAuthError::UnsupportedResponseType(_) => 6,
            OAuthError::InvalidScope(_) => 7,
            OAuthError::AccessDenied(_) => 8,
            OAuthError::LoginRequired => 9,
            OAuthError::MissingToken => 10,
            OAuthError::InvalidToken(_) => 11,
            OAuthError::InsufficientScope { .. } => 12,
            OAuthError::UsernameTaken => 13,
            OAuthError::InvalidRedirectUri(_) => 14,
            OAuthError::InvalidClientMetadata(_) => 15,
            OAuthError::TooManyRequests { .. } => 16,
            OAuthError::TemporarilyUnavailable(_) => 17,
            OAuthError::ServerError(_) => 18,
            OAuthError::ConsentRequired => 19,
            OAuthError::InteractionRequired => 20,
            OAuthError::InvalidTarget(_) => 21,
            OAuthError::InvalidDpopProof(_) => 22,
            OAuthError::UseDpopNonce { .. } => 23,
            OAuthError::InvalidDpopToken(_) => 24,
            OAuthError::AuthorizationPending => 25,
            OAuthError::SlowDown { .. } => 26,
            OAuthError::ExpiredToken => 27,
            OAuthError::SignUpDisabled => 28,
        }
    }
    const VARIANTS: usize = 29;

    /// One error of every variant with the wire code docs/API.md gives it (the HTTP layer's
    /// status test uses it too).
    pub(crate) fn one_of_each() -> Vec<(OAuthError, &'static str)> {
        vec![
            (OAuthError::InvalidRequest("x".into()), "invalid_request"),
            (OAuthError::ValueTooLarge("x".into()), "invalid_request"),
            (OAuthError::InvalidClient { description: "x".into(), basic: true }, "invalid_client"),
            (OAuthError::InvalidGrant("x".into()), "invalid_grant"),
            (OAuthError::UnauthorizedClient("x".into()), "unauthorized_client"),
            (OAuthError::UnsupportedGrantType("x".into()), "unsupported_grant_type"),
            (OAuthError::UnsupportedResponseType("x".into()), "unsupported_response_type"),
            (OAuthError::InvalidScope("x".into()), "invalid_scope"),
            (OAuthError::InvalidTarget("x".into()), "invalid_target"),
            (OAuthError::AccessDenied("x".into()), "access_denied"),
            (OAuthError::AuthorizationPending, "authorization_pending"),
            (OAuthError::SlowDown { interval: 10 }, "slow_down"),
            (OAuthError::ExpiredToken, "expired_token"),
            (OAuthError::LoginRequired, "login_required"),
            (OAuthError::ConsentRequired, "consent_required"),
            (OAuthError::InteractionRequired, "interaction_required"),
            (OAuthError::MissingToken, "invalid_token"),
            (OAuthError::InvalidToken("x".into()), "invalid_token"),
            (OAuthError::InvalidDpopProof("x".into()), "invalid_dpop_proof"),
            (OAuthError::UseDpopNonce { nonce: "n".into() }, "use_dpop_nonce"),
            (OAuthError::InvalidDpopToken("x".into()), "invalid_token"),
            (OAuthError::InsufficientScope { scope: "data:read".into() }, "insufficient_scope"),
            (OAuthError::SignUpDisabled, "signup_disabled"),
            (OAuthError::UsernameTaken, "username_taken"),
            (OAuthError::InvalidRedirectUri("x".into()), "invalid_redirect_uri"),
            (OAuthError::InvalidClientMetadata("x".into()), "invalid_client_metadata"),
            (OAuthError::TooManyRequests { retry_after: 60 }, "too_many_requests"),
            (OAuthError::TemporarilyUnavailable(anyhow::anyhow!("db down internals")), "server_error"),
            (OAuthError::ServerError(anyhow::anyhow!("secret internals")), "server_error"),
        ]
    }

    #[test]
    fn every_variant_has_its_wire_code() {
        let cases = one_of_each();
        let mut seen = [false; VARIANTS];
        for (err, code) in &cases {
            seen[variant_index(err)] = true;
            assert_eq!(err.code(), *code, "{err:?}");
            assert!(!err.description().contains("internals"), "{err:?} leaks its source");
        }
        let missing: Vec<usize> = (0..VARIANTS).filter(|&i| !seen[i]).collect();
        assert!(missing.is_empty(), "variants without a case: {missing:?}");
    }
}
