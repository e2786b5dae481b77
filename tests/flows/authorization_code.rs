//! `grant_type=authorization_code` (docs/SECURITY.md sections B and D, R1): binding, single
//! use, replay revocation, PKCE, races.
use oauth_tests::harness::{CB, PASSWORD, TestEnv, VERIFIER, str_field};
use serde_json::{Value, json};

/// Every scope a web client may hold (the refresh flows use it too).
pub(crate) const FULL: &str = "openid profile email offline_access data:read";

/// alice, and a confidential web client with [`FULL`]: its id and secret.
pub(crate) async fn setup(env: &TestEnv) -> anyhow::Result<(String, String)> {
    env.alice().await?;
    env.web_client(FULL).await
}

/// A string field of a token response, or "" when it is missing.
pub(crate) fn tok(v: &Value, name: &str) -> String {
    v.get(name).and_then(Value::as_str).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_code_exchange_returns_access_refresh_and_id_tokens_with_no_store() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = setup(&env).await?;
    let code = env.code_for(&id, CB, FULL).await?;
    let r = env
        .post_form_basic(
            "/oauth/token",
            &id,
            &secret,
            &[("grant_type", "authorization_code"), ("code", &code), ("code_verifier", VERIFIER), ("redirect_uri", CB)],
        )
        .await?;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    let body: Value = r.json().await?;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], FULL);
    for k in ["access_token", "refresh_token", "id_token"] {
        assert!(body[k].as_str().is_some_and(|t| t.len() > 40), "{k}: {body}");
    }
    assert_eq!(env.get_bearer("/api/data", &tok(&body, "access_token")).await?.status(), 200);
    Ok(())
}

/// Without `offline_access` the refresh token is the sign-in session's (it ends with it:
/// `sessions.rs`); without the refresh grant there is none.
#[tokio::test]
async fn a_refresh_token_without_offline_access_is_the_sessions_and_none_without_the_refresh_grant()
-> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = setup(&env).await?;
    let code = env.code_for(&id, CB, "openid data:read").await?;
    let (status, body) = env.exchange(&id, &secret, &code, VERIFIER, Some(CB)).await?;
    assert_eq!(status, 200);
    let rt = tok(&body, "refresh_token");
    let hash = oauth_core::crypto::sha256_b64(&rt);
    let record = env.app.tokens.refresh(&hash).await?.ok_or_else(|| anyhow::anyhow!("not stored"))?;
    assert!(record.session.is_some(), "bound to the sign-in session: {record:?}");
    let session_end = env.app.sessions.sessions_of(&record.sub, oauth_core::clock::Clock::now(&*env.clock)).await?;
    assert_eq!(session_end.first().map(|s| s.expires_at), Some(record.family_expires_at), "ends with the session");
    let (status, _) = env.refresh(&id, &secret, &rt, None).await?;
    assert_eq!(status, 200, "it refreshes while the session lives");
    let c = env
        .register_client(json!({"redirect_uris": [CB], "grant_types": ["authorization_code"], "scope": FULL}))
        .await?;
    let (cid, cs) = (str_field(&c, "client_id")?, str_field(&c, "client_secret")?);
    let code = env.code_for(&cid, CB, FULL).await?;
    let (_, body) = env.exchange(&cid, &cs, &code, VERIFIER, Some(CB)).await?;
    assert!(body.get("refresh_token").is_none(), "{body}");
    Ok(())
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_what_it_produced() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = setup(&env).await?;
    let code = env.code_for(&id, CB, FULL).await?;
    let (status, first) = env.exchange(&id, &secret, &code, VERIFIER, Some(CB)).await?;
    assert_eq!(status, 200);
    let (at, rt) = (tok(&first, "access_token"), tok(&first, "refresh_token"));
    // An invalid replay (wrong verifier, wrong client secret) changes nothing (docs/SECURITY.md B4).
    let (status, body) = env.exchange(&id, &secret, &code, &"x".repeat(43), Some(CB)).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _) = env.exchange(&id, "wrong", &code, VERIFIER, Some(CB)).await?;
    assert_eq!(status, 401);
    assert_eq!(env.introspect(&id, &secret, &at).await?["active"], true);
    // The valid replay: invalid_grant, and everything from the first redemption is revoked (docs/SECURITY.md B3).
    let (status, body) = env.exchange(&id, &secret, &code, VERIFIER, Some(CB)).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(env.introspect(&id, &secret, &at).await?, json!({"active": false}));
    assert_eq!(env.introspect(&id, &secret, &rt).await?, json!({"active": false}));
    assert_eq!(env.get_bearer("/api/data", &at).await?.status(), 401);
    assert_eq!(env.get_bearer("/oauth/userinfo", &at).await?.status(), 401);
    let (status, body) = env.refresh(&id, &secret, &rt, None).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    Ok(())
}

