//! Lambda entry point of the signing-key rotation: Secrets Manager calls it with the four
//! rotation steps; each new version is a fresh key set. With `PUBLIC_KEYS_SECRET_ID`, the
//! public key document the verify-only functions read is kept in step.
use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    oauth_core::telemetry::init_tracing(true);
    let sm: &'static _ = Box::leak(Box::new(aws_sdk_secretsmanager::Client::new(&oauth_core::aws::sdk_config().await)));
    let delay = oauth_core::config::publish_delay(|k| std::env::var(k).ok())?;
    let public: &'static Option<String> =
        Box::leak(Box::new(std::env::var("PUBLIC_KEYS_SECRET_ID").ok().filter(|v| !v.trim().is_empty())));
    run(service_fn(move |event: LambdaEvent<SecretsManagerSecretRotationEvent>| async move {
        let e = event.payload;
        oauth_core::lambda::rotation::step(
            sm,
            &e.secret_id,
            &e.client_request_token,
            &e.step,
            &oauth_core::aws::KEY_SET_ALGS,
            public.as_deref(),
            delay,
        )
        .await
        .map_err(|err| Error::from(format!("{err:#}")))
    }))
    .await
}
