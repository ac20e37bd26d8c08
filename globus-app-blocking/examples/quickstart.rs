//! A complete Globus session, step by step: log in through the browser flow,
//! write the token file, call Transfer through a `TransferClient` bound to
//! the app, force an expiry and refresh, and log out with revocation.
//!
//! ```text
//! cargo run -p globus-app-blocking --example quickstart -- --dev-server
//! GLOBUS_CLIENT_ID=<native app client id> cargo run -p globus-app-blocking --example quickstart
//! ```
//!
//! With `--dev-server` it starts a local Globus-Auth-compatible server and a
//! Transfer-shaped service on 127.0.0.1, and a stand-in browser that
//! approves the login, so it needs no
//! account and no network; the app, HTTP, login listener and token file are
//! the real ones. The token file stays after the run for you to look at:
//! it is the default token file of the dev server's client id, under your
//! own directory (`~/.globus/app/<client id>/quickstart/tokens.json`, apart
//! from any real app's; its path is printed). Without
//! `--dev-server`, it talks to Globus Auth (honouring
//! `GLOBUS_SDK_ENVIRONMENT` and `GLOBUS_SDK_SERVICE_URL_AUTH`), opens your
//! browser and uses the token file the Python SDK would.

use std::path::PathBuf;
use std::time::Duration;

mod support;

use anyhow::Context;
use globus_app_blocking::adapter::now;
use globus_app_blocking::login::{LocalServerLoginFlowManager, SystemBrowser};
use globus_app_blocking::proto::storage::TokenFileFormat;
use globus_app_blocking::service::{Listing, TransferClient};
use globus_app_blocking::storage::default_token_file;
use globus_app_blocking::{GlobusAppConfig, LoginFlowKind, LoginOutcome, UserApp};

const TRANSFER: &str = "transfer.api.globus.org";

fn step(title: &str) {
    println!("\n== {title}");
}

/// The app: against the dev server (its simulated client, approving
/// browser) or Globus Auth (your client, system browser). Either way the
/// tokens go to the default token file of the app's client id, under your
/// own directory, where the Python SDK would keep them.
fn build_app(server: Option<&support::DevServers>) -> anyhow::Result<(UserApp, PathBuf)> {
    let listener = LocalServerLoginFlowManager::new().with_timeout(Duration::from_secs(300));
    let (client_id, config, flow) = match server {
        Some(servers) => (
            globus_app_proto::testing::SIM_CLIENT_ID.to_owned(),
            servers.config(),
            listener
                .with_browser(support::ApprovingBrowser)
                .allow_remote_session(true),
        ),
        None => (
            std::env::var("GLOBUS_CLIENT_ID").context(
                "GLOBUS_CLIENT_ID is not set: register a native app at \
                 https://app.globus.org/settings/developers and set it to the app's \
                 client id, or pass --dev-server to run against a local Globus Auth",
            )?,
            GlobusAppConfig::default(),
            listener.with_browser(SystemBrowser),
        ),
    };
    let config = config
        .with_request_refresh_tokens(true)
        .with_login_flow(LoginFlowKind::LocalServer);
    let app = UserApp::builder("Quickstart")
        .client_id(client_id)
        .config(config)
        .login_flow_manager(flow)
        .build()?;
    let token_file = default_token_file(app.core(), TokenFileFormat::Json)?;
    Ok((app, token_file))
}

fn main() -> anyhow::Result<()> {
    let dev = std::env::args().any(|a| a == "--dev-server");
    let server = dev.then(support::DevServers::start);
    let (app, token_file) = build_app(server.as_ref())?;
    if dev {
        // A new dev server each run: the last run's tokens (of the dev
        // server's client id, in a file of their own) mean nothing to it.
        let _ = std::fs::remove_file(&token_file);
    }
    // Binding the client adds Transfer's scope to the app's requirements.
    let transfer = TransferClient::new(&app)?;

    step("1. Is a login required?");
    println!("   {}", app.login_required()?);

    step("2. Log in (browser, loopback listener, PKCE, checked state, verified id_token)");
    match app.login()? {
        LoginOutcome::LoggedIn { identity } => {
            println!("   logged in as {}", identity.unwrap_or_default());
        }
        _ => println!("   no login was needed"),
    }
    println!(
        "   token file written: {} ({} bytes)",
        token_file.display(),
        std::fs::metadata(&token_file)?.len()
    );

    step("3. Transfer, through the TransferClient bound to the app");
    let found = transfer.endpoint_search("Tutorial Collection")?;
    let collections = found.field("DATA")?.as_array().cloned().unwrap_or_default();
    for collection in &collections {
        println!(
            "   found {} ({})",
            collection["display_name"], collection["id"]
        );
    }
    if let Some(id) = collections.first().and_then(|c| c["id"].as_str()) {
        let listing = transfer.operation_ls(id, &Listing::path("/~/"))?;
        let names: Vec<&str> = listing.data["DATA"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry["name"].as_str())
            .collect();
        println!("   ls /~/ -> {}", names.join(", "));
    }

    step("4. Force the Transfer token to expire: it is refreshed on next use");
    let before = app.get_authorizer(TRANSFER)?;
    let storage = app.token_storage();
    let mut records = storage.load()?.records().to_vec();
    for record in &mut records {
        record.expires_at = now();
    }
    storage.store(&records)?;
    let after = app.get_authorizer(TRANSFER)?;
    assert_ne!(
        before.access_token(),
        after.access_token(),
        "the expired token was refreshed"
    );
    println!(
        "   refreshed: {}; valid until {}",
        before.access_token() != after.access_token(),
        after.expires_at()
    );

    step("5. Log out: revoke refresh and access tokens, remove them");
    let report = app.logout()?;
    println!(
        "   revoked: {:?}; failures: {}",
        report.revoked,
        report.failed.len()
    );
    if let Some(servers) = &server {
        let live = servers
            .auth
            .fake()
            .is_live(after.access_token().secret(), now());
        println!("   the server says the last access token is live: {live}");
        assert!(!live);
    }
    println!("   login required again: {}", app.login_required()?);
    println!(
        "\nDone. The token file is still at {} (the Python SDK's format; the\n\
         logout left it without tokens).",
        token_file.display()
    );
    Ok(())
}
