//! DPoP at this server's endpoints (RFC 9449; docs/API.md, "DPoP"): the token endpoint binds
//! tokens to the key of the request's proof (optionally demanding a server nonce first), and
//! every resource (`/api/data`, `/oauth/userinfo`, the Lambda authorizer) accepts a bound
//! token only with the `DPoP` scheme and a proof by that key for this request and this
//! token. Each proof is used once: its `jti` is recorded for as long as its `iat` could pass.
//! The proof's own checks are [`crate::dpop`].
use super::access::Presented;
use super::{OAuthError, store_failure};
use crate::App;
use crate::crypto::sha256_b64;
use crate::dpop::{self, DpopError, Expected, IAT_WINDOW_SECONDS};
use crate::jwt::AccessClaims;
use time::OffsetDateTime;

/// The request's one `DPoP` header, if it sent one.
///
/// # Errors
/// `invalid_dpop_proof` for more than one.
pub fn proof_header<'a>(values: &[&'a str]) -> Result<Option<&'a str>, OAuthError> {
    match values {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(OAuthError::InvalidDpopProof("send exactly one DPoP header".into())),
    }
}

/// `dpop_jkt` of an authorization request (RFC 9449 §10): a key thumbprint, 43 base64url
/// characters, if sent.
///
/// # Errors
/// `invalid_request` for anything else.
pub fn requested_jkt(params: &super::params::Params) -> Result<Option<String>, OAuthError> {
    match params.get("dpop_jkt") {
        None => Ok(None),
        Some(j) if j.len() == 43 && j.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => {
            Ok(Some(j.to_owned()))
        }
        Some(_) => {
            Err(OAuthError::invalid_request("dpop_jkt must be a JWK SHA-256 thumbprint (43 base64url characters)"))
        }
    }
}

fn refused(e: &DpopError) -> OAuthError {
    tracing::info!(event = "dpop_refused", reason = %e, "DPoP proof refused");
    OAuthError::InvalidDpopProof(e.to_string().into())
}

/// Record the proof's `jti` for its key: the first use only.
async fn use_once(app: &App, proof: &dpop::Proof, now: OffsetDateTime) -> Result<(), OAuthError> {
    let key = format!("dpop#{}", sha256_b64(&format!("{}|{}", proof.jkt, proof.jti)));
    // Kept past the last moment its `iat` could be accepted.
    match app.throttle.hit(&key, 2 * IAT_WINDOW_SECONDS + 60, now).await.map_err(store_failure)? {
        1 => Ok(()),
        _ => {
            tracing::warn!(event = "dpop_replayed", "DPoP proof replayed");
            Err(OAuthError::InvalidDpopProof("the DPoP proof was already used".into()))
        }
    }
}

/// The token endpoint's proof, if the request sent one: verified for `POST <issuer>/oauth/token`,
/// with the server nonce when `DPOP_NONCE_REQUIRED`, used once. Its key's thumbprint.
///
/// # Errors
/// `invalid_dpop_proof`, or `use_dpop_nonce` with the nonce to use.
pub async fn at_token_endpoint(
    app: &App,
    proof: Option<&str>,
    now: OffsetDateTime,
) -> Result<Option<String>, OAuthError> {
    let Some(proof) = proof else { return Ok(None) };
    let t = now.unix_timestamp();
    let htu = app.settings.url(crate::paths::TOKEN);
    let p = dpop::verify(proof, Expected { htm: "POST", htu: &htu, access_token: None, now: t })
        .map_err(|e| refused(&e))?;
    if app.settings.dpop_nonce_required {
        let keys = app.form_keys();
        if !p.nonce.as_deref().is_some_and(|n| dpop::nonce_is_current(&keys, n, t)) {
            return Err(OAuthError::UseDpopNonce { nonce: dpop::nonce(&app.form_key(), t) });
        }
    }
    use_once(app, &p, now).await?;
    Ok(Some(p.jkt))
}

/// A resource's check of how `claims` was presented (RFC 9449 §7): a bound token only with
/// the `DPoP` scheme and a proof by its key for `htm` and the URL `htu` gives, carrying the
/// token's hash, used once; an unbound token only as `Bearer` (no URL is built for it).
///
/// # Errors
/// `invalid_token` (the `DPoP` challenge for a bound token sent as Bearer), or
/// `invalid_dpop_proof`.
pub async fn check_binding(
    app: &App,
    claims: &AccessClaims,
    presented: Presented<'_>,
    proof: Option<&str>,
    (htm, htu): (&str, impl FnOnce() -> String),
    now: OffsetDateTime,
) -> Result<(), OAuthError> {
    match (&claims.cnf, presented.dpop) {
        (None, false) => Ok(()),
        (None, true) => Err(OAuthError::InvalidToken("the access token is not DPoP-bound: send it as Bearer".into())),
        (Some(_), false) => Err(OAuthError::InvalidDpopToken(
            "the access token is DPoP-bound: send it with the DPoP scheme and a proof".into(),
        )),
        (Some(cnf), true) => {
            let proof = proof.ok_or_else(|| OAuthError::InvalidDpopProof("a DPoP proof is required".into()))?;
            let htu = htu();
            let expected = Expected { htm, htu: &htu, access_token: Some(presented.token), now: now.unix_timestamp() };
            let p = dpop::verify(proof, expected).map_err(|e| refused(&e))?;
            if !crate::crypto::ct_eq(p.jkt.as_bytes(), cnf.jkt.as_bytes()) {
                return Err(OAuthError::InvalidDpopProof("the DPoP proof is by another key than the token's".into()));
            }
            use_once(app, &p, now).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_dpop_header_and_a_well_formed_dpop_jkt() {
        assert!(proof_header(&["a", "b"]).is_err());
        let params = |q: &str| super::super::params::Params::parse(q.as_bytes());
        let jkt = "a".repeat(43);
        assert_eq!(params(&format!("dpop_jkt={jkt}")).ok().map(|p| requested_jkt(&p).ok()), Some(Some(Some(jkt))));
        for bad in ["dpop_jkt=short", "dpop_jkt=%2B%2B%2B", &format!("dpop_jkt={}", "a".repeat(44))] {
            assert!(params(bad).is_ok_and(|p| requested_jkt(&p).is_err()), "{bad}");
        }
        assert_eq!(proof_header(&["a"]).ok(), Some(Some("a")));
    }
}
