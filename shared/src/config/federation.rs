//! Upstream identity providers (docs/API.md, "Federation"): `FEDERATION_PROVIDERS`, a JSON
//! array of providers, each `oidc` (any OpenID provider, found through its discovery
//! document) or `github` (OAuth 2.0 with GitHub's user API). A client secret is never in
//! this document: it names where the secret is (an environment variable, a file, or a
//! Secrets Manager secret), read at the first sign-in that needs it.
use super::ConfigError;
use serde::Deserialize;
use std::path::PathBuf;

/// Most providers configured.
pub const MAX_PROVIDERS: usize = 16;

/// The federation settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FederationSettings {
    /// The providers, in the order the login page shows them.
    pub providers: Vec<ProviderConfig>,
    /// Each upstream call must end within this (`FEDERATION_TIMEOUT_MS`, default 5000).
    pub timeout_ms: u64,
}

/// What kind of provider, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// An OpenID provider: everything else comes from `<issuer>/.well-known/openid-configuration`.
    Oidc {
        /// Its issuer (compared as a string with the discovery document's and the ID token's).
        issuer: String,
    },
    /// GitHub (or a GitHub Enterprise server): OAuth 2.0, then `/user` and `/user/emails`.
    Github {
        /// The issuer string its identities are keyed by (default `https://github.com`).
        issuer: String,
        /// Its authorization endpoint.
        authorization_endpoint: String,
        /// Its token endpoint.
        token_endpoint: String,
        /// Its REST API base (`/user`, `/user/emails`).
        api_base: String,
    },
}

impl ProviderKind {
    /// The issuer its identities are keyed by.
    pub fn issuer(&self) -> &str {
        match self {
            Self::Oidc { issuer } | Self::Github { issuer, .. } => issuer,
        }
    }
}

/// Where a provider's client secret is read from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable of the process.
    Env(String),
    /// A file (its whole content, trimmed).
    File(PathBuf),
    /// A Secrets Manager secret: its whole value, or with `key` that field of its JSON value.
    SecretsManager {
        /// Its id or ARN.
        id: String,
        /// The JSON field holding this provider's secret, if the secret holds several.
        key: Option<String>,
    },
}

impl std::fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(name) => write!(f, "env {name}"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::SecretsManager { id, key } => write!(f, "secret {id} {key:?}"),
        }
    }
}

/// One upstream provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// Its id: the callback is `/federation/<id>/callback`.
    pub id: String,
    /// What the login page calls it ("Continue with <name>").
    pub name: String,
    /// Its kind and endpoints.
    pub kind: ProviderKind,
    /// Our client id there.
    pub client_id: String,
    /// Where our client secret there is.
    pub secret: SecretRef,
    /// The scopes asked for there.
    pub scopes: String,
    /// When not empty: only users whose verified e-mail address is in one of these domains.
    pub allowed_domains: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    id: String,
    name: String,
    kind: String,
    #[serde(default)]
    issuer: Option<String>,
    client_id: String,
    #[serde(default)]
    client_secret_env: Option<String>,
    #[serde(default)]
    client_secret_file: Option<PathBuf>,
    #[serde(default)]
    client_secret_secret_id: Option<String>,
    #[serde(default)]
    client_secret_key: Option<String>,
    #[serde(default)]
    scopes: Option<String>,
    #[serde(default)]
    allowed_domains: Vec<String>,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint: Option<String>,
    #[serde(default)]
    api_base: Option<String>,
}

/// An upstream URL: https, or http on a loopback host (a provider on this machine); no
/// fragment, no userinfo.
pub fn check_upstream_url(what: &str, v: &str) -> Result<String, String> {
    let u = url::Url::parse(v).map_err(|e| format!("{what} {v:?} is not a URL: {e}"))?;
    let loopback = u.host_str().is_some_and(crate::domain::is_loopback_host);
    if !(u.scheme() == "https" || (u.scheme() == "http" && loopback)) {
        return Err(format!("{what} {v:?} must be https (http only on a loopback host)"));
    }
    if u.fragment().is_some() || !u.username().is_empty() || u.password().is_some() {
        return Err(format!("{what} {v:?} must have no fragment or userinfo"));
    }
    Ok(v.to_owned())
}

