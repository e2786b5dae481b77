//! Lambda entry point of the `authorize` function: build the app once per container, then
//! hand every API Gateway request to the shared handler.
use lambda_http::{Error, Request, run, service_fn};
use oauth_core::http::{Function, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    oauth_core::runtime::init_tracing(true);
    let app = oauth_core::runtime::app_from_env().await?;
    // The app lives as long as the process; leaking it gives handlers a plain reference.
    let app: &'static oauth_core::App = Box::leak(Box::new(app));
    run(service_fn(move |req: Request| async move { Ok::<_, Error>(handle(app, Function::Authorize, req).await) }))
        .await
}
