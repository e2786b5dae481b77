//! `GET /oauth/userinfo` (OIDC Core §5.3): claims about the token's user, by scope.
use super::{OAuthError, access, store_failure};
use crate::App;
use crate::domain::Scope;
use crate::jwt::AccessClaims;
use serde::Serialize;

/// The userinfo response.
#[derive(Debug, Serialize)]
pub struct UserInfo {
    /// The user's id (same `sub` as the ID token).
    pub sub: String,
    /// With `profile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// With `email`, when the user registered one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Userinfo for a verified access token.
///
/// # Errors
/// `insufficient_scope` without `openid`; `invalid_token` when the user no longer exists.
pub async fn userinfo(app: &App, claims: &AccessClaims) -> Result<UserInfo, OAuthError> {
    access::require_scope(claims, &Scope::OPENID)?;
    let user = app
        .users
        .user_by_sub(&claims.sub)
        .await
        .map_err(store_failure)?
        .ok_or_else(|| OAuthError::InvalidToken("the token's user no longer exists".into()))?;
    let has = |s: Scope| claims.scope.split(' ').any(|x| x == s.as_str());
    Ok(UserInfo {
        sub: user.sub,
        preferred_username: has(Scope::PROFILE).then(|| user.username.as_str().to_owned()),
        email: if has(Scope::EMAIL) { user.email.map(|e| e.as_str().to_owned()) } else { None },
    })
}
