//! Interoperability: the `oauth2` crate (ramosbugs/oauth2-rs), used as any Rust client
//! would, runs the code flow with PKCE and a refresh against the local server, with no
//! special cases. Only the user's part (the login form) is played by the test.
use oauth_tests::harness::{CB, ISSUER, PASSWORD, Page, TestEnv};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl, RefreshToken, Scope,
    TokenResponse, TokenUrl,
};

/// The oauth2 crate's HTTP client, implemented with reqwest (any client library works).
async fn send(http: reqwest::Client, req: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, std::io::Error> {
    let (parts, body) = req.into_parts();
    let resp = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(std::io::Error::other)?;
    let mut out = http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    out.body(resp.bytes().await.map_err(std::io::Error::other)?.to_vec()).map_err(std::io::Error::other)
}

#[tokio::test]
async fn the_oauth2_crate_completes_the_code_flow_with_pkce_and_refreshes() -> anyhow::Result<()> {
    // Arrange: a user and a confidential client registered through the API.
    let env = TestEnv::new().await?;
    env.alice().await?;
    let (id, secret) = env.web_client("openid offline_access data:read").await?;
    let client = BasicClient::new(ClientId::new(id))
        .set_client_secret(ClientSecret::new(secret))
        .set_auth_uri(AuthUrl::new(env.url("/oauth/authorize"))?)
        .set_token_uri(TokenUrl::new(env.url("/oauth/token"))?)
        .set_redirect_uri(RedirectUrl::new(CB.to_owned())?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("offline_access".into()))
        .add_scope(Scope::new("data:read".into()))
        .set_pkce_challenge(challenge)
        .url();
    // Act: the user logs in on the page the library's URL leads to.
    let query = auth_url.query().unwrap_or_default().to_owned();
    let page: Page = env.authorize(&query).await?;
    assert_eq!(page.status, 200, "{}", page.html);
    let done = env.submit(&page, "alice", PASSWORD, "allow").await?;
    assert_eq!(done.status, 303);
    assert_eq!(done.location_param("state").as_deref(), Some(state.secret().as_str()));
    assert_eq!(done.location_param("iss").as_deref(), Some(ISSUER));
    let code = done.location_param("code").unwrap_or_default();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let http_client = |req| send(http.clone(), req);
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http_client)
        .await?;
    // Assert: the library parsed a standard response, and the token works.
    assert_eq!(tokens.token_type(), &oauth2::basic::BasicTokenType::Bearer);
    assert_eq!(tokens.expires_in(), Some(std::time::Duration::from_secs(900)));
    let scopes: Vec<String> = tokens.scopes().map(|s| s.iter().map(|s| s.to_string()).collect()).unwrap_or_default();
    assert_eq!(scopes, ["openid", "offline_access", "data:read"]);
    assert_eq!(env.get_bearer("/api/data", tokens.access_token().secret()).await?.status(), 200);
    let refresh = tokens.refresh_token().ok_or_else(|| anyhow::anyhow!("no refresh token"))?;
    let refreshed =
        client.exchange_refresh_token(&RefreshToken::new(refresh.secret().clone())).request_async(&http_client).await?;
    assert_ne!(refreshed.refresh_token().map(|t| t.secret()), Some(refresh.secret()), "rotated");
    assert_eq!(env.get_bearer("/api/data", refreshed.access_token().secret()).await?.status(), 200);
    // The library reports the server's errors as RFC 6749 errors.
    let err =
        client.exchange_refresh_token(&RefreshToken::new(refresh.secret().clone())).request_async(&http_client).await;
    match err {
        Err(oauth2::RequestTokenError::ServerResponse(e)) => {
            assert_eq!(e.error(), &oauth2::basic::BasicErrorResponseType::InvalidGrant)
        }
        other => anyhow::bail!("expected invalid_grant, got {other:?}"),
    }
    Ok(())
}
