//! The account page (docs/API.md, "GET/POST /account"; docs/SECURITY.md S9, S10): sign-in
//! with the login form's throttling, connected applications and disconnecting one, signing
//! out of every browser, changing the password; every form bound to the browser.
use oauth_tests::harness::{Browser, CB, PASSWORD, Page, TestEnv, authz_query, hidden, str_field};
use serde_json::{Value, json};

const NEW_PASSWORD: &str = "a much longer new passphrase";

fn field(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_owned()
}

async fn named_client(env: &TestEnv, name: &str, scope: &str) -> anyhow::Result<(String, String)> {
    let c = env.register_client(json!({"client_name": name, "redirect_uris": [CB], "scope": scope})).await?;
    Ok((str_field(&c, "client_id")?, str_field(&c, "client_secret")?))
}

/// The account page of a signed-in browser (200 required).
async fn account(b: &mut Browser<'_>) -> anyhow::Result<Page> {
    let p = b.get("/account").await?;
    anyhow::ensure!(p.status == 200 && p.html.contains("Signed in as"), "{} {}", p.status, p.html);
    Ok(p)
}

/// The page a 303 of the account page leads to.
async fn follow(b: &mut Browser<'_>, done: &Page) -> anyhow::Result<Page> {
    let location = done.location().ok_or_else(|| anyhow::anyhow!("no redirect: {} {}", done.status, done.html))?;
    let path = location.strip_prefix(oauth_tests::harness::ISSUER).unwrap_or(location).to_owned();
    b.get(&path).await
}

/// Post one of the account page's forms, with the page's token.
async fn act(b: &mut Browser<'_>, page: &Page, form: &[(&str, &str)]) -> anyhow::Result<Page> {
    let csrf = hidden(&page.html, "csrf").ok_or_else(|| anyhow::anyhow!("no csrf field"))?;
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(form);
    b.post("/account", &all).await
}

fn assert_page_headers(p: &Page, name: &str) {
    assert_eq!(p.headers["x-frame-options"], "DENY", "{name}");
    assert_eq!(p.headers["cache-control"], "no-store", "{name}");
    assert_eq!(p.headers["referrer-policy"], "no-referrer", "{name}");
    let csp = p.headers["content-security-policy"].to_str().unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{name}: {csp}");
    assert!(!p.html.contains("<script"), "{name}: no JavaScript");
    assert!(p.html.contains("name=\"viewport\""), "{name}: readable on a phone");
}

#[tokio::test]
async fn the_account_page_signs_in_with_the_login_forms_throttling() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let mut b = env.browser();
    let p = b.get("/account").await?;
    assert_eq!(p.status, 200);
    assert!(p.html.contains("name=\"password\"") && p.request.is_some(), "{}", p.html);
    assert_page_headers(&p, "sign-in");
    let sign_in = |pw: &'static str, p: &Page| {
        let request = p.request.clone().unwrap_or_default();
        (request, pw)
    };
    let (request, _) = sign_in(PASSWORD, &p);
    let wrong =
        b.post("/account", &[("request", &request), ("username", "alice"), ("password", "wrong wrong")]).await?;
    assert_eq!(wrong.status, 401);
    assert!(wrong.html.contains(oauth_core::oauth::authorize::LOGIN_FAILED));
    // The failures count with the authorization endpoint's: four more anywhere lock it.
    for _ in 0..4 {
        let r =
            b.post("/account", &[("request", &request), ("username", "alice"), ("password", "wrong wrong")]).await?;
        assert_eq!(r.status, 401);
    }
    let locked = b.post("/account", &[("request", &request), ("username", "alice"), ("password", PASSWORD)]).await?;
    assert_eq!(locked.status, 429, "the right password, throttled");
    assert!(locked.headers.get("retry-after").is_some());
    assert!(b.session.is_none());
    env.clock.advance(901);
    let p = b.get("/account").await?;
    let request = p.request.clone().unwrap_or_default();
    let ok = b.post("/account", &[("request", &request), ("username", "ALICE"), ("password", PASSWORD)]).await?;
    assert_eq!(ok.status, 303);
    assert_eq!(ok.location(), Some("https://as.test/account?done=signed_in"));
    assert!(b.session.is_some());
    let page = follow(&mut b, &ok).await?;
    assert!(page.html.contains("You are signed in.") && page.html.contains("<strong>alice</strong>"), "{}", page.html);
    assert_page_headers(&page, "account");
    // The sign-in form is bound to the browser: another browser's CSRF cookie, none, or a
    // post from another site is refused.
    let mut other = env.browser();
    other.get("/account").await?;
    let stolen =
        other.post("/account", &[("request", &request), ("username", "alice"), ("password", PASSWORD)]).await?;
    assert_eq!(stolen.status, 400);
    let mut fresh = env.browser();
    let p = fresh.get("/account").await?;
    let request = p.request.clone().unwrap_or_default();
    let cross = fresh
        .post_from(
            "/account",
            &[("request", &request), ("username", "alice"), ("password", PASSWORD)],
            "https://evil.example",
            "cross-site",
        )
        .await?;
    assert_eq!(cross.status, 400);
    assert!(fresh.session.is_none() && other.session.is_none());
    Ok(())
}

