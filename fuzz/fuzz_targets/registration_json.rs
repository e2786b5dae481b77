//! `POST /register_client` bodies: decoded and validated, or refused, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oauth_core::oauth::client_registration::{ClientMetadata, validate};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = serde_json::from_slice::<ClientMetadata>(data) {
        if let Err(e) = validate(&m) {
            assert!(matches!(e.code(), "invalid_client_metadata" | "invalid_redirect_uri" | "invalid_request"));
        }
    }
});
