//! The store conformance suite: the executable definition of the store traits' contracts.
//! Each case gets fresh, empty stores from a factory, so every backend (SQLite in memory and
//! on file, DynamoDB on the moto emulator) runs exactly these cases through [`run_all`].
use anyhow::{Result, ensure};
use futures::future::BoxFuture;
use oauth_core::domain::{
    AuthCode, AuthMethod, Client, DataItem, GrantType, RedirectUri, RefreshRecord, ScopeSet, User, Username,
};
use oauth_core::store::{Consume, Rotate, StoreError};
use time::OffsetDateTime;

pub use oauth_core::store::Stores;

type Case = fn(Stores) -> BoxFuture<'static, Result<()>>;

/// The instant `secs` seconds after the Unix epoch (the store traits take `OffsetDateTime`).
fn at(secs: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(secs)
}
/// Every case, by name.
pub const CASES: &[(&str, Case)] = &[
    ("created_user_is_found_by_username_key_and_sub", |s| Box::pin(created_user_is_found(s))),
    ("duplicate_username_in_any_case_is_refused_and_first_kept", |s| Box::pin(duplicate_username_refused(s))),
    ("concurrent_creates_of_one_username_have_exactly_one_winner", |s| Box::pin(concurrent_user_creates(s))),
    ("missing_user_is_none", |s| Box::pin(missing_user_is_none(s))),
    ("client_round_trips_and_ids_are_unique", |s| Box::pin(client_round_trip(s))),
    ("revocation_holds_until_its_expiry_and_is_idempotent", |s| Box::pin(revocation_window(s))),
    ("data_items_list_newest_first_per_subject_with_limit", |s| Box::pin(data_items(s))),
    ("counters_count_expire_and_reset", |s| Box::pin(counters(s))),
    ("concurrent_counter_hits_lose_no_update", |s| Box::pin(concurrent_counter_hits(s))),
    ("a_forgiven_hit_is_taken_back_never_below_zero_nor_past_its_window", |s| Box::pin(forgiven_hits(s))),
    ("password_hash_updates_and_missing_users_are_not_found", |s| Box::pin(password_update(s))),
    ("a_code_is_consumed_once_with_its_refresh_token_and_retries_are_recognised", |s| Box::pin(code_consumed_once(s))),
    ("concurrent_consumes_of_one_code_have_exactly_one_fresh", |s| Box::pin(concurrent_consumes(s))),
    ("refresh_tokens_rotate_once_and_retries_are_recognised", |s| Box::pin(refresh_rotates_once(s))),
    ("concurrent_rotations_of_one_refresh_token_have_one_winner", |s| Box::pin(concurrent_rotations(s))),
    ("a_revoked_family_is_revoked_until_its_expiry", |s| Box::pin(family_revocation(s))),
];

/// Run every case against fresh stores from `make`; report all failures by name.
///
/// # Errors
/// The names and errors of the failing cases.
pub async fn run_all<F, Fut>(make: F) -> Result<usize>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Stores>>,
{
    let mut failures = Vec::new();
    for (name, case) in CASES {
        if let Err(e) = case(make().await?).await {
            failures.push(format!("{name}: {e:#}"));
        }
    }
    ensure!(failures.is_empty(), "store conformance failures:\n{}", failures.join("\n"));
    Ok(CASES.len())
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
    })
}

async fn created_user_is_found(s: Stores) -> Result<()> {
    let u = user("usr_1", "Alice")?;
    s.users.create_user(&u).await?;
    ensure!(s.users.user_by_username("alice").await?.as_ref() == Some(&u), "by username key");
    ensure!(s.users.user_by_sub("usr_1").await?.as_ref() == Some(&u), "by sub");
    Ok(())
}

