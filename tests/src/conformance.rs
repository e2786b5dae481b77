//! The store conformance suite: the executable definition of the store traits' contracts.
//! Each case gets fresh, empty stores, so every backend (SQLite in memory and on file,
//! DynamoDB on the moto emulator) runs exactly these cases, one test per case per backend
//! ([`store_conformance_tests`], invoked in `flows/conformance.rs`).
use anyhow::{Result, ensure};
use oauth_core::domain::{
    AuthCode, AuthMethod, AuthMethodRef, Client, DataItem, GrantType, IdentityLink, RedirectUri, RefreshFamily,
    RefreshRecord, ResourceId, ResourceServer, Scope, ScopeDef, ScopeSet, Session, User, Username,
};
use oauth_core::store::{Consume, Issue, Rotate, StoreError, Unlink};
use time::OffsetDateTime;

pub use oauth_core::store::Stores;

mod admin;
mod device;
pub use admin::*;
pub use device::*;

/// The instant `secs` seconds after the Unix epoch (the store traits take `OffsetDateTime`).
fn at(secs: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(secs)
}

/// The stores one case runs on, and the files to delete when it is over (a SQLite file).
pub struct Fresh {
    /// Empty stores.
    pub stores: Stores,
    /// Deleted after the case, whatever its result.
    pub files: Vec<std::path::PathBuf>,
}

impl From<Stores> for Fresh {
    fn from(stores: Stores) -> Self {
        Self { stores, files: Vec::new() }
    }
}

/// One `#[tokio::test]` per case for a backend, named after the case (so
/// `cargo test consume_code` selects the code cases of every backend). `$stores` is an
/// expression of type `impl Future<Output = anyhow::Result<Option<Fresh>>>`, evaluated afresh
/// for each case; `None` skips the case (no emulator). Invoke it once per backend, each in
/// its own module. This list is the suite: a case not named here runs nowhere.
#[macro_export]
macro_rules! store_conformance_tests {
    ($stores:expr) => {
        $crate::store_conformance_tests!(@each $stores;
            create_user_then_found_by_username_key_and_sub,
            create_user_refuses_a_duplicate_username_in_any_case,
            create_user_concurrently_has_exactly_one_winner,
            user_by_username_of_a_missing_user_is_none,
            create_client_round_trips_and_ids_are_unique,
            revoke_jti_holds_until_its_expiry_and_is_idempotent,
            items_for_lists_newest_first_per_subject_with_limit,
            hit_counts_expires_and_resets,
            hit_concurrently_loses_no_update,
            forgive_takes_a_hit_back_never_below_zero_nor_past_its_window,
            update_password_hash_updates_and_missing_users_are_not_found,
            consume_code_once_with_its_refresh_token_and_retries_recognised,
            consume_code_concurrently_has_exactly_one_fresh,
            rotate_refresh_once_and_retries_recognised,
            rotate_refresh_concurrently_has_one_winner,
            revoke_family_holds_until_its_expiry,
            create_session_then_found_live_and_ids_are_unique,
            session_with_grant_reads_the_users_grant_to_that_client_only,
            touch_session_extends_idle_never_past_the_end_and_never_revives,
            end_sessions_of_ends_all_but_the_kept_one,
            create_session_concurrently_for_one_user_keeps_every_login,
            add_grant_unions_scopes_and_concurrently_loses_none,
            delete_grant_removes_only_that_clients_grant,
            consume_code_and_rotate_refresh_draw_on_the_grant_and_the_session,
            end_session_racing_a_refresh_or_a_redemption_leaves_no_unlisted_family,
            resource_servers_are_put_replaced_listed_and_deleted,
            codes_and_refresh_tokens_keep_their_resources,
            federated_users_and_links_are_created_together_found_listed_and_unique,
            concurrent_first_sign_ins_of_one_identity_create_one_user,
            unlink_never_removes_the_last_way_in_even_concurrently,
            device_requests_are_stored_once_and_found_by_user_code,
            poll_device_paces_and_slows_down_by_five_seconds,
            concurrent_early_polls_each_add_five_seconds,
            decide_device_once_with_its_approval_in_the_same_write,
            users_are_disabled_enabled_and_deleted_with_their_links,
            clients_are_listed_and_deleted
        );
    };
    (@each $stores:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() -> anyhow::Result<()> {
                let Some(fresh) = $stores.await? else { return Ok(()) };
                let $crate::conformance::Fresh { stores, files } = fresh;
                let result = $crate::conformance::$case(stores).await;
                for file in files {
                    let _ = std::fs::remove_file(file);
                }
                result
            }
        )+
    };
}

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn user(sub: &str, name: &str) -> Result<User> {
    Ok(User {
        sub: sub.into(),
        username: Username::parse(name).map_err(anyhow::Error::msg)?,
        email: None,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaA".into(),
        created_at: 1_800_000_000,
        disabled: false,
    })
}

pub async fn create_user_then_found_by_username_key_and_sub(s: Stores) -> Result<()> {
    let u = user("usr_1", "Alice")?;
    s.users.create_user(&u).await?;
    ensure!(s.users.user_by_username("alice").await?.as_ref() == Some(&u), "by username key");
    ensure!(s.users.user_by_sub("usr_1").await?.as_ref() == Some(&u), "by sub");
    Ok(())
}

pub async fn create_user_refuses_a_duplicate_username_in_any_case(s: Stores) -> Result<()> {
    let first = user("usr_1", "alice")?;
    s.users.create_user(&first).await?;
    for (i, name) in ["alice", "ALICE", "Alice"].iter().enumerate() {
        let r = s.users.create_user(&user(&format!("usr_dup{i}"), name)?).await;
        ensure!(matches!(r, Err(StoreError::AlreadyExists)), "{name}: {r:?}");
    }
    ensure!(s.users.user_by_username("alice").await?.as_ref() == Some(&first), "first user changed");
    ensure!(s.users.user_by_sub("usr_dup0").await?.is_none(), "a refused user was stored");
    Ok(())
}

pub async fn create_user_concurrently_has_exactly_one_winner(s: Stores) -> Result<()> {
    let attempts = (0..10).map(|i| {
        let users = s.users.clone();
        async move {
            users
                .create_user(&user(&format!("usr_{i}"), if i % 2 == 0 { "bob" } else { "BOB" })?)
                .await
                .map_err(anyhow::Error::from)
        }
    });
    let results = futures::future::join_all(attempts.map(tokio::spawn)).await;
    let mut wins = 0;
    for r in results {
        match r? {
            Ok(()) => wins += 1,
            Err(e) => {
                ensure!(matches!(e.downcast_ref::<StoreError>(), Some(StoreError::AlreadyExists)), "unexpected {e:#}")
            }
        }
    }
    ensure!(wins == 1, "{wins} winners");
    Ok(())
}

