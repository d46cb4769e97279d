//! The database: one pool for PostgreSQL or embedded SQLite, embedded migrations, and the
//! stores built on it (audit sink, tool sync, audit queries).
//!
//! Both backends share one schema ([`schema`]); queries are written once and expanded for each
//! connection type by [`with_conn!`](crate::with_conn).

pub mod approvals;
pub mod audit;
mod blocking;
pub mod jobs;
pub mod schema;
pub mod tools;

use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// PostgreSQL migrations, embedded in the binary.
pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
/// SQLite migrations, embedded in the binary.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// The async SQLite connection: a blocking connection whose statements run on the process's
/// own blocking threads ([`blocking`]), not on those of whichever event loop opened it.
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection, blocking::ProcessThreads>;

/// A database failure; the message never contains row data. The driver's or pool's error is
/// kept as the `source()`.
#[derive(Debug, thiserror::Error)]
#[error("database: {message}")]
pub struct DbError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl DbError {
    /// Wrap the driver's, pool's or file system's error (kept as the source).
    pub fn from_display(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self { message: e.to_string(), source: Some(Box::new(e)) }
    }

    /// Wrap an already boxed error (migrations report theirs boxed).
    pub fn from_boxed(e: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Self { message: e.to_string(), source: Some(e) }
    }

    /// What failed, in the database's or driver's words (never row data).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the database answered and refused the statement (a constraint, a trigger, a
    /// value it cannot take): a fault in what was sent, which sending it again will not cure.
    /// Anything else (no connection, a statement that could not be sent, a pool timeout) is the
    /// database being away, and the work waits for it: the audit sink sets a row aside only
    /// for a refusal, never because the way to the database failed.
    ///
    /// A database that is busy is not refusing: a lock it waited for in vain, a statement
    /// timeout or cancel, a deadlock, a read-only or recovering server, a full disk. Those are
    /// told apart by the server's own fixed wording at the start of the message (never by a
    /// word anywhere in it: a refusal may quote a caller's value, which must not be able to
    /// make a refusal look like a busy database and hold the trail back).
    pub fn is_refusal(&self) -> bool {
        use diesel::result::{DatabaseErrorKind as Kind, Error};
        match self.source.as_deref().and_then(|s| s.downcast_ref::<Error>()) {
            Some(Error::DatabaseError(
                Kind::UnableToSendCommand
                | Kind::ClosedConnection
                | Kind::SerializationFailure
                | Kind::ReadOnlyTransaction,
                _,
            )) => false,
            Some(Error::DatabaseError(_, info)) => !busy(info.message()),
            Some(Error::SerializationError(_) | Error::QueryBuilderError(_)) => true,
            _ => false,
        }
    }

    /// A failure the gateway itself detected (no underlying error).
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), source: None }
    }
}

/// A connection pool to whichever database `DATABASE_URL` names.
#[derive(Clone)]
pub enum Db {
    /// PostgreSQL through diesel-async.
    Pg(Pool<AsyncPgConnection>),
    /// Embedded SQLite (WAL, busy timeout).
    Sqlite(Pool<SqliteConn>),
}

/// Run `$body` with `$conn` bound to a pooled connection of whichever backend `$db` is.
#[macro_export]
macro_rules! with_conn {
    ($db:expr, |$conn:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Pg(pool) => {
                let mut pooled = pool.get().await.map_err($crate::db::DbError::from_display)?;
                let $conn = &mut *pooled;
                $body
            }
            $crate::db::Db::Sqlite(pool) => {
                let mut pooled = pool.get().await.map_err($crate::db::DbError::from_display)?;
                let $conn = &mut *pooled;
                $body
            }
        }
    };
}

fn sqlite_path(url: &str) -> &str {
    url.trim_start_matches("sqlite://")
}

/// How PostgreSQL and SQLite begin the messages of a database that is busy, not refusing
/// (PostgreSQL: lock and statement timeouts, cancels, terminated or starting/stopping/recovering
/// servers, deadlocks, serialization failures, read-only transactions, full disks, too many
/// clients; SQLite: SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY,
/// SQLITE_CANTOPEN, SQLITE_NOMEM, SQLITE_INTERRUPT).
const BUSY_PREFIXES: &[&str] = &[
    "canceling statement due to",
    "terminating connection",
    "the database system is",
    "deadlock detected",
    "could not serialize access",
    "could not obtain lock",
    "cannot execute",
    "could not extend file",
    "could not write",
    "no space left on device",
    "sorry, too many clients",
    "remaining connection slots are reserved",
    "out of memory",
    "database is locked",
    "database table is locked",
    "database or disk is full",
    "disk i/o error",
    "attempt to write a readonly database",
    "unable to open database file",
    "interrupted",
];

/// Whether a database error message says the database is busy or away (see [`BUSY_PREFIXES`]).
fn busy(message: &str) -> bool {
    let head: String = message.chars().take(64).collect::<String>().to_ascii_lowercase();
    BUSY_PREFIXES.iter().any(|p| head.starts_with(p))
}

