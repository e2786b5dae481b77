//! Resource servers as a process holds them (docs/API.md, "Resource servers"): the built-in
//! demo API plus the ones operators registered ([`Catalog`]), read from the store at first
//! use and kept for `RESOURCE_CACHE_SECONDS` ([`Resources`]). The RFC 8707 rules on
//! `resource` and `scope` against a catalog are in `oauth::resources`.
use crate::domain::{ResourceId, ResourceServer, Scope, ScopeDef, ScopeSet};
use crate::store::{ResourceStore, StoreError};
use std::sync::{Arc, RwLock};

/// Every resource server at one moment: the built-in one first.
#[derive(Debug, Clone)]
pub struct Catalog {
    builtin: ResourceServer,
    stored: Vec<ResourceServer>,
}

impl Catalog {
    /// The built-in API (`settings.audience`, scopes `data:read data:write`) and `stored`
    /// (a stored one with the built-in's id is ignored).
    pub fn new(builtin: ResourceServer, mut stored: Vec<ResourceServer>) -> Self {
        stored.retain(|s| s.id != builtin.id);
        Self { builtin, stored }
    }
    /// The built-in demo API as `settings` describe it.
    pub fn builtin(settings: &crate::config::Settings) -> ResourceServer {
        Self::builtin_at(settings.audience.clone(), settings.access_token_ttl)
    }
    /// The built-in demo API at `id` with tokens living `access_token_ttl` seconds.
    pub fn builtin_at(id: ResourceId, access_token_ttl: i64) -> ResourceServer {
        ResourceServer {
            id,
            name: "Demo data API".into(),
            scopes: vec![
                ScopeDef { scope: Scope::DATA_READ, description: "Read your stored data".into() },
                ScopeDef { scope: Scope::DATA_WRITE, description: "Add to your stored data".into() },
            ],
            access_token_ttl,
        }
    }
    /// The default resource: the built-in API.
    pub fn default_server(&self) -> &ResourceServer {
        &self.builtin
    }
    /// Every resource server, the built-in one first.
    pub fn servers(&self) -> impl Iterator<Item = &ResourceServer> {
        std::iter::once(&self.builtin).chain(&self.stored)
    }
    /// The resource server `id`.
    pub fn get(&self, id: &ResourceId) -> Option<&ResourceServer> {
        self.servers().find(|s| &s.id == id)
    }
    /// The resource server that defines `scope`.
    pub fn owner(&self, scope: &Scope) -> Option<&ResourceServer> {
        self.servers().find(|s| s.defines(scope))
    }
    /// Whether `scope` exists: an OpenID Connect scope or one a resource server defines.
    pub fn knows(&self, scope: &Scope) -> bool {
        scope.is_user_scope() || self.owner(scope).is_some()
    }
    /// Every known scope: the OpenID Connect ones, then each resource server's.
    pub fn all_scopes(&self) -> Vec<&Scope> {
        Scope::OIDC.iter().chain(self.servers().flat_map(|s| s.scopes.iter().map(|d| &d.scope))).collect()
    }
    /// The consent page's words for `scope`.
    pub fn describe(&self, scope: &Scope) -> String {
        match scope.oidc_description() {
            Some(d) => d.to_owned(),
            None => self
                .owner(scope)
                .and_then(|s| s.scopes.iter().find(|d| &d.scope == scope))
                .map_or_else(|| scope.to_string(), |d| d.description.clone()),
        }
    }
    /// The part of `granted` an access token for `resource` carries: the OpenID Connect
    /// scopes and those `resource` defines.
    pub fn scope_for(&self, resource: &ResourceId, granted: &ScopeSet) -> ScopeSet {
        let server = self.get(resource);
        granted.filter(|sc| sc.is_user_scope() || server.is_some_and(|s| s.defines(sc)))
    }
    /// The access-token lifetime of `resource`.
    pub fn ttl(&self, resource: &ResourceId) -> i64 {
        self.get(resource).map_or(self.default_server().access_token_ttl, |s| s.access_token_ttl)
    }
}

/// A JSON array of resource servers (the local server's `--resources` file), each checked.
///
/// # Errors
/// Malformed JSON or an invalid server.
pub fn parse_list(text: &str) -> Result<Vec<ResourceServer>, String> {
    let servers: Vec<ResourceServer> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    for s in &servers {
        s.validate().map_err(|why| format!("{}: {why}", s.id))?;
    }
    Ok(servers)
}

/// The process's view of the resource servers: read from the store at first use, kept for
/// `RESOURCE_CACHE_SECONDS`, read again after. A failed read keeps serving the last good
/// catalog (logged); without one, the request fails with 503.
pub struct Resources {
    pub(crate) store: Arc<dyn ResourceStore>,
    pub(crate) builtin: ResourceServer,
    ttl: i64,
    cached: RwLock<Option<(i64, Arc<Catalog>)>>,
}

impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resources").field("builtin", &self.builtin.id).field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl Resources {
    /// A cache over `store` with `builtin` always present.
    pub fn new(store: Arc<dyn ResourceStore>, builtin: ResourceServer, ttl: i64) -> Self {
        Self { store, builtin, ttl, cached: RwLock::new(None) }
    }
    /// The catalog at `now` (unix seconds).
    ///
    /// # Errors
    /// The store cannot be read and nothing was read before.
    pub async fn catalog(&self, now: i64) -> Result<Arc<Catalog>, StoreError> {
        let current = self.cached.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some((at, catalog)) = &current
            && now >= *at
            && now - at < self.ttl
        {
            return Ok(catalog.clone());
        }
        match self.store.resources().await {
            Ok(stored) => {
                let catalog = Arc::new(Catalog::new(self.builtin.clone(), stored));
                *self.cached.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((now, catalog.clone()));
                Ok(catalog)
            }
            Err(e) => match current {
                Some((_, catalog)) => {
                    // Kept for another cache time: a failing store is not asked on every request.
                    tracing::warn!(error = %e, "reading the resource servers failed; using the ones read before");
                    *self.cached.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some((now, catalog.clone()));
                    Ok(catalog)
                }
                None => Err(e),
            },
        }
    }
    /// Read the stored servers now (an operator tool's view, no cache).
    ///
    /// # Errors
    /// Store failures.
    pub async fn fresh(&self) -> Result<Catalog, StoreError> {
        let stored = self.store.resources().await?;
        Ok(Catalog::new(self.builtin.clone(), stored))
    }
    /// Forget the cached catalog (after this process changed the stored servers).
    pub fn invalidate(&self) {
        *self.cached.write().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}
