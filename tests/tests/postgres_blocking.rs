//! `PostgresTokenStorage` against the PostgreSQL server of the machine
//! (127.0.0.1:5432, trust authentication; `GLOBUS_APP_TEST_POSTGRES`
//! overrides the connection string). Each test works in a schema of its
//! own, created and dropped by the test. Processes stand in for machines:
//! each has its own app and connection pool. Needs the tests crate's
//! `postgres` feature: `cargo test --workspace --all-features`, as
//! `.ci/run` does, or `cargo test -p globus-app-tests --features postgres
//! --test postgres_blocking`.

// The blocking crate's test helpers and storage contract, which its own
// tests (file and memory storages) use too.
#[path = "../../globus-app-blocking/tests/common/mod.rs"]
mod common;

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::contract::{self, record, token_of};
use common::{FollowingBrowser, SIM_CLIENT_ID, now};
use globus_app_blocking::login::LocalServerLoginFlowManager;
use globus_app_blocking::proto::app::TokenValidationErrorHandler;
use globus_app_blocking::proto::storage::sealing::{SealingKey, SealingKeys};
use globus_app_blocking::storage::{PostgresTokenStorage, StorageError, TokenStorage};
use globus_app_blocking::{ClientApp, GlobusAppConfig, UserApp};
use globus_app_tests::fleet::{
    self, FleetUnderTest, MachineSettings, Schema, TRANSFER, print_outcome, wait_for,
};
use globus_app_tests::postgres_servers::TlsPostgres;

const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";

/// A storage on `schema`'s table, in `namespace`.
fn storage_in(schema: &Schema, namespace: &str) -> PostgresTokenStorage {
    PostgresTokenStorage::builder(globus_app_tests::postgres_connection_string())
        .table(schema.table())
        .namespace(namespace)
        .build()
        .unwrap()
}

