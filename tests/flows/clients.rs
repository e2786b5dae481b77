//! `POST /register_client`.
use oauth_tests::harness::{TestEnv, str_field};
use serde_json::{Value, json};

#[tokio::test]
async fn a_client_gets_an_id_a_256_bit_secret_and_the_contract_defaults() -> anyhow::Result<()> {
    // Arrange
    let env = TestEnv::new().await?;
    // Act
    let c = env.register_client(json!({"client_name": "Demo", "redirect_uris": ["https://client.example/cb"], "client_id": "alice", "client_secret": "mine"})).await?;
    // Assert
    let id = str_field(&c, "client_id")?;
    let secret = str_field(&c, "client_secret")?;
    assert!(id.starts_with("cl_") && id != "alice", "server assigns the id: {id}");
    assert_ne!(secret, "mine");
    assert_eq!(secret.len(), 43);
    assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(c["grant_types"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(c["response_types"], json!(["code"]));
    assert_eq!(c["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(c["scope"], "openid profile email offline_access data:read");
    assert_eq!(c["id_token_signed_response_alg"], "RS256");
    assert_eq!(c["client_secret_expires_at"], 0);
    assert!(c["client_id_issued_at"].as_i64().is_some());
    assert_eq!(c["redirect_uris"], json!(["https://client.example/cb"]));
    // Only a hash is stored.
    let stored = env.app.clients.client(&id).await?.ok_or_else(|| anyhow::anyhow!("not stored"))?;
    assert_eq!(stored.secret_hash.as_deref(), Some(oauth_core::crypto::sha256_b64(&secret).as_str()));
    assert!(!serde_json::to_string(&stored)?.contains(&secret));
    Ok(())
}

#[tokio::test]
async fn a_public_client_gets_no_secret() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let c = env
        .register_client(json!({"token_endpoint_auth_method": "none", "redirect_uris": ["http://127.0.0.1/cb"]}))
        .await?;
    assert!(c.get("client_secret").is_none(), "{c}");
    let stored =
        env.app.clients.client(&str_field(&c, "client_id")?).await?.ok_or_else(|| anyhow::anyhow!("missing"))?;
    assert!(stored.secret_hash.is_none());
    Ok(())
}

#[tokio::test]
async fn bad_redirect_uris_get_invalid_redirect_uri() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let cases: Vec<(&str, Value)> = vec![
        ("javascript", json!(["javascript:alert(1)"])),
        ("fragment", json!(["https://a.test/cb#x"])),
        ("wildcard", json!(["https://*.a.test/cb"])),
        ("http remote", json!(["http://a.test/cb"])),
        ("private-use without dot", json!(["myapp:/cb"])),
        ("relative", json!(["/cb"])),
        ("data", json!(["data:text/html,x"])),
        ("userinfo", json!(["https://client.example@evil.test/cb"])),
        ("not strings", json!([1, 2])),
        ("not an array", json!("https://a.test/cb")),
        ("missing for code grant", json!(null)),
        ("empty for code grant", json!([])),
    ];
    for (name, uris) in cases {
        let r = env.http.post(env.url("/register_client")).json(&json!({"redirect_uris": uris})).send().await?;
        assert_eq!(r.status(), 400, "{name}");
        let b: Value = r.json().await?;
        assert_eq!(b["error"], "invalid_redirect_uri", "{name}: {b}");
    }
    Ok(())
}

#[tokio::test]
async fn accepted_redirect_uri_kinds() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    for uri in [
        "https://client.example/cb",
        "http://127.0.0.1/cb",
        "http://[::1]:8080/cb",
        "http://localhost:3000/cb",
        "com.example.app:/cb",
    ] {
        env.register_client(json!({"redirect_uris": [uri]})).await?;
    }
    Ok(())
}

#[tokio::test]
async fn bad_metadata_gets_invalid_client_metadata() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let cb = json!(["https://client.example/cb"]);
    let cases: Vec<(&str, Value)> = vec![
        ("unknown grant", json!({"grant_types": ["password"], "redirect_uris": cb})),
        ("implicit", json!({"grant_types": ["implicit"], "redirect_uris": cb})),
        ("empty grants", json!({"grant_types": []})),
        ("refresh without code", json!({"grant_types": ["refresh_token", "client_credentials"]})),
        (
            "public client_credentials",
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
        ),
        ("unknown auth method", json!({"token_endpoint_auth_method": "private_key_jwt", "redirect_uris": cb})),
        ("token response type", json!({"response_types": ["token"], "redirect_uris": cb})),
        ("unknown scope", json!({"scope": "openid admin", "redirect_uris": cb})),
        ("id token alg HS256", json!({"id_token_signed_response_alg": "HS256", "redirect_uris": cb})),
        ("client_name not a string", json!({"client_name": 5, "redirect_uris": cb})),
        ("client_name with control", json!({"client_name": "a\u{7}b", "redirect_uris": cb})),
        // Consent-page spoofing: bidi overrides and isolates, zero-width and tag characters.
        ("client_name with a right-to-left override", json!({"client_name": "Bank\u{202E}ppA", "redirect_uris": cb})),
        ("client_name with a bidi isolate", json!({"client_name": "a\u{2067}b\u{2069}", "redirect_uris": cb})),
        ("client_name with a zero-width space", json!({"client_name": "Pay\u{200B}Pal", "redirect_uris": cb})),
        ("client_name with a zero-width joiner", json!({"client_name": "a\u{200D}b", "redirect_uris": cb})),
        ("client_name with a BOM", json!({"client_name": "\u{FEFF}App", "redirect_uris": cb})),
        ("client_name with a tag character", json!({"client_name": "App\u{E0041}", "redirect_uris": cb})),
        ("not an object", json!([1])),
    ];
    for (name, body) in cases {
        let r = env.http.post(env.url("/register_client")).json(&body).send().await?;
        assert_eq!(r.status(), 400, "{name}");
        let b: Value = r.json().await?;
        assert_eq!(b["error"], "invalid_client_metadata", "{name}: {b}");
    }
    // Letters of any script, marks and emoji are names; only control and format characters are not.
    let r = env
        .http
        .post(env.url("/register_client"))
        .json(&json!({"client_name": "Café Über 東京 👋", "redirect_uris": cb}))
        .send()
        .await?;
    assert_eq!(r.status(), 201);
    // Malformed JSON and a wrong content type are invalid_client_metadata too.
    let r = env
        .http
        .post(env.url("/register_client"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await?["error"], "invalid_client_metadata");
    let r = env.http.post(env.url("/register_client")).header("content-type", "text/plain").body("{}").send().await?;
    assert_eq!(r.json::<Value>().await?["error"], "invalid_client_metadata");
    Ok(())
}

#[tokio::test]
async fn with_a_registration_token_configured_client_registration_needs_it() -> anyhow::Result<()> {
    let env = TestEnv::with_vars(&[("OAUTH_REGISTRATION_TOKEN", "reg-token-0123456789abcdef")]).await?;
    let body = json!({"grant_types": ["client_credentials"], "scope": "data:read"});
    for (name, auth) in [
        ("none", None),
        ("wrong", Some("Bearer reg-token-0123456789abcdeX")),
        ("basic", Some("Basic cmVnOnRva2Vu")),
        ("prefix", Some("Bearer reg-token")),
    ] {
        let mut req = env.http.post(env.url("/register_client")).json(&body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await?;
        assert_eq!(r.status(), 401, "{name}");
        assert_eq!(
            r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()),
            Some("Bearer error=\"invalid_token\""),
            "{name}"
        );
        assert_eq!(r.json::<Value>().await?["error"], "invalid_token", "{name}");
    }
    let r =
        env.http.post(env.url("/register_client")).bearer_auth("reg-token-0123456789abcdef").json(&body).send().await?;
    assert_eq!(r.status(), 201);
    Ok(())
}
