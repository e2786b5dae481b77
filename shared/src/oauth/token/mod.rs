//! `POST /oauth/token` (RFC 6749 §3.2): check `grant_type` first, authenticate the client,
//! then run the grant. The response shape is RFC 6749 §5.1.
pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod refresh_token;

use super::OAuthError;
use super::client_auth::{self, Credentials};
use super::params::Params;
use crate::App;
use crate::crypto::random_id;
use crate::domain::{Client, GrantType, ResourceId, Scope, ScopeSet};
use crate::jwt::{AccessGrant, IdClaims, at_hash, issue_access_token, issue_id_token};
use serde::Serialize;

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The JWT access token.
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to the request's DPoP key (RFC 9449 §5).
    pub token_type: &'static str,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// Granted scopes.
    pub scope: String,
    /// When the client may refresh and `offline_access` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// A token request, typed by its `grant_type` (RFC 6749 §4.1.3, §4.4.2, §6): each grant
/// reads only its own parameters, and no grant type falls through into another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRequest<'a> {
    /// `grant_type=authorization_code`.
    AuthorizationCode {
        /// `code` (required).
        code: &'a str,
        /// `redirect_uri`, required when the authorization request sent one.
        redirect_uri: Option<&'a str>,
        /// `code_verifier` (PKCE; the grant refuses a code without it).
        code_verifier: Option<&'a str>,
        /// `resource` (RFC 8707): one of those the code was authorized for.
        resource: Vec<&'a str>,
    },
    /// `grant_type=client_credentials`.
    ClientCredentials {
        /// `scope`, else the client's default.
        scope: Option<&'a str>,
        /// `resource` (RFC 8707), else the default API.
        resource: Vec<&'a str>,
    },
    /// `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4).
    DeviceCode {
        /// `device_code` (required).
        device_code: &'a str,
        /// `resource` (RFC 8707): one of those the user allowed.
        resource: Vec<&'a str>,
    },
    /// `grant_type=refresh_token`.
    RefreshToken {
        /// `refresh_token` (required).
        refresh_token: &'a str,
        /// `scope`, to narrow the family's.
        scope: Option<&'a str>,
        /// `resource` (RFC 8707): one of those the family was authorized for.
        resource: Vec<&'a str>,
    },
}

impl<'a> TokenRequest<'a> {
    /// The grant's parameters from the (strict, single-valued) form.
    ///
    /// # Errors
    /// `invalid_request` when the grant's required parameter is missing.
    pub fn parse(grant: GrantType, params: &'a Params) -> Result<Self, OAuthError> {
        Ok(match grant {
            GrantType::AuthorizationCode => Self::AuthorizationCode {
                code: params.require("code")?,
                redirect_uri: params.get("redirect_uri"),
                code_verifier: params.get("code_verifier"),
                resource: params.get_all("resource"),
            },
            GrantType::ClientCredentials => {
                Self::ClientCredentials { scope: params.get("scope"), resource: params.get_all("resource") }
            }
            GrantType::DeviceCode => {
                Self::DeviceCode { device_code: params.require("device_code")?, resource: params.get_all("resource") }
            }
            GrantType::RefreshToken => Self::RefreshToken {
                refresh_token: params.require("refresh_token")?,
                scope: params.get("scope"),
                resource: params.get_all("resource"),
            },
        })
    }
}

