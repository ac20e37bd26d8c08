//! Soak: an async `ClientApp` whose 64 tokio tasks call Transfer
//! (`endpoint_search`) through a `TransferClient`, and a blocking one in a
//! loop of its own, for `GLOBUS_APP_SOAK_MINUTES` minutes (60 by default),
//! with tokens renewed about every 3 s. Every minute it prints the
//! process's resident memory, open file descriptors, threads, calls per
//! second and renewals; at the end, the memory slope after the first 10
//! minutes (MiB/h) and the renewals per expiry.
//!
//! ```text
//! cargo bench -p globus-app-benches --bench soak
//! GLOBUS_APP_SOAK_MINUTES=10 cargo bench -p globus-app-benches --bench soak
//! ```
//!
//! The local Globus Auth and Transfer service run in a child process (this
//! binary again), which drops its request logs as it goes, so the figures
//! are the client's alone. A benchmark, not a test: nothing is asserted.

// Counts and sizes shown as floating-point figures.
#![allow(clippy::cast_precision_loss)]

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use globus_app_blocking::GlobusAppConfig;
use globus_app_blocking::proto::testing::SIM_CLIENT_ID;
use globus_app_blocking::storage::MemoryTokenStorage;
use globus_app_tests::AuthServer;

const SERVER: &str = "GLOBUS_APP_SOAK_SERVER";
const SECRET: &str = "soak-secret";
const TRANSFER: &str = "transfer.api.globus.org";
const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";
/// Tokens live 63 s and are renewed 60 s before they expire: every 3 s.
const TOKEN_LIFETIME: i64 = 63;
const RENEWAL_PERIOD_SECS: f64 = 3.0;
const TASKS: usize = 64;
/// Each task's pause between calls: the machine has two cores, and the
/// servers run on them too.
const PAUSE: Duration = Duration::from_millis(20);

fn main() {
    if std::env::var_os(SERVER).is_some() {
        serve();
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // cargo bench asks benchmarks to list themselves
    }
    let minutes: u64 = std::env::var("GLOBUS_APP_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(60);
    soak(minutes);
}

/// The child: the local Globus Auth and Transfer service, until its
/// standard input closes (the parent ended). Prints their URLs, then the
/// number of client-credentials grants so far, every second.
fn serve() {
    let server = AuthServer::start();
    {
        let mut fake = server.fake();
        fake.client_secret = Some(SECRET.into());
        fake.access_token_lifetime = TOKEN_LIFETIME;
    }
    let services = server.start_services();
    let mut out = std::io::stdout();
    let _ = writeln!(out, "auth {}", server.base_url);
    let _ = writeln!(out, "services {}", services.base_url);
    let _ = out.flush();
    let parent_gone = Arc::new(AtomicBool::new(false));
    let gone = Arc::clone(&parent_gone);
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        gone.store(true, Ordering::Relaxed);
    });
    let mut grants = 0;
    // Bounded: at most a day, and over when the parent is.
    for _ in 0..86_400 {
        if parent_gone.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
        {
            let mut fake = server.fake();
            grants += fake
                .requests
                .iter()
                .filter(|r| r.field("grant_type") == Some("client_credentials"))
                .count();
            fake.requests.clear();
        }
        services.clear_requests();
        if writeln!(out, "grants {grants}")
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
}

/// What `/proc/self/status` and `/proc/self/fd` say now.
struct Sample {
    rss_kib: u64,
    threads: u64,
    fds: usize,
}

fn sample() -> Sample {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Sample {
        rss_kib: field("VmRSS:"),
        threads: field("Threads:"),
        fds: std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count),
    }
}

/// The least-squares slope of `points` (minutes, MiB), in MiB per hour.
fn slope_per_hour(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    if den == 0.0 { 0.0 } else { num / den * 60.0 }
}

/// Counts a call's outcome.
fn tally<T, E>(result: &Result<T, E>, calls: &AtomicU64, errors: &AtomicU64) {
    let counter = if result.is_ok() { calls } else { errors };
    counter.fetch_add(1, Ordering::Relaxed);
}

fn config(auth: &str) -> GlobusAppConfig {
    GlobusAppConfig::default().with_auth_base_url(auth)
}

