//! Processes sharing one token file refresh once, against a server that
//! rotates refresh tokens and revokes a whole family when a rotated one is
//! reused.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{AuthServer, FollowingBrowser, SIM_CLIENT_ID, TempDir, now, token_printed_by};
use globus_app_blocking::login::LocalServerLoginFlowManager;
use globus_app_blocking::storage::{JsonTokenStorage, TokenStorage};
use globus_app_blocking::{GlobusAppConfig, UserApp};

const TRANSFER: &str = "transfer.api.globus.org";
const CHILDREN: usize = 8;

fn app(base_url: &str, token_file: &str) -> UserApp {
    UserApp::builder("Process Test")
        .client_id(SIM_CLIENT_ID)
        .scope_requirements(
            TRANSFER,
            "urn:globus:auth:scope:transfer.api.globus.org:all",
        )
        .config(
            GlobusAppConfig::default()
                .with_auth_base_url(base_url.to_owned())
                .with_request_refresh_tokens(true)
                .with_token_validation_error_handler(
                    globus_app_blocking::proto::app::TokenValidationErrorHandler::Raise,
                ),
        )
        .token_storage(JsonTokenStorage::new(token_file, "DEFAULT").unwrap())
        .login_flow_manager(
            LocalServerLoginFlowManager::new()
                .with_browser(FollowingBrowser)
                .with_timeout(Duration::from_secs(10))
                .allow_remote_session(true),
        )
        .build()
        .unwrap()
}

/// Run as a child process: get an authorizer and print its token.
#[test]
fn child_process_entry() {
    let (Ok(base_url), Ok(token_file)) = (
        std::env::var("GLOBUS_APP_TEST_BASE"),
        std::env::var("GLOBUS_APP_TEST_TOKEN_FILE"),
    ) else {
        return; // Not a child: nothing to do.
    };
    let authorization = app(&base_url, &token_file)
        .get_authorizer(TRANSFER)
        .unwrap();
    println!("TOKEN={}", authorization.access_token().secret());
}

#[test]
fn processes_sharing_a_token_file_refresh_once() {
    let server = AuthServer::start();
    server.fake().rotate_refresh_tokens = true;
    let dir = TempDir::new("processes");
    let token_file = dir.0.join("tokens.json");
    let token_file = token_file.to_str().unwrap();
    let parent = app(&server.base_url, token_file);
    parent.login().unwrap();
    // Expire the access tokens on disk.
    let storage = JsonTokenStorage::new(token_file, "DEFAULT").unwrap();
    let mut records = storage.load().unwrap().records().to_vec();
    for record in &mut records {
        record.expires_at = now().saturating_sub_secs(5);
    }
    storage.store(&records).unwrap();

    let children: Vec<_> = (0..CHILDREN)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "child_process_entry",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("GLOBUS_APP_TEST_BASE", &server.base_url)
                .env("GLOBUS_APP_TEST_TOKEN_FILE", token_file)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let tokens: Vec<String> = children.into_iter().map(token_printed_by).collect();

    let refreshes = server.grants("refresh_token");
    assert_eq!(refreshes, 1, "one refresh across {CHILDREN} processes");
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "everyone got the refreshed token"
    );
    // The rotated refresh token was kept: nobody is logged out. (A new
    // storage looks at the file now: `storage` trusts its own last write
    // for a second.)
    let stored = JsonTokenStorage::new(token_file, "DEFAULT")
        .unwrap()
        .load()
        .unwrap();
    let transfer = stored.get(TRANSFER).unwrap();
    assert!(
        server
            .fake()
            .is_live(transfer.refresh_token.as_ref().unwrap().secret(), now())
    );
    assert!(!parent.login_required().unwrap());
}
