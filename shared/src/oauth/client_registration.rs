//! `POST /register_client` (RFC 7591 shape): validate metadata, assign an id and a
//! 256-bit secret, store only the secret's SHA-256.
use super::{OAuthError, store_failure};
use crate::App;
use crate::catalog::Catalog;
use crate::crypto::{ct_eq, random_id, random_token, sha256, sha256_b64};
use crate::domain::{AuthMethod, Client, GrantType, RedirectUri, ScopeSet, SigningAlg};
use crate::store::{ClientStore, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Upper bounds on metadata, so a registration cannot store unbounded data.
const MAX_REDIRECT_URIS: usize = 20;
const MAX_CLIENT_NAME: usize = 200;

/// The 201 body: the stored metadata plus the credentials (RFC 7591 §3.2.1).
#[derive(Debug, Serialize)]
pub struct ClientRegistered {
    /// Server-assigned id.
    pub client_id: String,
    /// Shown only here; absent for public clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Unix seconds.
    pub client_id_issued_at: i64,
    /// 0: the secret does not expire.
    pub client_secret_expires_at: i64,
    /// As registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// As registered.
    pub redirect_uris: Vec<RedirectUri>,
    /// As registered.
    pub grant_types: Vec<GrantType>,
    /// Always `["code"]`.
    pub response_types: Vec<&'static str>,
    /// As registered.
    pub token_endpoint_auth_method: &'static str,
    /// As registered.
    pub scope: ScopeSet,
    /// `RS256` or `ES256`.
    pub id_token_signed_response_alg: SigningAlg,
    /// As registered (omitted when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// Whether every token request must carry a DPoP proof (RFC 9449 §5.2).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens: bool,
}

/// The request body (RFC 7591 §2). Fields are raw JSON so each gets its own error;
/// unknown fields are ignored, and a repeated known field is refused by the decoder.
#[derive(Debug, Default, Deserialize)]
pub struct ClientMetadata {
    /// `client_name`.
    pub client_name: Option<Value>,
    /// `redirect_uris`.
    pub redirect_uris: Option<Value>,
    /// `grant_types`.
    pub grant_types: Option<Value>,
    /// `response_types`.
    pub response_types: Option<Value>,
    /// `token_endpoint_auth_method`.
    pub token_endpoint_auth_method: Option<Value>,
    /// `scope`.
    pub scope: Option<Value>,
    /// `id_token_signed_response_alg`.
    pub id_token_signed_response_alg: Option<Value>,
    /// `post_logout_redirect_uris` (OpenID Connect RP-Initiated Logout 1.0 §3.1).
    pub post_logout_redirect_uris: Option<Value>,
    /// `application_type` (OpenID Connect Dynamic Client Registration 1.0 §2): `web` or
    /// `native`, accepted for MCP and OIDC clients that send it; the redirect URI rules are
    /// the same for both here (RFC 8252's, which cover web and native URIs).
    pub application_type: Option<Value>,
    /// `dpop_bound_access_tokens` (RFC 9449 §5.2): every token request must carry a proof.
    #[serde(default)]
    pub dpop_bound_access_tokens: Option<Value>,
}

fn meta(d: impl Into<super::Description>) -> OAuthError {
    OAuthError::InvalidClientMetadata(d.into())
}

fn opt_str<'a>(v: Option<&'a Value>, name: &'static str) -> Result<Option<&'a str>, OAuthError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(meta(format!("{name} must be a string"))),
    }
}

fn opt_str_array<'a>(v: Option<&'a Value>, name: &'static str) -> Result<Option<Vec<&'a str>>, OAuthError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().ok_or_else(|| meta(format!("{name} must be an array of strings"))))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(meta(format!("{name} must be an array of strings"))),
    }
}

/// Metadata that passed validation: everything of a client but its id and secret.
#[derive(Debug, Clone)]
pub struct ValidMetadata {
    /// Display name.
    pub client_name: Option<String>,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<RedirectUri>,
    /// Allowed grants.
    pub grant_types: Vec<GrantType>,
    /// Token endpoint authentication.
    pub auth_method: AuthMethod,
    /// Allowed scopes.
    pub scope: ScopeSet,
    /// ID token algorithm.
    pub id_token_alg: SigningAlg,
    /// Exact post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// `dpop_bound_access_tokens`.
    pub dpop_bound_access_tokens: bool,
}

/// Unicode general category Cf (format characters, Unicode 15.1): bidirectional overrides
/// and isolates, zero-width characters, invisible operators, tags. In a client name shown on
/// the consent page they can reorder or hide text (a U+202E right-to-left override makes
/// "Bank U+202E ppA" read as "Bank App"), so they are refused.
fn is_format_char(c: char) -> bool {
    matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD
        | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F)
}

