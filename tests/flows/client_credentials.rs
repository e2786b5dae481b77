//! `POST /oauth/token` with `grant_type=client_credentials`, and its errors.
use oauth_tests::harness::{ISSUER, TestEnv, decode_unverified, str_field};
use serde_json::{Value, json};

#[tokio::test]
async fn client_credentials_with_basic_auth_issues_an_rfc9068_access_token() -> anyhow::Result<()> {
    // Arrange
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read data:write").await?;
    // Act
    let r = env.post_form_basic("/oauth/token", &id, &secret, &[("grant_type", "client_credentials")]).await?;
    // Assert
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await?;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "data:read data:write");
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none(), "{body}");
    let (header, claims) = decode_unverified(&str_field(&body, "access_token")?)?;
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    let jwks: Value = env.http.get(env.url("/.well-known/jwks.json")).send().await?.json().await?;
    assert!(jwks["keys"].as_array().is_some_and(|ks| ks.iter().any(|k| k["kid"] == header["kid"])), "kid not in JWKS");
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], format!("{ISSUER}/api"));
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["scope"], "data:read data:write");
    let (iat, exp) = (claims["iat"].as_i64().unwrap_or(0), claims["exp"].as_i64().unwrap_or(0));
    assert_eq!(exp - iat, 900);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 22));
    Ok(())
}

#[tokio::test]
async fn client_secret_post_works_for_clients_registered_with_it() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let c = env.register_client(json!({"grant_types": ["client_credentials"], "scope": "data:read", "token_endpoint_auth_method": "client_secret_post"})).await?;
    let (id, secret) = (str_field(&c, "client_id")?, str_field(&c, "client_secret")?);
    let r = env
        .http
        .post(env.url("/oauth/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret)])
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    // The same client may not switch to Basic.
    let r = env.post_form_basic("/oauth/token", &id, &secret, &[("grant_type", "client_credentials")]).await?;
    assert_eq!(r.status(), 401);
    Ok(())
}

#[tokio::test]
async fn scope_defaults_to_the_clients_non_user_scopes_and_subsets_are_honoured() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("openid profile data:read data:write").await?;
    let (_, claims) = decode_unverified(&env.cc_token(&id, &secret, None).await?)?;
    assert_eq!(claims["scope"], "data:read data:write");
    let (_, claims) = decode_unverified(&env.cc_token(&id, &secret, Some("data:read")).await?)?;
    assert_eq!(claims["scope"], "data:read");
    Ok(())
}

