//! Process wiring shared by every entry point: logging, backend selection and building the
//! [`App`]. Runs once per process (Lambda init or local server start), never per request.
//!
//! Least privilege for the signing keys: only the process that signs (`OAUTH_KEYS=secretsmanager`)
//! reads the private keys; verifiers read the public key document (`OAUTH_KEYS=public`), and
//! functions that neither sign nor verify read no keys at all (`OAUTH_KEYS=none`).
use crate::App;
use crate::cached_secret::CachedSecret;
use crate::config::{ConfigError, Settings};
use crate::keys::FormKey;
use crate::keys::{FileKeySource, KeySource, NoKeys, SecretsManagerKeys, SecretsManagerPublicKeys};
use crate::store::{DynamoStore, Stores};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Install the global log subscriber: JSON lines for Lambda (CloudWatch), text locally.
/// `RUST_LOG` sets the level (`error`, `warn`, `info` (default), `debug`, `trace`).
pub fn init_tracing(json: bool) {
    // A level, not per-module directives: the directive parser pulls a regex engine (~1 MB)
    // into every Lambda binary.
    let level = std::env::var("RUST_LOG").ok().and_then(|v| v.parse::<tracing_subscriber::filter::LevelFilter>().ok());
    let level = level.unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    // A second initialisation (tests) is harmless: the first subscriber stays.
    let _ = if json {
        tracing::subscriber::set_global_default(json_subscriber(level, std::io::stdout))
    } else {
        use std::io::IsTerminal;
        tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_max_level(level)
                .with_target(false)
                .with_ansi(std::io::stdout().is_terminal())
                .finish(),
        )
    };
}

/// The JSON log format: one object per line, the event's fields at the top level (`event`,
/// ids, `message`) and the spans it happened in (outermost first: the request's `path` and
/// `source_ip`) under `spans`. Audit events are the lines with an `event` field.
pub fn json_subscriber<W>(
    level: tracing_subscriber::filter::LevelFilter,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false)
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .without_time()
        .finish()
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// SQLite file in this folder.
    Sqlite(PathBuf),
    /// DynamoDB table.
    DynamoDb(String),
    /// No store (`OAUTH_STORE=none`): a verify-only authorizer with `AUTHORIZER_REVOCATION=off`.
    None,
}

/// Where the signing keys live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysChoice {
    /// Generated key file in this folder.
    File(PathBuf),
    /// Secrets Manager secret id (`SIGNING_KEYS_SECRET_ID`): the private keys, which sign.
    SecretsManager(String),
    /// The public key document (a JWK Set) in this Secrets Manager secret
    /// (`PUBLIC_KEYS_SECRET_ID`): verify only, no private key.
    PublicSecret(String),
    /// Keys generated in memory at start (kept for compatibility; prefer [`KeysChoice::None`]).
    Ephemeral,
    /// No keys at all, for functions that never sign or verify (register, authorize): no
    /// backend call and no key generation at start.
    None,
    /// Public keys from a JWKS URL (`AUTHORIZER_JWKS_URL`): a verify-only authorizer.
    JwksUrl(String),
}

/// The backends of a process, from `OAUTH_STORE`/`TABLE_NAME`, `OAUTH_KEYS`/
/// `SIGNING_KEYS_SECRET_ID`/`PUBLIC_KEYS_SECRET_ID`, `OAUTH_DATA_DIR`,
/// `REGISTRATION_TOKEN_SECRET_ID` and `FORM_KEY_SECRET_ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backends {
    /// The store.
    pub store: StoreChoice,
    /// The keys.
    pub keys: KeysChoice,
    /// The public key document (`PUBLIC_KEYS_SECRET_ID`): read by `OAUTH_KEYS=public`, and
    /// kept in step by [`bootstrap`] when the private keys are in Secrets Manager.
    pub public_keys_secret: Option<String>,
    /// A Secrets Manager secret holding the registration token (overrides
    /// `OAUTH_REGISTRATION_TOKEN`; re-read every `KEYS_CACHE_SECONDS`).
    pub registration_token_secret: Option<String>,
    /// A Secrets Manager secret whose value (32 characters or more) keys the login form's MAC
    /// (`FORM_KEY_SECRET_ID`); without it the MAC key is derived from the private keys.
    pub form_key_secret: Option<String>,
    /// Seconds between scheduled reloads of keys and of the registration token
    /// (`KEYS_CACHE_SECONDS`, default 300; Secrets Manager and JWKS URL only).
    pub keys_cache_seconds: i64,
}

