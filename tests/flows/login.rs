//! The login form: generic failures, no user enumeration, throttling per username and per
//! source address, hash upgrades (docs/SECURITY.md G1, G3, G4).
use oauth_tests::harness::{CB, PASSWORD, Page, TestEnv, authz_query};

async fn page(env: &TestEnv, id: &str) -> anyhow::Result<Page> {
    env.authorize(&authz_query(id, Some(CB), "openid", "s")).await
}

#[tokio::test]
async fn five_failures_lock_the_username_even_for_the_right_password_until_the_window_ends() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    env.register_user("bob", PASSWORD).await?;
    let (id, _) = env.web_client("openid").await?;
    for i in 0..5 {
        let p = page(&env, &id).await?;
        assert_eq!(env.submit(&p, "alice", &format!("nope nope {i}"), "allow").await?.status, 401);
    }
    let p = page(&env, &id).await?;
    let locked = env.submit(&p, "ALICE", PASSWORD, "allow").await?;
    assert_eq!(locked.status, 429);
    assert!(locked.headers.get("retry-after").is_some());
    assert!(locked.html.contains(oauth_core::oauth::authorize::LOGIN_FAILED), "same generic message");
    assert!(locked.location().is_none());
    // Other accounts are unaffected.
    let p = page(&env, &id).await?;
    assert_eq!(env.submit(&p, "bob", PASSWORD, "allow").await?.status, 303);
    // Every attempt counts, refused ones too (it is counted before anything is known), so
    // the lock lasts until fifteen minutes after the last attempt.
    env.clock.advance(899);
    let p = page(&env, &id).await?;
    assert_eq!(env.submit(&p, "alice", PASSWORD, "allow").await?.status, 429);
    env.clock.advance(899);
    let p = page(&env, &id).await?;
    assert_eq!(env.submit(&p, "alice", PASSWORD, "allow").await?.status, 429, "the last attempt restarted the window");
    env.clock.advance(901);
    let p = page(&env, &id).await?;
    assert_eq!(env.submit(&p, "alice", PASSWORD, "allow").await?.status, 303);
    // The success cleared the name's counter: one failure now is the first of five.
    let p = page(&env, &id).await?;
    assert_eq!(env.submit(&p, "alice", "nope nope x", "allow").await?.status, 401);
    let p = page(&env, &id).await?;
    assert_eq!(env.submit(&p, "alice", PASSWORD, "allow").await?.status, 303);
    Ok(())
}

#[tokio::test]
async fn concurrent_failures_are_all_counted() -> anyhow::Result<()> {
    let env = TestEnv::with_vars(&[("LOGIN_MAX_FAILURES", "1000")]).await?;
    env.alice().await?;
    let (id, _) = env.web_client("openid").await?;
    let mut pages = Vec::new();
    for _ in 0..12 {
        pages.push(page(&env, &id).await?);
    }
    let attempts = pages.iter().map(|p| env.submit(p, "alice", "wrong wrong wrong", "allow"));
    for r in futures::future::join_all(attempts).await {
        assert_eq!(r?.status, 401);
    }
    let key = format!("login#user#{}", oauth_core::crypto::sha256_b64("alice"));
    let now = oauth_core::clock::Clock::now(&*env.clock);
    assert_eq!(env.app.throttle.count(&key, now).await?, 12, "no lost updates");
    Ok(())
}

#[tokio::test]
async fn one_address_spraying_many_usernames_is_throttled() -> anyhow::Result<()> {
    let env = TestEnv::with_vars(&[("LOGIN_MAX_FAILURES_PER_IP", "4")]).await?;
    env.alice().await?;
    let (id, _) = env.web_client("openid").await?;
    for i in 0..4 {
        let p = page(&env, &id).await?;
        assert_eq!(env.submit(&p, &format!("user{i}"), "guess guess", "allow").await?.status, 401);
    }
    let p = page(&env, &id).await?;
    assert_eq!(env.submit(&p, "alice", PASSWORD, "allow").await?.status, 429);
    Ok(())
}

#[tokio::test]
async fn a_weak_stored_hash_is_upgraded_at_login() -> anyhow::Result<()> {
    use argon2::PasswordHasher;
    let env = TestEnv::new().await?;
    let sub = env.alice().await?;
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(4096, 3, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?,
    )
    .hash_password(PASSWORD.as_bytes())
    .map_err(|e| anyhow::anyhow!("{e}"))?
    .to_string();
    env.app.users.update_password_hash(&sub, &weak).await?;
    let (id, _) = env.web_client("openid").await?;
    let p = page(&env, &id).await?;
    assert_eq!(env.submit(&p, "alice", PASSWORD, "allow").await?.status, 303);
    let stored = env.app.users.user_by_sub(&sub).await?.map(|u| u.password_hash).unwrap_or_default();
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
    Ok(())
}

#[tokio::test]
async fn passwords_are_checked_exactly_as_registered() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let long = "Z".repeat(100);
    env.register_user("carol", &long).await?;
    let (id, _) = env.web_client("openid").await?;
    for (name, pw, want) in [
        ("72-char prefix", &long[..72], 401),
        ("trailing space", &format!("{long} "), 401),
        ("exact", long.as_str(), 303),
    ] {
        let p = page(&env, &id).await?;
        assert_eq!(env.submit(&p, "carol", pw, "allow").await?.status, want, "{name}");
    }
    Ok(())
}
