//! Token storages: file safety, caching, SQLite schema handling (the
//! interchange with the Python SDK is in the tests crate's
//! `python_token_files.rs`, which runs the reference).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::TempDir;
use common::contract::{self, record};
#[cfg(feature = "sqlite")]
use globus_app_blocking::storage::SqliteTokenStorage;
use globus_app_blocking::storage::{
    JsonTokenStorage, MemoryTokenStorage, StorageError, TokenStorage,
};

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The storage contract (`common::contract`) on every file and memory
/// storage; the PostgreSQL one runs it in `postgres.rs`.
#[test]
fn every_storage_keeps_the_contract() {
    let dir = TempDir::new("contract");
    let json = dir.0.join("tokens.json");
    let memory = MemoryTokenStorage::new();
    let json_in = |namespace: &str| JsonTokenStorage::new(&json, namespace).unwrap();

    contract::round_trip(&memory);
    contract::round_trip(&json_in("DEFAULT"));
    contract::namespaces_are_isolated(&json_in("one"), &json_in("two"));
    contract::sees_the_other_writer_under_the_lock(&memory, &memory.clone());
    contract::sees_the_other_writer_under_the_lock(&json_in("w"), &json_in("w"));
    contract::renewal_lock_is_exclusive(&memory, &memory.clone());
    contract::renewal_lock_is_exclusive(&json_in("l"), &json_in("l"));
    contract::try_lock_renewal_never_waits(&memory, &memory.clone());
    contract::try_lock_renewal_never_waits(&json_in("t"), &json_in("t"));
}

#[test]
#[cfg(feature = "sqlite")]
fn the_sqlite_storage_keeps_the_contract() {
    let dir = TempDir::new("contract-sqlite");
    let db = dir.0.join("tokens.db");
    let sqlite_in = |namespace: &str| SqliteTokenStorage::new(&db, namespace).unwrap();
    contract::round_trip(&sqlite_in("DEFAULT"));
    contract::namespaces_are_isolated(&sqlite_in("one"), &sqlite_in("two"));
    assert_eq!(
        sqlite_in("x").namespaces().unwrap(),
        ["DEFAULT", "one", "two"]
    );
    contract::sees_the_other_writer_under_the_lock(&sqlite_in("w"), &sqlite_in("w"));
    contract::renewal_lock_is_exclusive(&sqlite_in("l"), &sqlite_in("l"));
    contract::try_lock_renewal_never_waits(&sqlite_in("t"), &sqlite_in("t"));
}

#[test]
fn a_corrupt_file_is_reported_with_its_path_and_never_overwritten() {
    let dir = TempDir::new("corrupt");
    let path = dir.0.join("tokens.json");
    std::fs::write(&path, b"{\"data\": {\"DEFAULT\": ").unwrap();
    let storage = JsonTokenStorage::new(&path, "DEFAULT").unwrap();
    let err = storage.load().unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
    assert!(storage.store(&[record("rs", "SECRET")]).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"{\"data\": {\"DEFAULT\": ");
    assert!(
        !storage
            .store(&[record("rs", "SECRET")])
            .unwrap_err()
            .to_string()
            .contains("SECRET")
    );
}

#[cfg(unix)]
#[test]
fn a_loose_existing_file_is_tightened_on_write_and_directories_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new("perms");
    let path = dir.0.join("deep").join("er").join("tokens.json");
    let storage = JsonTokenStorage::new(&path, "DEFAULT").unwrap();
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(path.parent().unwrap().parent().unwrap()), 0o700);
    std::fs::write(
        &path,
        br#"{"data": {}, "format_version": "2.0", "globus-sdk.version": "4.10.0"}"#,
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    storage.store(&[record("rs", "A")]).unwrap();
    assert_eq!(mode(&path), 0o600);
    #[cfg(feature = "sqlite")]
    {
        let db = dir.0.join("tokens.db");
        SqliteTokenStorage::new(&db, "DEFAULT").unwrap();
        assert_eq!(mode(&db), 0o600);
    }
}

