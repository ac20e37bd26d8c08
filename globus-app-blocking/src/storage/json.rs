//! The JSON token file, shared with the Python SDK.

use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use globus_app_proto::UnixTime;
use globus_app_proto::app::{GlobusApp, TokenSet};
use globus_app_proto::storage::{JsonTokenFile, TokenFileFormat};
use globus_app_proto::token::TokenData;

use super::freshness::Freshness;
use super::locks::{FileLock, RenewalGuard, RenewalLocks, open_regular_file};
use super::{
    MAX_TOKEN_FILE_BYTES, StorageError, TokenStorage, create_private_dir, default_token_file,
};

/// A JSON token file in the Python SDK's format (2.0; 1.0 is read and
/// upgraded on the next write), so Python and Rust tools can share it.
///
/// Every write locks `<file>.lock`, re-reads the file, applies the change
/// and replaces the file atomically with a 0600 temp file from the same
/// directory (fsync, rename, fsync of the directory), removing first the
/// temp files a killed writer may have left; directories it creates are
/// 0700, and a directory other users can write to is refused
/// ([`StorageError::InsecureDirectory`]). The token file, its lock files
/// and its temp file are never opened, replaced or set aside through a
/// symbolic link ([`StorageError::Symlink`]), and a file another user owns
/// is refused ([`StorageError::OwnedByAnotherUser`]): what a link points
/// to is never read, written or renamed. A file it cannot read is reported
/// with its path and never overwritten. Reads are served from memory: without looking at the
/// file for up to a second after the last look (see
/// [`with_recheck_interval`](Self::with_recheck_interval)), then while the
/// file's size, modification time and inode are unchanged. Writes through
/// this storage (or its clones) are seen at once, and a renewal always
/// looks at the file first.
///
/// ```no_run
/// use globus_app_blocking::storage::{JsonTokenStorage, TokenStorage};
/// let storage = JsonTokenStorage::new("/tmp/example/tokens.json", "DEFAULT")?;
/// let tokens = storage.load()?;
/// # Ok::<(), globus_app_blocking::storage::StorageError>(())
/// ```
#[derive(Debug, Clone)]
pub struct JsonTokenStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    write_lock: PathBuf,
    renewal_lock: PathBuf,
    namespace: String,
    cache: Mutex<Option<Cached>>,
    freshness: Freshness,
    renewals: Arc<RenewalLocks>,
    /// Whether the temp files of earlier versions were looked for.
    legacy_temp_files_removed: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
struct Cached {
    identity: FileIdentity,
    tokens: TokenSet,
}

/// What identifies one version of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl FileIdentity {
    fn of(metadata: &fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Self {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            inode,
        }
    }
}

/// The end of this storage's temp files' names.
const TEMP_SUFFIX: &str = ".tmp";

/// The directory holding `path` (`.` for a bare file name).
fn directory_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

