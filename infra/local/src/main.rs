//! `oauth-local`: run the OAuth server on 127.0.0.1:3000 with an embedded store and
//! generated keys, or against DynamoDB and Secrets Manager (an emulator or a real account).
//! Flags (each with an environment twin; `--help` lists them) are those of docs/API.md.
use anyhow::Context;
use oauth_core::config::{BACKEND_VARIABLES, Backends, KeysChoice, StoreChoice};
use oauth_core::config::{Settings, VARIABLES};
use std::collections::HashMap;
use std::sync::Arc;

/// A long-running multi-threaded server: mimalloc's per-thread free lists cost less per
/// request than glibc's malloc (bench/README.md). The Lambda functions keep the system
/// allocator (size and cold start first).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The flags; each has an environment twin, and an empty value counts as unset.
#[derive(clap::Parser)]
#[command(
    name = "oauth-local",
    about = "The OAuth 2.0 server in one local process",
    after_help = "OAUTH_REGISTRATION_TOKEN: when set, POST /register_client needs it as a Bearer token.\n\
                  AWS_ENDPOINT_URL, AWS_REGION and credentials: the standard AWS environment (emulators too).\n\
                  Other settings (token lifetimes, throttling, RUST_LOG): see the README."
)]
struct Args {
    /// Listen address [default: 127.0.0.1:3000]
    #[arg(long, env = "OAUTH_ADDR", value_name = "HOST:PORT")]
    addr: Option<String>,
    /// Issuer URL [default: http://<addr>]
    #[arg(long, env = "ISSUER", value_name = "URL")]
    issuer: Option<String>,
    /// The SQLite file and generated keys [default: ./.oauth-data]
    #[arg(long, env = "OAUTH_DATA_DIR", value_name = "DIR")]
    data_dir: Option<String>,
    /// sqlite (default) or dynamodb (uses TABLE_NAME)
    #[arg(long, env = "OAUTH_STORE", value_name = "STORE")]
    store: Option<String>,
    /// file (default), secretsmanager (uses SIGNING_KEYS_SECRET_ID), public (verify only,
    /// PUBLIC_KEYS_SECRET_ID) or none (no tokens)
    #[arg(long, env = "OAUTH_KEYS", value_name = "KEYS")]
    keys: Option<String>,
    /// Create the DynamoDB table and a first key set when missing (and PUBLIC_KEYS_SECRET_ID,
    /// FORM_KEY_SECRET_ID when set)
    #[arg(long)]
    bootstrap: bool,
    /// A JSON file of resource servers to register (or replace) at start: an array of
    /// {"id", "name", "scopes": [{"scope", "description"}], "access_token_ttl"} (docs/API.md)
    #[arg(long, env = "OAUTH_RESOURCES_FILE", value_name = "FILE")]
    resources: Option<std::path::PathBuf>,
    /// A JSON file of upstream identity providers for "Continue with ..." (the value of
    /// FEDERATION_PROVIDERS, which it replaces; docs/API.md, "Federation")
    #[arg(long, env = "OAUTH_FEDERATION_FILE", value_name = "FILE")]
    federation: Option<std::path::PathBuf>,
}

