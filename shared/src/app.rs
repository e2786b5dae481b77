//! `App`: everything a handler needs, built once per process (Lambda cold start or local
//! server start) and shared by reference. Handlers never build clients or read env.
use crate::cached_secret::CachedSecret;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::crypto::Secret;
use crate::jwt::VerifiedTokenCache;
use crate::keys::{FormKey, FormKeyError, FormKeyOrigin};
use crate::keys::{KeyError, KeyRing, KeySet, KeySource};
use crate::store::{
    ClientStore, CodeStore, DataStore, GrantStore, SessionStore, Stores, ThrottleStore, TokenStore, UserStore,
};
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
    /// Browser sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Consent grants.
    pub grants: Arc<dyn GrantStore>,
    /// The resource servers (the built-in API and the registered ones), cached.
    pub resources: crate::catalog::Resources,
    /// Client ID Metadata Documents fetched by this process, cached.
    pub cimd: crate::cimd::Documents,
    /// Upstream identities linked to users.
    pub identities: Arc<dyn crate::store::IdentityStore>,
    /// Device authorization requests.
    pub devices: Arc<dyn crate::store::DeviceStore>,
    /// The upstream identity providers, with what this process cached of them.
    pub federation: crate::federation::Upstreams,
    /// The cached signing and verification keys.
    pub key_ring: KeyRing,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Verified access tokens, so `/api/data` does not re-verify signatures.
    pub token_cache: VerifiedTokenCache,
    /// The login form's MAC key (see [`App::form_key`]).
    form_key: FormKey,
    /// The registration token from a secret, re-read when stale (see [`App::registration_token`]).
    registration_secret: Option<CachedSecret>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("issuer", &self.settings.issuer)
            .field("keys", &self.key_ring)
            .field("form_key", &self.form_key)
            .field("registration_secret", &self.registration_secret)
            .finish_non_exhaustive()
    }
}

