//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; docs/API.md,
//! "Client ID Metadata Documents"): a `client_id` that is an https URL names a JSON document
//! of client metadata, which this server fetches ([`fetch`], SSRF-guarded), checks like a
//! registration (public clients only, redirect URIs required, `client_id` equal to the URL)
//! and caches per its `Cache-Control` within the configured bounds (`crate::cimd`, the
//! process's documents). Errors are never cached.
use super::client_registration::{ClientMetadata, validate};
use super::{OAuthError, store_failure};
use crate::App;
use crate::catalog::Catalog;
use crate::config::CimdSettings;
use crate::domain::{AuthMethod, Client, ScopeSet};

/// Longest `client_id` URL accepted.
pub const MAX_URL_LEN: usize = 512;
/// Longest registered client id looked up in the store (they are `cl_` and 22 characters);
/// a longer one that is not a URL is unknown without a read.
const MAX_REGISTERED_ID: usize = 128;

/// Whether `client_id` names a metadata document rather than a registered client.
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://")
}

/// The client `client_id` names: a registered client from the store or, for an https URL
/// (when enabled), the client its metadata document describes.
///
/// # Errors
/// `invalid_client` naming why a document was refused; store failures.
pub async fn lookup(app: &App, client_id: &str, now: i64) -> Result<Option<Client>, OAuthError> {
    if is_document_url(client_id) {
        if !app.settings.cimd.enabled {
            return Ok(None);
        }
        return document_client(app, client_id, now).await.map(Some);
    }
    if client_id.len() > MAX_REGISTERED_ID {
        return Ok(None);
    }
    app.clients.client(client_id).await.map_err(store_failure)
}

fn refused(reason: impl std::fmt::Display) -> OAuthError {
    OAuthError::InvalidClient {
        description: format!("the client metadata document was refused: {reason}").into(),
        basic: false,
    }
}

/// Check a `client_id` URL: https with a host, a path, no user information, fragment or dot
/// segments, at most [`MAX_URL_LEN`] printable ASCII characters, and on an allowed host.
///
/// # Errors
/// What is wrong with it.
pub fn check_url(client_id: &str, settings: &CimdSettings) -> Result<url::Url, String> {
    if client_id.len() > MAX_URL_LEN || !client_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the client_id URL must be at most 512 printable ASCII characters".into());
    }
    let url = url::Url::parse(client_id).map_err(|_| "the client_id is not a URL".to_owned())?;
    if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
        return Err("the client_id URL must be https with a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() || client_id.contains('#') {
        return Err("the client_id URL must have no user information and no fragment".into());
    }
    let path = url.path();
    let raw_dots = client_id.split(['?']).next().unwrap_or_default().split('/').any(|seg| seg == "." || seg == "..");
    if path.is_empty() || path == "/" || raw_dots || client_id.to_ascii_lowercase().contains("%2e") {
        return Err("the client_id URL must have a path without dot segments".into());
    }
    if let Some(allowed) = &settings.allowed_hosts {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if !allowed.contains(&host) {
            return Err("documents on this host are not accepted here".into());
        }
    }
    Ok(url)
}

/// The client a fetched document describes.
///
/// # Errors
/// Why the document is refused, in words a client may see.
pub fn client_from_document(client_id: &str, body: &[u8], catalog: &Catalog, now: i64) -> Result<Client, String> {
    /// The members that identify the client, decoded strictly (a repeated one is refused:
    /// no "last one wins" between two `client_id`s).
    #[derive(serde::Deserialize)]
    struct Identity {
        client_id: Option<serde_json::Value>,
        client_secret: Option<serde_json::Value>,
        client_secret_expires_at: Option<serde_json::Value>,
    }
    let doc: serde_json::Value = serde_json::from_slice(body).map_err(|_| "the document is not JSON".to_owned())?;
    if !doc.is_object() {
        return Err("the document is not a JSON object".into());
    }
    let id: Identity =
        serde_json::from_slice(body).map_err(|_| "a member has the wrong type or is repeated".to_owned())?;
    if id.client_id.as_ref().and_then(serde_json::Value::as_str) != Some(client_id) {
        return Err("its client_id is not the URL it was fetched from".into());
    }
    if id.client_secret.is_some() || id.client_secret_expires_at.is_some() {
        return Err("a metadata document must not carry a client secret".into());
    }
    // Known members decoded strictly (a repeated one is refused), the others ignored.
    let mut meta: ClientMetadata =
        serde_json::from_slice(body).map_err(|_| "a member has the wrong type or is repeated".to_owned())?;
    match meta.token_endpoint_auth_method.as_ref() {
        None | Some(serde_json::Value::Null) => meta.token_endpoint_auth_method = Some("none".into()),
        Some(m) if m == "none" => {}
        Some(_) => return Err("token_endpoint_auth_method must be none (shared secrets are refused)".into()),
    }
    if meta.redirect_uris.as_ref().is_none_or(serde_json::Value::is_null) {
        return Err("redirect_uris is required".into());
    }
    let scope_given = meta.scope.as_ref().is_some_and(|s| s.as_str().is_some_and(|s| !s.trim().is_empty()));
    let m = validate(&meta, catalog).map_err(|e| e.description().into_owned())?;
    debug_assert_eq!(m.auth_method, AuthMethod::None);
    Ok(Client {
        client_id: client_id.to_owned(),
        secret_hash: None,
        client_name: m.client_name,
        redirect_uris: m.redirect_uris,
        grant_types: m.grant_types,
        auth_method: AuthMethod::None,
        // Without `scope`, anything this server knows: the user consents to each request.
        scope: if scope_given {
            m.scope
        } else {
            ScopeSet::from_scopes(catalog.all_scopes().into_iter().cloned().collect())
        },
        id_token_signed_response_alg: m.id_token_alg,
        created_at: now,
        // Not vouched for by anyone: errors before sign-in are pages, never redirects.
        trusted: false,
        post_logout_redirect_uris: m.post_logout_redirect_uris,
        dpop_bound_access_tokens: m.dpop_bound_access_tokens,
    })
}

/// How long a document is kept: its `max-age` within the configured bounds.
pub fn cache_seconds(max_age: Option<i64>, settings: &CimdSettings) -> i64 {
    max_age.unwrap_or(0).clamp(settings.cache_min, settings.cache_max)
}

/// The client of the document at `client_id`: cached, or fetched and checked now.
///
/// # Errors
/// `invalid_client` naming why the document was refused; 503 without a catalog.
async fn document_client(app: &App, client_id: &str, now: i64) -> Result<Client, OAuthError> {
    if let Some(c) = app.cimd.cached(client_id, now) {
        return Ok(c);
    }
    let settings = &app.settings.cimd;
    let url = check_url(client_id, settings).map_err(refused)?;
    let catalog = super::resources::catalog(app, now).await?;
    let (body, max_age) = app.cimd.fetch(settings, &url).await.map_err(refused)?;
    let client = client_from_document(client_id, &body, &catalog, now).map_err(refused)?;
    let until = now.saturating_add(cache_seconds(max_age, settings));
    tracing::info!(
        event = "client_metadata_fetched",
        client_id,
        cache_until = until,
        "client metadata document fetched"
    );
    app.cimd.keep(&client, until, now);
    Ok(client)
}

#[cfg(test)]
mod tests;
