//! Client ID Metadata Documents end to end, against a local HTTPS document server (the test
//! CA of tests/fixtures/cimd): a valid document through sign-in and the token endpoint, each
//! refusal (client_id mismatch, redirect not listed, secret method, oversize, redirect
//! response, slow server), the cache (honoured, bounded, errors never cached) and the SSRF
//! refusals with the test switch off.
use oauth_tests::docserver::{Answer, CA_FILE, DocServer};
use oauth_tests::harness::{PASSWORD, Page, TestEnv, VERIFIER, str_field};
use serde_json::{Value, json};
use std::time::Duration;

const PATH: &str = "/oauth/client.json";

/// A server whose issuer is on loopback and that trusts the test CA for loopback documents.
async fn env_trusting(docs: &DocServer) -> anyhow::Result<TestEnv> {
    let _ = docs;
    TestEnv::with_vars(&[
        ("ISSUER", "http://127.0.0.1:9"),
        ("CIMD_TEST_LOOPBACK_CA_FILE", CA_FILE),
        ("CIMD_FETCH_TIMEOUT_MS", "700"),
        ("CIMD_CACHE_MIN_SECONDS", "300"),
        ("CIMD_CACHE_MAX_SECONDS", "3600"),
    ])
    .await
}

fn document(url: &str) -> Value {
    json!({
        "client_id": url,
        "client_name": "Example MCP Client",
        "redirect_uris": ["http://127.0.0.1/callback", "http://localhost/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "logo_uri": "https://localhost/logo.png",
        "future_member": {"ignored": [true]},
    })
}

fn authorize_query(client_id: &str, redirect_uri: &str) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid data:read")
        .append_pair("state", "st")
        .append_pair("code_challenge", oauth_tests::harness::CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", "http://127.0.0.1:9/api");
    q.finish()
}

async fn authorize(env: &TestEnv, client_id: &str) -> anyhow::Result<Page> {
    env.authorize(&authorize_query(client_id, "http://127.0.0.1:53117/callback")).await
}

#[tokio::test]
async fn a_document_client_signs_in_and_gets_tokens_and_its_document_is_cached_per_cache_control() -> anyhow::Result<()>
{
    let docs = DocServer::start().await?;
    let env = env_trusting(&docs).await?;
    let url = docs.url(PATH);
    docs.set(PATH, Answer::json(&document(&url), Some("public, max-age=600")));
    let meta: Value = env.http.get(env.url("/.well-known/oauth-authorization-server")).send().await?.json().await?;
    assert_eq!(meta["client_id_metadata_document_supported"], true);
    env.alice().await?;

    // Loopback redirect URIs of the document match on any port (RFC 8252 §7.3).
    let page = authorize(&env, &url).await?;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.html.contains("Example MCP Client")
            && page.html.contains("from <strong class=\"host\">localhost</strong>")
    );
    let done = env.submit(&page, "alice", PASSWORD, "allow").await?;
    let code = done.location_param("code").ok_or_else(|| anyhow::anyhow!("no code: {} {}", done.status, done.html))?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", VERIFIER),
        ("redirect_uri", "http://127.0.0.1:53117/callback"),
        ("client_id", url.as_str()),
    ];
    let r = env.http.post(env.url("/oauth/token")).form(&form).send().await?;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await?;
    let (_, claims) = oauth_tests::harness::decode_unverified(&str_field(&body, "access_token")?)?;
    assert_eq!(
        (claims["client_id"].as_str(), claims["aud"].as_str()),
        (Some(url.as_str()), Some("http://127.0.0.1:9/api"))
    );
    // One fetch served the authorization request, the form and the token request.
    assert_eq!(docs.hits(PATH), 1);
    // Cached for its max-age (600 s, within 300..3600), then fetched again.
    env.clock.advance(590);
    assert_eq!(authorize(&env, &url).await?.status, 200);
    assert_eq!(docs.hits(PATH), 1, "still cached");
    env.clock.advance(20);
    assert_eq!(authorize(&env, &url).await?.status, 200);
    assert_eq!(docs.hits(PATH), 2, "fetched again after its max-age");
    // A max-age beyond the configured bound is cut to it (3600 s).
    docs.set(PATH, Answer::json(&document(&url), Some("max-age=999999")));
    env.clock.advance(700);
    assert_eq!(authorize(&env, &url).await?.status, 200);
    assert_eq!(docs.hits(PATH), 3);
    env.clock.advance(3601);
    assert_eq!(authorize(&env, &url).await?.status, 200);
    assert_eq!(docs.hits(PATH), 4, "bounded by CIMD_CACHE_MAX_SECONDS");
    // A public client: a secret or another redirect URI gets nothing.
    let page = env.authorize(&authorize_query(&url, "https://evil.example/callback")).await?;
    assert_eq!(page.status, 400);
    assert!(page.location().is_none(), "never a redirect to an unlisted URI");
    Ok(())
}

