//! `oauth-local`: the whole server in one process. It serves the very router the Lambda
//! functions serve ([`oauth_core::http::router`], every route), so local runs and Lambda
//! run identical code.
//!
//! The connection loop is hyper-util's rather than `axum::serve`, which (axum 0.8) cannot
//! bound how long a client takes to send its headers; slowloris connections would hold the
//! server's slots.
#![forbid(unsafe_code)]
use oauth_core::App;
use oauth_core::http::{Function, PeerAddr, router};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send a request's headers.
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
    let router = router(app, Function::All);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let svc = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(PeerAddr(peer));
            router.clone().oneshot(req)
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .max_buf_size(64 * 1024)
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("shutdown timed out with connections still open"),
    }
    Ok(())
}
