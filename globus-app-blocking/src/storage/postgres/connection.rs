//! The connection pool, how PostgreSQL's errors are classified, a
//! statement run again once on a fresh connection when its connection
//! turned out dead, and running the client's blocking calls off an
//! executor's thread.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use r2d2_postgres::PostgresConnectionManager;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{Inner, PostgresTokenStorage, StorageError};

pub(super) type Manager = PostgresConnectionManager<MakeRustlsConnect>;
pub(super) type Pool = r2d2::Pool<Manager>;
pub(super) type Connection = r2d2::PooledConnection<Manager>;

/// The pool's last failure to open a connection, kept so that a checkout
/// that timed out reports PostgreSQL's own reason (r2d2 keeps only its
/// text) and a certificate that did not verify is told apart.
#[derive(Debug, Default)]
pub(super) struct LastConnectError(Mutex<Option<postgres::Error>>);

impl LastConnectError {
    fn take(&self) -> Option<postgres::Error> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Hands the pool's connection errors to [`LastConnectError`].
#[derive(Debug)]
pub(super) struct RecordConnectErrors(pub(super) Arc<LastConnectError>);

impl r2d2::HandleError<postgres::Error> for RecordConnectErrors {
    fn handle_error(&self, error: postgres::Error) {
        *self.0.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
    }
}

/// A failed attempt to open a connection, classified: a certificate that
/// did not verify is [`StorageError::TlsVerification`]; a server out of
/// connections (`too many clients already`) is
/// [`StorageError::PoolExhausted`] with its reason; other refusals are
/// classified as statements' errors (a wrong password or database is not
/// retryable); the rest is [`StorageError::Unavailable`].
pub(super) fn connect_failed(
    error: postgres::Error,
    pool_size: u32,
    waited: Duration,
) -> StorageError {
    if super::tls::is_certificate_error(&error) {
        return StorageError::TlsVerification {
            source: Box::new(error),
        };
    }
    if super::tls::is_tls_not_offered(&error) {
        return StorageError::TlsNotOffered {
            source: Box::new(error),
        };
    }
    match error.as_db_error() {
        Some(db) if db.code().code().starts_with("53") => StorageError::PoolExhausted {
            pool_size,
            waited,
            reason: db.message().to_owned(),
        },
        Some(_) => classify(error, "the connection"),
        None => unavailable(error),
    }
}

impl PostgresTokenStorage {
    /// A pooled connection. A checkout that timed out says why: the
    /// server's refusal (`too many clients`, a certificate) if opening a
    /// connection failed meanwhile, else that all were in use.
    pub(super) fn connection(&self) -> Result<Connection, StorageError> {
        let inner = &self.inner;
        let Some(pool) = &inner.pool else {
            unreachable!("the pool is taken only when the storage drops")
        };
        pool.get()
            .map_err(|timed_out| match inner.last_connect_error.take() {
                Some(error) => connect_failed(error, pool.max_size(), inner.connect_timeout),
                None => StorageError::PoolExhausted {
                    pool_size: pool.max_size(),
                    waited: inner.connect_timeout,
                    reason: format!("all connections were in use ({timed_out})"),
                },
            })
    }

    /// Runs `statement` on a pooled connection; when the connection turns
    /// out dead (terminated by the server, an idle-session timeout, a
    /// failover, a proxy reset), again on another, until one is alive:
    /// every pooled connection may have died at once, so at most
    /// `pool_size + 1` times. Statements given here must be safe to run
    /// twice. `what` names the object in errors.
    pub(super) fn run<T>(
        &self,
        what: &str,
        statement: impl Fn(&mut Connection) -> Result<T, postgres::Error>,
    ) -> Result<T, StorageError> {
        if on_async_runtime() {
            return Err(StorageError::OnAsyncRuntime);
        }
        let attempts = self.inner.pool.as_ref().map_or(1, r2d2::Pool::max_size) + 1;
        let mut attempt = 1;
        loop {
            let mut connection = self.connection()?;
            match statement(&mut connection) {
                Ok(value) => return Ok(value),
                Err(error)
                    if attempt < attempts
                        && (connection.is_closed() || is_dead_session(&error)) =>
                {
                    // The pool discards a closed connection when it comes
                    // back.
                    attempt += 1;
                }
                Err(error) => return Err(classify(error, what)),
            }
        }
    }
}

/// The server ended the session: terminated (57P01), idle-session timeout
/// (57P05), or a connection failure (08xxx).
fn is_dead_session(error: &postgres::Error) -> bool {
    error
        .code()
        .map(postgres::error::SqlState::code)
        .is_some_and(|code| code == "57P01" || code == "57P05" || code.starts_with("08"))
}

/// A failure to reach or use the server: retryable.
pub(super) fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> StorageError {
    StorageError::Unavailable {
        source: Box::new(error),
    }
}

/// PostgreSQL's error, classified: connection trouble and server shutdown
/// are [`StorageError::Unavailable`]; a lock wait that ran out is
/// [`StorageError::LockTimeout`]; anything else is [`StorageError::Postgres`].
pub(super) fn classify(error: postgres::Error, lock: &str) -> StorageError {
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

/// Whether this thread runs an async runtime (tokio's: the postgres client
/// blocks on a tokio runtime of its own, which panics inside another).
pub(super) fn on_async_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

/// Runs `job` on a thread of its own: the postgres client blocks on its
/// own runtime, which must not happen on an async executor's thread (it
/// panics on tokio's), and a drop may run on one. Inline if no thread can
/// be started.
pub(super) fn off_this_thread(job: impl FnOnce() + Send + 'static) {
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
