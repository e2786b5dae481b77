//! Which backends a process uses (store, keys, secrets), read from its environment with
//! the rest of its configuration.
use super::ConfigError;
use std::path::PathBuf;

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
    /// Load verify-only keys at the first token that needs them rather than at start (the
    /// authorize function: only an `id_token_hint` does). Not a variable: the entry point
    /// sets it.
    pub defer_keys: bool,
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
            defer_keys: false,
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
}
