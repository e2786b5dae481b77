//! Per-source-address abuse limits (issue 6 §4) and CORS (§5, docs/SECURITY.md A13).
use oauth_tests::harness::{TestEnv, str_field};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn assert_429(r: reqwest::Response, window: &str) -> anyhow::Result<()> {
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some(window));
    assert_eq!(r.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    let body: Value = r.json().await?;
    assert_eq!(body["error"], "too_many_requests");
    assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()));
    Ok(())
}

#[tokio::test]
async fn registration_attempts_per_address_are_limited_and_the_window_ends() -> anyhow::Result<()> {
    let env = TestEnv::with_vars(&[("REGISTER_LIMIT_PER_IP", "3"), ("ABUSE_WINDOW_SECONDS", "600")]).await?;
    let post = |body: Value| env.http.post(env.url("/register")).json(&body).send();
    // Every attempt counts, failed ones too: a taken name, then two new users.
    assert_eq!(post(json!({"username": "ann", "password": "long enough password"})).await?.status(), 201);
    assert_eq!(post(json!({"username": "ann", "password": "long enough password"})).await?.status(), 409);
    assert_eq!(post(json!({"username": "bea", "password": "long enough password"})).await?.status(), 201);
    assert_429(post(json!({"username": "cid", "password": "long enough password"})).await?, "600").await?;
    // Refused attempts keep the window open; it ends 600 s after the last one.
    env.clock.advance(599);
    assert_429(post(json!({"username": "cid", "password": "long enough password"})).await?, "600").await?;
    env.clock.advance(601);
    assert_eq!(post(json!({"username": "cid", "password": "long enough password"})).await?.status(), 201);
    // Nothing was stored for the refused attempts: "cid" exists exactly once.
    assert_eq!(post(json!({"username": "cid", "password": "long enough password"})).await?.status(), 409);
    Ok(())
}

#[tokio::test]
async fn client_registration_attempts_per_address_are_limited() -> anyhow::Result<()> {
    let env = TestEnv::with_vars(&[("REGISTER_CLIENT_LIMIT_PER_IP", "2")]).await?;
    let post =
        || env.http.post(env.url("/register_client")).json(&json!({"grant_types": ["client_credentials"]})).send();
    assert_eq!(post().await?.status(), 201);
    assert_eq!(post().await?.status(), 201);
    assert_429(post().await?, "900").await?;
    Ok(())
}

#[tokio::test]
async fn failed_client_authentication_per_address_is_limited_but_the_right_secret_still_works() -> anyhow::Result<()> {
    let env = TestEnv::with_vars(&[("CLIENT_AUTH_FAILURES_PER_IP", "3")]).await?;
    let (id, secret) = env.service_client("data:read").await?;
    let cc = [("grant_type", "client_credentials")];
    for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
        let form: &[(&str, &str)] = if path == "/oauth/token" { &cc } else { &[("token", "x")] };
        let r = env.post_form_basic(path, &id, "wrong secret", form).await?;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    // The fourth failure from this address, even for an unknown client, is a 429.
    assert_429(env.post_form_basic("/oauth/token", "nobody", "wrong", &cc).await?, "900").await?;
    assert_429(env.post_form_basic("/oauth/token", &id, "wrong secret", &cc).await?, "900").await?;
    // A client presenting its real secret is not locked out by failures from its address.
    let ok = env.post_form_basic("/oauth/token", &id, &secret, &cc).await?;
    assert_eq!(ok.status(), StatusCode::OK);
    // Protocol errors that are not authentication failures are not counted.
    let r = env.post_form_basic("/oauth/token", &id, &secret, &[("grant_type", "password")]).await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    env.clock.advance(901);
    let r = env.post_form_basic("/oauth/token", &id, "wrong secret", &cc).await?;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the window ended");
    Ok(())
}

const APP: &str = "https://app.example";

