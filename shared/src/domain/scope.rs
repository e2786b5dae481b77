//! Scopes (RFC 6749 §3.3): scope tokens and ordered, duplicate-free sets of them. Which
//! scopes exist is not decided here: the OpenID Connect ones are constants, the others are
//! defined by the resource servers (`catalog::Catalog` holds them; `oauth::resources` checks
//! requests against them). This module only checks the syntax.
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;

/// Longest scope token accepted.
pub const MAX_SCOPE_LEN: usize = 128;
/// Most scope tokens in one set.
pub const MAX_SCOPES: usize = 64;

/// One scope token: 1 to [`MAX_SCOPE_LEN`] characters of RFC 6749 §3.3's `NQCHAR` set
/// (printable ASCII without space, `"` and `\\`). Sets list the OpenID Connect scopes
/// first, in their usual order, then the others alphabetically.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope(Cow<'static, str>);

impl Ord for Scope {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let rank = |s: &Scope| Self::OIDC.iter().position(|o| o == s).unwrap_or(Self::OIDC.len());
        rank(self).cmp(&rank(other)).then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Scope {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Scope {
    /// OpenID Connect.
    pub const OPENID: Scope = Scope(Cow::Borrowed("openid"));
    /// OIDC profile claims.
    pub const PROFILE: Scope = Scope(Cow::Borrowed("profile"));
    /// OIDC email claim.
    pub const EMAIL: Scope = Scope(Cow::Borrowed("email"));
    /// Refresh tokens that outlive the sign-in session.
    pub const OFFLINE_ACCESS: Scope = Scope(Cow::Borrowed("offline_access"));
    /// The built-in demo API's `GET /api/data`.
    pub const DATA_READ: Scope = Scope(Cow::Borrowed("data:read"));
    /// The built-in demo API's `POST /api/data`.
    pub const DATA_WRITE: Scope = Scope(Cow::Borrowed("data:write"));

    /// The scopes this server defines itself (OpenID Connect), in the order documents list them.
    pub const OIDC: [Scope; 4] = [Scope::OPENID, Scope::PROFILE, Scope::EMAIL, Scope::OFFLINE_ACCESS];

    /// Parse one scope token (syntax only).
    pub fn parse(s: &str) -> Option<Self> {
        let valid = !s.is_empty()
            && s.len() <= MAX_SCOPE_LEN
            && s.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !valid {
            return None;
        }
        Some(Self::OIDC.into_iter().find(|o| o.as_str() == s).unwrap_or_else(|| Self(Cow::Owned(s.to_owned()))))
    }
    /// The wire form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Scopes that describe a user (the OpenID Connect ones); a client acting for itself
    /// never gets them.
    pub fn is_user_scope(&self) -> bool {
        Self::OIDC.contains(self)
    }
    /// Plain words for the consent page, for the scopes this server defines itself.
    pub fn oidc_description(&self) -> Option<&'static str> {
        Some(match self.as_str() {
            "openid" => "Confirm who you are (sign you in)",
            "profile" => "See your username",
            "email" => "See your e-mail address",
            "offline_access" => "Stay connected when you are not using it",
            _ => return None,
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Scope::parse(&s).ok_or_else(|| serde::de::Error::custom("malformed scope"))
    }
}

/// A set of scopes, kept sorted and free of duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// Parse a space-delimited scope string (RFC 6749 §3.3). Empty means empty set. Only
    /// the syntax is checked: whether each scope exists is the resource catalog's question.
    ///
    /// # Errors
    /// Returns the first malformed scope token, or a note that there are too many.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut v = Vec::new();
        for tok in s.split(' ').filter(|t| !t.is_empty()) {
            let sc = Scope::parse(tok)
                .ok_or_else(|| tok.chars().filter(|c| !c.is_control()).take(64).collect::<String>())?;
            v.push(sc);
            if v.len() > MAX_SCOPES {
                return Err(format!("more than {MAX_SCOPES} scopes"));
            }
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
        Self::from_scopes(vec![Scope::OPENID, Scope::PROFILE, Scope::EMAIL, Scope::OFFLINE_ACCESS, Scope::DATA_READ])
    }
    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: &Scope) -> bool {
        self.0.contains(scope)
    }
    /// Whether every scope of `self` is in `other`.
    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }
    /// The scopes not describing a user (the client_credentials default).
    pub fn without_user_scopes(&self) -> Self {
        Self(self.0.iter().filter(|s| !s.is_user_scope()).cloned().collect())
    }
    /// Every scope of `self` and of `other`.
    pub fn union(&self, other: &ScopeSet) -> Self {
        Self::from_scopes(self.0.iter().chain(other.0.iter()).cloned().collect())
    }
    /// The scopes of `self` that are not in `other`.
    pub fn difference(&self, other: &ScopeSet) -> Self {
        Self(self.0.iter().filter(|s| !other.contains(s)).cloned().collect())
    }
    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Iterate the scopes.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> + '_ {
        self.0.iter()
    }
    /// The scopes of `self` that `keep` accepts.
    #[must_use]
    pub fn filter(&self, keep: impl Fn(&Scope) -> bool) -> Self {
        Self(self.0.iter().filter(|s| keep(s)).cloned().collect())
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
    fn parse_sorts_deduplicates_and_refuses_malformed() {
        assert_eq!(
            ScopeSet::parse("data:write openid data:write").map(|s| s.to_string()),
            Ok("openid data:write".into())
        );
        assert_eq!(ScopeSet::parse("openid orders:read").map(|s| s.to_string()), Ok("openid orders:read".into()));
        assert_eq!(ScopeSet::parse("openid a\"b"), Err("a\"b".into()));
        assert_eq!(ScopeSet::parse("openid a\\b"), Err("a\\b".into()));
        assert!(ScopeSet::parse(&"x".repeat(MAX_SCOPE_LEN + 1)).is_err());
        let many = (0..=MAX_SCOPES).map(|i| format!("s{i}")).collect::<Vec<_>>().join(" ");
        assert!(ScopeSet::parse(&many).is_err());
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
