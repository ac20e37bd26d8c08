//! End to end over HTTP: the blocking adapter against the local server, for
//! what the adapter's own tests do not cover — sweep, identity mismatch,
//! dependent scopes through the consents API, and injected faults.

use std::time::Duration;

use globus_app_blocking::login::{BrowserOpener, LocalServerLoginFlowManager};
use globus_app_blocking::proto::app::{AppError, TokenValidationError};
use globus_app_blocking::proto::storage::JsonTokenFile;
use globus_app_blocking::proto::testing::{SIM_CLIENT_ID, SimUser};
use globus_app_blocking::storage::{JsonTokenStorage, TokenStorage};
use globus_app_blocking::{Error, GlobusAppConfig, UserApp};
use globus_app_tests::{AuthServer, TempDir, follow_authorize_url};

const TRANSFER: &str = "transfer.api.globus.org";
const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";

struct Browser;

impl BrowserOpener for Browser {
    fn open(&self, url: &str) -> Result<(), String> {
        follow_authorize_url(url);
        Ok(())
    }
}

fn app(server: &AuthServer, dir: &TempDir, transfer_scope: &str) -> (UserApp, JsonTokenStorage) {
    let storage = JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT").unwrap();
    let app = UserApp::from_builder(
        UserApp::builder("End To End")
            .client_id(SIM_CLIENT_ID)
            .scope_requirements(TRANSFER, transfer_scope)
            .config(
                GlobusAppConfig::default()
                    .with_auth_base_url(server.base_url.clone())
                    .with_request_refresh_tokens(true),
            )
            .token_storage(storage.clone())
            .retry_policy(globus_app_blocking::http::RetryPolicy::NEVER)
            .login_flow_manager(
                LocalServerLoginFlowManager::new()
                    .with_browser(Browser)
                    .with_timeout(Duration::from_secs(10))
                    .allow_remote_session(true),
            ),
    )
    .unwrap();
    (app, storage)
}

#[test]
fn sweep_decides_whether_tokens_outside_the_requirements_are_revoked() {
    for sweep in [false, true] {
        let server = AuthServer::start();
        let dir = TempDir::new("sweep");
        let (app, storage) = app(&server, &dir, TRANSFER_ALL);
        app.login(None, false).unwrap();
        let mut groups = storage.load().unwrap().get(TRANSFER).unwrap().clone();
        groups.resource_server = "groups.api.globus.org".into();
        storage.store(&[groups]).unwrap();
        let report = app.logout(sweep).unwrap();
        assert_eq!(
            report.revoked.contains(&"groups.api.globus.org".to_owned()),
            sweep
        );
        assert_eq!(
            storage
                .load()
                .unwrap()
                .get("groups.api.globus.org")
                .is_some(),
            !sweep
        );
        assert!(storage.load().unwrap().get(TRANSFER).is_none());
    }
}

#[test]
fn another_person_cannot_log_in_over_stored_tokens_and_the_file_is_untouched() {
    let server = AuthServer::start();
    let dir = TempDir::new("identity");
    let (app, _) = app(&server, &dir, TRANSFER_ALL);
    app.login(None, false).unwrap();
    let before = std::fs::read(dir.0.join("tokens.json")).unwrap();
    server.fake().user = SimUser::B;
    let err = app.login(None, true).unwrap_err();
    assert!(
        matches!(
            err,
            Error::App(AppError::Validation(
                TokenValidationError::IdentityMismatch { .. }
            ))
        ),
        "{err:?}"
    );
    assert_eq!(std::fs::read(dir.0.join("tokens.json")).unwrap(), before);
    // After logout, the other person can log in with the same app.
    app.logout(false).unwrap();
    app.login(None, false).unwrap();
    assert_eq!(app.core().identity(), Some(SimUser::B.identity()));
}

#[test]
fn dependent_scopes_are_checked_through_the_consents_api_once() {
    let server = AuthServer::start();
    let dir = TempDir::new("consents");
    let (app, _) = app(
        &server,
        &dir,
        &format!("{TRANSFER_ALL}[*https://auth.globus.org/scopes/c1/data_access]"),
    );
    app.login(None, false).unwrap();
    app.get_authorizer(TRANSFER).unwrap();
    app.get_authorizer(TRANSFER).unwrap();
    let path = format!("/v2/api/identities/{}/consents", SimUser::A.identity());
    assert_eq!(server.fake().count(&path), 1);
}

#[test]
fn every_injected_fault_ends_in_a_typed_error_with_the_token_file_intact() {
    let faults: [(u16, &[u8]); 6] = [
        (500, b"<html>Internal Server Error</html>"),
        (503, b""),
        (429, br#"{"error": "slow_down"}"#),
        (200, br#"{"access_token": "LEAKED_TOKEN", "scope": "openid", "expires_in": 17"#),
        (200, br#"{"access_token": "LEAKED_TOKEN", "expires_in": 100, "resource_server": "transfer.api.globus.org"}"#),
        (401, br#"{"error": "invalid_grant"}"#),
    ];
    for (status, body) in faults {
        let server = AuthServer::start();
        let dir = TempDir::new("faults");
        let (app, storage) = app(&server, &dir, TRANSFER_ALL);
        app.login(None, false).unwrap();
        // Expire the tokens so the next call refreshes, and break that refresh.
        let mut records = storage.load().unwrap().records().to_vec();
        for record in &mut records {
            record.expires_at = globus_app_tests::now();
        }
        storage.store(&records).unwrap();
        let before = std::fs::read(dir.0.join("tokens.json")).unwrap();
        server.fake().fail_next(1, status, body);
        server.fake().deny_next_authorization = true; // no silent re-login
        let result = app.get_authorizer(TRANSFER);
        let Err(err) = result else {
            panic!("fault {status} was not reported");
        };
        let text = format!("{err} {err:?}");
        assert!(
            !text.contains("LEAKED_TOKEN") && !text.contains("rt-"),
            "{text}"
        );
        let after = std::fs::read(dir.0.join("tokens.json")).unwrap();
        assert_eq!(after, before, "fault {status}: the token file changed");
        JsonTokenFile::parse(&after).unwrap();
        // Once the fault has passed, the app works again (a refresh, or for a
        // dead refresh token a new login).
        app.get_authorizer(TRANSFER).unwrap();
    }
}
