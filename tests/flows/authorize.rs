//! `GET/POST /oauth/authorize`: request validation order, redirect URI matching, PKCE,
//! the page's headers, CSRF and tampering (docs/SECURITY.md section A).
use oauth_tests::harness::{CB, CHALLENGE, ISSUER, PASSWORD, Page, TestEnv, authz_query, str_field};
use serde_json::json;

/// A registration token: clients registered with it are trusted.
const TOKEN: &str = "a-registration-token-for-tests";

fn q(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn assert_error_page(p: &Page, name: &str) {
    assert_eq!(p.status, 400, "{name}: {}", p.html);
    assert!(p.location().is_none(), "{name}: redirected to {:?}", p.location());
    assert!(p.headers["content-type"].to_str().unwrap_or_default().starts_with("text/html"), "{name}");
    assert_eq!(p.headers["x-frame-options"], "DENY", "{name}");
    assert!(
        p.headers["content-security-policy"].to_str().unwrap_or_default().contains("frame-ancestors 'none'"),
        "{name}"
    );
}

#[tokio::test]
async fn a_valid_request_shows_the_login_page_with_security_headers() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let c = env.register_client(json!({"client_name": "<img src=x onerror=alert(1)>", "redirect_uris": [CB]})).await?;
    let id = str_field(&c, "client_id")?;
    let page = env.authorize(&authz_query(&id, Some(CB), "openid data:read", "s")).await?;
    assert_eq!(page.status, 200);
    let h = &page.headers;
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let csp = h["content-security-policy"].to_str()?;
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{csp}");
    assert!(h.get("access-control-allow-origin").is_none());
    let cookie = h["set-cookie"].to_str()?;
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    // The form as docs/API.md describes it.
    for needle in [
        "<form method=\"post\"",
        "name=\"username\"",
        "name=\"password\"",
        "type=\"hidden\" name=\"request\"",
        "name=\"decision\" value=\"allow\"",
        "name=\"decision\" value=\"deny\"",
        "Read your stored data",
        "client.example",
    ] {
        assert!(page.html.contains(needle), "missing {needle}");
    }
    assert!(!page.html.contains("<img src=x"), "client name not escaped");
    assert!(!page.html.contains("<script"), "no JavaScript");
    assert!(!page.html.contains("src=\"http") && !page.html.contains("href=\"http"), "no third-party assets");
    Ok(())
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_issuer_is_https() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, _) = env.web_client("openid").await?;
    let page = env.authorize(&authz_query(&id, Some(CB), "openid", "s")).await?;
    assert!(page.headers["set-cookie"].to_str()?.contains("; Secure"));
    Ok(())
}

#[tokio::test]
async fn near_miss_redirect_uris_get_an_error_page_and_never_a_redirect() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, _) = env.web_client("openid").await?;
    let variants = [
        "https://client.example/cb/",
        "https://client.example/cbx",
        "https://client.example/cb?x=1",
        "https://client.example/cb#f",
        "https://client.example/cb/../cb",
        "https://client.example/cb/%2e%2e/",
        "https://client.example/cb%2F..%2F",
        "https://client.example/cb/%252e%252e/",
        "https://CLIENT.example/cb",
        "HTTPS://client.example/cb",
        "https://client.example/CB",
        "https://client.example:443/cb",
        "http://client.example/cb",
        "https://client.example.evil.test/cb",
        "https://client.example@evil.test/cb",
        "https://evil.test\\@client.example/cb",
        "//client.example/cb",
        "https:/client.example/cb",
        "https://evil.test/https://client.example/cb",
        "https://client.example/cb%00",
        "https://client.example/cb%0d%0aX:1",
        "https://clіent.example/cb",
        "https://client.example/cb ",
        " https://client.example/cb",
    ];
    assert!(variants.len() >= 20);
    for v in variants {
        let page = env
            .authorize(&q(&[
                ("response_type", "code"),
                ("client_id", &id),
                ("redirect_uri", v),
                ("state", "s"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ]))
            .await?;
        assert_error_page(&page, v);
        assert!(!page.html.contains("evil.test"), "{v} reflected");
    }
    // Empty value = absent: with one registered URI the request is fine.
    let page = env
        .authorize(&q(&[
            ("response_type", "code"),
            ("client_id", &id),
            ("redirect_uri", ""),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]))
        .await?;
    assert_eq!(page.status, 200);
    // Control: the exact string.
    assert_eq!(env.authorize(&authz_query(&id, Some(CB), "openid", "s")).await?.status, 200);
    Ok(())
}

