//! The async login under async-std.
//!
//! ```text
//! GLOBUS_CLIENT_ID=<native app client id> cargo run -p globus-app-async --example async_std_login
//! ```
//!
//! `cargo run -p globus-app-dev-server` prints the
//! variables that point this example at a local Globus Auth.

use anyhow::Context;
use globus_app_async::{GlobusAppConfig, UserApp};

fn main() -> anyhow::Result<()> {
    async_std::task::block_on(async {
        let client_id =
            std::env::var("GLOBUS_CLIENT_ID").context(globus_app_dev_server::MISSING_CLIENT_ID)?;
        let app = UserApp::builder("Async Login Example")
            .client_id(client_id)
            .scope_requirements(
                "transfer.api.globus.org",
                "urn:globus:auth:scope:transfer.api.globus.org:all",
            )
            .config(GlobusAppConfig::default().with_request_refresh_tokens(true))
            .build()
            .await?;
        // Prints a URL and reads the pasted code (command-line flow).
        app.login().await?;
        let authorization = app.get_authorizer("transfer.api.globus.org").await?;
        println!("Transfer token valid until {}", authorization.expires_at());
        Ok(())
    })
}
