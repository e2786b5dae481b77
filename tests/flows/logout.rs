//! RP-initiated logout (docs/API.md, "GET/POST /oauth/logout"; docs/SECURITY.md S7, S8):
//! with a verified `id_token_hint` at once, otherwise only after the user confirms on a
//! CSRF-protected page; exact `post_logout_redirect_uri` matching; the session's refresh
//! families end with it and offline access survives.
use oauth_tests::harness::{Browser, CB, ISSUER, TestEnv, str_field};
use serde_json::{Value, json};

const BYE: &str = "https://client.example/bye";

/// A confidential client with the refresh grant and a post-logout URI (trusted when the
/// server has a registration token).
async fn client(env: &TestEnv) -> anyhow::Result<(String, String)> {
    let c = env
        .register_client(json!({"client_name": "Web app", "redirect_uris": [CB], "post_logout_redirect_uris": [BYE],
                                "scope": "openid offline_access data:read"}))
        .await?;
    Ok((str_field(&c, "client_id")?, str_field(&c, "client_secret")?))
}

fn q(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn field(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_owned()
}

/// Whether the browser's session is live (the account page shows the user).
async fn signed_in(b: &mut Browser<'_>) -> anyhow::Result<bool> {
    Ok(b.get("/account").await?.html.contains("Signed in as"))
}

#[tokio::test]
async fn a_hint_of_the_signed_in_user_signs_out_at_once_and_ends_the_sessions_tokens_not_offline_ones()
-> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let c = client(&env).await?;
    let mut b = env.browser();
    let bound = b.tokens(&c, "openid data:read").await?;
    let offline = b.tokens(&c, "openid offline_access data:read").await?;
    assert!(!field(&bound, "refresh_token").is_empty() && !field(&offline, "refresh_token").is_empty());
    let p = b
        .get(&format!(
            "/oauth/logout?{}",
            q(&[("id_token_hint", &field(&bound, "id_token")), ("post_logout_redirect_uri", BYE), ("state", "x y")])
        ))
        .await?;
    assert_eq!(p.status, 302, "{}", p.html);
    assert_eq!(p.location(), Some("https://client.example/bye?state=x+y"));
    assert!(b.session.is_none(), "the session cookie is cleared");
    assert!(!signed_in(&mut b).await?);
    // The session's refresh family ends with it, its access tokens too.
    let (status, body) = env.refresh(&c.0, &c.1, &field(&bound, "refresh_token"), None).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(env.get_bearer("/api/data", &field(&bound, "access_token")).await?.status(), 401);
    // Offline access outlives the session.
    let (status, _) = env.refresh(&c.0, &c.1, &field(&offline, "refresh_token"), None).await?;
    assert_eq!(status, 200);
    assert_eq!(env.get_bearer("/api/data", &field(&offline, "access_token")).await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn without_a_hint_the_user_confirms_and_a_cross_site_or_forged_form_signs_nobody_out() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let c = client(&env).await?;
    let mut b = env.browser();
    let bound = b.tokens(&c, "openid data:read").await?;
    let p = b
        .get(&format!(
            "/oauth/logout?{}",
            q(&[("client_id", &c.0), ("post_logout_redirect_uri", BYE), ("state", "s1")])
        ))
        .await?;
    assert_eq!(p.status, 200, "{}", p.html);
    assert!(p.html.contains("Sign out?") && p.html.contains("Web app") && p.html.contains("client.example"));
    assert!(p.location().is_none());
    assert_eq!(p.headers["x-frame-options"], "DENY");
    let csp = p.headers["content-security-policy"].to_str()?;
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self' https://client.example"),
        "{csp}"
    );
    let request = p.request.clone().unwrap_or_default();
    assert!(signed_in(&mut b).await?, "showing the page signs nobody out");
    // Posted from another site: refused, nothing changes.
    let evil = b
        .post_from(
            "/oauth/logout",
            &[("request", &request), ("decision", "logout")],
            "https://evil.example",
            "cross-site",
        )
        .await?;
    assert_eq!(evil.status, 400, "{}", evil.html);
    // Another browser's CSRF cookie, a tampered or missing form: refused.
    let mut other = env.browser();
    other.get("/account").await?;
    other.session.clone_from(&b.session);
    let theirs = other.post("/oauth/logout", &[("request", &request), ("decision", "logout")]).await?;
    assert_eq!(theirs.status, 400, "another browser's CSRF cookie");
    // One character of the sealed body changed: its MAC no longer matches.
    let tampered =
        format!("{}{}", if request.starts_with('e') { 'f' } else { 'e' }, request.get(1..).unwrap_or_default());
    assert_eq!(b.post("/oauth/logout", &[("request", &tampered), ("decision", "logout")]).await?.status, 400);
    // Without the sealed form it is a new logout request: the question again, nobody signed out.
    let again = b.post("/oauth/logout", &[("request", ""), ("decision", "logout")]).await?;
    assert!(again.status == 200 && again.html.contains("Sign out?"), "{}", again.html);
    assert!(signed_in(&mut b).await?, "still signed in after the refused forms");
    let (status, _) = env.refresh(&c.0, &c.1, &field(&bound, "refresh_token"), None).await?;
    assert_eq!(status, 200, "nothing was revoked");
    // "Stay signed in" keeps the session.
    let stay = b.post("/oauth/logout", &[("request", &request), ("decision", "stay")]).await?;
    assert_eq!(stay.status, 200);
    assert!(stay.html.contains("still signed in"));
    assert!(signed_in(&mut b).await?);
    // Confirmed: signed out, on to the application with its state.
    let done = b.post("/oauth/logout", &[("request", &request), ("decision", "logout")]).await?;
    assert_eq!(done.status, 303, "{}", done.html);
    assert_eq!(done.location(), Some("https://client.example/bye?state=s1"));
    assert!(!signed_in(&mut b).await?);
    Ok(())
}