fn acao(r: &reqwest::Response) -> Option<String> {
    r.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn cors_headers(r: &reqwest::Response) -> Vec<String> {
    r.headers().keys().map(|k| k.as_str().to_owned()).filter(|k| k.starts_with("access-control-")).collect()
}

#[tokio::test]
async fn browser_based_mcp_clients_get_cors_with_their_protocol_header_and_any_origin_when_configured()
-> anyhow::Result<()> {
    let env = TestEnv::with_vars(&[("CORS_ALLOWED_ORIGINS", "*")]).await?;
    let public = [
        ("/.well-known/oauth-authorization-server", "GET"),
        ("/.well-known/oauth-protected-resource/api", "GET"),
        ("/.well-known/jwks.json", "GET"),
        ("/oauth/token", "POST"),
        ("/oauth/revoke", "POST"),
        ("/oauth/userinfo", "GET"),
    ];
    for (path, method) in public {
        let r = env
            .http
            .request(Method::OPTIONS, env.url(path))
            .header("origin", "http://localhost:6274")
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "mcp-protocol-version, authorization, content-type")
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{path}");
        assert_eq!(acao(&r).as_deref(), Some("*"), "{path}");
        let allowed = r.headers().get("access-control-allow-headers").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(allowed.contains("MCP-Protocol-Version"), "{path}: {allowed}");
        assert!(r.headers().get("access-control-allow-credentials").is_none(), "{path}: never with credentials");
    }
    // Never the authorization endpoint, whatever the setting.
    let r = preflight(&env, "/oauth/authorize", "http://localhost:6274", "GET").await?;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(cors_headers(&r).is_empty());
    Ok(())
}

