//! HTTP adapters: `lambda_http::Request` in, `Response` out. One small adapter per
//! endpoint parses, calls one `oauth::` function and maps the result; [`handle`] routes a
//! request to its adapter for a given Lambda function (or all of them, locally).
mod authorize;
mod endpoints;
pub mod error;
pub mod lambda;

use crate::App;
use crate::oauth::OAuthError;
use http::{HeaderValue, Method, StatusCode, header};
use lambda_http::Body;
use std::net::IpAddr;

/// The request type every adapter takes (what `lambda_http` hands a function).
pub type Request = lambda_http::Request;
/// The response type every adapter returns.
pub type Response = http::Response<Body>;

/// Largest request body accepted on any endpoint (API.md: 413 above it).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Which deployed function is handling the request; each serves only its own routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `/register`, `/register_client`.
    Register,
    /// `/oauth/authorize`.
    Authorize,
    /// `/oauth/token`, `/oauth/revoke`, `/oauth/introspect`.
    Token,
    /// `/api/data`, `/oauth/userinfo`.
    Protected,
    /// `/`, `/.well-known/*`.
    Discovery,
    /// The local server: every route.
    All,
}

/// The caller's address as the local server saw it (Lambda requests carry it in their
/// request context instead).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

/// Which browser origins may call a route (SECURITY.md A13: never the authorization
/// endpoint; API.md's browser-facing JSON endpoints only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cors {
    /// No CORS headers, ever; `OPTIONS` is a 405.
    No,
    /// Public documents (metadata, JWKS): `Access-Control-Allow-Origin: *`.
    Public,
    /// Only the origins of `CORS_ALLOWED_ORIGINS`, echoed with `Vary: Origin`.
    Configured,
}

struct Route {
    path: &'static str,
    function: Function,
    allow: &'static str,
    cors: Cors,
}

const ROUTES: &[Route] = &[
    Route { path: "/register", function: Function::Register, allow: "POST", cors: Cors::No },
    Route { path: "/register_client", function: Function::Register, allow: "POST", cors: Cors::No },
    Route { path: "/oauth/authorize", function: Function::Authorize, allow: "GET, POST", cors: Cors::No },
    Route { path: "/oauth/token", function: Function::Token, allow: "POST", cors: Cors::Configured },
    Route { path: "/oauth/revoke", function: Function::Token, allow: "POST", cors: Cors::Configured },
    Route { path: "/oauth/introspect", function: Function::Token, allow: "POST", cors: Cors::No },
    Route { path: "/api/data", function: Function::Protected, allow: "GET, POST", cors: Cors::No },
    Route { path: "/oauth/userinfo", function: Function::Protected, allow: "GET", cors: Cors::Configured },
    Route { path: "/", function: Function::Discovery, allow: "GET", cors: Cors::Public },
    Route {
        path: "/.well-known/oauth-authorization-server",
        function: Function::Discovery,
        allow: "GET",
        cors: Cors::Public,
    },
    Route {
        path: "/.well-known/openid-configuration",
        function: Function::Discovery,
        allow: "GET",
        cors: Cors::Public,
    },
    Route { path: "/.well-known/jwks.json", function: Function::Discovery, allow: "GET", cors: Cors::Public },
    Route { path: "/openapi.yaml", function: Function::Discovery, allow: "GET", cors: Cors::Public },
];

/// Every `(method, path)` this build serves (for the template and docs tests).
pub fn routes() -> Vec<(&'static str, &'static str)> {
    ROUTES.iter().flat_map(|r| r.allow.split(", ").map(move |m| (m, r.path))).collect()
}

/// Handle one request as `function`. Never fails: protocol errors are 4xx responses and
/// unexpected failures a generic 500 body.
pub async fn handle(app: &App, function: Function, mut req: Request) -> Response {
    let now = app.clock.now().unix_timestamp();
    app.key_ring.refresh_if_stale(now).await;
    app.refresh_form_keys(now, false).await;
    if let Some(ip) = cloudfront_viewer(app, &req) {
        req.extensions_mut().insert(ClientAddr(ip));
    }
    let cors = find_route(function, req.uri().path()).map_or(Cors::No, |r| r.cors);
    let origin = match cors {
        Cors::Configured => allowed_origin(app, &req),
        Cors::Public => Some(HeaderValue::from_static("*")),
        Cors::No => None,
    };
    let span = tracing::info_span!(
        "request",
        path = %req.uri().path(),
        source_ip = source_ip(&req).map(tracing::field::display)
    );
    let mut resp = match tracing::Instrument::instrument(route(app, function, req), span).await {
        Ok(resp) => resp,
        Err(e) => error::into_response(&e),
    };
    if let Some(origin) = origin {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("WWW-Authenticate, Retry-After"));
    }
    if cors == Cors::Configured {
        resp.headers_mut().append(header::VARY, HeaderValue::from_static("Origin"));
    }
    resp
}

fn find_route(function: Function, path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.path == path && (function == Function::All || function == r.function))
}

/// The request's `Origin` when it is exactly one of the configured origins.
fn allowed_origin(app: &App, req: &Request) -> Option<HeaderValue> {
    let mut values = req.headers().get_all(header::ORIGIN).iter();
    let (Some(origin), None) = (values.next(), values.next()) else { return None };
    let text = origin.to_str().ok()?;
    app.settings.cors_allowed_origins.iter().any(|o| o == text).then(|| origin.clone())
}

