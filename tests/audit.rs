//! Audit events (issue 6 §6): a full flow's log output, captured in the production JSON
//! format, has one line per security event with its ids and the source address, and no
//! secret, password, code or token anywhere.
use oauth_core::keys::KeySetDoc;
use oauth_tests::aws::{emulator, fresh_key_secret};
use oauth_tests::harness::{CB, PASSWORD, TestEnv, VERIFIER, authz_query, str_field};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const EVENTS: &[&str] = &[
    "user_registered",
    "client_registered",
    "login_failed",
    "login_throttled",
    "login_succeeded",
    "code_issued",
    "token_issued",
    "code_replay_detected",
    "refresh_reuse_detected",
    "family_revoked",
    "token_revoked",
    "client_auth_failed",
    "rate_limited",
    "key_rotated",
    "session_started",
    "authorized_silently",
    "grant_revoked",
    "password_changed",
    "sessions_ended",
    "logout",
    "session_ended",
];

#[tokio::test]
async fn a_full_flow_logs_every_security_event_and_no_secret() -> anyhow::Result<()> {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber =
        oauth_core::telemetry::json_subscriber(tracing_subscriber::filter::LevelFilter::INFO, move || writer.clone());
    // This test's thread only (tokio::test runs the server's tasks on it too).
    let _guard = tracing::subscriber::set_default(subscriber);

    let env = TestEnv::with_vars(&[
        ("LOGIN_MAX_FAILURES", "2"),
        ("CLIENT_AUTH_FAILURES_PER_IP", "2"),
        ("OAUTH_REGISTRATION_TOKEN", "registration-token-0123456789"),
    ])
    .await?;
    let mut secrets: Vec<String> = vec![PASSWORD.into(), VERIFIER.into(), "registration-token-0123456789".into()];
    let alice = env.alice().await?;
    let c: Value = env
        .http
        .post(env.url("/register_client"))
        .bearer_auth("registration-token-0123456789")
        .json(&json!({"client_name": "Web app", "redirect_uris": [CB], "scope": "openid offline_access data:read"}))
        .send()
        .await?
        .json()
        .await?;
    let (id, secret) = (str_field(&c, "client_id")?, str_field(&c, "client_secret")?);
    secrets.push(secret.clone());

    // A failed login, then two more lock the username (LOGIN_MAX_FAILURES=2).
    for pw in ["wrong password one", "wrong password two", "wrong password three"] {
        let page = env.authorize(&authz_query(&id, Some(CB), "openid offline_access data:read", "s")).await?;
        env.submit(&page, "bob", pw, "allow").await?;
        secrets.push(pw.into());
    }
    // Login, code, tokens; the code replayed.
    let code = env.code_for(&id, CB, "openid offline_access data:read").await?;
    let (status, tokens) = env.exchange(&id, &secret, &code, VERIFIER, Some(CB)).await?;
    assert_eq!(status, 200, "{tokens}");
    let (replay, _) = env.exchange(&id, &secret, &code, VERIFIER, Some(CB)).await?;
    assert_eq!(replay, 400);
    secrets.push(code);
    for f in ["access_token", "refresh_token", "id_token"] {
        secrets.push(str_field(&tokens, f)?);
    }
    // A second family: rotate once, then reuse the old refresh token after the grace window.
    let code = env.code_for(&id, CB, "openid offline_access data:read").await?;
    let (_, t2) = env.exchange(&id, &secret, &code, VERIFIER, Some(CB)).await?;
    let rt2 = str_field(&t2, "refresh_token")?;
    let (status, t3) = env.refresh(&id, &secret, &rt2, None).await?;
    assert_eq!(status, 200, "{t3}");
    env.clock.advance(30);
    let (reuse, _) = env.refresh(&id, &secret, &rt2, None).await?;
    assert_eq!(reuse, 400);
    secrets.extend([code, rt2, str_field(&t2, "access_token")?, str_field(&t3, "refresh_token")?]);
    // Revocation of an access token.
    let at = str_field(&t3, "access_token")?;
    let r = env.post_form_basic("/oauth/revoke", &id, &secret, &[("token", &at)]).await?;
    assert_eq!(r.status(), 200);
    secrets.push(at);
    // Failed client authentication until the address is limited.
    for _ in 0..3 {
        env.post_form_basic("/oauth/token", &id, "a wrong client secret", &[("grant_type", "client_credentials")])
            .await?;
    }
    secrets.push("a wrong client secret".into());
    // A browser session: sign in, a silent authorization, the account page's forms, logout.
    let other = env
        .http
        .post(env.url("/register_client"))
        .bearer_auth("registration-token-0123456789")
        .json(&json!({"client_name": "Other app", "redirect_uris": [CB], "scope": "openid"}))
        .send()
        .await?
        .json::<Value>()
        .await?;
    let other_id = str_field(&other, "client_id")?;
    secrets.push(str_field(&other, "client_secret")?);
    let mut b = env.browser();
    let code = b.sign_in_for_code(&id, "openid").await?;
    let first_session = b.session.clone();
    let silent = b.authorize(&authz_query(&id, Some(CB), "openid", "s")).await?;
    let silent_code = silent.location_param("code").ok_or_else(|| anyhow::anyhow!("no silent code"))?;
    let (_, t4) = env.exchange(&id, &secret, &silent_code, VERIFIER, Some(CB)).await?;
    let consent = b.authorize(&authz_query(&other_id, Some(CB), "openid", "s")).await?;
    b.consent(&consent, "allow").await?;
    let mut laptop = env.browser();
    laptop.sign_in_for_code(&id, "openid").await?;
    let page = b.get("/account").await?;
    let csrf = oauth_tests::harness::hidden(&page.html, "csrf").unwrap_or_default();
    let new_password = "a brand new passphrase for alice";
    b.post(
        "/account",
        &[
            ("csrf", &csrf),
            ("action", "password"),
            ("current_password", PASSWORD),
            ("new_password", new_password),
            ("confirm_password", new_password),
        ],
    )
    .await?;
    b.post("/account", &[("csrf", &csrf), ("action", "disconnect"), ("client_id", &other_id)]).await?;
    let hint = str_field(&t4, "id_token")?;
    let out = b.get(&format!("/oauth/logout?id_token_hint={hint}")).await?;
    assert_eq!(out.status, 200, "{}", out.html);
    for cookie in [first_session, laptop.session.clone(), b.csrf.clone()].into_iter().flatten() {
        secrets.push(cookie.split_once('.').map_or(cookie.clone(), |(_, secret)| secret.to_owned()));
    }
    secrets.extend([code, silent_code, csrf, new_password.to_owned(), hint]);
    // Key rotation (Secrets Manager, in the emulator).
    let rotated = match emulator().await? {
        Some(cfg) => {
            let (sm, sid) = fresh_key_secret(&cfg, &KeySetDoc::generate(&oauth_core::aws::KEY_SET_ALGS)?).await?;
            oauth_core::aws::rotate_key_secret(&sm, &sid, None, &oauth_core::aws::KEY_SET_ALGS, 0).await?;
            true
        }
        None => false,
    };

    let text = String::from_utf8(capture.0.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone())?;
    let mut seen = BTreeSet::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).map_err(|e| anyhow::anyhow!("not a JSON line ({e}): {line}"))?;
        for s in &secrets {
            assert!(!line.contains(s.as_str()), "a secret leaked into the log: {line}");
        }
        let Some(event) = v["event"].as_str() else { continue };
        seen.insert(event.to_owned());
        // Request-time events carry the caller's address (the request span) and ids.
        if EVENTS.contains(&event) && event != "key_rotated" {
            let ip = v["spans"].as_array().and_then(|s| s.iter().find_map(|s| s["source_ip"].as_str()));
            assert_eq!(ip, Some("127.0.0.1"), "{line}");
        }
        let has_id = ["sub", "client_id", "family_id", "jti", "kid"].iter().any(|k| v[*k].is_string());
        assert!(has_id || event == "client_auth_failed" || event == "rate_limited", "no id in {line}");
    }
    for e in EVENTS {
        if *e == "key_rotated" && !rotated {
            continue;
        }
        assert!(seen.contains(*e), "no {e} event; saw {seen:?}\n{text}");
    }
    assert!(text.contains(&alice), "the user's id is logged");
    Ok(())
}

