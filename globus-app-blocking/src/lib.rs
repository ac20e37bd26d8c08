//! Blocking Globus apps: [`UserApp`] (a person logs in) and [`ClientApp`]
//! (a service account), for scripts and command-line tools.
//!
//! This crate is a thin driver of the state machines of
//! [`globus_app_proto`]: it loads and stores tokens ([`storage`]), sends
//! requests with ureq ([`http`]), takes renewal locks, and runs the
//! interactive part of a login ([`login`]). Every decision is the core's.
//!
//! Token files are the Python SDK's (same paths, same JSON and SQLite
//! formats), so a Python tool and a Rust tool with the same client id and
//! app name share one login.
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
