//! Property tests (issue 6 §3): redirect URIs match only themselves (and loopback-port
//! variants), scope narrowing never widens, and any input to the parsers and to the whole
//! HTTP handler yields a value or a contract error, never a panic or a 5xx.
// Test fixtures and generators outside `#[test]` bodies: a failure there is a test failure.
#![allow(clippy::expect_used, clippy::indexing_slicing, clippy::string_slice)]
use oauth_core::clock::SystemClock;
use oauth_core::domain::{RedirectUri, Scope, ScopeSet, Username};
use oauth_core::http::{Function, call, router};
use oauth_core::jwt::{SigningAlg, verify_access_token};
use oauth_core::keys::{KeySet, KeySetDoc, StaticKeys};
use oauth_core::oauth::client_auth::{form_decode, parse_basic};
use oauth_core::oauth::params::Params;
use oauth_core::oauth::token::refresh_token::narrow_scope;
use oauth_core::store::{SqliteStore, Stores};
use oauth_core::{App, Settings};
use proptest::prelude::*;
use std::sync::{Arc, OnceLock};

fn config() -> ProptestConfig {
    ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() }
}

/// Registered redirect URIs: https with paths and queries, and loopback http with and
/// without a port.
fn registered() -> impl Strategy<Value = String> {
    let path = "(/[a-z0-9_~-][a-z0-9._~-]{0,7}){0,3}";
    let query = proptest::option::of("[a-z]{1,4}=[a-z0-9]{0,4}");
    (
        prop_oneof![
            "https://[a-z]{1,8}\\.example",
            Just("http://127.0.0.1".to_owned()),
            Just("http://[::1]".to_owned()),
            (1u16..).prop_map(|p| format!("http://127.0.0.1:{p}")),
        ],
        path,
        query,
    )
        .prop_map(|(base, path, q)| match q {
            Some(q) => format!("{base}{path}?{q}"),
            None => format!("{base}{path}"),
        })
}

#[path = "oracles/loopback.rs"]
mod loopback;
use loopback::without_loopback_port;

