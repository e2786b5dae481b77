//! `GET` and `POST /api/data`: bearer checks, scopes, RFC 6750 challenges, stored items.
use oauth_tests::harness::{TestEnv, str_field};
use serde_json::{Value, json};

#[tokio::test]
async fn get_returns_the_protected_data_and_the_subjects_items_newest_first() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read data:write").await?;
    let token = env.cc_token(&id, &secret, None).await?;
    // "Any JSON", null included; a body without `value` is the error.
    let r = env.http.post(env.url("/api/data")).bearer_auth(&token).json(&json!({"other": 1})).send().await?;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await?["error_description"], "value is required");
    for v in [json!(null), json!(1), json!({"b": [true, null]}), json!("three")] {
        let r = env.http.post(env.url("/api/data")).bearer_auth(&token).json(&json!({"value": v})).send().await?;
        assert_eq!(r.status(), 201);
        let b: Value = r.json().await?;
        assert_eq!(b["value"], v);
        assert!(str_field(&b, "id")?.starts_with("itm_"));
        let created = str_field(&b, "created_at")?;
        assert!(
            time::OffsetDateTime::parse(&created, &time::format_description::well_known::Rfc3339).is_ok(),
            "{created}"
        );
        env.clock.advance(1);
    }
    let r = env.get_bearer("/api/data", &token).await?;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let b: Value = r.json().await?;
    assert_eq!(b["data"], "This is protected data!");
    assert_eq!(b["sub"], id.as_str());
    assert_eq!(b["client_id"], id.as_str());
    assert_eq!(b["scope"], "data:read data:write");
    let values: Vec<&Value> =
        b["items"].as_array().map(|a| a.iter().map(|i| &i["value"]).collect()).unwrap_or_default();
    assert_eq!(values, [&json!("three"), &json!({"b": [true, null]}), &json!(1), &json!(null)]);
    // Another subject sees none of them.
    let (id2, secret2) = env.service_client("data:read").await?;
    let b: Value = env.get_bearer("/api/data", &env.cc_token(&id2, &secret2, None).await?).await?.json().await?;
    assert_eq!(b["items"], json!([]));
    Ok(())
}

#[tokio::test]
async fn bearer_errors_carry_rfc6750_challenges() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read data:write").await?;
    let read_only = env.cc_token(&id, &secret, Some("data:read")).await?;
    let write_only = env.cc_token(&id, &secret, Some("data:write")).await?;
    let url = env.url("/api/data");
    let h = &env.http;
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "no token",
            h.get(&url),
            401,
            "Bearer realm=\"api\", resource_metadata=\"https://as.test/.well-known/oauth-protected-resource/api\", scope=\"data:read\"",
        ),
        (
            "token only in the query",
            h.get(format!("{url}?access_token={read_only}")),
            401,
            "Bearer realm=\"api\", resource_metadata=\"https://as.test/.well-known/oauth-protected-resource/api\", scope=\"data:read\"",
        ),
        (
            "garbage token",
            h.get(&url).bearer_auth("garbage"),
            401,
            "Bearer error=\"invalid_token\", resource_metadata=\"https://as.test/.well-known/oauth-protected-resource/api\"",
        ),
        (
            "basic scheme",
            h.get(&url).basic_auth("a", Some("b")),
            401,
            "Bearer error=\"invalid_token\", resource_metadata=\"https://as.test/.well-known/oauth-protected-resource/api\"",
        ),
        (
            "two tokens in one header",
            h.get(&url).header("authorization", format!("Bearer {read_only}, Bearer {read_only}")),
            401,
            "Bearer error=\"invalid_token\", resource_metadata=\"https://as.test/.well-known/oauth-protected-resource/api\"",
        ),
        (
            "two headers",
            h.get(&url)
                .header("authorization", format!("Bearer {read_only}"))
                .header("authorization", format!("Bearer {read_only}")),
            401,
            "Bearer error=\"invalid_token\", resource_metadata=\"https://as.test/.well-known/oauth-protected-resource/api\"",
        ),
        (
            "missing read scope",
            h.get(&url).bearer_auth(&write_only),
            403,
            "Bearer error=\"insufficient_scope\", resource_metadata=\"https://as.test/.well-known/oauth-protected-resource/api\", scope=\"data:read\"",
        ),
        (
            "missing write scope",
            h.post(&url).bearer_auth(&read_only).json(&json!({"value": 1})),
            403,
            "Bearer error=\"insufficient_scope\", resource_metadata=\"https://as.test/.well-known/oauth-protected-resource/api\", scope=\"data:write\"",
        ),
    ];
    for (name, req, status, challenge) in cases {
        let r = req.send().await?;
        assert_eq!(r.status(), status, "{name}");
        assert_eq!(r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()), Some(challenge), "{name}");
        let b: Value = r.json().await?;
        assert!(b["error"].is_string() && b["error_description"].is_string(), "{name}: {b}");
    }
    // The scheme is case-insensitive.
    let r = h.get(&url).header("authorization", format!("bearer {read_only}")).send().await?;
    assert_eq!(r.status(), 200);
    Ok(())
}

