//! 1000 async tasks calling `get_authorizer` on one expired token (one
//! client-credentials renewal against the local Globus Auth server), on
//! memory storage and on a JSON token file: wall time until every task has
//! a valid token. Every round asserts that exactly one grant was sent.

mod common;

use std::time::{Duration, Instant};

use common::{TRANSFER, TRANSFER_ALL, record};
use criterion::{Criterion, criterion_group, criterion_main};
use globus_app_async::ClientApp;
use globus_app_async::storage::Unblocked;
use globus_app_blocking::GlobusAppConfig;
use globus_app_blocking::proto::UnixTime;
use globus_app_blocking::proto::testing::SIM_CLIENT_ID;
use globus_app_blocking::proto::token::TokenData;
use globus_app_blocking::storage::{JsonTokenStorage, MemoryTokenStorage, TokenStorage};
use globus_app_tests::{AuthServer, TempDir, now};

const TASKS: usize = 1000;

fn expired() -> TokenData {
    record(TRANSFER, now().saturating_sub_secs(5))
}

fn app(
    storage: impl globus_app_async::storage::AsyncTokenStorage + 'static,
    server: &AuthServer,
) -> ClientApp {
    futures::executor::block_on(
        ClientApp::builder("Bench")
            .client_id(SIM_CLIENT_ID)
            .client_secret("bench-secret")
            .scope_requirements(TRANSFER, TRANSFER_ALL)
            .config(GlobusAppConfig::default().with_auth_base_url(server.base_url.clone()))
            .read_environment_variables(false)
            .token_storage(storage)
            .build(),
    )
    .unwrap()
}

fn renewal(c: &mut Criterion) {
    let server = AuthServer::start();
    server.fake().client_secret = Some("bench-secret".into());
    let dir = TempDir::new("bench-async-renewal");
    let memory = MemoryTokenStorage::new();
    let file = JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT").unwrap();
    // The storage the app uses, and a handle to expire its token.
    let setups: [(&str, ClientApp, Box<dyn TokenStorage>); 2] = [
        ("memory", app(memory.clone(), &server), Box::new(memory)),
        (
            "json_file",
            app(Unblocked::new(file.clone()), &server),
            Box::new(file),
        ),
    ];
    let mut group = c.benchmark_group("async_1000_tasks_expired_token");
    group.sample_size(20);
    for (name, app, handle) in &setups {
        group.bench_function(*name, |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    handle.store(&[expired()]).unwrap();
                    let before = server.grants("client_credentials");
                    let started = Instant::now();
                    let tokens = futures::executor::block_on(futures::future::join_all(
                        (0..TASKS).map(|_| app.get_authorizer(TRANSFER)),
                    ));
                    total += started.elapsed();
                    assert!(tokens.iter().all(|t| t.as_ref().is_ok_and(
                        |t| t.expires_at() > UnixTime::from(std::time::SystemTime::now())
                    )));
                    assert_eq!(server.grants("client_credentials") - before, 1);
                }
                total
            });
        });
    }
    group.finish();
}

criterion_group!(benches, renewal);
criterion_main!(benches);
