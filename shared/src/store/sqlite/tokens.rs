//! Refresh-token families and revocations (`TokenStore`).
use super::*;

#[async_trait]
impl TokenStore for SqliteStore {
    async fn refresh(&self, token_hash: &str) -> Result<Option<RefreshRecord>, StoreError> {
        read_refresh(&*self.conn()?, token_hash)
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new: &RefreshRecord,
        now: OffsetDateTime,
    ) -> Result<Rotate, StoreError> {
        let now = now.unix_timestamp();
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(backend)?;
        let Some(old) = read_refresh(&tx, old_hash)? else {
            return Ok(Rotate::Missing);
        };
        if old.rotated_at.is_some() {
            return Ok(Rotate::of_rotated(old, &new.token_hash));
        }
        if !draw_on_grant(&tx, &new.sub, &new.client_id, new.session.as_deref(), now)? {
            return Ok(Rotate::Withdrawn);
        }
        tx.execute(
            "UPDATE refresh_tokens SET rotated_at = ?2, rotated_to = ?3 WHERE token_hash = ?1 AND rotated_at IS NULL",
            params![old_hash, now, new.token_hash],
        )
        .map_err(backend)?;
        insert_refresh(&tx, new)?;
        tx.commit().map_err(backend)?;
        Ok(Rotate::Rotated)
    }

    async fn revoke_family(&self, family_id: &str, until: OffsetDateTime) -> Result<(), StoreError> {
        revoke_key(&*self.conn()?, &format!("fam#{family_id}"), until)
    }

    async fn revoke_jti(&self, jti: &str, until: OffsetDateTime) -> Result<(), StoreError> {
        revoke_key(&*self.conn()?, &format!("jti#{jti}"), until)
    }

    async fn is_revoked(&self, jti: &str, family: Option<&str>, now: OffsetDateTime) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let mut st = conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM revocations WHERE key IN (?1, ?2) AND expires_at > ?3)")
            .map_err(backend)?;
        let fam = family.map(|f| format!("fam#{f}")).unwrap_or_default();
        st.query_row(params![format!("jti#{jti}"), fam, now.unix_timestamp()], |r| r.get::<_, bool>(0)).map_err(backend)
    }
}