pub async fn user_by_username_of_a_missing_user_is_none(s: Stores) -> Result<()> {
    ensure!(s.users.user_by_username("nobody").await?.is_none());
    ensure!(s.users.user_by_sub("usr_nobody").await?.is_none());
    Ok(())
}

pub async fn create_client_round_trips_and_ids_are_unique(s: Stores) -> Result<()> {
    let c = Client {
        client_id: "cl_1".into(),
        secret_hash: Some("hash".into()),
        client_name: Some("Demo <app>".into()),
        redirect_uris: vec![RedirectUri::parse("https://client.example/cb").map_err(anyhow::Error::msg)?],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        auth_method: AuthMethod::ClientSecretBasic,
        scope: ScopeSet::client_default(),
        id_token_signed_response_alg: oauth_core::domain::SigningAlg::Rs256,
        created_at: 1_800_000_000,
        trusted: true,
        post_logout_redirect_uris: vec![],
        dpop_bound_access_tokens: false,
    };
    s.clients.create_client(&c).await?;
    ensure!(s.clients.client("cl_1").await?.as_ref() == Some(&c), "round trip");
    let r = s.clients.create_client(&Client { client_name: None, ..c.clone() }).await;
    ensure!(matches!(r, Err(StoreError::AlreadyExists)), "duplicate id: {r:?}");
    ensure!(s.clients.client("cl_1").await?.as_ref() == Some(&c), "overwritten");
    ensure!(s.clients.client("cl_2").await?.is_none());
    Ok(())
}

pub async fn revoke_jti_holds_until_its_expiry_and_is_idempotent(s: Stores) -> Result<()> {
    let until = t0() + time::Duration::seconds(900);
    ensure!(!s.tokens.is_revoked("at_1", None, t0()).await?, "revoked before revoke");
    s.tokens.revoke_jti("at_1", until).await?;
    s.tokens.revoke_jti("at_1", t0()).await?; // idempotent, never shortens
    ensure!(s.tokens.is_revoked("at_1", None, t0()).await?, "not revoked");
    ensure!(s.tokens.is_revoked("at_1", Some("fam_x"), until - time::Duration::seconds(1)).await?, "not revoked late");
    ensure!(!s.tokens.is_revoked("at_1", None, until).await?, "revoked after expiry");
    ensure!(!s.tokens.is_revoked("at_2", None, t0()).await?, "other jti revoked");
    Ok(())
}

pub async fn items_for_lists_newest_first_per_subject_with_limit(s: Stores) -> Result<()> {
    for (i, sub) in ["usr_a", "usr_a", "usr_b", "usr_a"].iter().enumerate() {
        let ms = 1_800_000_000_000 + i64::try_from(i)?;
        s.data
            .put_item(&DataItem {
                id: format!("itm_{i}"),
                sub: (*sub).into(),
                value: serde_json::json!({"n": i}),
                created_at_ms: ms,
            })
            .await?;
    }
    let a = s.data.items_for("usr_a", 10).await?;
    let ids: Vec<&str> = a.iter().map(|i| i.id.as_str()).collect();
    ensure!(ids == ["itm_3", "itm_1", "itm_0"], "{ids:?}");
    ensure!(a.first().map(|i| &i.value) == Some(&serde_json::json!({"n": 3})), "value");
    ensure!(s.data.items_for("usr_a", 2).await?.len() == 2, "limit");
    ensure!(s.data.items_for("usr_b", 10).await?.len() == 1, "other subject");
    ensure!(s.data.items_for("usr_c", 10).await?.is_empty(), "unknown subject");
    Ok(())
}

pub async fn hit_counts_expires_and_resets(s: Stores) -> Result<()> {
    ensure!(s.throttle.count("login#alice", t0()).await? == 0);
    ensure!(s.throttle.hit("login#alice", 900, t0()).await? == 1);
    ensure!(s.throttle.hit("login#alice", 900, t0() + time::Duration::seconds(10)).await? == 2);
    ensure!(s.throttle.count("login#alice", t0() + time::Duration::seconds(10)).await? == 2);
    // The window runs from the last hit.
    ensure!(s.throttle.count("login#alice", t0() + time::Duration::seconds(909)).await? == 2, "window not extended");
    ensure!(s.throttle.count("login#alice", t0() + time::Duration::seconds(910)).await? == 0, "window not over");
    ensure!(
        s.throttle.hit("login#alice", 900, t0() + time::Duration::seconds(2000)).await? == 1,
        "restart after expiry"
    );
    s.throttle.reset("login#alice").await?;
    ensure!(s.throttle.count("login#alice", t0() + time::Duration::seconds(2000)).await? == 0, "reset");
    ensure!(s.throttle.count("login#bob", t0()).await? == 0, "other key");
    Ok(())
}

pub async fn forgive_takes_a_hit_back_never_below_zero_nor_past_its_window(s: Stores) -> Result<()> {
    let t = |secs| t0() + time::Duration::seconds(secs);
    s.throttle.hit("login#ip#192.0.2.9", 900, t(0)).await?;
    s.throttle.hit("login#ip#192.0.2.9", 900, t(0)).await?;
    s.throttle.forgive("login#ip#192.0.2.9", t(1)).await?;
    ensure!(s.throttle.count("login#ip#192.0.2.9", t(1)).await? == 1);
    ensure!(s.throttle.count("login#ip#192.0.2.9", t(900)).await? == 0, "the window was not extended");
    s.throttle.forgive("login#ip#192.0.2.9", t(2)).await?;
    s.throttle.forgive("login#ip#192.0.2.9", t(3)).await?;
    ensure!(s.throttle.count("login#ip#192.0.2.9", t(3)).await? == 0, "never below zero");
    ensure!(s.throttle.hit("login#ip#192.0.2.9", 900, t(4)).await? == 1);
    s.throttle.forgive("login#missing", t(4)).await?;
    ensure!(s.throttle.count("login#missing", t(4)).await? == 0);
    Ok(())
}

pub async fn hit_concurrently_loses_no_update(s: Stores) -> Result<()> {
    let hits = (0..50).map(|_| {
        let t = s.throttle.clone();
        tokio::spawn(async move { t.hit("ip#192.0.2.1", 900, t0()).await })
    });
    let mut seen = Vec::new();
    for r in futures::future::join_all(hits).await {
        seen.push(r??);
    }
    seen.sort_unstable();
    ensure!(seen == (1..=50).collect::<Vec<u32>>(), "each hit must see a distinct count: {seen:?}");
    ensure!(s.throttle.count("ip#192.0.2.1", t0()).await? == 50);
    Ok(())
}

