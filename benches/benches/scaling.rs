//! One app shared by threads and tasks: calls per second and CPU time per
//! call of a warm `get_authorizer`, with 1, 2 and 4 threads (blocking) and
//! 1, 8 and 64 tasks (async, on a 2-worker tokio runtime), for memory,
//! JSON, SQLite and PostgreSQL storage. Each row runs for one second.
//!
//! ```text
//! cargo bench -p globus-app-benches --bench scaling            # every row
//! cargo bench -p globus-app-benches --bench scaling -- memory  # rows naming "memory"
//! ```
//!
//! Not a criterion benchmark: criterion times one thread. CPU time is the
//! process's (`/proc/self/stat`, in 10 ms clock ticks: a one-second row
//! reads it to about 1%). PostgreSQL rows need the server on
//! 127.0.0.1:5432 (`GLOBUS_APP_TEST_POSTGRES`).

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{TRANSFER, async_client_app, client_app, cpu_time, record};
use globus_app_blocking::ClientApp;
use globus_app_blocking::storage::{
    JsonTokenStorage, MemoryTokenStorage, PostgresTokenStorage, SqliteTokenStorage, TokenStorage,
};
use globus_app_tests::{TempDir, now};

const ROW: Duration = Duration::from_secs(1);
const UNUSED_AUTH: &str = "http://127.0.0.1:9/";

/// Counts calls until told to stop.
#[derive(Clone, Default)]
struct Run {
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
}

/// Runs `work` for one row's time; calls per second and CPU ns per call.
fn measure(work: impl FnOnce(&Run)) -> (f64, f64) {
    let run = Run::default();
    let (cpu, started) = (cpu_time(), Instant::now());
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(ROW);
            run.stop.store(true, Ordering::Relaxed);
        });
        work(&run);
    });
    let (wall, cpu) = (started.elapsed(), cpu_time().saturating_sub(cpu));
    // Counts well below 2^52: exact as f64.
    #[allow(clippy::cast_precision_loss)]
    let calls = run.calls.load(Ordering::Relaxed) as f64;
    (calls / wall.as_secs_f64(), cpu.as_secs_f64() * 1e9 / calls)
}

fn threads(app: &ClientApp, count: usize) -> (f64, f64) {
    measure(|run| {
        std::thread::scope(|scope| {
            for _ in 0..count {
                scope.spawn(|| {
                    let mut mine = 0;
                    while !run.stop.load(Ordering::Relaxed) {
                        for _ in 0..1000 {
                            black_box(app.get_authorizer(black_box(TRANSFER)).unwrap());
                        }
                        mine += 1000;
                    }
                    run.calls.fetch_add(mine, Ordering::Relaxed);
                });
            }
        });
    })
}

fn tasks(app: &globus_app_async::ClientApp, count: usize) -> (f64, f64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    measure(|run| {
        runtime.block_on(async {
            let handles: Vec<_> = (0..count)
                .map(|_| {
                    let (app, run) = (app.clone(), run.clone());
                    tokio::spawn(async move {
                        let mut mine = 0;
                        while !run.stop.load(Ordering::Relaxed) {
                            for _ in 0..1000 {
                                black_box(app.get_authorizer(black_box(TRANSFER)).await.unwrap());
                            }
                            mine += 1000;
                            tokio::task::yield_now().await;
                        }
                        run.calls.fetch_add(mine, Ordering::Relaxed);
                    })
                })
                .collect();
            for handle in handles {
                handle.await.unwrap();
            }
        });
    })
}

/// A storage holding a valid Transfer token.
fn filled<S: TokenStorage>(storage: S) -> S {
    storage
        .store(&[record(TRANSFER, now().saturating_add_secs(3600))])
        .unwrap();
    storage
}

/// The rows of one storage: 1, 2 and 4 threads, then 1, 8 and 64 tasks,
/// each on a new app over a storage from `open` (`None`: skipped).
fn rows<S: TokenStorage + 'static>(name: &str, filter: Option<&str>, open: impl Fn() -> Option<S>) {
    let wanted = |row: &str| filter.is_none_or(|f| row.contains(f));
    for count in [1, 2, 4] {
        let row = format!("{name}, {count} thread(s)");
        match open().filter(|_| wanted(&row)) {
            Some(storage) => {
                let (rate, cpu) = threads(&client_app(storage, UNUSED_AUTH), count);
                println!("| {row} | {rate:.0} | {cpu:.0} |");
            }
            None if wanted(&row) => println!("| {row} | skipped | |"),
            None => {}
        }
    }
    for count in [1, 8, 64] {
        let row = format!("{name}, {count} task(s)");
        if let Some(storage) = open().filter(|_| wanted(&row)) {
            let (rate, cpu) = tasks(&async_client_app(storage, UNUSED_AUTH), count);
            println!("| {row} | {rate:.0} | {cpu:.0} |");
        }
    }
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let filter = filter.as_deref();
    let dir = TempDir::new("bench-scaling");
    println!("| row | calls/s | CPU ns per call |");
    println!("|---|---|---|");
    rows("memory", filter, || Some(filled(MemoryTokenStorage::new())));
    rows("json_file", filter, || {
        Some(filled(
            JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT").unwrap(),
        ))
    });
    rows("sqlite", filter, || {
        Some(filled(
            SqliteTokenStorage::new(dir.0.join("tokens.db"), "DEFAULT").unwrap(),
        ))
    });
    let table = format!("globus_app_scaling_{}", std::process::id());
    rows("postgres", filter, || {
        PostgresTokenStorage::builder(globus_app_tests::postgres_connection_string())
            .table(table.as_str())
            .build()
            .ok()
            .map(filled)
    });
    if let Ok(mut admin) = std::panic::catch_unwind(globus_app_tests::postgres_admin) {
        let _ = admin.batch_execute(&format!("DROP TABLE IF EXISTS {table}, {table}_schema"));
    }
}
