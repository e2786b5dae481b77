//! The cache of verified access tokens: the costly part of a protected request is the
//! signature, so each token is verified once per container and key set.
use super::{AccessClaims, LEEWAY_SECONDS};
use std::collections::HashMap;
use std::sync::Mutex;

/// Most entries the cache holds before it drops expired ones (and, if still full, all).
const CACHE_CAPACITY: usize = 50_000;

/// Verified access tokens keyed by SHA-256 of the token, each valid until its `exp`
/// (plus leeway) and only for the key set that verified it (a rotation that retires a key
/// retires its cached tokens too). Signature verification is the costly part of a protected
/// request (ES256 verifies ~14,000/s per core); revocation is still checked on every use.
#[derive(Default)]
pub struct VerifiedTokenCache {
    entries: Mutex<HashMap<[u8; 32], (u64, AccessClaims)>>,
}

impl VerifiedTokenCache {
    /// The claims of a token verified earlier by the same key set, while it is unexpired.
    pub fn get(&self, key: &[u8; 32], now: i64, generation: u64) -> Option<AccessClaims> {
        let map = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(key)
            .filter(|(g, c)| *g == generation && now <= c.exp.saturating_add(LEEWAY_SECONDS))
            .map(|(_, c)| c.clone())
    }

    /// Remember a verified token.
    pub fn insert(&self, key: [u8; 32], claims: AccessClaims, now: i64, generation: u64) {
        let mut map = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= CACHE_CAPACITY {
            map.retain(|_, (g, c)| *g == generation && now <= c.exp.saturating_add(LEEWAY_SECONDS));
            if map.len() >= CACHE_CAPACITY {
                map.clear();
            }
        }
        map.insert(key, (generation, claims));
    }
}
