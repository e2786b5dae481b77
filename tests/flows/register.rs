//! `POST /register`.
use oauth_tests::harness::{TestEnv, str_field};
use serde_json::{Value, json};

#[tokio::test]
async fn registering_a_user_returns_201_with_a_stable_sub_and_stores_an_argon2id_hash() -> anyhow::Result<()> {
    // Arrange
    let env = TestEnv::new().await?;
    // Act
    let body = env.register_user("alice", "correct horse battery staple").await?;
    // Assert
    assert_eq!(body["message"], "User registered successfully!");
    assert_eq!(body["username"], "alice");
    let sub = str_field(&body, "sub")?;
    assert!(sub.starts_with("usr_") && sub.len() >= 26, "{sub}");
    let stored = env.app.users.user_by_username("alice").await?.ok_or_else(|| anyhow::anyhow!("not stored"))?;
    assert_eq!(stored.sub, sub);
    assert!(stored.password_hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", stored.password_hash);
    assert!(!stored.password_hash.contains("correct horse"));
    Ok(())
}

#[tokio::test]
async fn same_password_gives_different_hashes() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.register_user("alice", "correct horse battery staple").await?;
    env.register_user("bob", "correct horse battery staple").await?;
    let a = env.app.users.user_by_username("alice").await?.map(|u| u.password_hash);
    let b = env.app.users.user_by_username("bob").await?.map(|u| u.password_hash);
    assert!(a.is_some() && a != b);
    Ok(())
}

#[tokio::test]
async fn a_taken_username_in_any_case_gets_409_username_taken() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.register_user("alice", "correct horse battery staple").await?;
    for name in ["alice", "ALICE", "Alice"] {
        let r = env
            .http
            .post(env.url("/register"))
            .json(&json!({"username": name, "password": "another good password"}))
            .send()
            .await?;
        assert_eq!(r.status(), 409, "{name}");
        let body: Value = r.json().await?;
        assert_eq!(body["error"], "username_taken", "{name}");
    }
    Ok(())
}

#[tokio::test]
async fn concurrent_registrations_of_one_name_have_exactly_one_winner() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let reqs = (0..6).map(|i| {
        let name = if i % 2 == 0 { "carol" } else { "CAROL" };
        env.http
            .post(env.url("/register"))
            .json(&json!({"username": name, "password": "correct horse battery staple"}))
            .send()
    });
    let statuses: Vec<u16> = futures::future::join_all(reqs)
        .await
        .into_iter()
        .map(|r| r.map(|r| r.status().as_u16()))
        .collect::<Result<_, _>>()?;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 5, "{statuses:?}");
    Ok(())
}

#[tokio::test]
async fn invalid_registrations_get_400_invalid_request_and_store_nothing() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let long_name = "a".repeat(65);
    let long_pw = "p".repeat(1025);
    let cases: Vec<(&str, Value)> = vec![
        ("missing username", json!({"password": "correct horse battery staple"})),
        ("missing password", json!({"username": "dave"})),
        ("username too short", json!({"username": "ab", "password": "correct horse battery staple"})),
        ("username too long", json!({"username": long_name, "password": "correct horse battery staple"})),
        ("username with space", json!({"username": "da ve", "password": "correct horse battery staple"})),
        ("username with NUL", json!({"username": "dave\u{0}admin", "password": "correct horse battery staple"})),
        (
            "username with bidi override",
            json!({"username": "da\u{202e}ve", "password": "correct horse battery staple"}),
        ),
        ("fullwidth username", json!({"username": "ｄａｖｅ", "password": "correct horse battery staple"})),
        ("numeric username", json!({"username": 12345, "password": "correct horse battery staple"})),
        ("password too short", json!({"username": "dave", "password": "short12"})),
        ("password too long", json!({"username": "dave", "password": long_pw})),
        ("password equals username", json!({"username": "davedave", "password": "DAVEDAVE"})),
        ("common password", json!({"username": "dave", "password": "password123"})),
        ("password not a string", json!({"username": "dave", "password": ["x"]})),
        ("bad email", json!({"username": "dave", "password": "correct horse battery staple", "email": "not-an-email"})),
        ("array body", json!(["dave"])),
    ];
    for (name, body) in cases {
        let r = env.http.post(env.url("/register")).json(&body).send().await?;
        assert_eq!(r.status(), 400, "{name}");
        let b: Value = r.json().await?;
        assert_eq!(b["error"], "invalid_request", "{name}");
        assert!(b["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{name}");
    }
    assert!(env.app.users.user_by_username("dave").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn the_password_never_appears_in_an_error_response() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    for body in [
        json!({"username": "x", "password": "UniqueSecretValue-42"}),
        json!({"username": "UniqueSecretValue-42", "password": "UniqueSecretValue-42"}),
    ] {
        let r = env.http.post(env.url("/register")).json(&body).send().await?;
        assert_eq!(r.status(), 400);
        let text = r.text().await?;
        assert!(!text.contains("UniqueSecretValue-42"), "{text}");
    }
    Ok(())
}

#[tokio::test]
async fn with_sign_up_switched_off_register_is_403_and_nothing_is_created() -> anyhow::Result<()> {
    let env = TestEnv::with_vars(&[("SIGNUP_ENABLED", "false")]).await?;
    for body in [json!({"username": "alice", "password": "correct horse battery staple"}), json!({})] {
        let r = env.http.post(env.url("/register")).json(&body).send().await?;
        assert_eq!(r.status(), 403);
        assert!(r.headers()["content-type"].to_str()?.starts_with("application/json"));
        let v: Value = r.json().await?;
        assert_eq!(v["error"], "signup_disabled", "{v}");
        assert!(v["error_description"].as_str().is_some_and(|d| d.contains("sign-up is turned off")), "{v}");
    }
    assert!(env.app.users.user_by_username("alice").await?.is_none());
    // Not counted against the address either: the switch answers before any work.
    assert!(!env.faults.calls().contains_key("hit"), "{:?}", env.faults.calls());
    Ok(())
}
