//! The store conformance suite on SQLite (in memory, and a file as the local server uses).
use oauth_core::store::SqliteStore;
use oauth_tests::conformance::{Stores, run_all};
use std::sync::Arc;

fn stores(store: SqliteStore) -> Stores {
    Stores::all(Arc::new(store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_in_memory_passes_the_store_conformance_suite() -> anyhow::Result<()> {
    let n = run_all(|| async { Ok(stores(SqliteStore::in_memory()?)) }).await?;
    assert!(n >= 15);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_passes_the_store_conformance_suite() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("oauth-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let result = run_all(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = dir.join(format!("case{n}.db"));
        async move { Ok(stores(SqliteStore::open(&path)?)) }
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_passes_the_store_conformance_suite() -> anyhow::Result<()> {
    let Some(cfg) = oauth_tests::aws::emulator().await? else { return Ok(()) };
    let n = run_all(|| {
        let cfg = cfg.clone();
        async move {
            let (ddb, table) = oauth_tests::aws::fresh_table(&cfg).await?;
            Ok(Stores::all(Arc::new(oauth_core::store::DynamoStore::new(ddb, table))))
        }
    })
    .await?;
    assert!(n >= 15);
    Ok(())
}