/// Run the token endpoint.
///
/// # Errors
/// Any RFC 6749 §5.2 error.
// A debug span (compiled out of release builds): each audit event names its grant and ids
// itself, and an info span would cost every token request a formatted span (bench/load.sh).
#[tracing::instrument(level = "debug", skip_all, fields(grant_type))]
pub async fn token(
    app: &App,
    creds: &Credentials,
    params: &Params,
    dpop: Option<&str>,
    now: time::OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    // Check the grant type before anything else, so an unknown one is reported as such.
    let grant_type = params.require("grant_type")?;
    let span = tracing::Span::current();
    if !span.is_disabled() {
        span.record("grant_type", grant_type.chars().take(32).collect::<String>());
    }
    let Some(grant) = GrantType::parse(grant_type) else {
        return Err(OAuthError::UnsupportedGrantType("this grant type is not supported".into()));
    };
    let client = client_auth::authenticate(app, creds).await?;
    // The client's registered grant types before the grant's own parameters: a client that
    // may not use the grant learns nothing more (RFC 6749 §5.2 `unauthorized_client`).
    if !client.allows(grant) {
        return Err(OAuthError::UnauthorizedClient(format!("this client may not use the {grant_type} grant").into()));
    }
    // RFC 9449 §5.2: a client registered with dpop_bound_access_tokens gets no Bearer token.
    if client.dpop_bound_access_tokens && dpop.is_none() {
        return Err(OAuthError::InvalidDpopProof("this client's tokens are DPoP-bound: send a DPoP proof".into()));
    }
    // The resource servers, from this process's cache: no store call on the token path
    // (docs/ARCHITECTURE.md).
    let catalog = super::resources::catalog(app, now.unix_timestamp()).await?;
    let issued = match TokenRequest::parse(grant, params)? {
        TokenRequest::ClientCredentials { scope, resource } => {
            client_credentials::grant(app, &catalog, &client, scope, &resource, dpop, now).await
        }
        TokenRequest::AuthorizationCode { code, redirect_uri, code_verifier, resource } => {
            let asked = authorization_code::Asked { redirect_uri, code_verifier, resource: &resource, dpop };
            authorization_code::grant(app, &catalog, &client, code, asked, now).await
        }
        TokenRequest::DeviceCode { device_code, resource } => {
            device_code::grant(app, &catalog, &client, device_code, &resource, dpop, now).await
        }
        TokenRequest::RefreshToken { refresh_token, scope, resource } => {
            let asked = refresh_token::Asked { token: refresh_token, scope, resource: &resource, dpop };
            refresh_token::grant(app, &catalog, &client, asked, now).await
        }
    }?;
    crate::telemetry::metrics::token_issued(grant.metric_name());
    Ok(issued)
}

/// What a user grant (code or refresh) issues tokens for.
pub(crate) struct UserGrant<'a> {
    /// The user.
    pub sub: &'a str,
    /// Scope of this access token.
    pub scope: &'a ScopeSet,
    /// The resource server it is for, and its lifetime there.
    pub resource: (&'a ResourceId, i64),
    /// The refresh family.
    pub family_id: &'a str,
    /// When the user authenticated.
    pub auth_time: i64,
    /// How the user authenticated (the ID token's `amr`), when known.
    pub amr: Option<crate::domain::AuthMethodRef>,
    /// The authorization request's nonce.
    pub nonce: Option<&'a str>,
    /// The new refresh token, if one was issued.
    pub refresh_token: Option<String>,
    /// Whether to issue an ID token (code exchange with `openid`).
    pub id_token: bool,
    /// The DPoP key the access token is bound to, if the request carried a proof.
    pub jkt: Option<&'a str>,
}

/// Issue the access token (and ID token when `openid` was granted) of a user grant.
pub(crate) fn issue_user_tokens(
    app: &App,
    client: &Client,
    g: UserGrant<'_>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let jti = random_id("at_").map_err(OAuthError::server)?;
    let grant = AccessGrant {
        sub: g.sub,
        client_id: &client.client_id,
        scope: g.scope.to_string(),
        jti,
        fam: Some(g.family_id.to_owned()),
        aud: g.resource.0.as_str(),
        ttl: g.resource.1,
        jkt: g.jkt.map(str::to_owned),
    };
    let (access_token, claims) =
        issue_access_token(&app.keys(), &app.settings, grant, now).map_err(OAuthError::server)?;
    let id_token = if g.id_token && g.scope.contains(&Scope::OPENID) {
        let alg = client.id_token_signed_response_alg;
        let id = IdClaims {
            iss: app.settings.issuer.clone(),
            sub: g.sub.to_owned(),
            aud: client.client_id.clone(),
            exp: now + app.settings.access_token_ttl,
            iat: now,
            auth_time: g.auth_time,
            amr: g.amr.map(|m| vec![m.as_str().to_owned()]),
            nonce: g.nonce.map(str::to_owned),
            at_hash: at_hash(&access_token),
        };
        Some(issue_id_token(&app.keys(), alg, &id).map_err(OAuthError::server)?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token,
        token_type: token_type(g.jkt),
        expires_in: g.resource.1,
        scope: claims.scope,
        refresh_token: g.refresh_token,
        id_token,
    })
}

