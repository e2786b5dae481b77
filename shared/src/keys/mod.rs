//! Signing keys: the key-set document, the parsed [`KeySet`] that signs and verifies, and
//! the [`KeySource`] trait with its file and in-memory implementations.
//!
//! Private keys are parsed once per process (signing with a parsed key is ~1.8× faster);
//! the JWKS is built once and holds public parameters only. [`public_jwks`] builds the
//! public key document that verify-only processes read instead of the private keys.
mod file;
#[cfg(feature = "jwks-url")]
mod jwks_url;
mod ring;
pub mod secrets_manager;
mod set;

pub use file::FileKeySource;
#[cfg(feature = "jwks-url")]
pub use jwks_url::JwksUrlKeys;
pub use ring::{KeyRing, UNKNOWN_KID_INTERVAL};
pub use secrets_manager::{SecretsManagerKeys, SecretsManagerPublicKeys};
pub use set::{KeySet, VerifyKey};

use crate::jwt::SigningAlg;
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
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_key_pem", &"[redacted]")
            .finish()
    }
}

/// The stored key-set document: `{"keys": [...]}`. The first key of each algorithm signs;
/// every key verifies and appears in the JWKS.
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
    let material = KeyMaterial { kid: String::new(), alg, private_key_pem: pem_encode("PRIVATE KEY", &der) };
    // Fill in the RFC 7638 thumbprint so every process agrees on the kid.
    let kid = set::thumbprint(&material)?;
    Ok(KeyMaterial { kid, ..material })
}

/// Encode DER as PEM with 64-character lines.
fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
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
            k.private_key_pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into();
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
