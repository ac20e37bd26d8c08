//! What one service call costs the client, blocking against async:
//! `TransferClient::endpoint_search("Tutorial Collection")` of a
//! `ClientApp` against a `globus-auth-dev-server` in another process, with
//! the blocking client, the async client on its default transport (the
//! pooled ureq agent on the `blocking` pool), and the async client on
//! reqwest, both awaited under tokio. Driven by `benches/service_cost.sh`,
//! which pins this process and the server to different cores and measures
//! each mode by instructions (callgrind), futex calls (strace) and CPU time:
//!
//! ```text
//! service_cost <blocking|async|reqwest> CALLS [TASKS]
//! ```
//!
//! runs TASKS threads (blocking) or tokio tasks (async), each making CALLS
//! calls after one warm-up call (the grant and the connection), and prints
//! the CPU time per call (user and system, every thread of the process).
//! The server is named by `GLOBUS_APP_BENCH_AUTH_URL` and
//! `GLOBUS_APP_BENCH_SERVICES_URL`, with the client secret `bench-secret`.
//! Without arguments (as `cargo bench` runs it) it says how to run it.

mod common;

use std::time::{Duration, Instant};

use common::{async_client_app, client_app, cpu_time};
use globus_app_blocking::storage::MemoryTokenStorage;

const FULLTEXT: &str = "Tutorial Collection";

fn main() {
    // cargo bench passes --bench; the figures are the script's.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let (Some(mode), Some(calls)) = (args.first(), args.get(1)) else {
        println!(
            "service_cost: run benches/service_cost.sh (it starts the server and measures each mode)"
        );
        return;
    };
    let calls: u32 = calls.parse().expect("CALLS: a number");
    let tasks: u32 = args
        .get(2)
        .map_or(1, |t| t.parse().expect("TASKS: a number"));
    let auth = std::env::var("GLOBUS_APP_BENCH_AUTH_URL").expect("GLOBUS_APP_BENCH_AUTH_URL");
    let services =
        std::env::var("GLOBUS_APP_BENCH_SERVICES_URL").expect("GLOBUS_APP_BENCH_SERVICES_URL");
    let (cpu, wall) = match mode.as_str() {
        "blocking" => blocking(&auth, &services, calls, tasks),
        "async" => asynchronous(&auth, &services, calls, tasks, false),
        "reqwest" => asynchronous(&auth, &services, calls, tasks, true),
        other => panic!("unknown mode {other:?}: blocking, async or reqwest"),
    };
    let total = f64::from(calls) * f64::from(tasks);
    println!(
        "{mode} calls={calls} tasks={tasks} cpu_ns_per_call={:.0} wall_us_per_call={:.1}",
        cpu.as_secs_f64() * 1e9 / total,
        wall.as_secs_f64() * 1e6 / total
    );
}

/// CPU time and wall time of `calls` calls on each of `tasks` threads.
fn blocking(auth: &str, services: &str, calls: u32, tasks: u32) -> (Duration, Duration) {
    use globus_app_blocking::service::{ServiceClient, TRANSFER, TransferClient};
    let app = client_app(MemoryTokenStorage::new(), auth);
    let transfer = TransferClient::from_service(
        ServiceClient::builder(&app, TRANSFER)
            .base_url(services)
            .build()
            .unwrap(),
    );
    let call = |transfer: &TransferClient| {
        transfer.endpoint_search(FULLTEXT).unwrap();
    };
    call(&transfer);
    let (cpu, started) = (cpu_time(), Instant::now());
    std::thread::scope(|scope| {
        for _ in 0..tasks {
            scope.spawn(|| (0..calls).for_each(|_| call(&transfer)));
        }
    });
    (cpu_time().saturating_sub(cpu), started.elapsed())
}

/// The same with tokio tasks on a multi-threaded runtime (a worker per
/// core), on the default transport or on reqwest.
fn asynchronous(
    auth: &str,
    services: &str,
    calls: u32,
    tasks: u32,
    reqwest: bool,
) -> (Duration, Duration) {
    use globus_app_async::service::{ServiceClient, TRANSFER, TransferClient};
    let app = async_client_app(MemoryTokenStorage::new(), auth);
    // A worker per core unless GLOBUS_APP_BENCH_WORKERS says otherwise.
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = std::env::var("GLOBUS_APP_BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
    {
        runtime.worker_threads(workers);
    }
    let runtime = runtime.enable_all().build().unwrap();
    runtime.block_on(async {
        let mut builder = ServiceClient::builder(&app, TRANSFER).base_url(services);
        if reqwest {
            builder = builder.transport(
                globus_app_async::http::ReqwestClient::pooled(Duration::from_secs(60)).unwrap(),
            );
        }
        let transfer = TransferClient::from_service(builder.build().unwrap());
        transfer.endpoint_search(FULLTEXT).await.unwrap();
        let (cpu, started) = (cpu_time(), Instant::now());
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let transfer = transfer.clone();
                tokio::spawn(async move {
                    for _ in 0..calls {
                        transfer.endpoint_search(FULLTEXT).await.unwrap();
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
        (cpu_time().saturating_sub(cpu), started.elapsed())
    })
}
