//! An unknown username costs the same argon2 verification as a wrong password (SECURITY.md
//! G1): counted, not timed, so the proof holds on a loaded machine. The dummy hash having the
//! same cost parameters as a stored one is checked in `oauth_core::crypto`'s unit tests.
use oauth_core::crypto::argon2_verifications;
use oauth_tests::harness::{CB, Page, TestEnv, authz_query};

/// The page without what differs per request (the sealed form).
fn stable(p: &Page) -> String {
    let req = p.request.clone().unwrap_or_default();
    p.html.replace(&req, "")
}

#[tokio::test]
async fn unknown_user_and_wrong_password_cost_one_argon2_run_and_look_the_same() -> anyhow::Result<()> {
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
