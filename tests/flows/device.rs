//! The device authorization grant (RFC 8628; docs/API.md, "Device authorization grant";
//! docs/SECURITY.md K1-K5): a device starts, the user enters the code at `/device`, signs
//! in and allows, the device polls; every polling answer, the `slow_down` arithmetic, one
//! winner among concurrent polls, the entry limits, single use; on both stores.
use anyhow::{Context, Result, ensure};
use oauth_tests::dpop::DpopKey;
use oauth_tests::harness::{Browser, PASSWORD, TestEnv, decode_unverified, str_field};
use serde_json::{Value, json};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const WRONG: &str = "That code is not valid, has expired or was already used.";

/// A public device client ("TV app") that may refresh.
async fn tv_client(env: &TestEnv) -> Result<String> {
    let c = env
        .register_client(json!({
            "client_name": "TV app",
            "grant_types": [GRANT, "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": "openid offline_access data:read",
        }))
        .await?;
    str_field(&c, "client_id")
}

async fn post(env: &TestEnv, path: &str, form: &[(&str, &str)]) -> Result<(u16, Value, reqwest::header::HeaderMap)> {
    let r = env.http.post(env.url(path)).form(form).send().await?;
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    Ok((status, r.json().await?, headers))
}

/// Start a device request of `client_id` for `scope`: (device_code, user_code).
async fn start(env: &TestEnv, client_id: &str, scope: &str) -> Result<(String, String)> {
    let (status, body, _) =
        post(env, "/oauth/device_authorization", &[("client_id", client_id), ("scope", scope)]).await?;
    ensure!(status == 200, "device_authorization: {status} {body}");
    Ok((str_field(&body, "device_code")?, str_field(&body, "user_code")?))
}

/// One poll: (status, body).
async fn poll(env: &TestEnv, client_id: &str, device_code: &str) -> Result<(u16, Value)> {
    env.device_poll(client_id, device_code).await
}

/// One poll naming `resource`, when given: (status, body).
async fn poll_for(env: &TestEnv, client_id: &str, device_code: &str, resource: Option<&str>) -> Result<(u16, Value)> {
    let mut form = vec![("grant_type", GRANT), ("client_id", client_id), ("device_code", device_code)];
    form.extend(resource.map(|r| ("resource", r)));
    let (status, body, _) = post(env, "/oauth/token", &form).await?;
    Ok((status, body))
}

/// A public client's refresh (no proof): (status, body).
async fn refresh(env: &TestEnv, client_id: &str, tokens: &Value) -> Result<(u16, Value)> {
    let rt = str_field(tokens, "refresh_token")?;
    let (status, body, _) =
        post(env, "/oauth/token", &[("grant_type", "refresh_token"), ("client_id", client_id), ("refresh_token", &rt)])
            .await?;
    Ok((status, body))
}

fn error(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

/// Enter `code` at `/device` in `browser`: the page that follows.
async fn enter(browser: &mut Browser<'_>, code: &str) -> Result<oauth_tests::harness::Page> {
    let form = browser.get("/device").await?;
    ensure!(form.status == 200 && form.html.contains("name=\"user_code\""), "{}", form.html);
    browser.post("/device", &[("user_code", code)]).await
}

/// Alice enters `code` in a fresh browser, signs in and decides: the final page.
async fn decide(env: &TestEnv, code: &str, decision: &str) -> Result<oauth_tests::harness::Page> {
    let mut b = env.browser();
    let page = enter(&mut b, code).await?;
    ensure!(page.status == 200 && page.html.contains("name=\"password\""), "{} {}", page.status, page.html);
    b.login(&page, "alice", PASSWORD, decision).await
}

#[tokio::test]
async fn a_device_signs_in_end_to_end_with_tokens_like_the_code_flows() -> Result<()> {
    let env = TestEnv::new().await?;
    let sub = env.alice().await?;
    let client = tv_client(&env).await?;
    let (status, body, headers) = post(
        &env,
        "/oauth/device_authorization",
        &[("client_id", &client), ("scope", "openid offline_access data:read")],
    )
    .await?;
    ensure!(status == 200, "{body}");
    ensure!(headers.get("cache-control").is_some_and(|v| v == "no-store"));
    let device_code = str_field(&body, "device_code")?;
    let user_code = str_field(&body, "user_code")?;
    ensure!(device_code.len() == 43, "256 bits, base64url: {device_code}");
    let alphabet = "BCDFGHJKLMNPQRSTVWXZ";
    ensure!(
        user_code.len() == 9
            && user_code.as_bytes()[4] == b'-'
            && user_code.chars().filter(|c| *c != '-').all(|c| alphabet.contains(c)),
        "{user_code}"
    );
    ensure!(body["verification_uri"] == "https://as.test/device");
    ensure!(body["verification_uri_complete"] == format!("https://as.test/device?user_code={user_code}"));
    ensure!(body["expires_in"] == 600 && body["interval"] == 5, "{body}");
    // Only hashes are stored.
    let canonical = user_code.replace('-', "");
    let stored = env.app.devices.device_by_user_code(&oauth_core::crypto::sha256_b64(&canonical)).await?;
    let stored = stored.context("the request is found by the user code's hash")?;
    ensure!(stored.device_hash == oauth_core::crypto::sha256_b64(&device_code));
    ensure!(
        !serde_json::to_string(&stored)?.contains(&device_code)
            && !serde_json::to_string(&stored)?.contains(&canonical)
    );

    let (status, body) = poll(&env, &client, &device_code).await?;
    ensure!((status, error(&body)) == (400, "authorization_pending"), "{status} {body}");
    // The link's page prefills the code; the user confirms, in any case and without the dash.
    let mut b = env.browser();
    let form = b.get(&format!("/device?user_code={user_code}")).await?;
    ensure!(form.status == 200 && form.html.contains(&format!("value=\"{user_code}\"")), "{}", form.html);
    let page = b.post("/device", &[("user_code", &canonical.to_lowercase())]).await?;
    ensure!(page.status == 200, "{} {}", page.status, page.html);
    for shown in ["TV app", &user_code, "Only continue if you started this yourself", "data:read", "offline_access"] {
        ensure!(page.html.contains(shown), "the page does not show {shown:?}: {}", page.html);
    }
    let done = b.login(&page, "alice", PASSWORD, "allow").await?;
    ensure!(done.status == 303 && done.location() == Some("https://as.test/device?done=approved"), "{done:?}");
    ensure!(b.session.is_some(), "signing in here began a session");
    let notice = b.get("/device?done=approved").await?;
    ensure!(notice.html.contains("Your device is connected"), "{}", notice.html);

    env.clock.advance(5);
    let (status, tokens) = poll(&env, &client, &device_code).await?;
    ensure!(status == 200, "{tokens}");
    ensure!(tokens["token_type"] == "Bearer" && tokens["refresh_token"].is_string(), "{tokens}");
    let (_, id) = decode_unverified(&str_field(&tokens, "id_token")?)?;
    ensure!(id["sub"] == sub.as_str() && id["aud"] == client.as_str() && id["amr"] == json!(["pwd"]), "{id}");
    let (_, at) = decode_unverified(&str_field(&tokens, "access_token")?)?;
    ensure!(at["sub"] == sub.as_str() && at["client_id"] == client.as_str() && at["aud"] == "https://as.test/api");
    let r = env.get_bearer("/api/data", &str_field(&tokens, "access_token")?).await?;
    ensure!(r.status() == 200, "{}", r.status());
    // Redeemed once; the user code is spent too.
    env.clock.advance(5);
    let (status, body) = poll(&env, &client, &device_code).await?;
    ensure!((status, error(&body)) == (400, "invalid_grant"), "{status} {body}");
    let again = enter(&mut env.browser(), &user_code).await?;
    ensure!(again.status == 400 && again.html.contains(WRONG), "{}", again.html);
    // The refresh token is the device's own (not bound to the browser's session).
    let (status, refreshed) = refresh(&env, &client, &tokens).await?;
    ensure!(status == 200 && refreshed["access_token"].is_string(), "{refreshed}");
    // Without offline_access there is no refresh token; `resource` is honoured.
    let (device_code, user_code) = start(&env, &client, "openid data:read").await?;
    ensure!(decide(&env, &user_code, "allow").await?.location() == Some("https://as.test/device?done=approved"));
    let (status, body) = poll_for(&env, &client, &device_code, Some("https://other.test")).await?;
    ensure!((status, error(&body)) == (400, "invalid_target"), "{body}");
    let (status, tokens) = poll_for(&env, &client, &device_code, Some("https://as.test/api")).await?;
    ensure!(status == 200 && tokens.get("refresh_token").is_none() && tokens["id_token"].is_string(), "{tokens}");
    Ok(())
}

#[tokio::test]
async fn discovery_lists_the_endpoint_and_clients_register_the_grant() -> Result<()> {
    let env = TestEnv::new().await?;
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let m: Value = env.http.get(env.url(path)).send().await?.json().await?;
        ensure!(m["device_authorization_endpoint"] == "https://as.test/oauth/device_authorization", "{m}");
        ensure!(m["grant_types_supported"].as_array().is_some_and(|g| g.contains(&json!(GRANT))), "{m}");
    }
    // Registered alone, or with refresh_token (which needs a user grant: code or device).
    let c = env.register_client(json!({"grant_types": [GRANT], "token_endpoint_auth_method": "none"})).await?;
    ensure!(c["grant_types"] == json!([GRANT]) && c["redirect_uris"] == json!([]), "{c}");
    let r = env
        .http
        .post(env.url("/register_client"))
        .json(&json!({"grant_types": ["refresh_token"], "token_endpoint_auth_method": "none"}))
        .send()
        .await?;
    ensure!(r.status() == 400, "{}", r.status());
    Ok(())
}

#[tokio::test]
async fn every_polling_answer_and_the_slow_down_arithmetic() -> Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let client = tv_client(&env).await?;
    let (device_code, user_code) = start(&env, &client, "openid").await?;
    // 0: pending (next at 5); 1: slow_down, 10 s (next at 11); 11: pending (next at 21);
    // 20: slow_down, 15 s (next at 35); 34: slow_down, 20 s (next at 54); 54: pending.
    let mut t = 0;
    for (at, want) in [
        (0, "authorization_pending"),
        (1, "slow_down"),
        (11, "authorization_pending"),
        (20, "slow_down"),
        (34, "slow_down"),
        (54, "authorization_pending"),
    ] {
        env.clock.advance(at - t);
        t = at;
        let (status, body) = poll(&env, &client, &device_code).await?;
        ensure!((status, error(&body)) == (400, want), "at +{at}: {status} {body}");
        if want == "slow_down" {
            ensure!(body["error_description"].as_str().is_some_and(|d| d.contains(" seconds")), "{body}");
        }
    }
    // Another client polling this code, an unknown or missing code: nothing learnt, nothing changed.
    let other = tv_client(&env).await?;
    let (status, body) = poll(&env, &other, &device_code).await?;
    ensure!((status, error(&body)) == (400, "invalid_grant"), "{body}");
    let (status, body) = poll(&env, &client, "not-a-device-code").await?;
    ensure!((status, error(&body)) == (400, "invalid_grant"), "{body}");
    let (status, body) = poll(&env, &client, &"x".repeat(5000)).await?;
    ensure!((status, error(&body)) == (400, "invalid_grant"), "{body}");
    let (status, body, _) = post(&env, "/oauth/token", &[("grant_type", GRANT), ("client_id", &client)]).await?;
    ensure!((status, error(&body)) == (400, "invalid_request"), "{body}");
    // Denied.
    ensure!(decide(&env, &user_code, "deny").await?.location() == Some("https://as.test/device?done=denied"));
    env.clock.advance(60);
    let (status, body) = poll(&env, &client, &device_code).await?;
    ensure!((status, error(&body)) == (400, "access_denied"), "{body}");
    // Expired, pending or allowed.
    let (pending, _) = start(&env, &client, "openid").await?;
    let (allowed, allowed_user_code) = start(&env, &client, "openid").await?;
    ensure!(decide(&env, &allowed_user_code, "allow").await?.status == 303);
    env.clock.advance(601);
    for code in [&pending, &allowed] {
        let (status, body) = poll(&env, &client, code).await?;
        ensure!((status, error(&body)) == (400, "expired_token"), "{body}");
    }
    // A client that did not register the grant, at both endpoints.
    let web = env
        .register_client(json!({"redirect_uris": ["https://client.example/cb"], "token_endpoint_auth_method": "none"}))
        .await?;
    let web = str_field(&web, "client_id")?;
    let (status, body, _) = post(&env, "/oauth/device_authorization", &[("client_id", &web)]).await?;
    ensure!((status, error(&body)) == (400, "unauthorized_client"), "{body}");
    let (status, body) = poll(&env, &web, &device_code).await?;
    ensure!((status, error(&body)) == (400, "unauthorized_client"), "{body}");
    // Bad requests at the device authorization endpoint.
    for (form, want) in [
        (vec![("client_id", client.as_str()), ("scope", "admin")], "invalid_scope"),
        (vec![("client_id", client.as_str()), ("scope", "data:write")], "invalid_scope"),
        (vec![("client_id", client.as_str()), ("resource", "https://other.test")], "invalid_target"),
        (vec![("client_id", "cl_unknown")], "invalid_client"),
        (vec![], "invalid_client"),
        (vec![("client_id", client.as_str()), ("scope", "openid"), ("scope", "openid")], "invalid_request"),
    ] {
        let (status, body, _) = post(&env, "/oauth/device_authorization", &form).await?;
        ensure!(error(&body) == want && (status == 400 || status == 401), "{form:?}: {status} {body}");
    }
    Ok(())
}

