//! A store wrapper that counts every call per operation and injects the faults a real
//! backend produces: a write applied but its response lost (the SDK then retries it), a
//! write that fails without being applied, and throttling. It delegates everything else.
use async_trait::async_trait;
use oauth_core::domain::{
    AuthCode, Client, ConsentGrant, DataItem, DeviceGrant, IdentityLink, Poll, RefreshFamily, RefreshRecord,
    ResourceId, ResourceServer, ScopeSet, Session, User,
};
use oauth_core::store::{
    ClientStore, CodeStore, Consume, DataStore, DeviceStore, GrantStore, IdentityStore, Issue, ResourceStore, Rotate,
    SessionStore, StoreError, Stores, ThrottleStore, TokenStore, Unlink, UserStore,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// A fault to inject into the next call of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Apply the write, lose the response, and retry it as the SDK would: the caller sees
    /// the retry's answer.
    LostResponse,
    /// Fail without applying anything (a transaction that did not commit).
    FailBeforeWrite,
    /// The backend throttles: fail, as after the SDK's retries gave up.
    Throttled,
    /// A read that raced a write: the code as it was before it was consumed (what a
    /// concurrent redemption that read it a moment earlier holds). Only for `code`.
    StaleRead,
}

/// The wrapper.
pub struct Faulty {
    inner: Stores,
    calls: Mutex<HashMap<&'static str, usize>>,
    faults: Mutex<HashMap<&'static str, Vec<Fault>>>,
}

impl Faulty {
    /// Wrap `inner`.
    pub fn new(inner: Stores) -> Arc<Self> {
        Arc::new(Self { inner, calls: Mutex::default(), faults: Mutex::default() })
    }

    /// Inject `fault` into the next call of `op` (e.g. `"consume_code"`).
    pub fn inject(&self, op: &'static str, fault: Fault) {
        if let Ok(mut f) = self.faults.lock() {
            f.entry(op).or_default().push(fault);
        }
    }

    /// Calls per operation since the last reset.
    pub fn calls(&self) -> HashMap<&'static str, usize> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Forget the counts.
    pub fn reset_calls(&self) {
        if let Ok(mut c) = self.calls.lock() {
            c.clear();
        }
    }

    fn enter(&self, op: &'static str) -> Option<Fault> {
        if let Ok(mut c) = self.calls.lock() {
            *c.entry(op).or_default() += 1;
        }
        self.faults
            .lock()
            .ok()
            .and_then(|mut f| f.get_mut(op).and_then(|v| if v.is_empty() { None } else { Some(v.remove(0)) }))
    }
}

fn injected(what: &str) -> StoreError {
    StoreError::Backend(anyhow::anyhow!("injected fault: {what}"))
}

/// Run `call`, honouring an injected fault.
macro_rules! faulty {
    ($self:ident, $op:literal, $call:expr) => {{
        match $self.enter($op) {
            None => $call.await,
            Some(Fault::LostResponse) => {
                let _lost = $call.await;
                $call.await
            }
            Some(Fault::FailBeforeWrite) => Err(injected(concat!($op, " failed before writing"))),
            Some(Fault::Throttled) => {
                Err(injected(concat!($op, " throttled (ProvisionedThroughputExceededException)")))
            }
            Some(Fault::StaleRead) => Err(injected(concat!($op, " has no stale read"))),
        }
    }};
}

/// The wrapper as the app's stores.
pub fn stores(f: &Arc<Faulty>) -> Stores {
    Stores::all(f.clone())
}

#[async_trait]
impl UserStore for Faulty {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        faulty!(self, "create_user", self.inner.users.create_user(user))
    }
    async fn user_by_username(&self, key: &str) -> Result<Option<User>, StoreError> {
        faulty!(self, "user_by_username", self.inner.users.user_by_username(key))
    }
    async fn user_by_sub(&self, sub: &str) -> Result<Option<User>, StoreError> {
        faulty!(self, "user_by_sub", self.inner.users.user_by_sub(sub))
    }
    async fn update_password_hash(&self, sub: &str, h: &str) -> Result<(), StoreError> {
        faulty!(self, "update_password_hash", self.inner.users.update_password_hash(sub, h))
    }
    async fn set_disabled(&self, sub: &str, disabled: bool) -> Result<(), StoreError> {
        faulty!(self, "set_disabled", self.inner.users.set_disabled(sub, disabled))
    }
    async fn delete_user(&self, sub: &str) -> Result<bool, StoreError> {
        faulty!(self, "delete_user", self.inner.users.delete_user(sub))
    }
}

