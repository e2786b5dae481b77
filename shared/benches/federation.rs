//! The federation callback's own work, in-process (bench/README.md, "Federation callback"):
//! what the callback does beyond the upstream calls (the token request, and GitHub's API) —
//! open the sealed flow cookie, compare `state`, validate the provider's RS256 ID token
//! against its cached JWKS, derive the identity key, one store read (the identity's link)
//! and one write (the flow's single-use counter) on SQLite in memory. The baseline, in the
//! same run: verifying one of our own ES256 access tokens. Run with
//! `cargo bench -p oauth-core --bench federation`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // benchmark setup may abort
use criterion::{Criterion, criterion_group, criterion_main};
use oauth_core::config::Settings;
use oauth_core::crypto::ct_eq;
use oauth_core::domain::{IdentityLink, User, Username, identity_key};
use oauth_core::federation::id_token::{Expected, UpstreamKeys, validate};
use oauth_core::jwt::{AccessGrant, SigningAlg, issue_access_token, verify_access_token};
use oauth_core::keys::{KeySet, KeySetDoc};
use oauth_core::oauth::federation::{FlowState, Purpose};
use oauth_core::oauth::sealed::{self, PendingRequest};
use oauth_core::store::{IdentityStore, SqliteStore, ThrottleStore};
use std::hint::black_box;

const ISS: &str = "https://idp.example";

fn flow(now: i64) -> FlowState {
    FlowState {
        id: "fed_0123456789abcdef0123456".into(),
        provider: "idp".into(),
        state: "s".repeat(43),
        nonce: "n".repeat(43),
        verifier: "v".repeat(43),
        csrf: "c".repeat(43),
        expires_at: now + 600,
        purpose: Purpose::SignIn {
            pending: Box::new(PendingRequest {
                id: "req_0123456789abcdef012345".into(),
                client_id: "cl_0123456789abcdef012345".into(),
                redirect_uri: "https://client.example/cb".into(),
                redirect_uri_sent: true,
                scope: "openid profile email data:read".into(),
                resources: vec![],
                state: Some("client-state".into()),
                nonce: Some("client-nonce".into()),
                code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
                expires_at: now + 600,
                csrf: "c".repeat(43),
                sub: None,
                hint_sub: None,
                prompt_login: false,
                max_age: None,
                dpop_jkt: None,
                device: None,
            }),
        },
    }
}

fn callback(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let t = now.unix_timestamp();
    let upstream = KeySet::from_doc(&KeySetDoc::generate(&[SigningAlg::Rs256]).unwrap()).unwrap();
    let keys = UpstreamKeys::from_jwks(upstream.jwks());
    let claims = serde_json::json!({"iss": ISS, "sub": "248289761001", "aud": "our-rp", "exp": t + 300, "iat": t,
        "nonce": "n".repeat(43), "email": "a@idp.example", "email_verified": true, "name": "A"});
    let id_token = upstream.sign_at(SigningAlg::Rs256, "JWT", &serde_json::to_vec(&claims).unwrap(), t).unwrap();
    let form_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &[7u8; 32]);
    let cookie = sealed::seal(&form_key, &flow(t)).unwrap();
    let store = SqliteStore::in_memory().unwrap();
    let link = IdentityLink {
        issuer: ISS.into(),
        subject: "248289761001".into(),
        sub: "usr_f".into(),
        provider: "idp".into(),
        email: None,
        email_verified: false,
        linked_at: t,
    };
    let user = User {
        sub: "usr_f".into(),
        username: Username::parse("idp-abcdefghij").unwrap(),
        email: None,
        password_hash: String::new(),
        created_at: t,
        disabled: false,
    };
    rt.block_on(store.create_federated_user(&user, &link)).unwrap();
    let expected = Expected { issuer: ISS, client_id: "our-rp", nonce: &"n".repeat(43), now: t };
    let mut n = 0u64;
    let mut group = c.benchmark_group("federation");
    group.bench_function("callback_own_work", |b| {
        b.to_async(&rt).iter(|| {
            n += 1;
            let key = format!("form#fed#{n}");
            let (cookie, id_token, keys, store) = (&cookie, &id_token, &keys, &store);
            let form_key = &form_key;
            async move {
                let flow: FlowState = sealed::open(form_key, black_box(cookie), t).unwrap();
                assert!(ct_eq(flow.state.as_bytes(), "s".repeat(43).as_bytes()));
                assert_eq!(store.hit(&key, 660, now).await.unwrap(), 1);
                let identity = validate(black_box(id_token), keys, expected).unwrap();
                let found = store.identity(&identity_key(&identity.issuer, &identity.subject)).await.unwrap();
                assert!(found.is_some());
            }
        })
    });
    let vars = [("ISSUER", "https://as.test"), ("ACCESS_TOKEN_ALG", "ES256")];
    let settings = Settings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())).unwrap();
    let ours = KeySet::from_doc(&KeySetDoc::generate(&[SigningAlg::Es256]).unwrap()).unwrap();
    let grant = AccessGrant {
        sub: "usr_1",
        client_id: "cl_1",
        scope: "data:read".into(),
        jti: "at_1".into(),
        fam: None,
        aud: "https://as.test/api",
        ttl: 900,
        jkt: None,
    };
    let (token, _) = issue_access_token(&ours, &settings, grant, t).unwrap();
    group.bench_function("baseline_jwt_verify_ES256", |b| {
        b.iter(|| verify_access_token(&ours, &settings, black_box(&token), t).unwrap())
    });
    group.finish();
}

criterion_group!(benches, callback);
criterion_main!(benches);
