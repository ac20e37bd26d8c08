//! Blocking Globus apps: [`UserApp`] (a person logs in) and [`ClientApp`]
//! (a service account), for scripts and command-line tools.
//!
//! # A person's login
//!
//! ```no_run
//! use globus_app_blocking::{UserApp, config_from_env};
//!
//! let app = UserApp::from_builder(
//!     UserApp::builder("My Tool")
//!         .client_id("your-native-app-client-id")
//!         .scope_requirements("transfer.api.globus.org", "urn:globus:auth:scope:transfer.api.globus.org:all")
//!         .config(config_from_env()?.with_request_refresh_tokens(true)),
//! )?;
//! // Logs in (prints a URL, reads the pasted code) only if needed; later
//! // calls refresh the token a minute before it expires.
//! let authorization = app.get_authorizer("transfer.api.globus.org")?;
//! let header = authorization.header_value()?; // "Bearer ...", for any HTTP client
//! app.logout(false)?; // revoke and forget
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The tokens live in `~/.globus/app/<client id>/my-tool/tokens.json`, the
//! file the Python SDK's `UserApp("My Tool", client_id=...)` uses: the two
//! share one login. Choose `TokenStorageKind::Sqlite` or `Memory` in the
//! config, or pass any [`storage::TokenStorage`] to the builder.
//! `LoginFlowKind::LocalServer` opens a browser instead of asking for a code.
//!
//! # A service account
//!
//! ```no_run
//! use globus_app_blocking::ClientApp;
//!
//! let app = ClientApp::from_builder(
//!     ClientApp::builder("My Service")
//!         .client_id("your-client-id")
//!         .client_secret("your-client-secret")
//!         .scope_requirements("transfer.api.globus.org", "urn:globus:auth:scope:transfer.api.globus.org:all"),
//! )?;
//! let authorization = app.get_authorizer("transfer.api.globus.org")?; // client credentials
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Services that answer with a GARE
//!
//! With `auto_redrive_gares` on, pass a service's response to
//! [`UserApp::redrive_gare`]: if it is a 403 carrying a Globus Auth
//! requirements error (at the root or in `errors[]`), the app logs in with
//! its requirements and returns `true`; send the request once more.
//!
//! # Threads and processes
//!
//! Apps are `Send + Sync` and cheap to clone. Threads, and processes sharing
//! a token file, that find an expired token cause one refresh: the renewal
//! runs under a per-resource-server lock (and a lock file beside the token
//! file) after re-reading the tokens.
//!
//! # Using another HTTP client
//!
//! Anything implementing [`http::HttpClient`] (a closure works) can replace
//! the bundled ureq client; it must return every status as a response and
//! must not follow redirects.
//!
//! This crate is a thin driver of the state machines of
//! [`globus_app_proto`]: it loads and stores tokens ([`storage`]), sends
//! requests ([`http`]), takes renewal locks, and runs the interactive part
//! of a login ([`login`]). Every decision is the core's.
#![forbid(unsafe_code)]

mod app;
pub mod http;
pub mod login;
pub mod storage;

pub use app::{
    AppBuilder, ClientApp, DefaultTokenStorage, Error, UserApp, build_core, config_from_env,
    default_login_flow_manager, default_token_storage, hostname, now,
};
pub use globus_app_proto as proto;
pub use globus_app_proto::app::{
    Authorization, GlobusAppConfig, LoginFlowKind, LoginOutcome, LogoutReport, TokenStorageKind,
};