#[async_trait]
impl ClientStore for Faulty {
    async fn create_client(&self, c: &Client) -> Result<(), StoreError> {
        faulty!(self, "create_client", self.inner.clients.create_client(c))
    }
    async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        faulty!(self, "client", self.inner.clients.client(id))
    }
    async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        faulty!(self, "clients", self.inner.clients.clients())
    }
    async fn delete_client(&self, id: &str) -> Result<bool, StoreError> {
        faulty!(self, "delete_client", self.inner.clients.delete_client(id))
    }
}

#[async_trait]
impl CodeStore for Faulty {
    async fn put_code(&self, c: &AuthCode) -> Result<(), StoreError> {
        faulty!(self, "put_code", self.inner.codes.put_code(c))
    }
    async fn code(&self, h: &str) -> Result<Option<AuthCode>, StoreError> {
        if self.faults.lock().is_ok_and(|f| f.get("code").and_then(|v| v.first()) == Some(&Fault::StaleRead)) {
            self.enter("code");
            let found = self.inner.codes.code(h).await?;
            return Ok(found.map(|c| AuthCode { consumed_at: None, consumed_by: None, ..c }));
        }
        faulty!(self, "code", self.inner.codes.code(h))
    }
    async fn consume_code(
        &self,
        h: &str,
        now: OffsetDateTime,
        keep: OffsetDateTime,
        rid: &str,
        issue: Issue<'_>,
    ) -> Result<Consume, StoreError> {
        faulty!(self, "consume_code", self.inner.codes.consume_code(h, now, keep, rid, issue))
    }
}

#[async_trait]
impl TokenStore for Faulty {
    async fn refresh(&self, h: &str) -> Result<Option<RefreshRecord>, StoreError> {
        faulty!(self, "refresh", self.inner.tokens.refresh(h))
    }
    async fn rotate_refresh(&self, old: &str, new: &RefreshRecord, now: OffsetDateTime) -> Result<Rotate, StoreError> {
        faulty!(self, "rotate_refresh", self.inner.tokens.rotate_refresh(old, new, now))
    }
    async fn revoke_family(&self, f: &str, until: OffsetDateTime) -> Result<(), StoreError> {
        faulty!(self, "revoke_family", self.inner.tokens.revoke_family(f, until))
    }
    async fn revoke_jti(&self, j: &str, until: OffsetDateTime) -> Result<(), StoreError> {
        faulty!(self, "revoke_jti", self.inner.tokens.revoke_jti(j, until))
    }
    async fn is_revoked(&self, j: &str, f: Option<&str>, now: OffsetDateTime) -> Result<bool, StoreError> {
        faulty!(self, "is_revoked", self.inner.tokens.is_revoked(j, f, now))
    }
}

#[async_trait]
impl DataStore for Faulty {
    async fn put_item(&self, d: &DataItem) -> Result<(), StoreError> {
        faulty!(self, "put_item", self.inner.data.put_item(d))
    }
    async fn items_for(&self, sub: &str, limit: usize) -> Result<Vec<DataItem>, StoreError> {
        faulty!(self, "items_for", self.inner.data.items_for(sub, limit))
    }
}

#[async_trait]
impl ThrottleStore for Faulty {
    async fn hit(&self, k: &str, w: i64, now: OffsetDateTime) -> Result<u32, StoreError> {
        faulty!(self, "hit", self.inner.throttle.hit(k, w, now))
    }
    async fn count(&self, k: &str, now: OffsetDateTime) -> Result<u32, StoreError> {
        faulty!(self, "count", self.inner.throttle.count(k, now))
    }
    async fn reset(&self, k: &str) -> Result<(), StoreError> {
        faulty!(self, "reset", self.inner.throttle.reset(k))
    }
    async fn forgive(&self, k: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        faulty!(self, "forgive", self.inner.throttle.forgive(k, now))
    }
}

