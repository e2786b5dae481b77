//! A secret value read from a backend at start and re-read on the request path at most
//! every `ttl` seconds (the registration token in Secrets Manager), so replacing the value
//! needs no new containers. Like the `KeyRing`: a start that cannot read it fails; a later
//! read that fails keeps serving the cached value and is retried at most once a minute;
//! one read at a time. The value is never logged.
use crate::crypto::Secret;
use crate::keys::UNKNOWN_KID_INTERVAL;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Where a secret value is read from.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// Read the current value.
    ///
    /// # Errors
    /// The backend failed, or the value is empty.
    async fn read(&self) -> anyhow::Result<Secret>;

    /// What to call the secret in logs (its id, never its value).
    fn name(&self) -> &str;
}

/// The cached value of a [`SecretSource`].
pub struct CachedSecret {
    current: ArcSwap<Secret>,
    source: Arc<dyn SecretSource>,
    ttl: i64,
    loaded_at: AtomicI64,
    last_attempt: AtomicI64,
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for CachedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedSecret").field("source", &self.source.name()).field("ttl", &self.ttl).finish()
    }
}

impl CachedSecret {
    /// Read the value now (start-up); re-read when it is `ttl` seconds old.
    ///
    /// # Errors
    /// The first read failed.
    pub async fn load(source: Arc<dyn SecretSource>, ttl: i64, now: i64) -> anyhow::Result<Self> {
        let value = source.read().await?;
        Ok(Self {
            current: ArcSwap::from_pointee(value),
            source,
            ttl,
            loaded_at: AtomicI64::new(now),
            last_attempt: AtomicI64::new(now),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// The cached value (no lock, one `Arc` clone).
    pub fn current(&self) -> Arc<Secret> {
        self.current.load_full()
    }

    /// Re-read when the value is `ttl` seconds old (and the last attempt is over a minute,
    /// or `ttl`, ago). Returns whether a new value was installed.
    pub async fn refresh_if_stale(&self, now: i64) -> bool {
        let due = now - self.loaded_at.load(Ordering::Relaxed) >= self.ttl
            && now - self.last_attempt.load(Ordering::Relaxed) >= UNKNOWN_KID_INTERVAL.min(self.ttl);
        if !due {
            return false;
        }
        // One read at a time; the others keep using the cached value.
        let Ok(_guard) = self.refreshing.try_lock() else { return false };
        if now - self.last_attempt.load(Ordering::Relaxed) < UNKNOWN_KID_INTERVAL.min(self.ttl) {
            return false;
        }
        self.last_attempt.store(now, Ordering::Relaxed);
        match self.source.read().await {
            Ok(value) => {
                self.current.store(Arc::new(value));
                self.loaded_at.store(now, Ordering::Relaxed);
                tracing::info!(event = "secret_refreshed", secret = self.source.name(), "secret re-read");
                true
            }
            Err(e) => {
                // The error names the secret, never its value.
                tracing::error!(error = %format!("{e:#}"), secret = self.source.name(), "secret re-read failed; serving the cached value");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    struct Fake {
        value: Mutex<String>,
        fail: AtomicBool,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl SecretSource for Fake {
        async fn read(&self) -> anyhow::Result<Secret> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                anyhow::bail!("secrets manager is down");
            }
            Ok(Secret::new(self.value.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone()))
        }
        fn name(&self) -> &str {
            "fake"
        }
    }

    fn fake(value: &str) -> Arc<Fake> {
        Arc::new(Fake { value: Mutex::new(value.into()), fail: false.into(), reads: 0.into() })
    }

    #[tokio::test]
    async fn a_new_value_is_read_after_the_ttl_and_a_failure_keeps_the_old_one() -> anyhow::Result<()> {
        let src = fake("first-token");
        let cached = CachedSecret::load(src.clone(), 300, 1_000).await?;
        *src.value.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = "second-token".into();
        assert!(!cached.refresh_if_stale(1_299).await, "not yet");
        assert_eq!(cached.current().expose(), "first-token");
        assert!(cached.refresh_if_stale(1_300).await);
        assert_eq!(cached.current().expose(), "second-token");
        // Down: the cached value keeps serving, and the backend is asked once a minute.
        src.fail.store(true, Ordering::SeqCst);
        let before = src.reads.load(Ordering::SeqCst);
        for t in 1_600..1_650 {
            assert!(!cached.refresh_if_stale(t).await);
        }
        assert_eq!(src.reads.load(Ordering::SeqCst), before + 1, "one attempt, then a minute's pause");
        assert_eq!(cached.current().expose(), "second-token");
        src.fail.store(false, Ordering::SeqCst);
        assert!(cached.refresh_if_stale(1_660).await);
        Ok(())
    }

    #[tokio::test]
    async fn a_start_without_the_value_fails() {
        let src = fake("x");
        src.fail.store(true, Ordering::SeqCst);
        assert!(CachedSecret::load(src, 300, 0).await.is_err());
    }
}
