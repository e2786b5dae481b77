//! `oauth-local`: run the OAuth server on 127.0.0.1:3000 with an embedded store and
//! generated keys, or against DynamoDB and Secrets Manager (an emulator or a real account).
//! Flags (each with an environment twin) are those of docs/API.md.
use anyhow::{Context, bail};
use oauth_core::config::{BACKEND_VARIABLES, Backends, KeysChoice, StoreChoice};
use oauth_core::config::{Settings, VARIABLES};
use std::collections::HashMap;
use std::sync::Arc;

const HELP: &str = "oauth-local: the OAuth 2.0 server in one local process

USAGE: oauth-local [--addr HOST:PORT] [--issuer URL] [--data-dir DIR]
                   [--store sqlite|dynamodb] [--keys file|secretsmanager|public|none] [--bootstrap]

  --addr      / OAUTH_ADDR       listen address (default 127.0.0.1:3000)
  --issuer    / ISSUER           issuer URL (default http://<addr>)
  --data-dir  / OAUTH_DATA_DIR   SQLite file and generated keys (default ./.oauth-data)
  --store     / OAUTH_STORE      sqlite (default) or dynamodb (uses TABLE_NAME)
  --keys      / OAUTH_KEYS       file (default) or secretsmanager (uses SIGNING_KEYS_SECRET_ID);
                                 public (verify only, PUBLIC_KEYS_SECRET_ID) or none (no tokens)
  --bootstrap                    create the DynamoDB table and a first key set when missing
                                 (and PUBLIC_KEYS_SECRET_ID, FORM_KEY_SECRET_ID when set)
  OAUTH_REGISTRATION_TOKEN       when set, POST /register_client needs it as a Bearer token
  AWS_ENDPOINT_URL, AWS_REGION, credentials: the standard AWS environment (emulators too)
  Other settings (token lifetimes, throttling, RUST_LOG): see README";

struct Args {
    vars: HashMap<&'static str, String>,
    bootstrap: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut vars = HashMap::new();
    let mut bootstrap = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let key = match name.as_str() {
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            "--bootstrap" => {
                bootstrap = true;
                continue;
            }
            "--addr" => "OAUTH_ADDR",
            "--issuer" => "ISSUER",
            "--data-dir" => "OAUTH_DATA_DIR",
            "--store" => "OAUTH_STORE",
            "--keys" => "OAUTH_KEYS",
            other => bail!("unknown argument {other:?}; see --help"),
        };
        let value = match inline {
            Some(v) => v,
            None => args.next().with_context(|| format!("{name} needs a value"))?,
        };
        vars.insert(key, value);
    }
    Ok(Args { vars, bootstrap })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    oauth_core::telemetry::init_tracing(std::env::var("LOG_FORMAT").is_ok_and(|v| v == "json"));
    let args = parse_args()?;
    let get = |k: &str| args.vars.get(k).cloned().or_else(|| std::env::var(k).ok()).filter(|v| !v.is_empty());
    let addr: std::net::SocketAddr =
        get("OAUTH_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into()).parse().context("Invalid --addr")?;
    let mut vars: HashMap<&str, String> =
        VARIABLES.iter().chain(BACKEND_VARIABLES).filter_map(|k| get(k).map(|v| (*k, v))).collect();
    vars.entry("ISSUER").or_insert(format!("http://{addr}"));
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).context("Invalid configuration")?;
    let backends = Backends::from_lookup(|k| vars.get(k).cloned(), false).context("Invalid configuration")?;
    let issuer = settings.issuer.clone();
    if args.bootstrap {
        oauth_core::startup::bootstrap(&backends).await?;
    }
    let app = Arc::new(oauth_core::startup::build_app(settings, &backends).await?);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("Failed to listen on {addr}"))?;
    let bound = listener.local_addr()?;
    println!("issuer:    {issuer}");
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
