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
use globus_app_blocking::proto::token::TokenData;
use globus_app_blocking::storage::{PostgresTokenStorage, StorageError, TokenStorage};
use globus_app_blocking::{ClientApp, GlobusAppConfig, UserApp};
use globus_app_tests::postgres_servers::{
    PgBouncer, TlsPostgres, fleet_application_name, lease_held, terminate_fleet_sessions,
};

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
    assert_eq!(version, 2);
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

/// Where a test's machines keep their tokens: the table, the server
/// (the machine's, or a pooler in front of it), the lease.
#[derive(Clone)]
struct Fleet {
    table: String,
    connection: String,
    lease: Duration,
}

impl Fleet {
    fn new(table: &str) -> Self {
        Self {
            table: table.to_owned(),
            connection: globus_app_tests::postgres_connection_string(),
            lease: Duration::from_secs(90),
        }
    }

    fn storage(&self) -> PostgresTokenStorage {
        PostgresTokenStorage::builder(format!(
            "{} application_name={}",
            self.connection,
            fleet_application_name(&self.table)
        ))
        .table(&self.table)
        .lease_duration(self.lease)
        .build()
        .unwrap()
    }

    /// Starts a child process (a "machine") that builds an app of `kind`
    /// on the fleet's table and gets an authorizer.
    fn start_machine(&self, server: &AuthServer, kind: &str) -> Child {
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "machine_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("GLOBUS_APP_FLEET_BASE", &server.base_url)
            .env("GLOBUS_APP_FLEET_TABLE", &self.table)
            .env("GLOBUS_APP_FLEET_CONNECTION", &self.connection)
            .env(
                "GLOBUS_APP_FLEET_LEASE_MS",
                self.lease.as_millis().to_string(),
            )
            .env("GLOBUS_APP_FLEET_KIND", kind)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn start_machines(&self, server: &AuthServer, kind: &str) -> Vec<Child> {
        (0..MACHINES)
            .map(|_| self.start_machine(server, kind))
            .collect()
    }
}

fn fleet_storage(table: &str) -> PostgresTokenStorage {
    Fleet::new(table).storage()
}

/// Run as a child process (a "machine"): build an app on the shared table,
/// get an authorizer, print its token, or that a login is required.
#[test]
fn machine_entry() {
    let (Ok(base_url), Ok(table), Ok(kind), Ok(connection), Ok(lease)) = (
        std::env::var("GLOBUS_APP_FLEET_BASE"),
        std::env::var("GLOBUS_APP_FLEET_TABLE"),
        std::env::var("GLOBUS_APP_FLEET_KIND"),
        std::env::var("GLOBUS_APP_FLEET_CONNECTION"),
        std::env::var("GLOBUS_APP_FLEET_LEASE_MS"),
    ) else {
        return; // Not a child: nothing to do.
    };
    let fleet = Fleet {
        table,
        connection,
        lease: Duration::from_millis(lease.parse().unwrap()),
    };
    let storage = fleet.storage();
    let authorization = if kind == "client" {
        client_app(&base_url, storage).get_authorizer(TRANSFER)
    } else {
        user_app(&base_url, storage).get_authorizer(TRANSFER)
    };
    match authorization {
        Ok(authorization) => println!("TOKEN={}", authorization.access_token().secret()),
        Err(error) if error.is_login_required() => println!("LOGIN_REQUIRED={error}"),
        Err(error) => panic!("{error:?}"),
    }
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

/// The stored record of `resource_server`, read under the lease.
fn stored_record(storage: &PostgresTokenStorage, resource_server: &str) -> TokenData {
    let guard = storage.lock_renewal(resource_server).unwrap();
    let tokens = storage.load().unwrap();
    drop(guard);
    tokens.get(resource_server).unwrap().clone()
}

/// After a fleet renewed one expired token: one refresh, every machine
/// holds the stored token, and its rotated refresh token is live.
fn assert_one_refresh_and_the_family_alive(
    server: &AuthServer,
    storage: &PostgresTokenStorage,
    tokens: &[String],
) {
    assert_eq!(
        server.grants("refresh_token"),
        1,
        "one refresh across {} machines",
        tokens.len()
    );
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "every machine got the fresh token"
    );
    let transfer = stored_record(storage, TRANSFER);
    assert_eq!(transfer.access_token.secret(), tokens[0]);
    assert!(
        server
            .fake()
            .is_live(transfer.refresh_token.as_ref().unwrap().secret(), now()),
        "the rotated refresh token family survived"
    );
}

/// A user's fleet on one expired token: logged in, then expired.
fn expired_user_fleet(server: &AuthServer, fleet: &Fleet) -> PostgresTokenStorage {
    server.fake().rotate_refresh_tokens = true;
    user_app(&server.base_url, fleet.storage()).login().unwrap();
    let storage = fleet.storage();
    expire_all(&storage);
    storage
}

#[test]
fn a_fleet_on_one_expired_token_sends_one_refresh_and_keeps_the_family() {
    let server = AuthServer::start();
    let schema = Schema::new("fleet_user");
    let fleet = Fleet::new(&schema.table());
    let storage = expired_user_fleet(&server, &fleet);
    let tokens: Vec<String> = fleet
        .start_machines(&server, "user")
        .into_iter()
        .map(token_printed_by)
        .collect();
    assert_one_refresh_and_the_family_alive(&server, &storage, &tokens);
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

    let tokens: Vec<String> = Fleet::new(&table)
        .start_machines(&server, "client")
        .into_iter()
        .map(token_printed_by)
        .collect();

    assert_eq!(
        server.grants("client_credentials") - before,
        1,
        "one grant for the fleet"
    );
    assert!(tokens.windows(2).all(|w| w[0] == w[1]));
}

/// The holder's refresh is held up at Globus Auth while its PostgreSQL
/// connections are lost (`lose_connections`); it reconnects and writes,
/// and the machines waiting on its lease take its token: one grant, the
/// rotated family alive. (With a lock that lived on the connection, the
/// lock went with it and a second machine refreshed the same token.)
fn a_lost_connection_mid_renewal_keeps_the_family(
    fleet: &Fleet,
    server: &AuthServer,
    lose_connections: impl FnOnce(),
) {
    let storage = expired_user_fleet(server, fleet);
    server.delay_next(&[Duration::from_secs(3)]);
    let machines = fleet.start_machines(server, "user");
    assert!(
        wait_for(Duration::from_secs(30), || server.pending_delays() == 0
            && lease_held(&fleet.table)),
        "no machine took the lease and sent its refresh"
    );
    lose_connections();
    let tokens: Vec<String> = machines.into_iter().map(token_printed_by).collect();
    assert_one_refresh_and_the_family_alive(server, &storage, &tokens);
}

#[test]
fn a_terminated_connection_mid_renewal_keeps_the_family() {
    let server = AuthServer::start();
    let schema = Schema::new("terminated_holder");
    let fleet = Fleet::new(&schema.table());
    a_lost_connection_mid_renewal_keeps_the_family(&fleet, &server, || {
        assert!(terminate_fleet_sessions(&fleet.table) >= 1);
    });
}

#[test]
fn an_idle_session_timeout_mid_renewal_keeps_the_family() {
    let server = AuthServer::start();
    let schema = Schema::new("idle_timeout");
    // A role of the test's own, whose idle sessions end after 200 ms: the
    // holder's connection dies while its refresh is held up (3 s).
    let role = format!("{}_role", schema.name);
    globus_app_tests::postgres_admin()
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN SUPERUSER; ALTER ROLE {role} SET idle_session_timeout = '200ms'"
        ))
        .unwrap();
    let mut fleet = Fleet::new(&schema.table());
    fleet.connection = format!("{} user={role}", fleet.connection);
    a_lost_connection_mid_renewal_keeps_the_family(&fleet, &server, || {
        std::thread::sleep(Duration::from_millis(500));
    });
    drop(schema);
    let _ =
        globus_app_tests::postgres_admin().batch_execute(&format!("DROP ROLE IF EXISTS {role}"));
}

