//! `oauth-admin`: bootstrap and operate the AWS side, against a real account or an emulator
//! (the standard AWS environment; `AWS_ENDPOINT_URL` for moto).
//!
//!   oauth-admin bootstrap     create the table, the key secret (and its public key document), the
//!                             registration-token and form-key secrets when missing
//!   oauth-admin rotate-keys   put a new key-set version (it signs; the old one stays in the JWKS),
//!                             publishing its public keys first when a public key document is named
//!   oauth-admin create-client register a client directly in the table and print it (secret shown once)
//!   oauth-admin put-resource  register (or replace) a resource server: an API tokens are issued for
//!   oauth-admin list-resources / delete-resource
//!   oauth-admin registration-token  print the registration token
//!   oauth-admin create-user / disable-user / enable-user / delete-user / reset-password
//!   oauth-admin list-clients / delete-client
use anyhow::Result;
use clap::{Parser, Subcommand};
use oauth_core::catalog::{Catalog, Resources};
use oauth_core::domain::{ResourceId, ResourceServer, Scope, ScopeDef};
use oauth_core::oauth::OAuthError;
use oauth_core::oauth::admin;
use oauth_core::oauth::client_registration::{ClientMetadata, create_client};
use oauth_core::store::{DynamoStore, ResourceStore, Stores};
use serde_json::{Value, json};
use std::sync::Arc;

