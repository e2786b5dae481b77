//! Secrets Manager keys and DynamoDB specifics on the local emulator (SECURITY.md R7, R8):
//! rotation end to end, outages served from cache, a cold start without keys, schema drift.
use async_trait::async_trait;
use oauth_core::jwt::SigningAlg;
use oauth_core::keys::{KeyError, KeySetDoc, KeySource, SecretsManagerKeys};
use oauth_tests::aws::{emulator, fresh_key_secret};
use oauth_tests::harness::{TestEnv, decode_unverified};
use serde_json::Value;
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
    let k2 = oauth_core::aws::rotate_key_secret(&sm, &secret, &oauth_core::aws::KEY_SET_ALGS).await?;
    assert_eq!(decode_unverified(&env.cc_token(&id, &s, None).await?)?.0["kid"], k1.as_str(), "cache TTL not over yet");
    env.clock.advance(300);
    let at2 = env.cc_token(&id, &s, None).await?;
    assert_eq!(decode_unverified(&at2)?.0["kid"], k2.as_str(), "new tokens carry the new kid");
    let published = kids(&jwks(&env).await?);
    assert!(published.contains(&k1) && published.contains(&k2), "{published:?}");
    assert_eq!(env.get_bearer("/api/data", &at1).await?.status(), 200, "signed before the rotation, still valid");

    // Rotation 2: K3 current, K2 previous, K1 retired.
    let k3 = oauth_core::aws::rotate_key_secret(&sm, &secret, &oauth_core::aws::KEY_SET_ALGS).await?;
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
    let k2 = oauth_core::aws::rotate_key_secret(&sm, &secret, &oauth_core::aws::KEY_SET_ALGS).await?;
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
    oauth_core::aws::rotate_key_secret(&sm, &secret, &oauth_core::aws::KEY_SET_ALGS).await?;
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
