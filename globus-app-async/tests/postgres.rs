//! The async apps on the shared PostgreSQL storage (its queries on the
//! `blocking` pool): four "machines" (apps with a pool each) and 50 tasks
//! each, on tokio, send one client-credentials grant between them. Needs
//! PostgreSQL on 127.0.0.1:5432 (`GLOBUS_APP_TEST_POSTGRES` overrides).
//! Needs the `postgres` feature and the tests crate's: `cargo test
//! --workspace --all-features`, or `cargo test -p globus-app-async
//! --features postgres,globus-app-tests/postgres`.

use globus_app_async::ClientApp;
use globus_app_async::GlobusAppConfig;
use globus_app_async::proto::testing::SIM_CLIENT_ID;
use globus_app_async::storage::{AsyncPostgresTokenStorage, PostgresTokenStorage};
use globus_app_tests::AuthServer;

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