#[tokio::test]
async fn connected_applications_are_listed_and_disconnecting_one_revokes_its_tokens() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let first = named_client(&env, "Photo <b>printer</b>", "openid offline_access data:read").await?;
    let second = named_client(&env, "Calendar", "openid data:read").await?;
    let mut b = env.browser();
    let t1 = b.tokens(&first, "openid offline_access data:read").await?;
    let t2 = b.tokens(&second, "openid data:read").await?;
    let page = account(&mut b).await?;
    assert!(page.html.contains("Photo &#60;b&#62;printer&#60;/b&#62;"), "escaped name: {}", page.html);
    assert!(page.html.contains("Calendar") && page.html.contains("client.example"));
    assert!(
        page.html.contains("Stay connected when you are not using it") && page.html.contains("Read your stored data")
    );
    assert!(page.html.contains("Last used 20"), "last use shown: {}", page.html);
    // Disconnect the first: its grant goes, its offline refresh token and access token stop.
    let done = act(&mut b, &page, &[("action", "disconnect"), ("client_id", &first.0)]).await?;
    assert_eq!(done.status, 303);
    assert_eq!(done.location(), Some("https://as.test/account?done=disconnected"));
    let page = account(&mut b).await?;
    assert!(!page.html.contains("printer") && page.html.contains("Calendar"), "{}", page.html);
    let (status, body) = env.refresh(&first.0, &first.1, &field(&t1, "refresh_token"), None).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(env.get_bearer("/api/data", &field(&t1, "access_token")).await?.status(), 401);
    let intro = env.introspect(&first.0, &first.1, &field(&t1, "refresh_token")).await?;
    assert_eq!(intro["active"], false);
    // The other application keeps working; the disconnected one must ask again.
    let (status, _) = env.refresh(&second.0, &second.1, &field(&t2, "refresh_token"), None).await?;
    assert_eq!(status, 200);
    let p = b.authorize(&authz_query(&first.0, Some(CB), "openid", "st")).await?;
    assert!(p.status == 200 && p.html.contains("Allow access"), "consent asked again: {}", p.html);
    // Disconnecting an application that is not connected changes nothing and says so the same way.
    let page = account(&mut b).await?;
    let again = act(&mut b, &page, &[("action", "disconnect"), ("client_id", "cl_unknown")]).await?;
    assert_eq!(again.status, 303);
    Ok(())
}

