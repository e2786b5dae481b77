//! Faults and call counts through the store wrapper (docs/SECURITY.md R2, R5, R6): a retried
//! write is not a replay, a failed transaction leaves the code redeemable, backend trouble is
//! a 503 with `server_error`, and the number of store calls per endpoint does not grow
//! silently. Runs on whichever backend the suite runs on (SQLite, or DynamoDB on moto).
use oauth_tests::faults::Fault;
use oauth_tests::harness::{CB, TestEnv, VERIFIER};
use serde_json::Value;
use std::collections::HashMap;

const FULL: &str = "openid offline_access data:read";

fn calls(pairs: &[(&'static str, usize)]) -> HashMap<&'static str, usize> {
    pairs.iter().copied().collect()
}

#[tokio::test]
async fn a_lost_response_on_code_redemption_is_not_a_replay() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let (id, secret) = env.web_client(FULL).await?;
    let code = env.code_for(&id, CB, FULL).await?;
    env.faults.inject("consume_code", Fault::LostResponse);
    let (status, body) = env.exchange(&id, &secret, &code, VERIFIER, Some(CB)).await?;
    assert_eq!(status, 200, "{body}");
    let at = body["access_token"].as_str().unwrap_or_default();
    let rt = body["refresh_token"].as_str().unwrap_or_default();
    assert_eq!(env.introspect(&id, &secret, at).await?["active"], true, "no revocation");
    assert_eq!(env.refresh(&id, &secret, rt, None).await?.0, 200, "one usable token set");
    Ok(())
}

#[tokio::test]
async fn a_lost_response_on_refresh_rotation_keeps_the_family() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let (id, secret) = env.web_client(FULL).await?;
    let code = env.code_for(&id, CB, FULL).await?;
    let (_, body) = env.exchange(&id, &secret, &code, VERIFIER, Some(CB)).await?;
    env.faults.inject("rotate_refresh", Fault::LostResponse);
    let (status, next) = env.refresh(&id, &secret, body["refresh_token"].as_str().unwrap_or_default(), None).await?;
    assert_eq!(status, 200, "{next}");
    assert_eq!(env.refresh(&id, &secret, next["refresh_token"].as_str().unwrap_or_default(), None).await?.0, 200);
    Ok(())
}

#[tokio::test]
async fn a_redemption_that_fails_to_commit_leaves_the_code_redeemable() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let (id, secret) = env.web_client(FULL).await?;
    let code = env.code_for(&id, CB, FULL).await?;
    env.faults.inject("consume_code", Fault::FailBeforeWrite);
    let r = env
        .post_form_basic(
            "/oauth/token",
            &id,
            &secret,
            &[("grant_type", "authorization_code"), ("code", &code), ("code_verifier", VERIFIER), ("redirect_uri", CB)],
        )
        .await?;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let body: Value = r.json().await?;
    assert_eq!(body["error"], "server_error");
    assert!(!body.to_string().contains("injected"), "internals must not leak: {body}");
    let (status, _) = env.exchange(&id, &secret, &code, VERIFIER, Some(CB)).await?;
    assert_eq!(status, 200, "the client's retry succeeds");
    Ok(())
}

#[tokio::test]
async fn backend_throttling_is_a_503_with_server_error_and_never_a_half_answer() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read data:write").await?;
    let token = env.cc_token(&id, &secret, None).await?;
    let cases: Vec<(&'static str, reqwest::RequestBuilder)> = vec![
        (
            "client",
            env.http
                .post(env.url("/oauth/token"))
                .basic_auth(&id, Some(&secret))
                .form(&[("grant_type", "client_credentials")]),
        ),
        ("is_revoked", env.http.get(env.url("/api/data")).bearer_auth(&token)),
        ("put_item", env.http.post(env.url("/api/data")).bearer_auth(&token).json(&serde_json::json!({"value": 1}))),
        (
            "create_user",
            env.http
                .post(env.url("/register"))
                .json(&serde_json::json!({"username": "zoe", "password": "correct horse battery"})),
        ),
    ];
    for (op, req) in cases {
        env.faults.inject(op, Fault::Throttled);
        let r = req.send().await?;
        assert_eq!(r.status(), 503, "{op}");
        assert_eq!(r.headers()["retry-after"], "1", "{op}");
        let body: Value = r.json().await?;
        assert_eq!(body["error"], "server_error", "{op}");
        assert!(!body.to_string().contains("Throughput"), "{op}: internals leaked");
    }
    assert!(env.app.users.user_by_username("zoe").await?.is_none(), "nothing half-written");
    let items: Value = env.get_bearer("/api/data", &token).await?.json().await?;
    assert_eq!(items["items"], serde_json::json!([]));
    Ok(())
}

#[tokio::test]
async fn store_calls_per_request_stay_within_budget() -> anyhow::Result<()> {
    // DynamoDB requests per trait call: one each (a transaction is one request).
    let env = TestEnv::new().await?;
    env.alice().await?;
    let (id, secret) = env.service_client("data:read").await?;
    let token = env.cc_token(&id, &secret, None).await?;
    env.get_bearer("/api/data", &token).await?; // warm the verified-token cache

    env.faults.reset_calls();
    env.cc_token(&id, &secret, None).await?;
    assert_eq!(env.faults.calls(), calls(&[("client", 1)]), "client_credentials");

    env.faults.reset_calls();
    assert_eq!(env.get_bearer("/api/data", &token).await?.status(), 200);
    assert_eq!(env.faults.calls(), calls(&[("is_revoked", 1), ("items_for", 1)]), "GET /api/data");

    let (web, web_secret) = env.web_client(FULL).await?;
    let code = env.code_for(&web, CB, FULL).await?;
    env.faults.reset_calls();
    assert_eq!(env.exchange(&web, &web_secret, &code, VERIFIER, Some(CB)).await?.0, 200);
    assert_eq!(env.faults.calls(), calls(&[("client", 1), ("code", 1), ("consume_code", 1)]), "code exchange");
    Ok(())
}

