//! `POST /oauth/introspect` (RFC 7662). Anything not active, or not the calling client's,
//! is exactly `{"active": false}`.
use super::{OAuthError, store_failure};
use crate::App;
use crate::domain::Client;
use crate::jwt::Audience;
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
    /// Audience (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Issuer.
    pub iss: String,
    /// Expiry (unix seconds).
    pub exp: i64,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Token id (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// "Bearer", "DPoP" (a bound access token) or "refresh_token".
    pub token_type: &'static str,
    /// The key a DPoP-bound access token is bound to (RFC 9449 §6.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<crate::jwt::Confirmation>,
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
    now: time::OffsetDateTime,
) -> Result<Introspection, OAuthError> {
    if !super::revoke::looks_like_jwt(token) {
        return introspect_refresh(app, client, token, now).await;
    }
    let Ok(claims) = super::access::verify(app, token, now.unix_timestamp()).await else {
        return Ok(INACTIVE);
    };
    // The leeway tolerates other parties' clock skew; our own clock says when we expire it.
    if claims.exp < now.unix_timestamp() || claims.client_id != client.client_id {
        return Ok(INACTIVE);
    }
    // Only tokens for a resource server this issuer knows (RFC 8707 audiences).
    let catalog = super::resources::catalog(app, now.unix_timestamp()).await?;
    if !catalog.servers().any(|s| claims.is_for(s.id.as_str())) {
        return Ok(INACTIVE);
    }
    if app.tokens.is_revoked(&claims.jti, claims.fam.as_deref(), now).await.map_err(store_failure)? {
        return Ok(INACTIVE);
    }
    let username = if claims.sub == claims.client_id { None } else { username(app, &claims.sub).await? };
    Ok(Introspection {
        active: true,
        details: Some(ActiveDetails {
            scope: claims.scope,
            client_id: claims.client_id,
            username,
            sub: claims.sub,
            aud: Some(claims.aud),
            iss: claims.iss,
            exp: claims.exp,
            iat: claims.iat,
            jti: Some(claims.jti),
            token_type: super::token::token_type(claims.cnf.as_ref().map(|c| c.jkt.as_str())),
            cnf: claims.cnf,
        }),
    })
}

async fn username(app: &App, sub: &str) -> Result<Option<String>, OAuthError> {
    Ok(app.users.user_by_sub(sub).await.map_err(store_failure)?.map(|u| u.username.as_str().to_owned()))
}

/// A refresh token is active while current (not rotated), unexpired, its family not
/// revoked, and it is the caller's.
async fn introspect_refresh(
    app: &App,
    client: &Client,
    token: &str,
    now: time::OffsetDateTime,
) -> Result<Introspection, OAuthError> {
    if token.len() > crate::crypto::MAX_OPAQUE_TOKEN_LEN {
        return Ok(INACTIVE);
    }
    let Some(rt) = app.tokens.refresh(&crate::crypto::sha256_b64(token)).await.map_err(store_failure)? else {
        return Ok(INACTIVE);
    };
    let t = now.unix_timestamp();
    if rt.client_id != client.client_id || !rt.is_usable(t) {
        return Ok(INACTIVE);
    }
    if app.tokens.is_revoked("", Some(&rt.family_id), now).await.map_err(store_failure)? {
        return Ok(INACTIVE);
    }
    Ok(Introspection {
        active: true,
        details: Some(ActiveDetails {
            scope: rt.scope.to_string(),
            client_id: rt.client_id,
            username: username(app, &rt.sub).await?,
            sub: rt.sub,
            aud: None,
            iss: app.settings.issuer.clone(),
            exp: rt.expires_at,
            iat: rt.issued_at,
            jti: None,
            token_type: "refresh_token",
            cnf: rt.jkt.map(|jkt| crate::jwt::Confirmation { jkt }),
        }),
    })
}
