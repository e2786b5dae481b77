//! Upstream identity federation (docs/API.md, "Federation"; docs/SECURITY.md V1-V6): sign-in
//! through an OpenID provider and a GitHub-shaped one running on 127.0.0.1 (tests/src/
//! upstream.rs), accounts keyed by (issuer, subject), the mix-up defence, every forged ID
//! token refused, bad input at the callback, and linking from the account page; on both
//! stores.
use anyhow::{Context, Result, ensure};
use oauth_core::domain::identity_key;
use oauth_tests::harness::{
    Browser, CB, PASSWORD, Page, TestEnv, VERIFIER, authz_query, decode_unverified, hidden, str_field,
};
use oauth_tests::upstream::{CLIENT_SECRET, Forge, Upstream};
use serde_json::{Value, json};

/// A server with `providers` (id, name, upstream) configured, their secret in a file.
async fn server(providers: &[(&str, &str, &Upstream)], extra: &[(&str, &str)]) -> Result<TestEnv> {
    let file = std::env::temp_dir().join(format!("{}.secret", oauth_core::crypto::random_id("fed_")?));
    std::fs::write(&file, format!("{CLIENT_SECRET}\n"))?;
    let path = file.to_string_lossy().into_owned();
    let list: Vec<Value> = providers.iter().map(|(id, name, up)| up.provider_json(id, name, &path)).collect();
    let json = serde_json::to_string(&list)?;
    let mut vars = vec![("FEDERATION_PROVIDERS", json.as_str()), ("FEDERATION_TIMEOUT_MS", "2000")];
    vars.extend_from_slice(extra);
    TestEnv::with_vars(&vars).await
}

/// The path and query of a URL on the test issuer.
fn on_server(url: &str) -> Result<String> {
    url.strip_prefix(oauth_tests::harness::ISSUER).map(str::to_owned).with_context(|| format!("not ours: {url}"))
}

/// The login page of `client_id` (a public client would do; a web client is used).
async fn login_page(b: &mut Browser<'_>, client_id: &str, extra: &str) -> Result<Page> {
    let p = b.authorize(&format!("{}{extra}", authz_query(client_id, Some(CB), "openid data:read", "st"))).await?;
    ensure!(p.status == 200 && p.request.is_some(), "login page: {} {}", p.status, p.html);
    Ok(p)
}

/// Click "Continue with <provider>": the 303 to the provider (its URL), with the flow cookie.
async fn click(b: &mut Browser<'_>, page: &Page, provider: &str) -> Result<String> {
    let request = page.request.clone().context("no form")?;
    let p =
        b.post("/oauth/authorize", &[("request", &request), ("decision", "federate"), ("provider", provider)]).await?;
    ensure!(p.status == 303, "federate: {} {}", p.status, p.html);
    ensure!(b.flow.is_some(), "no flow cookie");
    p.location().map(str::to_owned).context("no Location")
}

/// What the provider answers to its authorization request at `url`: our callback (path and
/// query).
async fn upstream_answer(env: &TestEnv, url: &str) -> Result<String> {
    let r = env.http.get(url).send().await?;
    ensure!(r.status() == 302, "upstream: {}", r.status());
    on_server(r.headers().get("location").and_then(|v| v.to_str().ok()).context("no Location")?)
}

/// A whole sign-in through `provider` in `b`: the callback's page (a 303 to the client on success).
async fn sign_in(env: &TestEnv, b: &mut Browser<'_>, client_id: &str, provider: &str) -> Result<Page> {
    let page = login_page(b, client_id, "").await?;
    let to = click(b, &page, provider).await?;
    let back = upstream_answer(env, &to).await?;
    b.get(&back).await
}

/// The `sub` and claims of the ID token a code gives.
async fn tokens(env: &TestEnv, client: &(String, String), p: &Page) -> Result<Value> {
    ensure!(p.status == 303, "callback: {} {}", p.status, p.html);
    let code = p.location_param("code").with_context(|| format!("no code: {:?}", p.location()))?;
    ensure!(p.location_param("state").as_deref() == Some("st"));
    let (status, body) = env.exchange(&client.0, &client.1, &code, VERIFIER, Some(CB)).await?;
    ensure!(status == 200, "exchange: {body}");
    Ok(decode_unverified(&str_field(&body, "id_token")?)?.1)
}

async fn identities(env: &TestEnv, sub: &str) -> Result<usize> {
    Ok(env.app.identities.identities_of(sub).await?.len())
}

