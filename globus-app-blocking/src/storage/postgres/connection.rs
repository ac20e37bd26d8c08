//! The connection pool, how PostgreSQL's errors are classified, and
//! running the client's blocking calls off an executor's thread.

use std::sync::{Arc, PoisonError};

use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;

use super::{Inner, StorageError};

pub(super) type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;
pub(super) type Connection = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

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
