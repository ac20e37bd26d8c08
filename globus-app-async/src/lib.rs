//! Async Globus apps — [`UserApp`] and [`ClientApp`] — for tokio, async-std,
//! smol, or no runtime at all.
//!
//! The same API as `globus-app-blocking`, with `async` methods, driving the
//! same state machines of [`globus_app_proto`].
//!
//! # Runtime-agnostic
//!
//! The crate never spawns or sleeps on a runtime. File, SQLite, terminal
//! and loopback-listener I/O run on the `blocking` thread pool; retry waits
//! go through a [`http::Sleeper`] (by default on that pool); HTTP goes
//! through [`http::AsyncHttpClient`], with surf bundled behind the default
//! `surf` feature. The futures are `Send`. Dropping one at any await point
//! is safe: storage writes are atomic, and renewal locks are released with
//! the future.
//!
//! ```no_run
//! # async fn example() -> Result<(), globus_app_async::Error> {
//! use globus_app_async::UserApp;
//!
//! let app = UserApp::from_builder(
//!     UserApp::builder("My Tool")
//!         .client_id("your-native-app-client-id")
//!         .scope_requirements("transfer.api.globus.org", "urn:globus:auth:scope:transfer.api.globus.org:all"),
//! )
//! .await?;
//! let authorization = app.get_authorizer("transfer.api.globus.org").await?;
//! # Ok(()) }
//! ```
//!
//! # Plugging in another HTTP client
//!
//! Build without default features and pass any client through
//! [`AppBuilder::http_client`] — a closure works:
//!
//! ```
//! use globus_app_async::{UserApp, http::TransportError};
//!
//! let builder = UserApp::builder("My Tool").client_id("id").http_client(
//!     |request: http::Request<Vec<u8>>| async move {
//!         // e.g. with reqwest: build a reqwest::Request from `request`,
//!         // send it, and turn the reqwest::Response into http::Response.
//!         let _ = request;
//!         Err::<http::Response<Vec<u8>>, _>(TransportError { url: "example".into(), message: "not wired".into() })
//!     },
//! );
//! # drop(builder);
//! ```
#![forbid(unsafe_code)]

mod app;
pub mod http;
pub mod login;
pub mod storage;

pub use app::{AppBuilder, ClientApp, Error, UserApp, config_from_env};
pub use globus_app_proto as proto;
pub use globus_app_proto::app::{
    Authorization, GlobusAppConfig, LoginFlowKind, LoginOutcome, LogoutReport, TokenStorageKind,
};
