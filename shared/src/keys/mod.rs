//! Signing keys: the key-set document, the parsed [`KeySet`] that signs and verifies, and
//! the [`KeySource`] trait with its file and in-memory implementations.
//!
//! Private keys are parsed once per process (signing with a parsed key is ~1.8× faster);
//! the JWKS is built once and holds public parameters only. [`public_jwks`] builds the
//! public key document that verify-only processes read instead of the private keys.
mod form;
/// The signature algorithms: a domain type (clients name one), re-exported where keys are.
pub use crate::domain::SigningAlg;
pub use form::{FormKey, FormKeyError, FormKeyOrigin, FormKeySource, MIN_FORM_SECRET_LEN, RotatingKeys};
mod file;
#[cfg(feature = "jwks-url")]
mod jwks_url;
mod ring;
mod set;

pub use file::FileKeySource;
#[cfg(feature = "jwks-url")]
pub use jwks_url::JwksUrlKeys;
pub use ring::{KeyRing, UNKNOWN_KID_INTERVAL};
pub use set::{KeySet, VerifyKey};

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why keys could not be loaded, generated or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key-set document or a key in it is malformed.
    #[error("invalid key material: {0}")]
    Invalid(String),
    /// No key can sign with the configured algorithm.
    #[error("no signing key for {0}")]
    NoSigningKey(&'static str),
    /// Reading or writing the key file failed.
    #[error("key storage failed: {0}")]
    Io(#[from] std::io::Error),
    /// The crypto library failed (key generation, signing).
    #[error("crypto operation failed: {0}")]
    Crypto(&'static str),
    /// A backend (e.g. Secrets Manager) failed.
    #[error("key source failed")]
    Backend(#[source] anyhow::Error),
}

/// One private key as stored: `{"kid", "alg", "private_key_pem"}` (PKCS#8 PEM).
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyMaterial {
    /// Key id; when empty, the RFC 7638 SHA-256 thumbprint is used.
    #[serde(default)]
    pub kid: String,
    /// `ES256`, `RS256` or `EdDSA`.
    pub alg: SigningAlg,
    /// PKCS#8 private key in PEM.
    pub private_key_pem: String,
    /// Unix second from which it may sign (0: at once). A rotation publishes new keys with a
    /// later time, so every verifier and JWKS cache holds them before a token uses them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_before: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_key_pem", &"[redacted]")
            .field("not_before", &self.not_before)
            .finish()
    }
}

/// The stored key-set document: `{"keys": [...]}`. Of each algorithm, the key with the
/// latest `not_before` already reached signs (the first of them in document order on a tie);
/// every key verifies and appears in the JWKS, those not yet signing included.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeySetDoc {
    /// Keys, newest first.
    pub keys: Vec<KeyMaterial>,
}

impl KeySetDoc {
    /// Generate a fresh document with one key per algorithm in `algs`.
    ///
    /// # Errors
    /// Key generation failed.
    pub fn generate(algs: &[SigningAlg]) -> Result<Self, KeyError> {
        let keys = algs.iter().map(|a| generate_key(*a)).collect::<Result<_, _>>()?;
        Ok(Self { keys })
    }
}

/// The default time between a key's publication and its first signature: long enough for a
/// verifier to reload its keys (`KEYS_CACHE_SECONDS`, 300 by default) and for a JWKS cached
/// under the JWKS response's `max-age` (300) to expire.
pub const DEFAULT_PUBLISH_DELAY_SECONDS: i64 = 600;

/// The next version of a key set, made at `now`: fresh keys for `algs`, published at once
/// and signing from `now + publish_delay`, followed by the keys of `current` that sign at
/// `now`, which keep signing until then (so no token is ever signed by a key a verifier or
/// JWKS cache could not have seen yet). An algorithm nothing signs with yet (the first key
/// set), or a `publish_delay` of 0 (a leaked key: replace it at once), gets keys that sign
/// at once, and then nothing is carried over.
///
/// # Errors
/// Key generation failed, or `current` holds a malformed key.
pub fn next_key_set(
    current: Option<&KeySetDoc>,
    algs: &[SigningAlg],
    now: i64,
    publish_delay: i64,
) -> Result<KeySetDoc, KeyError> {
    let current_set = match current.filter(|d| !d.keys.is_empty()) {
        Some(doc) => Some(KeySet::from_doc(doc)?),
        None => None,
    };
    let mut fresh = Vec::new();
    let mut carried = Vec::new();
    for alg in algs {
        let signing = current_set.as_ref().and_then(|set| set.signing_kid_at(*alg, now)).map(str::to_owned);
        let mut key = generate_key(*alg)?;
        match signing {
            Some(kid) if publish_delay > 0 => {
                key.not_before = now.saturating_add(publish_delay);
                if let Some(k) = current.and_then(|d| d.keys.iter().find(|k| k.kid == kid)) {
                    carried.push(k.clone());
                }
            }
            _ => key.not_before = 0,
        }
        fresh.push(key);
    }
    fresh.extend(carried);
    Ok(KeySetDoc { keys: fresh })
}

/// Generate one private key (PKCS#8 PEM). RSA keys are 2048-bit.
///
/// # Errors
/// The crypto library failed.
pub fn generate_key(alg: SigningAlg) -> Result<KeyMaterial, KeyError> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
    let der: Vec<u8> = match alg {
        SigningAlg::Es256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|k| k.to_pkcs8v1())
            .map_err(|_| KeyError::Crypto("EC key generation"))?
            .as_ref()
            .to_vec(),
        SigningAlg::EdDsa => Ed25519KeyPair::generate()
            .and_then(|k| k.to_pkcs8v1())
            .map_err(|_| KeyError::Crypto("Ed25519 key generation"))?
            .as_ref()
            .to_vec(),
        SigningAlg::Rs256 => aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| KeyError::Crypto("RSA key generation"))
            .and_then(|k| {
                use aws_lc_rs::encoding::AsDer;
                k.as_der().map_err(|_| KeyError::Crypto("RSA key encoding"))
            })?
            .as_ref()
            .to_vec(),
    };
    let material =
        KeyMaterial { kid: String::new(), alg, private_key_pem: pem_encode("PRIVATE KEY", der), not_before: 0 };
    // Fill in the RFC 7638 thumbprint so every process agrees on the kid.
    let kid = set::thumbprint(&material)?;
    Ok(KeyMaterial { kid, ..material })
}

