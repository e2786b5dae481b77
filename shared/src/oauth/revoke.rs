//! `POST /oauth/revoke` (RFC 7009). Always 200 for tokens that are unknown, invalid,
//! expired or another client's (which are left untouched, §2.1).
use super::{OAuthError, store_failure};
use crate::App;
use crate::domain::Client;
use crate::jwt::{LEEWAY_SECONDS, verify_access_token};

/// Revoke `token` on behalf of the authenticated `client`.
///
/// # Errors
/// Only store failures; every token outcome is a success (RFC 7009 §2.2).
#[tracing::instrument(skip_all, fields(client_id = %client.client_id))]
pub async fn revoke(app: &App, client: &Client, token: &str, _hint: Option<&str>) -> Result<(), OAuthError> {
    // token_type_hint is only a hint (§2.1); access tokens are the only kind so far.
    let now = app.clock.now();
    let Ok(claims) = verify_access_token(&app.keys, &app.settings, token, now.unix_timestamp()) else {
        return Ok(());
    };
    // "The authorization server first validates the client credentials ... and then
    // verifies whether the token was issued to the client making the revocation request."
    if claims.client_id != client.client_id {
        return Ok(());
    }
    let until = time::OffsetDateTime::from_unix_timestamp(claims.exp.saturating_add(LEEWAY_SECONDS))
        .map_err(OAuthError::server)?;
    app.tokens.revoke_jti(&claims.jti, until).await.map_err(store_failure)?;
    tracing::info!(event = "token_revoked", jti = %claims.jti, "token revoked");
    Ok(())
}