async fn preflight(env: &TestEnv, path: &str, origin: &str, method: &str) -> anyhow::Result<reqwest::Response> {
    Ok(env
        .http
        .request(Method::OPTIONS, env.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await?)
}

#[tokio::test]
async fn cors_preflight_and_responses_follow_the_allow_list() -> anyhow::Result<()> {
    let env = TestEnv::with_vars(&[("CORS_ALLOWED_ORIGINS", "https://app.example, http://localhost:5173")]).await?;
    for (path, method) in [("/oauth/token", "POST"), ("/oauth/revoke", "POST"), ("/oauth/userinfo", "GET")] {
        let r = preflight(&env, path, APP, method).await?;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{path}");
        assert_eq!(acao(&r).as_deref(), Some(APP), "{path}");
        let h = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert!(h("access-control-allow-methods").contains(method));
        assert!(h("access-control-allow-headers").to_lowercase().contains("authorization"));
        assert!(h("vary").contains("Origin"));
        assert!(h("access-control-allow-credentials").is_empty(), "no cookies cross-origin");
        // An origin not on the list: refused, no CORS headers.
        let evil = preflight(&env, path, "https://evil.example", method).await?;
        assert_eq!(evil.status(), StatusCode::FORBIDDEN);
        assert!(cors_headers(&evil).is_empty(), "{path}: {:?}", cors_headers(&evil));
        // A look-alike origin is not on the list either.
        let close = preflight(&env, path, "https://app.example.evil.example", method).await?;
        assert_eq!(close.status(), StatusCode::FORBIDDEN);
        // A method the route does not serve.
        assert_eq!(preflight(&env, path, APP, "DELETE").await?.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    // The real request from the allowed origin carries the header; from another origin not.
    let (id, secret) = env.service_client("data:read").await?;
    let cc = [("grant_type", "client_credentials")];
    let send = |origin: &'static str| {
        env.http.post(env.url("/oauth/token")).header("origin", origin).basic_auth(&id, Some(&secret)).form(&cc).send()
    };
    let ok = send(APP).await?;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(acao(&ok).as_deref(), Some(APP));
    assert_eq!(ok.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    assert_eq!(ok.headers().get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"));
    let local = send("http://localhost:5173").await?;
    assert_eq!(acao(&local).as_deref(), Some("http://localhost:5173"));
    let other = send("https://evil.example").await?;
    assert_eq!(other.status(), StatusCode::OK, "CORS is the browser's check; the server just withholds the header");
    assert_eq!(acao(&other), None);
    // Errors carry it too, so a browser app can read the error body.
    let bad = env.http.post(env.url("/oauth/token")).header("origin", APP).form(&cc).send().await?;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(acao(&bad).as_deref(), Some(APP));
    Ok(())
}

#[tokio::test]
async fn metadata_and_jwks_are_open_to_every_origin() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    for path in
        ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/.well-known/jwks.json"]
    {
        let r = env.http.get(env.url(path)).header("origin", "https://anyone.example").send().await?;
        assert_eq!(acao(&r).as_deref(), Some("*"), "{path}");
        let p = preflight(&env, path, "https://anyone.example", "GET").await?;
        assert_eq!(p.status(), StatusCode::NO_CONTENT, "{path}");
        assert_eq!(acao(&p).as_deref(), Some("*"));
    }
    Ok(())
}

#[tokio::test]
async fn no_cors_without_configuration_and_never_at_the_authorization_endpoint() -> anyhow::Result<()> {
    // Even with the origin configured, /oauth/authorize, /register and /api/data stay closed.
    let env = TestEnv::with_vars(&[("CORS_ALLOWED_ORIGINS", APP)]).await?;
    for (path, allow) in [("/oauth/authorize", "GET, POST"), ("/register", "POST"), ("/api/data", "GET, POST")] {
        let p = preflight(&env, path, APP, "POST").await?;
        assert_eq!(p.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(p.headers().get("allow").and_then(|v| v.to_str().ok()), Some(allow));
        assert!(cors_headers(&p).is_empty(), "{path}: {:?}", cors_headers(&p));
    }
    let page = env.http.get(env.url("/oauth/authorize?client_id=x")).header("origin", APP).send().await?;
    assert!(cors_headers(&page).is_empty());
    // Without configuration the token endpoint has no allowed origin at all.
    let closed = TestEnv::new().await?;
    let p = preflight(&closed, "/oauth/token", APP, "POST").await?;
    assert_eq!(p.status(), StatusCode::FORBIDDEN);
    assert!(cors_headers(&p).is_empty());
    let c = closed.register_client(json!({"grant_types": ["client_credentials"]})).await?;
    let r = closed
        .http
        .post(closed.url("/oauth/token"))
        .header("origin", APP)
        .basic_auth(str_field(&c, "client_id")?, Some(str_field(&c, "client_secret")?))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(cors_headers(&r).is_empty());
    Ok(())
}

/// A malformed registration (it still counts as an attempt) from `source_ip`, through the
/// Lambda event path, with extra headers; returns the status.
async fn register_from(env: &TestEnv, source_ip: &str, headers: &[(&str, &str)]) -> anyhow::Result<u16> {
    let mut event: Value = serde_json::from_str(include_str!("../../events/register-user-malformed.json"))?;
    event["requestContext"]["http"]["sourceIp"] = json!(source_ip);
    for (k, v) in headers {
        event["headers"][*k] = json!(v);
    }
    let req = lambda_http::request::from_str(&event.to_string())?;
    let router = oauth_core::http::router(env.app.clone(), oauth_core::http::Function::Register);
    let resp = oauth_core::http::call(&router, req).await;
    Ok(resp.status().as_u16())
}

/// IPv6 callers are counted per /64 (one subscriber's network), not per address.
#[tokio::test]
async fn ipv6_callers_are_counted_per_64_network() -> anyhow::Result<()> {
    let env = TestEnv::with_vars(&[("REGISTER_LIMIT_PER_IP", "3")]).await?;
    let mut statuses = Vec::new();
    for host in 1..=4 {
        statuses.push(register_from(&env, &format!("2001:db8:1:2::{host:x}"), &[]).await?);
    }
    assert_eq!(statuses, [400, 400, 400, 429], "four addresses of one /64 share one budget");
    assert_eq!(register_from(&env, "2001:db8:1:3::1", &[]).await?, 400, "another /64 has its own");
    Ok(())
}

/// Behind CloudFront every request comes from an edge address: the viewer's address counts,
/// but only on requests that carry the configured origin secret (anyone can send the
/// `CloudFront-Viewer-Address` header itself).
#[tokio::test]
async fn cloudfront_viewer_addresses_count_only_with_the_origin_secret() -> anyhow::Result<()> {
    const SECRET: &str = "an-origin-verification-secret-of-40-chars";
    let env = TestEnv::with_vars(&[("REGISTER_LIMIT_PER_IP", "2"), ("CLOUDFRONT_ORIGIN_SECRET", SECRET)]).await?;
    let edge = "198.51.100.7";
    for viewer in ["203.0.113.1:40000", "203.0.113.2:40001", "203.0.113.3:40002", "[2001:db8::9]:40003"] {
        let via_cloudfront = [("x-origin-verify", SECRET), ("cloudfront-viewer-address", viewer)];
        assert_eq!(register_from(&env, edge, &via_cloudfront).await?, 400, "{viewer}: its own budget");
    }
    // The same edge address with a forged viewer and no (or a wrong) secret: counted on the edge.
    let forged = |secret| [("x-origin-verify", secret), ("cloudfront-viewer-address", "192.0.2.99:1")];
    let mut statuses = Vec::new();
    for secret in ["", "wrong", "an-origin-verification-secret-of-40-charX"] {
        statuses.push(register_from(&env, edge, &forged(secret)).await?);
    }
    assert_eq!(statuses, [400, 400, 429], "forged viewer addresses do not escape the edge's budget");
    Ok(())
}
