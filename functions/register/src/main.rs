//! Lambda entry point of the `register` function: the shared router, serving only this
//! function's routes (`oauth_core::http::routes`).
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    oauth_core::lambda::http::main(oauth_core::http::Function::Register).await
}