/// Validate metadata.
///
/// # Errors
/// `invalid_redirect_uri` or `invalid_client_metadata`.
pub fn validate(body: &ClientMetadata, catalog: &Catalog) -> Result<ValidMetadata, OAuthError> {
    match opt_str(body.application_type.as_ref(), "application_type")? {
        None | Some("web" | "native") => {}
        Some(_) => return Err(meta("application_type must be web or native")),
    }
    let client_name = opt_str(body.client_name.as_ref(), "client_name")?.map(str::to_owned);
    if client_name
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_CLIENT_NAME || n.chars().any(|c| c.is_control() || is_format_char(c)))
    {
        return Err(meta("client_name must be at most 200 characters without control or format characters"));
    }
    let grant_types = match opt_str_array(body.grant_types.as_ref(), "grant_types")? {
        None => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        Some(list) => {
            let mut out = Vec::new();
            for g in list {
                let g = GrantType::parse(g).ok_or_else(|| {
                    meta(format!("unsupported grant type {:?}", g.chars().take(40).collect::<String>()))
                })?;
                if !out.contains(&g) {
                    out.push(g);
                }
            }
            if out.is_empty() {
                return Err(meta("grant_types must not be empty"));
            }
            out
        }
    };
    // Refresh tokens come from a user's grant: the code or the device flow.
    if grant_types.contains(&GrantType::RefreshToken)
        && !grant_types.iter().any(|g| matches!(g, GrantType::AuthorizationCode | GrantType::DeviceCode))
    {
        return Err(meta("refresh_token requires authorization_code or urn:ietf:params:oauth:grant-type:device_code"));
    }
    if opt_str_array(body.response_types.as_ref(), "response_types")?.is_some_and(|rt| rt != ["code"]) {
        return Err(meta("response_types must be [\"code\"]"));
    }
    let auth_method = match opt_str(body.token_endpoint_auth_method.as_ref(), "token_endpoint_auth_method")? {
        None => AuthMethod::ClientSecretBasic,
        Some(m) => AuthMethod::parse(m).ok_or_else(|| {
            meta("token_endpoint_auth_method must be client_secret_basic, client_secret_post or none")
        })?,
    };
    if auth_method == AuthMethod::None && grant_types.contains(&GrantType::ClientCredentials) {
        return Err(meta("public clients (token_endpoint_auth_method none) cannot use client_credentials"));
    }
    let scope = match opt_str(body.scope.as_ref(), "scope")? {
        None => ScopeSet::client_default(),
        Some(s) if s.trim().is_empty() => ScopeSet::client_default(),
        Some(s) => catalog.requested_scope(s).map_err(|e| meta(e.description()))?,
    };
    let id_alg = match opt_str(body.id_token_signed_response_alg.as_ref(), "id_token_signed_response_alg")? {
        None | Some("RS256") => SigningAlg::Rs256,
        Some("ES256") => SigningAlg::Es256,
        Some(_) => return Err(meta("id_token_signed_response_alg must be RS256 or ES256")),
    };
    let redirect_uris = uri_list(body.redirect_uris.as_ref(), "redirect_uris", OAuthError::InvalidRedirectUri)?;
    if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        return Err(OAuthError::InvalidRedirectUri(
            "redirect_uris is required for the authorization_code grant".into(),
        ));
    }
    // The same rules as redirect URIs (https, loopback http, private-use schemes; no
    // fragment), and the same exact matching at the logout endpoint. RFC 7591 has no error
    // code of its own for them: invalid_client_metadata.
    let post_logout_redirect_uris = uri_list(
        body.post_logout_redirect_uris.as_ref(),
        "post_logout_redirect_uris",
        OAuthError::InvalidClientMetadata,
    )?;
    if !post_logout_redirect_uris.is_empty() && !grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(meta("post_logout_redirect_uris needs the authorization_code grant (users sign in to it)"));
    }
    let dpop_bound_access_tokens = match &body.dpop_bound_access_tokens {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(meta("dpop_bound_access_tokens must be a boolean")),
    };
    Ok(ValidMetadata {
        client_name,
        redirect_uris,
        grant_types,
        auth_method,
        scope,
        id_token_alg: id_alg,
        post_logout_redirect_uris,
        dpop_bound_access_tokens,
    })
}

/// A list of URIs under the redirect URI rules: at most 20, each valid, duplicates dropped;
/// `error` makes the refusal.
fn uri_list(
    v: Option<&Value>,
    name: &'static str,
    error: fn(super::Description) -> OAuthError,
) -> Result<Vec<RedirectUri>, OAuthError> {
    let uris = opt_str_array(v, name).map_err(|_| error(format!("{name} must be an array of strings").into()))?;
    let uris = uris.unwrap_or_default();
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(error(format!("at most 20 {name}").into()));
    }
    let mut out = Vec::new();
    for u in uris {
        let parsed = RedirectUri::parse(u).map_err(|d| match name {
            "redirect_uris" => error(d.into()),
            _ => error(format!("{name}: {d}").into()),
        })?;
        if !out.contains(&parsed) {
            out.push(parsed);
        }
    }
    Ok(out)
}