#[tokio::test]
async fn loopback_redirects_accept_any_port_and_nothing_else() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let c = env
        .register_client(
            json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none", "scope": "openid"}),
        )
        .await?;
    let id = str_field(&c, "client_id")?;
    assert_eq!(env.authorize(&authz_query(&id, Some("http://127.0.0.1:51234/cb"), "openid", "s")).await?.status, 200);
    for v in [
        "http://127.0.0.1:51234/cb2",
        "http://localhost:51234/cb",
        "http://127.0.0.1.evil.test/cb",
        "https://127.0.0.1:51234/cb",
    ] {
        assert_error_page(&env.authorize(&authz_query(&id, Some(v), "openid", "s")).await?, v);
    }
    Ok(())
}

#[tokio::test]
async fn an_unknown_client_or_an_ambiguous_redirect_is_an_error_page() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let c = env.register_client(json!({"redirect_uris": [CB, "https://client.example/other"]})).await?;
    let two = str_field(&c, "client_id")?;
    let (one, _) = env.web_client("openid").await?;
    let cases = [
        (
            "unknown client",
            q(&[("client_id", "nope"), ("redirect_uri", "https://evil.test/"), ("response_type", "code")]),
        ),
        ("no client", q(&[("redirect_uri", CB), ("response_type", "code")])),
        (
            "foreign redirect",
            q(&[("client_id", &one), ("redirect_uri", "https://evil.test/"), ("response_type", "code")]),
        ),
        (
            "two registered, none named",
            q(&[
                ("client_id", &two),
                ("response_type", "code"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ]),
        ),
        (
            "repeated redirect_uri",
            format!("{}&redirect_uri={}", authz_query(&one, Some(CB), "openid", "s"), "https%3A%2F%2Fevil.test%2F"),
        ),
        ("repeated client_id", format!("{}&client_id=other", authz_query(&one, Some(CB), "openid", "s"))),
        ("broken encoding", format!("client_id={one}&redirect_uri=%ZZ")),
        ("huge state", authz_query(&one, Some(CB), "openid", &"s".repeat(5000))),
    ];
    for (name, query) in cases {
        assert_error_page(&env.authorize(&query).await?, name);
    }
    Ok(())
}

