//! The async apps on the shared PostgreSQL storage (its queries on the
//! `blocking` pool): four "machines" (apps with a pool each) and 50 tasks
//! each, on tokio, send one client-credentials grant between them. Needs
//! PostgreSQL on 127.0.0.1:5432 (`GLOBUS_APP_TEST_POSTGRES` overrides).
//! Needs the `postgres` feature and the tests crate's: `cargo test
//! --workspace --all-features`, or `cargo test -p globus-app-async
//! --features postgres,globus-app-tests/postgres`.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use globus_app_async::login::{BrowserOpener, LocalServerLoginFlowManager, UnblockedLogin};
use globus_app_async::proto::app::TokenValidationErrorHandler;
use globus_app_async::proto::testing::SIM_CLIENT_ID;
use globus_app_async::proto::token::TokenData;
use globus_app_async::storage::{AsyncPostgresTokenStorage, PostgresTokenStorage};
use globus_app_async::{ClientApp, GlobusAppConfig, UserApp};
use globus_app_blocking::storage::TokenStorage as _;
use globus_app_tests::AuthServer;
use globus_app_tests::postgres_servers::{
    fleet_application_name, lease_held, terminate_fleet_sessions,
};

const TRANSFER: &str = "transfer.api.globus.org";

fn admin(sql: &str) {
    globus_app_tests::postgres_admin()
        .batch_execute(sql)
        .expect("PostgreSQL on 127.0.0.1:5432");
}

#[test]
fn async_machines_on_one_table_send_one_grant() {
    let schema = format!("globus_app_async_{}", std::process::id());
    admin(&format!("CREATE SCHEMA {schema}"));
    let server = AuthServer::start();
    server.fake().client_secret = Some("secret".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async {
        let mut machines = Vec::new();
        for _ in 0..4 {
            let table = format!("{schema}.tokens");
            let connection = globus_app_tests::postgres_connection_string();
            let storage = blocking::unblock(move || {
                PostgresTokenStorage::builder(connection)
                    .table(table)
                    .build()
            })
            .await
            .unwrap();
            let app = ClientApp::builder("Async Fleet")
                .client_id(SIM_CLIENT_ID)
                .client_secret("secret")
                .scope_requirements(
                    TRANSFER,
                    "urn:globus:auth:scope:transfer.api.globus.org:all",
                )
                .config(GlobusAppConfig::default().with_auth_base_url(server.base_url.clone()))
                .token_storage(AsyncPostgresTokenStorage::new(storage))
                .build()
                .await
                .unwrap();
            machines.push(app);
        }
        let tasks: Vec<_> = machines
            .iter()
            .flat_map(|app| std::iter::repeat_n(app, 50))
            .map(|app| {
                let app = app.clone();
                tokio::spawn(async move { app.get_authorizer(TRANSFER).await })
            })
            .collect();
        let mut tokens = Vec::new();
        for task in tasks {
            tokens.push(
                task.await
                    .unwrap()
                    .unwrap()
                    .access_token()
                    .secret()
                    .to_owned(),
            );
        }
        tokens
    });
    admin(&format!("DROP SCHEMA {schema} CASCADE"));
    let grants = server.grants("client_credentials");
    assert_eq!(grants, 1, "one grant for 4 machines and 200 tasks");
    assert!(outcome.windows(2).all(|w| w[0] == w[1]));
}

// ------------------------------------------------ the fleet, as processes

const MACHINES: usize = 8;

fn fleet_connection(table: &str) -> String {
    format!(
        "{} application_name={}",
        globus_app_tests::postgres_connection_string(),
        fleet_application_name(table)
    )
}

async fn fleet_storage(table: &str, lease: Duration) -> AsyncPostgresTokenStorage {
    let (connection, table) = (fleet_connection(table), table.to_owned());
    let storage = blocking::unblock(move || {
        PostgresTokenStorage::builder(connection)
            .table(table)
            .lease_duration(lease)
            .build()
    })
    .await
    .unwrap();
    AsyncPostgresTokenStorage::new(storage)
}

struct FollowingBrowser;

impl BrowserOpener for FollowingBrowser {
    fn open(&self, url: &str) -> Result<(), globus_app_async::login::BrowserError> {
        globus_app_tests::follow_authorize_url(url);
        Ok(())
    }
}

async fn user_app(base_url: &str, storage: AsyncPostgresTokenStorage) -> UserApp {
    UserApp::builder("Async Fleet")
        .client_id(SIM_CLIENT_ID)
        .scope_requirements(
            TRANSFER,
            "urn:globus:auth:scope:transfer.api.globus.org:all",
        )
        .config(
            GlobusAppConfig::default()
                .with_auth_base_url(base_url.to_owned())
                .with_request_refresh_tokens(true)
                .with_token_validation_error_handler(TokenValidationErrorHandler::Raise),
        )
        .token_storage(storage)
        .login_flow_manager(UnblockedLogin::new(
            LocalServerLoginFlowManager::new()
                .with_browser(FollowingBrowser)
                .with_timeout(Duration::from_secs(10))
                .allow_remote_session(true),
        ))
        .build()
        .await
        .unwrap()
}

async fn machine(base_url: String, table: String, lease: Duration) {
    let app = user_app(&base_url, fleet_storage(&table, lease).await).await;
    match app.get_authorizer(TRANSFER).await {
        Ok(authorization) => println!("TOKEN={}", authorization.access_token().secret()),
        Err(error) if error.is_login_required() => println!("LOGIN_REQUIRED={error}"),
        Err(error) => panic!("{error:?}"),
    }
}

