//! Every path this server serves, written once. The route table (`http::routes`), the
//! discovery documents, the template test and the OpenAPI check all take them from here.
//! A leaf module: it depends on nothing, so any layer may name a path.

/// `POST`: register a user (resource owner).
pub const REGISTER: &str = "/register";
/// `POST`: dynamic client registration (RFC 7591).
pub const REGISTER_CLIENT: &str = "/register_client";
/// `GET`, `POST`: the authorization endpoint and its login form (RFC 6749 §3.1).
pub const AUTHORIZE: &str = "/oauth/authorize";
/// `GET`, `POST`: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) and its
/// confirmation form.
pub const LOGOUT: &str = "/oauth/logout";
/// `GET`, `POST`: the signed-in user's account page and its forms.
pub const ACCOUNT: &str = "/account";
/// `GET`: an upstream identity provider's redirect back (docs/API.md, "Federation"), one
/// path per provider id.
pub const FEDERATION_CALLBACK: &str = "/federation/{provider}/callback";
/// `GET`, `POST`: the device verification page, where the user enters a user code (RFC 8628 §3.3).
pub const DEVICE: &str = "/device";
/// `POST`: the device authorization endpoint (RFC 8628 §3.1).
pub const DEVICE_AUTHORIZATION: &str = "/oauth/device_authorization";
/// `POST`: the token endpoint (RFC 6749 §3.2).
pub const TOKEN: &str = "/oauth/token";
/// `POST`: token revocation (RFC 7009).
pub const REVOKE: &str = "/oauth/revoke";
/// `POST`: token introspection (RFC 7662).
pub const INTROSPECT: &str = "/oauth/introspect";
/// `GET`, `POST`: the demo protected resource.
pub const DATA: &str = "/api/data";
/// `GET`: the OpenID Connect UserInfo endpoint.
pub const USERINFO: &str = "/oauth/userinfo";
/// `GET`: the welcome document.
pub const ROOT: &str = "/";
/// `GET`: authorization server metadata (RFC 8414).
pub const OAUTH_METADATA: &str = "/.well-known/oauth-authorization-server";
/// `GET`: the same metadata at the OpenID Connect Discovery path.
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
/// The well-known prefix of protected-resource metadata (RFC 9728 §3.1).
pub const PROTECTED_RESOURCE_METADATA_PREFIX: &str = "/.well-known/oauth-protected-resource";
/// `GET`: the built-in API's protected-resource metadata (RFC 9728), at the path-suffixed
/// form for the resource `<issuer>/api`.
pub const PROTECTED_RESOURCE_METADATA: &str = "/.well-known/oauth-protected-resource/api";
/// `GET`: the public signing keys (RFC 7517).
pub const JWKS: &str = "/.well-known/jwks.json";
/// `GET`: this API's OpenAPI description.
pub const OPENAPI: &str = "/openapi.yaml";
