//! `Authorization: Basic …` decoding: credentials or `invalid_client`, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oauth_core::oauth::client_auth::{form_decode, parse_basic};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for header in [text.to_string(), format!("Basic {text}")] {
        match parse_basic(&header) {
            Ok((id, _)) => assert!(!id.is_empty()),
            Err(e) => assert_eq!(e.code(), "invalid_client"),
        }
    }
    let _ = form_decode(&text);
});