/// Run as a child process (a "machine"): an async app on the shared
/// table, on tokio or async-std (`GLOBUS_APP_FLEET_EXECUTOR`).
#[test]
fn async_machine_entry() {
    let (Ok(base_url), Ok(table), Ok(lease), Ok(executor)) = (
        std::env::var("GLOBUS_APP_FLEET_BASE"),
        std::env::var("GLOBUS_APP_FLEET_TABLE"),
        std::env::var("GLOBUS_APP_FLEET_LEASE_MS"),
        std::env::var("GLOBUS_APP_FLEET_EXECUTOR"),
    ) else {
        return; // Not a child: nothing to do.
    };
    let lease = Duration::from_millis(lease.parse().unwrap());
    if executor == "tokio" {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(machine(base_url, table, lease));
    } else {
        async_std::task::block_on(machine(base_url, table, lease));
    }
}

/// `count` machines, half on tokio and half on async-std.
fn start_machines(server: &AuthServer, table: &str, lease: Duration, count: usize) -> Vec<Child> {
    (0..count)
        .map(|i| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "async_machine_entry", "--nocapture"])
                .env("GLOBUS_APP_FLEET_BASE", &server.base_url)
                .env("GLOBUS_APP_FLEET_TABLE", table)
                .env("GLOBUS_APP_FLEET_LEASE_MS", lease.as_millis().to_string())
                .env(
                    "GLOBUS_APP_FLEET_EXECUTOR",
                    if i % 2 == 0 { "tokio" } else { "async-std" },
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect()
}

fn printed(child: Child, prefix: &str) -> String {
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|line| line.split_once(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {stdout}"))
        .1
        .trim()
        .to_owned()
}

fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

/// A user's fleet on one expired token, rotation on: logged in, expired.
fn expired_user_fleet(server: &AuthServer, table: &str) -> AsyncPostgresTokenStorage {
    server.fake().rotate_refresh_tokens = true;
    async_std::task::block_on(async {
        let storage = fleet_storage(table, Duration::from_secs(90)).await;
        user_app(&server.base_url, storage.clone())
            .await
            .login()
            .await
            .unwrap();
        let inner = Arc::clone(&storage.0);
        blocking::unblock(move || {
            let guard = inner.lock_renewal(TRANSFER).unwrap();
            let mut records = inner.load().unwrap().records().to_vec();
            for record in &mut records {
                record.expires_at = globus_app_tests::now().saturating_sub_secs(5);
            }
            inner.store(&records).unwrap();
            guard.release();
        })
        .await;
        storage
    })
}

fn stored_transfer(storage: &AsyncPostgresTokenStorage) -> TokenData {
    let inner = &storage.0;
    let guard = inner.lock_renewal(TRANSFER).unwrap();
    let record = inner.load().unwrap().get(TRANSFER).unwrap().clone();
    guard.release();
    record
}

struct Schema(String);

impl Schema {
    fn new(test: &str) -> Self {
        let name = format!("globus_app_async_{test}_{}", std::process::id());
        admin(&format!("CREATE SCHEMA {name}"));
        Self(name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = globus_app_tests::postgres_admin()
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0));
    }
}

/// Async machines on tokio and async-std; the holder's PostgreSQL
/// connections are terminated while its refresh is held up: one grant,
/// the rotated family alive, every machine on the fresh token.
#[test]
fn async_machines_keep_the_family_when_the_holders_connection_is_terminated() {
    let server = AuthServer::start();
    let schema = Schema::new("terminated");
    let table = format!("{}.tokens", schema.0);
    let storage = expired_user_fleet(&server, &table);
    server.delay_next(&[Duration::from_secs(3)]);
    let machines = start_machines(&server, &table, Duration::from_secs(90), MACHINES);
    assert!(
        wait_for(Duration::from_secs(30), || server.pending_delays() == 0
            && lease_held(&table)),
        "no machine took the lease and sent its refresh"
    );
    assert!(terminate_fleet_sessions(&table) >= 1);
    let tokens: Vec<String> = machines.into_iter().map(|m| printed(m, "TOKEN=")).collect();
    assert_eq!(server.grants("refresh_token"), 1);
    assert!(tokens.windows(2).all(|w| w[0] == w[1]));
    let transfer = stored_transfer(&storage);
    assert_eq!(transfer.access_token.secret(), tokens[0]);
    assert!(
        server.fake().is_live(
            transfer.refresh_token.as_ref().unwrap().secret(),
            globus_app_tests::now()
        ),
        "the rotated refresh token family survived"
    );
}

/// An async holder killed after Globus Auth rotated its refresh token and
/// before it wrote the new one: every async machine reports a typed
/// login-required error, and only one more (rejected) refresh is sent.
#[test]
#[cfg(unix)]
fn async_machines_need_a_login_after_a_holder_killed_after_its_grant() {
    let server = AuthServer::start();
    let schema = Schema::new("killed_after");
    let table = format!("{}.tokens", schema.0);
    let storage = expired_user_fleet(&server, &table);
    let lease = Duration::from_secs(2);
    server.hold_next_answers(&[Duration::from_secs(20)]);
    let mut holder = start_machines(&server, &table, lease, 1).remove(0);
    assert!(
        wait_for(Duration::from_secs(30), || server.pending_delays() == 0
            && lease_held(&table)),
        "the machine never took the lease and sent its refresh"
    );
    holder.kill().unwrap();
    let _ = holder.wait();
    for machine in start_machines(&server, &table, lease, MACHINES) {
        printed(machine, "LOGIN_REQUIRED=");
    }
    assert_eq!(
        server.grants("refresh_token"),
        2,
        "the dead holder's refresh, and one rejected refresh"
    );
    assert!(stored_transfer(&storage).refresh_token.is_none());
}
