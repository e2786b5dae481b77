//! The API Gateway authorizer, fed the committed event files: HTTP API v2 simple responses,
//! REST TOKEN/REQUEST IAM policies, hostile inputs, revocation, a JWKS URL, and the
//! key-rotation steps (docs/SECURITY.md E9, R8).
use oauth_core::lambda::authorizer::{ScopeRules, handle_event};
use oauth_tests::harness::{ISSUER, TestEnv, str_field};
use serde_json::{Value, json};

const RULES: &str = "GET /api/data=data:read;POST /api/data=data:write";

struct Tokens {
    read: String,
    other_audience: String,
}

async fn setup(env: &TestEnv) -> anyhow::Result<Tokens> {
    let (id, secret) = env.service_client("data:read").await?;
    let read = env.cc_token(&id, &secret, None).await?;
    let mut claims = env.valid_claims(&id, &id, "data:read");
    claims["aud"] = json!("https://another-api.example");
    let header = jsonwebtoken::Header {
        typ: Some("at+jwt".into()),
        kid: Some(env.kid(oauth_core::jwt::SigningAlg::Es256)?),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256)
    };
    let other_audience = env.sign_with_server_key(oauth_core::jwt::SigningAlg::Es256, header, &claims)?;
    Ok(Tokens { read, other_audience })
}

fn event(raw: &str, t: &Tokens) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(
        &raw.replace("REPLACE_ACCESS_TOKEN", &t.read).replace("REPLACE_OTHER_AUDIENCE_TOKEN", &t.other_audience),
    )?)
}

#[tokio::test]
async fn http_api_v2_events_get_simple_responses() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let t = setup(&env).await?;
    let rules = ScopeRules::parse(RULES)?;
    let allow = handle_event(&env.app, &rules, event(include_str!("../../events/authorizer-v2-valid.json"), &t)?).await;
    let allow = allow.map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(allow["isAuthorized"], true);
    assert_eq!(allow["context"]["scope"], "data:read");
    assert!(allow["context"]["sub"].as_str().is_some_and(|s| s.starts_with("cl_")));
    let lower =
        handle_event(&env.app, &rules, event(include_str!("../../events/authorizer-v2-lowercase-bearer.json"), &t)?)
            .await;
    assert_eq!(
        lower.map_err(|e| anyhow::anyhow!("{e}"))?["isAuthorized"],
        true,
        "the scheme is case-insensitive, as at /api/data"
    );
    let denied = [
        (
            "insufficient scope (a read token on a write route)",
            include_str!("../../events/authorizer-v2-insufficient-scope.json"),
        ),
        ("missing header", include_str!("../../events/authorizer-v2-missing-header.json")),
        ("two Authorization headers", include_str!("../../events/authorizer-v2-two-headers.json")),
        ("token in the query string", include_str!("../../events/authorizer-v2-token-in-query.json")),
        ("garbage", include_str!("../../events/authorizer-v2-garbage.json")),
        ("another audience", include_str!("../../events/authorizer-v2-other-audience.json")),
    ];
    for (name, raw) in denied {
        let r = handle_event(&env.app, &rules, event(raw, &t)?).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(r, json!({"isAuthorized": false}), "{name}");
    }
    Ok(())
}

