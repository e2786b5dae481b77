//! The Lambda entry point of every HTTP function: API Gateway event in, API Gateway response
//! out, with the shared [`router`](crate::http::router) in between.
//!
//! `lambda_http`'s own event → `http::Request` conversion panics (`unwrap`/`expect`) when
//! the `Host` or `X-Forwarded-Proto` header, the stage, the path or the raw query string do
//! not form a valid URI; with `panic = "abort"` that kills the container. Found by the
//! `lambda_event` fuzz target. [`guard`] checks those fields first: a bad `Host` or
//! `X-Forwarded-Proto` is dropped (they only feed the URI's authority and scheme, which no
//! handler reads: the issuer comes from configuration), a bad path, query or stage is a 400.
//! The same fuzz target then found `aws_lambda_events` panicking on a body flagged
//! `isBase64Encoded` that is not base64: also a 400 here.
//!
//! [`run`] refuses to serve the login form (`Function::Authorize`) with a MAC key that is
//! random per process: the cold start fails, naming `FORM_KEY_SECRET_ID`.
use crate::App;
use crate::http::Function;
use crate::oauth::OAuthError;
use lambda_http::request::{LambdaRequest, RequestFuture};
use lambda_http::{Error, LambdaEvent, RequestExt, TransformResponse, service_fn};
use std::sync::Arc;

/// The whole life of an HTTP function's container: JSON logs, the app built once from the
/// environment, then [`run`].
///
/// # Errors
/// The configuration, the backends or the Lambda Runtime API failed (the cold start fails
/// with the reason).
pub async fn main(function: Function) -> Result<(), Error> {
    crate::telemetry::init_tracing(true);
    crate::telemetry::metrics::init(std::env::var("METRICS_NAMESPACE").ok().as_deref(), function.name());
    // Only an id_token_hint needs the authorize function's keys: they load then.
    let app = crate::startup::app_from_env(function == Function::Authorize).await?;
    run(Arc::new(app), function).await
}

/// What a function answers API Gateway.
pub type LambdaResponse = http::Response<lambda_http::Body>;

/// Serve API Gateway events (HTTP API v2 and REST v1) as `function` until the runtime stops.
///
/// # Errors
/// The app cannot serve `function` (the authorize function without a shared form key:
/// see [`App::require_shared_form_key`]), or the Lambda Runtime API failed.
pub async fn run(app: Arc<App>, function: Function) -> Result<(), Error> {
    check(&app, function)?;
    let router = crate::http::router(app, function);
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<LambdaRequest>| {
        let LambdaEvent { payload, context } = event;
        let origin = payload.request_origin();
        let router = router.clone();
        let answer: RequestFuture<'static, LambdaResponse, Error> =
            Box::pin(async move { Ok(handle_event(&router, payload, Some(context)).await) });
        TransformResponse::Request(origin, answer)
    }))
    .await
}

/// One API Gateway event through `router`: the [`guard`], lambda_http's conversion (with the
/// invocation's context and X-Ray trace id when there is one), the router, and the response
/// as API Gateway takes it. The Lambda entry point and the event tests both call this.
pub async fn handle_event(
    router: &axum::Router,
    mut event: LambdaRequest,
    context: Option<lambda_http::Context>,
) -> LambdaResponse {
    let resp = match guard(&mut event) {
        Ok(()) => {
            let mut req: lambda_http::Request = event.into();
            if let Some(context) = context {
                if let Some(trace) = context.xray_trace_id.as_deref().and_then(|t| http::HeaderValue::from_str(t).ok())
                {
                    req.headers_mut().insert("x-amzn-trace-id", trace);
                }
                req = req.with_lambda_context(context);
            }
            crate::http::call(router, req).await
        }
        Err(e) => {
            tracing::warn!(error = %e.code(), "malformed API Gateway event refused");
            crate::http::call_error(&e.into()).await
        }
    };
    let (parts, bytes) = resp.into_parts();
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => lambda_http::Body::Text(text),
            Err(e) => lambda_http::Body::Binary(e.into_bytes()),
        }
    };
    http::Response::from_parts(parts, body)
}