impl Db {
    /// Wait at most `deadline` for `work` on this database; `None` when it did not finish. On
    /// SQLite the work runs as a task of its own and only the wait is given up: a statement
    /// already on its thread cannot be interrupted, and work dropped between two statements
    /// would leave its transaction open on the connection (SQLite statements are bounded by
    /// its busy timeout anyway).
    /// On PostgreSQL the future is dropped, releasing what it held, as a timeout should.
    pub async fn within<T: 'static>(
        &self,
        deadline: std::time::Duration,
        work: impl std::future::Future<Output = T> + 'static,
    ) -> Option<T> {
        match self {
            Db::Sqlite(_) => tokio::time::timeout(deadline, tokio::task::spawn_local(work)).await.ok()?.ok(),
            Db::Pg(_) => tokio::time::timeout(deadline, work).await.ok(),
        }
    }

    /// Open a pool; SQLite creates the file's directory if needed.
    pub fn connect(url: &str, pool_size: usize) -> Result<Self, DbError> {
        if url.starts_with("sqlite://") {
            let path = sqlite_path(url).to_owned();
            if let Some(parent) = std::path::Path::new(&path).parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(DbError::from_display)?;
            }
            let mut config = ManagerConfig::default();
            config.custom_setup = Box::new(|url| {
                Box::pin(async move {
                    let mut conn = SqliteConn::establish(url).await?;
                    conn.batch_execute(
                        "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;",
                    )
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                    Ok(conn)
                })
            });
            let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path, config);
            let pool = Pool::builder(manager).max_size(pool_size.clamp(1, 4)).build().map_err(DbError::from_display)?;
            Ok(Self::Sqlite(pool))
        } else {
            let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
            let pool = Pool::builder(manager).max_size(pool_size.max(1)).build().map_err(DbError::from_display)?;
            Ok(Self::Pg(pool))
        }
    }

    /// Which backend this is, for logs and health.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Pg(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }

    /// A round trip to the database (`/health/ready`).
    pub async fn ping(&self) -> Result<(), DbError> {
        with_conn!(self, |conn| conn.batch_execute("SELECT 1").await.map_err(DbError::from_display))
    }
}

/// Apply pending migrations for the backend `url` names; returns how many ran.
///
/// Runs on a blocking thread: diesel's migration harness is synchronous, and diesel-async's
/// wrapper would otherwise block actix's single-threaded runtime.
pub async fn migrate(url: &str) -> Result<usize, DbError> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || -> Result<usize, DbError> {
        if url.starts_with("sqlite://") {
            let path = sqlite_path(&url);
            if let Some(parent) = std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(DbError::from_display)?;
            }
            let mut conn = SqliteConnection::establish(path).map_err(DbError::from_display)?;
            let ran = conn.run_pending_migrations(SQLITE_MIGRATIONS).map_err(DbError::from_boxed)?;
            Ok(ran.len())
        } else {
            let mut conn = <diesel_async::async_connection_wrapper::AsyncConnectionWrapper<
                AsyncPgConnection,
            > as Connection>::establish(&url)
            .map_err(DbError::from_display)?;
            let ran = conn.run_pending_migrations(PG_MIGRATIONS).map_err(DbError::from_boxed)?;
            Ok(ran.len())
        }
    })
    .await
    .map_err(DbError::from_display)?
}

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorKind as Kind, Error};

    use super::DbError;

    fn database(kind: Kind) -> DbError {
        DbError::from_display(Error::DatabaseError(kind, Box::new("words".to_owned())))
    }

    #[test]
    fn only_what_the_database_answered_is_a_refusal() {
        assert!(database(Kind::CheckViolation).is_refusal());
        assert!(database(Kind::Unknown).is_refusal(), "a trigger's RAISE(ABORT) on SQLite");
        assert!(DbError::from_display(Error::SerializationError("bad value".into())).is_refusal());
        assert!(!database(Kind::UnableToSendCommand).is_refusal(), "the statement never reached it");
        assert!(!database(Kind::ClosedConnection).is_refusal());
        let said = |words: &str| {
            DbError::from_display(Error::DatabaseError(Kind::Unknown, Box::new(words.to_owned()))).is_refusal()
        };
        // Busy, in the servers' own words: not a refusal.
        for busy in [
            "database is locked",
            "canceling statement due to lock timeout",
            "canceling statement due to statement timeout",
            "canceling statement due to user request",
            "terminating connection due to administrator command",
            "deadlock detected",
            "cannot execute INSERT in a read-only transaction",
            "could not extend file \"base/1/2\": No space left on device",
            "the database system is in recovery mode",
        ] {
            assert!(!said(busy), "{busy}");
        }
        assert!(!database(Kind::SerializationFailure).is_refusal());
        // A refusal that quotes a caller's words stays a refusal, whatever the words.
        assert!(said("invalid byte sequence for encoding \"UTF8\": database is locked"));
        assert!(said("poison"));
        assert!(!DbError::from_display(Error::BrokenTransactionManager).is_refusal());
        assert!(!DbError::from_display(std::io::Error::other("pool timed out")).is_refusal());
        assert!(!DbError::new("no source").is_refusal());
    }
}