async fn duplicate_username_refused(s: Stores) -> Result<()> {
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

async fn concurrent_user_creates(s: Stores) -> Result<()> {
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

async fn missing_user_is_none(s: Stores) -> Result<()> {
    ensure!(s.users.user_by_username("nobody").await?.is_none());
    ensure!(s.users.user_by_sub("usr_nobody").await?.is_none());
    Ok(())
}

async fn client_round_trip(s: Stores) -> Result<()> {
    let c = Client {
        client_id: "cl_1".into(),
        secret_hash: Some("hash".into()),
        client_name: Some("Demo <app>".into()),
        redirect_uris: vec![RedirectUri::parse("https://client.example/cb").map_err(anyhow::Error::msg)?],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        auth_method: AuthMethod::ClientSecretBasic,
        scope: ScopeSet::client_default(),
        id_token_signed_response_alg: "RS256".into(),
        created_at: 1_800_000_000,
        trusted: true,
    };
    s.clients.create_client(&c).await?;
    ensure!(s.clients.client("cl_1").await?.as_ref() == Some(&c), "round trip");
    let r = s.clients.create_client(&Client { client_name: None, ..c.clone() }).await;
    ensure!(matches!(r, Err(StoreError::AlreadyExists)), "duplicate id: {r:?}");
    ensure!(s.clients.client("cl_1").await?.as_ref() == Some(&c), "overwritten");
    ensure!(s.clients.client("cl_2").await?.is_none());
    Ok(())
}

async fn revocation_window(s: Stores) -> Result<()> {
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

async fn data_items(s: Stores) -> Result<()> {
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

async fn counters(s: Stores) -> Result<()> {
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

async fn forgiven_hits(s: Stores) -> Result<()> {
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

async fn concurrent_counter_hits(s: Stores) -> Result<()> {
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

async fn password_update(s: Stores) -> Result<()> {
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
    })
}

async fn code_consumed_once(s: Stores) -> Result<()> {
    s.codes.put_code(&code("c1")?).await?;
    ensure!(s.codes.code("c1").await?.as_ref() == Some(&code("c1")?), "read back");
    ensure!(matches!(s.codes.put_code(&code("c1")?).await, Err(StoreError::AlreadyExists)), "duplicate code");
    let rt = refresh("r1")?;
    let first = s.codes.consume_code("c1", at(1_800_000_010), at(1_800_000_010 + 3600), "req_a", Some(&rt)).await?;
    ensure!(first == Consume::Fresh, "first consume: {first:?}");
    ensure!(s.tokens.refresh("r1").await?.as_ref() == Some(&rt), "refresh token stored with the consume");
    match s
        .codes
        .consume_code("c1", at(1_800_000_020), at(1_800_000_020 + 3600), "req_b", Some(&refresh("r2")?))
        .await?
    {
        Consume::Replayed(c) => ensure!(c.consumed_at == Some(1_800_000_010) && c.family_id == "fam_1", "{c:?}"),
        other => anyhow::bail!("second consume: {other:?}"),
    }
    // The same request retried (its first response lost): not a replay, nothing new written.
    let retried = s.codes.consume_code("c1", at(1_800_000_011), at(1_800_000_011 + 3600), "req_a", Some(&rt)).await?;
    ensure!(retried == Consume::Fresh, "retry: {retried:?}");
    ensure!(s.tokens.refresh("r2").await?.is_none(), "a replay wrote a refresh token");
    ensure!(s.codes.code("c1").await?.and_then(|c| c.consumed_at) == Some(1_800_000_010), "consumed_at kept");
    ensure!(matches!(s.codes.consume_code("nope", at(1), at(3601), "req_c", None).await?, Consume::Missing));
    ensure!(s.codes.code("nope").await?.is_none());
    Ok(())
}

async fn concurrent_consumes(s: Stores) -> Result<()> {
    s.codes.put_code(&code("c1")?).await?;
    let tasks = (0..20).map(|i| {
        let codes = s.codes.clone();
        tokio::spawn(async move {
            let rt = refresh(&format!("r{i}"))?;
            codes
                .consume_code("c1", at(1_800_000_010), at(1_800_000_010 + 3600), &format!("req_{i}"), Some(&rt))
                .await
                .map_err(anyhow::Error::from)
        })
    });
    let mut fresh = 0;
    for r in futures::future::join_all(tasks).await {
        match r?? {
            Consume::Fresh => fresh += 1,
            Consume::Replayed(_) => {}
            Consume::Missing => anyhow::bail!("code vanished"),
        }
    }
    ensure!(fresh == 1, "{fresh} fresh consumes");
    let mut stored = 0;
    for i in 0..20 {
        stored += usize::from(s.tokens.refresh(&format!("r{i}")).await?.is_some());
    }
    ensure!(stored == 1, "{stored} refresh tokens stored");
    Ok(())
}

async fn seed_refresh(s: &Stores, hash: &str) -> Result<()> {
    s.codes.put_code(&code(&format!("code-{hash}"))?).await?;
    let c = s
        .codes
        .consume_code(
            &format!("code-{hash}"),
            at(1_800_000_000),
            at(1_800_000_000 + 3600),
            "req_seed",
            Some(&refresh(hash)?),
        )
        .await?;
    ensure!(c == Consume::Fresh, "{c:?}");
    Ok(())
}

async fn refresh_rotates_once(s: Stores) -> Result<()> {
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
    Ok(())
}

async fn concurrent_rotations(s: Stores) -> Result<()> {
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
            Rotate::Missing => anyhow::bail!("token vanished"),
        }
    }
    ensure!(winners == 1, "{winners} winners");
    Ok(())
}

async fn family_revocation(s: Stores) -> Result<()> {
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
