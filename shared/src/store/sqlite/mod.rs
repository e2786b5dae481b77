//! The embedded store: SQLite through rusqlite (bundled), a file for the local server and
//! `:memory:` for tests. Each operation is one statement or one transaction under the
//! connection's lock, so each is atomic. Not the production store (that is DynamoDB).
mod codes;
mod data;
mod devices;
mod identities;
mod resources;
mod sessions;
mod throttle;
mod tokens;
mod users;

use super::{
    ClientStore, CodeStore, Consume, DataStore, GrantStore, Issue, Rotate, SessionStore, StoreError, ThrottleStore,
    TokenStore, UserStore,
};
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
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    sub TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    method TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    idle_expires_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_sub ON sessions (sub);
CREATE TABLE IF NOT EXISTS grants (
    sub TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_used INTEGER,
    PRIMARY KEY (sub, client_id)
);
CREATE TABLE IF NOT EXISTS resources (
    id TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS identities (
    key TEXT PRIMARY KEY,
    sub TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    provider TEXT NOT NULL,
    email TEXT,
    email_verified INTEGER NOT NULL,
    linked_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS identities_by_sub ON identities (sub);
CREATE TABLE IF NOT EXISTS devices (
    device_hash TEXT PRIMARY KEY,
    user_code_hash TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL,
    status TEXT NOT NULL,
    interval INTEGER NOT NULL,
    next_poll INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS families (
    sub TEXT NOT NULL,
    client_id TEXT NOT NULL,
    family_id TEXT NOT NULL,
    session TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (sub, client_id, family_id)
);
";

/// Columns added to tables after their first release: a database file created before gets
/// them at open (`CREATE TABLE IF NOT EXISTS` leaves an existing table as it was).
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("grants", "last_used", "INTEGER"),
    ("grants", "resources", "TEXT"),
    ("users", "disabled", "INTEGER NOT NULL DEFAULT 0"),
];

/// SQLite implementation of every store trait.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Clients already read or created, by id: the token endpoint reads its client on every
    /// request, and a client record only changes through this store (the database is this
    /// process's alone: exclusive locking, or in memory). Every method that writes the
    /// `clients` table updates it in the same call.
    clients: ClientCache,
}

/// The client cache: at most [`ClientCache::MAX`] clients (beyond that, reads go to SQLite);
/// unknown ids are never cached, so guessing ids cannot fill it.
#[derive(Default)]
struct ClientCache(Mutex<std::collections::HashMap<String, Client>>);

impl ClientCache {
    const MAX: usize = 10_000;

    fn map(&self) -> MutexGuard<'_, std::collections::HashMap<String, Client>> {
        // A panic while holding it leaves a valid map.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, client_id: &str) -> Option<Client> {
        self.map().get(client_id).cloned()
    }

    fn remove(&self, client_id: &str) {
        self.map().remove(client_id);
    }

    fn put(&self, client: &Client) {
        let mut map = self.map();
        if map.len() < Self::MAX || map.contains_key(&client.client_id) {
            map.insert(client.client_id.clone(), client.clone());
        }
    }
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
        // Every statement the store runs stays prepared: the store has more distinct
        // statements (about 35) than rusqlite's default cache holds (16), so a flow touching
        // more than 16 of them would evict and prepare some again on every request.
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch(SCHEMA).context("Failed to create the SQLite schema")?;
        for (table, column, kind) in ADDED_COLUMNS {
            let has: bool = conn
                .query_row(
                    &format!("SELECT EXISTS (SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1)"),
                    [column],
                    |r| r.get(0),
                )
                .with_context(|| format!("Failed to read the columns of {table}"))?;
            if !has {
                conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))
                    .with_context(|| format!("Failed to add {table}.{column}"))?;
            }
        }
        Ok(Self { conn: Mutex::new(conn), clients: ClientCache::default() })
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
        for table in ["revocations", "counters", "codes", "refresh_tokens", "sessions", "families", "devices"] {
            n += conn.execute(&format!("DELETE FROM {table} WHERE expires_at <= ?1"), [t]).map_err(backend)?;
        }
        n += conn.execute("DELETE FROM sessions WHERE idle_expires_at <= ?1", [t]).map_err(backend)?;
        Ok(n)
    }
}

/// A `users` row: sub, username, email, password hash, creation, disabled.
type UserRow = (String, String, Option<String>, String, i64, bool);

/// The columns [`row_to_user`] reads, in order.
const USER_COLUMNS: &str = "sub, username, email, password_hash, created_at, disabled";

fn row_to_user(row: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?))
}

fn build_user((sub, username, email, password_hash, created_at, disabled): UserRow) -> Result<User, StoreError> {
    let username = Username::parse(&username).map_err(|e| StoreError::Corrupt(format!("user {sub}: {e}")))?;
    let email =
        email.map(|e| Email::parse(&e)).transpose().map_err(|e| StoreError::Corrupt(format!("user {sub}: {e}")))?;
    Ok(User { sub, username, email, password_hash, created_at, disabled })
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

/// Whether what a token issue for `sub` and `client_id` draws on is still there at `now`: the
/// consent grant (its `last_used` set to `now`) and, for a family bound to a session, the
/// session, live: neither its idle nor its absolute end reached (`CodeStore::consume_code`,
/// `TokenStore::rotate_refresh`).
fn draw_on_grant(
    conn: &Connection,
    sub: &str,
    client_id: &str,
    session: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let grant = conn
        .prepare_cached("UPDATE grants SET last_used = ?3 WHERE sub = ?1 AND client_id = ?2")
        .and_then(|mut st| st.execute(params![sub, client_id, now]))
        .map_err(backend)?;
    let Some(id_hash) = session else { return Ok(grant == 1) };
    let live: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM sessions
             WHERE id_hash = ?1 AND sub = ?2 AND idle_expires_at > ?3 AND expires_at > ?3)",
        )
        .and_then(|mut st| st.query_row(params![id_hash, sub, now], |r| r.get(0)))
        .map_err(backend)?;
    Ok(grant == 1 && live)
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
