//! JWT access tokens (RFC 9068): the claims, issuing and verifying. Verification accepts
//! only the one algorithm of the key named by `kid`, never `none` or HMAC, and checks
//! `typ`, `iss`, `aud`, `exp`, `nbf` and `iat` against the process clock with ≤ 60 s leeway.
use crate::config::Settings;
use crate::keys::{KeyError, KeySet};
use serde::{Deserialize, Serialize};

/// Leeway for `exp`, `nbf` and `iat` of inbound tokens, in seconds (RFC 9068 §4: "small").
pub const LEEWAY_SECONDS: i64 = 60;
/// Longest token accepted for verification; longer input is refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 8192;

mod cache;
pub use crate::keys::SigningAlg;
pub use cache::VerifiedTokenCache;

/// `aud` as it may appear: one string or an array (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

/// Claims of an access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: a user id (`usr_…`) or, for client_credentials, the client id (`cl_…`).
    pub sub: String,
    /// The API audience.
    pub aud: Audience,
    /// The client the token was issued to.
    pub client_id: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Expires at (unix seconds).
    pub exp: i64,
    /// Unique token id, the key of revocation.
    pub jti: String,
    /// Not before (only checked when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// The refresh family (grant) a user token belongs to; revoking the family revokes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
    /// The key the token is bound to (RFC 9449 §6.1: `cnf.jkt`): only a DPoP proof by it
    /// makes the token usable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// `cnf` (RFC 7800) with a DPoP key's thumbprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The RFC 7638 SHA-256 thumbprint of the key, base64url.
    pub jkt: String,
}

impl AccessClaims {
    /// Whether the token is for the resource `aud` (its `aud` names it).
    pub fn is_for(&self, aud: &str) -> bool {
        match &self.aud {
            Audience::One(a) => a == aud,
            Audience::Many(v) => v.iter().any(|a| a == aud),
        }
    }
}

/// What an access token is issued for.
#[derive(Debug, Clone)]
pub struct AccessGrant<'a> {
    /// Subject (user id, or the client id for client_credentials).
    pub sub: &'a str,
    /// Client.
    pub client_id: &'a str,
    /// Scope, space-separated.
    pub scope: String,
    /// Token id.
    pub jti: String,
    /// Family, for user tokens.
    pub fam: Option<String>,
    /// The resource server it is for (`aud`, RFC 8707).
    pub aud: &'a str,
    /// Its lifetime in seconds (the resource server's).
    pub ttl: i64,
    /// The DPoP key it is bound to, if any.
    pub jkt: Option<String>,
}

/// Claims of an OpenID Connect ID token (OIDC Core §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdClaims {
    /// Issuer.
    pub iss: String,
    /// The user.
    pub sub: String,
    /// The client.
    pub aud: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// When the user authenticated.
    pub auth_time: i64,
    /// How the user authenticated (RFC 8176 values; `fed` for an upstream provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// The authorization request's nonce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Left half of SHA-256 of the access token, base64url (OIDC Core §3.1.3.6).
    pub at_hash: String,
}

/// Sign an ID token with `alg` (RS256 by default, ES256 when the client registered it).
///
/// # Errors
/// No key for `alg`.
pub fn issue_id_token(keys: &KeySet, alg: SigningAlg, claims: &IdClaims) -> Result<String, KeyError> {
    let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Invalid(e.to_string()))?;
    keys.sign_at(alg, "JWT", &payload, claims.iat)
}

/// `at_hash` of an access token: base64url of the left-most half of its SHA-256.
pub fn at_hash(access_token: &str) -> String {
    use base64::Engine;
    let digest = crate::crypto::sha256(access_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.get(..16).unwrap_or_default())
}

/// Why an inbound token was refused. Logged; clients only see `invalid_token`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejected {
    /// Not a well-formed compact JWS of acceptable size.
    #[error("malformed token")]
    Malformed,
    /// `typ` is not `at+jwt`.
    #[error("wrong typ")]
    WrongType,
    /// No `kid`, or a `kid` this server does not know.
    #[error("unknown kid")]
    UnknownKey,
    /// Signature, algorithm, issuer, audience or required claims failed.
    #[error("verification failed: {0}")]
    Invalid(String),
    /// `exp` is past (beyond the leeway).
    #[error("expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("not yet valid")]
    NotYetValid,
}