/// One small edit of a string: insert, delete, replace a character or change a letter's case.
fn mutate(s: &str, op: u8, at: usize, c: char) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    let i = at % (chars.len() + 1);
    match op % 4 {
        0 => chars.insert(i, c),
        1 if i < chars.len() => {
            chars.remove(i);
        }
        2 if i < chars.len() => chars[i] = c,
        _ => {
            if let Some(ch) = chars.get_mut(i) {
                *ch = if ch.is_ascii_lowercase() { ch.to_ascii_uppercase() } else { ch.to_ascii_lowercase() };
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_redirect_uri_matches_only_itself_or_a_loopback_port_variant(
        reg in registered(),
        op in any::<u8>(),
        at in any::<usize>(),
        c in prop_oneof![Just('/'), Just(':'), Just('.'), Just('%'), Just('?'), Just('#'), Just('@'), Just('1'), Just('a'), Just('A'), any::<char>()],
    ) {
        let r = RedirectUri::parse(&reg).map_err(|e| TestCaseError::fail(format!("{reg}: {e}")))?;
        prop_assert!(r.matches(&reg));
        let requested = mutate(&reg, op, at, c);
        if r.matches(&requested) {
            let same = requested == reg;
            let port_variant = without_loopback_port(&reg).is_some()
                && without_loopback_port(&reg) == without_loopback_port(&requested);
            prop_assert!(same || port_variant, "{reg:?} matched {requested:?}");
        }
    }

    #[test]
    fn a_loopback_redirect_uri_matches_any_port(path in "(/[a-z0-9]{1,8}){0,3}", port in 1u16..) {
        for host in ["http://127.0.0.1", "http://[::1]"] {
            let r = RedirectUri::parse(&format!("{host}{path}")).map_err(TestCaseError::fail)?;
            let with_port = format!("{host}:{port}{path}");
            let longer = format!("{with_port}x");
            let named = format!("http://localhost:{port}{path}");
            prop_assert!(r.matches(&with_port), "{} should match {}", r.as_str(), with_port);
            prop_assert!(!r.matches(&longer), "{} matched {}", r.as_str(), longer);
            prop_assert!(!r.matches(&named), "localhost is not an IP literal");
        }
    }

    #[test]
    fn arbitrary_strings_never_match_an_https_redirect_uri(reg in "https://[a-z]{1,8}\\.example(/[a-z]{1,5}){0,2}", s in ".{0,64}") {
        let r = RedirectUri::parse(&reg).map_err(TestCaseError::fail)?;
        prop_assert_eq!(r.matches(&s), s == reg);
    }

    #[test]
    fn scope_narrowing_never_widens(
        original in proptest::sample::subsequence(all_scopes(), 0..=7),
        requested in proptest::option::of(proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(all_scopes()).prop_map(|s| s.as_str().to_owned()),
                Just(String::new()),
                "[ -~]{0,12}",
            ],
            0..6,
        )),
    ) {
        let original = ScopeSet::from_scopes(original);
        let requested = requested.map(|v| v.join(" "));
        let catalog = catalog();
        let api = catalog.default_server().id.clone();
        match narrow_scope(&catalog, &api, &original, requested.as_deref()) {
            Ok(s) => {
                prop_assert!(s.is_subset_of(&original), "{s} from {original} via {requested:?}");
                prop_assert!(!s.contains(&Scope::parse("orders:read").unwrap_or(Scope::OPENID)), "another resource's scope");
                prop_assert!(requested.is_none() || !s.is_empty());
            }
            Err(e) => prop_assert_eq!(e.code(), "invalid_scope"),
        }
    }

    #[test]
    fn form_and_query_parsing_yields_params_or_invalid_request(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
        for r in [Params::parse(&raw).map(|_| ()), Params::parse_lenient(&raw).map(|_| ())] {
            if let Err(e) = r {
                prop_assert_eq!(e.code(), "invalid_request");
            }
        }
    }

    #[test]
    fn form_parsing_round_trips_what_a_client_encodes(pairs in proptest::collection::vec(("[a-z_]{1,10}", "\\PC{1,20}"), 0..8)) {
        let mut unique = std::collections::BTreeMap::new();
        for (k, v) in &pairs {
            unique.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&unique).finish();
        let parsed = Params::parse(body.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (k, v) in &unique {
            prop_assert_eq!(parsed.get(k), Some(v.as_str()));
        }
    }

    #[test]
    fn basic_credentials_decode_or_fail_as_invalid_client(header in ".{0,200}", raw in proptest::collection::vec(any::<u8>(), 0..120)) {
        use base64::Engine;
        let encoded = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(&raw));
        for h in [header.as_str(), encoded.as_str()] {
            if let Err(e) = parse_basic(h) {
                prop_assert_eq!(e.code(), "invalid_client");
            }
        }
        let _ = form_decode(&header);
    }

    #[test]
    fn basic_credentials_round_trip(id in "[ -~]{1,40}", secret in "[ -~]{0,60}") {
        use base64::Engine;
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let header = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(&id), enc(&secret))));
        prop_assert_eq!(parse_basic(&header).map_err(|e| TestCaseError::fail(e.to_string()))?, (id, secret));
    }

    #[test]
    fn domain_parsers_never_panic(s in ".{0,300}") {
        let _ = RedirectUri::parse(&s);
        let _ = ScopeSet::parse(&s);
        let _ = Username::parse(&s);
        let _ = oauth_core::domain::Email::parse(&s);
        let _ = serde_json::from_str::<oauth_core::oauth::client_registration::ClientMetadata>(&s)
            .map(|m| oauth_core::oauth::client_registration::validate(&m, &catalog()));
        let _ = oauth_core::domain::ResourceId::parse(&s);
        let _ = catalog().targets(&[s.as_str()]);
    }

    #[test]
    fn jwt_verification_of_arbitrary_input_is_a_rejection(
        parts in proptest::collection::vec("[A-Za-z0-9_-]{0,60}", 1..5),
        junk in ".{0,100}",
    ) {
        let (keys, settings) = fixtures();
        let token = parts.join(".");
        prop_assert!(verify_access_token(keys, settings, &token, 1_700_000_000).is_err());
        prop_assert!(verify_access_token(keys, settings, &junk, 1_700_000_000).is_err());
    }

    #[test]
    fn the_http_handler_answers_any_request_without_a_server_error(
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE"), Just("HEAD"), Just("OPTIONS"), Just("PATCH")],
        path in prop_oneof![
            Just("/register"), Just("/register_client"), Just("/oauth/authorize"), Just("/oauth/token"),
            Just("/oauth/revoke"), Just("/oauth/introspect"), Just("/api/data"), Just("/oauth/userinfo"),
            Just("/"), Just("/.well-known/jwks.json"), Just("/nope"),
        ],
        query in proptest::option::of("[ -~]{0,80}"),
        content_type in prop_oneof![
            Just("application/json".to_owned()), Just("application/x-www-form-urlencoded".to_owned()),
            Just("application/JSON; charset=utf-8; x=\"y\"".to_owned()), Just("text/plain".to_owned()), "[ -~]{0,40}",
        ],
        authorization in proptest::option::of(prop_oneof![Just("Basic Og==".to_owned()), Just("Bearer a.b.c".to_owned()), "[ -~]{0,80}"]),
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let (runtime, app) = app();
        let uri = match &query {
            Some(q) => format!("{path}?{}", url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()),
            None => path.to_owned(),
        };
        let mut b = http::Request::builder().method(method).uri(uri).header("content-type", content_type);
        if let Some(a) = &authorization {
            b = b.header("authorization", a.as_str());
        }
        let req = b.body(lambda_http::Body::Binary(body)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let resp = runtime.block_on(call(app, req));
        prop_assert!(resp.status().as_u16() < 500, "{method} {path}: {}", resp.status());
        // A HEAD response never has content (RFC 9110 §9.3.2): the router strips it.
        if method != "HEAD" && resp.status().is_client_error() && resp.headers().get("content-type").is_some_and(|v| v == "application/json") {
            let body: serde_json::Value = serde_json::from_slice(resp.body().as_ref()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(body["error"].is_string() && body["error_description"].is_string(), "{body}");
        }
    }
}

/// Strings of what a hostile client could get into an event's URI-building fields.
fn uri_field() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,24}",
        "/[a-z0-9/%._~-]{0,24}",
        "[a-z0-9.-]{1,20}(:[0-9]{0,6})?",
        ".{0,12}",
        Just(String::new()),
    ]
}

