//! Renewal locks: one holder per resource server in this process, and one
//! per token file across processes.

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use super::StorageError;

/// Per-resource-server locks within one process.
#[derive(Debug, Default)]
pub(crate) struct RenewalLocks {
    held: Mutex<HashSet<String>>,
    released: Condvar,
}

impl RenewalLocks {
    /// Blocks until no one else in this process holds `resource_server`.
    pub(crate) fn lock(self: &Arc<Self>, resource_server: &str) -> InProcessGuard {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        while held.contains(resource_server) {
            held = self
                .released
                .wait(held)
                .unwrap_or_else(PoisonError::into_inner);
        }
        held.insert(resource_server.to_owned());
        InProcessGuard {
            locks: Arc::clone(self),
            resource_server: resource_server.to_owned(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct InProcessGuard {
    locks: Arc<RenewalLocks>,
    resource_server: String,
}

impl Drop for InProcessGuard {
    fn drop(&mut self) {
        let mut held = self
            .locks
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        held.remove(&self.resource_server);
        self.locks.released.notify_all();
    }
}

/// An exclusive advisory lock on a sidecar file, released on drop. The
/// sidecar is never deleted (deleting it would let two processes lock two
/// different files).
#[derive(Debug)]
pub(crate) struct FileLock(File);

impl FileLock {
    pub(crate) fn acquire(path: &Path) -> Result<Self, StorageError> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| StorageError::io("open the lock file", path, e))?;
        file.lock().map_err(|e| StorageError::io("lock", path, e))?;
        Ok(Self(file))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Held while a resource server's token is renewed; dropping it releases
/// the lock (also when an operation is abandoned midway).
#[derive(Debug)]
pub struct RenewalGuard {
    // Field order: the shared lock is released before the in-process one.
    _shared: Option<Box<dyn std::fmt::Debug + Send>>,
    _in_process: InProcessGuard,
}

impl RenewalGuard {
    pub(crate) fn new(in_process: InProcessGuard, file: Option<FileLock>) -> Self {
        Self {
            _shared: file.map(|file| Box::new(file) as Box<dyn std::fmt::Debug + Send>),
            _in_process: in_process,
        }
    }

    /// The in-process lock and a lock shared with other processes or
    /// machines, released when `shared` drops.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn with_holder(
        in_process: InProcessGuard,
        shared: Box<dyn std::fmt::Debug + Send>,
    ) -> Self {
        Self {
            _shared: Some(shared),
            _in_process: in_process,
        }
    }
}