#[tokio::test]
async fn a_federated_sign_in_creates_a_passwordless_user_found_again_by_issuer_and_subject() -> Result<()> {
    let idp = Upstream::start(false).await?;
    let env = server(&[("idp", "Test IdP", &idp)], &[]).await?;
    let client = env.web_client("openid data:read").await?;
    let mut b = env.browser();
    let page = login_page(&mut b, &client.0, "").await?;
    ensure!(page.html.contains("value=\"idp\" class=\"secondary\">Continue with Test IdP</button>"), "{}", page.html);
    let csp = page.headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    ensure!(csp.contains(&format!("form-action 'self' https://client.example {}", idp.base)), "{csp}");
    let to = click(&mut b, &page, "idp").await?;
    let back = upstream_answer(&env, &to).await?;
    ensure!(back.starts_with("/federation/idp/callback?"), "{back}");
    let done = b.get(&back).await?;
    ensure!(b.session.is_some(), "a federated sign-in begins a session");
    ensure!(b.flow.is_none(), "the flow cookie is cleared");
    let claims = tokens(&env, &client, &done).await?;
    let sub = claims["sub"].as_str().context("sub")?.to_owned();
    ensure!(sub.starts_with("usr_") && sub != "248289761001", "our own user id, not the upstream's: {sub}");
    ensure!(claims["amr"] == json!(["fed"]), "{claims}");
    ensure!(claims["auth_time"].as_i64().is_some(), "{claims}");
    // The user has no password: nothing signs in with one.
    let user = env.app.users.user_by_sub(&sub).await?.context("user")?;
    ensure!(user.password_hash.is_empty() && user.username.as_str().starts_with("idp-"));
    let link = env.app.identities.identity(&identity_key(&idp.base, "248289761001")).await?.context("link")?;
    ensure!(link.sub == sub && link.email.as_deref() == Some("fed@idp.example") && link.email_verified);
    let mut other = env.browser();
    let p = login_page(&mut other, &client.0, "").await?;
    let refused = other.login(&p, user.username.as_str(), "", "allow").await?;
    ensure!(refused.status == 401, "no password: {}", refused.status);
    // Any password at all is a failed login (argon2 against the dummy hash), never a 503.
    let p = login_page(&mut other, &client.0, "").await?;
    let refused = other.login(&p, user.username.as_str(), PASSWORD, "allow").await?;
    ensure!(refused.status == 401, "a password for a passwordless user: {}", refused.status);
    // A second sign-in, in another browser, finds the same user by (issuer, subject).
    let mut again = env.browser();
    let p = sign_in(&env, &mut again, &client.0, "idp").await?;
    ensure!(tokens(&env, &client, &p).await?["sub"] == json!(sub), "the same user");
    ensure!(identities(&env, &sub).await? == 1);
    // The account page of a federated user: its identity, no password form.
    let account = again.get("/account").await?;
    ensure!(account.html.contains("Unlink Test IdP") && !account.html.contains("current_password"), "{}", account.html);
    Ok(())
}

#[tokio::test]
async fn nothing_of_the_downstream_request_goes_upstream_but_prompt_login_and_max_age_do() -> Result<()> {
    let idp = Upstream::start(false).await?;
    let env = server(&[("idp", "Test IdP", &idp)], &[]).await?;
    let client = env.web_client("openid data:read").await?;
    let mut b = env.browser();
    let page = login_page(&mut b, &client.0, "&resource=https%3A%2F%2Fas.test%2Fapi&nonce=downstream-nonce").await?;
    upstream_answer(&env, &click(&mut b, &page, "idp").await?).await?;
    let mut b2 = env.browser();
    let page = login_page(&mut b2, &client.0, "&prompt=login&max_age=60").await?;
    upstream_answer(&env, &click(&mut b2, &page, "idp").await?).await?;
    let asked = idp.state().authorize_requests.clone();
    let first = asked.first().context("no upstream request")?;
    ensure!(first.get("scope").map(String::as_str) == Some("openid email profile"), "{first:?}");
    ensure!(first.get("code_challenge_method").map(String::as_str) == Some("S256"));
    ensure!(
        first.get("code_challenge").is_some_and(|c| c != oauth_tests::harness::CHALLENGE),
        "a challenge of our own"
    );
    ensure!(first.get("state").is_some_and(|s| s != "st" && s.len() == 43), "{first:?}");
    ensure!(first.get("nonce").is_some_and(|n| n != "downstream-nonce" && n.len() == 43), "{first:?}");
    ensure!(first.get("redirect_uri").map(String::as_str) == Some("https://as.test/federation/idp/callback"));
    ensure!(!first.contains_key("resource") && !first.contains_key("prompt") && !first.contains_key("max_age"));
    let second = asked.get(1).context("second")?;
    ensure!(
        second.get("prompt").map(String::as_str) == Some("login")
            && second.get("max_age").map(String::as_str) == Some("60")
    );
    ensure!(second.get("state") != first.get("state"), "a new state per sign-in");
    Ok(())
}

