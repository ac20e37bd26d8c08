//! Token storage: where an app keeps its tokens.
//!
//! Every storage serves one namespace, hands out immutable snapshots
//! ([`TokenSet`]) that are cheap to clone, and provides the renewal lock
//! that makes concurrent refreshes single-flight: in this process per
//! resource server, and across processes for file-backed storages.

mod freshness;
mod json;
mod locks;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::path::{Path, PathBuf};

use globus_app_proto::app::{GlobusApp, TokenSet};
use globus_app_proto::storage::{
    AppNameError, StorageCodecError, TokenFileFormat, default_token_file_relative_path,
};
use globus_app_proto::token::TokenData;

#[cfg(feature = "postgres")]
pub use self::postgres::{PostgresTokenStorage, PostgresTokenStorageBuilder, StoreFailureHook};
pub use freshness::DEFAULT_RECHECK_INTERVAL;
pub use json::JsonTokenStorage;
pub use locks::{DEFAULT_LOCK_TIMEOUT, RenewalGuard};
pub use memory::MemoryTokenStorage;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteTokenStorage;

/// A place to keep an app's tokens.
///
/// Implementations must be safe to share between threads; `load` should be
/// cheap when nothing changed (it is called on every `get_authorizer`).
pub trait TokenStorage: Send + Sync {
    /// The records of this storage's namespace.
    fn load(&self) -> Result<TokenSet, StorageError>;

    /// Stores records, replacing each resource server's record.
    fn store(&self, records: &[TokenData]) -> Result<(), StorageError>;

    /// Removes the records of these resource servers.
    fn remove(&self, resource_servers: &[String]) -> Result<(), StorageError>;

    /// Takes the renewal lock of a resource server until the guard drops.
    fn lock_renewal(&self, resource_server: &str) -> Result<RenewalGuard, StorageError>;

    /// Takes the renewal lock of a resource server only if no one holds
    /// it, without waiting: `None` when another thread, process or machine
    /// holds it (it is renewing the token). An app asks this when its
    /// token is due for renewal but still valid, and hands out that token
    /// on `None` instead of waiting; it asks [`lock_renewal`](Self::lock_renewal)
    /// when the token has expired.
    ///
    /// The default waits, as `lock_renewal` does: a storage of your own
    /// keeps its old behaviour until it says otherwise. Every storage of
    /// this crate answers at once.
    fn try_lock_renewal(
        &self,
        resource_server: &str,
    ) -> Result<Option<RenewalGuard>, StorageError> {
        self.lock_renewal(resource_server).map(Some)
    }

    /// Waits until no one in this process holds the renewal lock of
    /// `resource_server`, without taking it or any cross-process lock
    /// (another thread of the app is renewing; its result is loaded next).
    /// The default returns at once.
    fn wait_for_renewal(&self, resource_server: &str) -> Result<(), StorageError> {
        let _ = resource_server;
        Ok(())
    }

    /// The snapshot, if it can be had without I/O (a cache still fresh);
    /// async adapters then skip their thread pool. The default: `None`.
    fn load_cached(&self) -> Option<TokenSet> {
        None
    }

    /// A number that changes whenever the snapshot [`load`](Self::load)
    /// returns could change, or `None` when `load` at `now` (the monotonic
    /// time of the call: the app reads the clock once) would do I/O, or
    /// the storage cannot tell. Reading it must write no memory other
    /// threads read (atomic loads only): apps serve a valid token from a
    /// per-thread copy while it stays the same. The default: `None`, so
    /// apps always call `load`.
    fn snapshot_version(&self, now: std::time::Instant) -> Option<u64> {
        let _ = now;
        None
    }

    /// Moves unreadable content ([`StorageError::is_unreadable`]) out of
    /// the way, keeping it for inspection, and returns where it went; a
    /// forced login calls this and starts over. The default sets nothing
    /// aside (`None`), and the forced login then reports the error.
    fn set_aside_unreadable(&self) -> Result<Option<PathBuf>, StorageError> {
        Ok(None)
    }
}

/// The largest token file that is read (8 MiB; a file with a thousand
/// records is about 1 MiB). A larger one is [`StorageError::TooLarge`].
pub const MAX_TOKEN_FILE_BYTES: u64 = 8 << 20;

