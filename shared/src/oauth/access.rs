//! Bearer access checks for protected resources (RFC 6750): extract the token from the
//! `Authorization` header only, verify it (through a cache of verified tokens), check
//! revocation on every request, then the scope.
use super::{OAuthError, store_failure};
use crate::App;
use crate::crypto::sha256;
use crate::domain::Scope;
use crate::jwt::{AccessClaims, MAX_TOKEN_LEN, TokenRejected, verify_access_token};

/// How a request presented its access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented<'a> {
    /// The token.
    pub token: &'a str,
    /// With the `DPoP` scheme (RFC 9449 §7.1), else `Bearer`.
    pub dpop: bool,
}

/// Extract the bearer token from the `Authorization` header values of a request.
/// The scheme is case-insensitive; exactly one header and one token are accepted.
///
/// # Errors
/// `MissingToken` when there is no header; `invalid_token` when it is malformed or not Bearer.
pub fn bearer_token<'a>(headers: &[&'a str]) -> Result<&'a str, OAuthError> {
    match presented(headers)? {
        Presented { token, dpop: false } => Ok(token),
        Presented { dpop: true, .. } => Err(OAuthError::InvalidToken("the Authorization scheme must be Bearer".into())),
    }
}

/// The access token of the `Authorization` header values: `Bearer <token>` or
/// `DPoP <token>` (schemes case-insensitive; the same token syntax), exactly one header and
/// one token.
///
/// # Errors
/// `MissingToken` when there is no header; `invalid_token` when it is malformed.
pub fn presented<'a>(headers: &[&'a str]) -> Result<Presented<'a>, OAuthError> {
    let value = match headers {
        [] => return Err(OAuthError::MissingToken),
        [one] => *one,
        _ => return Err(OAuthError::InvalidToken("send exactly one Authorization header".into())),
    };
    let (scheme, token) =
        value.split_once(' ').ok_or_else(|| OAuthError::InvalidToken("malformed Authorization header".into()))?;
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    if !dpop && !scheme.eq_ignore_ascii_case("bearer") {
        return Err(OAuthError::InvalidToken("the Authorization scheme must be Bearer or DPoP".into()));
    }
    let token = token.trim_start_matches(' ');
    // RFC 6750 §2.1 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = token.trim_end_matches('=');
    let valid = !body.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if !valid {
        return Err(OAuthError::InvalidToken("malformed access token".into()));
    }
    Ok(Presented { token, dpop })
}

/// Which audience a resource accepts.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    /// Only tokens for this resource (RFC 8707: a token for another API is refused).
    Of(&'a str),
    /// Any token this issuer signed: the UserInfo endpoint, which belongs to the
    /// authorization server itself and answers by the `openid` scope, not by audience.
    AnyOfThisIssuer,
}

/// Verify an access token, its audience, and check it is not revoked.
///
/// # Errors
/// `invalid_token` for a bad, expired, revoked or other resource's token; a store failure as 503.
pub async fn authenticate(
    app: &App,
    token: &str,
    audience: Audience<'_>,
    now: time::OffsetDateTime,
) -> Result<AccessClaims, OAuthError> {
    let claims = verify_cached(app, token, audience, now).await?;
    if app.tokens.is_revoked(&claims.jti, claims.fam.as_deref(), now).await.map_err(store_failure)? {
        return Err(OAuthError::InvalidToken("the access token has been revoked".into()));
    }
    Ok(claims)
}

/// Verify an access token (signature, claims), through the verified-token cache, without
/// the revocation check: only for a verifier explicitly configured not to check it.
///
/// # Errors
/// `invalid_token` for a bad or expired token.
pub async fn verify_cached(
    app: &App,
    token: &str,
    audience: Audience<'_>,
    now: time::OffsetDateTime,
) -> Result<AccessClaims, OAuthError> {
    let now = now.unix_timestamp();
    let key = sha256(token.as_bytes());
    let generation = app.key_ring.generation();
    let claims = match app.token_cache.get(&key, now, generation) {
        Some(c) => c,
        None => {
            let c = verify(app, token, now).await.map_err(|why| {
                tracing::debug!(reason = %why, "access token refused");
                OAuthError::InvalidToken("the access token is invalid or expired".into())
            })?;
            app.token_cache.insert(key, c.clone(), now, generation);
            c
        }
    };
    if let Audience::Of(aud) = audience
        && !claims.is_for(aud)
    {
        tracing::debug!("access token refused: it is for another resource");
        return Err(OAuthError::InvalidToken("the access token is not for this resource".into()));
    }
    Ok(claims)
}

/// Verify (all but the audience) with the current keys; a token naming an unknown `kid` may mean the keys were
/// rotated since this process loaded them, so refresh (rate-limited) and try once more.
pub async fn verify(app: &App, token: &str, now: i64) -> Result<AccessClaims, TokenRejected> {
    match verify_access_token(&app.keys(), &app.settings, token, now) {
        Err(TokenRejected::UnknownKey) if app.key_ring.refresh_for_unknown_kid(now).await => {
            verify_access_token(&app.keys(), &app.settings, token, now)
        }
        other => other,
    }
}

/// Require `scope` among the token's scopes.
///
/// # Errors
/// `insufficient_scope` naming the scope.
pub fn require_scope(claims: &AccessClaims, scope: &Scope) -> Result<(), OAuthError> {
    if claims.scope.split(' ').any(|s| s == scope.as_str()) {
        Ok(())
    } else {
        Err(OAuthError::InsufficientScope { scope: scope.to_string().into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_parsing() {
        let cases: [(&str, &[&str], Result<&str, &str>); 9] = [
            ("plain", &["Bearer abc.def.ghi"], Ok("abc.def.ghi")),
            ("lowercase scheme", &["bearer abc"], Ok("abc")),
            ("padding", &["Bearer abc=="], Ok("abc==")),
            ("none", &[], Err("invalid_token")),
            ("two headers", &["Bearer a", "Bearer b"], Err("invalid_token")),
            ("two tokens", &["Bearer a, Bearer b"], Err("invalid_token")),
            ("basic", &["Basic YTpi"], Err("invalid_token")),
            ("empty token", &["Bearer "], Err("invalid_token")),
            ("control chars", &["Bearer a\u{1}b"], Err("invalid_token")),
        ];
        for (name, headers, want) in cases {
            let got = bearer_token(headers).map_err(|e| e.code());
            assert_eq!(got, want, "{name}");
        }
        assert!(matches!(bearer_token(&[]), Err(OAuthError::MissingToken)));
        assert!(bearer_token(&["DPoP abc"]).is_err(), "a DPoP-scheme token is no bearer token");
    }

    #[test]
    fn the_authorization_header_names_bearer_or_dpop() {
        assert_eq!(presented(&["DPoP abc.def"]).ok(), Some(Presented { token: "abc.def", dpop: true }));
        assert_eq!(presented(&["dpop abc"]).ok(), Some(Presented { token: "abc", dpop: true }));
        assert_eq!(presented(&["Bearer abc"]).ok(), Some(Presented { token: "abc", dpop: false }));
        for bad in [&["DPoP "][..], &["DPoP a b"], &["DPoP a\u{1}"], &["DPoP a", "DPoP b"], &["Basic YTpi"]] {
            assert!(presented(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(presented(&[]), Err(OAuthError::MissingToken)));
    }
}