#[tokio::test]
async fn every_forged_id_token_is_refused_and_signs_nobody_in() -> Result<()> {
    let idp = Upstream::start(false).await?;
    let env = server(&[("idp", "Test IdP", &idp)], &[]).await?;
    let client = env.web_client("openid data:read").await?;
    for forge in [
        Forge::Issuer,
        Forge::Audience,
        Forge::NoNonce,
        Forge::WrongNonce,
        Forge::Expired,
        Forge::AlgNone,
        Forge::Hs256WithPublicKey,
        Forge::UnknownKid,
    ] {
        idp.state().forge = forge;
        let mut b = env.browser();
        let p = sign_in(&env, &mut b, &client.0, "idp").await?;
        ensure!(
            p.status == 401 && p.html.contains("Signing in with Test IdP did not work"),
            "{forge:?}: {} {}",
            p.status,
            p.html
        );
        ensure!(p.request.is_some(), "{forge:?}: the login page again, usable");
        ensure!(b.session.is_none(), "{forge:?} signed someone in");
        let linked = env.app.identities.identity(&identity_key(&idp.base, "248289761001")).await?;
        ensure!(linked.is_none(), "{forge:?} created an account");
    }
    idp.state().forge = Forge::None;
    let mut b = env.browser();
    let p = sign_in(&env, &mut b, &client.0, "idp").await?;
    ensure!(p.status == 303 && b.session.is_some(), "a genuine token still works: {} {}", p.status, p.html);
    Ok(())
}

#[tokio::test]
async fn an_email_matching_an_existing_user_never_links_to_it() -> Result<()> {
    let idp = Upstream::start(false).await?;
    let env = server(&[("idp", "Test IdP", &idp)], &[]).await?;
    let r = env
        .http
        .post(env.url("/register"))
        .json(&json!({"username": "alice", "password": PASSWORD, "email": "alice@example.com"}))
        .send()
        .await?;
    ensure!(r.status() == 201);
    let alice = str_field(&r.json::<Value>().await?, "sub")?;
    {
        let mut s = idp.state();
        s.user.email = "alice@example.com".into();
        s.user.email_verified = true;
    }
    let client = env.web_client("openid data:read").await?;
    let mut b = env.browser();
    let p = sign_in(&env, &mut b, &client.0, "idp").await?;
    let sub = tokens(&env, &client, &p).await?["sub"].as_str().context("sub")?.to_owned();
    ensure!(sub != alice, "an e-mail address, even verified, never links");
    ensure!(identities(&env, &alice).await? == 0 && identities(&env, &sub).await? == 1);
    Ok(())
}

#[tokio::test]
async fn mix_up_an_answer_at_another_providers_callback_or_naming_another_issuer_is_refused() -> Result<()> {
    let idp = Upstream::start(false).await?;
    let evil = Upstream::start(false).await?;
    let env = server(&[("idp", "Test IdP", &idp), ("evil", "Evil", &evil)], &[]).await?;
    let client = env.web_client("openid data:read").await?;
    // The sign-in began with "evil" (which sends no `iss`, so only the flow's provider can
    // tell); its answer arrives at the honest provider's callback.
    {
        let mut s = evil.state();
        s.iss = None;
        s.advertise_iss = false;
    }
    let mut b = env.browser();
    let page = login_page(&mut b, &client.0, "").await?;
    let to = click(&mut b, &page, "evil").await?;
    let back = upstream_answer(&env, &to).await?.replace("/federation/evil/", "/federation/idp/");
    let p = b.get(&back).await?;
    ensure!(p.status == 400 && p.html.contains("another provider"), "{} {}", p.status, p.html);
    ensure!(evil.state().token_calls == 0 && idp.state().token_calls == 0, "no code was exchanged anywhere");
    // The right callback, but the answer names another issuer (RFC 9207).
    evil.state().iss = Some(idp.base.clone());
    let mut b = env.browser();
    let p = sign_in(&env, &mut b, &client.0, "evil").await?;
    ensure!(p.status == 400 && p.html.contains("another provider"), "{} {}", p.status, p.html);
    // A provider that advertises `iss` must send it.
    idp.state().iss = None;
    let mut b = env.browser();
    let p = sign_in(&env, &mut b, &client.0, "idp").await?;
    ensure!(p.status == 400, "{} {}", p.status, p.html);
    ensure!(evil.state().token_calls == 0 && idp.state().token_calls == 0 && b.session.is_none());
    Ok(())
}

