//! Process wiring shared by every entry point: logging setup and building the [`App`]
//! from the environment. Runs once per process (Lambda init or local server start).
use crate::App;
use crate::config::Settings;
use crate::keys::FileKeySource;
use crate::store::SqliteStore;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Install the global log subscriber: JSON lines for Lambda (CloudWatch), text locally.
/// `RUST_LOG` overrides the default filter (`info`).
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(!json && std::io::stdout().is_terminal());
    // A second initialisation (tests) is harmless: the first subscriber stays.
    let _ = if json { builder.json().flatten_event(true).without_time().try_init() } else { builder.try_init() };
}

/// Build the app over the embedded backends: SQLite in `data_dir/oauth.db` and keys in
/// `data_dir/signing-keys.json` (generated on first use, mode 0600).
///
/// # Errors
/// The folder, database or keys cannot be created or read.
pub async fn embedded_app(settings: Settings, data_dir: &Path) -> anyhow::Result<App> {
    create_private_dir(data_dir)?;
    let store = Arc::new(SqliteStore::open(&data_dir.join("oauth.db"))?);
    let keys = FileKeySource::new(data_dir, settings.access_token_alg);
    App::with_sqlite(settings, store, &keys, App::system_clock())
        .await
        .with_context(|| format!("Failed to load signing keys from {}", keys.path().display()))
}

/// Build the app of a Lambda function from its environment. Until the AWS backends land,
/// functions use the embedded backends in `OAUTH_DATA_DIR` (default `/tmp/oauth-data`),
/// which is what `cargo lambda watch` runs locally.
///
/// # Errors
/// Invalid configuration or unusable backends; the cold start fails with the reason.
pub async fn app_from_env() -> anyhow::Result<App> {
    let settings = Settings::from_env().context("Invalid configuration")?;
    let dir = std::env::var_os("OAUTH_DATA_DIR").map_or_else(|| PathBuf::from("/tmp/oauth-data"), PathBuf::from);
    embedded_app(settings, &dir).await
}

/// Create `dir` (and parents) readable only by this user.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("Failed to create data folder {}", dir.display()))
}
