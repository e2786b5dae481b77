//! Per-source-address abuse limits, counted in the store's atomic counters so every
//! container (and the local server) shares them. Beyond a limit the caller gets 429
//! `too_many_requests` with `Retry-After`; a store failure refuses the request (503) rather
//! than letting an unlimited burst through. Requests without a known source address (only
//! in-process calls; API Gateway always supplies one) are not counted.
use super::{OAuthError, store_failure};
use crate::App;
use std::net::IpAddr;

/// What is being limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `POST /register` attempts.
    Register,
    /// `POST /register_client` attempts.
    RegisterClient,
    /// Failed client authentications (token, revocation, introspection).
    ClientAuthFailure,
}

impl Limit {
    fn name(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::RegisterClient => "register_client",
            Self::ClientAuthFailure => "client_auth",
        }
    }

    fn max(self, app: &App) -> u32 {
        let a = &app.settings.abuse;
        match self {
            Self::Register => a.register,
            Self::RegisterClient => a.register_client,
            Self::ClientAuthFailure => a.client_auth_failures,
        }
    }
}

fn key(limit: Limit, ip: IpAddr) -> String {
    format!("abuse#{}#{ip}", limit.name())
}

fn refused(app: &App, limit: Limit, ip: IpAddr) -> OAuthError {
    tracing::warn!(event = "rate_limited", limit = limit.name(), source_ip = %ip, "per-address limit reached");
    OAuthError::TooManyRequests { retry_after: app.settings.abuse.window }
}

/// Count one attempt and refuse it when it is beyond the limit (registration endpoints).
///
/// # Errors
/// `TooManyRequests` beyond the limit; a 503 when the counter cannot be updated.
pub async fn count_attempt(app: &App, limit: Limit, ip: Option<IpAddr>) -> Result<(), OAuthError> {
    let Some(ip) = ip else { return Ok(()) };
    let n =
        app.throttle.hit(&key(limit, ip), app.settings.abuse.window, app.clock.now()).await.map_err(store_failure)?;
    if n > limit.max(app) { Err(refused(app, limit, ip)) } else { Ok(()) }
}

/// Count one failure; beyond the limit the caller gets 429 instead of its original error.
///
/// # Errors
/// `TooManyRequests` beyond the limit; a 503 when the counter cannot be updated.
pub async fn count_failure(app: &App, limit: Limit, ip: Option<IpAddr>) -> Result<(), OAuthError> {
    let Some(ip) = ip else { return Ok(()) };
    tracing::warn!(event = "client_auth_failed", source_ip = %ip, "client authentication failed");
    count_attempt(app, limit, Some(ip)).await
}
