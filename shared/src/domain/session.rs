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
    /// An upstream identity provider (docs/API.md, "Federation"): the value Microsoft's
    /// identity platform uses too; RFC 8176 registers none for it.
    #[serde(rename = "fed")]
    Federated,
}

impl AuthMethodRef {
    /// The RFC 8176 value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::Federated => "fed",
        }
    }

    /// The value from its RFC 8176 name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pwd" => Some(Self::Password),
            "fed" => Some(Self::Federated),
            _ => None,
        }
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
    /// Every resource server the user has allowed this client tokens for (RFC 8707), sorted.
    /// Empty in grants from before resource indicators, which covered the default API.
    pub resources: Vec<super::ResourceId>,
    /// The first consent (unix seconds).
    pub granted_at: i64,
    /// The latest consent (unix seconds).
    pub updated_at: i64,
    /// The last time tokens were issued to the client for this user: a code redeemed or a
    /// refresh token rotated (unix seconds); `None` before the first.
    pub last_used: Option<i64>,
}

/// The sign-in session an authorization code was issued under, which the refresh family of
/// a grant without `offline_access` ends with (docs/API.md, "Sessions and consent").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRef {
    /// The session's id hash.
    pub id_hash: String,
    /// Its absolute end (unix seconds): such a family ends then at the latest.
    pub expires_at: i64,
}

/// A refresh family as its user's account lists it, so that signing out, disconnecting an
/// application or changing the password can revoke it (its refresh and access tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFamily {
    /// The user.
    pub sub: String,
    /// The client the family was issued to.
    pub client_id: String,
    /// The family id (the `fam` claim of its access tokens).
    pub family_id: String,
    /// The id hash of the sign-in session it ends with; `None` for offline access, which
    /// outlives the session.
    pub session: Option<String>,
    /// When the family began (unix seconds).
    pub created_at: i64,
    /// Until when the entry is kept (unix seconds): as long as a revocation of the family
    /// would have to last.
    pub expires_at: i64,
}