#[tokio::test]
async fn twenty_concurrent_polls_after_approval_get_exactly_one_set_of_tokens() -> Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let client = tv_client(&env).await?;
    let (device_code, user_code) = start(&env, &client, "openid offline_access data:read").await?;
    ensure!(decide(&env, &user_code, "allow").await?.status == 303);
    let polls = (0..20).map(|_| poll(&env, &client, &device_code));
    let answers = futures::future::join_all(polls).await;
    let mut won = Vec::new();
    for a in answers {
        let (status, body) = a?;
        match status {
            200 => won.push(body),
            _ => ensure!(error(&body) == "invalid_grant", "a losing poll got {status} {body}"),
        }
    }
    ensure!(won.len() == 1, "{} polls got tokens", won.len());
    // A poll that read the approval just before the winner consumed it (the race above, made
    // certain): it loses at the store's write, and revokes nothing.
    env.faults.inject("code", oauth_tests::faults::Fault::StaleRead);
    let (status, body) = poll(&env, &client, &device_code).await?;
    ensure!((status, error(&body)) == (400, "invalid_grant"), "{status} {body}");
    // The losers revoked nothing: the winner's tokens work.
    let r = env.get_bearer("/api/data", &str_field(&won[0], "access_token")?).await?;
    ensure!(r.status() == 200);
    let (status, body) = refresh(&env, &client, &won[0]).await?;
    ensure!(status == 200, "{body}");
    Ok(())
}

