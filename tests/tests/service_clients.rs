//! The blocking service clients against the local Globus Auth and its
//! Transfer-, Groups- and Search-shaped resource servers: every typed
//! call, paging, the renewal and login a refusal calls for (401, GAREs,
//! "401 then GARE", the mapped collection's consent), retries on 429 and
//! 503, connection reuse, token safety, and bad answers as typed errors.

mod common;

use std::time::Duration;

use globus_app_blocking::service::{
    AuthClient, DeleteData, EndpointSearch, GROUPS, GroupsClient, IdentityLookup, Listing, SEARCH,
    SearchClient, ServiceClient, ServiceRequest, TRANSFER, TaskList, TransferClient, TransferData,
};
use globus_app_blocking::{Error, UserApp};
use globus_app_tests::services::{
    MAPPED_COLLECTION, SEARCH_INDEX, ServicesServer, TUTORIAL_COLLECTION, TUTORIAL_COLLECTION_2,
};
use globus_app_tests::{AuthServer, FakeService};
use serde_json::json;

struct Setup {
    server: AuthServer,
    services: ServicesServer,
    app: UserApp,
}

fn setup() -> Setup {
    let server = AuthServer::start();
    let services = server.start_services();
    let app = common::user_app(&server, "Service Clients");
    Setup {
        server,
        services,
        app,
    }
}

impl Setup {
    fn transfer(&self) -> TransferClient {
        TransferClient::from_service(
            ServiceClient::builder(&self.app, TRANSFER)
                .base_url(&self.services.base_url)
                .build()
                .unwrap(),
        )
    }

    fn logins(&self) -> usize {
        self.server.grants("authorization_code")
    }
}

#[test]
fn binding_adds_the_service_scopes_and_clients_share_one_app() {
    let setup = setup();
    assert!(
        setup
            .app
            .scope_requirements()
            .get("transfer.api.globus.org")
            .is_none()
    );
    let transfer = setup.transfer();
    let groups = GroupsClient::new(&setup.app).unwrap();
    let requirements = setup.app.scope_requirements();
    assert_eq!(
        requirements.get("transfer.api.globus.org").unwrap()[0].to_string(),
        "urn:globus:auth:scope:transfer.api.globus.org:all"
    );
    assert!(requirements.get("groups.api.globus.org").is_some());
    // Explicit scopes replace the defaults (the reference's app_scopes).
    let setup2 = self::setup();
    ServiceClient::builder(&setup2.app, TRANSFER)
        .scopes(&["urn:globus:auth:scope:transfer.api.globus.org:monitor_ongoing"])
        .build()
        .unwrap();
    assert_eq!(
        setup2
            .app
            .scope_requirements()
            .get("transfer.api.globus.org")
            .unwrap()[0]
            .to_string(),
        "urn:globus:auth:scope:transfer.api.globus.org:monitor_ongoing"
    );
    // Another environment than the app's is a typed error.
    let mismatch = ServiceClient::builder(&setup.app, TRANSFER)
        .environment(globus_app_blocking::proto::environment::Environment::Sandbox)
        .build()
        .unwrap_err();
    assert!(
        matches!(mismatch, Error::EnvironmentMismatch { .. }),
        "{mismatch:?}"
    );
    // One login serves both clients.
    transfer.endpoint_search("Tutorial").unwrap();
    drop(groups);
    assert_eq!(setup.logins(), 1);
}