#[tokio::test]
async fn rest_events_get_iam_policies_for_their_method_only() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let t = setup(&env).await?;
    let rules = ScopeRules::parse(RULES)?;
    for raw in [
        include_str!("../../events/authorizer-token-valid.json"),
        include_str!("../../events/authorizer-request-valid.json"),
    ] {
        let ev = event(raw, &t)?;
        let arn = str_field(&ev, "methodArn")?;
        let r = handle_event(&env.app, &rules, ev).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        assert!(r["principalId"].as_str().is_some_and(|s| s.starts_with("cl_")));
        let statement = &r["policyDocument"]["Statement"][0];
        assert_eq!(statement["Effect"], "Allow");
        assert_eq!(statement["Action"], "execute-api:Invoke");
        assert_eq!(
            statement["Resource"],
            json!([arn]),
            "exactly this method: a cached Allow never covers another route"
        );
        assert_eq!(r["context"]["scope"], "data:read");
    }
    // A valid token without the route's scope: an explicit Deny (403).
    let r = handle_event(
        &env.app,
        &rules,
        event(include_str!("../../events/authorizer-token-insufficient-scope.json"), &t)?,
    )
    .await;
    assert_eq!(r.map_err(|e| anyhow::anyhow!("{e}"))?["policyDocument"]["Statement"][0]["Effect"], "Deny");
    // Bad or missing tokens: "Unauthorized" (401), never an Allow.
    for (name, raw) in [
        ("garbage", include_str!("../../events/authorizer-token-garbage.json")),
        ("missing token", include_str!("../../events/authorizer-token-missing.json")),
        ("two headers", include_str!("../../events/authorizer-request-two-headers.json")),
        ("missing header", include_str!("../../events/authorizer-request-missing-header.json")),
    ] {
        let r = handle_event(&env.app, &rules, event(raw, &t)?).await;
        assert_eq!(r.err().map(|e| e.to_string()).as_deref(), Some("Unauthorized"), "{name}");
    }
    // Malformed events of any shape: no panic, no Allow.
    for junk in [
        json!(null),
        json!({}),
        json!({"type": "TOKEN"}),
        json!({"version": "2.0", "headers": 5}),
        json!({"type": "REQUEST", "methodArn": 1}),
    ] {
        let r = handle_event(&env.app, &rules, junk.clone()).await;
        assert!(r.as_ref().map(|v| v["isAuthorized"] == false).unwrap_or(true), "{junk}: {r:?}");
    }
    Ok(())
}

/// No rule, no entry: routes a rule does not name exactly are denied, however the request
/// reached the authorizer (a `$default` or greedy route, a trailing slash, a REST proxy
/// resource), and are allowed once a rule names their route key.
#[tokio::test]
async fn unmatched_routes_are_denied_until_a_rule_names_them() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let t = setup(&env).await?;
    let rules = ScopeRules::parse(RULES)?;
    let v2 = [
        ("trailing slash", include_str!("../../events/authorizer-v2-trailing-slash.json"), "$default"),
        ("$default route", include_str!("../../events/authorizer-v2-default-route.json"), "$default"),
        ("greedy proxy route", include_str!("../../events/authorizer-v2-greedy-route.json"), "ANY /{proxy+}"),
    ];
    for (name, raw, route) in v2 {
        let r = handle_event(&env.app, &rules, event(raw, &t)?).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(r, json!({"isAuthorized": false}), "{name}");
        let named = ScopeRules::parse(&format!("{RULES};{route}=data:read"))?;
        let r = handle_event(&env.app, &named, event(raw, &t)?).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(r["isAuthorized"], true, "{name} with a rule for {route}");
    }
    let proxy = include_str!("../../events/authorizer-token-proxy-resource.json");
    let r = handle_event(&env.app, &rules, event(proxy, &t)?).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(r["policyDocument"]["Statement"][0]["Effect"], "Deny", "REST methodArn on a proxy resource");
    let named = ScopeRules::parse(&format!("{RULES};GET /api/data/extra=data:read"))?;
    let r = handle_event(&env.app, &named, event(proxy, &t)?).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(r["policyDocument"]["Statement"][0]["Effect"], "Allow");
    Ok(())
}

#[tokio::test]
async fn revoked_tokens_and_routes_without_rules_are_denied() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read").await?;
    let t = Tokens { read: env.cc_token(&id, &secret, None).await?, other_audience: String::new() };
    let strict = ScopeRules::parse("POST /api/data=data:write")?;
    let r = handle_event(&env.app, &strict, event(include_str!("../../events/authorizer-v2-valid.json"), &t)?).await;
    assert_eq!(r.map_err(|e| anyhow::anyhow!("{e}"))?["isAuthorized"], false, "no rule for the route and no default");
    let rules = ScopeRules::parse(RULES)?;
    let ev = event(include_str!("../../events/authorizer-v2-valid.json"), &t)?;
    assert_eq!(
        handle_event(&env.app, &rules, ev.clone()).await.map_err(|e| anyhow::anyhow!("{e}"))?["isAuthorized"],
        true
    );
    env.post_form_basic("/oauth/revoke", &id, &secret, &[("token", &t.read)]).await?;
    assert_eq!(
        handle_event(&env.app, &rules, ev).await.map_err(|e| anyhow::anyhow!("{e}"))?["isAuthorized"],
        false,
        "revoked"
    );
    Ok(())
}

