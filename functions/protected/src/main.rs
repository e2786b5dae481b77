//! Lambda entry point of the `protected` function: build the app once per container, then
//! hand every API Gateway request to the shared handler.
use lambda_http::Error;
use oauth_core::http::Function;

#[tokio::main]
async fn main() -> Result<(), Error> {
    oauth_core::runtime::init_tracing(true);
    let app = oauth_core::runtime::app_from_env().await?;
    // The app lives as long as the process; leaking it gives handlers a plain reference.
    let app: &'static oauth_core::App = Box::leak(Box::new(app));
    oauth_core::http::lambda::run(app, Function::Protected).await
}
