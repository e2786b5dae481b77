//! The route table: every endpoint is one row (path, owning function, CORS policy, its
//! handler per method), and [`router`] turns the rows a function owns into the
//! `axum::Router` both entry points serve. Adding an endpoint is adding a row.
use super::error::{self, HttpError};
use super::{
    Function, MAX_BODY_BYTES, Request, Response, account, authorize, device, endpoints, federation, logout, request,
};
use crate::oauth::OAuthError;
use crate::{App, paths};
use axum::body::Body;
use http::{HeaderValue, Method, StatusCode, header};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// An endpoint adapter: the request with its whole body, the app, a response or an error.
pub(super) type Handler =
    for<'a> fn(&'a App, &'a Request) -> Pin<Box<dyn Future<Output = Result<Response, OAuthError>> + Send + 'a>>;

/// Which browser origins may call a route (docs/SECURITY.md A13: never the authorization
/// endpoint; docs/API.md's browser-facing JSON endpoints only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cors {
    /// No CORS headers, ever; `OPTIONS` is a 405.
    No,
    /// Public documents (metadata, JWKS): `Access-Control-Allow-Origin: *`.
    Public,
    /// Only the origins of `CORS_ALLOWED_ORIGINS`, echoed with `Vary: Origin`.
    Configured,
}

/// One endpoint.
pub struct Route {
    /// Its path (from [`crate::paths`]).
    pub path: &'static str,
    /// The Lambda function that serves it.
    pub function: Function,
    cors: Cors,
    get: Option<Handler>,
    post: Option<Handler>,
}

impl Route {
    /// Whether browsers may call it cross-origin (it answers CORS preflights).
    pub fn cors(&self) -> bool {
        self.cors != Cors::No
    }

    /// The methods it answers, as an `Allow` header value.
    pub fn allow(&self) -> &'static str {
        match (self.get.is_some(), self.post.is_some()) {
            (true, true) => "GET, POST",
            (true, false) => "GET",
            (false, _) => "POST",
        }
    }
}

/// An adapter as a [`Handler`].
macro_rules! h {
    ($f:path) => {
        Some(|app, req| Box::pin($f(app, req)))
    };
}

const fn row(path: &'static str, function: Function, cors: Cors, get: Option<Handler>, post: Option<Handler>) -> Route {
    Route { path, function, cors, get, post }
}

use Cors::{Configured, No, Public};
use Function::{Authorize, Discovery, Protected, Register, Token};

/// Every endpoint this server has.
pub static ROUTES: &[Route] = &[
    row(paths::REGISTER, Register, No, None, h!(endpoints::register_user)),
    row(paths::REGISTER_CLIENT, Register, No, None, h!(endpoints::register_client)),
    row(paths::AUTHORIZE, Authorize, No, h!(authorize::get), h!(authorize::post)),
    row(paths::LOGOUT, Authorize, No, h!(logout::get), h!(logout::post)),
    row(paths::ACCOUNT, Authorize, No, h!(account::get), h!(account::post)),
    row(paths::FEDERATION_CALLBACK, Authorize, No, h!(federation::callback), None),
    row(paths::DEVICE, Authorize, No, h!(device::get), h!(device::post)),
    row(paths::TOKEN, Token, Configured, None, h!(endpoints::token)),
    row(paths::DEVICE_AUTHORIZATION, Token, No, None, h!(endpoints::device_authorization)),
    row(paths::REVOKE, Token, Configured, None, h!(endpoints::revoke)),
    row(paths::INTROSPECT, Token, No, None, h!(endpoints::introspect)),
    row(paths::DATA, Protected, No, h!(endpoints::read_data), h!(endpoints::write_data)),
    row(paths::USERINFO, Protected, Configured, h!(endpoints::userinfo), None),
    row(paths::ROOT, Discovery, Public, h!(endpoints::welcome), None),
    row(paths::OAUTH_METADATA, Discovery, Public, h!(endpoints::metadata), None),
    row(paths::OPENID_CONFIGURATION, Discovery, Public, h!(endpoints::metadata), None),
    row(paths::PROTECTED_RESOURCE_METADATA, Discovery, Public, h!(endpoints::resource_metadata), None),
    row(paths::JWKS, Discovery, Public, h!(endpoints::jwks), None),
    row(paths::OPENAPI, Discovery, Public, h!(endpoints::openapi), None),
];

/// Every `(method, path)` this build serves (for the template and docs tests).
pub fn routes() -> Vec<(&'static str, &'static str)> {
    ROUTES.iter().flat_map(|r| r.allow().split(", ").map(move |m| (m, r.path))).collect()
}

