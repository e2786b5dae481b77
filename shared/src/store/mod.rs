//! The store traits: one small async trait per stored thing, each operation atomic on its
//! own. Their doc comments are the contract; the conformance suite in the tests crate is
//! its executable form and runs against every implementation.
mod devices;
pub mod dynamodb;
mod none;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use devices::DeviceStore;
pub use dynamodb::DynamoStore;
pub use none::NoStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use crate::domain::{
    AuthCode, Client, ConsentGrant, DataItem, IdentityLink, RefreshFamily, RefreshRecord, ResourceId, ResourceServer,
    ScopeSet, Session, User,
};
use async_trait::async_trait;
use time::OffsetDateTime;

/// One backend's stores, as the app holds them.
#[derive(Clone)]
pub struct Stores {
    /// Users.
    pub users: std::sync::Arc<dyn UserStore>,
    /// Clients.
    pub clients: std::sync::Arc<dyn ClientStore>,
    /// Authorization codes.
    pub codes: std::sync::Arc<dyn CodeStore>,
    /// Refresh tokens and revocations.
    pub tokens: std::sync::Arc<dyn TokenStore>,
    /// Data items.
    pub data: std::sync::Arc<dyn DataStore>,
    /// Counters.
    pub throttle: std::sync::Arc<dyn ThrottleStore>,
    /// Browser sessions.
    pub sessions: std::sync::Arc<dyn SessionStore>,
    /// Consent grants.
    pub grants: std::sync::Arc<dyn GrantStore>,
    /// Resource servers.
    pub resources: std::sync::Arc<dyn ResourceStore>,
    /// Upstream identities linked to users.
    pub identities: std::sync::Arc<dyn IdentityStore>,
    /// Device authorization requests.
    pub devices: std::sync::Arc<dyn DeviceStore>,
}

impl Stores {
    /// Every store served by one value implementing all the traits.
    pub fn all<S>(store: std::sync::Arc<S>) -> Self
    where
        S: UserStore
            + ClientStore
            + CodeStore
            + TokenStore
            + DataStore
            + ThrottleStore
            + SessionStore
            + GrantStore
            + ResourceStore
            + IdentityStore
            + DeviceStore
            + 'static,
    {
        Self {
            users: store.clone(),
            clients: store.clone(),
            codes: store.clone(),
            tokens: store.clone(),
            data: store.clone(),
            throttle: store.clone(),
            sessions: store.clone(),
            grants: store.clone(),
            resources: store.clone(),
            identities: store.clone(),
            devices: store,
        }
    }
}

/// Failures of a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The item does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness condition failed (e.g. the username exists).
    #[error("already exists")]
    AlreadyExists,
    /// A stored item could not be read back (schema drift, corruption).
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
    /// The backend failed; the operation may or may not have happened.
    #[error("store backend failed")]
    Backend(#[source] anyhow::Error),
}

/// Users (resource owners).
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Create a user. Fails with `AlreadyExists` if a user with the same
    /// [`Username::key`](crate::domain::Username::key) exists; of concurrent creates with
    /// one key exactly one succeeds.
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;
    /// The user whose username key is `username_key`, if any.
    async fn user_by_username(&self, username_key: &str) -> Result<Option<User>, StoreError>;
    /// The user with subject `sub`, if any.
    async fn user_by_sub(&self, sub: &str) -> Result<Option<User>, StoreError>;
    /// Replace a user's password hash (re-hash with stronger parameters after a login).
    /// `NotFound` if there is no such user.
    async fn update_password_hash(&self, sub: &str, password_hash: &str) -> Result<(), StoreError>;
    /// Disable (or enable again) the user `sub`; `NotFound` if there is no such user.
    async fn set_disabled(&self, sub: &str, disabled: bool) -> Result<(), StoreError>;
    /// Delete the user `sub`: its username (free again), its `sub` and every upstream
    /// identity linked to it. `false` if there was no such user. What it had in other stores
    /// (sessions, consents, refresh families) is the caller's to end first.
    async fn delete_user(&self, sub: &str) -> Result<bool, StoreError>;
}

