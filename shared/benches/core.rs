//! Micro-benchmarks: JWT issue and verify per algorithm, argon2id hashing, and whole
//! requests (client_credentials, GET /api/data, the password login, the silent
//! authorization of a signed-in browser, the code exchange) through the shared router
//! in-process over an in-memory SQLite store. Run with `cargo bench -p oauth-core`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // benchmark setup may abort
use base64::Engine;
use criterion::{Criterion, criterion_group, criterion_main};
use oauth_core::App;
use oauth_core::config::Settings;
use oauth_core::crypto::{Secret, hash_password};
use oauth_core::http::{Function, call, router};
use oauth_core::jwt::{AccessGrant, SigningAlg, issue_access_token, verify_access_token};
use oauth_core::keys::{KeySet, KeySetDoc, StaticKeys};
use oauth_core::store::{SqliteStore, Stores};
use std::hint::black_box;
use std::sync::Arc;

fn settings(alg: &str) -> Settings {
    let vars = [("ISSUER", "https://as.test"), ("ACCESS_TOKEN_ALG", alg)];
    Settings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())).unwrap()
}

fn grant() -> AccessGrant<'static> {
    AccessGrant {
        sub: "usr_1",
        client_id: "cl_1",
        scope: "data:read".into(),
        jti: "at_1".into(),
        fam: None,
        aud: "https://as.test/api",
        ttl: 900,
        jkt: None,
    }
}

fn jwt(c: &mut Criterion) {
    let doc = KeySetDoc::generate(&[SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::EdDsa]).unwrap();
    let keys = KeySet::from_doc(&doc).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for alg in ["ES256", "RS256", "EdDSA"] {
        let s = settings(alg);
        c.bench_function(&format!("jwt_issue/{alg}"), |b| {
            b.iter(|| issue_access_token(&keys, &s, grant(), now).unwrap())
        });
        let (token, _) = issue_access_token(&keys, &s, grant(), now).unwrap();
        c.bench_function(&format!("jwt_verify/{alg}"), |b| {
            b.iter(|| verify_access_token(&keys, &s, black_box(&token), now).unwrap())
        });
    }
}

fn argon2(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("argon2id");
    group.sample_size(20);
    group.bench_function("hash_m19456_t2_p1", |b| {
        b.to_async(&rt).iter(|| async { hash_password(Secret::new("correct horse battery staple")).await.unwrap() })
    });
    group.finish();
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> lambda_http::Request {
    let mut b = http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(lambda_http::Body::from(body.to_owned())).unwrap()
}

fn flows(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let app = rt.block_on(async {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let keys = StaticKeys::generate(&[SigningAlg::Es256, SigningAlg::Rs256]).unwrap();
        router(
            Arc::new(
                App::new(settings("ES256"), Stores::all(store), Arc::new(keys), None, App::system_clock())
                    .await
                    .unwrap(),
            ),
            Function::All,
        )
    });
    let reg = request(
        "POST",
        "/register_client",
        &[("content-type", "application/json")],
        r#"{"grant_types":["client_credentials"],"scope":"data:read data:write"}"#,
    );
    let client: serde_json::Value = serde_json::from_slice(rt.block_on(call(&app, reg)).body().as_ref()).unwrap();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            client["client_id"].as_str().unwrap(),
            client["client_secret"].as_str().unwrap()
        ))
    );
    let token_req = || {
        request(
            "POST",
            "/oauth/token",
            &[("content-type", "application/x-www-form-urlencoded"), ("authorization", &basic)],
            "grant_type=client_credentials",
        )
    };
    c.bench_function("request/client_credentials", |b| {
        b.to_async(&rt).iter(|| async {
            let resp = call(&app, token_req()).await;
            assert_eq!(resp.status(), 200);
        })
    });
    let resp = rt.block_on(call(&app, token_req()));
    let token: serde_json::Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    c.bench_function("request/api_data_get_cached", |b| {
        b.to_async(&rt).iter(|| async {
            let resp = call(&app, request("GET", "/api/data", &[("authorization", &bearer)], "")).await;
            assert_eq!(resp.status(), 200);
        })
    });
}

fn body_text(resp: &http::Response<bytes::Bytes>) -> String {
    String::from_utf8_lossy(resp.body().as_ref()).into_owned()
}

/// GET /oauth/authorize and return (sealed request, cookie) of the login form.
async fn login_form(app: &oauth_core::http::Router, client_id: &str) -> (String, String) {
    let q = format!(
        "/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri=https%3A%2F%2Fclient.example%2Fcb\
         &scope=openid%20offline_access%20data%3Aread&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
         &code_challenge_method=S256"
    );
    let resp = call(app, request("GET", &q, &[], "")).await;
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let html = body_text(&resp);
    let start = html.find("name=\"request\" value=\"").unwrap() + "name=\"request\" value=\"".len();
    let end = start + html[start..].find('"').unwrap();
    (html[start..end].to_owned(), cookie)
}

