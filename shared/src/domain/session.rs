//! A browser's sign-in and a user's remembered consent: the records behind "sign in once"
//! (docs/API.md, "Sessions and consent"). Both live under their user, so one read finds a
//! session and the consent a request needs, and listing a user's sessions or grants is one
//! query.
use super::ScopeSet;
use serde::{Deserialize, Serialize};

/// How the user proved who they are when the session began (an RFC 8176 `amr` value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthMethodRef {
    /// The password form.
    #[serde(rename = "pwd")]
    Password,
}

impl AuthMethodRef {
    /// The RFC 8176 value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "pwd",
        }
    }

    /// The value from its RFC 8176 name.
    pub fn parse(s: &str) -> Option<Self> {
        (s == "pwd").then_some(Self::Password)
    }
}

/// A browser session. The cookie holds 256 random bits; the store only their SHA-256
/// (`id_hash`), so a copy of the store signs nobody in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 (base64url) of the cookie's random part.
    pub id_hash: String,
    /// The signed-in user.
    pub sub: String,
    /// When the user authenticated (unix seconds): the ID token's `auth_time`.
    pub auth_time: i64,
    /// How they authenticated.
    pub method: AuthMethodRef,
    /// Unix seconds.
    pub created_at: i64,
    /// The last request that used the session (unix seconds).
    pub last_seen: i64,
    /// Unused this long, the session ends: `last_seen` plus the idle timeout, never past
    /// `expires_at`.
    pub idle_expires_at: i64,
    /// The absolute end (unix seconds), whatever the use.
    pub expires_at: i64,
}

impl Session {
    /// Whether the session is still valid at `now` (neither idle nor absolute end reached).
    pub fn is_live(&self, now: i64) -> bool {
        now < self.idle_expires_at && now < self.expires_at
    }
}

/// What a user allowed a client: the scopes granted so far (the union of every consent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentGrant {
    /// The user.
    pub sub: String,
    /// The client.
    pub client_id: String,
    /// Every scope the user has allowed this client.
    pub scope: ScopeSet,
    /// The first consent (unix seconds).
    pub granted_at: i64,
    /// The latest consent (unix seconds).
    pub updated_at: i64,
}
