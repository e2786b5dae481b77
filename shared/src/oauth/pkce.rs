//! PKCE (RFC 7636) with S256 only: challenge syntax at the authorization endpoint and the
//! constant-time verifier check at the token endpoint.
use crate::crypto::ct_eq;
use base64::Engine;
use sha2::{Digest, Sha256};

/// RFC 7636 §4.1 `unreserved` characters: `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
fn unreserved(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Whether `challenge` is a syntactically valid S256 challenge: exactly 43 base64url
/// characters (a SHA-256 digest, RFC 7636 §4.2).
pub fn valid_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `verifier` matches the ABNF `43*128unreserved` (RFC 7636 §4.1).
pub fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && unreserved(verifier)
}

/// `BASE64URL(SHA256(ASCII(code_verifier)))` (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Verify `verifier` against a stored S256 `challenge` in constant time (RFC 7636 §4.6).
pub fn verify(verifier: &str, challenge: &str) -> bool {
    valid_verifier(verifier) && ct_eq(s256(verifier).as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b_vector_verifies() {
        assert_eq!(s256(VERIFIER), CHALLENGE);
        assert!(verify(VERIFIER, CHALLENGE));
        assert!(!verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK", CHALLENGE));
    }

    #[test]
    fn syntax_rules() {
        let cases = [
            ("42 chars", &"a".repeat(42), false),
            ("43 chars", &"a".repeat(43), true),
            ("128 chars", &"a".repeat(128), true),
            ("129 chars", &"a".repeat(129), false),
            ("percent", &format!("{}%", "a".repeat(43)), false),
            ("plus", &format!("{}+", "a".repeat(43)), false),
        ];
        for (name, v, ok) in cases {
            assert_eq!(valid_verifier(v), ok, "{name}");
        }
        assert!(valid_s256_challenge(CHALLENGE));
        for bad in ["a".repeat(42), "a".repeat(44), format!("{}+", "a".repeat(42)), format!("{}=", "a".repeat(42))] {
            assert!(!valid_s256_challenge(&bad), "{bad}");
        }
    }
}