/// The backend variables, for `--help` and docs.
pub const BACKEND_VARIABLES: &[&str] = &[
    "OAUTH_STORE",
    "TABLE_NAME",
    "OAUTH_KEYS",
    "SIGNING_KEYS_SECRET_ID",
    "PUBLIC_KEYS_SECRET_ID",
    "OAUTH_DATA_DIR",
    "REGISTRATION_TOKEN_SECRET_ID",
    "FORM_KEY_SECRET_ID",
    "KEYS_CACHE_SECONDS",
];

impl Backends {
    /// Read the backend choice. `aws_default` picks DynamoDB and Secrets Manager when
    /// nothing is set (Lambda); otherwise SQLite and file keys (local server).
    ///
    /// # Errors
    /// An unknown choice, or a missing table name or secret id.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>, aws_default: bool) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let data_dir = PathBuf::from(
            get("OAUTH_DATA_DIR")
                .unwrap_or_else(|| if aws_default { "/tmp/oauth-data".into() } else { "./.oauth-data".into() }),
        );
        // An authorizer told not to check revocation needs no table.
        let no_revocation = get("AUTHORIZER_REVOCATION").as_deref() == Some("off") && get("TABLE_NAME").is_none();
        let default_store = match (aws_default, no_revocation) {
            (true, true) => "none",
            (true, false) => "dynamodb",
            (false, _) => "sqlite",
        };
        let store = match get("OAUTH_STORE").as_deref().unwrap_or(default_store) {
            "sqlite" => StoreChoice::Sqlite(data_dir.clone()),
            "dynamodb" => StoreChoice::DynamoDb(get("TABLE_NAME").ok_or(ConfigError::Missing("TABLE_NAME"))?),
            "none" => StoreChoice::None,
            other => {
                return Err(ConfigError::Invalid {
                    name: "OAUTH_STORE",
                    reason: format!("{other:?} is not sqlite, dynamodb or none"),
                });
            }
        };
        let public_keys_secret = get("PUBLIC_KEYS_SECRET_ID");
        let keys = match get("OAUTH_KEYS").as_deref().unwrap_or(if aws_default { "secretsmanager" } else { "file" }) {
            "file" => KeysChoice::File(data_dir),
            "secretsmanager" => KeysChoice::SecretsManager(
                get("SIGNING_KEYS_SECRET_ID").ok_or(ConfigError::Missing("SIGNING_KEYS_SECRET_ID"))?,
            ),
            "public" => KeysChoice::PublicSecret(
                public_keys_secret.clone().ok_or(ConfigError::Missing("PUBLIC_KEYS_SECRET_ID"))?,
            ),
            "ephemeral" => KeysChoice::Ephemeral,
            "none" => KeysChoice::None,
            "jwks" => {
                KeysChoice::JwksUrl(get("AUTHORIZER_JWKS_URL").ok_or(ConfigError::Missing("AUTHORIZER_JWKS_URL"))?)
            }
            other => {
                return Err(ConfigError::Invalid {
                    name: "OAUTH_KEYS",
                    reason: format!("{other:?} is not file, secretsmanager, public, none, ephemeral or jwks"),
                });
            }
        };
        let keys_cache_seconds = match get("KEYS_CACHE_SECONDS") {
            None => 300,
            Some(v) => {
                v.parse::<i64>().ok().filter(|n| (10..=86_400).contains(n)).ok_or_else(|| ConfigError::Invalid {
                    name: "KEYS_CACHE_SECONDS",
                    reason: format!("{v:?} is not a whole number between 10 and 86400"),
                })?
            }
        };
        Ok(Self {
            store,
            keys,
            public_keys_secret,
            registration_token_secret: get("REGISTRATION_TOKEN_SECRET_ID"),
            form_key_secret: get("FORM_KEY_SECRET_ID"),
            keys_cache_seconds,
        })
    }

    /// Whether any AWS service is used (then the SDK configuration is loaded).
    pub fn uses_aws(&self) -> bool {
        matches!(self.store, StoreChoice::DynamoDb(_))
            || matches!(self.keys, KeysChoice::SecretsManager(_) | KeysChoice::PublicSecret(_))
            || self.registration_token_secret.is_some()
            || self.form_key_secret.is_some()
    }

    /// Whether the keys hold private keys every process of the deployment shares (then the
    /// login form's MAC key may be derived from them when `FORM_KEY_SECRET_ID` is not set).
    pub fn shares_private_keys(&self) -> bool {
        matches!(self.keys, KeysChoice::File(_) | KeysChoice::SecretsManager(_))
    }
}

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
            Stores::all(Arc::new(crate::store::SqliteStore::open(&dir.join("oauth.db"))?))
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
    let form_key = match (&backends.form_key_secret, &sm) {
        (Some(id), Some(sm)) => {
            let source = Arc::new(crate::aws::SecretsManagerFormKey::new(sm.clone(), id.clone()));
            let now = App::system_clock().now().unix_timestamp();
            FormKey::rotating(id.clone(), source, backends.keys_cache_seconds, now)
                .await
                .context("Invalid configuration")?
        }
        // Every process reading the same private keys derives the same MAC key from them.
        _ if backends.shares_private_keys() => FormKey::from_key_set(),
        // No private key shared with other processes: random here (the authorize function
        // refuses to start with it: see `http::lambda::run`).
        _ => FormKey::per_process().context("Failed to make the login form's MAC key")?,
    };
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
    let app = App::with_key_ring_alg(settings, stores, source, ttl, clock, can_sign)
        .await
        .context("Failed to load the signing keys")?
        .with_form_key(form_key);
    Ok(match registration {
        Some(secret) => app.with_registration_secret(secret),
        None => app,
    })
}