/// What [`CodeStore::consume_code`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consume {
    /// The code was unused and is now consumed by this request (and the refresh token, if
    /// any, stored); also returned when this same request had already consumed it (a
    /// retried write), so a lost response is never mistaken for a replay.
    Fresh,
    /// The code had been consumed by another request: a replay. Nothing was written.
    Replayed(Box<AuthCode>),
    /// No such code.
    Missing,
    /// What the code draws on is gone: the user's consent to the client was withdrawn, or
    /// the sign-in session the new refresh family would end with has ended. Nothing was
    /// written.
    Withdrawn,
}

impl Consume {
    /// The retry-or-replay rule, for both stores: a code found consumed (read inside the
    /// transaction, or returned by a failed conditional write) is `Fresh` when this request
    /// consumed it (its own write, retried after a lost response) and `Replayed` when another
    /// did. `None` when the code is not consumed.
    pub fn of_consumed(code: AuthCode, request_id: &str) -> Option<Self> {
        if code.consumed_by.as_deref() == Some(request_id) {
            Some(Self::Fresh)
        } else if code.consumed_at.is_some() {
            Some(Self::Replayed(Box::new(code)))
        } else {
            None
        }
    }
}

/// What a code redemption issues, written in the same atomic step as the code's consumption
/// (docs/API.md, "Sessions and consent"): it draws on `sub`'s consent grant to `client_id`,
/// which must still exist and whose `last_used` becomes the redemption's time, and may start
/// a refresh family. A family bound to a session (`refresh.session`) needs that session to
/// be live (neither its idle nor its absolute end reached), and it is entered in the user's
/// account so that ending the session finds it.
#[derive(Debug, Clone, Copy)]
pub struct Issue<'a> {
    /// The user.
    pub sub: &'a str,
    /// The client.
    pub client_id: &'a str,
    /// The new family's first refresh token, and its account entry.
    pub refresh: Option<(&'a RefreshRecord, &'a RefreshFamily)>,
}

/// Authorization codes.
#[async_trait]
pub trait CodeStore: Send + Sync {
    /// Store a new code; `AlreadyExists` if the hash exists.
    async fn put_code(&self, code: &AuthCode) -> Result<(), StoreError>;
    /// The code with this hash, read consistently, consumed or not.
    async fn code(&self, code_hash: &str) -> Result<Option<AuthCode>, StoreError>;
    /// Atomically mark the code consumed at `now` by `request_id`, keep it until
    /// `retain_until` (a replay must still find it while the tokens it issued live), check
    /// and record what it draws on, and store the refresh family of `issue` (when given):
    /// all or nothing. Of concurrent calls for one code with different request ids exactly
    /// one gets `Fresh`; repeating a call with the same request id (a retry after a lost
    /// response) gets `Fresh` again and writes nothing more. A code already consumed is
    /// `Fresh` or `Replayed` whatever else changed; an unconsumed one whose grant or session
    /// is gone is `Withdrawn`.
    async fn consume_code(
        &self,
        code_hash: &str,
        now: OffsetDateTime,
        retain_until: OffsetDateTime,
        request_id: &str,
        issue: Issue<'_>,
    ) -> Result<Consume, StoreError>;
}

/// What [`TokenStore::rotate_refresh`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotate {
    /// The old token was current; it is now rotated and the new one stored. Also returned
    /// when the old token had already been rotated to this same new token (a retry).
    Rotated,
    /// The old token had been rotated before (its record, with `rotated_at`). Nothing written.
    AlreadyRotated(Box<RefreshRecord>),
    /// No such token.
    Missing,
    /// The family's user withdrew their consent to the client, or the sign-in session the
    /// family is bound to has ended (ended, idle or past its absolute end). Nothing written.
    Withdrawn,
}

impl Rotate {
    /// The retry-or-reuse rule, for both stores: a refresh token found rotated is `Rotated`
    /// when it was rotated to `new_hash` (this request's own write, retried) and
    /// `AlreadyRotated` when it went to another successor (a reuse).
    pub fn of_rotated(old: RefreshRecord, new_hash: &str) -> Self {
        if old.rotated_to.as_deref() == Some(new_hash) { Self::Rotated } else { Self::AlreadyRotated(Box::new(old)) }
    }
}

