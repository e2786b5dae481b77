//! Upstream identity federation, the flow (docs/API.md, "Federation"; docs/SECURITY.md V1-V6):
//! a sign-in (or an account link) begins by sending the browser to the provider with a
//! fresh `state`, `nonce` and PKCE S256 challenge, all kept in a sealed, short-lived,
//! HttpOnly flow cookie that is also bound to the browser's CSRF cookie; the provider's
//! answer comes back to the callback of that provider only, which checks, in this order: the
//! flow cookie, the provider it was begun with (the mix-up defence, RFC 9700 §4.4), `state`
//! (constant time), RFC 9207 `iss`, that the flow is used once, and only then exchanges the
//! code and validates the identity ([`crate::federation`]). Nothing of the downstream
//! request (its scopes, `resource`, PKCE values) is sent upstream.
mod accounts;
mod callback;
pub use accounts::{LinkOutcome, link, unlink};
pub use callback::{Callback, CallbackOutcome, callback};

use super::sealed::{self, PendingRequest, Sealable};
use crate::App;
use crate::crypto::{random_id, random_token, sha256_b64};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How long a sign-in at a provider may take.
pub const FLOW_TTL_SECONDS: i64 = 600;
/// Name of the flow cookie on an `http` (loopback) issuer.
pub const FLOW_COOKIE: &str = "oauth_federation";
/// Its name on an `https` issuer (`__Host-`: `Secure`, `Path=/`, host-only).
pub const FLOW_COOKIE_HOST: &str = "__Host-oauth_federation";

/// What the sign-in at the provider is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Purpose {
    /// Signing in to answer a pending authorization request.
    SignIn {
        /// The authorization request, as the login page sealed it.
        pending: Box<PendingRequest>,
    },
    /// Linking the identity to the signed-in user `sub` (from the account page), whose
    /// session `session` (its id hash) must still be this browser's at the callback.
    Link {
        /// The user.
        sub: String,
        /// Their session's id hash.
        session: String,
    },
}

/// The flow cookie's sealed content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowState {
    /// Unique id: the callback accepts it once.
    pub id: String,
    /// The provider the flow was begun with: only its callback accepts it.
    pub provider: String,
    /// The `state` sent upstream (256 random bits).
    pub state: String,
    /// The `nonce` sent upstream (256 random bits).
    pub nonce: String,
    /// The PKCE verifier (256 random bits; its S256 challenge was sent upstream).
    pub verifier: String,
    /// SHA-256 of the CSRF cookie of the browser that began it.
    pub csrf: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// What it is for.
    pub purpose: Purpose,
}

impl Sealable for FlowState {
    const PURPOSE: &'static str = "federation";
    fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

/// The callback URI registered at provider `id`.
pub fn callback_uri(app: &App, id: &str) -> String {
    app.settings.url(&format!("/federation/{id}/callback"))
}

/// The flow cookie's name for this issuer.
pub fn flow_cookie_name(app: &App) -> &'static str {
    if app.settings.is_https() { FLOW_COOKIE_HOST } else { FLOW_COOKIE }
}

/// What [`begin`] did.
#[derive(Debug)]
pub enum Begun {
    /// Send the browser to `location` with the flow cookie `flow_cookie`.
    Redirect {
        /// The provider's authorization request.
        location: String,
        /// The sealed flow cookie.
        flow_cookie: String,
    },
    /// No provider has this id.
    UnknownProvider,
    /// The provider's discovery document could not be had (its name, for the page).
    Unavailable(String),
}

/// Begin a sign-in at `provider` for `purpose`, bound to `csrf_cookie`; `(prompt_login,
/// max_age)` of the downstream request are asked of the provider too.
pub async fn begin(
    app: &App,
    provider: &str,
    purpose: Purpose,
    csrf_cookie: &str,
    (prompt_login, max_age): (bool, Option<i64>),
    now: OffsetDateTime,
) -> Begun {
    let Some(up) = app.federation.get(provider) else { return Begun::UnknownProvider };
    let now = now.unix_timestamp();
    let endpoint = match app.federation.authorization_endpoint(up, now).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(provider = %provider, error = %e, "upstream provider unavailable");
            return Begun::Unavailable(up.config.name.clone());
        }
    };
    let (Ok(id), Ok(state), Ok(nonce), Ok(verifier)) =
        (random_id("fed_"), random_token(), random_token(), random_token())
    else {
        return Begun::Unavailable(up.config.name.clone());
    };
    let redirect_uri = callback_uri(app, provider);
    let challenge = crate::oauth::pkce::s256(&verifier);
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", up.config.client_id.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("scope", up.config.scopes.as_str()),
        ("state", state.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let is_oidc = matches!(up.config.kind, crate::config::ProviderKind::Oidc { .. });
    if is_oidc {
        params.push(("nonce", nonce.as_str()));
    }
    let max_age = max_age.map(|m| m.to_string());
    if is_oidc && prompt_login {
        params.push(("prompt", "login"));
    }
    if let (true, Some(m)) = (is_oidc, max_age.as_deref()) {
        params.push(("max_age", m));
    }
    let location = super::authorize::redirect_to(&endpoint, &params);
    let flow = FlowState {
        id,
        provider: provider.to_owned(),
        state,
        nonce,
        verifier,
        csrf: sha256_b64(csrf_cookie),
        expires_at: now + FLOW_TTL_SECONDS,
        purpose,
    };
    match sealed::seal(&app.form_key(), &flow) {
        // A browser keeps cookies up to 4096 bytes: a larger flow could not come back.
        Ok(cookie) if cookie.len() <= 3800 => {
            tracing::info!(event = "federation_started", provider = %provider, flow = %flow.id, "sent to the upstream provider");
            Begun::Redirect { location, flow_cookie: cookie }
        }
        Ok(_) => {
            tracing::warn!(provider = %provider, "authorization request too large for the flow cookie");
            Begun::Unavailable(up.config.name.clone())
        }
        Err(_) => Begun::Unavailable(up.config.name.clone()),
    }
}
