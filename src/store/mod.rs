//! Persistence: everything twostep knows, on SQLite (embedded default) or PostgreSQL
//! (several instances sharing one database).
//!
//! The only module that speaks SQL. One code path serves both engines through sqlx's `Any`
//! driver; the SQL is shared (`$n` parameters work on both), and where the engines differ
//! the statement is chosen by [`Backend`]. Every operation that must hold across several
//! server instances (consuming an OTP, counting a failure) is a single conditional
//! statement or a transaction.
//!
//! Values cross the boundary as plain integers, text and bytes and are converted to and
//! from domain types here: flags are 0/1 integers and times are Unix milliseconds on both
//! engines.

mod attention;
mod audit;
mod audit_chain;
mod bootstrap;
mod devices;
mod group_commit;
mod ip_rules;
mod joins;
mod oidc;
mod oidc_clients;
mod outbox;
mod recovery_codes;
mod roles;
mod security_keys;
mod settings;
mod signin;
mod sql;
mod templates;
mod temporary_access;
mod users;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyQueryResult};
use sqlx::{AnyPool, Connection, Executor};

use crate::crypto::{KeyError, MasterKey};

pub use audit::{AuditQuery, NewAuditEntry};
pub use bootstrap::{ADMIN_USERNAME, DEFAULT_ROLES};
pub use devices::NewDevice;
pub use ip_rules::StoredIpRule;
pub use oidc::{CodeId, NewTokens, StoredSigningKey};
pub use outbox::{ClaimedMessage, NewOutboxMessage, OutboxState};
pub use roles::RoleChange;
pub use security_keys::{
    ChallengeOwner, ChallengePurpose, KeyRefused, NewSecurityKey, StoredChallenge,
    StoredSecurityKey,
};
pub use signin::{NewEmailedOtp, RequestDelay};
pub use templates::StoredTemplate;
pub use users::{DirectoryUser, FailureOutcome, NewUser, Reservation, UserChange};

/// The database engine behind a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the server key comes from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// A key file, created (mode 0600) on a new database when absent.
    File(PathBuf),
    /// The key itself, as 64 hex digits (e.g. from `TWOSTEP_KEY`).
    Hex(String),
}

