//! Settings from the environment, read once per process. Every value is validated here,
//! so a bad deployment fails at start with a message naming the variable.
use crate::crypto::Secret;
use crate::keys::SigningAlg;
use std::collections::HashMap;

mod backends;
mod cimd;
mod device;
mod federation;
mod rotation;
mod sessions;
mod urls;
mod variables;
pub use backends::{BACKEND_VARIABLES, Backends, KeysChoice, StoreChoice};
pub use cimd::CimdSettings;
pub use device::DeviceSettings;
pub use federation::{FederationSettings, ProviderConfig, ProviderKind, SecretRef, check_upstream_url};
pub use rotation::publish_delay;
pub use sessions::SessionLimits;
use urls::{parse_origins, validate_issuer};
pub use variables::VARIABLES;

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// A variable has a value that cannot be used.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// The variable's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Every setting the server needs. Built once; handlers never read the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The issuer URL (`ISSUER`): `https://…` (or `http://` on loopback), no trailing slash.
    pub issuer: String,
    /// The built-in demo API's resource identifier and the default `aud` of access tokens
    /// (`API_AUDIENCE`, default `<issuer>/api`), in canonical form (RFC 8707; see
    /// `domain::ResourceId`). In the Lambda authorizer: the resource it guards.
    pub audience: crate::domain::ResourceId,
    /// How long a process keeps the registered resource servers before reading them again
    /// (`RESOURCE_CACHE_SECONDS`, default 60, 0 to 3600): an operator's change applies
    /// within this time.
    pub resource_cache_ttl: i64,
    /// Access token lifetime in seconds (`ACCESS_TOKEN_TTL_SECONDS`, default 900).
    pub access_token_ttl: i64,
    /// Signing algorithm of access tokens (`ACCESS_TOKEN_ALG`: ES256 | RS256 | EdDSA).
    pub access_token_alg: SigningAlg,
    /// When set, `POST /register_client` requires it as a Bearer token.
    pub registration_token: Option<Secret>,
    /// `OAUTH_OPEN_REGISTRATION=true`: anyone may register clients without a token, said
    /// explicitly (a Lambda register function refuses to start open otherwise).
    pub open_registration: bool,
    /// Public self sign-up (`SIGNUP_ENABLED`, default `true`): `POST /register`, and a first
    /// sign-in through an upstream provider creating an account. Off: 403, and only linked
    /// upstream identities sign in.
    pub signup_enabled: bool,
    /// `DPOP_NONCE_REQUIRED` (default `false`): a DPoP proof at the token endpoint must carry
    /// a server nonce (RFC 9449 §8).
    pub dpop_nonce_required: bool,
    /// `CLOUDFRONT_ORIGIN_SECRET`: the value CloudFront adds as `X-Origin-Verify`; with it,
    /// per-address limits use `CloudFront-Viewer-Address` of the requests that carry it.
    pub cloudfront_origin_secret: Option<Secret>,
    /// A refresh token unused this long expires (`REFRESH_IDLE_SECONDS`, default 30 days).
    pub refresh_idle_ttl: i64,
    /// A refresh family ends this long after the login (`REFRESH_ABSOLUTE_SECONDS`, default 90 days).
    pub refresh_absolute_ttl: i64,
    /// Reuse of a just-rotated refresh token within this window does not revoke the family
    /// (`REFRESH_REUSE_GRACE_SECONDS`, default 5).
    pub refresh_grace: i64,
    /// Failed logins per username within the window before every login is refused
    /// (`LOGIN_MAX_FAILURES`, default 5).
    pub login_max_failures: u32,
    /// Failed logins per source address within the window (`LOGIN_MAX_FAILURES_PER_IP`, default 50).
    pub login_max_failures_per_ip: u32,
    /// The throttling window, counted from the last failure (`LOGIN_WINDOW_SECONDS`, default 900).
    pub login_window: i64,
    /// Abuse limits per source address (429 with `Retry-After` beyond them).
    pub abuse: AbuseLimits,
    /// Browser origins allowed to call the token, revocation and userinfo endpoints
    /// (`CORS_ALLOWED_ORIGINS`, space or comma separated, exact `scheme://host[:port]`, or
    /// `*` for any origin; default none). Metadata and JWKS are open to every origin.
    pub cors_allowed_origins: Vec<String>,
    /// Browser session lifetimes.
    pub sessions: SessionLimits,
    /// Client ID Metadata Documents.
    pub cimd: CimdSettings,
    /// Upstream identity providers (`FEDERATION_PROVIDERS`).
    pub federation: FederationSettings,
    /// The device authorization grant.
    pub device: DeviceSettings,
}

