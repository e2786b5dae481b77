//! Resource servers (`ResourceStore`): one row each, the record as JSON.
use super::*;
use crate::domain::{ResourceId, ResourceServer};
use crate::store::ResourceStore;

#[async_trait]
impl ResourceStore for SqliteStore {
    async fn put_resource(&self, server: &ResourceServer) -> Result<(), StoreError> {
        let record = serde_json::to_string(server).map_err(|e| StoreError::Backend(e.into()))?;
        let conn = self.conn()?;
        conn.prepare_cached("INSERT OR REPLACE INTO resources (id, record) VALUES (?1, ?2)")
            .and_then(|mut st| st.execute(params![server.id.as_str(), record]))
            .map_err(backend)?;
        Ok(())
    }

    async fn resources(&self) -> Result<Vec<ResourceServer>, StoreError> {
        let rows: Vec<String> = {
            let conn = self.conn()?;
            let mut st = conn.prepare_cached("SELECT record FROM resources ORDER BY id").map_err(backend)?;
            st.query_map([], |r| r.get(0)).and_then(Iterator::collect).map_err(backend)?
        };
        rows.iter()
            .map(|text| serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("resource server: {e}"))))
            .collect()
    }

    async fn delete_resource(&self, id: &ResourceId) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let n = conn.execute("DELETE FROM resources WHERE id = ?1", params![id.as_str()]).map_err(backend)?;
        Ok(n > 0)
    }
}
