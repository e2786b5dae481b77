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

/// The address a per-address limit counts: an IPv4 address, or the /64 network of an IPv6
/// address (one subscriber usually holds a whole /64, so counting single IPv6 addresses
/// would give each caller 2^64 fresh budgets). IPv4-mapped IPv6 counts as IPv4.
pub fn address_bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
        },
    }
}

fn key(limit: Limit, ip: IpAddr) -> String {
    format!("abuse#{}#{}", limit.name(), address_bucket(ip))
}

fn refused(app: &App, limit: Limit, ip: IpAddr) -> OAuthError {
    tracing::warn!(event = "rate_limited", limit = limit.name(), source_ip = %ip, "per-address limit reached");
    OAuthError::TooManyRequests { retry_after: app.settings.abuse.window }
}

/// Count one attempt and refuse it when it is beyond the limit (registration endpoints).
///
/// # Errors
/// `TooManyRequests` beyond the limit; a 503 when the counter cannot be updated.
pub async fn count_attempt(
    app: &App,
    limit: Limit,
    ip: Option<IpAddr>,
    now: time::OffsetDateTime,
) -> Result<(), OAuthError> {
    let Some(ip) = ip else { return Ok(()) };
    let n = app.throttle.hit(&key(limit, ip), app.settings.abuse.window, now).await.map_err(store_failure)?;
    if n > limit.max(app) { Err(refused(app, limit, ip)) } else { Ok(()) }
}

/// Count one failure; beyond the limit the caller gets 429 instead of its original error.
///
/// # Errors
/// `TooManyRequests` beyond the limit; a 503 when the counter cannot be updated.
pub async fn count_failure(
    app: &App,
    limit: Limit,
    ip: Option<IpAddr>,
    now: time::OffsetDateTime,
) -> Result<(), OAuthError> {
    let Some(ip) = ip else { return Ok(()) };
    tracing::warn!(event = "client_auth_failed", source_ip = %ip, "client authentication failed");
    count_attempt(app, limit, Some(ip), now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_per_64_and_ipv4_mapped_ones_as_ipv4() -> Result<(), std::net::AddrParseError> {
        let b = |s: &str| s.parse::<IpAddr>().map(address_bucket);
        assert_eq!(b("192.0.2.1")?, "192.0.2.1");
        assert_eq!(b("2001:db8:1:2::1")?, b("2001:db8:1:2:ffff:ffff:ffff:ffff")?);
        assert_ne!(b("2001:db8:1:2::1")?, b("2001:db8:1:3::1")?);
        assert_eq!(b("2001:db8:1:2::1")?, "2001:db8:1:2::/64");
        assert_eq!(b("::ffff:192.0.2.1")?, "192.0.2.1");
        Ok(())
    }
}
