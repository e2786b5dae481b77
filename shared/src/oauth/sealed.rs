//! What a page's form carries back to the server, sealed: the pending authorization request
//! of the login form, the sign-out request of the logout confirmation, the account page's
//! sign-in. JSON, base64url, MAC'd with HMAC-SHA256 over its purpose and body (so one kind
//! never opens as another), expiring. Nothing in it is secret; the MAC stops tampering and
//! the expiry and CSRF binding stop replays from elsewhere.
//!
//! The MAC key is [`crate::keys::FormKey`].
use crate::App;
use crate::crypto::ct_eq;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A document a form carries sealed.
pub trait Sealable: Serialize + DeserializeOwned {
    /// What it is for: part of the MAC input.
    const PURPOSE: &'static str;
    /// Unix seconds after which it is refused.
    fn expires_at(&self) -> i64;
}

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
    /// The resource servers asked for (RFC 8707).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<crate::domain::ResourceId>,
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
    /// The request had `prompt=login`: an upstream provider is asked to sign the user in
    /// again too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prompt_login: bool,
    /// The request's `max_age`: passed to an upstream provider, and its `auth_time` checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    /// `dpop_jkt` (RFC 9449 §10): the code will be bound to this DPoP key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    /// A device's request (RFC 8628) entered at the verification page: allowing it
    /// approves the device instead of redirecting with a code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceRef>,
}

/// The device request a login and consent page answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRef {
    /// SHA-256 of its device code.
    pub hash: String,
    /// Its user code, as shown (`BCDF-GHJK`).
    pub user_code: String,
    /// When it expires (unix seconds).
    pub expires_at: i64,
}

impl Sealable for PendingRequest {
    const PURPOSE: &'static str = "authorize";
    fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

fn tag<T: Sealable>(key: &hmac::Key, body: &str) -> hmac::Tag {
    hmac::sign(key, format!("oauth-core/sealed/v1|{}|{body}", T::PURPOSE).as_bytes())
}

/// Seal `p` with `key`.
///
/// # Errors
/// Serialization failed.
pub fn seal<T: Sealable>(key: &hmac::Key, p: &T) -> Result<String, serde_json::Error> {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(p)?);
    let tag = tag::<T>(key, &body);
    Ok(format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())))
}

/// Open a sealed document: the MAC must verify (constant time) and it must not be expired.
/// `None` for anything else; the caller answers 400.
pub fn open<T: Sealable>(key: &hmac::Key, sealed: &str, now: i64) -> Option<T> {
    if sealed.len() > 8192 {
        return None;
    }
    let (body, tag_b64) = sealed.split_once('.')?;
    let presented = URL_SAFE_NO_PAD.decode(tag_b64).ok()?;
    if !ct_eq(tag::<T>(key, body).as_ref(), &presented) {
        return None;
    }
    let p: T = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
    (p.expires_at() >= now).then_some(p)
}

/// Open `sealed` under any of the app's form keys. Sealed with a key this process does not
/// hold yet (the form-key secret was rotated and another container already has the new
/// value), the keys are re-read once, rate-limited, and it is tried again.
pub async fn open_with_app<T: Sealable>(app: &App, sealed: &str, now: i64) -> Option<T> {
    if sealed.is_empty() {
        return None;
    }
    let try_open = || app.form_keys().iter().find_map(|k| open::<T>(k, sealed, now));
    match try_open() {
        Some(p) => Some(p),
        None if app.refresh_form_keys(now, true).await => try_open(),
        None => None,
    }
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
            resources: vec![],
            state: Some("s".into()),
            nonce: None,
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            expires_at: 1_000,
            csrf: "h".into(),
            sub: None,
            hint_sub: None,
            prompt_login: false,
            max_age: None,
            dpop_jkt: None,
            device: None,
        }
    }

    #[test]
    fn sealed_requests_open_until_expiry_and_refuse_tampering() -> Result<(), serde_json::Error> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
        let sealed = seal(&key, &sample())?;
        assert_eq!(open(&key, &sealed, 1_000), Some(sample()));
        assert_eq!(open::<PendingRequest>(&key, &sealed, 1_001), None, "expired");
        assert_eq!(open::<PendingRequest>(&hmac::Key::new(hmac::HMAC_SHA256, b"other"), &sealed, 0), None, "other key");
        let altered = seal(&key, &PendingRequest { scope: "openid data:write".into(), ..sample() })?;
        let (body, _) = altered.split_once('.').unwrap_or_default();
        let (_, tag) = sealed.split_once('.').unwrap_or_default();
        assert_eq!(open::<PendingRequest>(&key, &format!("{body}.{tag}"), 0), None, "swapped body");
        for junk in ["", ".", "a.b", "!!.!!", &"x".repeat(9000)] {
            assert_eq!(open::<PendingRequest>(&key, junk, 0), None, "{junk:.10}");
        }
        Ok(())
    }

    /// The same body sealed for another purpose does not open: a sealed document of one
    /// form never stands for another's.
    #[test]
    fn a_document_sealed_for_one_purpose_does_not_open_as_another() -> Result<(), serde_json::Error> {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Other(PendingRequest);
        impl Sealable for Other {
            const PURPOSE: &'static str = "other";
            fn expires_at(&self) -> i64 {
                self.0.expires_at
            }
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
        let as_other = seal(&key, &Other(sample()))?;
        assert_eq!(open::<Other>(&key, &as_other, 0), Some(Other(sample())));
        // Same JSON shape (a newtype serializes as its content), other purpose: refused.
        assert_eq!(open::<PendingRequest>(&key, &as_other, 0), None);
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
        assert_eq!(open::<PendingRequest>(&first(&other)?, &sealed, 0), None);
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