/// Encode DER as PEM (64-character lines, `\n` endings: what `openssl` writes).
fn pem_encode(label: &str, der: Vec<u8>) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(label, der), config)
}

/// Where a process gets its key-set document. Called once at start (and, for backends that
/// rotate, again when an unknown `kid` shows up).
#[async_trait]
pub trait KeySource: Send + Sync {
    /// Load the current key-set document.
    ///
    /// # Errors
    /// The backend failed or holds no usable keys.
    async fn load(&self) -> Result<KeySetDoc, KeyError>;

    /// Load and parse the key set. Sources of public keys only (a JWKS URL) override this.
    ///
    /// # Errors
    /// The backend failed or the keys are unusable.
    async fn load_set(&self) -> Result<KeySet, KeyError> {
        KeySet::from_doc(&self.load().await?)
    }

    /// The cheapest set a signing process can start with: sources that keep older keys
    /// apart (Secrets Manager's `AWSPREVIOUS`) return only the current ones and
    /// [`Loaded::SigningOnly`]; the rest arrive with the first full load, when a token names
    /// an unknown `kid` or the JWKS is published. Defaults to everything.
    ///
    /// # Errors
    /// The backend failed or the keys are unusable.
    async fn load_signing_set(&self) -> Result<(KeySet, Loaded), KeyError> {
        Ok((self.load_set().await?, Loaded::Complete))
    }
}

