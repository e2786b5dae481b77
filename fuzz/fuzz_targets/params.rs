//! Form bodies and query strings: a value or `invalid_request`, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oauth_core::oauth::params::Params;

fuzz_target!(|data: &[u8]| {
    for r in [Params::parse(data).map(|_| ()), Params::parse_lenient(data).map(|_| ())] {
        if let Err(e) = r {
            assert_eq!(e.code(), "invalid_request");
        }
    }
});
