//! `oauth-local`: the whole server in one process on 127.0.0.1. It turns each hyper
//! request into the `lambda_http::Request` the Lambda functions receive and calls the very
//! same [`oauth_core::http::handle`], so local runs and Lambda run identical code.
#![forbid(unsafe_code)]
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use oauth_core::App;
use oauth_core::http::{ClientAddr, Function, MAX_BODY_BYTES, handle};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send a request's headers (slowloris: many connections that
/// trickle a header each never finish and hold the server's slots).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve `app` on `listener` until `shutdown` resolves, then stop accepting and let open
/// connections finish (up to 10 s).
///
/// # Errors
/// Only if accepting connections fails persistently.
pub async fn serve(app: Arc<App>, listener: TcpListener, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    serve_with(app, listener, shutdown, HEADER_READ_TIMEOUT).await
}

/// [`serve`] with another header read timeout (tests).
///
/// # Errors
/// Only if accepting connections fails persistently.
pub async fn serve_with(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    header_read_timeout: Duration,
) -> anyhow::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let svc = service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(respond(&app, req, peer).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .max_buf_size(64 * 1024)
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(header_read_timeout)
                    .serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("shutdown timed out with connections still open"),
    }
    Ok(())
}

fn too_large() -> http::Response<Full<Bytes>> {
    let resp = oauth_core::http::error::into_response(&oauth_core::OAuthError::PayloadTooLarge(
        "the request body is larger than 64 KiB".into(),
    ));
    let (parts, body) = resp.into_parts();
    http::Response::from_parts(parts, Full::new(Bytes::from(body.to_vec())))
}

/// One request: size checks, conversion, the shared handler, one log line.
async fn respond(app: &App, req: http::Request<Incoming>, peer: SocketAddr) -> http::Response<Full<Bytes>> {
    let started = Instant::now();
    let method = req.method().clone();
    // The path only: a query string may carry codes or state.
    let path: String = req.uri().path().chars().take(200).collect();
    let resp = convert_and_handle(app, req, peer).await;
    tracing::info!(
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    resp
}

async fn convert_and_handle(app: &App, req: http::Request<Incoming>, peer: SocketAddr) -> http::Response<Full<Bytes>> {
    let (mut parts, body) = req.into_parts();
    // Refuse an announced oversized body before reading any of it.
    let announced = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    // A chunked body is read only up to the limit.
    let bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return too_large(),
    };
    parts.extensions.insert(ClientAddr(peer.ip()));
    let body = if bytes.is_empty() { lambda_http::Body::Empty } else { lambda_http::Body::Binary(bytes.to_vec()) };
    let resp = handle(app, Function::All, http::Request::from_parts(parts, body)).await;
    let (parts, body) = resp.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Bytes::new(),
        lambda_http::Body::Text(s) => Bytes::from(s),
        lambda_http::Body::Binary(b) => Bytes::from(b),
        // Body is non-exhaustive upstream; anything else carries its bytes via as_ref.
        #[allow(unreachable_patterns)]
        other => Bytes::from(other.to_vec()),
    };
    http::Response::from_parts(parts, Full::new(bytes))
}
