//! Hostile input on every endpoint: contract errors, never a 500, nothing stored.
use oauth_tests::harness::TestEnv;
use serde_json::Value;

/// Every path with the methods it serves (`Allow`), from the server's own route table, so a
/// new endpoint is covered here without being listed.
fn paths() -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for (method, path) in oauth_core::http::routes() {
        match out.iter_mut().find(|(p, _)| *p == path) {
            Some((_, methods)) => {
                methods.push_str(", ");
                methods.push_str(method);
            }
            None => out.push((path, method.to_owned())),
        }
    }
    out
}

/// The pages a browser sees: they answer HTML, the rest JSON.
const BROWSER_PATHS: [&str; 5] =
    ["/oauth/authorize", "/oauth/logout", "/account", "/federation/{provider}/callback", "/device"];

#[tokio::test]
async fn other_methods_get_405_with_allow() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let paths = paths();
    assert!(paths.len() >= 15 && paths.iter().any(|(p, _)| *p == "/account"), "{paths:?}");
    for (path, allow) in &paths {
        for method in ["HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"] {
            if allow.contains(method) {
                continue;
            }
            let r = env.http.request(reqwest::Method::from_bytes(method.as_bytes())?, env.url(path)).send().await?;
            assert_eq!(r.status(), 405, "{method} {path}");
            assert_eq!(r.headers()["allow"], allow.as_str(), "{method} {path}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn unknown_paths_get_404_json() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    for path in ["/nope", "/register/", "/oauth/token/", "/API/DATA", "/.well-known/"] {
        let r = env.http.get(env.url(path)).send().await?;
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.json::<Value>().await?["error"], "invalid_request", "{path}");
    }
    Ok(())
}

#[tokio::test]
async fn bodies_over_64_kib_get_413_on_every_post_endpoint() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let big = vec![b'a'; 64 * 1024 + 1];
    for (path, allow) in paths().into_iter().filter(|(_, a)| a.contains("POST")) {
        let r =
            env.http.post(env.url(path)).header("content-type", "application/json").body(big.clone()).send().await?;
        assert_eq!(r.status(), 413, "{path} ({allow})");
        assert_eq!(r.json::<Value>().await?["error"], "invalid_request", "{path}");
        // Chunked, with no Content-Length: refused while reading.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..17).map(|_| Ok(vec![b'a'; 4096])).collect();
        let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
        let r = env
            .http
            .post(env.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await?;
        assert_eq!(r.status(), 413, "chunked {path}");
    }
    Ok(())
}

