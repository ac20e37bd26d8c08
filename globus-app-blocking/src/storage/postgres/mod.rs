//! Token storage on PostgreSQL, shared by many machines, with one renewal
//! per expiry across all of them.
//!
//! The storage's parts, one file each: `builder` (configuration and the
//! `PG*` environment variables), `connection` (the pool and how its errors
//! are classified), `schema` (the table and its version), `sealing` (rows
//! to records and back, sealed or not), `cache` (the level-1 cache) and
//! `renewal` (the cross-machine renewal lock).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use globus_app_proto::app::TokenSet;
use globus_app_proto::storage::sealing::SealingKeys;
use globus_app_proto::token::TokenData;
use postgres::types::Type;

use super::freshness::Freshness;
use super::locks::{RenewalGuard, RenewalLocks};
use super::memory::merge;
use super::{StorageError, TokenStorage};

mod builder;
mod cache;
mod connection;
mod renewal;
mod schema;
mod sealing;

pub use builder::PostgresTokenStorageBuilder;
use cache::Cached;
use connection::{Connection, Pool, classify, unavailable};
use schema::QualifiedTable;

/// Called with each failure of the shared store that the storage absorbed
/// or is about to return (a load served from the level-1 cache, a store
/// that failed). Never given a token.
pub type StoreFailureHook = Arc<dyn Fn(&StorageError) + Send + Sync>;

/// Token storage in a PostgreSQL table shared by many machines: one row per
/// (namespace, resource server), holding the same record JSON as the token
/// files (so records move between storages unchanged), optionally sealed
/// with AES-256-GCM.
///
/// - **One renewal per expiry across the fleet.** A resource server's
///   renewal lock is a PostgreSQL advisory lock, held on one pooled
///   connection for the renewal and released on unlock or when that
///   connection dies (a killed holder frees it at once). The core re-reads
///   the row under the lock, so machines that waited find the fresh token
///   and send no grant.
/// - **Level-1 cache.** Loads are served from memory, without a query, for
///   [`max_staleness`](PostgresTokenStorageBuilder::max_staleness) (default
///   5 s) after the last query; under a renewal lock the row is always read
///   again. A row another machine writes, and a logout on another machine,
///   are seen within that time: well before a cached token is due for
///   renewal (a minute before it expires).
/// - **When PostgreSQL is down.** Loads keep being served from the cache
///   (retrying the server at most once per `max_staleness`); renewals,
///   stores and removals fail with [`StorageError::Unavailable`], which is
///   retryable, and nothing is written in part (each write is one
///   statement). When the server is back, the next call works.
///
/// ```no_run
/// use globus_app_blocking::storage::PostgresTokenStorage;
///
/// let storage = PostgresTokenStorage::builder("host=db.example.org user=globus dbname=tokens")
///     .namespace("my-service")
///     .build()?;
/// # Ok::<(), globus_app_blocking::storage::StorageError>(())
/// ```
#[derive(Clone)]
pub struct PostgresTokenStorage {
    inner: Arc<Inner>,
}

struct Inner {
    /// Taken only when `Inner` drops (see its `Drop`).
    pool: Option<Pool>,
    table: QualifiedTable,
    namespace: String,
    keys: Option<SealingKeys>,
    lock_timeout: Duration,
    cache: RwLock<Option<Cached>>,
    /// The cache's freshness and version, readable without its lock.
    freshness: Freshness,
    renewals: Arc<RenewalLocks>,
    on_failure: Option<StoreFailureHook>,
}

impl std::fmt::Debug for PostgresTokenStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTokenStorage")
            .field("table", &self.inner.table.display)
            .field("namespace", &self.inner.namespace)
            .field("sealed", &self.inner.keys.is_some())
            .finish_non_exhaustive()
    }
}

impl PostgresTokenStorage {
    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    fn connection(&self) -> Result<Connection, StorageError> {
        match &self.inner.pool {
            Some(pool) => pool.get().map_err(unavailable),
            None => unreachable!("the pool is taken only when the storage drops"),
        }
    }

    fn failed(&self, error: StorageError) -> StorageError {
        if let Some(hook) = &self.inner.on_failure {
            hook(&error);
        }
        error
    }

