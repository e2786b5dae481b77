//! An unknown username costs the same argon2 verification as a wrong password (docs/SECURITY.md
//! G1): counted, not timed, so the proof holds on a loaded machine. The dummy hash having the
//! same cost parameters as a stored one is checked in `oauth_core::crypto`'s unit tests.
use oauth_core::crypto::argon2_verifications;
use oauth_tests::harness::{CB, Page, TestEnv, authz_query};

/// The tests of this binary count a process-wide number: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The page without what differs per request (the sealed form).
fn stable(p: &Page) -> String {
    let req = p.request.clone().unwrap_or_default();
    p.html.replace(&req, "")
}

#[tokio::test]
async fn unknown_user_and_wrong_password_cost_one_argon2_run_and_look_the_same() -> anyhow::Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = TestEnv::new().await?;
    env.alice().await?;
    let (id, _) = env.web_client("openid").await?;
    for (i, name) in ["nobody", "alice", "not a valid username!", "alice"].iter().enumerate() {
        let p = env.authorize(&authz_query(&id, Some(CB), "openid", "s")).await?;
        let before = argon2_verifications();
        let page = env.submit(&p, name, &format!("wrong password {i}"), "allow").await?;
        assert_eq!(argon2_verifications() - before, 1, "login as {name:?} must run exactly one argon2 verification");
        assert_eq!(page.status, 401);
        assert!(page.location().is_none());
        assert!(page.html.contains(oauth_core::oauth::authorize::LOGIN_FAILED));
    }
    // Same page, byte for byte, apart from the echoed username and the fresh sealed form.
    let mut bodies = Vec::new();
    for name in ["nobody2", "alice"] {
        let p = env.authorize(&authz_query(&id, Some(CB), "openid", "s")).await?;
        let page = env.submit(&p, name, "wrong password x", "allow").await?;
        bodies.push(stable(&page).replace(name, "USER"));
    }
    assert_eq!(bodies.first(), bodies.get(1), "the two failures must render the same page");
    // A right password also costs exactly one run (no second hash on the success path).
    let p = env.authorize(&authz_query(&id, Some(CB), "openid", "s")).await?;
    let before = argon2_verifications();
    let ok = env.submit(&p, "alice", oauth_tests::harness::PASSWORD, "allow").await?;
    assert_eq!(ok.status, 303);
    assert_eq!(argon2_verifications() - before, 1);
    Ok(())
}

/// docs/API.md: "N simultaneous guesses get at most 5 password checks". Every guess reuses one
/// login form (a failed login does not consume it) and they all race the counter; with the
/// default limits at most `LOGIN_MAX_FAILURES` argon2 verifications run for one username and
/// at most `LOGIN_MAX_FAILURES_PER_IP` for one address, and every other answer is 429. Runs on
/// SQLite and, in the test command's second pass, on DynamoDB.
#[tokio::test]
async fn concurrent_guesses_get_at_most_the_limits_password_checks() -> anyhow::Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    // One username, 50 guesses at once.
    let env = TestEnv::new().await?;
    env.alice().await?;
    let (id, _) = env.web_client("openid").await?;
    let form = env.authorize(&authz_query(&id, Some(CB), "openid", "s")).await?;
    let before = argon2_verifications();
    let guesses = (0..50).map(|i| {
        let (env, form) = (&env, &form);
        async move { env.submit(form, "alice", &format!("guess number {i}"), "allow").await.map(|p| p.status) }
    });
    let statuses = futures::future::try_join_all(guesses).await?;
    let checks = argon2_verifications() - before;
    let limit = env.app.settings.login_max_failures;
    assert_eq!(limit, 5, "the default limit");
    assert!(checks <= u64::from(limit), "{checks} password checks for one username (limit {limit})");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count() as u64, checks, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count() as u64, 50 - checks, "{statuses:?}");

    // One address, 60 usernames at once (spraying).
    let env = TestEnv::new().await?;
    let (id, _) = env.web_client("openid").await?;
    let form = env.authorize(&authz_query(&id, Some(CB), "openid", "s")).await?;
    let before = argon2_verifications();
    let sprays = (0..60).map(|i| {
        let (env, form) = (&env, &form);
        async move { env.submit(form, &format!("user{i}"), "a wrong password", "allow").await.map(|p| p.status) }
    });
    let statuses = futures::future::try_join_all(sprays).await?;
    let checks = argon2_verifications() - before;
    let limit = env.app.settings.login_max_failures_per_ip;
    assert_eq!(limit, 50, "the default limit");
    assert!(checks <= u64::from(limit), "{checks} password checks from one address (limit {limit})");
    let count = |code: u16| statuses.iter().filter(|s| **s == code).count() as u64;
    assert_eq!(count(429), 60 - u64::from(limit), "exactly the attempts over the limit: {statuses:?}");
    assert_eq!(count(401), checks, "{statuses:?}");
    // The rest found every argon2 slot and queue place taken (the process's own bound).
    assert_eq!(count(401) + count(429) + count(503), 60, "{statuses:?}");
    Ok(())
}