/// Bootstrap and operate the AWS deployment.
#[derive(Parser)]
#[command(
    name = "oauth-admin",
    arg_required_else_help = true,
    after_help = "The flags naming a table or a secret have an environment twin ([env: ...]). With a\n\
                  public key document, the public keys of the current and previous key sets are kept\n\
                  there for the functions that only verify; new keys are published before they sign.\n\
                  AWS access uses the standard environment (AWS_REGION, credentials, AWS_ENDPOINT_URL).\n\
                  The output is JSON on stdout."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the table, the key secret (and its public key document), the registration-token
    /// and form-key secrets when missing
    Bootstrap {
        /// The DynamoDB table
        #[arg(long, env = "TABLE_NAME")]
        table: String,
        /// The signing-key secret
        #[arg(long, env = "SIGNING_KEYS_SECRET_ID")]
        keys_secret: String,
        /// The public key document (for the functions that only verify)
        #[arg(long, env = "PUBLIC_KEYS_SECRET_ID")]
        public_keys_secret: Option<String>,
        /// The registration-token secret
        #[arg(long, env = "REGISTRATION_TOKEN_SECRET_ID")]
        registration_secret: Option<String>,
        /// The login form's key secret
        #[arg(long, env = "FORM_KEY_SECRET_ID")]
        form_key_secret: Option<String>,
    },
    /// Put a new key-set version (it signs; the old one stays in the JWKS), publishing its
    /// public keys first when a public key document is named
    RotateKeys {
        /// The signing-key secret
        #[arg(long, env = "SIGNING_KEYS_SECRET_ID")]
        keys_secret: String,
        /// The public key document
        #[arg(long, env = "PUBLIC_KEYS_SECRET_ID")]
        public_keys_secret: Option<String>,
        /// Seconds between publishing the new public key and signing with it [default: 600];
        /// 0 replaces a leaked key at once
        #[arg(long, env = "KEY_PUBLISH_DELAY_SECONDS", value_name = "SECONDS")]
        publish_delay: Option<String>,
    },
    /// Register a client directly in the table and print it (the secret is shown once)
    CreateClient {
        /// The DynamoDB table
        #[arg(long, env = "TABLE_NAME")]
        table: String,
        /// client_name
        #[arg(long)]
        name: Option<String>,
        /// A redirect URI (repeat for several)
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// A grant type (repeat for several)
        #[arg(long = "grant-type", value_name = "GRANT")]
        grant_types: Vec<String>,
        /// Space-separated scopes
        #[arg(long)]
        scope: Option<String>,
        /// client_secret_basic (default), client_secret_post or none
        #[arg(long)]
        auth_method: Option<String>,
        /// Where users may be sent after signing out (repeat for several)
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// The issuer (its built-in API's scopes are known without it; needed by no check here)
        #[arg(long, env = "ISSUER")]
        issuer: Option<String>,
    },
    /// Register (or replace) a resource server: the API a token is for (its `aud`), its name
    /// and the scopes it defines. Every function sees the change within RESOURCE_CACHE_SECONDS.
    PutResource {
        /// The DynamoDB table
        #[arg(long, env = "TABLE_NAME")]
        table: String,
        /// The issuer (its built-in API, `<issuer>/api`, cannot be replaced)
        #[arg(long, env = "ISSUER")]
        issuer: String,
        /// The resource identifier: an https URI (http on loopback), no fragment
        #[arg(long, value_name = "URI")]
        id: String,
        /// The name the consent page and the metadata show
        #[arg(long)]
        name: String,
        /// A scope it defines, with its words for the consent page (repeat for several)
        #[arg(long = "scope", value_name = "SCOPE=DESCRIPTION")]
        scopes: Vec<String>,
        /// Lifetime of its access tokens in seconds (60 to 86400)
        #[arg(long, default_value_t = 900)]
        access_token_ttl: i64,
    },
    /// Create a user (also with public sign-up off); the password is read from stdin with
    /// --password-stdin, else generated and printed once
    CreateUser {
        /// The DynamoDB table
        #[arg(long, env = "TABLE_NAME")]
        table: String,
        /// The username
        #[arg(long)]
        username: String,
        /// An e-mail address
        #[arg(long)]
        email: Option<String>,
        /// Read the password from stdin (one line) instead of generating one
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: no sign-in any more; its sessions, refresh tokens and consents end
    DisableUser {
        /// The DynamoDB table
        #[arg(long, env = "TABLE_NAME")]
        table: String,
        /// The user: its sub (usr_...) or username
        #[arg(long)]
        user: String,
    },
    /// Enable a disabled user again
    EnableUser {
        /// The DynamoDB table
        #[arg(long, env = "TABLE_NAME")]
        table: String,
        /// The user: its sub (usr_...) or username
        #[arg(long)]
        user: String,
    },
    /// Delete a user after ending its sessions, refresh tokens and consents; its username
    /// becomes free
    DeleteUser {
        /// The DynamoDB table
        #[arg(long, env = "TABLE_NAME")]
        table: String,
        /// The user: its sub (usr_...) or username
        #[arg(long)]
        user: String,
    },
    /// Set a user's password (read from stdin with --password-stdin, else generated and
    /// printed once); its sessions and refresh tokens end
    ResetPassword {
        /// The DynamoDB table
        #[arg(long, env = "TABLE_NAME")]
        table: String,
        /// The user: its sub (usr_...) or username
        #[arg(long)]
        user: String,
        /// Read the password from stdin (one line) instead of generating one
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the registered clients (without their secret hashes)
    ListClients {
        /// The DynamoDB table
        #[arg(long, env = "TABLE_NAME")]
        table: String,
    },
    /// Delete a client: it can no longer authenticate (its access tokens live until they expire)
    DeleteClient {
        /// The DynamoDB table
        #[arg(long, env = "TABLE_NAME")]
        table: String,
        /// The client id
        #[arg(long)]
        client_id: String,
    },
    /// List the registered resource servers
    ListResources {
        /// The DynamoDB table
        #[arg(long, env = "TABLE_NAME")]
        table: String,
    },
    /// Remove a registered resource server: no new tokens for it (grants naming it get
    /// invalid_target), and introspection reports its tokens inactive (an authorizer guarding
    /// it accepts them until they expire)
    DeleteResource {
        /// The DynamoDB table
        #[arg(long, env = "TABLE_NAME")]
        table: String,
        /// The resource identifier
        #[arg(long, value_name = "URI")]
        id: String,
    },
    /// Print the registration token
    RegistrationToken {
        /// The registration-token secret
        #[arg(long, env = "REGISTRATION_TOKEN_SECRET_ID")]
        registration_secret: String,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let cfg = oauth_core::aws::sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    let out: Value = match cli.command {
        Command::Bootstrap { table, keys_secret, public_keys_secret, registration_secret, form_key_secret } => {
            let ddb = aws_sdk_dynamodb::Client::new(&cfg);
            let table_created = oauth_core::store::dynamodb::ensure_table(&ddb, &table).await?;
            let public = public_keys_secret.as_deref();
            let ensured =
                oauth_core::aws::ensure_key_secret(&sm, &keys_secret, public, &oauth_core::aws::KEY_SET_ALGS).await?;
            let public_keys = match (public, ensured.public) {
                (Some(id), Some(done)) => json!({"secret": id, "result": published(done)}),
                _ => Value::Null,
            };
            let registration = match registration_secret {
                Some(id) => json!({"secret": id, "created": oauth_core::aws::ensure_token_secret(&sm, &id).await?}),
                None => Value::Null,
            };
            let form_key = match form_key_secret {
                Some(id) => json!({"secret": id, "created": oauth_core::aws::ensure_form_key_secret(&sm, &id).await?}),
                None => Value::Null,
            };
            json!({
                "table": {"name": table, "created": table_created},
                "signing_keys": {"secret": keys_secret, "created": ensured.created},
                "public_keys": public_keys,
                "registration_token": registration,
                "form_key": form_key,
            })
        }
        Command::RotateKeys { keys_secret, public_keys_secret, publish_delay } => {
            let delay = oauth_core::config::publish_delay(|_| publish_delay.clone())?;
            let algs = &oauth_core::aws::KEY_SET_ALGS;
            let public = public_keys_secret.as_deref();
            let kid = oauth_core::aws::rotate_key_secret(&sm, &keys_secret, public, algs, delay).await?;
            json!({"secret": keys_secret, "public_keys_secret": public_keys_secret, "new_es256_kid": kid})
        }
        Command::CreateClient {
            table,
            name,
            redirect_uris,
            grant_types,
            scope,
            auth_method,
            post_logout_redirect_uris,
            issuer,
        } => {
            let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&cfg), table);
            let resources = resources(&store, issuer.as_deref().unwrap_or(PLACEHOLDER_ISSUER))?;
            let catalog = resources.fresh().await?;
            let metadata = ClientMetadata {
                client_name: name.map(Value::from),
                redirect_uris: Some(Value::from(redirect_uris)),
                grant_types: (!grant_types.is_empty()).then(|| Value::from(grant_types)),
                response_types: None,
                token_endpoint_auth_method: auth_method.map(Value::from),
                scope: scope.map(Value::from),
                id_token_signed_response_alg: None,
                post_logout_redirect_uris: (!post_logout_redirect_uris.is_empty())
                    .then(|| Value::from(post_logout_redirect_uris)),
                application_type: None,
                dpop_bound_access_tokens: None,
            };
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            // The operator made it: trusted.
            let created = create_client(&store, &catalog, &metadata, now, true).await.map_err(oauth_error)?;
            serde_json::to_value(created)?
        }
        Command::PutResource { table, issuer, id, name, scopes, access_token_ttl } => {
            let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&cfg), table);
            let server = ResourceServer {
                id: ResourceId::parse(&id).map_err(|why| anyhow::anyhow!("--id: {why}"))?,
                name,
                scopes: scopes.iter().map(|s| scope_def(s)).collect::<Result<_>>()?,
                access_token_ttl,
            };
            resources(&store, &issuer)?.put(&server).await.map_err(oauth_error)?;
            serde_json::to_value(&server)?
        }
        Command::ListResources { table } => {
            let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&cfg), table);
            serde_json::to_value(store.resources().await?)?
        }
        Command::DeleteResource { table, id } => {
            let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&cfg), table);
            let id = ResourceId::parse(&id).map_err(|why| anyhow::anyhow!("--id: {why}"))?;
            json!({"id": id, "deleted": store.delete_resource(&id).await?})
        }
        Command::RegistrationToken { registration_secret } => {
            json!({"secret": registration_secret, "token": oauth_core::aws::read_secret(&sm, &registration_secret).await?})
        }
        Command::CreateUser { table, username, email, password_stdin } => {
            let stores = stores(aws_sdk_dynamodb::Client::new(&cfg), table);
            let (password, shown) = password(password_stdin)?;
            let now = time::OffsetDateTime::now_utc();
            let made =
                admin::create_user(&stores, &username, &password, email.as_deref(), now).await.map_err(oauth_error)?;
            json!({"sub": made.sub, "username": made.username, "password": shown})
        }
        Command::DisableUser { table, user } => {
            let stores = stores(aws_sdk_dynamodb::Client::new(&cfg), table);
            let user = user_named(&stores, &user).await?;
            let ended = admin::disable_user(&stores, &user.sub, time::OffsetDateTime::now_utc()).await?;
            json!({"sub": user.sub, "disabled": true, "ended": ended})
        }
        Command::EnableUser { table, user } => {
            let stores = stores(aws_sdk_dynamodb::Client::new(&cfg), table);
            let user = user_named(&stores, &user).await?;
            admin::enable_user(&stores, &user.sub).await?;
            json!({"sub": user.sub, "disabled": false})
        }
        Command::DeleteUser { table, user } => {
            let stores = stores(aws_sdk_dynamodb::Client::new(&cfg), table);
            let user = user_named(&stores, &user).await?;
            json!({"sub": user.sub, "deleted": admin::delete_user(&stores, &user.sub, time::OffsetDateTime::now_utc()).await?})
        }
        Command::ResetPassword { table, user, password_stdin } => {
            let stores = stores(aws_sdk_dynamodb::Client::new(&cfg), table);
            let user = user_named(&stores, &user).await?;
            let (password, shown) = password(password_stdin)?;
            let ended = admin::reset_password(&stores, &user, &password, time::OffsetDateTime::now_utc())
                .await
                .map_err(oauth_error)?;
            json!({"sub": user.sub, "password": shown, "ended": ended})
        }
        Command::ListClients { table } => {
            serde_json::to_value(admin::list_clients(&stores(aws_sdk_dynamodb::Client::new(&cfg), table)).await?)?
        }
        Command::DeleteClient { table, client_id } => {
            json!({"client_id": client_id, "deleted": stores(aws_sdk_dynamodb::Client::new(&cfg), table).clients.delete_client(&client_id).await?})
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// Every store, on `table`.
fn stores(ddb: aws_sdk_dynamodb::Client, table: String) -> Stores {
    Stores::all(Arc::new(DynamoStore::new(ddb, table)))
}

/// The user `who` names (sub or username), or an error saying there is none.
async fn user_named(stores: &Stores, who: &str) -> Result<oauth_core::domain::User> {
    admin::find_user(stores, who).await?.ok_or_else(|| anyhow::anyhow!("no user {who:?}"))
}

/// The password to set: one line of stdin, or a new random one (then also returned to be
/// printed once).
fn password(from_stdin: bool) -> Result<(String, Option<String>)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        anyhow::ensure!(!line.is_empty(), "no password on stdin");
        return Ok((line, None));
    }
    let generated = oauth_core::crypto::random_token().map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok((generated.clone(), Some(generated)))
}

