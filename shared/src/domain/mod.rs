//! Validated newtypes and stored records. A value of these types has passed its `parse`
//! rules; nothing here knows about HTTP, storage backends or keys.
mod alg;
mod device;
mod identity;
mod redirect_uri;
mod resource;
mod scope;
mod session;
mod user;

pub use alg::SigningAlg;
pub use device::{
    DeviceGrant, DeviceStatus, Poll, USER_CODE_ALPHABET, USER_CODE_LEN, display_user_code, normalize_user_code,
};
pub use identity::{IdentityLink, MAX_SUBJECT_LEN, identity_key};
pub use redirect_uri::{RedirectUri, is_loopback_host};
pub use resource::{MAX_RESOURCE_SCOPES, ResourceId, ResourceServer, ScopeDef};
pub use scope::{MAX_SCOPE_LEN, Scope, ScopeSet};
pub use session::{AuthMethodRef, ConsentGrant, RefreshFamily, Session, SessionRef};
pub use user::{Email, Password, Username};

use serde::{Deserialize, Serialize};

/// The device authorization grant's `grant_type` (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A grant type a client may be registered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// RFC 6749 §4.1.
    AuthorizationCode,
    /// RFC 6749 §6.
    RefreshToken,
    /// RFC 6749 §4.4.
    ClientCredentials,
    /// RFC 8628 §3.4: `urn:ietf:params:oauth:grant-type:device_code`.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
}

impl GrantType {
    /// Parse the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorization_code" => Some(Self::AuthorizationCode),
            "refresh_token" => Some(Self::RefreshToken),
            "client_credentials" => Some(Self::ClientCredentials),
            DEVICE_CODE_GRANT => Some(Self::DeviceCode),
            _ => None,
        }
    }

    /// Its short name in metrics and logs (`device_code` for the device grant's URN).
    pub fn metric_name(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::DeviceCode => "device_code",
        }
    }
}

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with form-urlencoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` form fields.
    ClientSecretPost,
    /// Public client: `client_id` only.
    None,
}

impl AuthMethod {
    /// Parse the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "none" => Some(Self::None),
            _ => None,
        }
    }
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }
}

/// A registered OAuth client. The secret is kept only as a SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// Server-assigned id (`cl_…`).
    pub client_id: String,
    /// SHA-256 (base64url) of the secret; `None` for public clients.
    pub secret_hash: Option<String>,
    /// Human-readable name shown on the consent page.
    pub client_name: Option<String>,
    /// Registered redirect URIs, compared by exact string.
    pub redirect_uris: Vec<RedirectUri>,
    /// Grants this client may use.
    pub grant_types: Vec<GrantType>,
    /// How it authenticates at the token endpoint.
    pub auth_method: AuthMethod,
    /// Scopes it may request.
    pub scope: ScopeSet,
    /// How its ID tokens are signed: `RS256` or `ES256` (registration refuses the others).
    pub id_token_signed_response_alg: SigningAlg,
    /// Unix seconds.
    pub created_at: i64,
    /// Registered with the registration token or by the operator (`oauth-admin`): its
    /// redirect URIs were vouched for, so authorization errors before sign-in may redirect
    /// to them. A client from open registration gets a page instead (RFC 9700 §4.11.2).
    /// Absent in records from before this flag: untrusted.
    #[serde(default)]
    pub trusted: bool,
    /// Where the user may be sent after signing out at this server's logout endpoint
    /// (OpenID Connect RP-Initiated Logout 1.0), compared by exact string. Absent in records
    /// from before logout: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// RFC 9449 §5.2 `dpop_bound_access_tokens`: every token request must carry a DPoP proof.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens: bool,
}

impl Client {
    /// Whether the client registered `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

/// A registered resource owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable subject identifier (`usr_…`).
    pub sub: String,
    /// The username as registered (display form).
    pub username: Username,
    /// Optional e-mail address.
    pub email: Option<Email>,
    /// argon2id PHC string; empty for a user an upstream provider created (no password).
    pub password_hash: String,
    /// Unix seconds.
    pub created_at: i64,
    /// An operator disabled the account (`oauth-admin disable-user`): it cannot sign in, and
    /// what it had (sessions, consents, refresh tokens) was ended when it was disabled.
    pub disabled: bool,
}

impl User {
    /// Whether the user has a password (a user created by an upstream provider has none).
    pub fn has_password(&self) -> bool {
        !self.password_hash.is_empty()
    }
}