/// Why the app could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Loading or parsing keys failed.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The login form's MAC key is unusable, or unusable for this function.
    #[error(transparent)]
    FormKey(#[from] FormKeyError),
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
    /// with a JWKS URL), whose key set need not hold private keys. The login form's MAC key
    /// is derived from the signing keys, or random for this process when `can_sign` is
    /// false; [`App::with_form_key`] sets another.
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
        Self::with_key_ring(settings, stores, key_ring, clock, can_sign)
    }

    /// An app over `stores` with `key_ring` as it is (loaded or [`KeyRing::deferred`]);
    /// `can_sign` as for [`App::with_key_ring_alg`].
    ///
    /// # Errors
    /// No randomness for a per-process form key.
    pub fn with_key_ring(
        settings: Settings,
        stores: Stores,
        key_ring: KeyRing,
        clock: Arc<dyn Clock>,
        can_sign: bool,
    ) -> Result<Self, AppError> {
        let form_key = if can_sign { FormKey::from_key_set() } else { FormKey::per_process()? };
        let resources = crate::catalog::Resources::new(
            stores.resources,
            crate::catalog::Catalog::builtin(&settings),
            settings.resource_cache_ttl,
        );
        let federation = crate::federation::Upstreams::new(&settings.federation);
        Ok(Self {
            settings,
            users: stores.users,
            clients: stores.clients,
            codes: stores.codes,
            tokens: stores.tokens,
            data: stores.data,
            throttle: stores.throttle,
            sessions: stores.sessions,
            grants: stores.grants,
            resources,
            cimd: crate::cimd::Documents::default(),
            identities: stores.identities,
            devices: stores.devices,
            federation,
            key_ring,
            clock,
            token_cache: VerifiedTokenCache::default(),
            form_key,
            registration_secret: None,
        })
    }

    /// The same app with the login form's MAC key `form_key` (from `FORM_KEY_SECRET_ID`).
    #[must_use]
    pub fn with_form_key(mut self, form_key: FormKey) -> Self {
        self.form_key = form_key;
        self
    }

    /// The same app requiring the registration token held by `secret` (re-read when stale)
    /// at `POST /register_client`, instead of `settings.registration_token`.
    #[must_use]
    pub fn with_registration_secret(mut self, secret: CachedSecret) -> Self {
        self.registration_secret = Some(secret);
        self
    }

    /// The HMAC key that seals the login form: from the form-key secret (its current value)
    /// when configured, else derived from the current key set's first private key.
    pub fn form_key(&self) -> aws_lc_rs::hmac::Key {
        self.form_keys().into_iter().next().unwrap_or_else(|| self.keys().form_key().clone())
    }

    /// The HMAC keys a sealed form (or CSRF cookie) may carry: the sealing key first, then
    /// the form-key secret's previous value.
    pub fn form_keys(&self) -> Vec<aws_lc_rs::hmac::Key> {
        self.form_key.keys().unwrap_or_else(|| vec![self.keys().form_key().clone()])
    }

    /// Re-read the form-key secret when stale, or because a form opened with none of its
    /// keys (`unknown`; at most once a minute). Whether new keys were installed.
    pub async fn refresh_form_keys(&self, now: i64, unknown: bool) -> bool {
        self.form_key.refresh(now, unknown).await
    }

    /// Where the login form's MAC key comes from.
    pub fn form_key_origin(&self) -> &FormKeyOrigin {
        self.form_key.origin()
    }

    /// Refuse to serve the login form with a key other containers do not share (a process
    /// without private keys and without `FORM_KEY_SECRET_ID`).
    ///
    /// # Errors
    /// [`FormKeyError::NotShared`], naming `FORM_KEY_SECRET_ID`.
    pub fn require_shared_form_key(&self) -> Result<(), AppError> {
        Ok(self.form_key.require_shared()?)
    }

    /// Whether `POST /register_client` requires a registration token.
    pub fn requires_registration_token(&self) -> bool {
        self.registration_secret.is_some() || self.settings.registration_token.is_some()
    }

    /// The registration token `POST /register_client` requires, if any: the secret's value
    /// (re-read first when older than its TTL; a failed read keeps the cached value), else
    /// `settings.registration_token` (`OAUTH_REGISTRATION_TOKEN`).
    pub async fn registration_token(&self) -> Option<Secret> {
        match &self.registration_secret {
            Some(secret) => {
                secret.refresh_if_stale(self.clock.now().unix_timestamp()).await;
                Some(Secret::clone(&secret.current()))
            }
            None => self.settings.registration_token.clone(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::SigningAlg;
    use crate::keys::StaticKeys;
    use crate::oauth::sealed::{self, PendingRequest};

    /// An app over its own key set (another container with other keys, as far as the form
    /// key is concerned), with `form_key` if given.
    async fn app(form_key: Option<FormKey>) -> anyhow::Result<App> {
        let settings = Settings::from_lookup(|k| (k == "ISSUER").then(|| "https://as.test".to_owned()))?;
        let stores = Stores::all(Arc::new(crate::store::NoStore));
        let keys = Arc::new(StaticKeys::generate(&[SigningAlg::Es256])?);
        let app = App::new(settings, stores, keys, None, App::system_clock()).await?;
        Ok(match form_key {
            Some(k) => app.with_form_key(k),
            None => app,
        })
    }

    fn pending() -> PendingRequest {
        PendingRequest {
            id: "req_1".into(),
            client_id: "cl_1".into(),
            redirect_uri: "https://client.example/cb".into(),
            redirect_uri_sent: true,
            scope: "openid".into(),
            resources: vec![],
            state: None,
            nonce: None,
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            expires_at: i64::MAX,
            csrf: "h".into(),
            sub: None,
            hint_sub: None,
            prompt_login: false,
            max_age: None,
            dpop_jkt: None,
            device: None,
        }
    }

    #[tokio::test]
    async fn apps_with_the_same_form_secret_open_each_others_forms_and_others_do_not() -> anyhow::Result<()> {
        let value = Secret::new("a shared form-key secret, forty characters");
        let other = Secret::new("another form-key secret, forty characters");
        let a = app(Some(FormKey::from_secret("form-key", &value)?)).await?;
        let b = app(Some(FormKey::from_secret("form-key", &value)?)).await?;
        let c = app(Some(FormKey::from_secret("form-key", &other)?)).await?;
        assert_eq!(a.form_key_origin(), &FormKeyOrigin::Secret("form-key".into()));
        let sealed = sealed::seal(&a.form_key(), &pending())?;
        assert_eq!(sealed::open(&b.form_key(), &sealed, 0), Some(pending()), "same secret, other signing keys");
        assert_eq!(sealed::open::<PendingRequest>(&c.form_key(), &sealed, 0), None, "another secret");
        // Without the secret the key comes from the signing keys: other keys, other MAC.
        let derived = app(None).await?;
        assert_eq!(derived.form_key_origin(), &FormKeyOrigin::KeySet);
        assert_eq!(sealed::open::<PendingRequest>(&derived.form_key(), &sealed, 0), None);
        let own = sealed::seal(&derived.form_key(), &pending())?;
        assert_eq!(sealed::open(&derived.form_key(), &own, 0), Some(pending()));
        assert_eq!(sealed::open(derived.keys().form_key(), &own, 0), Some(pending()), "today's derivation");
        Ok(())
    }
}
