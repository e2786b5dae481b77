//! Secrets Manager keys and DynamoDB specifics on the local emulator (docs/SECURITY.md R7, R8):
//! rotation end to end, outages served from cache, a cold start without keys, schema drift;
//! the public key document of the verify-only functions kept in step by the rotation, and
//! the registration token re-read when replaced.
use async_trait::async_trait;
use oauth_core::aws::{SecretsManagerKeys, SecretsManagerPublicKeys};
use oauth_core::clock::Clock;
use oauth_core::jwt::SigningAlg;
use oauth_core::keys::{KeyError, KeySetDoc, KeySource};
use oauth_tests::aws::{emulator, fresh_key_secret, unique};
use oauth_tests::harness::{ISSUER, TestEnv, decode_unverified};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Secrets Manager behind a switch that simulates an outage.
struct Switchable {
    inner: SecretsManagerKeys,
    down: AtomicBool,
}

#[async_trait]
impl KeySource for Switchable {
    async fn load(&self) -> Result<KeySetDoc, KeyError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(KeyError::Backend(anyhow::anyhow!("InternalServiceError (simulated outage)")));
        }
        self.inner.load().await
    }
}

/// Secrets Manager, counting loads.
struct Counting {
    inner: SecretsManagerKeys,
    loads: AtomicUsize,
}