/// Sign an access token for `sub`/`client_id` with `scope`, for the resource `aud`, valid
/// from `now` for `ttl`. Returns the token and its claims.
///
/// # Errors
/// The key set cannot sign with the configured algorithm.
pub fn issue_access_token(
    keys: &KeySet,
    settings: &Settings,
    grant: AccessGrant<'_>,
    now: i64,
) -> Result<(String, AccessClaims), KeyError> {
    let claims = AccessClaims {
        iss: settings.issuer.clone(),
        sub: grant.sub.to_owned(),
        aud: Audience::One(grant.aud.to_owned()),
        client_id: grant.client_id.to_owned(),
        scope: grant.scope,
        iat: now,
        exp: now + grant.ttl,
        jti: grant.jti,
        nbf: None,
        fam: grant.fam,
        cnf: grant.jkt.map(|jkt| Confirmation { jkt }),
    };
    let payload = serde_json::to_vec(&claims).map_err(|e| KeyError::Invalid(e.to_string()))?;
    let token = keys.sign_at(settings.access_token_alg, "at+jwt", &payload, now)?;
    Ok((token, claims))
}

/// Verify an access token at unix time `now` (RFC 9068 §4), all but its audience: the
/// caller checks that with [`AccessClaims::is_for`] (each resource its own, RFC 8707).
///
/// # Errors
/// The reason it was refused.
pub fn verify_access_token(
    keys: &KeySet,
    settings: &Settings,
    token: &str,
    now: i64,
) -> Result<AccessClaims, TokenRejected> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN || token.bytes().filter(|b| *b == b'.').count() != 2 {
        return Err(TokenRejected::Malformed);
    }
    // Unknown algorithms, `none` among them, fail to parse here.
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejected::Malformed)?;
    // "Resource servers MUST verify that the typ header value is at+jwt or
    // application/at+jwt and reject tokens carrying any other value." (RFC 9068 §4)
    let typ_ok = header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"));
    if !typ_ok {
        return Err(TokenRejected::WrongType);
    }
    let kid = header.kid.as_deref().ok_or(TokenRejected::UnknownKey)?;
    let vk = keys.verify_key(kid).ok_or(TokenRejected::UnknownKey)?;
    // The algorithm comes from the key, never from the header (RFC 8725 §3.1).
    let mut validation = jsonwebtoken::Validation::new(vk.alg);
    validation.validate_exp = false; // checked below against the injectable clock
    validation.validate_nbf = false;
    validation.leeway = 0;
    validation.set_issuer(&[&settings.issuer]);
    validation.validate_aud = false; // per resource, by the caller
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<AccessClaims>(token, &vk.key, &validation)
        .map_err(|e| TokenRejected::Invalid(format!("{:?}", e.kind())))?;
    let claims = data.claims;
    if now > claims.exp.saturating_add(LEEWAY_SECONDS) {
        return Err(TokenRejected::Expired);
    }
    let future = now.saturating_add(LEEWAY_SECONDS);
    if claims.nbf.is_some_and(|nbf| nbf > future) || claims.iat > future {
        return Err(TokenRejected::NotYetValid);
    }
    Ok(claims)
}

/// What an `id_token_hint` says (OIDC Core §3.1.2.1, RP-Initiated Logout §2).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HintClaims {
    /// The user it was issued for.
    pub sub: String,
    /// The client it was issued to.
    pub aud: Audience,
}

impl HintClaims {
    /// Whether the hint was issued to `client_id`.
    pub fn is_for(&self, client_id: &str) -> bool {
        match &self.aud {
            Audience::One(a) => a == client_id,
            Audience::Many(v) => v.iter().any(|a| a == client_id),
        }
    }

    /// The client it was issued to, when it names exactly one (this server's ID tokens do).
    pub fn single_audience(&self) -> Option<&str> {
        match &self.aud {
            Audience::One(a) => Some(a),
            Audience::Many(v) if v.len() == 1 => v.first().map(String::as_str),
            Audience::Many(_) => None,
        }
    }
}

