//! Upstream identities (`IdentityStore`): one row per (issuer, subject) key; a federated
//! user is created with its first link in one transaction, and an unlink checks "not the
//! last way in" inside the transaction that deletes.
use super::*;
use crate::domain::IdentityLink;
use crate::store::{IdentityStore, Unlink};

const COLUMNS: &str = "issuer, subject, sub, provider, email, email_verified, linked_at";

fn row_to_link(r: &rusqlite::Row<'_>) -> rusqlite::Result<IdentityLink> {
    Ok(IdentityLink {
        issuer: r.get(0)?,
        subject: r.get(1)?,
        sub: r.get(2)?,
        provider: r.get(3)?,
        email: r.get(4)?,
        email_verified: r.get(5)?,
        linked_at: r.get(6)?,
    })
}

fn insert_link(conn: &Connection, link: &IdentityLink) -> Result<(), StoreError> {
    let r = conn
        .prepare_cached(
            "INSERT INTO identities (key, issuer, subject, sub, provider, email, email_verified, linked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut st| {
            st.execute(params![
                link.key(),
                link.issuer,
                link.subject,
                link.sub,
                link.provider,
                link.email,
                link.email_verified,
                link.linked_at
            ])
        });
    inserted(r)
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn identity(&self, key: &str) -> Result<Option<IdentityLink>, StoreError> {
        let conn = self.conn()?;
        let mut st =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM identities WHERE key = ?1")).map_err(backend)?;
        st.query_row([key], row_to_link).optional().map_err(backend)
    }

    async fn identities_of(&self, sub: &str) -> Result<Vec<IdentityLink>, StoreError> {
        let conn = self.conn()?;
        let mut st = conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM identities WHERE sub = ?1 ORDER BY linked_at, key"))
            .map_err(backend)?;
        let rows = st.query_map([sub], row_to_link).map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    }

    async fn create_federated_user(&self, user: &User, link: &IdentityLink) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(backend)?;
        super::users::insert_user(&tx, &User { password_hash: String::new(), ..user.clone() })?;
        insert_link(&tx, link)?;
        tx.commit().map_err(backend)
    }

    async fn link_identity(&self, link: &IdentityLink) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(backend)?;
        let exists: bool = tx
            .query_row("SELECT EXISTS (SELECT 1 FROM users WHERE sub = ?1)", [&link.sub], |r| r.get(0))
            .map_err(backend)?;
        if !exists {
            return Err(StoreError::NotFound);
        }
        insert_link(&tx, link)?;
        tx.commit().map_err(backend)
    }

    async fn unlink_identity(&self, sub: &str, key: &str, passwordless: bool) -> Result<Unlink, StoreError> {
        let mut conn = self.conn()?;
        // IMMEDIATE: the count and the delete see the same links (no other writer between).
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
        let (mine, count): (bool, i64) = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM identities WHERE key = ?1 AND sub = ?2),
                        (SELECT COUNT(*) FROM identities WHERE sub = ?2)",
                params![key, sub],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(backend)?;
        if !mine {
            return Ok(Unlink::NotFound);
        }
        if passwordless && count <= 1 {
            return Ok(Unlink::LastMethod);
        }
        tx.execute("DELETE FROM identities WHERE key = ?1 AND sub = ?2", params![key, sub]).map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(Unlink::Removed)
    }
}
