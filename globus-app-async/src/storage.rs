//! Async token storage. The storages are those of `globus-app-blocking`;
//! their file and SQLite I/O runs on the `blocking` thread pool, never on
//! an executor thread.

use std::path::PathBuf;
use std::sync::Arc;

#[cfg(feature = "sqlite")]
use globus_app_blocking::storage::SqliteTokenStorage;
use globus_app_blocking::storage::{
    JsonTokenStorage, MemoryTokenStorage, RenewalGuard, TokenStorage,
};
#[cfg(feature = "postgres")]
pub use globus_app_blocking::storage::{PostgresTokenStorage, PostgresTokenStorageBuilder};
pub use globus_app_blocking::storage::{StorageError, default_token_file};
use globus_app_proto::app::TokenSet;
use globus_app_proto::token::TokenData;

/// A place to keep an app's tokens, used asynchronously. See
/// [`TokenStorage`] for the contract.
#[async_trait::async_trait]
pub trait AsyncTokenStorage: Send + Sync {
    /// The records of this storage's namespace.
    async fn load(&self) -> Result<TokenSet, StorageError>;
    /// Stores records, replacing each resource server's record.
    async fn store(&self, records: Vec<TokenData>) -> Result<(), StorageError>;
    /// Removes the records of these resource servers.
    async fn remove(&self, resource_servers: Vec<String>) -> Result<(), StorageError>;
    /// Takes the cross-process renewal lock of a resource server.
    async fn lock_renewal(&self, resource_server: String) -> Result<RenewalGuard, StorageError>;
    /// Takes it only if no one holds it: see
    /// [`TokenStorage::try_lock_renewal`]. The default waits, as
    /// `lock_renewal` does.
    async fn try_lock_renewal(
        &self,
        resource_server: String,
    ) -> Result<Option<RenewalGuard>, StorageError> {
        self.lock_renewal(resource_server).await.map(Some)
    }
    /// Moves unreadable content out of the way (see
    /// [`TokenStorage::set_aside_unreadable`]); by default, nothing.
    async fn set_aside_unreadable(&self) -> Result<Option<PathBuf>, StorageError> {
        Ok(None)
    }

    /// See [`TokenStorage::snapshot_version`]: what lets an app serve a
    /// valid token without a future; by default `None`.
    fn snapshot_version(&self, now: std::time::Instant) -> Option<u64> {
        let _ = now;
        None
    }
}

/// Any synchronous [`TokenStorage`], its calls run on the `blocking` pool.
#[derive(Debug, Clone)]
pub struct Unblocked<S>(pub Arc<S>);

impl<S> Unblocked<S> {
    /// Wraps a synchronous storage.
    pub fn new(storage: S) -> Self {
        Self(Arc::new(storage))
    }
}

#[async_trait::async_trait]
impl<S: TokenStorage + 'static> AsyncTokenStorage for Unblocked<S> {
    fn snapshot_version(&self, now: std::time::Instant) -> Option<u64> {
        self.0.snapshot_version(now)
    }

    async fn load(&self) -> Result<TokenSet, StorageError> {
        // A fresh snapshot needs no I/O, hence no trip to the pool.
        if let Some(tokens) = self.0.load_cached() {
            return Ok(tokens);
        }
        let storage = Arc::clone(&self.0);
        blocking::unblock(move || storage.load()).await
    }

    async fn store(&self, records: Vec<TokenData>) -> Result<(), StorageError> {
        let storage = Arc::clone(&self.0);
        blocking::unblock(move || storage.store(&records)).await
    }

    async fn remove(&self, resource_servers: Vec<String>) -> Result<(), StorageError> {
        let storage = Arc::clone(&self.0);
        blocking::unblock(move || storage.remove(&resource_servers)).await
    }

    async fn lock_renewal(&self, resource_server: String) -> Result<RenewalGuard, StorageError> {
        let storage = Arc::clone(&self.0);
        blocking::unblock(move || storage.lock_renewal(&resource_server)).await
    }

    async fn try_lock_renewal(
        &self,
        resource_server: String,
    ) -> Result<Option<RenewalGuard>, StorageError> {
        let storage = Arc::clone(&self.0);
        blocking::unblock(move || storage.try_lock_renewal(&resource_server)).await
    }

    async fn set_aside_unreadable(&self) -> Result<Option<PathBuf>, StorageError> {
        let storage = Arc::clone(&self.0);
        blocking::unblock(move || storage.set_aside_unreadable()).await
    }
}

/// The JSON token file, its I/O on the `blocking` pool.
pub type AsyncJsonTokenStorage = Unblocked<JsonTokenStorage>;
/// The SQLite token database, its I/O on the `blocking` pool (feature
/// `sqlite`).
#[cfg(feature = "sqlite")]
pub type AsyncSqliteTokenStorage = Unblocked<SqliteTokenStorage>;

/// The PostgreSQL storage shared by a fleet, its queries on the `blocking`
/// pool (feature `postgres`).
#[cfg(feature = "postgres")]
pub type AsyncPostgresTokenStorage = Unblocked<globus_app_blocking::storage::PostgresTokenStorage>;

#[cfg(feature = "postgres")]
impl Unblocked<globus_app_blocking::storage::PostgresTokenStorage> {
    /// Builds the PostgreSQL storage on the `blocking` pool (connecting,
    /// creating the tables, checking their schema) and wraps it: any
    /// executor, nothing blocked, no runtime nested.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), globus_app_async::storage::StorageError> {
    /// use globus_app_async::storage::{AsyncPostgresTokenStorage, PostgresTokenStorage};
    ///
    /// let storage = AsyncPostgresTokenStorage::build(
    ///     PostgresTokenStorage::builder("host=db.example.org user=app dbname=tokens")
    ///         .namespace("my-service"),
    /// )
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub async fn build(builder: PostgresTokenStorageBuilder) -> Result<Self, StorageError> {
        blocking::unblock(move || builder.build())
            .await
            .map(Self::new)
    }
}

/// Memory needs no thread: called directly (the async driver serializes
/// renewals itself, so the renewal lock here is never contended).
#[async_trait::async_trait]
impl AsyncTokenStorage for MemoryTokenStorage {
    fn snapshot_version(&self, now: std::time::Instant) -> Option<u64> {
        TokenStorage::snapshot_version(self, now)
    }

    async fn load(&self) -> Result<TokenSet, StorageError> {
        TokenStorage::load(self)
    }

    async fn store(&self, records: Vec<TokenData>) -> Result<(), StorageError> {
        TokenStorage::store(self, &records)
    }

    async fn remove(&self, resource_servers: Vec<String>) -> Result<(), StorageError> {
        TokenStorage::remove(self, &resource_servers)
    }

    async fn lock_renewal(&self, resource_server: String) -> Result<RenewalGuard, StorageError> {
        TokenStorage::lock_renewal(self, &resource_server)
    }

    async fn try_lock_renewal(
        &self,
        resource_server: String,
    ) -> Result<Option<RenewalGuard>, StorageError> {
        TokenStorage::try_lock_renewal(self, &resource_server)
    }
}