/// A token storage failure. Messages name the file and never contain
/// tokens.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A file system operation failed.
    #[error("cannot {operation} {}", path.display())]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a token file this library can read; it is left as
    /// is. A forced login (`LoginOptions::new().force(true)`) moves it aside
    /// to a timestamped name beside it and starts over.
    #[error(
        "{} is not a valid token file; it was left unmodified (log in with force to move it aside and start over)",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: StorageCodecError,
    },
    /// The file is larger than [`MAX_TOKEN_FILE_BYTES`]: it was not read,
    /// and is left as is (a forced login moves it aside, as a corrupt one).
    #[error(
        "{} holds {size} bytes, more than a token file may ({limit}); it was left unmodified (log in with force to move it aside and start over)",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The SQLite database failed.
    #[error("SQLite token database {} failed", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database's schema version is not one this library reads.
    #[error("SQLite token database {} has schema version {version:?}, which this library does not read", path.display())]
    UnsupportedSchema {
        /// The database file.
        path: PathBuf,
        /// The version found.
        version: Option<String>,
    },
    /// The app name cannot name a token directory.
    #[error(transparent)]
    AppName(#[from] AppNameError),
    /// No home or application-data directory to put the default file in.
    #[error("cannot find the home directory for the default token file (set HOME)")]
    NoHomeDirectory,
    /// The shared token store (PostgreSQL) cannot be reached or dropped the
    /// connection; retry later. Calls served from the level-1 cache keep
    /// working meanwhile.
    #[error("the shared token store is unavailable")]
    Unavailable {
        /// The connection or pool error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// PostgreSQL answered with an error that retrying will not fix
    /// (permissions, a changed table).
    #[error("the shared token store failed")]
    Postgres {
        /// PostgreSQL's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A renewal lock was not free within the configured time.
    #[error("timed out waiting for the {lock}")]
    LockTimeout {
        /// The lock: a lock file's path, or the renewal lease's table,
        /// namespace and resource server.
        lock: String,
    },
    /// A token file, SQLite database, lock file or temp file is a symbolic
    /// link: none is ever followed (someone may be redirecting the
    /// library's reads and writes to another file). Nothing was read,
    /// written, renamed or removed through it.
    #[error(
        "{} is a symbolic link, which token storage never follows; if you made it, point the storage at the file it links to instead, else remove it",
        path.display()
    )]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// A token file, SQLite database or lock file belongs to another user:
    /// it is neither read nor written (it may not be this user's tokens,
    /// and writing would hand them to its owner).
    #[error(
        "{} is owned by another user (uid {owner}); remove it or use a path of your own",
        path.display()
    )]
    OwnedByAnotherUser {
        /// The path.
        path: PathBuf,
        /// The owner's user id.
        owner: u32,
    },
    /// A token or lock file's path holds something other than a regular
    /// file (a FIFO, socket, device or directory): it is not opened for
    /// good, so nothing hangs on it.
    #[error(
        "{} is not a regular file (a FIFO, socket, device or directory?); remove it or use another path",
        path.display()
    )]
    NotARegularFile {
        /// The path.
        path: PathBuf,
    },
    /// The token file's directory can be written by other users, who could
    /// replace the token file: it is not used.
    #[error(
        "the token directory {} is writable by other users (mode {mode:o}); use a private directory (0700)",
        path.display()
    )]
    InsecureDirectory {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The PostgreSQL connection string does not parse.
    #[error("invalid PostgreSQL connection string")]
    InvalidConnectionString {
        /// The parse error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A table name that is not `name` or `schema.name` of letters, digits
    /// and underscores.
    #[error(
        "invalid token table name {0:?} (expected `name` or `schema.name`: letters, digits, underscores)"
    )]
    InvalidTableName(String),
    /// An empty namespace, or one PostgreSQL cannot store (a NUL).
    #[error("the token storage namespace cannot be empty or contain NUL")]
    InvalidNamespace,
    /// No connection to the shared token store (PostgreSQL) within the
    /// connect timeout: all of the pool's were in use, or the server
    /// refused new ones (`reason` is PostgreSQL's own: "sorry, too many
    /// clients already"). Retryable.
    #[error(
        "no connection to the shared token store within {waited:?} (pool of {pool_size}): {reason}"
    )]
    PoolExhausted {
        /// The pool's size.
        pool_size: u32,
        /// How long the call waited.
        waited: std::time::Duration,
        /// Why: PostgreSQL's message, or that every connection was in use.
        reason: String,
    },
    /// The shared token store's TLS certificate did not verify
    /// (`sslmode=verify-ca` or `verify-full`, or a root certificate given):
    /// not the server expected, or `sslrootcert` is not its CA.
    #[error("the shared token store's TLS certificate did not verify")]
    TlsVerification {
        /// The TLS error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The PostgreSQL server (or the pooler in front of it) does not offer
    /// TLS, which the connection's `sslmode` (`require`, `verify-ca`,
    /// `verify-full`) demands. A configuration error: enable TLS there, or
    /// change `sslmode`; trying again will not help.
    #[error(
        "the PostgreSQL server does not offer TLS, which the connection's sslmode demands: enable TLS on the server (or pooler) or change sslmode"
    )]
    TlsNotOffered {
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A `PostgresTokenStorage` call on a thread that runs an async runtime
    /// (tokio's): its PostgreSQL client blocks on a runtime of its own,
    /// which cannot run there. Use `globus_app_async`'s
    /// `AsyncPostgresTokenStorage`, or call from a thread of your own (or
    /// the runtime's `spawn_blocking`). The builder's `build` is safe
    /// anywhere.
    #[error(
        "the PostgreSQL token storage was called on an async runtime's thread, where its client cannot block: use globus_app_async's AsyncPostgresTokenStorage, or call it from spawn_blocking"
    )]
    OnAsyncRuntime,
    /// A renewal's result was not written: another machine wrote a newer
    /// record for this resource server after this renewal read it (its
    /// lease had expired). The newer record is kept; load it.
    #[error(
        "a newer record for {resource_server} was written while this renewal was in flight; it was kept"
    )]
    RenewalSuperseded {
        /// The resource server.
        resource_server: String,
    },
    /// The table's schema version is not the one this library writes.
    #[error(
        "token table {table} has schema versions {versions:?}, which this library does not read"
    )]
    UnsupportedTableSchema {
        /// The table.
        table: String,
        /// The versions found.
        versions: Vec<i32>,
    },
    /// A row cannot be read: not a token record, or sealed with a key that
    /// is missing or wrong, or moved from another slot. It is left as is.
    #[error(
        "token table {table}, namespace {namespace:?}, resource server {resource_server:?}: {reason}"
    )]
    CorruptRow {
        /// The table.
        table: String,
        /// The namespace.
        namespace: String,
        /// The resource server.
        resource_server: String,
        /// What is wrong (never the record itself).
        reason: String,
    },
    /// No secure random bytes for sealing a record.
    #[error("no secure randomness: {reason}")]
    Randomness {
        /// The OS error.
        reason: String,
    },
    /// `:memory:` was given as a SQLite path.
    #[error("a SQLite token storage cannot use a \":memory:\" database; use MemoryTokenStorage")]
    MemoryDatabase,
}

