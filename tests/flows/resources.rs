//! Resource servers and RFC 8707 `resource`: audiences per token, codes and refresh families
//! bound to the authorized resources, `invalid_target`, scopes per resource, trailing-slash
//! equivalence, protected-resource metadata (RFC 9728). On both stores.
use oauth_core::domain::{ResourceId, ResourceServer, Scope, ScopeDef};
use oauth_tests::harness::{CB, ISSUER, PASSWORD, TestEnv, VERIFIER, authz_query, decode_unverified, str_field};
use serde_json::{Value, json};

const ORDERS: &str = "https://orders.test";
const API: &str = "https://as.test/api";

/// An env with the orders API (`orders:read`, `orders:write`, tokens of 300 s) registered.
async fn env_with_orders() -> anyhow::Result<TestEnv> {
    let env = TestEnv::new().await?;
    let def = |s: &str, d: &str| -> anyhow::Result<ScopeDef> {
        Ok(ScopeDef { scope: Scope::parse(s).ok_or_else(|| anyhow::anyhow!("scope"))?, description: d.into() })
    };
    let orders = ResourceServer {
        id: ResourceId::parse(ORDERS).map_err(anyhow::Error::msg)?,
        name: "Orders API".into(),
        scopes: vec![def("orders:read", "See your orders")?, def("orders:write", "Place orders")?],
        access_token_ttl: 300,
    };
    env.app.resources.put(&orders).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(env)
}

fn claims(token: &str) -> anyhow::Result<Value> {
    Ok(decode_unverified(token)?.1)
}

async fn cc(env: &TestEnv, id: &str, secret: &str, extra: &[(&str, &str)]) -> anyhow::Result<(u16, Value)> {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    let r = env.post_form_basic("/oauth/token", id, secret, &form).await?;
    Ok((r.status().as_u16(), r.json().await?))
}

#[tokio::test]
async fn client_credentials_tokens_are_for_the_named_resource_and_checked_per_resource() -> anyhow::Result<()> {
    let env = env_with_orders().await?;
    // A team's own scopes are known once its API is registered (they used to be refused).
    let (id, secret) = env.service_client("data:read orders:read").await?;
    let (status, body) = cc(&env, &id, &secret, &[("resource", ORDERS)]).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "orders:read", "only the orders API's part of the client's scope");
    assert_eq!(body["expires_in"], 300, "the resource's own lifetime");
    let token = str_field(&body, "access_token")?;
    assert_eq!(claims(&token)?["aud"], ORDERS);
    // The built-in API refuses a token for another resource (RFC 8707 audience).
    let r = env.get_bearer("/api/data", &token).await?;
    assert_eq!(r.status(), 401);
    // Without `resource`: the default API, as before.
    let (status, body) = cc(&env, &id, &secret, &[]).await?;
    assert_eq!((status, body["scope"].as_str()), (200, Some("data:read")), "{body}");
    let token = str_field(&body, "access_token")?;
    assert_eq!(claims(&token)?["aud"], API);
    assert_eq!(env.get_bearer("/api/data", &token).await?.status(), 200);
    // The trailing slash of a pathless resource is the same resource.
    let (status, body) = cc(&env, &id, &secret, &[("resource", "https://orders.test/")]).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(&str_field(&body, "access_token")?)?["aud"], ORDERS);
    // Bad `resource` values: the contract's error, nothing issued.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let bad: [Case; 7] = [
        ("fragment", vec![("resource", "https://orders.test/#x")], "invalid_target"),
        ("relative", vec![("resource", "/api")], "invalid_target"),
        ("unknown", vec![("resource", "https://other.test")], "invalid_target"),
        ("another issuer's API", vec![("resource", "https://evil.test/api")], "invalid_target"),
        ("two resources", vec![("resource", ORDERS), ("resource", API)], "invalid_target"),
        ("another resource's scope", vec![("resource", ORDERS), ("scope", "data:read")], "invalid_scope"),
        ("a scope nobody defines", vec![("resource", ORDERS), ("scope", "orders:delete")], "invalid_scope"),
    ];
    for (name, extra, code) in bad {
        let (status, body) = cc(&env, &id, &secret, &extra).await?;
        assert_eq!((status, body["error"].as_str()), (400, Some(code)), "{name}: {body}");
    }
    Ok(())
}