#[tokio::test]
async fn bad_input_at_the_callback_gets_the_error_page_and_changes_nothing() -> Result<()> {
    let idp = Upstream::start(false).await?;
    let env = server(&[("idp", "Test IdP", &idp)], &[]).await?;
    let client = env.web_client("openid data:read").await?;
    let mut b = env.browser();
    let page = login_page(&mut b, &client.0, "").await?;
    let to = click(&mut b, &page, "idp").await?;
    let back = upstream_answer(&env, &to).await?;
    let url = url::Url::parse(&format!("https://as.test{back}"))?;
    let param = |k: &str| url.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned()).unwrap_or_default();
    let (code, state, iss) = (param("code"), param("state"), param("iss"));
    let q = |pairs: &[(&str, &str)]| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        format!("/federation/idp/callback?{}", s.finish())
    };
    let flow = b.flow.clone();
    let cases: Vec<(&str, String)> = vec![
        ("missing state", q(&[("code", &code), ("iss", &iss)])),
        ("foreign state", q(&[("code", &code), ("state", "another-browsers-state"), ("iss", &iss)])),
        ("repeated state", format!("{}&state={state}", q(&[("code", &code), ("state", &state), ("iss", &iss)]))),
        ("repeated code", format!("{}&code=x", q(&[("code", &code), ("state", &state), ("iss", &iss)]))),
        ("unknown provider", q(&[("code", &code), ("state", &state), ("iss", &iss)]).replace("/idp/", "/nope/")),
    ];
    for (what, path) in &cases {
        b.flow.clone_from(&flow);
        let p = b.get(path).await?;
        ensure!(p.status == 400 && p.html.contains("<html"), "{what}: {} {}", p.status, p.html);
        ensure!(b.session.is_none(), "{what}");
    }
    // Without the flow cookie (another browser): refused.
    let mut stranger = env.browser();
    let p = stranger.get(&back).await?;
    ensure!(p.status == 400 && p.html.contains("started in another browser"), "{}", p.html);
    ensure!(idp.state().token_calls == 0, "no refused answer reached the token endpoint");
    // The genuine answer still works once, and a replay of it is refused.
    b.flow.clone_from(&flow);
    let ok = b.get(&back).await?;
    ensure!(ok.status == 303 && ok.location_param("code").is_some(), "{} {}", ok.status, ok.html);
    b.flow.clone_from(&flow);
    let replay = b.get(&back).await?;
    ensure!(replay.status == 400 && replay.html.contains("already used"), "{} {}", replay.status, replay.html);
    ensure!(idp.state().token_calls == 1);
    // An expired sign-in.
    let mut late = env.browser();
    let page = login_page(&mut late, &client.0, "").await?;
    let to = click(&mut late, &page, "idp").await?;
    let back = upstream_answer(&env, &to).await?;
    env.clock.advance(601);
    let p = late.get(&back).await?;
    ensure!(p.status == 400 && p.html.contains("expired"), "{} {}", p.status, p.html);
    ensure!(idp.state().token_calls == 1 && late.session.is_none());
    Ok(())
}

