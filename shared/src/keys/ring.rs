//! `KeyRing`: the process's cached key set. Loaded once at start (a cold start without keys
//! fails: never an unsigned token); refreshed when its TTL has passed and when a token
//! names an unknown `kid` (at most once per minute, so forged kids cannot hammer the
//! source); when the source fails, the cached set keeps serving.
use super::{KeyError, KeySet, KeySource, Loaded};
use crate::keys::SigningAlg;
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Fewest seconds between two refreshes caused by unknown kids.
pub const UNKNOWN_KID_INTERVAL: i64 = 60;

/// The cached key set of a process.
pub struct KeyRing {
    current: ArcSwap<KeySet>,
    source: Arc<dyn KeySource>,
    /// The algorithm that must be able to sign; `None` for verify-only processes.
    alg: Option<SigningAlg>,
    /// Seconds between scheduled refreshes; `None` never refreshes on a schedule.
    ttl: Option<i64>,
    loaded_at: AtomicI64,
    last_attempt: AtomicI64,
    generation: std::sync::atomic::AtomicU64,
    refreshing: tokio::sync::Mutex<()>,
    /// Whether the set holds every key of the source (not just the signing ones).
    complete: std::sync::atomic::AtomicBool,
    /// When loading every key last failed (so a failing backend is not asked per request).
    completion_failed_at: AtomicI64,
    /// Nothing loaded yet on purpose ([`KeyRing::deferred`]): no scheduled refresh until then.
    deferred: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").field("keys", &self.current()).field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

/// `set`, if it signs with `alg` (when one is required).
fn signing(set: KeySet, alg: Option<SigningAlg>) -> Result<KeySet, KeyError> {
    match alg {
        Some(alg) if !set.can_sign(alg) => Err(KeyError::NoSigningKey(alg.as_str())),
        _ => Ok(set),
    }
}

/// Why the keys are (re)loaded: logged, and an unknown `kid` is rate-limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// The keys that the start did not load (previous keys, for verification).
    PreviousKeys,
    /// The cache time is over.
    Ttl,
    /// A token named a `kid` this process does not hold.
    UnknownKid,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Self::PreviousKeys => "previous keys",
            Self::Ttl => "ttl",
            Self::UnknownKid => "unknown kid",
        }
    }
}

impl KeyRing {
    /// Load the keys now (start-up).
    ///
    /// # Errors
    /// The source failed, the keys are malformed, or none signs with `alg`.
    pub async fn load(
        source: Arc<dyn KeySource>,
        alg: Option<SigningAlg>,
        ttl: Option<i64>,
        now: i64,
    ) -> Result<Self, KeyError> {
        // A signing process starts with the signing keys only (one backend call); a
        // verify-only one needs every key from the start.
        let first = match alg {
            Some(_) => source.load_signing_set().await.and_then(|(set, loaded)| Ok((signing(set, alg)?, loaded))),
            None => source.load_set().await.map(|set| (set, Loaded::Complete)),
        };
        let (set, loaded) = match first {
            Ok(found) => found,
            // A process that only verifies (alg None) starts without keys and refuses every
            // token until a (rate-limited) refresh succeeds: fail closed, not crash-loop.
            Err(e) if alg.is_none() => {
                tracing::error!(error = %e, "no verification keys at start; every token is refused until they load");
                (KeySet::empty()?, Loaded::SigningOnly)
            }
            Err(e) => return Err(e),
        };
        let ring = Self::holding(set, source, alg, ttl, now);
        ring.complete.store(loaded == Loaded::Complete, Ordering::Release);
        Ok(ring)
    }

    /// A ring holding `set`, loaded at `now`, not complete, not deferred.
    fn holding(set: KeySet, source: Arc<dyn KeySource>, alg: Option<SigningAlg>, ttl: Option<i64>, now: i64) -> Self {
        Self {
            current: ArcSwap::from_pointee(set),
            source,
            alg,
            ttl,
            loaded_at: AtomicI64::new(now),
            last_attempt: AtomicI64::new(now),
            generation: std::sync::atomic::AtomicU64::new(0),
            refreshing: tokio::sync::Mutex::new(()),
            complete: false.into(),
            completion_failed_at: AtomicI64::new(i64::MIN / 2),
            deferred: false.into(),
        }
    }