/// OAuth clients.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Create a client; `AlreadyExists` if the id is taken (ids are random, so callers retry
    /// with a new one).
    async fn create_client(&self, client: &Client) -> Result<(), StoreError>;
    /// The client with this id, if any.
    async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError>;
    /// Every registered client, by id (the operator's listing; on DynamoDB a scan, which no
    /// function is granted).
    async fn clients(&self) -> Result<Vec<Client>, StoreError>;
    /// Delete a client; `false` if there was none. Its tokens stop at the next client
    /// authentication; its access tokens live until they expire.
    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError>;
}

/// Refresh tokens and the revocation list: revoked access-token ids and refresh families,
/// each kept until the tokens it stands for would have expired anyway.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// The refresh token with this hash (consistent read), rotated or not.
    async fn refresh(&self, token_hash: &str) -> Result<Option<RefreshRecord>, StoreError>;
    /// Atomically mark `old_hash` rotated at `now` to `new` and store `new`: both or neither,
    /// and only while `new.sub`'s consent grant to `new.client_id` exists (its `last_used`
    /// becomes `now`) and, for a family bound to a session, that session is live (else
    /// `Withdrawn`). Of concurrent rotations of one token
    /// exactly one gets `Rotated`; repeating the same rotation (same `new`) gets `Rotated`
    /// again and writes nothing more.
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new: &RefreshRecord,
        now: OffsetDateTime,
    ) -> Result<Rotate, StoreError>;
    /// Revoke a whole refresh family (its refresh and access tokens) until `until`. Idempotent.
    async fn revoke_family(&self, family_id: &str, until: OffsetDateTime) -> Result<(), StoreError>;
    /// Record that the token with `jti` is revoked until `until`. Idempotent.
    async fn revoke_jti(&self, jti: &str, until: OffsetDateTime) -> Result<(), StoreError>;
    /// Whether `jti` (or, when given, the refresh family `family`) is revoked at `now`,
    /// in one round trip.
    async fn is_revoked(&self, jti: &str, family: Option<&str>, now: OffsetDateTime) -> Result<bool, StoreError>;
}

/// Values stored through `POST /api/data`.
#[async_trait]
pub trait DataStore: Send + Sync {
    /// Store an item.
    async fn put_item(&self, item: &DataItem) -> Result<(), StoreError>;
    /// The newest `limit` items of `sub`, newest first.
    async fn items_for(&self, sub: &str, limit: usize) -> Result<Vec<DataItem>, StoreError>;
}

/// Fixed-window counters with expiry, for login throttling and abuse limits.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Atomically add one to the counter `key` and return the new count. A counter whose
    /// window has ended (or that does not exist) restarts at 1 with a window ending at
    /// `now + window_secs`; otherwise its window is extended to `now + window_secs`
    /// ("until N minutes after the last failure"). No lost updates under concurrency.
    async fn hit(&self, key: &str, window_secs: i64, now: OffsetDateTime) -> Result<u32, StoreError>;
    /// The counter's value at `now` (0 if missing or expired).
    async fn count(&self, key: &str, now: OffsetDateTime) -> Result<u32, StoreError>;
    /// Remove the counter.
    async fn reset(&self, key: &str) -> Result<(), StoreError>;
    /// Take back one [`hit`](Self::hit) (an attempt that turned out not to count, such as a
    /// successful login): subtract one from a live counter, never below zero, without
    /// extending its window. A missing or expired counter is left alone.
    async fn forgive(&self, key: &str, now: OffsetDateTime) -> Result<(), StoreError>;
}