/// Verify an ID token this server issued, as an `id_token_hint`: signature by one of our
/// keys (the algorithm from the key, never the header), our issuer, a `sub`. Its expiry is
/// not checked: "the OP need not be listed as an audience of the ID Token when it is used
/// as an id_token_hint value", and an expired ID token is still a valid hint (OIDC Core
/// §3.1.2.1; RP-Initiated Logout §2).
///
/// # Errors
/// The reason it was refused.
pub fn verify_id_token_hint(keys: &KeySet, settings: &Settings, token: &str) -> Result<HintClaims, TokenRejected> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN || token.bytes().filter(|b| *b == b'.').count() != 2 {
        return Err(TokenRejected::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejected::Malformed)?;
    // An access token (`at+jwt`) is not an ID token.
    if header.typ.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("JWT")) {
        return Err(TokenRejected::WrongType);
    }
    let kid = header.kid.as_deref().ok_or(TokenRejected::UnknownKey)?;
    let vk = keys.verify_key(kid).ok_or(TokenRejected::UnknownKey)?;
    let mut validation = jsonwebtoken::Validation::new(vk.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.set_issuer(&[&settings.issuer]);
    validation.set_required_spec_claims(&["iss", "sub", "aud"]);
    jsonwebtoken::decode::<HintClaims>(token, &vk.key, &validation)
        .map(|d| d.claims)
        .map_err(|e| TokenRejected::Invalid(format!("{:?}", e.kind())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeySetDoc;

    fn grant(scope: &str) -> AccessGrant<'static> {
        AccessGrant {
            sub: "usr_1",
            client_id: "cl_1",
            scope: scope.into(),
            jti: "at_1".into(),
            fam: None,
            aud: "https://as.test/api",
            ttl: 900,
            jkt: None,
        }
    }

    #[test]
    fn at_hash_matches_the_oidc_example() {
        // OIDC Core appendix A.3 access token and its at_hash.
        assert_eq!(at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ");
    }

    fn settings(alg: &str) -> Result<Settings, crate::config::ConfigError> {
        let vars = [("ISSUER", "https://as.test"), ("ACCESS_TOKEN_ALG", alg)];
        Settings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn issued_tokens_verify_for_every_algorithm_and_expire_with_leeway() -> Result<(), Box<dyn std::error::Error>> {
        let keys = KeySet::from_doc(&KeySetDoc::generate(&[SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::EdDsa])?)?;
        for alg in ["ES256", "RS256", "EdDSA"] {
            let s = settings(alg)?;
            let (token, claims) = issue_access_token(&keys, &s, grant("data:read"), 1_000)?;
            assert_eq!(verify_access_token(&keys, &s, &token, 1_000), Ok(claims.clone()), "{alg}");
            assert_eq!(claims.exp, 1_900);
            assert!(claims.is_for("https://as.test/api") && !claims.is_for("https://as.test/other"));
            assert!(verify_access_token(&keys, &s, &token, 1_960).is_ok(), "{alg}: inside leeway");
            assert_eq!(verify_access_token(&keys, &s, &token, 1_961), Err(TokenRejected::Expired), "{alg}");
            assert_eq!(
                verify_access_token(&keys, &s, &token, 939),
                Err(TokenRejected::NotYetValid),
                "{alg}: iat in future"
            );
        }
        Ok(())
    }

    #[test]
    fn tokens_from_another_key_set_or_issuer_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let ours = KeySet::from_doc(&KeySetDoc::generate(&[SigningAlg::Es256])?)?;
        let theirs = KeySet::from_doc(&KeySetDoc::generate(&[SigningAlg::Es256])?)?;
        let s = settings("ES256")?;
        let (token, _) = issue_access_token(&theirs, &s, grant("x"), 1_000)?;
        assert_eq!(verify_access_token(&ours, &s, &token, 1_000), Err(TokenRejected::UnknownKey));
        let other_issuer = Settings { issuer: "https://evil.test".into(), ..s.clone() };
        let (token, _) = issue_access_token(&ours, &other_issuer, grant("x"), 1_000)?;
        assert!(matches!(verify_access_token(&ours, &s, &token, 1_000), Err(TokenRejected::Invalid(_))));
        Ok(())
    }

    #[test]
    fn id_token_hints_verify_when_expired_and_refuse_access_tokens_and_other_issuers()
    -> Result<(), Box<dyn std::error::Error>> {
        let keys = KeySet::from_doc(&KeySetDoc::generate(&[SigningAlg::Es256, SigningAlg::Rs256])?)?;
        let s = settings("ES256")?;
        let claims = |iss: &str| IdClaims {
            iss: iss.into(),
            sub: "usr_1".into(),
            aud: "cl_1".into(),
            exp: 1_000,
            iat: 400,
            auth_time: 400,
            amr: None,
            nonce: None,
            at_hash: "x".into(),
        };
        let hint = issue_id_token(&keys, SigningAlg::Rs256, &claims(&s.issuer))?;
        let got = verify_id_token_hint(&keys, &s, &hint)?;
        assert_eq!(got.sub, "usr_1");
        assert!(got.is_for("cl_1") && !got.is_for("cl_2"));
        let foreign = issue_id_token(&keys, SigningAlg::Rs256, &claims("https://evil.test"))?;
        assert!(matches!(verify_id_token_hint(&keys, &s, &foreign), Err(TokenRejected::Invalid(_))));
        let (access, _) = issue_access_token(&keys, &s, grant("openid"), 1_000)?;
        assert_eq!(verify_id_token_hint(&keys, &s, &access), Err(TokenRejected::WrongType));
        let theirs = KeySet::from_doc(&KeySetDoc::generate(&[SigningAlg::Rs256])?)?;
        let other_key = issue_id_token(&theirs, SigningAlg::Rs256, &claims(&s.issuer))?;
        assert_eq!(verify_id_token_hint(&keys, &s, &other_key), Err(TokenRejected::UnknownKey));
        assert_eq!(verify_id_token_hint(&keys, &s, "a.b"), Err(TokenRejected::Malformed));
        Ok(())
    }
}
