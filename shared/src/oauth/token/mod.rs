//! `POST /oauth/token` (RFC 6749 §3.2): check `grant_type` first, authenticate the client,
//! then run the grant. The response shape is RFC 6749 §5.1.
pub mod client_credentials;

use super::OAuthError;
use super::client_auth::{self, Credentials};
use super::params::Params;
use crate::App;
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
#[tracing::instrument(skip_all, fields(grant_type))]
pub async fn token(app: &App, creds: &Credentials, params: &Params) -> Result<TokenResponse, OAuthError> {
    // Check the grant type before anything else, so an unknown one is reported as such.
    let grant_type = params.require("grant_type")?;
    tracing::Span::current().record("grant_type", grant_type.chars().take(32).collect::<String>());
    match grant_type {
        "client_credentials" => {
            let client = client_auth::authenticate(app, creds).await?;
            client_credentials::grant(app, &client, params.get("scope")).await
        }
        // The authorization code and refresh grants arrive with the authorization-code
        // issue; until then they are honestly unsupported (metadata does not list them).
        _ => Err(OAuthError::UnsupportedGrantType("this grant type is not supported".into())),
    }
}
