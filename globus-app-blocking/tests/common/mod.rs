//! Shared by the adapter's tests: the HTTP fake Globus Auth of
//! `globus-app-dev-server`, and a "browser" that follows URLs over HTTP.

// Each test binary uses a different part of this module.
#![allow(dead_code, unused_imports, unreachable_pub, missing_docs)]

pub mod contract;

pub use globus_app_dev_server::{AuthServer, TempDir, now, stuck_after};
pub use globus_app_proto::testing::SIM_CLIENT_ID;

/// The token a child test process printed as `TOKEN=<token>`, after it
/// exited successfully (libtest prints "test name ... " before the line).
pub fn token_printed_by(child: std::process::Child) -> String {
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|line| line.split_once("TOKEN="))
        .unwrap()
        .1
        .trim()
        .to_owned()
}

/// A "browser" that follows the authorize URL over HTTP: the server
/// approves and redirects to the loopback listener, which is then visited.
#[derive(Clone, Copy)]
pub struct FollowingBrowser;

impl globus_app_blocking::login::BrowserOpener for FollowingBrowser {
    fn open(&self, url: &str) -> Result<(), globus_app_blocking::login::BrowserError> {
        globus_app_dev_server::follow_authorize_url(url);
        Ok(())
    }
}
