//! Public keys from a JWKS URL, for an authorizer in another account: verify-only, fetched
//! at start and cached by the `KeyRing` (refreshed on its TTL and on unknown `kid`s, at
//! most once a minute; a failing fetch keeps the cached keys). Built with `jwks-url`.
use super::{KeyError, KeySet, KeySetDoc, KeySource};
use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use std::time::Duration;

/// Most bytes accepted from the JWKS endpoint.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// A JWKS fetched over HTTPS.
#[derive(Debug, Clone)]
pub struct JwksUrlKeys {
    url: String,
    http: reqwest::Client,
}

impl JwksUrlKeys {
    /// Keys published at `url` (https, or http on loopback for tests).
    ///
    /// # Errors
    /// The URL is not https (or loopback http), or the HTTP client cannot be built.
    pub fn new(url: &str) -> Result<Self, KeyError> {
        let parsed = url::Url::parse(url).map_err(|e| KeyError::Invalid(format!("AUTHORIZER_JWKS_URL: {e}")))?;
        let loopback = parsed.host_str().is_some_and(crate::domain::is_loopback_host);
        if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
            return Err(KeyError::Invalid("AUTHORIZER_JWKS_URL must be https".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| KeyError::Backend(e.into()))?;
        Ok(Self { url: url.to_owned(), http })
    }
}

#[async_trait]
impl KeySource for JwksUrlKeys {
    async fn load(&self) -> Result<KeySetDoc, KeyError> {
        Err(KeyError::Invalid("a JWKS holds public keys only; nothing can sign with it".into()))
    }

    async fn load_set(&self) -> Result<KeySet, KeyError> {
        let resp = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| KeyError::Backend(anyhow::Error::new(e).context("Failed to fetch the JWKS")))?;
        if !resp.status().is_success() {
            return Err(KeyError::Backend(anyhow::anyhow!("JWKS endpoint answered {}", resp.status())));
        }
        let body = resp.bytes().await.map_err(|e| KeyError::Backend(e.into()))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(KeyError::Invalid("the JWKS is too large".into()));
        }
        let jwks: JwkSet = serde_json::from_slice(&body).map_err(|e| KeyError::Invalid(format!("JWKS: {e}")))?;
        KeySet::from_jwks(&jwks)
    }
}