#[tokio::test]
async fn malformed_bodies_get_contract_errors_and_store_nothing() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read").await?;
    let nested = "[".repeat(10_000) + &"]".repeat(10_000);
    let json_cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "application/json"),
        (
            "invalid utf-8",
            b"{\"username\": \"al\xffice\", \"password\": \"correct horse battery\"}".to_vec(),
            "application/json",
        ),
        ("deeply nested", nested.clone().into_bytes(), "application/json"),
        (
            "NUL in username",
            b"{\"username\": \"alice\\u0000\", \"password\": \"correct horse battery\"}".to_vec(),
            "application/json",
        ),
        (
            "duplicate keys",
            b"{\"username\": \"alice\", \"username\": \"bob\", \"password\": \"correct horse battery\"}".to_vec(),
            "application/json",
        ),
        (
            "wrong content type",
            b"{\"username\": \"alice\", \"password\": \"correct horse battery\"}".to_vec(),
            "text/plain",
        ),
        (
            "odd content type",
            b"{\"username\": \"alice\", \"password\": \"correct horse battery\"}".to_vec(),
            "application/jsonx; charset=utf-8",
        ),
    ];
    for (name, body, ct) in json_cases {
        let r = env.http.post(env.url("/register")).header("content-type", ct).body(body.clone()).send().await?;
        assert_eq!(r.status(), 400, "/register {name}");
        assert_eq!(r.json::<Value>().await?["error"], "invalid_request", "/register {name}");
        let r = env.http.post(env.url("/register_client")).header("content-type", ct).body(body).send().await?;
        assert_eq!(r.status(), 400, "/register_client {name}");
    }
    // Content-Type parameters and case are accepted.
    let r = env
        .http
        .post(env.url("/register"))
        .header("content-type", "Application/JSON; charset=UTF-8")
        .body(r#"{"username":"zed","password":"correct horse battery"}"#)
        .send()
        .await?;
    assert_eq!(r.status(), 201);
    let form_cases: Vec<(&str, Vec<u8>)> = vec![
        ("invalid utf-8", b"grant_type=client_credentials&scope=\xff".to_vec()),
        ("broken escape", b"grant_type=client_credentials&scope=%E".to_vec()),
        ("NUL", b"grant_type=client_credentials&scope=data%3Aread%00".to_vec()),
        ("5000 parameters", (0..5000).map(|i| format!("p{i}=1")).collect::<Vec<_>>().join("&").into_bytes()),
        ("repeated mixed", b"grant_type=client_credentials&GRANT_TYPE=x&grant_type=client_credentials".to_vec()),
    ];
    for (name, body) in form_cases {
        for path in ["/oauth/token", "/oauth/revoke", "/oauth/introspect"] {
            let r = env
                .http
                .post(env.url(path))
                .basic_auth(&id, Some(&secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .await?;
            assert_eq!(r.status(), 400, "{path} {name}");
            assert_eq!(r.json::<Value>().await?["error"], "invalid_request", "{path} {name}");
        }
    }
    // Mixed-case parameter names are different parameters (and unknown ones are ignored).
    let r = env
        .http
        .post(env.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("Grant_Type", "password"), ("grant_type", "client_credentials")])
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    for name in ["alice", "bob"] {
        assert!(env.app.users.user_by_username(name).await?.is_none(), "{name} was stored");
    }
    Ok(())
}

#[tokio::test]
async fn garbage_authorization_headers_never_cause_a_server_error() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let huge = format!("Basic {}", "QUFB".repeat(25_000));
    let values: Vec<reqwest::header::HeaderValue> =
        ["", "Basic", "Basic ", "Basic ====", "Bearer", "Bearer  ", "Negotiate abc", "Basic Og==", huge.as_str()]
            .iter()
            .map(|v| reqwest::header::HeaderValue::from_str(v))
            .chain([
                reqwest::header::HeaderValue::from_bytes(b"Basic \xff\xfe"),
                reqwest::header::HeaderValue::from_bytes(b"Bearer \xc3\xa9t\xc3\xa9"),
            ])
            .collect::<Result<_, _>>()?;
    for v in values {
        for (path, method) in [
            ("/oauth/token", "POST"),
            ("/oauth/introspect", "POST"),
            ("/api/data", "GET"),
            ("/register_client", "POST"),
        ] {
            let req = env
                .http
                .request(reqwest::Method::from_bytes(method.as_bytes())?, env.url(path))
                .header("authorization", v.clone());
            let req = if path == "/register_client" {
                req.json(&serde_json::json!({"grant_types": ["client_credentials"]}))
            } else {
                req.form(&[("grant_type", "client_credentials"), ("token", "x")])
            };
            let r = req.send().await?;
            let status = r.status().as_u16();
            assert!(
                (400..500).contains(&status) || (path == "/register_client" && status == 201),
                "{path} {v:?}: {status}"
            );
        }
    }
    Ok(())
}