fn provider(raw: Raw, shared_secret: Option<&str>) -> Result<ProviderConfig, String> {
    let id_ok = (1..=32).contains(&raw.id.len())
        && raw.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !raw.id.starts_with('-');
    if !id_ok {
        return Err(format!("provider id {:?} must be 1-32 of a-z 0-9 -", raw.id));
    }
    let id = raw.id;
    if raw.name.trim().is_empty() || raw.name.chars().count() > 64 {
        return Err(format!("provider {id}: name must be 1-64 characters"));
    }
    if raw.client_id.is_empty() || raw.client_id.len() > 256 {
        return Err(format!("provider {id}: client_id must be 1-256 characters"));
    }
    let secret = match (raw.client_secret_env, raw.client_secret_file, raw.client_secret_secret_id) {
        (Some(v), None, None) if raw.client_secret_key.is_none() => SecretRef::Env(v),
        (None, Some(f), None) if raw.client_secret_key.is_none() => SecretRef::File(f),
        (None, None, Some(s)) => SecretRef::SecretsManager { id: s, key: raw.client_secret_key },
        // Only a key: a field of the stack's federation secret (FEDERATION_SECRET_ID).
        (None, None, None) if raw.client_secret_key.is_some() => match shared_secret {
            Some(s) => SecretRef::SecretsManager { id: s.to_owned(), key: raw.client_secret_key },
            None => return Err(format!("provider {id}: client_secret_key needs FEDERATION_SECRET_ID")),
        },
        _ => {
            return Err(format!(
                "provider {id}: exactly one of client_secret_env, client_secret_file, client_secret_secret_id \
                 (or client_secret_key alone, a field of FEDERATION_SECRET_ID)"
            ));
        }
    };
    let kind = match raw.kind.as_str() {
        "oidc" => {
            let issuer = raw.issuer.ok_or_else(|| format!("provider {id}: an oidc provider needs its issuer"))?;
            if raw.authorization_endpoint.is_some() || raw.token_endpoint.is_some() || raw.api_base.is_some() {
                return Err(format!("provider {id}: an oidc provider's endpoints come from its discovery document"));
            }
            ProviderKind::Oidc { issuer: check_upstream_url("issuer", &issuer)? }
        }
        "github" => ProviderKind::Github {
            issuer: check_upstream_url("issuer", raw.issuer.as_deref().unwrap_or("https://github.com"))?,
            authorization_endpoint: check_upstream_url(
                "authorization_endpoint",
                raw.authorization_endpoint.as_deref().unwrap_or("https://github.com/login/oauth/authorize"),
            )?,
            token_endpoint: check_upstream_url(
                "token_endpoint",
                raw.token_endpoint.as_deref().unwrap_or("https://github.com/login/oauth/access_token"),
            )?,
            api_base: check_upstream_url("api_base", raw.api_base.as_deref().unwrap_or("https://api.github.com"))?
                .trim_end_matches('/')
                .to_owned(),
        },
        other => return Err(format!("provider {id}: kind {other:?} is not oidc or github")),
    };
    let default_scopes = match kind {
        ProviderKind::Oidc { .. } => "openid email profile",
        ProviderKind::Github { .. } => "read:user user:email",
    };
    let scopes = raw.scopes.unwrap_or_else(|| default_scopes.to_owned());
    if matches!(kind, ProviderKind::Oidc { .. }) && !scopes.split(' ').any(|s| s == "openid") {
        return Err(format!("provider {id}: the scopes of an oidc provider must include openid"));
    }
    if scopes.len() > 512 || scopes.chars().any(|c| c.is_control()) {
        return Err(format!("provider {id}: scopes must be at most 512 printable characters"));
    }
    let allowed_domains: Vec<String> = raw.allowed_domains.iter().map(|d| d.trim().to_ascii_lowercase()).collect();
    if allowed_domains.iter().any(|d| d.is_empty() || d.contains(['@', '/', ' '])) {
        return Err(format!("provider {id}: allowed_domains must be domain names"));
    }
    Ok(ProviderConfig { id, name: raw.name, kind, client_id: raw.client_id, secret, scopes, allowed_domains })
}

