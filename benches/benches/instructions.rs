//! Instruction counts of the warm path (gungraun: callgrind, one run each,
//! deterministic): a blocking and an async `get_authorizer` handing out a
//! valid token from memory, JSON and SQLite storage (the async one polled
//! with a no-op waker, and awaited under tokio), a warm authorized request,
//! and one JSON store.
//!
//! Each count has a hard limit, its budget plus 10% (`benches/README.md`):
//! `.ci/run` runs these and fails above it. Run them with
//! `cargo bench -p globus-app-benches --bench instructions` (needs valgrind
//! and `cargo install gungraun-runner --version 0.20.0`).
// gungraun's macros generate undocumented modules and items.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;

use common::{TRANSFER, async_client_app, client_app, record};
use globus_app_blocking::storage::{
    JsonTokenStorage, MemoryTokenStorage, SqliteTokenStorage, TokenStorage,
};
use globus_app_tests::{TempDir, now};
use gungraun::{
    Callgrind, EventKind, LibraryBenchmarkConfig, library_benchmark, library_benchmark_group, main,
};
use std::future::Future as _;
use std::pin::pin;
use std::task::{Context, Waker};

/// Warm calls per benchmark run: the count per call is the run's divided
/// by this (the harness's own instructions spread thin).
const CALLS: u64 = 100;
/// The budgets, in instructions: 600 per warm call; 80,000 per store.
const WARM_BUDGET: u64 = 600 * CALLS;
const STORE_BUDGET: u64 = 80_000;
/// Per warm authorized request: 6,000 (5,060 measured; 8,623 before the
/// token policy resolved destinations without parsing URLs).
const AUTHORIZED_BUDGET: u64 = 6_000 * CALLS;

/// A hard limit of `budget` plus 10%.
fn limit(budget: u64) -> LibraryBenchmarkConfig {
    let mut config = LibraryBenchmarkConfig::default();
    config.tool(Callgrind::default().hard_limits([(EventKind::Ir, budget + budget / 10)]));
    config
}

/// A scratch directory that outlives the benchmark (the process ends
/// after it).
fn scratch(name: &str) -> &'static TempDir {
    Box::leak(Box::new(TempDir::new(name)))
}

fn warm<S: TokenStorage + 'static>(storage: S) -> &'static globus_app_blocking::ClientApp {
    storage
        .store(&[record(TRANSFER, now().saturating_add_secs(3600))])
        .unwrap();
    let app = Box::leak(Box::new(client_app(storage, "http://127.0.0.1:9/")));
    // The first calls go the whole way (the first reads the storage; the
    // second, on a fresh snapshot, leaves this thread's copy).
    app.get_authorizer(TRANSFER).unwrap();
    app.get_authorizer(TRANSFER).unwrap();
    app
}

fn memory() -> &'static globus_app_blocking::ClientApp {
    warm(MemoryTokenStorage::new())
}

fn json_file() -> &'static globus_app_blocking::ClientApp {
    let dir = scratch("instructions-json");
    warm(JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT").unwrap())
}

fn sqlite() -> &'static globus_app_blocking::ClientApp {
    let dir = scratch("instructions-sqlite");
    warm(SqliteTokenStorage::new(dir.0.join("tokens.db"), "DEFAULT").unwrap())
}

#[library_benchmark(config = limit(WARM_BUDGET))]
#[bench::memory(setup = memory)]
#[bench::json_file(setup = json_file)]
#[bench::sqlite(setup = sqlite)]
fn blocking_get_authorizer_warm(app: &'static globus_app_blocking::ClientApp) {
    for _ in 0..CALLS {
        black_box(app.get_authorizer(black_box(TRANSFER)).unwrap());
    }
}

fn async_warm<S: TokenStorage + 'static>(storage: S) -> &'static globus_app_async::ClientApp {
    storage
        .store(&[record(TRANSFER, now().saturating_add_secs(3600))])
        .unwrap();
    let app = Box::leak(Box::new(async_client_app(storage, "http://127.0.0.1:9/")));
    futures::executor::block_on(app.get_authorizer(TRANSFER)).unwrap();
    futures::executor::block_on(app.get_authorizer(TRANSFER)).unwrap();
    app
}

fn async_memory() -> &'static globus_app_async::ClientApp {
    async_warm(MemoryTokenStorage::new())
}

