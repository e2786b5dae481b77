//! HTTP adapters: one `axum::Router` (built in [`routes`]) serves every entry point; one
//! small adapter per endpoint parses, calls one `oauth::` function and maps the result.
mod account;
mod authorize;
mod browser;
mod device;
mod endpoints;
pub mod error;
mod federation;
mod logout;
mod request;
pub mod routes;
mod telemetry;

pub use axum::Router;
pub use error::HttpError;
pub use request::{json_response, source_ip};
pub use routes::{router, routes};
use std::net::{IpAddr, SocketAddr};

/// The request every adapter takes: its head and its whole body (at most
/// [`MAX_BODY_BYTES`]).
pub type Request = http::Request<bytes::Bytes>;
/// The response every adapter returns.
pub type Response = axum::response::Response;

/// Largest request body accepted on any endpoint (docs/API.md: 413 above it).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Which deployed function is handling the request; each serves only its own routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `/register`, `/register_client`.
    Register,
    /// `/oauth/authorize`, `/oauth/logout`, `/account`, `/device`: every page a browser sees.
    Authorize,
    /// `/oauth/token`, `/oauth/device_authorization`, `/oauth/revoke`, `/oauth/introspect`.
    Token,
    /// `/api/data`, `/oauth/userinfo`.
    Protected,
    /// `/`, `/.well-known/*`.
    Discovery,
    /// The local server: every route.
    All,
}

impl Function {
    /// Its name in `template.yaml` (`${AWS::StackName}-<name>`) and in `functions/`.
    pub fn name(self) -> &'static str {
        match self {
            Function::Register => "register",
            Function::Authorize => "authorize",
            Function::Token => "token",
            Function::Protected => "protected",
            Function::Discovery => "discovery",
            Function::All => "oauth-local",
        }
    }
}

/// The caller's address, decided once per request by the router's first layer.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

/// The TCP peer of a request the local server accepted (API Gateway requests carry their
/// source address in their request context instead).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Send one request through `router` and read the whole response (tests, benchmarks, fuzz
/// targets: the same router the entry points serve, without a socket).
pub async fn call<B>(router: &axum::Router, req: http::Request<B>) -> http::Response<bytes::Bytes>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    use tower::ServiceExt;
    let Ok(resp) = router.clone().oneshot(req.map(axum::body::Body::new)).await;
    whole(resp).await
}

/// An error's response, read whole (like [`call`]).
pub async fn call_error(err: &HttpError) -> http::Response<bytes::Bytes> {
    whole(error::into_response(err)).await
}

/// A response with its body read whole (our bodies are in memory already).
async fn whole(resp: Response) -> http::Response<bytes::Bytes> {
    use http_body_util::BodyExt;
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.map(http_body_util::Collected::to_bytes).unwrap_or_default();
    http::Response::from_parts(parts, bytes)
}
