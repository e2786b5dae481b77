//! Validating an upstream OpenID provider's ID token, exactly as OIDC Core §3.1.3.7 requires:
//! the signature by a key of the provider's JWKS with an algorithm from an allow-list that also fits the
//! key (never `none`, never HMAC: RFC 8725 §3.1–3.2), the issuer compared as a string with the
//! provider's metadata, our client id among the audiences (and `azp` when there are several),
//! `exp` and `iat` with a small leeway, and the `nonce` of this sign-in.
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::HashMap;

/// Leeway for `exp` and `iat`, in seconds.
pub const LEEWAY_SECONDS: i64 = 60;
/// Longest ID token accepted.
pub const MAX_ID_TOKEN_LEN: usize = 16 * 1024;
/// The algorithms accepted from an upstream provider.
pub const ALLOWED_ALGS: [Algorithm; 4] = [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA];

/// Why an ID token was refused (logged; the user sees a plain message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    /// Not a compact JWS of acceptable size, or no `kid` where the JWKS has several keys.
    #[error("malformed ID token")]
    Malformed,
    /// A `kid` the provider's JWKS does not have (the caller may refresh the JWKS once).
    #[error("unknown kid")]
    UnknownKey,
    /// `none`, HMAC, an algorithm not on the allow-list, or one the key does not fit.
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    /// The signature or the claims' shape.
    #[error("invalid signature or claims")]
    Invalid,
    /// `iss` is not the provider's issuer, exactly.
    #[error("wrong issuer")]
    WrongIssuer,
    /// Our client id is not among the audiences, or `azp` is missing or another party.
    #[error("wrong audience")]
    WrongAudience,
    /// `exp` passed, or `iat` in the future (beyond the leeway).
    #[error("expired or not yet valid")]
    Expired,
    /// `nonce` missing or not this sign-in's.
    #[error("wrong nonce")]
    WrongNonce,
}

/// An upstream provider's public keys: by `kid`, each with the algorithms it may be used with.
#[derive(Default)]
pub struct UpstreamKeys {
    keys: HashMap<String, (Vec<Algorithm>, DecodingKey)>,
    /// The only key, for a JWKS of one key without `kid`.
    single: Option<(Vec<Algorithm>, DecodingKey)>,
}

/// The algorithms a JWK may verify: its `alg` if it states one on the allow-list, else those
/// its key type fits (RSA: RS256, PS256; P-256: ES256; Ed25519: EdDSA).
fn algorithms(jwk: &Jwk) -> Vec<Algorithm> {
    let stated = match jwk.common.key_algorithm {
        Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
        Some(KeyAlgorithm::PS256) => Some(Algorithm::PS256),
        Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
        Some(KeyAlgorithm::EdDSA) => Some(Algorithm::EdDSA),
        Some(_) => return Vec::new(),
        None => None,
    };
    let fits: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![Algorithm::RS256, Algorithm::PS256],
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => vec![Algorithm::ES256],
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
        _ => Vec::new(),
    };
    match stated {
        Some(a) if fits.contains(&a) => vec![a],
        Some(_) => Vec::new(),
        None => fits,
    }
}

impl UpstreamKeys {
    /// The usable keys of a provider's JWKS (signature keys of an allowed type; others are
    /// skipped).
    pub fn from_jwks(jwks: &JwkSet) -> Self {
        let mut out = Self::default();
        let usable: Vec<&Jwk> = jwks
            .keys
            .iter()
            .filter(|k| {
                k.common.public_key_use.as_ref().is_none_or(|u| *u == jsonwebtoken::jwk::PublicKeyUse::Signature)
            })
            .collect();
        for jwk in &usable {
            let algs = algorithms(jwk);
            let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
            if algs.is_empty() {
                continue;
            }
            match jwk.common.key_id.as_ref().filter(|k| !k.is_empty()) {
                Some(kid) => {
                    out.keys.insert(kid.clone(), (algs, key));
                }
                None if usable.len() == 1 => out.single = Some((algs, key)),
                None => {}
            }
        }
        out
    }

    /// Whether a key has this `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.single.is_none()
    }
}

