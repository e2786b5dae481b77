//! The URL-shaped settings: the issuer and the CORS origins.

/// An origin as browsers send it: `https://host[:port]` (or `http://` on loopback), nothing
/// after the authority, no wildcard.
pub(super) fn validate_origin(o: &str) -> Result<(), String> {
    if o.contains('*') {
        return Err("a pattern is not an origin (`*` alone allows every origin)".into());
    }
    let u = url::Url::parse(o).map_err(|e| e.to_string())?;
    if u.origin().ascii_serialization() != o {
        return Err("must be exactly scheme://host[:port], with no path or trailing slash".into());
    }
    let loopback = u.host_str().is_some_and(crate::domain::is_loopback_host);
    if u.scheme() != "https" && !(u.scheme() == "http" && loopback) {
        return Err("must be https (http only on loopback)".into());
    }
    Ok(())
}

/// `CORS_ALLOWED_ORIGINS`: origins separated by commas or spaces, each exactly
/// `scheme://host[:port]`, or `*` for any origin (without credentials: these endpoints use
/// no cookies), for browser-based clients whose origins are not known in advance (MCP).
pub(super) fn parse_origins(v: &str) -> Result<Vec<String>, String> {
    v.split([',', ' '])
        .filter(|o| !o.is_empty())
        .map(|o| {
            if o == "*" {
                return Ok(o.to_owned());
            }
            validate_origin(o).map(|()| o.to_owned()).map_err(|reason| format!("{o:?}: {reason}"))
        })
        .collect()
}

/// The issuer must be an absolute `https` URL (or `http` on a loopback host) with no
/// query, fragment or trailing slash: RFC 8414 §2 and RFC 9207 compare it as a string.
pub(super) fn validate_issuer(issuer: &str) -> Result<(), String> {
    let url = url::Url::parse(issuer).map_err(|e| format!("{issuer:?} is not an absolute URL ({e})"))?;
    let loopback = url.host_str().is_some_and(crate::domain::is_loopback_host);
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(format!("{issuer:?} must use https (http is allowed only on loopback hosts)")),
    }
    if url.query().is_some() || url.fragment().is_some() || issuer.ends_with('/') {
        return Err(format!("{issuer:?} must not have a query, fragment or trailing slash"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{issuer:?} must not contain credentials"));
    }
    Ok(())
}
