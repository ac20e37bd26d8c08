//! Renewal locks: one holder per resource server in this process, and one
//! per token file across processes.

use std::collections::HashSet;
use std::fs::{File, TryLockError};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::StorageError;

/// How long a storage waits for a lock by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Per-resource-server locks within one process, and how long a storage's
/// lock waits may last (shared by the storage's clones).
#[derive(Debug)]
pub(crate) struct RenewalLocks {
    held: Mutex<HashSet<String>>,
    released: Condvar,
    timeout_ms: AtomicU64,
}

impl Default for RenewalLocks {
    fn default() -> Self {
        Self {
            held: Mutex::default(),
            released: Condvar::new(),
            timeout_ms: AtomicU64::new(millis(DEFAULT_LOCK_TIMEOUT)),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl RenewalLocks {
    /// How long lock waits may last.
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn set_timeout(&self, timeout: Duration) {
        self.timeout_ms.store(millis(timeout), Ordering::Relaxed);
    }

    /// Waits until no one else in this process holds `resource_server`, for
    /// at most the timeout.
    pub(crate) fn lock(
        self: &Arc<Self>,
        resource_server: &str,
    ) -> Result<InProcessGuard, StorageError> {
        let deadline = crate::adapter::instant_after(self.timeout());
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        while held.contains(resource_server) {
            let now = Instant::now();
            if now >= deadline {
                return Err(StorageError::LockTimeout {
                    lock: format!("in-process renewal lock of {resource_server}"),
                });
            }
            held = self
                .released
                .wait_timeout(held, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        held.insert(resource_server.to_owned());
        Ok(InProcessGuard {
            locks: Arc::clone(self),
            resource_server: resource_server.to_owned(),
        })
    }

    /// Takes `resource_server` if no one else in this process holds it;
    /// `None` at once if someone does.
    pub(crate) fn try_lock(self: &Arc<Self>, resource_server: &str) -> Option<InProcessGuard> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if !held.insert(resource_server.to_owned()) {
            return None;
        }
        Some(InProcessGuard {
            locks: Arc::clone(self),
            resource_server: resource_server.to_owned(),
        })
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
    /// Locks `path`, waiting at most `timeout` for another holder (polling
    /// with a growing pause of at most 50 ms).
    /// Takes the lock if no one holds it; `None` at once if someone does.
    pub(crate) fn try_acquire(path: &Path) -> Result<Option<Self>, StorageError> {
        let file = open_no_follow(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self(file))),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(StorageError::io("lock", path, e)),
        }
    }

    pub(crate) fn acquire(path: &Path, timeout: Duration) -> Result<Self, StorageError> {
        let file = open_no_follow(path)?;
        let deadline = crate::adapter::instant_after(timeout);
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self(file)),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(StorageError::io("lock", path, e)),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StorageError::LockTimeout {
                    lock: path.display().to_string(),
                });
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

/// Opens (creating, 0600) a lock file: see [`open_regular_file`].
fn open_no_follow(path: &Path) -> Result<File, StorageError> {
    let mut options = File::options();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    open_regular_file(path, &mut options, "open the lock file")
}

/// Opens `path` as `options` say, the way every token, temp and lock file
/// is opened:
/// - never through a symbolic link (`O_NOFOLLOW` on Unix; elsewhere the
///   path is looked at first): a link is [`StorageError::Symlink`];
/// - without waiting on what is not a regular file (`O_NONBLOCK`: opening
///   a FIFO would otherwise block until another process opens its other
///   end), then refusing it: [`StorageError::NotARegularFile`];
/// - refusing a file another user owns ([`StorageError::OwnedByAnotherUser`]),
///   judged on what was opened, not on the path, so nothing swapped in
///   between is used.
pub(crate) fn open_regular_file(
    path: &Path,
    options: &mut std::fs::OpenOptions,
    action: &'static str,
) -> Result<File, StorageError> {
    let not_regular = || StorageError::NotARegularFile {
        path: path.to_owned(),
    };
    let symlink = || StorageError::Symlink {
        path: path.to_owned(),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    }
    #[cfg(not(unix))]
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(symlink());
    }
    let file = options.open(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return symlink();
        }
        let elsewhere = std::fs::symlink_metadata(path)
            .is_ok_and(|m| !m.file_type().is_file() && !m.file_type().is_symlink());
        if elsewhere {
            not_regular()
        } else {
            StorageError::io(action, path, e)
        }
    })?;
    let metadata = file
        .metadata()
        .map_err(|e| StorageError::io(action, path, e))?;
    if !metadata.file_type().is_file() {
        return Err(not_regular());
    }
    check_owner(path, &metadata)?;
    Ok(file)
}