#[test]
fn transfer_calls_from_search_to_a_finished_task() {
    let setup = setup();
    let transfer = setup.transfer();
    let found = transfer.endpoint_search("Tutorial Collection").unwrap();
    let names: Vec<&str> = found.data["DATA"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Globus Tutorial Collection 1",
            "Globus Tutorial Collection 2"
        ]
    );
    let endpoint = transfer.get_endpoint(TUTORIAL_COLLECTION).unwrap();
    assert_eq!(
        endpoint.data["display_name"],
        "Globus Tutorial Collection 1"
    );

    let listing = transfer
        .operation_ls(TUTORIAL_COLLECTION, &Listing::path("/~/"))
        .unwrap();
    assert_eq!(listing.data["DATA"].as_array().unwrap().len(), 3);
    transfer
        .operation_mkdir(TUTORIAL_COLLECTION, "/~/new")
        .unwrap();
    transfer
        .operation_rename(TUTORIAL_COLLECTION, "/~/new", "/~/renamed")
        .unwrap();
    let stat = transfer
        .operation_stat(TUTORIAL_COLLECTION, "/~/file1.txt")
        .unwrap();
    assert_eq!(stat.data["type"], "file");

    let task = transfer
        .submit_transfer(
            TransferData::new(TUTORIAL_COLLECTION, TUTORIAL_COLLECTION_2)
                .label("two files")
                .item("/~/file1.txt", "/~/file1.txt", false)
                .item("/~/share/", "/~/share/", true),
        )
        .unwrap();
    let task_id = task.str_field("task_id").unwrap().to_owned();
    assert!(
        transfer
            .task_wait(&task_id, Duration::from_secs(10), Duration::from_secs(1))
            .unwrap()
    );
    assert_eq!(
        transfer.get_task(&task_id).unwrap().data["status"],
        "SUCCEEDED"
    );
    let delete = transfer
        .submit_delete(DeleteData::new(TUTORIAL_COLLECTION).item("/~/renamed"))
        .unwrap();
    let delete_id = delete.str_field("task_id").unwrap();
    transfer.cancel_task(delete_id).unwrap();
    let tasks = transfer
        .task_list(&TaskList::default())
        .collect_items()
        .unwrap();
    assert_eq!(tasks.len(), 2);

    // The request sequence: a submission id before each submission.
    let paths: Vec<String> = setup
        .services
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let submit = paths
        .iter()
        .position(|p| p == "POST /v0.10/transfer")
        .unwrap();
    assert_eq!(paths[submit - 1], "GET /v0.10/submission_id");
    let body: serde_json::Value =
        serde_json::from_str(setup.services.requests()[submit].body.as_deref().unwrap()).unwrap();
    assert_eq!(body["DATA"].as_array().unwrap().len(), 2);
    assert_eq!(body["submission_id"], "sub-0001");
}