#[async_trait]
impl KeySource for Counting {
    async fn load(&self) -> Result<KeySetDoc, KeyError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load().await
    }
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .map(|ks| ks.iter().filter_map(|k| k["kid"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

async fn jwks(env: &TestEnv) -> anyhow::Result<Value> {
    Ok(env.http.get(env.url("/.well-known/jwks.json")).send().await?.json().await?)
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid_and_retires_the_oldest_keys() -> anyhow::Result<()> {
    let Some(cfg) = emulator().await? else { return Ok(()) };
    let (sm, secret) = fresh_key_secret(&cfg, &KeySetDoc::generate(&oauth_core::aws::KEY_SET_ALGS)?).await?;
    let source = Arc::new(SecretsManagerKeys::new(sm.clone(), secret.clone()));
    let env = TestEnv::with_keys(source, Some(300)).await?;
    let (id, s) = env.service_client("data:read").await?;
    let at1 = env.cc_token(&id, &s, None).await?;
    let k1 = decode_unverified(&at1)?.0["kid"].as_str().unwrap_or_default().to_owned();

    // Rotation 1: K2 becomes AWSCURRENT, K1 AWSPREVIOUS.
    let k2 = oauth_core::aws::rotate_key_secret(&sm, &secret, None, &oauth_core::aws::KEY_SET_ALGS, 0).await?;
    assert_eq!(decode_unverified(&env.cc_token(&id, &s, None).await?)?.0["kid"], k1.as_str(), "cache TTL not over yet");
    env.clock.advance(300);
    let at2 = env.cc_token(&id, &s, None).await?;
    assert_eq!(decode_unverified(&at2)?.0["kid"], k2.as_str(), "new tokens carry the new kid");
    let published = kids(&jwks(&env).await?);
    assert!(published.contains(&k1) && published.contains(&k2), "{published:?}");
    assert_eq!(env.get_bearer("/api/data", &at1).await?.status(), 200, "signed before the rotation, still valid");

    // Rotation 2: K3 current, K2 previous, K1 retired.
    let k3 = oauth_core::aws::rotate_key_secret(&sm, &secret, None, &oauth_core::aws::KEY_SET_ALGS, 0).await?;
    env.clock.advance(300);
    let at3 = env.cc_token(&id, &s, None).await?;
    assert_eq!(decode_unverified(&at3)?.0["kid"], k3.as_str());
    let published = kids(&jwks(&env).await?);
    assert!(!published.contains(&k1) && published.contains(&k2) && published.contains(&k3), "{published:?}");
    assert_eq!(env.get_bearer("/api/data", &at1).await?.status(), 401, "the retired key's token (even cached)");
    assert_eq!(env.get_bearer("/api/data", &at2).await?.status(), 200, "the previous key still verifies");
    Ok(())
}

#[tokio::test]
async fn a_container_started_after_a_rotation_loads_the_previous_keys_when_needed() -> anyhow::Result<()> {
    let Some(cfg) = emulator().await? else { return Ok(()) };
    let (sm, secret) = fresh_key_secret(&cfg, &KeySetDoc::generate(&oauth_core::aws::KEY_SET_ALGS)?).await?;
    let before = TestEnv::with_keys(Arc::new(SecretsManagerKeys::new(sm.clone(), secret.clone())), Some(300)).await?;
    let (id, s) = before.service_client("data:read").await?;
    let old = before.cc_token(&id, &s, None).await?;
    let k1 = decode_unverified(&old)?.0["kid"].as_str().unwrap_or_default().to_owned();
    let k2 = oauth_core::aws::rotate_key_secret(&sm, &secret, None, &oauth_core::aws::KEY_SET_ALGS, 0).await?;
    // New containers start with AWSCURRENT only (one Secrets Manager call)...
    let fresh = || TestEnv::with_keys(Arc::new(SecretsManagerKeys::new(sm.clone(), secret.clone())), Some(300));
    let verifier = fresh().await?;
    assert!(verifier.app.keys().verify_key(&k1).is_none(), "the start loaded the signing keys only");
    // ...yet a token signed before the rotation verifies at once (no per-minute wait)...
    assert_eq!(verifier.get_bearer("/api/data", &old).await?.status(), 200);
    // ...and the JWKS of a fresh container publishes both key sets.
    let publisher = fresh().await?;
    let published = kids(&jwks(&publisher).await?);
    assert!(published.contains(&k1) && published.contains(&k2), "{published:?}");
    Ok(())
}

#[tokio::test]
async fn a_token_from_a_newer_key_triggers_one_rate_limited_refresh() -> anyhow::Result<()> {
    let Some(cfg) = emulator().await? else { return Ok(()) };
    let (sm, secret) = fresh_key_secret(&cfg, &KeySetDoc::generate(&oauth_core::aws::KEY_SET_ALGS)?).await?;
    // Container A caches the keys for an hour; then the keys rotate; container B starts later.
    let counting =
        Arc::new(Counting { inner: SecretsManagerKeys::new(sm.clone(), secret.clone()), loads: AtomicUsize::new(0) });
    let a = TestEnv::with_keys(counting.clone(), Some(3600)).await?;
    oauth_core::aws::rotate_key_secret(&sm, &secret, None, &oauth_core::aws::KEY_SET_ALGS, 0).await?;
    let b = TestEnv::with_keys(Arc::new(SecretsManagerKeys::new(sm, secret)), Some(3600)).await?;
    // B's token carries the new kid. A resource server on A's keys must accept it.
    let claims = a.valid_claims("usr_x", "cl_x", "data:read");
    let kid = b.app.keys().signing_kid(SigningAlg::Es256).unwrap_or_default().to_owned();
    let token = b.app.keys().sign(SigningAlg::Es256, "at+jwt", claims.to_string().as_bytes())?;
    assert_eq!(decode_unverified(&token)?.0["kid"], kid.as_str());
    assert_eq!(counting.loads.load(Ordering::SeqCst), 1);
    a.clock.advance(61);
    assert_eq!(a.get_bearer("/api/data", &token).await?.status(), 200, "unknown kid → one refresh → verified");
    assert_eq!(counting.loads.load(Ordering::SeqCst), 2);
    // Forged tokens with random kids cannot make A hammer Secrets Manager.
    for i in 0..20 {
        let forged = b.sign_with_server_key(
            SigningAlg::Es256,
            jsonwebtoken::Header {
                kid: Some(format!("random-{i}")),
                typ: Some("at+jwt".into()),
                ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256)
            },
            &claims,
        )?;
        assert_eq!(a.get_bearer("/api/data", &forged).await?.status(), 401);
    }
    assert_eq!(counting.loads.load(Ordering::SeqCst), 2, "at most one refresh per minute");
    Ok(())
}

#[tokio::test]
async fn a_secrets_manager_outage_is_served_from_cache() -> anyhow::Result<()> {
    let Some(cfg) = emulator().await? else { return Ok(()) };
    let (sm, secret) = fresh_key_secret(&cfg, &KeySetDoc::generate(&oauth_core::aws::KEY_SET_ALGS)?).await?;
    let source = Arc::new(Switchable { inner: SecretsManagerKeys::new(sm, secret), down: AtomicBool::new(false) });
    let env = TestEnv::with_keys(source.clone(), Some(300)).await?;
    let (id, s) = env.service_client("data:read").await?;
    let before = env.cc_token(&id, &s, None).await?;
    source.down.store(true, Ordering::SeqCst);
    env.clock.advance(3600);
    let during = env.cc_token(&id, &s, None).await?;
    assert_eq!(decode_unverified(&during)?.0["kid"], decode_unverified(&before)?.0["kid"], "cached keys keep signing");
    assert_eq!(env.get_bearer("/api/data", &during).await?.status(), 200);
    assert_eq!(jwks(&env).await?["keys"].as_array().map(Vec::len), Some(2));
    Ok(())
}

#[tokio::test]
async fn a_cold_start_without_reachable_keys_fails_clearly() -> anyhow::Result<()> {
    let Some(cfg) = emulator().await? else { return Ok(()) };
    // A secret that does not exist, and an endpoint where nothing listens.
    let missing = SecretsManagerKeys::new(aws_sdk_secretsmanager::Client::new(&cfg), "no-such-secret");
    let err =
        TestEnv::with_keys(Arc::new(missing), Some(300)).await.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(err.contains("no-such-secret"), "{err}");
    let dead = aws_config::SdkConfig::builder()
        .endpoint_url("http://127.0.0.1:9")
        .region(aws_config::Region::new("us-east-1"))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .credentials_provider(aws_sdk_secretsmanager::config::SharedCredentialsProvider::new(
            aws_sdk_secretsmanager::config::Credentials::new("test", "test", None, None, "test"),
        ))
        .build();
    let unreachable = SecretsManagerKeys::new(aws_sdk_secretsmanager::Client::new(&dead), "oauth-keys");
    assert!(TestEnv::with_keys(Arc::new(unreachable), Some(300)).await.is_err(), "never start without keys");
    Ok(())
}

#[tokio::test]
async fn a_malformed_item_fails_only_its_own_request() -> anyhow::Result<()> {
    let Some(cfg) = emulator().await? else { return Ok(()) };
    let (ddb, table) = oauth_tests::aws::fresh_table(&cfg).await?;
    let store = oauth_core::store::DynamoStore::new(ddb.clone(), table.clone());
    let mut bad = oauth_core::store::dynamodb::item::client_key("cl_drifted");
    bad.insert("data".into(), aws_sdk_dynamodb::types::AttributeValue::S("{\"client_id\": 5".into()));
    ddb.put_item().table_name(&table).set_item(Some(bad)).send().await?;
    let err = oauth_core::store::ClientStore::client(&store, "cl_drifted").await;
    assert!(matches!(err, Err(oauth_core::store::StoreError::Corrupt(_))), "{err:?}");
    assert!(oauth_core::store::ClientStore::client(&store, "cl_other").await?.is_none(), "other keys unaffected");
    Ok(())
}

/// The placeholder a deployed signing-key secret starts with, before its first rotation.
const PLACEHOLDER: &str = r#"{"keys":[],"placeholder":"xyz"}"#;

async fn rotation_step(
    sm: &aws_sdk_secretsmanager::Client,
    secret: &str,
    version: &str,
    step: &str,
    public: &str,
) -> anyhow::Result<()> {
    oauth_core::lambda::rotation::step(sm, secret, version, step, &oauth_core::aws::KEY_SET_ALGS, Some(public), 0).await
}

/// Every step of a rotation, as Secrets Manager calls them.
async fn rotate(sm: &aws_sdk_secretsmanager::Client, secret: &str, version: &str, public: &str) -> anyhow::Result<()> {
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        rotation_step(sm, secret, version, step, public).await?;
    }
    Ok(())
}

/// The kids of the public key document, in order.
async fn public_kids(sm: &aws_sdk_secretsmanager::Client, public: &str) -> anyhow::Result<Vec<String>> {
    Ok(kids(&serde_json::from_str(&oauth_core::aws::read_secret(sm, public).await?)?))
}

/// The kids of a version of the private secret (by stage), in order.
async fn stage_kids(sm: &aws_sdk_secretsmanager::Client, secret: &str, stage: &str) -> anyhow::Result<Vec<String>> {
    let doc = oauth_core::aws::stage_doc(sm, secret, stage).await?.unwrap_or_default();
    Ok(doc.keys.into_iter().map(|k| k.kid).collect())
}

/// The kids of the pending version `version`.
async fn pending_kids(sm: &aws_sdk_secretsmanager::Client, secret: &str, version: &str) -> anyhow::Result<Vec<String>> {
    let out = sm.get_secret_value().secret_id(secret).version_id(version).send().await?;
    let doc: KeySetDoc = serde_json::from_str(out.secret_string().unwrap_or_default())?;
    Ok(doc.keys.into_iter().map(|k| k.kid).collect())
}

/// The version id holding `AWSCURRENT`.
async fn current_version(sm: &aws_sdk_secretsmanager::Client, secret: &str) -> anyhow::Result<Option<String>> {
    Ok(sm.get_secret_value().secret_id(secret).version_stage("AWSCURRENT").send().await?.version_id)
}

/// A verify-only process over the public key document, on `clock`.
async fn verify_only(
    sm: &aws_sdk_secretsmanager::Client,
    public: &str,
    clock: Arc<oauth_core::clock::FixedClock>,
) -> anyhow::Result<oauth_core::App> {
    let settings = oauth_core::Settings::from_lookup(|k| (k == "ISSUER").then(|| ISSUER.to_owned()))?;
    let stores = oauth_core::store::Stores::all(Arc::new(oauth_core::store::SqliteStore::in_memory()?));
    let source = Arc::new(SecretsManagerPublicKeys::new(sm.clone(), public));
    Ok(oauth_core::App::with_key_ring_alg(settings, stores, source, Some(300), clock, false).await?)
}

/// A verify-only process as a Lambda function builds it: `OAUTH_KEYS=public`.
async fn public_keys_app(cfg: &aws_config::SdkConfig, public: &str) -> anyhow::Result<oauth_core::App> {
    let (_, table) = oauth_tests::aws::fresh_table(cfg).await?;
    let vars = [("OAUTH_KEYS", "public"), ("PUBLIC_KEYS_SECRET_ID", public), ("TABLE_NAME", table.as_str())];
    let get = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned());
    let backends = oauth_core::config::Backends::from_lookup(get, true)?;
    let settings = oauth_core::Settings::from_lookup(|k| (k == "ISSUER").then(|| ISSUER.to_owned()))?;
    oauth_core::startup::build_app(settings, &backends).await
}

async fn verifies(app: &oauth_core::App, token: &str, now: i64) -> bool {
    oauth_core::oauth::access::verify(app, token, now).await.is_ok()
}

#[tokio::test]
async fn a_rotation_publishes_the_pending_public_keys_before_they_sign_and_then_current_and_previous()
-> anyhow::Result<()> {
    let Some(cfg) = emulator().await? else { return Ok(()) };
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    let (secret, public) = (unique("rotation-private"), unique("rotation-public"));
    // As deployed: a placeholder private secret and an empty public key document.
    sm.create_secret().name(&secret).secret_string(PLACEHOLDER).send().await?;
    sm.create_secret().name(&public).secret_string(r#"{"keys":[]}"#).send().await?;

    // The first rotation replaces the placeholder (which is left out of the public document).
    rotate(&sm, &secret, "00000000-0000-4000-8000-000000000001", &public).await?;
    let k1 = stage_kids(&sm, &secret, "AWSCURRENT").await?;
    assert_eq!(k1.len(), 2, "ES256 and RS256");
    assert_eq!(public_kids(&sm, &public).await?, k1);

    // The token function signs with K1; a verify-only process starts on the public document.
    let signer = TestEnv::with_keys(Arc::new(SecretsManagerKeys::new(sm.clone(), secret.clone())), Some(300)).await?;
    let (id, s) = signer.service_client("data:read").await?;
    let before = signer.cc_token(&id, &s, None).await?;
    let early = verify_only(&sm, &public, signer.clock.clone()).await?;
    assert!(!early.keys().can_sign(SigningAlg::Es256), "verify only");
    assert!(verifies(&early, &before, signer.clock.now().unix_timestamp()).await);

    // The second rotation, step by step.
    let v2 = "00000000-0000-4000-8000-000000000002";
    rotation_step(&sm, &secret, v2, "createSecret", &public).await?;
    let k2 = pending_kids(&sm, &secret, v2).await?;
    let private_current = current_version(&sm, &secret).await?;
    rotation_step(&sm, &secret, v2, "setSecret", &public).await?;
    assert_eq!(public_kids(&sm, &public).await?, [k2.clone(), k1.clone()].concat(), "pending published first");
    assert_eq!(current_version(&sm, &secret).await?, private_current, "AWSCURRENT has not moved");
    assert_eq!(stage_kids(&sm, &secret, "AWSCURRENT").await?, k1, "K1 still signs");
    // Secrets Manager may call a step twice: nothing is written again.
    let public_version = current_version(&sm, &public).await?;
    rotation_step(&sm, &secret, v2, "setSecret", &public).await?;
    assert_eq!(current_version(&sm, &public).await?, public_version, "no new version of the public document");
    rotation_step(&sm, &secret, v2, "testSecret", &public).await?;
    rotation_step(&sm, &secret, v2, "finishSecret", &public).await?;
    assert_eq!(stage_kids(&sm, &secret, "AWSCURRENT").await?, k2);
    assert_eq!(stage_kids(&sm, &secret, "AWSPREVIOUS").await?, k1);
    assert_eq!(public_kids(&sm, &public).await?, [k2.clone(), k1.clone()].concat(), "exactly current + previous");

    // The signer picks K2 up after its cache TTL.
    signer.clock.advance(300);
    let after = signer.cc_token(&id, &s, None).await?;
    assert_eq!(decode_unverified(&after)?.0["kid"], k2.first().map(String::as_str).unwrap_or_default());
    let now = signer.clock.now().unix_timestamp();
    // A verify-only function started now (OAUTH_KEYS=public) verifies both, and serves
    // exactly the public document as its JWKS.
    let verifier = public_keys_app(&cfg, &public).await?;
    assert!(!verifier.keys().can_sign(SigningAlg::Es256));
    assert!(verifies(&verifier, &before, now).await, "signed before the rotation");
    assert!(verifies(&verifier, &after, now).await, "signed after the rotation");
    assert_eq!(kids(&serde_json::to_value(verifier.keys().jwks())?), public_kids(&sm, &public).await?);
    // The one started before the rotation learns K2 from the unknown kid.
    assert!(verifies(&early, &after, now).await);

    // Third rotation: testSecret refuses a pending key set the public document lacks.
    let v3 = "00000000-0000-4000-8000-000000000003";
    rotation_step(&sm, &secret, v3, "createSecret", &public).await?;
    let err = rotation_step(&sm, &secret, v3, "testSecret", &public).await.err().map(|e| format!("{e:#}"));
    assert!(err.as_deref().is_some_and(|e| e.contains("lacks pending kid")), "{err:?}");
    rotation_step(&sm, &secret, v3, "setSecret", &public).await?;
    let k3 = pending_kids(&sm, &secret, v3).await?;
    assert_eq!(public_kids(&sm, &public).await?, [k3.clone(), k2.clone(), k1.clone()].concat());
    rotation_step(&sm, &secret, v3, "testSecret", &public).await?;
    rotation_step(&sm, &secret, v3, "finishSecret", &public).await?;
    assert_eq!(public_kids(&sm, &public).await?, [k3.clone(), k2.clone()].concat(), "K1 retired");
    // A finishSecret whose public write was lost, retried after AWSCURRENT moved: in step again.
    let stale = oauth_core::keys::public_jwks(
        [
            oauth_core::aws::stage_doc(&sm, &secret, "AWSCURRENT").await?,
            oauth_core::aws::stage_doc(&sm, &secret, "AWSPREVIOUS").await?,
        ]
        .iter()
        .flatten(),
    )?;
    let mut with_k1 = serde_json::to_value(&stale)?;
    let k1_jwks = serde_json::to_value(early.keys().jwks())?;
    if let (Some(keys), Some(old)) = (with_k1["keys"].as_array_mut(), k1_jwks["keys"].as_array()) {
        keys.extend(old.iter().filter(|k| k1.iter().any(|kid| k["kid"] == kid.as_str())).cloned());
    }
    sm.put_secret_value().secret_id(&public).secret_string(with_k1.to_string()).send().await?;
    assert_eq!(public_kids(&sm, &public).await?.len(), 6);
    rotation_step(&sm, &secret, v3, "finishSecret", &public).await?;
    assert_eq!(public_kids(&sm, &public).await?, [k3, k2].concat(), "the retried finishSecret fixed it");
    let verifier = public_keys_app(&cfg, &public).await?;
    assert!(!verifies(&verifier, &before, now).await, "K1's token, after K1 left the public document");
    assert!(verifies(&verifier, &after, now).await);
    Ok(())
}

#[tokio::test]
async fn a_verify_only_process_fails_closed_on_an_empty_or_malformed_public_document() -> anyhow::Result<()> {
    let Some(cfg) = emulator().await? else { return Ok(()) };
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    let public = unique("public-keys");
    sm.create_secret().name(&public).secret_string("not a JWK Set").send().await?;
    let doc = KeySetDoc::generate(&[SigningAlg::Es256])?;
    let keys = oauth_core::keys::KeySet::from_doc(&doc)?;
    let clock = Arc::new(oauth_core::clock::FixedClock::now_frozen());
    let now = clock.now().unix_timestamp();
    let claims = json!({"iss": ISSUER, "sub": "usr_1", "aud": format!("{ISSUER}/api"), "client_id": "cl_1",
                        "scope": "data:read", "iat": now, "exp": now + 3600, "jti": "at_1"});
    let token = keys.sign(SigningAlg::Es256, "at+jwt", claims.to_string().as_bytes())?;
    // Malformed at start: the process starts, refusing every token.
    let app = verify_only(&sm, &public, clock.clone()).await?;
    assert!(app.keys().jwks().keys.is_empty());
    assert!(!verifies(&app, &token, now).await);
    // An empty document is no better.
    sm.put_secret_value().secret_id(&public).secret_string(r#"{"keys":[]}"#).send().await?;
    clock.advance(61);
    assert!(!verifies(&app, &token, clock.now().unix_timestamp()).await);
    // Once the keys are published, the next (rate-limited) reload picks them up.
    let published = oauth_core::aws::publish_public_keys(&sm, &public, std::slice::from_ref(&doc), false).await?;
    assert_eq!(published, oauth_core::aws::Published::Updated);
    clock.advance(61);
    assert!(verifies(&app, &token, clock.now().unix_timestamp()).await);
    // A document that turns bad later keeps the cached keys (stale-if-error).
    sm.put_secret_value().secret_id(&public).secret_string("{").send().await?;
    clock.advance(3600);
    app.key_ring.refresh_if_stale(clock.now().unix_timestamp()).await;
    assert!(app.keys().verify_key(&doc.keys.first().map(|k| k.kid.clone()).unwrap_or_default()).is_some());
    Ok(())
}

#[tokio::test]
async fn bootstrap_and_admin_rotation_keep_the_public_key_document_in_step() -> anyhow::Result<()> {
    let Some(cfg) = emulator().await? else { return Ok(()) };
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    let (secret, public) = (unique("admin-private"), unique("admin-public"));
    let algs = oauth_core::aws::KEY_SET_ALGS;
    let first = oauth_core::aws::ensure_key_secret(&sm, &secret, Some(&public), &algs).await?;
    assert_eq!(
        first,
        oauth_core::aws::EnsuredKeys { created: true, public: Some(oauth_core::aws::Published::Created) }
    );
    let k1 = stage_kids(&sm, &secret, "AWSCURRENT").await?;
    assert_eq!(public_kids(&sm, &public).await?, k1);
    let again = oauth_core::aws::ensure_key_secret(&sm, &secret, Some(&public), &algs).await?;
    assert_eq!(again.public, Some(oauth_core::aws::Published::Unchanged), "idempotent");
    let k2 = oauth_core::aws::rotate_key_secret(&sm, &secret, Some(&public), &algs, 0).await?;
    let current = stage_kids(&sm, &secret, "AWSCURRENT").await?;
    assert_eq!(current.first(), Some(&k2));
    assert_eq!(public_kids(&sm, &public).await?, [current.clone(), k1.clone()].concat());
    oauth_core::aws::rotate_key_secret(&sm, &secret, Some(&public), &algs, 0).await?;
    let newest = stage_kids(&sm, &secret, "AWSCURRENT").await?;
    assert_eq!(public_kids(&sm, &public).await?, [newest, current].concat(), "K1 retired");
    // A public document that fell behind (or was deleted) is brought in step by bootstrap.
    let fresh = unique("admin-public-late");
    let late = oauth_core::aws::ensure_key_secret(&sm, &secret, Some(&fresh), &algs).await?;
    assert_eq!(late.public, Some(oauth_core::aws::Published::Created));
    assert_eq!(public_kids(&sm, &fresh).await?, public_kids(&sm, &public).await?);
    Ok(())
}

#[tokio::test]
async fn a_replaced_registration_token_is_required_after_the_cache_ttl() -> anyhow::Result<()> {
    let Some(cfg) = emulator().await? else { return Ok(()) };
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    let id = unique("registration-token");
    let (old, new) = ("registration-token-old-0123456789", "registration-token-new-0123456789");
    sm.create_secret().name(&id).secret_string(old).send().await?;
    let source = Arc::new(oauth_core::aws::SecretsManagerString::new(sm.clone(), id.clone()));
    // Loaded before the server's clock starts, as at a cold start.
    let loaded_at = oauth_core::clock::SystemClock.now().unix_timestamp();
    let cached = oauth_core::cached_secret::CachedSecret::load(source, 300, loaded_at).await?;
    let env = TestEnv::configured(&[], |app| app.with_registration_secret(cached)).await?;
    assert!(env.app.requires_registration_token());
    let register = |token: &'static str| {
        let body = json!({"grant_types": ["client_credentials"], "scope": "data:read"});
        let req = env.http.post(env.url("/register_client")).bearer_auth(token).json(&body);
        async move { anyhow::Ok(req.send().await?.status().as_u16()) }
    };
    assert_eq!(register(old).await?, 201);
    assert_eq!(env.http.post(env.url("/register_client")).json(&json!({})).send().await?.status(), 401, "no token");
    sm.put_secret_value().secret_id(&id).secret_string(new).send().await?;
    assert_eq!(register(old).await?, 201, "cached until the TTL has passed");
    assert_eq!(register(new).await?, 401);
    env.clock.advance(300);
    assert_eq!(register(new).await?, 201, "the new token works without a new container");
    assert_eq!(register(old).await?, 401, "the old one is refused");
    Ok(())
}

#[tokio::test]
async fn the_authorize_function_reads_its_form_key_secret_and_needs_no_signing_keys() -> anyhow::Result<()> {
    use oauth_core::keys::FormKeyOrigin;
    use oauth_core::oauth::sealed::{PendingRequest, open, seal};
    let Some(cfg) = emulator().await? else { return Ok(()) };
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    let (form, short) = (unique("form-key"), unique("form-key-short"));
    assert!(oauth_core::aws::ensure_form_key_secret(&sm, &form).await?, "created");
    assert!(!oauth_core::aws::ensure_form_key_secret(&sm, &form).await?, "idempotent");
    sm.create_secret().name(&short).secret_string("too short for a MAC key").send().await?;
    let (_, table) = oauth_tests::aws::fresh_table(&cfg).await?;
    let (keys, public) = (unique("keys"), unique("public-keys"));
    oauth_core::aws::ensure_key_secret(&sm, &keys, Some(&public), &oauth_core::aws::KEY_SET_ALGS).await?;
    // As the template configures the authorize function: the public keys (for id_token_hint),
    // loaded at the first hint rather than at the cold start, and its own form-key secret.
    let authorize = |form_secret: String| {
        let vars = [
            ("OAUTH_KEYS", "public".to_owned()),
            ("PUBLIC_KEYS_SECRET_ID", public.clone()),
            ("TABLE_NAME", table.clone()),
            ("FORM_KEY_SECRET_ID", form_secret),
        ];
        async move {
            let get = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
            let mut backends = oauth_core::config::Backends::from_lookup(get, true)?;
            backends.defer_keys = true;
            let settings = oauth_core::Settings::from_lookup(|k| (k == "ISSUER").then(|| ISSUER.to_owned()))?;
            oauth_core::startup::build_app(settings, &backends).await
        }
    };
    let err = authorize(short.clone()).await.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(err.contains("FORM_KEY_SECRET_ID") && err.contains("32"), "{err}");
    assert!(!err.contains("too short for a MAC key"), "the value is never shown: {err}");
    // Two containers agree on the form key without any signing key.
    let (a, b) = (authorize(form.clone()).await?, authorize(form.clone()).await?);
    assert_eq!(a.form_key_origin(), &FormKeyOrigin::Secret(form.clone()));
    assert!(a.keys().jwks().keys.is_empty() && !a.keys().can_sign(SigningAlg::Es256), "no key read at start");
    assert!(oauth_core::lambda::http::check(&a, oauth_core::http::Function::Authorize).is_ok());
    // The first id_token_hint loads the public keys, and verifies.
    let private = oauth_core::aws::SecretsManagerKeys::new(sm.clone(), keys.clone());
    let signing = oauth_core::keys::KeySource::load_set(&private).await?;
    let claims = oauth_core::jwt::IdClaims {
        iss: ISSUER.into(),
        sub: "usr_1".into(),
        aud: "cl_1".into(),
        exp: 4_102_444_800,
        iat: 1_700_000_000,
        auth_time: 1_700_000_000,
        amr: None,
        nonce: None,
        at_hash: "x".into(),
    };
    let hint = oauth_core::jwt::issue_id_token(&signing, SigningAlg::Rs256, &claims)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let verified = oauth_core::oauth::session::verified_hint(&a, &hint, now).await?;
    assert_eq!(verified.sub, "usr_1");
    assert!(!a.keys().jwks().keys.is_empty(), "loaded by the hint");
    let pending = PendingRequest {
        id: "req_1".into(),
        client_id: "cl_1".into(),
        redirect_uri: "https://client.example/cb".into(),
        redirect_uri_sent: true,
        scope: "openid".into(),
        resources: vec![],
        state: None,
        nonce: None,
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        expires_at: i64::MAX,
        csrf: "h".into(),
        sub: None,
        hint_sub: None,
        prompt_login: false,
        max_age: None,
        dpop_jkt: None,
        device: None,
    };
    let sealed = seal(&a.form_key(), &pending)?;
    assert_eq!(open(&b.form_key(), &sealed, 0), Some(pending));
    Ok(())
}

/// Pre-publication (security review L7): a rotation publishes the new keys at setSecret and
/// they sign only `KEY_PUBLISH_DELAY_SECONDS` later, so a verifier that reloads on its cache
/// TTL knows the new key before any token uses it, and never meets an unknown kid.
#[tokio::test]
async fn a_new_key_signs_only_after_its_publish_delay_so_verifiers_know_it_first() -> anyhow::Result<()> {
    let Some(cfg) = emulator().await? else { return Ok(()) };
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    let (secret, public) = (unique("delay-private"), unique("delay-public"));
    sm.create_secret().name(&secret).secret_string(PLACEHOLDER).send().await?;
    sm.create_secret().name(&public).secret_string(r#"{"keys":[]}"#).send().await?;
    let delayed = |version: &'static str| {
        let (sm, secret, public) = (sm.clone(), secret.clone(), public.clone());
        async move {
            for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
                let algs = &oauth_core::aws::KEY_SET_ALGS;
                oauth_core::lambda::rotation::step(&sm, &secret, version, step, algs, Some(&public), 900).await?;
            }
            anyhow::Ok(())
        }
    };
    // The first key set signs at once: nothing else could.
    delayed("00000000-0000-4000-8000-00000000d001").await?;
    let k1 = stage_kids(&sm, &secret, "AWSCURRENT").await?;
    let signer = TestEnv::with_keys(Arc::new(SecretsManagerKeys::new(sm.clone(), secret.clone())), Some(300)).await?;
    let (id, s) = signer.service_client("data:read").await?;
    let kid_of = |t: &str| decode_unverified(t).map(|(h, _)| h["kid"].as_str().unwrap_or_default().to_owned());
    assert_eq!(kid_of(&signer.cc_token(&id, &s, None).await?)?, k1.first().cloned().unwrap_or_default());
    let verifier = verify_only(&sm, &public, signer.clock.clone()).await?;

    delayed("00000000-0000-4000-8000-00000000d002").await?;
    let current = stage_kids(&sm, &secret, "AWSCURRENT").await?;
    assert_eq!(current.len(), 4, "the new keys, then the ones that sign until they take over: {current:?}");
    let k2 = current.first().cloned().unwrap_or_default();
    assert_eq!(current.get(2..), k1.get(..), "the signing keys are carried over");
    // Both processes reload after their TTL: the token function still signs with K1, and
    // the verifier already holds K2.
    signer.clock.advance(300);
    let now = signer.clock.now().unix_timestamp();
    assert_eq!(kid_of(&signer.cc_token(&id, &s, None).await?)?, k1.first().cloned().unwrap_or_default(), "not yet");
    verifier.key_ring.refresh_if_stale(now).await;
    assert!(verifier.keys().verify_key(&k2).is_some(), "published before it signs");
    // After the delay the new key signs, and the verifier needs no reload to accept it.
    signer.clock.advance(700);
    let after = signer.cc_token(&id, &s, None).await?;
    assert_eq!(kid_of(&after)?, k2);
    let generation = verifier.key_ring.generation();
    assert!(verifies(&verifier, &after, signer.clock.now().unix_timestamp()).await);
    assert_eq!(verifier.key_ring.generation(), generation, "no unknown-kid reload was needed");
    // A key leaked: rotating with no delay replaces it at once (nothing carried over).
    let v3 = "00000000-0000-4000-8000-00000000d003";
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        oauth_core::lambda::rotation::step(&sm, &secret, v3, step, &oauth_core::aws::KEY_SET_ALGS, Some(&public), 0)
            .await?;
    }
    let current = stage_kids(&sm, &secret, "AWSCURRENT").await?;
    assert_eq!(current, pending_kids(&sm, &secret, v3).await?);
    assert_eq!(current.len(), 2, "{current:?}");
    Ok(())
}

