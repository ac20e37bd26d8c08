//! What the service-client suites share: a blocking user app on the local
//! Globus Auth whose browser approves at once.

use std::time::Duration;

use globus_app_blocking::login::{BrowserOpener, LocalServerLoginFlowManager};
use globus_app_blocking::proto::testing::SIM_CLIENT_ID;
use globus_app_blocking::storage::MemoryTokenStorage;
use globus_app_blocking::{GlobusAppConfig, UserApp};
use globus_app_tests::{AuthServer, follow_authorize_url};

/// A browser that follows the authorize URL: the local server approves.
pub(crate) struct Browser;

impl BrowserOpener for Browser {
    fn open(&self, url: &str) -> Result<(), globus_app_blocking::login::BrowserError> {
        follow_authorize_url(url);
        Ok(())
    }
}

/// A user app named `name` on `server`: tokens in memory, refresh tokens
/// requested, GAREs redriven.
pub(crate) fn user_app(server: &AuthServer, name: &str) -> UserApp {
    UserApp::builder(name)
        .client_id(SIM_CLIENT_ID)
        .config(
            GlobusAppConfig::default()
                .with_auth_base_url(server.base_url.clone())
                .with_request_refresh_tokens(true)
                .with_auto_redrive_gares(true),
        )
        .token_storage(MemoryTokenStorage::new())
        .login_flow_manager(
            LocalServerLoginFlowManager::new()
                .with_browser(Browser)
                .with_timeout(Duration::from_secs(10))
                .allow_remote_session(true),
        )
        .build()
        .unwrap()
}