/// A conflict with data already stored; the write did nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("a user with this username already exists")]
    UsernameTaken,
    #[error("a role with this name already exists")]
    RoleNameTaken,
    #[error("this network already exists")]
    NetworkExists,
    #[error("the role is still assigned to users")]
    RoleInUse,
    #[error("an application with this client id already exists")]
    ClientIdTaken,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Conflict(#[from] Conflict),
    #[error("the server key does not match this database; start with the key it was created with")]
    WrongKey,
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("the database is not reachable or refused the operation")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the database schema could not be brought up to date")]
    Migrate(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::RowNotFound => Self::NotFound,
            other => Self::Database(Box::new(other)),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Whether `error` is a unique-constraint violation (on either engine).
fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    key: Arc<MasterKey>,
    /// SQLite: the writer that commits the hot path's writes in batches.
    group: Option<group_commit::GroupCommit>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Options for [`Store::open`].
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// `sqlite://PATH` or `postgres://...`.
    pub database_url: String,
    pub key: KeySource,
    /// The pool's size; `None`: [`DEFAULT_SQLITE_CONNECTIONS`] or
    /// [`DEFAULT_POSTGRES_CONNECTIONS`].
    pub max_connections: Option<u32>,
}

/// The default pool size on SQLite: one file on one machine, whose writes take turns;
/// more connections only add threads that wake each other (measured with `bench/`: 4
/// served more verifications per second than 2, 8 or 16).
pub const DEFAULT_SQLITE_CONNECTIONS: u32 = 4;

/// The default pool size on PostgreSQL.
pub const DEFAULT_POSTGRES_CONNECTIONS: u32 = 16;

impl Store {
    /// Connects, applies the migrations (idempotent) and checks the server key: on a new
    /// database the key is created (file source) and recorded; on an existing one a
    /// missing or different key is a clear error.
    pub async fn open(options: &StoreOptions) -> StoreResult<Self> {
        let (url, backend) = locate(options, true)
            .await?
            .ok_or_else(|| corrupt("the new database could not be created"))?;
        let pool = connect(&url, backend, options.max_connections).await?;
        migrate(&pool, backend).await?;
        let key = check_key(&pool, &options.key, true).await?;
        Ok(Self::assemble(pool, backend, key))
    }

    /// Opens a database that `open` created before, and creates nothing: no SQLite file
    /// or folder, no schema, no key file, no key check. `Ok(None)` when there is no
    /// twostep database there (no SQLite file, or no recorded key check). For the command
    /// line, which works on the server's database and must never start a new one beside
    /// it. Pending migrations are applied, as `open` would.
    pub async fn open_existing(options: &StoreOptions) -> StoreResult<Option<Self>> {
        let Some((url, backend)) = locate(options, false).await? else {
            return Ok(None);
        };
        if !has_key_check(&url, backend).await? {
            return Ok(None);
        }
        let pool = connect(&url, backend, options.max_connections).await?;
        migrate(&pool, backend).await?;
        let key = check_key(&pool, &options.key, false).await?;
        Ok(Some(Self::assemble(pool, backend, key)))
    }

    fn assemble(pool: AnyPool, backend: Backend, key: MasterKey) -> Self {
        let group = match backend {
            Backend::Sqlite => Some(group_commit::GroupCommit::start(pool.clone())),
            Backend::Postgres => None,
        };
        Self {
            pool,
            backend,
            key: Arc::new(key),
            group,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The server key, for the services that derive from it (emailed-code hashes).
    pub fn key(&self) -> &MasterKey {
        &self.key
    }

    /// The newest applied migration: the schema version.
    pub async fn schema_version(&self) -> StoreResult<i64> {
        let version: i64 =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = $1")
                .bind(true)
                .fetch_one(&self.pool)
                .await?;
        Ok(version)
    }

    /// Whether the database answers (for `/healthz`).
    pub async fn ping(&self) -> bool {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&self.pool)
            .await
            .is_ok()
    }

    /// The connection pool now, for `/metrics`.
    pub fn pool_usage(&self) -> crate::metrics::PoolUsage {
        crate::metrics::PoolUsage {
            open: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`),
    /// so that two transactions that read and then write queue on the busy timeout
    /// instead of failing on a lock upgrade.
    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        let statement = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        Ok(self.pool.begin_with(statement).await?)
    }
}

/// The URL to connect to and its engine. With `create`, a missing SQLite file and its
/// folder are created; without, a missing SQLite file is `Ok(None)` and the URL opens the
/// file read-write only (SQLite's `mode=rw`), so that nothing is created.
async fn locate(options: &StoreOptions, create: bool) -> StoreResult<Option<(String, Backend)>> {
    sqlx::any::install_default_drivers();
    let backend = backend_of(&options.database_url)?;
    let url = match backend {
        Backend::Sqlite => match sqlite_url(&options.database_url, create).await? {
            Some(url) => url,
            None => return Ok(None),
        },
        Backend::Postgres => options.database_url.clone(),
    };
    Ok(Some((url, backend)))
}

/// A pool on the database, with SQLite's pragmas.
async fn connect(
    url: &str,
    backend: Backend,
    max_connections: Option<u32>,
) -> StoreResult<AnyPool> {
    let max_connections = max_connections.unwrap_or(match backend {
        Backend::Sqlite => DEFAULT_SQLITE_CONNECTIONS,
        Backend::Postgres => DEFAULT_POSTGRES_CONNECTIONS,
    });
    let pool_options = AnyPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(10));
    let pool_options = match backend {
        // A SQLite connection is a file handle: it cannot go stale, so the pool does not
        // ping it before each use (a ping is a round trip to the connection's thread,
        // as costly as a small query).
        Backend::Sqlite => pool_options
            .test_before_acquire(false)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers run beside the writer; synchronous=FULL makes every
                    // commit durable before it returns; the busy timeout queues writers.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    Ok(())
                })
            }),
        Backend::Postgres => pool_options,
    };
    Ok(pool_options.connect(url).await?)
}

/// Whether the database at `url` is a twostep database: it has the `meta` table and the
/// key check that `open` records. Asked on a plain connection, before the pool's pragmas
/// (`journal_mode = WAL` would write to an empty SQLite file) and before the migrations.
async fn has_key_check(url: &str, backend: Backend) -> StoreResult<bool> {
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let tables_sql = match backend {
        Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = $1"
        }
    };
    let tables: i64 = sqlx::query_scalar(tables_sql)
        .bind("meta")
        .fetch_one(&mut conn)
        .await?;
    let found = if tables == 0 {
        false
    } else {
        let stored: Option<Vec<u8>> = sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(KEY_CHECK)
            .fetch_optional(&mut conn)
            .await?;
        stored.is_some()
    };
    conn.close().await?;
    Ok(found)
}

async fn migrate(pool: &AnyPool, backend: Backend) -> StoreResult<()> {
    let migrator = match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
    };
    migrator
        .run(pool)
        .await
        .map_err(|error| StoreError::Migrate(Box::new(error)))
}

fn backend_of(url: &str) -> StoreResult<Backend> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::Database(
            "the database URL must start with sqlite:// or postgres://".into(),
        ))
    }
}

/// `sqlite://PATH`. With `create`, the file and its folder are created when missing;
/// without, a missing file is `None` and the URL opens the file without creating it.
async fn sqlite_url(url: &str, create: bool) -> StoreResult<Option<String>> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !create {
        let exists = tokio::fs::metadata(path)
            .await
            .is_ok_and(|metadata| metadata.is_file());
        if !exists {
            return Ok(None);
        }
        let query = query
            .split('&')
            .filter(|part| !part.is_empty() && !part.starts_with("mode="))
            .chain(std::iter::once("mode=rw"))
            .collect::<Vec<_>>()
            .join("&");
        return Ok(Some(format!("sqlite://{path}?{query}")));
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        // A new data folder is private to the service's user.
        let mut folder = tokio::fs::DirBuilder::new();
        folder.recursive(true).mode(0o700);
        folder
            .create(parent)
            .await
            .map_err(|error| StoreError::Database(Box::new(error)))?;
    }
    create_private_file(Path::new(path)).await?;
    let query = if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        query.to_owned()
    };
    Ok(Some(format!("sqlite://{path}?{query}")))
}

/// A new database file is created empty with mode 0600 before SQLite opens it (SQLite
/// gives its WAL and shared-memory files the same mode); an existing file is left alone.
async fn create_private_file(path: &Path) -> StoreResult<()> {
    if path.as_os_str().is_empty() || path.to_str() == Some(":memory:") {
        return Ok(());
    }
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(_) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(error) => Err(error),
        }
    })
    .await
    .map_err(|error| StoreError::Database(Box::new(error)))?
    .map_err(|error| StoreError::Database(Box::new(error)))
}