#[tokio::test]
async fn a_cancelled_or_failed_upstream_sign_in_shows_the_login_page_again() -> Result<()> {
    let idp = Upstream::start(false).await?;
    let env = server(&[("idp", "Test IdP", &idp)], &[]).await?;
    let client = env.web_client("openid data:read").await?;
    idp.state().deny = true;
    let mut b = env.browser();
    let p = sign_in(&env, &mut b, &client.0, "idp").await?;
    ensure!(p.status == 401 && p.html.contains("You cancelled signing in with Test IdP"), "{} {}", p.status, p.html);
    // The page shown again still signs in with the password.
    env.alice().await?;
    let done = b.login(&p, "alice", PASSWORD, "allow").await?;
    ensure!(done.status == 303 && done.location_param("code").is_some(), "{} {}", done.status, done.html);
    // An unreachable provider: a plain page at once, never a hung request.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let gone = json!([{"id": "gone", "name": "Gone", "kind": "oidc", "issuer": format!("http://{closed}"),
                       "client_id": "c", "client_secret_env": "UNUSED"}])
    .to_string();
    let env2 = TestEnv::with_vars(&[("FEDERATION_PROVIDERS", &gone), ("FEDERATION_TIMEOUT_MS", "500")]).await?;
    let client2 = env2.web_client("openid").await?;
    let mut b = env2.browser();
    let page = b.authorize(&authz_query(&client2.0, Some(CB), "openid", "st")).await?;
    let request = page.request.clone().context("form")?;
    let p =
        b.post("/oauth/authorize", &[("request", &request), ("decision", "federate"), ("provider", "gone")]).await?;
    ensure!(p.status == 503 && p.html.contains("Gone cannot be reached"), "{} {}", p.status, p.html);
    Ok(())
}

#[tokio::test]
async fn a_github_shaped_provider_keys_accounts_by_numeric_id_and_keeps_verification_as_stated() -> Result<()> {
    let gh = Upstream::start(true).await?;
    let env = server(&[("github", "GitHub", &gh)], &[]).await?;
    let client = env.web_client("openid data:read").await?;
    {
        let mut s = gh.state();
        s.user.sub = "583231".into();
        s.user.email = "octo@gh.example".into();
        s.user.email_verified = false;
    }
    let mut b = env.browser();
    let p = sign_in(&env, &mut b, &client.0, "github").await?;
    let sub = tokens(&env, &client, &p).await?["sub"].as_str().context("sub")?.to_owned();
    let asked = gh.state().authorize_requests.first().cloned().context("asked")?;
    ensure!(asked.get("scope").map(String::as_str) == Some("read:user user:email") && !asked.contains_key("nonce"));
    let link = env.app.identities.identity(&identity_key(&gh.base, "583231")).await?.context("by numeric id")?;
    ensure!(link.sub == sub);
    // The primary address was not verified, another one was: the verified one, as verified.
    ensure!(link.email.as_deref() == Some("old@gh.example") && link.email_verified, "{link:?}");
    // The login name changing hands changes nothing: the id is the key.
    gh.state().user.login = "someone-else".into();
    let mut again = env.browser();
    let p = sign_in(&env, &mut again, &client.0, "github").await?;
    ensure!(tokens(&env, &client, &p).await?["sub"] == json!(sub));
    Ok(())
}

/// Sign `username` in on the account page of browser `b`.
async fn account_sign_in(b: &mut Browser<'_>, username: &str) -> Result<Page> {
    let form = b.get("/account").await?;
    let request = hidden(&form.html, "request").context("sign-in form")?;
    let p = b.post("/account", &[("request", &request), ("username", username), ("password", PASSWORD)]).await?;
    ensure!(p.status == 303 && b.session.is_some(), "{} {}", p.status, p.html);
    b.get("/account").await
}

