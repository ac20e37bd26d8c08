//! The file-backed storages (a JSON token file, a SQLite database) on the
//! warm path, next to memory storage: a blocking `ClientApp` handing out a
//! valid token.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use globus_app_blocking::proto::UnixTime;
use globus_app_blocking::proto::testing::SIM_CLIENT_ID;
use globus_app_blocking::proto::token::TokenData;
use globus_app_blocking::storage::{
    JsonTokenStorage, MemoryTokenStorage, SqliteTokenStorage, TokenStorage,
};
use globus_app_blocking::{ClientApp, GlobusAppConfig};
use globus_app_tests::{TempDir, now};

const TRANSFER: &str = "transfer.api.globus.org";
const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";

fn record(expires_at: UnixTime) -> TokenData {
    TokenData::from_json(&serde_json::json!({
        "resource_server": TRANSFER, "scope": TRANSFER_ALL, "access_token": "AT-transfer",
        "expires_at_seconds": expires_at.as_secs(), "token_type": "Bearer",
    }))
    .unwrap()
}

fn client_app(storage: impl TokenStorage + 'static, auth_base_url: &str) -> ClientApp {
    ClientApp::builder("Bench")
        .client_id(SIM_CLIENT_ID)
        .client_secret("bench-secret")
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(GlobusAppConfig::default().with_auth_base_url(auth_base_url.to_owned()))
        .read_environment_variables(false)
        .token_storage(storage)
        .build()
        .unwrap()
}

fn warm_path(c: &mut Criterion) {
    let dir = TempDir::new("bench-files");
    let valid = [record(now().saturating_add_secs(3600))];
    let memory = MemoryTokenStorage::new();
    let json = JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT").unwrap();
    let sqlite = SqliteTokenStorage::new(dir.0.join("tokens.db"), "DEFAULT").unwrap();
    memory.store(&valid).unwrap();
    json.store(&valid).unwrap();
    sqlite.store(&valid).unwrap();
    // No request is sent on these paths: the URL is never used.
    let unused = "http://127.0.0.1:9/";
    for (name, app) in [
        (
            "blocking_get_authorizer_warm_memory",
            client_app(memory, unused),
        ),
        (
            "blocking_get_authorizer_warm_json_file",
            client_app(json, unused),
        ),
        (
            "blocking_get_authorizer_warm_sqlite",
            client_app(sqlite, unused),
        ),
    ] {
        app.get_authorizer(TRANSFER).unwrap();
        c.bench_function(name, |b| {
            b.iter(|| app.get_authorizer(black_box(TRANSFER)).unwrap());
        });
    }
}

criterion_group!(benches, warm_path);
criterion_main!(benches);
