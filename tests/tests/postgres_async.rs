//! The async apps on the shared PostgreSQL storage (its queries on the
//! `blocking` pool): four apps with 50 tasks each send one grant between
//! them; and the fleet scenarios the blocking storage passes
//! (`globus_app_tests::fleet`: lost connections, killed holders, PgBouncer),
//! with machines on tokio and async-std. Needs PostgreSQL on 127.0.0.1:5432
//! (`GLOBUS_APP_TEST_POSTGRES` overrides).
//! Needs the tests crate's `postgres` feature: `cargo test --workspace
//! --all-features`, or `cargo test -p globus-app-tests --features postgres
//! --test postgres_async`.

use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use globus_app_async::login::{BrowserOpener, LocalServerLoginFlowManager, UnblockedLogin};
use globus_app_async::proto::app::TokenValidationErrorHandler;
use globus_app_async::proto::testing::SIM_CLIENT_ID;
use globus_app_async::storage::{AsyncPostgresTokenStorage, PostgresTokenStorage};
use globus_app_async::{ClientApp, GlobusAppConfig, UserApp};
use globus_app_blocking::storage::TokenStorage as _;
use globus_app_tests::AuthServer;
use globus_app_tests::fleet::{self, FleetUnderTest, MachineSettings, TRANSFER, print_outcome};

const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";

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
            let storage = AsyncPostgresTokenStorage::build(
                PostgresTokenStorage::builder(connection).table(table),
            )
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
                .token_storage(storage)
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