/// How much of a source a loaded key set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// Every key the source has.
    Complete,
    /// Only the keys that sign now.
    SigningOnly,
}

/// Keys held in memory: tests, benchmarks, and processes given keys by other means.
#[derive(Debug, Clone)]
pub struct StaticKeys(pub KeySetDoc);

impl StaticKeys {
    /// Fresh keys for the given algorithms.
    ///
    /// # Errors
    /// Key generation failed.
    pub fn generate(algs: &[SigningAlg]) -> Result<Self, KeyError> {
        KeySetDoc::generate(algs).map(Self)
    }
}

#[async_trait]
impl KeySource for StaticKeys {
    async fn load(&self) -> Result<KeySetDoc, KeyError> {
        Ok(self.0.clone())
    }
}

/// No keys at all, for functions that never sign or verify a token (register, authorize):
/// no backend call and no key generation at start; the set is empty and verify-only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKeys;

#[async_trait]
impl KeySource for NoKeys {
    async fn load(&self) -> Result<KeySetDoc, KeyError> {
        Ok(KeySetDoc::default())
    }

    async fn load_set(&self) -> Result<KeySet, KeyError> {
        KeySet::empty()
    }
}

/// The public JWK Set of private key-set documents: every key of `docs`, in order, the
/// first occurrence of each `kid` only; empty documents are skipped. Exactly what the JWKS
/// endpoint of a process holding those documents serves: public parameters, `kid`, `alg`
/// and `use=sig`, never a private parameter.
///
/// # Errors
/// A key in a non-empty document is malformed (see [`KeySet::from_doc`]).
pub fn public_jwks<'a>(docs: impl IntoIterator<Item = &'a KeySetDoc>) -> Result<JwkSet, KeyError> {
    let mut keys: Vec<jsonwebtoken::jwk::Jwk> = Vec::new();
    for doc in docs {
        if doc.keys.is_empty() {
            continue;
        }
        for jwk in &KeySet::from_doc(doc)?.jwks().keys {
            if !keys.iter().any(|k| k.common.key_id == jwk.common.key_id) {
                keys.push(jwk.clone());
            }
        }
    }
    Ok(JwkSet { keys })
}

