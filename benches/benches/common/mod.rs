//! What the benchmarks share: the Transfer requirement, token records, and
//! a blocking `ClientApp` over a given storage with its warm-path benchmark.
// Each benchmark binary uses a part of this module.
#![allow(dead_code)]

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use globus_app_blocking::http::RetryPolicy;
use globus_app_blocking::proto::UnixTime;
use globus_app_blocking::proto::testing::SIM_CLIENT_ID;
use globus_app_blocking::proto::token::TokenData;
use globus_app_blocking::storage::TokenStorage;
use globus_app_blocking::{ClientApp, GlobusAppConfig};

pub(crate) const TRANSFER: &str = "transfer.api.globus.org";
pub(crate) const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";

/// A record of `rs` (scope `urn:globus:auth:scope:<rs>:all`) expiring at
/// `expires_at`.
pub(crate) fn record(rs: &str, expires_at: UnixTime) -> TokenData {
    TokenData::from_json(&serde_json::json!({
        "resource_server": rs, "scope": format!("urn:globus:auth:scope:{rs}:all"),
        "access_token": format!("AT-{rs}"), "expires_at_seconds": expires_at.as_secs(),
        "token_type": "Bearer",
    }))
    .unwrap()
}

/// A blocking `ClientApp` requiring Transfer, on `storage`, against the
/// Globus Auth at `auth_base_url`, without retries.
pub(crate) fn client_app(storage: impl TokenStorage + 'static, auth_base_url: &str) -> ClientApp {
    ClientApp::builder("Bench")
        .client_id(SIM_CLIENT_ID)
        .client_secret("bench-secret")
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(GlobusAppConfig::default().with_auth_base_url(auth_base_url))
        .read_environment_variables(false)
        .retry_policy(RetryPolicy::NEVER)
        .token_storage(storage)
        .build()
        .unwrap()
}

/// The async `ClientApp` of [`client_app`], its storage run on the
/// `blocking` pool, built on this thread.
pub(crate) fn async_client_app(
    storage: impl TokenStorage + 'static,
    auth_base_url: &str,
) -> globus_app_async::ClientApp {
    futures::executor::block_on(
        globus_app_async::ClientApp::builder("Bench")
            .client_id(SIM_CLIENT_ID)
            .client_secret("bench-secret")
            .scope_requirements(TRANSFER, TRANSFER_ALL)
            .config(GlobusAppConfig::default().with_auth_base_url(auth_base_url))
            .read_environment_variables(false)
            .retry_policy(RetryPolicy::NEVER)
            .token_storage(globus_app_async::storage::Unblocked::new(storage))
            .build(),
    )
    .unwrap()
}

/// Benchmarks `name`: the whole blocking `get_authorizer` of `app`, whose
/// storage holds a valid Transfer token (no request is sent).
pub(crate) fn warm_get_authorizer(c: &mut Criterion, name: &str, app: &ClientApp) {
    app.get_authorizer(TRANSFER).unwrap();
    c.bench_function(name, |b| {
        b.iter(|| app.get_authorizer(black_box(TRANSFER)).unwrap());
    });
}

/// The process's CPU time so far (user and system).
pub(crate) fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command (which may hold spaces), from the state on:
    // utime and stime are the 12th and 13th fields.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| {
        fields
            .get(n)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let ticks = field(11) + field(12);
    Duration::from_millis(ticks * 10)
}
