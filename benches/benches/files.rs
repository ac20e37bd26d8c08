//! The file-backed storages: the warm path on a JSON token file and a
//! SQLite database next to memory storage (a blocking `ClientApp` handing
//! out a valid token), and SQLite under contention (8 processes storing 100
//! times each into one database; the processes are this binary, started
//! with `GLOBUS_APP_BENCH_SQLITE_WRITER`).

mod common;

use std::hint::black_box;

use common::{TRANSFER, async_client_app, client_app, record, warm_get_authorizer};

/// No request is sent on the warm paths: the Auth URL is never used.
const UNUSED: &str = "http://127.0.0.1:9/";
use criterion::{Criterion, criterion_group};
use globus_app_blocking::storage::{
    JsonTokenStorage, MemoryTokenStorage, SqliteTokenStorage, TokenStorage,
};
use globus_app_tests::{TempDir, now};

fn warm_path(c: &mut Criterion) {
    let dir = TempDir::new("bench-files");
    let valid = [record(TRANSFER, now().saturating_add_secs(3600))];
    let memory = MemoryTokenStorage::new();
    let json = JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT").unwrap();
    let sqlite = SqliteTokenStorage::new(dir.0.join("tokens.db"), "DEFAULT").unwrap();
    memory.store(&valid).unwrap();
    json.store(&valid).unwrap();
    sqlite.store(&valid).unwrap();
    for (name, app) in [
        (
            "blocking_get_authorizer_warm_memory",
            client_app(memory, UNUSED),
        ),
        (
            "blocking_get_authorizer_warm_json_file",
            client_app(json, UNUSED),
        ),
        (
            "blocking_get_authorizer_warm_sqlite",
            client_app(sqlite, UNUSED),
        ),
    ] {
        warm_get_authorizer(c, name, &app);
    }
    async_warm_path(c, &dir);
}

/// The async warm path: `iters` calls awaited in one task, on memory and
/// JSON storage.
fn async_warm_path(c: &mut Criterion, dir: &TempDir) {
    let valid = [record(TRANSFER, now().saturating_add_secs(3600))];
    let memory = MemoryTokenStorage::new();
    let json = JsonTokenStorage::new(dir.0.join("async-tokens.json"), "DEFAULT").unwrap();
    memory.store(&valid).unwrap();
    json.store(&valid).unwrap();
    for (name, app) in [
        (
            "async_get_authorizer_warm_memory",
            async_client_app(memory, UNUSED),
        ),
        (
            "async_get_authorizer_warm_json_file",
            async_client_app(json, UNUSED),
        ),
    ] {
        futures::executor::block_on(app.get_authorizer(TRANSFER)).unwrap();
        futures::executor::block_on(app.get_authorizer(TRANSFER)).unwrap();
        c.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let started = std::time::Instant::now();
                // One task for all the calls: the executor's cost is paid
                // once. A file storage looks at its file once a second,
                // on the thread pool: then the task waits, as it would.
                futures::executor::block_on(async {
                    for _ in 0..iters {
                        black_box(app.get_authorizer(black_box(TRANSFER)).await.unwrap());
                    }
                });
                started.elapsed()
            });
        });
    }
}

/// Processes storing into one SQLite database at once, and stores each.
const WRITERS: usize = 8;
const STORES: usize = 100;

/// A writer process: `STORES` stores of its own record; prints how many
/// failed.
fn sqlite_writer(path: &str, writer: &str) {
    let storage = SqliteTokenStorage::new(path, "DEFAULT").unwrap();
    let record = record(
        &format!("rs{writer}.api.globus.org"),
        now().saturating_add_secs(3600),
    );
    let failed = (0..STORES)
        .filter(|_| storage.store(std::slice::from_ref(&record)).is_err())
        .count();
    println!("FAILED={failed}");
}

fn sqlite_contention(c: &mut Criterion) {
    let dir = TempDir::new("bench-sqlite-contention");
    let mut group = c.benchmark_group("sqlite_contention");
    group.sample_size(10);
    group.bench_function("8_processes_100_stores", |b| {
        b.iter_custom(|iterations| {
            let mut total = std::time::Duration::ZERO;
            for round in 0..iterations {
                let path = dir.0.join(format!("tokens-{round}.db"));
                drop(SqliteTokenStorage::new(&path, "DEFAULT").unwrap());
                let started = std::time::Instant::now();
                let writers: Vec<_> = (0..WRITERS)
                    .map(|writer| {
                        std::process::Command::new(std::env::current_exe().unwrap())
                            .env("GLOBUS_APP_BENCH_SQLITE_WRITER", &path)
                            .env("GLOBUS_APP_BENCH_WRITER", writer.to_string())
                            .stdout(std::process::Stdio::piped())
                            .spawn()
                            .unwrap()
                    })
                    .collect();
                let failed: usize = writers
                    .into_iter()
                    .map(|child| {
                        let output = child.wait_with_output().unwrap();
                        String::from_utf8_lossy(&output.stdout)
                            .trim()
                            .trim_start_matches("FAILED=")
                            .parse::<usize>()
                            .unwrap()
                    })
                    .sum();
                total += started.elapsed();
                assert_eq!(failed, 0, "failed stores");
                let stored = SqliteTokenStorage::new(&path, "DEFAULT")
                    .unwrap()
                    .load()
                    .unwrap();
                assert_eq!(stored.records().len(), WRITERS);
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, warm_path, sqlite_contention);

fn main() {
    if let (Ok(path), Ok(writer)) = (
        std::env::var("GLOBUS_APP_BENCH_SQLITE_WRITER"),
        std::env::var("GLOBUS_APP_BENCH_WRITER"),
    ) {
        sqlite_writer(&path, &writer);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