pub async fn update_password_hash_updates_and_missing_users_are_not_found(s: Stores) -> Result<()> {
    s.users.create_user(&user("usr_1", "alice")?).await?;
    s.users.update_password_hash("usr_1", "$argon2id$new").await?;
    ensure!(s.users.user_by_sub("usr_1").await?.map(|u| u.password_hash).as_deref() == Some("$argon2id$new"));
    ensure!(matches!(s.users.update_password_hash("usr_nope", "x").await, Err(StoreError::NotFound)));
    Ok(())
}

fn code(hash: &str) -> Result<AuthCode> {
    Ok(AuthCode {
        code_hash: hash.into(),
        client_id: "cl_1".into(),
        redirect_uri: "https://client.example/cb".into(),
        redirect_uri_sent: true,
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scope: ScopeSet::parse("openid offline_access").map_err(anyhow::Error::msg)?,
        nonce: Some("n".into()),
        sub: "usr_1".into(),
        auth_time: 1_800_000_000,
        family_id: "fam_1".into(),
        expires_at: 1_800_000_060,
        consumed_at: None,
        consumed_by: None,
        session: None,
        resources: Vec::new(),
        amr: None,
        dpop_jkt: None,
    })
}

fn refresh(hash: &str) -> Result<RefreshRecord> {
    Ok(RefreshRecord {
        token_hash: hash.into(),
        family_id: "fam_1".into(),
        client_id: "cl_1".into(),
        sub: "usr_1".into(),
        scope: ScopeSet::parse("openid offline_access").map_err(anyhow::Error::msg)?,
        auth_time: 1_800_000_000,
        issued_at: 1_800_000_000,
        expires_at: 1_802_592_000,
        family_expires_at: 1_807_776_000,
        rotated_at: None,
        rotated_to: None,
        session: None,
        resources: Vec::new(),
        jkt: None,
    })
}

/// The account entry of the family `rt` starts.
fn family(rt: &RefreshRecord) -> RefreshFamily {
    RefreshFamily {
        sub: rt.sub.clone(),
        client_id: rt.client_id.clone(),
        family_id: rt.family_id.clone(),
        session: rt.session.clone(),
        created_at: rt.issued_at,
        expires_at: rt.family_expires_at + 960,
    }
}

/// A redemption by usr_1's client cl_1 starting the family of `rt`, when given.
fn issue(rt: Option<&(RefreshRecord, RefreshFamily)>) -> Issue<'_> {
    Issue { sub: "usr_1", client_id: "cl_1", refresh: rt.map(|(r, f)| (r, f)) }
}

/// usr_1's consent to cl_1, which every redemption and refresh of these cases draws on.
async fn consent(s: &Stores) -> Result<()> {
    s.grants.add_grant("usr_1", "cl_1", &scopes("openid offline_access")?, &[], at(1_800_000_000)).await?;
    Ok(())
}

/// A refresh token and its family's entry.
fn with_family(rt: RefreshRecord) -> (RefreshRecord, RefreshFamily) {
    let f = family(&rt);
    (rt, f)
}

pub async fn consume_code_once_with_its_refresh_token_and_retries_recognised(s: Stores) -> Result<()> {
    s.codes.put_code(&code("c1")?).await?;
    ensure!(s.codes.code("c1").await?.as_ref() == Some(&code("c1")?), "read back");
    ensure!(matches!(s.codes.put_code(&code("c1")?).await, Err(StoreError::AlreadyExists)), "duplicate code");
    consent(&s).await?;
    let rt = with_family(refresh("r1")?);
    let first =
        s.codes.consume_code("c1", at(1_800_000_010), at(1_800_000_010 + 3600), "req_a", issue(Some(&rt))).await?;
    ensure!(first == Consume::Fresh, "first consume: {first:?}");
    ensure!(s.tokens.refresh("r1").await?.as_ref() == Some(&rt.0), "refresh token stored with the consume");
    ensure!(s.grants.families_of("usr_1").await? == [rt.1.clone()], "the family entered in the account");
    let used = s.grants.grants_of("usr_1").await?.first().and_then(|g| g.last_used);
    ensure!(used == Some(1_800_000_010), "the grant's last use: {used:?}");
    let other = with_family(refresh("r2")?);
    match s.codes.consume_code("c1", at(1_800_000_020), at(1_800_000_020 + 3600), "req_b", issue(Some(&other))).await? {
        Consume::Replayed(c) => ensure!(c.consumed_at == Some(1_800_000_010) && c.family_id == "fam_1", "{c:?}"),
        other => anyhow::bail!("second consume: {other:?}"),
    }
    // The same request retried (its first response lost): not a replay, nothing new written.
    let retried =
        s.codes.consume_code("c1", at(1_800_000_011), at(1_800_000_011 + 3600), "req_a", issue(Some(&rt))).await?;
    ensure!(retried == Consume::Fresh, "retry: {retried:?}");
    ensure!(s.tokens.refresh("r2").await?.is_none(), "a replay wrote a refresh token");
    ensure!(s.codes.code("c1").await?.and_then(|c| c.consumed_at) == Some(1_800_000_010), "consumed_at kept");
    ensure!(s.grants.families_of("usr_1").await?.len() == 1, "a replay entered a family");
    ensure!(matches!(s.codes.consume_code("nope", at(1), at(3601), "req_c", issue(None)).await?, Consume::Missing));
    ensure!(s.codes.code("nope").await?.is_none());
    Ok(())
}

pub async fn consume_code_concurrently_has_exactly_one_fresh(s: Stores) -> Result<()> {
    s.codes.put_code(&code("c1")?).await?;
    consent(&s).await?;
    let tasks = (0..20).map(|i| {
        let codes = s.codes.clone();
        tokio::spawn(async move {
            let rt = with_family(RefreshRecord { family_id: format!("fam_{i}"), ..refresh(&format!("r{i}"))? });
            codes
                .consume_code("c1", at(1_800_000_010), at(1_800_000_010 + 3600), &format!("req_{i}"), issue(Some(&rt)))
                .await
                .map_err(anyhow::Error::from)
        })
    });
    let mut fresh = 0;
    for r in futures::future::join_all(tasks).await {
        match r?? {
            Consume::Fresh => fresh += 1,
            Consume::Replayed(_) => {}
            other => anyhow::bail!("{other:?}"),
        }
    }
    ensure!(s.grants.families_of("usr_1").await?.len() == 1, "one family entered");
    ensure!(fresh == 1, "{fresh} fresh consumes");
    let mut stored = 0;
    for i in 0..20 {
        stored += usize::from(s.tokens.refresh(&format!("r{i}")).await?.is_some());
    }
    ensure!(stored == 1, "{stored} refresh tokens stored");
    Ok(())
}