#[tokio::test]
async fn a_code_for_two_resources_gives_one_token_per_resource_and_refreshes_narrow_never_widen() -> anyhow::Result<()>
{
    let env = env_with_orders().await?;
    env.alice().await?;
    let (id, secret) = env.web_client("openid offline_access data:read orders:read orders:write").await?;
    let mut query = authz_query(&id, Some(CB), "openid offline_access data:read orders:read", "s");
    query.push_str("&resource=https%3A%2F%2Forders.test%2F&resource=https%3A%2F%2Fas.test%2Fapi");
    let page = env.authorize(&query).await?;
    assert_eq!(page.status, 200, "{}", page.html);
    // The consent page names each resource server asked for.
    assert!(page.html.contains("Orders API") && page.html.contains(ORDERS), "{}", page.html);
    assert!(page.html.contains("Demo data API") && page.html.contains("See your orders"), "{}", page.html);
    let done = env.submit(&page, "alice", PASSWORD, "allow").await?;
    let code = done.location_param("code").ok_or_else(|| anyhow::anyhow!("no code: {}", done.html))?;
    let exchange = |resource: Option<&'static str>| {
        let (id, secret, code) = (id.clone(), secret.clone(), code.clone());
        let env = &env;
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("code_verifier", VERIFIER),
                ("redirect_uri", CB),
            ];
            if let Some(r) = resource {
                form.push(("resource", r));
            }
            let r = env.post_form_basic("/oauth/token", &id, &secret, &form).await?;
            anyhow::Ok((r.status().as_u16(), r.json::<Value>().await?))
        }
    };
    // Several were authorized: the token request must name one, and one it was authorized for.
    for resource in [None, Some("https://other.test"), Some("https://orders.test/#f")] {
        let (status, body) = exchange(resource).await?;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_target")), "{resource:?}: {body}");
    }
    // ... and those refusals did not use the code up.
    let (status, body) = exchange(Some(ORDERS)).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "openid offline_access orders:read", "the orders part and the OIDC scopes");
    let at = claims(&str_field(&body, "access_token")?)?;
    assert_eq!(
        (at["aud"].as_str(), at["exp"].as_i64().zip(at["iat"].as_i64()).map(|(e, i)| e - i)),
        (Some(ORDERS), Some(300))
    );
    assert!(body["id_token"].is_string(), "the ID token as usual");
    let rt = str_field(&body, "refresh_token")?;

    // Refresh for the other authorized resource.
    let refresh = |rt: String, extra: Vec<(&'static str, &'static str)>| {
        let (id, secret) = (id.clone(), secret.clone());
        let env = &env;
        async move {
            let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", rt.as_str())];
            form.extend(extra);
            let r = env.post_form_basic("/oauth/token", &id, &secret, &form).await?;
            anyhow::Ok((r.status().as_u16(), r.json::<Value>().await?))
        }
    };
    // Widening and foreign targets are refused before the token rotates.
    let refused: [(Vec<(&str, &str)>, &str); 5] = [
        (vec![], "invalid_target"),
        (vec![("resource", "https://other.test")], "invalid_target"),
        (vec![("resource", ORDERS), ("resource", API)], "invalid_target"),
        (vec![("resource", ORDERS), ("scope", "orders:write")], "invalid_scope"),
        (vec![("resource", ORDERS), ("scope", "data:read")], "invalid_scope"),
    ];
    for (extra, code) in refused {
        let (status, body) = refresh(rt.clone(), extra.clone()).await?;
        assert_eq!((status, body["error"].as_str()), (400, Some(code)), "{extra:?}: {body}");
    }
    let (status, body) = refresh(rt.clone(), vec![("resource", API)]).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "openid offline_access data:read");
    let token = str_field(&body, "access_token")?;
    assert_eq!(claims(&token)?["aud"], API);
    assert_eq!(env.get_bearer("/api/data", &token).await?.status(), 200);
    // Narrowing to one resource and a subset of its scopes.
    let rt = str_field(&body, "refresh_token")?;
    let (status, body) = refresh(rt, vec![("resource", "https://orders.test/"), ("scope", "orders:read")]).await?;
    assert_eq!((status, body["scope"].as_str()), (200, Some("orders:read")), "{body}");
    assert_eq!(claims(&str_field(&body, "access_token")?)?["aud"], ORDERS);
    // The userinfo endpoint belongs to the authorization server: any of its tokens with openid.
    let (_, body) = refresh(str_field(&body, "refresh_token")?, vec![("resource", ORDERS)]).await?;
    let r = env.get_bearer("/oauth/userinfo", &str_field(&body, "access_token")?).await?;
    assert_eq!(r.status(), 200);
    Ok(())
}

#[tokio::test]
async fn authorization_requests_name_known_resources_and_their_scopes() -> anyhow::Result<()> {
    let env = env_with_orders().await?;
    let (id, _) = env.web_client("openid data:read orders:read").await?;
    // Errors of the request itself go back to the client (here a page: open registration).
    let cases = [
        ("&resource=https%3A%2F%2Fother.test", "openid", "invalid_target"),
        ("&resource=https%3A%2F%2Forders.test%23x", "openid", "invalid_target"),
        ("&resource=orders.test", "openid", "invalid_target"),
        ("", "orders:read", "invalid_scope"),
        ("&resource=https%3A%2F%2Forders.test", "data:read", "invalid_scope"),
    ];
    for (extra, scope, code) in cases {
        let page = env.authorize(&format!("{}{extra}", authz_query(&id, Some(CB), scope, "s"))).await?;
        assert_eq!(page.error_code().as_deref(), Some(code), "{extra} {scope}: {}", page.html);
    }
    Ok(())
}

