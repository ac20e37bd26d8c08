//! Token storage on PostgreSQL, shared by many machines, with one renewal
//! per expiry across all of them.
//!
//! The storage's parts, one file each: `builder` (configuration and the
//! `PG*` environment variables), `connection` (the pool and how its errors
//! are classified, statements retried on a fresh connection), `tls`
//! (`sslmode` and rustls), `schema` (the tables and their version),
//! `sealing` (rows to records and back, sealed or not), `cache` (the
//! level-1 cache) and `renewal` (the renewal lease and the compare-and-set
//! of its result).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use globus_app_proto::app::TokenSet;
use globus_app_proto::storage::sealing::SealingKeys;
use globus_app_proto::token::TokenData;
use postgres::types::Type;

use super::freshness::Freshness;
use super::locks::{RenewalGuard, RenewalLocks, SharedRenewalLock};
use super::memory::merge;
use super::{StorageError, TokenStorage};

mod builder;
mod cache;
mod connection;
mod renewal;
mod schema;
mod sealing;
mod tls;

pub use builder::PostgresTokenStorageBuilder;
use cache::Cached;
use connection::{LastConnectError, Pool};
use renewal::{Leases, SeenVersion};
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
/// - **One renewal per expiry across the fleet: a lease.** Before a
///   renewal's grant is sent, its holder takes a lease: a row in
///   `<table>_leases` naming the holder and an expiry
///   ([`lease_duration`](PostgresTokenStorageBuilder::lease_duration),
///   default 10 s, on the server's clock), committed at once, and extends
///   it every quarter of that while it holds it (a heartbeat from a thread
///   of its own): a slow grant keeps its lease, a dead holder's lapses
///   within `lease_duration`. While the stored token is still valid, no
///   machine waits for another's lease: it hands out that token. Other
///   machines wait while it is live (polling, at most every 250 ms, up to
///   [`lock_timeout`](PostgresTokenStorageBuilder::lock_timeout)), then
///   re-read the row and find the fresh token, sending no grant. The
///   holder writes its result with a compare-and-set on the row's
///   `version`, read under the lease, and deletes the lease.
///   No statement relies on the connection or session that ran the one
///   before: a statement whose connection turns out dead runs once more on
///   a fresh one, and the design works through PgBouncer in transaction
///   mode.
/// - **What it guarantees.** Exactly one grant per expiry, and no refresh
///   token sent twice, when:
///   - the holder's connection drops at any point (terminated, an
///     idle-session timeout, a failover, a proxy reset): the lease is a
///     row, not a connection; the holder reconnects and writes;
///   - PostgreSQL is unreachable while the grant is in flight, and back
///     before the lease expires (the write is tried 3 times; after that
///     the renewal is kept in memory and written by the next call);
///   - the holder dies (killed, crashed) before its grant reached Globus
///     Auth: the lease expires and one other machine renews.
///
///   A stale result is never written over a newer row (the
///   compare-and-set fails with [`StorageError::RenewalSuperseded`]).
///   What cannot be saved: the holder dies, or stays cut off from
///   PostgreSQL until its lease expires, *after* Globus Auth rotated the
///   refresh token and *before* the new one is written. The row then holds
///   a spent refresh token: the next machine's refresh is rejected
///   (`invalid_grant`), it stores the record without the refresh token,
///   and every machine gets a typed login-required error
///   (`Error::is_login_required`) instead of sending the same grant. A
///   `ClientApp` is not affected: it renews with its credentials. The
///   heartbeat keeps a live holder's lease however long its grant takes
///   (without it, [`lease_heartbeat(false)`](PostgresTokenStorageBuilder::lease_heartbeat),
///   keep `lease_duration` above the longest renewal).
/// - **Level-1 cache.** Loads are served from memory, without a query, for
///   [`max_staleness`](PostgresTokenStorageBuilder::max_staleness) (default
///   5 s) after the last query; under a renewal lock the row is always read
///   again. A row another machine writes, and a logout on another machine,
///   are seen within that time: well before a cached token is due for
///   renewal (a minute before it expires).
/// - **Connections.** A pool of
///   [`pool_size`](PostgresTokenStorageBuilder::pool_size) connections
///   (default 8); every call uses one at a time, and none is held across a
///   renewal. When none can be had within
///   [`connect_timeout`](PostgresTokenStorageBuilder::connect_timeout),
///   the error is [`StorageError::PoolExhausted`] (retryable), with
///   PostgreSQL's reason (`too many clients already`) when it refused.
/// - **Rolling upgrades from the schema-1 release** (which renewed under a
///   session advisory lock, with no lease). The first storage of this
///   release built on its table upgrades it to schema 2 and marks it
///   (`legacy_lock` in `<table>_schema`). On a marked table every renewal
///   here also takes the previous release's advisory lock (on a pooled
///   connection held for the renewal, as that release did), so its
///   processes still running and this release's never renew at once; its
///   processes started after the upgrade refuse the table
///   ([`StorageError::UnsupportedTableSchema`]). The procedure: deploy this
///   release (in any order, processes of both running); once the last
///   process of the previous release has stopped, clear the mark,
///   `UPDATE <table>_schema SET legacy_lock = false`, and restart this
///   release's processes as convenient (those built before keep taking
///   the advisory lock, which is harmless). While the mark is set, do not
///   put a pooler in transaction mode in front (session advisory locks
///   need session pooling, as the previous release did). A table created
///   by this release is never marked.
/// - **TLS** with rustls: `sslmode` (`disable`, `prefer` (the default),
///   `require`, `verify-ca`, `verify-full`) and `sslrootcert` from the
///   connection string or `PGSSLMODE` and `PGSSLROOTCERT`, as in libpq;
///   without `sslrootcert`, `verify-ca` and `verify-full` use the
///   platform's roots. A certificate that does not verify is
///   [`StorageError::TlsVerification`].
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
    lease_duration: Duration,
    lease_heartbeat: bool,
    connect_timeout: Duration,
    last_connect_error: Arc<LastConnectError>,
    /// The leases this storage holds, and what each read.
    leases: Leases,
    /// The row versions the last query read, by resource server.
    last_read: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    /// The table was upgraded from schema 1 and still marked: renewals
    /// also take the schema-1 release's advisory lock.
    legacy_lock: std::sync::atomic::AtomicBool,
    /// The last load found PostgreSQL unreachable (for the tracing events
    /// of an outage and its end).
    unreachable: std::sync::atomic::AtomicBool,
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

    fn failed(&self, error: StorageError) -> StorageError {
        if let Some(hook) = &self.inner.on_failure {
            hook(&error);
        }
        error
    }

    /// Reads this namespace's rows (and notes the versions of leased ones).
    fn query(&self) -> Result<TokenSet, StorageError> {
        let inner = &self.inner;
        let started = Instant::now();
        let sql = format!(
            "SELECT resource_server, record, key_id, version FROM {} WHERE namespace = $1 ORDER BY resource_server",
            inner.table.quoted
        );
        let rows = self.run(&inner.table.display, |connection| {
            connection.query_typed(&sql, &[(&inner.namespace, Type::TEXT)])
        })?;
        let mut records = Vec::with_capacity(rows.len());
        let mut versions = Vec::with_capacity(rows.len());
        for row in &rows {
            let resource_server: &str = row.get(0);
            let stored: &str = row.get(1);
            let key_id: Option<&str> = row.get(2);
            versions.push((resource_server, row.get::<_, i64>(3)));
            records.push(self.decode(resource_server, stored, key_id)?);
        }
        self.note_versions_read(versions.into_iter());
        crate::trace::storage(
            "read",
            &inner.table.display,
            records.len(),
            started.elapsed(),
        );
        Ok(TokenSet::new(records))
    }

    /// Runs one writing statement (one round trip, all or nothing; run
    /// again on a fresh connection if its connection was dead); a failure
    /// is reported to the hook.
    fn write(
        &self,
        sql: &str,
        params: &[(&(dyn postgres::types::ToSql + Sync), Type)],
    ) -> Result<(), StorageError> {
        self.run(&self.inner.table.display, |connection| {
            connection.query_typed(sql, params)
        })
        .map(drop)
        .map_err(|e| self.failed(e))
    }

    /// Writes the record of a renewal under this storage's lease with a
    /// compare-and-set: never over a row written since it was read.
    fn store_renewal(
        &self,
        record: &TokenData,
        seen: SeenVersion,
        text: &str,
        key_id: Option<&str>,
    ) -> Result<(), StorageError> {
        let resource_server = record.resource_server.as_str();
        let written = self
            .compare_and_set(resource_server, seen, text, key_id)
            .map_err(|e| self.failed(e))?;
        if let Some(version) = written {
            self.note_own_write(resource_server, Some(version));
            // The next write under this lease compares with the row as
            // this one left it.
            if let Some(seen) = self
                .inner
                .leases
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get_mut(resource_server)
            {
                *seen = SeenVersion::Version(version);
            }
            Ok(())
        } else {
            crate::trace::lease(
                "compare-and-set lost: a newer row is kept",
                resource_server,
                Duration::ZERO,
            );
            self.mark_cache_stale();
            Err(self.failed(StorageError::RenewalSuperseded {
                resource_server: resource_server.to_owned(),
            }))
        }
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

    /// Stores records. A record whose resource server is under this
    /// storage's renewal lease is written with a compare-and-set against
    /// the row read under the lease
    /// ([`StorageError::RenewalSuperseded`] if a newer one was written
    /// meanwhile); the others are upserted in one statement.
    fn store(&self, records: &[TokenData]) -> Result<(), StorageError> {
        let inner = &self.inner;
        let mut resource_servers = Vec::with_capacity(records.len());
        let mut texts = Vec::with_capacity(records.len());
        let mut key_ids = Vec::with_capacity(records.len());
        let started = Instant::now();
        for record in records {
            let (text, key_id) = self.encode(record)?;
            if let Some(seen) = self.seen_under_lease(&record.resource_server) {
                self.store_renewal(record, seen, &text, key_id.as_deref())?;
            } else {
                resource_servers.push(record.resource_server.as_str());
                texts.push(text);
                key_ids.push(key_id);
            }
        }
        if !resource_servers.is_empty() {
            // One statement: one round trip, all rows or none.
            let sql = format!(
                "INSERT INTO {} AS t (namespace, resource_server, record, key_id)
                 SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[])
                 ON CONFLICT (namespace, resource_server) DO UPDATE
                 SET record = EXCLUDED.record, key_id = EXCLUDED.key_id,
                     version = t.version + 1, updated_at = now()",
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
            for resource_server in resource_servers {
                self.note_own_write(resource_server, None);
            }
        }
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
        for resource_server in resource_servers {
            self.note_own_write(resource_server, None);
        }
        self.update_cache(|stored| {
            stored.retain(|t| !resource_servers.contains(&t.resource_server));
        });
        Ok(())
    }

    fn wait_for_renewal(&self, resource_server: &str) -> Result<(), StorageError> {
        self.inner.renewals.lock(resource_server).map(drop)
    }

    fn lock_renewal(&self, resource_server: &str) -> Result<RenewalGuard, StorageError> {
        // Waiting, it returns a guard, or an error when the wait timed out.
        self.lock_renewal_across_machines(resource_server, true)?
            .ok_or_else(|| StorageError::LockTimeout {
                lock: format!("renewal lease of {resource_server}"),
            })
    }

    fn try_lock_renewal(
        &self,
        resource_server: &str,
    ) -> Result<Option<RenewalGuard>, StorageError> {
        self.lock_renewal_across_machines(resource_server, false)
    }
}