/// One value stored through `POST /api/data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataItem {
    /// Server-assigned id.
    pub id: String,
    /// Owner (the token's `sub`).
    #[serde(skip_serializing)]
    pub sub: String,
    /// The stored JSON value, as JSON text.
    pub value: serde_json::Value,
    /// Unix milliseconds.
    #[serde(skip_serializing)]
    pub created_at_ms: i64,
}

/// An issued authorization code, stored under the SHA-256 of the code (RFC 6749 §4.1.2):
/// single-use, short-lived, bound to client, redirect URI, PKCE challenge, scope, nonce
/// and user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthCode {
    /// SHA-256 (base64url) of the code.
    pub code_hash: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI the code was delivered to.
    pub redirect_uri: String,
    /// Whether the authorization request carried `redirect_uri` (then the token request must repeat it).
    pub redirect_uri_sent: bool,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// Granted scope.
    pub scope: ScopeSet,
    /// OIDC nonce.
    pub nonce: Option<String>,
    /// The user.
    pub sub: String,
    /// When the user authenticated (unix seconds).
    pub auth_time: i64,
    /// The grant family the tokens issued from this code belong to.
    pub family_id: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// When it was redeemed; `None` while unused.
    pub consumed_at: Option<i64>,
    /// The token request that redeemed it: a retried write recognises itself by it.
    #[serde(default)]
    pub consumed_by: Option<String>,
    /// The sign-in session it was issued under (absent in codes from before sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionRef>,
    /// The resource servers the code is for (RFC 8707): each token it gives is for one of
    /// them. Empty in codes from before resource indicators: the default API.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceId>,
    /// How the user signed in (the ID token's `amr`); absent in codes from before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<AuthMethodRef>,
    /// The DPoP key the code is bound to (`dpop_jkt` of the authorization request, RFC 9449
    /// §10): its redemption needs a proof by that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
}

/// A refresh token, stored under the SHA-256 of the token. Every refresh token belongs to
/// a family started by one authorization; rotation ends the old one and issues a new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// SHA-256 (base64url) of the token.
    pub token_hash: String,
    /// Family (grant) id.
    pub family_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The user.
    pub sub: String,
    /// The scope originally granted (refreshes may narrow access tokens, never this).
    pub scope: ScopeSet,
    /// When the user authenticated.
    pub auth_time: i64,
    /// Unix seconds.
    pub issued_at: i64,
    /// Idle expiry: this token is unusable after it (unix seconds).
    pub expires_at: i64,
    /// Absolute expiry of the family, never extended by rotation.
    pub family_expires_at: i64,
    /// When it was rotated (used); `None` while current.
    pub rotated_at: Option<i64>,
    /// Hash of the token that replaced it: a retried rotation recognises itself by it.
    #[serde(default)]
    pub rotated_to: Option<String>,
    /// The id hash of the sign-in session the family ends with; `None` for offline access
    /// (`offline_access` granted), which outlives the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The resource servers the family was authorized for (RFC 8707); each refresh names one
    /// of them or gets the only one. Empty in families from before resource indicators: the
    /// default API.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceId>,
    /// The DPoP key a public client's family is bound to (RFC 9449 §5): every refresh needs a
    /// proof by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
}

impl RefreshRecord {
    /// Whether this token may be redeemed (or reported active) at `now`: not rotated, and
    /// neither its idle expiry nor its family's absolute expiry has passed. Revocation is
    /// a separate record, checked by the caller. The one rule for refresh and introspection.
    pub fn is_usable(&self, now: i64) -> bool {
        self.rotated_at.is_none() && self.expires_at > now && self.family_expires_at > now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_token_is_usable_until_rotated_or_either_expiry() {
        let fresh = RefreshRecord {
            token_hash: "h".into(),
            family_id: "fam_1".into(),
            client_id: "cl_1".into(),
            sub: "usr_1".into(),
            scope: ScopeSet::default(),
            auth_time: 0,
            issued_at: 0,
            expires_at: 100,
            family_expires_at: 200,
            rotated_at: None,
            rotated_to: None,
            session: None,
            resources: Vec::new(),
            jkt: None,
        };
        let cases = [
            (fresh.clone(), 99, true),
            (fresh.clone(), 100, false),
            (RefreshRecord { expires_at: 300, ..fresh.clone() }, 200, false),
            (RefreshRecord { rotated_at: Some(50), ..fresh.clone() }, 60, false),
        ];
        for (record, now, usable) in cases {
            assert_eq!(record.is_usable(now), usable, "{record:?} at {now}");
        }
    }
}