impl FederationSettings {
    /// Read `FEDERATION_PROVIDERS` and `FEDERATION_TIMEOUT_MS`.
    ///
    /// # Errors
    /// Malformed JSON, an invalid provider, or two with one id.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid { name: "FEDERATION_PROVIDERS", reason };
        let timeout_ms = super::int_var(get, "FEDERATION_TIMEOUT_MS", 5000, 100, 30_000)?;
        let Some(json) = get("FEDERATION_PROVIDERS") else { return Ok(Self { providers: Vec::new(), timeout_ms }) };
        let raw: Vec<Raw> =
            serde_json::from_str(&json).map_err(|e| invalid(format!("not a JSON array of providers: {e}")))?;
        if raw.len() > MAX_PROVIDERS {
            return Err(invalid(format!("at most {MAX_PROVIDERS} providers")));
        }
        let shared = get("FEDERATION_SECRET_ID");
        let providers =
            raw.into_iter().map(|r| provider(r, shared.as_deref())).collect::<Result<Vec<_>, _>>().map_err(invalid)?;
        for (i, p) in providers.iter().enumerate() {
            if providers.iter().skip(i + 1).any(|q| q.id == p.id) {
                return Err(invalid(format!("provider id {} is used twice", p.id)));
            }
        }
        Ok(Self { providers, timeout_ms })
    }

    /// The provider `id`.
    pub fn provider(&self, id: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<FederationSettings, ConfigError> {
        let json = json.to_owned();
        FederationSettings::from_lookup(&|k: &str| (k == "FEDERATION_PROVIDERS").then(|| json.clone()))
    }

    #[test]
    fn providers_parse_with_their_defaults_and_bad_ones_are_refused() -> Result<(), ConfigError> {
        let s = parse(
            r#"[{"id":"google","name":"Google","kind":"oidc","issuer":"https://accounts.google.com","client_id":"c","client_secret_env":"G"},
                {"id":"github","name":"GitHub","kind":"github","client_id":"g","client_secret_secret_id":"arn:x","client_secret_key":"github"}]"#,
        )?;
        assert_eq!(s.timeout_ms, 5000);
        let g = s.provider("google").ok_or(ConfigError::Missing("google"))?;
        assert_eq!((g.scopes.as_str(), g.kind.issuer()), ("openid email profile", "https://accounts.google.com"));
        let gh = s.provider("github").ok_or(ConfigError::Missing("github"))?;
        assert_eq!(gh.kind.issuer(), "https://github.com");
        assert!(matches!(&gh.kind, ProviderKind::Github { api_base, .. } if api_base == "https://api.github.com"));
        assert_eq!(gh.secret, SecretRef::SecretsManager { id: "arn:x".into(), key: Some("github".into()) });
        let base = r#""name":"X","kind":"oidc","client_id":"c","client_secret_env":"E""#;
        for bad in [
            "{}".to_owned(),
            format!(r#"[{{"id":"Bad",{base},"issuer":"https://x.example"}}]"#),
            format!(r#"[{{"id":"x",{base},"issuer":"http://x.example"}}]"#),
            format!(r#"[{{"id":"x",{base}}}]"#),
            format!(r#"[{{"id":"x",{base},"issuer":"https://x.example","scopes":"email"}}]"#),
            format!(r#"[{{"id":"x",{base},"issuer":"https://x.example","client_secret_file":"/f"}}]"#),
            format!(r#"[{{"id":"x",{base},"issuer":"https://x.example","token_endpoint":"https://t"}}]"#),
            format!(r#"[{{"id":"x",{base},"issuer":"https://x.example","extra":1}}]"#),
            format!(
                r#"[{{"id":"x",{base},"issuer":"https://x.example"}},{{"id":"x",{base},"issuer":"https://y.example"}}]"#
            ),
            r#"[{"id":"x","name":"X","kind":"saml","client_id":"c","client_secret_env":"E"}]"#.to_owned(),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
        let key_only = r#"[{"id":"g","name":"G","kind":"oidc","issuer":"https://g.example","client_id":"c","client_secret_key":"g"}]"#;
        assert!(parse(key_only).is_err(), "a key needs FEDERATION_SECRET_ID");
        let with_secret = FederationSettings::from_lookup(&|k: &str| match k {
            "FEDERATION_PROVIDERS" => Some(key_only.to_owned()),
            "FEDERATION_SECRET_ID" => Some("arn:fed".to_owned()),
            _ => None,
        })?;
        assert_eq!(
            with_secret.providers[0].secret,
            SecretRef::SecretsManager { id: "arn:fed".into(), key: Some("g".into()) }
        );
        let loopback = parse(&format!(r#"[{{"id":"x",{base},"issuer":"http://127.0.0.1:9000"}}]"#))?;
        assert_eq!(loopback.providers.len(), 1, "http on loopback is a provider on this machine");
        assert!(!format!("{:?}", gh.secret).is_empty());
        Ok(())
    }
}
