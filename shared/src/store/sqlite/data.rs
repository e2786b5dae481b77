//! The demo resource's items (`DataStore`).
use super::*;

#[async_trait]
impl DataStore for SqliteStore {
    async fn put_item(&self, item: &DataItem) -> Result<(), StoreError> {
        let value = serde_json::to_string(&item.value).map_err(|e| StoreError::Backend(e.into()))?;
        let conn = self.conn()?;
        let r = conn
            .prepare_cached("INSERT INTO data_items (id, sub, value, created_at_ms) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut st| st.execute(params![item.id, item.sub, value, item.created_at_ms]));
        inserted(r)
    }

    async fn items_for(&self, sub: &str, limit: usize) -> Result<Vec<DataItem>, StoreError> {
        let rows: Vec<(String, String, i64)> = {
            let conn = self.conn()?;
            let mut st = conn
                .prepare_cached(
                    "SELECT id, value, created_at_ms FROM data_items WHERE sub = ?1 ORDER BY seq DESC LIMIT ?2",
                )
                .map_err(backend)?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            st.query_map(params![sub, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(Iterator::collect)
                .map_err(backend)?
        };
        rows.into_iter()
            .map(|(id, value, created_at_ms)| {
                let value =
                    serde_json::from_str(&value).map_err(|e| StoreError::Corrupt(format!("data item {id}: {e}")))?;
                Ok(DataItem { id, sub: sub.to_owned(), value, created_at_ms })
            })
            .collect()
    }
}
