//! Access-token verification of arbitrary input: always a rejection (nothing here is
//! signed by the key set), never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oauth_core::jwt::{SigningAlg, verify_access_token};
use oauth_core::keys::{KeySet, KeySetDoc};
use oauth_core::Settings;
use std::sync::OnceLock;

fn fixtures() -> &'static (KeySet, Settings) {
    static F: OnceLock<(KeySet, Settings)> = OnceLock::new();
    F.get_or_init(|| {
        let doc = KeySetDoc::generate(&[SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::EdDsa]).expect("keys");
        let settings = Settings::from_lookup(|k| (k == "ISSUER").then(|| "https://as.test".to_owned())).expect("settings");
        (KeySet::from_doc(&doc).expect("key set"), settings)
    })
}

fuzz_target!(|data: &[u8]| {
    let (keys, settings) = fixtures();
    let token = String::from_utf8_lossy(data);
    assert!(verify_access_token(keys, settings, &token, 1_700_000_000).is_err());
});
