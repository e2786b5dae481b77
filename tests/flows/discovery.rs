//! Discovery: RFC 8414 metadata at both paths, the JWKS, and `GET /`.
use oauth_tests::harness::{ISSUER, TestEnv};
use serde_json::{Value, json};

#[tokio::test]
async fn metadata_is_served_at_both_paths_with_the_configured_issuer() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let a = env
        .http
        .get(env.url("/.well-known/oauth-authorization-server"))
        .header("host", "evil.test")
        .header("x-forwarded-host", "evil.test")
        .send()
        .await?;
    assert_eq!(a.status(), 200);
    assert_eq!(a.headers()["content-type"], "application/json");
    let a: Value = a.json().await?;
    let b: Value = env.http.get(env.url("/.well-known/openid-configuration")).send().await?.json().await?;
    assert_eq!(a, b);
    assert_eq!(a["issuer"], ISSUER);
    for (k, path) in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("jwks_uri", "/.well-known/jwks.json"),
        ("registration_endpoint", "/register_client"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("introspection_endpoint", "/oauth/introspect"),
        ("userinfo_endpoint", "/oauth/userinfo"),
    ] {
        assert_eq!(a[k], format!("{ISSUER}{path}"), "{k}");
    }
    assert_eq!(a["response_types_supported"], json!(["code"]));
    assert_eq!(a["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(a["authorization_response_iss_parameter_supported"], true);
    assert_eq!(a["subject_types_supported"], json!(["public"]));
    assert_eq!(
        a["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert!(a["id_token_signing_alg_values_supported"].as_array().is_some_and(|v| v.contains(&json!("RS256"))));
    let grants = a["grant_types_supported"].as_array().cloned().unwrap_or_default();
    assert!(grants.contains(&json!("client_credentials")));
    assert!(!grants.contains(&json!("password")) && !grants.contains(&json!("implicit")));
    let scopes = a["scopes_supported"].as_array().cloned().unwrap_or_default();
    for s in ["openid", "profile", "email", "offline_access", "data:read", "data:write"] {
        assert!(scopes.contains(&json!(s)), "{s}");
    }
    Ok(())
}

#[tokio::test]
async fn jwks_has_public_parts_only_unique_kids_and_a_bounded_cache() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let r = env.http.get(env.url("/.well-known/jwks.json")).send().await?;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    let jwks: Value = r.json().await?;
    let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
    assert!(keys.len() >= 2);
    let mut kids = std::collections::HashSet::new();
    for k in &keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(k.get(private).is_none(), "{private} in {k}");
        }
        assert_eq!(k["use"], "sig");
        assert!(k["alg"].is_string());
        assert!(kids.insert(k["kid"].as_str().unwrap_or_default().to_owned()), "duplicate kid");
        if k["kty"] == "RSA" {
            use base64::Engine;
            let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(k["n"].as_str().unwrap_or_default())?;
            assert!(n.len() * 8 >= 2048);
        }
    }
    assert!(keys.iter().any(|k| k["alg"] == "ES256") && keys.iter().any(|k| k["alg"] == "RS256"));
    Ok(())
}

#[tokio::test]
async fn the_root_welcomes_and_points_at_the_metadata() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let b: Value = env.http.get(env.url("/")).send().await?.json().await?;
    assert_eq!(
        b,
        json!({"message": "Welcome to the Secure API!", "issuer": ISSUER,
               "metadata": format!("{ISSUER}/.well-known/oauth-authorization-server"),
               "account": format!("{ISSUER}/account"), "device": format!("{ISSUER}/device")})
    );
    Ok(())
}

#[tokio::test]
async fn the_openapi_description_is_served() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let r = env.http.get(env.url("/openapi.yaml")).send().await?;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/yaml");
    let text = r.text().await?;
    assert!(text.starts_with("openapi: 3.1") || text.contains("\nopenapi: 3.1"), "{}", &text[..text.len().min(80)]);
    for path in ["/oauth/token:", "/oauth/authorize:", "/api/data:", "/.well-known/jwks.json:"] {
        assert!(text.contains(path), "{path}");
    }
    Ok(())
}
