//! OpenID Connect: ID tokens verified against the published JWKS, and userinfo.
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use oauth_tests::harness::{CB, CHALLENGE, ISSUER, PASSWORD, TestEnv, VERIFIER, decode_unverified, str_field};
use serde_json::{Value, json};

async fn id_token_for(
    env: &TestEnv,
    id: &str,
    secret: &str,
    scope: &str,
    nonce: Option<&str>,
) -> anyhow::Result<Value> {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", id)
        .append_pair("redirect_uri", CB)
        .append_pair("scope", scope);
    q.append_pair("code_challenge", CHALLENGE).append_pair("code_challenge_method", "S256").append_pair("state", "s");
    if let Some(n) = nonce {
        q.append_pair("nonce", n);
    }
    let page = env.authorize(&q.finish()).await?;
    let done = env.submit(&page, "alice", PASSWORD, "allow").await?;
    let code = done.location_param("code").unwrap_or_default();
    let (status, body) = env.exchange(id, secret, &code, VERIFIER, Some(CB)).await?;
    anyhow::ensure!(status == 200, "{body}");
    Ok(body)
}

fn verify_with_jwks(jwks: &JwkSet, token: &str, audience: &str) -> anyhow::Result<Value> {
    let header = jsonwebtoken::decode_header(token)?;
    let kid = header.kid.ok_or_else(|| anyhow::anyhow!("no kid"))?;
    let jwk = jwks.find(&kid).ok_or_else(|| anyhow::anyhow!("kid not in JWKS"))?;
    let mut v = Validation::new(header.alg);
    v.set_audience(&[audience]);
    v.set_issuer(&[ISSUER]);
    v.validate_exp = false; // the server's clock is frozen; exp is checked separately
    Ok(jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, &v)?.claims)
}

#[tokio::test]
async fn id_tokens_are_rs256_by_default_and_carry_the_oidc_claims() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let sub = env.alice().await?;
    let (id, secret) = env.web_client("openid profile email data:read").await?;
    let body = id_token_for(&env, &id, &secret, "openid data:read", Some("n-0S6_WzA2Mj")).await?;
    let id_token = str_field(&body, "id_token")?;
    let (header, _) = decode_unverified(&id_token)?;
    assert_eq!(header["alg"], "RS256");
    let jwks: JwkSet = env.http.get(env.url("/.well-known/jwks.json")).send().await?.json().await?;
    let claims = verify_with_jwks(&jwks, &id_token, &id)?;
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], sub.as_str());
    assert_eq!(claims["aud"], id.as_str());
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    let (iat, exp, auth_time) = (claims["iat"].as_i64(), claims["exp"].as_i64(), claims["auth_time"].as_i64());
    assert!(iat.is_some() && exp > iat && auth_time.is_some_and(|a| a <= iat.unwrap_or_default()));
    assert_eq!(claims["at_hash"], oauth_core::jwt::at_hash(&str_field(&body, "access_token")?));
    // The access token verifies with the same JWKS, for the API audience.
    verify_with_jwks(&jwks, &str_field(&body, "access_token")?, &format!("{ISSUER}/api"))?;
    Ok(())
}

#[tokio::test]
async fn es256_id_tokens_for_clients_that_register_it_and_none_without_openid() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let c = env.register_client(json!({"redirect_uris": [CB], "id_token_signed_response_alg": "ES256"})).await?;
    let (id, secret) = (str_field(&c, "client_id")?, str_field(&c, "client_secret")?);
    let body = id_token_for(&env, &id, &secret, "openid", None).await?;
    let (header, claims) = decode_unverified(&str_field(&body, "id_token")?)?;
    assert_eq!(header["alg"], "ES256");
    assert!(claims.get("nonce").is_none());
    let body = id_token_for(&env, &id, &secret, "data:read", None).await?;
    assert!(body.get("id_token").is_none(), "{body}");
    Ok(())
}

#[tokio::test]
async fn userinfo_returns_claims_by_scope() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let r = env
        .http
        .post(env.url("/register"))
        .json(&json!({"username": "alice", "password": PASSWORD, "email": "alice@example.com"}))
        .send()
        .await?;
    let sub = str_field(&r.json::<Value>().await?, "sub")?;
    let (id, secret) = env.web_client("openid profile email data:read").await?;
    let cases = [
        ("openid profile email", json!({"sub": sub, "preferred_username": "alice", "email": "alice@example.com"})),
        ("openid profile", json!({"sub": sub, "preferred_username": "alice"})),
        ("openid", json!({"sub": sub})),
    ];
    for (scope, want) in cases {
        let body = id_token_for(&env, &id, &secret, scope, None).await?;
        let r = env.get_bearer("/oauth/userinfo", &str_field(&body, "access_token")?).await?;
        assert_eq!(r.status(), 200, "{scope}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.json::<Value>().await?, want, "{scope}");
    }
    let body = id_token_for(&env, &id, &secret, "data:read", None).await?;
    let r = env.get_bearer("/oauth/userinfo", &str_field(&body, "access_token")?).await?;
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer error=\"insufficient_scope\", resource_metadata=\"https://as.test/.well-known/oauth-protected-resource/api\", scope=\"openid\""
    );
    let r = env.http.get(env.url("/oauth/userinfo")).send().await?;
    assert_eq!(r.status(), 401);
    Ok(())
}
