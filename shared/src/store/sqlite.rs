//! The embedded store: SQLite through rusqlite (bundled), a file for the local server and
//! `:memory:` for tests. Each operation is one statement or one transaction under the
//! connection's lock, so each is atomic. Not the production store (that is DynamoDB).
use super::{ClientStore, CodeStore, Consume, DataStore, Rotate, StoreError, ThrottleStore, TokenStore, UserStore};
use crate::domain::{AuthCode, Client, DataItem, Email, RefreshRecord, User, Username};
use anyhow::Context;
use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use time::OffsetDateTime;

const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS users (
    sub TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    username_key TEXT NOT NULL UNIQUE,
    email TEXT,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS revocations (
    key TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS data_items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    sub TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS data_items_by_sub ON data_items (sub, seq DESC);
CREATE TABLE IF NOT EXISTS codes (
    code_hash TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    consumed_at INTEGER,
    consumed_by TEXT,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    record TEXT NOT NULL,
    rotated_at INTEGER,
    rotated_to TEXT,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
";

/// SQLite implementation of every store trait.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(anyhow::Error::new(e).context("SQLite statement failed"))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}

/// The result of an INSERT: a uniqueness violation is `AlreadyExists`, anything else a backend failure.
fn inserted(r: rusqlite::Result<usize>) -> Result<(), StoreError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists),
        Err(e) => Err(backend(e)),
    }
}

/// Record a revocation key until `until` (idempotent; a later expiry is never shortened).
fn revoke_key(conn: &Connection, key: &str, until: OffsetDateTime) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO revocations (key, expires_at) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
    )
    .and_then(|mut st| st.execute(params![key, until.unix_timestamp()]))
    .map_err(backend)?;
    Ok(())
}

impl SqliteStore {
    /// Open (creating if needed) the database file at `path`.
    ///
    /// # Errors
    /// The file cannot be opened or the schema cannot be created.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn =
            Connection::open(path).with_context(|| format!("Failed to open SQLite database {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL").context("Failed to enable WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL").context("Failed to set synchronous")?;
        // One process owns the file: exclusive locking skips the per-statement file locks
        // and shared-memory index of WAL mode (reads are ~2x faster). Another process
        // cannot open the database while the server runs.
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE").context("Failed to set exclusive locking")?;
        Self::init(conn)
    }

    /// A private in-memory database (tests, benchmarks).
    ///
    /// # Errors
    /// The schema cannot be created.
    pub fn in_memory() -> anyhow::Result<Self> {
        Self::init(Connection::open_in_memory().context("Failed to open in-memory SQLite")?)
    }

    fn init(conn: Connection) -> anyhow::Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(5)).context("Failed to set busy timeout")?;
        conn.execute_batch(SCHEMA).context("Failed to create the SQLite schema")?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        // A poisoned lock means a panic mid-statement; SQLite rolled the statement back.
        self.conn.lock().or_else(|p| Ok(p.into_inner()))
    }

    /// Delete revocations and counters whose time is over (housekeeping; the reads ignore
    /// them anyway).
    ///
    /// # Errors
    /// The statement failed.
    pub fn purge_expired(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        let conn = self.conn()?;
        let t = now.unix_timestamp();
        let mut n = 0;
        for table in ["revocations", "counters", "codes", "refresh_tokens"] {
            n += conn.execute(&format!("DELETE FROM {table} WHERE expires_at <= ?1"), [t]).map_err(backend)?;
        }
        Ok(n)
    }
}

fn row_to_user(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, Option<String>, String, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
}

fn build_user(
    (sub, username, email, password_hash, created_at): (String, String, Option<String>, String, i64),
) -> Result<User, StoreError> {
    let username = Username::parse(&username).map_err(|e| StoreError::Corrupt(format!("user {sub}: {e}")))?;
    let email =
        email.map(|e| Email::parse(&e)).transpose().map_err(|e| StoreError::Corrupt(format!("user {sub}: {e}")))?;
    Ok(User { sub, username, email, password_hash, created_at })
}

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

fn from_json<T: serde::de::DeserializeOwned>(what: &str, key: &str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("{what} {key}: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(e.into()))
}

type StateRow = (String, Option<i64>, Option<String>);

fn read_code(conn: &Connection, code_hash: &str) -> Result<Option<AuthCode>, StoreError> {
    let row: Option<StateRow> = conn
        .prepare_cached("SELECT record, consumed_at, consumed_by FROM codes WHERE code_hash = ?1")
        .and_then(|mut st| st.query_row([code_hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional())
        .map_err(backend)?;
    row.map(|(json, consumed_at, consumed_by)| {
        let mut code: AuthCode = from_json("code", code_hash, &json)?;
        code.consumed_at = consumed_at;
        code.consumed_by = consumed_by;
        Ok(code)
    })
    .transpose()
}

fn read_refresh(conn: &Connection, token_hash: &str) -> Result<Option<RefreshRecord>, StoreError> {
    let row: Option<StateRow> = conn
        .prepare_cached("SELECT record, rotated_at, rotated_to FROM refresh_tokens WHERE token_hash = ?1")
        .and_then(|mut st| st.query_row([token_hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional())
        .map_err(backend)?;
    row.map(|(json, rotated_at, rotated_to)| {
        let mut rt: RefreshRecord = from_json("refresh token", "(hash withheld)", &json)?;
        rt.rotated_at = rotated_at;
        rt.rotated_to = rotated_to;
        Ok(rt)
    })
    .transpose()
}

fn insert_refresh(conn: &Connection, rt: &RefreshRecord) -> Result<(), StoreError> {
    let json = to_json(rt)?;
    let r = conn
        .prepare_cached(
            "INSERT INTO refresh_tokens (token_hash, family_id, record, rotated_at, expires_at) VALUES (?1, ?2, ?3, NULL, ?4)",
        )
        .and_then(|mut st| st.execute(params![rt.token_hash, rt.family_id, json, rt.family_expires_at]));
    inserted(r)
}

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
        now: i64,
        retain_until: i64,
        request_id: &str,
        refresh: Option<&RefreshRecord>,
    ) -> Result<Consume, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(backend)?;
        let Some(code) = read_code(&tx, code_hash)? else {
            return Ok(Consume::Missing);
        };
        if code.consumed_at.is_some() {
            let ours = code.consumed_by.as_deref() == Some(request_id);
            return Ok(if ours { Consume::Fresh } else { Consume::Replayed(Box::new(code)) });
        }
        tx.execute(
            "UPDATE codes SET consumed_at = ?2, consumed_by = ?3, expires_at = max(expires_at, ?4) \
             WHERE code_hash = ?1 AND consumed_at IS NULL",
            params![code_hash, now, request_id, retain_until],
        )
        .map_err(backend)?;
        if let Some(rt) = refresh {
            insert_refresh(&tx, rt)?;
        }
        tx.commit().map_err(backend)?;
        Ok(Consume::Fresh)
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

#[async_trait]
impl TokenStore for SqliteStore {
    async fn refresh(&self, token_hash: &str) -> Result<Option<RefreshRecord>, StoreError> {
        read_refresh(&*self.conn()?, token_hash)
    }

    async fn rotate_refresh(&self, old_hash: &str, new: &RefreshRecord, now: i64) -> Result<Rotate, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(backend)?;
        let Some(old) = read_refresh(&tx, old_hash)? else {
            return Ok(Rotate::Missing);
        };
        if old.rotated_at.is_some() {
            let ours = old.rotated_to.as_deref() == Some(new.token_hash.as_str());
            return Ok(if ours { Rotate::Rotated } else { Rotate::AlreadyRotated(Box::new(old)) });
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
