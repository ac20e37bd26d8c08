//! A Globus-Auth-compatible server on 127.0.0.1, with Transfer-, Groups-
//! and Search-shaped services beside it: for trying
//! [globus-app](https://crates.io/crates/globus-app-blocking) offline, for
//! the examples' `--dev-server` mode, and for testing programs built on it
//! without a network.
//!
//! - [`AuthServer`]: the fake Globus Auth of `globus_app_proto::testing`
//!   (token grants, refresh, consents, revocation, id_tokens signed with the
//!   simulation's keys) over real sockets, with fault injection (delays,
//!   held answers, error responses). The `globus-auth-dev-server` binary
//!   runs one and prints the variables that point an app at it:
//!
//!   ```text
//!   cargo install globus-app-dev-server   # or, in this repository:
//!   cargo run -p globus-app-dev-server -- [PORT] [--client-secret SECRET]
//!   ```
//! - [`services::ServicesServer`] ([`AuthServer::start_services`]): the
//!   Transfer, Groups and Search stand-ins, which accept only tokens this
//!   server issued, with the scope each needs.
//! - [`FakeService`]: a minimal service that checks tokens and answers 401s
//!   and GAREs on request.
//! - [`follow_authorize_url`]: the stand-in browser that approves a login,
//!   and the other helpers tests need ([`AutoTerminal`], [`TempDir`],
//!   [`stuck_after`]).
//!
//! Everything listens on 127.0.0.1 only and serves until the process exits.
//! Nothing here is a real Globus service: it is a stand-in for tests.
//!
//! ```no_run
//! let server = globus_app_dev_server::AuthServer::start();
//! let services = server.start_services();
//! println!("GLOBUS_SDK_SERVICE_URL_AUTH={}", server.base_url);
//! println!("GLOBUS_SDK_SERVICE_URL_TRANSFER={}", services.base_url);
//! ```

mod auth_server;
mod fake_service;
pub mod services;
mod terminal;

pub use auth_server::{AuthServer, TempDir, follow_authorize_url, forge_then_follow, now};
pub use fake_service::FakeService;
pub use terminal::AutoTerminal;

/// What the examples say when `GLOBUS_CLIENT_ID` is not set: where to get
/// a client id, and how to try the example offline instead.
pub const MISSING_CLIENT_ID: &str = "GLOBUS_CLIENT_ID is not set. Register an app at \
https://app.globus.org/settings/developers (a native app for a person's login, \
a service account for client credentials) and set GLOBUS_CLIENT_ID to its client id. \
To try this example offline instead, run \
`cargo run -p globus-app-dev-server` (or `cargo install globus-app-dev-server` and run \
`globus-auth-dev-server`) and set the variables it prints.";

/// What the examples say when `GLOBUS_CLIENT_SECRET` is not set.
pub const MISSING_CLIENT_SECRET: &str = "GLOBUS_CLIENT_SECRET is not set: a ClientApp \
needs its service account's secret (from https://app.globus.org/settings/developers, \
or the one globus-auth-dev-server prints).";

/// How long a test lets an operation with its own `timeout` run before it
/// calls the operation stuck: far beyond the timeout (ten times it, and
/// half a minute more), so that a loaded machine cannot fail the test, yet
/// finite, so that a timeout that does not hold fails the test instead of
/// hanging it. Tests bound waits with this, never with a tight figure.
pub fn stuck_after(timeout: std::time::Duration) -> std::time::Duration {
    timeout
        .saturating_mul(10)
        .saturating_add(std::time::Duration::from_secs(30))
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