/// Half the time a well-formed value, so most cases isolate one hostile field.
fn or_good(good: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![Just(good.to_owned()), uri_field()]
}

proptest! {
    #![proptest_config(config())]

    /// lambda_http's conversion panics on some Host / X-Forwarded-Proto / path / query /
    /// stage values; after `lambda::http::guard` accepts an event it never does.
    #[test]
    fn a_guarded_api_gateway_event_always_converts(
        host in or_good("api.example.com"), proto in or_good("https"), domain in or_good("api.example.com"),
        stage in or_good("$default"), path in or_good("/oauth/token"), query in or_good("a=1"), v1 in any::<bool>(),
        base64 in any::<bool>(), body in prop_oneof!["[A-Za-z0-9+/]{0,12}={0,2}", ".{0,12}"],
    ) {
        let event = if v1 {
            serde_json::json!({
                "resource": "/{proxy+}", "path": path, "httpMethod": "GET",
                "headers": {"host": host, "x-forwarded-proto": proto},
                "multiValueHeaders": {"host": [host], "x-forwarded-proto": [proto]},
                "queryStringParameters": {"q": query}, "multiValueQueryStringParameters": {"q": [query]},
                "requestContext": {"domainName": domain, "stage": stage, "httpMethod": "GET", "path": path,
                    "identity": {"sourceIp": "203.0.113.1"}, "accountId": "1", "resourceId": "r", "apiId": "a",
                    "requestId": "x", "resourcePath": "/{proxy+}"},
                "isBase64Encoded": base64, "body": body
            })
        } else {
            serde_json::json!({
                "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
                "headers": {"host": host, "x-forwarded-proto": proto},
                "requestContext": {"domainName": domain, "stage": stage, "accountId": "1", "apiId": "a",
                    "requestId": "x", "routeKey": "$default", "time": "t", "timeEpoch": 0,
                    "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.1", "userAgent": "p"}},
                "isBase64Encoded": base64, "body": body
            })
        };
        let Ok(mut event) = serde_json::from_value::<lambda_http::request::LambdaRequest>(event) else {
            return Ok(()); // not an event (e.g. a header value that is no header value)
        };
        match oauth_core::lambda::http::guard(&mut event) {
            Ok(()) => {
                let converted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lambda_http::Request::from(event)));
                prop_assert!(converted.is_ok(), "host={host:?} proto={proto:?} domain={domain:?} stage={stage:?} path={path:?} query={query:?} v1={v1} base64={base64} body={body:?}");
            }
            Err(e) => prop_assert_eq!(e.code(), "invalid_request"),
        }
    }
}

