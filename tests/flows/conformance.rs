//! The store conformance suite on SQLite (in memory, and a file as the local server uses).
use oauth_core::store::SqliteStore;
use oauth_tests::conformance::{Stores, run_all};
use std::sync::Arc;

fn stores(store: SqliteStore) -> Stores {
    let s = Arc::new(store);
    Stores { users: s.clone(), clients: s.clone(), codes: s.clone(), tokens: s.clone(), data: s.clone(), throttle: s }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_in_memory_passes_the_store_conformance_suite() -> anyhow::Result<()> {
    let n = run_all(|| Ok(stores(SqliteStore::in_memory()?))).await?;
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
        Ok(stores(SqliteStore::open(&dir.join(format!("case{n}.db")))?))
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|_| ())
}
