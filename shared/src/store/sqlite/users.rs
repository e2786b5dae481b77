//! Users and clients (`UserStore`, `ClientStore`): uniqueness by the tables' keys.
use super::*;

/// Insert `user`; `AlreadyExists` when its username (case-folded) or `sub` is taken.
pub(super) fn insert_user(conn: &Connection, user: &User) -> Result<(), StoreError> {
    let r = conn
        .prepare_cached(
            "INSERT INTO users (sub, username, username_key, email, password_hash, created_at, disabled)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut st| {
            st.execute(params![
                user.sub,
                user.username.as_str(),
                user.username.key(),
                user.email.as_ref().map(Email::as_str),
                user.password_hash,
                user.created_at,
                user.disabled
            ])
        });
    inserted(r)
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        insert_user(&*self.conn()?, user)
    }

    async fn user_by_username(&self, username_key: &str) -> Result<Option<User>, StoreError> {
        let row = {
            let conn = self.conn()?;
            let mut st = conn
                .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE username_key = ?1"))
                .map_err(backend)?;
            st.query_row([username_key], row_to_user).optional().map_err(backend)?
        };
        row.map(build_user).transpose()
    }

    async fn update_password_hash(&self, sub: &str, password_hash: &str) -> Result<(), StoreError> {
        let conn = self.conn()?;
        let n = conn
            .execute("UPDATE users SET password_hash = ?2 WHERE sub = ?1", params![sub, password_hash])
            .map_err(backend)?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn user_by_sub(&self, sub: &str) -> Result<Option<User>, StoreError> {
        let row = {
            let conn = self.conn()?;
            let mut st =
                conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE sub = ?1")).map_err(backend)?;
            st.query_row([sub], row_to_user).optional().map_err(backend)?
        };
        row.map(build_user).transpose()
    }

    async fn set_disabled(&self, sub: &str, disabled: bool) -> Result<(), StoreError> {
        let conn = self.conn()?;
        let n =
            conn.execute("UPDATE users SET disabled = ?2 WHERE sub = ?1", params![sub, disabled]).map_err(backend)?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn delete_user(&self, sub: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(backend)?;
        tx.execute("DELETE FROM identities WHERE sub = ?1", [sub]).map_err(backend)?;
        let n = tx.execute("DELETE FROM users WHERE sub = ?1", [sub]).map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(n > 0)
    }
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn create_client(&self, client: &Client) -> Result<(), StoreError> {
        let record = serde_json::to_string(client).map_err(|e| StoreError::Backend(e.into()))?;
        let conn = self.conn()?;
        let r = conn
            .prepare_cached("INSERT INTO clients (client_id, record) VALUES (?1, ?2)")
            .and_then(|mut st| st.execute(params![client.client_id, record]));
        inserted(r)?;
        self.clients.put(client);
        Ok(())
    }

    async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        if let Some(client) = self.clients.get(client_id) {
            return Ok(Some(client));
        }
        let record: Option<String> = {
            let conn = self.conn()?;
            let mut st = conn.prepare_cached("SELECT record FROM clients WHERE client_id = ?1").map_err(backend)?;
            st.query_row([client_id], |r| r.get(0)).optional().map_err(backend)?
        };
        let client: Option<Client> = record
            .map(|r| serde_json::from_str(&r).map_err(|e| StoreError::Corrupt(format!("client {client_id}: {e}"))))
            .transpose()?;
        if let Some(c) = &client {
            self.clients.put(c);
        }
        Ok(client)
    }

    async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        let conn = self.conn()?;
        let mut st =
            conn.prepare_cached("SELECT client_id, record FROM clients ORDER BY client_id").map_err(backend)?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, record) = row.map_err(backend)?;
            out.push(serde_json::from_str(&record).map_err(|e| StoreError::Corrupt(format!("client {id}: {e}")))?);
        }
        Ok(out)
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let n = self.conn()?.execute("DELETE FROM clients WHERE client_id = ?1", [client_id]).map_err(backend)?;
        self.clients.remove(client_id);
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AuthMethod, GrantType, ScopeSet, SigningAlg};

    fn client(id: &str) -> Client {
        Client {
            client_id: id.into(),
            secret_hash: Some(format!("hash of {id}")),
            client_name: None,
            redirect_uris: vec![],
            grant_types: vec![GrantType::ClientCredentials],
            auth_method: AuthMethod::ClientSecretBasic,
            scope: ScopeSet::client_default(),
            id_token_signed_response_alg: SigningAlg::Es256,
            created_at: 1_800_000_000,
            trusted: false,
            post_logout_redirect_uris: vec![],
            dpop_bound_access_tokens: false,
        }
    }

    #[tokio::test]
    async fn the_client_cache_holds_only_stored_clients_and_stays_bounded() -> anyhow::Result<()> {
        let store = SqliteStore::in_memory()?;
        store.create_client(&client("cl_a")).await?;
        assert_eq!(store.clients.get("cl_a"), Some(client("cl_a")), "a created client is cached");
        // A refused duplicate leaves the cached (and stored) first record.
        let dup = Client { secret_hash: None, ..client("cl_a") };
        assert!(matches!(store.create_client(&dup).await, Err(StoreError::AlreadyExists)));
        assert_eq!(store.client("cl_a").await?, Some(client("cl_a")));
        // Unknown ids are not cached.
        assert_eq!(store.client("cl_unknown").await?, None);
        assert_eq!(store.clients.map().len(), 1);
        // Beyond the bound, clients are still created and read, from SQLite.
        for i in 1..ClientCache::MAX + 10 {
            store.create_client(&client(&format!("cl_{i}"))).await?;
        }
        assert_eq!(store.clients.map().len(), ClientCache::MAX);
        let last = format!("cl_{}", ClientCache::MAX + 9);
        assert_eq!(store.clients.get(&last), None);
        assert_eq!(store.client(&last).await?, Some(client(&last)));
        Ok(())
    }

    #[tokio::test]
    async fn a_reopened_database_reads_its_clients_from_the_file() -> anyhow::Result<()> {
        let path = std::env::temp_dir().join(format!("{}.db", crate::crypto::random_id("cache_test_")?));
        let result = async {
            SqliteStore::open(&path)?.create_client(&client("cl_file")).await?;
            let store = SqliteStore::open(&path)?;
            assert_eq!(store.clients.get("cl_file"), None);
            assert_eq!(store.client("cl_file").await?, Some(client("cl_file")));
            assert_eq!(store.clients.get("cl_file"), Some(client("cl_file")), "cached after the read");
            anyhow::Ok(())
        }
        .await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        result
    }
}