/// The "used" check comes before the expiry check, and a used code outlives its 60 s: a
/// valid replay minutes later, after the store's housekeeping (DynamoDB's TTL deletes an
/// item any time after its `expires_at`), still revokes what the code issued.
#[tokio::test]
async fn a_valid_replay_after_the_codes_lifetime_still_revokes_what_it_issued() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = setup(&env).await?;
    let code = env.code_for(&id, CB, FULL).await?;
    let (status, first) = env.exchange(&id, &secret, &code, VERIFIER, Some(CB)).await?;
    assert_eq!(status, 200, "{first}");
    let (at, rt) = (tok(&first, "access_token"), tok(&first, "refresh_token"));
    env.clock.advance(oauth_core::oauth::authorize::CODE_TTL_SECONDS + 60);
    env.expire_records().await?;
    assert_eq!(env.introspect(&id, &secret, &at).await?["active"], true, "nothing revoked yet");
    let (status, body) = env.exchange(&id, &secret, &code, VERIFIER, Some(CB)).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(env.introspect(&id, &secret, &at).await?, json!({"active": false}), "the replay revoked it");
    assert_eq!(env.get_bearer("/api/data", &at).await?.status(), 401);
    let (status, body) = env.refresh(&id, &secret, &rt, None).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    // An unused code that expired is just expired: nothing to revoke, the same answer.
    let unused = env.code_for(&id, CB, FULL).await?;
    env.clock.advance(oauth_core::oauth::authorize::CODE_TTL_SECONDS + 1);
    let (status, body) = env.exchange(&id, &secret, &unused, VERIFIER, Some(CB)).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    Ok(())
}