async fn token_error(env: &TestEnv, req: reqwest::RequestBuilder) -> anyhow::Result<(u16, String, Option<String>)> {
    let _ = env;
    let r = req.send().await?;
    let status = r.status().as_u16();
    let challenge = r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body: Value = r.json().await?;
    assert!(body["error_description"].as_str().is_some(), "{body}");
    Ok((status, str_field(&body, "error")?, challenge))
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc6749_5_2() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read").await?;
    let code_client = env.register_client(json!({"redirect_uris": ["https://client.example/cb"]})).await?;
    let (code_id, code_secret) = (str_field(&code_client, "client_id")?, str_field(&code_client, "client_secret")?);
    let public = env
        .register_client(json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
        .await?;
    let public_id = str_field(&public, "client_id")?;
    let url = env.url("/oauth/token");
    let cc = [("grant_type", "client_credentials")];
    let h = &env.http;
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str, Option<&str>)> = vec![
        ("no client authentication", h.post(&url).form(&cc), 401, "invalid_client", None),
        (
            "wrong secret",
            h.post(&url).basic_auth(&id, Some("wrong")).form(&cc),
            401,
            "invalid_client",
            Some("Basic realm=\"oauth\""),
        ),
        (
            "unknown client",
            h.post(&url).basic_auth("cl_nope", Some(&secret)).form(&cc),
            401,
            "invalid_client",
            Some("Basic realm=\"oauth\""),
        ),
        (
            "basic client via post",
            h.post(&url).form(&[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret)]),
            401,
            "invalid_client",
            None,
        ),
        (
            "confidential client without secret",
            h.post(&url).form(&[("grant_type", "client_credentials"), ("client_id", &id)]),
            401,
            "invalid_client",
            None,
        ),
        (
            "garbage authorization",
            h.post(&url).header("authorization", "Basic %%%garbage").form(&cc),
            401,
            "invalid_client",
            Some("Basic realm=\"oauth\""),
        ),
        (
            "bearer authorization",
            h.post(&url).header("authorization", "Bearer abc").form(&cc),
            401,
            "invalid_client",
            None,
        ),
        (
            "basic and post together",
            h.post(&url)
                .basic_auth(&id, Some(&secret))
                .form(&[("grant_type", "client_credentials"), ("client_secret", &secret)]),
            400,
            "invalid_request",
            None,
        ),
        (
            "repeated grant_type",
            h.post(&url)
                .basic_auth(&id, Some(&secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials&grant_type=client_credentials"),
            400,
            "invalid_request",
            None,
        ),
        (
            "repeated scope",
            h.post(&url)
                .basic_auth(&id, Some(&secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials&scope=data:read&scope=data:read"),
            400,
            "invalid_request",
            None,
        ),
        (
            "missing grant_type",
            h.post(&url).basic_auth(&id, Some(&secret)).form(&[("scope", "data:read")]),
            400,
            "invalid_request",
            None,
        ),
        (
            "json body",
            h.post(&url).basic_auth(&id, Some(&secret)).json(&json!({"grant_type": "client_credentials"})),
            400,
            "invalid_request",
            None,
        ),
        (
            "no content type",
            h.post(&url).basic_auth(&id, Some(&secret)).body("grant_type=client_credentials"),
            400,
            "invalid_request",
            None,
        ),
        (
            "password grant",
            h.post(&url).basic_auth(&id, Some(&secret)).form(&[
                ("grant_type", "password"),
                ("username", "a"),
                ("password", "b"),
            ]),
            400,
            "unsupported_grant_type",
            None,
        ),
        (
            "implicit grant",
            h.post(&url).basic_auth(&id, Some(&secret)).form(&[("grant_type", "implicit")]),
            400,
            "unsupported_grant_type",
            None,
        ),
        (
            "garbage grant",
            h.post(&url).basic_auth(&id, Some(&secret)).form(&[("grant_type", "\u{1}x")]),
            400,
            "unsupported_grant_type",
            None,
        ),
        (
            "unknown scope",
            h.post(&url)
                .basic_auth(&id, Some(&secret))
                .form(&[("grant_type", "client_credentials"), ("scope", "admin")]),
            400,
            "invalid_scope",
            None,
        ),
        (
            "scope beyond the client's",
            h.post(&url)
                .basic_auth(&id, Some(&secret))
                .form(&[("grant_type", "client_credentials"), ("scope", "data:write")]),
            400,
            "invalid_scope",
            None,
        ),
        (
            "user scope",
            h.post(&url)
                .basic_auth(&code_id, Some(&code_secret))
                .form(&[("grant_type", "client_credentials"), ("scope", "openid")]),
            400,
            "unauthorized_client",
            None,
        ),
        (
            "client without the grant",
            h.post(&url).basic_auth(&code_id, Some(&code_secret)).form(&cc),
            400,
            "unauthorized_client",
            None,
        ),
        (
            "public client",
            h.post(&url).form(&[("grant_type", "client_credentials"), ("client_id", &public_id)]),
            400,
            "unauthorized_client",
            None,
        ),
    ];
    for (name, req, status, code, challenge) in cases {
        let (got_status, got_code, got_challenge) = token_error(&env, req).await?;
        assert_eq!((got_status, got_code.as_str()), (status, code), "{name}");
        if let Some(c) = challenge {
            assert_eq!(got_challenge.as_deref(), Some(c), "{name}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn user_scopes_are_refused_for_client_credentials() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("openid data:read").await?;
    let r = env
        .post_form_basic(
            "/oauth/token",
            &id,
            &secret,
            &[("grant_type", "client_credentials"), ("scope", "openid data:read")],
        )
        .await?;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await?["error"], "invalid_scope");
    Ok(())
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_before_base64() -> anyhow::Result<()> {
    use base64::Engine;
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read").await?;
    // Percent-encoding characters that need none must still decode to the same values.
    let enc_id: String = id.chars().map(|c| if c == '_' { "%5F".to_owned() } else { c.to_string() }).collect();
    let enc_secret: String = secret.chars().map(|c| if c == '-' { "%2D".to_owned() } else { c.to_string() }).collect();
    let header =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{enc_id}:{enc_secret}")));
    let r = env
        .http
        .post(env.url("/oauth/token"))
        .header("authorization", header)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    Ok(())
}

#[tokio::test]
async fn get_on_the_token_endpoint_is_405_with_allow_post() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let r = env.http.get(env.url("/oauth/token?grant_type=client_credentials")).send().await?;
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    assert_eq!(r.json::<Value>().await?["error"], "invalid_request");
    Ok(())
}

#[tokio::test]
async fn configured_algorithms_sign_access_tokens() -> anyhow::Result<()> {
    for alg in ["RS256", "EdDSA"] {
        let env = TestEnv::with_vars(&[("ACCESS_TOKEN_ALG", alg)]).await?;
        let (id, secret) = env.service_client("data:read").await?;
        let token = env.cc_token(&id, &secret, None).await?;
        assert_eq!(decode_unverified(&token)?.0["alg"], alg);
        let r = env.get_bearer("/api/data", &token).await?;
        assert_eq!(r.status(), 200, "{alg}");
    }
    Ok(())
}