fn fixtures() -> (&'static KeySet, &'static Settings) {
    static F: OnceLock<(KeySet, Settings)> = OnceLock::new();
    let (k, s) = F.get_or_init(|| {
        let doc = KeySetDoc::generate(&[SigningAlg::Es256, SigningAlg::Rs256]).expect("keys");
        let settings =
            Settings::from_lookup(|k| (k == "ISSUER").then(|| "https://as.test".to_owned())).expect("settings");
        (KeySet::from_doc(&doc).expect("key set"), settings)
    });
    (k, s)
}

fn app() -> (&'static tokio::runtime::Runtime, &'static oauth_core::http::Router) {
    static A: OnceLock<(tokio::runtime::Runtime, oauth_core::http::Router)> = OnceLock::new();
    let (r, a) = A.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let app = runtime.block_on(async {
            let settings = fixtures().1.clone();
            let store = Arc::new(SqliteStore::in_memory().expect("sqlite"));
            let keys = Arc::new(StaticKeys::generate(&[SigningAlg::Es256, SigningAlg::Rs256]).expect("keys"));
            App::new(settings, Stores::all(store), keys, None, Arc::new(SystemClock)).await.expect("app")
        });
        (runtime, router(Arc::new(app), Function::All))
    });
    (r, a)
}

/// The OpenID Connect scopes, the built-in API's and one of another resource server.
fn all_scopes() -> Vec<Scope> {
    let mut v = Scope::OIDC.to_vec();
    v.extend([Scope::DATA_READ, Scope::DATA_WRITE, Scope::parse("orders:read").unwrap_or(Scope::OPENID)]);
    v
}

/// The built-in API at `https://as.test/api` and an orders API defining `orders:read`.
fn catalog() -> oauth_core::catalog::Catalog {
    use oauth_core::catalog::Catalog;
    use oauth_core::domain::{ResourceId, ResourceServer, ScopeDef};
    let id = |s: &str| ResourceId::parse(s).unwrap_or_else(|_| unreachable!("valid"));
    let orders = ResourceServer {
        id: id("https://orders.test"),
        name: "Orders".into(),
        scopes: vec![ScopeDef {
            scope: Scope::parse("orders:read").unwrap_or(Scope::OPENID),
            description: "Read".into(),
        }],
        access_token_ttl: 600,
    };
    Catalog::new(Catalog::builtin_at(id("https://as.test/api"), 900), vec![orders])
}
