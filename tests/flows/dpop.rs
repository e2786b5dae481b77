//! DPoP (RFC 9449; docs/API.md, "DPoP"; docs/SECURITY.md D1-D4): tokens bound to the key of
//! the token request's proof, usable at `/api/data` and `/oauth/userinfo` only with a fresh
//! proof by that key for that request and token; public clients' refresh tokens and
//! `dpop_jkt`-bound codes; hostile proofs; server nonces; on both stores.
use anyhow::{Context, Result, ensure};
use oauth_tests::dpop::DpopKey;
use oauth_tests::harness::{CB, PASSWORD, TestEnv, VERIFIER, authz_query, decode_unverified, str_field};
use serde_json::{Value, json};

const TOKEN_URL: &str = "https://as.test/oauth/token";
const DATA_URL: &str = "https://as.test/api/data";

fn now(env: &TestEnv) -> i64 {
    oauth_core::clock::Clock::now(&*env.clock).unix_timestamp()
}

/// POST the token endpoint: `form`, Basic credentials when given, and a DPoP header each.
async fn token(
    env: &TestEnv,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
    dpop: &[&str],
) -> Result<(u16, Value, reqwest::header::HeaderMap)> {
    let mut req = env.http.post(env.url("/oauth/token")).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    for p in dpop {
        req = req.header("DPoP", *p);
    }
    let r = req.send().await?;
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    Ok((status, r.json().await?, headers))
}

/// GET `path` with `Authorization: <scheme> <token>` and a DPoP header each.
async fn get(env: &TestEnv, path: &str, scheme: &str, token: &str, dpop: &[&str]) -> Result<(u16, String, Value)> {
    let mut req = env.http.get(env.url(path)).header("Authorization", format!("{scheme} {token}"));
    for p in dpop {
        req = req.header("DPoP", *p);
    }
    let r = req.send().await?;
    let status = r.status().as_u16();
    let challenge = r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = r.json().await.unwrap_or(Value::Null);
    Ok((status, challenge, body))
}

/// A DPoP-bound client_credentials token for `key`.
async fn bound_cc_token(env: &TestEnv, client: &(String, String), key: &DpopKey) -> Result<String> {
    let proof = key.proof("POST", TOKEN_URL, None, now(env))?;
    let (status, body, _) =
        token(env, Some((&client.0, &client.1)), &[("grant_type", "client_credentials")], &[&proof]).await?;
    ensure!(status == 200 && body["token_type"] == "DPoP", "{status} {body}");
    str_field(&body, "access_token")
}

#[tokio::test]
async fn a_token_request_with_a_proof_gets_a_token_usable_only_with_a_fresh_proof_by_that_key() -> Result<()> {
    let env = TestEnv::new().await?;
    let client = env.service_client("data:read").await?;
    let key = DpopKey::new()?;
    let at = bound_cc_token(&env, &client, &key).await?;
    let (_, claims) = decode_unverified(&at)?;
    ensure!(claims["cnf"]["jkt"] == json!(key.jkt()?), "{claims}");
    // Used with a proof for this request and this token: 200.
    let proof = key.proof("GET", DATA_URL, Some(&at), now(&env))?;
    let (status, _, body) = get(&env, "/api/data", "DPoP", &at, &[&proof]).await?;
    ensure!(status == 200, "{status} {body}");
    // The same proof again: a replay.
    let (status, challenge, body) = get(&env, "/api/data", "DPoP", &at, &[&proof]).await?;
    ensure!(status == 401 && body["error"] == "invalid_dpop_proof", "{status} {body}");
    ensure!(
        challenge.starts_with("DPoP error=\"invalid_dpop_proof\"") && challenge.contains("algs=\"ES256"),
        "{challenge}"
    );
    let other = DpopKey::new()?;
    let t = now(&env);
    let claims_for = |htm: &str, url: &str, ath: Option<&str>, iat: i64| key.claims(htm, url, ath, iat);
    let mut no_ath = claims_for("GET", DATA_URL, None, t)?;
    no_ath.as_object_mut().map(|o| o.remove("ath"));
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("no proof", vec![]),
        ("another key", vec![other.proof("GET", DATA_URL, Some(&at), t)?]),
        ("another key's jwk", vec![key.sign_with(&claims_for("GET", DATA_URL, Some(&at), t)?, &other.jwk)?]),
        ("no ath", vec![key.sign(&no_ath)?]),
        ("another token's ath", vec![key.proof("GET", DATA_URL, Some("another.token.value"), t)?]),
        ("another URL", vec![key.proof("GET", "https://as.test/oauth/userinfo", Some(&at), t)?]),
        ("another host", vec![key.proof("GET", "https://evil.test/api/data", Some(&at), t)?]),
        ("another method", vec![key.proof("POST", DATA_URL, Some(&at), t)?]),
        ("stale", vec![key.proof("GET", DATA_URL, Some(&at), t - 120)?]),
        ("from the future", vec![key.proof("GET", DATA_URL, Some(&at), t + 120)?]),
        ("two proofs", vec![key.proof("GET", DATA_URL, Some(&at), t)?, key.proof("GET", DATA_URL, Some(&at), t)?]),
    ];
    for (what, proofs) in &cases {
        let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let (status, challenge, body) = get(&env, "/api/data", "DPoP", &at, &refs).await?;
        ensure!(status == 401 && body["error"] == "invalid_dpop_proof", "{what}: {status} {body}");
        ensure!(challenge.starts_with("DPoP "), "{what}: {challenge}");
    }
    // The bound token sent as Bearer: refused, with the DPoP challenge.
    let (status, challenge, body) = get(&env, "/api/data", "Bearer", &at, &[]).await?;
    ensure!(
        status == 401 && body["error"] == "invalid_token" && challenge.starts_with("DPoP error=\"invalid_token\""),
        "{status} {challenge}"
    );
    // An unbound token sent with the DPoP scheme: refused too.
    let plain = env.cc_token(&client.0, &client.1, Some("data:read")).await?;
    let (status, _, _) =
        get(&env, "/api/data", "DPoP", &plain, &[&key.proof("GET", DATA_URL, Some(&plain), t)?]).await?;
    ensure!(status == 401, "{status}");
    // Introspection reports the binding.
    let intro = env.introspect(&client.0, &client.1, &at).await?;
    ensure!(
        intro["active"] == true && intro["token_type"] == "DPoP" && intro["cnf"]["jkt"] == json!(key.jkt()?),
        "{intro}"
    );
    Ok(())
}

