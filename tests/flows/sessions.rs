//! Sign in once (docs/API.md, "Sessions and consent"; docs/SECURITY.md S1-S6): the browser
//! session, remembered consent, `prompt`, `max_age` and `id_token_hint`, and the session's
//! idle and absolute ends, through the local server as a browser drives it.
use oauth_tests::harness::{
    Browser, CB, CHALLENGE, PASSWORD, Page, TestEnv, VERIFIER, authz_query, decode_unverified, str_field,
};
use serde_json::{Value, json};

/// An authorization request of `client_id` for `scope` with extra parameters.
fn query(client_id: &str, scope: &str, extra: &[(&str, &str)]) -> String {
    let mut q = authz_query(client_id, Some(CB), scope, "st");
    for (k, v) in extra {
        q.push('&');
        q.push_str(&url::form_urlencoded::Serializer::new(String::new()).append_pair(k, v).finish());
    }
    q
}

/// Exchange `code` for `client` and return the token response (200 required).
async fn exchange(env: &TestEnv, (id, secret): &(String, String), code: &str) -> anyhow::Result<Value> {
    let (status, body) = env.exchange(id, secret, code, VERIFIER, Some(CB)).await?;
    anyhow::ensure!(status == 200, "exchange: {status} {body}");
    Ok(body)
}

/// The `auth_time` of the response's ID token.
fn auth_time(tokens: &Value) -> anyhow::Result<i64> {
    let (_, claims) = decode_unverified(&str_field(tokens, "id_token")?)?;
    claims["auth_time"].as_i64().ok_or_else(|| anyhow::anyhow!("no auth_time in {claims}"))
}

fn now(env: &TestEnv) -> i64 {
    oauth_core::clock::Clock::now(&*env.clock).unix_timestamp()
}

/// A page answered at once: a redirect to the client with a code, `state` and `iss`.
fn silent_code(p: &Page) -> anyhow::Result<String> {
    anyhow::ensure!(p.status == 302, "expected the code at once: {} {}", p.status, p.html);
    anyhow::ensure!(p.location_param("state").as_deref() == Some("st"), "{:?}", p.location());
    anyhow::ensure!(p.location_param("iss").as_deref() == Some(oauth_tests::harness::ISSUER));
    p.location_param("code").ok_or_else(|| anyhow::anyhow!("no code: {:?}", p.location()))
}

/// The consent page of a signed-in user: no password, the user named.
fn is_consent_page(p: &Page) -> bool {
    p.status == 200
        && !p.html.contains("name=\"password\"")
        && p.html.contains("You are signed in as <strong>alice</strong>")
}

fn is_login_page(p: &Page) -> bool {
    p.status == 200 && p.html.contains("name=\"password\"")
}

#[tokio::test]
async fn one_sign_in_serves_a_second_client_with_consent_only_and_the_first_silently() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let first = env.web_client("openid data:read").await?;
    let second = env.web_client("openid data:read").await?;
    let mut b = env.browser();
    let login_time = now(&env);
    let code = b.sign_in_for_code(&first.0, "openid").await?;
    assert_eq!(auth_time(&exchange(&env, &first, &code).await?)?, login_time);

    env.clock.advance(40);
    let p = b.authorize(&query(&second.0, "openid data:read", &[])).await?;
    assert!(is_consent_page(&p), "{}", p.html);
    assert!(p.html.contains("Read your stored data"), "the consent page lists what is asked");
    let done = b.consent(&p, "allow").await?;
    assert_eq!(done.status, 303, "{}", done.html);
    let code = done.location_param("code").ok_or_else(|| anyhow::anyhow!("no code"))?;
    let tokens = exchange(&env, &second, &code).await?;
    assert_eq!(auth_time(&tokens)?, login_time, "the session's auth_time, not the consent's");

    env.clock.advance(40);
    let code = silent_code(&b.authorize(&query(&first.0, "openid", &[])).await?)?;
    assert_eq!(auth_time(&exchange(&env, &first, &code).await?)?, login_time);
    // Another browser is not signed in.
    assert!(is_login_page(&env.browser().authorize(&query(&first.0, "openid", &[])).await?));
    Ok(())
}

