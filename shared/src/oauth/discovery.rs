//! Discovery documents: RFC 8414 metadata (also served at the OIDC path) and the welcome
//! document. Every URL comes from the configured issuer, never from the request.
use crate::config::Settings;
use crate::domain::Scope;
use crate::paths;
use serde_json::{Value, json};

/// The authorization server metadata (RFC 8414 §2).
pub fn metadata(s: &Settings) -> Value {
    json!({
        "issuer": s.issuer,
        "authorization_endpoint": s.url(paths::AUTHORIZE),
        "token_endpoint": s.url(paths::TOKEN),
        "jwks_uri": s.url(paths::JWKS),
        "registration_endpoint": s.url(paths::REGISTER_CLIENT),
        "revocation_endpoint": s.url(paths::REVOKE),
        "introspection_endpoint": s.url(paths::INTROSPECT),
        "userinfo_endpoint": s.url(paths::USERINFO),
        "end_session_endpoint": s.url(paths::LOGOUT),
        "scopes_supported": Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "subject_types_supported": ["public"],
        "prompt_values_supported": crate::oauth::authorize::request::PROMPT_VALUES,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "preferred_username", "email"],
    })
}

/// `GET /`.
pub fn welcome(s: &Settings) -> Value {
    json!({
        "message": "Welcome to the Secure API!",
        "issuer": s.issuer,
        "metadata": s.url(paths::OAUTH_METADATA),
        "account": s.url(paths::ACCOUNT),
    })
}