/// Whether `app` may serve `function` on Lambda, where every request may reach another
/// container and the function faces the internet: the login form needs a MAC key all of
/// them share, and client registration a registration token unless open registration was
/// asked for by name.
///
/// # Errors
/// The authorize function with a per-process form key; the register function with neither
/// a registration token nor `OAUTH_OPEN_REGISTRATION=true`.
pub fn check(app: &App, function: Function) -> Result<(), Error> {
    if matches!(function, Function::Authorize | Function::All) {
        app.require_shared_form_key().map_err(|e| Error::from(format!("Cannot serve the login form: {e}")))?;
    }
    if matches!(function, Function::Register | Function::All) {
        if !app.requires_registration_token() && !app.settings.open_registration {
            return Err(Error::from(
                "Refusing to serve client registration without a registration token: set \
                 REGISTRATION_TOKEN_SECRET_ID (or OAUTH_REGISTRATION_TOKEN), or OAUTH_OPEN_REGISTRATION=true \
                 to let anyone register clients",
            ));
        }
        if !app.requires_registration_token() {
            tracing::warn!("open client registration (OAUTH_OPEN_REGISTRATION=true): anyone may register clients");
        }
    }
    Ok(())
}

/// Make an event safe for `lambda_http`'s conversion (see the module documentation).
///
/// # Errors
/// `invalid_request` when the path, query string or stage cannot be part of a URI.
pub fn guard(event: &mut LambdaRequest) -> Result<(), OAuthError> {
    let bad = || OAuthError::invalid_request("the request URI or body encoding is malformed");
    match event {
        LambdaRequest::ApiGatewayV2(ev) => {
            drop_bad_headers(&mut ev.headers);
            if ev.request_context.domain_name.as_deref().is_some_and(|d| !valid_host(d)) {
                ev.request_context.domain_name = None;
            }
            let stage_ok = ev.request_context.stage.as_deref().is_none_or(valid_stage);
            let path_ok = ev.raw_path.as_deref().is_none_or(valid_path);
            let query_ok = ev.raw_query_string.as_deref().is_none_or(valid_query);
            let body_ok = body_decodes(ev.is_base64_encoded, ev.body.as_deref());
            if stage_ok && path_ok && query_ok && body_ok { Ok(()) } else { Err(bad()) }
        }
        LambdaRequest::ApiGatewayV1(ev) => {
            drop_bad_headers(&mut ev.headers);
            drop_bad_headers(&mut ev.multi_value_headers);
            if ev.request_context.domain_name.as_deref().is_some_and(|d| !valid_host(d)) {
                ev.request_context.domain_name = None;
            }
            // The query comes from the parameter maps, which lambda_http encodes itself.
            let stage_ok = ev.request_context.stage.as_deref().is_none_or(valid_stage);
            let path_ok = ev.path.as_deref().is_none_or(valid_path);
            let body_ok = body_decodes(ev.is_base64_encoded, ev.body.as_deref());
            if stage_ok && path_ok && body_ok { Ok(()) } else { Err(bad()) }
        }
        _ => Err(bad()),
    }
}

/// A body API Gateway flagged as base64 must decode (the conversion `expect`s it).
fn body_decodes(base64: bool, body: Option<&str>) -> bool {
    use base64::Engine;
    !base64 || body.is_none_or(|b| base64::engine::general_purpose::STANDARD.decode(b).is_ok())
}

fn drop_bad_headers(headers: &mut http::HeaderMap) {
    let host_ok = headers.get_all(http::header::HOST).iter().all(|v| v.to_str().is_ok_and(valid_host));
    if !host_ok {
        headers.remove(http::header::HOST);
    }
    let proto_ok =
        headers.get_all("x-forwarded-proto").iter().all(|v| v.as_bytes() == b"https" || v.as_bytes() == b"http");
    if !proto_ok {
        headers.remove("x-forwarded-proto");
    }
}

/// A DNS name, IPv4 or bracketed IPv6 literal, with an optional port: what API Gateway puts
/// in `Host`.
fn valid_host(h: &str) -> bool {
    let (name_ok, port) = match h.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((addr, tail)) => (
                !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.'),
                tail.strip_prefix(':').unwrap_or(tail),
            ),
            None => (false, ""),
        },
        None => {
            let (name, port) = h.split_once(':').unwrap_or((h, ""));
            (
                !name.is_empty()
                    && name.len() <= 253
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
                port,
            )
        }
    };
    let port_ok = port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    name_ok && port_ok && url::Url::parse(&format!("https://{h}/")).is_ok()
}

fn valid_stage(s: &str) -> bool {
    s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"$-_".contains(&b))
}

