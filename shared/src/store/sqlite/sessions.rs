//! Browser sessions and consent grants (`SessionStore`, `GrantStore`).
use super::*;
use crate::domain::{AuthMethodRef, ConsentGrant, RefreshFamily, ResourceId, ScopeSet, Session};

const SESSION_COLUMNS: &str = "id_hash, sub, auth_time, method, created_at, last_seen, idle_expires_at, expires_at";

/// A session row; an unknown method is corruption (the inner error).
fn row_to_session(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Session, StoreError>> {
    let sub: String = r.get(1)?;
    let method: String = r.get(3)?;
    let Some(method) = AuthMethodRef::parse(&method) else {
        return Ok(Err(StoreError::Corrupt(format!("session of {sub}: unknown method"))));
    };
    Ok(Ok(Session {
        id_hash: r.get(0)?,
        sub,
        auth_time: r.get(2)?,
        method,
        created_at: r.get(4)?,
        last_seen: r.get(5)?,
        idle_expires_at: r.get(6)?,
        expires_at: r.get(7)?,
    }))
}

const GRANT_COLUMNS: &str = "sub, client_id, scope, granted_at, updated_at, last_used, resources";

type GrantRow = (String, String, String, i64, i64, Option<i64>, Option<String>);

fn row_to_grant(r: &rusqlite::Row<'_>) -> rusqlite::Result<GrantRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
}

fn grant_of(
    (sub, client_id, scope, granted_at, updated_at, last_used, resources): GrantRow,
) -> Result<ConsentGrant, StoreError> {
    let scope = ScopeSet::parse(&scope).map_err(|bad| StoreError::Corrupt(format!("grant of {sub}: scope {bad:?}")))?;
    let resources = resources
        .unwrap_or_default()
        .split(' ')
        .filter(|r| !r.is_empty())
        .map(ResourceId::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|why| StoreError::Corrupt(format!("grant of {sub}: {why}")))?;
    Ok(ConsentGrant { sub, client_id, scope, resources, granted_at, updated_at, last_used })
}

/// The sorted union of two lists of resource servers.
fn union(a: &[ResourceId], b: &[ResourceId]) -> Vec<ResourceId> {
    let mut v: Vec<ResourceId> = a.iter().chain(b).cloned().collect();
    v.sort();
    v.dedup();
    v
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, s: &Session) -> Result<(), StoreError> {
        let conn = self.conn()?;
        let r = conn
            .prepare_cached(&format!(
                "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ))
            .and_then(|mut st| {
                st.execute(params![
                    s.id_hash,
                    s.sub,
                    s.auth_time,
                    s.method.as_str(),
                    s.created_at,
                    s.last_seen,
                    s.idle_expires_at,
                    s.expires_at
                ])
            });
        inserted(r)
    }

    async fn session_with_grant(
        &self,
        sub: &str,
        id_hash: &str,
        grant_for: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Option<(Session, Option<ConsentGrant>)>, StoreError> {
        let (session, grant) = {
            let conn = self.conn()?;
            let session = conn
                .prepare_cached(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = ?1 AND sub = ?2"))
                .and_then(|mut st| st.query_row(params![id_hash, sub], row_to_session).optional())
                .map_err(backend)?;
            let grant = match grant_for {
                Some(client_id) => conn
                    .prepare_cached(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE sub = ?1 AND client_id = ?2"))
                    .and_then(|mut st| st.query_row(params![sub, client_id], row_to_grant).optional())
                    .map_err(backend)?,
                None => None,
            };
            (session, grant)
        };
        let Some(session) = session.transpose()? else { return Ok(None) };
        if !session.is_live(now.unix_timestamp()) {
            return Ok(None);
        }
        Ok(Some((session, grant.map(grant_of).transpose()?)))
    }

    async fn touch_session(
        &self,
        sub: &str,
        id_hash: &str,
        idle_secs: i64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let t = now.unix_timestamp();
        let n = conn
            .prepare_cached(
                "UPDATE sessions SET last_seen = ?3, idle_expires_at = min(?3 + ?4, expires_at)
                 WHERE id_hash = ?1 AND sub = ?2 AND idle_expires_at > ?3 AND expires_at > ?3",
            )
            .and_then(|mut st| st.execute(params![id_hash, sub, t, idle_secs]))
            .map_err(backend)?;
        Ok(n == 1)
    }

    async fn end_session(&self, sub: &str, id_hash: &str) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let n = conn
            .prepare_cached("DELETE FROM sessions WHERE id_hash = ?1 AND sub = ?2")
            .and_then(|mut st| st.execute(params![id_hash, sub]))
            .map_err(backend)?;
        Ok(n == 1)
    }

    async fn sessions_of(&self, sub: &str, now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
        let rows = {
            let conn = self.conn()?;
            let mut st = conn
                .prepare_cached(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE sub = ?1 AND idle_expires_at > ?2 AND expires_at > ?2
                     ORDER BY created_at DESC, id_hash"
                ))
                .map_err(backend)?;
            let rows = st.query_map(params![sub, now.unix_timestamp()], row_to_session).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)?
        };
        rows.into_iter().collect()
    }

    async fn end_sessions_of(&self, sub: &str, keep: Option<&str>) -> Result<usize, StoreError> {
        let conn = self.conn()?;
        conn.prepare_cached("DELETE FROM sessions WHERE sub = ?1 AND id_hash IS NOT ?2")
            .and_then(|mut st| st.execute(params![sub, keep]))
            .map_err(backend)
    }
}

#[async_trait]
impl GrantStore for SqliteStore {
    async fn add_grant(
        &self,
        sub: &str,
        client_id: &str,
        scope: &ScopeSet,
        resources: &[ResourceId],
        now: OffsetDateTime,
    ) -> Result<ConsentGrant, StoreError> {
        let mut conn = self.conn()?;
        let t = now.unix_timestamp();
        // Read and write in one transaction under the connection's lock: the union loses
        // no concurrent consent.
        let tx = conn.transaction().map_err(backend)?;
        let old = tx
            .prepare_cached(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE sub = ?1 AND client_id = ?2"))
            .and_then(|mut st| st.query_row(params![sub, client_id], row_to_grant).optional())
            .map_err(backend)?
            .map(grant_of)
            .transpose()?;
        let grant = match old {
            Some(old) => ConsentGrant {
                scope: old.scope.union(scope),
                resources: union(&old.resources, resources),
                updated_at: t,
                ..old
            },
            None => ConsentGrant {
                sub: sub.to_owned(),
                client_id: client_id.to_owned(),
                scope: scope.clone(),
                resources: union(resources, &[]),
                granted_at: t,
                updated_at: t,
                last_used: None,
            },
        };
        tx.prepare_cached(
            "INSERT INTO grants (sub, client_id, scope, granted_at, updated_at, resources) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(sub, client_id) DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at,
             resources = excluded.resources",
        )
        .and_then(|mut st| {
            let ids: Vec<String> = grant.resources.iter().map(ToString::to_string).collect();
            st.execute(params![sub, client_id, grant.scope.to_string(), grant.granted_at, t, ids.join(" ")])
        })
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(grant)
    }

    async fn grants_of(&self, sub: &str) -> Result<Vec<ConsentGrant>, StoreError> {
        let rows = {
            let conn = self.conn()?;
            let mut st = conn
                .prepare_cached(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE sub = ?1 ORDER BY client_id"))
                .map_err(backend)?;
            let rows = st.query_map([sub], row_to_grant).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)?
        };
        rows.into_iter().map(grant_of).collect()
    }

    async fn delete_grant(&self, sub: &str, client_id: &str) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let n = conn
            .prepare_cached("DELETE FROM grants WHERE sub = ?1 AND client_id = ?2")
            .and_then(|mut st| st.execute(params![sub, client_id]))
            .map_err(backend)?;
        Ok(n == 1)
    }

    async fn families_of(&self, sub: &str) -> Result<Vec<RefreshFamily>, StoreError> {
        let conn = self.conn()?;
        let mut st = conn
            .prepare_cached(
                "SELECT sub, client_id, family_id, session, created_at, expires_at FROM families WHERE sub = ?1
                 ORDER BY client_id, family_id",
            )
            .map_err(backend)?;
        let rows = st
            .query_map([sub], |r| {
                Ok(RefreshFamily {
                    sub: r.get(0)?,
                    client_id: r.get(1)?,
                    family_id: r.get(2)?,
                    session: r.get(3)?,
                    created_at: r.get(4)?,
                    expires_at: r.get(5)?,
                })
            })
            .map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    }

    async fn forget_family(&self, sub: &str, client_id: &str, family_id: &str) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.prepare_cached("DELETE FROM families WHERE sub = ?1 AND client_id = ?2 AND family_id = ?3")
            .and_then(|mut st| st.execute(params![sub, client_id, family_id]))
            .map_err(backend)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, idle_end: i64, end: i64) -> Session {
        Session {
            id_hash: id.into(),
            sub: "usr_1".into(),
            auth_time: 0,
            method: AuthMethodRef::Password,
            created_at: 0,
            last_seen: 0,
            idle_expires_at: idle_end,
            expires_at: end,
        }
    }

    #[tokio::test]
    async fn housekeeping_removes_idle_and_ended_sessions_only() -> anyhow::Result<()> {
        let store = SqliteStore::in_memory()?;
        for s in [session("live", 200, 1000), session("idle", 100, 1000), session("ended", 200, 100)] {
            store.create_session(&s).await?;
        }
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(150);
        assert_eq!(store.purge_expired(now)?, 2);
        let left: Vec<String> = store.sessions_of("usr_1", now).await?.into_iter().map(|s| s.id_hash).collect();
        assert_eq!(left, ["live"]);
        assert_eq!(store.end_sessions_of("usr_1", None).await?, 1, "purged rows were still there");
        Ok(())
    }
}