/// A machine is killed holding the lease (its grant `held` at Globus Auth
/// by `hold`); a fleet started after it waits for the lease to expire.
fn kill_the_holder_then_start_a_fleet(
    server: &AuthServer,
    fleet: &Fleet,
    hold: impl FnOnce(&AuthServer),
) -> Vec<Child> {
    hold(server);
    let mut dying = fleet.start_machine(server, "user");
    assert!(
        wait_for(Duration::from_secs(30), || server.pending_delays() == 0
            && lease_held(&fleet.table)),
        "the machine never took the lease and sent its refresh"
    );
    dying.kill().unwrap();
    let _ = dying.wait();
    fleet.start_machines(server, "user")
}

#[test]
#[cfg(unix)]
fn a_holder_killed_before_its_grant_reached_globus_auth_is_replaced_after_its_lease() {
    let server = AuthServer::start();
    let schema = Schema::new("killed_before");
    let mut fleet = Fleet::new(&schema.table());
    fleet.lease = Duration::from_secs(2);
    let storage = expired_user_fleet(&server, &fleet);
    let started = Instant::now();
    let machines = kill_the_holder_then_start_a_fleet(&server, &fleet, |server| {
        // Its refresh never reaches the fake Globus Auth.
        server.never_handle_next(&[Duration::from_secs(20)]);
    });
    let tokens: Vec<String> = machines.into_iter().map(token_printed_by).collect();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the lease was honoured"
    );
    assert_one_refresh_and_the_family_alive(&server, &storage, &tokens);
}

