//! The pending authorization request as it travels through the login form: JSON, base64url,
//! MAC'd with HMAC-SHA256 and expiring. Nothing in it is secret; the MAC stops tampering and
//! the expiry and CSRF binding stop replays from elsewhere.
//!
//! The MAC key is [`crate::keys::FormKey`].
use crate::crypto::ct_eq;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// A validated authorization request waiting for the user's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    /// Unique id: a submission is accepted once.
    pub id: String,
    /// Client.
    pub client_id: String,
    /// Where the answer goes (a registered URI, or its loopback variant).
    pub redirect_uri: String,
    /// Whether the request carried `redirect_uri`.
    pub redirect_uri_sent: bool,
    /// Requested (and allowed) scope.
    pub scope: String,
    /// Client state, echoed back.
    pub state: Option<String>,
    /// OIDC nonce.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// Unix seconds after which the form is refused.
    pub expires_at: i64,
    /// SHA-256 of the CSRF cookie the form is bound to.
    pub csrf: String,
    /// A consent page for a signed-in user: the user whose live session must come with the
    /// form (no password on that page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The user a verified `id_token_hint` names: a login as anyone else is refused with
    /// `login_required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint_sub: Option<String>,
}

/// Seal `p` with `key`.
///
/// # Errors
/// Serialization failed.
pub fn seal(key: &hmac::Key, p: &PendingRequest) -> Result<String, serde_json::Error> {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(p)?);
    let tag = hmac::sign(key, body.as_bytes());
    Ok(format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())))
}

/// Open a sealed request: the MAC must verify (constant time) and it must not be expired.
/// `None` for anything else; the caller answers 400.
pub fn open(key: &hmac::Key, sealed: &str, now: i64) -> Option<PendingRequest> {
    if sealed.len() > 8192 {
        return None;
    }
    let (body, tag) = sealed.split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let expected = hmac::sign(key, body.as_bytes());
    if !ct_eq(expected.as_ref(), &tag) {
        return None;
    }
    let p: PendingRequest = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
    (p.expires_at >= now).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Secret;
    use crate::keys::{FormKey, FormKeyError, FormKeyOrigin, MIN_FORM_SECRET_LEN};

    fn sample() -> PendingRequest {
        PendingRequest {
            id: "r1".into(),
            client_id: "cl_1".into(),
            redirect_uri: "https://client.example/cb".into(),
            redirect_uri_sent: true,
            scope: "openid".into(),
            state: Some("s".into()),
            nonce: None,
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            expires_at: 1_000,
            csrf: "h".into(),
            sub: None,
            hint_sub: None,
        }
    }

    #[test]
    fn sealed_requests_open_until_expiry_and_refuse_tampering() -> Result<(), serde_json::Error> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
        let sealed = seal(&key, &sample())?;
        assert_eq!(open(&key, &sealed, 1_000), Some(sample()));
        assert_eq!(open(&key, &sealed, 1_001), None, "expired");
        assert_eq!(open(&hmac::Key::new(hmac::HMAC_SHA256, b"other"), &sealed, 0), None, "other key");
        let altered = seal(&key, &PendingRequest { scope: "openid data:write".into(), ..sample() })?;
        let (body, _) = altered.split_once('.').unwrap_or_default();
        let (_, tag) = sealed.split_once('.').unwrap_or_default();
        assert_eq!(open(&key, &format!("{body}.{tag}"), 0), None, "swapped body");
        for junk in ["", ".", "a.b", "!!.!!", &"x".repeat(9000)] {
            assert_eq!(open(&key, junk, 0), None, "{junk:.10}");
        }
        Ok(())
    }

    #[test]
    fn form_keys_from_the_same_secret_agree_and_short_secrets_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let value = Secret::new("a-form-key-secret-of-forty-characters-xx");
        let a = FormKey::from_secret("form-key", &value)?;
        let b = FormKey::from_secret("form-key", &value)?;
        let other = FormKey::from_secret("form-key", &Secret::new("another-form-key-secret-of-forty-chars-x"))?;
        let first = |k: &FormKey| k.keys().and_then(|v| v.into_iter().next()).ok_or("no key");
        let sealed = seal(&first(&a)?, &sample())?;
        assert_eq!(open(&first(&b)?, &sealed, 0), Some(sample()));
        assert_eq!(open(&first(&other)?, &sealed, 0), None);
        assert_eq!(a.origin(), &FormKeyOrigin::Secret("form-key".into()));
        assert!(a.require_shared().is_ok() && FormKey::from_key_set().require_shared().is_ok());
        let short = FormKey::from_secret("form-key", &Secret::new("x".repeat(MIN_FORM_SECRET_LEN - 1)));
        assert!(matches!(short, Err(FormKeyError::TooShort(ref id)) if id == "form-key"), "{short:?}");
        let err = FormKey::per_process()?.require_shared().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("FORM_KEY_SECRET_ID"), "{err}");
        assert!(!format!("{a:?}").contains("forty"), "the Debug output shows no key material");
        Ok(())
    }
}
