//! Users and clients (`UserStore`, `ClientStore`): uniqueness by the tables' keys.
use super::*;

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let conn = self.conn()?;
        let r = conn.prepare_cached(
            "INSERT INTO users (sub, username, username_key, email, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut st| {
            st.execute(params![
                user.sub,
                user.username.as_str(),
                user.username.key(),
                user.email.as_ref().map(Email::as_str),
                user.password_hash,
                user.created_at
            ])
        });
        inserted(r)
    }

    async fn user_by_username(&self, username_key: &str) -> Result<Option<User>, StoreError> {
        let row = {
            let conn = self.conn()?;
            let mut st = conn
                .prepare_cached(
                    "SELECT sub, username, email, password_hash, created_at FROM users WHERE username_key = ?1",
                )
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
            let mut st = conn
                .prepare_cached("SELECT sub, username, email, password_hash, created_at FROM users WHERE sub = ?1")
                .map_err(backend)?;
            st.query_row([sub], row_to_user).optional().map_err(backend)?
        };
        row.map(build_user).transpose()
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
        inserted(r)
    }

    async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let record: Option<String> = {
            let conn = self.conn()?;
            let mut st = conn.prepare_cached("SELECT record FROM clients WHERE client_id = ?1").map_err(backend)?;
            st.query_row([client_id], |r| r.get(0)).optional().map_err(backend)?
        };
        record
            .map(|r| serde_json::from_str(&r).map_err(|e| StoreError::Corrupt(format!("client {client_id}: {e}"))))
            .transpose()
    }
}
