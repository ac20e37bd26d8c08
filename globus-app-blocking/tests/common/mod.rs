//! Shared by the adapter's tests: the HTTP fake Globus Auth of
//! `globus-app-tests`, and a "browser" that follows URLs over HTTP.

// Each test binary uses a different part of this module.
#![allow(dead_code, unused_imports, unreachable_pub, missing_docs)]

pub mod contract;

pub use globus_app_proto::testing::SIM_CLIENT_ID;
pub use globus_app_tests::{AuthServer, TempDir, now};

/// A "browser" that follows the authorize URL over HTTP: the server
/// approves and redirects to the loopback listener, which is then visited.
#[derive(Clone, Copy)]
pub struct FollowingBrowser;

impl globus_app_blocking::login::BrowserOpener for FollowingBrowser {
    fn open(&self, url: &str) -> Result<(), String> {
        globus_app_tests::follow_authorize_url(url);
        Ok(())
    }
}