impl Args {
    /// The value of one configuration variable: its flag (or the flag's environment twin),
    /// else the environment; empty means unset.
    fn get(&self, name: &str) -> Option<String> {
        let flag = match name {
            "OAUTH_ADDR" => &self.addr,
            "ISSUER" => &self.issuer,
            "OAUTH_DATA_DIR" => &self.data_dir,
            "OAUTH_STORE" => &self.store,
            "OAUTH_KEYS" => &self.keys,
            _ => return std::env::var(name).ok().filter(|v| !v.is_empty()),
        };
        flag.clone().filter(|v| !v.is_empty())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Until the end of main: a clean shutdown writes every pending log line.
    let _log = oauth_core::telemetry::init_tracing_batched(std::env::var("LOG_FORMAT").is_ok_and(|v| v == "json"));
    // Metric lines as the Lambda functions write them, only when asked (bench/load.sh measures
    // their cost this way).
    if let Ok(namespace) = std::env::var("METRICS_NAMESPACE") {
        oauth_core::telemetry::metrics::init_batched(&namespace, "oauth-local", _log.writer());
    }
    let args = <Args as clap::Parser>::parse();
    let addr: std::net::SocketAddr =
        args.get("OAUTH_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into()).parse().context("Invalid --addr")?;
    let mut vars: HashMap<&str, String> =
        VARIABLES.iter().chain(BACKEND_VARIABLES).filter_map(|k| args.get(k).map(|v| (*k, v))).collect();
    vars.entry("ISSUER").or_insert(format!("http://{addr}"));
    if let Some(path) = &args.federation {
        let text = std::fs::read_to_string(path).with_context(|| format!("Failed to read {}", path.display()))?;
        vars.insert("FEDERATION_PROVIDERS", text);
    }
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).context("Invalid configuration")?;
    let backends = Backends::from_lookup(|k| vars.get(k).cloned(), false).context("Invalid configuration")?;
    let issuer = settings.issuer.clone();
    if args.bootstrap {
        oauth_core::startup::bootstrap(&backends).await?;
    }
    let app = Arc::new(oauth_core::startup::build_app(settings, &backends).await?);
    if let Some(path) = &args.resources {
        let text = std::fs::read_to_string(path).with_context(|| format!("Failed to read {}", path.display()))?;
        let servers = oauth_core::catalog::parse_list(&text)
            .map_err(|why| anyhow::anyhow!("{} is not a list of resource servers: {why}", path.display()))?;
        for server in &servers {
            app.resources
                .put(server)
                .await
                .map_err(|e| anyhow::anyhow!("resource server {}: {}", server.id, e.description()))?;
            println!("resource:  {} ({})", server.id, server.name);
        }
    }
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("Failed to listen on {addr}"))?;
    let bound = listener.local_addr()?;
    println!("issuer:    {issuer}");
    for up in app.federation.all() {
        let callback = oauth_core::oauth::federation::callback_uri(&app, &up.config.id);
        println!("provider:  {} ({}), redirect URI to register there: {callback}", up.config.id, up.config.name);
    }
    match &backends.store {
        StoreChoice::Sqlite(dir) => println!("data:      {} (SQLite)", dir.join("oauth.db").display()),
        StoreChoice::DynamoDb(table) => println!("data:      DynamoDB table {table}"),
        StoreChoice::None => println!("data:      none (every request that needs data fails)"),
    }
    match &backends.keys {
        KeysChoice::File(dir) => println!("keys:      {}", dir.join("signing-keys.json").display()),
        KeysChoice::SecretsManager(id) => println!("keys:      Secrets Manager secret {id}"),
        KeysChoice::PublicSecret(id) => {
            println!("keys:      public keys from Secrets Manager secret {id} (verify only)")
        }
        KeysChoice::Ephemeral => println!("keys:      generated in memory (gone on exit)"),
        KeysChoice::None => println!("keys:      none (this process cannot sign or verify tokens)"),
        KeysChoice::JwksUrl(url) => println!("keys:      public keys from {url} (verify only)"),
    }
    if !app.requires_registration_token() {
        println!("client registration is OPEN (set OAUTH_REGISTRATION_TOKEN to require a token)");
    }
    println!(
        "try:       curl -s -X POST http://{bound}/register_client -H 'Content-Type: application/json' -d '{{\"grant_types\":[\"client_credentials\"],\"scope\":\"data:read data:write\"}}'"
    );
    // Signal handlers before the readiness line, so a script may stop us as soon as it reads it.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let shutdown = async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
        println!("shutting down");
    };
    // Last, so scripts can wait for it: the socket is bound and accepting from here on.
    println!("listening on http://{bound}");
    oauth_local::serve(app, listener, shutdown).await
}
