//! Shared by the adapter's tests: the HTTP fake Globus Auth of
//! `globus-app-tests`, and a "browser" that follows URLs over HTTP.

// Each test binary uses a different part of this module.
#![allow(dead_code, unused_imports, unreachable_pub, missing_docs)]

use std::time::Duration;

pub use globus_app_proto::testing::SIM_CLIENT_ID;
pub use globus_app_tests::{AuthServer, TempDir, now};

/// A "browser" that follows the authorize URL over HTTP: the server
/// approves and redirects to the loopback listener, which is then visited.
#[derive(Clone, Copy)]
pub struct FollowingBrowser;

impl globus_app_blocking::login::BrowserOpener for FollowingBrowser {
    fn open(&self, url: &str) -> Result<(), String> {
        let url = url.to_owned();
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .max_redirects(0)
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(10)))
                .build()
                .into();
            let redirect = agent.get(&url).call().unwrap();
            let location = redirect.headers()["location"].to_str().unwrap().to_owned();
            let _ = agent.get(&location).call();
        });
        Ok(())
    }
}
