//! Token storage on PostgreSQL, shared by many machines, with one renewal
//! per expiry across all of them.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use globus_app_proto::app::TokenSet;
use globus_app_proto::storage::sealing::SealingKeys;
use globus_app_proto::storage::sqlite::{decode_record, encode_record};
use globus_app_proto::token::TokenData;
use postgres::NoTls;
use postgres::types::Type;
use r2d2_postgres::PostgresConnectionManager;

use super::locks::{RenewalGuard, RenewalLocks};
use super::memory::merge;
use super::{StorageError, TokenStorage};

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;
type Connection = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// The schema version this library writes and reads.
const SCHEMA_VERSION: i32 = 1;

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
    max_staleness: Duration,
    lock_timeout: Duration,
    cache: RwLock<Option<Cached>>,
    renewals: Arc<RenewalLocks>,
    on_failure: Option<StoreFailureHook>,
}

struct Cached {
    tokens: TokenSet,
    /// When the rows were last read, or a read last failed.
    checked: Instant,
    /// A renewal lock was taken since: read the rows again.
    stale: bool,
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

/// A table name, checked and quoted: `name` or `schema.name`.
#[derive(Debug, Clone)]
struct QualifiedTable {
    /// As given, for messages.
    display: String,
    /// Quoted for SQL.
    quoted: String,
    /// The schema-version table beside it, quoted.
    quoted_schema_table: String,
}

impl QualifiedTable {
    fn parse(name: &str) -> Result<Self, StorageError> {
        let parts: Vec<&str> = name.split('.').collect();
        let valid = |part: &&str| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
                && part.len() <= 55
        };
        if parts.is_empty() || parts.len() > 2 || !parts.iter().all(valid) {
            return Err(StorageError::InvalidTableName(name.to_owned()));
        }
        let quote = |parts: &[&str]| {
            parts
                .iter()
                .map(|part| format!("\"{part}\""))
                .collect::<Vec<_>>()
                .join(".")
        };
        let mut schema_table = parts.clone();
        let last = format!("{}_schema", parts[parts.len() - 1]);
        let len = schema_table.len();
        schema_table[len - 1] = &last;
        Ok(Self {
            display: name.to_owned(),
            quoted: quote(&parts),
            quoted_schema_table: quote(&schema_table),
        })
    }
}

/// Builds a [`PostgresTokenStorage`]; see [`PostgresTokenStorage::builder`].
#[must_use]
pub struct PostgresTokenStorageBuilder {
    connection: String,
    table: String,
    namespace: String,
    keys: Option<SealingKeys>,
    pool_size: u32,
    connect_timeout: Duration,
    lock_timeout: Duration,
    max_staleness: Duration,
    on_failure: Option<StoreFailureHook>,
}

impl PostgresTokenStorageBuilder {
    /// The table (default `globus_app_tokens`; `schema.table` also works).
    /// A table `<name>_schema` beside it records the schema version.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// The namespace (default `DEFAULT`): one table serves many apps and
    /// many users (a portal can use the user's identity id).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Seal records with AES-256-GCM: the current key seals, older ones
    /// open rows written before a rotation. Rows written without a key are
    /// still read.
    pub fn sealing_keys(mut self, keys: SealingKeys) -> Self {
        self.keys = Some(keys);
        self
    }

    /// The most connections to keep (default 8, at least 2: a renewal holds
    /// one for its lock and uses another).
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size.max(2);
        self
    }

    /// How long to wait for a connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long to wait for another machine's renewal lock before
    /// [`StorageError::LockTimeout`] (default 60 s).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// How long loads are served from the level-1 cache before the rows
    /// are read again (default 5 s): the longest time a row written, or a
    /// logout done, on another machine goes unseen here.
    pub fn max_staleness(mut self, max_staleness: Duration) -> Self {
        self.max_staleness = max_staleness;
        self
    }

    /// Called with each failure of the shared store: a load served from the
    /// cache because PostgreSQL failed, or a write that failed.
    pub fn on_store_failure(
        mut self,
        hook: impl Fn(&StorageError) + Send + Sync + 'static,
    ) -> Self {
        self.on_failure = Some(Arc::new(hook));
        self
    }

    /// Connects, creates the table if needed (`CREATE TABLE IF NOT
    /// EXISTS`, under an advisory lock so that many machines starting at
    /// once do not race) and checks its schema version.
    pub fn build(self) -> Result<PostgresTokenStorage, StorageError> {
        if self.namespace.is_empty() {
            return Err(StorageError::InvalidNamespace);
        }
        let table = QualifiedTable::parse(&self.table)?;
        let mut config: postgres::Config =
            self.connection
                .parse()
                .map_err(|e| StorageError::InvalidConnectionString {
                    source: Box::new(e),
                })?;
        apply_environment(&mut config, |name| std::env::var(name).ok());
        config.connect_timeout(self.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("globus-app");
        }
        let pool = r2d2::Pool::builder()
            .max_size(self.pool_size)
            .min_idle(Some(1))
            .connection_timeout(self.connect_timeout)
            // No validity query before each use (it would double every round
            // trip): a connection that died fails its statement with
            // `Unavailable`, and the pool drops it when it comes back.
            .test_on_check_out(false)
            .build(PostgresConnectionManager::new(config, NoTls))
            .map_err(unavailable)?;
        let storage = PostgresTokenStorage {
            inner: Arc::new(Inner {
                pool: Some(pool),
                table,
                namespace: self.namespace,
                keys: self.keys,
                max_staleness: self.max_staleness,
                lock_timeout: self.lock_timeout,
                cache: RwLock::new(None),
                renewals: {
                    let renewals = Arc::new(RenewalLocks::default());
                    renewals.set_timeout(self.lock_timeout);
                    renewals
                },
                on_failure: self.on_failure,
            }),
        };
        storage.ensure_schema()?;
        Ok(storage)
    }
}

