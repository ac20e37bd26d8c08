//! The sans-IO core of globus-app.
#![forbid(unsafe_code)]

pub mod auth_error;
pub mod auth_params;
pub mod authorize;
pub mod consent;
pub mod environment;
pub mod gare;
pub mod id_token;
pub mod request;
pub mod response;
pub mod scope;
pub mod secret;
pub mod storage;
mod time;
pub mod token;

pub use time::UnixTime;
