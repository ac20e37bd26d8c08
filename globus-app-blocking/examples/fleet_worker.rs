//! A worker of a fleet: a `ClientApp` whose tokens live in PostgreSQL, shared
//! by every machine that runs it, so that the fleet sends one grant per
//! expiry instead of one per machine.
//!
//! ```text
//! GLOBUS_CLIENT_ID=<client id> GLOBUS_CLIENT_SECRET=<secret> \
//! GLOBUS_APP_POSTGRES="host=db.internal user=globus dbname=globus" \
//!     cargo run -p globus-app-blocking --features postgres --example fleet_worker
//! ```
//!
//! The connection string may be empty: `PGHOST`, `PGUSER`, `PGDATABASE`...
//! are read as libpq reads them. With `--dev-server`, the example runs
//! against a local Globus-Auth-compatible server and the PostgreSQL of
//! 127.0.0.1:5432, as four "machines" (four apps with a pool each) in one
//! process, in a schema it creates and drops, and shows that they sent one
//! client-credentials grant between them.

use std::time::Duration;

use anyhow::Context;
use globus_app_blocking::storage::PostgresTokenStorage;
use globus_app_blocking::{ClientApp, GlobusAppConfig};

const TRANSFER: &str = "transfer.api.globus.org";
const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";

fn worker(
    client_id: &str,
    secret: &str,
    config: GlobusAppConfig,
    connection: &str,
    table: &str,
) -> anyhow::Result<ClientApp> {
    let storage = PostgresTokenStorage::builder(connection)
        .table(table)
        // One namespace per client: many services can share the table.
        .namespace(format!("client:{client_id}"))
        // Tokens written or revoked by other machines are seen within 5 s.
        .max_staleness(Duration::from_secs(5))
        .on_store_failure(|error| eprintln!("shared token store: {error}"))
        .build()?;
    Ok(ClientApp::builder("Fleet Worker")
        .client_id(client_id)
        .client_secret(secret)
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(config)
        .token_storage(storage)
        .build()?)
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|arg| arg == "--dev-server") {
        return dev_server();
    }
    let client_id =
        std::env::var("GLOBUS_CLIENT_ID").context(globus_app_dev_server::MISSING_CLIENT_ID)?;
    let secret = std::env::var("GLOBUS_CLIENT_SECRET")
        .context(globus_app_dev_server::MISSING_CLIENT_SECRET)?;
    let connection = std::env::var("GLOBUS_APP_POSTGRES").unwrap_or_default();
    let app = worker(
        &client_id,
        &secret,
        GlobusAppConfig::default(),
        &connection,
        "globus_app_tokens",
    )?;
    let authorization = app.get_authorizer(TRANSFER)?;
    println!("Transfer token valid until {}", authorization.expires_at());
    Ok(())
}

fn dev_server() -> anyhow::Result<()> {
    let server = globus_app_dev_server::AuthServer::start();
    server.fake().client_secret = Some("fleet-secret".into());
    let connection = std::env::var("GLOBUS_APP_POSTGRES")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_owned());
    let schema = format!("globus_app_fleet_example_{}", std::process::id());
    let mut admin = postgres::Client::connect(&connection, postgres::NoTls)?;
    admin.batch_execute(&format!("CREATE SCHEMA {schema}"))?;
    let result = (|| -> anyhow::Result<()> {
        let config = GlobusAppConfig::default().with_auth_base_url(server.base_url.clone());
        let table = format!("{schema}.tokens");
        let machines = (0..4)
            .map(|_| {
                worker(
                    globus_app_blocking::proto::testing::SIM_CLIENT_ID,
                    "fleet-secret",
                    config.clone(),
                    &connection,
                    &table,
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let tokens = std::thread::scope(|scope| {
            let handles: Vec<_> = machines
                .iter()
                .map(|app| scope.spawn(move || app.get_authorizer(TRANSFER)))
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .map_err(|_| anyhow::anyhow!("a worker panicked"))
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })?;
        let grants = server.grants("client_credentials");
        for (machine, token) in tokens.iter().enumerate() {
            let token = token
                .as_ref()
                .map_err(|error| anyhow::anyhow!("machine {machine}: {error}"))?;
            println!(
                "machine {machine}: token valid until {}",
                token.expires_at()
            );
        }
        println!("client-credentials grants sent by the fleet: {grants}");
        if grants != 1 {
            anyhow::bail!("expected one grant, the fleet sent {grants}");
        }
        Ok(())
    })();
    admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))?;
    result
}