/// Fills what the connection string leaves unset from libpq's usual
/// environment variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
/// `PGDATABASE`, `PGAPPNAME`).
fn apply_environment(config: &mut postgres::Config, lookup: impl Fn(&str) -> Option<String>) {
    let var = |name: &str| lookup(name).filter(|value| !value.is_empty());
    if config.get_hosts().is_empty()
        && let Some(hosts) = var("PGHOST")
    {
        for host in hosts.split(',') {
            config.host(host);
        }
    }
    if config.get_ports().is_empty()
        && let Some(port) = var("PGPORT").and_then(|p| p.parse().ok())
    {
        config.port(port);
    }
    if config.get_user().is_none()
        && let Some(user) = var("PGUSER")
    {
        config.user(&user);
    }
    if config.get_password().is_none()
        && let Some(password) = var("PGPASSWORD")
    {
        config.password(password);
    }
    if config.get_dbname().is_none()
        && let Some(dbname) = var("PGDATABASE")
    {
        config.dbname(&dbname);
    }
    if config.get_application_name().is_none()
        && let Some(name) = var("PGAPPNAME")
    {
        config.application_name(&name);
    }
    if config.get_hosts().is_empty() {
        config.host("localhost");
    }
}

/// A failure to reach or use the server: retryable.
fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> StorageError {
    StorageError::Unavailable {
        source: Box::new(error),
    }
}

/// PostgreSQL's error, classified: connection trouble and server shutdown
/// are [`StorageError::Unavailable`]; a lock wait that ran out is
/// [`StorageError::LockTimeout`]; anything else is [`StorageError::Postgres`].
fn classify(error: postgres::Error, lock: &str) -> StorageError {
    let code = error.code().map(postgres::error::SqlState::code);
    match code {
        Some("55P03") => StorageError::LockTimeout {
            lock: lock.to_owned(),
        },
        Some(code) if code.starts_with("08") || code.starts_with("57P") || code == "53300" => {
            unavailable(error)
        }
        None if error.is_closed()
            || std::error::Error::source(&error)
                .is_some_and(<dyn std::error::Error>::is::<std::io::Error>) =>
        {
            unavailable(error)
        }
        _ => StorageError::Postgres {
            source: Box::new(error),
        },
    }
}

