//! The sans-IO core of globus-app.
#![forbid(unsafe_code)]

pub mod auth_error;
pub mod response;
pub mod scope;
pub mod secret;
pub mod storage;
mod time;
pub mod token;

pub use time::UnixTime;
