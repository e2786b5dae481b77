//! Scopes (RFC 6749 §3.3): a closed list of known values and ordered, duplicate-free sets.
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A scope this server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// OpenID Connect.
    OpenId,
    /// OIDC profile claims.
    Profile,
    /// OIDC email claim.
    Email,
    /// Refresh tokens.
    OfflineAccess,
    /// `GET /api/data`.
    DataRead,
    /// `POST /api/data`.
    DataWrite,
}

impl Scope {
    /// Every known scope, in the order documents list them.
    pub const ALL: [Scope; 6] =
        [Scope::OpenId, Scope::Profile, Scope::Email, Scope::OfflineAccess, Scope::DataRead, Scope::DataWrite];

    /// Parse one scope token.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|sc| sc.as_str() == s)
    }
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::OpenId => "openid",
            Scope::Profile => "profile",
            Scope::Email => "email",
            Scope::OfflineAccess => "offline_access",
            Scope::DataRead => "data:read",
            Scope::DataWrite => "data:write",
        }
    }
    /// Scopes that describe a user; a client acting for itself never gets them.
    pub fn is_user_scope(self) -> bool {
        matches!(self, Scope::OpenId | Scope::Profile | Scope::Email | Scope::OfflineAccess)
    }
    /// Plain words for the consent page.
    pub fn description(self) -> &'static str {
        match self {
            Scope::OpenId => "Confirm who you are (sign you in)",
            Scope::Profile => "See your username",
            Scope::Email => "See your e-mail address",
            Scope::OfflineAccess => "Stay connected when you are not using it",
            Scope::DataRead => "Read your stored data",
            Scope::DataWrite => "Add to your stored data",
        }
    }
}

/// A set of scopes, kept sorted and free of duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// Parse a space-delimited scope string (RFC 6749 §3.3). Empty means empty set.
    ///
    /// # Errors
    /// Returns the first unknown (or malformed) scope token.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut v = Vec::new();
        for tok in s.split(' ').filter(|t| !t.is_empty()) {
            let sc = Scope::parse(tok).ok_or_else(|| tok.chars().take(64).collect::<String>())?;
            v.push(sc);
        }
        Ok(Self::from_scopes(v))
    }
    /// Build a set from scopes (sorted, deduplicated).
    pub fn from_scopes(mut v: Vec<Scope>) -> Self {
        v.sort();
        v.dedup();
        Self(v)
    }
    /// The default scopes of a newly registered client.
    pub fn client_default() -> Self {
        Self::from_scopes(vec![Scope::OpenId, Scope::Profile, Scope::Email, Scope::OfflineAccess, Scope::DataRead])
    }
    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }
    /// Whether every scope of `self` is in `other`.
    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.0.iter().all(|s| other.contains(*s))
    }
    /// The scopes not describing a user (the client_credentials default).
    pub fn without_user_scopes(&self) -> Self {
        Self(self.0.iter().copied().filter(|s| !s.is_user_scope()).collect())
    }
    /// Every scope of `self` and of `other`.
    pub fn union(&self, other: &ScopeSet) -> Self {
        Self::from_scopes(self.0.iter().chain(other.0.iter()).copied().collect())
    }
    /// The scopes of `self` that are not in `other`.
    pub fn difference(&self, other: &ScopeSet) -> Self {
        Self(self.0.iter().copied().filter(|s| !other.contains(*s)).collect())
    }
    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Iterate the scopes.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s.as_str())?;
            first = false;
        }
        Ok(())
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ScopeSet::parse(&s).map_err(|bad| serde::de::Error::custom(format!("unknown scope {bad:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_sorts_deduplicates_and_refuses_unknown() {
        assert_eq!(
            ScopeSet::parse("data:write openid data:write").map(|s| s.to_string()),
            Ok("openid data:write".into())
        );
        assert_eq!(ScopeSet::parse("openid admin"), Err("admin".into()));
        assert_eq!(ScopeSet::parse("").map(|s| s.is_empty()), Ok(true));
        assert!(ScopeSet::parse("openid\tprofile").is_err());
    }

    #[test]
    fn subset_and_user_scope_filter() -> Result<(), String> {
        let all = ScopeSet::client_default();
        assert!(ScopeSet::parse("openid data:read")?.is_subset_of(&all));
        assert!(!ScopeSet::parse("data:write")?.is_subset_of(&all));
        assert_eq!(all.without_user_scopes().to_string(), "data:read");
        Ok(())
    }
}
