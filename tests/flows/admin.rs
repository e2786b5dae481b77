//! The operator's user actions (`oauth-admin`; docs/OPERATIONS.md, "Users and clients"): a
//! disabled account signs in no more and loses its sessions, refresh tokens and consents; a
//! password reset ends sessions and refresh tokens; a deleted account frees its name. On
//! both stores.
use anyhow::{Context, Result, ensure};
use oauth_core::oauth::admin;
use oauth_tests::harness::{CB, PASSWORD, TestEnv, authz_query, str_field};

fn now(env: &TestEnv) -> time::OffsetDateTime {
    oauth_core::clock::Clock::now(&*env.clock)
}

#[tokio::test]
async fn a_disabled_user_signs_in_no_more_and_loses_its_sessions_refresh_tokens_and_consents() -> Result<()> {
    let env = TestEnv::new().await?;
    let sub = env.alice().await?;
    let client = env.web_client("openid offline_access data:read").await?;
    let mut b = env.browser();
    let tokens = b.tokens(&client, "openid offline_access data:read").await?;
    ensure!(b.session.is_some());
    let stores = oauth_tests::faults::stores(&env.faults);
    let found = admin::find_user(&stores, "ALICE").await?.context("alice by name")?;
    ensure!(found.sub == sub && admin::find_user(&stores, &sub).await?.is_some());
    let ended = admin::disable_user(&stores, &sub, now(&env)).await?;
    ensure!(ended.sessions == 1 && ended.families == 1 && ended.consents == 1, "{ended:?}");
    // Its refresh token and access token are refused; its browser is signed out.
    let (status, _) = env.refresh(&client.0, &client.1, &str_field(&tokens, "refresh_token")?, None).await?;
    ensure!(status == 400);
    ensure!(env.get_bearer("/api/data", &str_field(&tokens, "access_token")?).await?.status() == 401);
    ensure!(b.get("/account").await?.html.contains("name=\"password\""), "the session ended");
    // The right password is refused like a wrong one.
    let page = env.authorize(&authz_query(&client.0, Some(CB), "openid", "s")).await?;
    let refused = env.submit(&page, "alice", PASSWORD, "allow").await?;
    ensure!(refused.status == 401 && refused.location().is_none(), "{}", refused.status);
    // Enabled again: a sign-in works, and consent is asked again (the old one is gone).
    admin::enable_user(&stores, &sub).await?;
    let mut again = env.browser();
    let page = again.authorize(&authz_query(&client.0, Some(CB), "openid", "s")).await?;
    let done = again.login(&page, "alice", PASSWORD, "allow").await?;
    ensure!(done.status == 303 && done.location_param("code").is_some(), "{}", done.status);
    ensure!(stores.grants.grants_of(&sub).await?.len() == 1, "a new consent, recorded by this sign-in");
    Ok(())
}

#[tokio::test]
async fn a_password_reset_ends_sessions_and_refresh_tokens_and_a_deleted_user_frees_its_name() -> Result<()> {
    let env = TestEnv::new().await?;
    let sub = env.alice().await?;
    let client = env.web_client("openid offline_access data:read").await?;
    let mut b = env.browser();
    let tokens = b.tokens(&client, "openid offline_access data:read").await?;
    let stores = oauth_tests::faults::stores(&env.faults);
    let alice = admin::find_user(&stores, &sub).await?.context("alice")?;
    ensure!(admin::reset_password(&stores, &alice, "short", now(&env)).await.is_err(), "the rules apply");
    let ended = admin::reset_password(&stores, &alice, "a brand new passphrase", now(&env)).await?;
    ensure!(ended.sessions == 1 && ended.families == 1 && ended.consents == 0, "{ended:?}");
    let (status, _) = env.refresh(&client.0, &client.1, &str_field(&tokens, "refresh_token")?, None).await?;
    ensure!(status == 400);
    let page = env.authorize(&authz_query(&client.0, Some(CB), "openid", "s")).await?;
    ensure!(env.submit(&page, "alice", PASSWORD, "allow").await?.status == 401, "the old password");
    let page = env.authorize(&authz_query(&client.0, Some(CB), "openid", "s")).await?;
    ensure!(env.submit(&page, "alice", "a brand new passphrase", "allow").await?.status == 303, "the new one");
    // Deleted: gone, and the name can be registered again (a new user).
    ensure!(admin::delete_user(&stores, &sub, now(&env)).await?);
    ensure!(stores.users.user_by_sub(&sub).await?.is_none() && stores.grants.grants_of(&sub).await?.is_empty());
    ensure!(!admin::delete_user(&stores, &sub, now(&env)).await?);
    let made = admin::create_user(&stores, "Alice", PASSWORD, None, now(&env)).await?;
    ensure!(made.sub != sub && made.username == "Alice");
    ensure!(admin::list_clients(&stores).await?.iter().all(|c| c.secret_hash.is_none()));
    Ok(())
}
