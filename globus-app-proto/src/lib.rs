//! The sans-IO core of globus-app.
#![forbid(unsafe_code)]

pub mod scope;
pub mod secret;
mod time;

pub use time::UnixTime;