fn async_json_file() -> &'static globus_app_async::ClientApp {
    let dir = scratch("instructions-async-json");
    async_warm(JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT").unwrap())
}

// The calls awaited in one task, as a program would, polled once with a
// waker that does nothing (an executor's own cost is not the library's):
// warm calls are ready at their first poll.
#[library_benchmark(config = limit(WARM_BUDGET))]
#[bench::memory(setup = async_memory)]
#[bench::json_file(setup = async_json_file)]
fn async_get_authorizer_warm(app: &'static globus_app_async::ClientApp) {
    let mut context = Context::from_waker(Waker::noop());
    let task = pin!(async {
        for _ in 0..CALLS {
            black_box(app.get_authorizer(black_box(TRANSFER)).await.unwrap());
        }
    });
    assert!(
        task.poll(&mut context).is_ready(),
        "warm calls are ready at their first poll"
    );
}

/// The memory app of [`async_memory`] and a tokio runtime (current
/// thread, so that no worker thread's instructions mix in) to await it on.
fn async_memory_on_tokio() -> (
    &'static tokio::runtime::Runtime,
    &'static globus_app_async::ClientApp,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (Box::leak(Box::new(runtime)), async_memory())
}

// The same calls awaited in one task under tokio, as a tokio program
// would: the runtime's `block_on` (its context, its budget, its waker) is
// counted beside the library's work. The figure users see on tokio; the
// no-op waker's above is the library's own.
#[library_benchmark(config = limit(WARM_BUDGET))]
#[bench::memory(setup = async_memory_on_tokio)]
fn async_get_authorizer_warm_tokio(
    (runtime, app): (
        &'static tokio::runtime::Runtime,
        &'static globus_app_async::ClientApp,
    ),
) {
    runtime.block_on(async {
        for _ in 0..CALLS {
            black_box(app.get_authorizer(black_box(TRANSFER)).await.unwrap());
        }
    });
}

/// A warm authorized client of the memory app and the request it sends
/// (a Transfer URL the client resolves by its origin), over an HTTP client
/// that answers 200 at once: only the library's work is counted (the token
/// policy's verdict, the resource server, the warm authorization, the
/// header, the copy of the request, the verdict on the answer).
fn authorized_setup() -> (
    &'static globus_app_blocking::AuthorizedClient,
    http::Request<Vec<u8>>,
) {
    let app = memory();
    let answered = |_request: http::Request<Vec<u8>>| {
        Ok(http::Response::builder()
            .status(200)
            .body(Vec::new())
            .unwrap())
    };
    let client = Box::leak(Box::new(app.authorized(answered)));
    let request = http::Request::get("https://transfer.api.globus.org/v0.10/task_list")
        .body(Vec::new())
        .unwrap();
    client.send(&request).unwrap();
    (client, request)
}

#[library_benchmark(config = limit(AUTHORIZED_BUDGET))]
#[bench::transfer(setup = authorized_setup)]
fn authorized_send_warm(
    (client, request): (
        &'static globus_app_blocking::AuthorizedClient,
        http::Request<Vec<u8>>,
    ),
) {
    for _ in 0..CALLS {
        black_box(client.send(black_box(&request)).unwrap());
    }
}

/// A JSON token file in a directory that also holds 1000 other files: a
/// store's cost must not grow with them.
fn json_store_setup() -> (
    &'static JsonTokenStorage,
    Vec<globus_app_blocking::proto::token::TokenData>,
) {
    let dir = scratch("instructions-store");
    for n in 0..1000 {
        std::fs::write(dir.0.join(format!("other-{n}.txt")), b"x").unwrap();
    }
    let storage = Box::leak(Box::new(
        JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT").unwrap(),
    ));
    let records = vec![record(TRANSFER, now().saturating_add_secs(3600))];
    storage.store(&records).unwrap();
    (storage, records)
}

#[library_benchmark(config = limit(STORE_BUDGET))]
#[bench::one_record(setup = json_store_setup)]
fn json_store(
    (storage, records): (
        &'static JsonTokenStorage,
        Vec<globus_app_blocking::proto::token::TokenData>,
    ),
) {
    storage.store(black_box(&records)).unwrap();
}

library_benchmark_group!(
    name = warm_path,
    benchmarks = [
        blocking_get_authorizer_warm,
        async_get_authorizer_warm,
        async_get_authorizer_warm_tokio,
        authorized_send_warm,
        json_store
    ]
);

main!(library_benchmark_groups = warm_path);
