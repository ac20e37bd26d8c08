//! The async service clients against the local Globus Auth and its
//! resource servers, under every executor the async crate supports (no
//! runtime, async-std, tokio): the typed calls and a task waited for,
//! paging as a stream, "401 then GARE", retries, connection reuse, a large
//! answer read as an `AsyncRead`, and token safety.

use std::future::Future;
use std::time::Duration;

use futures::io::AsyncReadExt as _;
use futures::stream::{StreamExt as _, TryStreamExt as _};
use globus_app_async::login::{BrowserOpener, LocalServerLoginFlowManager, UnblockedLogin};
use globus_app_async::proto::testing::SIM_CLIENT_ID;
use globus_app_async::service::{
    EndpointSearch, GROUPS, GroupsClient, Listing, SEARCH, SearchClient, ServiceClient,
    ServiceRequest, TRANSFER, TransferClient, TransferData,
};
use globus_app_async::{Error, GlobusAppConfig, UserApp};
use globus_app_blocking::storage::MemoryTokenStorage;
use globus_app_tests::services::{
    MAPPED_COLLECTION, SEARCH_INDEX, ServicesServer, TUTORIAL_COLLECTION, TUTORIAL_COLLECTION_2,
};
use globus_app_tests::{AuthServer, FakeService, follow_authorize_url};
use serde_json::json;

struct Browser;

impl BrowserOpener for Browser {
    fn open(&self, url: &str) -> Result<(), globus_app_async::login::BrowserError> {
        follow_authorize_url(url);
        Ok(())
    }
}

/// Runs `test` with no runtime, under async-std and under tokio.
fn on_every_executor<F: Future<Output = ()>>(test: impl Fn() -> F) {
    futures::executor::block_on(test());
    async_std::task::block_on(test());
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(test());
}

async fn setup() -> (AuthServer, ServicesServer, UserApp) {
    let server = AuthServer::start();
    let services = server.start_services();
    let app = UserApp::builder("Async Service Clients")
        .client_id(SIM_CLIENT_ID)
        .config(
            GlobusAppConfig::default()
                .with_auth_base_url(server.base_url.clone())
                .with_request_refresh_tokens(true)
                .with_auto_redrive_gares(true),
        )
        .token_storage(MemoryTokenStorage::new())
        .login_flow_manager(UnblockedLogin::new(
            LocalServerLoginFlowManager::new()
                .with_browser(Browser)
                .with_timeout(Duration::from_secs(10))
                .allow_remote_session(true),
        ))
        .build()
        .await
        .unwrap();
    (server, services, app)
}

fn at(
    app: &UserApp,
    services: &ServicesServer,
    spec: globus_app_async::service::ServiceSpec,
) -> ServiceClient {
    at_via(app, services, spec, None)
}

/// A client of `spec` on the local services, over `transport` if given
/// (else the default one).
fn at_via(
    app: &UserApp,
    services: &ServicesServer,
    spec: globus_app_async::service::ServiceSpec,
    transport: Option<&globus_app_async::http::ReqwestClient>,
) -> ServiceClient {
    let builder = ServiceClient::builder(app, spec).base_url(&services.base_url);
    match transport {
        Some(transport) => builder.transport(transport.clone()),
        None => builder,
    }
    .build()
    .unwrap()
}

#[test]
fn typed_calls_paging_and_a_finished_task_under_every_executor() {
    on_every_executor(|| typed_calls_paging_and_a_finished_task(None));
}

/// With reqwest as the service transport (feature `reqwest`), the same
/// calls run natively on tokio.
#[test]
fn the_reqwest_transport_runs_the_typed_calls_under_tokio() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let transport =
                globus_app_async::http::ReqwestClient::pooled(Duration::from_secs(60)).unwrap();
            typed_calls_paging_and_a_finished_task(Some(&transport)).await;
        });
}