#[tokio::test]
async fn an_account_links_an_identity_only_while_signed_in_and_never_unlinks_its_last_way_in() -> Result<()> {
    let idp = Upstream::start(false).await?;
    let env = server(&[("idp", "Test IdP", &idp)], &[]).await?;
    let alice = env.alice().await?;
    let client = env.web_client("openid data:read").await?;
    let mut b = env.browser();
    let page = account_sign_in(&mut b, "alice").await?;
    let csrf = hidden(&page.html, "csrf").context("csrf")?;
    ensure!(page.html.contains("Connect Test IdP"), "{}", page.html);
    let go = b.post("/account", &[("csrf", &csrf), ("action", "connect"), ("provider", "idp")]).await?;
    ensure!(go.status == 303 && b.flow.is_some(), "{} {}", go.status, go.html);
    let back = upstream_answer(&env, go.location().context("Location")?).await?;
    // Another browser cannot complete it, even with the flow cookie: it is not the session.
    let mut thief = env.browser();
    thief.flow.clone_from(&b.flow);
    thief.csrf.clone_from(&b.csrf);
    let stolen = thief.get(&back).await?;
    ensure!(stolen.location().is_some_and(|l| l.ends_with("done=link_failed")), "{:?}", stolen.location());
    ensure!(identities(&env, &alice).await? == 0);
    // The same browser, signed in: linked.
    let go = b.post("/account", &[("csrf", &csrf), ("action", "connect"), ("provider", "idp")]).await?;
    let back = upstream_answer(&env, go.location().context("Location")?).await?;
    let done = b.get(&back).await?;
    ensure!(
        done.location().is_some_and(|l| l.ends_with("/account?done=linked")),
        "{:?} {}",
        done.location(),
        done.html
    );
    ensure!(identities(&env, &alice).await? == 1);
    // Signing in through the provider now signs alice in.
    let mut fresh = env.browser();
    let p = sign_in(&env, &mut fresh, &client.0, "idp").await?;
    ensure!(tokens(&env, &client, &p).await?["sub"] == json!(alice));
    // Linked to alice, the identity cannot be linked to bob.
    env.register_user("bob", PASSWORD).await?;
    let mut bob = env.browser();
    let page = account_sign_in(&mut bob, "bob").await?;
    let bob_csrf = hidden(&page.html, "csrf").context("csrf")?;
    let go = bob.post("/account", &[("csrf", &bob_csrf), ("action", "connect"), ("provider", "idp")]).await?;
    let back = upstream_answer(&env, go.location().context("Location")?).await?;
    let taken = bob.get(&back).await?;
    ensure!(taken.location().is_some_and(|l| l.ends_with("done=link_taken")), "{:?}", taken.location());
    // Alice unlinks it (she has a password): gone.
    let page = b.get("/account").await?;
    let key = hidden(&page.html, "identity").context("identity field")?;
    let un = b.post("/account", &[("csrf", &csrf), ("action", "unlink"), ("identity", &key)]).await?;
    ensure!(un.location().is_some_and(|l| l.ends_with("done=unlinked")));
    ensure!(identities(&env, &alice).await? == 0);
    // A user created by the provider has no password: its only identity stays.
    let mut fed = env.browser();
    let p = sign_in(&env, &mut fed, &client.0, "idp").await?;
    let fed_sub = tokens(&env, &client, &p).await?["sub"].as_str().context("sub")?.to_owned();
    ensure!(fed_sub != alice, "unlinked: a new user");
    let page = fed.get("/account").await?;
    let fed_csrf = hidden(&page.html, "csrf").context("csrf")?;
    let key = hidden(&page.html, "identity").context("identity field")?;
    let kept = fed.post("/account", &[("csrf", &fed_csrf), ("action", "unlink"), ("identity", &key)]).await?;
    ensure!(kept.location().is_some_and(|l| l.ends_with("done=last_method")), "{:?}", kept.location());
    ensure!(identities(&env, &fed_sub).await? == 1);
    Ok(())
}

#[tokio::test]
async fn a_rotated_upstream_key_is_fetched_at_most_once_a_minute() -> Result<()> {
    let idp = Upstream::start(false).await?;
    let env = server(&[("idp", "Test IdP", &idp)], &[]).await?;
    let client = env.web_client("openid data:read").await?;
    let mut b = env.browser();
    ensure!(sign_in(&env, &mut b, &client.0, "idp").await?.status == 303);
    ensure!(idp.state().jwks_fetches == 1, "fetched once");
    let mut b = env.browser();
    ensure!(sign_in(&env, &mut b, &client.0, "idp").await?.status == 303);
    ensure!(idp.state().jwks_fetches == 1, "then cached");
    // The provider rotates its key within the minute: the unknown kid is not fetched yet.
    idp.state().rotate_keys();
    let mut b = env.browser();
    ensure!(sign_in(&env, &mut b, &client.0, "idp").await?.status == 401);
    ensure!(idp.state().jwks_fetches == 1, "at most one refresh a minute");
    env.clock.advance(61);
    let mut b = env.browser();
    let p = sign_in(&env, &mut b, &client.0, "idp").await?;
    ensure!(p.status == 303, "after a minute, the new key: {} {}", p.status, p.html);
    ensure!(idp.state().jwks_fetches == 2);
    Ok(())
}