#[tokio::test]
async fn remembered_consent_covers_what_was_allowed_and_a_wider_request_lists_only_what_is_new() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let c = env.web_client("openid profile data:read data:write").await?;
    let mut b = env.browser();
    b.sign_in_for_code(&c.0, "openid data:read").await?;
    silent_code(&b.authorize(&query(&c.0, "openid data:read", &[])).await?)?;
    silent_code(&b.authorize(&query(&c.0, "openid", &[])).await?)?;
    let p = b.authorize(&query(&c.0, "openid data:read data:write", &[])).await?;
    assert!(is_consent_page(&p), "{}", p.html);
    assert!(p.html.contains("Add to your stored data"), "the new scope is listed");
    assert!(!p.html.contains("Read your stored data"), "what was allowed is not asked again");
    let done = b.consent(&p, "allow").await?;
    let code = done.location_param("code").ok_or_else(|| anyhow::anyhow!("{} {}", done.status, done.html))?;
    assert_eq!(exchange(&env, &c, &code).await?["scope"], "openid data:read data:write");
    silent_code(&b.authorize(&query(&c.0, "openid data:read data:write", &[])).await?)?;
    // Denying a wider request keeps what was allowed.
    let p = b.authorize(&query(&c.0, "openid profile", &[])).await?;
    assert!(is_consent_page(&p));
    let denied = b.consent(&p, "deny").await?;
    assert_eq!(denied.location_param("error").as_deref(), Some("access_denied"));
    silent_code(&b.authorize(&query(&c.0, "openid data:write", &[])).await?)?;
    Ok(())
}

#[tokio::test]
async fn public_native_and_loopback_clients_are_always_shown_the_page() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let web = env.web_client("openid").await?;
    let public = env
        .register_client(json!({"redirect_uris": [CB], "token_endpoint_auth_method": "none", "scope": "openid"}))
        .await?;
    let public_id = str_field(&public, "client_id")?;
    let loopback = env.register_client(json!({"redirect_uris": ["http://127.0.0.1/cb"], "scope": "openid"})).await?;
    let loopback_id = str_field(&loopback, "client_id")?;
    let mut b = env.browser();
    b.sign_in_for_code(&web.0, "openid").await?;
    for (id, redirect) in [(&public_id, CB), (&loopback_id, "http://127.0.0.1:5555/cb")] {
        for round in 0..2 {
            let q = authz_query(id, Some(redirect), "openid", "st");
            let p = b.authorize(&q).await?;
            assert!(is_consent_page(&p), "{id} round {round}: {} {}", p.status, p.html);
            let done = b.consent(&p, "allow").await?;
            assert!(done.location_param("code").is_some(), "{id}: {}", done.status);
            // Under prompt=none the answer is interaction_required, never a code.
            let none = b.authorize(&format!("{q}&prompt=none")).await?;
            assert_eq!(none.location_param("error").as_deref(), Some("interaction_required"), "{id}");
            assert!(none.location_param("code").is_none());
        }
    }
    Ok(())
}

#[tokio::test]
async fn prompt_none_answers_from_the_session_or_says_what_is_missing() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let c = env.web_client("openid data:read").await?;
    let other = env.web_client("openid").await?;
    let none = [("prompt", "none")];
    // No session: login_required (the client is trusted by the registration token only in
    // other tests; here it is untrusted, so the error is a page with the link).
    let mut b = env.browser();
    let p = b.authorize(&query(&c.0, "openid", &none)).await?;
    assert_eq!(p.error_code().as_deref(), Some("login_required"), "{}", p.html);
    assert!(p.location().is_none(), "no redirect to a client nobody vouched for");
    let login_time = now(&env);
    b.sign_in_for_code(&c.0, "openid").await?;
    env.clock.advance(10);
    let code = silent_code(&b.authorize(&query(&c.0, "openid", &none)).await?)?;
    assert_eq!(auth_time(&exchange(&env, &c, &code).await?)?, login_time);
    // More than was allowed: consent_required, to the client (it was allowed before).
    let p = b.authorize(&query(&c.0, "openid data:read", &none)).await?;
    assert_eq!(p.status, 302);
    assert_eq!(p.location_param("error").as_deref(), Some("consent_required"));
    assert_eq!(p.location_param("state").as_deref(), Some("st"));
    // Never allowed at all: consent_required too, without revealing anything to an
    // untrusted client (a page, no redirect).
    let p = b.authorize(&query(&other.0, "openid", &none)).await?;
    assert_eq!(p.error_code().as_deref(), Some("consent_required"), "{}", p.html);
    assert!(p.location().is_none());
    // prompt=none with another value, or an unknown value: invalid_request, not ignored.
    for bad in ["none login", "create", "none consent"] {
        let p = b.authorize(&query(&c.0, "openid", &[("prompt", bad)])).await?;
        assert_eq!(p.error_code().as_deref(), Some("invalid_request"), "{bad}");
    }
    Ok(())
}