/// Checks a SQLite database's path before SQLite opens it: not a symbolic
/// link, a regular file (if it exists), this user's.
#[cfg(feature = "sqlite")]
pub(crate) fn check_database_path(path: &Path) -> Result<(), StorageError> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => Err(StorageError::Symlink {
            path: path.to_owned(),
        }),
        Ok(metadata) if !metadata.file_type().is_file() => Err(StorageError::NotARegularFile {
            path: path.to_owned(),
        }),
        Ok(metadata) => check_owner(path, &metadata),
        Err(_) => Ok(()),
    }
}

/// Refuses a file owned by another user than this process's (effective)
/// one: [`StorageError::OwnedByAnotherUser`].
pub(crate) fn check_owner(path: &Path, metadata: &std::fs::Metadata) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        let owner = std::os::unix::fs::MetadataExt::uid(metadata);
        if owner != rustix::process::geteuid().as_raw() {
            return Err(StorageError::OwnedByAnotherUser {
                path: path.to_owned(),
                owner,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, metadata);
    Ok(())
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Held while a resource server's token is renewed; dropping it releases
/// the lock (also when an operation is abandoned midway).
/// [`release`](Self::release) releases it on the calling thread and
/// returns when it is released.
#[derive(Debug)]
pub struct RenewalGuard {
    // Field order: the shared lock is released before the in-process one.
    shared: Option<Box<dyn SharedRenewalLock>>,
    _in_process: InProcessGuard,
}

/// A renewal lock shared with other processes or machines.
pub(crate) trait SharedRenewalLock: std::fmt::Debug + Send + Sync {
    /// Releases it on this thread, before returning. (Dropping it without
    /// this may release it later, off the dropping thread.)
    fn release(self: Box<Self>);
}

impl SharedRenewalLock for FileLock {
    fn release(self: Box<Self>) {}
}

impl RenewalGuard {
    pub(crate) fn new(in_process: InProcessGuard, file: Option<FileLock>) -> Self {
        Self {
            shared: file.map(|file| Box::new(file) as Box<dyn SharedRenewalLock>),
            _in_process: in_process,
        }
    }

    /// The renewal lock of a storage kept in a file: this process's lock
    /// of `resource_server`, then the lock file `path`, each waited for up
    /// to `renewals`' timeout.
    pub(crate) fn of_file(
        renewals: &Arc<RenewalLocks>,
        resource_server: &str,
        path: &Path,
    ) -> Result<Self, StorageError> {
        let in_process = renewals.lock(resource_server)?;
        let file = FileLock::acquire(path, renewals.timeout())?;
        Ok(Self::new(in_process, Some(file)))
    }

    /// [`of_file`](Self::of_file) without waiting: `None` at once if
    /// either lock is held.
    pub(crate) fn try_of_file(
        renewals: &Arc<RenewalLocks>,
        resource_server: &str,
        path: &Path,
    ) -> Result<Option<Self>, StorageError> {
        let Some(in_process) = renewals.try_lock(resource_server) else {
            return Ok(None);
        };
        let file = FileLock::try_acquire(path)?;
        Ok(file.map(|file| Self::new(in_process, Some(file))))
    }

    /// The in-process lock and a lock shared with other processes or
    /// machines.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn with_holder(
        in_process: InProcessGuard,
        shared: Box<dyn SharedRenewalLock>,
    ) -> Self {
        Self {
            shared: Some(shared),
            _in_process: in_process,
        }
    }

    /// Releases the lock now, on this thread: a lock another machine
    /// waits for (PostgreSQL's lease) is free when this returns, even if
    /// the process exits next. It may block for a round trip to the shared
    /// store: async callers run it on a blocking pool.
    pub fn release(mut self) {
        if let Some(shared) = self.shared.take() {
            shared.release();
        }
    }
}
