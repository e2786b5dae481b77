//! AWS plumbing shared by the Lambda functions, the local server and the admin tool: one SDK
//! configuration per process, and the bootstrap steps (table, key secret, registration token).
use crate::crypto::random_token;
use crate::jwt::SigningAlg;
use crate::keys::{KeySetDoc, secrets_manager::secret_string};
use anyhow::Context;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use std::time::Duration;

/// The algorithms every generated key set carries: ES256 signs access tokens by default,
/// RS256 signs ID tokens by default.
pub const KEY_SET_ALGS: [SigningAlg; 2] = [SigningAlg::Es256, SigningAlg::Rs256];

/// The SDK configuration: the standard environment (region, credentials, and
/// `AWS_ENDPOINT_URL` for an emulator), standard retries (3 attempts, backoff with jitter),
/// and timeouts well inside Lambda's and API Gateway's.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(8))
                .build(),
        )
        .load()
        .await
}

/// Create the key secret with a fresh key set unless it exists. Returns whether it was created.
///
/// # Errors
/// Secrets Manager failed.
pub async fn ensure_key_secret(
    sm: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    algs: &[SigningAlg],
) -> anyhow::Result<bool> {
    if exists(sm, secret_id).await? {
        return Ok(false);
    }
    let doc = serde_json::to_string(&KeySetDoc::generate(algs)?)?;
    sm.create_secret()
        .name(secret_id)
        .description("OAuth signing keys (JSON key set); AWSCURRENT signs, AWSPREVIOUS still verifies")
        .secret_string(doc)
        .send()
        .await
        .with_context(|| format!("Failed to create secret {secret_id}"))?;
    Ok(true)
}

/// Rotate keys: put a new version with a fresh key set. It becomes `AWSCURRENT`; the
/// version it replaces becomes `AWSPREVIOUS` (still in the JWKS); older ones drop out.
/// Returns the new ES256 `kid`.
///
/// # Errors
/// Secrets Manager failed.
pub async fn rotate_key_secret(
    sm: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    algs: &[SigningAlg],
) -> anyhow::Result<String> {
    let doc = KeySetDoc::generate(algs)?;
    let kid = doc.keys.first().map(|k| k.kid.clone()).unwrap_or_default();
    sm.put_secret_value()
        .secret_id(secret_id)
        .secret_string(serde_json::to_string(&doc)?)
        .send()
        .await
        .with_context(|| format!("Failed to put a new version of {secret_id}"))?;
    tracing::info!(event = "key_rotated", secret_id, kid = %kid, "signing keys rotated");
    Ok(kid)
}

/// Create a secret holding a random 256-bit token unless it exists (the registration token).
///
/// # Errors
/// Secrets Manager failed.
pub async fn ensure_token_secret(sm: &aws_sdk_secretsmanager::Client, secret_id: &str) -> anyhow::Result<bool> {
    if exists(sm, secret_id).await? {
        return Ok(false);
    }
    sm.create_secret()
        .name(secret_id)
        .description("Bearer token required by POST /register_client")
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
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(false),
        Err(e) => Err(anyhow::Error::new(e).context(format!("Failed to describe secret {secret_id}"))),
    }
}
