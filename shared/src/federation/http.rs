//! The HTTP client toward upstream providers: a short timeout (`FEDERATION_TIMEOUT_MS`), no
//! redirects followed, no proxy, at most [`MAX_RESPONSE_BYTES`] read, JSON only. Built with
//! the `federation` feature (the authorize function and the local server); without it every
//! call fails, so a build without the HTTPS client cannot sign anyone in upstream.
use super::UpstreamError;
use crate::crypto::Secret;

/// The largest upstream response read (discovery, JWKS, token, user API).
#[cfg_attr(not(feature = "federation"), allow(dead_code))]
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// How a request authenticates to the upstream.
#[cfg_attr(not(feature = "federation"), allow(dead_code))]
pub enum Auth<'a> {
    /// None (discovery, JWKS).
    None,
    /// HTTP Basic with the form-urlencoded client id and secret (RFC 6749 §2.3.1).
    Basic(&'a str, &'a Secret),
    /// A bearer token (GitHub's user API).
    Bearer(&'a str),
}

#[cfg(feature = "federation")]
mod client {
    use super::{Auth, MAX_RESPONSE_BYTES, UpstreamError};
    use std::time::Duration;

    /// The upstream HTTP client.
    pub struct Http(reqwest::Client);

    impl Http {
        /// A client whose every call ends within `timeout_ms`.
        ///
        /// # Errors
        /// The TLS configuration could not be built.
        pub fn new(timeout_ms: u64) -> Result<Self, String> {
            let timeout = Duration::from_millis(timeout_ms);
            reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .user_agent(concat!("oauth-core/", env!("CARGO_PKG_VERSION"), " (federation)"))
                .build()
                .map(Self)
                .map_err(|e| format!("the upstream HTTP client: {e}"))
        }

        /// `GET url` (or `POST` of `form`) and the JSON body of a 2xx answer; with `Some`
        /// `accept_errors`, a 4xx JSON body too (a token endpoint's `error`).
        pub async fn json(
            &self,
            url: &str,
            form: Option<&[(&str, &str)]>,
            auth: Auth<'_>,
            accept: &str,
        ) -> Result<(u16, serde_json::Value), UpstreamError> {
            let mut req = match form {
                Some(f) => self.0.post(url).form(f),
                None => self.0.get(url),
            };
            req = req.header(http::header::ACCEPT, accept);
            req = match auth {
                Auth::None => req,
                Auth::Basic(id, secret) => {
                    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                    req.basic_auth(enc(id), Some(enc(secret.expose())))
                }
                Auth::Bearer(token) => req.bearer_auth(token),
            };
            let mut resp = req.send().await.map_err(|e| unreachable(url, &e))?;
            let status = resp.status().as_u16();
            if !(200..500).contains(&status) || (300..400).contains(&status) {
                return Err(UpstreamError::Refused(format!("{url} answered {status}")));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| unreachable(url, &e))? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(UpstreamError::Refused(format!("{url} answered more than {MAX_RESPONSE_BYTES} bytes")));
                }
                body.extend_from_slice(&chunk);
            }
            let value = serde_json::from_slice(&body)
                .map_err(|_| UpstreamError::Refused(format!("{url} answered {status} without JSON")))?;
            Ok((status, value))
        }
    }

    fn unreachable(url: &str, e: &reqwest::Error) -> UpstreamError {
        let why = if e.is_timeout() { "timed out" } else { "could not be reached" };
        UpstreamError::Unreachable(format!("{url} {why}: {e}"))
    }
}

#[cfg(not(feature = "federation"))]
mod client {
    use super::{Auth, UpstreamError};

    /// No upstream HTTP client in this build.
    pub struct Http;

    impl Http {
        /// A client that refuses every call.
        ///
        /// # Errors
        /// Never.
        pub fn new(_timeout_ms: u64) -> Result<Self, String> {
            Ok(Self)
        }

        /// Always fails: this build has no upstream HTTP client.
        pub async fn json(
            &self,
            _url: &str,
            _form: Option<&[(&str, &str)]>,
            _auth: Auth<'_>,
            _accept: &str,
        ) -> Result<(u16, serde_json::Value), UpstreamError> {
            Err(UpstreamError::Config("this build has no upstream HTTP client (feature federation)".into()))
        }
    }
}

pub use client::Http;