#[tokio::test]
async fn the_token_endpoint_refuses_every_hostile_proof() -> Result<()> {
    let env = TestEnv::new().await?;
    let client = env.service_client("data:read").await?;
    let key = DpopKey::new()?;
    let t = now(&env);
    let mut private = key.jwk.clone();
    private["d"] = json!("c2VjcmV0LXByaXZhdGUta2V5LXBhcnQ");
    let enc = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default())
    };
    let claims = key.claims("POST", TOKEN_URL, None, t)?;
    let none = format!("{}.{}.", enc(&json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk})), enc(&claims));
    let hs256 = {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.typ = Some("dpop+jwt".into());
        h.jwk = Some(serde_json::from_value(key.jwk.clone())?);
        jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_secret(&serde_json::to_vec(&key.jwk)?))?
    };
    let replayed = key.proof("POST", TOKEN_URL, None, t)?;
    let form = [("grant_type", "client_credentials")];
    let basic = Some((client.0.as_str(), client.1.as_str()));
    let (status, _, _) = token(&env, basic, &form, &[&replayed]).await?;
    ensure!(status == 200);
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("alg none", vec![none]),
        ("HS256 keyed with the public key", vec![hs256]),
        ("a private key in jwk", vec![key.sign_with(&key.claims("POST", TOKEN_URL, None, t)?, &private)?]),
        ("another URL", vec![key.proof("POST", "https://as.test/oauth/revoke", None, t)?]),
        ("another method", vec![key.proof("GET", TOKEN_URL, None, t)?]),
        ("stale", vec![key.proof("POST", TOKEN_URL, None, t - 120)?]),
        ("replayed", vec![replayed]),
        ("two headers", vec![key.proof("POST", TOKEN_URL, None, t)?, key.proof("POST", TOKEN_URL, None, t)?]),
        ("garbage", vec!["not.a.proof".into()]),
    ];
    for (what, proofs) in &cases {
        let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let (status, body, _) = token(&env, basic, &form, &refs).await?;
        ensure!(status == 400 && body["error"] == "invalid_dpop_proof", "{what}: {status} {body}");
    }
    // A client registered for DPoP gets no Bearer token.
    let bound = env
        .register_client(
            json!({"grant_types": ["client_credentials"], "scope": "data:read", "dpop_bound_access_tokens": true}),
        )
        .await?;
    ensure!(bound["dpop_bound_access_tokens"] == true, "{bound}");
    let (id, secret) = (str_field(&bound, "client_id")?, str_field(&bound, "client_secret")?);
    let (status, body, _) = token(&env, Some((&id, &secret)), &form, &[]).await?;
    ensure!(status == 400 && body["error"] == "invalid_dpop_proof", "{status} {body}");
    ensure!(bound_cc_token(&env, &(id, secret), &key).await.is_ok());
    Ok(())
}