    /// Reads this namespace's rows.
    fn query(&self) -> Result<TokenSet, StorageError> {
        let inner = &self.inner;
        let started = Instant::now();
        let mut connection = self.connection()?;
        let rows = connection
            .query_typed(
                &format!(
                    "SELECT resource_server, record, key_id FROM {} WHERE namespace = $1 ORDER BY resource_server",
                    inner.table.quoted
                ),
                &[(&inner.namespace, Type::TEXT)],
            )
            .map_err(|e| classify(e, &inner.table.display))?;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let resource_server: String = row.get(0);
            let stored: String = row.get(1);
            let key_id: Option<String> = row.get(2);
            records.push(self.decode(&resource_server, &stored, key_id.as_deref())?);
        }
        crate::trace::storage(
            "read",
            &inner.table.display,
            records.len(),
            started.elapsed(),
        );
        Ok(TokenSet::new(records))
    }

    /// Runs one writing statement (one round trip, all or nothing); a
    /// failure is reported to the hook.
    fn write(
        &self,
        sql: &str,
        params: &[(&(dyn postgres::types::ToSql + Sync), Type)],
    ) -> Result<(), StorageError> {
        self.connection()
            .and_then(|mut connection| {
                connection
                    .query_typed(sql, params)
                    .map_err(|e| classify(e, &self.inner.table.display))
            })
            .map(drop)
            .map_err(|e| self.failed(e))
    }
}

impl TokenStorage for PostgresTokenStorage {
    /// The level-1 cache, while it is not older than `max_staleness` and no
    /// renewal lock was taken since it was filled.
    fn load_cached(&self) -> Option<TokenSet> {
        self.fresh_cache()
    }

    fn load(&self) -> Result<TokenSet, StorageError> {
        if let Some(tokens) = self.load_cached() {
            return Ok(tokens);
        }
        self.load_through_cache()
    }

    fn snapshot_version(&self, now: Instant) -> Option<u64> {
        self.inner.freshness.fresh_version(now)
    }

    fn store(&self, records: &[TokenData]) -> Result<(), StorageError> {
        let inner = &self.inner;
        let mut resource_servers = Vec::with_capacity(records.len());
        let mut texts = Vec::with_capacity(records.len());
        let mut key_ids = Vec::with_capacity(records.len());
        for record in records {
            let (text, key_id) = self.encode(record)?;
            resource_servers.push(record.resource_server.as_str());
            texts.push(text);
            key_ids.push(key_id);
        }
        let started = Instant::now();
        // One statement: one round trip, all rows or none.
        let sql = format!(
            "INSERT INTO {} (namespace, resource_server, record, key_id)
             SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[])
             ON CONFLICT (namespace, resource_server) DO UPDATE
             SET record = EXCLUDED.record, key_id = EXCLUDED.key_id, updated_at = now()",
            inner.table.quoted
        );
        self.write(
            &sql,
            &[
                (&inner.namespace, Type::TEXT),
                (&resource_servers, Type::TEXT_ARRAY),
                (&texts, Type::TEXT_ARRAY),
                (&key_ids, Type::TEXT_ARRAY),
            ],
        )?;
        crate::trace::storage(
            "write",
            &inner.table.display,
            records.len(),
            started.elapsed(),
        );
        self.update_cache(|stored| merge(stored, records));
        Ok(())
    }

    fn remove(&self, resource_servers: &[String]) -> Result<(), StorageError> {
        let inner = &self.inner;
        let sql = format!(
            "DELETE FROM {} WHERE namespace = $1 AND resource_server = ANY($2::text[])",
            inner.table.quoted
        );
        self.write(
            &sql,
            &[
                (&inner.namespace, Type::TEXT),
                (&resource_servers, Type::TEXT_ARRAY),
            ],
        )?;
        self.update_cache(|stored| {
            stored.retain(|t| !resource_servers.contains(&t.resource_server));
        });
        Ok(())
    }

    fn wait_for_renewal(&self, resource_server: &str) -> Result<(), StorageError> {
        self.inner.renewals.lock(resource_server).map(drop)
    }

    fn lock_renewal(&self, resource_server: &str) -> Result<RenewalGuard, StorageError> {
        self.lock_renewal_across_machines(resource_server)
    }
}
