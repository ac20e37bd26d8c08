//! Blocking Globus apps: [`UserApp`] (a person logs in) and [`ClientApp`]
//! (a service account), for scripts, command-line tools and services.
//!
//! ```no_run
//! use globus_app_blocking::{ClientApp, GlobusAppConfig, LogoutOptions, UserApp};
//!
//! const TRANSFER: &str = "transfer.api.globus.org";
//! const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";
//!
//! // A person's tool. Refresh tokens are off by default, as in the Python
//! // SDK (a login then lasts as long as its access tokens, about two days);
//! // long-running tools turn them on.
//! let app = UserApp::builder("My Tool")
//!     .client_id("your-native-app-client-id")
//!     .scope_requirements(TRANSFER, TRANSFER_ALL)
//!     .config(GlobusAppConfig::default().with_request_refresh_tokens(true))
//!     .build()?;
//! // Logs in (prints a URL, reads the pasted code) only if needed; later
//! // calls refresh the token a minute before it expires.
//! // Requests to Globus services, authorized: the host gives the resource
//! // server, a refused token (401) is renewed and a GARE (403) redriven, once.
//! let transfer = app.authorized(globus_app_blocking::http::UreqClient::default());
//! let request = http::Request::get("https://transfer.api.globus.org/v0.10/task_list")
//!     .body(Vec::new())
//!     .expect("a valid request");
//! let response = transfer.send(&request)?;
//! // Or just the header, for any HTTP client.
//! let header = app.get_authorizer(TRANSFER)?.header_value()?; // "Bearer ..."
//! app.logout_with(LogoutOptions::new().all_stored_resource_servers(true))?; // revoke, forget
//!
//! // A service account: client credentials, no interaction.
//! let service = ClientApp::builder("My Service")
//!     .client_id("your-client-id")
//!     .client_secret("your-client-secret")
//!     .scope_requirements(TRANSFER, TRANSFER_ALL)
//!     .build()?;
//! let header = service.get_authorizer(TRANSFER)?.header_value()?;
//! # Ok::<(), globus_app_blocking::Error>(())
//! ```
//!
//! The tokens live in `~/.globus/app/<client id>/my-tool/tokens.json`, the
//! file the Python SDK's `UserApp("My Tool", client_id=...)` uses: the two
//! share one login. Choose `TokenStorageKind::Sqlite` (feature `sqlite`) or `Memory` in the
//! [`GlobusAppConfig`], or pass any [`storage::TokenStorage`] to the
//! builder. `LoginFlowKind::LocalServer` opens a browser instead of asking
//! for a code. `GLOBUS_SDK_ENVIRONMENT` and `GLOBUS_SDK_SERVICE_URL_AUTH`
//! are read as the Python SDK reads them, for whatever the configuration
//! leaves unset.
//!
//! # Service clients
//!
//! [`service::TransferClient`], [`service::AuthClient`],
//! [`service::GroupsClient`] and [`service::SearchClient`] bind to an app
//! (feature `ureq`), as the Python SDK's `TransferClient(app=app)`; a
//! client for another service is a page of code on
//! [`service::ServiceClient`]. See the [`service`] module.
//!
//! # Errors
//!
//! [`Error`] keeps its causes (`source()` reaches the I/O, TLS or SQLite
//! error) and answers what callers branch on:
//! [`is_login_required`](Error::is_login_required),
//! [`is_retryable`](Error::is_retryable),
//! [`http_status`](Error::http_status), the Globus error
//! [`code`](Error::globus_code) and [`request_id`](Error::request_id).
//!
//! # Tracing
//!
//! With the `tracing` feature (default), each operation is a span and
//! refreshes, renewals, retries, lock waits, storage I/O and the login
//! listener are events, target `globus_app`; never a secret. Nothing is
//! done until a subscriber is installed.
//!
//! # Services that answer with a GARE
//!
//! With `auto_redrive_gares` on, [`AuthorizedClient`] redrives GAREs by
//! itself. With another client, pass a service's response to
//! [`AppCommon::redrive_gare`]: if it is a 403 carrying a Globus Auth
//! requirements error (at the root or in `errors[]`), the app logs in with
//! its requirements and returns `true`; send the request once more.
//!
//! # Logging in on any machine, and cancelling a login
//!
//! The local-server flow (`LoginFlowKind::LocalServer`) always shows the
//! authorize URL (on standard error, or any writer:
//! [`LocalServerLoginFlowManager::with_messages`](login::LocalServerLoginFlowManager::with_messages)),
//! opens the browser without waiting for it, and on a machine without a
//! display, over SSH, or when the browser cannot be opened, falls back to
//! the command-line flow (a pasted code) unless told to fail instead.
//!
//! A login waiting for the user stops when its [`Cancellation`] is
//! cancelled, from any thread; the call then fails with
//! [`Error::is_cancelled`]:
//!
//! ```no_run
//! # fn example(app: &globus_app_blocking::UserApp) -> Result<(), globus_app_blocking::Error> {
//! use globus_app_blocking::{Cancellation, LoginOptions};
//!
//! let cancellation = Cancellation::new();
//! let on_cancel_button = cancellation.clone(); // give it to the UI thread
//! match app.login_with(LoginOptions::new().cancellation(cancellation)) {
//!     Err(e) if e.is_cancelled() => { /* the listener and the prompt stopped */ }
//!     other => { other?; }
//! }
//! # Ok(()) }
//! ```
//!
//! # Threads and processes
//!
//! Apps are `Send + Sync` and cheap to clone. Threads, and processes sharing
//! a token file, that find an expired token cause one refresh: the renewal
//! runs under a per-resource-server lock (and a lock file beside the token
//! file) after re-reading the tokens.
//!
//! # Another HTTP client
//!
//! Anything implementing [`http::HttpClient`] (a closure works) can replace
//! the bundled ureq client (feature `ureq`, on by default); it must return
//! every status as a response and must not follow redirects.
//!
//! # Modules
//!
//! [`storage`] and [`login`] hold the token storages and login flow
//! managers to pick from; [`http`] the HTTP client trait and retry policy;
//! [`adapter`] the pieces an adapter author drives the sans-IO core
//! ([`proto`]) with. Every decision is the core's.
//!
//! # Features
//!
//! Items that need a feature say so on docs.rs.
//!
#![doc = document_features::document_features!()]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

pub mod adapter;
mod app;
mod error;
pub mod http;
pub mod login;
#[cfg(feature = "ureq")]
pub mod service;
pub mod storage;
mod trace;

pub use app::{
    AppBuilder, AppCommon, AuthorizedClient, ClientApp, ClientAppBuilder, UserApp, UserAppBuilder,
};
pub use error::Error;
pub use globus_app_proto as proto;
pub use globus_app_proto::app::{
    Authorization, Cancellation, GlobusAppConfig, LoginFlowKind, LoginOptions, LoginOutcome,
    LogoutOptions, LogoutReport, TokenStorageKind, TokenValidationErrorHandler,
};