#[tokio::test]
async fn user_code_entry_is_limited_per_address_and_per_browser_and_reveals_nothing() -> Result<()> {
    let env =
        TestEnv::with_vars(&[("DEVICE_ENTRY_LIMIT_PER_IP", "7"), ("DEVICE_ENTRY_LIMIT_PER_BROWSER", "3")]).await?;
    env.alice().await?;
    let client = tv_client(&env).await?;
    let (_, used) = start(&env, &client, "openid").await?;
    let (_, valid) = start(&env, &client, "openid").await?;
    // Unknown, malformed, already decided: one message, 400.
    let mut a = env.browser();
    a.get("/device").await?;
    ensure!(decide(&env, &used, "deny").await?.status == 303);
    for typed in ["BCDF-GHJK", "not a code", used.as_str()] {
        let p = a.post("/device", &[("user_code", typed)]).await?;
        ensure!(
            p.status == 400 && p.html.contains(WRONG) && !p.html.contains("name=\"password\""),
            "{typed}: {}",
            p.html
        );
    }
    // The browser's fourth code is refused, even the right one (the address's fifth).
    let p = a.post("/device", &[("user_code", &valid)]).await?;
    ensure!(p.status == 429 && p.html.contains("Too many codes"), "{} {}", p.status, p.html);
    ensure!(p.headers.get("retry-after").is_some_and(|v| v == "600"));
    // Another browser at the same address has its own three, within the address's seven
    // (decide() entered one code from here too).
    let mut b = env.browser();
    b.get("/device").await?;
    let p = b.post("/device", &[("user_code", "BCDF-GHJK")]).await?;
    ensure!(p.status == 400, "{}", p.status);
    let p = b.post("/device", &[("user_code", &valid)]).await?;
    ensure!(p.status == 200 && p.html.contains("name=\"password\""), "{} {}", p.status, p.html);
    let p = env.browser().post("/device", &[("user_code", &valid)]).await?;
    ensure!(p.status == 429, "the address's eighth code: {}", p.status);
    // A post from another site is refused before it counts or reveals anything.
    let p = env.browser().post_from("/device", &[("user_code", &valid)], "https://evil.test", "cross-site").await?;
    ensure!(p.status == 400 && p.html.contains("another site"), "{}", p.html);
    Ok(())
}