/// FNV-1a, 64 bits: a stable advisory-lock key for a renewal, the same on
/// every machine and platform.
fn lock_key(parts: &[&str]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

impl PostgresTokenStorage {
    /// Starts building a storage on the database named by `connection`, a
    /// libpq-style string (`host=... user=... dbname=...` or a
    /// `postgresql://` URL; `""` uses the `PG*` environment variables
    /// alone).
    pub fn builder(connection: impl Into<String>) -> PostgresTokenStorageBuilder {
        PostgresTokenStorageBuilder {
            connection: connection.into(),
            table: "globus_app_tokens".to_owned(),
            namespace: globus_app_proto::storage::DEFAULT_NAMESPACE.to_owned(),
            keys: None,
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(60),
            max_staleness: Duration::from_secs(5),
            on_failure: None,
        }
    }

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

    fn ensure_schema(&self) -> Result<(), StorageError> {
        let table = &self.inner.table;
        let lock = lock_key(&["globus-app schema", &table.display]);
        let mut connection = self.connection()?;
        let mut transaction = connection
            .transaction()
            .map_err(|e| classify(e, &table.display))?;
        let sql = format!(
            "SELECT pg_advisory_xact_lock({lock});
             CREATE TABLE IF NOT EXISTS {table} (
                 namespace text NOT NULL,
                 resource_server text NOT NULL,
                 record text NOT NULL,
                 key_id text,
                 updated_at timestamptz NOT NULL DEFAULT now(),
                 PRIMARY KEY (namespace, resource_server)
             );
             CREATE TABLE IF NOT EXISTS {schema} (version integer NOT NULL);
             INSERT INTO {schema} (version)
                 SELECT {SCHEMA_VERSION} WHERE NOT EXISTS (SELECT 1 FROM {schema});",
            table = table.quoted,
            schema = table.quoted_schema_table,
        );
        transaction
            .batch_execute(&sql)
            .map_err(|e| classify(e, &table.display))?;
        let versions: Vec<i32> = transaction
            .query(
                &format!("SELECT version FROM {}", table.quoted_schema_table),
                &[],
            )
            .map_err(|e| classify(e, &table.display))?
            .iter()
            .map(|row| row.get(0))
            .collect();
        transaction
            .commit()
            .map_err(|e| classify(e, &table.display))?;
        if versions != [SCHEMA_VERSION] {
            return Err(StorageError::UnsupportedTableSchema {
                table: table.display.clone(),
                versions,
            });
        }
        Ok(())
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

    fn decode(
        &self,
        resource_server: &str,
        stored: &str,
        key_id: Option<&str>,
    ) -> Result<TokenData, StorageError> {
        let inner = &self.inner;
        let corrupt = |reason: String| StorageError::CorruptRow {
            table: inner.table.display.clone(),
            namespace: inner.namespace.clone(),
            resource_server: resource_server.to_owned(),
            reason,
        };
        let opened;
        let json = match (key_id, &inner.keys) {
            (None, _) => stored,
            (Some(key_id), Some(keys)) => {
                opened = keys
                    .open(key_id, &inner.namespace, resource_server, stored)
                    .map_err(|e| corrupt(e.to_string()))?;
                &opened
            }
            (Some(key_id), None) => {
                return Err(corrupt(format!(
                    "the record is sealed with key {key_id:?}, and no sealing keys were given"
                )));
            }
        };
        decode_record(resource_server, json).map_err(|e| corrupt(e.to_string()))
    }

    /// The row text and key id for `record`.
    fn encode(&self, record: &TokenData) -> Result<(String, Option<String>), StorageError> {
        let json = encode_record(record);
        let Some(keys) = &self.inner.keys else {
            return Ok((json, None));
        };
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| StorageError::Randomness {
            reason: e.to_string(),
        })?;
        let sealed = keys.seal(&self.inner.namespace, &record.resource_server, &json, nonce);
        Ok((sealed.text, Some(sealed.key_id)))
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

    /// Applies `change` to the cached records, if any (the cache's age is
    /// kept: rows other machines wrote are still re-read in time).
    fn update_cache(&self, change: impl FnOnce(&mut Vec<TokenData>)) {
        let mut cache = self
            .inner
            .cache
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = cache.as_mut() {
            let mut records = cached.tokens.records().to_vec();
            change(&mut records);
            cached.tokens = TokenSet::new(records);
        }
    }
}

impl TokenStorage for PostgresTokenStorage {
    /// The level-1 cache, while it is not older than `max_staleness` and no
    /// renewal lock was taken since it was filled.
    fn load_cached(&self) -> Option<TokenSet> {
        let inner = &self.inner;
        let cache = inner.cache.read().unwrap_or_else(PoisonError::into_inner);
        cache
            .as_ref()
            .filter(|cached| !cached.stale && cached.checked.elapsed() < inner.max_staleness)
            .map(|cached| cached.tokens.clone())
    }

    fn load(&self) -> Result<TokenSet, StorageError> {
        if let Some(tokens) = self.load_cached() {
            return Ok(tokens);
        }
        let inner = &self.inner;
        let result = self.query();
        let mut cache = inner.cache.write().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(tokens) => {
                *cache = Some(Cached {
                    tokens: tokens.clone(),
                    checked: Instant::now(),
                    stale: false,
                });
                Ok(tokens)
            }
            // Unreachable: keep serving what was read last, and try the
            // server again after another interval. Under a renewal lock
            // (`stale`) the row must be read, so the error stands.
            Err(error @ StorageError::Unavailable { .. }) => match cache.as_mut() {
                Some(cached) if !cached.stale => {
                    cached.checked = Instant::now();
                    let tokens = cached.tokens.clone();
                    drop(cache);
                    self.failed(error);
                    Ok(tokens)
                }
                _ => Err(self.failed(error)),
            },
            Err(error) => Err(error),
        }
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
        let inner = &self.inner;
        let in_process = inner.renewals.lock(resource_server)?;
        let name = format!(
            "{} advisory lock of {}/{}",
            inner.table.display, inner.namespace, resource_server
        );
        let key = lock_key(&[&inner.table.display, &inner.namespace, resource_server]);
        let mut connection = self.connection()?;
        let timeout_ms = inner.lock_timeout.as_millis().max(1);
        // One round trip; the session-level lock outlives the transaction,
        // which only scopes the timeout. Only integers are spliced in.
        let taken = connection.batch_execute(&format!(
            "BEGIN; SET LOCAL lock_timeout = {timeout_ms}; SELECT pg_advisory_lock({key}); COMMIT;"
        ));
        if let Err(error) = taken {
            // Leave no aborted transaction on a pooled connection.
            let _ = connection.batch_execute("ROLLBACK");
            return Err(classify(error, &name));
        }
        // From here on the row must be read again, not served from cache.
        if let Some(cached) = inner
            .cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            cached.stale = true;
        }
        Ok(RenewalGuard::with_holder(
            in_process,
            Box::new(AdvisoryLock {
                connection: Some(connection),
                key,
            }),
        ))
    }
}

