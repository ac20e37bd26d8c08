//! The authorized clients of both adapters against a fake Globus service on
//! 127.0.0.1: a 401 to an old token, GAREs at the root and in `errors[]`,
//! a 403 that is not a GARE, and a service that refuses every token. Each
//! case counts the requests the service and Globus Auth received.

use std::time::Duration;

use globus_app_blocking::login::{BrowserOpener, LocalServerLoginFlowManager};
use globus_app_blocking::proto::testing::SIM_CLIENT_ID;
use globus_app_blocking::storage::MemoryTokenStorage;
use globus_app_blocking::{Error, GlobusAppConfig};
use globus_app_tests::{AuthServer, FakeService, follow_authorize_url};
use serde_json::json;

const TRANSFER: &str = "transfer.api.globus.org";
const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";

struct Browser;

impl BrowserOpener for Browser {
    fn open(&self, url: &str) -> Result<(), globus_app_blocking::login::BrowserError> {
        follow_authorize_url(url);
        Ok(())
    }
}

fn flow() -> LocalServerLoginFlowManager {
    LocalServerLoginFlowManager::new()
        .with_browser(Browser)
        .with_timeout(Duration::from_secs(10))
        .allow_remote_session(true)
}

fn config(server: &AuthServer) -> GlobusAppConfig {
    GlobusAppConfig::default()
        .with_auth_base_url(server.base_url.clone())
        .with_request_refresh_tokens(true)
        .with_auto_redrive_gares(true)
}

/// Either adapter's authorized client, driven synchronously.
enum Client {
    Blocking(globus_app_blocking::AuthorizedClient),
    Async(globus_app_async::AuthorizedClient, tokio::runtime::Runtime),
}

impl Client {
    fn send(&self, service: &FakeService) -> Result<http::Response<Vec<u8>>, Error> {
        let request = http::Request::get(format!("{}v0.10/task_list", service.base_url))
            .body(Vec::new())
            .unwrap();
        match self {
            Self::Blocking(client) => client.send(&request),
            Self::Async(client, runtime) => runtime.block_on(client.send(&request)),
        }
    }
}

/// A logged-in user app of each adapter, its client mapping the fake
/// service to Transfer.
fn clients(server: &AuthServer, service: &FakeService) -> Vec<(&'static str, Client)> {
    let blocking = globus_app_blocking::UserApp::builder("Authorized")
        .client_id(SIM_CLIENT_ID)
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(config(server))
        .token_storage(MemoryTokenStorage::new())
        .login_flow_manager(flow())
        .build()
        .unwrap();
    blocking.login().unwrap();
    let blocking_client = blocking
        .authorized(globus_app_blocking::http::UreqClient::default())
        .with_resource_server(&service.authority, TRANSFER);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let async_client = runtime.block_on(async {
        let app = globus_app_async::UserApp::builder("Authorized")
            .client_id(SIM_CLIENT_ID)
            .scope_requirements(TRANSFER, TRANSFER_ALL)
            .config(config(server))
            .token_storage(MemoryTokenStorage::new())
            .login_flow_manager(globus_app_async::login::UnblockedLogin::new(flow()))
            .build()
            .await
            .unwrap();
        app.login().await.unwrap();
        app.authorized(globus_app_async::http::UnblockedHttp::ureq())
            .with_resource_server(&service.authority, TRANSFER)
    });
    vec![
        ("blocking", Client::Blocking(blocking_client)),
        ("async", Client::Async(async_client, runtime)),
    ]
}

/// The bearer token of a recorded `Authorization` header.
fn token(header: Option<&Option<String>>) -> String {
    header
        .and_then(Option::as_deref)
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_401_to_an_old_token_renews_once_and_retries_once() {
    let server = AuthServer::start();
    let service = FakeService::start();
    for (name, client) in clients(&server, &service) {
        // The first request shows the service the current token; then the
        // service starts refusing it.
        assert_eq!(client.send(&service).unwrap().status(), 200, "{name}");
        let old = token(service.requests().last());
        service.reject(&old);
        let refreshes = server.grants("refresh_token");
        let before = service.requests().len();

        let response = client.send(&service).unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let seen = &service.requests()[before..];
        assert_eq!(seen.len(), 2, "{name}: the old token, then the new one");
        assert_eq!(token(seen.first()), old);
        assert_ne!(token(seen.get(1)), old);
        assert_eq!(server.grants("refresh_token"), refreshes + 1, "{name}");
    }
}

#[test]
fn a_service_that_refuses_every_token_gets_two_requests_and_no_loop() {
    let server = AuthServer::start();
    let service = FakeService::start();
    for (name, client) in clients(&server, &service) {
        let before = service.requests().len();
        service.reject_all();
        let response = client.send(&service).unwrap();
        assert_eq!(
            response.status(),
            401,
            "{name}: the second answer is returned"
        );
        assert_eq!(service.requests().len() - before, 2, "{name}");
    }
}

#[test]
fn a_gare_at_the_root_or_in_errors_logs_in_once_and_retries_once() {
    let gare = json!({
        "code": "ConsentRequired",
        "authorization_parameters": {
            "session_message": "more consent",
            "required_scopes": [TRANSFER_ALL],
        }
    });
    for body in [gare.clone(), json!({"errors": [gare.clone()]})] {
        let server = AuthServer::start();
        let service = FakeService::start();
        for (name, client) in clients(&server, &service) {
            let exchanges = server.grants("authorization_code");
            let before = service.requests().len();
            service.answer_next(403, &body);
            let response = client.send(&service).unwrap();
            assert_eq!(response.status(), 200, "{name} {body}");
            assert_eq!(service.requests().len() - before, 2, "{name} {body}");
            assert_eq!(
                server.grants("authorization_code"),
                exchanges + 1,
                "{name}: one login with the GARE's parameters"
            );
            // Twice in a row: the retry's GARE is returned, not redriven.
            service.answer_next(403, &body);
            service.answer_next(403, &body);
            let before = service.requests().len();
            assert_eq!(client.send(&service).unwrap().status(), 403, "{name}");
            assert_eq!(service.requests().len() - before, 2, "{name}");
        }
    }
}

#[test]
fn a_403_that_is_not_a_gare_is_returned_after_one_request() {
    let server = AuthServer::start();
    let service = FakeService::start();
    for (name, client) in clients(&server, &service) {
        let before = service.requests().len();
        let refreshes = server.grants("refresh_token");
        service.answer_next(403, &json!({"code": "PermissionDenied"}));
        assert_eq!(client.send(&service).unwrap().status(), 403, "{name}");
        assert_eq!(service.requests().len() - before, 1, "{name}");
        assert_eq!(server.grants("refresh_token"), refreshes, "{name}");
    }
}

#[test]
fn an_unknown_host_is_a_typed_error_and_known_services_need_no_mapping() {
    let server = AuthServer::start();
    let app = globus_app_blocking::UserApp::builder("Authorized")
        .client_id(SIM_CLIENT_ID)
        .config(config(&server))
        .token_storage(MemoryTokenStorage::new())
        .build()
        .unwrap();
    let client = app.authorized(globus_app_blocking::http::UreqClient::default());
    let request = http::Request::get("https://example.org/")
        .body(Vec::new())
        .unwrap();
    let error = client.send(&request).unwrap_err();
    assert!(
        matches!(&error, Error::UnknownService { host } if host == "example.org"),
        "{error:?}"
    );
    // The auth service itself is known (here: the local server).
    assert_eq!(
        app.core()
            .resource_server_for(&server.base_url.parse().unwrap()),
        Some("auth.globus.org")
    );
}