#[test]
fn endpoint_search_pages_until_the_end_or_the_item_limit() {
    let setup = setup();
    let transfer = setup.transfer();
    let pages: Vec<_> = transfer
        .endpoint_search_pages(&EndpointSearch::fulltext("Paging Collection"))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        pages.iter().map(|p| p.items.len()).collect::<Vec<_>>(),
        [100, 100, 50]
    );
    let offsets: Vec<Option<String>> = setup
        .services
        .requests()
        .iter()
        .filter(|r| r.path == "/v0.10/endpoint_search")
        .map(|r| {
            r.query
                .iter()
                .find(|(k, _)| k == "offset")
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert_eq!(offsets, [None, Some("100".into()), Some("200".into())]);
    let limited = transfer
        .endpoint_search_pages(&EndpointSearch::fulltext("Paging Collection"))
        .max_items(120)
        .collect_items()
        .unwrap();
    assert_eq!(limited.len(), 120);
}

#[test]
fn a_401_is_renewed_once_and_a_gare_logged_in_once_even_one_after_the_other() {
    let setup = setup();
    let transfer = setup.transfer();
    transfer.endpoint_search("Tutorial").unwrap();
    assert_eq!(setup.logins(), 1);

    // 401 once: one refresh, then the answer.
    setup.services.inject(401, None, 1);
    transfer.get_endpoint(TUTORIAL_COLLECTION).unwrap();
    assert_eq!(setup.server.grants("refresh_token"), 1);

    // 401, then the mapped collection's GARE: renewed, logged in, answered.
    let before = setup.services.requests().len();
    setup.services.inject(401, None, 1);
    let listing = transfer
        .operation_ls(MAPPED_COLLECTION, &Listing::path("/~/"))
        .unwrap();
    assert_eq!(listing.data["DATA"].as_array().unwrap().len(), 3);
    assert_eq!(setup.services.requests().len() - before, 3);
    assert_eq!(setup.server.grants("refresh_token"), 2);
    assert_eq!(setup.logins(), 2);

    // A 401 that persists: renewed once, then the 401 is the answer.
    setup.services.inject(401, None, 2);
    let error = transfer.get_endpoint(TUTORIAL_COLLECTION).unwrap_err();
    assert_eq!(error.http_status(), Some(http::StatusCode::UNAUTHORIZED));
}

#[test]
fn the_data_access_scope_asked_for_up_front_avoids_the_consent_round_trip() {
    let setup = setup();
    let transfer = setup.transfer();
    transfer
        .add_app_data_access_scope(&[MAPPED_COLLECTION])
        .unwrap();
    transfer
        .operation_ls(MAPPED_COLLECTION, &Listing::path("/~/"))
        .unwrap();
    assert_eq!(setup.logins(), 1, "one login, with the data_access scope");
    assert_eq!(setup.services.requests().len(), 1, "no GARE");
    let bad = transfer
        .add_app_data_access_scope(&["not-a-uuid"])
        .unwrap_err();
    assert!(matches!(bad, Error::ServiceRequest(_)), "{bad:?}");
}

#[test]
fn busy_and_unavailable_answers_are_retried_after_retry_after_for_idempotent_requests() {
    let setup = setup();
    let transfer = setup.transfer();
    transfer.endpoint_search("Tutorial").unwrap();
    let started = std::time::Instant::now();
    setup.services.inject(429, Some(1), 1);
    setup.services.inject(503, Some(1), 1);
    transfer.get_endpoint(TUTORIAL_COLLECTION).unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After honoured"
    );
    // A mkdir (a POST) is not sent twice: the 503 is the answer, retryable.
    setup.services.inject(503, Some(1), 1);
    let error = transfer
        .operation_mkdir(TUTORIAL_COLLECTION, "/~/once")
        .unwrap_err();
    assert_eq!(
        error.http_status(),
        Some(http::StatusCode::SERVICE_UNAVAILABLE)
    );
    assert!(error.is_retryable());
    // A submission carries its id: retried.
    setup.services.inject(503, Some(0), 1);
    transfer
        .submit_transfer(
            TransferData::new(TUTORIAL_COLLECTION, TUTORIAL_COLLECTION_2).item("/a", "/b", false),
        )
        .unwrap();
}

#[test]
fn two_hundred_requests_reuse_at_most_two_connections() {
    let setup = setup();
    let transfer = setup.transfer();
    transfer.endpoint_search("Tutorial").unwrap();
    let before = setup.services.connections();
    for _ in 0..200 {
        transfer.get_endpoint(TUTORIAL_COLLECTION).unwrap();
    }
    let opened = setup.services.connections() - before;
    assert!(opened <= 2, "{opened} connections for 200 requests");
}

#[test]
fn no_token_leaves_the_base_url_or_follows_a_redirect() {
    let setup = setup();
    let client = ServiceClient::builder(&setup.app, TRANSFER)
        .base_url(&setup.services.base_url)
        .build()
        .unwrap();
    client
        .request(&ServiceRequest::get("/v0.10/endpoint_search"))
        .unwrap();
    for path in [
        "https://evil.example.org/x",
        "//evil.example.org/x",
        "/../../x",
    ] {
        let error = client.request(&ServiceRequest::get(path)).unwrap_err();
        assert!(
            matches!(error, Error::ServiceRequest(_)),
            "{path}: {error:?}"
        );
    }
    let elsewhere = FakeService::start();
    let error = client
        .request(&ServiceRequest::get("/v0.10/redirect").query("to", &elsewhere.base_url))
        .unwrap_err();
    assert_eq!(error.http_status(), Some(http::StatusCode::FOUND));
    assert!(
        elsewhere.requests().is_empty(),
        "the redirect was not followed"
    );
    // Plain http to a production host is refused before anything is sent.
    let cleartext = ServiceClient::builder(&setup.app, TRANSFER)
        .base_url("http://transfer.api.globus.org:443/")
        .build()
        .unwrap_err();
    assert!(
        matches!(cleartext, Error::ServiceRequest(_)),
        "{cleartext:?}"
    );
}

