//! An OpenID provider: its discovery document (OIDC Discovery §4: the issuer in it must be
//! the configured one, exactly), its JWKS (cached; an unknown `kid` refreshes it at most once
//! a minute), the code exchange and the ID token's validation.
use super::http::Auth;
use super::id_token::{self, Expected, UpstreamIdentity, UpstreamKeys};
use super::{Answer, JWKS_REFRESH_INTERVAL_SECONDS, METADATA_TTL_SECONDS, Upstream, UpstreamError, Upstreams};
use crate::config::ProviderKind;
use crate::crypto::Secret;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What this server uses of a provider's discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// `issuer`, equal to the configured one.
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization_endpoint: String,
    /// `token_endpoint`.
    pub token_endpoint: String,
    /// `jwks_uri`.
    pub jwks_uri: String,
    /// `authorization_response_iss_parameter_supported` (RFC 9207 §3).
    pub iss_parameter_supported: bool,
    /// Whether the token endpoint takes the secret in the form (it lists
    /// `client_secret_post` and not `client_secret_basic`).
    pub secret_in_form: bool,
    /// When it was fetched (unix seconds).
    pub fetched_at: i64,
}

#[derive(Deserialize)]
struct RawMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
}

fn refused(why: impl Into<String>) -> UpstreamError {
    UpstreamError::Refused(why.into())
}

impl Upstreams {
    /// The provider's discovery document: cached, fetched when absent or older than
    /// [`METADATA_TTL_SECONDS`] (a failed re-fetch keeps the cached one).
    pub(super) async fn metadata(&self, up: &Upstream, now: i64) -> Result<Arc<Metadata>, UpstreamError> {
        if let Some(m) = up.metadata.load_full()
            && now - m.fetched_at < METADATA_TTL_SECONDS
        {
            return Ok(m);
        }
        let ProviderKind::Oidc { issuer } = &up.config.kind else {
            return Err(refused("not an OpenID provider"));
        };
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let fetched = match self.http()?.json(&url, None, Auth::None, "application/json").await {
            Ok((200, v)) => parse_metadata(issuer, v, now),
            Ok((status, _)) => Err(refused(format!("{url} answered {status}"))),
            Err(e) => Err(e),
        };
        match (fetched, up.metadata.load_full()) {
            (Ok(m), _) => {
                let m = Arc::new(m);
                up.metadata.store(Some(m.clone()));
                Ok(m)
            }
            (Err(e), Some(old)) => {
                tracing::warn!(provider = %up.config.id, error = %e, "discovery re-fetch failed; keeping the cached document");
                Ok(old)
            }
            (Err(e), None) => Err(e),
        }
    }

    /// The provider's keys for a token whose header names `kid`: the cached JWKS, fetched
    /// when never fetched, older than [`METADATA_TTL_SECONDS`] (a key the provider retired
    /// stops verifying), or when it lacks `kid` and was fetched more than a minute ago.
    async fn keys(&self, up: &Upstream, metadata: &Metadata, kid: Option<&str>, now: i64) -> Arc<UpstreamKeys> {
        let current = up.keys.load_full();
        let fetched_at = up.keys_fetched_at.load(Ordering::Acquire);
        let missing = kid.is_some_and(|k| !current.has_kid(k));
        let stale = now - fetched_at >= METADATA_TTL_SECONDS;
        if fetched_at != 0 && !stale && !(missing && now - fetched_at >= JWKS_REFRESH_INTERVAL_SECONDS) {
            return current;
        }
        let _one_at_a_time = up.refreshing.lock().await;
        if up.keys_fetched_at.load(Ordering::Acquire) != fetched_at {
            return up.keys.load_full();
        }
        up.keys_fetched_at.store(now.max(1), Ordering::Release);
        let fetched = match self.http() {
            Ok(http) => http.json(&metadata.jwks_uri, None, Auth::None, "application/json").await,
            Err(e) => Err(e),
        };
        match fetched {
            Ok((200, v)) => match serde_json::from_value::<jsonwebtoken::jwk::JwkSet>(v) {
                Ok(set) => {
                    let keys = Arc::new(UpstreamKeys::from_jwks(&set));
                    up.keys.store(keys.clone());
                    tracing::info!(provider = %up.config.id, "upstream JWKS fetched");
                    keys
                }
                Err(e) => {
                    tracing::warn!(provider = %up.config.id, error = %e, "upstream JWKS malformed");
                    current
                }
            },
            Ok((status, _)) => {
                tracing::warn!(provider = %up.config.id, status, "upstream JWKS fetch refused");
                current
            }
            Err(e) => {
                tracing::warn!(provider = %up.config.id, error = %e, "upstream JWKS fetch failed");
                current
            }
        }
    }
}