#[tokio::test]
async fn prompt_login_select_account_and_max_age_ask_for_the_password_and_move_auth_time() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let c = env.web_client("openid").await?;
    let mut b = env.browser();
    let first_login = now(&env);
    b.sign_in_for_code(&c.0, "openid").await?;
    env.clock.advance(100);
    // max_age not yet reached: silent, the first login's auth_time.
    let code = silent_code(&b.authorize(&query(&c.0, "openid", &[("max_age", "100")])).await?)?;
    assert_eq!(auth_time(&exchange(&env, &c, &code).await?)?, first_login);
    // max_age passed, max_age=0, prompt=login, prompt=select_account: the password form.
    for extra in [[("max_age", "99")], [("max_age", "0")], [("prompt", "login")], [("prompt", "select_account")]] {
        let p = b.authorize(&query(&c.0, "openid", &extra)).await?;
        assert!(is_login_page(&p), "{extra:?}: {} {}", p.status, p.html);
        // Under prompt=none they are login_required.
        if extra[0].0 == "max_age" {
            let mut with_none = extra.to_vec();
            with_none.push(("prompt", "none"));
            let p = b.authorize(&query(&c.0, "openid", &with_none)).await?;
            assert_eq!(p.location_param("error").as_deref(), Some("login_required"), "{extra:?}");
        }
    }
    let old_session = b.session.clone();
    let p = b.authorize(&query(&c.0, "openid", &[("prompt", "login")])).await?;
    let relogin = now(&env);
    let done = b.login(&p, "alice", PASSWORD, "allow").await?;
    let code = done.location_param("code").ok_or_else(|| anyhow::anyhow!("{}", done.html))?;
    assert_eq!(auth_time(&exchange(&env, &c, &code).await?)?, relogin, "the new login's time");
    assert_ne!(b.session, old_session, "a new session id at every login");
    // The old session is over: its cookie signs nobody in.
    let mut stale = env.browser();
    stale.session = old_session;
    assert!(is_login_page(&stale.authorize(&query(&c.0, "openid", &[])).await?));
    // prompt=consent: the page, even though everything was allowed.
    let p = b.authorize(&query(&c.0, "openid", &[("prompt", "consent")])).await?;
    assert!(is_consent_page(&p), "{}", p.html);
    Ok(())
}

#[tokio::test]
async fn an_id_token_hint_for_another_user_means_signing_in_as_that_user() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    env.register_user("bob", PASSWORD).await?;
    let c = env.web_client("openid").await?;
    // Bob's ID token, from another browser.
    let mut bobs = env.browser();
    let page = bobs.authorize(&query(&c.0, "openid", &[])).await?;
    let done = bobs.login(&page, "bob", PASSWORD, "allow").await?;
    let code = done.location_param("code").ok_or_else(|| anyhow::anyhow!("{}", done.html))?;
    let bob_id_token = str_field(&exchange(&env, &c, &code).await?, "id_token")?;
    // Alice's browser, with bob's hint.
    let mut b = env.browser();
    let code = b.sign_in_for_code(&c.0, "openid").await?;
    let alice_id_token = str_field(&exchange(&env, &c, &code).await?, "id_token")?;
    let hint = [("id_token_hint", bob_id_token.as_str()), ("prompt", "none")];
    let p = b.authorize(&query(&c.0, "openid", &hint)).await?;
    assert_eq!(p.location_param("error").as_deref(), Some("login_required"));
    // Her own hint (expired ones too) is answered silently.
    env.clock.advance(3600);
    let own = [("id_token_hint", alice_id_token.as_str()), ("prompt", "none")];
    silent_code(&b.authorize(&query(&c.0, "openid", &own)).await?)?;
    // Without prompt=none: the password form, and signing in as alice there is refused.
    let p = b.authorize(&query(&c.0, "openid", &[("id_token_hint", bob_id_token.as_str())])).await?;
    assert!(is_login_page(&p));
    let refused = b.login(&p, "alice", PASSWORD, "allow").await?;
    assert_eq!(refused.location_param("error").as_deref(), Some("login_required"));
    // A hint this server did not sign names nobody: a fresh login.
    let (h, _) = bob_id_token.rsplit_once('.').unwrap_or_default();
    let forged = format!("{h}.AAAA");
    let p = b.authorize(&query(&c.0, "openid", &[("id_token_hint", &forged), ("prompt", "none")])).await?;
    assert_eq!(p.location_param("error").as_deref(), Some("login_required"));
    Ok(())
}