/// The request ids on log lines (docs/OPERATIONS.md, "Logs"): an HTTP event's lines and the
/// authorizer's name API Gateway's request id; the authorizer says why it denied.
#[tokio::test]
async fn every_log_line_of_an_api_gateway_request_names_its_request_id() -> anyhow::Result<()> {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber =
        oauth_core::telemetry::json_subscriber(tracing_subscriber::filter::LevelFilter::INFO, move || writer.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let env = TestEnv::new().await?;
    let event: lambda_http::request::LambdaRequest =
        serde_json::from_str(include_str!("../events/discovery-root.json"))?;
    let resp = oauth_core::lambda::http::handle_event(
        &oauth_core::http::router(env.app.clone(), oauth_core::http::Function::Discovery),
        event,
        None,
    )
    .await;
    anyhow::ensure!(resp.status() == 200);
    let rules = oauth_core::lambda::authorizer::ScopeRules::parse("GET /api/data=data:read")?;
    let ev: Value =
        serde_json::from_str(&include_str!("../events/authorizer-v2-valid.json").replace("REPLACE_ACCESS_TOKEN", "x"))?;
    let _ = oauth_core::lambda::authorizer::handle_event(&env.app, &rules, ev).await;
    let text = String::from_utf8(capture.0.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone())?;
    let ids: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"request\""))
        .map(|l| if l.contains("apigw_request_id") { "ok" } else { l })
        .collect();
    anyhow::ensure!(ids.len() >= 2 && ids.iter().all(|i| *i == "ok"), "{text}");
    let discovery_id = serde_json::from_str::<Value>(include_str!("../events/discovery-root.json"))?["requestContext"]
        ["requestId"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the event has no request id"))?;
    anyhow::ensure!(text.contains(&format!("\"apigw_request_id\":\"{discovery_id}\"")), "{text}");
    anyhow::ensure!(text.contains("\"apigw_request_id\":\"ZxQ1aBvCIAMEbLw=\""), "{text}");
    // The authorizer says why it denied, on a line that names the gateway's request.
    let denied = text
        .lines()
        .find(|l| l.contains("\"event\":\"authorizer_denied\""))
        .ok_or_else(|| anyhow::anyhow!("no denial line: {text}"))?;
    anyhow::ensure!(denied.contains("\"reason\":") && denied.contains("ZxQ1aBvCIAMEbLw="), "{denied}");
    Ok(())
}