    /// A verify-only ring that loads nothing now, for a process that rarely verifies: the
    /// first token naming a `kid` loads every key ([`KeyRing::refresh_for_unknown_kid`]); a
    /// failed load is retried at most once a minute, every token refused until one succeeds.
    ///
    /// # Errors
    /// No randomness for the empty set's derived form key.
    pub fn deferred(source: Arc<dyn KeySource>, ttl: Option<i64>, now: i64) -> Result<Self, KeyError> {
        let ring = Self::holding(KeySet::empty()?, source, None, ttl, now);
        ring.deferred.store(true, Ordering::Release);
        Ok(ring)
    }

    /// Load every key of the source if the start loaded only the signing ones (before the
    /// JWKS is published, or when a token names a kid the signing keys do not have). Waits
    /// for a load already under way; after a failure, tries again at most once per minute.
    /// Returns whether the set is complete now.
    pub async fn ensure_complete(&self, now: i64) -> bool {
        if self.complete.load(Ordering::Acquire) {
            return true;
        }
        let _guard = self.refreshing.lock().await;
        if self.complete.load(Ordering::Acquire) {
            return true;
        }
        if now - self.completion_failed_at.load(Ordering::Relaxed) < UNKNOWN_KID_INTERVAL {
            return false;
        }
        let done = self.install(now, Reason::PreviousKeys).await;
        if !done {
            self.completion_failed_at.store(now, Ordering::Relaxed);
        }
        done
    }

    /// The current key set (cheap: no lock, one `Arc` clone).
    pub fn current(&self) -> Arc<KeySet> {
        self.current.load_full()
    }

    /// Changes whenever a new key set is installed: caches of verified tokens compare it.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Refresh when the TTL has passed (called once per request; one atomic load when not due).
    pub async fn refresh_if_stale(&self, now: i64) {
        if self.deferred.load(Ordering::Acquire) {
            return;
        }
        if let Some(ttl) = self.ttl
            && now - self.loaded_at.load(Ordering::Relaxed) >= ttl
            && now - self.last_attempt.load(Ordering::Relaxed) >= UNKNOWN_KID_INTERVAL.min(ttl)
        {
            self.refresh(now, Reason::Ttl).await;
        }
    }

    /// A token named a `kid` we do not know: refresh, at most once per minute. Returns
    /// whether a refresh happened (so the caller may verify once more).
    pub async fn refresh_for_unknown_kid(&self, now: i64) -> bool {
        // The kid may be a previous key that the start did not load: load everything once.
        if !self.complete.load(Ordering::Acquire) {
            return self.ensure_complete(now).await;
        }
        if now - self.last_attempt.load(Ordering::Relaxed) < UNKNOWN_KID_INTERVAL {
            return false;
        }
        self.refresh(now, Reason::UnknownKid).await
    }

    async fn refresh(&self, now: i64, reason: Reason) -> bool {
        // One refresh at a time; the others keep using the current set.
        let Ok(_guard) = self.refreshing.try_lock() else { return false };
        if now - self.last_attempt.load(Ordering::Relaxed) < UNKNOWN_KID_INTERVAL && reason == Reason::UnknownKid {
            return false;
        }
        self.install(now, reason).await
    }

    /// Load every key and install them (the caller holds `refreshing`).
    async fn install(&self, now: i64, reason: Reason) -> bool {
        self.last_attempt.store(now, Ordering::Relaxed);
        match self.source.load_set().await.and_then(|set| signing(set, self.alg)) {
            Ok(set) => {
                self.current.store(Arc::new(set));
                self.loaded_at.store(now, Ordering::Relaxed);
                self.complete.store(true, Ordering::Release);
                self.deferred.store(false, Ordering::Release);
                self.generation.fetch_add(1, Ordering::AcqRel);
                tracing::info!(event = "keys_refreshed", reason = reason.as_str(), "signing keys reloaded");
                true
            }
            Err(e) => {
                // Stale-if-error: keep serving what we have (docs/SECURITY.md R7).
                tracing::error!(error = %e, reason = reason.as_str(), "key refresh failed; serving cached keys");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeySetDoc, StaticKeys};
    use async_trait::async_trait;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    /// A source whose document can be swapped, that can fail, and that counts loads.
    struct Flaky {
        doc: Mutex<KeySetDoc>,
        fail: std::sync::atomic::AtomicBool,
        loads: AtomicUsize,
    }

    #[async_trait]
    impl KeySource for Flaky {
        async fn load(&self) -> Result<KeySetDoc, KeyError> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                return Err(KeyError::Backend(anyhow::anyhow!("secrets manager is down")));
            }
            Ok(self.doc.lock().map(|d| d.clone()).unwrap_or_default())
        }
    }

