//! DPoP proofs (RFC 9449), the first piece of sender-constrained tokens: a proof JWT checked
//! exactly as §4.3 lists (not yet wired to the token endpoint or the resource servers). The
//! proof's header names its type (`dpop+jwt`), an asymmetric algorithm from the allow-list
//! that fits its key, and the public key itself (`jwk`, never a private member); its claims
//! bind it to one request (`htm`, `htu` without query or fragment), one moment (`iat` within
//! [`IAT_WINDOW_SECONDS`]), one use (`jti`, which the caller records) and, at a resource
//! server, one access token (`ath`). The key's RFC 7638 thumbprint (`jkt`) is what a token
//! is bound to. Server nonces (§8) are derived statelessly: an HMAC of a time window.
use crate::crypto::ct_eq;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Longest proof accepted (a 4096-bit RSA key's `jwk` included).
pub const MAX_PROOF_LEN: usize = 8192;
/// A proof's `iat` must be within this many seconds of now, either way.
pub const IAT_WINDOW_SECONDS: i64 = 60;
/// The algorithms accepted (`dpop_signing_alg_values_supported`).
pub const ALGS: [&str; 4] = ["ES256", "RS256", "PS256", "EdDSA"];
/// A server nonce is valid for the window it was made in and the one after (seconds each).
pub const NONCE_WINDOW_SECONDS: i64 = 300;
/// Members of a JWK that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a proof was refused (the `error_description` a client sees names the check).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// Not a compact JWS of acceptable size, or its header or claims are not what §4.2 says.
    #[error("the DPoP proof is malformed")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("the DPoP proof's typ must be dpop+jwt")]
    Type,
    /// `none`, HMAC, another algorithm, or one the key does not fit.
    #[error("the DPoP proof's algorithm is not supported or does not fit its key")]
    Algorithm,
    /// No `jwk`, a private member in it, or a key type not supported.
    #[error("the DPoP proof's jwk must be one public key")]
    Key,
    /// The signature does not verify with the header's key.
    #[error("the DPoP proof's signature is invalid")]
    Signature,
    /// `htm` is not this request's method.
    #[error("the DPoP proof is for another HTTP method")]
    Method,
    /// `htu` is not this request's URI.
    #[error("the DPoP proof is for another URI")]
    Uri,
    /// `iat` is too far in the past or the future.
    #[error("the DPoP proof is stale or from the future")]
    Time,
    /// `ath` missing or not the hash of the access token presented with it.
    #[error("the DPoP proof is not for this access token")]
    AccessTokenHash,
    /// The server requires a nonce, and the proof has none or a stale one.
    #[error("the DPoP proof needs the server's current nonce")]
    UseNonce,
}

/// What the request the proof came with expects of it.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The request's method (`POST`, `GET`...).
    pub htm: &'a str,
    /// The request's URI as this server is reached at (issuer-based).
    pub htu: &'a str,
    /// At a resource server: the access token presented with the proof (`ath`).
    pub access_token: Option<&'a str>,
    /// Now, unix seconds.
    pub now: i64,
}

/// A verified proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of its key, base64url: what a token is bound to.
    pub jkt: String,
    /// Its unique id: the caller records it, so it is used once.
    pub jti: String,
    /// When it was made.
    pub iat: i64,
    /// The server nonce it carries, if any (the caller checks it when it requires one).
    pub nonce: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

/// The algorithm a JWS names, if it is on the allow-list.
fn algorithm(alg: &str) -> Option<Algorithm> {
    match alg {
        "ES256" => Some(Algorithm::ES256),
        "RS256" => Some(Algorithm::RS256),
        "PS256" => Some(Algorithm::PS256),
        "EdDSA" => Some(Algorithm::EdDSA),
        _ => None,
    }
}

/// Whether `alg` may be used with `jwk`'s key (RSA: RS256, PS256 with at least 2048 bits;
/// P-256: ES256; Ed25519: EdDSA).
fn fits(alg: Algorithm, jwk: &Jwk) -> bool {
    match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let bits = URL_SAFE_NO_PAD.decode(&p.n).map_or(0, |n| n.len() * 8);
            matches!(alg, Algorithm::RS256 | Algorithm::PS256) && bits >= 2048
        }
        AlgorithmParameters::EllipticCurve(p) => p.curve == EllipticCurve::P256 && alg == Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) => p.curve == EllipticCurve::Ed25519 && alg == Algorithm::EdDSA,
        _ => false,
    }
}

