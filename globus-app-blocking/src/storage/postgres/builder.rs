//! [`PostgresTokenStorageBuilder`]: the storage's configuration, with the
//! `PG*` environment variables filling what the connection string leaves
//! unset.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use globus_app_proto::storage::sealing::SealingKeys;
use r2d2_postgres::PostgresConnectionManager;

use super::connection::unavailable;
use super::schema::QualifiedTable;
use super::{Freshness, Inner, PostgresTokenStorage, RenewalLocks, StorageError, StoreFailureHook};

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
            .build(PostgresConnectionManager::new(config, postgres::NoTls))
            .map_err(unavailable)?;
        let storage = PostgresTokenStorage {
            inner: Arc::new(Inner {
                pool: Some(pool),
                table,
                namespace: self.namespace,
                keys: self.keys,
                lock_timeout: self.lock_timeout,
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
