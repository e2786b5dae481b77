//! The local AWS emulator as tests see it: `scripts/test.sh` starts moto and sets
//! `OAUTH_TEST_AWS=1` with the standard AWS environment. Each test gets its own table and
//! secret names, so tests never share state.
use anyhow::Result;
use oauth_core::keys::KeySetDoc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The SDK configuration for the emulator, or `None` (with a loud note) when no emulator
/// was set up. Under CI (`CI` set) a missing emulator is an error, never a skip.
///
/// # Errors
/// Running under CI without the emulator.
pub async fn emulator() -> Result<Option<aws_config::SdkConfig>> {
    if std::env::var("OAUTH_TEST_AWS").as_deref() == Ok("1") {
        return Ok(Some(oauth_core::aws::sdk_config().await));
    }
    if std::env::var_os("CI").is_some() {
        anyhow::bail!("AWS tests need the emulator: run ./scripts/test.sh (it starts moto)");
    }
    eprintln!("NOTE: AWS emulator tests not run: start them with ./scripts/test.sh");
    Ok(None)
}

/// A name no other test in this run uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// Create a fresh table and return its name.
///
/// # Errors
/// The emulator refused.
pub async fn fresh_table(cfg: &aws_config::SdkConfig) -> Result<(aws_sdk_dynamodb::Client, String)> {
    let ddb = aws_sdk_dynamodb::Client::new(cfg);
    let table = unique("oauth-test");
    oauth_core::store::dynamodb::ensure_table(&ddb, &table).await?;
    Ok((ddb, table))
}

/// Create a fresh key secret holding `doc` and return its id.
///
/// # Errors
/// The emulator refused.
pub async fn fresh_key_secret(
    cfg: &aws_config::SdkConfig,
    doc: &KeySetDoc,
) -> Result<(aws_sdk_secretsmanager::Client, String)> {
    let sm = aws_sdk_secretsmanager::Client::new(cfg);
    let id = unique("oauth-test-keys");
    sm.create_secret().name(&id).secret_string(serde_json::to_string(doc)?).send().await?;
    Ok((sm, id))
}