#[tokio::test]
async fn signing_out_of_every_browser_ends_every_session_and_the_tokens_bound_to_them() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let c = named_client(&env, "Web app", "openid offline_access data:read").await?;
    let mut laptop = env.browser();
    let mut phone = env.browser();
    let bound = phone.tokens(&c, "openid data:read").await?;
    let offline = phone.tokens(&c, "openid offline_access data:read").await?;
    laptop.tokens(&c, "openid").await?;
    let page = account(&mut laptop).await?;
    assert_eq!(page.html.matches("Signed in 20").count(), 2, "two browsers listed: {}", page.html);
    assert!(page.html.contains("(this browser)"));
    let done = act(&mut laptop, &page, &[("action", "signout_all")]).await?;
    assert_eq!(done.location(), Some("https://as.test/account?done=signed_out_everywhere"));
    assert!(laptop.session.is_none(), "this browser's cookie is cleared");
    for b in [&mut laptop, &mut phone] {
        let p = b.get("/account").await?;
        assert!(p.html.contains("name=\"password\""), "signed out: {}", p.html);
    }
    let (status, _) = env.refresh(&c.0, &c.1, &field(&bound, "refresh_token"), None).await?;
    assert_eq!(status, 400, "the phone session's refresh token ended with it");
    let (status, _) = env.refresh(&c.0, &c.1, &field(&offline, "refresh_token"), None).await?;
    assert_eq!(status, 200, "offline access is not a session");
    Ok(())
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_ends_every_other_session() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let c = named_client(&env, "Web app", "openid data:read").await?;
    let mut laptop = env.browser();
    let mut phone = env.browser();
    let phone_tokens = phone.tokens(&c, "openid data:read").await?;
    let laptop_tokens = laptop.tokens(&c, "openid data:read").await?;
    type Case<'a> = (&'a str, [(&'a str, &'a str); 3], u16);
    let refused: [Case<'_>; 3] = [
        (
            "wrong current",
            [("current_password", "not it at all"), ("new_password", NEW_PASSWORD), ("confirm_password", NEW_PASSWORD)],
            401,
        ),
        (
            "confirmation differs",
            [
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", "something else entirely"),
            ],
            400,
        ),
        (
            "too common",
            [("current_password", PASSWORD), ("new_password", "password123"), ("confirm_password", "password123")],
            400,
        ),
    ];
    for (name, form, status) in refused {
        let page = account(&mut laptop).await?;
        let mut all = vec![("action", "password")];
        all.extend_from_slice(&form);
        let r = act(&mut laptop, &page, &all).await?;
        assert_eq!(r.status, status, "{name}: {}", r.html);
        assert!(r.html.contains("class=\"error\""), "{name}: the reason is shown");
        assert!(account(&mut phone).await.is_ok(), "{name}: the phone is still signed in");
    }
    let page = account(&mut laptop).await?;
    let done = act(
        &mut laptop,
        &page,
        &[
            ("action", "password"),
            ("current_password", PASSWORD),
            ("new_password", NEW_PASSWORD),
            ("confirm_password", NEW_PASSWORD),
        ],
    )
    .await?;
    assert_eq!(done.status, 303, "{}", done.html);
    assert_eq!(done.location(), Some("https://as.test/account?done=password_changed"));
    assert!(follow(&mut laptop, &done).await?.html.contains("Your password was changed"));
    assert!(phone.get("/account").await?.html.contains("name=\"password\""), "the phone is signed out");
    let (status, _) = env.refresh(&c.0, &c.1, &field(&phone_tokens, "refresh_token"), None).await?;
    assert_eq!(status, 400, "the phone session's tokens end");
    let (status, _) = env.refresh(&c.0, &c.1, &field(&laptop_tokens, "refresh_token"), None).await?;
    assert_eq!(status, 200, "this browser's session keeps its tokens");
    // The old password no longer signs in; the new one does, stored as argon2id.
    let mut b = env.browser();
    let p = b.authorize(&authz_query(&c.0, Some(CB), "openid", "s")).await?;
    assert_eq!(b.login(&p, "alice", PASSWORD, "allow").await?.status, 401);
    let p = b.authorize(&authz_query(&c.0, Some(CB), "openid", "s")).await?;
    assert_eq!(b.login(&p, "alice", NEW_PASSWORD, "allow").await?.status, 303);
    let user = env.app.users.user_by_username("alice").await?.ok_or_else(|| anyhow::anyhow!("gone"))?;
    assert!(user.password_hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    Ok(())
}

