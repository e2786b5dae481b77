//! The login form's MAC key: where it comes from ([`FormKeyOrigin`]) and how a rotating
//! form-key secret is re-read. It must be the same in every process that serves the login
//! form: the page may be shown by one container and posted to another. It comes from a
//! secret of its own (`FORM_KEY_SECRET_ID`), or else is derived from the private signing
//! keys. The secret may be rotated (a new version): forms are sealed with its `AWSCURRENT`
//! value and open with `AWSCURRENT` or `AWSPREVIOUS`; a process re-reads both every
//! `KEYS_CACHE_SECONDS`, and at once (at most once a minute) when a form opens with neither,
//! so a form sealed by a container that already has the new value opens everywhere.
use crate::crypto::Secret;
use aws_lc_rs::hmac;

/// Fewest characters of a form-key secret (`FORM_KEY_SECRET_ID`).
pub const MIN_FORM_SECRET_LEN: usize = 32;

/// Where the login form's MAC key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormKeyOrigin {
    /// The value of the named secret (`FORM_KEY_SECRET_ID`): every process reading it agrees.
    Secret(String),
    /// Derived from the first private key of the current key set: processes sharing the
    /// key set agree (until a rotation changes it).
    KeySet,
    /// Random, made at start: a form sealed by this process opens only in this process.
    PerProcess,
}

/// Why a form key could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum FormKeyError {
    /// The form-key secret is too short to be a MAC key.
    #[error("FORM_KEY_SECRET_ID: the value of secret {0} is shorter than {MIN_FORM_SECRET_LEN} characters")]
    TooShort(String),
    /// The OS random source failed.
    #[error("the OS random source failed")]
    Random,
    /// The key would be random per process, so it cannot serve the login form on Lambda.
    #[error(
        "the login form's MAC key would be random in each process (these keys hold no private key), so a form \
         shown by one container would be refused by the next: set FORM_KEY_SECRET_ID to a Secrets Manager secret \
         of at least {MIN_FORM_SECRET_LEN} characters shared by every authorize container"
    )]
    NotShared,
}

/// The login form's MAC key and where it came from.
#[derive(Clone)]
pub struct FormKey {
    keys: Keys,
    origin: FormKeyOrigin,
}

#[derive(Clone)]
enum Keys {
    /// Derived from the current key set (see [`crate::keys::KeySet::form_key`]).
    KeySet,
    /// One key for the life of the process.
    Fixed(Box<hmac::Key>),
    /// A secret's current and previous values, re-read when stale.
    Rotating(std::sync::Arc<RotatingKeys>),
}

/// Where the form-key secret's values are read: `(AWSCURRENT, AWSPREVIOUS)`.
#[async_trait::async_trait]
pub trait FormKeySource: Send + Sync {
    /// The current value and, if there is one, the previous one.
    ///
    /// # Errors
    /// The backend failed.
    async fn read(&self) -> anyhow::Result<(Secret, Option<Secret>)>;
}

/// The keys of a rotating form-key secret (current first), cached like the signing keys.
pub struct RotatingKeys {
    source: std::sync::Arc<dyn FormKeySource>,
    secret_id: String,
    keys: arc_swap::ArcSwap<Vec<hmac::Key>>,
    ttl: i64,
    loaded_at: std::sync::atomic::AtomicI64,
    last_attempt: std::sync::atomic::AtomicI64,
    refreshing: tokio::sync::Mutex<()>,
}

fn derive(value: &Secret) -> hmac::Key {
    let mut seed = FORM_MAC_LABEL.to_vec();
    seed.extend_from_slice(value.expose().as_bytes());
    hmac::Key::new(hmac::HMAC_SHA256, &crate::crypto::sha256(&seed))
}

impl RotatingKeys {
    async fn read(source: &dyn FormKeySource, secret_id: &str) -> anyhow::Result<Vec<hmac::Key>> {
        let (current, previous) = source.read().await?;
        if current.expose().chars().count() < MIN_FORM_SECRET_LEN {
            return Err(FormKeyError::TooShort(secret_id.to_owned()).into());
        }
        let mut keys = vec![derive(&current)];
        // A previous value too short to be a key (or none) only means no second key.
        keys.extend(previous.filter(|p| p.expose().chars().count() >= MIN_FORM_SECRET_LEN).map(|p| derive(&p)));
        Ok(keys)
    }

    fn keys(&self) -> std::sync::Arc<Vec<hmac::Key>> {
        self.keys.load_full()
    }