/// A family started by a redemption: `rt`'s code consumed with it (usr_1's consent to cl_1
/// given first).
async fn seed_family(s: &Stores, rt: RefreshRecord) -> Result<()> {
    consent(s).await?;
    let code_hash = format!("code-{}", rt.token_hash);
    s.codes.put_code(&code(&code_hash)?).await?;
    let rt = with_family(rt);
    let c = s
        .codes
        .consume_code(&code_hash, at(1_800_000_000), at(1_800_000_000 + 3600), "req_seed", issue(Some(&rt)))
        .await?;
    ensure!(c == Consume::Fresh, "{c:?}");
    Ok(())
}

async fn seed_refresh(s: &Stores, hash: &str) -> Result<()> {
    seed_family(s, refresh(hash)?).await
}

pub async fn rotate_refresh_once_and_retries_recognised(s: Stores) -> Result<()> {
    seed_refresh(&s, "r1").await?;
    let first = s.tokens.rotate_refresh("r1", &refresh("r2")?, at(1_800_000_100)).await?;
    ensure!(first == Rotate::Rotated, "first rotation: {first:?}");
    let old = s.tokens.refresh("r1").await?;
    ensure!(old.as_ref().and_then(|r| r.rotated_at) == Some(1_800_000_100), "{old:?}");
    ensure!(old.and_then(|r| r.rotated_to).as_deref() == Some("r2"), "successor recorded");
    // The same rotation retried: recognised, nothing new written.
    let retried = s.tokens.rotate_refresh("r1", &refresh("r2")?, at(1_800_000_101)).await?;
    ensure!(retried == Rotate::Rotated, "retry: {retried:?}");
    ensure!(s.tokens.refresh("r2").await?.is_some_and(|r| r.rotated_at.is_none()), "new token current");
    match s.tokens.rotate_refresh("r1", &refresh("r3")?, at(1_800_000_200)).await? {
        Rotate::AlreadyRotated(old) => ensure!(old.rotated_at == Some(1_800_000_100)),
        other => anyhow::bail!("second rotation: {other:?}"),
    }
    ensure!(s.tokens.refresh("r3").await?.is_none(), "a failed rotation stored a token");
    ensure!(matches!(s.tokens.rotate_refresh("nope", &refresh("r4")?, at(1)).await?, Rotate::Missing));
    let used = s.grants.grants_of("usr_1").await?.first().and_then(|g| g.last_used);
    ensure!(used == Some(1_800_000_100), "the rotation is the grant's last use: {used:?}");
    Ok(())
}

pub async fn rotate_refresh_concurrently_has_one_winner(s: Stores) -> Result<()> {
    seed_refresh(&s, "r1").await?;
    let tasks = (0..10).map(|i| {
        let tokens = s.tokens.clone();
        tokio::spawn(async move {
            let next = refresh(&format!("n{i}"))?;
            tokens.rotate_refresh("r1", &next, at(1_800_000_100)).await.map_err(anyhow::Error::from)
        })
    });
    let mut winners = 0;
    for r in futures::future::join_all(tasks).await {
        match r?? {
            Rotate::Rotated => winners += 1,
            Rotate::AlreadyRotated(_) => {}
            other => anyhow::bail!("{other:?}"),
        }
    }
    ensure!(winners == 1, "{winners} winners");
    Ok(())
}

pub async fn revoke_family_holds_until_its_expiry(s: Stores) -> Result<()> {
    let until = t0() + time::Duration::days(90);
    ensure!(!s.tokens.is_revoked("at_1", Some("fam_1"), t0()).await?);
    s.tokens.revoke_family("fam_1", until).await?;
    s.tokens.revoke_family("fam_1", until).await?;
    ensure!(s.tokens.is_revoked("at_1", Some("fam_1"), t0()).await?, "family");
    ensure!(s.tokens.is_revoked("", Some("fam_1"), t0()).await?, "family without a jti");
    ensure!(!s.tokens.is_revoked("at_1", None, t0()).await?, "jti alone is not revoked");
    ensure!(!s.tokens.is_revoked("at_1", Some("fam_2"), t0()).await?, "other family");
    ensure!(!s.tokens.is_revoked("at_1", Some("fam_1"), until).await?, "after expiry");
    Ok(())
}

/// A session of `sub` created at `t0() + created` (idle end +100 s, absolute end +1000 s).
fn session(sub: &str, id_hash: &str, created: i64) -> Session {
    let t = t0().unix_timestamp() + created;
    Session {
        id_hash: id_hash.into(),
        sub: sub.into(),
        auth_time: t,
        method: AuthMethodRef::Password,
        created_at: t,
        last_seen: t,
        idle_expires_at: t + 100,
        expires_at: t + 1000,
    }
}

fn scopes(s: &str) -> Result<ScopeSet> {
    ScopeSet::parse(s).map_err(anyhow::Error::msg)
}

fn secs(n: i64) -> OffsetDateTime {
    t0() + time::Duration::seconds(n)
}

pub async fn create_session_then_found_live_and_ids_are_unique(s: Stores) -> Result<()> {
    let x = session("usr_1", "h1", 0);
    s.sessions.create_session(&x).await?;
    let found = s.sessions.session_with_grant("usr_1", "h1", None, secs(1)).await?;
    ensure!(found == Some((x.clone(), None)), "round trip: {found:?}");
    ensure!(s.sessions.session_with_grant("usr_2", "h1", None, secs(1)).await?.is_none(), "another user's key");
    ensure!(s.sessions.session_with_grant("usr_1", "h2", None, secs(1)).await?.is_none(), "unknown id");
    let dup = Session { auth_time: 5, ..session("usr_1", "h1", 7) };
    let r = s.sessions.create_session(&dup).await;
    ensure!(matches!(r, Err(StoreError::AlreadyExists)), "duplicate id: {r:?}");
    let again = s.sessions.session_with_grant("usr_1", "h1", None, secs(1)).await?;
    ensure!(again == Some((x, None)), "overwritten: {again:?}");
    Ok(())
}

pub async fn session_with_grant_reads_the_users_grant_to_that_client_only(s: Stores) -> Result<()> {
    s.sessions.create_session(&session("usr_1", "h1", 0)).await?;
    s.grants.add_grant("usr_1", "cl_a", &scopes("openid data:read")?, &[], secs(0)).await?;
    s.grants.add_grant("usr_2", "cl_b", &scopes("openid")?, &[], secs(0)).await?;
    let found = s.sessions.session_with_grant("usr_1", "h1", Some("cl_a"), secs(1)).await?;
    let grant = found.and_then(|(_, g)| g).ok_or_else(|| anyhow::anyhow!("no grant"))?;
    ensure!(grant.sub == "usr_1" && grant.client_id == "cl_a", "{grant:?}");
    ensure!(grant.scope == scopes("openid data:read")?, "{grant:?}");
    let other = s.sessions.session_with_grant("usr_1", "h1", Some("cl_b"), secs(1)).await?;
    ensure!(matches!(other, Some((_, None))), "another user's grant came back: {other:?}");
    // A grant without a live session is no sign-in.
    ensure!(s.sessions.session_with_grant("usr_2", "h1", Some("cl_b"), secs(1)).await?.is_none());
    ensure!(s.sessions.session_with_grant("usr_1", "h1", Some("cl_a"), secs(100)).await?.is_none(), "idle");
    Ok(())
}

