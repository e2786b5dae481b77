//! Handler tests: committed API Gateway events, decoded and checked exactly as the deployed
//! functions do (`lambda::http`: lambda_http's event type, our guard, lambda_http's
//! conversion), handled by the function that owns the route.
use base64::Engine;
use lambda_http::request::LambdaRequest;
use oauth_core::http::{Function, call, router, source_ip};
use oauth_core::lambda::http::handle_event;
use oauth_tests::harness::{TestEnv, str_field};
use serde_json::Value;

struct Live {
    basic: String,
    token: String,
}

async fn invoke(
    env: &TestEnv,
    function: Function,
    event: &str,
    live: &Live,
) -> anyhow::Result<(u16, Value, http::HeaderMap)> {
    let event = event.replace("REPLACE_BASIC_CREDENTIALS", &live.basic).replace("REPLACE_ACCESS_TOKEN", &live.token);
    let event: LambdaRequest = serde_json::from_str(&event)?;
    let resp = handle_event(&router(env.app.clone(), function), event, None).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.body().as_ref();
    let json = if body.is_empty() { Value::Null } else { serde_json::from_slice(body)? };
    Ok((status, json, headers))
}

async fn live(env: &TestEnv) -> anyhow::Result<Live> {
    let (id, secret) = env.service_client("data:read data:write").await?;
    let token = env.cc_token(&id, &secret, None).await?;
    Ok(Live { basic: base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")), token })
}

#[tokio::test]
async fn every_committed_event_is_handled_by_its_function() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let live = live(&env).await?;
    let cases: Vec<(&str, Function, &str, u16)> = vec![
        ("register-user", Function::Register, include_str!("../../events/register-user.json"), 201),
        ("register-user-malformed", Function::Register, include_str!("../../events/register-user-malformed.json"), 400),
        ("register-client", Function::Register, include_str!("../../events/register-client.json"), 201),
        (
            "register-client-bad-redirect",
            Function::Register,
            include_str!("../../events/register-client-bad-redirect.json"),
            400,
        ),
        ("token-client-credentials", Function::Token, include_str!("../../events/token-client-credentials.json"), 200),
        (
            "token-client-credentials-base64",
            Function::Token,
            include_str!("../../events/token-client-credentials-base64.json"),
            200,
        ),
        ("token-unsupported-grant", Function::Token, include_str!("../../events/token-unsupported-grant.json"), 400),
        ("token-introspect", Function::Token, include_str!("../../events/token-introspect.json"), 200),
        ("protected-get-data", Function::Protected, include_str!("../../events/protected-get-data.json"), 200),
        ("protected-post-data", Function::Protected, include_str!("../../events/protected-post-data.json"), 201),
        ("protected-no-token", Function::Protected, include_str!("../../events/protected-no-token.json"), 401),
        ("discovery-root", Function::Discovery, include_str!("../../events/discovery-root.json"), 200),
        ("discovery-metadata", Function::Discovery, include_str!("../../events/discovery-metadata.json"), 200),
        (
            "discovery-openid-configuration",
            Function::Discovery,
            include_str!("../../events/discovery-openid-configuration.json"),
            200,
        ),
        ("discovery-jwks", Function::Discovery, include_str!("../../events/discovery-jwks.json"), 200),
        // Revoke last: it ends the live token.
        ("token-revoke", Function::Token, include_str!("../../events/token-revoke.json"), 200),
    ];
    for (name, function, event, want) in cases {
        let (status, body, _) = invoke(&env, function, event, &live).await?;
        assert_eq!(status, want, "{name}: {body}");
    }
    // The revoke event really revoked the token.
    let (status, body, _) =
        invoke(&env, Function::Token, include_str!("../../events/token-introspect.json"), &live).await?;
    assert_eq!((status, body), (200, serde_json::json!({"active": false})));
    let (status, _, headers) =
        invoke(&env, Function::Protected, include_str!("../../events/protected-get-data.json"), &live).await?;
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"],
        "Bearer error=\"invalid_token\", resource_metadata=\"https://as.test/.well-known/oauth-protected-resource/api\""
    );
    Ok(())
}

#[tokio::test]
async fn event_bodies_and_context_reach_the_handlers() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let live = live(&env).await?;
    let (_, body, _) = invoke(&env, Function::Register, include_str!("../../events/register-user.json"), &live).await?;
    assert_eq!(body["username"], "alice");
    let (_, body, headers) =
        invoke(&env, Function::Token, include_str!("../../events/token-client-credentials-base64.json"), &live).await?;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(headers["cache-control"], "no-store");
    let (_, body, _) =
        invoke(&env, Function::Register, include_str!("../../events/register-client.json"), &live).await?;
    assert_eq!(body["client_name"], "Example App");
    let (_, body, _) =
        invoke(&env, Function::Token, include_str!("../../events/token-unsupported-grant.json"), &live).await?;
    assert_eq!(body["error"], "unsupported_grant_type");
    let req = lambda_http::request::from_str(include_str!("../../events/register-user.json"))?;
    assert_eq!(source_ip(&req).map(|ip| ip.to_string()), Some("203.0.113.10".to_owned()));
    Ok(())
}