/// RFC 3986 `pchar` (unreserved, sub-delims, `:`, `@`, a complete `%XX`), plus what else
/// the component may hold.
fn uri_chars(s: &str, also: &[u8]) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let ok = match c {
            b'%' => {
                let hex = b.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
                i += 2;
                hex
            }
            c if c.is_ascii_alphanumeric() => true,
            b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
            | b':' | b'@' => true,
            c => also.contains(&c),
        };
        if !ok {
            return false;
        }
        i += 1;
    }
    true
}

fn valid_path(p: &str) -> bool {
    p.starts_with('/') && !p.starts_with("//") && p.len() <= 8192 && uri_chars(p, b"/")
}

fn valid_query(q: &str) -> bool {
    q.len() <= 16_384 && uri_chars(q, b"/?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_paths_and_queries_are_checked_strictly() {
        for h in ["abc.execute-api.us-east-1.amazonaws.com", "auth.example.com:443", "127.0.0.1:3000", "[::1]:8080"] {
            assert!(valid_host(h), "{h}");
        }
        for h in ["", "a b", "a`b.com", "ex.com:99999x", "::1", "a/b", "a@b", "é.com"] {
            assert!(!valid_host(h), "{h}");
        }
        assert!(valid_path(crate::paths::TOKEN) && valid_path("/a%20b/c;d=e"));
        for p in ["", "a", "//evil.example/x", "/a b", "/a%2", "/a%zz", "/a{b", "/a\"b", "/a\\b", "/a#b"] {
            assert!(!valid_path(p), "{p}");
        }
        assert!(valid_query("a=1&b=%2F/?x") && valid_query(""));
        for q in ["a=\"", "a={}", "a=|", "a=^", "a=`", "a=<b>", "a=%", "a b", "a=#"] {
            assert!(!valid_query(q), "{q}");
        }
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn the_login_form_is_not_served_with_a_per_process_form_key() -> anyhow::Result<()> {
        use crate::crypto::Secret;
        use crate::keys::FormKey;
        let app = |form_key: Option<FormKey>| async move {
            let settings = crate::Settings::from_lookup(|k| (k == "ISSUER").then(|| "https://as.test".to_owned()))?;
            let stores = crate::store::Stores::all(std::sync::Arc::new(crate::store::SqliteStore::in_memory()?));
            let app = App::with_key_ring_alg(
                settings,
                stores,
                std::sync::Arc::new(crate::keys::NoKeys),
                None,
                App::system_clock(),
                false,
            )
            .await?;
            anyhow::Ok(match form_key {
                Some(k) => app.with_form_key(k),
                None => app,
            })
        };
        // OAUTH_KEYS=none (or public) and no FORM_KEY_SECRET_ID: the cold start fails.
        let unshared = app(None).await?;
        let err =
            run(Arc::new(app(None).await?), Function::Authorize).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("FORM_KEY_SECRET_ID"), "{err}");
        assert!(check(&unshared, Function::Protected).is_ok());
        // With the form-key secret's value, it may.
        let value = Secret::new("0123456789abcdef0123456789abcdef");
        let shared = app(Some(FormKey::from_secret("form-key", &value)?)).await?;
        assert!(check(&shared, Function::Authorize).is_ok());
        Ok(())
    }

    /// Client registration on Lambda faces the internet: without a registration token it
    /// starts only when open registration is asked for by name.
    #[tokio::test]
    async fn the_register_function_needs_a_token_or_explicitly_open_registration() -> anyhow::Result<()> {
        let app = |vars: &'static [(&'static str, &'static str)]| async move {
            let settings = crate::Settings::from_lookup(|k| {
                if k == "ISSUER" {
                    return Some("https://as.test".to_owned());
                }
                vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
            })?;
            let stores = crate::store::Stores::all(std::sync::Arc::new(crate::store::SqliteStore::in_memory()?));
            let keys = std::sync::Arc::new(crate::keys::NoKeys);
            anyhow::Ok(App::with_key_ring_alg(settings, stores, keys, None, App::system_clock(), false).await?)
        };
        let err = check(&app(&[]).await?, Function::Register).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("REGISTRATION_TOKEN_SECRET_ID") && err.contains("OAUTH_OPEN_REGISTRATION"), "{err}");
        assert!(check(&app(&[("OAUTH_OPEN_REGISTRATION", "true")]).await?, Function::Register).is_ok());
        assert!(
            check(&app(&[("OAUTH_REGISTRATION_TOKEN", "a-token-of-16-chars-or-more")]).await?, Function::Register)
                .is_ok()
        );
        assert!(check(&app(&[("OAUTH_OPEN_REGISTRATION", "false")]).await?, Function::Register).is_err());
        Ok(())
    }
}