/// REST APIs turn the authorizer's `Unauthorized` into a 401, which makes clients refresh;
/// an invalid, expired or revoked token must get it (an HTTP API can only answer 403).
#[tokio::test]
async fn rest_events_answer_unauthorized_for_expired_and_revoked_tokens() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let rules = ScopeRules::parse(RULES)?;
    let (id, secret) = env.service_client("data:read").await?;
    for raw in [
        include_str!("../../events/authorizer-token-valid.json"),
        include_str!("../../events/authorizer-request-valid.json"),
    ] {
        // Expired: past the access-token lifetime.
        let t = Tokens { read: env.cc_token(&id, &secret, None).await?, other_audience: String::new() };
        let ok = handle_event(&env.app, &rules, event(raw, &t)?).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(ok["policyDocument"]["Statement"][0]["Effect"], "Allow");
        env.clock.advance(env.app.settings.access_token_ttl + 120);
        let r = handle_event(&env.app, &rules, event(raw, &t)?).await;
        assert_eq!(r.err().map(|e| e.to_string()).as_deref(), Some("Unauthorized"), "expired");
        // Revoked.
        let t = Tokens { read: env.cc_token(&id, &secret, None).await?, other_audience: String::new() };
        env.post_form_basic("/oauth/revoke", &id, &secret, &[("token", &t.read)]).await?;
        let r = handle_event(&env.app, &rules, event(raw, &t)?).await;
        assert_eq!(r.err().map(|e| e.to_string()).as_deref(), Some("Unauthorized"), "revoked");
    }
    Ok(())
}