/// The RFC 7638 thumbprint of a public JWK (as JSON): SHA-256 over its required members in
/// lexicographic order, base64url.
///
/// # Errors
/// A key type other than EC, RSA or OKP, or a required member missing or not a string.
pub fn thumbprint(jwk: &Value) -> Result<String, DpopError> {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str).ok_or(DpopError::Key);
    let names: &[&str] = match member("kty")? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return Err(DpopError::Key),
    };
    let mut canonical = String::from("{");
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            canonical.push(',');
        }
        let value = serde_json::to_string(member(name)?).map_err(|_| DpopError::Key)?;
        canonical.push_str(&format!("\"{name}\":{value}"));
    }
    canonical.push('}');
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

/// `ath`: base64url of the SHA-256 of an access token (RFC 9449 §4.2).
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// A URI as `htu` compares it: parsed, without query or fragment (RFC 9449 §4.3).
fn normalized(uri: &str) -> Option<String> {
    let mut u = url::Url::parse(uri).ok()?;
    u.set_query(None);
    u.set_fragment(None);
    Some(u.to_string())
}

/// Verify `proof` for the request `expected` describes (RFC 9449 §4.3, every check but the
/// `jti` record and the nonce, which the caller owns).
///
/// # Errors
/// The first check that failed.
pub fn verify(proof: &str, expected: Expected<'_>) -> Result<Proof, DpopError> {
    if proof.is_empty() || proof.len() > MAX_PROOF_LEN {
        return Err(DpopError::Malformed);
    }
    let mut parts = proof.split('.');
    let (Some(head), Some(_), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(DpopError::Malformed);
    };
    if sig.is_empty() {
        return Err(DpopError::Algorithm);
    }
    let header: Value = URL_SAFE_NO_PAD
        .decode(head)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(Value::is_object)
        .ok_or(DpopError::Malformed)?;
    if !header.get("typ").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
        return Err(DpopError::Type);
    }
    let alg = header.get("alg").and_then(Value::as_str).and_then(algorithm).ok_or(DpopError::Algorithm)?;
    let jwk_value = header.get("jwk").filter(|j| j.is_object()).ok_or(DpopError::Key)?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk_value.get(m).is_some()) {
        return Err(DpopError::Key);
    }
    let jkt = thumbprint(jwk_value)?;
    let jwk: Jwk = serde_json::from_value(jwk_value.clone()).map_err(|_| DpopError::Key)?;
    if !fits(alg, &jwk) {
        return Err(DpopError::Algorithm);
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| DpopError::Key)?;
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Claims>(proof, &key, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => DpopError::Signature,
            _ => DpopError::Malformed,
        })?
        .claims;
    if claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err(DpopError::Malformed);
    }
    if claims.htm != expected.htm {
        return Err(DpopError::Method);
    }
    match (normalized(&claims.htu), normalized(expected.htu)) {
        (Some(a), Some(b)) if a == b => {}
        _ => return Err(DpopError::Uri),
    }
    if (claims.iat - expected.now).abs() > IAT_WINDOW_SECONDS {
        return Err(DpopError::Time);
    }
    if let Some(token) = expected.access_token {
        let want = access_token_hash(token);
        if !claims.ath.as_deref().is_some_and(|a| ct_eq(a.as_bytes(), want.as_bytes())) {
            return Err(DpopError::AccessTokenHash);
        }
    }
    Ok(Proof { jkt, jti: claims.jti, iat: claims.iat, nonce: claims.nonce })
}

/// The server nonce of the window `now` falls in, under `key` (§8): 22 base64url characters,
/// nothing stored.
pub fn nonce(key: &hmac::Key, now: i64) -> String {
    nonce_of_window(key, now.div_euclid(NONCE_WINDOW_SECONDS))
}

fn nonce_of_window(key: &hmac::Key, window: i64) -> String {
    let tag = hmac::sign(key, format!("oauth-core/dpop-nonce/v1|{window}").as_bytes());
    URL_SAFE_NO_PAD.encode(tag.as_ref().get(..16).unwrap_or_default())
}

/// Whether `nonce` is one this server made, under any of `keys`, in the window of `now` or
/// the one before (so a nonce handed out just before a window ends still works once).
pub fn nonce_is_current(keys: &[hmac::Key], nonce: &str, now: i64) -> bool {
    let window = now.div_euclid(NONCE_WINDOW_SECONDS);
    keys.iter().any(|k| [window, window - 1].iter().any(|w| ct_eq(nonce_of_window(k, *w).as_bytes(), nonce.as_bytes())))
}

#[cfg(test)]
mod tests;
