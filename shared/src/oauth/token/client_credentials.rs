//! `grant_type=client_credentials` (RFC 6749 §4.4): a confidential client acting for
//! itself. Scope defaults to the client's non-user scopes; never a refresh or ID token.
use crate::App;
use crate::catalog::Catalog;
use crate::crypto::random_id;
use crate::domain::{AuthMethod, Client, GrantType};
use crate::jwt::{AccessGrant, issue_access_token};
use crate::oauth::OAuthError;
use crate::oauth::token::TokenResponse;

/// Issue an access token to `client` for the resource `resource` names (or the default API)
/// and `requested` scope (or the client's scope that resource defines).
///
/// # Errors
/// `unauthorized_client` if the client may not use this grant; `invalid_target` for a
/// malformed, unknown or second resource; `invalid_scope` for unknown scopes, scopes
/// outside the client's or the resource's, or user scopes.
pub(super) async fn grant(
    app: &App,
    catalog: &Catalog,
    client: &Client,
    requested: Option<&str>,
    resource: &[&str],
    dpop: Option<&str>,
    now: time::OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    // "The client credentials grant type MUST only be used by confidential clients." (§4.4)
    if client.auth_method == AuthMethod::None || !client.allows(GrantType::ClientCredentials) {
        return Err(OAuthError::UnauthorizedClient("this client may not use the client_credentials grant".into()));
    }
    if resource.len() > 1 {
        return Err(OAuthError::InvalidTarget("an access token is for exactly one resource".into()));
    }
    let audience = catalog.targets(resource)?.swap_remove(0);
    let scope = match requested {
        None => catalog.scope_for(&audience, &client.scope.without_user_scopes()),
        Some(s) => {
            let s = catalog.requested_scope(s)?;
            if !s.is_subset_of(&client.scope) {
                return Err(OAuthError::InvalidScope("requested scope exceeds the client's registered scope".into()));
            }
            if s.iter().any(|sc| sc.is_user_scope()) {
                return Err(OAuthError::InvalidScope(
                    "user scopes cannot be granted to a client acting for itself".into(),
                ));
            }
            catalog.check_scopes(std::slice::from_ref(&audience), &s)?;
            s
        }
    };
    if scope.is_empty() {
        return Err(OAuthError::InvalidScope("no scope is available to this client for client_credentials".into()));
    }
    let now = now.unix_timestamp();
    let jti = random_id("at_").map_err(OAuthError::server)?;
    // RFC 9068 §2.2: for a client acting for itself, sub is the client id. Client ids
    // (`cl_…`) and user ids (`usr_…`) are both server-assigned and cannot collide.
    let ttl = catalog.ttl(&audience);
    let grant = AccessGrant {
        sub: &client.client_id,
        client_id: &client.client_id,
        scope: scope.to_string(),
        jti,
        fam: None,
        aud: audience.as_str(),
        ttl,
        jkt: dpop.map(str::to_owned),
    };
    let (access_token, claims) =
        issue_access_token(&app.keys(), &app.settings, grant, now).map_err(OAuthError::server)?;
    tracing::info!(event = "token_issued", client_id = %client.client_id, grant_type = "client_credentials", jti = %claims.jti, "token issued");
    Ok(TokenResponse {
        access_token,
        token_type: super::token_type(dpop),
        expires_in: ttl,
        scope: claims.scope,
        refresh_token: None,
        id_token: None,
    })
}
