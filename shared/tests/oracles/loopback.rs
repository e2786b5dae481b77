//! The test oracle for redirect URI matching, shared by the property test
//! (`shared/tests/properties.rs`) and the fuzz target (`fuzz/fuzz_targets/redirect_uri.rs`)
//! so the two cannot disagree: written from RFC 8252 §7.3, not from the code under test.

/// `s` with its loopback port (if any) removed: the one variation RFC 8252 §7.3 allows. A
/// port is 1 to 5 digits (the largest is 65535); anything else is no loopback URI here.
pub fn without_loopback_port(s: &str) -> Option<String> {
    for host in ["http://127.0.0.1", "http://[::1]"] {
        if let Some(rest) = s.strip_prefix(host) {
            let rest = match rest.strip_prefix(':') {
                Some(p) => {
                    let digits = p.bytes().take_while(u8::is_ascii_digit).count();
                    if digits == 0 || digits > 5 {
                        return None;
                    }
                    p.get(digits..)?
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