#[tokio::test]
async fn later_errors_redirect_with_error_state_and_iss() -> anyhow::Result<()> {
    // Trusted clients (registered with the registration token); see
    // `untrusted_clients_get_a_page_not_a_redirect_before_sign_in` for the others.
    let env = TestEnv::with_vars(&[("OAUTH_REGISTRATION_TOKEN", TOKEN)]).await?;
    let (id, _) = env.web_client("openid data:read").await?;
    let (svc, _) = env.service_client("data:read").await?;
    let base = |extra: &[(&str, &str)]| {
        let mut p = vec![("client_id", id.as_str()), ("redirect_uri", CB), ("state", "s")];
        p.extend_from_slice(extra);
        q(&p)
    };
    let pkce = [("code_challenge", CHALLENGE), ("code_challenge_method", "S256")];
    let with_pkce = |extra: &[(&str, &str)]| {
        let mut all = vec![("response_type", "code")];
        all.extend_from_slice(&pkce);
        all.extend_from_slice(extra);
        base(&all)
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("response_type missing", base(&pkce), "invalid_request"),
        ("response_type token", base(&[("response_type", "token"), pkce[0], pkce[1]]), "unsupported_response_type"),
        ("hybrid", base(&[("response_type", "code id_token"), pkce[0], pkce[1]]), "unsupported_response_type"),
        ("no code_challenge", base(&[("response_type", "code"), ("code_challenge_method", "S256")]), "invalid_request"),
        (
            "plain",
            base(&[("response_type", "code"), ("code_challenge", CHALLENGE), ("code_challenge_method", "plain")]),
            "invalid_request",
        ),
        ("method omitted", base(&[("response_type", "code"), ("code_challenge", CHALLENGE)]), "invalid_request"),
        (
            "S512",
            base(&[("response_type", "code"), ("code_challenge", CHALLENGE), ("code_challenge_method", "S512")]),
            "invalid_request",
        ),
        (
            "42-char challenge",
            base(&[("response_type", "code"), ("code_challenge", &CHALLENGE[..42]), ("code_challenge_method", "S256")]),
            "invalid_request",
        ),
        (
            "129-char challenge",
            base(&[("response_type", "code"), ("code_challenge", &"a".repeat(129)), ("code_challenge_method", "S256")]),
            "invalid_request",
        ),
        (
            "challenge with +",
            base(&[
                ("response_type", "code"),
                ("code_challenge", &format!("{}+", &CHALLENGE[..42])),
                ("code_challenge_method", "S256"),
            ]),
            "invalid_request",
        ),
        (
            "challenge with =",
            base(&[
                ("response_type", "code"),
                ("code_challenge", &format!("{}=", &CHALLENGE[..42])),
                ("code_challenge_method", "S256"),
            ]),
            "invalid_request",
        ),
        ("unknown scope", with_pkce(&[("scope", "admin")]), "invalid_scope"),
        ("scope beyond the client's", with_pkce(&[("scope", "openid data:write")]), "invalid_scope"),
        ("repeated scope", format!("{}&scope=openid", with_pkce(&[("scope", "openid")])), "invalid_request"),
        ("prompt=none", with_pkce(&[("scope", "openid"), ("prompt", "none")]), "login_required"),
    ];
    for (name, query, code) in cases {
        let page = env.authorize(&query).await?;
        assert_eq!(page.status, 302, "{name}: {}", page.html);
        let loc = page.location().unwrap_or_default();
        assert!(loc.starts_with(&format!("{CB}?")), "{name}: {loc}");
        assert_eq!(page.location_param("error").as_deref(), Some(code), "{name}");
        assert!(page.location_param("error_description").is_some(), "{name}");
        assert_eq!(page.location_param("state").as_deref(), Some("s"), "{name}");
        assert_eq!(page.location_param("iss").as_deref(), Some(ISSUER), "{name}");
        assert!(!loc.contains("code="), "{name}");
    }
    // A client without the code grant.
    let page = env.authorize(&q(&[("client_id", &svc), ("response_type", "code")])).await?;
    assert_error_page(&page, "client_credentials-only client has no redirect URI");
    // Unknown parameters are ignored.
    assert_eq!(
        env.authorize(&format!("{}&extra=foobar", authz_query(&id, Some(CB), "openid", "s"))).await?.status,
        200
    );
    Ok(())
}

#[tokio::test]
async fn reflected_values_cannot_split_headers() -> anyhow::Result<()> {
    let env = TestEnv::with_vars(&[("OAUTH_REGISTRATION_TOKEN", TOKEN)]).await?;
    let (id, _) = env.web_client("openid").await?;
    let query =
        q(&[("client_id", &id), ("redirect_uri", CB), ("state", "a\r\nSet-Cookie: x=1"), ("response_type", "token")]);
    let page = env.authorize(&query).await?;
    assert_eq!(page.status, 302);
    assert_eq!(page.headers.get_all("location").iter().count(), 1);
    assert!(page.location().unwrap_or_default().contains("%0D%0ASet-Cookie"), "{:?}", page.location());
    assert!(page.headers.get_all("set-cookie").iter().all(|c| !c.to_str().unwrap_or_default().starts_with("x=1")));
    assert_eq!(page.location_param("state").as_deref(), Some("a\r\nSet-Cookie: x=1"));
    Ok(())
}

#[tokio::test]
async fn allow_redirects_with_303_code_state_and_iss_and_deny_with_access_denied() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let (id, _) = env.web_client("openid data:read").await?;
    let page = env.authorize(&authz_query(&id, Some(CB), "openid", "xyz")).await?;
    let done = env.submit(&page, "alice", PASSWORD, "allow").await?;
    assert_eq!(done.status, 303);
    assert!(done.location().unwrap_or_default().starts_with(&format!("{CB}?code=")));
    let code = done.location_param("code").unwrap_or_default();
    assert!(code.len() >= 43);
    assert_eq!(done.location_param("state").as_deref(), Some("xyz"));
    assert_eq!(done.location_param("iss").as_deref(), Some(ISSUER));
    let page = env.authorize(&authz_query(&id, Some(CB), "openid", "xyz")).await?;
    let denied = env.submit(&page, "", "", "deny").await?;
    assert_eq!(denied.status, 303);
    assert_eq!(denied.location_param("error").as_deref(), Some("access_denied"));
    assert_eq!(denied.location_param("state").as_deref(), Some("xyz"));
    assert_eq!(denied.location_param("iss").as_deref(), Some(ISSUER));
    assert!(denied.location_param("code").is_none());
    Ok(())
}

