//! Protocol logic, one module per action. Functions take `&App` (or narrower), typed
//! inputs and `now`; they return typed outputs or an [`OAuthError`]. No HTTP or AWS types.
pub mod abuse;
pub mod access;
pub mod account;
pub mod admin;
pub mod authorize;
pub mod cimd;
pub mod client_auth;
pub mod client_registration;
pub mod data;
pub mod device;
pub mod discovery;
pub mod dpop;
mod error;
pub mod federation;
pub mod introspect;
pub mod login;
pub mod logout;
pub mod params;
pub mod pkce;
pub mod register;
pub mod resources;
pub mod revoke;
pub mod sealed;
pub mod session;
pub mod token;
pub mod userinfo;

#[cfg(test)]
pub(crate) use error::tests::one_of_each;
pub use error::{Description, OAuthError};

use crate::store::StoreError;

/// The usual mapping of a store failure in a flow: backend trouble is a 503 (retryable),
/// anything else unexpected a 500. Callers handle `NotFound`/`AlreadyExists` themselves.
pub(crate) fn store_failure(e: StoreError) -> OAuthError {
    match e {
        StoreError::Backend(src) => OAuthError::TemporarilyUnavailable(src),
        other => OAuthError::ServerError(anyhow::Error::new(other)),
    }
}
