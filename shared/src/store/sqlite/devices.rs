//! Device authorization requests (`DeviceStore`): the record as JSON beside the columns the
//! state machine reads and writes (status, interval, next poll), each step one transaction.
use super::*;
use crate::domain::{DeviceGrant, DeviceStatus, Poll};
use crate::store::DeviceStore;

fn read_device(conn: &Connection, column: &str, hash: &str) -> Result<Option<DeviceGrant>, StoreError> {
    let sql = format!("SELECT record, status, interval, next_poll FROM devices WHERE {column} = ?1");
    let row: Option<(String, String, i64, i64)> = conn
        .prepare_cached(&sql)
        .and_then(|mut st| st.query_row([hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).optional())
        .map_err(backend)?;
    row.map(|(json, status, interval, next_poll)| {
        let mut d: DeviceGrant = from_json("device request", hash, &json)?;
        d.status = DeviceStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("device request {hash}: status {status:?}")))?;
        d.interval = interval;
        d.next_poll = next_poll;
        Ok(d)
    })
    .transpose()
}

#[async_trait]
impl DeviceStore for SqliteStore {
    async fn put_device(&self, d: &DeviceGrant) -> Result<(), StoreError> {
        let json = to_json(d)?;
        let conn = self.conn()?;
        let r = conn
            .prepare_cached(
                "INSERT INTO devices (device_hash, user_code_hash, record, status, interval, next_poll, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    d.device_hash,
                    d.user_code_hash,
                    json,
                    d.status.as_str(),
                    d.interval,
                    d.next_poll,
                    d.expires_at
                ])
            });
        inserted(r)
    }

    async fn device_by_user_code(&self, user_code_hash: &str) -> Result<Option<DeviceGrant>, StoreError> {
        read_device(&*self.conn()?, "user_code_hash", user_code_hash)
    }

    async fn decide_device(
        &self,
        device_hash: &str,
        approval: Option<&AuthCode>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(backend)?;
        let status = if approval.is_some() { DeviceStatus::Approved } else { DeviceStatus::Denied };
        let changed = tx
            .execute(
                "UPDATE devices SET status = ?2 WHERE device_hash = ?1 AND status = 'pending' AND expires_at > ?3",
                params![device_hash, status.as_str(), now.unix_timestamp()],
            )
            .map_err(backend)?;
        if changed == 0 {
            return Ok(false);
        }
        if let Some(code) = approval {
            let json = to_json(code)?;
            inserted(
                tx.prepare_cached(
                    "INSERT INTO codes (code_hash, record, consumed_at, expires_at) VALUES (?1, ?2, NULL, ?3)",
                )
                .and_then(|mut st| st.execute(params![code.code_hash, json, code.expires_at])),
            )?;
        }
        tx.commit().map_err(backend)?;
        Ok(true)
    }

    async fn poll_device(&self, device_hash: &str, client_id: &str, now: OffsetDateTime) -> Result<Poll, StoreError> {
        let now = now.unix_timestamp();
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(backend)?;
        let Some(d) = read_device(&tx, "device_hash", device_hash)? else { return Ok(Poll::Missing) };
        if d.client_id != client_id {
            return Ok(Poll::Missing);
        }
        if d.expires_at <= now {
            return Ok(Poll::Expired);
        }
        let found = match d.status {
            DeviceStatus::Approved => return Ok(Poll::Approved),
            DeviceStatus::Denied => return Ok(Poll::Denied),
            DeviceStatus::Pending if now >= d.next_poll => {
                tx.execute(
                    "UPDATE devices SET next_poll = ?2 WHERE device_hash = ?1",
                    params![device_hash, now + d.interval],
                )
                .map_err(backend)?;
                Poll::Pending
            }
            DeviceStatus::Pending => {
                let interval = d.interval + 5;
                tx.execute(
                    "UPDATE devices SET interval = ?2, next_poll = ?3 WHERE device_hash = ?1",
                    params![device_hash, interval, now + interval],
                )
                .map_err(backend)?;
                Poll::SlowDown(interval)
            }
        };
        tx.commit().map_err(backend)?;
        Ok(found)
    }
}