/// Who may register a client: proof that [`admit`] accepted the request. Only `admit`
/// makes one, so [`register_client`] cannot run before the checks.
#[derive(Debug)]
pub struct Registrant {
    /// The registration token was required and presented: the client is trusted.
    trusted: bool,
}

/// The checks before a registration's body is read, in this order: the per-address limit
/// (counted first, so refused attempts count too), then the registration token when one is
/// configured (RFC 7591 §3, "initial access token"), compared in constant time.
///
/// # Errors
/// `slow_down`-style 429 over the limit; `invalid_token` for a missing or wrong token.
pub async fn admit(
    app: &App,
    bearer: Result<&str, OAuthError>,
    source_ip: Option<std::net::IpAddr>,
    now: time::OffsetDateTime,
) -> Result<Registrant, OAuthError> {
    super::abuse::count_attempt(app, super::abuse::Limit::RegisterClient, source_ip, now).await?;
    let Some(expected) = app.registration_token().await else {
        // Open registration makes anyone's client: untrusted.
        return Ok(Registrant { trusted: false });
    };
    let refused = || OAuthError::InvalidToken("a valid registration token is required".into());
    let presented = bearer.map_err(|_| refused())?;
    if !ct_eq(&sha256(presented.as_bytes()), &sha256(expected.expose().as_bytes())) {
        return Err(refused());
    }
    Ok(Registrant { trusted: true })
}

/// Register a client from its JSON metadata. Any `client_id` or `client_secret` in the
/// request is ignored: both are server-assigned (RFC 7591 §3.2.1, RFC 9700 §4.15.2).
///
/// # Errors
/// `invalid_redirect_uri`, `invalid_client_metadata`, or a store failure.
#[tracing::instrument(skip_all)]
pub async fn register_client(
    app: &App,
    registrant: &Registrant,
    body: &ClientMetadata,
    now: time::OffsetDateTime,
) -> Result<ClientRegistered, OAuthError> {
    let catalog = super::resources::catalog(app, now.unix_timestamp()).await?;
    create_client(app.clients.as_ref(), &catalog, body, now.unix_timestamp(), registrant.trusted).await
}

/// Validate metadata and store a new client in `clients` (the endpoint, and the admin tool,
/// whose clients are `trusted`).
///
/// # Errors
/// `invalid_redirect_uri`, `invalid_client_metadata`, or a store failure.
pub async fn create_client(
    clients: &dyn ClientStore,
    catalog: &Catalog,
    body: &ClientMetadata,
    now: i64,
    trusted: bool,
) -> Result<ClientRegistered, OAuthError> {
    let m = validate(body, catalog)?;
    let secret = match m.auth_method {
        AuthMethod::None => None,
        _ => Some(random_token().map_err(OAuthError::server)?),
    };
    // Ids are 128 random bits; a collision is astronomically unlikely but still handled.
    for _ in 0..3 {
        let client = Client {
            client_id: random_id("cl_").map_err(OAuthError::server)?,
            secret_hash: secret.as_deref().map(sha256_b64),
            client_name: m.client_name.clone(),
            redirect_uris: m.redirect_uris.clone(),
            grant_types: m.grant_types.clone(),
            auth_method: m.auth_method,
            scope: m.scope.clone(),
            id_token_signed_response_alg: m.id_token_alg,
            created_at: now,
            trusted,
            post_logout_redirect_uris: m.post_logout_redirect_uris.clone(),
            dpop_bound_access_tokens: m.dpop_bound_access_tokens,
        };
        match clients.create_client(&client).await {
            Ok(()) => {
                tracing::info!(event = "client_registered", client_id = %client.client_id, "client registered");
                return Ok(ClientRegistered {
                    client_id: client.client_id,
                    client_secret: secret,
                    client_id_issued_at: now,
                    client_secret_expires_at: 0,
                    client_name: client.client_name,
                    redirect_uris: client.redirect_uris,
                    grant_types: client.grant_types,
                    response_types: vec!["code"],
                    token_endpoint_auth_method: client.auth_method.as_str(),
                    scope: client.scope,
                    id_token_signed_response_alg: client.id_token_signed_response_alg,
                    post_logout_redirect_uris: client.post_logout_redirect_uris,
                    dpop_bound_access_tokens: client.dpop_bound_access_tokens,
                });
            }
            Err(StoreError::AlreadyExists) => continue,
            Err(e) => return Err(store_failure(e)),
        }
    }
    Err(OAuthError::server(anyhow::anyhow!("could not allocate a unique client id")))
}