pub async fn touch_session_extends_idle_never_past_the_end_and_never_revives(s: Stores) -> Result<()> {
    s.sessions.create_session(&session("usr_1", "h1", 0)).await?;
    ensure!(s.sessions.touch_session("usr_1", "h1", 100, secs(50)).await?, "live session not touched");
    let (x, _) =
        s.sessions.session_with_grant("usr_1", "h1", None, secs(120)).await?.ok_or_else(|| anyhow::anyhow!("gone"))?;
    ensure!(x.last_seen == secs(50).unix_timestamp() && x.idle_expires_at == secs(150).unix_timestamp(), "{x:?}");
    // A long idle timeout stops at the absolute end.
    ensure!(s.sessions.touch_session("usr_1", "h1", 5000, secs(140)).await?);
    let (x, _) =
        s.sessions.session_with_grant("usr_1", "h1", None, secs(999)).await?.ok_or_else(|| anyhow::anyhow!("gone"))?;
    ensure!(x.idle_expires_at == secs(1000).unix_timestamp(), "{x:?}");
    ensure!(s.sessions.session_with_grant("usr_1", "h1", None, secs(1000)).await?.is_none(), "past the end");
    ensure!(!s.sessions.touch_session("usr_1", "h1", 100, secs(1000)).await?, "expired session touched");
    // Idle: not used for 100 s, it is over, and a touch does not bring it back.
    s.sessions.create_session(&session("usr_1", "h2", 0)).await?;
    ensure!(s.sessions.session_with_grant("usr_1", "h2", None, secs(100)).await?.is_none(), "idle session live");
    ensure!(!s.sessions.touch_session("usr_1", "h2", 100, secs(100)).await?, "idle session touched");
    ensure!(s.sessions.session_with_grant("usr_1", "h2", None, secs(100)).await?.is_none(), "revived");
    // Ended: a touch racing the logout finds nothing to bring back.
    s.sessions.create_session(&session("usr_1", "h3", 0)).await?;
    ensure!(s.sessions.end_session("usr_1", "h3").await?);
    ensure!(!s.sessions.touch_session("usr_1", "h3", 100, secs(1)).await?, "ended session touched");
    ensure!(s.sessions.session_with_grant("usr_1", "h3", None, secs(1)).await?.is_none(), "ended session revived");
    ensure!(!s.sessions.end_session("usr_1", "h3").await?, "ended twice");
    Ok(())
}

pub async fn end_sessions_of_ends_all_but_the_kept_one(s: Stores) -> Result<()> {
    for (id, created) in [("h1", 0), ("h2", 10), ("h3", 20)] {
        s.sessions.create_session(&session("usr_1", id, created)).await?;
    }
    s.sessions.create_session(&session("usr_2", "h4", 0)).await?;
    let ids = |v: Vec<Session>| v.into_iter().map(|x| x.id_hash).collect::<Vec<_>>();
    ensure!(ids(s.sessions.sessions_of("usr_1", secs(30)).await?) == ["h3", "h2", "h1"], "newest first");
    ensure!(ids(s.sessions.sessions_of("usr_1", secs(105)).await?) == ["h3", "h2"], "idle ones listed");
    ensure!(s.sessions.end_sessions_of("usr_1", Some("h2")).await? == 2);
    ensure!(ids(s.sessions.sessions_of("usr_1", secs(30)).await?) == ["h2"]);
    ensure!(ids(s.sessions.sessions_of("usr_2", secs(30)).await?) == ["h4"], "another user's session ended");
    ensure!(s.sessions.end_sessions_of("usr_1", None).await? == 1);
    ensure!(s.sessions.sessions_of("usr_1", secs(30)).await?.is_empty());
    Ok(())
}

pub async fn create_session_concurrently_for_one_user_keeps_every_login(s: Stores) -> Result<()> {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let sessions = s.sessions.clone();
            tokio::spawn(async move { sessions.create_session(&session("usr_1", &format!("h{i}"), i)).await })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    ensure!(s.sessions.sessions_of("usr_1", secs(10)).await?.len() == 8, "a concurrent login was lost");
    Ok(())
}

pub async fn add_grant_unions_scopes_and_concurrently_loses_none(s: Stores) -> Result<()> {
    let g = s.grants.add_grant("usr_1", "cl_a", &scopes("openid")?, &[], secs(0)).await?;
    ensure!(g.scope == scopes("openid")? && g.granted_at == g.updated_at, "{g:?}");
    let api = ResourceId::parse("https://as.test/api").map_err(anyhow::Error::msg)?;
    let g = s.grants.add_grant("usr_1", "cl_a", &scopes("data:read")?, std::slice::from_ref(&api), secs(5)).await?;
    ensure!(g.scope == scopes("openid data:read")? && g.resources == vec![api.clone()], "{g:?}");
    ensure!(g.granted_at == secs(0).unix_timestamp() && g.updated_at == secs(5).unix_timestamp(), "{g:?}");
    let tasks: Vec<_> = [
        ("profile", "https://a.test"),
        ("email", "https://b.test"),
        ("offline_access", "https://c.test"),
        ("data:write", "https://as.test/api"),
    ]
    .into_iter()
    .map(|(sc, r)| {
        let grants = s.grants.clone();
        tokio::spawn(async move {
            let one = ScopeSet::parse(sc).map_err(anyhow::Error::msg)?;
            let r = ResourceId::parse(r).map_err(anyhow::Error::msg)?;
            grants.add_grant("usr_1", "cl_a", &one, &[r], secs(9)).await.map_err(anyhow::Error::from)
        })
    })
    .collect();
    for t in tasks {
        t.await??;
    }
    let all = s.grants.grants_of("usr_1").await?;
    let want = scopes("openid profile email offline_access data:read data:write")?;
    ensure!(all.len() == 1 && all.first().map(|g| &g.scope) == Some(&want), "a concurrent consent was lost: {all:?}");
    let ids: Vec<String> =
        all.first().map(|g| g.resources.iter().map(ToString::to_string).collect()).unwrap_or_default();
    ensure!(
        ids == ["https://a.test", "https://as.test/api", "https://b.test", "https://c.test"],
        "a resource was lost: {ids:?}"
    );
    Ok(())
}

