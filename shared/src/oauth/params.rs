//! Form and query parameters (application/x-www-form-urlencoded) with the RFC 6749 §3.1
//! rules: "Parameters sent without a value MUST be treated as if they were omitted" and
//! "Request and response parameters MUST NOT be included more than once."
use super::OAuthError;
use super::client_auth::form_decode;

/// Most parameters a request may carry; more is an attack, not a client.
pub const MAX_PARAMS: usize = 64;
/// The parameters that may be sent more than once: RFC 8707 §2 `resource` ("may use
/// multiple resource parameters"). Every other repeat is refused.
pub const MULTI_VALUED: [&str; 1] = ["resource"];

/// Decoded parameters, in arrival order, without empty values.
#[derive(Default)]
pub struct Params(Vec<(String, String)>);

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets (client_secret, token, code); show names only.
        f.debug_list().entries(self.0.iter().map(|(k, _)| k)).finish()
    }
}

impl Params {
    /// Parse `a=b&c=d`. Every name must be unique among non-empty values.
    ///
    /// # Errors
    /// `invalid_request` for invalid UTF-8, broken escapes, repeats or too many parameters.
    pub fn parse(raw: &[u8]) -> Result<Self, OAuthError> {
        let (params, repeated) = Self::parse_lenient(raw)?;
        match repeated.first() {
            Some(k) => Err(OAuthError::invalid_request(format!("parameter {} is repeated", truncate(k)))),
            None => Ok(params),
        }
    }

    /// Like [`Params::parse`], but a repeated parameter is reported instead of refused (the
    /// first value is kept), so the authorization endpoint can decide whether it may redirect.
    ///
    /// # Errors
    /// `invalid_request` for invalid UTF-8, broken escapes or too many parameters.
    pub fn parse_lenient(raw: &[u8]) -> Result<(Self, Vec<String>), OAuthError> {
        let raw = std::str::from_utf8(raw).map_err(|_| OAuthError::invalid_request("parameters must be UTF-8"))?;
        let mut out: Vec<(String, String)> = Vec::new();
        let mut repeated: Vec<String> = Vec::new();
        let mut seen = 0usize;
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            seen += 1;
            if seen > MAX_PARAMS {
                return Err(OAuthError::invalid_request("too many parameters"));
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = form_decode(k).ok_or_else(|| OAuthError::invalid_request("malformed parameter encoding"))?;
            let v = form_decode(v).ok_or_else(|| OAuthError::invalid_request("malformed parameter encoding"))?;
            if k.is_empty() || v.is_empty() {
                continue;
            }
            if v.contains('\0') {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} contains a NUL character",
                    truncate(&k)
                )));
            }
            if !MULTI_VALUED.contains(&k.as_str()) && out.iter().any(|(name, _)| *name == k) {
                if !repeated.contains(&k) {
                    repeated.push(k);
                }
                continue;
            }
            out.push((k, v));
        }
        Ok((Self(out), repeated))
    }

    /// The value of `name`, if present and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a [`MULTI_VALUED`] parameter, in arrival order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// The value of `name`, or `invalid_request` naming it.
    ///
    /// # Errors
    /// The parameter is missing.
    pub fn require(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
    }
}

fn truncate(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_rules() {
        let ok = Params::parse(b"grant_type=client_credentials&scope=data%3Aread+openid&empty=&x").ok();
        let ok = ok.as_ref();
        assert_eq!(ok.and_then(|p| p.get("scope")), Some("data:read openid"));
        assert_eq!(ok.and_then(|p| p.get("empty")), None);
        let bad: [(&str, &[u8]); 5] = [
            ("repeated", b"a=1&a=2"),
            ("invalid utf8", b"a=%ff"),
            ("raw invalid utf8", b"a=\xff"),
            ("broken escape", b"a=%4"),
            ("nul", b"a=x%00y"),
        ];
        for (name, raw) in bad {
            assert!(matches!(Params::parse(raw), Err(OAuthError::InvalidRequest(_))), "{name}");
        }
        let many = (0..65).map(|i| format!("p{i}=v")).collect::<Vec<_>>().join("&");
        assert!(Params::parse(many.as_bytes()).is_err());
        // An empty repeat is "omitted", not a repeat.
        assert!(Params::parse(b"a=1&a=").is_ok());
        // `resource` may repeat (RFC 8707 §2); its values come back in order.
        let multi = Params::parse(b"resource=https%3A%2F%2Fa.example&resource=https%3A%2F%2Fb.example").ok();
        assert_eq!(multi.as_ref().map(|p| p.get_all("resource")), Some(vec!["https://a.example", "https://b.example"]));
    }
}