/// The `token_type` of an access token bound to `jkt` (or not).
pub(crate) fn token_type(jkt: Option<&str>) -> &'static str {
    if jkt.is_some() { "DPoP" } else { "Bearer" }
}

/// A bound code or refresh token needs a proof by its key (RFC 9449 §5, §10).
///
/// # Errors
/// `invalid_dpop_proof` when no proof came, or one by another key.
pub(crate) fn require_key(bound: Option<&str>, presented: Option<&str>) -> Result<(), OAuthError> {
    match (bound, presented) {
        (None, _) => Ok(()),
        (Some(b), Some(p)) if crate::crypto::ct_eq(b.as_bytes(), p.as_bytes()) => Ok(()),
        (Some(_), None) => {
            Err(OAuthError::InvalidDpopProof("this grant is DPoP-bound: send a proof by its key".into()))
        }
        (Some(_), Some(_)) => {
            Err(OAuthError::InvalidDpopProof("the DPoP proof is by another key than the grant's".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_grant_reads_only_its_own_parameters() {
        type Want = Result<TokenRequest<'static>, &'static str>;
        let cases: Vec<(GrantType, &str, Want)> = vec![
            (
                GrantType::AuthorizationCode,
                "code=c1&redirect_uri=https%3A%2F%2Fa.test%2Fcb&code_verifier=v1&scope=x&refresh_token=r",
                Ok(TokenRequest::AuthorizationCode {
                    code: "c1",
                    redirect_uri: Some("https://a.test/cb"),
                    code_verifier: Some("v1"),
                    resource: vec![],
                }),
            ),
            (
                GrantType::AuthorizationCode,
                "code=c1&resource=https%3A%2F%2Fa.test&resource=https%3A%2F%2Fb.test",
                Ok(TokenRequest::AuthorizationCode {
                    code: "c1",
                    redirect_uri: None,
                    code_verifier: None,
                    resource: vec!["https://a.test", "https://b.test"],
                }),
            ),
            (GrantType::AuthorizationCode, "refresh_token=r&code_verifier=v1", Err("invalid_request")),
            (
                GrantType::ClientCredentials,
                "scope=data%3Aread&code=c1",
                Ok(TokenRequest::ClientCredentials { scope: Some("data:read"), resource: vec![] }),
            ),
            (GrantType::ClientCredentials, "", Ok(TokenRequest::ClientCredentials { scope: None, resource: vec![] })),
            (
                GrantType::RefreshToken,
                "refresh_token=r1&scope=openid&code=c1",
                Ok(TokenRequest::RefreshToken { refresh_token: "r1", scope: Some("openid"), resource: vec![] }),
            ),
            (GrantType::RefreshToken, "code=c1&scope=openid", Err("invalid_request")),
            (
                GrantType::DeviceCode,
                "device_code=d1&code=c1&resource=https%3A%2F%2Fa.test",
                Ok(TokenRequest::DeviceCode { device_code: "d1", resource: vec!["https://a.test"] }),
            ),
            (GrantType::DeviceCode, "code=c1", Err("invalid_request")),
        ];
        for (grant, body, want) in cases {
            let params = Params::parse(body.as_bytes()).map_err(|e| e.code()).expect("the form parses");
            let got = TokenRequest::parse(grant, &params).map_err(|e| e.code());
            assert_eq!(got, want, "{grant:?} {body}");
        }
    }
}