#[tokio::test]
async fn a_session_ends_when_idle_and_at_its_absolute_end_whatever_its_use() -> anyhow::Result<()> {
    let env = TestEnv::with_vars(&[("SESSION_IDLE_SECONDS", "600"), ("SESSION_ABSOLUTE_SECONDS", "1800")]).await?;
    env.alice().await?;
    let c = env.web_client("openid").await?;
    let mut b = env.browser();
    let code = b.sign_in_for_code(&c.0, "openid").await?;
    // Without offline_access the refresh token is the session's.
    let mut rt = str_field(&exchange(&env, &c, &code).await?, "refresh_token")?;
    // Used every 500 s (each use after 300 s moves the idle end), it lives to its absolute end.
    for _ in 0..3 {
        env.clock.advance(500);
        silent_code(&b.authorize(&query(&c.0, "openid", &[])).await?)?;
        let (status, body) = env.refresh(&c.0, &c.1, &rt, None).await?;
        assert_eq!(status, 200, "{body}");
        rt = str_field(&body, "refresh_token")?;
    }
    env.clock.advance(300);
    assert!(is_login_page(&b.authorize(&query(&c.0, "openid", &[])).await?), "past the absolute end");
    let (status, _) = env.refresh(&c.0, &c.1, &rt, None).await?;
    assert_eq!(status, 400, "the session's refresh token ends with it");
    // Idle: unused for the idle time, it is over, and so is its refresh token (a refresh is
    // no use of the browser's session).
    let mut b = env.browser();
    let code = b.sign_in_for_code(&c.0, "openid").await?;
    let rt = str_field(&exchange(&env, &c, &code).await?, "refresh_token")?;
    env.clock.advance(599);
    silent_code(&b.authorize(&query(&c.0, "openid", &[])).await?)?;
    let (status, body) = env.refresh(&c.0, &c.1, &rt, None).await?;
    assert_eq!(status, 200);
    let rt = str_field(&body, "refresh_token")?;
    env.clock.advance(600);
    assert!(is_login_page(&b.authorize(&query(&c.0, "openid", &[])).await?), "idle");
    let (status, _) = env.refresh(&c.0, &c.1, &rt, None).await?;
    assert_eq!(status, 400, "an idle session's refresh token");
    // Housekeeping (DynamoDB's TTL, SQLite's purge) then removes it.
    env.clock.advance(1800);
    assert!(env.expire_records().await? >= 2, "the ended sessions' records");
    Ok(())
}

#[tokio::test]
async fn the_session_cookie_is_host_only_http_only_lax_and_secure_on_https() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let c = env.web_client("openid").await?;
    let page = env.authorize(&authz_query(&c.0, Some(CB), "openid", "st")).await?;
    let resp = env
        .http
        .post(env.url("/oauth/authorize"))
        .header("cookie", env.csrf_cookie(page.cookie.as_deref().unwrap_or_default()))
        .form(&[
            ("request", page.request.as_deref().unwrap_or_default()),
            ("username", "alice"),
            ("password", PASSWORD),
            ("decision", "allow"),
        ])
        .send()
        .await?;
    assert_eq!(resp.status(), 303);
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-session="))
        .ok_or_else(|| anyhow::anyhow!("no __Host-session cookie"))?
        .to_owned();
    for attr in ["; Path=/", "; HttpOnly", "; SameSite=Lax", "; Secure", "; Max-Age=1209600"] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }
    assert!(!cookie.contains("Domain="), "host-only");
    let value = cookie.trim_start_matches("__Host-session=").split(';').next().unwrap_or_default();
    let (sub, secret) = value.split_once('.').unwrap_or_default();
    assert!(sub.starts_with("usr_") && secret.len() == 43, "{value}");
    // Only the hash of the random part is stored.
    let sessions = env.app.sessions.sessions_of(sub, oauth_core::clock::Clock::now(&*env.clock)).await?;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions.first().map(|s| s.id_hash.as_str()), Some(oauth_core::crypto::sha256_b64(secret).as_str()));
    assert!(!format!("{sessions:?}").contains(secret));
    let _ = CHALLENGE;
    Ok(())
}

