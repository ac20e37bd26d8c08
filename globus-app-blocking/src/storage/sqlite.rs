//! The SQLite token database, shared with the Python SDK.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use globus_app_proto::app::{GlobusApp, TokenSet};
use globus_app_proto::storage::{TokenFileFormat, sqlite};
use globus_app_proto::token::TokenData;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior};

use super::freshness::Freshness;
use super::locks::{DEFAULT_LOCK_TIMEOUT, RenewalGuard, RenewalLocks};
use super::{StorageError, TokenStorage, create_private_dir, default_token_file};

/// A SQLite token database with the Python SDK's schema (version 2; a
/// version 1 database is read too), so Python and Rust tools can share it.
///
/// The schema is created inside an immediate transaction when its tables
/// are missing (also for an existing empty file), and its version is
/// checked. Writes run in `BEGIN IMMEDIATE` transactions; waiting for
/// another process's transaction (SQLite's busy timeout) lasts the lock
/// timeout (60 s by default, see `with_lock_timeout`). New databases are created 0600 (before SQLite opens them) in a
/// 0700 directory; an existing one is tightened to 0600, and a directory
/// other users can write to is refused. Reads are
/// served from memory: without looking at the database for up to a second
/// after the last look (see
/// [`with_recheck_interval`](Self::with_recheck_interval)), then until
/// another connection commits (`PRAGMA data_version`). Writes through this
/// storage are seen at once, and a renewal always looks first.
#[derive(Debug, Clone)]
pub struct SqliteTokenStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    namespace: String,
    connection: Mutex<Connection>,
    /// (data_version, snapshot) of the last read; cleared by our writes.
    cache: Mutex<Option<(i64, TokenSet)>>,
    freshness: Freshness,
    renewal_lock: PathBuf,
    renewals: Arc<RenewalLocks>,
}