#[tokio::test]
async fn a_wrong_post_logout_redirect_uri_or_a_bad_hint_is_refused_without_a_redirect() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let c = client(&env).await?;
    let other = client(&env).await?;
    let mut b = env.browser();
    let t = b.tokens(&c, "openid").await?;
    let hint = field(&t, "id_token");
    let (head, _) = hint.rsplit_once('.').unwrap_or_default();
    let forged = format!("{head}.AAAA");
    let long_state = "s".repeat(1025);
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("trailing slash", vec![("client_id", &c.0), ("post_logout_redirect_uri", "https://client.example/bye/")]),
        ("another path", vec![("client_id", &c.0), ("post_logout_redirect_uri", "https://client.example/cb")]),
        ("a query", vec![("client_id", &c.0), ("post_logout_redirect_uri", "https://client.example/bye?x=1")]),
        ("no client", vec![("post_logout_redirect_uri", BYE)]),
        ("unknown client", vec![("client_id", "cl_nope"), ("post_logout_redirect_uri", BYE)]),
        ("forged hint", vec![("id_token_hint", &forged), ("post_logout_redirect_uri", BYE)]),
        ("hint of another client", vec![("id_token_hint", &hint), ("client_id", &other.0)]),
        ("an access token as hint", vec![("id_token_hint", t["access_token"].as_str().unwrap_or_default())]),
        ("repeated", vec![("client_id", &c.0), ("client_id", &c.0)]),
        ("long state", vec![("client_id", &c.0), ("post_logout_redirect_uri", BYE), ("state", &long_state)]),
    ];
    for (name, params) in cases {
        let p = b.get(&format!("/oauth/logout?{}", q(&params))).await?;
        assert_eq!(p.status, 400, "{name}: {}", p.html);
        assert!(p.location().is_none(), "{name}: redirected");
        assert_eq!(p.headers["x-frame-options"], "DENY", "{name}");
        let posted = b.post("/oauth/logout", &params).await?;
        assert_eq!(posted.status, 400, "{name} (POST)");
    }
    assert!(signed_in(&mut b).await?, "no refused request signed anyone out");
    let _ = ISSUER;
    Ok(())
}

#[tokio::test]
async fn signed_out_browsers_get_a_page_and_only_trusted_clients_an_automatic_redirect() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let untrusted = client(&env).await?;
    let mut b = env.browser();
    let p = b
        .get(&format!(
            "/oauth/logout?{}",
            q(&[("client_id", &untrusted.0), ("post_logout_redirect_uri", BYE), ("state", "s")])
        ))
        .await?;
    assert_eq!(p.status, 200);
    assert!(p.location().is_none(), "no automatic redirect to a URI nobody vouched for");
    assert!(p.html.contains("href=\"https://client.example/bye?state=s\""), "{}", p.html);
    let p = b.get("/oauth/logout").await?;
    assert_eq!(p.status, 200);
    assert!(p.html.contains("You are signed out"));
    let env = TestEnv::with_vars(&[("OAUTH_REGISTRATION_TOKEN", "a-registration-token-for-tests")]).await?;
    let trusted = client(&env).await?;
    let p = env
        .browser()
        .get(&format!("/oauth/logout?{}", q(&[("client_id", &trusted.0), ("post_logout_redirect_uri", BYE)])))
        .await?;
    assert_eq!(p.status, 302);
    assert_eq!(p.location(), Some(BYE));
    Ok(())
}

/// Logout racing a refresh of the session's family: whichever comes first, afterwards no
/// refresh token of the family works and no access token issued in the race is accepted.
#[tokio::test]
async fn logout_racing_a_refresh_leaves_no_working_token() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let c = client(&env).await?;
    for round in 0..5 {
        let mut b = env.browser();
        let t = b.tokens(&c, "openid data:read").await?;
        let logout = format!("/oauth/logout?{}", q(&[("id_token_hint", &field(&t, "id_token"))]));
        let rt = field(&t, "refresh_token");
        let (out, refreshed) = tokio::join!(b.get(&logout), env.refresh(&c.0, &c.1, &rt, None));
        assert_eq!(out?.status, 200, "round {round}");
        let (status, body) = refreshed?;
        assert!(status == 200 || body["error"] == "invalid_grant", "round {round}: {status} {body}");
        let mut live_rt = vec![rt.clone()];
        if status == 200 {
            live_rt.push(field(&body, "refresh_token"));
            let r = env.get_bearer("/api/data", &field(&body, "access_token")).await?;
            assert_eq!(r.status(), 401, "round {round}: an access token from the race still works");
        }
        for token in live_rt {
            let (s, body) = env.refresh(&c.0, &c.1, &token, None).await?;
            assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")), "round {round}");
        }
    }
    Ok(())
}
