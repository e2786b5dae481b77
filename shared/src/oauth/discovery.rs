//! Discovery documents: RFC 8414 metadata (also served at the OIDC path) and the welcome
//! document. Every URL comes from the configured issuer, never from the request.
use crate::config::Settings;
use crate::domain::Scope;
use serde_json::{Value, json};

/// The authorization server metadata (RFC 8414 §2).
pub fn metadata(s: &Settings) -> Value {
    json!({
        "issuer": s.issuer,
        "authorization_endpoint": s.url("/oauth/authorize"),
        "token_endpoint": s.url("/oauth/token"),
        "jwks_uri": s.url("/.well-known/jwks.json"),
        "registration_endpoint": s.url("/register_client"),
        "revocation_endpoint": s.url("/oauth/revoke"),
        "introspection_endpoint": s.url("/oauth/introspect"),
        "userinfo_endpoint": s.url("/oauth/userinfo"),
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
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "preferred_username", "email"],
    })
}

/// `GET /`.
pub fn welcome(s: &Settings) -> Value {
    json!({
        "message": "Welcome to the Secure API!",
        "issuer": s.issuer,
        "metadata": s.url("/.well-known/oauth-authorization-server"),
    })
}
