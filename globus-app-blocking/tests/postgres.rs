//! `PostgresTokenStorage` against the PostgreSQL server of the machine
//! (127.0.0.1:5432, trust authentication; `GLOBUS_APP_TEST_POSTGRES`
//! overrides the connection string). Each test works in a schema of its
//! own, created and dropped by the test. Processes stand in for machines:
//! each has its own app and connection pool. Needs the `postgres` feature
//! and the tests crate's (its admin connection): `cargo test --workspace
//! --all-features`, as `.ci/run` does, or `cargo test -p
//! globus-app-blocking --features postgres,globus-app-tests/postgres`.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::contract::{self, record, token_of};
use common::{AuthServer, FollowingBrowser, SIM_CLIENT_ID, now, token_printed_by};
use globus_app_blocking::login::LocalServerLoginFlowManager;
use globus_app_blocking::proto::app::TokenValidationErrorHandler;
use globus_app_blocking::proto::storage::sealing::{SealingKey, SealingKeys};
use globus_app_blocking::storage::{PostgresTokenStorage, StorageError, TokenStorage};
use globus_app_blocking::{ClientApp, GlobusAppConfig, UserApp};

const TRANSFER: &str = "transfer.api.globus.org";
const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";
const MACHINES: usize = 8;

/// A schema for one test, dropped with everything in it at the end.
struct Schema {
    name: String,
}

impl Schema {
    fn new(test: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "globus_app_{test}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        globus_app_tests::postgres_admin()
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .unwrap();
        Self { name }
    }

    fn table(&self) -> String {
        format!("{}.tokens", self.name)
    }