/// The `kid`s of a JWK Set, in order (keys without one are left out).
pub fn jwks_kids(jwks: &JwkSet) -> Vec<String> {
    jwks.keys.iter().filter_map(|k| k.common.key_id.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_next_key_set_publishes_new_keys_before_they_sign_and_carries_the_signing_ones() -> Result<(), KeyError> {
        let algs = [SigningAlg::Es256];
        // The first set signs at once.
        let first = next_key_set(None, &algs, 1_000, 600)?;
        let k1 = first.keys.first().map(|k| k.kid.clone()).unwrap_or_default();
        assert_eq!(first.keys.iter().map(|k| k.not_before).collect::<Vec<_>>(), [0]);
        // The next one: K2 from 2_600, K1 carried and signing until then.
        let second = next_key_set(Some(&first), &algs, 2_000, 600)?;
        let k2 = second.keys.first().map(|k| k.kid.clone()).unwrap_or_default();
        assert_eq!(second.keys.len(), 2);
        let set = KeySet::from_doc(&second)?;
        assert_eq!(set.signing_kid_at(SigningAlg::Es256, 2_599), Some(k1.as_str()));
        assert_eq!(set.signing_kid_at(SigningAlg::Es256, 2_600), Some(k2.as_str()));
        assert!(set.verify_key(&k2).is_some() && set.jwks().keys.len() == 2, "published now");
        // Rotating again before K2 signs carries K1 (still the signer) and drops K2: bounded.
        let third = next_key_set(Some(&second), &algs, 2_100, 600)?;
        assert_eq!(third.keys.len(), 2);
        assert_eq!(third.keys.get(1).map(|k| k.kid.as_str()), Some(k1.as_str()));
        // No delay (a leaked key): the new key signs at once, nothing is carried.
        let now = next_key_set(Some(&second), &algs, 2_100, 0)?;
        assert_eq!(now.keys.len(), 1);
        let set = KeySet::from_doc(&now)?;
        assert_eq!(set.signing_kid_at(SigningAlg::Es256, 2_100), now.keys.first().map(|k| k.kid.as_str()));
        // A token cannot be signed before any key's time.
        assert!(KeySet::from_doc(&second)?.sign_at(SigningAlg::Es256, "JWT", b"{}", 1_999).is_ok(), "K1");
        let only_future = KeySetDoc { keys: second.keys.iter().take(1).cloned().collect() };
        assert!(KeySet::from_doc(&only_future)?.sign_at(SigningAlg::Es256, "JWT", b"{}", 2_000).is_err());
        Ok(())
    }

    fn kids(doc: &KeySetDoc) -> Vec<String> {
        doc.keys.iter().map(|k| k.kid.clone()).collect()
    }

    #[test]
    fn the_public_jwks_keeps_order_drops_duplicates_and_holds_no_private_parameter()
    -> Result<(), Box<dyn std::error::Error>> {
        // Arrange: a pending, a current and a previous set; the current one repeated (a
        // rotation step retried), and an empty placeholder.
        let pending = KeySetDoc::generate(&[SigningAlg::Es256, SigningAlg::Rs256])?;
        let current = KeySetDoc::generate(&[SigningAlg::Es256, SigningAlg::EdDsa])?;
        let previous = KeySetDoc::generate(&[SigningAlg::Es256])?;
        let placeholder = KeySetDoc::default();
        // Act
        let jwks = public_jwks([&pending, &current, &placeholder, &current, &previous])?;
        // Assert
        let want: Vec<String> = [kids(&pending), kids(&current), kids(&previous)].concat();
        assert_eq!(jwks_kids(&jwks), want);
        let json = serde_json::to_value(&jwks)?;
        for k in json["keys"].as_array().ok_or("no keys")? {
            for private in ["d", "p", "q", "dp", "dq", "qi", "k", "oth"] {
                assert!(k.get(private).is_none(), "{private} leaked in {k}");
            }
            assert_eq!(k["use"], "sig");
            assert!(k["alg"].is_string() && k["kid"].is_string(), "{k}");
        }
        let text = json.to_string();
        assert!(!text.contains("PRIVATE KEY"));
        // What a verify-only process parses out of it verifies exactly those kids.
        let set = KeySet::from_jwks(&jwks)?;
        for kid in &want {
            assert!(set.verify_key(kid).is_some(), "{kid}");
        }
        assert!(!set.can_sign(SigningAlg::Es256));
        // The same document as a process holding [pending, current] would publish.
        let mut both = pending.clone();
        both.keys.extend(current.keys.clone());
        assert_eq!(
            serde_json::to_value(public_jwks([&pending, &current])?)?,
            serde_json::to_value(KeySet::from_doc(&both)?.jwks())?
        );
        Ok(())
    }

    #[test]
    fn no_documents_give_an_empty_set_and_a_bad_key_is_an_error() -> Result<(), Box<dyn std::error::Error>> {
        assert!(public_jwks([&KeySetDoc::default()])?.keys.is_empty());
        let mut bad = KeySetDoc::generate(&[SigningAlg::Es256])?;
        if let Some(k) = bad.keys.first_mut() {
            // Well-formed PEM around bytes that are no key at all.
            k.private_key_pem = pem_encode("PRIVATE KEY", vec![0; 3]);
        }
        assert!(public_jwks([&bad]).is_err());
        Ok(())
    }

    #[tokio::test]
    async fn no_keys_is_an_empty_verify_only_set() -> Result<(), KeyError> {
        let set = NoKeys.load_set().await?;
        assert!(set.jwks().keys.is_empty());
        assert!(!set.can_sign(SigningAlg::Es256));
        Ok(())
    }
}