pub async fn delete_grant_removes_only_that_clients_grant(s: Stores) -> Result<()> {
    s.grants.add_grant("usr_1", "cl_a", &scopes("openid")?, &[], secs(0)).await?;
    s.grants.add_grant("usr_1", "cl_b", &scopes("openid")?, &[], secs(0)).await?;
    s.grants.add_grant("usr_2", "cl_a", &scopes("openid")?, &[], secs(0)).await?;
    let clients = |v: Vec<oauth_core::domain::ConsentGrant>| v.into_iter().map(|g| g.client_id).collect::<Vec<_>>();
    ensure!(clients(s.grants.grants_of("usr_1").await?) == ["cl_a", "cl_b"]);
    ensure!(s.grants.delete_grant("usr_1", "cl_a").await?);
    ensure!(!s.grants.delete_grant("usr_1", "cl_a").await?, "deleted twice");
    ensure!(clients(s.grants.grants_of("usr_1").await?) == ["cl_b"]);
    ensure!(clients(s.grants.grants_of("usr_2").await?) == ["cl_a"], "another user's grant deleted");
    Ok(())
}

/// A session-bound refresh token of usr_1 (cl_1) in family `fam`, ending with session `sid`.
fn bound(hash: &str, fam: &str, sid: &str) -> Result<RefreshRecord> {
    Ok(RefreshRecord { family_id: fam.into(), session: Some(sid.into()), ..refresh(hash)? })
}

pub async fn consume_code_and_rotate_refresh_draw_on_the_grant_and_the_session(s: Stores) -> Result<()> {
    let t = at(1_800_000_010);
    // No consent: nothing is written and the code stays unused.
    s.codes.put_code(&code("c1")?).await?;
    let rt = with_family(bound("r1", "fam_1", "s1")?);
    let r = s.codes.consume_code("c1", t, t + time::Duration::hours(1), "req_a", issue(Some(&rt))).await?;
    ensure!(r == Consume::Withdrawn, "without consent: {r:?}");
    ensure!(s.codes.code("c1").await?.is_some_and(|c| c.consumed_at.is_none()), "the code was consumed");
    ensure!(s.tokens.refresh("r1").await?.is_none() && s.grants.families_of("usr_1").await?.is_empty());
    ensure!(s.grants.grants_of("usr_1").await?.is_empty(), "a grant was made up");
    // Consent, but the session the family would end with does not exist.
    consent(&s).await?;
    let r = s.codes.consume_code("c1", t, t + time::Duration::hours(1), "req_a", issue(Some(&rt))).await?;
    ensure!(r == Consume::Withdrawn, "without the session: {r:?}");
    ensure!(s.tokens.refresh("r1").await?.is_none(), "a token of no session");
    let used = s.grants.grants_of("usr_1").await?.first().and_then(|g| g.last_used);
    ensure!(used.is_none(), "a refused redemption used the grant: {used:?}");
    // With a live session it is issued, and the family is listed under the session.
    let mut sess = session("usr_1", "s1", 0);
    sess.expires_at = 1_900_000_000;
    s.sessions.create_session(&sess).await?;
    let r = s.codes.consume_code("c1", t, t + time::Duration::hours(1), "req_a", issue(Some(&rt))).await?;
    ensure!(r == Consume::Fresh, "{r:?}");
    let listed = s.grants.families_of("usr_1").await?;
    ensure!(listed == [rt.1.clone()] && listed.first().and_then(|f| f.session.as_deref()) == Some("s1"), "{listed:?}");
    let rotated = s.tokens.rotate_refresh("r1", &bound("r2", "fam_1", "s1")?, at(1_800_000_020)).await?;
    ensure!(rotated == Rotate::Rotated, "{rotated:?}");
    // The session ends: its family cannot rotate, and nothing is written.
    ensure!(s.sessions.end_session("usr_1", "s1").await?);
    let r = s.tokens.rotate_refresh("r2", &bound("r3", "fam_1", "s1")?, at(1_800_000_030)).await?;
    ensure!(r == Rotate::Withdrawn, "after the session: {r:?}");
    ensure!(s.tokens.refresh("r3").await?.is_none(), "stored after the session ended");
    ensure!(s.tokens.refresh("r2").await?.is_some_and(|x| x.rotated_at.is_none()), "r2 rotated anyway");
    // A reuse is still a reuse, whatever ended since.
    match s.tokens.rotate_refresh("r1", &bound("r4", "fam_1", "s1")?, at(1_800_000_040)).await? {
        Rotate::AlreadyRotated(old) => ensure!(old.rotated_to.as_deref() == Some("r2")),
        other => anyhow::bail!("reuse after the session: {other:?}"),
    }
    // A session that went idle (its idle end passed, its absolute end not) no longer carries
    // its families, though its record is still there.
    let idle = session("usr_1", "s2", 0); // idle end t0 + 100, absolute end t0 + 1000
    s.sessions.create_session(&idle).await?;
    seed_family(&s, bound("i1", "fam_i", "s2")?).await?;
    let r = s.tokens.rotate_refresh("i1", &bound("i2", "fam_i", "s2")?, at(1_800_000_099)).await?;
    ensure!(r == Rotate::Rotated, "a live session: {r:?}");
    let r = s.tokens.rotate_refresh("i2", &bound("i3", "fam_i", "s2")?, at(1_800_000_100)).await?;
    ensure!(r == Rotate::Withdrawn, "an idle session: {r:?}");
    s.codes.put_code(&code("c9")?).await?;
    let late = with_family(bound("i9", "fam_i9", "s2")?);
    let r = s.codes.consume_code("c9", at(1_800_000_100), at(1_800_003_700), "req_i", issue(Some(&late))).await?;
    ensure!(r == Consume::Withdrawn, "a code of an idle session: {r:?}");
    // An offline family outlives every session, but not the consent.
    seed_family(&s, RefreshRecord { family_id: "fam_2".into(), ..refresh("o1")? }).await?;
    ensure!(s.tokens.rotate_refresh("o1", &refresh("o2")?, at(1_800_000_050)).await? == Rotate::Rotated);
    ensure!(s.grants.delete_grant("usr_1", "cl_1").await?);
    let r = s.tokens.rotate_refresh("o2", &refresh("o3")?, at(1_800_000_060)).await?;
    ensure!(r == Rotate::Withdrawn, "after the consent was withdrawn: {r:?}");
    // A redemption retried after its response was lost is recognised even then.
    let again = s.codes.consume_code("c1", t, t + time::Duration::hours(1), "req_a", issue(Some(&rt))).await?;
    ensure!(again == Consume::Fresh, "retry: {again:?}");
    // Entries are forgotten one by one, and only for this user.
    s.grants.forget_family("usr_1", "cl_1", "fam_1").await?;
    s.grants.forget_family("usr_1", "cl_1", "fam_1").await?;
    s.grants.forget_family("usr_2", "cl_1", "fam_2").await?;
    let left: Vec<String> = s.grants.families_of("usr_1").await?.into_iter().map(|f| f.family_id).collect();
    ensure!(left == ["fam_2", "fam_i"], "{left:?}");
    Ok(())
}

