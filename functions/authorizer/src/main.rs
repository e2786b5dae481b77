//! Lambda entry point of the API Gateway authorizer: HTTP API (payload 2.0) and REST
//! TOKEN/REQUEST events. Keys from the public key document, or a JWKS URL for another account.
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use oauth_core::config::Backends;
use oauth_core::lambda::authorizer::{Revocation, ScopeRules, handle_event};
use oauth_core::startup::build_app;

#[tokio::main]
async fn main() -> Result<(), Error> {
    oauth_core::telemetry::init_tracing(true);
    let env = |k: &str| std::env::var(k).ok();
    oauth_core::telemetry::metrics::init(env("METRICS_NAMESPACE").as_deref(), "authorizer");
    let rules = ScopeRules::parse(&env("AUTHORIZER_REQUIRED_SCOPES").ok_or("AUTHORIZER_REQUIRED_SCOPES is not set")?)?;
    rules.warn_about_open_routes();
    let revocation = Revocation::from_lookup(env)?;
    let backends = Backends::from_lookup(env, true)?;
    revocation.check_store(&backends.store)?;
    let app = build_app(oauth_core::config::Settings::from_env()?, &backends).await?;
    let rules = rules.with_revocation(revocation);
    let (app, rules): (&'static _, &'static _) = (Box::leak(Box::new(app)), Box::leak(Box::new(rules)));
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        handle_event(app, rules, event.payload).await.map_err(Error::from)
    }))
    .await
}