/// Every signed-in form needs the page's token, bound to this browser's session, and a
/// same-origin post: anything else is a 400 and changes nothing.
#[tokio::test]
async fn the_account_forms_refuse_cross_site_posts_and_tokens_of_other_sessions() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let c = named_client(&env, "Web app", "openid data:read").await?;
    let mut b = env.browser();
    let t = b.tokens(&c, "openid data:read").await?;
    let mut other = env.browser();
    other.tokens(&c, "openid").await?;
    let other_token = hidden(&account(&mut other).await?.html, "csrf").unwrap_or_default();
    let page = account(&mut b).await?;
    let token = hidden(&page.html, "csrf").unwrap_or_default();
    assert_ne!(token, other_token, "the token is per session");
    let actions: [&[(&str, &str)]; 3] = [
        &[("action", "disconnect"), ("client_id", &c.0)],
        &[("action", "signout_all")],
        &[
            ("action", "password"),
            ("current_password", PASSWORD),
            ("new_password", NEW_PASSWORD),
            ("confirm_password", NEW_PASSWORD),
        ],
    ];
    for form in actions {
        let mut none = form.to_vec();
        assert_eq!(b.post("/account", &none).await?.status, 400, "{form:?} without the token");
        none.push(("csrf", &other_token));
        assert_eq!(b.post("/account", &none).await?.status, 400, "{form:?} with another session's token");
        let mut with = form.to_vec();
        with.push(("csrf", &token));
        let cross = b.post_from("/account", &with, "https://evil.example", "cross-site").await?;
        assert_eq!(cross.status, 400, "{form:?} cross-site");
        let framed = b.post_from("/account", &with, "null", "cross-site").await?;
        assert_eq!(framed.status, 400, "{form:?} from a sandboxed frame");
    }
    let unknown = act(&mut b, &page, &[("action", "delete_everything")]).await?;
    assert_eq!(unknown.status, 400);
    // Nothing changed: both sessions live, the grant and its tokens in place.
    assert!(account(&mut b).await?.html.contains("Web app"));
    assert!(account(&mut other).await.is_ok());
    let (status, _) = env.refresh(&c.0, &c.1, &field(&t, "refresh_token"), None).await?;
    assert_eq!(status, 200);
    let mut b2 = env.browser();
    let p = b2.authorize(&authz_query(&c.0, Some(CB), "openid", "s")).await?;
    assert_eq!(b2.login(&p, "alice", PASSWORD, "allow").await?.status, 303, "the password is unchanged");
    // A signed-out browser posting a form is sent to the sign-in page.
    let mut gone = env.browser();
    let r = gone.post("/account", &[("action", "signout_all"), ("csrf", &token)]).await?;
    assert_eq!((r.status, r.location()), (303, Some("https://as.test/account")));
    Ok(())
}

/// Two logins at once, each through its own browser, make two sessions; the account page
/// lists both.
#[tokio::test]
async fn two_logins_at_once_each_get_their_own_session() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let c = named_client(&env, "Web app", "openid").await?;
    let mut one = env.browser();
    let mut two = env.browser();
    let q = authz_query(&c.0, Some(CB), "openid", "s");
    let p1 = one.authorize(&q).await?;
    let p2 = two.authorize(&q).await?;
    let (r1, r2) = tokio::join!(one.login(&p1, "alice", PASSWORD, "allow"), two.login(&p2, "alice", PASSWORD, "allow"));
    assert_eq!((r1?.status, r2?.status), (303, 303));
    assert_ne!(one.session, two.session);
    let page = account(&mut one).await?;
    assert_eq!(page.html.matches("Signed in 20").count(), 2, "{}", page.html);
    assert!(account(&mut two).await.is_ok());
    Ok(())
}
