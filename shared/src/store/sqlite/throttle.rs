//! Counters for throttles and single-use markers (`ThrottleStore`).
use super::*;

#[async_trait]
impl ThrottleStore for SqliteStore {
    async fn hit(&self, key: &str, window_secs: i64, now: OffsetDateTime) -> Result<u32, StoreError> {
        let mut conn = self.conn()?;
        let t = now.unix_timestamp();
        // In an explicit transaction: with `RETURNING`, a failed write would otherwise surface
        // only when the statement is reset, after the count was already returned, and a
        // throttle that silently stops counting fails open.
        let tx = conn.transaction().map_err(backend)?;
        let n: i64 = {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO counters (key, count, expires_at) VALUES (?1, 1, ?2 + ?3)
                     ON CONFLICT(key) DO UPDATE SET
                        count = CASE WHEN expires_at <= ?2 THEN 1 ELSE count + 1 END,
                        expires_at = ?2 + ?3
                     RETURNING count",
                )
                .map_err(backend)?;
            st.query_row(params![key, t, window_secs], |r| r.get(0)).map_err(backend)?
        };
        tx.commit().map_err(backend)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn count(&self, key: &str, now: OffsetDateTime) -> Result<u32, StoreError> {
        let conn = self.conn()?;
        let mut st =
            conn.prepare_cached("SELECT count FROM counters WHERE key = ?1 AND expires_at > ?2").map_err(backend)?;
        let n: Option<i64> =
            st.query_row(params![key, now.unix_timestamp()], |r| r.get(0)).optional().map_err(backend)?;
        Ok(n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute("DELETE FROM counters WHERE key = ?1", [key]).map_err(backend)?;
        Ok(())
    }

    async fn forgive(&self, key: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE counters SET count = count - 1 WHERE key = ?1 AND count > 0 AND expires_at > ?2",
            params![key, now.unix_timestamp()],
        )
        .map_err(backend)?;
        Ok(())
    }
}
