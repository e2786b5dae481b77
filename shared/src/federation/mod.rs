//! Upstream identity providers at run time (docs/API.md, "Federation"): this server as an
//! OpenID Connect relying party (or GitHub OAuth client) toward them, while it stays the
//! issuer of every token its clients see. Per provider and container: the discovery
//! document and the JWKS are fetched once and cached (an unknown `kid` refreshes the JWKS at
//! most once a minute), the client secret is read at the first sign-in that needs it; every
//! upstream call has a short timeout. The sign-in flow itself (state, cookies, accounts) is
//! `oauth::federation`.
mod github;
mod http;
pub mod id_token;
mod oidc;

use crate::config::{FederationSettings, ProviderConfig, ProviderKind, SecretRef};
use crate::crypto::Secret;
use arc_swap::{ArcSwap, ArcSwapOption};
use id_token::{IdTokenError, UpstreamIdentity, UpstreamKeys};
pub use oidc::Metadata;
use std::sync::atomic::AtomicI64;

/// The discovery document is fetched again after this many seconds (at the next sign-in).
pub const METADATA_TTL_SECONDS: i64 = 86_400;
/// An unknown `kid` refreshes the JWKS at most this often.
pub const JWKS_REFRESH_INTERVAL_SECONDS: i64 = 60;

/// Why an upstream sign-in failed (logged in full; the user sees a plain message).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The provider could not be reached in time.
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    /// The provider answered something this server does not accept.
    #[error("upstream answer refused: {0}")]
    Refused(String),
    /// The provider's token endpoint refused the code (its `error`).
    #[error("upstream token endpoint refused the code: {0}")]
    CodeRefused(String),
    /// The ID token failed validation.
    #[error("upstream ID token refused: {0}")]
    IdToken(#[from] IdTokenError),
    /// This server's configuration (the secret cannot be read).
    #[error("federation misconfigured: {0}")]
    Config(String),
}

/// The provider's answer to a sign-in, and what this server sent it: what a code exchange
/// needs.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// The authorization code.
    pub code: &'a str,
    /// The PKCE verifier of the challenge sent.
    pub verifier: &'a str,
    /// The redirect URI the code was sent back to.
    pub redirect_uri: &'a str,
    /// The nonce sent (`oidc`).
    pub nonce: &'a str,
}

/// A token endpoint's refusal of a code: its status and (at most 64 characters of) `error`.
fn code_refused(status: u16, body: &serde_json::Value) -> UpstreamError {
    let error = body.get("error").and_then(|e| e.as_str()).unwrap_or("no error code");
    UpstreamError::CodeRefused(format!("{status} {}", error.chars().take(64).collect::<String>()))
}

/// One configured provider and what this container cached of it.
pub struct Upstream {
    /// Its configuration.
    pub config: ProviderConfig,
    metadata: ArcSwapOption<Metadata>,
    keys: ArcSwap<UpstreamKeys>,
    /// When the JWKS was last fetched (unix seconds; 0: never).
    keys_fetched_at: AtomicI64,
    refreshing: tokio::sync::Mutex<()>,
    secret: tokio::sync::OnceCell<Secret>,
}

/// Every configured provider.
pub struct Upstreams {
    providers: Vec<Upstream>,
    /// Built at the first upstream call (a process that never federates never pays for it:
    /// the TLS roots load there, not at the cold start).
    http: std::sync::OnceLock<Result<http::Http, String>>,
    timeout_ms: u64,
    sm: tokio::sync::OnceCell<aws_sdk_secretsmanager::Client>,
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.providers.iter().map(|p| &p.config.id)).finish()
    }
}

impl Upstreams {
    /// The providers of `settings` (nothing fetched, no client built yet).
    pub fn new(settings: &FederationSettings) -> Self {
        let providers = settings
            .providers
            .iter()
            .map(|c| Upstream {
                config: c.clone(),
                metadata: ArcSwapOption::empty(),
                keys: ArcSwap::from_pointee(UpstreamKeys::default()),
                keys_fetched_at: AtomicI64::new(0),
                refreshing: tokio::sync::Mutex::new(()),
                secret: tokio::sync::OnceCell::new(),
            })
            .collect();
        Self {
            providers,
            http: std::sync::OnceLock::new(),
            timeout_ms: settings.timeout_ms,
            sm: tokio::sync::OnceCell::new(),
        }
    }

    /// The HTTP client toward the providers, built at its first use.
    fn http(&self) -> Result<&http::Http, UpstreamError> {
        self.http
            .get_or_init(|| http::Http::new(self.timeout_ms))
            .as_ref()
            .map_err(|e| UpstreamError::Config(e.clone()))
    }

