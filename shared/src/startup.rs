//! Startup, once per process (Lambda init or local server start), never per request:
//! create missing backends ([`bootstrap`]) and build the [`App`] over them.
//!
//! Least privilege for the signing keys: only the process that signs (`OAUTH_KEYS=secretsmanager`)
//! reads the private keys; verifiers read the public key document (`OAUTH_KEYS=public`), and
//! functions that neither sign nor verify read no keys at all (`OAUTH_KEYS=none`).
use crate::App;
use crate::aws::{SecretsManagerKeys, SecretsManagerPublicKeys};
use crate::cached_secret::CachedSecret;
use crate::config::{Backends, KeysChoice, Settings, StoreChoice};
use crate::keys::{FileKeySource, KeySource, NoKeys};
use crate::keys::{FormKey, KeyRing};
use crate::store::{DynamoStore, Stores};
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;

/// Create the table, a first key set (and its public key document, `PUBLIC_KEYS_SECRET_ID`),
/// the registration-token secret and the form-key secret when missing (emulators and first
/// runs); an existing public key document is brought in step with the private keys. Kept
/// out of [`build_app`] so Lambda binaries do not link the table- and secret-creation API
/// calls they never make.
///
/// # Errors
/// AWS refused.
pub async fn bootstrap(backends: &Backends) -> anyhow::Result<()> {
    if !backends.uses_aws() {
        return Ok(());
    }
    let aws = crate::aws::sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&aws);
    if let StoreChoice::DynamoDb(table) = &backends.store
        && crate::store::dynamodb::ensure_table(&aws_sdk_dynamodb::Client::new(&aws), table).await?
    {
        println!("created DynamoDB table {table}");
    }
    if let KeysChoice::SecretsManager(id) = &backends.keys {
        let public = backends.public_keys_secret.as_deref();
        let ensured = crate::aws::ensure_key_secret(&sm, id, public, &crate::aws::KEY_SET_ALGS).await?;
        if ensured.created {
            println!("created signing-key secret {id}");
        }
        match (public, ensured.public) {
            (Some(p), Some(crate::aws::Published::Created)) => println!("created public-key secret {p}"),
            (Some(p), Some(crate::aws::Published::Updated)) => println!("updated public-key secret {p}"),
            _ => {}
        }
    }
    if let Some(id) = &backends.registration_token_secret
        && crate::aws::ensure_token_secret(&sm, id).await?
    {
        println!("created registration-token secret {id}");
    }
    if let Some(id) = &backends.form_key_secret
        && crate::aws::ensure_form_key_secret(&sm, id).await?
    {
        println!("created form-key secret {id}");
    }
    Ok(())
}

/// Build the app over the chosen backends (they must exist: see [`bootstrap`]).
///
/// # Errors
/// Backends unreachable or misconfigured; keys missing or unusable.
pub async fn build_app(mut settings: Settings, backends: &Backends) -> anyhow::Result<App> {
    let aws = if backends.uses_aws() { Some(crate::aws::sdk_config().await) } else { None };
    let sm = aws.as_ref().map(aws_sdk_secretsmanager::Client::new);
    let stores = match &backends.store {
        #[cfg(feature = "sqlite")]
        StoreChoice::Sqlite(dir) => {
            create_private_dir(dir)?;
            let store = Arc::new(crate::store::SqliteStore::open(&dir.join("oauth.db"))?);
            purge_periodically(&store);
            Stores::all(store)
        }
        #[cfg(not(feature = "sqlite"))]
        StoreChoice::Sqlite(_) => {
            anyhow::bail!("this binary was built without the SQLite store (feature sqlite); use OAUTH_STORE=dynamodb")
        }
        StoreChoice::DynamoDb(table) => {
            let ddb = aws_sdk_dynamodb::Client::new(aws.as_ref().context("AWS configuration missing")?);
            Stores::all(Arc::new(DynamoStore::new(ddb, table.clone())))
        }
        StoreChoice::None => Stores::all(Arc::new(crate::store::NoStore)),
    };
    let (source, ttl): (Arc<dyn KeySource>, Option<i64>) = match &backends.keys {
        KeysChoice::File(dir) => {
            create_private_dir(dir)?;
            (Arc::new(FileKeySource::new(dir, settings.access_token_alg)), None)
        }
        KeysChoice::SecretsManager(id) => {
            let sm = sm.clone().context("AWS configuration missing")?;
            (Arc::new(SecretsManagerKeys::new(sm, id.clone())), Some(backends.keys_cache_seconds))
        }
        KeysChoice::PublicSecret(id) => {
            let sm = sm.clone().context("AWS configuration missing")?;
            (Arc::new(SecretsManagerPublicKeys::new(sm, id.clone())), Some(backends.keys_cache_seconds))
        }
        KeysChoice::Ephemeral => (Arc::new(crate::keys::StaticKeys::generate(&[settings.access_token_alg])?), None),
        KeysChoice::None => (Arc::new(NoKeys), None),
        #[cfg(feature = "jwks-url")]
        KeysChoice::JwksUrl(url) => (Arc::new(crate::keys::JwksUrlKeys::new(url)?), Some(backends.keys_cache_seconds)),
        #[cfg(not(feature = "jwks-url"))]
        KeysChoice::JwksUrl(_) => anyhow::bail!("this binary was built without JWKS URL support (feature jwks-url)"),
    };
    let can_sign = matches!(backends.keys, KeysChoice::File(_) | KeysChoice::SecretsManager(_) | KeysChoice::Ephemeral);
    let clock = App::system_clock();
    let registration = match (&backends.registration_token_secret, &sm) {
        (Some(id), Some(sm)) => {
            let source = Arc::new(crate::aws::SecretsManagerString::new(sm.clone(), id.clone()));
            Some(CachedSecret::load(source, backends.keys_cache_seconds, clock.now().unix_timestamp()).await?)
        }
        _ => None,
    };
    // The secret replaces OAUTH_REGISTRATION_TOKEN (never both).
    if registration.is_some() {
        settings.registration_token = None;
    }
    let form_key = async {
        match (&backends.form_key_secret, &sm) {
            (Some(id), Some(sm)) => {
                let source = Arc::new(crate::aws::SecretsManagerFormKey::new(sm.clone(), id.clone()));
                let now = App::system_clock().now().unix_timestamp();
                FormKey::rotating(id.clone(), source, backends.keys_cache_seconds, now)
                    .await
                    .context("Invalid configuration")
            }
            // Every process reading the same private keys derives the same MAC key from them.
            _ if backends.shares_private_keys() => Ok(FormKey::from_key_set()),
            // No private key shared with other processes: random here (the authorize function
            // refuses to start with it: see `lambda::http::run`).
            _ => FormKey::per_process().context("Failed to make the login form's MAC key"),
        }
    };
    // The keys and the form key come from different secrets: read them at once (the
    // authorize function needs both at its cold start).
    let keys = async {
        if backends.defer_keys && !can_sign {
            let ring = KeyRing::deferred(source, ttl, clock.now().unix_timestamp())?;
            App::with_key_ring(settings, stores, ring, clock, false)
        } else {
            App::with_key_ring_alg(settings, stores, source, ttl, clock, can_sign).await
        }
    };
    let (app, form_key) = tokio::join!(keys, form_key);
    let app = app.context("Failed to load the signing keys")?.with_form_key(form_key?);
    Ok(match registration {
        Some(secret) => app.with_registration_secret(secret),
        None => app,
    })
}