#[tokio::test]
async fn twenty_concurrent_redemptions_of_one_code_have_exactly_one_winner() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = setup(&env).await?;
    let code = env.code_for(&id, CB, FULL).await?;
    let attempts = (0..20).map(|_| env.exchange(&id, &secret, &code, VERIFIER, Some(CB)));
    let results = futures::future::join_all(attempts).await;
    let mut winners = Vec::new();
    for r in results {
        let (status, body) = r?;
        match status {
            200 => winners.push(body),
            400 => assert_eq!(body["error"], "invalid_grant"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 1);
    // The losers were valid replays, so the winner's tokens are revoked (docs/SECURITY.md R1).
    let at = winners.first().map(|w| tok(w, "access_token")).unwrap_or_default();
    assert_eq!(env.introspect(&id, &secret, &at).await?["active"], false);
    Ok(())
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_redirect_uri_verifier_and_lifetime() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = setup(&env).await?;
    let (other_id, other_secret) = env.web_client(FULL).await?;
    let (svc, svc_secret) = env.service_client("data:read").await?;
    let code = env.code_for(&id, CB, FULL).await?;
    let bad: Vec<(&str, (u16, Value))> = vec![
        ("another client", env.exchange(&other_id, &other_secret, &code, VERIFIER, Some(CB)).await?),
        ("other redirect_uri", env.exchange(&id, &secret, &code, VERIFIER, Some("https://client.example/cb2")).await?),
        ("redirect_uri omitted though sent", env.exchange(&id, &secret, &code, VERIFIER, None).await?),
        (
            "wrong verifier",
            env.exchange(&id, &secret, &code, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK", Some(CB)).await?,
        ),
        ("42-char verifier", env.exchange(&id, &secret, &code, &VERIFIER[..42], Some(CB)).await?),
        ("129-char verifier", env.exchange(&id, &secret, &code, &"a".repeat(129), Some(CB)).await?),
        ("verifier with %", env.exchange(&id, &secret, &code, &format!("{}%", &VERIFIER[..42]), Some(CB)).await?),
        ("no verifier", env.exchange(&id, &secret, &code, "", Some(CB)).await?),
        ("unknown code", env.exchange(&id, &secret, "nope", VERIFIER, Some(CB)).await?),
    ];
    for (name, (status, body)) in bad {
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{name}: {body}");
    }
    let (status, body) = env.exchange(&svc, &svc_secret, &code, VERIFIER, Some(CB)).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")), "client without the grant");
    let r = env
        .post_form_basic(
            "/oauth/token",
            &id,
            &secret,
            &[("grant_type", "authorization_code"), ("code_verifier", VERIFIER)],
        )
        .await?;
    assert_eq!(r.json::<Value>().await?["error"], "invalid_request", "no code");
    // None of those consumed the code: the rightful redemption still works (docs/SECURITY.md B4, B5).
    let (status, _) = env.exchange(&id, &secret, &code, VERIFIER, Some(CB)).await?;
    assert_eq!(status, 200);
    // Expiry is checked by the application, whatever the store still holds (docs/SECURITY.md B2, R9).
    let code = env.code_for(&id, CB, FULL).await?;
    env.clock.advance(61);
    let (status, body) = env.exchange(&id, &secret, &code, VERIFIER, Some(CB)).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    Ok(())
}

#[tokio::test]
async fn redirect_uri_may_be_omitted_at_the_token_endpoint_when_it_was_omitted_at_authorize() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = setup(&env).await?;
    let page = env.authorize(&oauth_tests::harness::authz_query(&id, None, FULL, "s")).await?;
    let done = env.submit(&page, "alice", PASSWORD, "allow").await?;
    let code = done.location_param("code").unwrap_or_default();
    let (status, body) = env.exchange(&id, &secret, &code, VERIFIER, None).await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

#[tokio::test]
async fn a_code_without_a_challenge_refuses_any_verifier() -> anyhow::Result<()> {
    // White-box fixture (docs/SECURITY.md B8): a code stored with no PKCE challenge.
    let env = TestEnv::new().await?;
    let (id, secret) = setup(&env).await?;
    let code = "downgrade-code-0123456789abcdefghijklmnopqrstu";
    let now = oauth_core::clock::Clock::now(&*env.clock).unix_timestamp();
    env.app
        .codes
        .put_code(&oauth_core::domain::AuthCode {
            code_hash: oauth_core::crypto::sha256_b64(code),
            client_id: id.clone(),
            redirect_uri: CB.into(),
            redirect_uri_sent: true,
            code_challenge: String::new(),
            scope: oauth_core::domain::ScopeSet::parse("openid").map_err(anyhow::Error::msg)?,
            nonce: None,
            sub: "usr_x".into(),
            auth_time: now,
            family_id: "fam_x".into(),
            expires_at: now + 60,
            consumed_at: None,
            consumed_by: None,
            session: None,
            resources: Vec::new(),
            amr: None,
            dpop_jkt: None,
        })
        .await?;
    let (status, body) = env.exchange(&id, &secret, code, VERIFIER, Some(CB)).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    Ok(())
}

#[tokio::test]
async fn public_clients_use_pkce_and_get_rotating_refresh_tokens() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let c = env
        .register_client(
            json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none", "scope": FULL}),
        )
        .await?;
    let id = str_field(&c, "client_id")?;
    let code = env.code_for(&id, "http://127.0.0.1:8123/cb", FULL).await?;
    let form = |extra: Vec<(&'static str, String)>| {
        let mut f = vec![("client_id", id.clone())];
        f.extend(extra);
        f
    };
    let r = env
        .http
        .post(env.url("/oauth/token"))
        .form(&form(vec![
            ("grant_type", "authorization_code".into()),
            ("code", code),
            ("code_verifier", VERIFIER.into()),
            ("redirect_uri", "http://127.0.0.1:8123/cb".into()),
        ]))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await?;
    let rt = tok(&body, "refresh_token");
    let r = env
        .http
        .post(env.url("/oauth/token"))
        .form(&form(vec![("grant_type", "refresh_token".into()), ("refresh_token", rt.clone())]))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let next: Value = r.json().await?;
    assert_ne!(tok(&next, "refresh_token"), rt);
    // client_credentials stays closed to public clients.
    let r = env
        .http
        .post(env.url("/oauth/token"))
        .form(&form(vec![("grant_type", "client_credentials".into())]))
        .send()
        .await?;
    assert_eq!(r.json::<Value>().await?["error"], "unauthorized_client");
    Ok(())
}
