//! The shared PostgreSQL storage against the machine's PostgreSQL
//! (127.0.0.1:5432; `GLOBUS_APP_TEST_POSTGRES` overrides): the warm path
//! with the level-1 cache next to memory storage, a cold load, a store, and
//! a fleet of 8 "machines" (each its own app and pool) renewing one expired
//! token. The benchmarks work in a schema of their own, dropped at the end.

mod common;

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{TRANSFER, client_app, record, warm_get_authorizer};
use criterion::{Criterion, criterion_group, criterion_main};
use globus_app_blocking::ClientApp;
use globus_app_blocking::proto::token::TokenData;
use globus_app_blocking::storage::{MemoryTokenStorage, PostgresTokenStorage, TokenStorage};
use globus_app_tests::{AuthServer, now};

const MACHINES: usize = 8;

struct Schema(String);

impl Schema {
    fn new() -> Self {
        let name = format!("globus_app_bench_{}", std::process::id());
        admin(&format!("CREATE SCHEMA {name}"));
        Self(name)
    }

    fn storage(&self, table: &str, max_staleness: Duration) -> PostgresTokenStorage {
        PostgresTokenStorage::builder(globus_app_tests::postgres_connection_string())
            .table(format!("{}.{table}", self.0))
            .max_staleness(max_staleness)
            .build()
            .unwrap()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        admin(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0));
    }
}

fn admin(sql: &str) {
    globus_app_tests::postgres_admin()
        .batch_execute(sql)
        .expect("PostgreSQL on 127.0.0.1:5432");
}

fn warm_path(c: &mut Criterion, schema: &Schema) {
    let valid = now().saturating_add_secs(3600);
    let memory = MemoryTokenStorage::new();
    memory.store(&[record(TRANSFER, valid)]).unwrap();
    let postgres = schema.storage("warm", Duration::from_secs(5));
    postgres.store(&[record(TRANSFER, valid)]).unwrap();
    // No request is sent on these paths: the URL is never used.
    let unused = "http://127.0.0.1:9/";
    let memory = client_app(memory, unused);
    warm_get_authorizer(c, "blocking_get_authorizer_warm_memory", &memory);
    let postgres = client_app(postgres, unused);
    warm_get_authorizer(c, "blocking_get_authorizer_warm_postgres", &postgres);
}

fn round_trips(c: &mut Criterion, schema: &Schema) {
    let valid = now().saturating_add_secs(3600);
    let cold = schema.storage("cold", Duration::ZERO);
    let records: Vec<TokenData> = (0..10)
        .map(|i| record(&format!("rs{i}.api.globus.org"), valid))
        .collect();
    cold.store(&records).unwrap();
    c.bench_function("postgres_cold_load_10_servers", |b| {
        b.iter(|| cold.load().unwrap());
    });
    let one = [record(TRANSFER, valid)];
    c.bench_function("postgres_store_one_record", |b| {
        b.iter(|| cold.store(black_box(&one)).unwrap());
    });
}

fn fleet(c: &mut Criterion, schema: &Schema) {
    let server = AuthServer::start();
    server.fake().client_secret = Some("bench-secret".into());
    // No level-1 cache: each round, the token is expired behind their backs.
    let machines: Vec<ClientApp> = (0..MACHINES)
        .map(|_| client_app(schema.storage("fleet", Duration::ZERO), &server.base_url))
        .collect();
    let shared = schema.storage("fleet", Duration::ZERO);
    let grants = || server.grants("client_credentials");
    let mut group = c.benchmark_group("postgres_fleet");
    group.sample_size(10);
    group.bench_function("renewal_8_machines", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                shared
                    .store(&[record(TRANSFER, now().saturating_sub_secs(5))])
                    .unwrap();
                let before = grants();
                let start = Arc::new(Barrier::new(MACHINES + 1));
                let began = std::thread::scope(|scope| {
                    for app in &machines {
                        let start = Arc::clone(&start);
                        scope.spawn(move || {
                            start.wait();
                            app.get_authorizer(TRANSFER).unwrap();
                        });
                    }
                    start.wait();
                    Instant::now()
                });
                total += began.elapsed();
                assert_eq!(grants() - before, 1, "one grant for the fleet");
            }
            total
        });
    });
    group.finish();
}

fn postgres_storage(c: &mut Criterion) {
    let schema = Schema::new();
    warm_path(c, &schema);
    round_trips(c, &schema);
    fleet(c, &schema);
}

criterion_group!(benches, postgres_storage);
criterion_main!(benches);