#[tokio::test]
async fn a_signed_in_user_confirms_each_device_and_each_code_is_decided_once() -> Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let client = tv_client(&env).await?;
    let (device_code, user_code) = start(&env, &client, "openid data:read").await?;
    let mut b = env.browser();
    let page = enter(&mut b, &user_code).await?;
    let done = b.login(&page, "alice", PASSWORD, "allow").await?;
    ensure!(done.status == 303);
    // Signed in, a second device gets the consent page with the warning, never a silent approval.
    let (second, second_user_code) = start(&env, &client, "openid data:read").await?;
    let page = enter(&mut b, &second_user_code).await?;
    ensure!(page.status == 200 && !page.html.contains("name=\"password\""), "{}", page.html);
    ensure!(page.html.contains("alice") && page.html.contains("Only continue if you started this yourself"));
    // The same code in another browser at the same time: both pages, one decision.
    let mut other = env.browser();
    let other_page = enter(&mut other, &second_user_code).await?;
    ensure!(other_page.status == 200);
    let allowed = b.consent(&page, "allow").await?;
    ensure!(allowed.location() == Some("https://as.test/device?done=approved"), "{allowed:?}");
    let late = other.login(&other_page, "alice", PASSWORD, "deny").await?;
    ensure!(late.status == 400 && late.html.contains("already used or has expired"), "{} {}", late.status, late.html);
    // The consent form replayed: refused.
    let replay = b.consent(&page, "allow").await?;
    ensure!(replay.status == 400, "{}", replay.status);
    env.clock.advance(5);
    for code in [&device_code, &second] {
        let (status, body) = poll(&env, &client, code).await?;
        ensure!(status == 200, "{body}");
    }
    Ok(())
}