/// Per-address limits, counted in the store over a window ending `window` s after the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbuseLimits {
    /// `POST /register` attempts (`REGISTER_LIMIT_PER_IP`, default 20).
    pub register: u32,
    /// `POST /register_client` attempts (`REGISTER_CLIENT_LIMIT_PER_IP`, default 20).
    pub register_client: u32,
    /// Failed client authentications (`CLIENT_AUTH_FAILURES_PER_IP`, default 20).
    pub client_auth_failures: u32,
    /// The window in seconds (`ABUSE_WINDOW_SECONDS`, default 900).
    pub window: i64,
}

/// Read an integer variable in `range`, or `default` when unset.
fn int_var<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(v) => v.trim().parse::<T>().ok().filter(|n| *n >= min && *n <= max).ok_or_else(|| ConfigError::Invalid {
            name,
            reason: format!("{v:?} is not a whole number between {min} and {max}"),
        }),
    }
}

/// Read a `true`/`false` variable, or `default` when unset.
fn bool_var(get: &impl Fn(&str) -> Option<String>, name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match get(name).as_deref().map(str::trim) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(v) => Err(ConfigError::Invalid { name, reason: format!("{v:?} is not true or false") }),
    }
}

impl Settings {
    /// Read settings from the process environment.
    ///
    /// # Errors
    /// A missing `ISSUER` or any invalid value.
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> =
            VARIABLES.iter().filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v))).collect();
        Self::from_lookup(|k| vars.get(k).cloned())
    }

    /// Build settings from any key → value lookup (the environment, a test map, CLI flags).
    ///
    /// # Errors
    /// A missing `ISSUER` or any invalid value.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let issuer = get("ISSUER").ok_or(ConfigError::Missing("ISSUER"))?;
        validate_issuer(&issuer).map_err(|reason| ConfigError::Invalid { name: "ISSUER", reason })?;
        let issuer_on_loopback =
            url::Url::parse(&issuer).ok().and_then(|u| u.host_str().map(crate::domain::is_loopback_host)) == Some(true);
        let audience = get("API_AUDIENCE").unwrap_or_else(|| format!("{issuer}/api"));
        let audience = crate::domain::ResourceId::parse(&audience)
            .map_err(|reason| ConfigError::Invalid { name: "API_AUDIENCE", reason: reason.into() })?;
        let resource_cache_ttl = int_var(&get, "RESOURCE_CACHE_SECONDS", 60, 0, 3600)?;
        let access_token_ttl = int_var(&get, "ACCESS_TOKEN_TTL_SECONDS", 900, 60, 86_400)?;
        const DAY: i64 = 86_400;
        let refresh_idle_ttl = int_var(&get, "REFRESH_IDLE_SECONDS", 30 * DAY, 60, 365 * DAY)?;
        let refresh_absolute_ttl = int_var(&get, "REFRESH_ABSOLUTE_SECONDS", 90 * DAY, 60, 3 * 365 * DAY)?;
        if refresh_absolute_ttl < access_token_ttl {
            return Err(ConfigError::Invalid {
                name: "REFRESH_ABSOLUTE_SECONDS",
                reason: "must not be below ACCESS_TOKEN_TTL_SECONDS".into(),
            });
        }
        if refresh_idle_ttl > refresh_absolute_ttl {
            return Err(ConfigError::Invalid {
                name: "REFRESH_IDLE_SECONDS",
                reason: "must not exceed REFRESH_ABSOLUTE_SECONDS".into(),
            });
        }
        let refresh_grace = int_var(&get, "REFRESH_REUSE_GRACE_SECONDS", 5, 0, 60)?;
        let login_max_failures = int_var(&get, "LOGIN_MAX_FAILURES", 5, 1, 1000)?;
        let login_max_failures_per_ip = int_var(&get, "LOGIN_MAX_FAILURES_PER_IP", 50, 1, 1_000_000)?;
        let login_window = int_var(&get, "LOGIN_WINDOW_SECONDS", 900, 1, DAY)?;
        let abuse = AbuseLimits {
            register: int_var(&get, "REGISTER_LIMIT_PER_IP", 20, 1, 1_000_000)?,
            register_client: int_var(&get, "REGISTER_CLIENT_LIMIT_PER_IP", 20, 1, 1_000_000)?,
            client_auth_failures: int_var(&get, "CLIENT_AUTH_FAILURES_PER_IP", 20, 1, 1_000_000)?,
            window: int_var(&get, "ABUSE_WINDOW_SECONDS", 900, 1, DAY)?,
        };
        let cors_allowed_origins = match get("CORS_ALLOWED_ORIGINS") {
            None => Vec::new(),
            Some(v) => {
                parse_origins(&v).map_err(|reason| ConfigError::Invalid { name: "CORS_ALLOWED_ORIGINS", reason })?
            }
        };
        let access_token_alg = match get("ACCESS_TOKEN_ALG") {
            None => SigningAlg::Es256,
            Some(v) => SigningAlg::parse(&v).ok_or_else(|| ConfigError::Invalid {
                name: "ACCESS_TOKEN_ALG",
                reason: format!("{v:?} is not one of ES256, RS256, EdDSA"),
            })?,
        };
        let registration_token = match get("OAUTH_REGISTRATION_TOKEN") {
            None => None,
            Some(v) if v.len() < 16 => {
                return Err(ConfigError::Invalid {
                    name: "OAUTH_REGISTRATION_TOKEN",
                    reason: "must be at least 16 characters".into(),
                });
            }
            Some(v) => Some(Secret::new(v)),
        };
        let open_registration = bool_var(&get, "OAUTH_OPEN_REGISTRATION", false)?;
        let signup_enabled = bool_var(&get, "SIGNUP_ENABLED", true)?;
        let dpop_nonce_required = bool_var(&get, "DPOP_NONCE_REQUIRED", false)?;
        let cloudfront_origin_secret = match get("CLOUDFRONT_ORIGIN_SECRET") {
            None => None,
            Some(v) if v.len() < 32 => {
                return Err(ConfigError::Invalid {
                    name: "CLOUDFRONT_ORIGIN_SECRET",
                    reason: "must be at least 32 characters".into(),
                });
            }
            Some(v) => Some(Secret::new(v)),
        };
        Ok(Self {
            issuer,
            audience,
            resource_cache_ttl,
            access_token_ttl,
            access_token_alg,
            registration_token,
            open_registration,
            signup_enabled,
            dpop_nonce_required,
            cloudfront_origin_secret,
            refresh_idle_ttl,
            refresh_absolute_ttl,
            refresh_grace,
            login_max_failures,
            login_max_failures_per_ip,
            login_window,
            abuse,
            cors_allowed_origins,
            sessions: SessionLimits::from_lookup(&get)?,
            cimd: CimdSettings::from_lookup(&get, issuer_on_loopback)?,
            federation: FederationSettings::from_lookup(&get)?,
            device: DeviceSettings::from_lookup(&get)?,
        })
    }

    /// The issuer's origin (`scheme://host[:port]`), for `Origin` checks.
    pub fn issuer_origin(&self) -> String {
        url::Url::parse(&self.issuer).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
    }

    /// Whether the issuer is `https` (cookies get `Secure`).
    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// An absolute URL under the issuer, e.g. `url(paths::TOKEN)`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn defaults_follow_the_contract() -> Result<(), ConfigError> {
        let s = Settings::from_lookup(lookup(&[("ISSUER", "https://as.test")]))?;
        assert_eq!(s.audience.as_str(), "https://as.test/api");
        assert_eq!(s.access_token_ttl, 900);
        assert_eq!(s.access_token_alg, SigningAlg::Es256);
        assert!(s.registration_token.is_none());
        Ok(())
    }

    #[test]
    fn bad_values_fail_with_the_variable_name() {
        type Vars = &'static [(&'static str, &'static str)];
        let cases: &[(&str, Vars, &str)] = &[
            ("missing issuer", &[], "ISSUER is not set"),
            ("trailing slash", &[("ISSUER", "https://as.test/")], "ISSUER is invalid"),
            ("http off loopback", &[("ISSUER", "http://as.test")], "ISSUER is invalid"),
            ("not a url", &[("ISSUER", "as.test")], "ISSUER is invalid"),
            (
                "ttl garbage",
                &[("ISSUER", "https://as.test"), ("ACCESS_TOKEN_TTL_SECONDS", "ten")],
                "ACCESS_TOKEN_TTL_SECONDS",
            ),
            (
                "ttl too long",
                &[("ISSUER", "https://as.test"), ("ACCESS_TOKEN_TTL_SECONDS", "999999")],
                "ACCESS_TOKEN_TTL_SECONDS",
            ),
            ("alg hmac", &[("ISSUER", "https://as.test"), ("ACCESS_TOKEN_ALG", "HS256")], "ACCESS_TOKEN_ALG"),
            (
                "short reg token",
                &[("ISSUER", "https://as.test"), ("OAUTH_REGISTRATION_TOKEN", "short")],
                "OAUTH_REGISTRATION_TOKEN",
            ),
            // `*` alone means any origin; a pattern is not an origin.
            (
                "cors wildcard pattern",
                &[("ISSUER", "https://as.test"), ("CORS_ALLOWED_ORIGINS", "https://*.app.test")],
                "CORS_ALLOWED_ORIGINS",
            ),
            (
                "cors origin with a path",
                &[("ISSUER", "https://as.test"), ("CORS_ALLOWED_ORIGINS", "https://app.test/")],
                "CORS_ALLOWED_ORIGINS",
            ),
            (
                "cors plain http",
                &[("ISSUER", "https://as.test"), ("CORS_ALLOWED_ORIGINS", "https://a.test,http://app.test")],
                "CORS_ALLOWED_ORIGINS",
            ),
            ("zero limit", &[("ISSUER", "https://as.test"), ("REGISTER_LIMIT_PER_IP", "0")], "REGISTER_LIMIT_PER_IP"),
            (
                "open registration not a boolean",
                &[("ISSUER", "https://as.test"), ("OAUTH_OPEN_REGISTRATION", "yes")],
                "OAUTH_OPEN_REGISTRATION",
            ),
            (
                "a family shorter than its access tokens",
                &[
                    ("ISSUER", "https://as.test"),
                    ("ACCESS_TOKEN_TTL_SECONDS", "3600"),
                    ("REFRESH_ABSOLUTE_SECONDS", "1800"),
                    ("REFRESH_IDLE_SECONDS", "600"),
                ],
                "REFRESH_ABSOLUTE_SECONDS",
            ),
        ];
        for (name, pairs, want) in cases {
            let err = Settings::from_lookup(lookup(pairs)).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(want), "{name}: got {err:?}");
        }
    }

    #[test]
    fn cors_origins_and_abuse_limits_are_read() -> Result<(), ConfigError> {
        let s = Settings::from_lookup(lookup(&[
            ("ISSUER", "https://as.test"),
            ("CORS_ALLOWED_ORIGINS", "https://app.test, http://localhost:5173"),
            ("CLIENT_AUTH_FAILURES_PER_IP", "7"),
        ]))?;
        assert_eq!(s.cors_allowed_origins, ["https://app.test", "http://localhost:5173"]);
        assert_eq!(s.abuse, AbuseLimits { register: 20, register_client: 20, client_auth_failures: 7, window: 900 });
        Ok(())
    }

    #[test]
    fn loopback_http_issuer_is_allowed() {
        assert!(Settings::from_lookup(lookup(&[("ISSUER", "http://127.0.0.1:3000")])).is_ok());
    }
}
