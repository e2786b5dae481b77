//! The parsed key set: signs JWS with keys parsed once, looks up verification keys by
//! exact `kid`, and serves the public JWKS.
use super::{KeyError, KeyMaterial, KeySetDoc};
use crate::keys::SigningAlg;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use std::collections::HashMap;

enum SignerKey {
    Ec(EcdsaKeyPair),
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ed(Ed25519KeyPair),
}

struct Signer {
    alg: SigningAlg,
    kid: String,
    /// From when it may sign (unix seconds).
    not_before: i64,
    key: SignerKey,
    /// `base64url(header JSON)` per `typ`, precomputed: the header never changes.
    headers: HashMap<&'static str, String>,
}

/// A key that may verify tokens: its one algorithm and its public key.
pub struct VerifyKey {
    /// The only algorithm this key is used with (RFC 8725 §3.1).
    pub alg: Algorithm,
    /// The public key.
    pub key: DecodingKey,
}

/// Signing and verification keys of one process, parsed once.
pub struct KeySet {
    signers: Vec<Signer>,
    verifiers: HashMap<String, VerifyKey>,
    jwks: JwkSet,
    rng: SystemRandom,
    form_key: aws_lc_rs::hmac::Key,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("kids", &self.verifiers.keys().collect::<Vec<_>>()).finish()
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `typ` values this server puts in JWS headers.
pub const TYPS: [&str; 2] = ["at+jwt", "JWT"];

/// The DER inside a key's PEM (`from_pkcs8` then insists on PKCS#8).
fn pem_der(text: &str) -> Result<Vec<u8>, KeyError> {
    pem::parse(text).map(pem::Pem::into_contents).map_err(|e| KeyError::Invalid(format!("private key PEM: {e}")))
}

fn encoding_key(m: &KeyMaterial) -> Result<EncodingKey, KeyError> {
    let pem = m.private_key_pem.as_bytes();
    match m.alg {
        SigningAlg::Es256 => EncodingKey::from_ec_pem(pem),
        SigningAlg::Rs256 => EncodingKey::from_rsa_pem(pem),
        SigningAlg::EdDsa => EncodingKey::from_ed_pem(pem),
    }
    .map_err(|e| KeyError::Invalid(format!("{} key: {e}", m.alg.as_str())))
}

fn public_jwk(m: &KeyMaterial) -> Result<Jwk, KeyError> {
    Jwk::from_encoding_key(&encoding_key(m)?, m.alg.jwt_alg())
        .map_err(|e| KeyError::Invalid(format!("{} key: {e}", m.alg.as_str())))
}

/// RFC 7638 SHA-256 thumbprint of a key's public part.
pub(super) fn thumbprint(m: &KeyMaterial) -> Result<String, KeyError> {
    public_jwk(m)?.thumbprint(ThumbprintHash::SHA256).map_err(|e| KeyError::Invalid(e.to_string()))
}

impl KeySet {
    /// Parse a key-set document.
    ///
    /// # Errors
    /// A malformed key, a duplicate `kid`, an RSA key under 2048 bits, or an empty set.
    pub fn from_doc(doc: &KeySetDoc) -> Result<Self, KeyError> {
        let mut signers: Vec<Signer> = Vec::new();
        let mut verifiers = HashMap::new();
        let mut jwks = Vec::new();
        for m in &doc.keys {
            let mut jwk = public_jwk(m)?;
            let kid = if m.kid.is_empty() { thumbprint(m)? } else { m.kid.clone() };
            if kid.len() > 128 || verifiers.contains_key(&kid) {
                return Err(KeyError::Invalid(format!("kid {kid:?} is duplicated or too long")));
            }
            let der = pem_der(&m.private_key_pem)?;
            let key = match m.alg {
                SigningAlg::Es256 => {
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).map(SignerKey::Ec)
                }
                SigningAlg::Rs256 => aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).map(SignerKey::Rsa),
                SigningAlg::EdDsa => Ed25519KeyPair::from_pkcs8(&der).map(SignerKey::Ed),
            }
            .map_err(|e| KeyError::Invalid(format!("{} key {kid}: {e}", m.alg.as_str())))?;
            if let SignerKey::Rsa(k) = &key
                && k.public_modulus_len() < 256
            {
                return Err(KeyError::Invalid(format!("RSA key {kid} is shorter than 2048 bits")));
            }
            jwk.common.key_id = Some(kid.clone());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| KeyError::Invalid(e.to_string()))?;
            verifiers.insert(kid.clone(), VerifyKey { alg: m.alg.jwt_alg(), key: decoding });
            jwks.push(jwk);
            let mut headers = HashMap::new();
            for typ in TYPS {
                let h = serde_json::json!({"alg": m.alg.as_str(), "typ": typ, "kid": kid});
                headers.insert(typ, URL_SAFE_NO_PAD.encode(h.to_string()));
            }
            signers.push(Signer { alg: m.alg, kid, not_before: m.not_before, key, headers });
        }
        let Some(first) = doc.keys.first() else {
            return Err(KeyError::Invalid("the key set holds no keys".into()));
        };
        // A MAC key every process with this key set agrees on, unusable for signing.
        let mut seed = b"oauth-core/form-mac/v1".to_vec();
        seed.extend_from_slice(&pem_der(&first.private_key_pem)?);
        let form_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &crate::crypto::sha256(&seed));
        Ok(Self { signers, verifiers, jwks: JwkSet { keys: jwks }, rng: SystemRandom::new(), form_key })
    }

    /// A verify-only set from a published JWK Set (a resource server in another account):
    /// each key keeps exactly its one declared algorithm; keys without `kid` or with an
    /// algorithm other than ES256, RS256 or EdDSA are ignored. Nothing can sign with it.
    ///
    /// # Errors
    /// No usable key.
    pub fn from_jwks(jwks: &JwkSet) -> Result<Self, KeyError> {
        let mut verifiers = HashMap::new();
        let mut keys = Vec::new();
        for jwk in &jwks.keys {
            let Some(kid) = jwk.common.key_id.clone().filter(|k| !k.is_empty() && k.len() <= 128) else { continue };
            let alg = match jwk.common.key_algorithm {
                Some(jsonwebtoken::jwk::KeyAlgorithm::ES256) => Algorithm::ES256,
                Some(jsonwebtoken::jwk::KeyAlgorithm::RS256) => Algorithm::RS256,
                Some(jsonwebtoken::jwk::KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
                _ => continue,
            };
            let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
            if verifiers.insert(kid, VerifyKey { alg, key }).is_none() {
                keys.push(jwk.clone());
            }
        }
        if verifiers.is_empty() {
            return Err(KeyError::Invalid("the JWKS holds no usable ES256, RS256 or EdDSA key with a kid".into()));
        }
        // No private key: the form key is random and unused (nothing renders forms here).
        let seed = crate::crypto::random_bytes::<32>().map_err(|_| KeyError::Crypto("random"))?;
        Ok(Self {
            signers: Vec::new(),
            verifiers,
            jwks: JwkSet { keys },
            rng: SystemRandom::new(),
            form_key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &seed),
        })
    }

    /// A set with no keys at all: a verify-only process whose source failed at start refuses
    /// every token (and keeps retrying the source) instead of failing to start.
    ///
    /// # Errors
    /// The OS random source failed.
    pub fn empty() -> Result<Self, KeyError> {
        let seed = crate::crypto::random_bytes::<32>().map_err(|_| KeyError::Crypto("random"))?;
        Ok(Self {
            signers: Vec::new(),
            verifiers: HashMap::new(),
            jwks: JwkSet { keys: Vec::new() },
            rng: SystemRandom::new(),
            form_key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &seed),
        })
    }

    /// Whether a key can sign with `alg` (now or once its time comes).
    pub fn can_sign(&self, alg: SigningAlg) -> bool {
        self.signers.iter().any(|s| s.alg == alg)
    }

    /// The key that signs with `alg` at `now`: of the keys whose `not_before` has passed, the
    /// latest one (the first in document order on a tie).
    fn signer_at(&self, alg: SigningAlg, now: i64) -> Option<&Signer> {
        let mut best: Option<&Signer> = None;
        for s in self.signers.iter().filter(|s| s.alg == alg && s.not_before <= now) {
            if best.is_none_or(|b| s.not_before > b.not_before) {
                best = Some(s);
            }
        }
        best
    }

    /// The `kid` that signs with `alg` now.
    pub fn signing_kid(&self, alg: SigningAlg) -> Option<&str> {
        self.signing_kid_at(alg, unix_now())
    }

    /// The `kid` that signs with `alg` at `now`.
    pub fn signing_kid_at(&self, alg: SigningAlg, now: i64) -> Option<&str> {
        self.signer_at(alg, now).map(|s| s.kid.as_str())
    }

    /// When the newest key of `alg` starts signing (for rotation: the keys it publishes).
    pub fn newest_not_before(&self, alg: SigningAlg) -> Option<i64> {
        self.signers.iter().filter(|s| s.alg == alg).map(|s| s.not_before).max()
    }

    /// Sign `payload` (JSON bytes) as a compact JWS with header `{alg, typ, kid}`, with the
    /// key that signs now.
    ///
    /// # Errors
    /// No key for `alg`, an unknown `typ`, or a crypto failure.
    pub fn sign(&self, alg: SigningAlg, typ: &'static str, payload: &[u8]) -> Result<String, KeyError> {
        self.sign_at(alg, typ, payload, unix_now())
    }

    /// [`KeySet::sign`] with the key that signs at `now`.
    ///
    /// # Errors
    /// No key for `alg` active at `now`, an unknown `typ`, or a crypto failure.
    pub fn sign_at(&self, alg: SigningAlg, typ: &'static str, payload: &[u8], now: i64) -> Result<String, KeyError> {
        let signer = self.signer_at(alg, now).ok_or(KeyError::NoSigningKey(alg.as_str()))?;
        let header = signer.headers.get(typ).ok_or(KeyError::Crypto("unknown typ"))?;
        let mut out = String::with_capacity(header.len() + payload.len() * 4 / 3 + 400);
        out.push_str(header);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut out);
        let sig: Vec<u8> = match &signer.key {
            SignerKey::Ec(k) => {
                k.sign(&self.rng, out.as_bytes()).map_err(|_| KeyError::Crypto("ES256 sign"))?.as_ref().to_vec()
            }
            SignerKey::Ed(k) => k.sign(out.as_bytes()).as_ref().to_vec(),
            SignerKey::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &self.rng, out.as_bytes(), &mut sig)
                    .map_err(|_| KeyError::Crypto("RS256 sign"))?;
                sig
            }
        };
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(sig, &mut out);
        Ok(out)
    }

    /// The verification key for an exact `kid`, if known. `kid` is only a lookup key: it is
    /// never used as a path, URL or query (RFC 8725 §3.10).
    pub fn verify_key(&self, kid: &str) -> Option<&VerifyKey> {
        self.verifiers.get(kid)
    }

    /// HMAC key for the login form's sealed request, derived from the first key.
    pub fn form_key(&self) -> &aws_lc_rs::hmac::Key {
        &self.form_key
    }

    /// The public JWK Set (no private parameters).
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// A signer's public key bytes (tests and diagnostics).
    pub fn public_key_len(&self, alg: SigningAlg) -> Option<usize> {
        self.signer_at(alg, unix_now()).map(|s| match &s.key {
            SignerKey::Ec(k) => k.public_key().as_ref().len(),
            SignerKey::Ed(k) => k.public_key().as_ref().len(),
            SignerKey::Rsa(k) => k.public_modulus_len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_has_public_parts_only_and_thumbprint_kids() -> Result<(), Box<dyn std::error::Error>> {
        // Arrange
        let doc = KeySetDoc::generate(&[SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::EdDsa])?;
        // Act
        let set = KeySet::from_doc(&doc)?;
        let json = serde_json::to_value(set.jwks())?;
        // Assert
        let keys = json["keys"].as_array().ok_or("no keys")?;
        assert_eq!(keys.len(), 3);
        for k in keys {
            for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                assert!(k.get(private).is_none(), "{private} leaked in {k}");
            }
            assert_eq!(k["use"], "sig");
            assert!(k["kid"].as_str().is_some_and(|s| s.len() == 43));
        }
        assert_eq!(set.public_key_len(SigningAlg::Rs256), Some(256));
        Ok(())
    }

    #[test]
    fn signatures_verify_with_jsonwebtoken() -> Result<(), Box<dyn std::error::Error>> {
        let set = KeySet::from_doc(&KeySetDoc::generate(&[SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::EdDsa])?)?;
        for alg in [SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::EdDsa] {
            let token = set.sign(alg, "JWT", br#"{"sub":"x","exp":4102444800}"#)?;
            let header = jsonwebtoken::decode_header(&token)?;
            let kid = header.kid.ok_or("no kid")?;
            let vk = set.verify_key(&kid).ok_or("unknown kid")?;
            let mut v = jsonwebtoken::Validation::new(vk.alg);
            v.validate_aud = false;
            let data = jsonwebtoken::decode::<serde_json::Value>(&token, &vk.key, &v)?;
            assert_eq!(data.claims["sub"], "x", "{alg:?}");
        }
        Ok(())
    }

    #[test]
    fn duplicate_kids_and_empty_sets_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let mut doc = KeySetDoc::generate(&[SigningAlg::Es256])?;
        let first = doc.keys.first().cloned().ok_or("no key")?;
        doc.keys.push(first);
        assert!(KeySet::from_doc(&doc).is_err());
        assert!(KeySet::from_doc(&KeySetDoc::default()).is_err());
        Ok(())
    }

    #[test]
    fn key_material_debug_hides_the_private_key() -> Result<(), KeyError> {
        let doc = KeySetDoc::generate(&[SigningAlg::Es256])?;
        let s = format!("{doc:?}");
        assert!(!s.contains("PRIVATE KEY") && s.contains("[redacted]"));
        Ok(())
    }
}
