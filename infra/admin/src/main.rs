//! `oauth-admin`: bootstrap and operate the AWS side, against a real account or an emulator
//! (the standard AWS environment; `AWS_ENDPOINT_URL` for moto).
//!
//!   oauth-admin bootstrap     create the table, the key secret (and its public key document), the
//!                             registration-token and form-key secrets when missing
//!   oauth-admin rotate-keys   put a new key-set version (it signs; the old one stays in the JWKS),
//!                             publishing its public keys first when a public key document is named
//!   oauth-admin create-client register a client directly in the table and print it (secret shown once)
//!   oauth-admin registration-token  print the registration token
use anyhow::{Context, bail};
use oauth_core::oauth::client_registration::{ClientMetadata, create_client};
use oauth_core::store::DynamoStore;
use serde_json::{Value, json};

const HELP: &str = "oauth-admin: bootstrap and operate the AWS deployment

USAGE:
  oauth-admin bootstrap [--table T] [--keys-secret S] [--public-keys-secret P] [--registration-secret R]
                        [--form-key-secret F]
  oauth-admin rotate-keys [--keys-secret S] [--public-keys-secret P] [--publish-delay SECONDS]
  oauth-admin create-client [--table T] [--name NAME] [--redirect-uri URI]... [--grant-type G]...
                            [--scope \"a b\"] [--auth-method client_secret_basic|client_secret_post|none]
  oauth-admin registration-token [--registration-secret R]

Defaults come from TABLE_NAME, SIGNING_KEYS_SECRET_ID, PUBLIC_KEYS_SECRET_ID,
REGISTRATION_TOKEN_SECRET_ID and FORM_KEY_SECRET_ID. With a public key document (P), the
public keys of the current and previous key sets are kept there for the functions that only
verify; new keys are published before they sign: they start signing --publish-delay
(KEY_PUBLISH_DELAY_SECONDS, default 600) seconds later; 0 replaces a leaked key at once.
AWS access uses the standard environment (AWS_REGION, credentials, AWS_ENDPOINT_URL).";

struct Args {
    command: String,
    flags: Vec<(String, String)>,
}

impl Args {
    fn parse() -> anyhow::Result<Self> {
        let mut it = std::env::args().skip(1);
        let command = it.next().unwrap_or_else(|| "--help".into());
        if command == "--help" || command == "-h" {
            println!("{HELP}");
            std::process::exit(0);
        }
        let mut flags = Vec::new();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else { bail!("unexpected argument {a:?}; see --help") };
            let value = it.next().with_context(|| format!("--{name} needs a value"))?;
            flags.push((name.to_owned(), value));
        }
        Ok(Self { command, flags })
    }

    fn one(&self, name: &str, env: &str) -> Option<String> {
        self.flags.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone()).or_else(|| std::env::var(env).ok())
    }

    fn need(&self, name: &str, env: &str) -> anyhow::Result<String> {
        self.one(name, env).with_context(|| format!("--{name} (or {env}) is required"))
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.flags.iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect()
    }

    fn check_known(&self, known: &[&str]) -> anyhow::Result<()> {
        match self.flags.iter().find(|(n, _)| !known.contains(&n.as_str())) {
            Some((n, _)) => bail!("unknown option --{n} for {}; see --help", self.command),
            None => Ok(()),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse()?;
    let cfg = oauth_core::aws::sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    let out: Value = match args.command.as_str() {
        "bootstrap" => {
            args.check_known(&[
                "table",
                "keys-secret",
                "public-keys-secret",
                "registration-secret",
                "form-key-secret",
            ])?;
            let table = args.need("table", "TABLE_NAME")?;
            let keys = args.need("keys-secret", "SIGNING_KEYS_SECRET_ID")?;
            let public = args.one("public-keys-secret", "PUBLIC_KEYS_SECRET_ID");
            let ddb = aws_sdk_dynamodb::Client::new(&cfg);
            let table_created = oauth_core::store::dynamodb::ensure_table(&ddb, &table).await?;
            let ensured =
                oauth_core::aws::ensure_key_secret(&sm, &keys, public.as_deref(), &oauth_core::aws::KEY_SET_ALGS)
                    .await?;
            let public_keys = match (&public, ensured.public) {
                (Some(id), Some(done)) => json!({"secret": id, "result": published(done)}),
                _ => Value::Null,
            };
            let registration = match args.one("registration-secret", "REGISTRATION_TOKEN_SECRET_ID") {
                Some(id) => json!({"secret": id, "created": oauth_core::aws::ensure_token_secret(&sm, &id).await?}),
                None => Value::Null,
            };
            let form_key = match args.one("form-key-secret", "FORM_KEY_SECRET_ID") {
                Some(id) => json!({"secret": id, "created": oauth_core::aws::ensure_form_key_secret(&sm, &id).await?}),
                None => Value::Null,
            };
            json!({
                "table": {"name": table, "created": table_created},
                "signing_keys": {"secret": keys, "created": ensured.created},
                "public_keys": public_keys,
                "registration_token": registration,
                "form_key": form_key,
            })
        }
        "rotate-keys" => {
            args.check_known(&["keys-secret", "public-keys-secret", "publish-delay"])?;
            let keys = args.need("keys-secret", "SIGNING_KEYS_SECRET_ID")?;
            let public = args.one("public-keys-secret", "PUBLIC_KEYS_SECRET_ID");
            let delay = oauth_core::config::publish_delay(|_| args.one("publish-delay", "KEY_PUBLISH_DELAY_SECONDS"))?;
            let algs = &oauth_core::aws::KEY_SET_ALGS;
            let kid = oauth_core::aws::rotate_key_secret(&sm, &keys, public.as_deref(), algs, delay).await?;
            json!({"secret": keys, "public_keys_secret": public, "new_es256_kid": kid})
        }
        "create-client" => {
            args.check_known(&["table", "name", "redirect-uri", "grant-type", "scope", "auth-method"])?;
            let table = args.need("table", "TABLE_NAME")?;
            let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&cfg), table);
            let grants = args.all("grant-type");
            let metadata = ClientMetadata {
                client_name: args.one("name", "").map(Value::from),
                redirect_uris: Some(Value::from(args.all("redirect-uri"))),
                grant_types: (!grants.is_empty()).then(|| Value::from(grants)),
                response_types: None,
                token_endpoint_auth_method: args.one("auth-method", "").map(Value::from),
                scope: args.one("scope", "").map(Value::from),
                id_token_signed_response_alg: None,
            };
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            // The operator made it: trusted.
            let created = create_client(&store, &metadata, now, true)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code(), e.description()))?;
            serde_json::to_value(created)?
        }
        "registration-token" => {
            args.check_known(&["registration-secret"])?;
            let id = args.need("registration-secret", "REGISTRATION_TOKEN_SECRET_ID")?;
            json!({"secret": id, "token": oauth_core::aws::read_secret(&sm, &id).await?})
        }
        other => bail!("unknown command {other:?}; see --help"),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// How the admin output names what happened to the public key document.
fn published(p: oauth_core::aws::Published) -> &'static str {
    match p {
        oauth_core::aws::Published::Created => "created",
        oauth_core::aws::Published::Updated => "updated",
        oauth_core::aws::Published::Unchanged => "unchanged",
        oauth_core::aws::Published::NothingToPublish => "nothing to publish yet",
    }
}
