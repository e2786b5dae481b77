//! `POST /oauth/introspect` (RFC 7662). Anything not active, or not the calling client's,
//! is exactly `{"active": false}`.
use super::{OAuthError, store_failure};
use crate::App;
use crate::domain::Client;
use crate::jwt::{Audience, verify_access_token};
use serde::Serialize;

/// The introspection response.
#[derive(Debug, Serialize)]
pub struct Introspection {
    /// Whether the token is active.
    pub active: bool,
    /// The rest, present only for active tokens.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<ActiveDetails>,
}

/// RFC 7662 §2.2 members of an active token.
#[derive(Debug, Serialize)]
pub struct ActiveDetails {
    /// Granted scopes.
    pub scope: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Username, for user tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Subject.
    pub sub: String,
    /// Audience.
    pub aud: Audience,
    /// Issuer.
    pub iss: String,
    /// Expiry (unix seconds).
    pub exp: i64,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Token id.
    pub jti: String,
    /// "Bearer".
    pub token_type: &'static str,
}

const INACTIVE: Introspection = Introspection { active: false, details: None };

/// Introspect `token` for the authenticated `client`.
///
/// # Errors
/// Only store failures.
#[tracing::instrument(skip_all, fields(client_id = %client.client_id))]
pub async fn introspect(
    app: &App,
    client: &Client,
    token: &str,
    _hint: Option<&str>,
) -> Result<Introspection, OAuthError> {
    let now = app.clock.now();
    let Ok(claims) = verify_access_token(&app.keys, &app.settings, token, now.unix_timestamp()) else {
        return Ok(INACTIVE);
    };
    // The leeway tolerates other parties' clock skew; our own clock says when we expire it.
    if claims.exp < now.unix_timestamp() || claims.client_id != client.client_id {
        return Ok(INACTIVE);
    }
    if app.tokens.is_revoked(&claims.jti, None, now).await.map_err(store_failure)? {
        return Ok(INACTIVE);
    }
    let username = if claims.sub == claims.client_id {
        None
    } else {
        app.users.user_by_sub(&claims.sub).await.map_err(store_failure)?.map(|u| u.username.as_str().to_owned())
    };
    Ok(Introspection {
        active: true,
        details: Some(ActiveDetails {
            scope: claims.scope,
            client_id: claims.client_id,
            username,
            sub: claims.sub,
            aud: claims.aud,
            iss: claims.iss,
            exp: claims.exp,
            iat: claims.iat,
            jti: claims.jti,
            token_type: "Bearer",
        }),
    })
}
