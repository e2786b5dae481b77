//! `App`: everything a handler needs, built once per process (Lambda cold start or local
//! server start) and shared by reference. Handlers never build clients or read env.
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::keys::{KeyError, KeySet, KeySource};
use crate::oauth::access::VerifiedTokenCache;
use crate::store::{ClientStore, CodeStore, DataStore, SqliteStore, ThrottleStore, TokenStore, UserStore};
use std::sync::Arc;

/// The process-wide state of the server.
pub struct App {
    /// Settings read once at start.
    pub settings: Settings,
    /// Users.
    pub users: Arc<dyn UserStore>,
    /// Clients.
    pub clients: Arc<dyn ClientStore>,
    /// Authorization codes.
    pub codes: Arc<dyn CodeStore>,
    /// Refresh tokens and revocations.
    pub tokens: Arc<dyn TokenStore>,
    /// `/api/data` items.
    pub data: Arc<dyn DataStore>,
    /// Counters.
    pub throttle: Arc<dyn ThrottleStore>,
    /// Parsed signing and verification keys.
    pub keys: Arc<KeySet>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Verified access tokens, so `/api/data` does not re-verify signatures.
    pub token_cache: VerifiedTokenCache,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("issuer", &self.settings.issuer).field("keys", &self.keys).finish_non_exhaustive()
    }
}

/// Why the app could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Loading or parsing keys failed.
    #[error(transparent)]
    Keys(#[from] KeyError),
}

impl App {
    /// An app over one store that implements every trait (SQLite) and keys from `source`.
    ///
    /// # Errors
    /// The keys cannot be loaded, or none signs with the configured algorithm.
    pub async fn with_sqlite(
        settings: Settings,
        store: Arc<SqliteStore>,
        source: &dyn KeySource,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AppError> {
        let keys = load_keys(&settings, source).await?;
        Ok(Self {
            settings,
            users: store.clone(),
            clients: store.clone(),
            codes: store.clone(),
            tokens: store.clone(),
            data: store.clone(),
            throttle: store,
            keys: Arc::new(keys),
            clock,
            token_cache: VerifiedTokenCache::default(),
        })
    }

    /// The system clock, for production wiring.
    pub fn system_clock() -> Arc<dyn Clock> {
        Arc::new(SystemClock)
    }
}

/// Load and parse keys; refuse to start when the configured algorithm cannot sign
/// (never an unsigned token).
///
/// # Errors
/// The source failed, the keys are malformed, or none signs with the configured algorithm.
pub async fn load_keys(settings: &Settings, source: &dyn KeySource) -> Result<KeySet, KeyError> {
    let doc = source.load().await?;
    let set = KeySet::from_doc(&doc)?;
    if !set.can_sign(settings.access_token_alg) {
        return Err(KeyError::NoSigningKey(settings.access_token_alg.as_str()));
    }
    Ok(set)
}