/// With `AUTHORIZER_REVOCATION=off` (a copy without the issuer's table) a revoked token
/// still passes: the explicit trade-off; by default it is refused.
#[tokio::test]
async fn revocation_off_is_explicit_and_skips_the_check() -> anyhow::Result<()> {
    use oauth_core::lambda::authorizer::Revocation;
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read").await?;
    let t = Tokens { read: env.cc_token(&id, &secret, None).await?, other_audience: String::new() };
    env.post_form_basic("/oauth/revoke", &id, &secret, &[("token", &t.read)]).await?;
    let ev = event(include_str!("../../events/authorizer-v2-valid.json"), &t)?;
    let checked = ScopeRules::parse(RULES)?;
    let r = handle_event(&env.app, &checked, ev.clone()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(r["isAuthorized"], false);
    let off = ScopeRules::parse(RULES)?.with_revocation(Revocation::Off);
    let r = handle_event(&env.app, &off, ev).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(r["isAuthorized"], true, "no revocation check when turned off");
    Ok(())
}

#[tokio::test]
async fn an_authorizer_in_another_account_verifies_with_the_jwks_url() -> anyhow::Result<()> {
    let issuer_env = TestEnv::new().await?;
    let t = setup(&issuer_env).await?;
    let source = std::sync::Arc::new(oauth_core::keys::JwksUrlKeys::new(&issuer_env.url("/.well-known/jwks.json"))?);
    let resource = oauth_core::App::with_key_ring_alg(
        oauth_core::Settings::from_lookup(|k| (k == "ISSUER").then(|| ISSUER.to_owned()))?,
        oauth_core::store::Stores::all(std::sync::Arc::new(oauth_core::store::SqliteStore::in_memory()?)),
        source,
        Some(300),
        oauth_core::App::system_clock(),
        false,
    )
    .await?;
    let rules = ScopeRules::parse(RULES)?;
    let r = handle_event(&resource, &rules, event(include_str!("../../events/authorizer-v2-valid.json"), &t)?).await;
    assert_eq!(r.map_err(|e| anyhow::anyhow!("{e}"))?["isAuthorized"], true);
    // JWKS unreachable and nothing cached: the authorizer starts, and denies.
    let dead = std::sync::Arc::new(oauth_core::keys::JwksUrlKeys::new("http://127.0.0.1:9/jwks.json")?);
    let cold = oauth_core::App::with_key_ring_alg(
        oauth_core::Settings::from_lookup(|k| (k == "ISSUER").then(|| ISSUER.to_owned()))?,
        oauth_core::store::Stores::all(std::sync::Arc::new(oauth_core::store::SqliteStore::in_memory()?)),
        dead,
        Some(300),
        oauth_core::App::system_clock(),
        false,
    )
    .await?;
    let r = handle_event(&cold, &rules, event(include_str!("../../events/authorizer-v2-valid.json"), &t)?).await;
    assert_eq!(r.map_err(|e| anyhow::anyhow!("{e}"))?["isAuthorized"], false, "fail closed");
    assert!(
        oauth_core::keys::JwksUrlKeys::new("http://keys.example/jwks.json").is_err(),
        "plain http only on loopback"
    );
    Ok(())
}

#[tokio::test]
async fn the_rotation_steps_install_a_new_key_set_and_keep_the_old_one_previous() -> anyhow::Result<()> {
    let Some(cfg) = oauth_tests::aws::emulator().await? else { return Ok(()) };
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    let secret = oauth_tests::aws::unique("rotation");
    // As deployed: the secret starts with a random placeholder; the first rotation makes keys.
    sm.create_secret().name(&secret).secret_string("placeholder-not-a-key-set").send().await?;
    let mut kids = Vec::new();
    for round in 0..2 {
        let version = format!("00000000-0000-4000-8000-00000000000{round}");
        for raw in [
            include_str!("../../events/rotate-keys-create-secret.json"),
            include_str!("../../events/rotate-keys-create-secret.json"), // repeated calls are harmless
            include_str!("../../events/rotate-keys-set-secret.json"),
            include_str!("../../events/rotate-keys-test-secret.json"),
            include_str!("../../events/rotate-keys-finish-secret.json"),
        ] {
            let ev: aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent = serde_json::from_str(
                &raw.replace("REPLACE_SECRET_ID", &secret).replace("REPLACE_VERSION_ID", &version),
            )?;
            oauth_core::lambda::rotation::step(
                &sm,
                &ev.secret_id,
                &ev.client_request_token,
                &ev.step,
                &oauth_core::aws::KEY_SET_ALGS,
                None,
                0,
            )
            .await?;
        }
        let keys = oauth_core::aws::SecretsManagerKeys::new(sm.clone(), secret.clone());
        let set = oauth_core::keys::KeySource::load_set(&keys).await?;
        kids.push(set.signing_kid(oauth_core::jwt::SigningAlg::Es256).unwrap_or_default().to_owned());
        assert!(set.can_sign(oauth_core::jwt::SigningAlg::Rs256), "round {round}");
    }
    let keys = oauth_core::aws::SecretsManagerKeys::new(sm.clone(), secret.clone());
    let set = oauth_core::keys::KeySource::load_set(&keys).await?;
    assert_eq!(
        set.signing_kid(oauth_core::jwt::SigningAlg::Es256),
        kids.get(1).map(String::as_str),
        "the newest signs"
    );
    assert!(
        set.verify_key(kids.first().map(String::as_str).unwrap_or_default()).is_some(),
        "the previous still verifies"
    );
    let bad = oauth_core::lambda::rotation::step(
        &sm,
        &secret,
        "not-a-pending-version",
        "finishSecret",
        &oauth_core::aws::KEY_SET_ALGS,
        None,
        0,
    )
    .await;
    assert!(bad.is_err());
    let bad =
        oauth_core::lambda::rotation::step(&sm, &secret, "x", "dance", &oauth_core::aws::KEY_SET_ALGS, None, 0).await;
    assert!(bad.is_err());
    Ok(())
}

/// A DPoP-bound token through the authorizer (RFC 9449 §7): the v2 and REST REQUEST events
/// with `Authorization: DPoP` and a proof for the URL the client called (from the event's
/// host and path); the token as Bearer, a replayed proof, a proof for another URL or by
/// another key, and a REST TOKEN event (no headers, so no proof) are all denied.
#[tokio::test]
async fn dpop_bound_tokens_pass_only_with_a_proof_for_the_called_url() -> anyhow::Result<()> {
    use oauth_tests::dpop::DpopKey;
    let env = TestEnv::new().await?;
    let rules = ScopeRules::parse(RULES)?;
    let (id, secret) = env.service_client("data:read").await?;
    let key = DpopKey::new()?;
    let now = oauth_core::clock::Clock::now(&*env.clock).unix_timestamp();
    let proof = key.proof("POST", &env.app.settings.url("/oauth/token"), None, now)?;
    let r = env
        .http
        .post(env.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .header("DPoP", proof)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?;
    let at = str_field(&r.json::<Value>().await?, "access_token")?;
    let url = "https://abcdef123.execute-api.us-east-1.amazonaws.com/api/data";
    let v2 = |authorization: &str, dpop: Option<&str>| -> anyhow::Result<Value> {
        let mut ev: Value = serde_json::from_str(include_str!("../../events/authorizer-v2-valid.json"))?;
        ev["headers"]["authorization"] = json!(authorization);
        if let Some(p) = dpop {
            ev["headers"]["dpop"] = json!(p);
        }
        Ok(ev)
    };
    let allowed = |r: Result<Value, _>| r.map(|v: Value| v["isAuthorized"] == true).unwrap_or(false);
    let good = key.proof("GET", url, Some(&at), now)?;
    let scheme = format!("DPoP {at}");
    assert!(allowed(handle_event(&env.app, &rules, v2(&scheme, Some(&good))?).await), "a fresh proof for the URL");
    assert!(!allowed(handle_event(&env.app, &rules, v2(&scheme, Some(&good))?).await), "the same proof again");
    let other = DpopKey::new()?;
    for (what, ev) in [
        ("as Bearer", v2(&format!("Bearer {at}"), None)?),
        ("no proof", v2(&scheme, None)?),
        ("another URL", v2(&scheme, Some(&key.proof("GET", "https://evil.example/api/data", Some(&at), now)?))?),
        ("another key", v2(&scheme, Some(&other.proof("GET", url, Some(&at), now)?))?),
        ("another method", v2(&scheme, Some(&key.proof("POST", url, Some(&at), now)?))?),
    ] {
        assert!(!allowed(handle_event(&env.app, &rules, ev).await), "{what}");
    }
    // REST REQUEST: the URL from the Host header and the context's path.
    let mut rest: Value = serde_json::from_str(include_str!("../../events/authorizer-request-valid.json"))?;
    let host = rest["headers"]["Host"].as_str().or(rest["headers"]["host"].as_str()).unwrap_or_default().to_owned();
    let path = rest["requestContext"]["path"].as_str().or(rest["path"].as_str()).unwrap_or_default().to_owned();
    let method = rest["httpMethod"].as_str().unwrap_or("GET").to_owned();
    let rest_proof = key.proof(&method, &format!("https://{host}{path}"), Some(&at), now)?;
    for h in ["headers", "multiValueHeaders"] {
        if rest[h].is_object() {
            let one = |v: &str| if h == "headers" { json!(v) } else { json!([v]) };
            rest[h]["Authorization"] = one(&scheme);
            rest[h]["DPoP"] = one(&rest_proof);
        }
    }
    let r = handle_event(&env.app, &rules, rest).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(r["policyDocument"]["Statement"][0]["Effect"], "Allow", "{r}");
    // REST TOKEN: only the token, no proof possible.
    let mut token_ev: Value = serde_json::from_str(include_str!("../../events/authorizer-token-valid.json"))?;
    token_ev["authorizationToken"] = json!(scheme);
    assert!(handle_event(&env.app, &rules, token_ev).await.is_err(), "no proof in a TOKEN event");
    Ok(())
}