/// Stands in for the issuer where only the known scopes matter (the built-in API's scopes do
/// not depend on it).
const PLACEHOLDER_ISSUER: &str = "https://issuer.invalid";

fn oauth_error(e: OAuthError) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.code(), e.description())
}

/// The resource servers of `store`, with the built-in API: `API_AUDIENCE` when the
/// deployment sets it (as the functions read it), else `<issuer>/api`.
fn resources(store: &DynamoStore, issuer: &str) -> Result<Resources> {
    let builtin = match std::env::var("API_AUDIENCE").ok().filter(|v| !v.trim().is_empty()) {
        Some(aud) => ResourceId::parse(&aud).map_err(|why| anyhow::anyhow!("API_AUDIENCE: {why}"))?,
        None => ResourceId::parse(&format!("{}/api", issuer.trim_end_matches('/')))
            .map_err(|why| anyhow::anyhow!("--issuer: {why}"))?,
    };
    Ok(Resources::new(Arc::new(store.clone()), Catalog::builtin_at(builtin, 900), 0))
}

/// `SCOPE=DESCRIPTION` (the description defaults to the scope).
fn scope_def(arg: &str) -> Result<ScopeDef> {
    let (scope, description) = arg.split_once('=').unwrap_or((arg, arg));
    let scope = Scope::parse(scope.trim()).ok_or_else(|| anyhow::anyhow!("--scope {arg:?}: not a scope token"))?;
    Ok(ScopeDef { scope, description: description.trim().to_owned() })
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
