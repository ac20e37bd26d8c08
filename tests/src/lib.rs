//! The project's end-to-end tests (not published), and the helpers they
//! share: fixtures, the Python reference, PostgreSQL (feature `postgres`).
//!
//! - The local servers are `globus-app-dev-server` (published, so that the
//!   library crates' examples and tests build from their packages); they
//!   are re-exported here for the suites.
//! - `tests/`: the end-to-end suites of both adapters (the async one under
//!   several executors), parity with the Python SDK, the landing page in
//!   Chromium, tracing and allocation checks, the PostgreSQL fleet.

#[cfg(feature = "postgres")]
pub mod fleet;
#[cfg(feature = "postgres")]
pub mod postgres_servers;

/// The README's examples, compiled as doctests (here, in the crate that is
/// never packaged, so that the path reaches the workspace's README).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

use std::path::PathBuf;

pub use globus_app_dev_server::{
    AuthServer, AutoTerminal, FakeService, TempDir, follow_authorize_url, forge_then_follow, now,
    redirect_uri_of, services, stuck_after,
};

/// The PostgreSQL of the tests and benchmarks: `GLOBUS_APP_TEST_POSTGRES`,
/// else the machine's server on 127.0.0.1:5432 (trust authentication).
pub fn postgres_connection_string() -> String {
    std::env::var("GLOBUS_APP_TEST_POSTGRES")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_owned())
}

/// A connection to that PostgreSQL, for tests that create and drop their
/// own schemas.
///
/// # Panics
/// If no server answers (`.ci/run` checks for one first).
#[cfg(feature = "postgres")]
pub fn postgres_admin() -> postgres::Client {
    postgres::Client::connect(&postgres_connection_string(), postgres::NoTls)
        .expect("PostgreSQL on 127.0.0.1:5432 (see .ci/run)")
}

/// The directory of the recorded Globus Auth responses and token files.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../globus-app-proto/fixtures")
}

/// A recorded HTTP response, as an `http::Response`, and its JSON body.
///
/// # Panics
/// If the fixture is missing or malformed (a broken checkout).
pub fn fixture_response(name: &str) -> (http::Response<Vec<u8>>, serde_json::Value) {
    let text = std::fs::read_to_string(fixtures_dir().join(name))
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    let fixture: serde_json::Value = serde_json::from_str(&text).expect("fixture JSON");
    let status = u16::try_from(fixture["status"].as_u64().expect("status")).expect("status");
    let body = fixture["body"].clone();
    let response = http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).expect("body"))
        .expect("response");
    (response, body)
}

/// The Python interpreter with globus-sdk 4.10.0, from `GLOBUS_APP_PYTHON`
/// (`.ci/run` sets it). Outside CI a missing interpreter skips the caller's
/// test (`None`); in CI it is a failure.
///
/// # Panics
/// In CI (`CI` set) when `GLOBUS_APP_PYTHON` is not.
pub fn python_reference() -> Option<String> {
    match std::env::var("GLOBUS_APP_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set GLOBUS_APP_PYTHON for the Python reference tests"
            );
            eprintln!("GLOBUS_APP_PYTHON is not set: skipping a Python reference test");
            None
        }
    }
}