/// Browser sessions, kept under their user: a session is found by its user and the hash of
/// its id, and a user's sessions are listed or ended together.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Store a new session; `AlreadyExists` if its id hash exists (ids are random: the caller
    /// retries with a new one). Concurrent logins of one user each get their own session.
    async fn create_session(&self, session: &Session) -> Result<(), StoreError>;
    /// The session `id_hash` of `sub`, if it is live at `now`, and, when `grant_for` names a
    /// client, `sub`'s consent grant to it: one consistent read for both (a silent
    /// authorization reads nothing else).
    async fn session_with_grant(
        &self,
        sub: &str,
        id_hash: &str,
        grant_for: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Option<(Session, Option<ConsentGrant>)>, StoreError>;
    /// Record a use of a live session at `now`: `last_seen = now` and the idle end moved to
    /// `now + idle_secs`, never past the absolute end. `false`, writing nothing, when the
    /// session has ended or expired (a logout racing a use never brings it back).
    async fn touch_session(
        &self,
        sub: &str,
        id_hash: &str,
        idle_secs: i64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// End one session; `false` if it did not exist. Idempotent.
    async fn end_session(&self, sub: &str, id_hash: &str) -> Result<bool, StoreError>;
    /// `sub`'s sessions live at `now`, newest first.
    async fn sessions_of(&self, sub: &str, now: OffsetDateTime) -> Result<Vec<Session>, StoreError>;
    /// End every session of `sub` except `keep` (the browser changing its password); the
    /// number ended.
    async fn end_sessions_of(&self, sub: &str, keep: Option<&str>) -> Result<usize, StoreError>;
}

/// Consent grants (what each user allowed each client) and the refresh families drawing on
/// them, as the user's account lists them.
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Add `scope` and `resources` to `sub`'s grant to `client_id` (creating it),
    /// atomically: concurrent consents lose no scope and no resource. Returns the grant as
    /// written.
    async fn add_grant(
        &self,
        sub: &str,
        client_id: &str,
        scope: &ScopeSet,
        resources: &[ResourceId],
        now: OffsetDateTime,
    ) -> Result<ConsentGrant, StoreError>;
    /// `sub`'s grants, by client id.
    async fn grants_of(&self, sub: &str) -> Result<Vec<ConsentGrant>, StoreError>;
    /// Remove `sub`'s grant to `client_id`; `false` if there was none. Idempotent. From then
    /// on no code redemption or refresh draws on it ([`Consume::Withdrawn`], [`Rotate::Withdrawn`]).
    async fn delete_grant(&self, sub: &str, client_id: &str) -> Result<bool, StoreError>;
    /// `sub`'s refresh families entered by [`CodeStore::consume_code`] and not forgotten,
    /// kept or not (the caller checks `expires_at`).
    async fn families_of(&self, sub: &str) -> Result<Vec<RefreshFamily>, StoreError>;
    /// Remove a family's entry (once it is revoked). Idempotent.
    async fn forget_family(&self, sub: &str, client_id: &str, family_id: &str) -> Result<(), StoreError>;
}

/// The resource servers operators registered (the built-in demo API is not stored). Few,
/// read whole and cached by every process (`oauth::resources`).
#[async_trait]
pub trait ResourceStore: Send + Sync {
    /// Store `server`, replacing one with the same id.
    async fn put_resource(&self, server: &ResourceServer) -> Result<(), StoreError>;
    /// Every stored resource server, by id (consistent read).
    async fn resources(&self) -> Result<Vec<ResourceServer>, StoreError>;
    /// Remove the resource server `id`; `false` if there was none. Idempotent.
    async fn delete_resource(&self, id: &ResourceId) -> Result<bool, StoreError>;
}

/// What [`IdentityStore::unlink_identity`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlink {
    /// The link is gone.
    Removed,
    /// The user has no such link.
    NotFound,
    /// It is the user's last way to sign in (no password, no other link): kept.
    LastMethod,
}

/// Upstream identities (issuer, subject) linked to local users (docs/API.md, "Federation").
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// The link of the upstream identity whose key ([`IdentityLink::key`]) is `key`.
    async fn identity(&self, key: &str) -> Result<Option<IdentityLink>, StoreError>;
    /// Every upstream identity linked to `sub`.
    async fn identities_of(&self, sub: &str) -> Result<Vec<IdentityLink>, StoreError>;
    /// Create `user` (without a password: an empty hash) and its first link, atomically.
    /// `AlreadyExists` when the username or the upstream identity is taken (nothing written).
    async fn create_federated_user(&self, user: &User, link: &IdentityLink) -> Result<(), StoreError>;
    /// Link an upstream identity to an existing user. `AlreadyExists` when it is linked to
    /// anyone (this user included); `NotFound` when the user does not exist.
    async fn link_identity(&self, link: &IdentityLink) -> Result<(), StoreError>;
    /// Remove `sub`'s link `key`, unless `passwordless` and it is the user's last link: the
    /// check and the removal are one atomic write, so two concurrent unlinks cannot leave an
    /// account with no way in.
    async fn unlink_identity(&self, sub: &str, key: &str, passwordless: bool) -> Result<Unlink, StoreError>;
}