/// The same hostile inputs on every endpoint and method it serves: never a 5xx, and every
/// error in the contract's format (JSON `error` + `error_description`, or an HTML page at
/// `/oauth/authorize`).
#[tokio::test]
async fn every_endpoint_answers_every_hostile_input_in_the_contract_format() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read").await?;
    let token = env.cc_token(&id, &secret, None).await?;
    let nested = "[".repeat(100_000) + &"]".repeat(100_000);
    let long_header = "a".repeat(30_000);
    type Case<'a> = (&'a str, Vec<u8>, &'a str, &'a str, Vec<(&'a str, String)>);
    let cases: Vec<Case> = vec![
        ("empty body", vec![], "application/json", "", vec![]),
        ("1 MiB body", vec![b'{'; 1024 * 1024], "application/json", "", vec![]),
        ("deeply nested JSON", nested.into_bytes(), "application/json", "", vec![]),
        (
            "NUL and controls",
            b"grant_type=\x00\x01&username=a\x07b".to_vec(),
            "application/x-www-form-urlencoded",
            "a=%00%1b&b=\x7f",
            vec![],
        ),
        ("invalid UTF-8", b"{\"a\": \"\xff\xfe\"}".to_vec(), "application/json", "client_id=%ff%fe", vec![]),
        (
            "overlong headers",
            b"{}".to_vec(),
            "application/json",
            "",
            vec![("x-long", long_header.clone()), ("authorization", format!("Bearer {long_header}"))],
        ),
        (
            "repeated parameters",
            b"grant_type=client_credentials&grant_type=client_credentials".to_vec(),
            "application/x-www-form-urlencoded",
            "client_id=a&client_id=a&response_type=code&response_type=code",
            vec![],
        ),
        (
            "mixed-case names",
            b"GRANT_TYPE=client_credentials&Token=x".to_vec(),
            "application/x-www-form-urlencoded",
            "Client_Id=a&RESPONSE_TYPE=code",
            vec![],
        ),
        ("odd content type", b"{}".to_vec(), "application/json;;; charset=\"utf-8\"; boundary=--x; q=0", "", vec![]),
    ];
    for (path, methods) in paths() {
        for method in methods.split(", ") {
            for (name, body, content_type, query, headers) in &cases {
                let url = if query.is_empty() { env.url(path) } else { format!("{}?{query}", env.url(path)) };
                let mut req = env
                    .http
                    .request(reqwest::Method::from_bytes(method.as_bytes())?, url)
                    .header("content-type", *content_type)
                    .body(body.clone());
                for (k, v) in headers {
                    req = req.header(*k, v.as_str());
                }
                if path == "/api/data" && headers.is_empty() {
                    req = req.bearer_auth(&token);
                }
                let r = req.send().await?;
                let status = r.status().as_u16();
                let html = r.headers().get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
                let text = r.text().await?;
                assert!(status < 500, "{method} {path} {name}: {status} {text}");
                if status >= 400 && !html {
                    let v: Value = serde_json::from_str(&text)
                        .map_err(|e| anyhow::anyhow!("{method} {path} {name}: {e}: {text}"))?;
                    assert!(
                        v["error"].is_string() && v["error_description"].is_string(),
                        "{method} {path} {name}: {v}"
                    );
                }
                assert!(!html || BROWSER_PATHS.contains(&path), "{method} {path} {name}: HTML off the browser pages");
            }
        }
    }
    // Nothing was created by any of it: no user, no session, no consent.
    assert!(env.app.users.user_by_username("a").await?.is_none());
    let t = oauth_core::clock::Clock::now(&*env.clock);
    assert!(env.app.sessions.sessions_of("a", t).await?.is_empty());
    assert!(env.app.grants.grants_of("a").await?.is_empty());
    Ok(())
}

/// Slowloris: a connection that never finishes its headers is closed after the header read
/// timeout, and the server keeps answering others.
#[tokio::test]
async fn a_client_that_trickles_its_headers_is_disconnected() -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = TestEnv::new().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let timeout = std::time::Duration::from_millis(300);
    tokio::spawn(oauth_local::serve_with(env.app.clone(), listener, std::future::pending(), timeout));
    let mut slow = tokio::net::TcpStream::connect(addr).await?;
    slow.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await?;
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), slow.read(&mut buf)).await;
    let closed = match read {
        Ok(Ok(n)) => n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
        Ok(Err(_)) => true,
        Err(_) => false,
    };
    assert!(closed, "the half-sent request was not cut off within 5 s");
    let r = env.http.get(format!("http://{addr}/.well-known/jwks.json")).send().await?;
    assert_eq!(r.status(), 200);
    Ok(())
}