/// Two storages on one file (two processes, as far as each can tell): a
/// write by the second is not looked for during the first's recheck
/// interval (its warm loads touch no file), is seen once the interval has
/// passed, and at once after a renewal lock.
fn sees_the_other_writer(open: impl Fn(Duration) -> Box<dyn TokenStorage>) {
    let token = |storage: &dyn TokenStorage| {
        storage
            .load()
            .unwrap()
            .get("rs")
            .unwrap()
            .access_token
            .secret()
            .to_owned()
    };
    let interval = Duration::from_millis(300);
    let (ours, theirs) = (open(interval), open(interval));
    ours.store(&[record("rs", "A")]).unwrap();
    assert_eq!(token(&*ours), "A");
    theirs.store(&[record("rs", "B")]).unwrap();
    let written = Instant::now();
    let seen = token(&*ours);
    if written.elapsed() < interval {
        assert_eq!(seen, "A", "served from memory within the interval");
    }
    std::thread::sleep(interval);
    assert_eq!(token(&*ours), "B", "seen after the interval");

    theirs.store(&[record("rs", "C")]).unwrap();
    drop(ours.lock_renewal("rs").unwrap());
    assert_eq!(token(&*ours), "C", "a renewal looks at the file first");

    let always = open(Duration::ZERO);
    assert_eq!(token(&*always), "C");
    theirs.store(&[record("rs", "D")]).unwrap();
    assert_eq!(token(&*always), "D", "a zero interval looks every time");
}

#[test]
fn changes_by_another_writer_are_seen_after_the_recheck_interval() {
    let dir = TempDir::new("external");
    let json = dir.0.join("tokens.json");
    sees_the_other_writer(|interval| {
        Box::new(
            JsonTokenStorage::new(&json, "DEFAULT")
                .unwrap()
                .with_recheck_interval(interval),
        )
    });
    #[cfg(feature = "sqlite")]
    {
        let db = dir.0.join("tokens.db");
        sees_the_other_writer(|interval| {
            Box::new(
                SqliteTokenStorage::new(&db, "DEFAULT")
                    .unwrap()
                    .with_recheck_interval(interval),
            )
        });
    }
}

#[test]
#[cfg(feature = "sqlite")]
fn sqlite_schema_is_created_checked_and_memory_is_refused() {
    let dir = TempDir::new("schema");
    let empty = dir.0.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let storage = SqliteTokenStorage::new(&empty, "DEFAULT").unwrap();
    contract::round_trip(&storage);
    assert!(matches!(
        SqliteTokenStorage::new(":memory:", "DEFAULT"),
        Err(StorageError::MemoryDatabase)
    ));
    let future = dir.0.join("future.db");
    drop(SqliteTokenStorage::new(&future, "DEFAULT").unwrap());
    let connection = rusqlite::Connection::open(&future).unwrap();
    connection
        .execute("UPDATE sdk_storage_adapter_internal SET value = '3' WHERE attribute = 'globus-sdk.database_schema_version'", [])
        .unwrap();
    drop(connection);
    assert!(matches!(
        SqliteTokenStorage::new(&future, "DEFAULT"),
        Err(StorageError::UnsupportedSchema { version: Some(v), .. }) if v == "3"
    ));
}

#[test]
fn lock_waits_time_out_with_an_error_naming_the_lock() {
    use std::time::{Duration, Instant};
    let dir = TempDir::new("lock-timeout");
    let path = dir.0.join("tokens.json");
    let holder = JsonTokenStorage::new(&path, "DEFAULT").unwrap();
    let waiter = JsonTokenStorage::new(&path, "DEFAULT")
        .unwrap()
        .with_lock_timeout(Duration::from_millis(200));

    // Another holder of the renewal lock file (a second handle stands in
    // for another process).
    let guard = holder.lock_renewal("rs").unwrap();
    let started = Instant::now();
    let error = waiter.lock_renewal("rs").unwrap_err();
    assert!(started.elapsed() < common::stuck_after(Duration::from_millis(200)));
    assert!(
        matches!(&error, StorageError::LockTimeout { lock } if lock.ends_with("tokens.json.refresh.lock")),
        "{error:?}"
    );
    assert!(error.is_retryable());
    assert!(
        error.to_string().contains("tokens.json.refresh.lock"),
        "{error}"
    );
    // The same handle in another thread: the in-process lock times out.
    let clone = holder.clone().with_lock_timeout(Duration::from_millis(200));
    let in_process = std::thread::spawn(move || clone.lock_renewal("rs").map(drop))
        .join()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&in_process, StorageError::LockTimeout { lock } if lock.contains("in-process")),
        "{in_process:?}"
    );
    drop(guard);
    waiter.lock_renewal("rs").unwrap();

    // The write lock, held by someone else: a store times out, unwritten.
    let write_lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.0.join("tokens.json.lock"))
        .unwrap();
    write_lock.lock().unwrap();
    let error = waiter.store(&[record("rs", "A")]).unwrap_err();
    assert!(
        matches!(&error, StorageError::LockTimeout { lock } if lock.ends_with("tokens.json.lock")),
        "{error:?}"
    );
    write_lock.unlock().unwrap();
    waiter.store(&[record("rs", "A")]).unwrap();
}