#[tokio::test]
async fn post_validates_its_body_and_limits_values_to_4_kib() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read data:write").await?;
    let token = env.cc_token(&id, &secret, None).await?;
    let url = env.url("/api/data");
    let big = "x".repeat(4097);
    let r = env.http.post(&url).bearer_auth(&token).json(&json!({"value": big})).send().await?;
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await?["error"], "invalid_request");
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        ("missing value", env.http.post(&url).bearer_auth(&token).json(&json!({"other": 1}))),
        (
            "malformed json",
            env.http.post(&url).bearer_auth(&token).header("content-type", "application/json").body("{"),
        ),
        ("form body", env.http.post(&url).bearer_auth(&token).form(&[("value", "1")])),
    ];
    for (name, req) in cases {
        let r = req.send().await?;
        assert_eq!(r.status(), 400, "{name}");
        assert_eq!(r.json::<Value>().await?["error"], "invalid_request", "{name}");
    }
    // An exactly-4-KiB value is accepted (4096 bytes of JSON: quotes + 4094 chars).
    let ok = "y".repeat(4094);
    let r = env.http.post(&url).bearer_auth(&token).json(&json!({"value": ok})).send().await?;
    assert_eq!(r.status(), 201);
    let items: Value = env.get_bearer("/api/data", &token).await?.json().await?;
    assert_eq!(items["items"].as_array().map(Vec::len), Some(1), "refused values were stored");
    Ok(())
}

#[tokio::test]
async fn identity_headers_from_the_client_are_ignored() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read").await?;
    let token = env.cc_token(&id, &secret, None).await?;
    let r = env
        .http
        .get(env.url("/api/data"))
        .bearer_auth(&token)
        .header("x-user-id", "admin")
        .header("x-scope", "data:write")
        .send()
        .await?;
    let b: Value = r.json().await?;
    assert_eq!(b["sub"], id.as_str());
    assert_eq!(b["scope"], "data:read");
    Ok(())
}

#[tokio::test]
async fn an_expired_token_is_refused_even_after_it_was_cached() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read").await?;
    let token = env.cc_token(&id, &secret, None).await?;
    assert_eq!(env.get_bearer("/api/data", &token).await?.status(), 200);
    env.clock.advance(900 + 30);
    assert_eq!(env.get_bearer("/api/data", &token).await?.status(), 200, "inside the 60 s leeway");
    env.clock.advance(31);
    assert_eq!(env.get_bearer("/api/data", &token).await?.status(), 401);
    Ok(())
}

/// A key source whose document the test replaces (a rotation that retires every old key).
struct Replaceable(std::sync::Mutex<oauth_core::keys::KeySetDoc>);

#[async_trait::async_trait]
impl oauth_core::keys::KeySource for Replaceable {
    async fn load(&self) -> Result<oauth_core::keys::KeySetDoc, oauth_core::keys::KeyError> {
        Ok(self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}

/// The verified-token cache belongs to the key set that verified its entries: once a new
/// set without that key is installed, a cached token is verified again, and refused.
#[tokio::test]
async fn a_key_set_change_flushes_the_verified_token_cache() -> anyhow::Result<()> {
    use oauth_core::jwt::SigningAlg;
    let generate = || oauth_core::keys::KeySetDoc::generate(&[SigningAlg::Es256]);
    let source = std::sync::Arc::new(Replaceable(std::sync::Mutex::new(generate()?)));
    let env = TestEnv::with_keys(source.clone(), Some(60)).await?;
    let (id, secret) = env.service_client("data:read").await?;
    let token = env.cc_token(&id, &secret, None).await?;
    assert_eq!(env.get_bearer("/api/data", &token).await?.status(), 200, "verified and cached");
    *source.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = generate()?;
    let generation = env.app.key_ring.generation();
    env.clock.advance(61);
    let r = env.get_bearer("/api/data", &token).await?;
    assert_ne!(env.app.key_ring.generation(), generation, "the request installed the new key set");
    assert_eq!(r.status(), 401, "its key is gone, so the cached verification is too");
    // A token of the new set is accepted.
    let fresh = env.cc_token(&id, &secret, None).await?;
    assert_eq!(env.get_bearer("/api/data", &fresh).await?.status(), 200);
    Ok(())
}
