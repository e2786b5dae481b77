//! `grant_type=refresh_token` (RFC 6749 §6, RFC 9700 §4.14.2): rotation on every use;
//! presenting a rotated token revokes the whole family, except within a short grace
//! window for races and lost responses; scope may narrow, never widen.
use super::{TokenResponse, UserGrant, issue_user_tokens};
use crate::App;
use crate::catalog::Catalog;
use crate::crypto::{random_token, sha256_b64};
use crate::domain::{Client, RefreshRecord, ResourceId, ScopeSet};
use crate::oauth::{OAuthError, store_failure};
use crate::store::Rotate;

fn invalid_grant() -> OAuthError {
    OAuthError::InvalidGrant("the refresh token is invalid, expired or revoked".into())
}

/// What the refresh request says.
pub(super) struct Asked<'a> {
    /// `refresh_token`.
    pub token: &'a str,
    /// `scope`, to narrow.
    pub scope: Option<&'a str>,
    /// `resource` values.
    pub resource: &'a [&'a str],
    /// The key of the request's verified DPoP proof, if any.
    pub dpop: Option<&'a str>,
}

/// Refresh with the token for `client` (whose registration allows this grant), for one of
/// the family's resources, narrowed to the requested scope if given.
///
/// # Errors
/// `invalid_scope`, `invalid_target`, `invalid_dpop_proof` or `invalid_grant`.
pub(super) async fn grant(
    app: &App,
    catalog: &Catalog,
    client: &Client,
    asked: Asked<'_>,
    now_dt: time::OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    let Asked { token, scope: requested, resource, dpop } = asked;
    if token.len() > crate::crypto::MAX_OPAQUE_TOKEN_LEN {
        return Err(invalid_grant());
    }
    let hash = sha256_b64(token);
    let now = now_dt.unix_timestamp();
    let Some(record) = app.tokens.refresh(&hash).await.map_err(store_failure)? else {
        return Err(invalid_grant());
    };
    // Bound to its client: another client's presentation is refused and is not a reuse (docs/SECURITY.md C3).
    if record.client_id != client.client_id {
        return Err(invalid_grant());
    }
    if app.tokens.is_revoked("", Some(&record.family_id), now_dt).await.map_err(store_failure)? {
        return Err(invalid_grant());
    }
    if let Some(rotated_at) = record.rotated_at {
        return Err(reuse(app, &record, rotated_at, now).await);
    }
    if !record.is_usable(now) {
        return Err(invalid_grant());
    }
    // A bound family refreshes only with a proof by its key (RFC 9449 §5); refused, the
    // token is not rotated.
    super::require_key(record.jkt.as_deref(), dpop)?;
    let audience = catalog.one_of(resource, &record.resources)?;
    let scope = narrow_scope(catalog, &audience, &record.scope, requested)?;
    let new_token = random_token().map_err(OAuthError::server)?;
    let next = RefreshRecord {
        token_hash: sha256_b64(&new_token),
        issued_at: now,
        expires_at: (now + app.settings.refresh_idle_ttl).min(record.family_expires_at),
        rotated_at: None,
        rotated_to: None,
        // The new token keeps the original scope, even when this access token is narrower.
        ..record.clone()
    };
    match app.tokens.rotate_refresh(&hash, &next, now_dt).await.map_err(store_failure)? {
        Rotate::Rotated => {}
        Rotate::AlreadyRotated(old) => return Err(reuse(app, &old, old.rotated_at.unwrap_or(now), now).await),
        Rotate::Missing => return Err(invalid_grant()),
        // The user disconnected the client, or the session the family ends with has ended.
        Rotate::Withdrawn => return Err(invalid_grant()),
    }
    tracing::info!(event = "token_issued", grant_type = "refresh_token", client_id = %client.client_id, sub = %record.sub, family_id = %record.family_id, "tokens refreshed");
    // No new ID token on refresh (OIDC Core §12.2 makes it optional); the scope is kept.
    let g = UserGrant {
        sub: &record.sub,
        scope: &scope,
        resource: (&audience, catalog.ttl(&audience)),
        family_id: &record.family_id,
        auth_time: record.auth_time,
        amr: None,
        nonce: None,
        refresh_token: Some(new_token),
        id_token: false,
        jkt: dpop,
    };
    issue_user_tokens(app, client, g, now)
}

/// A rotated token came back. Within the grace window it is a race or a lost response:
/// refuse without revoking. Later it is a theft signal: revoke the family (docs/SECURITY.md C1, R3).
async fn reuse(app: &App, record: &RefreshRecord, rotated_at: i64, now: i64) -> OAuthError {
    if now - rotated_at <= app.settings.refresh_grace {
        tracing::info!(event = "refresh_reuse_in_grace", family_id = %record.family_id, "just-rotated refresh token presented again");
        return invalid_grant();
    }
    let until = crate::oauth::revoke::family_revocation_until(app, record.family_expires_at);
    if let Err(e) = app.tokens.revoke_family(&record.family_id, until).await {
        return store_failure(e);
    }
    tracing::warn!(event = "refresh_reuse_detected", client_id = %record.client_id, family_id = %record.family_id, "rotated refresh token reused; family revoked");
    tracing::warn!(event = "family_revoked", family_id = %record.family_id, "refresh family revoked");
    invalid_grant()
}

/// The scope of a refreshed access token for `audience`: the original grant's part for it,
/// or the requested subset of that. "The requested scope MUST NOT include any scope not
/// originally granted" (RFC 6749 §6), and each scope must be the audience's (RFC 8707).
///
/// # Errors
/// `invalid_scope` for an unknown scope, an empty request, anything beyond `original`, or
/// a scope another resource defines.
pub fn narrow_scope(
    catalog: &Catalog,
    audience: &ResourceId,
    original: &ScopeSet,
    requested: Option<&str>,
) -> Result<ScopeSet, OAuthError> {
    let Some(requested) = requested else { return Ok(catalog.scope_for(audience, original)) };
    let s = catalog.requested_scope(requested)?;
    if s.is_empty() || !s.is_subset_of(original) {
        return Err(OAuthError::InvalidScope("the requested scope exceeds the original grant".into()));
    }
    catalog.check_scopes(std::slice::from_ref(audience), &s)?;
    Ok(s)
}