#[test]
fn bad_answers_are_typed_errors() {
    let setup = setup();
    let transfer = setup.transfer();
    transfer.endpoint_search("Tutorial").unwrap();
    let is_malformed = |error: &Error| matches!(error, Error::Service(e) if e.is_malformed());
    setup
        .services
        .inject_raw(200, "application/json", "{\"DATA\": [1, 2");
    assert!(is_malformed(
        &transfer.get_endpoint(TUTORIAL_COLLECTION).unwrap_err()
    ));
    setup.services.inject_raw(200, "text/html", "<html></html>");
    assert!(is_malformed(
        &transfer.get_endpoint(TUTORIAL_COLLECTION).unwrap_err()
    ));
    setup.services.inject_raw(200, "application/json", "{}");
    assert!(is_malformed(&transfer.get_submission_id().unwrap_err()));
    setup
        .services
        .inject_raw(200, "application/json", "{\"status\": 1}");
    let error = transfer
        .task_wait("task-x", Duration::from_secs(1), Duration::from_secs(1))
        .unwrap_err();
    assert!(is_malformed(&error), "{error:?}");
    setup.services.inject_truncated();
    let truncated = transfer.get_endpoint(TUTORIAL_COLLECTION).unwrap_err();
    assert!(matches!(truncated, Error::Transport(_)), "{truncated:?}");
    // A paging loop: the same page twice with more promised.
    setup.services.inject_raw(
        200,
        "application/json",
        r#"{"DATA": [], "has_next_page": true}"#,
    );
    let looped: Vec<_> = transfer
        .endpoint_search_pages(&EndpointSearch::fulltext("x"))
        .collect();
    assert_eq!(looped.len(), 1);
    assert!(is_malformed(looped[0].as_ref().unwrap_err()));
    // An unknown collection: the service's 404, typed.
    let missing = transfer.get_endpoint("no-such-collection").unwrap_err();
    match missing {
        Error::Service(e) => {
            assert_eq!(e.status, 404);
            assert_eq!(e.code, "EndpointNotFound");
            assert_eq!(e.request_id.as_deref(), Some("req-0001"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn groups_search_userinfo_and_identities() {
    let setup = setup();
    let at_services = |spec| {
        ServiceClient::builder(&setup.app, spec)
            .base_url(&setup.services.base_url)
            .build()
            .unwrap()
    };
    // Clients bound before the first call: their scopes join one login.
    let groups = GroupsClient::from_service(at_services(GROUPS));
    let search = SearchClient::from_service(at_services(SEARCH));
    let auth = AuthClient::new(&setup.app).unwrap();
    assert_eq!(groups.get_my_groups(&[]).unwrap().len(), 2);
    let first = search.search(SEARCH_INDEX, "*").unwrap();
    assert_eq!(first.data["count"], 10);
    let all = search
        .post_search_pages(SEARCH_INDEX, json!({"q": "*"}))
        .collect_items()
        .unwrap();
    assert_eq!(all.len(), 230);
    assert_eq!(
        auth.userinfo().unwrap().data["preferred_username"],
        "user@example.org"
    );
    let identities = auth
        .get_identities(IdentityLookup::Ids(&["a", "b"]))
        .unwrap();
    assert_eq!(identities.data["identities"].as_array().unwrap().len(), 2);
    assert_eq!(setup.logins(), 1, "one login for the three services");
}

#[test]
fn the_authorized_client_runs_on_the_pooled_service_transport() {
    let setup = setup();
    // A Transfer client binds the scope; the authorized client then sends
    // raw requests on the same pool of kept-alive connections.
    let transfer = setup.transfer();
    let pool = transfer.service().transport().clone();
    let authorized = setup.app.authorized(pool).with_resource_server(
        setup
            .services
            .base_url
            .trim_start_matches("http://")
            .trim_end_matches('/'),
        "transfer.api.globus.org",
    );
    let url = format!(
        "{}v0.10/endpoint/{TUTORIAL_COLLECTION}",
        setup.services.base_url
    );
    let before = setup.services.connections();
    for _ in 0..50 {
        let request = http::Request::get(&url).body(Vec::new()).unwrap();
        assert_eq!(authorized.send(&request).unwrap().status(), 200);
        transfer.get_endpoint(TUTORIAL_COLLECTION).unwrap();
    }
    assert!(setup.services.connections() - before <= 2);
}

/// A 403 GARE asking for Transfer's scope again (a login satisfies it).
fn transfer_gare() -> String {
    json!({
        "code": "AuthorizationRequired",
        "message": "log in again",
        "authorization_parameters": {
            "session_message": "log in again",
            "required_scopes": ["urn:globus:auth:scope:transfer.api.globus.org:all"],
        },
    })
    .to_string()
}

#[test]
fn a_request_never_costs_more_than_one_login_without_refresh_tokens() {
    let server = AuthServer::start();
    let services = server.start_services();
    // No refresh tokens: a refused token can only be replaced by a login.
    let app = UserApp::builder("One Login")
        .client_id(globus_app_blocking::proto::testing::SIM_CLIENT_ID)
        .config(
            globus_app_blocking::GlobusAppConfig::default()
                .with_auth_base_url(server.base_url.clone())
                .with_request_refresh_tokens(false)
                .with_auto_redrive_gares(true),
        )
        .token_storage(globus_app_blocking::storage::MemoryTokenStorage::new())
        .login_flow_manager(
            globus_app_blocking::login::LocalServerLoginFlowManager::new()
                .with_browser(common::Browser)
                .with_timeout(Duration::from_secs(10))
                .allow_remote_session(true),
        )
        .build()
        .unwrap();
    let transfer = TransferClient::from_service(
        ServiceClient::builder(&app, TRANSFER)
            .base_url(&services.base_url)
            .build()
            .unwrap(),
    );
    transfer.endpoint_search("Tutorial").unwrap();
    let logins = || server.grants("authorization_code");
    assert_eq!(logins(), 1);

    // 401 (a login replaces the token), then a GARE: that answer stands.
    services.inject(401, None, 1);
    services.inject_raw(403, "application/json", &transfer_gare());
    let error = transfer.get_endpoint(TUTORIAL_COLLECTION).unwrap_err();
    assert_eq!(error.http_status(), Some(http::StatusCode::FORBIDDEN));
    assert_eq!(logins(), 2, "one login for the request");

    // A GARE (one login), then 401: no second login; the caller is told.
    services.inject_raw(403, "application/json", &transfer_gare());
    services.inject(401, None, 1);
    let error = transfer.get_endpoint(TUTORIAL_COLLECTION).unwrap_err();
    assert_eq!(logins(), 3, "one login for the request: {error:?}");
    assert!(error.is_login_required(), "{error:?}");

    // The authorized client keeps the same budget.
    let client = app
        .authorized(globus_app_blocking::http::UreqClient::default())
        .with_resource_server(
            services
                .base_url
                .trim_start_matches("http://")
                .trim_end_matches('/'),
            "transfer.api.globus.org",
        );
    let request = http::Request::get(format!(
        "{}v0.10/endpoint/{TUTORIAL_COLLECTION}",
        services.base_url
    ))
    .body(Vec::new())
    .unwrap();
    services.inject(401, None, 1);
    services.inject_raw(403, "application/json", &transfer_gare());
    let response = client.send(&request).unwrap();
    assert_eq!(response.status(), http::StatusCode::FORBIDDEN);
    assert_eq!(logins(), 4, "one login for the request");
}

#[test]
fn whole_answers_stop_at_the_clients_limit_and_streams_do_not() {
    let setup = setup();
    let limited = TransferClient::from_service(
        ServiceClient::builder(&setup.app, TRANSFER)
            .base_url(&setup.services.base_url)
            .max_response_bytes(1 << 20)
            .build()
            .unwrap(),
    );
    limited.get_endpoint(TUTORIAL_COLLECTION).unwrap();
    for path in ["/huge/4", "/huge-chunked/4"] {
        let error = limited
            .operation_ls(TUTORIAL_COLLECTION, &Listing::path(path))
            .unwrap_err();
        assert!(
            matches!(&error, Error::Transport(e) if e.kind() == globus_app_blocking::http::TransportErrorKind::TooLarge
                    && std::error::Error::source(&**e).is_some_and(|s| s.to_string().contains(&(1u64 << 20).to_string()))),
            "{path}: {error:?}"
        );
        // The same answer streams whole.
        let request = globus_app_blocking::proto::service::transfer::operation_ls(
            TUTORIAL_COLLECTION,
            &Listing::path(path),
        );
        let mut streamed = Vec::new();
        std::io::Read::read_to_end(
            &mut limited.service().request_reader(&request).unwrap(),
            &mut streamed,
        )
        .unwrap();
        assert!(streamed.len() > 4 << 19, "{path}: {}", streamed.len());
    }
    // Just under the limit is read.
    let roomy = TransferClient::from_service(
        ServiceClient::builder(&setup.app, TRANSFER)
            .base_url(&setup.services.base_url)
            .max_response_bytes(5 << 20)
            .build()
            .unwrap(),
    );
    let listing = roomy
        .operation_ls(TUTORIAL_COLLECTION, &Listing::path("/huge-chunked/4"))
        .unwrap();
    assert!(listing.data["DATA"].as_array().unwrap().len() > 60_000);
}

#[test]
fn connections_the_server_closed_as_a_request_went_out_are_never_an_error_nor_a_wait() {
    let setup = setup();
    // No retry policy at all: only the immediate resend on a new
    // connection can save a request (no backoff is waited).
    let transfer = TransferClient::from_service(
        ServiceClient::builder(&setup.app, TRANSFER)
            .base_url(&setup.services.base_url)
            .retry_policy(globus_app_blocking::http::RetryPolicy::NEVER)
            .build()
            .unwrap(),
    );
    transfer.endpoint_search("Tutorial").unwrap();
    setup.services.close_connections_after(3);
    let before = setup.services.requests().len();
    for i in 0..30 {
        transfer.get_endpoint(TUTORIAL_COLLECTION).unwrap();
        transfer
            .operation_mkdir(TUTORIAL_COLLECTION, &format!("/idle-{i}"))
            .unwrap();
    }
    // Each request was carried out once: nothing of a request sent on a
    // closed connection had been read.
    let received = &setup.services.requests()[before..];
    assert_eq!(received.len(), 60);
    assert_eq!(received.iter().filter(|r| r.method == "POST").count(), 30);
    assert!(
        setup.services.connections() >= 20,
        "connections were closed"
    );
}

/// The states a poll-by-poll wait saw: status, bytes, files moved.
type Seen = Vec<(String, u64, u64)>;

#[test]
fn task_wait_reports_each_poll_in_order_and_ends_with_the_task_or_the_timeout() {
    let setup = setup();
    let transfer = setup.transfer();
    let submit = |label: &str| {
        transfer
            .submit_transfer(
                TransferData::new(TUTORIAL_COLLECTION, TUTORIAL_COLLECTION_2)
                    .label(label)
                    .item("/~/file1.txt", "/~/file1.txt", false)
                    .item("/~/file2.txt", "/~/file2.txt", false),
            )
            .unwrap()
            .str_field("task_id")
            .unwrap()
            .to_owned()
    };
    let second = Duration::from_secs(1);
    let task = submit("slow 3");
    let mut seen: Seen = Vec::new();
    let done = transfer
        .task_wait_with_progress(&task, Duration::from_secs(30), second, |state| {
            seen.push((
                state.status.clone(),
                state.bytes_transferred,
                state.files_transferred,
            ));
        })
        .unwrap();
    assert!(done);
    assert_eq!(
        seen,
        [
            ("ACTIVE".into(), 1_000, 1),
            ("ACTIVE".into(), 2_000, 2),
            ("ACTIVE".into(), 3_000, 2),
            ("SUCCEEDED".into(), 4_000, 2),
        ]
    );
    // A timeout ends the wait with the last state seen, still active.
    let task = submit("slow 100");
    let mut seen: Seen = Vec::new();
    let done = transfer
        .task_wait_with_progress(&task, 2 * second, second, |state| {
            seen.push((
                state.status.clone(),
                state.bytes_transferred,
                state.files_transferred,
            ));
        })
        .unwrap();
    assert!(!done);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.iter().all(|(status, ..)| status == "ACTIVE"));
    assert_eq!(seen.last().unwrap().1, 3_000);
}
