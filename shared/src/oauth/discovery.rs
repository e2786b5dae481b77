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
        "device_authorization_endpoint": s.url(paths::DEVICE_AUTHORIZATION),
        "jwks_uri": s.url(paths::JWKS),
        "registration_endpoint": s.url(paths::REGISTER_CLIENT),
        "revocation_endpoint": s.url(paths::REVOKE),
        "introspection_endpoint": s.url(paths::INTROSPECT),
        "userinfo_endpoint": s.url(paths::USERINFO),
        "end_session_endpoint": s.url(paths::LOGOUT),
        // The OpenID Connect scopes and the built-in API's; each other resource server lists
        // its own in its protected-resource metadata (RFC 8414 §2 lets a server leave some out).
        "scopes_supported": Scope::OIDC.iter().chain([Scope::DATA_READ, Scope::DATA_WRITE].iter())
            .map(Scope::as_str).collect::<Vec<_>>(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", crate::domain::DEVICE_CODE_GRANT],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": crate::dpop::ALGS,
        "client_id_metadata_document_supported": s.cimd.enabled,
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
        "device": s.url(paths::DEVICE),
    })
}

/// The URL of a resource's protected-resource metadata (RFC 9728 §3.1): the well-known path
/// inserted between the resource's origin and its path (`https://host/api` →
/// `https://host/.well-known/oauth-protected-resource/api`).
pub fn resource_metadata_url(resource: &crate::domain::ResourceId) -> String {
    let id = resource.as_str();
    // Canonical identifiers are `scheme://authority[/path][?query]`.
    let after_scheme = id.find("://").map_or(0, |i| i + 3);
    let path_start = id[after_scheme..].find(['/', '?']).map_or(id.len(), |i| after_scheme + i);
    let (origin, rest) = id.split_at(path_start);
    let rest = if rest == "/" { "" } else { rest };
    format!("{origin}{}{rest}", paths::PROTECTED_RESOURCE_METADATA_PREFIX)
}

/// The built-in API's protected-resource metadata (RFC 9728 §2).
pub fn protected_resource_metadata(s: &Settings) -> Value {
    json!({
        "resource": s.audience,
        "authorization_servers": [s.issuer],
        "scopes_supported": [Scope::DATA_READ.as_str(), Scope::DATA_WRITE.as_str()],
        "bearer_methods_supported": ["header"],
        "resource_name": "Demo data API",
        "dpop_signing_alg_values_supported": crate::dpop::ALGS,
        "dpop_bound_access_tokens_required": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ResourceId;

    #[test]
    fn the_metadata_url_inserts_the_well_known_path_after_the_origin() {
        let cases = [
            ("https://as.example/api", "https://as.example/.well-known/oauth-protected-resource/api"),
            ("https://mcp.example", "https://mcp.example/.well-known/oauth-protected-resource"),
            ("http://127.0.0.1:3000/api", "http://127.0.0.1:3000/.well-known/oauth-protected-resource/api"),
            ("https://a.example/v1/mcp?x=1", "https://a.example/.well-known/oauth-protected-resource/v1/mcp?x=1"),
        ];
        for (resource, want) in cases {
            let id = ResourceId::parse(resource).expect("valid");
            assert_eq!(resource_metadata_url(&id), want, "{resource}");
        }
    }
}
