//! Async Globus apps — [`UserApp`] and [`ClientApp`] — for tokio, async-std,
//! smol, or no runtime at all.
//!
//! The same API as `globus-app-blocking`, with `async` methods, driving the
//! same state machines of [`globus_app_proto`].
//!
//! On tokio:
//!
//! ```no_run
//! use globus_app_async::{GlobusAppConfig, UserApp};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), globus_app_async::Error> {
//!     let app = UserApp::builder("My Tool")
//!         .client_id("your-native-app-client-id")
//!         .scope_requirements("transfer.api.globus.org", "urn:globus:auth:scope:transfer.api.globus.org:all")
//!         .config(GlobusAppConfig::default().with_request_refresh_tokens(true))
//!         .build()
//!         .await?;
//!     let header = app.get_authorizer("transfer.api.globus.org").await?.header_value()?;
//!     Ok(())
//! }
//! ```
//!
//! On async-std, a service account:
//!
//! ```no_run
//! use globus_app_async::ClientApp;
//!
//! fn main() -> Result<(), globus_app_async::Error> {
//!     async_std::task::block_on(async {
//!         let app = ClientApp::builder("My Service")
//!             .client_id("your-client-id")
//!             .client_secret("your-client-secret")
//!             .scope_requirements("transfer.api.globus.org", "urn:globus:auth:scope:transfer.api.globus.org:all")
//!             .build()
//!             .await?;
//!         let header = app.get_authorizer("transfer.api.globus.org").await?.header_value()?;
//!         Ok(())
//!     })
//! }
//! ```
//!
//! # Runtime-agnostic
//!
//! The crate never spawns or sleeps on a runtime. File, SQLite, terminal
//! and loopback-listener I/O run on the `blocking` thread pool; retry waits
//! go through a [`http::Sleeper`] (by default on that pool); HTTP goes
//! through [`http::AsyncHttpClient`]: by default the blocking crate's ureq
//! client on the `blocking` pool ([`http::UnblockedHttp::ureq`], feature
//! `ureq`: no runtime, rustls 0.23); [`http::SurfClient`] (feature `surf`,
//! for async-std users) and [`http::ReqwestClient`] (feature `reqwest`, for
//! tokio users, with your own `reqwest::Client` if you like) are opt-in.
//! The futures are `Send`. Dropping one leaves the stored tokens whole
//! (writes are atomic), releases its renewal locks and stops an
//! interactive login; a request to Globus Auth already sent is lost with
//! it, which can cost a login. See [`AppCommon`]'s cancellation notes.
//!
//! ## Threads
//!
//! The `blocking` pool starts a thread when a job finds none idle, up to
//! `BLOCKING_MAX_THREADS` (an environment variable read once, at the
//! pool's first use: 1 to 10,000, default 500), and a thread idle for
//! 500 ms ends. A service call is one job (the request and, for answers up
//! to 1 MiB, the whole body), so N tasks calling at once keep about N
//! threads busy; set `BLOCKING_MAX_THREADS` before the first call to cap
//! them (jobs then queue). The soak benchmark (`benches/README.md`) holds
//! 64 tasks at a flat thread count and resident memory for an hour.
//!
//! [`AppCommon::authorized`] gives an [`AuthorizedClient`] that sends
//! requests to Globus services with the app's authorization, renewing a
//! refused token and redriving a GARE once, as in `globus-app-blocking`.
//!
//! # Plugging in another HTTP client
//!
//! Build without default features and pass any client through
//! [`AppBuilder::http_client`] — a closure works:
//!
//! ```
//! use globus_app_async::UserApp;
//! use globus_app_async::http::{TransportError, TransportErrorKind};
//!
//! let builder = UserApp::builder("My Tool").client_id("id").http_client(
//!     |request: http::Request<Vec<u8>>| async move {
//!         // e.g. with reqwest: build a reqwest::Request from `request`,
//!         // send it, and turn the reqwest::Response into http::Response.
//!         Err::<http::Response<Vec<u8>>, _>(TransportError::new(
//!             TransportErrorKind::Other,
//!             request.uri(),
//!             "not wired",
//!         ))
//!     },
//! );
//! # drop(builder);
//! ```
//!
//! # Service clients
//!
//! The [`service`] module (feature `ureq`) has the async
//! `TransferClient`, `AuthClient`, `GroupsClient` and `SearchClient`:
//! futures for calls, `Stream`s for pages, `AsyncRead` for large answers,
//! on any executor.
//!
//! # Features
//!
//! Items that need a feature say so on docs.rs.
//!
#![doc = document_features::document_features!()]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod app;
pub mod http;
pub mod login;
#[cfg(feature = "ureq")]
pub mod service;
pub mod storage;

pub use app::{
    AppBuilder, AppCommon, AuthorizedClient, ClientApp, ClientAppBuilder, UserApp, UserAppBuilder,
};
pub use globus_app_blocking::Error;
pub use globus_app_proto as proto;
pub use globus_app_proto::app::{
    Authorization, Cancellation, GlobusAppConfig, LoginFlowKind, LoginOptions, LoginOutcome,
    LogoutOptions, LogoutReport, TokenStorageKind, TokenValidationErrorHandler,
};