/// The temp files of the token file `name` in `dir`.
fn temp_files(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with(&format!(".{name}."))
                && Path::new(n).extension().is_some_and(|e| e == "tmp")
        })
        .collect()
}

#[test]
fn stale_temp_files_are_removed_by_the_next_store_and_by_a_removal() {
    let dir = TempDir::new("temp-residue");
    let storage = JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT").unwrap();
    let stale = dir.0.join(".tokens.json.k1ll3d.tmp");
    let other = dir.0.join(".sandbox-tokens.json.w0rk1n.tmp");
    for path in [&stale, &other] {
        std::fs::write(path, b"{\"a full copy\": \"SECRET\"}").unwrap();
    }
    storage.store(&[record("rs", "A")]).unwrap();
    assert!(!stale.exists(), "the stale copy is gone");
    assert!(
        other.exists(),
        "another token file's temp file is not touched"
    );
    // A writer of this version killed midway leaves the one temp name a
    // write goes through: the next write (here, a removal) replaces it.
    let killed = dir.0.join(".tokens.json.tmp");
    std::fs::write(&killed, b"again").unwrap();
    storage.remove(&["rs".to_owned()]).unwrap();
    assert!(!killed.exists());
    assert_eq!(temp_files(&dir.0, "tokens.json"), Vec::<String>::new());
}

/// Run as a child process: store tokens in a loop until killed (at most
/// ten seconds).
#[test]
fn writer_child_entry() {
    let Ok(path) = std::env::var("GLOBUS_APP_TEST_WRITER_FILE") else {
        return; // Not a child: nothing to do.
    };
    let storage = JsonTokenStorage::new(&path, "DEFAULT").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut round = 0u64;
    while std::time::Instant::now() < deadline {
        round += 1;
        storage
            .store(&[record("rs", &format!("T{round}"))])
            .unwrap();
    }
}

#[cfg(unix)]
#[test]
fn writers_killed_at_random_points_leave_no_residue_after_one_more_store() {
    use std::process::{Command, Stdio};
    let dir = TempDir::new("killed-writers");
    let path = dir.0.join("tokens.json");
    let storage = JsonTokenStorage::new(&path, "DEFAULT").unwrap();
    storage.store(&[record("rs", "first")]).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut residue_seen = 0;
    for _ in 0..200 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "writer_child_entry", "--test-threads=1"])
            .env("GLOBUS_APP_TEST_WRITER_FILE", &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // xorshift: a different point in the write each time.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_micros(2_000 + seed % 20_000));
        child.kill().unwrap();
        child.wait().unwrap();
        residue_seen += temp_files(&dir.0, "tokens.json").len();
        // Whatever the point, the file is whole.
        storage.load().unwrap();
    }
    storage.store(&[record("rs", "last")]).unwrap();
    assert_eq!(temp_files(&dir.0, "tokens.json"), Vec::<String>::new());
    eprintln!("temp files left by killed writers, summed over the rounds: {residue_seen}");
}

#[cfg(unix)]
#[test]
fn lock_files_are_never_followed_through_a_symlink() {
    use std::os::unix::fs::symlink;
    let dir = TempDir::new("lock-symlink");
    let path = dir.0.join("tokens.json");
    let storage = JsonTokenStorage::new(&path, "DEFAULT").unwrap();
    let victim = dir.0.join("victim");
    symlink(&victim, dir.0.join("tokens.json.lock")).unwrap();
    symlink(&victim, dir.0.join("tokens.json.refresh.lock")).unwrap();
    let error = storage.store(&[record("rs", "A")]).unwrap_err();
    assert!(
        matches!(&error, StorageError::Symlink { path } if path.ends_with("tokens.json.lock")),
        "{error:?}"
    );
    assert!(matches!(
        storage.lock_renewal("rs"),
        Err(StorageError::Symlink { .. })
    ));
    assert!(!victim.exists(), "nothing was created through the link");
    assert!(!path.exists(), "nothing was written");
}