#[tokio::test]
async fn tampered_replayed_or_cross_site_forms_get_400_without_a_redirect() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let (id, _) = env.web_client("openid data:read").await?;
    let query = authz_query(&id, Some(CB), "openid", "s");
    let fresh = || env.authorize(&query);
    let post = |fields: Vec<(&'static str, String)>, cookie: Option<String>, origin: Option<&'static str>| {
        let mut req = env.http.post(env.url("/oauth/authorize")).form(&fields);
        if let Some(c) = cookie {
            req = req.header("cookie", env.csrf_cookie(&c));
        }
        match origin {
            Some("cross-site") => req = req.header("sec-fetch-site", "cross-site").header("origin", "null"),
            Some(o) => req = req.header("origin", o),
            None => {}
        }
        req.send()
    };
    let login = |request: String| {
        vec![
            ("request", request),
            ("username", "alice".into()),
            ("password", PASSWORD.into()),
            ("decision", "allow".into()),
        ]
    };
    let page = fresh().await?;
    let request = page.request.clone().unwrap_or_default();
    let other = fresh().await?; // another transaction, with its own cookie
    let (body, tag) = request.split_once('.').unwrap_or_default();
    let mut sealed_json: serde_json::Value =
        serde_json::from_slice(&base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, body)?)?;
    sealed_json["scope"] = json!("openid data:read");
    let altered = format!(
        "{}.{tag}",
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sealed_json.to_string())
    );
    type Case = (&'static str, Vec<(&'static str, String)>, Option<String>, Option<&'static str>);
    let cases: Vec<Case> = vec![
        (
            "no request field",
            vec![
                ("request", "".into()),
                ("username", "alice".into()),
                ("password", PASSWORD.into()),
                ("decision", "allow".into()),
            ],
            page.cookie.clone(),
            None,
        ),
        ("no cookie", login(request.clone()), None, None),
        ("another transaction's cookie", login(request.clone()), other.cookie.clone(), None),
        ("altered hidden field", login(altered), page.cookie.clone(), None),
        ("garbage hidden field", login("abc.def".into()), page.cookie.clone(), None),
        ("cross-site origin", login(request.clone()), page.cookie.clone(), Some("https://evil.test")),
        ("cross-site fetch metadata", login(request.clone()), page.cookie.clone(), Some("cross-site")),
        (
            "no decision",
            vec![("request", request.clone()), ("username", "alice".into()), ("password", PASSWORD.into())],
            page.cookie.clone(),
            None,
        ),
    ];
    for (name, fields, cookie, origin) in cases {
        let r = post(fields, cookie, origin).await?;
        let status = r.status().as_u16();
        let loc = r.headers().get("location").cloned();
        // The request-less form is an authorization request by POST with no client: also a page.
        assert_eq!(status, 400, "{name}");
        assert!(loc.is_none(), "{name}");
    }
    // The genuine submission works once; its replay is refused.
    let ok = post(login(request.clone()), page.cookie.clone(), Some("https://as.test")).await?;
    assert_eq!(ok.status(), 303);
    let replay = post(login(request), page.cookie.clone(), None).await?;
    assert_eq!(replay.status(), 400);
    assert!(replay.headers().get("location").is_none());
    // Expired after 10 minutes.
    let page = fresh().await?;
    env.clock.advance(601);
    let late = env.submit(&page, "alice", PASSWORD, "allow").await?;
    assert_eq!(late.status, 400);
    Ok(())
}

#[tokio::test]
async fn the_authorization_endpoint_never_sends_cors_headers() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, _) = env.web_client("openid").await?;
    let url = format!("{}?{}", env.url("/oauth/authorize"), authz_query(&id, Some(CB), "openid", "s"));
    for method in [reqwest::Method::GET, reqwest::Method::OPTIONS] {
        let r = env
            .http
            .request(method.clone(), &url)
            .header("origin", "https://client.example")
            .header("access-control-request-method", "POST")
            .send()
            .await?;
        assert!(r.headers().keys().all(|k| !k.as_str().starts_with("access-control-")), "{method}");
    }
    Ok(())
}