/// Logout racing a refresh and a code redemption: whichever wins, a family bound to the
/// session either never comes to be or is listed in the account when `end_session` returns
/// (so the logout revokes it), and no rotation succeeds once the session is gone.
pub async fn end_session_racing_a_refresh_or_a_redemption_leaves_no_unlisted_family(s: Stores) -> Result<()> {
    consent(&s).await?;
    for i in 0..6 {
        let sid = format!("s{i}");
        let mut sess = session("usr_1", &sid, 0);
        sess.expires_at = 1_900_000_000;
        sess.idle_expires_at = 1_900_000_000;
        s.sessions.create_session(&sess).await?;
        seed_family(&s, bound(&format!("r{i}"), &format!("fam_r{i}"), &sid)?).await?;
        let code_hash = format!("c{i}");
        s.codes.put_code(&code(&code_hash)?).await?;
        let (sessions, tokens, codes) = (s.sessions.clone(), s.tokens.clone(), s.codes.clone());
        let (sid2, sid3) = (sid.clone(), sid.clone());
        let end = tokio::spawn(async move { sessions.end_session("usr_1", &sid2).await });
        let rotate = tokio::spawn(async move {
            let next = bound(&format!("n{i}"), &format!("fam_r{i}"), &sid3)?;
            tokens.rotate_refresh(&format!("r{i}"), &next, at(1_800_000_100)).await.map_err(anyhow::Error::from)
        });
        let redeem = tokio::spawn(async move {
            let rt = with_family(bound(&format!("m{i}"), &format!("fam_c{i}"), &sid)?);
            let issue = Issue { sub: "usr_1", client_id: "cl_1", refresh: Some((&rt.0, &rt.1)) };
            codes
                .consume_code(&code_hash, at(1_800_000_100), at(1_800_000_200), "req_x", issue)
                .await
                .map_err(anyhow::Error::from)
        });
        ensure!(end.await??, "the session was not there to end");
        let rotated = rotate.await??;
        let redeemed = redeem.await??;
        ensure!(matches!(rotated, Rotate::Rotated | Rotate::Withdrawn), "{rotated:?}");
        ensure!(matches!(redeemed, Consume::Fresh | Consume::Withdrawn), "{redeemed:?}");
        let listed: Vec<String> = s.grants.families_of("usr_1").await?.into_iter().map(|f| f.family_id).collect();
        ensure!(listed.contains(&format!("fam_r{i}")), "the refreshed family is not listed: {listed:?}");
        let new_family = listed.contains(&format!("fam_c{i}"));
        ensure!(new_family == (redeemed == Consume::Fresh), "redeemed {redeemed:?}, listed {listed:?}");
        ensure!(s.tokens.refresh(&format!("m{i}")).await?.is_some() == new_family, "a token without its entry");
        // Whatever won, the family's current token no longer rotates.
        let current = if rotated == Rotate::Rotated { format!("n{i}") } else { format!("r{i}") };
        let after = s
            .tokens
            .rotate_refresh(&current, &bound(&format!("z{i}"), &format!("fam_r{i}"), "x")?, at(1_800_000_300))
            .await?;
        ensure!(after == Rotate::Withdrawn, "rotated after the logout: {after:?}");
        ensure!(
            s.sessions.session_with_grant("usr_1", &format!("s{i}"), None, at(1_800_000_300)).await?.is_none(),
            "revived"
        );
    }
    Ok(())
}

fn resource_server(id: &str, scopes: &[&str]) -> Result<ResourceServer> {
    Ok(ResourceServer {
        id: ResourceId::parse(id).map_err(anyhow::Error::msg)?,
        name: format!("API at {id}"),
        scopes: scopes
            .iter()
            .map(|s| {
                let scope = Scope::parse(s).ok_or_else(|| anyhow::anyhow!("bad scope {s}"))?;
                Ok(ScopeDef { scope, description: format!("Use {s}") })
            })
            .collect::<Result<_>>()?,
        access_token_ttl: 600,
    })
}

pub async fn resource_servers_are_put_replaced_listed_and_deleted(s: Stores) -> Result<()> {
    ensure!(s.resources.resources().await?.is_empty(), "none at first");
    let orders = resource_server("https://orders.example", &["orders:read", "orders:write"])?;
    let mcp = resource_server("https://mcp.example/mcp", &[])?;
    s.resources.put_resource(&orders).await?;
    s.resources.put_resource(&mcp).await?;
    let renamed = ResourceServer { name: "Orders".into(), access_token_ttl: 300, ..orders.clone() };
    s.resources.put_resource(&renamed).await?;
    let listed = s.resources.resources().await?;
    ensure!(listed == vec![mcp.clone(), renamed], "by id, the replacement kept: {listed:?}");
    ensure!(s.resources.delete_resource(&orders.id).await?, "deleted");
    ensure!(!s.resources.delete_resource(&orders.id).await?, "idempotent");
    ensure!(s.resources.resources().await? == vec![mcp], "only the other one left");
    Ok(())
}

pub async fn codes_and_refresh_tokens_keep_their_resources(s: Stores) -> Result<()> {
    let resources = vec![
        ResourceId::parse("https://orders.example").map_err(anyhow::Error::msg)?,
        ResourceId::parse("https://mcp.example/mcp").map_err(anyhow::Error::msg)?,
    ];
    let c = AuthCode { resources: resources.clone(), ..code("c-res")? };
    s.codes.put_code(&c).await?;
    ensure!(s.codes.code("c-res").await?.map(|c| c.resources) == Some(resources.clone()), "code");
    s.grants.add_grant("usr_1", "cl_1", &ScopeSet::parse("openid").map_err(anyhow::Error::msg)?, &[], t0()).await?;
    let rt = RefreshRecord { resources: resources.clone(), ..refresh("r-res")? };
    let fam = family(&rt);
    let issue = Issue { sub: "usr_1", client_id: "cl_1", refresh: Some((&rt, &fam)) };
    ensure!(s.codes.consume_code("c-res", t0(), t0(), "req_1", issue).await? == Consume::Fresh);
    ensure!(s.tokens.refresh("r-res").await?.map(|r| r.resources) == Some(resources), "refresh token");
    Ok(())
}