/// What is planted at a storage's path.
#[cfg(unix)]
#[derive(Debug, Clone, Copy)]
enum Planted {
    /// A symbolic link to a file another user owns.
    LinkToOthersFile,
    /// A symbolic link to a directory.
    LinkToDirectory,
    /// A symbolic link to a path where nothing is.
    LinkToNothing,
    /// A regular file another user owns.
    OthersFile,
}

/// What a planted link's target (or the planted file) was, to compare
/// after: content, owner, inode; or that it still does not exist.
#[cfg(unix)]
fn fingerprint(path: &Path) -> Option<(Vec<u8>, u32, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let metadata = std::fs::symlink_metadata(path).ok()?;
    let content = if metadata.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_encoded_bytes())
            .collect();
        names.sort();
        names.concat()
    } else {
        std::fs::read(path).unwrap()
    };
    Some((content, metadata.uid(), metadata.ino()))
}

/// Another user's id, if this process may give files away (root, as in
/// CI); `None` otherwise.
#[cfg(unix)]
fn another_user(probe: &Path) -> Option<u32> {
    std::fs::write(probe, b"probe").unwrap();
    let given = std::os::unix::fs::chown(probe, Some(65534), Some(65534)).is_ok();
    std::fs::remove_file(probe).unwrap();
    given.then_some(65534)
}

