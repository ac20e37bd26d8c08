//! A service account: client credentials, no person involved.
//!
//! ```text
//! GLOBUS_CLIENT_ID=<client id> GLOBUS_CLIENT_SECRET=<secret> \
//!     cargo run -p globus-app-blocking --example service_account
//! ```
//!
//! Register a confidential ("service account") app at
//! <https://app.globus.org/settings/developers>, or try it offline:
//! `cargo run -p globus-app-dev-server` prints the
//! variables that point this example at a local Globus Auth.
//! `GLOBUS_SDK_SERVICE_URL_AUTH` and `GLOBUS_SDK_ENVIRONMENT` work as with
//! the Python SDK.

use anyhow::Context;
use globus_app_blocking::{ClientApp, GlobusAppConfig, TokenStorageKind};

fn main() -> anyhow::Result<()> {
    let client_id =
        std::env::var("GLOBUS_CLIENT_ID").context(globus_app_dev_server::MISSING_CLIENT_ID)?;
    let secret = std::env::var("GLOBUS_CLIENT_SECRET")
        .context(globus_app_dev_server::MISSING_CLIENT_SECRET)?;
    let app = ClientApp::builder("Service Account Example")
        .client_id(client_id)
        .client_secret(secret)
        .scope_requirements(
            "transfer.api.globus.org",
            "urn:globus:auth:scope:transfer.api.globus.org:all",
        )
        // Services often prefer not to keep tokens on disk.
        .config(GlobusAppConfig::default().with_token_storage(TokenStorageKind::Memory))
        .build()?;
    let authorization = app.get_authorizer("transfer.api.globus.org")?;
    println!("Transfer token valid until {}", authorization.expires_at());
    // Renewed automatically a minute before it expires.
    let again = app.get_authorizer("transfer.api.globus.org")?;
    assert_eq!(again.access_token(), authorization.access_token());
    Ok(())
}