impl SqliteTokenStorage {
    /// The database at `path`, namespace `namespace`, created if needed.
    pub fn new(
        path: impl Into<PathBuf>,
        namespace: impl Into<String>,
    ) -> Result<Self, StorageError> {
        let path = path.into();
        if path.as_os_str() == ":memory:" {
            return Err(StorageError::MemoryDatabase);
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent)?;
        }
        let sql = |e: rusqlite::Error| StorageError::sqlite(&path, e);
        // A new database is created 0600 before SQLite opens it: never, even
        // for a moment, with the umask's permissions.
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            match std::fs::File::options()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(StorageError::io("create", &path, e)),
            }
        }
        // Never through a link, and only a file of this user's (checked
        // on the path, then SQLite opens it refusing a link itself).
        super::locks::check_database_path(&path)?;
        let mut connection = Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::default() | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(sql)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| StorageError::io("restrict the permissions of", &path, e))?;
        }
        // Waiting for another process's transaction is a lock wait like the
        // others: it lasts the lock timeout.
        connection.busy_timeout(DEFAULT_LOCK_TIMEOUT).map_err(sql)?;
        ensure_schema(&mut connection, &path)?;
        let mut renewal_lock = path.as_os_str().to_owned();
        renewal_lock.push(".refresh.lock");
        Ok(Self {
            inner: Arc::new(Inner {
                namespace: namespace.into(),
                connection: Mutex::new(connection),
                cache: Mutex::new(None),
                freshness: Freshness::default(),
                renewal_lock: PathBuf::from(renewal_lock),
                renewals: Arc::default(),
                path,
            }),
        })
    }

    /// The app's default database (`tokens.db` beside the JSON default).
    pub fn for_app(app: &GlobusApp) -> Result<Self, StorageError> {
        Self::new(
            default_token_file(app, TokenFileFormat::Sqlite)?,
            app.config().namespace.clone(),
        )
    }

    /// Renewal-lock waits last at most `timeout` (default 60 s), then fail
    /// with [`StorageError::LockTimeout`] naming the lock file; a write
    /// waits as long for another process's transaction, then fails with
    /// SQLite's "database is locked" (retryable). Clones share the setting.
    #[must_use]
    pub fn with_lock_timeout(self, timeout: std::time::Duration) -> Self {
        self.inner.renewals.set_timeout(timeout);
        // Infallible for a valid connection; on failure the old wait stays.
        let _ = self.connection().busy_timeout(timeout);
        self
    }

    /// How long a snapshot is served without looking at the database
    /// (default 1 s): commits by other connections are seen within this
    /// time, and always before a renewal. `Duration::ZERO` looks on every
    /// load. Clones share the setting.
    #[must_use]
    pub fn with_recheck_interval(self, interval: Duration) -> Self {
        self.inner.freshness.set_interval(interval);
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The namespaces present in the database.
    pub fn namespaces(&self) -> Result<Vec<String>, StorageError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare(sqlite::SELECT_NAMESPACES)
            .map_err(|e| self.sql(e))?;
        let rows = statement
            .query_map([], |row| row.get(0))
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    fn connection(&self) -> MutexGuard<'_, Connection> {
        self.inner
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn cache(&self) -> MutexGuard<'_, Option<(i64, TokenSet)>> {
        self.inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn sql(&self, e: rusqlite::Error) -> StorageError {
        StorageError::sqlite(&self.inner.path, e)
    }

    fn write(
        &self,
        change: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<(), StorageError> {
        let mut connection = self.connection();
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        change(&transaction).map_err(|e| self.sql(e))?;
        transaction.commit().map_err(|e| self.sql(e))?;
        self.inner.freshness.replaced();
        *self.cache() = None;
        self.inner.freshness.expire();
        Ok(())
    }
}

fn ensure_schema(connection: &mut Connection, path: &Path) -> Result<(), StorageError> {
    let sql = |e: rusqlite::Error| StorageError::sqlite(path, e);
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let exists: bool = transaction
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='token_storage'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map_err(sql)?
        > 0;
    if exists {
        let version: Option<String> = transaction
            .query_row(sqlite::SELECT_SCHEMA_VERSION, [], |row| row.get(0))
            .optional()
            .map_err(sql)?;
        if !version
            .as_deref()
            .is_some_and(|v| sqlite::READABLE_SCHEMA_VERSIONS.contains(&v))
        {
            return Err(StorageError::UnsupportedSchema {
                path: path.to_owned(),
                version,
            });
        }
    } else {
        transaction
            .execute_batch(sqlite::CREATE_SCHEMA)
            .map_err(sql)?;
        for (attribute, value) in sqlite::INITIAL_INTERNAL_ATTRIBUTES {
            transaction
                .execute(sqlite::INSERT_INTERNAL_ATTRIBUTE, [attribute, value])
                .map_err(sql)?;
        }
    }
    transaction.commit().map_err(sql)
}

impl TokenStorage for SqliteTokenStorage {
    fn load_cached(&self) -> Option<TokenSet> {
        if !self.inner.freshness.is_fresh() {
            return None;
        }
        self.cache().as_ref().map(|(_, tokens)| tokens.clone())
    }

    fn load(&self) -> Result<TokenSet, StorageError> {
        if let Some(tokens) = self.load_cached() {
            return Ok(tokens);
        }
        let connection = self.connection();
        let version: i64 = connection
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .map_err(|e| self.sql(e))?;
        let mut cache = self.cache();
        if let Some((cached_version, tokens)) = cache.as_ref()
            && *cached_version == version
        {
            self.inner.freshness.confirm();
            return Ok(tokens.clone());
        }
        let started = std::time::Instant::now();
        let mut statement = connection
            .prepare_cached(sqlite::SELECT_NAMESPACE)
            .map_err(|e| self.sql(e))?;
        let rows = statement
            .query_map([&self.inner.namespace], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(|e| self.sql(e))?;
        let mut records = Vec::new();
        for row in rows {
            let (resource_server, json) = row.map_err(|e| self.sql(e))?;
            records.push(
                sqlite::decode_record(&resource_server, &json).map_err(|source| {
                    StorageError::Corrupt {
                        path: self.inner.path.clone(),
                        source,
                    }
                })?,
            );
        }
        let tokens = TokenSet::new(records);
        crate::trace::storage(
            "read",
            &self.inner.path.display(),
            tokens.records().len(),
            started.elapsed(),
        );
        self.inner.freshness.replaced();
        *cache = Some((version, tokens.clone()));
        self.inner.freshness.confirm();
        Ok(tokens)
    }

    fn snapshot_version(&self, now: std::time::Instant) -> Option<u64> {
        self.inner.freshness.fresh_version(now)
    }

    fn store(&self, records: &[TokenData]) -> Result<(), StorageError> {
        let namespace = self.inner.namespace.clone();
        let started = std::time::Instant::now();
        let written = self.write(|transaction| {
            for record in records {
                transaction.execute(
                    sqlite::REPLACE_RECORD,
                    [
                        namespace.as_str(),
                        record.resource_server.as_str(),
                        &sqlite::encode_record(record),
                    ],
                )?;
            }
            Ok(())
        });
        if written.is_ok() {
            crate::trace::storage(
                "write",
                &self.inner.path.display(),
                records.len(),
                started.elapsed(),
            );
        }
        written
    }

    fn remove(&self, resource_servers: &[String]) -> Result<(), StorageError> {
        let namespace = self.inner.namespace.clone();
        self.write(|transaction| {
            for rs in resource_servers {
                transaction.execute(sqlite::DELETE_RECORD, [namespace.as_str(), rs.as_str()])?;
            }
            Ok(())
        })
    }

    fn wait_for_renewal(&self, resource_server: &str) -> Result<(), StorageError> {
        self.inner.renewals.lock(resource_server).map(drop)
    }

    fn lock_renewal(&self, resource_server: &str) -> Result<RenewalGuard, StorageError> {
        let guard = RenewalGuard::of_file(
            &self.inner.renewals,
            resource_server,
            &self.inner.renewal_lock,
        )?;
        // The reload under the lock looks at the database: another process
        // may have renewed.
        self.inner.freshness.expire();
        Ok(guard)
    }

    fn try_lock_renewal(
        &self,
        resource_server: &str,
    ) -> Result<Option<RenewalGuard>, StorageError> {
        let guard = RenewalGuard::try_of_file(
            &self.inner.renewals,
            resource_server,
            &self.inner.renewal_lock,
        )?;
        if guard.is_some() {
            self.inner.freshness.expire();
        }
        Ok(guard)
    }
}
