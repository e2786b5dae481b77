//! Client ID Metadata Documents as this process holds them: the documents fetched (by URL,
//! each until its cache time ends) and the guarded HTTPS fetcher ([`fetch`], feature `cimd`).
//! The protocol rules (what a document must say, when one is fetched) are in `oauth::cimd`.
mod address;
#[cfg(feature = "cimd")]
pub mod fetch;

pub use address::is_special_use;

use crate::config::CimdSettings;
use crate::domain::Client;
use std::collections::HashMap;
use std::sync::Mutex;

/// Most documents one process keeps.
pub const MAX_CACHED: usize = 1000;

/// The documents this process has fetched, by URL, until their cache time ends.
pub struct Documents {
    cache: Mutex<HashMap<String, (i64, Client)>>,
    #[cfg(feature = "cimd")]
    fetcher: std::sync::OnceLock<Result<fetch::Fetcher, String>>,
}

impl std::fmt::Debug for Documents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Documents").finish_non_exhaustive()
    }
}

impl Default for Documents {
    fn default() -> Self {
        Self {
            cache: Mutex::new(HashMap::new()),
            #[cfg(feature = "cimd")]
            fetcher: std::sync::OnceLock::new(),
        }
    }
}

impl Documents {
    /// The client of the document at `url`, if it was fetched and its cache time has not
    /// ended at `now`.
    pub fn cached(&self, url: &str, now: i64) -> Option<Client> {
        let cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.get(url).filter(|(until, _)| *until > now).map(|(_, c)| c.clone())
    }

    /// Keep `client` (its id is the document's URL) until `until`. At most [`MAX_CACHED`]
    /// documents: the ended ones go first, then the one that would end soonest.
    pub fn keep(&self, client: &Client, until: i64, now: i64) {
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (u, _)| *u > now);
        }
        if cache.len() >= MAX_CACHED
            && let Some(soonest) = cache.iter().min_by_key(|(_, (u, _))| *u).map(|(k, _)| k.clone())
        {
            cache.remove(&soonest);
        }
        cache.insert(client.client_id.clone(), (until, client.clone()));
    }

    /// Fetch the document at `url`: its body and its `Cache-Control` max-age.
    ///
    /// # Errors
    /// Why it could not be had, in words a client may see.
    #[cfg(feature = "cimd")]
    pub async fn fetch(&self, settings: &CimdSettings, url: &url::Url) -> Result<(Vec<u8>, Option<i64>), String> {
        let fetcher = self.fetcher.get_or_init(|| fetch::Fetcher::new(settings));
        let fetcher = fetcher.as_ref().map_err(|e| {
            tracing::error!(error = %e, "the client metadata fetcher could not be built");
            "this server cannot fetch documents now".to_owned()
        })?;
        let f = fetcher.get(url).await?;
        Ok((f.body, f.max_age))
    }

    /// Without the `cimd` feature nothing is fetched.
    ///
    /// # Errors
    /// Always.
    #[cfg(not(feature = "cimd"))]
    pub async fn fetch(&self, _: &CimdSettings, _: &url::Url) -> Result<(Vec<u8>, Option<i64>), String> {
        Err("this function cannot fetch documents (built without the cimd feature)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_bounded_and_forgets_expired_documents() {
        let docs = Documents::default();
        let client = |i: usize| Client {
            client_id: format!("https://app{i}.example.com/c"),
            secret_hash: None,
            client_name: None,
            redirect_uris: vec![],
            grant_types: vec![],
            auth_method: crate::domain::AuthMethod::None,
            scope: crate::domain::ScopeSet::default(),
            id_token_signed_response_alg: crate::domain::SigningAlg::Rs256,
            created_at: 0,
            trusted: false,
            post_logout_redirect_uris: vec![],
            dpop_bound_access_tokens: false,
        };
        for i in 0..MAX_CACHED + 10 {
            docs.keep(&client(i), 1000 + i64::try_from(i).unwrap_or(0), 0);
        }
        assert!(docs.cache.lock().map(|c| c.len()).unwrap_or(0) <= MAX_CACHED);
        assert!(docs.cached("https://app1009.example.com/c", 500).is_some(), "the newest is kept");
        assert!(docs.cached("https://app0.example.com/c", 500).is_none(), "the soonest to end made room");
        assert!(docs.cached("https://app1009.example.com/c", 5000).is_none(), "expired");
    }
}