fn login_submit(sealed: &str, cookie: &str) -> lambda_http::Request {
    let body = format!("request={sealed}&username=alice&password=correct+horse+battery+staple&decision=allow");
    request(
        "POST",
        "/oauth/authorize",
        &[("content-type", "application/x-www-form-urlencoded"), ("cookie", cookie)],
        &body,
    )
}

fn code_flow(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let app = rt.block_on(async {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let keys = StaticKeys::generate(&[SigningAlg::Es256, SigningAlg::Rs256]).unwrap();
        let app = router(
            Arc::new(
                App::new(settings("ES256"), Stores::all(store), Arc::new(keys), None, App::system_clock())
                    .await
                    .unwrap(),
            ),
            Function::All,
        );
        let reg = request(
            "POST",
            "/register",
            &[("content-type", "application/json")],
            r#"{"username":"alice","password":"correct horse battery staple"}"#,
        );
        assert_eq!(call(&app, reg).await.status(), 201);
        app
    });
    let reg = request(
        "POST",
        "/register_client",
        &[("content-type", "application/json")],
        r#"{"redirect_uris":["https://client.example/cb"],"scope":"openid offline_access data:read"}"#,
    );
    let client: serde_json::Value = serde_json::from_slice(rt.block_on(call(&app, reg)).body().as_ref()).unwrap();
    let id = client["client_id"].as_str().unwrap().to_owned();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{}", client["client_secret"].as_str().unwrap()))
    );
    let mut group = c.benchmark_group("code_flow");
    group.sample_size(20);
    // The whole login POST: form checks, throttle counters, argon2id verify, code issue.
    group.bench_function("authorize_post_login", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (app, id) = (app.clone(), id.clone());
            async move {
                let mut forms = Vec::new();
                for _ in 0..iters {
                    forms.push(login_form(&app, &id).await);
                }
                let started = std::time::Instant::now();
                for (sealed, cookie) in &forms {
                    let resp = call(&app, login_submit(sealed, cookie)).await;
                    assert_eq!(resp.status(), 303);
                }
                started.elapsed()
            }
        })
    });
    group.sample_size(50);
    // The code exchange: client auth, code read, PKCE, consume + refresh insert, AT + RS256 ID token.
    group.bench_function("token_code_exchange", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (app, id, basic) = (app.clone(), id.clone(), basic.clone());
            async move {
                let mut codes = Vec::new();
                for _ in 0..iters {
                    let (sealed, cookie) = login_form(&app, &id).await;
                    let resp = call(&app, login_submit(&sealed, &cookie)).await;
                    let loc = resp.headers()["location"].to_str().unwrap().to_owned();
                    let code = loc.split("code=").nth(1).unwrap().split('&').next().unwrap().to_owned();
                    codes.push(code);
                }
                let started = std::time::Instant::now();
                for code in &codes {
                    let body = format!(
                        "grant_type=authorization_code&code={code}&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk\
                         &redirect_uri=https%3A%2F%2Fclient.example%2Fcb"
                    );
                    let req = request("POST", "/oauth/token", &[("content-type", "application/x-www-form-urlencoded"), ("authorization", &basic)], &body);
                    let resp = call(&app, req).await;
                    assert_eq!(resp.status(), 200);
                }
                started.elapsed()
            }
        })
    });
    // A signed-in browser's authorization request, answered with the code at once (live
    // session, remembered consent): the session and grant read together, the code written,
    // no argon2, no page. Next to authorize_post_login, the password login it replaces.
    // Last in the group: every iteration stores a code, and the tables it grows would slow
    // the benchmarks after it.
    group.sample_size(100);
    let (sealed, cookie) = rt.block_on(login_form(&app, &id));
    let signed_in = rt.block_on(call(&app, login_submit(&sealed, &cookie)));
    assert_eq!(signed_in.status(), 303);
    let session = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let silent = format!(
        "/oauth/authorize?response_type=code&client_id={id}&redirect_uri=https%3A%2F%2Fclient.example%2Fcb\
         &scope=openid%20offline_access%20data%3Aread&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
         &code_challenge_method=S256"
    );
    let csrf = cookie.clone();
    group.bench_function("authorize_silent", |b| {
        b.to_async(&rt).iter(|| async {
            let both = format!("{csrf}; {session}");
            let resp = call(&app, request("GET", &silent, &[("cookie", &both)], "")).await;
            assert_eq!(resp.status(), 302);
            assert!(resp.headers()["location"].to_str().unwrap().contains("code="));
        })
    });
    group.finish();
}

criterion_group!(benches, jwt, argon2, flows, code_flow);
criterion_main!(benches);