/// Plants `planted` at `at`; returns the path whose fingerprint must not
/// change (the link's target, or the planted file).
#[cfg(unix)]
fn plant(planted: Planted, at: &Path, elsewhere: &Path, other: u32) -> std::path::PathBuf {
    use std::os::unix::fs::symlink;
    let _ = std::fs::remove_file(at);
    match planted {
        Planted::LinkToOthersFile => {
            let victim = elsewhere.join("victim.json");
            std::fs::write(&victim, br#"{"victim": true}"#).unwrap();
            std::os::unix::fs::chown(&victim, Some(other), Some(other)).unwrap();
            symlink(&victim, at).unwrap();
            victim
        }
        Planted::LinkToDirectory => {
            let victim = elsewhere.join("victim-dir");
            std::fs::create_dir_all(&victim).unwrap();
            symlink(&victim, at).unwrap();
            victim
        }
        Planted::LinkToNothing => {
            let victim = elsewhere.join("nothing-here");
            symlink(&victim, at).unwrap();
            victim
        }
        Planted::OthersFile => {
            std::fs::write(at, br#"{"data": {}, "format_version": "2.0"}"#).unwrap();
            std::os::unix::fs::chown(at, Some(other), Some(other)).unwrap();
            at.to_owned()
        }
    }
}

/// Every storage operation on `storage`: those in `touching` (they open
/// the planted path) fail with a typed error naming a path; the others may
/// run (the caller checks that nothing planted changed).
#[cfg(unix)]
fn operations_on_the_planted_path_are_refused(
    storage: &dyn TokenStorage,
    what: &str,
    touching: &[&str],
) {
    type Operation<'a> = Box<dyn Fn() -> Result<(), StorageError> + 'a>;
    let operations: [(&str, Operation<'_>); 5] = [
        ("load", Box::new(|| storage.load().map(drop))),
        ("store", Box::new(|| storage.store(&[record("rs", "A")]))),
        ("remove", Box::new(|| storage.remove(&["rs".to_owned()]))),
        (
            "set aside",
            Box::new(|| storage.set_aside_unreadable().map(drop)),
        ),
        (
            "lock_renewal",
            Box::new(|| storage.lock_renewal("rs").map(drop)),
        ),
    ];
    for (operation, run) in operations {
        let result = run();
        if !touching.contains(&operation) {
            continue;
        }
        let error = result.expect_err(&format!("{what}: {operation} succeeded"));
        assert!(
            matches!(
                error,
                StorageError::Symlink { .. }
                    | StorageError::OwnedByAnotherUser { .. }
                    | StorageError::NotARegularFile { .. }
            ),
            "{what}: {operation}: {error:?}"
        );
        let text = error.to_string();
        assert!(
            text.contains('/'),
            "{what}: {operation}: the path is named: {text}"
        );
    }
}

#[cfg(unix)]
#[test]
fn links_and_other_users_files_are_typed_errors_and_never_touched() {
    let dir = TempDir::new("planted");
    let elsewhere = dir.0.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let Some(other) = another_user(&elsewhere.join("probe")) else {
        eprintln!("not root: files owned by another user cannot be made; skipped");
        return;
    };
    let plants = [
        Planted::LinkToOthersFile,
        Planted::LinkToDirectory,
        Planted::LinkToNothing,
        Planted::OthersFile,
    ];
    // Each path, and the operations that open it.
    let written = ["store", "remove", "set aside"];
    let mut paths: Vec<(&str, &str, Vec<&str>)> = vec![
        (
            "json",
            "tokens.json",
            vec!["load", "store", "remove", "set aside"],
        ),
        ("json", "tokens.json.lock", written.to_vec()),
        ("json", "tokens.json.refresh.lock", vec!["lock_renewal"]),
    ];
    if cfg!(feature = "sqlite") {
        paths.extend([
            ("sqlite", "tokens.db", vec![]),
            ("sqlite", "tokens.db.refresh.lock", vec!["lock_renewal"]),
        ]);
    }
    for planted in plants {
        for (kind, name, touching) in &paths {
            let case = dir
                .0
                .join(format!("{planted:?}-{}", name.replace('.', "-")));
            std::fs::create_dir(&case).unwrap();
            let at = case.join(name);
            let victim = plant(planted, &at, &elsewhere, other);
            let before = fingerprint(&victim);
            let what = format!("{planted:?} at {name}");
            match *kind {
                "json" => {
                    let storage =
                        JsonTokenStorage::new(case.join("tokens.json"), "DEFAULT").unwrap();
                    operations_on_the_planted_path_are_refused(&storage, &what, touching);
                }
                _ =>
                {
                    #[cfg(feature = "sqlite")]
                    match SqliteTokenStorage::new(case.join("tokens.db"), "DEFAULT") {
                        Ok(storage) => {
                            assert!(*name != "tokens.db", "{what}: the database was opened");
                            operations_on_the_planted_path_are_refused(&storage, &what, touching);
                        }
                        Err(error) => assert!(
                            matches!(
                                error,
                                StorageError::Symlink { .. }
                                    | StorageError::OwnedByAnotherUser { .. }
                            ),
                            "{what}: {error:?}"
                        ),
                    }
                }
            }
            assert_eq!(fingerprint(&victim), before, "{what}: the target changed");
            // The link (or file) is still there, as planted.
            assert!(std::fs::symlink_metadata(&at).is_ok(), "{what}: removed");
            // Nothing was set aside or created beside it.
            let left: Vec<_> = std::fs::read_dir(&case)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n.contains("unreadable") || Path::new(n).extension().is_some_and(|e| e == "tmp")
                })
                .collect();
            assert!(left.is_empty(), "{what}: {left:?}");
        }
    }
}

#[cfg(unix)]
#[test]
fn a_link_swapped_in_between_two_calls_is_refused() {
    use std::os::unix::fs::symlink;
    let dir = TempDir::new("swapped");
    let path = dir.0.join("tokens.json");
    let storage = JsonTokenStorage::new(&path, "DEFAULT").unwrap();
    storage.store(&[record("rs", "A")]).unwrap();
    assert_eq!(storage.load().unwrap().records().len(), 1);
    let victim = dir.0.join("victim.json");
    std::fs::write(&victim, b"victim").unwrap();
    let before = fingerprint(&victim);
    // Swapped between two calls (the cache would serve the old snapshot
    // for up to a second: a renewal looks at the file).
    std::fs::remove_file(&path).unwrap();
    symlink(&victim, &path).unwrap();
    let guard = storage.lock_renewal("rs").unwrap();
    assert!(matches!(storage.load(), Err(StorageError::Symlink { .. })));
    drop(guard);
    assert!(matches!(
        storage.store(&[record("rs", "B")]),
        Err(StorageError::Symlink { .. })
    ));
    assert!(matches!(
        storage.set_aside_unreadable(),
        Err(StorageError::Symlink { .. })
    ));
    assert_eq!(fingerprint(&victim), before);
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[cfg(unix)]
#[test]
fn a_token_directory_other_users_can_write_to_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new("open-dir");
    for open_mode in [0o777, 0o775, 0o1777] {
        let shared = dir.0.join(format!("shared-{open_mode:o}"));
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(open_mode)).unwrap();
        let json = JsonTokenStorage::new(shared.join("tokens.json"), "DEFAULT").unwrap_err();
        assert!(
            matches!(&json, StorageError::InsecureDirectory { mode, .. } if *mode == open_mode),
            "{json:?}"
        );
        assert!(json.to_string().contains("writable by other users"));
        #[cfg(feature = "sqlite")]
        {
            assert!(matches!(
                SqliteTokenStorage::new(shared.join("tokens.db"), "DEFAULT"),
                Err(StorageError::InsecureDirectory { .. })
            ));
            assert!(!shared.join("tokens.db").exists());
        }
    }
    let private = dir.0.join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o755)).unwrap();
    JsonTokenStorage::new(private.join("tokens.json"), "DEFAULT").unwrap();
}