async fn typed_calls_paging_and_a_finished_task(
    transport: Option<&globus_app_async::http::ReqwestClient>,
) {
    {
        let (server, services, app) = setup().await;
        let transfer = TransferClient::from_service(at_via(&app, &services, TRANSFER, transport));
        let groups = GroupsClient::from_service(at_via(&app, &services, GROUPS, transport));
        let search = SearchClient::from_service(at_via(&app, &services, SEARCH, transport));
        let found = transfer
            .endpoint_search("Tutorial Collection")
            .await
            .unwrap();
        assert_eq!(found.data["DATA"].as_array().unwrap().len(), 2);
        let pages: Vec<_> = transfer
            .endpoint_search_pages(&EndpointSearch::fulltext("Paging Collection"), None)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(
            pages.iter().map(|p| p.items.len()).collect::<Vec<_>>(),
            [100, 100, 50]
        );
        transfer
            .operation_ls(TUTORIAL_COLLECTION, &Listing::path("/~/"))
            .await
            .unwrap();
        transfer
            .operation_mkdir(TUTORIAL_COLLECTION, "/~/made")
            .await
            .unwrap();
        let task = transfer
            .submit_transfer(
                TransferData::new(TUTORIAL_COLLECTION, TUTORIAL_COLLECTION_2)
                    .item("/~/file1.txt", "/~/file1.txt", false)
                    .item("/~/file2.txt", "/~/file2.txt", false),
            )
            .await
            .unwrap();
        let task_id = task.str_field("task_id").unwrap();
        assert!(
            transfer
                .task_wait(task_id, Duration::from_secs(10), Duration::from_secs(1))
                .await
                .unwrap()
        );
        assert_eq!(groups.get_my_groups(&[]).await.unwrap().len(), 2);
        let results: Vec<_> = search
            .post_search_items(SEARCH_INDEX, json!({"q": "*"}))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(results.len(), 230);
        let simple: Vec<_> = search
            .search_items(SEARCH_INDEX, "*")
            .try_collect()
            .await
            .unwrap();
        assert_eq!(simple.len(), 230);
        assert_eq!(server.grants("authorization_code"), 1);
    }
}

#[test]
fn refusals_retries_reuse_and_token_safety_under_every_executor() {
    on_every_executor(|| async {
        let (server, services, app) = setup().await;
        let transfer = TransferClient::from_service(at(&app, &services, TRANSFER));
        transfer.get_endpoint(TUTORIAL_COLLECTION).await.unwrap();
        // 401, then the mapped collection's GARE: renewed, logged in.
        let before = services.requests().len();
        services.inject(401, None, 1);
        transfer
            .operation_ls(MAPPED_COLLECTION, &Listing::path("/~/"))
            .await
            .unwrap();
        assert_eq!(services.requests().len() - before, 3);
        assert_eq!(server.grants("refresh_token"), 1);
        assert_eq!(server.grants("authorization_code"), 2);
        // 503 with Retry-After: retried (a GET).
        services.inject(503, Some(0), 1);
        transfer.get_endpoint(TUTORIAL_COLLECTION).await.unwrap();
        // 200 requests, at most 2 connections.
        let opened = services.connections();
        for _ in 0..200 {
            transfer.get_endpoint(TUTORIAL_COLLECTION).await.unwrap();
        }
        assert!(services.connections() - opened <= 2);
        // No token outside the base URL, nor through a redirect.
        let client = transfer.service();
        let error = client
            .request(&ServiceRequest::get("https://evil.example.org/x"))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::ServiceRequest(_)), "{error:?}");
        let elsewhere = FakeService::start();
        let error = client
            .request(&ServiceRequest::get("/v0.10/redirect").query("to", &elsewhere.base_url))
            .await
            .unwrap_err();
        assert_eq!(error.http_status(), Some(http::StatusCode::FOUND));
        assert!(elsewhere.requests().is_empty());
    });
}

