//! Authorization codes (`CodeStore`): consumed once inside one transaction.
use super::*;

#[async_trait]
impl CodeStore for SqliteStore {
    async fn put_code(&self, code: &AuthCode) -> Result<(), StoreError> {
        let json = to_json(code)?;
        let conn = self.conn()?;
        let r = conn
            .prepare_cached("INSERT INTO codes (code_hash, record, consumed_at, expires_at) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut st| st.execute(params![code.code_hash, json, code.consumed_at, code.expires_at]));
        inserted(r)
    }

    async fn code(&self, code_hash: &str) -> Result<Option<AuthCode>, StoreError> {
        read_code(&*self.conn()?, code_hash)
    }

    async fn consume_code(
        &self,
        code_hash: &str,
        now: OffsetDateTime,
        retain_until: OffsetDateTime,
        request_id: &str,
        issue: Issue<'_>,
    ) -> Result<Consume, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(backend)?;
        let Some(code) = read_code(&tx, code_hash)? else {
            return Ok(Consume::Missing);
        };
        if let Some(found) = Consume::of_consumed(code, request_id) {
            return Ok(found);
        }
        let session = issue.refresh.and_then(|(rt, _)| rt.session.as_deref());
        // Dropping the transaction rolls the grant's `last_used` back.
        if !draw_on_grant(&tx, issue.sub, issue.client_id, session, now.unix_timestamp())? {
            return Ok(Consume::Withdrawn);
        }
        tx.execute(
            "UPDATE codes SET consumed_at = ?2, consumed_by = ?3, expires_at = max(expires_at, ?4) \
             WHERE code_hash = ?1 AND consumed_at IS NULL",
            params![code_hash, now.unix_timestamp(), request_id, retain_until.unix_timestamp()],
        )
        .map_err(backend)?;
        if let Some((rt, family)) = issue.refresh {
            insert_refresh(&tx, rt)?;
            inserted(
                tx.prepare_cached(
                    "INSERT INTO families (sub, client_id, family_id, session, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        family.sub,
                        family.client_id,
                        family.family_id,
                        family.session,
                        family.created_at,
                        family.expires_at
                    ])
                }),
            )?;
        }
        tx.commit().map_err(backend)?;
        Ok(Consume::Fresh)
    }
}