impl StorageError {
    /// Whether the same call may succeed later (an interrupted or timed-out
    /// file operation, a busy or locked SQLite database).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
            ),
            #[cfg(feature = "sqlite")]
            Self::Sqlite { source, .. } => source
                .downcast_ref::<rusqlite::Error>()
                .and_then(rusqlite::Error::sqlite_error_code)
                .is_some_and(|code| {
                    matches!(
                        code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    )
                }),
            Self::Unavailable { .. } | Self::LockTimeout { .. } | Self::PoolExhausted { .. } => {
                true
            }
            _ => false,
        }
    }

    /// Whether the storage holds content this library cannot read (a
    /// corrupt, empty or oversized token file, an undecodable record): a
    /// forced login sets it aside
    /// ([`TokenStorage::set_aside_unreadable`]).
    pub fn is_unreadable(&self) -> bool {
        matches!(self, Self::Corrupt { .. } | Self::TooLarge { .. })
    }

    #[cfg(feature = "sqlite")]
    pub(crate) fn sqlite(path: &Path, source: rusqlite::Error) -> Self {
        Self::Sqlite {
            path: path.to_owned(),
            source: Box::new(source),
        }
    }

    pub(crate) fn io(operation: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            operation,
            path: path.to_owned(),
            source,
        }
    }
}

/// The default token file of an app, as the Python SDK computes it:
/// `~/.globus/app/<client id>/<app name slug>/[<env>-]tokens.<json|db>` on
/// POSIX, `%LOCALAPPDATA%\globus\app\...` on Windows.
pub fn default_token_file(
    app: &GlobusApp,
    format: TokenFileFormat,
) -> Result<PathBuf, StorageError> {
    let environment = app.config().resolved_environment().name();
    let parts =
        default_token_file_relative_path(app.client_id(), app.app_name(), environment, format)?;
    Ok(parts
        .iter()
        .fold(base_directory()?, |path, part| path.join(part)))
}

fn base_directory() -> Result<PathBuf, StorageError> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if cfg!(windows) {
        let data = var("LOCALAPPDATA")
            .or_else(|| var("APPDATA"))
            .or_else(|| var("USERPROFILE").map(|home| home.join("AppData").join("Local")))
            .ok_or(StorageError::NoHomeDirectory)?;
        Ok(data.join("globus").join("app"))
    } else {
        Ok(var("HOME")
            .ok_or(StorageError::NoHomeDirectory)?
            .join(".globus")
            .join("app"))
    }
}

/// Creates a directory and its missing parents with mode 0700, and refuses
/// one that other users can write to ([`StorageError::InsecureDirectory`]).
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StorageError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| StorageError::io("create the directory", dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir)
            .map_err(|e| StorageError::io("inspect", dir, e))?
            .permissions()
            .mode()
            & 0o7777;
        if mode & 0o022 != 0 {
            return Err(StorageError::InsecureDirectory {
                path: dir.to_owned(),
                mode,
            });
        }
    }
    Ok(())
}