    /// Re-read when stale, or (`unknown`) because a form opened with no key we hold; at
    /// most once a minute either way. Returns whether new keys were installed.
    async fn refresh(&self, now: i64, unknown: bool) -> bool {
        use std::sync::atomic::Ordering;
        let interval = crate::keys::UNKNOWN_KID_INTERVAL;
        let stale = now - self.loaded_at.load(Ordering::Relaxed) >= self.ttl;
        if !(stale || unknown) || now - self.last_attempt.load(Ordering::Relaxed) < interval.min(self.ttl) {
            return false;
        }
        let Ok(_guard) = self.refreshing.try_lock() else { return false };
        self.last_attempt.store(now, Ordering::Relaxed);
        match Self::read(self.source.as_ref(), &self.secret_id).await {
            Ok(keys) => {
                self.keys.store(std::sync::Arc::new(keys));
                self.loaded_at.store(now, Ordering::Relaxed);
                tracing::info!(event = "form_key_refreshed", secret = %self.secret_id, "form key re-read");
                true
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), secret = %self.secret_id, "form key re-read failed; serving the cached one");
                false
            }
        }
    }
}

impl std::fmt::Debug for FormKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormKey").field("origin", &self.origin).finish_non_exhaustive()
    }
}

/// Domain separation of form MAC keys (never usable as anything else).
const FORM_MAC_LABEL: &[u8] = b"oauth-core/form-mac/v1";

impl FormKey {
    /// The key of a form-key secret: HMAC-SHA256 with SHA-256(label ‖ value). Every process
    /// given the same value agrees on it.
    ///
    /// # Errors
    /// The value is shorter than [`MIN_FORM_SECRET_LEN`] characters.
    pub fn from_secret(secret_id: impl Into<String>, value: &Secret) -> Result<Self, FormKeyError> {
        let secret_id = secret_id.into();
        if value.expose().chars().count() < MIN_FORM_SECRET_LEN {
            return Err(FormKeyError::TooShort(secret_id));
        }
        Ok(Self { keys: Keys::Fixed(Box::new(derive(value))), origin: FormKeyOrigin::Secret(secret_id) })
    }

    /// The keys of a form-key secret that may be rotated: read now, re-read every `ttl`
    /// seconds and when a form opens with none of them.
    ///
    /// # Errors
    /// The first read failed, or the current value is too short.
    pub async fn rotating(
        secret_id: impl Into<String>,
        source: std::sync::Arc<dyn FormKeySource>,
        ttl: i64,
        now: i64,
    ) -> anyhow::Result<Self> {
        let secret_id = secret_id.into();
        let keys = RotatingKeys::read(source.as_ref(), &secret_id).await?;
        let ring = RotatingKeys {
            source,
            secret_id: secret_id.clone(),
            keys: arc_swap::ArcSwap::from_pointee(keys),
            ttl,
            loaded_at: now.into(),
            last_attempt: now.into(),
            refreshing: tokio::sync::Mutex::new(()),
        };
        Ok(Self { keys: Keys::Rotating(std::sync::Arc::new(ring)), origin: FormKeyOrigin::Secret(secret_id) })
    }

    /// The keys that open forms, sealing key first; `None` when derived from the key set.
    pub fn keys(&self) -> Option<Vec<hmac::Key>> {
        match &self.keys {
            Keys::KeySet => None,
            Keys::Fixed(k) => Some(vec![k.as_ref().clone()]),
            Keys::Rotating(r) => Some(r.keys().as_ref().clone()),
        }
    }

    /// Re-read a rotating secret when stale, or because a form opened with none of its keys
    /// (`unknown`); at most once a minute. Whether new keys were installed.
    pub async fn refresh(&self, now: i64, unknown: bool) -> bool {
        match &self.keys {
            Keys::Rotating(r) => r.refresh(now, unknown).await,
            Keys::KeySet | Keys::Fixed(_) => false,
        }
    }

    /// Derived from the current key set's first private key (what every process did before
    /// form-key secrets existed).
    pub fn from_key_set() -> Self {
        Self { keys: Keys::KeySet, origin: FormKeyOrigin::KeySet }
    }

    /// A random key for this process only (one that holds no private key and no form secret).
    ///
    /// # Errors
    /// The OS random source failed.
    pub fn per_process() -> Result<Self, FormKeyError> {
        let seed = crate::crypto::random_bytes::<32>().map_err(|_| FormKeyError::Random)?;
        Ok(Self {
            keys: Keys::Fixed(Box::new(hmac::Key::new(hmac::HMAC_SHA256, &seed))),
            origin: FormKeyOrigin::PerProcess,
        })
    }

    /// Where the key comes from.
    pub fn origin(&self) -> &FormKeyOrigin {
        &self.origin
    }

    /// Whether every process configured alike agrees on the key (so a form shown by one
    /// container opens in another).
    ///
    /// # Errors
    /// [`FormKeyError::NotShared`] for a per-process key.
    pub fn require_shared(&self) -> Result<(), FormKeyError> {
        match self.origin {
            FormKeyOrigin::PerProcess => Err(FormKeyError::NotShared),
            FormKeyOrigin::Secret(_) | FormKeyOrigin::KeySet => Ok(()),
        }
    }
}
