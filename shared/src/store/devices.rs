//! The device authorization store trait (its own file: `store/mod.rs` holds the others).
use super::StoreError;
use crate::domain::{AuthCode, DeviceGrant, Poll};
use async_trait::async_trait;
use time::OffsetDateTime;

/// Device authorization requests (RFC 8628; docs/API.md, "Device authorization grant").
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Store a new request. `AlreadyExists` (nothing written) when its device code or its
    /// user code is in use by another request, expired or not (the caller draws new codes).
    async fn put_device(&self, device: &DeviceGrant) -> Result<(), StoreError>;
    /// The request whose user code hashes to `user_code_hash`, whatever its state.
    async fn device_by_user_code(&self, user_code_hash: &str) -> Result<Option<DeviceGrant>, StoreError>;
    /// The user's decision on the request `device_hash`: allowed, with `approval` (the
    /// authorization code the device will redeem, stored in the same atomic write), or
    /// denied (`None`). Applies only while the request is pending and unexpired at `now`;
    /// `false`, writing nothing, otherwise: of concurrent decisions exactly one applies.
    async fn decide_device(
        &self,
        device_hash: &str,
        approval: Option<&AuthCode>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// A poll by `client_id` at `now`, as one atomic step: a pending request polled at or
    /// after its `next_poll` is [`Poll::Pending`] and its next poll is due `interval` seconds
    /// later; polled earlier, it is [`Poll::SlowDown`] with the interval grown by 5 seconds
    /// (the next poll due that long after `now`). Concurrent early polls each add 5. Other
    /// states are reported without a write; a request of another client is `Missing`.
    async fn poll_device(&self, device_hash: &str, client_id: &str, now: OffsetDateTime) -> Result<Poll, StoreError>;
}