#[test]
fn a_large_answer_is_read_as_an_async_reader_under_every_executor() {
    on_every_executor(|| async {
        let (_server, services, app) = setup().await;
        let transfer = TransferClient::from_service(at(&app, &services, TRANSFER));
        let request = globus_app_async::proto::service::transfer::operation_ls(
            TUTORIAL_COLLECTION,
            &Listing::path("/huge/8"),
        );
        let mut body = transfer.service().request_reader(&request).await.unwrap();
        let mut buffer = vec![0u8; 64 << 10];
        let mut total = 0usize;
        loop {
            let n = body.read(&mut buffer).await.unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        assert!(total > (8 << 20) - 1024, "{total}");
        // A stream of items stops at its limit.
        let first: Vec<_> = transfer
            .endpoint_search_pages(&EndpointSearch::fulltext("Paging"), Some(30))
            .map(|page| page.unwrap().items.len())
            .collect()
            .await;
        assert_eq!(first, [30]);
    });
}

#[test]
fn async_whole_answers_stop_at_the_clients_limit() {
    on_every_executor(|| async {
        let (_server, services, app) = setup().await;
        let transfer = TransferClient::from_service(
            ServiceClient::builder(&app, TRANSFER)
                .base_url(&services.base_url)
                .max_response_bytes(1 << 20)
                .build()
                .unwrap(),
        );
        for path in ["/huge/3", "/huge-chunked/3"] {
            let error = transfer
                .operation_ls(TUTORIAL_COLLECTION, &Listing::path(path))
                .await
                .unwrap_err();
            assert!(
                matches!(&error, Error::Transport(e) if e.kind() == globus_app_blocking::http::TransportErrorKind::TooLarge
                    && std::error::Error::source(&**e).is_some_and(|s| s.to_string().contains(&(1u64 << 20).to_string()))),
                "{path}: {error:?}"
            );
        }
    });
}

#[test]
fn async_connections_the_server_closed_as_a_request_went_out_are_sent_again() {
    on_every_executor(|| async {
        let (_server, services, app) = setup().await;
        let transfer = TransferClient::from_service(
            ServiceClient::builder(&app, TRANSFER)
                .base_url(&services.base_url)
                .retry_policy(globus_app_blocking::http::RetryPolicy::NEVER)
                .build()
                .unwrap(),
        );
        transfer.endpoint_search("Tutorial").await.unwrap();
        services.close_connections_after(2);
        for i in 0..10 {
            transfer.get_endpoint(TUTORIAL_COLLECTION).await.unwrap();
            transfer
                .operation_mkdir(TUTORIAL_COLLECTION, &format!("/idle-{i}"))
                .await
                .unwrap();
        }
    });
}

#[test]
fn concurrent_tasks_use_at_most_as_many_connections_as_there_are_tasks() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (_server, services, app) = setup().await;
        let transfer =
            std::sync::Arc::new(TransferClient::from_service(at(&app, &services, TRANSFER)));
        transfer.endpoint_search("Tutorial").await.unwrap();
        for tasks in [1, 8, 64] {
            let before = services.connections();
            let calls = 1_000 / tasks;
            let mut running = Vec::new();
            for _ in 0..tasks {
                let transfer = std::sync::Arc::clone(&transfer);
                running.push(tokio::spawn(async move {
                    for _ in 0..calls {
                        transfer.get_endpoint(TUTORIAL_COLLECTION).await.unwrap();
                    }
                }));
            }
            for task in running {
                task.await.unwrap();
            }
            let opened = services.connections() - before;
            assert!(opened <= tasks, "{tasks} tasks opened {opened} connections");
        }
    });
}

#[test]
fn task_states_stream_each_poll_in_order_and_end_with_the_task_or_the_timeout() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let (_server, services, app) = setup().await;
            let transfer = TransferClient::from_service(at(&app, &services, TRANSFER));
            let submit = |label: &'static str| {
                let transfer = &transfer;
                async move {
                    transfer
                        .submit_transfer(
                            TransferData::new(TUTORIAL_COLLECTION, TUTORIAL_COLLECTION_2)
                                .label(label)
                                .item("/~/file1.txt", "/~/file1.txt", false)
                                .item("/~/file2.txt", "/~/file2.txt", false),
                        )
                        .await
                        .unwrap()
                        .str_field("task_id")
                        .unwrap()
                        .to_owned()
                }
            };
            let second = Duration::from_secs(1);
            let task = submit("slow 3").await;
            let states: Vec<_> = transfer
                .task_states(&task, Duration::from_secs(30), second)
                .try_collect()
                .await
                .unwrap();
            let seen: Vec<(String, u64)> = states
                .iter()
                .map(|s| (s.status.clone(), s.bytes_transferred))
                .collect();
            assert_eq!(
                seen,
                [
                    ("ACTIVE".into(), 1_000),
                    ("ACTIVE".into(), 2_000),
                    ("ACTIVE".into(), 3_000),
                    ("SUCCEEDED".into(), 4_000),
                ]
            );
            assert!(states.last().unwrap().is_finished());
            let task = submit("slow 100").await;
            let states: Vec<_> = transfer
                .task_states(&task, 2 * second, second)
                .try_collect()
                .await
                .unwrap();
            assert_eq!(states.len(), 3);
            assert!(!states.last().unwrap().is_finished());
            assert_eq!(states.last().unwrap().bytes_transferred, 3_000);
        });
}
