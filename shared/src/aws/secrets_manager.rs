//! Secrets Manager steps. Whoever writes the private key secret also keeps the public key
//! document in step when one is configured (`PUBLIC_KEYS_SECRET_ID`): new keys are published
//! there before they can sign, and retired ones leave it with the private secret's
//! `AWSPREVIOUS`.
use super::is_not_found;
use super::{parse_jwks, secret_string};
use crate::cached_secret::SecretSource;
use crate::crypto::{Secret, random_token};
use crate::keys::SigningAlg;
use crate::keys::{KeySet, KeySetDoc, jwks_kids, public_jwks};
use anyhow::Context;
use async_trait::async_trait;
use std::collections::BTreeSet;

/// What [`publish_public_keys`] did to the public key document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// The secret did not exist and was created.
    Created,
    /// A new version was put (it is `AWSCURRENT` now).
    Updated,
    /// It already held exactly these kids: nothing written.
    Unchanged,
    /// The private secret holds no key set yet (its placeholder, before the first
    /// rotation): nothing to publish, nothing written.
    NothingToPublish,
}

/// What [`ensure_key_secret`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnsuredKeys {
    /// Whether the private key secret was created.
    pub created: bool,
    /// What happened to the public key document, when one is configured.
    pub public: Option<Published>,
}

/// The key-set document of `secret_id`'s version with `stage`, or `None` when there is no
/// such version or it holds no usable key set (the placeholder a deployment starts with).
///
/// # Errors
/// Secrets Manager failed.
pub async fn stage_doc(
    sm: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    stage: &str,
) -> anyhow::Result<Option<KeySetDoc>> {
    let Some(json) = secret_string(sm, secret_id, stage).await? else { return Ok(None) };
    match serde_json::from_str::<KeySetDoc>(&json) {
        Ok(doc) if !doc.keys.is_empty() && KeySet::from_doc(&doc).is_ok() => Ok(Some(doc)),
        _ => {
            tracing::warn!(secret_id, stage, "not a key set; left out of the public key document");
            Ok(None)
        }
    }
}

/// The kids of the public key document's current value: `None` when it has no value (or
/// the secret does not exist), an empty set when the value is not a JWK Set.
///
/// # Errors
/// Secrets Manager failed.
pub async fn public_kids(
    sm: &aws_sdk_secretsmanager::Client,
    public_secret_id: &str,
) -> anyhow::Result<Option<BTreeSet<String>>> {
    match sm.get_secret_value().secret_id(public_secret_id).version_stage("AWSCURRENT").send().await {
        Ok(out) => Ok(Some(
            out.secret_string()
                .and_then(|json| parse_jwks(json).ok())
                .map(|jwks| jwks_kids(&jwks).into_iter().collect())
                .unwrap_or_default(),
        )),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(anyhow::Error::new(e).context(format!("Failed to read secret {public_secret_id}"))),
    }
}

/// Make the public key document `public_secret_id` hold exactly the public keys of `docs`
/// (in order, each kid once; see [`public_jwks`]). Nothing is written when it already holds
/// exactly those kids, so repeating a step is harmless. `create_missing` creates the secret
/// when it does not exist (bootstrap); otherwise it must exist.
///
/// # Errors
/// No document holds a key (publishing nothing would lock every verifier out), a key is
/// malformed, or Secrets Manager failed.
pub async fn publish_public_keys(
    sm: &aws_sdk_secretsmanager::Client,
    public_secret_id: &str,
    docs: &[KeySetDoc],
    create_missing: bool,
) -> anyhow::Result<Published> {
    let jwks = public_jwks(docs)?;
    let kids = jwks_kids(&jwks);
    anyhow::ensure!(!kids.is_empty(), "no key set to publish in {public_secret_id}: the private secret holds none yet");
    let wanted: BTreeSet<String> = kids.iter().cloned().collect();
    let existing = public_kids(sm, public_secret_id).await?;
    if existing.as_ref() == Some(&wanted) {
        return Ok(Published::Unchanged);
    }
    let json = serde_json::to_string(&jwks)?;
    let published = if existing.is_none() && create_missing && !exists(sm, public_secret_id).await? {
        sm.create_secret()
            .name(public_secret_id)
            .description("OAuth public signing keys (JWK Set) for processes that only verify tokens")
            .secret_string(json)
            .send()
            .await
            .with_context(|| format!("Failed to create secret {public_secret_id}"))?;
        Published::Created
    } else {
        sm.put_secret_value()
            .secret_id(public_secret_id)
            .secret_string(json)
            .send()
            .await
            .with_context(|| format!("Failed to publish the public keys in {public_secret_id}"))?;
        Published::Updated
    };
    tracing::info!(
        event = "public_keys_published",
        public_secret_id,
        kid = kids.first().map(String::as_str).unwrap_or_default(),
        kids = ?kids,
        "public key document updated"
    );
    Ok(published)
}

