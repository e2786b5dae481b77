//! `grant_type=refresh_token` (docs/SECURITY.md section C, R3): rotation, reuse, the grace
//! window, narrowing, binding to the client, expiry, revocation of the family.
use super::authorization_code::{FULL, setup, tok};
use oauth_tests::harness::{CB, TestEnv, VERIFIER};
use serde_json::{Value, json};

async fn tokens(env: &TestEnv, id: &str, secret: &str, scope: &str) -> anyhow::Result<(String, String)> {
    let code = env.code_for(id, CB, scope).await?;
    let (status, body) = env.exchange(id, secret, &code, VERIFIER, Some(CB)).await?;
    anyhow::ensure!(status == 200, "{body}");
    Ok((tok(&body, "access_token"), tok(&body, "refresh_token")))
}

#[tokio::test]
async fn refresh_rotates_and_reuse_after_the_grace_window_revokes_the_family() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = setup(&env).await?;
    let (_, rt1) = tokens(&env, &id, &secret, FULL).await?;
    let (status, body) = env.refresh(&id, &secret, &rt1, None).await?;
    assert_eq!(status, 200);
    assert!(body.get("id_token").is_none());
    let (at2, rt2) = (tok(&body, "access_token"), tok(&body, "refresh_token"));
    assert_ne!(rt1, rt2);
    assert_eq!(env.introspect(&id, &secret, &rt1).await?["active"], false, "rotated token is inactive");
    assert_eq!(env.introspect(&id, &secret, &rt2).await?["token_type"], "refresh_token");
    // Within the grace window: refused, family intact.
    let (status, _) = env.refresh(&id, &secret, &rt1, None).await?;
    assert_eq!(status, 400);
    assert_eq!(env.introspect(&id, &secret, &at2).await?["active"], true);
    // After it: the family is revoked, refresh and access tokens alike (docs/SECURITY.md C1).
    env.clock.advance(10);
    let (status, body) = env.refresh(&id, &secret, &rt1, None).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _) = env.refresh(&id, &secret, &rt2, None).await?;
    assert_eq!(status, 400);
    assert_eq!(env.introspect(&id, &secret, &at2).await?["active"], false);
    assert_eq!(env.get_bearer("/api/data", &at2).await?.status(), 401);
    Ok(())
}

/// The grace window includes its last second: a rotated token presented exactly
/// `REFRESH_REUSE_GRACE_SECONDS` after its rotation is refused without harm; one second
/// later it revokes the family.
#[tokio::test]
async fn the_refresh_grace_window_ends_exactly_at_its_configured_length() -> anyhow::Result<()> {
    let env = TestEnv::with_vars(&[("REFRESH_REUSE_GRACE_SECONDS", "7")]).await?;
    let (id, secret) = setup(&env).await?;
    let (_, rt1) = tokens(&env, &id, &secret, FULL).await?;
    let (status, body) = env.refresh(&id, &secret, &rt1, None).await?;
    assert_eq!(status, 200, "{body}");
    let (at2, rt2) = (tok(&body, "access_token"), tok(&body, "refresh_token"));
    env.clock.advance(7);
    let (status, body) = env.refresh(&id, &secret, &rt1, None).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(env.introspect(&id, &secret, &at2).await?["active"], true, "at 7 s: inside the window");
    assert_eq!(env.introspect(&id, &secret, &rt2).await?["active"], true, "at 7 s: inside the window");
    env.clock.advance(1);
    let (status, _) = env.refresh(&id, &secret, &rt1, None).await?;
    assert_eq!(status, 400);
    assert_eq!(env.introspect(&id, &secret, &at2).await?["active"], false, "at 8 s: the family is revoked");
    assert_eq!(env.refresh(&id, &secret, &rt2, None).await?.0, 400);
    Ok(())
}

/// An access token minted by a refresh just before the family's absolute expiry outlives
/// the family: its revocation must too (until that token's expiry plus the leeway).
#[tokio::test]
async fn a_revoked_familys_last_access_token_stays_revoked_past_the_familys_end() -> anyhow::Result<()> {
    let env = TestEnv::with_vars(&[
        ("REFRESH_ABSOLUTE_SECONDS", "3600"),
        ("REFRESH_IDLE_SECONDS", "3600"),
        ("ACCESS_TOKEN_TTL_SECONDS", "900"),
    ])
    .await?;
    let (id, secret) = setup(&env).await?;
    let (_, rt1) = tokens(&env, &id, &secret, FULL).await?;
    env.clock.advance(3500);
    let (status, body) = env.refresh(&id, &secret, &rt1, None).await?;
    assert_eq!(status, 200, "{body}");
    let at2 = tok(&body, "access_token");
    env.clock.advance(10);
    let (status, _) = env.refresh(&id, &secret, &rt1, None).await?;
    assert_eq!(status, 400, "reuse after the grace window: the family is revoked");
    // Past the family's end (3600), inside the token's life (3500 + 900).
    env.clock.advance(200);
    assert_eq!(env.get_bearer("/api/data", &at2).await?.status(), 401);
    assert_eq!(env.introspect(&id, &secret, &at2).await?["active"], false);
    Ok(())
}

