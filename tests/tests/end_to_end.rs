//! End to end over HTTP against the local server, for both adapters: the
//! blocking one, and the async one with its default client under
//! `futures::executor`, async-std and tokio, with surf under async-std, and
//! with reqwest under tokio. Each scenario runs on all six.

use std::future::Future;
use std::time::Duration;

use globus_app_blocking::login::{
    BrowserOpener, CommandLineLoginFlowManager, LocalServerLoginFlowManager, LoginFlowManager,
};
use globus_app_blocking::proto::app::{
    AppError, Authorization, LoginOutcome, LogoutReport, TokenValidationError,
};
use globus_app_blocking::proto::storage::JsonTokenFile;
use globus_app_blocking::proto::testing::{SIM_CLIENT_ID, SimUser};
use globus_app_blocking::storage::{JsonTokenStorage, TokenStorage};
use globus_app_blocking::{Error, GlobusAppConfig, LoginOptions, LogoutOptions};
use globus_app_tests::{AuthServer, AutoTerminal, TempDir, follow_authorize_url, now};

const TRANSFER: &str = "transfer.api.globus.org";
const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";

// ------------------------------------------------------------------ the user

struct Browser;

impl BrowserOpener for Browser {
    fn open(&self, url: &str) -> Result<(), globus_app_blocking::login::BrowserError> {
        follow_authorize_url(url);
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Flow {
    LocalServer,
    CommandLine,
}

fn flow_manager(flow: Flow) -> Box<dyn LoginFlowManager> {
    match flow {
        Flow::LocalServer => Box::new(
            LocalServerLoginFlowManager::new()
                .with_browser(Browser)
                .with_timeout(Duration::from_secs(10))
                .allow_remote_session(true),
        ),
        Flow::CommandLine => {
            let terminal = AutoTerminal::default();
            Box::new(CommandLineLoginFlowManager::with_io(
                terminal.clone(),
                terminal,
            ))
        }
    }
}

/// A `LoginFlowManager` held in a box, for the builders' generic setters.
struct Boxed(Box<dyn LoginFlowManager>);

impl LoginFlowManager for Boxed {
    fn run(
        &self,
        plan: &globus_app_blocking::proto::app::AuthorizePlan,
    ) -> Result<
        globus_app_blocking::login::AuthorizationResponse,
        globus_app_blocking::login::LoginFlowError,
    > {
        self.0.run(plan)
    }
}

// ------------------------------------------------------------------ the adapters

enum Executor {
    Futures,
    AsyncStd,
    Tokio(tokio::runtime::Runtime),
}

impl Executor {
    fn run<F: Future>(&self, future: F) -> F::Output {
        match self {
            Self::Futures => futures::executor::block_on(future),
            Self::AsyncStd => async_std::task::block_on(future),
            Self::Tokio(runtime) => runtime.block_on(future),
        }
    }
}

enum Client {
    Blocking(globus_app_blocking::UserApp),
    Async(globus_app_async::UserApp, Executor),
}

impl Client {
    fn login(&self) -> Result<LoginOutcome, Error> {
        self.login_with(LoginOptions::new())
    }

    fn login_with(&self, options: LoginOptions) -> Result<LoginOutcome, Error> {
        match self {
            Self::Blocking(app) => app.login_with(options),
            Self::Async(app, exec) => exec.run(app.login_with(options)),
        }
    }

    fn get(&self, rs: &str) -> Result<Authorization, Error> {
        match self {
            Self::Blocking(app) => app.get_authorizer(rs),
            Self::Async(app, exec) => exec.run(app.get_authorizer(rs)),
        }
    }

    fn logout(&self) -> Result<LogoutReport, Error> {
        self.logout_with(LogoutOptions::new())
    }

    fn logout_with(&self, options: LogoutOptions) -> Result<LogoutReport, Error> {
        match self {
            Self::Blocking(app) => app.logout_with(options),
            Self::Async(app, exec) => exec.run(app.logout_with(options)),
        }
    }

    fn login_required(&self) -> bool {
        match self {
            Self::Blocking(app) => app.login_required().unwrap(),
            Self::Async(app, exec) => exec.run(app.login_required()).unwrap(),
        }
    }

    fn identity(&self) -> Option<String> {
        match self {
            Self::Blocking(app) => app.core().identity(),
            Self::Async(app, _) => app.core().identity(),
        }
    }

    fn redrive_gare(&self, response: &http::Response<Vec<u8>>) -> Result<bool, Error> {
        match self {
            Self::Blocking(app) => app.redrive_gare(response),
            Self::Async(app, exec) => exec.run(app.redrive_gare(response)),
        }
    }
}

struct Setup {
    name: &'static str,
    client: Client,
    storage: JsonTokenStorage,
    _dir: TempDir,
}

fn config(server: &AuthServer, refresh: bool) -> GlobusAppConfig {
    GlobusAppConfig::default()
        .with_auth_base_url(server.base_url.clone())
        .with_request_refresh_tokens(refresh)
        .with_auto_redrive_gares(true)
}

/// The async builder of setup `name`: the default HTTP client (ureq on the
/// `blocking` pool), or the one the name gives.
fn async_builder(name: &str) -> globus_app_async::UserAppBuilder {
    let builder = globus_app_async::UserApp::builder("End To End");
    if name.starts_with("async/surf/") {
        builder.http_client(globus_app_async::http::SurfClient::default())
    } else if name.starts_with("async/reqwest/") {
        builder.http_client(
            globus_app_async::http::ReqwestClient::new(Duration::from_secs(60)).unwrap(),
        )
    } else {
        builder
    }
}

/// The same app on each adapter, each with its own token file.
fn setups(server: &AuthServer, scope: &str, refresh: bool, flow: Flow) -> Vec<Setup> {
    let names = [
        "blocking",
        "async/futures",
        "async/async-std",
        "async/tokio",
        "async/surf/async-std",
        "async/reqwest/tokio",
    ];
    names
        .into_iter()
        .map(|name| {
            let dir = TempDir::new("e2e");
            let storage = JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT").unwrap();
            let client = if name == "blocking" {
                Client::Blocking(
                    globus_app_blocking::UserApp::builder("End To End")
                        .client_id(SIM_CLIENT_ID)
                        .scope_requirements(TRANSFER, scope)
                        .config(config(server, refresh))
                        .token_storage(storage.clone())
                        .retry_policy(globus_app_blocking::http::RetryPolicy::NEVER)
                        .login_flow_manager(Boxed(flow_manager(flow)))
                        .build()
                        .unwrap(),
                )
            } else {
                let exec = match name {
                    "async/futures" => Executor::Futures,
                    "async/async-std" | "async/surf/async-std" => Executor::AsyncStd,
                    // "async/tokio" and "async/reqwest/tokio" (reqwest needs tokio).
                    _ => Executor::Tokio(
                        tokio::runtime::Builder::new_multi_thread()
                            .enable_all()
                            .build()
                            .unwrap(),
                    ),
                };
                let app = exec
                    .run(
                        async_builder(name)
                            .client_id(SIM_CLIENT_ID)
                            .scope_requirements(TRANSFER, scope)
                            .config(config(server, refresh))
                            .token_storage(globus_app_async::storage::Unblocked::new(
                                storage.clone(),
                            ))
                            .retry_policy(globus_app_blocking::http::RetryPolicy::NEVER)
                            .login_flow_manager(globus_app_async::login::UnblockedLogin::new(
                                Boxed(flow_manager(flow)),
                            ))
                            .build(),
                    )
                    .unwrap();
                Client::Async(app, exec)
            };
            Setup {
                name,
                client,
                storage,
                _dir: dir,
            }
        })
        .collect()
}

fn expire(storage: &JsonTokenStorage) {
    let mut records = storage.load().unwrap().records().to_vec();
    for record in &mut records {
        record.expires_at = now();
    }
    storage.store(&records).unwrap();
}

// ------------------------------------------------------------------ scenarios

#[test]
fn command_line_login_through_the_auth_code_page_in_access_token_mode() {
    let server = AuthServer::start();
    for setup in setups(&server, TRANSFER_ALL, false, Flow::CommandLine) {
        let Setup {
            name,
            client,
            storage,
            ..
        } = &setup;
        assert!(client.login_required(), "{name}");
        client.login().unwrap();
        let first = client.get(TRANSFER).unwrap();
        assert!(
            storage
                .load()
                .unwrap()
                .records()
                .iter()
                .all(|r| r.refresh_token.is_none()),
            "{name}"
        );
        // Access-token mode: an expired token means a new login (via the terminal).
        expire(storage);
        let second = client.get(TRANSFER).unwrap();
        assert_ne!(first.access_token(), second.access_token(), "{name}");
        assert!(second.expires_at() > now(), "{name}");
    }
}

#[test]
fn local_server_login_refresh_and_rotation() {
    let server = AuthServer::start();
    server.fake().rotate_refresh_tokens = true;
    for setup in setups(&server, TRANSFER_ALL, true, Flow::LocalServer) {
        let Setup {
            name,
            client,
            storage,
            ..
        } = &setup;
        client.login().unwrap();
        let old_refresh = storage
            .load()
            .unwrap()
            .get(TRANSFER)
            .unwrap()
            .refresh_token
            .clone()
            .unwrap();
        expire(storage);
        client.get(TRANSFER).unwrap();
        let new_refresh = storage
            .load()
            .unwrap()
            .get(TRANSFER)
            .unwrap()
            .refresh_token
            .clone()
            .unwrap();
        assert_ne!(
            old_refresh, new_refresh,
            "{name}: the rotated refresh token was stored"
        );
        assert!(server.fake().is_live(new_refresh.secret(), now()), "{name}");
        assert!(!client.login_required(), "{name}");
    }
}

#[test]
fn sweep_decides_whether_tokens_outside_the_requirements_are_revoked() {
    for sweep in [false, true] {
        let server = AuthServer::start();
        for setup in setups(&server, TRANSFER_ALL, true, Flow::LocalServer) {
            let Setup {
                name,
                client,
                storage,
                ..
            } = &setup;
            client.login().unwrap();
            let mut groups = storage.load().unwrap().get(TRANSFER).unwrap().clone();
            groups.resource_server = "groups.api.globus.org".into();
            storage.store(&[groups]).unwrap();
            let report = client
                .logout_with(LogoutOptions::new().all_stored_resource_servers(sweep))
                .unwrap();
            assert_eq!(
                report.revoked.contains(&"groups.api.globus.org".to_owned()),
                sweep,
                "{name}"
            );
            assert_eq!(
                storage
                    .load()
                    .unwrap()
                    .get("groups.api.globus.org")
                    .is_some(),
                !sweep,
                "{name}"
            );
            assert!(storage.load().unwrap().get(TRANSFER).is_none(), "{name}");
        }
    }
}

#[test]
fn another_person_cannot_log_in_over_stored_tokens_and_the_file_is_untouched() {
    let server = AuthServer::start();
    for setup in setups(&server, TRANSFER_ALL, true, Flow::LocalServer) {
        let Setup {
            name,
            client,
            storage,
            ..
        } = &setup;
        server.fake().user = SimUser::A;
        client.login().unwrap();
        let before = std::fs::read(storage.path()).unwrap();
        server.fake().user = SimUser::B;
        let err = client
            .login_with(LoginOptions::new().force(true))
            .unwrap_err();
        assert!(
            matches!(
                &err,
                Error::App(e) if matches!(
                    **e,
                    AppError::Validation(TokenValidationError::IdentityMismatch { .. })
                )
            ),
            "{name}: {err:?}"
        );
        assert_eq!(std::fs::read(storage.path()).unwrap(), before, "{name}");
        client.logout().unwrap();
        client.login().unwrap();
        assert_eq!(client.identity(), Some(SimUser::B.identity()), "{name}");
    }
}

#[test]
fn dependent_scopes_are_checked_through_the_consents_api_once() {
    let server = AuthServer::start();
    let scope = format!("{TRANSFER_ALL}[*https://auth.globus.org/scopes/c1/data_access]");
    for setup in setups(&server, &scope, true, Flow::LocalServer) {
        let before = server
            .fake()
            .requests
            .iter()
            .filter(|r| r.path.ends_with("/consents"))
            .count();
        setup.client.login().unwrap();
        setup.client.get(TRANSFER).unwrap();
        setup.client.get(TRANSFER).unwrap();
        let after = server
            .fake()
            .requests
            .iter()
            .filter(|r| r.path.ends_with("/consents"))
            .count();
        assert_eq!(after - before, 1, "{}", setup.name);
    }
}

#[test]
fn a_gare_from_a_service_is_redriven_with_one_login_and_the_retry_succeeds() {
    let server = AuthServer::start();
    let needed = format!("{TRANSFER_ALL}[*https://auth.globus.org/scopes/c9/data_access]");
    for setup in setups(&server, TRANSFER_ALL, true, Flow::LocalServer) {
        let Setup { name, client, .. } = &setup;
        client.login().unwrap();
        server.require_for_service(&needed);
        let call = |client: &Client| {
            let authorization = client.get(TRANSFER).unwrap();
            let mut response = ureq::get(&format!("{}service/resource", server.base_url))
                .header(
                    "authorization",
                    authorization.header_value().unwrap().to_str().unwrap(),
                )
                .config()
                .http_status_as_error(false)
                .build()
                .call()
                .unwrap();
            let status = response.status().as_u16();
            let body = response.body_mut().read_to_vec().unwrap();
            http::Response::builder().status(status).body(body).unwrap()
        };
        let first = call(client);
        assert_eq!(first.status(), 403, "{name}");
        assert!(
            client.redrive_gare(&first).unwrap(),
            "{name}: a GARE nested in errors[] is found"
        );
        let retry = call(client);
        assert_eq!(retry.status(), 200, "{name}: the retry succeeds");
        assert!(!client.redrive_gare(&retry).unwrap(), "{name}");
    }
}

#[test]
fn every_injected_fault_ends_in_a_typed_error_with_the_token_file_intact() {
    // (Intact but for an invalid_grant: the rejected refresh token goes.)
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
        for setup in setups(&server, TRANSFER_ALL, true, Flow::LocalServer) {
            let Setup {
                name,
                client,
                storage,
                ..
            } = &setup;
            client.login().unwrap();
            expire(storage);
            let before = std::fs::read(storage.path()).unwrap();
            server.fake().fail_next(1, status, body);
            server.fake().deny_next_authorization = true; // no silent re-login
            let Err(err) = client.get(TRANSFER) else {
                panic!("{name}: fault {status} was not reported");
            };
            let text = format!("{err} {err:?}");
            assert!(
                !text.contains("LEAKED_TOKEN") && !text.contains("rt-"),
                "{name}: {text}"
            );
            let after = std::fs::read(storage.path()).unwrap();
            if body.windows(13).any(|w| w == b"invalid_grant") {
                // The rejected refresh token, and only it, is removed, so
                // that other processes skip the doomed grant.
                let mut expected = JsonTokenFile::parse(&before).unwrap();
                let mut transfer = expected.get("DEFAULT", TRANSFER).unwrap().unwrap();
                transfer.refresh_token = None;
                expected.store("DEFAULT", [&transfer]);
                assert_eq!(
                    JsonTokenFile::parse(&after)
                        .unwrap()
                        .get_all("DEFAULT")
                        .unwrap(),
                    expected.get_all("DEFAULT").unwrap(),
                    "{name}"
                );
            } else {
                assert_eq!(
                    after, before,
                    "{name}: fault {status} changed the token file"
                );
            }
            JsonTokenFile::parse(&after).unwrap();
            server.fake().deny_next_authorization = false;
            client.get(TRANSFER).unwrap();
        }
    }
}