#[tokio::test]
async fn an_authorization_request_may_also_be_posted_as_a_form() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, _) = env.web_client("openid").await?;
    let r = env
        .http
        .post(env.url("/oauth/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(authz_query(&id, Some(CB), "openid", "s"))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    assert!(r.text().await?.contains("name=\"request\""));
    Ok(())
}

/// docs/SECURITY.md A15: the consent page names what is asked, every time. Consent is never
/// remembered, so a flow asking for more is shown the new scope (and can be denied).
#[tokio::test]
async fn consent_lists_every_requested_scope_on_every_flow() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let (id, _) = env.web_client("openid data:read data:write").await?;
    let first = env.authorize(&authz_query(&id, Some(CB), "openid data:read", "s1")).await?;
    assert_eq!(first.status, 200);
    assert!(first.html.contains("Read your stored data"));
    assert!(!first.html.contains("Add to your stored data"), "not asked, not shown");
    let done = env.submit(&first, "alice", PASSWORD, "allow").await?;
    assert_eq!(done.status, 303);
    // The same client now asks for more: the page is shown again and lists the new scope.
    let second = env.authorize(&authz_query(&id, Some(CB), "openid data:read data:write", "s2")).await?;
    assert_eq!(second.status, 200, "no silent approval of a wider request");
    assert!(second.html.contains("Read your stored data"));
    assert!(second.html.contains("Add to your stored data"));
    let denied = env.submit(&second, "alice", PASSWORD, "deny").await?;
    assert_eq!(denied.status, 303);
    assert_eq!(denied.location_param("error").as_deref(), Some("access_denied"));
    assert_eq!(denied.location_param("state").as_deref(), Some("s2"));
    Ok(())
}

#[tokio::test]
async fn with_a_form_key_secret_the_login_form_is_sealed_with_it() -> anyhow::Result<()> {
    use oauth_core::crypto::Secret;
    use oauth_core::keys::{FormKey, FormKeyOrigin};
    use oauth_core::oauth::sealed::open;
    let value = Secret::new("the form-key secret of every authorize container");
    let form_key = FormKey::from_secret("form-key", &value)?;
    let env = TestEnv::configured(&[], |app| app.with_form_key(form_key)).await?;
    assert_eq!(env.app.form_key_origin(), &FormKeyOrigin::Secret("form-key".into()));
    env.alice().await?;
    let (id, _) = env.web_client("openid data:read").await?;
    let page = env.authorize(&authz_query(&id, Some(CB), "openid data:read", "s")).await?;
    assert_eq!(page.status, 200, "{}", page.html);
    let sealed = page.request.clone().unwrap_or_default();
    let now = oauth_core::clock::Clock::now(&*env.clock).unix_timestamp();
    // Another container with the same secret (and other signing keys, or none) opens it...
    let other = FormKey::from_secret("form-key", &value)?;
    let other_keys = other.keys().unwrap_or_default();
    assert!(
        other_keys.first().and_then(|k| open::<oauth_core::oauth::sealed::PendingRequest>(k, &sealed, now)).is_some()
    );
    // ...and the key set's own key does not: the secret, not the signing keys, seals the form.
    assert!(open::<oauth_core::oauth::sealed::PendingRequest>(env.app.keys().form_key(), &sealed, now).is_none());
    let done = env.submit(&page, "alice", PASSWORD, "allow").await?;
    assert_eq!(done.status, 303, "{}", done.html);
    assert!(done.location_param("code").is_some());
    Ok(())
}