    fn flaky() -> Result<Arc<Flaky>, KeyError> {
        Ok(Arc::new(Flaky {
            doc: Mutex::new(KeySetDoc::generate(&[SigningAlg::Es256])?),
            fail: false.into(),
            loads: 0.into(),
        }))
    }

    #[tokio::test]
    async fn unknown_kids_refresh_at_most_once_a_minute() -> Result<(), KeyError> {
        let src = flaky()?;
        let ring = KeyRing::load(src.clone(), Some(SigningAlg::Es256), None, 1_000).await?;
        assert!(!ring.refresh_for_unknown_kid(1_030).await, "too soon after start");
        for _ in 0..100 {
            ring.refresh_for_unknown_kid(1_060).await;
        }
        assert_eq!(src.loads.load(Ordering::SeqCst), 2, "start + one refresh");
        Ok(())
    }

    /// A deferred ring reads nothing at start or on its schedule; the first token naming a
    /// kid loads every key (a failure is tried again after a minute, refusing meanwhile), and
    /// from then on it refreshes like any ring.
    #[tokio::test]
    async fn a_deferred_ring_loads_at_the_first_kid_and_then_keeps_its_schedule() -> Result<(), KeyError> {
        let src = flaky()?;
        let kid = src.doc.lock().map(|d| d.keys.first().map(|k| k.kid.clone())).ok().flatten().unwrap_or_default();
        let ring = KeyRing::deferred(src.clone(), Some(300), 1_000)?;
        assert!(ring.current().verify_key(&kid).is_none(), "empty at start");
        ring.refresh_if_stale(5_000).await;
        assert_eq!(src.loads.load(Ordering::SeqCst), 0, "no read at start nor on the schedule");
        src.fail.store(true, Ordering::SeqCst);
        assert!(!ring.refresh_for_unknown_kid(5_001).await, "the source is down");
        assert!(!ring.refresh_for_unknown_kid(5_030).await, "not again within the minute");
        assert_eq!(src.loads.load(Ordering::SeqCst), 1);
        src.fail.store(false, Ordering::SeqCst);
        assert!(ring.refresh_for_unknown_kid(5_061).await, "a minute later it loads");
        assert!(ring.current().verify_key(&kid).is_some());
        ring.refresh_if_stale(5_361).await;
        assert_eq!(src.loads.load(Ordering::SeqCst), 3, "then the schedule runs");
        Ok(())
    }

    #[tokio::test]
    async fn a_failing_source_keeps_the_cached_keys_and_a_cold_start_fails() -> Result<(), KeyError> {
        let src = flaky()?;
        let ring = KeyRing::load(src.clone(), Some(SigningAlg::Es256), Some(300), 1_000).await?;
        let before = ring.current().signing_kid(SigningAlg::Es256).map(str::to_owned);
        src.fail.store(true, Ordering::SeqCst);
        ring.refresh_if_stale(1_400).await;
        assert!(!ring.refresh_for_unknown_kid(1_500).await);
        assert_eq!(ring.current().signing_kid(SigningAlg::Es256).map(str::to_owned), before);
        assert!(KeyRing::load(src, Some(SigningAlg::Es256), None, 0).await.is_err(), "cold start without keys");
        Ok(())
    }

    #[tokio::test]
    async fn a_rotated_set_is_picked_up_after_the_ttl() -> Result<(), KeyError> {
        let src = flaky()?;
        let ring = KeyRing::load(src.clone(), Some(SigningAlg::Es256), Some(300), 1_000).await?;
        let old = ring.current().signing_kid(SigningAlg::Es256).map(str::to_owned);
        let mut next = KeySetDoc::generate(&[SigningAlg::Es256])?;
        next.keys.extend(src.doc.lock().map(|d| d.keys.clone()).unwrap_or_default());
        *src.doc.lock().map_err(|_| KeyError::Crypto("lock"))? = next;
        ring.refresh_if_stale(1_299).await;
        assert_eq!(ring.current().signing_kid(SigningAlg::Es256).map(str::to_owned), old, "not yet");
        ring.refresh_if_stale(1_300).await;
        assert_ne!(ring.current().signing_kid(SigningAlg::Es256).map(str::to_owned), old);
        assert!(ring.current().verify_key(old.as_deref().unwrap_or_default()).is_some(), "old key still verifies");
        let _ = StaticKeys::generate(&[SigningAlg::Es256])?;
        Ok(())
    }

