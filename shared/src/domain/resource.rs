//! Resource servers (the APIs tokens are for) and their identifiers (RFC 8707 §2).
use super::redirect_uri::is_loopback_host;
use super::scope::Scope;
use serde::{Deserialize, Serialize};

/// Longest resource identifier accepted.
pub const MAX_RESOURCE_LEN: usize = 512;
/// Most scopes one resource server defines.
pub const MAX_RESOURCE_SCOPES: usize = 32;

/// A resource identifier in its canonical form: an absolute `https` URI (or `http` on a
/// loopback host) without fragment or user information. Canonical means as the `url` crate
/// serialises it (scheme and host lower case, default port dropped), and without the `/` a
/// pathless URI gets: `https://mcp.example.com/` and `https://mcp.example.com` are one
/// resource (the MCP TypeScript SDK sends the first for the second).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceId(String);

impl ResourceId {
    /// Parse a `resource` value or a registered identifier.
    ///
    /// # Errors
    /// Why it is not a valid identifier (safe to return as `error_description`).
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.is_empty() || s.len() > MAX_RESOURCE_LEN {
            return Err("a resource must be 1 to 512 characters");
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace() || !c.is_ascii()) {
            return Err("a resource must be a URI without spaces or control characters");
        }
        // "MUST NOT include a fragment component" (RFC 8707 §2).
        if s.contains('#') {
            return Err("a resource must not contain a fragment");
        }
        let url = url::Url::parse(s).map_err(|_| "a resource must be an absolute URI")?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err("a resource must not contain user information");
        }
        let host = url.host_str().unwrap_or_default();
        match url.scheme() {
            "https" if !host.is_empty() => {}
            "http" if is_loopback_host(host) => {}
            _ => return Err("a resource must be an https URI (http only on a loopback host)"),
        }
        let mut canonical = String::from(url);
        if url::Url::parse(&canonical).is_ok_and(|u| u.path() == "/" && u.query().is_none()) {
            canonical.pop();
        }
        Ok(Self(canonical))
    }
    /// The canonical form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ResourceId {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ResourceId> for String {
    fn from(r: ResourceId) -> Self {
        r.0
    }
}

impl std::fmt::Display for ResourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A scope a resource server defines, with the words the consent page shows for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeDef {
    /// The scope.
    pub scope: Scope,
    /// Plain words for the consent page.
    pub description: String,
}

/// A resource server: an API tokens are issued for (their `aud`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceServer {
    /// Its identifier: the `resource` value and the tokens' `aud`.
    pub id: ResourceId,
    /// Shown on the consent page and in its protected-resource metadata.
    pub name: String,
    /// The scopes it defines (none of them an OpenID Connect scope, none defined by another
    /// resource server).
    pub scopes: Vec<ScopeDef>,
    /// Lifetime of its access tokens, in seconds.
    pub access_token_ttl: i64,
}

impl ResourceServer {
    /// Shortest and longest access-token lifetime an operator may set, in seconds.
    pub const TTL_RANGE: std::ops::RangeInclusive<i64> = 60..=86_400;

    /// Check what an operator registers: a name of 1 to 100 printable characters, at most
    /// [`MAX_RESOURCE_SCOPES`] distinct scopes (no OpenID Connect one) with descriptions of 1
    /// to 200 characters, and a lifetime in [`Self::TTL_RANGE`].
    ///
    /// # Errors
    /// What is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let printable =
            |s: &str, max: usize| !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control);
        if !printable(&self.name, 100) {
            return Err("the name must be 1 to 100 printable characters".into());
        }
        if self.scopes.len() > MAX_RESOURCE_SCOPES {
            return Err(format!("a resource server defines at most {MAX_RESOURCE_SCOPES} scopes"));
        }
        for (i, d) in self.scopes.iter().enumerate() {
            if d.scope.is_user_scope() {
                return Err(format!("{} is an OpenID Connect scope, not a resource's", d.scope));
            }
            if self.scopes.iter().take(i).any(|e| e.scope == d.scope) {
                return Err(format!("{} is listed twice", d.scope));
            }
            if !printable(&d.description, 200) {
                return Err(format!("the description of {} must be 1 to 200 printable characters", d.scope));
            }
        }
        if !Self::TTL_RANGE.contains(&self.access_token_ttl) {
            return Err("the access-token lifetime must be 60 to 86400 seconds".into());
        }
        Ok(())
    }

    /// Whether it defines `scope`.
    pub fn defines(&self, scope: &Scope) -> bool {
        self.scopes.iter().any(|d| &d.scope == scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_absolute_https_without_fragment_and_pathless_ones_lose_the_slash() {
        let ok = [
            ("https://mcp.example.com", "https://mcp.example.com"),
            ("https://mcp.example.com/", "https://mcp.example.com"),
            ("HTTPS://MCP.Example.com:443/", "https://mcp.example.com"),
            ("https://api.example.com/v1/", "https://api.example.com/v1/"),
            ("https://api.example.com/mcp", "https://api.example.com/mcp"),
            ("https://api.example.com/?tenant=1", "https://api.example.com/?tenant=1"),
            ("http://127.0.0.1:3000/api", "http://127.0.0.1:3000/api"),
            ("http://localhost:8080", "http://localhost:8080"),
        ];
        for (input, want) in ok {
            assert_eq!(ResourceId::parse(input).map(String::from), Ok(want.to_owned()), "{input}");
        }
        let bad = [
            "",
            "/api",
            "api.example.com",
            "https://api.example.com/#x",
            "https://api.example.com/api#",
            "http://api.example.com",
            "ftp://api.example.com",
            "urn:example:api",
            "https://user:pw@api.example.com",
            "https://api.example.com/a b",
            "https://api.example.com/\u{e9}",
        ];
        for input in bad {
            assert!(ResourceId::parse(input).is_err(), "{input:?} must be refused");
        }
        assert!(ResourceId::parse(&format!("https://a.example/{}", "x".repeat(MAX_RESOURCE_LEN))).is_err());
    }

    #[test]
    fn an_operators_resource_server_is_checked() {
        let scope = |s: &str| ScopeDef { scope: Scope::parse(s).expect("valid"), description: "Read".into() };
        let ok = ResourceServer {
            id: ResourceId::parse("https://orders.example.com").expect("valid"),
            name: "Orders".into(),
            scopes: vec![scope("orders:read"), scope("orders:write")],
            access_token_ttl: 600,
        };
        assert_eq!(ok.validate(), Ok(()));
        let cases = [
            ResourceServer { name: " ".into(), ..ok.clone() },
            ResourceServer { scopes: vec![scope("openid")], ..ok.clone() },
            ResourceServer { scopes: vec![scope("orders:read"), scope("orders:read")], ..ok.clone() },
            ResourceServer { access_token_ttl: 10, ..ok.clone() },
            ResourceServer { access_token_ttl: 90_000, ..ok.clone() },
            ResourceServer {
                scopes: vec![ScopeDef { scope: Scope::DATA_READ, description: String::new() }],
                ..ok.clone()
            },
        ];
        for case in cases {
            assert!(case.validate().is_err(), "{case:?}");
        }
    }
}
