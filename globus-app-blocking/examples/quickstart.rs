//! A complete Globus session, step by step: log in through the browser flow,
//! write the token file, make an authorized call, force an expiry and
//! refresh, and log out with revocation.
//!
//! ```text
//! cargo run -p globus-app-blocking --example quickstart -- --dev-server
//! GLOBUS_CLIENT_ID=<native app client id> cargo run -p globus-app-blocking --example quickstart
//! ```
//!
//! With `--dev-server` it starts a local Globus-Auth-compatible server on
//! 127.0.0.1 and a stand-in browser that approves the login, so it needs no
//! account and no network; the app, HTTP, login listener and token file are
//! the real ones. Without it, it talks to Globus Auth (honouring
//! `GLOBUS_SDK_ENVIRONMENT` and `GLOBUS_SDK_SERVICE_URL_AUTH`) and opens
//! your browser.

use std::path::PathBuf;
use std::time::Duration;

use globus_app_blocking::adapter::now;
use globus_app_blocking::login::{BrowserOpener, LocalServerLoginFlowManager, SystemBrowser};
use globus_app_blocking::proto::storage::TokenFileFormat;
use globus_app_blocking::storage::{JsonTokenStorage, default_token_file};
use globus_app_blocking::{GlobusAppConfig, LoginFlowKind, UserApp};

const TRANSFER: &str = "transfer.api.globus.org";

/// The stand-in browser of the dev server: shows the URL, then follows it.
struct ApprovingBrowser;

impl BrowserOpener for ApprovingBrowser {
    fn open(&self, url: &str) -> Result<(), globus_app_blocking::login::BrowserError> {
        println!("   browser opens: {}...", &url[..url.len().min(90)]);
        println!("   (the dev server's user approves)");
        globus_app_tests::follow_authorize_url(url);
        Ok(())
    }
}

fn step(title: &str) {
    println!("\n== {title}");
}

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

/// The app: against the dev server (scratch token file, approving browser)
/// or Globus Auth (default token file, system browser).
fn build_app(
    server: Option<&globus_app_tests::AuthServer>,
    scratch: Option<&globus_app_tests::TempDir>,
) -> Fallible<(UserApp, PathBuf)> {
    let listener = LocalServerLoginFlowManager::new().with_timeout(Duration::from_secs(300));
    let (client_id, config, flow) = match server {
        Some(server) => {
            println!("dev server: Globus Auth at {}", server.base_url);
            (
                globus_app_proto::testing::SIM_CLIENT_ID.to_owned(),
                GlobusAppConfig::default().with_auth_base_url(server.base_url.clone()),
                listener
                    .with_browser(ApprovingBrowser)
                    .allow_remote_session(true),
            )
        }
        None => (
            std::env::var("GLOBUS_CLIENT_ID")
                .map_err(|_| "set GLOBUS_CLIENT_ID, or pass --dev-server")?,
            GlobusAppConfig::default(),
            listener.with_browser(SystemBrowser),
        ),
    };
    let config = config
        .with_request_refresh_tokens(true)
        .with_login_flow(LoginFlowKind::LocalServer);
    let mut builder = UserApp::builder("Quickstart")
        .client_id(client_id)
        .scope_requirements(
            TRANSFER,
            "urn:globus:auth:scope:transfer.api.globus.org:all",
        )
        .config(config)
        .login_flow_manager(flow);
    if let Some(dir) = scratch {
        // The dev session keeps its token file in a scratch directory.
        builder = builder.token_storage(JsonTokenStorage::new(
            dir.0.join("globus").join("tokens.json"),
            "DEFAULT",
        )?);
    }
    let app = builder.build()?;
    let token_file: PathBuf = match scratch {
        Some(dir) => dir.0.join("globus").join("tokens.json"),
        None => default_token_file(app.core(), TokenFileFormat::Json)?,
    };
    Ok((app, token_file))
}

fn main() -> Fallible<()> {
    let dev = std::env::args().any(|a| a == "--dev-server");
    let server = dev.then(globus_app_tests::AuthServer::start);
    let scratch = dev.then(|| globus_app_tests::TempDir::new("quickstart"));
    let (app, token_file) = build_app(server.as_ref(), scratch.as_ref())?;

    step("1. Is a login required?");
    println!("   {}", app.login_required()?);

    step("2. Log in (browser, loopback listener, PKCE, checked state, verified id_token)");
    let outcome = app.login()?;
    println!("   {outcome:?}");
    let identity = app.core().identity().unwrap_or_default();
    println!(
        "   token file written: {} ({} bytes)",
        token_file.display(),
        std::fs::metadata(&token_file)?.len()
    );

    step("3. An authorized call: list this identity's consents at Globus Auth");
    let auth = app.get_authorizer("auth.globus.org")?;
    let url = format!(
        "{}v2/api/identities/{identity}/consents",
        app.core().login_client().auth_base()
    );
    let mut response = ureq::get(&url)
        .header("Authorization", auth.header_value()?.to_str()?)
        .call()?;
    let body: serde_json::Value = serde_json::from_str(&response.body_mut().read_to_string()?)?;
    println!(
        "   GET .../consents -> {} consents",
        body["consents"].as_array().map_or(0, Vec::len)
    );

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
    if let Some(server) = &server {
        let live = server.fake().is_live(after.access_token().secret(), now());
        println!("   the server says the last access token is live: {live}");
        assert!(!live);
    }
    println!("   login required again: {}", app.login_required()?);
    println!("\nDone.");
    Ok(())
}