/// The CSRF cookie is the server's own: on an https issuer it is `__Host-` prefixed
/// (`Secure`, `Path=/`, host-only), and a well-formed value the browser was given by
/// someone else (cookie tossing from a sibling host) is replaced, never adopted, so a form
/// bound to the planted value cannot be made.
#[tokio::test]
async fn the_csrf_cookie_is_host_prefixed_and_a_planted_value_is_replaced() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let (id, _) = env.web_client("openid").await?;
    let query = authz_query(&id, Some(CB), "openid", "s");
    let r = env.http.get(env.url(&format!("/oauth/authorize?{query}"))).send().await?;
    let set = r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join("\n");
    assert!(set.starts_with("__Host-oauth_csrf="), "{set}");
    for attr in ["; Path=/;", "; HttpOnly", "; SameSite=Lax", "; Secure"] {
        assert!(set.contains(attr), "{attr} missing in {set}");
    }
    assert!(!set.to_ascii_lowercase().contains("domain="), "host-only: {set}");
    // A planted value, well-formed by the old rule (43 URL-safe characters) and by the new
    // shape, is not adopted: the server sets its own.
    for planted in ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA"] {
        let r = env
            .http
            .get(env.url(&format!("/oauth/authorize?{query}")))
            .header("cookie", env.csrf_cookie(planted))
            .send()
            .await?;
        let set = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert!(set.starts_with("__Host-oauth_csrf=") && !set.contains(planted), "{planted}: {set}");
        // The form is bound to the new value: posted with the planted cookie, it is refused.
        let html = r.text().await?;
        let sealed =
            html.split("name=\"request\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or_default();
        let post = env
            .http
            .post(env.url("/oauth/authorize"))
            .header("cookie", env.csrf_cookie(planted))
            .form(&[("request", sealed), ("username", "alice"), ("password", PASSWORD), ("decision", "allow")])
            .send()
            .await?;
        assert_eq!(post.status(), 400, "{planted}");
        assert!(post.headers().get("location").is_none());
    }
    // The server's own value is kept (a second tab reuses it).
    let first = env.authorize(&query).await?;
    let value = first.cookie.clone().unwrap_or_default();
    let again = env
        .http
        .get(env.url(&format!("/oauth/authorize?{query}")))
        .header("cookie", env.csrf_cookie(&value))
        .send()
        .await?;
    assert!(again.headers().get("set-cookie").is_none(), "a valid cookie is not replaced");
    Ok(())
}

/// RFC 9700 §4.11.2: with open registration anyone can register `https://evil.example/x`
/// and use an invalid request to bounce users off the issuer's domain. A client registered
/// without the registration token gets a page naming the error and the host instead, with a
/// link carrying what the redirect would have; after sign-in, errors redirect as usual.
#[tokio::test]
async fn untrusted_clients_get_a_page_not_a_redirect_before_sign_in() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let evil = "https://evil.example/x";
    let c = env.register_client(json!({"redirect_uris": [evil], "scope": "openid"})).await?;
    let id = str_field(&c, "client_id")?;
    let stored = env.app.clients.client(&id).await?.ok_or_else(|| anyhow::anyhow!("no client"))?;
    assert!(!stored.trusted, "open registration makes untrusted clients");
    let query = q(&[("client_id", &id), ("redirect_uri", evil), ("state", "s"), ("response_type", "token")]);
    let page = env.authorize(&query).await?;
    assert_eq!(page.status, 400, "{}", page.html);
    assert!(page.location().is_none(), "no automatic redirect");
    assert!(page.html.contains("evil.example"), "names the host");
    assert!(page.html.contains("href=\"https://evil.example/x?error=unsupported_response_type"), "{}", page.html);
    assert!(page.html.contains("state=s") && page.html.contains("iss=https"), "{}", page.html);
    // After sign-in (here: the user denies) the client gets its redirect as usual.
    let ok = env.authorize(&authz_query(&id, Some(evil), "openid", "s")).await?;
    assert_eq!(ok.status, 200);
    let denied = env.submit(&ok, "alice", PASSWORD, "deny").await?;
    assert_eq!(denied.status, 303);
    assert_eq!(denied.location_param("error").as_deref(), Some("access_denied"));
    // The same request from a trusted client (registration token) redirects at once.
    let env = TestEnv::with_vars(&[("OAUTH_REGISTRATION_TOKEN", TOKEN)]).await?;
    let c = env.register_client(json!({"redirect_uris": [evil], "scope": "openid"})).await?;
    let id = str_field(&c, "client_id")?;
    let query = q(&[("client_id", &id), ("redirect_uri", evil), ("state", "s"), ("response_type", "token")]);
    assert_eq!(env.authorize(&query).await?.status, 302);
    Ok(())
}
