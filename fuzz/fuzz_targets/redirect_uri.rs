//! Redirect URI registration and matching. Input: `<registered>\n<requested>`. A match is
//! the exact string, or a loopback IP literal differing only in its port (RFC 8252 §7.3).
#![no_main]
use libfuzzer_sys::fuzz_target;
use oauth_core::domain::RedirectUri;

fn without_loopback_port(s: &str) -> Option<String> {
    for host in ["http://127.0.0.1", "http://[::1]"] {
        if let Some(rest) = s.strip_prefix(host) {
            let rest = match rest.strip_prefix(':') {
                Some(p) => {
                    let digits = p.bytes().take_while(u8::is_ascii_digit).count();
                    if digits == 0 || digits > 5 {
                        return None;
                    }
                    &p[digits..]
                }
                None => rest,
            };
            if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') {
                return Some(format!("{host}{rest}"));
            }
        }
    }
    None
}

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