async fn storage_on(settings: &MachineSettings) -> AsyncPostgresTokenStorage {
    AsyncPostgresTokenStorage::build(
        PostgresTokenStorage::builder(&settings.connection)
            .table(&settings.table)
            .lease_duration(settings.lease),
    )
    .await
    .unwrap()
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
        .scope_requirements(TRANSFER, TRANSFER_ALL)
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

async fn client_app(base_url: &str, storage: AsyncPostgresTokenStorage) -> ClientApp {
    ClientApp::builder("Async Fleet")
        .client_id(SIM_CLIENT_ID)
        .client_secret("fleet-secret")
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(GlobusAppConfig::default().with_auth_base_url(base_url.to_owned()))
        .token_storage(storage)
        .build()
        .await
        .unwrap()
}

/// Expires every stored record, under the renewal lock.
async fn expire_all(storage: &AsyncPostgresTokenStorage) {
    let storage = Arc::clone(&storage.0);
    blocking::unblock(move || {
        let guard = storage.lock_renewal(TRANSFER).unwrap();
        let mut records = storage.load().unwrap().records().to_vec();
        for record in &mut records {
            record.expires_at = globus_app_tests::now().saturating_sub_secs(5);
        }
        storage.store(&records).unwrap();
        guard.release();
    })
    .await;
}

/// Async apps on `AsyncPostgresTokenStorage`, as the fleet scenarios of
/// `globus_app_tests::fleet` drive them; the machines alternate between
/// tokio and async-std.
#[derive(Default)]
struct AsyncFleet {
    started: AtomicUsize,
}

impl FleetUnderTest for AsyncFleet {
    fn log_in_and_expire(&self, settings: &MachineSettings) {
        async_std::task::block_on(async {
            let storage = storage_on(settings).await;
            let app = user_app(&settings.base_url, storage.clone()).await;
            app.login().await.unwrap();
            expire_all(&storage).await;
        });
    }

    fn get_client_token_and_expire(&self, settings: &MachineSettings) {
        async_std::task::block_on(async {
            let storage = storage_on(settings).await;
            let app = client_app(&settings.base_url, storage.clone()).await;
            app.get_authorizer(TRANSFER).await.unwrap();
            expire_all(&storage).await;
        });
    }

    fn stored_transfer(&self, settings: &MachineSettings) -> (String, Option<String>) {
        async_std::task::block_on(async {
            let storage = Arc::clone(&storage_on(settings).await.0);
            blocking::unblock(move || {
                let guard = storage.lock_renewal(TRANSFER).unwrap();
                let tokens = storage.load().unwrap();
                guard.release();
                let record = tokens.get(TRANSFER).unwrap();
                (
                    record.access_token.secret().to_owned(),
                    record.refresh_token.as_ref().map(|t| t.secret().to_owned()),
                )
            })
            .await
        })
    }

    fn start_machine(&self, settings: &MachineSettings) -> Child {
        let executor = if self
            .started
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(2)
        {
            "tokio"
        } else {
            "async-std"
        };
        settings.start(
            "async_machine_entry",
            &[("GLOBUS_APP_FLEET_EXECUTOR", executor)],
        )
    }
}

async fn machine(settings: MachineSettings) {
    let storage = storage_on(&settings).await;
    let authorization = if settings.kind == "client" {
        client_app(&settings.base_url, storage)
            .await
            .get_authorizer(TRANSFER)
            .await
    } else {
        user_app(&settings.base_url, storage)
            .await
            .get_authorizer(TRANSFER)
            .await
    };
    print_outcome(match authorization {
        Ok(authorization) => Ok(authorization.access_token().secret().to_owned()),
        Err(error) if error.is_login_required() => Err(error.to_string()),
        Err(error) => panic!("{error:?}"),
    });
}

/// Run as a child process (a "machine"): an async app on the shared
/// table, on tokio or async-std (`GLOBUS_APP_FLEET_EXECUTOR`).
#[test]
fn async_machine_entry() {
    let Some(settings) = MachineSettings::from_env() else {
        return; // Not a child: nothing to do.
    };
    if std::env::var("GLOBUS_APP_FLEET_EXECUTOR").as_deref() == Ok("tokio") {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(machine(settings));
    } else {
        async_std::task::block_on(machine(settings));
    }
}

#[test]
fn async_fleet_on_one_expired_token_sends_one_refresh_and_keeps_the_family() {
    fleet::one_refresh_for_the_fleet(&AsyncFleet::default());
}

#[test]
fn async_fleet_of_client_apps_sends_one_client_credentials_grant() {
    fleet::one_client_credentials_grant_for_the_fleet(&AsyncFleet::default());
}

#[test]
fn async_terminated_connection_mid_renewal_keeps_the_family() {
    fleet::terminated_connections_keep_the_family(&AsyncFleet::default());
}

#[test]
fn async_idle_session_timeout_mid_renewal_keeps_the_family() {
    fleet::an_idle_session_timeout_keeps_the_family(&AsyncFleet::default());
}

#[test]
#[cfg(unix)]
fn async_holder_killed_before_its_grant_is_replaced_after_its_lease() {
    fleet::a_holder_killed_before_its_grant_is_replaced(&AsyncFleet::default());
}

#[test]
#[cfg(unix)]
fn async_holder_killed_while_the_token_is_valid_costs_no_machine_a_wait() {
    fleet::a_holder_killed_while_the_token_is_valid_costs_no_machine_a_wait(&AsyncFleet::default());
}

#[test]
#[cfg(unix)]
fn async_holder_killed_after_its_grant_leaves_every_machine_needing_a_login() {
    fleet::a_holder_killed_after_its_grant_leaves_every_machine_needing_a_login(
        &AsyncFleet::default(),
    );
}

#[test]
fn async_fleet_through_pgbouncer_in_transaction_mode_sends_one_refresh() {
    fleet::one_refresh_through_pgbouncer(&AsyncFleet::default());
}

#[test]
fn async_lost_server_connection_through_pgbouncer_keeps_the_family() {
    fleet::a_lost_server_connection_through_pgbouncer_keeps_the_family(&AsyncFleet::default());
}

/// Built and used from inside a tokio runtime (multi-thread and current
/// thread) and under async-std: the async builder runs on the blocking
/// pool and the storage works; the blocking builder, called
/// on the runtime's thread, connects from a thread of its own instead of
/// panicking ("Cannot start a runtime from within a runtime"), and a
/// blocking call there is a typed error, not a panic.
#[test]
fn inside_tokio_and_async_std_building_works_and_blocking_calls_on_tokio_are_a_typed_error() {
    use globus_app_async::storage::AsyncTokenStorage as _;
    use globus_app_blocking::storage::StorageError;
    let schema = format!("in_runtime_{}", std::process::id());
    admin(&format!("CREATE SCHEMA {schema}"));
    let table = format!("{schema}.tokens");
    for flavour in ["multi-thread", "current-thread"] {
        let runtime = if flavour == "multi-thread" {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        .unwrap();
        runtime.block_on(async {
            let builder = || {
                PostgresTokenStorage::builder(globus_app_tests::postgres_connection_string())
                    .table(&table)
            };
            let storage = AsyncPostgresTokenStorage::build(builder()).await.unwrap();
            assert!(storage.load().await.unwrap().is_empty(), "{flavour}");

            let direct = builder().build().unwrap();
            let error = direct.load().unwrap_err();
            assert!(
                matches!(error, StorageError::OnAsyncRuntime),
                "{flavour}: {error:?}"
            );
            assert!(!error.is_retryable());
            // Off the runtime's threads, the same storage works.
            let loaded = blocking::unblock(move || direct.load()).await.unwrap();
            assert!(loaded.is_empty(), "{flavour}");
        });
    }
    // async-std's executor is not tokio: the async builder works there
    // too, and so does the blocking storage (its client's runtime nests
    // in no other).
    async_std::task::block_on(async {
        let builder = PostgresTokenStorage::builder(globus_app_tests::postgres_connection_string())
            .table(&table);
        let storage = AsyncPostgresTokenStorage::build(builder).await.unwrap();
        assert!(storage.load().await.unwrap().is_empty(), "async-std");
    });
    admin(&format!("DROP SCHEMA {schema} CASCADE"));
}
