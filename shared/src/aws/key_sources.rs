//! Keys in AWS Secrets Manager: the secret's `AWSCURRENT` version holds the key-set
//! document that signs; `AWSPREVIOUS` stays in the JWKS so tokens signed before a rotation
//! still verify (docs/SECURITY.md R8). Loaded at start and cached by the `KeyRing`.
//!
//! Processes that only verify read a second secret instead ([`SecretsManagerPublicKeys`]):
//! the public JWK Set of those keys, kept in step by whoever writes the private secret
//! (the rotation function, `oauth-admin`), so they never need access to a private key.
use crate::keys::{KeyError, KeySet, KeySetDoc, KeySource, Loaded};
use async_trait::async_trait;
use aws_sdk_secretsmanager::Client as Sm;
use jsonwebtoken::jwk::JwkSet;

/// A key-set document in a Secrets Manager secret.
#[derive(Debug, Clone)]
pub struct SecretsManagerKeys {
    client: Sm,
    secret_id: String,
}

impl SecretsManagerKeys {
    /// Keys in `secret_id`, read with a shared SDK client.
    pub fn new(client: Sm, secret_id: impl Into<String>) -> Self {
        Self { client, secret_id: secret_id.into() }
    }
}

/// The string value of a secret's version with `stage`, or `None` when no version has it.
///
/// # Errors
/// Secrets Manager failed, or the secret has no string value.
pub async fn secret_string(client: &Sm, secret_id: &str, stage: &str) -> Result<Option<String>, KeyError> {
    match client.get_secret_value().secret_id(secret_id).version_stage(stage).send().await {
        Ok(out) => out
            .secret_string
            .map(Some)
            .ok_or_else(|| KeyError::Invalid(format!("secret {secret_id} has no string value"))),
        Err(e) if super::is_not_found(&e) && stage != "AWSCURRENT" => Ok(None),
        Err(e) => Err(KeyError::Backend(
            anyhow::Error::new(e).context(format!("Failed to read secret {secret_id} ({stage})")),
        )),
    }
}

impl SecretsManagerKeys {
    fn parse(&self, json: &str, stage: &str) -> Result<KeySetDoc, KeyError> {
        serde_json::from_str::<KeySetDoc>(json)
            .map_err(|e| KeyError::Invalid(format!("secret {} ({stage}): {e}", self.secret_id)))
    }
}

#[async_trait]
impl KeySource for SecretsManagerKeys {
    /// `AWSCURRENT` only: one Secrets Manager call per cold start instead of two (time and
    /// API cost). `AWSPREVIOUS` follows with the first token signed by a previous key or the
    /// first JWKS request.
    async fn load_signing_set(&self) -> Result<(KeySet, Loaded), KeyError> {
        let current = secret_string(&self.client, &self.secret_id, "AWSCURRENT")
            .await?
            .ok_or_else(|| KeyError::Invalid(format!("secret {} has no AWSCURRENT version", self.secret_id)))?;
        Ok((KeySet::from_doc(&self.parse(&current, "AWSCURRENT")?)?, Loaded::SigningOnly))
    }

    async fn load(&self) -> Result<KeySetDoc, KeyError> {
        let parse = |json: &str, stage: &str| self.parse(json, stage);
        // Both versions at once: one round trip of latency at cold start, not two.
        let (current, previous) = tokio::join!(
            secret_string(&self.client, &self.secret_id, "AWSCURRENT"),
            secret_string(&self.client, &self.secret_id, "AWSPREVIOUS")
        );
        let current = current?
            .ok_or_else(|| KeyError::Invalid(format!("secret {} has no AWSCURRENT version", self.secret_id)))?;
        let mut doc = parse(&current, "AWSCURRENT")?;
        if let Some(previous) = previous? {
            // Current keys first (they sign); previous ones only verify. After the first
            // rotation AWSPREVIOUS is the secret's initial placeholder: skip what is not a key set.
            match parse(&previous, "AWSPREVIOUS") {
                Ok(prev) => {
                    for k in prev.keys {
                        if !doc.keys.iter().any(|c| c.kid == k.kid) {
                            doc.keys.push(k);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "AWSPREVIOUS is not a key set; ignored"),
            }
        }
        Ok(doc)
    }
}

/// The public key document in a Secrets Manager secret: its `AWSCURRENT` value is a JWK Set
/// (`{"keys": [...]}`, as `/.well-known/jwks.json` serves it). Verify-only: nothing can sign
/// with it. An empty or malformed document is an error, so the `KeyRing` keeps what it has
/// (or, at start, refuses every token) and tries again later: it fails closed.
#[derive(Debug, Clone)]
pub struct SecretsManagerPublicKeys {
    client: Sm,
    secret_id: String,
}

impl SecretsManagerPublicKeys {
    /// Public keys in `secret_id`, read with a shared SDK client.
    pub fn new(client: Sm, secret_id: impl Into<String>) -> Self {
        Self { client, secret_id: secret_id.into() }
    }
}

/// Parse a public key document (a JWK Set).
///
/// # Errors
/// Not a JWK Set.
pub fn parse_jwks(json: &str) -> Result<JwkSet, KeyError> {
    serde_json::from_str::<JwkSet>(json).map_err(|e| KeyError::Invalid(format!("public key document: {e}")))
}

#[async_trait]
impl KeySource for SecretsManagerPublicKeys {
    async fn load(&self) -> Result<KeySetDoc, KeyError> {
        Err(KeyError::Invalid("a public key document holds no private keys; nothing can sign with it".into()))
    }

    async fn load_set(&self) -> Result<KeySet, KeyError> {
        let json = secret_string(&self.client, &self.secret_id, "AWSCURRENT")
            .await?
            .ok_or_else(|| KeyError::Invalid(format!("secret {} has no AWSCURRENT version", self.secret_id)))?;
        let jwks = parse_jwks(&json).map_err(|e| KeyError::Invalid(format!("secret {}: {e}", self.secret_id)))?;
        KeySet::from_jwks(&jwks).map_err(|e| KeyError::Invalid(format!("secret {}: {e}", self.secret_id)))
    }
}
