//! Lambda entry point of the API Gateway authorizer: HTTP API (payload 2.0) and REST
//! TOKEN/REQUEST events. Keys from Secrets Manager, or a JWKS URL for another account.
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use oauth_core::authorizer::{ScopeRules, handle_event};

#[tokio::main]
async fn main() -> Result<(), Error> {
    oauth_core::runtime::init_tracing(true);
    let rules = ScopeRules::parse(
        &std::env::var("AUTHORIZER_REQUIRED_SCOPES").map_err(|_| "AUTHORIZER_REQUIRED_SCOPES is not set")?,
    )?;
    rules.warn_about_open_routes();
    let app = oauth_core::runtime::app_from_env().await?;
    let (app, rules): (&'static _, &'static _) = (Box::leak(Box::new(app)), Box::leak(Box::new(rules)));
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        handle_event(app, rules, event.payload).await.map_err(Error::from)
    }))
    .await
}