/// Build the app of a Lambda function from its environment: DynamoDB and Secrets Manager
/// unless `OAUTH_STORE`/`OAUTH_KEYS` say otherwise (`OAUTH_KEYS=none` for functions that
/// never sign or verify, `public` for those that only verify, `jwks` for an authorizer in
/// another account).
///
/// # Errors
/// Invalid configuration or unusable backends; the cold start fails with the reason.
pub async fn app_from_env() -> anyhow::Result<App> {
    let settings = Settings::from_env().context("Invalid configuration")?;
    let backends = Backends::from_lookup(|k| std::env::var(k).ok(), true).context("Invalid configuration")?;
    build_app(settings, &backends).await
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

    #[test]
    fn lambda_defaults_to_aws_and_local_to_embedded() -> Result<(), ConfigError> {
        let local = Backends::from_lookup(lookup(&[]), false)?;
        assert_eq!(local.store, StoreChoice::Sqlite("./.oauth-data".into()));
        assert_eq!(local.keys, KeysChoice::File("./.oauth-data".into()));
        assert!(!local.uses_aws());
        let lambda = Backends::from_lookup(lookup(&[("TABLE_NAME", "t"), ("SIGNING_KEYS_SECRET_ID", "k")]), true)?;
        assert_eq!(lambda.store, StoreChoice::DynamoDb("t".into()));
        assert_eq!(lambda.keys, KeysChoice::SecretsManager("k".into()));
        // As the template configures the register function and a cross-account authorizer.
        let register = Backends::from_lookup(lookup(&[("TABLE_NAME", "t"), ("OAUTH_KEYS", "ephemeral")]), true)?;
        assert_eq!(register.keys, KeysChoice::Ephemeral);
        let remote = Backends::from_lookup(
            lookup(&[
                ("TABLE_NAME", "t"),
                ("OAUTH_KEYS", "jwks"),
                ("AUTHORIZER_JWKS_URL", "https://as.example/.well-known/jwks.json"),
            ]),
            true,
        )?;
        assert_eq!(remote.keys, KeysChoice::JwksUrl("https://as.example/.well-known/jwks.json".into()));
        Ok(())
    }

    #[test]
    fn missing_or_unknown_backend_settings_fail_by_name() {
        type Vars = &'static [(&'static str, &'static str)];
        let cases: [(Vars, bool, &str); 8] = [
            (&[], true, "TABLE_NAME"),
            (&[("TABLE_NAME", "t")], true, "SIGNING_KEYS_SECRET_ID"),
            (&[("OAUTH_STORE", "redis")], false, "OAUTH_STORE"),
            (&[("OAUTH_KEYS", "vault")], false, "OAUTH_KEYS"),
            (&[("OAUTH_KEYS", "jwks")], false, "AUTHORIZER_JWKS_URL"),
            (&[("TABLE_NAME", "t"), ("OAUTH_KEYS", "public")], true, "PUBLIC_KEYS_SECRET_ID is not set"),
            // The private secret's id does not stand in for the public one.
            (
                &[("TABLE_NAME", "t"), ("OAUTH_KEYS", "public"), ("SIGNING_KEYS_SECRET_ID", "k")],
                true,
                "PUBLIC_KEYS_SECRET_ID",
            ),
            (&[("OAUTH_KEYS", "nothing")], false, "public, none"),
        ];
        for (vars, aws, want) in cases {
            let err = Backends::from_lookup(lookup(vars), aws).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(want), "{vars:?}: {err}");
        }
    }

    #[test]
    fn least_privilege_key_choices_are_read() -> Result<(), ConfigError> {
        // As the template configures each function.
        let token = Backends::from_lookup(
            lookup(&[("TABLE_NAME", "t"), ("OAUTH_KEYS", "secretsmanager"), ("SIGNING_KEYS_SECRET_ID", "private")]),
            true,
        )?;
        assert_eq!(token.keys, KeysChoice::SecretsManager("private".into()));
        assert!(token.shares_private_keys() && token.public_keys_secret.is_none() && token.form_key_secret.is_none());
        let verifier = Backends::from_lookup(
            lookup(&[("TABLE_NAME", "t"), ("OAUTH_KEYS", "public"), ("PUBLIC_KEYS_SECRET_ID", "public-keys")]),
            true,
        )?;
        assert_eq!(verifier.keys, KeysChoice::PublicSecret("public-keys".into()));
        assert_eq!(verifier.public_keys_secret.as_deref(), Some("public-keys"));
        assert!(!verifier.shares_private_keys());
        let authorize = Backends::from_lookup(
            lookup(&[("TABLE_NAME", "t"), ("OAUTH_KEYS", "none"), ("FORM_KEY_SECRET_ID", "form-key")]),
            true,
        )?;
        assert_eq!(authorize.keys, KeysChoice::None);
        assert_eq!(authorize.form_key_secret.as_deref(), Some("form-key"));
        assert!(!authorize.shares_private_keys());
        let register = Backends::from_lookup(
            lookup(&[("TABLE_NAME", "t"), ("OAUTH_KEYS", "none"), ("REGISTRATION_TOKEN_SECRET_ID", "reg")]),
            true,
        )?;
        assert_eq!((register.keys, register.registration_token_secret.as_deref()), (KeysChoice::None, Some("reg")));
        // Blank values count as unset.
        let blank = Backends::from_lookup(lookup(&[("OAUTH_KEYS", "none"), ("FORM_KEY_SECRET_ID", " ")]), false)?;
        assert_eq!(blank.form_key_secret, None);
        Ok(())
    }

    #[test]
    fn public_keys_and_a_form_key_secret_need_aws_and_no_keys_need_nothing() -> Result<(), ConfigError> {
        let local = |vars| Backends::from_lookup(lookup(vars), false);
        assert!(!local(&[("OAUTH_KEYS", "none")])?.uses_aws(), "no keys: no AWS call");
        assert!(!local(&[("OAUTH_KEYS", "ephemeral")])?.uses_aws());
        assert!(local(&[("OAUTH_KEYS", "public"), ("PUBLIC_KEYS_SECRET_ID", "p")])?.uses_aws());
        assert!(local(&[("OAUTH_KEYS", "none"), ("FORM_KEY_SECRET_ID", "f")])?.uses_aws());
        assert!(local(&[("FORM_KEY_SECRET_ID", "f")])?.uses_aws(), "file keys with a form-key secret");
        Ok(())
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn no_keys_build_an_app_without_aws_that_cannot_sign_or_serve_the_login_form() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("oauth-runtime-none-{}", std::process::id()));
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
