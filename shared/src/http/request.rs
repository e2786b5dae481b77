//! Reading a request and writing the common response: headers taken strictly (a repeated
//! header is an error, a non-ASCII value never passes for a valid one), the caller's
//! address, the JSON response every endpoint uses.
use super::{ClientAddr, Response};
use crate::App;
use crate::oauth::OAuthError;
use axum::body::Body;
use http::{HeaderValue, StatusCode, header};
use std::net::IpAddr;

/// A JSON response with the headers every response carries.
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let text = serde_json::to_string(body).unwrap_or_else(|_| r#"{"error":"server_error"}"#.to_owned());
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

/// All values of a header that are valid visible ASCII; any other value is kept as an
/// empty string so it can never be mistaken for a well-formed one.
pub(super) fn header_values<B>(req: &http::Request<B>, name: header::HeaderName) -> Vec<&str> {
    req.headers().get_all(name).iter().map(|v| v.to_str().unwrap_or("")).collect()
}

/// The single value of a header; repeated headers are an error.
pub(super) fn single_header<B>(req: &http::Request<B>, name: header::HeaderName) -> Result<Option<&str>, OAuthError> {
    let mut values = header_values(req, name.clone());
    match values.len() {
        0 => Ok(None),
        1 => Ok(values.pop()),
        _ => Err(OAuthError::invalid_request(format!("the {name} header is repeated"))),
    }
}

/// Whether the request's media type (parameters ignored, case-insensitive) is `want`.
pub(super) fn has_media_type<B>(req: &http::Request<B>, want: &str) -> Result<bool, OAuthError> {
    let ct = single_header(req, header::CONTENT_TYPE)?.unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    Ok(media.eq_ignore_ascii_case(want))
}

/// The caller's address, decided once per request (by the router's first layer):
/// CloudFront's viewer address when the request proves it came through CloudFront, else
/// [`source_ip`].
pub(super) fn resolve_source<B>(app: &App, req: &http::Request<B>) -> Option<IpAddr> {
    cloudfront_viewer(app, req).or_else(|| source_ip(req))
}

/// The viewer's address CloudFront reports (`CloudFront-Viewer-Address: <ip>:<port>`), only
/// for a request that carries the origin-verification header CloudFront is configured to add
/// (`X-Origin-Verify`, compared in constant time with `CLOUDFRONT_ORIGIN_SECRET`). Behind
/// CloudFront the TCP peer is an edge server shared by many users; anyone else could write
/// the header, so without the secret it is ignored.
fn cloudfront_viewer<B>(app: &App, req: &http::Request<B>) -> Option<IpAddr> {
    use subtle::ConstantTimeEq;
    let secret = app.settings.cloudfront_origin_secret.as_ref()?;
    let presented = header_values(req, http::HeaderName::from_static("x-origin-verify"));
    let [presented] = presented.as_slice() else { return None };
    if !bool::from(presented.as_bytes().ct_eq(secret.expose().as_bytes())) {
        return None;
    }
    let viewer = header_values(req, http::HeaderName::from_static("cloudfront-viewer-address"));
    let [viewer] = viewer.as_slice() else { return None };
    let (ip, port) = viewer.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// The caller's IP address: as the router's first layer decided it, else the TCP peer the
/// local server accepted, else API Gateway's `sourceIp`. Never `X-Forwarded-For`, which a
/// client can forge.
pub fn source_ip<B>(req: &http::Request<B>) -> Option<IpAddr> {
    use lambda_http::request::RequestContext;
    let ext = req.extensions();
    if let Some(ClientAddr(ip)) = ext.get::<ClientAddr>() {
        return Some(*ip);
    }
    if let Some(super::PeerAddr(peer)) = ext.get::<super::PeerAddr>() {
        return Some(peer.ip());
    }
    match ext.get::<RequestContext>()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.as_deref()?.parse().ok(),
        RequestContext::ApiGatewayV1(ctx) => ctx.identity.source_ip.as_deref()?.parse().ok(),
        #[allow(unreachable_patterns)] // other variants exist only with other lambda_http features
        _ => None,
    }
}

/// API Gateway's id of the request (`requestContext.requestId`, the access log's
/// `requestId`): on every log line of the request, so a line can be matched to its gateway
/// request. Absent on the local server.
pub fn gateway_request_id<B>(req: &http::Request<B>) -> Option<&str> {
    use lambda_http::request::RequestContext;
    match req.extensions().get::<RequestContext>()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.request_id.as_deref(),
        RequestContext::ApiGatewayV1(ctx) => ctx.request_id.as_deref(),
        #[allow(unreachable_patterns)] // other variants exist only with other lambda_http features
        _ => None,
    }
}