#[tokio::test]
async fn a_public_clients_code_and_refresh_tokens_are_bound_to_its_key() -> Result<()> {
    let env = TestEnv::new().await?;
    env.alice().await?;
    let c = env
        .register_client(json!({"redirect_uris": [CB], "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"], "scope": "openid data:read offline_access"}))
        .await?;
    let id = str_field(&c, "client_id")?;
    let key = DpopKey::new()?;
    let other = DpopKey::new()?;
    let mut b = env.browser();
    let q = format!("{}&dpop_jkt={}", authz_query(&id, Some(CB), "openid data:read offline_access", "st"), key.jkt()?);
    let page = b.authorize(&q).await?;
    let done = b.login(&page, "alice", PASSWORD, "allow").await?;
    let code = done.location_param("code").with_context(|| format!("{} {}", done.status, done.html))?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("code_verifier", VERIFIER),
        ("redirect_uri", CB),
        ("client_id", &id),
    ];
    // The code is bound (dpop_jkt): no proof, or another key's, is refused and leaves it usable.
    let (status, body, _) = token(&env, None, &form, &[]).await?;
    ensure!(status == 400 && body["error"] == "invalid_dpop_proof", "{status} {body}");
    let (status, body, _) = token(&env, None, &form, &[&other.proof("POST", TOKEN_URL, None, now(&env))?]).await?;
    ensure!(status == 400 && body["error"] == "invalid_dpop_proof", "{status} {body}");
    let (status, body, _) = token(&env, None, &form, &[&key.proof("POST", TOKEN_URL, None, now(&env))?]).await?;
    ensure!(status == 200 && body["token_type"] == "DPoP", "{status} {body}");
    let rt = str_field(&body, "refresh_token")?;
    // userinfo with the bound token and its proof.
    let at = str_field(&body, "access_token")?;
    let proof = key.proof("GET", "https://as.test/oauth/userinfo", Some(&at), now(&env))?;
    let (status, _, info) = get(&env, "/oauth/userinfo", "DPoP", &at, &[&proof]).await?;
    ensure!(status == 200 && info["sub"].is_string(), "{status} {info}");
    // The refresh token needs a proof by the same key.
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", rt.as_str()), ("client_id", id.as_str())];
    let (status, body, _) = token(&env, None, &refresh, &[]).await?;
    ensure!(status == 400 && body["error"] == "invalid_dpop_proof", "without a proof: {status} {body}");
    let (status, body, _) = token(&env, None, &refresh, &[&other.proof("POST", TOKEN_URL, None, now(&env))?]).await?;
    ensure!(status == 400 && body["error"] == "invalid_dpop_proof", "another key: {status} {body}");
    let (status, body, _) = token(&env, None, &refresh, &[&key.proof("POST", TOKEN_URL, None, now(&env))?]).await?;
    ensure!(status == 200 && body["token_type"] == "DPoP", "refused refreshes rotated nothing: {status} {body}");
    let rt2 = str_field(&body, "refresh_token")?;
    let intro: Value = env
        .http
        .post(env.url("/oauth/introspect"))
        .form(&[("token", rt2.as_str()), ("client_id", id.as_str())])
        .send()
        .await?
        .json()
        .await?;
    ensure!(intro["cnf"]["jkt"] == json!(key.jkt()?), "{intro}");
    Ok(())
}

#[tokio::test]
async fn a_server_nonce_is_demanded_then_accepted_without_any_store_write() -> Result<()> {
    let env = TestEnv::with_vars(&[("DPOP_NONCE_REQUIRED", "true")]).await?;
    let client = env.service_client("data:read").await?;
    let key = DpopKey::new()?;
    let basic = Some((client.0.as_str(), client.1.as_str()));
    let form = [("grant_type", "client_credentials")];
    let (status, body, headers) = token(&env, basic, &form, &[&key.proof("POST", TOKEN_URL, None, now(&env))?]).await?;
    ensure!(status == 400 && body["error"] == "use_dpop_nonce", "{status} {body}");
    let nonce = headers.get("dpop-nonce").and_then(|v| v.to_str().ok()).context("no DPoP-Nonce")?.to_owned();
    let mut claims = key.claims("POST", TOKEN_URL, None, now(&env))?;
    claims["nonce"] = json!(nonce);
    let (status, body, headers) = token(&env, basic, &form, &[&key.sign(&claims)?]).await?;
    ensure!(status == 200 && body["token_type"] == "DPoP", "{status} {body}");
    ensure!(headers.contains_key("dpop-nonce"), "the next nonce is announced");
    // A made-up or stale nonce is answered with a fresh one.
    claims = key.claims("POST", TOKEN_URL, None, now(&env))?;
    claims["nonce"] = json!("made-up-nonce");
    let (status, body, _) = token(&env, basic, &form, &[&key.sign(&claims)?]).await?;
    ensure!(status == 400 && body["error"] == "use_dpop_nonce", "{status} {body}");
    env.clock.advance(700);
    claims = key.claims("POST", TOKEN_URL, None, now(&env))?;
    claims["nonce"] = json!(nonce);
    let (status, body, _) = token(&env, basic, &form, &[&key.sign(&claims)?]).await?;
    ensure!(status == 400 && body["error"] == "use_dpop_nonce", "stale: {status} {body}");
    Ok(())
}

#[tokio::test]
async fn discovery_and_the_resource_metadata_advertise_dpop() -> Result<()> {
    let env = TestEnv::new().await?;
    let m: Value = env.http.get(env.url("/.well-known/oauth-authorization-server")).send().await?.json().await?;
    ensure!(m["dpop_signing_alg_values_supported"] == json!(["ES256", "RS256", "PS256", "EdDSA"]), "{m}");
    let r: Value = env.http.get(env.url("/.well-known/oauth-protected-resource/api")).send().await?.json().await?;
    ensure!(
        r["dpop_signing_alg_values_supported"].is_array() && r["dpop_bound_access_tokens_required"] == false,
        "{r}"
    );
    Ok(())
}
