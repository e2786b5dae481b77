//! `App`: everything a handler needs, built once per process (Lambda cold start or local
//! server start) and shared by reference. Handlers never build clients or read env.
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::keys::{KeyError, KeyRing, KeySet, KeySource};
use crate::oauth::access::VerifiedTokenCache;
use crate::store::{ClientStore, CodeStore, DataStore, Stores, ThrottleStore, TokenStore, UserStore};
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
    /// The cached signing and verification keys.
    pub key_ring: KeyRing,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Verified access tokens, so `/api/data` does not re-verify signatures.
    pub token_cache: VerifiedTokenCache,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("issuer", &self.settings.issuer)
            .field("keys", &self.key_ring)
            .finish_non_exhaustive()
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
    /// An app over `stores`, with keys from `source` (loaded now; refreshed every
    /// `key_ttl` seconds when given, and on unknown `kid`s).
    ///
    /// # Errors
    /// The keys cannot be loaded, or none signs with the configured algorithm.
    pub async fn new(
        settings: Settings,
        stores: Stores,
        source: Arc<dyn KeySource>,
        key_ttl: Option<i64>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AppError> {
        Self::with_key_ring_alg(settings, stores, source, key_ttl, clock, true).await
    }

    /// Like [`App::new`]; `can_sign: false` builds a verify-only process (the authorizer
    /// with a JWKS URL), whose key set need not hold private keys.
    ///
    /// # Errors
    /// The keys cannot be loaded (or, with `can_sign`, none signs with the configured algorithm).
    pub async fn with_key_ring_alg(
        settings: Settings,
        stores: Stores,
        source: Arc<dyn KeySource>,
        key_ttl: Option<i64>,
        clock: Arc<dyn Clock>,
        can_sign: bool,
    ) -> Result<Self, AppError> {
        let alg = can_sign.then_some(settings.access_token_alg);
        let key_ring = KeyRing::load(source, alg, key_ttl, clock.now().unix_timestamp()).await?;
        Ok(Self {
            settings,
            users: stores.users,
            clients: stores.clients,
            codes: stores.codes,
            tokens: stores.tokens,
            data: stores.data,
            throttle: stores.throttle,
            key_ring,
            clock,
            token_cache: VerifiedTokenCache::default(),
        })
    }

    /// The current key set.
    pub fn keys(&self) -> Arc<KeySet> {
        self.key_ring.current()
    }

    /// The system clock, for production wiring.
    pub fn system_clock() -> Arc<dyn Clock> {
        Arc::new(SystemClock)
    }
}