#[tokio::test]
async fn two_concurrent_refreshes_have_one_winner_and_the_family_survives() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = setup(&env).await?;
    for _ in 0..10 {
        let (_, rt) = tokens(&env, &id, &secret, FULL).await?;
        let (a, b) = tokio::join!(env.refresh(&id, &secret, &rt, None), env.refresh(&id, &secret, &rt, None));
        let results = [a?, b?];
        let winners: Vec<&Value> = results.iter().filter(|(s, _)| *s == 200).map(|(_, b)| b).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        assert!(results.iter().any(|(s, b)| *s == 400 && b["error"] == "invalid_grant"));
        let new_rt = winners.first().map(|w| tok(w, "refresh_token")).unwrap_or_default();
        let (status, _) = env.refresh(&id, &secret, &new_rt, None).await?;
        assert_eq!(status, 200, "the family must survive a race");
    }
    Ok(())
}

#[tokio::test]
async fn refresh_may_narrow_scope_but_never_widen_it() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = setup(&env).await?;
    let (_, rt) = tokens(&env, &id, &secret, "openid offline_access").await?;
    let (status, body) = env.refresh(&id, &secret, &rt, Some("openid offline_access data:read")).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
    let (status, body) = env.refresh(&id, &secret, &rt, Some("admin")).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
    // The refused attempts did not rotate the token.
    let (status, body) = env.refresh(&id, &secret, &rt, Some("offline_access")).await?;
    assert_eq!(status, 200);
    assert_eq!(body["scope"], "offline_access");
    let (status, body) = env.refresh(&id, &secret, &tok(&body, "refresh_token"), None).await?;
    assert_eq!(status, 200);
    assert_eq!(body["scope"], "openid offline_access", "the new refresh token keeps the original scope");
    Ok(())
}

#[tokio::test]
async fn a_refresh_token_is_bound_to_its_client() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = setup(&env).await?;
    let (other, other_secret) = env.web_client(FULL).await?;
    let (_, rt) = tokens(&env, &id, &secret, FULL).await?;
    let (status, body) = env.refresh(&other, &other_secret, &rt, None).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(env.introspect(&other, &other_secret, &rt).await?, json!({"active": false}));
    let r = env.post_form_basic("/oauth/revoke", &other, &other_secret, &[("token", &rt)]).await?;
    assert_eq!(r.status(), 200);
    // Not a reuse and not revoked: the owner still refreshes (docs/SECURITY.md C3, D1).
    assert_eq!(env.refresh(&id, &secret, &rt, None).await?.0, 200);
    Ok(())
}

#[tokio::test]
async fn refresh_tokens_expire_when_idle_and_at_the_absolute_limit() -> anyhow::Result<()> {
    let env = TestEnv::with_vars(&[("REFRESH_IDLE_SECONDS", "3600"), ("REFRESH_ABSOLUTE_SECONDS", "7200")]).await?;
    let (id, secret) = setup(&env).await?;
    let (_, rt) = tokens(&env, &id, &secret, FULL).await?;
    env.clock.advance(3601);
    assert_eq!(env.refresh(&id, &secret, &rt, None).await?.0, 400, "idle");
    let (_, mut rt) = tokens(&env, &id, &secret, FULL).await?;
    for _ in 0..3 {
        env.clock.advance(1800);
        let (status, body) = env.refresh(&id, &secret, &rt, None).await?;
        assert_eq!(status, 200);
        rt = tok(&body, "refresh_token");
    }
    env.clock.advance(1801); // 7201 s after login, although used 30 min ago
    let (status, body) = env.refresh(&id, &secret, &rt, None).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "absolute");
    Ok(())
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_family() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = setup(&env).await?;
    let (at, rt) = tokens(&env, &id, &secret, FULL).await?;
    let r = env
        .post_form_basic("/oauth/revoke", &id, &secret, &[("token", &rt), ("token_type_hint", "access_token")])
        .await?;
    assert_eq!(r.status(), 200);
    assert_eq!(env.refresh(&id, &secret, &rt, None).await?.0, 400);
    assert_eq!(env.introspect(&id, &secret, &at).await?, json!({"active": false}));
    assert_eq!(env.get_bearer("/api/data", &at).await?.status(), 401);
    // Twice is fine.
    assert_eq!(env.post_form_basic("/oauth/revoke", &id, &secret, &[("token", &rt)]).await?.status(), 200);
    Ok(())
}
