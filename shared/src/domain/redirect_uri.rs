//! Redirect URIs: what registration accepts (RFC 7591 §2, RFC 8252, RFC 9700 §2.1) and
//! how a requested URI is matched against a registered one (exact string, RFC 9700 §4.1.3).
use serde::{Deserialize, Serialize};

/// A registered redirect URI. The original string is kept byte for byte: matching is a
/// simple string comparison, so no normalisation may ever happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

const LOOPBACK_IPS: [&str; 2] = ["127.0.0.1", "[::1]"];

/// Whether `host` (as `url::Url::host_str` gives it) is a loopback host, where plain http
/// is allowed: `127.0.0.1`, `[::1]` or `localhost` (RFC 8252 §7.3, RFC 9700 §2.6). The one
/// definition for redirect URIs, the issuer, CORS origins and the JWKS URL.
pub fn is_loopback_host(host: &str) -> bool {
    LOOPBACK_IPS.contains(&host) || host == "localhost"
}

impl RedirectUri {
    /// Validate a URI offered at client registration.
    ///
    /// # Errors
    /// A human-readable reason, safe to return as `error_description`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 2000 {
            return Err("redirect URI must be 1 to 2000 characters".into());
        }
        // RFC 3986 allows none of these raw; browsers "fix" them in ways that defeat exact matching.
        if s.chars().any(|c| {
            c.is_control()
                || c.is_whitespace()
                || !c.is_ascii()
                || matches!(c, '\\' | '*' | '<' | '>' | '"' | '{' | '}' | '|' | '^' | '`')
        }) {
            return Err("redirect URI contains characters that are not allowed".into());
        }
        let url = url::Url::parse(s).map_err(|_| "redirect URI must be an absolute URI".to_owned())?;
        // "The endpoint URI MUST NOT include a fragment component." (RFC 6749 §3.1.2)
        if s.contains('#') {
            return Err("redirect URI must not contain a fragment".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("redirect URI must not contain user information".into());
        }
        let lower = s.to_ascii_lowercase();
        if lower.contains("%2e")
            || lower.contains("%2f")
            || lower.contains("%5c")
            || lower.contains("%00")
            || url.path().split('/').any(|seg| seg == ".." || seg == ".")
            || s.contains("/../")
            || s.contains("/./")
        {
            return Err("redirect URI must not contain dot segments or encoded separators".into());
        }
        match url.scheme() {
            "https" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err("https redirect URI must have a host".into());
                }
            }
            "http" => {
                // RFC 8252 §7.3 / RFC 9700 §2.6: plain http only for loopback redirects.
                let host = url.host_str().unwrap_or_default();
                if !is_loopback_host(host) {
                    return Err(
                        "http redirect URIs are allowed only on loopback hosts (127.0.0.1, [::1], localhost)".into()
                    );
                }
            }
            "javascript" | "data" | "file" | "vbscript" | "blob" | "about" | "ftp" | "ws" | "wss" => {
                return Err(format!("the {} scheme is not allowed for redirect URIs", url.scheme()));
            }
            scheme => {
                // RFC 8252 §7.1: private-use schemes are reverse domain names.
                if !scheme.contains('.') {
                    return Err(
                        "private-use URI schemes must be reverse domain names (e.g. com.example.app:/cb)".into()
                    );
                }
            }
        }
        Ok(Self(s.to_owned()))
    }

    /// The URI exactly as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `requested` designates this registered URI: an exact string match, except
    /// that for `http://127.0.0.1`, `http://[::1]` and `http://localhost` redirect URIs any
    /// port is accepted ("The authorization server MUST allow any port to be specified at the
    /// time of the request for loopback IP redirect URIs", RFC 8252 §7.3; `localhost` too,
    /// which the metadata documents of common MCP clients list).
    pub fn matches(&self, requested: &str) -> bool {
        if self.0 == requested {
            return true;
        }
        match (loopback_without_port(&self.0), loopback_without_port(requested)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }
}

/// For `http://127.0.0.1[:port]/rest`, `http://[::1][:port]/rest` or
/// `http://localhost[:port]/rest`, the string with the port removed; `None` for anything
/// else. Works on the raw string, never a parsed form. (RFC 8252 §7.3: native apps listen
/// on an ephemeral port, and the metadata documents of common MCP clients list portless
/// loopback URIs, `localhost` among them.)
fn loopback_without_port(s: &str) -> Option<String> {
    let rest = s.strip_prefix("http://")?;
    let ip = LOOPBACK_IPS.into_iter().chain(["localhost"]).find(|ip| rest.starts_with(ip))?;
    let after = rest.get(ip.len()..)?;
    let tail = match after.strip_prefix(':') {
        Some(p) => {
            let digits = p.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 5 {
                return None;
            }
            p.get(digits..)?
        }
        None => after,
    };
    if !(tail.is_empty() || tail.starts_with('/') || tail.starts_with('?')) {
        return None;
    }
    Some(format!("http://{ip}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_accepts_and_refuses_per_contract() {
        let cases = [
            ("https", "https://client.example/cb", true),
            ("https with query", "https://client.example/cb?x=1", true),
            ("loopback v4", "http://127.0.0.1/cb", true),
            ("loopback v6", "http://[::1]:8080/cb", true),
            ("localhost", "http://localhost:3000/cb", true),
            ("private-use", "com.example.app:/cb", true),
            ("http remote", "http://a.test/cb", false),
            ("fragment", "https://a.test/cb#x", false),
            ("wildcard", "https://*.a.test/cb", false),
            ("javascript", "javascript:alert(1)", false),
            ("data", "data:text/html,hi", false),
            ("private-use without dot", "myapp:/cb", false),
            ("relative", "/cb", false),
            ("userinfo", "https://user@a.test/cb", false),
            ("backslash", "https://a.test\\@b.test/cb", false),
            ("dot segment", "https://a.test/x/../cb", false),
            ("encoded dot", "https://a.test/%2e%2e/cb", false),
            ("space", "https://a.test/c b", false),
            ("empty", "", false),
            ("non-ascii host", "https://clіent.example/cb", false),
        ];
        for (name, uri, ok) in cases {
            assert_eq!(RedirectUri::parse(uri).is_ok(), ok, "{name}: {uri}");
        }
    }

    #[test]
    fn matching_is_exact_except_loopback_port() -> Result<(), String> {
        let web = RedirectUri::parse("https://client.example/cb")?;
        assert!(web.matches("https://client.example/cb"));
        for v in [
            "https://client.example/cb/",
            "https://CLIENT.example/cb",
            "https://client.example:443/cb",
            "https://client.example/cb?x=1",
            "http://client.example/cb",
            "",
        ] {
            assert!(!web.matches(v), "{v}");
        }
        let native = RedirectUri::parse("http://127.0.0.1/cb")?;
        assert!(native.matches("http://127.0.0.1:51234/cb"));
        for v in [
            "http://127.0.0.1:51234/cb2",
            "http://localhost:51234/cb",
            "http://127.0.0.1.evil.test/cb",
            "https://127.0.0.1:51234/cb",
            "http://127.0.0.1:/cb",
            "http://127.0.0.1:1x/cb",
        ] {
            assert!(!native.matches(v), "{v}");
        }
        // `localhost` too, on any port, and only itself (not another name that starts with it).
        let named = RedirectUri::parse("http://localhost/callback")?;
        assert!(named.matches("http://localhost:33418/callback") && named.matches("http://localhost/callback"));
        for v in ["http://localhost.evil.test/callback", "http://localhost:1/other", "http://127.0.0.1:1/callback"] {
            assert!(!named.matches(v), "{v}");
        }
        Ok(())
    }
}