#[tokio::test]
async fn registration_knows_registered_scopes_and_accepts_mcp_client_metadata() -> anyhow::Result<()> {
    let env = env_with_orders().await?;
    let ok = env
        .register_client(json!({
            "redirect_uris": ["http://127.0.0.1/callback"], "scope": "orders:read",
            "token_endpoint_auth_method": "none", "application_type": "native",
            "software_id": "unknown members are ignored", "logo_uri": {"nested": [1, 2]},
        }))
        .await?;
    assert_eq!(ok["scope"], "orders:read", "{ok}");
    for (body, code) in [
        (json!({"redirect_uris": [CB], "scope": "billing:read"}), "invalid_client_metadata"),
        (json!({"redirect_uris": [CB], "application_type": "desktop"}), "invalid_client_metadata"),
        (json!({"redirect_uris": [CB], "application_type": 7}), "invalid_client_metadata"),
    ] {
        let r = env.http.post(env.url("/register_client")).json(&body).send().await?;
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(r.json::<Value>().await?["error"], code, "{body}");
    }
    Ok(())
}

#[tokio::test]
async fn the_builtin_api_publishes_its_protected_resource_metadata() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let r = env.http.get(env.url("/.well-known/oauth-protected-resource/api")).send().await?;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*", "browser-based MCP clients read it");
    let doc: Value = r.json().await?;
    assert_eq!(doc["resource"], API);
    assert_eq!(doc["authorization_servers"], json!([ISSUER]));
    assert_eq!(doc["scopes_supported"], json!(["data:read", "data:write"]));
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    assert!(doc["resource_name"].is_string());
    // The challenge of the API points to it (RFC 9728 §5.1).
    let r = env.http.get(env.url("/api/data")).send().await?;
    let challenge = r.headers()["www-authenticate"].to_str()?.to_owned();
    assert!(challenge.contains("resource_metadata=\"https://as.test/.well-known/oauth-protected-resource/api\""));
    // The authorization server metadata MCP clients need.
    let meta: Value = env.http.get(env.url("/.well-known/oauth-authorization-server")).send().await?.json().await?;
    for (field, want) in [
        ("code_challenge_methods_supported", json!(["S256"])),
        ("response_types_supported", json!(["code"])),
        ("authorization_response_iss_parameter_supported", json!(true)),
    ] {
        assert_eq!(meta[field], want, "{field}");
    }
    assert!(meta["token_endpoint_auth_methods_supported"].as_array().is_some_and(|a| a.contains(&json!("none"))));
    assert!(meta["grant_types_supported"].as_array().is_some_and(|a| a.contains(&json!("refresh_token"))));
    assert!(meta["scopes_supported"].as_array().is_some_and(|a| a.contains(&json!("data:read"))));
    Ok(())
}

#[tokio::test]
async fn an_operators_change_to_the_resource_servers_applies_within_the_cache_time() -> anyhow::Result<()> {
    let env = TestEnv::with_vars(&[("RESOURCE_CACHE_SECONDS", "60")]).await?;
    let (id, secret) = env.service_client("data:read").await?;
    // Read once (the catalog is now cached), then registered behind this process's back.
    assert_eq!(cc(&env, &id, &secret, &[("resource", ORDERS)]).await?.1["error"], "invalid_target");
    let server = ResourceServer {
        id: ResourceId::parse(ORDERS).map_err(anyhow::Error::msg)?,
        name: "Orders".into(),
        scopes: vec![],
        access_token_ttl: 300,
    };
    oauth_core::store::ResourceStore::put_resource(&*env.faults, &server).await?;
    assert_eq!(cc(&env, &id, &secret, &[("resource", ORDERS)]).await?.1["error"], "invalid_target", "cached");
    env.clock.advance(61);
    let (status, body) = cc(&env, &id, &secret, &[("resource", ORDERS), ("scope", "data:read")]).await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "known now; data:read is not its: {body}"
    );
    Ok(())
}

#[tokio::test]
async fn remembered_consent_is_per_resource_server_so_a_new_one_is_shown_to_the_user() -> anyhow::Result<()> {
    let env = env_with_orders().await?;
    env.alice().await?;
    let c = env.web_client("openid orders:read data:read").await?;
    let mut b = env.browser();
    // Consent for the default API (openid only), then silently again for it.
    b.sign_in_for_code(&c.0, "openid").await?;
    let again = b.authorize(&authz_query(&c.0, Some(CB), "openid", "s")).await?;
    assert!(again.location_param("code").is_some(), "remembered: {} {}", again.status, again.html);
    // The same scope for the orders API: a resource the user never allowed this client.
    let orders = format!("{}&resource=https%3A%2F%2Forders.test", authz_query(&c.0, Some(CB), "openid", "s"));
    let p = b.authorize(&orders).await?;
    assert_eq!(p.status, 200, "the consent page, not a code: {:?}", p.location());
    assert!(p.html.contains("Orders API"), "it names the new resource server: {}", p.html);
    let none = b.authorize(&format!("{orders}&prompt=none")).await?;
    assert_eq!(none.location_param("error").as_deref(), Some("consent_required"));
    // Once allowed, it is remembered too.
    let done = b.consent(&p, "allow").await?;
    assert!(done.location_param("code").is_some(), "{}", done.html);
    let silent = b.authorize(&orders).await?;
    assert!(silent.location_param("code").is_some(), "remembered now: {} {}", silent.status, silent.html);
    Ok(())
}