/// The router of `function` (every route for [`Function::All`]): its rows, a JSON 404 for
/// any other path, the request log line, and first of all the per-request preparation
/// (key refresh, the caller's address).
pub fn router(app: Arc<App>, function: Function) -> axum::Router {
    let mut router = axum::Router::new();
    for route in ROUTES.iter().filter(|r| function == Function::All || function == r.function) {
        let app = app.clone();
        router = router.route(
            route.path,
            axum::routing::any(move |req: axum::extract::Request| {
                let app = app.clone();
                async move { dispatch(&app, route, req).await }
            }),
        );
    }
    router
        .fallback(|| async { error::into_response(&HttpError::NotFound) })
        .layer(super::telemetry::request_log())
        .layer(axum::middleware::from_fn_with_state(app, prepare))
}

/// Before any route: refresh stale keys (a cheap time check on the hot path) and decide the
/// caller's address once.
async fn prepare(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let now = app.clock.now().unix_timestamp();
    app.key_ring.refresh_if_stale(now).await;
    app.refresh_form_keys(now, false).await;
    if let Some(ip) = request::resolve_source(&app, &req) {
        req.extensions_mut().insert(super::ClientAddr(ip));
    }
    next.run(req).await
}

/// One request on one route: never fails (errors become their responses), CORS headers
/// per the row.
async fn dispatch(app: &App, route: &'static Route, req: axum::extract::Request) -> Response {
    let origin = match route.cors {
        Cors::Configured => allowed_origin(app, &req),
        Cors::Public => Some(HeaderValue::from_static("*")),
        Cors::No => None,
    };
    let mut resp = match serve(app, route, req).await {
        Ok(resp) => resp,
        Err(e) => error::into_response(&e),
    };
    if let Some(origin) = origin {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("WWW-Authenticate, Retry-After"));
    }
    if route.cors == Cors::Configured {
        resp.headers_mut().append(header::VARY, HeaderValue::from_static("Origin"));
    }
    resp
}

async fn serve(app: &App, route: &'static Route, req: axum::extract::Request) -> Result<Response, HttpError> {
    let req = read_body(req).await?;
    if req.method() == Method::OPTIONS
        && route.cors != Cors::No
        && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return preflight(app, route, &req);
    }
    let handler = match *req.method() {
        Method::GET => route.get,
        Method::POST => route.post,
        _ => None,
    };
    let handler = handler.ok_or(HttpError::MethodNotAllowed { allow: route.allow() })?;
    Ok(handler(app, &req).await?)
}

/// The whole body, at most [`MAX_BODY_BYTES`]: an announced larger body is refused before any
/// of it is read, a streamed one as soon as it passes the limit.
async fn read_body(req: axum::extract::Request) -> Result<Request, HttpError> {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let announced =
        parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(HttpError::BodyTooLarge);
    }
    let bytes = match http_body_util::Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return Err(HttpError::BodyTooLarge);
        }
        Err(_) => return Err(OAuthError::invalid_request("the request body could not be read").into()),
    };
    Ok(Request::from_parts(parts, bytes))
}

/// The request's `Origin` when it is exactly one of the configured origins.
fn allowed_origin<B>(app: &App, req: &http::Request<B>) -> Option<HeaderValue> {
    let mut values = req.headers().get_all(header::ORIGIN).iter();
    let (Some(origin), None) = (values.next(), values.next()) else { return None };
    let text = origin.to_str().ok()?;
    let origins = &app.settings.cors_allowed_origins;
    if origins.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    origins.iter().any(|o| o == text).then(|| origin.clone())
}

/// A CORS preflight (`OPTIONS` with `Access-Control-Request-Method`) on a route that
/// allows CORS: 204 with what may be sent, or 403 for an origin that is not allowed.
fn preflight(app: &App, route: &Route, req: &Request) -> Result<Response, HttpError> {
    let origin = match route.cors {
        Cors::Public => Some(HeaderValue::from_static("*")),
        Cors::Configured => allowed_origin(app, req),
        Cors::No => None,
    };
    let Some(origin) = origin else {
        return Err(HttpError::CorsRefused);
    };
    let requested = request::single_header(req, header::ACCESS_CONTROL_REQUEST_METHOD)?.unwrap_or("");
    if !route.allow().split(", ").any(|m| m == requested) {
        return Err(HttpError::MethodNotAllowed { allow: route.allow() });
    }
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(route.allow()));
    // `MCP-Protocol-Version`: MCP clients send it on every request, discovery included.
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, MCP-Protocol-Version"),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