impl JsonTokenStorage {
    /// The token file at `path`, namespace `namespace`. Creates the parent
    /// directory (0700) if needed; the file itself appears on the first write.
    pub fn new(
        path: impl Into<PathBuf>,
        namespace: impl Into<String>,
    ) -> Result<Self, StorageError> {
        let path = path.into();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent)?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                write_lock: sidecar(&path, ".lock"),
                renewal_lock: sidecar(&path, ".refresh.lock"),
                path,
                namespace: namespace.into(),
                cache: Mutex::new(None),
                freshness: Freshness::default(),
                legacy_temp_files_removed: std::sync::atomic::AtomicBool::new(false),
                renewals: Arc::default(),
            }),
        })
    }

    /// The app's default token file (shared with a Python app of the same
    /// client id and name), in the app's namespace.
    pub fn for_app(app: &GlobusApp) -> Result<Self, StorageError> {
        Self::new(
            default_token_file(app, TokenFileFormat::Json)?,
            app.config().namespace.clone(),
        )
    }

    /// Lock waits (writes, renewals) last at most `timeout` (default 60 s),
    /// then fail with [`StorageError::LockTimeout`] naming the lock file.
    /// Clones share the setting.
    #[must_use]
    pub fn with_lock_timeout(self, timeout: std::time::Duration) -> Self {
        self.inner.renewals.set_timeout(timeout);
        self
    }

    /// How long a snapshot is served without looking at the file (default
    /// 1 s): changes by other processes (or by other storages of the same
    /// file) are seen within this time, and always before a renewal.
    /// `Duration::ZERO` looks at the file on every load. Clones share the
    /// setting.
    #[must_use]
    pub fn with_recheck_interval(self, interval: std::time::Duration) -> Self {
        self.inner.freshness.set_interval(interval);
        self
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Reads the file: its identity, content and this namespace's records;
    /// `None` if it does not exist.
    fn read(&self) -> Result<Option<(FileIdentity, JsonTokenFile, TokenSet)>, StorageError> {
        let path = &self.inner.path;
        let started = std::time::Instant::now();
        // Never through a link, never waiting on a FIFO planted at the
        // path; only a regular file of this user's.
        let mut file = match open_regular_file(path, File::options().read(true), "open") {
            Ok(file) => file,
            Err(StorageError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        // The identity of the open file matches the bytes read from it, even
        // if the path is replaced meanwhile.
        let metadata = file
            .metadata()
            .map_err(|e| StorageError::io("inspect", path, e))?;
        let too_large = |size| StorageError::TooLarge {
            path: path.clone(),
            size,
            limit: MAX_TOKEN_FILE_BYTES,
        };
        if metadata.len() > MAX_TOKEN_FILE_BYTES {
            return Err(too_large(metadata.len()));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
        // Bounded also if the file grows while it is read.
        (&mut file)
            .take(MAX_TOKEN_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| StorageError::io("read", path, e))?;
        if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
            return Err(too_large(bytes.len() as u64));
        }
        let corrupt = |source| StorageError::Corrupt {
            path: path.clone(),
            source,
        };
        let content = JsonTokenFile::parse(&bytes).map_err(corrupt)?;
        let tokens = TokenSet::new(content.get_all(&self.inner.namespace).map_err(corrupt)?);
        crate::trace::storage(
            "read",
            &path.display(),
            tokens.records().len(),
            started.elapsed(),
        );
        Ok(Some((FileIdentity::of(&metadata), content, tokens)))
    }

    fn current_identity(&self) -> Result<Option<FileIdentity>, StorageError> {
        // The path's own entry: a link swapped in changes it, and the read
        // that follows refuses the link.
        match fs::symlink_metadata(&self.inner.path) {
            Ok(metadata) => Ok(Some(FileIdentity::of(&metadata))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io("inspect", &self.inner.path, e)),
        }
    }

    /// Read, change and replace the file under the write lock.
    fn update(&self, change: impl FnOnce(&mut JsonTokenFile, &str)) -> Result<(), StorageError> {
        let _lock = FileLock::acquire(&self.inner.write_lock, self.inner.renewals.timeout())?;
        let target = self.write_target()?;
        self.remove_legacy_temp_files(&target);
        let mut content = self
            .read()?
            .map_or_else(JsonTokenFile::new, |(_, content, _)| content);
        change(&mut content, &self.inner.namespace);
        let started = std::time::Instant::now();
        self.replace(&target, &content.to_bytes())?;
        crate::trace::storage(
            "write",
            &self.inner.path.display(),
            content.resource_servers(&self.inner.namespace).count(),
            started.elapsed(),
        );
        // Refresh the cache from what is now on disk.
        let mut cache = self.cache();
        let fresh = self
            .read()?
            .map(|(identity, _, tokens)| Cached { identity, tokens });
        self.inner.freshness.replaced();
        *cache = fresh;
        self.inner.freshness.confirm();
        Ok(())
    }

    /// The file a write replaces: the token file itself. A symbolic link
    /// there is [`StorageError::Symlink`]: nothing is written or renamed
    /// through it (a link to another user's file, or to a system file,
    /// stays as it is).
    fn write_target(&self) -> Result<PathBuf, StorageError> {
        let path = &self.inner.path;
        match fs::symlink_metadata(path) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                Err(StorageError::Symlink { path: path.clone() })
            }
            _ => Ok(path.clone()),
        }
    }

    /// The start of this file's temp files' names: `.<file name>.`, so that
    /// token files sharing a directory never touch each other's.
    fn temp_prefix(&self) -> String {
        let name = self
            .inner
            .path
            .file_name()
            .map_or_else(|| "tokens".into(), |n| n.to_string_lossy());
        format!(".{name}.")
    }

    /// The temp file a write goes through: `.<file name>.tmp` beside
    /// `target`. One name is enough: writers hold the write lock while
    /// they use it, so a file found there is a killed writer's, and is
    /// overwritten. A store therefore costs the same however many files
    /// the directory holds.
    fn temp_path(&self, target: &Path) -> PathBuf {
        directory_of(target).join(format!("{}tmp", self.temp_prefix()))
    }

    /// Removes, once per storage, the temp files of earlier versions of
    /// this library (`.<file name>.<random>.tmp`), which a killed writer
    /// may have left: each is a full copy of the tokens. Under the write
    /// lock, where no writer of this file can be midway.
    fn remove_legacy_temp_files(&self, target: &Path) {
        if self
            .inner
            .legacy_temp_files_removed
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        let prefix = self.temp_prefix();
        let Ok(entries) = fs::read_dir(directory_of(target)) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(TEMP_SUFFIX) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Replaces `path` (the write target) atomically with the temp file
    /// from its directory: written, synced, renamed over it, and the
    /// directory synced. The temp file is never followed through a link,
    /// and is private (0600) whatever it was.
    fn replace(&self, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
        let temp = self.temp_path(path);
        let mut options = File::options();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let written = (|| {
            let mut file = open_regular_file(&temp, &mut options, "create the temp file")?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                file.set_permissions(fs::Permissions::from_mode(0o600))
                    .map_err(|e| StorageError::io("protect", &temp, e))?;
            }
            file.write_all(bytes)
                .map_err(|e| StorageError::io("write", &temp, e))?;
            file.sync_all()
                .map_err(|e| StorageError::io("sync", &temp, e))?;
            fs::rename(&temp, path).map_err(|e| StorageError::io("replace", path, e))
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written?;
        #[cfg(unix)]
        {
            let dir = directory_of(path);
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| StorageError::io("sync the directory", dir, e))?;
        }
        Ok(())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        self.inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl TokenStorage for JsonTokenStorage {
    fn load_cached(&self) -> Option<TokenSet> {
        if !self.inner.freshness.is_fresh() {
            return None;
        }
        self.cache().as_ref().map(|cached| cached.tokens.clone())
    }

    fn load(&self) -> Result<TokenSet, StorageError> {
        if let Some(tokens) = self.load_cached() {
            return Ok(tokens);
        }
        let freshness = &self.inner.freshness;
        let mut cache = self.cache();
        // Looked at and cached under the cache lock, so that an older
        // snapshot never replaces a newer one.
        let Some(identity) = self.current_identity()? else {
            if cache.is_some() {
                freshness.replaced();
                *cache = None;
            }
            freshness.confirm();
            return Ok(TokenSet::default());
        };
        if let Some(cached) = cache.as_ref().filter(|c| c.identity == identity) {
            freshness.confirm();
            return Ok(cached.tokens.clone());
        }
        freshness.replaced();
        let Some((identity, _, tokens)) = self.read()? else {
            *cache = None;
            return Ok(TokenSet::default());
        };
        *cache = Some(Cached {
            identity,
            tokens: tokens.clone(),
        });
        freshness.confirm();
        Ok(tokens)
    }

    fn snapshot_version(&self, now: std::time::Instant) -> Option<u64> {
        self.inner.freshness.fresh_version(now)
    }

    fn store(&self, records: &[TokenData]) -> Result<(), StorageError> {
        self.update(|content, namespace| content.store(namespace, records))
    }

    fn remove(&self, resource_servers: &[String]) -> Result<(), StorageError> {
        self.update(|content, namespace| {
            for rs in resource_servers {
                content.remove(namespace, rs);
            }
        })
    }

    /// Under the write lock, if the file is still unreadable: renames it to
    /// `<file>.unreadable-<UTC time>` beside it (never replacing a file).
    fn set_aside_unreadable(&self) -> Result<Option<PathBuf>, StorageError> {
        let _lock = FileLock::acquire(&self.inner.write_lock, self.inner.renewals.timeout())?;
        match self.read() {
            Err(e) if e.is_unreadable() => {}
            Ok(_) => return Ok(None),
            Err(e) => return Err(e),
        }
        // Only the token file itself is set aside, never through a link.
        let path = &self.write_target()?;
        let stamp: String = UnixTime::from(SystemTime::now())
            .to_string()
            .chars()
            .filter(|c| !matches!(c, '-' | ':'))
            .collect();
        let mut aside = sidecar(path, &format!(".unreadable-{stamp}"));
        for n in 2.. {
            if !aside.exists() {
                break;
            }
            aside = sidecar(path, &format!(".unreadable-{stamp}-{n}"));
        }
        fs::rename(path, &aside).map_err(|e| StorageError::io("set aside", path, e))?;
        self.inner.freshness.replaced();
        *self.cache() = None;
        self.inner.freshness.expire();
        crate::trace::set_aside(&path.display(), &aside.display());
        Ok(Some(aside))
    }

    fn wait_for_renewal(&self, resource_server: &str) -> Result<(), StorageError> {
        self.inner.renewals.lock(resource_server).map(drop)
    }

    fn lock_renewal(&self, resource_server: &str) -> Result<RenewalGuard, StorageError> {
        let guard = RenewalGuard::of_file(
            &self.inner.renewals,
            resource_server,
            &self.inner.renewal_lock,
        )?;
        // The reload under the lock looks at the file: another process
        // may have renewed.
        self.inner.freshness.expire();
        Ok(guard)
    }

    fn try_lock_renewal(
        &self,
        resource_server: &str,
    ) -> Result<Option<RenewalGuard>, StorageError> {
        let guard = RenewalGuard::try_of_file(
            &self.inner.renewals,
            resource_server,
            &self.inner.renewal_lock,
        )?;
        if guard.is_some() {
            self.inner.freshness.expire();
        }
        Ok(guard)
    }
}