/// Create the key secret with a fresh key set unless it exists. With `public_secret_id`,
/// also make that public key document hold the secret's current and previous public keys
/// (creating it when missing): published before a new key set is stored.
///
/// # Errors
/// Secrets Manager failed, or the existing secret holds no key set to publish.
pub async fn ensure_key_secret(
    sm: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    public_secret_id: Option<&str>,
    algs: &[SigningAlg],
) -> anyhow::Result<EnsuredKeys> {
    if exists(sm, secret_id).await? {
        let public = match public_secret_id {
            Some(public) => {
                let (current, previous) =
                    tokio::join!(stage_doc(sm, secret_id, "AWSCURRENT"), stage_doc(sm, secret_id, "AWSPREVIOUS"));
                let docs: Vec<KeySetDoc> = [current?, previous?].into_iter().flatten().collect();
                if docs.is_empty() {
                    tracing::warn!(secret_id, "no key set yet; the public key document is left as it is");
                    Some(Published::NothingToPublish)
                } else {
                    Some(publish_public_keys(sm, public, &docs, true).await?)
                }
            }
            None => None,
        };
        return Ok(EnsuredKeys { created: false, public });
    }
    let doc = KeySetDoc::generate(algs)?;
    let public = match public_secret_id {
        Some(public) => Some(publish_public_keys(sm, public, std::slice::from_ref(&doc), true).await?),
        None => None,
    };
    sm.create_secret()
        .name(secret_id)
        .description("OAuth signing keys (JSON key set); AWSCURRENT signs, AWSPREVIOUS still verifies")
        .secret_string(serde_json::to_string(&doc)?)
        .send()
        .await
        .with_context(|| format!("Failed to create secret {secret_id}"))?;
    Ok(EnsuredKeys { created: true, public })
}

/// Rotate keys: put a new version with a fresh key set. It becomes `AWSCURRENT`; the
/// version it replaces becomes `AWSPREVIOUS` (still in the JWKS); older ones drop out.
/// With `public_secret_id`, the new keys are published there first (with the current and
/// previous ones), and the document then holds the new current and previous keys.
/// Returns the new ES256 `kid`.
///
/// # Errors
/// Secrets Manager failed (the private secret is not changed when publishing failed).
pub async fn rotate_key_secret(
    sm: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    public_secret_id: Option<&str>,
    algs: &[SigningAlg],
    publish_delay: i64,
) -> anyhow::Result<String> {
    let (current, previous) =
        tokio::join!(stage_doc(sm, secret_id, "AWSCURRENT"), stage_doc(sm, secret_id, "AWSPREVIOUS"));
    let current = current?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let doc = crate::keys::next_key_set(current.as_ref(), algs, now, publish_delay)?;
    let kid = doc.keys.first().map(|k| k.kid.clone()).unwrap_or_default();
    if let Some(public) = public_secret_id {
        let docs: Vec<KeySetDoc> = [Some(doc.clone()), current.clone(), previous?].into_iter().flatten().collect();
        publish_public_keys(sm, public, &docs, false).await?;
    }
    sm.put_secret_value()
        .secret_id(secret_id)
        .secret_string(serde_json::to_string(&doc)?)
        .send()
        .await
        .with_context(|| format!("Failed to put a new version of {secret_id}"))?;
    tracing::info!(event = "key_rotated", secret_id, kid = %kid, "signing keys rotated");
    if let Some(public) = public_secret_id {
        // The new AWSCURRENT and the new AWSPREVIOUS (the version it replaced).
        let docs: Vec<KeySetDoc> = [Some(doc), current].into_iter().flatten().collect();
        publish_public_keys(sm, public, &docs, false).await?;
    }
    Ok(kid)
}

