//! An upstream identity linked to a local user (docs/API.md, "Federation"): the key is the
//! provider's issuer and its subject, never an e-mail address.
use crate::crypto::sha256_b64;

/// The longest upstream subject accepted (OIDC Core §2: at most 255 ASCII characters).
pub const MAX_SUBJECT_LEN: usize = 255;

/// An upstream identity (issuer, subject) linked to the local user `sub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityLink {
    /// The upstream provider's issuer, exactly as its metadata states it (for GitHub, its
    /// configured issuer string).
    pub issuer: String,
    /// The user at the provider (`sub`; GitHub's numeric id).
    pub subject: String,
    /// The local user.
    pub sub: String,
    /// The configured provider it was linked through (its id), for the account page.
    pub provider: String,
    /// The e-mail address the provider claimed at the last sign-in, as claimed.
    pub email: Option<String>,
    /// Whether the provider said it verified that address (never assumed).
    pub email_verified: bool,
    /// When it was linked (unix seconds).
    pub linked_at: i64,
}

impl IdentityLink {
    /// The store key of (issuer, subject): SHA-256 of both, length-prefixed so no two pairs
    /// share a key, and of bounded size whatever the provider sends.
    pub fn key(&self) -> String {
        identity_key(&self.issuer, &self.subject)
    }
}

/// The store key of the upstream identity (`issuer`, `subject`).
pub fn identity_key(issuer: &str, subject: &str) -> String {
    sha256_b64(&format!("{}:{issuer}{subject}", issuer.len()))
}

#[cfg(test)]
mod tests {
    use super::identity_key;

    #[test]
    fn keys_of_different_pairs_differ_even_when_the_concatenations_agree() {
        assert_ne!(identity_key("https://a.example", "1"), identity_key("https://a.example1", ""));
        assert_ne!(identity_key("https://a", "bc"), identity_key("https://ab", "c"));
        assert_eq!(identity_key("https://a", "b"), identity_key("https://a", "b"));
        assert_eq!(identity_key("https://a", "b").len(), 43);
    }
}
