//! Fetching a metadata document over HTTPS, defensively: the host's addresses are resolved
//! once, and refused if any is special-use; the connection goes to exactly the addresses
//! that passed (so DNS rebinding between a check and the connection cannot happen); no
//! proxy, no redirect, a short timeout, at most [`MAX_DOCUMENT_BYTES`] read.
use super::address::is_special_use;
use crate::config::CimdSettings;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The largest document read (draft-ietf-oauth-client-id-metadata-document: "5 kilobytes").
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;

/// A fetched document: its bytes and its `Cache-Control` max-age, if any.
pub struct Fetched {
    /// The body.
    pub body: Vec<u8>,
    /// Seconds it may be cached (`max-age`; 0 for `no-store`/`no-cache`), if the server said.
    pub max_age: Option<i64>,
}

/// The HTTPS client for metadata documents.
pub struct Fetcher {
    http: reqwest::Client,
    allow_loopback: bool,
}

/// Resolves names only to addresses that are not special-use.
struct GuardedResolver {
    allow_loopback: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            // Every address, not just one: a name with one public and one private address
            // could otherwise be connected to the private one.
            if let Some(bad) = addrs.iter().find(|a| refused(a.ip(), allow_loopback)) {
                return Err(format!("{host} resolves to a special-use address ({})", bad.ip()).into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

fn refused(ip: IpAddr, allow_loopback: bool) -> bool {
    is_special_use(ip) && !(allow_loopback && ip.is_loopback())
}

impl Fetcher {
    /// A client per `settings` (the test switch: loopback allowed, an extra trusted CA).
    ///
    /// # Errors
    /// The CA file cannot be read or the client cannot be built.
    pub fn new(settings: &CimdSettings) -> Result<Self, String> {
        let allow_loopback = settings.test_loopback_ca.is_some();
        let timeout = Duration::from_millis(settings.timeout_ms);
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .https_only(true)
            .user_agent(concat!("oauth-core/", env!("CARGO_PKG_VERSION"), " (client metadata fetcher)"))
            .dns_resolver(Arc::new(GuardedResolver { allow_loopback }));
        if let Some(path) = &settings.test_loopback_ca {
            let pem = std::fs::read(path).map_err(|e| format!("CIMD_TEST_LOOPBACK_CA_FILE {}: {e}", path.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("CIMD_TEST_LOOPBACK_CA_FILE: {e}"))?;
            builder = builder.tls_certs_merge([cert]);
        }
        let http = builder.build().map_err(|e| format!("the HTTPS client: {e}"))?;
        Ok(Self { http, allow_loopback })
    }

    /// Fetch `url` (already checked: https, no user information, no fragment).
    ///
    /// # Errors
    /// Why the document could not be had, in words a client may see.
    pub async fn get(&self, url: &url::Url) -> Result<Fetched, String> {
        // An address written in the URL is not resolved: check it here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if literal.is_some_and(|ip| refused(ip, self.allow_loopback)) {
            return Err("the document's host is a special-use address".into());
        }
        let mut resp = self
            .http
            .get(url.as_str())
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| describe(&e))?;
        if resp.status().is_redirection() {
            return Err("the document's URL answered with a redirect, which is not followed".into());
        }
        if resp.status() != reqwest::StatusCode::OK {
            return Err(format!("the document's URL answered {}", resp.status().as_u16()));
        }
        if resp.content_length().is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
            return Err("the document is larger than 5 KiB".into());
        }
        let max_age = resp.headers().get(http::header::CACHE_CONTROL).and_then(|v| v.to_str().ok()).and_then(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err("the document is larger than 5 KiB".into());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, max_age })
    }
}

/// A fetch failure in a client's words (the cause is logged, not shown).
fn describe(e: &reqwest::Error) -> String {
    tracing::info!(error = %e, "client metadata document fetch failed");
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = source {
        if cause.to_string().contains("special-use address") {
            return "the document's host resolves to a special-use address".into();
        }
        source = cause.source();
    }
    if e.is_timeout() {
        "fetching the document timed out".into()
    } else if e.is_connect() {
        "the document's host could not be reached".into()
    } else {
        "the document could not be fetched".into()
    }
}

/// The `max-age` of a `Cache-Control` value; 0 for `no-store` or `no-cache`.
pub fn max_age(cache_control: &str) -> Option<i64> {
    let mut age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(0);
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            age = v.trim_matches('"').parse::<i64>().ok().map(|n| n.max(0));
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_gives_the_max_age_or_zero() {
        let cases = [
            ("max-age=600", Some(600)),
            ("public, max-age=3600", Some(3600)),
            ("Max-Age=\"60\"", Some(60)),
            ("no-store", Some(0)),
            ("max-age=600, no-cache", Some(0)),
            ("max-age=-5", Some(0)),
            ("max-age=soon", None),
            ("public", None),
        ];
        for (header, want) in cases {
            assert_eq!(max_age(header), want, "{header}");
        }
    }
}