/// Runs `job` on a thread of its own: the postgres client blocks on its
/// own runtime, which must not happen on an async executor's thread (it
/// panics on tokio's), and a drop may run on one. Inline if no thread can
/// be started.
fn off_this_thread(job: impl FnOnce() + Send + 'static) {
    let job = Arc::new(std::sync::Mutex::new(Some(job)));
    let spawned = {
        let job = Arc::clone(&job);
        std::thread::Builder::new()
            .name("globus-app-postgres".to_owned())
            .spawn(move || take_job(&job).map(|job| job()))
    };
    if spawned.is_err()
        && let Some(job) = take_job(&job)
    {
        job();
    }
}

fn take_job<F>(job: &std::sync::Mutex<Option<F>>) -> Option<F> {
    job.lock().unwrap_or_else(PoisonError::into_inner).take()
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the pooled connections talks to the server.
        if let Some(pool) = self.pool.take() {
            off_this_thread(move || drop(pool));
        }
    }
}

/// A held advisory lock and the connection that holds it; dropping it
/// unlocks, off the dropping thread (a connection that died took the lock
/// with it).
struct AdvisoryLock {
    connection: Option<Connection>,
    key: i64,
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        let (Some(mut connection), key) = (self.connection.take(), self.key) else {
            return;
        };
        off_this_thread(move || {
            let unlocked = connection.batch_execute(&format!("SELECT pg_advisory_unlock({key})"));
            if unlocked.is_err() {
                // Never return a connection to the pool still holding a lock.
                let _ = connection.batch_execute("SELECT pg_advisory_unlock_all()");
            }
        });
    }
}

impl std::fmt::Debug for AdvisoryLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdvisoryLock")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked_and_quoted() {
        let table = QualifiedTable::parse("globus_app_tokens").unwrap();
        assert_eq!(table.quoted, "\"globus_app_tokens\"");
        assert_eq!(table.quoted_schema_table, "\"globus_app_tokens_schema\"");
        let qualified = QualifiedTable::parse("run_1.tokens").unwrap();
        assert_eq!(qualified.quoted, "\"run_1\".\"tokens\"");
        assert_eq!(qualified.quoted_schema_table, "\"run_1\".\"tokens_schema\"");
        for bad in [
            "",
            "a.b.c",
            "1abc",
            "a-b",
            "tokens\"; DROP TABLE x; --",
            "a.",
            &"x".repeat(56),
        ] {
            assert!(QualifiedTable::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        // Pinned: every machine, and every version of this library that
        // shares a table, must compute the same key.
        assert_eq!(
            lock_key(&["t", "DEFAULT", "auth.globus.org"]),
            -2_756_847_563_967_208_400
        );
        assert_ne!(lock_key(&["t", "ab", "c"]), lock_key(&["t", "a", "bc"]));
    }

    #[test]
    fn environment_fills_what_the_string_leaves_unset() {
        let vars = |name: &str| match name {
            "PGHOST" => Some("db1".to_owned()),
            "PGPORT" => Some("6543".to_owned()),
            "PGUSER" => Some("alice".to_owned()),
            "PGDATABASE" => Some("tokens".to_owned()),
            _ => None,
        };
        let mut config: postgres::Config = "user=bob".parse().unwrap();
        apply_environment(&mut config, vars);
        assert_eq!(config.get_user(), Some("bob"));
        assert_eq!(config.get_ports(), [6543]);
        assert_eq!(config.get_dbname(), Some("tokens"));
        assert_eq!(config.get_hosts().len(), 1);
        let mut bare: postgres::Config = "".parse().unwrap();
        apply_environment(&mut bare, |_| None);
        assert_eq!(bare.get_hosts().len(), 1);
    }
}
