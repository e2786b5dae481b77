//! Settings from the environment, read once per process. Every value is validated here,
//! so a bad deployment fails at start with a message naming the variable.
use crate::crypto::Secret;
use crate::jwt::SigningAlg;
use std::collections::HashMap;

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
    /// The `aud` of access tokens (`API_AUDIENCE`, default `<issuer>/api`).
    pub audience: String,
    /// Access token lifetime in seconds (`ACCESS_TOKEN_TTL_SECONDS`, default 900).
    pub access_token_ttl: i64,
    /// Signing algorithm of access tokens (`ACCESS_TOKEN_ALG`: ES256 | RS256 | EdDSA).
    pub access_token_alg: SigningAlg,
    /// When set, `POST /register_client` requires it as a Bearer token.
    pub registration_token: Option<Secret>,
}

/// The variables read by [`Settings::from_lookup`].
pub const VARIABLES: &[&str] =
    &["ISSUER", "API_AUDIENCE", "ACCESS_TOKEN_TTL_SECONDS", "ACCESS_TOKEN_ALG", "OAUTH_REGISTRATION_TOKEN"];

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
        let audience = get("API_AUDIENCE").unwrap_or_else(|| format!("{issuer}/api"));
        let access_token_ttl = match get("ACCESS_TOKEN_TTL_SECONDS") {
            None => 900,
            Some(v) => {
                v.parse::<i64>().ok().filter(|n| (60..=86_400).contains(n)).ok_or_else(|| ConfigError::Invalid {
                    name: "ACCESS_TOKEN_TTL_SECONDS",
                    reason: format!("{v:?} is not a whole number of seconds between 60 and 86400"),
                })?
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
        Ok(Self { issuer, audience, access_token_ttl, access_token_alg, registration_token })
    }

    /// An absolute URL under the issuer, e.g. `url("/oauth/token")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// The issuer must be an absolute `https` URL (or `http` on a loopback host) with no
/// query, fragment or trailing slash: RFC 8414 §2 and RFC 9207 compare it as a string.
fn validate_issuer(issuer: &str) -> Result<(), String> {
    let url = url::Url::parse(issuer).map_err(|e| format!("{issuer:?} is not an absolute URL ({e})"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(format!("{issuer:?} must use https (http is allowed only on loopback hosts)")),
    }
    if url.query().is_some() || url.fragment().is_some() || issuer.ends_with('/') {
        return Err(format!("{issuer:?} must not have a query, fragment or trailing slash"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{issuer:?} must not contain credentials"));
    }
    Ok(())
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
        assert_eq!(s.audience, "https://as.test/api");
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
        ];
        for (name, pairs, want) in cases {
            let err = Settings::from_lookup(lookup(pairs)).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(want), "{name}: got {err:?}");
        }
    }

    #[test]
    fn loopback_http_issuer_is_allowed() {
        assert!(Settings::from_lookup(lookup(&[("ISSUER", "http://127.0.0.1:3000")])).is_ok());
    }
}