#[allow(clippy::too_many_lines)] // one run, read top to bottom
fn soak(minutes: u64) {
    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .env(SERVER, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the servers' process");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut url = |prefix: &str| {
        let line = lines.next().expect("a line").expect("text");
        line.strip_prefix(prefix).expect(prefix).trim().to_owned()
    };
    let auth = url("auth ");
    let services = url("services ");
    let grants = Arc::new(AtomicU64::new(0));
    let latest = Arc::clone(&grants);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("grants ").and_then(|n| n.parse().ok()) {
                latest.store(n, Ordering::Relaxed);
            }
        }
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let async_app = runtime
        .block_on(
            globus_app_async::ClientApp::builder("Soak")
                .client_id(SIM_CLIENT_ID)
                .client_secret(SECRET)
                .scope_requirements(TRANSFER, TRANSFER_ALL)
                .config(config(&auth))
                .read_environment_variables(false)
                .token_storage(MemoryTokenStorage::new())
                .build(),
        )
        .expect("the async app");
    let transfer = Arc::new(globus_app_async::service::TransferClient::from_service(
        globus_app_async::service::ServiceClient::builder(
            &async_app,
            globus_app_async::service::TRANSFER,
        )
        .base_url(&services)
        .build()
        .expect("the async client"),
    ));
    for _ in 0..TASKS {
        let (transfer, stop, calls, errors) = (
            Arc::clone(&transfer),
            Arc::clone(&stop),
            Arc::clone(&calls),
            Arc::clone(&errors),
        );
        runtime.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tally(&transfer.endpoint_search("Tutorial").await, &calls, &errors);
                tokio::time::sleep(PAUSE).await;
            }
        });
    }
    let blocking = {
        let (stop, calls, errors) = (Arc::clone(&stop), Arc::clone(&calls), Arc::clone(&errors));
        let (auth, services) = (auth.clone(), services.clone());
        std::thread::spawn(move || {
            let app = globus_app_blocking::ClientApp::builder("Soak Blocking")
                .client_id(SIM_CLIENT_ID)
                .client_secret(SECRET)
                .scope_requirements(TRANSFER, TRANSFER_ALL)
                .config(config(&auth))
                .read_environment_variables(false)
                .token_storage(MemoryTokenStorage::new())
                .build()
                .expect("the blocking app");
            let transfer = globus_app_blocking::service::TransferClient::from_service(
                globus_app_blocking::service::ServiceClient::builder(
                    &app,
                    globus_app_blocking::service::TRANSFER,
                )
                .base_url(&services)
                .build()
                .expect("the blocking client"),
            );
            while !stop.load(Ordering::Relaxed) {
                tally(&transfer.endpoint_search("Tutorial"), &calls, &errors);
                std::thread::sleep(PAUSE);
            }
        })
    };

    println!("minute  rss_MiB  fds  threads  calls/s  errors  grants");
    let started = Instant::now();
    let mut points = Vec::new();
    let mut last_calls = 0;
    let mut rates = Vec::new();
    for minute in 1..=minutes {
        std::thread::sleep(
            (started + Duration::from_secs(60 * minute)).saturating_duration_since(Instant::now()),
        );
        let now = sample();
        let total = calls.load(Ordering::Relaxed);
        let rate = (total - last_calls) as f64 / 60.0;
        last_calls = total;
        rates.push(rate);
        let rss_mib = now.rss_kib as f64 / 1024.0;
        if minute > 10 {
            points.push((minute as f64, rss_mib));
        }
        println!(
            "{minute:>6}  {rss_mib:>7.1}  {:>3}  {:>7}  {rate:>7.0}  {:>6}  {:>6}",
            now.fds,
            now.threads,
            errors.load(Ordering::Relaxed),
            grants.load(Ordering::Relaxed)
        );
    }
    stop.store(true, Ordering::Relaxed);
    let _ = blocking.join();
    let elapsed = started.elapsed().as_secs_f64();
    // Two apps, each renewing once per period.
    let expiries = 2.0 * elapsed / RENEWAL_PERIOD_SECS;
    println!(
        "slope after minute 10: {:.2} MiB/h; renewals per expiry: {:.2}; calls/s first minute {:.0}, last minute {:.0}",
        slope_per_hour(&points),
        grants.load(Ordering::Relaxed) as f64 / expiries,
        rates.first().copied().unwrap_or(0.0),
        rates.last().copied().unwrap_or(0.0),
    );
    drop(child.stdin.take());
    let _ = child.wait();
}