    fn storage(&self, namespace: &str) -> PostgresTokenStorage {
        PostgresTokenStorage::builder(globus_app_tests::postgres_connection_string())
            .table(self.table())
            .namespace(namespace)
            .build()
            .unwrap()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = globus_app_tests::postgres_admin()
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

/// Polls `condition` every 20 ms for at most `limit`.
fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

#[test]
fn keeps_the_storage_contract() {
    let schema = Schema::new("contract");
    contract::round_trip(&schema.storage("DEFAULT"));
    contract::namespaces_are_isolated(&schema.storage("one"), &schema.storage("two"));
    contract::sees_the_other_writer_under_the_lock(&schema.storage("w"), &schema.storage("w"));
    // Two storages are two pools: the lock is PostgreSQL's, not this process's.
    contract::renewal_lock_is_exclusive(&schema.storage("l"), &schema.storage("l"));

    // The rows hold the token files' record JSON, and a schema version row.
    let mut admin = globus_app_tests::postgres_admin();
    let row = admin
        .query_one(
            &format!(
                "SELECT record, key_id FROM {} WHERE namespace = 'one' AND resource_server = 'rs'",
                schema.table()
            ),
            &[],
        )
        .unwrap();
    let text: String = row.get(0);
    let key_id: Option<String> = row.get(1);
    assert_eq!(
        text,
        globus_app_blocking::proto::storage::sqlite::encode_record(&record("rs", "A"))
    );
    assert_eq!(key_id, None);
    let version: i32 = admin
        .query_one(
            &format!("SELECT version FROM {}.tokens_schema", schema.name),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(version, 1);
}

#[test]
fn the_level_1_cache_serves_loads_and_sees_other_machines_within_max_staleness() {
    let schema = Schema::new("cache");
    let open = || {
        PostgresTokenStorage::builder(globus_app_tests::postgres_connection_string())
            .table(schema.table())
            .max_staleness(Duration::from_millis(300))
            .build()
            .unwrap()
    };
    let (ours, theirs) = (open(), open());
    ours.store(&[record("rs", "A")]).unwrap();
    assert_eq!(token_of(&ours, "rs").as_deref(), Some("A"));
    theirs.store(&[record("rs", "B")]).unwrap();
    // Served from the cache...
    assert_eq!(token_of(&ours, "rs").as_deref(), Some("A"));
    // ...until max_staleness has passed.
    assert!(wait_for(Duration::from_secs(5), || token_of(&ours, "rs")
        .as_deref()
        == Some("B")));
    // A logout elsewhere is seen within the same bound.
    theirs.remove(&["rs".to_owned()]).unwrap();
    assert!(wait_for(Duration::from_secs(5), || token_of(&ours, "rs").is_none()));
    // An unknown table name is refused before any SQL runs.
    let error = PostgresTokenStorage::builder(globus_app_tests::postgres_connection_string())
        .table("x; DROP TABLE y")
        .build()
        .unwrap_err();
    assert!(
        matches!(error, StorageError::InvalidTableName(_)),
        "{error:?}"
    );
}

#[test]
fn sealed_rows_are_unreadable_without_the_key_and_bound_to_their_slot() {
    let schema = Schema::new("sealed");
    let sealed_storage = |keys: SealingKeys| {
        PostgresTokenStorage::builder(globus_app_tests::postgres_connection_string())
            .table(schema.table())
            .sealing_keys(keys)
            .build()
            .unwrap()
    };
    let old_key = || SealingKey::new("2026-10", [1; 32]);
    let new_key = || SealingKey::new("2026-11", [2; 32]);
    let old = sealed_storage(SealingKeys::new(old_key()));
    old.store(&[
        record("a.example.org", "SECRET-A"),
        record("b.example.org", "SECRET-B"),
    ])
    .unwrap();
    assert_eq!(token_of(&old, "a.example.org").as_deref(), Some("SECRET-A"));

    // At rest: no token, no scope, in any column.
    let mut admin = globus_app_tests::postgres_admin();
    let dump: String = admin
        .query_one(
            &format!("SELECT string_agg(t::text, ' ') FROM {} t", schema.table()),
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        !dump.contains("SECRET") && !dump.contains("urn:globus"),
        "{dump}"
    );

    // Without keys, with the wrong key under the same id: typed errors.
    let unsealed = schema.storage("DEFAULT");
    assert!(matches!(
        unsealed.load().unwrap_err(),
        StorageError::CorruptRow { .. }
    ));
    let impostor = sealed_storage(SealingKeys::new(SealingKey::new("2026-10", [9; 32])));
    let error = impostor.load().unwrap_err();
    assert!(
        matches!(error, StorageError::CorruptRow { .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains("SECRET"));

    // Rows swapped between two resource servers do not open.
    admin
        .batch_execute(&format!(
            "UPDATE {t} SET record = CASE resource_server
                 WHEN 'a.example.org' THEN (SELECT record FROM {t} WHERE resource_server = 'b.example.org')
                 ELSE (SELECT record FROM {t} WHERE resource_server = 'a.example.org') END",
            t = schema.table()
        ))
        .unwrap();
    let fresh = sealed_storage(SealingKeys::new(old_key()));
    assert!(matches!(
        fresh.load().unwrap_err(),
        StorageError::CorruptRow { .. }
    ));
    admin
        .batch_execute(&format!("DELETE FROM {}", schema.table()))
        .unwrap();

    // Rotation: rows sealed with the old key still open; writes use the new.
    old.store(&[record("a.example.org", "A1")]).unwrap();
    let rotated = sealed_storage(SealingKeys::new(new_key()).with_previous(old_key()));
    assert_eq!(token_of(&rotated, "a.example.org").as_deref(), Some("A1"));
    rotated.store(&[record("a.example.org", "A2")]).unwrap();
    let key_id: String = admin
        .query_one(&format!("SELECT key_id FROM {}", schema.table()), &[])
        .unwrap()
        .get(0);
    assert_eq!(key_id, "2026-11");
    let only_new = sealed_storage(SealingKeys::new(new_key()));
    assert_eq!(
        only_new.load().unwrap().get("a.example.org").unwrap(),
        &record("a.example.org", "A2")
    );
}

// ------------------------------------------------------------ outages

/// A TCP forwarder to PostgreSQL that can be cut (every connection
/// dropped, new ones refused) and restored: an outage on demand.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, stop2, connections2) =
            (Arc::clone(&up), Arc::clone(&stop), Arc::clone(&connections));
        std::thread::spawn(move || {
            // Bounded: stops with the test, or after two minutes.
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                if !up2.load(Ordering::Relaxed) {
                    drop(client);
                    continue;
                }
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect("127.0.0.1:5432") else {
                    continue;
                };
                let mut held = connections2.lock().unwrap();
                held.push(client.try_clone().unwrap());
                held.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buffer = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buffer) {
                            if n == 0 || to.write_all(&buffer[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Self {
            port,
            up,
            stop,
            connections,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::Relaxed);
        for stream in self.connections.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cut();
    }
}

#[test]
fn an_outage_serves_the_cache_fails_writes_typed_and_recovers() {
    let schema = Schema::new("outage");
    let proxy = Proxy::start();
    let failures = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&failures);
    let storage = PostgresTokenStorage::builder(format!(
        "host=127.0.0.1 port={} user=postgres dbname=test",
        proxy.port
    ))
    .table(schema.table())
    .max_staleness(Duration::from_millis(200))
    .connect_timeout(Duration::from_secs(1))
    .on_store_failure(move |error| {
        assert!(error.is_retryable(), "{error:?}");
        counted.fetch_add(1, Ordering::Relaxed);
    })
    .build()
    .unwrap();
    storage.store(&[record("rs", "A")]).unwrap();
    assert_eq!(token_of(&storage, "rs").as_deref(), Some("A"));

    proxy.cut();
    // Loads keep being served from the cache, past max_staleness too.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(token_of(&storage, "rs").as_deref(), Some("A"));
    // Writes and renewal locks fail typed and retryable.
    let error = storage.store(&[record("rs", "B")]).unwrap_err();
    assert!(
        matches!(error, StorageError::Unavailable { .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
    let error = storage.lock_renewal("rs").unwrap_err();
    assert!(
        matches!(error, StorageError::Unavailable { .. }),
        "{error:?}"
    );
    assert!(failures.load(Ordering::Relaxed) >= 2);

    proxy.restore();
    // The next call works, without a restart; nothing was written in part.
    assert!(wait_for(Duration::from_secs(10), || storage
        .store(&[record("rs", "C")])
        .is_ok()));
    let guard = storage.lock_renewal("rs").unwrap();
    assert_eq!(token_of(&storage, "rs").as_deref(), Some("C"));
    drop(guard);
}

#[test]
fn terminated_backends_give_retryable_errors_then_recover_without_loss() {
    let schema = Schema::new("terminate");
    let application = format!("globus-app-test-{}", std::process::id());
    let storage = PostgresTokenStorage::builder(format!(
        "{} application_name={application}",
        globus_app_tests::postgres_connection_string()
    ))
    .table(schema.table())
    .build()
    .unwrap();
    storage
        .store(&[record("a.example.org", "A"), record("b.example.org", "B")])
        .unwrap();
    let terminated: i64 = globus_app_tests::postgres_admin()
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&application],
        )
        .unwrap()
        .get(0);
    assert!(terminated >= 1);
    // Until the pool has replaced its connections, calls may fail, but only
    // with retryable errors; then they succeed.
    let mut attempts = 0;
    let stored = loop {
        attempts += 1;
        match storage.store(&[record("a.example.org", "A2")]) {
            Ok(()) => break true,
            Err(error) => assert!(error.is_retryable(), "{error:?}"),
        }
        if attempts == 20 {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(stored, "no recovery after 20 attempts");
    let guard = storage.lock_renewal("a.example.org").unwrap();
    let tokens = storage.load().unwrap();
    drop(guard);
    assert_eq!(
        tokens.get("a.example.org").unwrap().access_token.secret(),
        "A2"
    );
    assert_eq!(
        tokens.get("b.example.org").unwrap(),
        &record("b.example.org", "B")
    );
}

// ------------------------------------------------------------ the fleet

fn user_app(base_url: &str, storage: PostgresTokenStorage) -> UserApp {
    UserApp::builder("Fleet Test")
        .client_id(SIM_CLIENT_ID)
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(
            GlobusAppConfig::default()
                .with_auth_base_url(base_url.to_owned())
                .with_request_refresh_tokens(true)
                .with_token_validation_error_handler(TokenValidationErrorHandler::Raise),
        )
        .token_storage(storage)
        .login_flow_manager(
            LocalServerLoginFlowManager::new()
                .with_browser(FollowingBrowser)
                .with_timeout(Duration::from_secs(10))
                .allow_remote_session(true),
        )
        .build()
        .unwrap()
}

fn client_app(base_url: &str, storage: PostgresTokenStorage) -> ClientApp {
    ClientApp::builder("Fleet Test")
        .client_id(SIM_CLIENT_ID)
        .client_secret("fleet-secret")
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(GlobusAppConfig::default().with_auth_base_url(base_url.to_owned()))
        .token_storage(storage)
        .build()
        .unwrap()
}

/// The application name of the storages of one test's machines, so that
/// the test finds their sessions among those of tests running beside it.
fn application_name(table: &str) -> String {
    format!("globus-app-{}", table.replace('.', "-"))
}

fn fleet_storage(table: &str) -> PostgresTokenStorage {
    PostgresTokenStorage::builder(format!(
        "{} application_name={}",
        globus_app_tests::postgres_connection_string(),
        application_name(table)
    ))
    .table(table)
    .build()
    .unwrap()
}

/// Run as a child process (a "machine"): build an app on the shared table,
/// get an authorizer, print its token.
#[test]
fn machine_entry() {
    let (Ok(base_url), Ok(table), Ok(kind)) = (
        std::env::var("GLOBUS_APP_FLEET_BASE"),
        std::env::var("GLOBUS_APP_FLEET_TABLE"),
        std::env::var("GLOBUS_APP_FLEET_KIND"),
    ) else {
        return; // Not a child: nothing to do.
    };
    let storage = fleet_storage(&table);
    let authorization = if kind == "client" {
        client_app(&base_url, storage).get_authorizer(TRANSFER)
    } else {
        user_app(&base_url, storage).get_authorizer(TRANSFER)
    }
    .unwrap();
    println!("TOKEN={}", authorization.access_token().secret());
}

fn start_machine(server: &AuthServer, table: &str, kind: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "machine_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GLOBUS_APP_FLEET_BASE", &server.base_url)
        .env("GLOBUS_APP_FLEET_TABLE", table)
        .env("GLOBUS_APP_FLEET_KIND", kind)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn expire_all(storage: &PostgresTokenStorage) {
    let guard = storage.lock_renewal(TRANSFER).unwrap();
    let mut records = storage.load().unwrap().records().to_vec();
    for record in &mut records {
        record.expires_at = now().saturating_sub_secs(5);
    }
    storage.store(&records).unwrap();
    drop(guard);
}

#[test]
fn a_fleet_on_one_expired_token_sends_one_refresh_and_keeps_the_family() {
    let server = AuthServer::start();
    server.fake().rotate_refresh_tokens = true;
    let schema = Schema::new("fleet_user");
    let table = schema.table();
    let first = user_app(&server.base_url, fleet_storage(&table));
    first.login().unwrap();
    let storage = fleet_storage(&table);
    expire_all(&storage);

    let machines: Vec<Child> = (0..MACHINES)
        .map(|_| start_machine(&server, &table, "user"))
        .collect();
    let tokens: Vec<String> = machines.into_iter().map(token_printed_by).collect();

    assert_eq!(
        server.grants("refresh_token"),
        1,
        "one refresh across {MACHINES} machines"
    );
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "every machine got the fresh token"
    );
    let stored = storage.lock_renewal(TRANSFER).and_then(|guard| {
        let tokens = storage.load();
        drop(guard);
        tokens
    });
    let transfer = stored.unwrap().get(TRANSFER).unwrap().clone();
    assert_eq!(transfer.access_token.secret(), tokens[0]);
    assert!(
        server
            .fake()
            .is_live(transfer.refresh_token.as_ref().unwrap().secret(), now()),
        "the rotated refresh token family survived"
    );
}

#[test]
fn a_fleet_of_client_apps_sends_one_client_credentials_grant() {
    let server = AuthServer::start();
    server.fake().client_secret = Some("fleet-secret".into());
    let schema = Schema::new("fleet_client");
    let table = schema.table();
    let first = client_app(&server.base_url, fleet_storage(&table));
    first.get_authorizer(TRANSFER).unwrap();
    expire_all(&fleet_storage(&table));
    let before = server.grants("client_credentials");

    let machines: Vec<Child> = (0..MACHINES)
        .map(|_| start_machine(&server, &table, "client"))
        .collect();
    let tokens: Vec<String> = machines.into_iter().map(token_printed_by).collect();

    assert_eq!(
        server.grants("client_credentials") - before,
        1,
        "one grant for the fleet"
    );
    assert!(tokens.windows(2).all(|w| w[0] == w[1]));
}

/// The session of `table`'s machines that holds an advisory lock, if any.
fn advisory_lock_holder(table: &str) -> Option<i32> {
    globus_app_tests::postgres_admin()
        .query_opt(
            "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1 LIMIT 1",
            &[&application_name(table)],
        )
        .unwrap()
        .map(|row| row.get(0))
}

/// A machine dies mid-renewal (its refresh is in flight, the lock held);
/// another machine renews within a bounded time and no row is torn.
fn renewal_survives_a_dead_holder(kill: impl FnOnce(&mut Child, i32)) {
    let server = AuthServer::start();
    let schema = Schema::new("dead_holder");
    let table = schema.table();
    user_app(&server.base_url, fleet_storage(&table))
        .login()
        .unwrap();
    let storage = fleet_storage(&table);
    expire_all(&storage);
    let expired_token = token_of(&storage, TRANSFER).unwrap();

    // The dying machine's refresh is held up at the server.
    server.delay_next(&[Duration::from_secs(8)]);
    let mut dying = start_machine(&server, &table, "user");
    let mut holder = None;
    assert!(
        wait_for(Duration::from_secs(20), || {
            holder = advisory_lock_holder(&table);
            holder.is_some()
        }),
        "the machine never took the renewal lock"
    );
    // Its refresh has reached the server (and taken the delay), so the
    // survivor's own refresh below is not held up.
    assert!(
        wait_for(Duration::from_secs(20), || server.pending_delays() == 0),
        "the machine never sent its refresh"
    );
    kill(&mut dying, holder.unwrap());

    // A machine that comes up now (nothing cached) finds the expired token.
    let survivor = user_app(&server.base_url, fleet_storage(&table));
    let started = Instant::now();
    let authorization = survivor.get_authorizer(TRANSFER).unwrap();
    // Well before the dying machine's held-up refresh could have finished:
    // the survivor did not wait for the dead holder.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "renewal took {:?}",
        started.elapsed()
    );
    assert!(authorization.expires_at() > now());
    assert_ne!(authorization.access_token().secret(), expired_token);
    let _ = dying.kill();
    let _ = dying.wait();
    // Every row still decodes whole.
    let guard = storage.lock_renewal(TRANSFER).unwrap();
    let records = storage.load().unwrap();
    drop(guard);
    assert!(records.get(TRANSFER).is_some() && records.get("auth.globus.org").is_some());
}

#[test]
#[cfg(unix)]
fn a_machine_killed_mid_renewal_frees_the_lock() {
    renewal_survives_a_dead_holder(|child, _| child.kill().unwrap());
}

#[test]
fn a_terminated_lock_connection_frees_the_lock() {
    renewal_survives_a_dead_holder(|_, pid| {
        let terminated: bool = globus_app_tests::postgres_admin()
            .query_one("SELECT pg_terminate_backend($1)", &[&pid])
            .unwrap()
            .get(0);
        assert!(terminated);
    });
}