/// Build the app of a Lambda function from its environment: DynamoDB and Secrets Manager
/// unless `OAUTH_STORE`/`OAUTH_KEYS` say otherwise (`OAUTH_KEYS=none` for functions that
/// never sign or verify, `public` for those that only verify, `jwks` for an authorizer in
/// another account). With `defer_keys`, verify-only keys load at the first token that needs
/// them (the authorize function, whose cold start then reads only its form key).
///
/// # Errors
/// Invalid configuration or unusable backends; the cold start fails with the reason.
pub async fn app_from_env(defer_keys: bool) -> anyhow::Result<App> {
    let settings = Settings::from_env().context("Invalid configuration")?;
    let mut backends = Backends::from_lookup(|k| std::env::var(k).ok(), true).context("Invalid configuration")?;
    backends.defer_keys = defer_keys;
    build_app(settings, &backends).await
}

/// How often the local server deletes expired rows (SQLite has no TTL; reads ignore them).
#[cfg(feature = "sqlite")]
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Delete expired codes, refresh tokens, revocations and counters every [`PURGE_EVERY`],
/// as DynamoDB's TTL does for the table, until the store is dropped.
#[cfg(feature = "sqlite")]
fn purge_periodically(store: &Arc<crate::store::SqliteStore>) {
    let store = Arc::downgrade(store);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PURGE_EVERY);
        every.tick().await;
        loop {
            every.tick().await;
            let Some(store) = store.upgrade() else { return };
            let now = App::system_clock().now();
            match tokio::task::spawn_blocking(move || store.purge_expired(now)).await {
                Ok(Ok(n)) => tracing::debug!(rows = n, "expired rows purged"),
                Ok(Err(e)) => tracing::warn!(error = %e, "purging expired rows failed"),
                Err(e) => tracing::warn!(error = %e, "purging expired rows failed"),
            }
        }
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn no_keys_build_an_app_without_aws_that_cannot_sign_or_serve_the_login_form() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("oauth-startup-none-{}", std::process::id()));
        let backends = Backends::from_lookup(
            |k| match k {
                "OAUTH_KEYS" => Some("none".into()),
                "OAUTH_DATA_DIR" => Some(dir.display().to_string()),
                _ => None,
            },
            false,
        )?;
        let app = build_app(Settings::from_lookup(lookup(&[("ISSUER", "https://as.test")]))?, &backends).await?;
        let keys = app.keys();
        assert!(keys.jwks().keys.is_empty() && !keys.can_sign(app.settings.access_token_alg));
        assert_eq!(app.form_key_origin(), &crate::keys::FormKeyOrigin::PerProcess);
        let err = app.require_shared_form_key().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("FORM_KEY_SECRET_ID"), "{err}");
        // File keys are shared by every process using the folder: the form key comes from them.
        let files = dir.join("file");
        let file = Backends::from_lookup(|k| (k == "OAUTH_DATA_DIR").then(|| files.display().to_string()), false)?;
        let app = build_app(Settings::from_lookup(lookup(&[("ISSUER", "https://as.test")]))?, &file).await?;
        assert_eq!(app.form_key_origin(), &crate::keys::FormKeyOrigin::KeySet);
        assert!(app.require_shared_form_key().is_ok());
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
