//! API Gateway events (HTTP API v2 and REST v1) exactly as a deployed function takes them:
//! decoded, checked by `lambda::http::guard`, converted by lambda_http, handled. Any event
//! gets an answer below 500 and nothing panics. (Before the guard existed, this target
//! found lambda_http's conversion panicking on a `Host` header with a backtick.)
#![no_main]
use libfuzzer_sys::fuzz_target;
use oauth_core::clock::SystemClock;
use oauth_core::http::{Function, call, router};
use oauth_core::jwt::SigningAlg;
use oauth_core::keys::StaticKeys;
use oauth_core::lambda::http::guard;
use oauth_core::store::{SqliteStore, Stores};
use oauth_core::{App, Settings};
use lambda_http::request::LambdaRequest;
use std::sync::{Arc, OnceLock};

fn app() -> &'static (tokio::runtime::Runtime, oauth_core::http::Router) {
    static A: OnceLock<(tokio::runtime::Runtime, oauth_core::http::Router)> = OnceLock::new();
    A.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let app = rt.block_on(async {
            let settings = Settings::from_lookup(|k| (k == "ISSUER").then(|| "https://as.test".to_owned())).expect("settings");
            let store = Arc::new(SqliteStore::in_memory().expect("sqlite"));
            let keys = Arc::new(StaticKeys::generate(&[SigningAlg::Es256, SigningAlg::Rs256]).expect("keys"));
            App::new(settings, Stores::all(store), keys, None, Arc::new(SystemClock)).await.expect("app")
        });
        (rt, router(Arc::new(app), Function::All))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut event) = serde_json::from_slice::<LambdaRequest>(data) else { return };
    if let Err(e) = guard(&mut event) {
        assert_eq!(e.code(), "invalid_request");
        return;
    }
    let req: lambda_http::Request = event.into();
    let (rt, app) = app();
    let resp = rt.block_on(call(app, req));
    assert!(resp.status().as_u16() < 500, "{}", resp.status());
});
