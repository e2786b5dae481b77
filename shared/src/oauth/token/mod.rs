//! `POST /oauth/token` (RFC 6749 §3.2): check `grant_type` first, authenticate the client,
//! then run the grant. The response shape is RFC 6749 §5.1.
pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use super::OAuthError;
use super::client_auth::{self, Credentials};
use super::params::Params;
use crate::App;
use crate::crypto::random_id;
use crate::domain::{Client, Scope, ScopeSet};
use crate::jwt::{AccessGrant, IdClaims, SigningAlg, at_hash, issue_access_token, issue_id_token};
use serde::Serialize;

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The JWT access token.
    pub access_token: String,
    /// Always "Bearer".
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
    now: time::OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    // Check the grant type before anything else, so an unknown one is reported as such.
    let grant_type = params.require("grant_type")?;
    tracing::Span::current().record("grant_type", grant_type.chars().take(32).collect::<String>());
    if !matches!(grant_type, "client_credentials" | "authorization_code" | "refresh_token") {
        return Err(OAuthError::UnsupportedGrantType("this grant type is not supported".into()));
    }
    let client = client_auth::authenticate(app, creds).await?;
    match grant_type {
        "client_credentials" => client_credentials::grant(app, &client, params.get("scope"), now).await,
        "authorization_code" => authorization_code::grant(app, &client, params, now).await,
        _ => refresh_token::grant(app, &client, params, now).await,
    }
}

/// What a user grant (code or refresh) issues tokens for.
pub(crate) struct UserGrant<'a> {
    /// The user.
    pub sub: &'a str,
    /// Scope of this access token.
    pub scope: &'a ScopeSet,
    /// The refresh family.
    pub family_id: &'a str,
    /// When the user authenticated.
    pub auth_time: i64,
    /// The authorization request's nonce.
    pub nonce: Option<&'a str>,
    /// The new refresh token, if one was issued.
    pub refresh_token: Option<String>,
    /// Whether to issue an ID token (code exchange with `openid`).
    pub id_token: bool,
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
    };
    let (access_token, claims) =
        issue_access_token(&app.keys(), &app.settings, grant, now).map_err(OAuthError::server)?;
    let id_token = if g.id_token && g.scope.contains(Scope::OpenId) {
        let alg = SigningAlg::parse(&client.id_token_signed_response_alg).unwrap_or(SigningAlg::Rs256);
        let id = IdClaims {
            iss: app.settings.issuer.clone(),
            sub: g.sub.to_owned(),
            aud: client.client_id.clone(),
            exp: now + app.settings.access_token_ttl,
            iat: now,
            auth_time: g.auth_time,
            nonce: g.nonce.map(str::to_owned),
            at_hash: at_hash(&access_token),
        };
        Some(issue_id_token(&app.keys(), alg, &id).map_err(OAuthError::server)?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: app.settings.access_token_ttl,
        scope: claims.scope,
        refresh_token: g.refresh_token,
        id_token,
    })
}
