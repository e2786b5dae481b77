//! `oauth-core`: every rule of the OAuth 2.0 authorization server.
//!
//! The Lambda functions and the local server are thin shells over this crate: they build
//! one [`App`] per process and hand every request to [`http::handle`].
//! Dependencies point inward: `http` → `oauth` → `domain`; `store` and `keys` implement
//! traits that `oauth` uses, and `oauth` never sees HTTP or AWS types.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::indexing_slicing,
    clippy::await_holding_lock
)]

pub mod app;
pub mod aws;
pub mod cached_secret;
pub mod catalog;
pub mod cimd;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod dpop;
pub mod federation;
pub mod html;
pub mod http;
pub mod jwt;
pub mod keys;
pub mod lambda;
pub mod oauth;
pub mod paths;
pub mod startup;
pub mod store;
pub mod telemetry;

pub use app::App;
pub use config::Settings;
pub use oauth::OAuthError;