    /// The provider `id`.
    pub fn get(&self, id: &str) -> Option<&Upstream> {
        self.providers.iter().find(|p| p.config.id == id)
    }

    /// Every provider, in configuration order.
    pub fn all(&self) -> impl Iterator<Item = &Upstream> {
        self.providers.iter()
    }

    /// The provider's authorization endpoint (an `oidc` provider's from its discovery
    /// document, fetched now unless cached).
    ///
    /// # Errors
    /// The discovery document could not be had.
    pub async fn authorization_endpoint(&self, up: &Upstream, now: i64) -> Result<String, UpstreamError> {
        match &up.config.kind {
            ProviderKind::Github { authorization_endpoint, .. } => Ok(authorization_endpoint.clone()),
            ProviderKind::Oidc { .. } => Ok(self.metadata(up, now).await?.authorization_endpoint.clone()),
        }
    }

    /// The origin a login form's POST is redirected to for this provider (the page's CSP
    /// `form-action` must allow it): its authorization endpoint's, when known without a fetch,
    /// else the issuer's.
    pub fn form_action_origin(&self, up: &Upstream) -> String {
        let endpoint = match &up.config.kind {
            ProviderKind::Github { authorization_endpoint, .. } => authorization_endpoint.clone(),
            ProviderKind::Oidc { issuer } => {
                up.metadata.load().as_ref().map_or_else(|| issuer.clone(), |m| m.authorization_endpoint.clone())
            }
        };
        url::Url::parse(&endpoint).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
    }

    /// Whether the provider's authorization response must carry `iss` (RFC 9207): an `oidc`
    /// provider that advertises it. Cached metadata only (the sign-in began with a fetch).
    pub fn requires_iss(&self, up: &Upstream) -> bool {
        up.metadata.load().as_ref().is_some_and(|m| m.iss_parameter_supported)
    }

    /// Exchange the answer's code (with its PKCE verifier) at the provider and prove who
    /// signed in: an `oidc` provider's ID token validated exactly (with the nonce), GitHub's
    /// user and e-mail addresses.
    ///
    /// # Errors
    /// Why the provider's answer was not accepted.
    pub async fn sign_in(
        &self,
        up: &Upstream,
        answer: Answer<'_>,
        now: i64,
    ) -> Result<UpstreamIdentity, UpstreamError> {
        let secret = self.secret(up).await?;
        match &up.config.kind {
            ProviderKind::Oidc { .. } => {
                let (metadata, token) = oidc::exchange(self, up, &secret, answer, now).await?;
                oidc::validate(self, up, &metadata, &token, answer.nonce, now).await
            }
            ProviderKind::Github { .. } => github::sign_in(self, up, &secret, answer, now).await,
        }
    }

    /// The provider's client secret, read once per container.
    async fn secret(&self, up: &Upstream) -> Result<Secret, UpstreamError> {
        let id = &up.config.id;
        let value = up
            .secret
            .get_or_try_init(|| async {
                let raw = match &up.config.secret {
                    SecretRef::Env(name) => std::env::var(name)
                        .map_err(|_| UpstreamError::Config(format!("provider {id}: {name} is not set")))?,
                    SecretRef::File(path) => tokio::fs::read_to_string(path).await.map_err(|e| {
                        UpstreamError::Config(format!("provider {id}: {} cannot be read: {e}", path.display()))
                    })?,
                    SecretRef::SecretsManager { id: secret_id, key } => {
                        let sm = self
                            .sm
                            .get_or_init(|| async {
                                aws_sdk_secretsmanager::Client::new(&crate::aws::sdk_config().await)
                            })
                            .await;
                        let value = crate::aws::read_secret(sm, secret_id)
                            .await
                            .map_err(|e| UpstreamError::Config(format!("provider {id}: {e:#}")))?;
                        match key {
                            None => value,
                            Some(k) => serde_json::from_str::<serde_json::Value>(&value)
                                .ok()
                                .and_then(|v| v.get(k).and_then(|s| s.as_str()).map(str::to_owned))
                                .ok_or_else(|| {
                                    UpstreamError::Config(format!("provider {id}: secret {secret_id} has no field {k}"))
                                })?,
                        }
                    }
                };
                let trimmed = raw.trim();
                if trimmed.is_empty() {
                    return Err(UpstreamError::Config(format!("provider {id}: the client secret is empty")));
                }
                Ok(Secret::new(trimmed))
            })
            .await?;
        Ok(value.clone())
    }
}