#[async_trait]
impl SessionStore for Faulty {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        faulty!(self, "create_session", self.inner.sessions.create_session(session))
    }
    async fn session_with_grant(
        &self,
        sub: &str,
        id_hash: &str,
        grant_for: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Option<(Session, Option<ConsentGrant>)>, StoreError> {
        faulty!(self, "session_with_grant", self.inner.sessions.session_with_grant(sub, id_hash, grant_for, now))
    }
    async fn touch_session(
        &self,
        sub: &str,
        id_hash: &str,
        idle: i64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        faulty!(self, "touch_session", self.inner.sessions.touch_session(sub, id_hash, idle, now))
    }
    async fn end_session(&self, sub: &str, id_hash: &str) -> Result<bool, StoreError> {
        faulty!(self, "end_session", self.inner.sessions.end_session(sub, id_hash))
    }
    async fn sessions_of(&self, sub: &str, now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
        faulty!(self, "sessions_of", self.inner.sessions.sessions_of(sub, now))
    }
    async fn end_sessions_of(&self, sub: &str, keep: Option<&str>) -> Result<usize, StoreError> {
        faulty!(self, "end_sessions_of", self.inner.sessions.end_sessions_of(sub, keep))
    }
}

#[async_trait]
impl GrantStore for Faulty {
    async fn add_grant(
        &self,
        sub: &str,
        client_id: &str,
        scope: &ScopeSet,
        resources: &[ResourceId],
        now: OffsetDateTime,
    ) -> Result<ConsentGrant, StoreError> {
        faulty!(self, "add_grant", self.inner.grants.add_grant(sub, client_id, scope, resources, now))
    }
    async fn grants_of(&self, sub: &str) -> Result<Vec<ConsentGrant>, StoreError> {
        faulty!(self, "grants_of", self.inner.grants.grants_of(sub))
    }
    async fn delete_grant(&self, sub: &str, client_id: &str) -> Result<bool, StoreError> {
        faulty!(self, "delete_grant", self.inner.grants.delete_grant(sub, client_id))
    }
    async fn families_of(&self, sub: &str) -> Result<Vec<RefreshFamily>, StoreError> {
        faulty!(self, "families_of", self.inner.grants.families_of(sub))
    }
    async fn forget_family(&self, sub: &str, client_id: &str, family_id: &str) -> Result<(), StoreError> {
        faulty!(self, "forget_family", self.inner.grants.forget_family(sub, client_id, family_id))
    }
}

#[async_trait]
impl ResourceStore for Faulty {
    async fn put_resource(&self, server: &ResourceServer) -> Result<(), StoreError> {
        faulty!(self, "put_resource", self.inner.resources.put_resource(server))
    }
    async fn resources(&self) -> Result<Vec<ResourceServer>, StoreError> {
        faulty!(self, "resources", self.inner.resources.resources())
    }
    async fn delete_resource(&self, id: &ResourceId) -> Result<bool, StoreError> {
        faulty!(self, "delete_resource", self.inner.resources.delete_resource(id))
    }
}

#[async_trait]
impl IdentityStore for Faulty {
    async fn identity(&self, key: &str) -> Result<Option<IdentityLink>, StoreError> {
        faulty!(self, "identity", self.inner.identities.identity(key))
    }
    async fn identities_of(&self, sub: &str) -> Result<Vec<IdentityLink>, StoreError> {
        faulty!(self, "identities_of", self.inner.identities.identities_of(sub))
    }
    async fn create_federated_user(&self, user: &User, link: &IdentityLink) -> Result<(), StoreError> {
        faulty!(self, "create_federated_user", self.inner.identities.create_federated_user(user, link))
    }
    async fn link_identity(&self, link: &IdentityLink) -> Result<(), StoreError> {
        faulty!(self, "link_identity", self.inner.identities.link_identity(link))
    }
    async fn unlink_identity(&self, sub: &str, key: &str, passwordless: bool) -> Result<Unlink, StoreError> {
        faulty!(self, "unlink_identity", self.inner.identities.unlink_identity(sub, key, passwordless))
    }
}

#[async_trait]
impl DeviceStore for Faulty {
    async fn put_device(&self, device: &DeviceGrant) -> Result<(), StoreError> {
        faulty!(self, "put_device", self.inner.devices.put_device(device))
    }
    async fn device_by_user_code(&self, user_code_hash: &str) -> Result<Option<DeviceGrant>, StoreError> {
        faulty!(self, "device_by_user_code", self.inner.devices.device_by_user_code(user_code_hash))
    }
    async fn decide_device(
        &self,
        device_hash: &str,
        approval: Option<&AuthCode>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        faulty!(self, "decide_device", self.inner.devices.decide_device(device_hash, approval, now))
    }
    async fn poll_device(&self, device_hash: &str, client_id: &str, now: OffsetDateTime) -> Result<Poll, StoreError> {
        faulty!(self, "poll_device", self.inner.devices.poll_device(device_hash, client_id, now))
    }
}
