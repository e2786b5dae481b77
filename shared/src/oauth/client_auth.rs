//! Client authentication at the token, revocation and introspection endpoints
//! (RFC 6749 §2.3, §2.3.1): `client_secret_basic`, `client_secret_post` or `none`; exactly
//! one method per request, and the one the client registered.
use super::OAuthError;
use crate::App;
use crate::crypto::{ct_eq, sha256_b64};
use crate::domain::{AuthMethod, Client};
use base64::Engine;

/// Credentials as they arrived, before checking.
#[derive(Default)]
pub struct Credentials {
    /// Value of the `Authorization` header, if any.
    pub authorization: Option<String>,
    /// `client_id` form field.
    pub client_id: Option<String>,
    /// `client_secret` form field.
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

const MAX_ID: usize = crate::oauth::cimd::MAX_URL_LEN;
const MAX_SECRET: usize = 512;
/// SHA-256 of nothing in particular: unknown clients are compared against it so they
/// take the same path as a wrong secret.
const DUMMY_SECRET_HASH: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn invalid(basic: bool, d: &'static str) -> OAuthError {
    OAuthError::InvalidClient { description: d.into(), basic }
}

/// Run a client-authenticating endpoint (token, revocation, introspection) under the
/// per-address limit on failed client authentications: every `invalid_client` is counted,
/// and beyond the limit it becomes a 429. The success path reads no counter (no extra store
/// call per token), so a client that authenticates correctly is never locked out by someone
/// else failing from its address.
///
/// # Errors
/// `work`'s error, or `too_many_requests` in its place beyond the limit.
pub async fn counting_failures<T>(
    app: &App,
    source_ip: Option<std::net::IpAddr>,
    now: time::OffsetDateTime,
    work: impl std::future::Future<Output = Result<T, OAuthError>>,
) -> Result<T, OAuthError> {
    let out = work.await;
    if let Err(OAuthError::InvalidClient { .. }) = &out {
        super::abuse::count_failure(app, super::abuse::Limit::ClientAuthFailure, source_ip, now).await?;
    }
    out
}

/// Decode `Authorization: Basic …` per RFC 6749 §2.3.1: base64 of
/// `urlencode(client_id) ":" urlencode(client_secret)` with the
/// application/x-www-form-urlencoded algorithm (so `+` is a space).
///
/// # Errors
/// `invalid_client` (with the Basic challenge) for anything malformed.
pub fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    let bad = || invalid(true, "malformed Basic credentials");
    let (scheme, rest) = header.split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") || rest.len() > 4 * (MAX_ID + MAX_SECRET) {
        return Err(bad());
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(rest.trim()).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = raw.split_once(':').ok_or_else(bad)?;
    let id = form_decode(id).ok_or_else(bad)?;
    let secret = form_decode(secret).ok_or_else(bad)?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok((id, secret))
}

/// application/x-www-form-urlencoded decoding of one component; `None` if the result is
/// not UTF-8 or a `%` escape is broken.
pub fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Authenticate the client of a request.
///
/// # Errors
/// `invalid_request` when two methods are mixed; `invalid_client` for anything else that
/// fails (unknown client, wrong secret, wrong method, no credentials).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn authenticate(app: &App, creds: &Credentials) -> Result<Client, OAuthError> {
    let basic_header = creds
        .authorization
        .as_deref()
        .filter(|h| h.len() >= 6 && h.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("basic ")));
    if creds.authorization.is_some() && basic_header.is_none() {
        return Err(invalid(false, "unsupported Authorization scheme; use Basic"));
    }
    let (client_id, secret, method) = match (basic_header, &creds.client_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request("use exactly one client authentication method"));
        }
        (Some(h), None) => {
            let (id, secret) = parse_basic(h)?;
            if creds.client_id.as_deref().is_some_and(|body_id| body_id != id) {
                return Err(OAuthError::invalid_request("client_id does not match the Basic credentials"));
            }
            (id, Some(secret), AuthMethod::ClientSecretBasic)
        }
        (None, Some(secret)) => {
            let id = creds
                .client_id
                .clone()
                .ok_or_else(|| OAuthError::invalid_request("client_secret requires client_id"))?;
            (id, Some(secret.clone()), AuthMethod::ClientSecretPost)
        }
        (None, None) => match &creds.client_id {
            Some(id) => (id.clone(), None, AuthMethod::None),
            None => return Err(invalid(false, "client authentication is required")),
        },
    };
    let basic = method == AuthMethod::ClientSecretBasic;
    if client_id.len() > MAX_ID || secret.as_ref().is_some_and(|s| s.len() > MAX_SECRET) {
        return Err(invalid(basic, "client authentication failed"));
    }
    let client = crate::oauth::cimd::lookup(app, &client_id, app.clock.now().unix_timestamp()).await?;
    let presented = secret.as_deref().map(sha256_b64);
    let stored = client.as_ref().and_then(|c| c.secret_hash.as_deref()).unwrap_or(DUMMY_SECRET_HASH);
    // Same work whether the client exists or not: one SHA-256, one constant-time compare.
    let secret_ok = presented.as_deref().is_some_and(|p| ct_eq(p.as_bytes(), stored.as_bytes()));
    let Some(client) = client else {
        return Err(invalid(basic, "client authentication failed"));
    };
    if client.auth_method != method {
        // A client must use the method it registered; a confidential client sending only
        // its id is refused here as well.
        return Err(invalid(basic, "client authentication failed"));
    }
    if method != AuthMethod::None && !secret_ok {
        return Err(invalid(basic, "client authentication failed"));
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn basic_decoding_follows_rfc6749_2_3_1() {
        type Case = (&'static str, String, Option<(&'static str, &'static str)>);
        let cases: Vec<Case> = vec![
            ("plain", format!("Basic {}", b64("c1:s1")), Some(("c1", "s1"))),
            ("lowercase scheme", format!("basic {}", b64("c1:s1")), Some(("c1", "s1"))),
            ("encoded colon and percent", format!("Basic {}", b64("c3:a%3Ab%25c")), Some(("c3", "a:b%c"))),
            ("plus is space", format!("Basic {}", b64("c1:a+b")), Some(("c1", "a b"))),
            ("secret with raw colon", format!("Basic {}", b64("c1:a:b")), Some(("c1", "a:b"))),
            ("no colon", format!("Basic {}", b64("c1")), None),
            ("empty id", format!("Basic {}", b64(":s1")), None),
            ("not base64", "Basic !!!!".into(), None),
            ("broken escape", format!("Basic {}", b64("c1:%zz")), None),
            ("invalid utf8 escape", format!("Basic {}", b64("c1:%ff")), None),
            ("bearer", "Bearer abc".into(), None),
            ("no space", "Basic".into(), None),
        ];
        for (name, header, want) in cases {
            let got = parse_basic(&header).ok();
            let want = want.map(|(a, b)| (a.to_owned(), b.to_owned()));
            assert_eq!(got, want, "{name}");
        }
    }
}
