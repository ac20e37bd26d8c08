//! Hostile ids through every typed method that takes one, in the blocking
//! and the async clients, against the local Transfer and Search services:
//! each request line the service receives is the method's route with the
//! id as exactly one segment, and an id that cannot be one (`..`, `.`, the
//! empty id) is a typed error with nothing sent.

mod common;

use globus_app_blocking::Error;
use globus_app_blocking::proto::service::{ServiceRequestError, path_segment};
use globus_app_blocking::proto::testing::HOSTILE_IDS;
use globus_app_blocking::service::{Listing, SEARCH, ServiceClient, TRANSFER};
use globus_app_tests::AuthServer;
use globus_app_tests::services::ServicesServer;
use serde_json::json;

/// The routes, in the order `calls` makes them.
const ROUTES: [&str; 9] = [
    "/v0.10/endpoint/{}",
    "/v0.10/operation/endpoint/{}/ls",
    "/v0.10/operation/endpoint/{}/mkdir",
    "/v0.10/operation/endpoint/{}/rename",
    "/v0.10/operation/endpoint/{}/stat",
    "/v0.10/task/{}",
    "/v0.10/task/{}/cancel",
    "/v1/index/{}/search",
    "/v1/index/{}/search",
];

type Outcome = Result<(), Error>;

fn ids() -> Vec<String> {
    let mut ids: Vec<String> = HOSTILE_IDS.iter().map(|id| (*id).to_owned()).collect();
    ids.push("..\\".repeat(3400)); // about 10 KB
    ids
}

/// Checks what `services` received for `id` after the nine calls gave
/// `outcomes`.
fn check(services: &ServicesServer, seen_before: usize, id: &str, outcomes: &[Outcome]) -> usize {
    let received = services.requests();
    let new = &received[seen_before..];
    if matches!(id, "" | "." | "..") {
        for outcome in outcomes {
            assert!(
                matches!(outcome, Err(Error::ServiceRequest(e)) if matches!(**e, ServiceRequestError::InvalidId { .. })),
                "{id:?}: {outcome:?}"
            );
        }
        assert!(new.is_empty(), "{id:?} reached the service: {new:?}");
    } else {
        let segment = path_segment(id);
        let expected: Vec<String> = ROUTES.iter().map(|r| r.replace("{}", &segment)).collect();
        assert_eq!(new.len(), ROUTES.len(), "{id:?}: {new:?}");
        for (request, route) in new.iter().zip(&expected) {
            assert_eq!(&request.path, route, "{id:?}");
        }
    }
    received.len()
}

#[test]
fn blocking_clients_keep_every_id_in_its_route() {
    let server = AuthServer::start();
    let services = server.start_services();
    let app = common::user_app(&server, "Hostile ids");
    let at = |spec| {
        ServiceClient::builder(&app, spec)
            .base_url(&services.base_url)
            .build()
            .unwrap()
    };
    let transfer = globus_app_blocking::service::TransferClient::from_service(at(TRANSFER));
    let search = globus_app_blocking::service::SearchClient::from_service(at(SEARCH));
    app.login().unwrap();
    let mut seen = services.requests().len();
    for id in ids() {
        let id = id.as_str();
        let outcomes: Vec<Outcome> = vec![
            transfer.get_endpoint(id).map(drop),
            transfer.operation_ls(id, &Listing::default()).map(drop),
            transfer.operation_mkdir(id, "/p").map(drop),
            transfer.operation_rename(id, "/a", "/b").map(drop),
            transfer.operation_stat(id, "/p").map(drop),
            transfer.get_task(id).map(drop),
            transfer.cancel_task(id).map(drop),
            search.search(id, "q").map(drop),
            search.post_search(id, json!({"q": "q"})).map(drop),
        ];
        seen = check(&services, seen, id, &outcomes);
    }
}

#[test]
fn async_clients_keep_every_id_in_its_route() {
    let server = AuthServer::start();
    let services = server.start_services();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = runtime
        .block_on(
            globus_app_async::UserApp::builder("Hostile ids async")
                .client_id(globus_app_blocking::proto::testing::SIM_CLIENT_ID)
                .config(
                    globus_app_blocking::GlobusAppConfig::default()
                        .with_auth_base_url(server.base_url.clone()),
                )
                .token_storage(globus_app_blocking::storage::MemoryTokenStorage::new())
                .login_flow_manager(globus_app_async::login::UnblockedLogin::new(
                    globus_app_blocking::login::LocalServerLoginFlowManager::new()
                        .with_browser(common::Browser)
                        .with_timeout(std::time::Duration::from_secs(10))
                        .allow_remote_session(true),
                ))
                .build(),
        )
        .unwrap();
    runtime.block_on(app.login()).unwrap();
    let at = |spec| {
        globus_app_async::service::ServiceClient::builder(&app, spec)
            .base_url(&services.base_url)
            .build()
            .unwrap()
    };
    let transfer = globus_app_async::service::TransferClient::from_service(at(TRANSFER));
    let search = globus_app_async::service::SearchClient::from_service(at(SEARCH));
    let mut seen = services.requests().len();
    for id in ids() {
        let id = id.as_str();
        let outcomes: Vec<Outcome> = runtime.block_on(async {
            vec![
                transfer.get_endpoint(id).await.map(drop),
                transfer
                    .operation_ls(id, &Listing::default())
                    .await
                    .map(drop),
                transfer.operation_mkdir(id, "/p").await.map(drop),
                transfer.operation_rename(id, "/a", "/b").await.map(drop),
                transfer.operation_stat(id, "/p").await.map(drop),
                transfer.get_task(id).await.map(drop),
                transfer.cancel_task(id).await.map(drop),
                search.search(id, "q").await.map(drop),
                search.post_search(id, json!({"q": "q"})).await.map(drop),
            ]
        });
        seen = check(&services, seen, id, &outcomes);
    }
}