#[test]
fn keeps_the_storage_contract() {
    let schema = Schema::new("contract");
    contract::round_trip(&storage_in(&schema, "DEFAULT"));
    contract::namespaces_are_isolated(&storage_in(&schema, "one"), &storage_in(&schema, "two"));
    contract::sees_the_other_writer_under_the_lock(
        &storage_in(&schema, "w"),
        &storage_in(&schema, "w"),
    );
    // Two storages are two pools: the lock is PostgreSQL's, not this process's.
    contract::renewal_lock_is_exclusive(&storage_in(&schema, "l"), &storage_in(&schema, "l"));
    contract::try_lock_renewal_never_waits(&storage_in(&schema, "t"), &storage_in(&schema, "t"));

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
            &format!("SELECT version FROM {}.tokens_schema", schema.0),
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
    let unsealed = storage_in(&schema, "DEFAULT");
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

fn storage_on(settings: &MachineSettings) -> PostgresTokenStorage {
    PostgresTokenStorage::builder(&settings.connection)
        .table(&settings.table)
        .lease_duration(settings.lease)
        .build()
        .unwrap()
}

fn expire_all(storage: &PostgresTokenStorage) {
    let guard = storage.lock_renewal(TRANSFER).unwrap();
    let mut records = storage.load().unwrap().records().to_vec();
    for record in &mut records {
        record.expires_at = now().saturating_sub_secs(5);
    }
    storage.store(&records).unwrap();
    guard.release();
}

/// Blocking apps on `PostgresTokenStorage`, as the fleet scenarios of
/// `globus_app_tests::fleet` drive them.
struct BlockingFleet;

impl FleetUnderTest for BlockingFleet {
    fn log_in_and_expire(&self, settings: &MachineSettings) {
        user_app(&settings.base_url, storage_on(settings))
            .login()
            .unwrap();
        expire_all(&storage_on(settings));
    }

    fn get_client_token_and_expire(&self, settings: &MachineSettings) {
        client_app(&settings.base_url, storage_on(settings))
            .get_authorizer(TRANSFER)
            .unwrap();
        expire_all(&storage_on(settings));
    }

    fn stored_transfer(&self, settings: &MachineSettings) -> (String, Option<String>) {
        let storage = storage_on(settings);
        let guard = storage.lock_renewal(TRANSFER).unwrap();
        let tokens = storage.load().unwrap();
        guard.release();
        let record = tokens.get(TRANSFER).unwrap();
        (
            record.access_token.secret().to_owned(),
            record.refresh_token.as_ref().map(|t| t.secret().to_owned()),
        )
    }

    fn start_machine(&self, settings: &MachineSettings) -> Child {
        settings.start("machine_entry", &[])
    }
}

/// Run as a child process (a "machine"): a blocking app on the shared
/// table gets an authorizer and prints its token, or that a login is
/// required.
#[test]
fn machine_entry() {
    let Some(settings) = MachineSettings::from_env() else {
        return; // Not a child: nothing to do.
    };
    let storage = storage_on(&settings);
    let authorization = if settings.kind == "client" {
        client_app(&settings.base_url, storage).get_authorizer(TRANSFER)
    } else {
        user_app(&settings.base_url, storage).get_authorizer(TRANSFER)
    };
    print_outcome(match authorization {
        Ok(authorization) => Ok(authorization.access_token().secret().to_owned()),
        Err(error) if error.is_login_required() => Err(error.to_string()),
        Err(error) => panic!("{error:?}"),
    });
}

#[test]
fn a_fleet_on_one_expired_token_sends_one_refresh_and_keeps_the_family() {
    fleet::one_refresh_for_the_fleet(&BlockingFleet);
}

#[test]
fn a_fleet_of_client_apps_sends_one_client_credentials_grant() {
    fleet::one_client_credentials_grant_for_the_fleet(&BlockingFleet);
}

#[test]
fn a_terminated_connection_mid_renewal_keeps_the_family() {
    fleet::terminated_connections_keep_the_family(&BlockingFleet);
}

#[test]
fn an_idle_session_timeout_mid_renewal_keeps_the_family() {
    fleet::an_idle_session_timeout_keeps_the_family(&BlockingFleet);
}

#[test]
#[cfg(unix)]
fn a_holder_killed_before_its_grant_reached_globus_auth_is_replaced_after_its_lease() {
    fleet::a_holder_killed_before_its_grant_is_replaced(&BlockingFleet);
}

#[test]
#[cfg(unix)]
fn a_holder_killed_after_its_grant_leaves_every_machine_needing_a_login() {
    fleet::a_holder_killed_after_its_grant_leaves_every_machine_needing_a_login(&BlockingFleet);
}

#[test]
#[cfg(unix)]
fn a_holder_killed_while_the_token_is_valid_costs_no_machine_a_wait() {
    fleet::a_holder_killed_while_the_token_is_valid_costs_no_machine_a_wait(&BlockingFleet);
}

#[test]
fn a_fleet_through_pgbouncer_in_transaction_mode_sends_one_refresh() {
    fleet::one_refresh_through_pgbouncer(&BlockingFleet);
}

#[test]
fn a_lost_server_connection_through_pgbouncer_keeps_the_family() {
    fleet::a_lost_server_connection_through_pgbouncer_keeps_the_family(&BlockingFleet);
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

// ------------------------------------------------------------ leases

/// What `f` logged through `tracing` on this thread, as text.
fn logged(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
}

/// Two machines on one row: the second waits out the first's lease, takes
/// it over when it expires and writes; the first's late result then loses
/// its compare-and-set (the newer row is kept, a typed error), and its
/// release finds its lease gone. Each step is a tracing event without a
/// token.
#[test]
fn an_expired_lease_is_taken_over_and_the_late_holder_loses_its_compare_and_set() {
    let schema = Schema::new("lease_takeover");
    let build = || {
        PostgresTokenStorage::builder(globus_app_tests::postgres_connection_string())
            .table(schema.table())
            .lease_duration(Duration::from_secs(1))
            // As a holder cut off from PostgreSQL: its lease lapses.
            .lease_heartbeat(false)
            .lock_timeout(Duration::from_millis(300))
            .build()
            .unwrap()
    };
    let (first, second) = (build(), build());
    first.store(&[record("rs", "OLD-TOKEN")]).unwrap();

    let log = logged(|| {
        let late = first.lock_renewal("rs").unwrap();
        assert_eq!(token_of(&first, "rs").as_deref(), Some("OLD-TOKEN"));
        // Live: the second machine waits, then gives up, typed.
        let error = second.lock_renewal("rs").unwrap_err();
        assert!(
            matches!(error, StorageError::LockTimeout { .. }),
            "{error:?}"
        );
        // Expired: taken over; the second machine writes.
        std::thread::sleep(Duration::from_millis(1100));
        let current = second.lock_renewal("rs").unwrap();
        assert_eq!(token_of(&second, "rs").as_deref(), Some("OLD-TOKEN"));
        second.store(&[record("rs", "NEWER-TOKEN")]).unwrap();
        current.release();
        // The first machine's late result is not written over it.
        let error = first.store(&[record("rs", "LATE-TOKEN")]).unwrap_err();
        assert!(
            matches!(&error, StorageError::RenewalSuperseded { resource_server } if resource_server == "rs"),
            "{error:?}"
        );
        late.release();
    });
    let guard = second.lock_renewal("rs").unwrap();
    assert_eq!(token_of(&second, "rs").as_deref(), Some("NEWER-TOKEN"));
    guard.release();
    for event in [
        "lease taken",
        "lease wait timed out",
        "expired lease taken over",
        "compare-and-set lost",
        "own lease had expired",
    ] {
        assert!(log.contains(event), "no {event:?} in:\n{log}");
    }
    assert!(!log.contains("-TOKEN"), "a token in the log:\n{log}");
}

/// Under one lease, a renewal's write may be followed by another (a
/// renewal kept in memory stored after a new one): each compares with the
/// row the one before it left, so both are written.
#[test]
fn writes_under_one_lease_follow_each_other() {
    let schema = Schema::new("lease_writes");
    let storage = storage_in(&schema, "DEFAULT");
    storage.store(&[record("rs", "A")]).unwrap();
    let guard = storage.lock_renewal("rs").unwrap();
    assert_eq!(token_of(&storage, "rs").as_deref(), Some("A"));
    storage.store(&[record("rs", "B")]).unwrap();
    storage.store(&[record("rs", "C")]).unwrap();
    guard.release();
    let guard = storage.lock_renewal("rs").unwrap();
    assert_eq!(token_of(&storage, "rs").as_deref(), Some("C"));
    guard.release();
}

/// A `ClientApp` whose renewal is overtaken: its lease (1 s) expires while
/// Globus Auth's answer is held (2.5 s), another machine takes the lease
/// over and writes a newer token, and the app's compare-and-set loses.
/// The app hands out the newer stored token, not an error (before, a
/// retryable `RenewalNotSaved` although a good token was stored).
#[test]
fn a_client_app_whose_renewal_is_superseded_takes_the_newer_stored_token() {
    let server = globus_app_tests::AuthServer::start();
    let schema = Schema::new("superseded_app");
    // As a holder cut off from PostgreSQL: its lease lapses.
    let (renewing, other) = renewal_in_flight(&server, &schema, false, Duration::from_millis(2500));
    // The app's lease has expired (1 s): taken over, a newer token written.
    std::thread::sleep(Duration::from_millis(1200));
    let takeover = other.lock_renewal(TRANSFER).unwrap();
    other.store(&[record(TRANSFER, "NEWER-TOKEN")]).unwrap();
    takeover.release();
    let handed = renewing.join().unwrap().unwrap();
    assert_eq!(handed, "NEWER-TOKEN");
    assert_eq!(token_of(&other, TRANSFER).as_deref(), Some("NEWER-TOKEN"));
    assert_eq!(server.grants("client_credentials"), 1);
}

/// A TLS mode the server cannot satisfy (`sslmode=require` or stricter,
/// against a PgBouncer that offers no TLS) is a typed configuration error,
/// not retryable; before, a retryable `Unavailable`.
#[test]
fn an_sslmode_the_server_cannot_satisfy_is_a_configuration_error() {
    let pooler = globus_app_tests::postgres_servers::PgBouncer::start_in_transaction_mode(2);
    for mode in ["require", "verify-ca", "verify-full"] {
        let error =
            PostgresTokenStorage::builder(format!("{} sslmode={mode}", pooler.connection_string()))
                .build()
                .unwrap_err();
        assert!(
            matches!(error, StorageError::TlsNotOffered { .. }),
            "{mode}: {error:?}"
        );
        assert!(!error.is_retryable(), "{mode}");
    }
    // Without TLS demanded, the same pooler is fine.
    PostgresTokenStorage::builder(format!("{} sslmode=prefer", pooler.connection_string()))
        .build()
        .unwrap();
}

/// The holder's heartbeat keeps its lease while a grant takes longer than
/// the lease (1 s lease, Globus Auth's answer held 3 s): no other machine
/// gets the lease meanwhile, and one grant is sent. Without the heartbeat
/// (as before) the lease lapsed after 1 s and a second machine renewed too.
#[test]
fn a_live_holders_heartbeat_keeps_its_lease_through_a_slow_grant() {
    let server = globus_app_tests::AuthServer::start();
    let schema = Schema::new("heartbeat");
    let (renewing, other) = renewal_in_flight(&server, &schema, true, Duration::from_secs(3));
    // Well past the 1 s lease, twice: still the holder's.
    for _ in 0..2 {
        std::thread::sleep(Duration::from_secs(1));
        assert!(
            other.try_lock_renewal(TRANSFER).unwrap().is_none(),
            "the lease lapsed under a live grant"
        );
    }
    let token = renewing.join().unwrap().unwrap();
    assert_eq!(token_of(&other, TRANSFER).as_deref(), Some(token.as_str()));
    assert_eq!(server.grants("client_credentials"), 1);
    // Released: free at once.
    other.try_lock_renewal(TRANSFER).unwrap().unwrap().release();
}

/// Machines waiting on a held lease watch the token row: when the holder
/// writes, they read its row without taking the lease themselves. One
/// lease take per expiry (counted by a trigger on the lease table), where
/// before every waiter took the lease in turn after the holder let go.
#[test]
fn waiters_read_the_holders_write_without_taking_the_lease() {
    let schema = Schema::new("convoy");
    let storage = || {
        PostgresTokenStorage::builder(globus_app_tests::postgres_connection_string())
            .table(schema.table())
            .build()
            .unwrap()
    };
    let holder = storage();
    holder.store(&[record("rs", "OLD-TOKEN")]).unwrap();
    schema.count_lease_takes();

    let held = holder.lock_renewal("rs").unwrap();
    // Read under the lease, as a renewal does before its grant.
    assert_eq!(token_of(&holder, "rs").as_deref(), Some("OLD-TOKEN"));
    let waiters: Vec<_> = (0..6)
        .map(|_| {
            let waiter = storage();
            std::thread::spawn(move || {
                let guard = waiter.lock_renewal("rs").unwrap();
                let token = token_of(&waiter, "rs");
                guard.release();
                token
            })
        })
        .collect();
    // Every waiter has found the lease held (each polls within 250 ms).
    std::thread::sleep(Duration::from_millis(600));
    holder.store(&[record("rs", "NEW-TOKEN")]).unwrap();
    held.release();
    for waiter in waiters {
        assert_eq!(waiter.join().unwrap().as_deref(), Some("NEW-TOKEN"));
    }
    assert_eq!(schema.lease_takes(), 1, "only the holder took the lease");
}

/// A `ClientApp` on `schema`'s table with a 1 s lease (extended or not, as
/// `heartbeat` says) whose first renewal is in flight on a thread of its
/// own, Globus Auth's answer held for `hold`; returned once the grant has
/// reached Globus Auth, with another machine's storage on the same table.
fn renewal_in_flight(
    server: &globus_app_tests::AuthServer,
    schema: &Schema,
    heartbeat: bool,
    hold: Duration,
) -> (
    std::thread::JoinHandle<Result<String, globus_app_blocking::Error>>,
    PostgresTokenStorage,
) {
    server.fake().client_secret = Some("s3cret".into());
    let storage = || {
        PostgresTokenStorage::builder(globus_app_tests::postgres_connection_string())
            .table(schema.table())
            .lease_duration(Duration::from_secs(1))
            .lease_heartbeat(heartbeat)
            .build()
            .unwrap()
    };
    let app = ClientApp::builder("Renewal in flight")
        .client_id(SIM_CLIENT_ID)
        .client_secret("s3cret")
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(GlobusAppConfig::default().with_auth_base_url(server.base_url.clone()))
        .token_storage(storage())
        .build()
        .unwrap();
    server.hold_next_answers(&[hold]);
    let renewing = std::thread::spawn(move || {
        app.get_authorizer(TRANSFER)
            .map(|authorization| authorization.access_token().secret().to_owned())
    });
    assert!(
        wait_for(Duration::from_secs(30), || server.pending_delays() == 0),
        "the app's grant never reached Globus Auth"
    );
    (renewing, storage())
}

/// The schema-1 release's renewal lock key, as its source computes it
/// (FNV-1a, 64 bits, over the table as given, the namespace and the
/// resource server, each followed by a NUL): what its processes lock.
fn schema_1_lock_key(table: &str, namespace: &str, resource_server: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [table, namespace, resource_server] {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// A rolling upgrade from the schema-1 release. Its processes renew under
/// a session advisory lock and know nothing of leases; those started
/// before the upgrade keep running. On the table this release upgraded
/// (created here with that release's own statements), a renewal here
/// honours their lock: it does not start while one of them holds it, and
/// holds it itself while it renews, so none of them starts meanwhile.
/// Before, the two overlapped (two grants; with rotation, the family
/// revoked). A table created fresh takes no such lock (a pooler in
/// transaction mode stays usable), and clearing the mark ends it.
#[test]
fn a_table_upgraded_from_schema_1_honours_the_previous_releases_renewal_lock() {
    let schema = Schema::new("upgrade");
    let table = schema.table();
    let mut admin = globus_app_tests::postgres_admin();
    admin
        .batch_execute(&format!(
            "CREATE TABLE {table} (
                 namespace text NOT NULL,
                 resource_server text NOT NULL,
                 record text NOT NULL,
                 key_id text,
                 updated_at timestamptz NOT NULL DEFAULT now(),
                 PRIMARY KEY (namespace, resource_server)
             );
             CREATE TABLE {table}_schema (version integer NOT NULL);
             INSERT INTO {table}_schema (version) VALUES (1);"
        ))
        .unwrap();
    let build = |table: &str| {
        PostgresTokenStorage::builder(globus_app_tests::postgres_connection_string())
            .table(table)
            .lock_timeout(Duration::from_millis(300))
            .build()
            .unwrap()
    };
    let upgraded = build(&table);
    let key = schema_1_lock_key(&table, "DEFAULT", "rs");

    // A process of the previous release renews: nothing here starts.
    let mut old_process = globus_app_tests::postgres_admin();
    old_process
        .batch_execute(&format!("SELECT pg_advisory_lock({key})"))
        .unwrap();
    assert!(upgraded.try_lock_renewal("rs").unwrap().is_none());
    let error = upgraded.lock_renewal("rs").unwrap_err();
    assert!(
        matches!(error, StorageError::LockTimeout { .. }),
        "{error:?}"
    );
    old_process
        .batch_execute(&format!("SELECT pg_advisory_unlock({key})"))
        .unwrap();

    // A renewal here: the previous release's processes cannot start one.
    let held = upgraded.lock_renewal("rs").unwrap();
    let try_old_lock = |client: &mut postgres::Client| -> bool {
        client
            .query_one(&format!("SELECT pg_try_advisory_lock({key})"), &[])
            .unwrap()
            .get(0)
    };
    assert!(
        !try_old_lock(&mut old_process),
        "an old process could renew"
    );
    held.release();
    assert!(try_old_lock(&mut old_process), "released with the lease");
    old_process
        .batch_execute(&format!("SELECT pg_advisory_unlock({key})"))
        .unwrap();

    // Once the last process of the previous release is gone, the operator
    // clears the mark: storages built after it take no advisory lock.
    admin
        .batch_execute(&format!("UPDATE {table}_schema SET legacy_lock = false"))
        .unwrap();
    let after = build(&table);
    let held = after.lock_renewal("rs").unwrap();
    assert!(
        try_old_lock(&mut old_process),
        "no advisory lock after the mark"
    );
    held.release();

    // A table created fresh never had the mark.
    let fresh_schema = Schema::new("fresh");
    let fresh = build(&fresh_schema.table());
    let fresh_key = schema_1_lock_key(&fresh_schema.table(), "DEFAULT", "rs");
    let held = fresh.lock_renewal("rs").unwrap();
    let free: bool = old_process
        .query_one(&format!("SELECT pg_try_advisory_lock({fresh_key})"), &[])
        .unwrap()
        .get(0);
    assert!(free, "a fresh table took the old lock");
    held.release();
}

/// A machine that found the token due, and asks for the lease only after
/// another machine renewed and let go, takes no lease: the row has moved
/// past the version it read, so it reads the new row instead.
#[test]
fn a_late_machine_reads_the_renewal_it_missed_without_taking_the_lease() {
    let schema = Schema::new("late_waiter");
    let storage = || {
        PostgresTokenStorage::builder(globus_app_tests::postgres_connection_string())
            .table(schema.table())
            .build()
            .unwrap()
    };
    let (early, late) = (storage(), storage());
    early.store(&[record("rs", "OLD-TOKEN")]).unwrap();
    schema.count_lease_takes();
    // The late machine reads the old row (and would find it due).
    assert_eq!(token_of(&late, "rs").as_deref(), Some("OLD-TOKEN"));
    // The early one renews and lets go.
    let held = early.lock_renewal("rs").unwrap();
    assert_eq!(token_of(&early, "rs").as_deref(), Some("OLD-TOKEN"));
    early.store(&[record("rs", "NEW-TOKEN")]).unwrap();
    held.release();
    // Then the late one asks, waiting or not: the new row, no lease.
    for wait in [false, true] {
        let guard = if wait {
            late.lock_renewal("rs").unwrap()
        } else {
            late.try_lock_renewal("rs").unwrap().expect("a guard")
        };
        assert_eq!(token_of(&late, "rs").as_deref(), Some("NEW-TOKEN"));
        guard.release();
        // Read again: the next ask compares with the new row.
        assert_eq!(token_of(&late, "rs").as_deref(), Some("NEW-TOKEN"));
        early
            .store(&[record("rs", "NEW-TOKEN")])
            .unwrap_or_default();
    }
    assert_eq!(
        schema.lease_takes(),
        1,
        "only the early machine took the lease"
    );
}

/// A storage's own renewal is not taken for another machine's: renewing
/// again within `max_staleness` of its own write (the cache serving what
/// it wrote), it takes a real lease, which another machine then finds
/// held. Before, the row "moved past" the version last read, and the
/// renewal went on without a lease, beside any other machine's.
#[test]
fn a_storages_own_write_is_not_taken_for_a_renewal_elsewhere() {
    let schema = Schema::new("own_write");
    let storage = || {
        PostgresTokenStorage::builder(globus_app_tests::postgres_connection_string())
            .table(schema.table())
            .max_staleness(Duration::from_secs(600))
            .build()
            .unwrap()
    };
    let (ours, theirs) = (storage(), storage());
    ours.store(&[record("rs", "FIRST-TOKEN")]).unwrap();
    for (round, token) in ["SECOND-TOKEN", "THIRD-TOKEN"].into_iter().enumerate() {
        // Loaded from the cache, as a caller finding the token due.
        assert!(token_of(&ours, "rs").is_some());
        let held = ours.lock_renewal("rs").unwrap();
        assert!(
            theirs.try_lock_renewal("rs").unwrap().is_none(),
            "round {round}: renewing without a lease"
        );
        assert!(token_of(&ours, "rs").is_some());
        ours.store(&[record("rs", token)]).unwrap();
        held.release();
    }
}
