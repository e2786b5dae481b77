use super::*;
use serde_json::json;

const URL: &str = "https://app.example.com/oauth/client.json";

fn catalog() -> Catalog {
    let id = crate::domain::ResourceId::parse("https://as.test/api").expect("valid");
    Catalog::new(Catalog::builtin_at(id, 900), vec![])
}

fn doc(extra: serde_json::Value) -> Vec<u8> {
    let mut d = json!({
        "client_id": URL,
        "client_name": "Example MCP client",
        "redirect_uris": ["http://127.0.0.1/callback", "https://app.example.com/cb"],
        "logo_uri": "https://app.example.com/logo.png",
        "software_statement": {"deeply": {"nested": [1, {"x": null}]}},
    });
    if let (Some(d), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            d.insert(k.clone(), v.clone());
        }
    }
    serde_json::to_vec(&d).unwrap_or_default()
}

#[test]
fn a_valid_document_is_a_public_untrusted_client_with_every_known_scope_by_default() {
    let c = client_from_document(URL, &doc(json!({})), &catalog(), 7).expect("valid document");
    assert_eq!(c.client_id, URL);
    assert_eq!(c.auth_method, AuthMethod::None);
    assert!(c.secret_hash.is_none() && !c.trusted);
    assert_eq!(c.redirect_uris.len(), 2);
    assert_eq!(c.scope.to_string(), "openid profile email offline_access data:read data:write");
    let scoped = client_from_document(URL, &doc(json!({"scope": "openid data:read"})), &catalog(), 7);
    assert_eq!(scoped.map(|c| c.scope.to_string()), Ok("openid data:read".into()));
    let none = client_from_document(URL, &doc(json!({"token_endpoint_auth_method": "none"})), &catalog(), 7);
    assert!(none.is_ok());
}

#[test]
fn hostile_or_wrong_documents_are_refused_with_a_reason() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("another URL's client_id", doc(json!({"client_id": "https://evil.example/client.json"})), "client_id"),
        ("client_id not a string", doc(json!({"client_id": [URL]})), "client_id"),
        ("shared secret method", doc(json!({"token_endpoint_auth_method": "client_secret_basic"})), "none"),
        ("post secret method", doc(json!({"token_endpoint_auth_method": "client_secret_post"})), "none"),
        ("a secret", doc(json!({"client_secret": "s3cret"})), "secret"),
        ("no redirect_uris", doc(json!({"redirect_uris": null})), "redirect_uris"),
        ("empty redirect_uris", doc(json!({"redirect_uris": []})), "redirect_uris"),
        ("bad redirect URI", doc(json!({"redirect_uris": ["http://evil.example/cb"]})), "redirect"),
        ("redirect_uris wrong type", doc(json!({"redirect_uris": "https://app.example.com/cb"})), "redirect_uris"),
        ("client_name wrong type", doc(json!({"client_name": {"a": 1}})), "client_name"),
        ("unknown scope", doc(json!({"scope": "admin:all"})), "scope"),
        ("client_credentials", doc(json!({"grant_types": ["client_credentials"]})), "client_credentials"),
        ("not JSON", b"<html>".to_vec(), "not JSON"),
        ("not an object", b"[1,2]".to_vec(), "not a JSON object"),
        (
            "repeated client_id",
            format!("{{\"client_id\":\"https://evil.example/c\",\"client_id\":\"{URL}\",\"redirect_uris\":[\"https://a.example/cb\"]}}").into_bytes(),
            "repeated",
        ),
        ("repeated member", format!("{{\"client_id\":\"{URL}\",\"redirect_uris\":[\"https://a.example/cb\"],\"redirect_uris\":[\"https://b.example/cb\"]}}").into_bytes(), "repeated"),
    ];
    for (name, body, word) in cases {
        match client_from_document(URL, &body, &catalog(), 7) {
            Ok(c) => panic!("{name}: accepted {c:?}"),
            Err(why) => assert!(why.contains(word), "{name}: {why}"),
        }
    }
}

#[test]
fn client_id_urls_are_https_with_a_path_and_on_an_allowed_host() {
    let any = CimdSettings::default();
    let ok = ["https://app.example.com/client.json", "https://app.example.com/oauth/metadata?v=2"];
    for u in ok {
        assert!(check_url(u, &any).is_ok(), "{u}");
    }
    let long = format!("https://app.example.com/{}", "a".repeat(MAX_URL_LEN));
    let bad = [
        "http://app.example.com/client.json",
        "https://app.example.com",
        "https://app.example.com/",
        "https://user:pw@app.example.com/c",
        "https://app.example.com/c#frag",
        "https://app.example.com/a/../c",
        "https://app.example.com/a/%2e%2e/c",
        "https://app.example.com/a b",
        long.as_str(),
    ];
    for u in bad {
        assert!(check_url(u, &any).is_err(), "{u} must be refused");
    }
    let only = CimdSettings { allowed_hosts: Some(vec!["vscode.dev".into()]), ..CimdSettings::default() };
    assert!(check_url("https://vscode.dev/oauth/client-metadata.json", &only).is_ok());
    assert!(check_url("https://VSCODE.dev/x", &only).is_ok(), "host names compare case-insensitively");
    assert!(check_url("https://app.example.com/client.json", &only).is_err());
}

#[test]
fn documents_are_kept_for_their_max_age_within_bounds() {
    let s = CimdSettings { cache_min: 300, cache_max: 86_400, ..CimdSettings::default() };
    for (max_age, want) in
        [(None, 300), (Some(0), 300), (Some(60), 300), (Some(3600), 3600), (Some(10_000_000), 86_400)]
    {
        assert_eq!(cache_seconds(max_age, &s), want, "{max_age:?}");
    }
}