    /// Like Secrets Manager: current keys sign, previous ones only verify, and a start may
    /// load the current ones alone.
    struct TwoStage {
        current: KeySetDoc,
        previous: KeySetDoc,
        full_loads: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl KeySource for TwoStage {
        async fn load(&self) -> Result<KeySetDoc, KeyError> {
            self.full_loads.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                return Err(KeyError::Backend(anyhow::anyhow!("secrets manager is down")));
            }
            let mut doc = self.current.clone();
            doc.keys.extend(self.previous.keys.clone());
            Ok(doc)
        }
        async fn load_signing_set(&self) -> Result<(KeySet, Loaded), KeyError> {
            Ok((KeySet::from_doc(&self.current)?, Loaded::SigningOnly))
        }
    }

    fn kid(doc: &KeySetDoc) -> String {
        doc.keys.first().map(|k| k.kid.clone()).unwrap_or_default()
    }

    #[tokio::test]
    async fn a_start_loads_the_signing_keys_and_the_previous_ones_follow_once() -> Result<(), KeyError> {
        let src = Arc::new(TwoStage {
            current: KeySetDoc::generate(&[SigningAlg::Es256])?,
            previous: KeySetDoc::generate(&[SigningAlg::Es256])?,
            full_loads: 0.into(),
            fail: false.into(),
        });
        let ring = KeyRing::load(src.clone(), Some(SigningAlg::Es256), None, 1_000).await?;
        let (current, previous) = (kid(&src.current), kid(&src.previous));
        assert_eq!(src.full_loads.load(Ordering::SeqCst), 0, "the start made one signing-only load");
        assert!(ring.current().verify_key(&current).is_some());
        assert!(ring.current().verify_key(&previous).is_none());
        // A token signed by the previous key, right after start: loaded at once (not
        // rate-limited like other unknown kids), and only once.
        assert!(ring.refresh_for_unknown_kid(1_001).await);
        assert!(ring.current().verify_key(&previous).is_some());
        assert!(ring.ensure_complete(1_002).await);
        assert!(!ring.refresh_for_unknown_kid(1_003).await, "complete now: the per-minute limit applies");
        assert_eq!(src.full_loads.load(Ordering::SeqCst), 1);
        Ok(())
    }

    #[tokio::test]
    async fn a_failing_completion_keeps_the_signing_keys_and_retries_once_a_minute() -> Result<(), KeyError> {
        let src = Arc::new(TwoStage {
            current: KeySetDoc::generate(&[SigningAlg::Es256])?,
            previous: KeySetDoc::generate(&[SigningAlg::Es256])?,
            full_loads: 0.into(),
            fail: true.into(),
        });
        let ring = KeyRing::load(src.clone(), Some(SigningAlg::Es256), None, 1_000).await?;
        for t in 1_001..1_050 {
            assert!(!ring.ensure_complete(t).await);
        }
        assert_eq!(src.full_loads.load(Ordering::SeqCst), 1, "one attempt, then a minute's pause");
        assert!(ring.current().can_sign(SigningAlg::Es256), "still signing");
        src.fail.store(false, Ordering::SeqCst);
        assert!(ring.ensure_complete(1_061).await);
        assert!(ring.current().verify_key(&kid(&src.previous)).is_some());
        Ok(())
    }

    #[tokio::test]
    async fn keys_that_cannot_sign_with_the_configured_alg_are_refused() -> Result<(), KeyError> {
        let src: Arc<dyn KeySource> = Arc::new(StaticKeys::generate(&[SigningAlg::Rs256])?);
        assert!(matches!(
            KeyRing::load(src, Some(SigningAlg::Es256), None, 0).await,
            Err(KeyError::NoSigningKey("ES256"))
        ));
        Ok(())
    }
}
