//! Keys in a file of the local server's data folder, generated on first start (mode 0600)
//! and reused afterwards. Not for Lambda: there the keys live in Secrets Manager.
use super::{KeyError, KeySetDoc, KeySource, generate_key};
use crate::keys::SigningAlg;
use async_trait::async_trait;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A key-set document in `<data dir>/signing-keys.json`.
#[derive(Debug, Clone)]
pub struct FileKeySource {
    path: PathBuf,
    required: Vec<SigningAlg>,
}

impl FileKeySource {
    /// Keys in `dir/signing-keys.json`; `ES256`, `RS256` and `required` are generated
    /// when missing.
    pub fn new(dir: &Path, required: SigningAlg) -> Self {
        let mut algs = vec![SigningAlg::Es256, SigningAlg::Rs256];
        if !algs.contains(&required) {
            algs.push(required);
        }
        Self { path: dir.join("signing-keys.json"), required: algs }
    }

    /// Where the keys are kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load_or_generate(&self) -> Result<KeySetDoc, KeyError> {
        let mut doc = match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice::<KeySetDoc>(&bytes)
                .map_err(|e| KeyError::Invalid(format!("{}: {e}", self.path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => KeySetDoc::default(),
            Err(e) => return Err(e.into()),
        };
        let missing: Vec<SigningAlg> =
            self.required.iter().copied().filter(|a| !doc.keys.iter().any(|k| k.alg == *a)).collect();
        if !missing.is_empty() {
            for alg in missing {
                doc.keys.push(generate_key(alg)?);
            }
            self.write(&doc)?;
        }
        Ok(doc)
    }

    /// Write atomically: a 0600 temporary file renamed over the old one.
    fn write(&self, doc: &KeySetDoc) -> Result<(), KeyError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension(format!("tmp{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        // An existing file keeps its mode; force 0600 anyway.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        let json = serde_json::to_vec_pretty(doc).map_err(|e| KeyError::Invalid(e.to_string()))?;
        f.write_all(&json)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }
}

#[async_trait]
impl KeySource for FileKeySource {
    async fn load(&self) -> Result<KeySetDoc, KeyError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.load_or_generate()).await.map_err(|e| KeyError::Backend(e.into()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeySource;

    #[tokio::test]
    async fn keys_are_generated_once_with_mode_0600_and_reused() -> Result<(), Box<dyn std::error::Error>> {
        // Arrange
        let dir = std::env::temp_dir().join(format!("oauth-filekeys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let source = FileKeySource::new(&dir, SigningAlg::Es256);
        // Act
        let first = source.load().await?;
        let second = FileKeySource::new(&dir, SigningAlg::Es256).load().await?;
        // Assert
        let algs: Vec<SigningAlg> = first.keys.iter().map(|k| k.alg).collect();
        assert_eq!(algs, [SigningAlg::Es256, SigningAlg::Rs256]);
        let kids = |d: &KeySetDoc| d.keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>();
        assert_eq!(kids(&first), kids(&second));
        assert_eq!(std::fs::metadata(source.path())?.permissions().mode() & 0o777, 0o600);
        // Asking for another algorithm adds a key and keeps the others.
        let third = FileKeySource::new(&dir, SigningAlg::EdDsa).load().await?;
        assert_eq!(third.keys.len(), 3);
        assert_eq!(kids(&third).get(..2), Some(&kids(&first)[..]));
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[tokio::test]
    async fn a_corrupt_key_file_is_an_error_not_a_silent_regeneration() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("oauth-filekeys-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("signing-keys.json"), b"{not json")?;
        let r = FileKeySource::new(&dir, SigningAlg::Es256).load().await;
        assert!(matches!(r, Err(KeyError::Invalid(_))), "{r:?}");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
