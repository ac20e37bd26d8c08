//! What the examples share for `--dev-server`: a local Globus Auth and
//! Transfer-, Groups- and Search-shaped services on 127.0.0.1, and a
//! stand-in browser that approves the login.

use globus_app_blocking::GlobusAppConfig;
use globus_app_blocking::login::BrowserOpener;

/// The stand-in browser of the dev server: shows the URL, then follows it.
pub(crate) struct ApprovingBrowser;

impl BrowserOpener for ApprovingBrowser {
    fn open(&self, url: &str) -> Result<(), globus_app_blocking::login::BrowserError> {
        println!("   browser opens: {}...", &url[..url.len().min(90)]);
        println!("   (the dev server's user approves)");
        globus_app_dev_server::follow_authorize_url(url);
        Ok(())
    }
}

/// The local servers, running while this lives.
pub(crate) struct DevServers {
    pub(crate) auth: globus_app_dev_server::AuthServer,
    pub(crate) services: globus_app_dev_server::services::ServicesServer,
}

impl DevServers {
    pub(crate) fn start() -> Self {
        let auth = globus_app_dev_server::AuthServer::start();
        let services = auth.start_services();
        println!(
            "dev server: Globus Auth at {}, Transfer, Groups and Search at {}",
            auth.base_url, services.base_url
        );
        Self { auth, services }
    }

    /// An app configuration pointing at them.
    pub(crate) fn config(&self) -> GlobusAppConfig {
        GlobusAppConfig::default()
            .with_auth_base_url(self.auth.base_url.clone())
            .with_service_url("transfer", self.services.base_url.clone())
            .with_service_url("groups", self.services.base_url.clone())
            .with_service_url("search", self.services.base_url.clone())
    }
}
