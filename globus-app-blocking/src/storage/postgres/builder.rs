//! [`PostgresTokenStorageBuilder`]: the storage's configuration, with the
//! `PG*` environment variables filling what the connection string leaves
//! unset.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use globus_app_proto::storage::sealing::SealingKeys;
use r2d2::ManageConnection as _;
use r2d2_postgres::PostgresConnectionManager;

use super::connection::{LastConnectError, RecordConnectErrors, connect_failed};
use super::schema::QualifiedTable;
use super::tls::{connector, take_tls_settings};
use super::{Freshness, Inner, PostgresTokenStorage, RenewalLocks, StorageError, StoreFailureHook};

impl PostgresTokenStorage {
    /// Starts building a storage on the database named by `connection`, a
    /// libpq-style string (`host=... user=... dbname=... sslmode=...` or a
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
            lease_duration: Duration::from_secs(10),
            lease_heartbeat: true,
            max_staleness: Duration::from_secs(5),
            on_failure: None,
        }
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
    lease_duration: Duration,
    lease_heartbeat: bool,
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

    /// The most connections this storage opens (default 8, at least 1).
    /// Every call uses one at a time and none is held across a renewal, so
    /// the pool bounds how many of this process's threads talk to
    /// PostgreSQL at once; a fleet opens up to `machines × pool_size`
    /// connections (one per machine stays open when idle).
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long to wait for a connection, to open one or to have one from
    /// the pool (default 5 s); then [`StorageError::PoolExhausted`] or
    /// [`StorageError::Unavailable`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long to wait for another machine's renewal lease before
    /// [`StorageError::LockTimeout`] (default 60 s).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// How long a renewal lease lasts past its holder's last sign of life
    /// (default 10 s, at least 1 s): the longest a dead holder keeps the
    /// fleet from renewing. A live holder extends it every quarter of it
    /// while it holds it (the heartbeat), so a grant slower than the lease
    /// does not let a second machine send one. See [`PostgresTokenStorage`]
    /// for the guarantee.
    pub fn lease_duration(mut self, duration: Duration) -> Self {
        self.lease_duration = duration.max(Duration::from_secs(1));
        self
    }

    /// Whether a holder extends its lease while it holds it (default
    /// `true`). Without the heartbeat, a lease lasts `lease_duration` from
    /// when it was taken, as in earlier releases: keep it above the longest
    /// renewal (a Globus Auth request times out after 60 s), or a slow
    /// grant lets a second machine send one.
    pub fn lease_heartbeat(mut self, heartbeat: bool) -> Self {
        self.lease_heartbeat = heartbeat;
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

    /// Checks the settings, connects, creates the tables if needed (`CREATE
    /// TABLE IF NOT EXISTS`, under an advisory lock so that many machines
    /// starting at once do not race) and checks their schema version.
    ///
    /// Errors: an empty namespace, or one with a NUL (PostgreSQL cannot
    /// store it), is [`StorageError::InvalidNamespace`]; a bad connection
    /// string or `sslmode` is [`StorageError::InvalidConnectionString`]; a
    /// server that cannot be reached is [`StorageError::Unavailable`], one
    /// whose certificate does not verify [`StorageError::TlsVerification`].
    ///
    /// Safe to call anywhere: on an async runtime's thread (where the
    /// postgres client cannot block) it connects from a thread of its own
    /// and waits for it. In async code, prefer `globus_app_async`'s
    /// `AsyncPostgresTokenStorage::build`, which does not block the
    /// executor.
    pub fn build(self) -> Result<PostgresTokenStorage, StorageError> {
        if !super::connection::on_async_runtime() {
            return self.build_here();
        }
        std::thread::scope(|scope| {
            scope
                .spawn(|| self.build_here())
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    fn build_here(self) -> Result<PostgresTokenStorage, StorageError> {
        if self.namespace.is_empty() || self.namespace.contains('\0') {
            return Err(StorageError::InvalidNamespace);
        }
        let table = QualifiedTable::parse(&self.table)?;
        let lookup = |name: &str| std::env::var(name).ok();
        let (connection, tls) = take_tls_settings(&self.connection, lookup)?;
        let mut config: postgres::Config =
            connection
                .parse()
                .map_err(|e| StorageError::InvalidConnectionString {
                    source: Box::new(e),
                })?;
        apply_environment(&mut config, lookup);
        config.connect_timeout(self.connect_timeout);
        config.ssl_mode(tls.mode.negotiation());
        if config.get_application_name().is_none() {
            config.application_name("globus-app");
        }
        let manager = PostgresConnectionManager::new(config, connector(&tls)?);
        // The first connection, opened here, gives a typed error (the
        // pool keeps only a text).
        let first = manager
            .connect()
            .map_err(|e| connect_failed(e, self.pool_size, self.connect_timeout))?;
        let last_connect_error = Arc::new(LastConnectError::default());
        let pool = r2d2::Pool::builder()
            .max_size(self.pool_size)
            .min_idle(Some(1))
            .connection_timeout(self.connect_timeout)
            // No validity query before each use (it would double every round
            // trip): a statement whose connection died runs again on a fresh
            // one, and the pool drops the dead one when it comes back.
            .test_on_check_out(false)
            .error_handler(Box::new(RecordConnectErrors(Arc::clone(
                &last_connect_error,
            ))))
            .build_unchecked(manager);
        drop(first);
        let storage = PostgresTokenStorage {
            inner: Arc::new(Inner {
                pool: Some(pool),
                table,
                namespace: self.namespace,
                keys: self.keys,
                lock_timeout: self.lock_timeout,
                lease_duration: self.lease_duration,
                lease_heartbeat: self.lease_heartbeat,
                connect_timeout: self.connect_timeout,
                last_connect_error,
                leases: Mutex::new(HashMap::new()),
                last_read: Mutex::new(HashMap::new()),
                legacy_lock: std::sync::atomic::AtomicBool::new(false),
                unreachable: std::sync::atomic::AtomicBool::new(false),
                cache: RwLock::new(None),
                freshness: {
                    let freshness = Freshness::default();
                    freshness.set_interval(self.max_staleness);
                    freshness
                },
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

#[cfg(test)]
mod tests {
    use super::*;

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