#[tokio::test]
async fn allowed_domains_admit_only_verified_addresses_there() -> Result<()> {
    let idp = Upstream::start(false).await?;
    let file = std::env::temp_dir().join(format!("{}.secret", oauth_core::crypto::random_id("fed_")?));
    std::fs::write(&file, CLIENT_SECRET)?;
    let mut entry = idp.provider_json("idp", "Test IdP", &file.to_string_lossy());
    entry["allowed_domains"] = json!(["idp.example"]);
    let env = TestEnv::with_vars(&[("FEDERATION_PROVIDERS", &json!([entry]).to_string())]).await?;
    let client = env.web_client("openid data:read").await?;
    let mut b = env.browser();
    ensure!(sign_in(&env, &mut b, &client.0, "idp").await?.status == 303, "fed@idp.example, verified");
    idp.state().user.email_verified = false;
    idp.state().user.sub = "another".into();
    let mut b = env.browser();
    let p = sign_in(&env, &mut b, &client.0, "idp").await?;
    ensure!(p.status == 401 && p.html.contains("not one this service accepts"), "{} {}", p.status, p.html);
    ensure!(b.session.is_none());
    Ok(())
}

#[tokio::test]
async fn a_device_is_allowed_by_signing_in_with_a_provider() -> Result<()> {
    let idp = Upstream::start(false).await?;
    let env = server(&[("idp", "Test IdP", &idp)], &[]).await?;
    let (tv, started) = env.device_request("openid data:read").await?;
    let mut b = env.browser();
    b.get("/device").await?;
    let page = b.post("/device", &[("user_code", &str_field(&started, "user_code")?)]).await?;
    ensure!(page.html.contains("Continue with Test IdP") && page.html.contains("Only continue if"), "{}", page.html);
    let to = click(&mut b, &page, "idp").await?;
    let back = upstream_answer(&env, &to).await?;
    let done = b.get(&back).await?;
    ensure!(done.location() == Some("https://as.test/device?done=approved"), "{} {:?}", done.status, done.location());
    ensure!(b.session.is_some(), "the federated sign-in began a session");
    let (status, tokens) = env.device_poll(&tv, &str_field(&started, "device_code")?).await?;
    ensure!(status == 200, "{tokens}");
    let (_, id) = decode_unverified(&str_field(&tokens, "id_token")?)?;
    ensure!(id["amr"] == json!(["fed"]) && id["aud"] == tv.as_str(), "{id}");
    Ok(())
}

#[tokio::test]
async fn with_sign_up_off_a_provider_signs_in_linked_accounts_only_and_the_page_does_not_offer_sign_up() -> Result<()> {
    let idp = Upstream::start(false).await?;
    let open = server(&[("idp", "Test IdP", &idp)], &[]).await?;
    let client = open.web_client("openid data:read").await?;
    let page = login_page(&mut open.browser(), &client.0, "").await?;
    ensure!(page.html.contains("this creates your account"), "{}", page.html);
    let env = server(&[("idp", "Test IdP", &idp)], &[("SIGNUP_ENABLED", "false")]).await?;
    let client = env.web_client("openid data:read").await?;
    let mut b = env.browser();
    let page = login_page(&mut b, &client.0, "").await?;
    ensure!(
        page.html.contains("Continue with Test IdP") && !page.html.contains("creates your account"),
        "{}",
        page.html
    );
    // No account is linked to the upstream identity: the login page again, 403, nobody created.
    let to = click(&mut b, &page, "idp").await?;
    let back = upstream_answer(&env, &to).await?;
    let refused = b.get(&back).await?;
    ensure!(refused.status == 403 && refused.html.contains("new accounts cannot be created here"), "{}", refused.html);
    ensure!(b.session.is_none(), "no session began");
    ensure!(env.app.identities.identity(&identity_key(&idp.base, "248289761001")).await?.is_none());
    // An account the operator created, linked to that identity, signs in.
    let user = oauth_core::domain::User {
        sub: "usr_operator_made".into(),
        username: oauth_core::domain::Username::parse("linked").map_err(anyhow::Error::msg)?,
        email: None,
        password_hash: String::new(),
        created_at: 0,
        disabled: false,
    };
    let link = oauth_core::domain::IdentityLink {
        issuer: idp.base.clone(),
        subject: "248289761001".into(),
        sub: user.sub.clone(),
        provider: "idp".into(),
        email: None,
        email_verified: false,
        linked_at: 0,
    };
    env.app.identities.create_federated_user(&user, &link).await?;
    let p = sign_in(&env, &mut env.browser(), &client.0, "idp").await?;
    ensure!(tokens(&env, &client, &p).await?["sub"] == json!("usr_operator_made"));
    Ok(())
}
