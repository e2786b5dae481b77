//! Resource servers as the protocol sees them (docs/API.md, "Resource servers"): the built-in
//! demo API plus the ones operators registered, read once per process and kept for
//! `RESOURCE_CACHE_SECONDS`, and the RFC 8707 rules on `resource` and `scope` against them.
use super::{OAuthError, store_failure};
use crate::domain::{ResourceId, ResourceServer, Scope, ScopeDef, ScopeSet};
use crate::store::ResourceStore;
use std::sync::{Arc, RwLock};

/// Most `resource` values one request may carry.
pub const MAX_TARGETS: usize = 8;

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

    /// A `scope` parameter (RFC 6749 §3.3): well-formed, and every value known.
    ///
    /// # Errors
    /// `invalid_scope` naming the first malformed or unknown value.
    pub fn requested_scope(&self, s: &str) -> Result<ScopeSet, OAuthError> {
        let set =
            ScopeSet::parse(s).map_err(|bad| OAuthError::InvalidScope(format!("malformed scope {bad:?}").into()))?;
        if let Some(bad) = set.iter().find(|sc| !self.knows(sc)) {
            let shown: String = bad.as_str().chars().take(64).collect();
            return Err(OAuthError::InvalidScope(format!("unknown scope {shown:?}").into()));
        }
        Ok(set)
    }

    /// The `resource` values of a request (RFC 8707 §2), each a registered resource server,
    /// duplicates removed, in order; none means the default resource.
    ///
    /// # Errors
    /// `invalid_target` for a malformed or unknown value, or more than [`MAX_TARGETS`].
    pub fn targets(&self, values: &[&str]) -> Result<Vec<ResourceId>, OAuthError> {
        if values.len() > MAX_TARGETS {
            return Err(OAuthError::InvalidTarget(format!("at most {MAX_TARGETS} resource values").into()));
        }
        let mut out: Vec<ResourceId> = Vec::new();
        for v in values {
            let id = ResourceId::parse(v).map_err(|why| OAuthError::InvalidTarget(why.into()))?;
            if self.get(&id).is_none() {
                return Err(OAuthError::InvalidTarget("the resource is not one this server issues tokens for".into()));
            }
            if !out.contains(&id) {
                out.push(id);
            }
        }
        if out.is_empty() {
            out.push(self.default_server().id.clone());
        }
        Ok(out)
    }

    /// Whether every scope of `scope` is an OpenID Connect scope or defined by one of
    /// `targets` (RFC 8707: scopes are checked per resource).
    ///
    /// # Errors
    /// `invalid_scope` naming a scope none of the targets defines.
    pub fn check_scopes(&self, targets: &[ResourceId], scope: &ScopeSet) -> Result<(), OAuthError> {
        let covered =
            |sc: &Scope| sc.is_user_scope() || targets.iter().filter_map(|t| self.get(t)).any(|s| s.defines(sc));
        match scope.iter().find(|sc| !covered(sc)) {
            None => Ok(()),
            Some(sc) => Err(OAuthError::InvalidScope(
                format!("scope {sc} is not defined by the requested resource (send the resource that defines it)")
                    .into(),
            )),
        }
    }

    /// The part of `granted` an access token for `resource` carries: the OpenID Connect
    /// scopes and those `resource` defines.
    pub fn scope_for(&self, resource: &ResourceId, granted: &ScopeSet) -> ScopeSet {
        let server = self.get(resource);
        granted.filter(|sc| sc.is_user_scope() || server.is_some_and(|s| s.defines(sc)))
    }

    /// The one resource a token is for: the `resource` of the token request, which must be
    /// one of `authorized`, or, when there is none, the only authorized resource (RFC 8707
    /// §2.2: each access token has one audience here).
    ///
    /// # Errors
    /// `invalid_target` for a malformed value, several values, one not authorized, or none
    /// when several were authorized.
    pub fn one_of(&self, requested: &[&str], authorized: &[ResourceId]) -> Result<ResourceId, OAuthError> {
        let default = [self.default_server().id.clone()];
        let authorized = if authorized.is_empty() { &default[..] } else { authorized };
        match requested {
            [] => match authorized {
                [only] => Ok(only.clone()),
                _ => Err(OAuthError::InvalidTarget(
                    "several resources were authorized: name the one this token is for".into(),
                )),
            },
            [one] => {
                let id = ResourceId::parse(one).map_err(|why| OAuthError::InvalidTarget(why.into()))?;
                if authorized.contains(&id) {
                    Ok(id)
                } else {
                    Err(OAuthError::InvalidTarget("the resource was not authorized for this grant".into()))
                }
            }
            _ => Err(OAuthError::InvalidTarget("an access token is for exactly one resource".into())),
        }
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
    store: Arc<dyn ResourceStore>,
    builtin: ResourceServer,
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
    /// 503 when the store cannot be read and nothing was read before.
    pub async fn catalog(&self, now: i64) -> Result<Arc<Catalog>, OAuthError> {
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
                    tracing::warn!(error = %e, "reading the resource servers failed; using the ones read before");
                    Ok(catalog)
                }
                None => Err(store_failure(e)),
            },
        }
    }

    /// Read the stored servers now (an operator tool's view, no cache).
    ///
    /// # Errors
    /// Store failures.
    pub async fn fresh(&self) -> Result<Catalog, OAuthError> {
        let stored = self.store.resources().await.map_err(store_failure)?;
        Ok(Catalog::new(self.builtin.clone(), stored))
    }

    /// Forget the cached catalog (after this process changed the stored servers).
    pub fn invalidate(&self) {
        *self.cached.write().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Register (or replace) a resource server, refusing one that is invalid, that takes the
    /// built-in API's id, or that defines a scope another resource server defines (a scope
    /// names one resource, so consent to it is unambiguous).
    ///
    /// # Errors
    /// `invalid_request` naming what is wrong; store failures.
    pub async fn put(&self, server: &ResourceServer) -> Result<(), OAuthError> {
        server.validate().map_err(OAuthError::invalid_request)?;
        if server.id == self.builtin.id {
            return Err(OAuthError::invalid_request("that is the built-in API's identifier"));
        }
        let stored = self.store.resources().await.map_err(store_failure)?;
        let catalog = Catalog::new(self.builtin.clone(), stored);
        for d in &server.scopes {
            if let Some(other) = catalog.owner(&d.scope).filter(|o| o.id != server.id) {
                return Err(OAuthError::invalid_request(format!("scope {} is defined by {}", d.scope, other.id)));
            }
        }
        self.store.put_resource(server).await.map_err(store_failure)?;
        self.invalidate();
        Ok(())
    }

    /// Remove a registered resource server; `false` if there was none.
    ///
    /// # Errors
    /// Store failures.
    pub async fn delete(&self, id: &ResourceId) -> Result<bool, OAuthError> {
        let removed = self.store.delete_resource(id).await.map_err(store_failure)?;
        self.invalidate();
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ResourceId {
        ResourceId::parse(s).expect("valid")
    }

    fn catalog() -> Catalog {
        let def = |s: &str| ScopeDef { scope: Scope::parse(s).expect("valid"), description: format!("Do {s}") };
        let builtin = ResourceServer {
            id: id("https://as.example/api"),
            name: "Demo".into(),
            scopes: vec![def("data:read"), def("data:write")],
            access_token_ttl: 900,
        };
        let orders = ResourceServer {
            id: id("https://orders.example"),
            name: "Orders".into(),
            scopes: vec![def("orders:read")],
            access_token_ttl: 300,
        };
        Catalog::new(builtin, vec![orders])
    }

    #[test]
    fn targets_and_scopes_follow_rfc_8707() {
        let c = catalog();
        let codes = |r: Result<Vec<ResourceId>, OAuthError>| r.map(|v| v.len()).map_err(|e| e.code());
        assert_eq!(codes(c.targets(&[])), Ok(1));
        assert_eq!(c.targets(&[]).map(|v| v[0].to_string()).ok().as_deref(), Some("https://as.example/api"));
        assert_eq!(codes(c.targets(&["https://orders.example/", "https://orders.example"])), Ok(1));
        assert_eq!(codes(c.targets(&["https://orders.example", "https://as.example/api"])), Ok(2));
        for bad in ["https://orders.example#f", "/api", "https://other.example", "https://as.example/api/"] {
            assert_eq!(codes(c.targets(&[bad])), Err("invalid_target"), "{bad}");
        }
        let nine = ["https://orders.example"; 9];
        assert_eq!(codes(c.targets(&nine)), Err("invalid_target"));

        let scope = |s: &str| ScopeSet::parse(s).expect("valid");
        let orders = [id("https://orders.example")];
        assert!(c.check_scopes(&orders, &scope("openid orders:read")).is_ok());
        assert_eq!(c.check_scopes(&orders, &scope("data:read")).map_err(|e| e.code()), Err("invalid_scope"));
        assert_eq!(c.requested_scope("orders:read nope").map_err(|e| e.code()).err(), Some("invalid_scope"));
        assert_eq!(c.scope_for(&orders[0], &scope("openid data:read orders:read")).to_string(), "openid orders:read");
        assert_eq!(c.ttl(&orders[0]), 300);
    }

    #[test]
    fn a_token_is_for_one_authorized_resource() {
        let c = catalog();
        let both = [id("https://orders.example"), id("https://as.example/api")];
        let pick = |req: &[&str], auth: &[ResourceId]| c.one_of(req, auth).map(String::from).map_err(|e| e.code());
        assert_eq!(pick(&[], &both[..1]), Ok("https://orders.example".into()));
        assert_eq!(pick(&[], &[]), Ok("https://as.example/api".into()), "legacy grants: the default API");
        assert_eq!(pick(&[], &both), Err("invalid_target"));
        assert_eq!(pick(&["https://orders.example/"], &both), Ok("https://orders.example".into()));
        assert_eq!(pick(&["https://as.example/api"], &both[..1]), Err("invalid_target"));
        assert_eq!(pick(&["https://orders.example", "https://as.example/api"], &both), Err("invalid_target"));
        assert_eq!(pick(&["https://orders.example#x"], &both), Err("invalid_target"));
    }
}
