//! Redirect URI registration and matching. Input: `<registered>\n<requested>`. A match is
//! the exact string, or a loopback IP literal differing only in its port (RFC 8252 §7.3).
#![no_main]
use libfuzzer_sys::fuzz_target;
use oauth_core::domain::RedirectUri;

#[path = "../../shared/tests/oracles/loopback.rs"]
mod loopback;
use loopback::without_loopback_port;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (registered, requested) = text.split_once('\n').unwrap_or((text, text));
    let Ok(r) = RedirectUri::parse(registered) else { return };
    assert!(r.matches(registered));
    if r.matches(requested) {
        let a = without_loopback_port(registered);
        assert!(requested == registered || (a.is_some() && a == without_loopback_port(requested)));
    }
});
