//! The RFC 8707 rules on `resource` and `scope` against the resource servers
//! (`crate::catalog`; docs/API.md, "Resource servers"), and the operator's changes to them.
use super::{OAuthError, store_failure};
use crate::catalog::{Catalog, Resources};
use crate::domain::{ResourceId, ResourceServer, Scope, ScopeSet};

/// Most `resource` values one request may carry.
pub const MAX_TARGETS: usize = 8;

impl Catalog {
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
        match scope.iter().find(|sc| !self.covers(targets, sc)) {
            None => Ok(()),
            Some(sc) => Err(OAuthError::InvalidScope(
                format!("scope {sc} is not defined by the requested resource (send the resource that defines it)")
                    .into(),
            )),
        }
    }
    /// Whether `scope` may be asked with `targets`: an OpenID Connect scope, or one of them
    /// defines it.
    pub fn covers(&self, targets: &[ResourceId], scope: &Scope) -> bool {
        scope.is_user_scope() || targets.iter().filter_map(|t| self.get(t)).any(|s| s.defines(scope))
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
        let chosen = self.pick(requested, authorized)?;
        // A resource server removed since the grant gets no more tokens.
        if self.get(&chosen).is_none() {
            return Err(OAuthError::InvalidTarget(
                "the resource is no longer one this server issues tokens for".into(),
            ));
        }
        Ok(chosen)
    }

    fn pick(&self, requested: &[&str], authorized: &[ResourceId]) -> Result<ResourceId, OAuthError> {
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
}

impl Resources {
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
        let catalog = self.fresh().await.map_err(store_failure)?;
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

/// The catalog at `now`, from this process's cache.
///
/// # Errors
/// 503 when the store cannot be read and nothing was read before.
pub async fn catalog(app: &crate::App, now: i64) -> Result<std::sync::Arc<Catalog>, OAuthError> {
    app.resources.catalog(now).await.map_err(store_failure)
}

/// The `resource` values (RFC 8707: known, else the default API) and the `scope` (else the
/// client's registered scope, as far as those resources define it) of a user's
/// authorization: at the authorization endpoint and the device authorization endpoint.
///
/// # Errors
/// `invalid_target`, `invalid_scope`.
pub fn scope_and_resources(
    client: &crate::domain::Client,
    catalog: &Catalog,
    params: &crate::oauth::params::Params,
) -> Result<(ScopeSet, Vec<ResourceId>), OAuthError> {
    let resources = catalog.targets(&params.get_all("resource"))?;
    let scope = match params.get("scope") {
        None => client.scope.filter(|sc| catalog.covers(&resources, sc)),
        Some(s) => catalog.requested_scope(s)?,
    };
    if scope.is_empty() || !scope.is_subset_of(&client.scope) {
        return Err(OAuthError::InvalidScope("the requested scope is not allowed for this client".into()));
    }
    catalog.check_scopes(&resources, &scope)?;
    Ok((scope, resources))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ScopeDef;

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
        // A resource server removed since the grant: no more tokens for it.
        assert_eq!(pick(&[], &[id("https://removed.example")]), Err("invalid_target"));
        assert_eq!(pick(&["https://removed.example"], &[id("https://removed.example")]), Err("invalid_target"));
    }
}