/// The window no lease can close: the holder dies after Globus Auth
/// rotated the refresh token and before the new one was written. The row
/// holds a spent refresh token; the next machine's refresh is rejected
/// (and, with rotation, revokes the family), it stores the record without
/// the refresh token, and every machine reports a typed login-required
/// error. No machine sends the spent token a second time.
#[test]
#[cfg(unix)]
fn a_holder_killed_after_its_grant_leaves_every_machine_needing_a_login() {
    let server = AuthServer::start();
    let schema = Schema::new("killed_after");
    let mut fleet = Fleet::new(&schema.table());
    fleet.lease = Duration::from_secs(2);
    let storage = expired_user_fleet(&server, &fleet);
    let machines = kill_the_holder_then_start_a_fleet(&server, &fleet, |server| {
        // Its refresh is handled (the token rotated), the answer held up.
        server.hold_next_answers(&[Duration::from_secs(20)]);
    });
    for machine in machines {
        let output = machine.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("LOGIN_REQUIRED="),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(
        server.grants("refresh_token"),
        2,
        "the dead holder's refresh, and one rejected refresh"
    );
    assert!(stored_record(&storage, TRANSFER).refresh_token.is_none());
}

// ------------------------------------------------------------ poolers

#[test]
fn a_fleet_through_pgbouncer_in_transaction_mode_sends_one_refresh() {
    let pooler = PgBouncer::start_in_transaction_mode(4);
    let server = AuthServer::start();
    let schema = Schema::new("pgbouncer_fleet");
    let mut fleet = Fleet::new(&schema.table());
    fleet.connection = pooler.connection_string();
    let storage = expired_user_fleet(&server, &fleet);
    let tokens: Vec<String> = fleet
        .start_machines(&server, "user")
        .into_iter()
        .map(token_printed_by)
        .collect();
    assert_one_refresh_and_the_family_alive(&server, &storage, &tokens);
}

#[test]
fn a_lost_server_connection_through_pgbouncer_keeps_the_family() {
    let pooler = PgBouncer::start_in_transaction_mode(4);
    let server = AuthServer::start();
    let schema = Schema::new("pgbouncer_lost");
    let mut fleet = Fleet::new(&schema.table());
    fleet.connection = pooler.connection_string();
    // PgBouncer passes the machines' application name on to its server
    // connections: end those (the machines' own connections, to
    // PgBouncer, live on).
    a_lost_connection_mid_renewal_keeps_the_family(&fleet, &server, || {
        assert!(
            terminate_fleet_sessions(&fleet.table) >= 1,
            "no PgBouncer session to end"
        );
    });
}

// ------------------------------------------------------------ TLS, pool

/// Whether the session named `application` on `server` uses TLS.
fn uses_tls(server: &TlsPostgres, application: &str) -> bool {
    server
        .admin()
        .query_one(
            "SELECT bool_or(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = $1",
            &[&application],
        )
        .unwrap()
        .get::<_, Option<bool>>(0)
        .unwrap_or(false)
}

#[test]
fn tls_follows_sslmode_and_sslrootcert_and_a_bad_certificate_is_a_typed_error() {
    let server = TlsPostgres::start(20);
    let build = |host: &str, tls: &str, application: &str| {
        PostgresTokenStorage::builder(format!(
            "{} {tls} application_name={application}",
            server.connection_string(host)
        ))
        .table("tls.tokens")
        .build()
    };
    server.admin().batch_execute("CREATE SCHEMA tls").unwrap();
    let ca = server.ca_file.display().to_string();
    let other_ca = server.other_ca_file.display().to_string();

    // verify-full: the chain and the name (the certificate is for localhost).
    let storage = build(
        "localhost",
        &format!("sslmode=verify-full sslrootcert='{ca}'"),
        "full",
    )
    .unwrap();
    storage.store(&[record("rs", "A")]).unwrap();
    assert_eq!(token_of(&storage, "rs").as_deref(), Some("A"));
    assert!(uses_tls(&server, "full"));
    // verify-ca: the chain only.
    let _chain_only = build(
        "127.0.0.1",
        &format!("sslmode=verify-ca sslrootcert='{ca}'"),
        "ca",
    )
    .unwrap();
    assert!(uses_tls(&server, "ca"));
    // require: encrypted, the server not authenticated (as libpq).
    let _required = build("127.0.0.1", "sslmode=require", "required").unwrap();
    assert!(uses_tls(&server, "required"));
    let _plain = build("127.0.0.1", "sslmode=disable", "plain").unwrap();
    assert!(!uses_tls(&server, "plain"));

    // The wrong name, the wrong CA, no trusted root: typed, not retryable.
    for (host, tls) in [
        (
            "127.0.0.1",
            format!("sslmode=verify-full sslrootcert='{ca}'"),
        ),
        (
            "localhost",
            format!("sslmode=verify-ca sslrootcert='{other_ca}'"),
        ),
        (
            "localhost",
            format!("sslmode=require sslrootcert='{other_ca}'"),
        ),
        ("localhost", "sslmode=verify-full".to_owned()),
    ] {
        let error = build(host, &tls, "refused").unwrap_err();
        assert!(
            matches!(error, StorageError::TlsVerification { .. })
                || (tls == "sslmode=verify-full"
                    && matches!(error, StorageError::InvalidConnectionString { .. })),
            "{host} {tls}: {error:?}"
        );
        assert!(!error.is_retryable());
    }
}

#[test]
fn a_server_out_of_connections_gives_a_retryable_error_with_its_reason() {
    let server = TlsPostgres::start(4);
    server.admin().batch_execute("CREATE SCHEMA pool").unwrap();
    let connection = format!("{} sslmode=disable", server.connection_string("127.0.0.1"));
    let storage = PostgresTokenStorage::builder(&connection)
        .table("pool.tokens")
        .pool_size(1)
        .connect_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    storage.store(&[record("rs", "A")]).unwrap();
    // Every other connection is taken.
    let mut held = Vec::new();
    for _ in 0..10 {
        match postgres::Client::connect(&connection, postgres::NoTls) {
            Ok(client) => held.push(client),
            Err(_) => break,
        }
    }
    assert!(!held.is_empty() && held.len() < 10);

    // A whole renewal needs one connection at a time: the one it has.
    let guard = storage.lock_renewal("rs").unwrap();
    assert_eq!(token_of(&storage, "rs").as_deref(), Some("A"));
    storage.store(&[record("rs", "B")]).unwrap();
    guard.release();
    assert_eq!(token_of(&storage, "rs").as_deref(), Some("B"));

    // A new storage cannot connect: retryable, with PostgreSQL's reason.
    let error = PostgresTokenStorage::builder(&connection)
        .table("pool.tokens")
        .build()
        .unwrap_err();
    match &error {
        StorageError::PoolExhausted { reason, .. } => {
            assert!(reason.contains("too many clients"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(error.is_retryable());
    assert!(error.to_string().contains("too many clients"), "{error}");
    drop(held);
}

#[test]
fn a_namespace_postgresql_cannot_store_is_refused_at_build() {
    for namespace in ["", "a\0b"] {
        let error = PostgresTokenStorage::builder(globus_app_tests::postgres_connection_string())
            .namespace(namespace)
            .build()
            .unwrap_err();
        assert!(matches!(error, StorageError::InvalidNamespace), "{error:?}");
    }
}
