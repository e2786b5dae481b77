//! `POST /oauth/revoke` (RFC 7009) and `POST /oauth/introspect` (RFC 7662).
use oauth_tests::harness::{ISSUER, TestEnv, str_field};
use serde_json::{Value, json};

async fn introspect(env: &TestEnv, id: &str, secret: &str, token: &str) -> anyhow::Result<Value> {
    let r = env.post_form_basic("/oauth/introspect", id, secret, &[("token", token)]).await?;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    Ok(r.json().await?)
}

#[tokio::test]
async fn an_active_token_introspects_with_its_claims() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read").await?;
    let token = env.cc_token(&id, &secret, None).await?;
    let body = introspect(&env, &id, &secret, &token).await?;
    assert_eq!(body["active"], true);
    assert_eq!(body["scope"], "data:read");
    assert_eq!(body["client_id"], id.as_str());
    assert_eq!(body["sub"], id.as_str());
    assert_eq!(body["iss"], ISSUER);
    assert_eq!(body["aud"], format!("{ISSUER}/api"));
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["exp"].as_i64().is_some() && body["iat"].as_i64().is_some());
    assert!(body.get("username").is_none(), "client tokens have no username");
    Ok(())
}

#[tokio::test]
async fn inactive_tokens_are_exactly_active_false() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read").await?;
    let (other_id, other_secret) = env.service_client("data:read").await?;
    let token = env.cc_token(&id, &secret, None).await?;
    let cases = [
        ("garbage", "garbage", &id, &secret),
        ("jwt-shaped garbage", "a.b.c", &id, &secret),
        ("another client's token", token.as_str(), &other_id, &other_secret),
    ];
    for (name, t, cid, cs) in cases {
        assert_eq!(introspect(&env, cid, cs, t).await?, json!({"active": false}), "{name}");
    }
    // Expired: move the clock past exp.
    env.clock.advance(901);
    assert_eq!(introspect(&env, &id, &secret, &token).await?, json!({"active": false}), "expired");
    Ok(())
}

#[tokio::test]
async fn introspection_and_revocation_need_client_authentication() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read").await?;
    let token = env.cc_token(&id, &secret, None).await?;
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        let r = env.http.post(env.url(path)).form(&[("token", token.as_str())]).send().await?;
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(r.json::<Value>().await?["error"], "invalid_client", "{path}");
        let r = env.post_form_basic(path, &id, "wrong", &[("token", &token)]).await?;
        assert_eq!(r.status(), 401, "{path}");
        let r = env.post_form_basic(path, &id, &secret, &[]).await?;
        assert_eq!(r.status(), 400, "{path} without token");
        assert_eq!(r.json::<Value>().await?["error"], "invalid_request", "{path}");
    }
    // Nothing was revoked by the failed attempts.
    assert_eq!(introspect(&env, &id, &secret, &token).await?["active"], true);
    Ok(())
}

#[tokio::test]
async fn a_revoked_access_token_is_inactive_and_refused_by_the_api() -> anyhow::Result<()> {
    // Arrange
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read").await?;
    let token = env.cc_token(&id, &secret, None).await?;
    assert_eq!(env.get_bearer("/api/data", &token).await?.status(), 200);
    // Act
    let r = env
        .post_form_basic("/oauth/revoke", &id, &secret, &[("token", &token), ("token_type_hint", "refresh_token")])
        .await?;
    // Assert
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.text().await?, "");
    assert_eq!(introspect(&env, &id, &secret, &token).await?, json!({"active": false}));
    let r = env.get_bearer("/api/data", &token).await?;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\", resource_metadata=\"https://as.test/.well-known/oauth-protected-resource/api\""
    );
    // Revoking again is still 200.
    assert_eq!(env.post_form_basic("/oauth/revoke", &id, &secret, &[("token", &token)]).await?.status(), 200);
    Ok(())
}

/// Revoking a refresh token revokes its family, and an access token of that family already
/// in the verified-token cache is refused from then on, at the API, userinfo, introspection
/// and the authorizer (a cached verification never skips the family check).
#[tokio::test]
async fn a_cached_access_token_is_refused_once_its_family_is_revoked() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let scope = "openid offline_access data:read";
    let (id, secret) = env.web_client(scope).await?;
    let code = env.code_for(&id, oauth_tests::harness::CB, scope).await?;
    let (status, body) =
        env.exchange(&id, &secret, &code, oauth_tests::harness::VERIFIER, Some(oauth_tests::harness::CB)).await?;
    assert_eq!(status, 200, "{body}");
    let at = body["access_token"].as_str().unwrap_or_default().to_owned();
    let rt = body["refresh_token"].as_str().unwrap_or_default().to_owned();
    let rules = oauth_core::lambda::authorizer::ScopeRules::parse("GET /api/data=data:read")?;
    let event: Value = serde_json::from_str(
        &include_str!("../../events/authorizer-v2-valid.json").replace("REPLACE_ACCESS_TOKEN", &at),
    )?;
    let authorizer = || async {
        let answer = oauth_core::lambda::authorizer::handle_event(&env.app, &rules, event.clone()).await;
        answer.map_err(|e| anyhow::anyhow!("{e}")).map(|a| a["isAuthorized"].clone())
    };
    assert_eq!(env.get_bearer("/api/data", &at).await?.status(), 200, "now in the cache");
    assert_eq!(authorizer().await?, true);
    let r = env.post_form_basic("/oauth/revoke", &id, &secret, &[("token", &rt)]).await?;
    assert_eq!(r.status(), 200);
    assert_eq!(env.get_bearer("/api/data", &at).await?.status(), 401);
    assert_eq!(env.get_bearer("/oauth/userinfo", &at).await?.status(), 401);
    assert_eq!(introspect(&env, &id, &secret, &at).await?, json!({"active": false}));
    assert_eq!(authorizer().await?, false);
    Ok(())
}

#[tokio::test]
async fn revoke_is_200_for_unknown_tokens_and_leaves_other_clients_tokens_alone() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read").await?;
    let (other_id, other_secret) = env.service_client("data:read").await?;
    let token = env.cc_token(&id, &secret, None).await?;
    for t in ["garbage", "a.b.c", &"x".repeat(9000)] {
        assert_eq!(env.post_form_basic("/oauth/revoke", &id, &secret, &[("token", t)]).await?.status(), 200);
    }
    let r = env.post_form_basic("/oauth/revoke", &other_id, &other_secret, &[("token", &token)]).await?;
    assert_eq!(r.status(), 200);
    assert_eq!(introspect(&env, &id, &secret, &token).await?["active"], true);
    assert_eq!(env.get_bearer("/api/data", &token).await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn user_tokens_introspect_with_username() -> anyhow::Result<()> {
    // A user token signed with the server's key (the code flow arrives later).
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read").await?;
    let user = env.register_user("alice", "correct horse battery staple").await?;
    let sub = str_field(&user, "sub")?;
    let header = jsonwebtoken::Header {
        typ: Some("at+jwt".into()),
        kid: Some(env.kid(oauth_core::jwt::SigningAlg::Es256)?),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256)
    };
    let token = env.sign_with_server_key(
        oauth_core::jwt::SigningAlg::Es256,
        header,
        &env.valid_claims(&sub, &id, "data:read"),
    )?;
    let body = introspect(&env, &id, &secret, &token).await?;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["username"], "alice");
    assert_eq!(body["sub"], sub.as_str());
    Ok(())
}