/// Forged, expired, replayed and foreign session cookies sign nobody in, and a request
/// carrying one changes nothing stored.
#[tokio::test]
async fn forged_expired_and_foreign_session_cookies_sign_nobody_in() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let alice = env.alice().await?;
    let bob = str_field(&env.register_user("bob", PASSWORD).await?, "sub")?;
    let c = env.web_client("openid").await?;
    let mut b = env.browser();
    b.sign_in_for_code(&c.0, "openid").await?;
    let real = b.session.clone().unwrap_or_default();
    let (_, secret) = real.split_once('.').unwrap_or_default();
    let cases = [
        ("made up", format!("{alice}.{}", "A".repeat(43))),
        ("another user's id with alice's secret", format!("{bob}.{secret}")),
        ("truncated", real.get(..real.len() - 1).unwrap_or_default().to_owned()),
        ("extended", format!("{real}A")),
        ("no user", format!(".{secret}")),
        ("junk", "usr_x.!@#$%^&*()[]{}".to_owned()),
        ("very long", "x".repeat(5000)),
    ];
    for (name, value) in &cases {
        let mut forged = env.browser();
        forged.session = Some(value.clone());
        let p = forged.authorize(&query(&c.0, "openid", &[])).await?;
        assert!(is_login_page(&p) || p.status == 400, "{name}: {} {}", p.status, p.html);
        let none = forged.authorize(&query(&c.0, "openid", &[("prompt", "none")])).await?;
        assert!(none.location_param("code").is_none(), "{name}");
        let acct = forged.get("/account").await?;
        assert!(acct.html.contains("name=\"password\""), "{name}: the account page asks to sign in");
    }
    // Still exactly alice's one session, untouched.
    let t = oauth_core::clock::Clock::now(&*env.clock);
    assert_eq!(env.app.sessions.sessions_of(&alice, t).await?.len(), 1);
    assert!(env.app.sessions.sessions_of(&bob, t).await?.is_empty());
    // Expired: past its end it is refused, and a replay of the old value after a new login
    // (the login replaced it) too.
    env.clock.advance(14 * 86_400);
    assert!(is_login_page(&b.authorize(&query(&c.0, "openid", &[])).await?));
    let old = b.session.clone();
    b.sign_in_for_code(&c.0, "openid").await?;
    let mut replay = env.browser();
    replay.session = old;
    assert!(is_login_page(&replay.authorize(&query(&c.0, "openid", &[])).await?));
    Ok(())
}

/// A silent authorization costs one store read for the session and the grant together, the
/// client read and the code write: no throttle counter, no password (docs/API.md).
#[tokio::test]
async fn a_silent_authorization_reads_the_session_and_grant_once_and_writes_the_code() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let c = env.web_client("openid").await?;
    let mut b: Browser<'_> = env.browser();
    b.sign_in_for_code(&c.0, "openid").await?;
    env.faults.reset_calls();
    silent_code(&b.authorize(&query(&c.0, "openid", &[])).await?)?;
    let calls = env.faults.calls();
    let want: std::collections::HashMap<&str, usize> =
        [("client", 1), ("session_with_grant", 1), ("put_code", 1)].into_iter().collect();
    assert_eq!(calls, want);
    // A use more than five minutes after the last one also moves the idle end: one write.
    env.clock.advance(301);
    env.faults.reset_calls();
    silent_code(&b.authorize(&query(&c.0, "openid", &[])).await?)?;
    assert_eq!(env.faults.calls().get("touch_session"), Some(&1));
    Ok(())
}
