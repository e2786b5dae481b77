//! The request log line: one `info` event per request when its response is ready (status,
//! latency), inside a `request` span that every event of the request inherits (method,
//! path, caller's address, and on Lambda API Gateway's request id; the Lambda request id is
//! the runtime's span around it). The path only: a query string may carry codes or state.
use super::Response;
use axum::body::Body;
use std::time::Duration;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;
use tracing::Span;

type MakeSpan = fn(&http::Request<Body>) -> Span;
type OnResponse = fn(&Response, Duration, &Span);

/// The layer (tower-http's `TraceLayer`); 5xx bodies are logged by `error::into_response`
/// with their cause, so the layer's own failure event is off.
pub(super) fn request_log() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeSpan, (), OnResponse, (), (), ()>
{
    TraceLayer::new_for_http()
        .make_span_with(span as MakeSpan)
        .on_request(())
        .on_response(line as OnResponse)
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

fn span(req: &http::Request<Body>) -> Span {
    let path = req.uri().path();
    // At most 200 bytes, cut at a character boundary (no copy).
    let end = path.floor_char_boundary(200);
    tracing::info_span!(
        "request",
        method = %req.method(),
        path = %&path[..end],
        source_ip = super::source_ip(req).map(tracing::field::display),
        apigw_request_id = super::request::gateway_request_id(req).map(|id| &id[..id.floor_char_boundary(64)])
    )
}

fn line(resp: &Response, latency: Duration, _span: &Span) {
    crate::telemetry::metrics::request(resp.status().as_u16(), latency);
    tracing::info!(
        status = resp.status().as_u16(),
        latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
        "request"
    );
}