fn link(subject: &str, sub: &str, linked_at: i64) -> IdentityLink {
    IdentityLink {
        issuer: "https://idp.example".into(),
        subject: subject.into(),
        sub: sub.into(),
        provider: "idp".into(),
        email: Some(format!("{subject}@idp.example")),
        email_verified: subject.len().is_multiple_of(2),
        linked_at,
    }
}

fn passwordless(sub: &str, name: &str) -> Result<User> {
    Ok(User { password_hash: String::new(), ..user(sub, name)? })
}

fn already_exists<T: std::fmt::Debug>(r: &std::result::Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::AlreadyExists))
}

pub async fn federated_users_and_links_are_created_together_found_listed_and_unique(s: Stores) -> Result<()> {
    let first = link("1001", "usr_f", 10);
    s.identities.create_federated_user(&passwordless("usr_f", "idp-aaaa")?, &first).await?;
    ensure!(s.identities.identity(&first.key()).await? == Some(first.clone()));
    let u = s.users.user_by_sub("usr_f").await?.ok_or_else(|| anyhow::anyhow!("user"))?;
    ensure!(u.password_hash.is_empty() && u.username.as_str() == "idp-aaaa");
    // The same identity again, for another user: refused, and that user is not created.
    let again =
        s.identities.create_federated_user(&passwordless("usr_g", "idp-bbbb")?, &link("1001", "usr_g", 11)).await;
    ensure!(already_exists(&again), "{again:?}");
    ensure!(s.users.user_by_sub("usr_g").await?.is_none(), "nothing of a refused creation is written");
    // A taken username: refused, and the identity is not linked.
    let taken =
        s.identities.create_federated_user(&passwordless("usr_h", "IDP-AAAA")?, &link("1002", "usr_h", 12)).await;
    ensure!(already_exists(&taken), "{taken:?}");
    ensure!(s.identities.identity(&link("1002", "usr_h", 12).key()).await?.is_none());
    // Linking: once, to an existing user only.
    s.users.create_user(&user("usr_p", "pat")?).await?;
    ensure!(already_exists(&s.identities.link_identity(&link("1001", "usr_p", 13)).await));
    let missing = s.identities.link_identity(&link("1003", "usr_nobody", 13)).await;
    ensure!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    s.identities.link_identity(&link("1004", "usr_p", 14)).await?;
    s.identities.link_identity(&link("1005", "usr_p", 15)).await?;
    let listed: Vec<String> = s.identities.identities_of("usr_p").await?.into_iter().map(|l| l.subject).collect();
    ensure!(listed == ["1004", "1005"], "{listed:?}");
    ensure!(
        s.identities.identities_of("usr_f").await?.len() == 1 && s.identities.identities_of("usr_x").await?.is_empty()
    );
    Ok(())
}

pub async fn concurrent_first_sign_ins_of_one_identity_create_one_user(s: Stores) -> Result<()> {
    let attempts = (0..8).map(|i| {
        let ids = s.identities.clone();
        async move {
            let u = passwordless(&format!("usr_c{i}"), &format!("idp-c{i}"))?;
            Ok::<_, anyhow::Error>(ids.create_federated_user(&u, &link("2001", &u.sub, 20)).await)
        }
    });
    let mut wins = 0;
    for r in futures::future::join_all(attempts.map(tokio::spawn)).await {
        match r?? {
            Ok(()) => wins += 1,
            Err(StoreError::AlreadyExists) => {}
            Err(e) => anyhow::bail!("unexpected {e:#}"),
        }
    }
    ensure!(wins == 1, "{wins} users for one identity");
    let owner = s.identities.identity(&link("2001", "", 0).key()).await?.map(|l| l.sub).unwrap_or_default();
    ensure!(s.users.user_by_sub(&owner).await?.is_some());
    Ok(())
}

pub async fn unlink_never_removes_the_last_way_in_even_concurrently(s: Stores) -> Result<()> {
    s.identities.create_federated_user(&passwordless("usr_u", "idp-uuuu")?, &link("3001", "usr_u", 30)).await?;
    s.identities.link_identity(&link("3002", "usr_u", 31)).await?;
    let keys = [link("3001", "", 0).key(), link("3002", "", 0).key()];
    let both = keys.iter().map(|k| {
        let (ids, k) = (s.identities.clone(), k.clone());
        async move { ids.unlink_identity("usr_u", &k, true).await }
    });
    let outcomes: Vec<Unlink> = futures::future::join_all(both.map(tokio::spawn))
        .await
        .into_iter()
        .map(|r| Ok::<_, anyhow::Error>(r??))
        .collect::<Result<_>>()?;
    let removed = outcomes.iter().filter(|o| **o == Unlink::Removed).count();
    ensure!(removed == 1 && outcomes.contains(&Unlink::LastMethod), "{outcomes:?}");
    ensure!(s.identities.identities_of("usr_u").await?.len() == 1, "one way in is left");
    // Someone else's link, or none: not found, nothing removed.
    s.users.create_user(&user("usr_q", "quinn")?).await?;
    s.identities.link_identity(&link("3003", "usr_q", 32)).await?;
    let left = s.identities.identities_of("usr_u").await?.remove(0).key();
    ensure!(s.identities.unlink_identity("usr_q", &left, false).await? == Unlink::NotFound);
    ensure!(s.identities.identities_of("usr_u").await?.len() == 1);
    // A user with a password may remove every link, and again after a new one.
    ensure!(s.identities.unlink_identity("usr_q", &link("3003", "", 0).key(), false).await? == Unlink::Removed);
    ensure!(s.identities.unlink_identity("usr_q", &link("3003", "", 0).key(), false).await? == Unlink::NotFound);
    s.identities.link_identity(&link("3004", "usr_q", 33)).await?;
    ensure!(s.identities.unlink_identity("usr_q", &link("3004", "", 0).key(), false).await? == Unlink::Removed);
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Every case function is in the macro's list, so each runs on every backend.
    #[test]
    fn every_case_is_in_the_test_list() {
        let source = [
            include_str!("conformance.rs"),
            include_str!("conformance/device.rs"),
            include_str!("conformance/admin.rs"),
        ]
        .concat();
        let list_start = source.find("(@each $stores:expr; $($case:ident),+ $(,)?)").unwrap_or(0);
        let list = &source[source.find("@each $stores;").unwrap_or(0)..list_start];
        let cases: Vec<&str> =
            source.split("\npub async fn ").skip(1).filter_map(|rest| rest.split('(').next()).collect();
        assert!(cases.len() >= 16, "{cases:?}");
        for case in cases {
            assert!(
                list.contains(&format!("{case},")) || list.contains(&format!("{case}\n")),
                "{case} is not in store_conformance_tests!"
            );
        }
    }
}