/// What this sign-in expects of the ID token.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The provider's issuer, from its metadata (compared as a string).
    pub issuer: &'a str,
    /// Our client id at the provider.
    pub client_id: &'a str,
    /// The nonce sent with this sign-in's authorization request.
    pub nonce: &'a str,
    /// Now, unix seconds.
    pub now: i64,
}

/// `aud`: one string or an array.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Aud {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct Raw {
    iss: String,
    sub: String,
    aud: Aud,
    exp: i64,
    iat: i64,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    auth_time: Option<i64>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
}

/// The claims of a valid upstream ID token that a sign-in uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamIdentity {
    /// The provider's issuer.
    pub issuer: String,
    /// The user at the provider: with the issuer, the key of the link (never the e-mail).
    pub subject: String,
    /// When the user authenticated at the provider (`auth_time`, else `iat`).
    pub auth_time: i64,
    /// `email`, as claimed.
    pub email: Option<String>,
    /// `email_verified`, as claimed (absent is not verified).
    pub email_verified: bool,
    /// `name` or `preferred_username`.
    pub name: Option<String>,
}

/// Validate `token` against `keys` and `expected`.
///
/// # Errors
/// The first check that failed.
pub fn validate(token: &str, keys: &UpstreamKeys, expected: Expected<'_>) -> Result<UpstreamIdentity, IdTokenError> {
    if token.is_empty() || token.len() > MAX_ID_TOKEN_LEN || token.bytes().filter(|b| *b == b'.').count() != 2 {
        return Err(IdTokenError::Malformed);
    }
    // `none` and unknown algorithms fail to parse here; HMAC parses and is refused below.
    let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenError::AlgorithmNotAllowed)?;
    if !ALLOWED_ALGS.contains(&header.alg) {
        return Err(IdTokenError::AlgorithmNotAllowed);
    }
    let (algs, key) = match header.kid.as_deref() {
        Some(kid) => keys.keys.get(kid).ok_or(IdTokenError::UnknownKey)?,
        None => keys.single.as_ref().ok_or(IdTokenError::Malformed)?,
    };
    // The algorithm must fit the key: the header never chooses how a key is used.
    if !algs.contains(&header.alg) {
        return Err(IdTokenError::AlgorithmNotAllowed);
    }
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp"]);
    let raw = jsonwebtoken::decode::<Raw>(token, key, &validation).map_err(|_| IdTokenError::Invalid)?.claims;
    if raw.iss != expected.issuer {
        return Err(IdTokenError::WrongIssuer);
    }
    let audiences: Vec<&str> = match &raw.aud {
        Aud::One(a) => vec![a.as_str()],
        Aud::Many(v) => v.iter().map(String::as_str).collect(),
    };
    if !audiences.contains(&expected.client_id) {
        return Err(IdTokenError::WrongAudience);
    }
    // Several audiences: `azp` must name us; when present it must name us in any case.
    let azp_ok = match raw.azp.as_deref() {
        Some(azp) => azp == expected.client_id,
        None => audiences.len() == 1,
    };
    if !azp_ok {
        return Err(IdTokenError::WrongAudience);
    }
    if raw.exp.saturating_add(LEEWAY_SECONDS) < expected.now || raw.iat.saturating_sub(LEEWAY_SECONDS) > expected.now {
        return Err(IdTokenError::Expired);
    }
    let nonce_ok = raw
        .nonce
        .as_deref()
        .is_some_and(|n| !expected.nonce.is_empty() && crate::crypto::ct_eq(n.as_bytes(), expected.nonce.as_bytes()));
    if !nonce_ok {
        return Err(IdTokenError::WrongNonce);
    }
    if raw.sub.is_empty() || raw.sub.len() > 255 {
        return Err(IdTokenError::Invalid);
    }
    Ok(UpstreamIdentity {
        issuer: raw.iss,
        subject: raw.sub,
        auth_time: raw.auth_time.unwrap_or(raw.iat),
        email: raw.email,
        email_verified: raw.email_verified.unwrap_or(false),
        name: raw.name.or(raw.preferred_username),
    })
}

#[cfg(test)]
mod tests;
