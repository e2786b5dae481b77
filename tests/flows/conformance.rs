//! The store conformance suite, one test per case per backend: SQLite in memory, SQLite on a
//! file (as the local server uses it), DynamoDB on the emulator (skipped without one).
//! `cargo test consume_code` runs the code cases on all three.
use oauth_core::store::SqliteStore;
use oauth_tests::conformance::{Fresh, Stores};
use std::sync::Arc;

mod sqlite_in_memory {
    use super::*;

    async fn stores() -> anyhow::Result<Option<Fresh>> {
        Ok(Some(Stores::all(Arc::new(SqliteStore::in_memory()?)).into()))
    }
    oauth_tests::store_conformance_tests!(stores());
}

mod sqlite_file {
    use super::*;

    /// A new database file per case in the temp dir, deleted (with its journal) after it.
    async fn stores() -> anyhow::Result<Option<Fresh>> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("oauth-conformance-{}-{n}.db", std::process::id()));
        let stores = Stores::all(Arc::new(SqliteStore::open(&path)?));
        let files = ["", "-wal", "-shm", "-journal"].map(|s| format!("{}{s}", path.display()).into()).to_vec();
        Ok(Some(Fresh { stores, files }))
    }
    oauth_tests::store_conformance_tests!(stores());
}

mod dynamodb {
    use super::*;

    /// A fresh table on the emulator per case; `None` without an emulator.
    async fn stores() -> anyhow::Result<Option<Fresh>> {
        let Some(cfg) = oauth_tests::aws::emulator().await? else { return Ok(None) };
        let (ddb, table) = oauth_tests::aws::fresh_table(&cfg).await?;
        Ok(Some(Stores::all(Arc::new(oauth_core::store::DynamoStore::new(ddb, table))).into()))
    }
    oauth_tests::store_conformance_tests!(stores());
}