/// Create a secret holding a random 256-bit token unless it exists (the registration token).
///
/// # Errors
/// Secrets Manager failed.
pub async fn ensure_token_secret(sm: &aws_sdk_secretsmanager::Client, secret_id: &str) -> anyhow::Result<bool> {
    ensure_random_secret(sm, secret_id, "Bearer token required by POST /register_client").await
}

/// Create a secret holding a random 256-bit value (43 characters) unless it exists (the
/// login form's MAC key, `FORM_KEY_SECRET_ID`).
///
/// # Errors
/// Secrets Manager failed.
pub async fn ensure_form_key_secret(sm: &aws_sdk_secretsmanager::Client, secret_id: &str) -> anyhow::Result<bool> {
    ensure_random_secret(sm, secret_id, "MAC key of the OAuth login form (any string of 32 characters or more)").await
}

async fn ensure_random_secret(
    sm: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    description: &str,
) -> anyhow::Result<bool> {
    if exists(sm, secret_id).await? {
        return Ok(false);
    }
    sm.create_secret()
        .name(secret_id)
        .description(description)
        .secret_string(random_token()?)
        .send()
        .await
        .with_context(|| format!("Failed to create secret {secret_id}"))?;
    Ok(true)
}

/// The current string value of a secret.
///
/// # Errors
/// Secrets Manager failed or the secret has no value.
pub async fn read_secret(sm: &aws_sdk_secretsmanager::Client, secret_id: &str) -> anyhow::Result<String> {
    secret_string(sm, secret_id, "AWSCURRENT").await?.with_context(|| format!("secret {secret_id} has no value"))
}

async fn exists(sm: &aws_sdk_secretsmanager::Client, secret_id: &str) -> anyhow::Result<bool> {
    match sm.describe_secret().secret_id(secret_id).send().await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(anyhow::Error::new(e).context(format!("Failed to describe secret {secret_id}"))),
    }
}

/// A string secret in Secrets Manager (`AWSCURRENT`), for a [`crate::cached_secret::CachedSecret`].
#[derive(Debug, Clone)]
pub struct SecretsManagerString {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerString {
    /// The secret `secret_id`, read with a shared SDK client.
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self { client, secret_id: secret_id.into() }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerString {
    async fn read(&self) -> anyhow::Result<Secret> {
        let value = read_secret(&self.client, &self.secret_id).await?;
        anyhow::ensure!(!value.is_empty(), "secret {} is empty", self.secret_id);
        Ok(Secret::new(value))
    }

    fn name(&self) -> &str {
        &self.secret_id
    }
}

/// The form-key secret's `AWSCURRENT` and `AWSPREVIOUS` values (the login form's MAC keys).
#[derive(Debug, Clone)]
pub struct SecretsManagerFormKey {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerFormKey {
    /// The secret `secret_id`, read with a shared SDK client.
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self { client, secret_id: secret_id.into() }
    }
}

#[async_trait]
impl crate::keys::FormKeySource for SecretsManagerFormKey {
    async fn read(&self) -> anyhow::Result<(Secret, Option<Secret>)> {
        let (current, previous) = tokio::join!(
            secret_string(&self.client, &self.secret_id, "AWSCURRENT"),
            secret_string(&self.client, &self.secret_id, "AWSPREVIOUS")
        );
        let current = current?.with_context(|| format!("secret {} has no value", self.secret_id))?;
        Ok((Secret::new(current), previous?.map(Secret::new)))
    }
}