#[test]
#[cfg(feature = "sqlite")]
fn a_sqlite_write_waits_for_another_transaction_as_long_as_the_lock_timeout() {
    let dir = TempDir::new("sqlite-busy");
    let path = dir.0.join("tokens.db");
    let storage = SqliteTokenStorage::new(&path, "DEFAULT")
        .unwrap()
        .with_lock_timeout(Duration::from_millis(300));
    // Another process's write transaction, held.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = Instant::now();
    let error = storage.store(&[record("rs", "A")]).unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert!(
        started.elapsed() < common::stuck_after(Duration::from_millis(300)),
        "waited {:?} with a 300 ms lock timeout",
        started.elapsed()
    );
    // Released within the timeout: the write goes through.
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        other.execute_batch("COMMIT").unwrap();
    });
    let patient = SqliteTokenStorage::new(&path, "DEFAULT")
        .unwrap()
        .with_lock_timeout(Duration::from_secs(10));
    patient.store(&[record("rs", "A")]).unwrap();
    releaser.join().unwrap();
}

/// Runs `op` on a thread and waits at most `limit` for it: a call that
/// hangs fails the test instead of the test run.
fn within<T: Send + 'static>(limit: Duration, op: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(op());
    });
    receiver
        .recv_timeout(limit)
        .expect("the call did not return in time")
}

#[test]
#[cfg(unix)]
fn a_fifo_socket_or_directory_at_a_token_or_lock_path_is_a_typed_error_at_once() {
    const LOCK_TIMEOUT: Duration = Duration::from_secs(600);
    enum Planted {
        Fifo,
        Socket,
        Directory,
    }
    for planted in [Planted::Fifo, Planted::Socket, Planted::Directory] {
        for name in [
            "tokens.json.lock",
            "tokens.json.refresh.lock",
            "tokens.json",
        ] {
            let dir = TempDir::new("special-files");
            let path = dir.0.join(name);
            let _socket = match planted {
                Planted::Fifo => {
                    let made = Command::new("mkfifo").arg(&path).status().unwrap();
                    assert!(made.success());
                    None
                }
                Planted::Socket => Some(std::os::unix::net::UnixListener::bind(&path).unwrap()),
                Planted::Directory => {
                    std::fs::create_dir(&path).unwrap();
                    None
                }
            };
            let storage = JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT")
                .unwrap()
                .with_lock_timeout(LOCK_TIMEOUT);
            // Had anything waited for the lock (or opened a FIFO and blocked),
            // this would take the lock timeout, ten minutes, or forever.
            let error = within(common::stuck_after(Duration::ZERO), move || match name {
                "tokens.json.lock" => storage.store(&[record("rs", "A")]).unwrap_err(),
                "tokens.json.refresh.lock" => storage.lock_renewal("rs").map(drop).unwrap_err(),
                _ => storage.load().map(drop).unwrap_err(),
            });
            assert!(
                matches!(&error, StorageError::NotARegularFile { path: p } if *p == path),
                "{name}: {error:?}"
            );
            assert!(error.to_string().contains(name), "{error}");
        }
    }
}