#[tokio::test]
async fn a_function_serves_only_its_own_routes() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let live = live(&env).await?;
    let cases = [
        (Function::Register, include_str!("../../events/token-client-credentials.json")),
        (Function::Token, include_str!("../../events/register-user.json")),
        (Function::Discovery, include_str!("../../events/protected-get-data.json")),
        (Function::Protected, include_str!("../../events/discovery-jwks.json")),
    ];
    for (function, event) in cases {
        let (status, body, _) = invoke(&env, function, event, &live).await?;
        assert_eq!(status, 404, "{function:?}");
        assert_eq!(body["error"], "invalid_request");
    }
    assert!(env.app.users.user_by_username("alice").await?.is_none(), "a refused event stored a user");
    let _ = str_field(&serde_json::json!({"a": "b"}), "a")?;
    Ok(())
}

#[tokio::test]
async fn the_code_flow_runs_through_authorize_token_and_protected_events() -> anyhow::Result<()> {
    use oauth_tests::harness::CB;
    let env = TestEnv::new().await?;
    env.alice().await?;
    let (id, secret) = env.web_client("openid profile offline_access data:read").await?;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let fill = |event: &str, code: &str, rt: &str, at: &str| {
        event
            .replace("REPLACE_CLIENT_ID", &id)
            .replace("REPLACE_BASIC_CREDENTIALS", &basic)
            .replace("REPLACE_CODE", code)
            .replace("REPLACE_REFRESH_TOKEN", rt)
            .replace("REPLACE_ACCESS_TOKEN", at)
    };
    // The login page, from the authorize event.
    let req = lambda_http::request::from_str(&fill(include_str!("../../events/authorize-get.json"), "", "", ""))?;
    let resp = call(&router(env.app.clone(), Function::Authorize), req).await;
    assert_eq!(resp.status(), 200);
    assert!(String::from_utf8_lossy(resp.body().as_ref()).contains("name=\"request\""));
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let req = lambda_http::request::from_str(include_str!("../../events/authorize-get-unknown-client.json"))?;
    let resp = call(&router(env.app.clone(), Function::Authorize), req).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
    // A code from a real login, exchanged through the token event.
    let code = env.code_for(&id, CB, "openid profile offline_access data:read").await?;
    let req = lambda_http::request::from_str(&fill(
        include_str!("../../events/token-authorization-code.json"),
        &code,
        "",
        "",
    ))?;
    let resp = call(&router(env.app.clone(), Function::Token), req).await;
    assert_eq!(resp.status(), 200, "{}", String::from_utf8_lossy(resp.body().as_ref()));
    let body: Value = serde_json::from_slice(resp.body().as_ref())?;
    let (at, rt) = (str_field(&body, "access_token")?, str_field(&body, "refresh_token")?);
    let req = lambda_http::request::from_str(&fill(include_str!("../../events/protected-userinfo.json"), "", "", &at))?;
    let resp = call(&router(env.app.clone(), Function::Protected), req).await;
    assert_eq!(resp.status(), 200);
    let req = lambda_http::request::from_str(&fill(include_str!("../../events/token-refresh.json"), "", &rt, ""))?;
    let resp = call(&router(env.app.clone(), Function::Token), req).await;
    assert_eq!(resp.status(), 200);
    Ok(())
}

/// Inputs that crashed lambda_http's event conversion (found by the `lambda_event` fuzz
/// target) and hand-made variants of each field it builds a URI from: the guard drops a bad
/// `Host` or `X-Forwarded-Proto` (the request is served) and refuses a bad path, query or
/// stage with 400; nothing panics.
#[tokio::test]
async fn events_that_crashed_the_conversion_are_answered() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let live = live(&env).await?;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/regressions/lambda_event");
    let mut found = 0;
    for entry in std::fs::read_dir(dir)? {
        let raw = std::fs::read_to_string(entry?.path())?;
        let (status, body, _) = invoke(&env, Function::All, &raw, &live).await?;
        assert!((200..500).contains(&status), "{status} {body}");
        found += 1;
    }
    assert!(found > 0, "no regression inputs in {dir}");
    let base: Value = serde_json::from_str(include_str!("../../events/discovery-jwks.json"))?;
    let with = |pointer: &str, value: &str| -> anyhow::Result<String> {
        let mut ev = base.clone();
        *ev.pointer_mut(pointer).ok_or_else(|| anyhow::anyhow!("no {pointer}"))? = Value::String(value.into());
        Ok(ev.to_string())
    };
    let served = [
        ("/headers/host", "evil`host.example"),
        ("/headers/host", "a b"),
        ("/headers/x-forwarded-proto", "ht tp"),
        ("/headers/x-forwarded-proto", "javascript"),
        ("/requestContext/domainName", "bad domain"),
    ];
    for (pointer, value) in served {
        let (status, body, _) = invoke(&env, Function::Discovery, &with(pointer, value)?, &live).await?;
        assert_eq!(status, 200, "{pointer}={value:?}: {body}");
    }
    let refused = [
        ("/rawPath", "/.well-known/jwks.json\\x"),
        ("/rawPath", "/a b"),
        ("/rawPath", "no-slash"),
        ("/rawQueryString", "a={}"),
        ("/rawQueryString", "a=\"b\""),
        ("/requestContext/stage", "st age"),
    ];
    for (pointer, value) in refused {
        let (status, body, _) = invoke(&env, Function::Discovery, &with(pointer, value)?, &live).await?;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{pointer}={value:?}");
    }
    Ok(())
}