#[tokio::test]
async fn a_failing_store_at_login_is_a_503_page_not_a_pass() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let (id, _) = env.web_client(FULL).await?;
    for op in ["hit", "user_by_username", "reset", "forgive"] {
        let page = env.authorize(&oauth_tests::harness::authz_query(&id, Some(CB), "openid", "s")).await?;
        env.faults.inject(op, Fault::Throttled);
        let password = if op == "hit" { "wrong password!" } else { oauth_tests::harness::PASSWORD };
        let done = env.submit(&page, "alice", password, "allow").await?;
        assert_eq!(done.status, 503, "{op}");
        assert_eq!(done.headers["retry-after"], "1", "{op}");
        assert!(done.location().is_none(), "{op}: no code without the throttle check");
        assert!(done.headers["content-type"].to_str()?.starts_with("text/html"), "{op}");
    }
    Ok(())
}

/// When the revocation read fails, every verifier refuses: the authorizer denies,
/// introspection and userinfo answer 503, never "active" or the claims (docs/SECURITY.md R6). Each first
/// succeeds with the token in the verified-token cache, so only the revocation read differs.
#[tokio::test]
async fn every_verifier_fails_closed_when_the_revocation_read_fails() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let (id, secret) = env.web_client(FULL).await?;
    let code = env.code_for(&id, CB, FULL).await?;
    let (status, body) = env.exchange(&id, &secret, &code, VERIFIER, Some(CB)).await?;
    assert_eq!(status, 200, "{body}");
    let at = body["access_token"].as_str().unwrap_or_default().to_owned();
    let rt = body["refresh_token"].as_str().unwrap_or_default().to_owned();
    let rules = oauth_core::lambda::authorizer::ScopeRules::parse("GET /api/data=data:read")?;
    let event: Value = serde_json::from_str(
        &include_str!("../../events/authorizer-v2-valid.json").replace("REPLACE_ACCESS_TOKEN", &at),
    )?;
    let authorize = || async {
        let answer = oauth_core::lambda::authorizer::handle_event(&env.app, &rules, event.clone()).await;
        answer.map_err(|e| anyhow::anyhow!("{e}"))
    };
    assert_eq!(authorize().await?["isAuthorized"], true);
    env.faults.inject("is_revoked", Fault::Throttled);
    assert_eq!(authorize().await?, serde_json::json!({"isAuthorized": false}), "authorizer");

    for token in [&at, &rt] {
        assert_eq!(env.introspect(&id, &secret, token).await?["active"], true);
        env.faults.inject("is_revoked", Fault::Throttled);
        let r = env
            .http
            .post(env.url("/oauth/introspect"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", token.as_str())])
            .send()
            .await?;
        assert_eq!(r.status(), 503, "introspection");
        let body: Value = r.json().await?;
        assert_eq!(body["error"], "server_error");
        assert!(body.get("active").is_none(), "{body}");
    }

    assert_eq!(env.get_bearer("/oauth/userinfo", &at).await?.status(), 200);
    env.faults.inject("is_revoked", Fault::Throttled);
    let r = env.get_bearer("/oauth/userinfo", &at).await?;
    assert_eq!(r.status(), 503, "userinfo");
    let body: Value = r.json().await?;
    assert!(body.get("sub").is_none(), "no claims on a failed check: {body}");
    Ok(())
}

/// A login's store calls: the two throttle counters are incremented before the password
/// check (no reads), a success resets the username's counter, and takes its attempt at the
/// address back only when that counter holds more than this attempt; the login then begins
/// a session and records the consent (one write each) before the code.
#[tokio::test]
async fn a_login_costs_the_throttle_two_increments_and_one_reset() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let (id, _) = env.web_client(FULL).await?;
    let query = oauth_tests::harness::authz_query(&id, Some(CB), "openid", "s");
    let page = env.authorize(&query).await?;
    env.faults.reset_calls();
    let done = env.submit(&page, "alice", oauth_tests::harness::PASSWORD, "allow").await?;
    assert!(done.location().is_some_and(|l| l.contains("code=")), "{}", done.status);
    let login = calls(&[
        ("client", 1),
        ("hit", 3),
        ("user_by_username", 1),
        ("reset", 1),
        ("create_session", 1),
        ("add_grant", 1),
        ("put_code", 1),
    ]);
    assert_eq!(env.faults.calls(), login, "the first login from this address");

    let page = env.authorize(&query).await?;
    assert_eq!(env.submit(&page, "alice", "wrong password!", "allow").await?.status, 401);
    let page = env.authorize(&query).await?;
    env.faults.reset_calls();
    let done = env.submit(&page, "alice", oauth_tests::harness::PASSWORD, "allow").await?;
    assert!(done.location().is_some_and(|l| l.contains("code=")), "{}", done.status);
    let mut after_failure = login;
    after_failure.insert("forgive", 1);
    assert_eq!(env.faults.calls(), after_failure, "a login after a failure from this address");
    Ok(())
}