/// A CORS preflight (`OPTIONS` with `Access-Control-Request-Method`) on a route that
/// allows CORS: 204 with what may be sent, or 403 for an origin that is not allowed.
fn preflight(app: &App, route: &Route, req: &Request) -> Result<Response, OAuthError> {
    let origin = match route.cors {
        Cors::Public => Some(HeaderValue::from_static("*")),
        Cors::Configured => allowed_origin(app, req),
        Cors::No => None,
    };
    let Some(origin) = origin else {
        return Err(OAuthError::Forbidden("this origin may not call this endpoint from a browser".into()));
    };
    let requested = single_header(req, header::ACCESS_CONTROL_REQUEST_METHOD)?.unwrap_or("");
    if !route.allow.split(", ").any(|m| m == requested) {
        return Err(OAuthError::MethodNotAllowed { allow: route.allow });
    }
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(route.allow));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

async fn route(app: &App, function: Function, req: Request) -> Result<Response, OAuthError> {
    let route = find_route(function, req.uri().path()).ok_or(OAuthError::NotFound)?;
    if req.body().len() > MAX_BODY_BYTES {
        return Err(OAuthError::PayloadTooLarge("the request body is larger than 64 KiB".into()));
    }
    let method = req.method().clone();
    if method == Method::OPTIONS
        && route.cors != Cors::No
        && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return preflight(app, route, &req);
    }
    match (route.path, method) {
        ("/register", Method::POST) => endpoints::register_user(app, &req).await,
        ("/register_client", Method::POST) => endpoints::register_client(app, &req).await,
        ("/oauth/authorize", Method::GET) => authorize::get(app, &req).await,
        ("/oauth/authorize", Method::POST) => authorize::post(app, &req).await,
        ("/oauth/token", Method::POST) => endpoints::token(app, &req).await,
        ("/oauth/revoke", Method::POST) => endpoints::revoke(app, &req).await,
        ("/oauth/introspect", Method::POST) => endpoints::introspect(app, &req).await,
        ("/api/data", Method::GET) => endpoints::read_data(app, &req).await,
        ("/api/data", Method::POST) => endpoints::write_data(app, &req).await,
        ("/oauth/userinfo", Method::GET) => endpoints::userinfo(app, &req).await,
        ("/", Method::GET) => Ok(endpoints::welcome(app)),
        ("/.well-known/oauth-authorization-server" | "/.well-known/openid-configuration", Method::GET) => {
            Ok(endpoints::metadata(app))
        }
        ("/.well-known/jwks.json", Method::GET) => {
            // Publish the previous keys too: tokens they signed are still valid.
            if !app.key_ring.ensure_complete(app.clock.now().unix_timestamp()).await {
                return Err(OAuthError::TemporarilyUnavailable(anyhow::anyhow!(
                    "the previous keys could not be loaded"
                )));
            }
            endpoints::jwks(app)
        }
        ("/openapi.yaml", Method::GET) => Ok(endpoints::openapi()),
        _ => Err(OAuthError::MethodNotAllowed { allow: route.allow }),
    }
}

/// A JSON response with the headers every response carries.
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let text = serde_json::to_string(body).unwrap_or_else(|_| r#"{"error":"server_error"}"#.to_owned());
    let mut resp = Response::new(Body::Text(text));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

/// All values of a header that are valid visible ASCII; any other value is kept as an
/// empty string so it can never be mistaken for a well-formed one.
fn header_values(req: &Request, name: header::HeaderName) -> Vec<&str> {
    req.headers().get_all(name).iter().map(|v| v.to_str().unwrap_or("")).collect()
}

/// The single value of a header; repeated headers are an error.
fn single_header(req: &Request, name: header::HeaderName) -> Result<Option<&str>, OAuthError> {
    let mut values = header_values(req, name.clone());
    match values.len() {
        0 => Ok(None),
        1 => Ok(values.pop()),
        _ => Err(OAuthError::invalid_request(format!("the {name} header is repeated"))),
    }
}

/// Whether the request's media type (parameters ignored, case-insensitive) is `want`.
fn has_media_type(req: &Request, want: &str) -> Result<bool, OAuthError> {
    let ct = single_header(req, header::CONTENT_TYPE)?.unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    Ok(media.eq_ignore_ascii_case(want))
}

/// The viewer's address CloudFront reports (`CloudFront-Viewer-Address: <ip>:<port>`), only
/// for a request that carries the origin-verification header CloudFront is configured to add
/// (`X-Origin-Verify`, compared in constant time with `CLOUDFRONT_ORIGIN_SECRET`). Behind
/// CloudFront the TCP peer is an edge server shared by many users; anyone else could write
/// the header, so without the secret it is ignored.
fn cloudfront_viewer(app: &App, req: &Request) -> Option<IpAddr> {
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

/// The caller's IP address: the local server's socket address or API Gateway's
/// `sourceIp`. Never taken from `X-Forwarded-For`, which a client can forge; behind CloudFront, its
/// viewer address when the request proves it came through CloudFront (see `handle`).
pub fn source_ip(req: &Request) -> Option<IpAddr> {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    if let Some(ClientAddr(ip)) = req.extensions().get::<ClientAddr>() {
        return Some(*ip);
    }
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.as_deref()?.parse().ok(),
        RequestContext::ApiGatewayV1(ctx) => ctx.identity.source_ip.as_deref()?.parse().ok(),
        #[allow(unreachable_patterns)] // other variants exist only with other lambda_http features
        _ => None,
    }
}
