//! AWS plumbing shared by the Lambda functions, the local server and the admin tool: one SDK
//! configuration per process, the one "not found" classifier, and everything Secrets
//! Manager: the key sources of signing and verifying processes ([`SecretsManagerKeys`],
//! [`SecretsManagerPublicKeys`], in `key_sources.rs`), and in `secrets_manager.rs` the
//! bootstrap of the key secret, registration token and form key, key rotation, publishing
//! the public key document, and the string secrets read at run time.
mod key_sources;
mod secrets_manager;

pub use key_sources::{SecretsManagerKeys, SecretsManagerPublicKeys, parse_jwks, secret_string};
pub use secrets_manager::*;

use crate::keys::SigningAlg;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use std::time::Duration;

/// The algorithms every generated key set carries: ES256 signs access tokens by default,
/// RS256 signs ID tokens by default.
pub const KEY_SET_ALGS: [SigningAlg; 2] = [SigningAlg::Es256, SigningAlg::Rs256];

/// Whether an AWS call failed because what it names does not exist
/// (`ResourceNotFoundException`: a secret, a secret's version stage, a table). The one
/// place this is decided, for every service and operation.
pub fn is_not_found(e: &impl aws_sdk_secretsmanager::error::ProvideErrorMetadata) -> bool {
    e.code() == Some("ResourceNotFoundException")
}

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
