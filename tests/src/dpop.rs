//! A DPoP client key for the tests: makes proofs (RFC 9449 §4.2) for a method and URL, with
//! the access token's hash, a nonce, or any claim or header bent for the hostile cases.
use anyhow::{Context, Result};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use oauth_core::keys::{KeySet, KeySetDoc, SigningAlg};
use serde_json::{Value, json};

/// A client's DPoP key pair.
pub struct DpopKey {
    alg: Algorithm,
    /// The public key as a JWK.
    pub jwk: Value,
    encoding: EncodingKey,
}

impl DpopKey {
    /// A new ES256 key.
    ///
    /// # Errors
    /// Key generation failed.
    pub fn new() -> Result<Self> {
        let doc = KeySetDoc::generate(&[SigningAlg::Es256])?;
        let set = KeySet::from_doc(&doc)?;
        let jwk = serde_json::to_value(set.jwks().keys.first().context("no jwk")?)?;
        let pem = doc.keys.first().context("no key")?.private_key_pem.clone();
        Ok(Self { alg: Algorithm::ES256, jwk, encoding: EncodingKey::from_ec_pem(pem.as_bytes())? })
    }

    /// Its RFC 7638 thumbprint.
    ///
    /// # Errors
    /// Never for a generated key.
    pub fn jkt(&self) -> Result<String> {
        oauth_core::dpop::thumbprint(&self.jwk).map_err(anyhow::Error::msg)
    }

    /// The claims of a proof for `htm` `htu` at `iat` (a fresh `jti`), with `ath` of
    /// `access_token` when given.
    ///
    /// # Errors
    /// No randomness.
    pub fn claims(&self, htm: &str, htu: &str, access_token: Option<&str>, iat: i64) -> Result<Value> {
        let mut c = json!({"jti": oauth_core::crypto::random_id("p_")?, "htm": htm, "htu": htu, "iat": iat});
        if let Some(t) = access_token {
            c["ath"] = json!(oauth_core::dpop::access_token_hash(t));
        }
        Ok(c)
    }

    /// A proof of `claims`, its header `typ: dpop+jwt` and this key's `jwk`.
    ///
    /// # Errors
    /// Signing failed.
    pub fn sign(&self, claims: &Value) -> Result<String> {
        let mut h = Header::new(self.alg);
        h.typ = Some("dpop+jwt".into());
        h.jwk = Some(serde_json::from_value(self.jwk.clone())?);
        Ok(jsonwebtoken::encode(&h, claims, &self.encoding)?)
    }

    /// A proof of `claims` carrying `jwk` in its header exactly as given (another key's, or
    /// one with private members), signed by this key.
    ///
    /// # Errors
    /// Signing failed.
    pub fn sign_with(&self, claims: &Value, jwk: &Value) -> Result<String> {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
        let enc = |v: &Value| -> Result<String> {
            use base64::Engine;
            Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v)?))
        };
        let message = format!("{}.{}", enc(&header)?, enc(claims)?);
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &self.encoding, self.alg)?;
        Ok(format!("{message}.{sig}"))
    }

    /// A proof for `htm` `htu` now (`iat`), with `ath` of `access_token` when given.
    ///
    /// # Errors
    /// Signing failed.
    pub fn proof(&self, htm: &str, htu: &str, access_token: Option<&str>, iat: i64) -> Result<String> {
        self.sign(&self.claims(htm, htu, access_token, iat)?)
    }
}
