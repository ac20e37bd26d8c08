//! Log a person in and print a Transfer Authorization header.
//!
//! ```text
//! GLOBUS_CLIENT_ID=<your native app client id> cargo run -p globus-app-blocking --example user_login
//! ```
//!
//! Register a native ("thick client") app at <https://app.globus.org/settings/developers>,
//! or try it offline: `cargo run -p globus-app-dev-server`
//! prints the variables that point this example at a local Globus Auth.
//! Add `--local-server` to log in through the browser instead of pasting a
//! code, and `--logout` to revoke the tokens afterwards. Set
//! `GLOBUS_SDK_SERVICE_URL_AUTH` to use another Globus Auth (a test server,
//! say) and `GLOBUS_SDK_ENVIRONMENT` for another environment, as with the
//! Python SDK. Tokens go to `~/.globus/app/<client id>/user-login-example/tokens.json`.

use anyhow::Context;
use globus_app_blocking::{GlobusAppConfig, LoginFlowKind, UserApp};

fn main() -> anyhow::Result<()> {
    let client_id =
        std::env::var("GLOBUS_CLIENT_ID").context(globus_app_dev_server::MISSING_CLIENT_ID)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut config = GlobusAppConfig::default().with_request_refresh_tokens(true);
    if args.iter().any(|a| a == "--local-server") {
        config = config.with_login_flow(LoginFlowKind::LocalServer);
    }
    let app = UserApp::builder("User Login Example")
        .client_id(client_id)
        .scope_requirements(
            "transfer.api.globus.org",
            "urn:globus:auth:scope:transfer.api.globus.org:all",
        )
        .config(config)
        .build()?;
    println!("login required: {}", app.login_required()?);
    app.login()?;
    println!("logged in as {}", app.core().identity().unwrap_or_default());
    let authorization = app.get_authorizer("transfer.api.globus.org")?;
    println!("Transfer token valid until {}", authorization.expires_at());
    // Use it with any HTTP client:
    let _header = authorization.header_value()?;
    if args.iter().any(|a| a == "--logout") {
        let report = app.logout()?;
        println!(
            "revoked {:?}; failures: {}",
            report.revoked,
            report.failed.len()
        );
    }
    Ok(())
}