#[tokio::test]
async fn refused_documents_are_pages_never_redirects_and_errors_are_never_cached() -> anyhow::Result<()> {
    let docs = DocServer::start().await?;
    let env = env_trusting(&docs).await?;
    let big = json!({"client_id": docs.url("/big.json"), "redirect_uris": ["http://127.0.0.1/callback"], "pad": "x".repeat(6000)});
    let cases: Vec<(&str, Answer, &str)> = vec![
        ("/mismatch.json", Answer::json(&document("https://localhost/other.json"), None), "client_id"),
        (
            "/secret.json",
            Answer::json(
                &{
                    let mut d = document(&docs.url("/secret.json"));
                    d["token_endpoint_auth_method"] = json!("client_secret_basic");
                    d
                },
                None,
            ),
            "shared secrets",
        ),
        ("/big.json", Answer::json(&big, None), "5 KiB"),
        ("/stream.json", Answer { hide_length: true, ..Answer::json(&big, None) }, "5 KiB"),
        (
            "/moved.json",
            Answer {
                status: 302,
                headers: vec![("Location".into(), docs.url("/oauth/client.json"))],
                ..Answer::default()
            },
            "redirect",
        ),
        (
            "/slow.json",
            Answer { delay: Duration::from_millis(2000), ..Answer::json(&document(&docs.url("/slow.json")), None) },
            "timed out",
        ),
        ("/gone.json", Answer { status: 500, ..Answer::default() }, "500"),
        (
            "/wrongtypes.json",
            Answer::json(&json!({"client_id": docs.url("/wrongtypes.json"), "redirect_uris": [1, 2]}), None),
            "redirect_uris",
        ),
    ];
    for (path, answer, word) in cases {
        docs.set(path, answer);
        let page = authorize(&env, &docs.url(path)).await?;
        assert_eq!(page.status, 400, "{path}: {}", page.html);
        assert!(page.location().is_none(), "{path}: no redirect");
        assert!(page.html.contains(word), "{path}: {}", page.html);
    }
    // Not cached: the fixed document is used at once, without waiting.
    let gone = docs.url("/gone.json");
    docs.set("/gone.json", Answer::json(&document(&gone), Some("max-age=600")));
    assert_eq!(authorize(&env, &gone).await?.status, 200);
    assert_eq!(docs.hits("/gone.json"), 2);
    // The token endpoint refuses a refused document's client as invalid_client.
    let r = env
        .http
        .post(env.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("code_verifier", VERIFIER),
            ("client_id", docs.url("/mismatch.json").as_str()),
        ])
        .send()
        .await?;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await?["error"], "invalid_client");
    Ok(())
}

#[tokio::test]
async fn without_the_test_switch_loopback_and_private_hosts_are_never_contacted() -> anyhow::Result<()> {
    let docs = DocServer::start().await?;
    let env = TestEnv::with_vars(&[("ISSUER", "http://127.0.0.1:9"), ("CIMD_FETCH_TIMEOUT_MS", "700")]).await?;
    docs.set(PATH, Answer::json(&document(&docs.url(PATH)), None));
    let port = docs.port;
    let urls = [
        docs.url(PATH),                            // a name that resolves to loopback
        format!("https://127.0.0.1:{port}{PATH}"), // a loopback literal
        format!("https://[::1]:{port}{PATH}"),
        "https://10.0.0.1/oauth/client.json".to_owned(),       // private
        "https://169.254.169.254/latest/meta-data".to_owned(), // cloud metadata
        "https://[fd00::1]/c.json".to_owned(),
    ];
    for url in urls {
        let page = authorize(&env, &url).await?;
        assert_eq!(page.status, 400, "{url}: {}", page.html);
        assert!(page.html.contains("special-use"), "{url}: {}", page.html);
    }
    assert_eq!(docs.hits(PATH), 0, "the document server was never contacted");
    // And a public issuer cannot turn the switch on at all.
    let refused = TestEnv::with_vars(&[("CIMD_TEST_LOOPBACK_CA_FILE", CA_FILE)]).await;
    assert!(refused.is_err(), "CIMD_TEST_LOOPBACK_CA_FILE needs an issuer on loopback");
    Ok(())
}

#[tokio::test]
async fn an_allow_list_limits_the_hosts_and_cimd_can_be_turned_off() -> anyhow::Result<()> {
    let docs = DocServer::start().await?;
    docs.set(PATH, Answer::json(&document(&docs.url(PATH)), None));
    let listed = TestEnv::with_vars(&[
        ("ISSUER", "http://127.0.0.1:9"),
        ("CIMD_TEST_LOOPBACK_CA_FILE", CA_FILE),
        ("CIMD_ALLOWED_HOSTS", "vscode.dev"),
    ])
    .await?;
    let page = authorize(&listed, &docs.url(PATH)).await?;
    assert!(page.status == 400 && page.html.contains("not accepted here"), "{}", page.html);
    let off = TestEnv::with_vars(&[("ISSUER", "http://127.0.0.1:9"), ("CIMD_ENABLED", "false")]).await?;
    let meta: Value = off.http.get(off.url("/.well-known/oauth-authorization-server")).send().await?.json().await?;
    assert_eq!(meta["client_id_metadata_document_supported"], false);
    let page = authorize(&off, &docs.url(PATH)).await?;
    assert!(page.status == 400 && page.html.contains("Unknown client"), "{}", page.html);
    assert_eq!(docs.hits(PATH), 0);
    Ok(())
}
