//! A Globus-Auth-compatible local server for trying globus-app offline, and
//! the project's end-to-end tests (not published).
//!
//! - [`AuthServer`]: the fake Globus Auth of `globus_app_proto::testing`
//!   over real sockets on 127.0.0.1, with fault injection (delays, held
//!   answers, error responses); the `globus-auth-dev-server` binary runs
//!   one for the examples and your own app.
//! - [`FakeService`]: a Globus service stand-in that checks the tokens the
//!   server issued and answers 401s and GAREs on request.
//! - Helpers for the suites: fixtures, the Python reference, PostgreSQL
//!   (feature `postgres`).
//! - `tests/`: the end-to-end suites of both adapters (the async one under
//!   several executors), parity with the Python SDK, the landing page in
//!   Chromium, tracing and allocation checks.

mod auth_server;
mod fake_service;
#[cfg(feature = "postgres")]
pub mod fleet;
#[cfg(feature = "postgres")]
pub mod postgres_servers;
pub mod services;
mod terminal;

/// The README's examples, compiled as doctests (here, in the crate that is
/// never packaged, so that the path reaches the workspace's README).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// What the examples say when `GLOBUS_CLIENT_ID` is not set: where to get
/// a client id, and how to try the example offline instead.
pub const MISSING_CLIENT_ID: &str = "GLOBUS_CLIENT_ID is not set. Register an app at \
https://app.globus.org/settings/developers (a native app for a person's login, \
a service account for client credentials) and set GLOBUS_CLIENT_ID to its client id. \
To try this example offline instead, run \
`cargo run -p globus-app-tests --bin globus-auth-dev-server` and set the variables it prints.";

/// What the examples say when `GLOBUS_CLIENT_SECRET` is not set.
pub const MISSING_CLIENT_SECRET: &str = "GLOBUS_CLIENT_SECRET is not set: a ClientApp \
needs its service account's secret (from https://app.globus.org/settings/developers, \
or the one globus-auth-dev-server prints).";

use std::path::PathBuf;

pub use auth_server::{AuthServer, TempDir, follow_authorize_url, forge_then_follow, now};
pub use fake_service::FakeService;
pub use terminal::AutoTerminal;

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

/// The `redirect_uri` an authorize URL names (the login listener's address).
///
/// # Panics
/// If `authorize_url` is not a URL with a `redirect_uri`.
pub fn redirect_uri_of(authorize_url: &str) -> String {
    url::Url::parse(authorize_url)
        .expect("an authorize URL")
        .query_pairs()
        .find(|(name, _)| name == "redirect_uri")
        .map(|(_, value)| value.into_owned())
        .expect("a redirect_uri")
}

/// The directory of the recorded Globus Auth responses and token files.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
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