/// The form-key secret can be rotated without breaking logins in flight (security review
/// L7): forms are sealed with its current value and open with the current or the previous
/// one; a container that meets a form sealed with a value it does not hold yet re-reads the
/// secret at once (at most once a minute); a value two rotations old opens nowhere.
#[tokio::test]
async fn a_rotated_form_key_keeps_forms_in_flight_working_across_containers() -> anyhow::Result<()> {
    use oauth_core::keys::FormKey;
    use oauth_core::oauth::sealed::{PendingRequest, open, seal};
    let Some(cfg) = emulator().await? else { return Ok(()) };
    let sm = aws_sdk_secretsmanager::Client::new(&cfg);
    let id = unique("form-key-rotating");
    let v = |n: u8| format!("form-key-value-number-{n}-0123456789abcdefghij");
    sm.create_secret().name(&id).secret_string(v(1)).send().await?;
    let container = |now: i64| {
        let (sm, id) = (sm.clone(), id.clone());
        async move {
            let source = Arc::new(oauth_core::aws::SecretsManagerFormKey::new(sm, id.clone()));
            let key = FormKey::rotating(id, source, 300, now).await?;
            TestEnv::configured(&[], |app| app.with_form_key(key)).await
        }
    };
    let t0 = oauth_core::clock::SystemClock.now().unix_timestamp();
    let a = container(t0).await?;
    let pending = |id: &str| PendingRequest {
        id: id.into(),
        client_id: "cl_1".into(),
        redirect_uri: "https://client.example/cb".into(),
        redirect_uri_sent: true,
        scope: "openid".into(),
        resources: vec![],
        state: None,
        nonce: None,
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        expires_at: i64::MAX,
        csrf: "h".into(),
        sub: None,
        hint_sub: None,
        prompt_login: false,
        max_age: None,
        dpop_jkt: None,
        device: None,
    };
    let opens = |env: &TestEnv, sealed: &str| {
        env.app.form_keys().iter().any(|k| open::<PendingRequest>(k, sealed, 0).is_some())
    };
    let by_a_v1 = seal(&a.app.form_key(), &pending("req_a1"))?;

    // Rotation: v2 is current, v1 previous. A container started now holds both.
    sm.put_secret_value().secret_id(&id).secret_string(v(2)).send().await?;
    let b = container(t0 + 100).await?;
    assert!(opens(&b, &by_a_v1), "a form shown by the old container opens in the new one");
    let by_b_v2 = seal(&b.app.form_key(), &pending("req_b2"))?;
    assert!(!opens(&a, &by_b_v2), "the old container does not hold v2 yet");
    // Meeting it, the old container re-reads at once (it last read over a minute ago).
    assert!(a.app.refresh_form_keys(t0 + 100, true).await);
    assert!(opens(&a, &by_b_v2) && opens(&a, &by_a_v1), "both open in the old container now");
    // Another unknown form right away does not make it read again (once a minute).
    assert!(!a.app.refresh_form_keys(t0 + 110, true).await);

    // Rotated again: v3 current, v2 previous; v1 is retired and opens nowhere after reload.
    sm.put_secret_value().secret_id(&id).secret_string(v(3)).send().await?;
    for env in [&a, &b] {
        assert!(env.app.refresh_form_keys(t0 + 500, false).await, "re-read after the TTL");
        assert!(!opens(env, &by_a_v1), "v1 retired");
        assert!(opens(env, &by_b_v2), "v2 still opens (previous)");
    }
    Ok(())
}
