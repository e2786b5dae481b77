//! `oauth-local`: run the OAuth server on 127.0.0.1:3000 with an embedded store and
//! generated keys. Flags (each with an environment twin) are those of API.md.
use anyhow::{Context, bail};
use oauth_core::config::{Settings, VARIABLES};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

const HELP: &str = "oauth-local: the OAuth 2.0 server in one local process

USAGE: oauth-local [--addr HOST:PORT] [--issuer URL] [--data-dir DIR]

  --addr      / OAUTH_ADDR       listen address (default 127.0.0.1:3000)
  --issuer    / ISSUER           issuer URL (default http://<addr>)
  --data-dir  / OAUTH_DATA_DIR   SQLite file and generated keys (default ./.oauth-data)
  --store     / OAUTH_STORE      sqlite (dynamodb arrives with the AWS backends)
  --keys      / OAUTH_KEYS       file (secretsmanager arrives with the AWS backends)
  OAUTH_REGISTRATION_TOKEN       when set, POST /register_client needs it as a Bearer token
  ACCESS_TOKEN_TTL_SECONDS, ACCESS_TOKEN_ALG, API_AUDIENCE, RUST_LOG: see README";

fn parse_args() -> anyhow::Result<HashMap<&'static str, String>> {
    let mut out = HashMap::new();
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
            "--addr" => "OAUTH_ADDR",
            "--issuer" => "ISSUER",
            "--data-dir" => "OAUTH_DATA_DIR",
            "--store" => "OAUTH_STORE",
            "--keys" => "OAUTH_KEYS",
            "--bootstrap" => bail!("--bootstrap arrives with the AWS backends (DynamoDB, Secrets Manager)"),
            other => bail!("unknown argument {other:?}; see --help"),
        };
        let value = match inline {
            Some(v) => v,
            None => args.next().with_context(|| format!("{name} needs a value"))?,
        };
        out.insert(key, value);
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    oauth_core::runtime::init_tracing(std::env::var("LOG_FORMAT").is_ok_and(|v| v == "json"));
    let flags = parse_args()?;
    let get = |k: &str| flags.get(k).cloned().or_else(|| std::env::var(k).ok()).filter(|v| !v.is_empty());
    for (k, supported) in [("OAUTH_STORE", "sqlite"), ("OAUTH_KEYS", "file")] {
        if let Some(v) = get(k).filter(|v| v != supported) {
            bail!("{k}={v} is not available yet: this build supports only {supported}");
        }
    }
    let addr: std::net::SocketAddr =
        get("OAUTH_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into()).parse().context("Invalid --addr")?;
    let default_issuer = format!("http://{addr}");
    let mut vars: HashMap<&str, String> = VARIABLES.iter().filter_map(|k| get(k).map(|v| (*k, v))).collect();
    vars.entry("ISSUER").or_insert(default_issuer);
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).context("Invalid configuration")?;
    let data_dir = PathBuf::from(get("OAUTH_DATA_DIR").unwrap_or_else(|| "./.oauth-data".into()));
    let open_registration = settings.registration_token.is_none();
    let issuer = settings.issuer.clone();
    let app = Arc::new(oauth_core::runtime::embedded_app(settings, &data_dir).await?);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("Failed to listen on {addr}"))?;
    let bound = listener.local_addr()?;
    println!("issuer:    {issuer}");
    println!("data:      {} (SQLite + signing keys)", data_dir.display());
    if open_registration {
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
