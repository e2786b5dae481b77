//! `POST /oauth/revoke` (RFC 7009). Always 200 for tokens that are unknown, invalid,
//! expired or another client's (which are left untouched, §2.1). Revoking a refresh token
//! ends its whole family, access tokens included (§2.1 SHOULD).
use super::{OAuthError, store_failure};
use crate::App;
use crate::crypto::sha256_b64;
use crate::domain::Client;
use crate::jwt::LEEWAY_SECONDS;

/// Whether a presented token is shaped like our JWT access tokens (refresh tokens are
/// opaque base64url without dots). `token_type_hint` is only a hint (§2.1).
/// How long a family's revocation must last: until the last access token the family can
/// have issued has expired at every verifier. A refresh at the family's absolute expiry can
/// still mint one, valid for the access-token lifetime, and verifiers accept `exp` plus the
/// leeway; a record that ended at the family's expiry would let that token work again. The
/// lifetime is the longest any resource server may have (a registered one may give its
/// tokens longer than `ACCESS_TOKEN_TTL_SECONDS`, and may be changed after the revocation).
pub(crate) fn family_revocation_until(app: &App, family_expires_at: i64) -> time::OffsetDateTime {
    let longest = app.settings.access_token_ttl.max(*crate::domain::ResourceServer::TTL_RANGE.end());
    let until = family_expires_at.saturating_add(longest).saturating_add(LEEWAY_SECONDS);
    time::OffsetDateTime::from_unix_timestamp(until)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(365 * 1000))
}

pub(crate) fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// Revoke `token` on behalf of the authenticated `client`.
///
/// # Errors
/// Only store failures; every token outcome is a success (RFC 7009 §2.2).
#[tracing::instrument(skip_all, fields(client_id = %client.client_id))]
pub async fn revoke(
    app: &App,
    client: &Client,
    token: &str,
    _hint: Option<&str>,
    now: time::OffsetDateTime,
) -> Result<(), OAuthError> {
    if !looks_like_jwt(token) {
        if token.len() > crate::crypto::MAX_OPAQUE_TOKEN_LEN {
            return Ok(());
        }
        let Some(rt) = app.tokens.refresh(&sha256_b64(token)).await.map_err(store_failure)? else {
            return Ok(());
        };
        if rt.client_id != client.client_id {
            return Ok(());
        }
        let until = family_revocation_until(app, rt.family_expires_at);
        app.tokens.revoke_family(&rt.family_id, until).await.map_err(store_failure)?;
        tracing::info!(event = "family_revoked", family_id = %rt.family_id, reason = "refresh token revoked", "refresh family revoked");
        return Ok(());
    }
    let Ok(claims) = super::access::verify(app, token, now.unix_timestamp()).await else {
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
    tracing::info!(event = "token_revoked", jti = %claims.jti, "access token revoked");
    Ok(())
}
