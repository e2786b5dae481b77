//! `OAUTH_STORE=none`: no store at all, for a verify-only authorizer in another account
//! that was told not to check revocation (`AUTHORIZER_REVOCATION=off`). Every call fails
//! (a 503 where one is made), so nothing can quietly succeed without data.
use super::{
    ClientStore, CodeStore, Consume, DataStore, DeviceStore, GrantStore, IdentityStore, Issue, ResourceStore, Rotate,
    SessionStore, StoreError, ThrottleStore, TokenStore, Unlink, UserStore,
};
use crate::domain::{
    AuthCode, Client, ConsentGrant, DataItem, DeviceGrant, IdentityLink, Poll, RefreshFamily, RefreshRecord,
    ResourceId, ResourceServer, ScopeSet, Session, User,
};
use async_trait::async_trait;
use time::OffsetDateTime;

/// The store that holds nothing and refuses every call.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStore;

fn none<T>() -> Result<T, StoreError> {
    Err(StoreError::Backend(anyhow::anyhow!("no store is configured (OAUTH_STORE=none)")))
}

#[async_trait]
impl UserStore for NoStore {
    async fn create_user(&self, _: &User) -> Result<(), StoreError> {
        none()
    }
    async fn user_by_username(&self, _: &str) -> Result<Option<User>, StoreError> {
        none()
    }
    async fn user_by_sub(&self, _: &str) -> Result<Option<User>, StoreError> {
        none()
    }
    async fn update_password_hash(&self, _: &str, _: &str) -> Result<(), StoreError> {
        none()
    }
    async fn set_disabled(&self, _: &str, _: bool) -> Result<(), StoreError> {
        none()
    }
    async fn delete_user(&self, _: &str) -> Result<bool, StoreError> {
        none()
    }
}

#[async_trait]
impl ClientStore for NoStore {
    async fn create_client(&self, _: &Client) -> Result<(), StoreError> {
        none()
    }
    async fn client(&self, _: &str) -> Result<Option<Client>, StoreError> {
        none()
    }
    async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        none()
    }
    async fn delete_client(&self, _: &str) -> Result<bool, StoreError> {
        none()
    }
}

#[async_trait]
impl CodeStore for NoStore {
    async fn put_code(&self, _: &AuthCode) -> Result<(), StoreError> {
        none()
    }
    async fn code(&self, _: &str) -> Result<Option<AuthCode>, StoreError> {
        none()
    }
    async fn consume_code(
        &self,
        _: &str,
        _: OffsetDateTime,
        _: OffsetDateTime,
        _: &str,
        _: Issue<'_>,
    ) -> Result<Consume, StoreError> {
        none()
    }
}

#[async_trait]
impl TokenStore for NoStore {
    async fn refresh(&self, _: &str) -> Result<Option<RefreshRecord>, StoreError> {
        none()
    }
    async fn rotate_refresh(&self, _: &str, _: &RefreshRecord, _: OffsetDateTime) -> Result<Rotate, StoreError> {
        none()
    }
    async fn revoke_family(&self, _: &str, _: OffsetDateTime) -> Result<(), StoreError> {
        none()
    }
    async fn revoke_jti(&self, _: &str, _: OffsetDateTime) -> Result<(), StoreError> {
        none()
    }
    async fn is_revoked(&self, _: &str, _: Option<&str>, _: OffsetDateTime) -> Result<bool, StoreError> {
        none()
    }
}

#[async_trait]
impl DataStore for NoStore {
    async fn put_item(&self, _: &DataItem) -> Result<(), StoreError> {
        none()
    }
    async fn items_for(&self, _: &str, _: usize) -> Result<Vec<DataItem>, StoreError> {
        none()
    }
}

#[async_trait]
impl ThrottleStore for NoStore {
    async fn hit(&self, _: &str, _: i64, _: OffsetDateTime) -> Result<u32, StoreError> {
        none()
    }
    async fn count(&self, _: &str, _: OffsetDateTime) -> Result<u32, StoreError> {
        none()
    }
    async fn reset(&self, _: &str) -> Result<(), StoreError> {
        none()
    }
    async fn forgive(&self, _: &str, _: OffsetDateTime) -> Result<(), StoreError> {
        none()
    }
}

#[async_trait]
impl SessionStore for NoStore {
    async fn create_session(&self, _: &Session) -> Result<(), StoreError> {
        none()
    }
    async fn session_with_grant(
        &self,
        _: &str,
        _: &str,
        _: Option<&str>,
        _: OffsetDateTime,
    ) -> Result<Option<(Session, Option<ConsentGrant>)>, StoreError> {
        none()
    }
    async fn touch_session(&self, _: &str, _: &str, _: i64, _: OffsetDateTime) -> Result<bool, StoreError> {
        none()
    }
    async fn end_session(&self, _: &str, _: &str) -> Result<bool, StoreError> {
        none()
    }
    async fn sessions_of(&self, _: &str, _: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
        none()
    }
    async fn end_sessions_of(&self, _: &str, _: Option<&str>) -> Result<usize, StoreError> {
        none()
    }
}

#[async_trait]
impl GrantStore for NoStore {
    async fn add_grant(
        &self,
        _: &str,
        _: &str,
        _: &ScopeSet,
        _: &[ResourceId],
        _: OffsetDateTime,
    ) -> Result<ConsentGrant, StoreError> {
        none()
    }
    async fn grants_of(&self, _: &str) -> Result<Vec<ConsentGrant>, StoreError> {
        none()
    }
    async fn delete_grant(&self, _: &str, _: &str) -> Result<bool, StoreError> {
        none()
    }
    async fn families_of(&self, _: &str) -> Result<Vec<RefreshFamily>, StoreError> {
        none()
    }
    async fn forget_family(&self, _: &str, _: &str, _: &str) -> Result<(), StoreError> {
        none()
    }
}

#[async_trait]
impl ResourceStore for NoStore {
    async fn put_resource(&self, _: &ResourceServer) -> Result<(), StoreError> {
        none()
    }
    async fn resources(&self) -> Result<Vec<ResourceServer>, StoreError> {
        none()
    }
    async fn delete_resource(&self, _: &ResourceId) -> Result<bool, StoreError> {
        none()
    }
}

#[async_trait]
impl IdentityStore for NoStore {
    async fn identity(&self, _: &str) -> Result<Option<IdentityLink>, StoreError> {
        none()
    }
    async fn identities_of(&self, _: &str) -> Result<Vec<IdentityLink>, StoreError> {
        none()
    }
    async fn create_federated_user(&self, _: &User, _: &IdentityLink) -> Result<(), StoreError> {
        none()
    }
    async fn link_identity(&self, _: &IdentityLink) -> Result<(), StoreError> {
        none()
    }
    async fn unlink_identity(&self, _: &str, _: &str, _: bool) -> Result<Unlink, StoreError> {
        none()
    }
}

#[async_trait]
impl DeviceStore for NoStore {
    async fn put_device(&self, _: &DeviceGrant) -> Result<(), StoreError> {
        none()
    }
    async fn device_by_user_code(&self, _: &str) -> Result<Option<DeviceGrant>, StoreError> {
        none()
    }
    async fn decide_device(&self, _: &str, _: Option<&AuthCode>, _: OffsetDateTime) -> Result<bool, StoreError> {
        none()
    }
    async fn poll_device(&self, _: &str, _: &str, _: OffsetDateTime) -> Result<Poll, StoreError> {
        none()
    }
}