#[tokio::test]
async fn a_dpop_proof_binds_the_device_tokens_and_the_refresh_token() -> Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let client = tv_client(&env).await?;
    let (device_code, user_code) = start(&env, &client, "openid offline_access data:read").await?;
    ensure!(decide(&env, &user_code, "allow").await?.status == 303);
    let key = DpopKey::new()?;
    let now = oauth_core::clock::Clock::now(&*env.clock).unix_timestamp();
    let proof = key.proof("POST", "https://as.test/oauth/token", None, now)?;
    let r = env
        .http
        .post(env.url("/oauth/token"))
        .header("DPoP", proof)
        .form(&[("grant_type", GRANT), ("client_id", &client), ("device_code", &device_code)])
        .send()
        .await?;
    let tokens: Value = r.json().await?;
    ensure!(tokens["token_type"] == "DPoP", "{tokens}");
    let (_, at) = decode_unverified(&str_field(&tokens, "access_token")?)?;
    ensure!(at["cnf"]["jkt"] == key.jkt()?.as_str(), "{at}");
    // The public client's refresh token needs a proof by the same key.
    let (status, body) = refresh(&env, &client, &tokens).await?;
    ensure!((status, error(&body)) == (400, "invalid_dpop_proof"), "{body}");
    Ok(())
}