fn parse_metadata(issuer: &str, v: serde_json::Value, now: i64) -> Result<Metadata, UpstreamError> {
    let raw: RawMetadata = serde_json::from_value(v).map_err(|e| refused(format!("discovery document: {e}")))?;
    // OIDC Discovery §4.3: the issuer in the document must be exactly the one asked for.
    if raw.issuer != issuer {
        return Err(refused(format!("discovery document names issuer {:?}, not {issuer:?}", raw.issuer)));
    }
    for (what, url) in [
        ("authorization_endpoint", &raw.authorization_endpoint),
        ("token_endpoint", &raw.token_endpoint),
        ("jwks_uri", &raw.jwks_uri),
    ] {
        crate::config::check_upstream_url(what, url).map_err(refused)?;
    }
    if raw.code_challenge_methods_supported.as_ref().is_some_and(|m| !m.iter().any(|m| m == "S256")) {
        return Err(refused("the provider does not support PKCE S256"));
    }
    let methods = raw.token_endpoint_auth_methods_supported.unwrap_or_default();
    let secret_in_form =
        methods.iter().any(|m| m == "client_secret_post") && !methods.iter().any(|m| m == "client_secret_basic");
    Ok(Metadata {
        issuer: raw.issuer,
        authorization_endpoint: raw.authorization_endpoint,
        token_endpoint: raw.token_endpoint,
        jwks_uri: raw.jwks_uri,
        iss_parameter_supported: raw.authorization_response_iss_parameter_supported,
        secret_in_form,
        fetched_at: now,
    })
}

/// Exchange `code` at the provider's token endpoint; its metadata and the ID token.
pub(super) async fn exchange(
    ups: &Upstreams,
    up: &Upstream,
    secret: &Secret,
    answer: Answer<'_>,
    now: i64,
) -> Result<(Arc<Metadata>, String), UpstreamError> {
    let metadata = ups.metadata(up, now).await?;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", answer.code),
        ("redirect_uri", answer.redirect_uri),
        ("code_verifier", answer.verifier),
    ];
    let auth = if metadata.secret_in_form {
        form.push(("client_id", &up.config.client_id));
        form.push(("client_secret", secret.expose()));
        Auth::None
    } else {
        Auth::Basic(&up.config.client_id, secret)
    };
    let (status, body) = ups.http()?.json(&metadata.token_endpoint, Some(&form), auth, "application/json").await?;
    if status != 200 {
        return Err(super::code_refused(status, &body));
    }
    let token = body
        .get("id_token")
        .and_then(|t| t.as_str())
        .ok_or_else(|| refused("the token response has no id_token"))?
        .to_owned();
    Ok((metadata, token))
}

/// Validate the ID token (OIDC Core §3.1.3.7) with the provider's keys (an unknown `kid`
/// has them fetched again first, at most once a minute: [`Upstreams::keys`]).
pub(super) async fn validate(
    ups: &Upstreams,
    up: &Upstream,
    metadata: &Metadata,
    token: &str,
    nonce: &str,
    now: i64,
) -> Result<UpstreamIdentity, UpstreamError> {
    let expected = Expected { issuer: &metadata.issuer, client_id: &up.config.client_id, nonce, now };
    let kid = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid);
    let keys = ups.keys(up, metadata, kid.as_deref(), now).await;
    Ok(id_token::validate(token, &keys, expected)?)
}
