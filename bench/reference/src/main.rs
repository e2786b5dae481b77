//! The cold-start reference of `bench/coldstart.py`: what any Lambda function with the AWS
//! SDK pays at init (config, two clients, one `GetSecretValue`), and nothing else.
use lambda_http::{Body, Error, Request, Response, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cfg = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let _ddb = aws_sdk_dynamodb::Client::new(&cfg);
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    let secret = std::env::var("SIGNING_KEYS_SECRET_ID").map_err(|_| "SIGNING_KEYS_SECRET_ID is not set")?;
    let value = sm.get_secret_value().secret_id(secret).send().await?;
    let len = value.secret_string().map_or(0, str::len);
    run(service_fn(move |_req: Request| async move {
        Ok::<_, Error>(Response::new(Body::from(format!("{{\"secret_len\":{len}}}"))))
    }))
    .await
}