const KEY_CHECK: &str = "key_check";

/// Loads the server key and checks it against the one this database was created with.
/// With `new_allowed`, a database without a key check is new: a missing key file is
/// created and the key's check value recorded. Without, nothing is created.
async fn check_key(
    pool: &AnyPool,
    source: &KeySource,
    new_allowed: bool,
) -> StoreResult<MasterKey> {
    let stored: Option<Vec<u8>> = sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
        .bind(KEY_CHECK)
        .fetch_optional(pool)
        .await?;
    let existing_database = stored.is_some();
    let key = match source {
        KeySource::Hex(hex) => MasterKey::from_hex(hex)?,
        KeySource::File(path) => {
            crate::crypto::load_or_create_key_file(path, new_allowed && !existing_database).await?
        }
    };
    let stored = match stored {
        Some(stored) => stored,
        None if !new_allowed => return Err(corrupt("the database has no key check")),
        None => {
            // A new database: record this key's check value. Two instances starting on a
            // new database race here; the first insert wins and the other is checked.
            let inserted: AnyQueryResult = sqlx::query(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(KEY_CHECK)
            .bind(key.key_check())
            .execute(pool)
            .await?;
            let _ = inserted;
            sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                .bind(KEY_CHECK)
                .fetch_one(pool)
                .await?
        }
    };
    if key.verify_key_check(&stored) {
        Ok(key)
    } else {
        Err(StoreError::WrongKey)
    }
}

/// Converts a stored flag.
fn flag(value: i64) -> bool {
    value != 0
}

/// Converts a flag for storage.
fn int(flag: bool) -> i64 {
    i64::from(flag)
}

/// Converts an unsigned counter for storage; counters beyond `i64::MAX` do not occur
/// (they start at 0 and grow by one per use).
fn signed(value: u64) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt("counter out of range".into()))
}

fn unsigned(value: i64, what: &str) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative {what}")))
}

/// A comma-separated column list qualified by a table alias, each optionally renamed to
/// `<alias>_<column>` (for joins whose tables share column names): `u.id, u.username`.
fn qualified(columns: &str, alias: &str, renamed: bool) -> String {
    columns
        .split(',')
        .map(str::trim)
        .map(|column| match renamed {
            true => format!("{alias}.{column} AS {alias}_{column}"),
            false => format!("{alias}.{column}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}
