use serde_json::json;

use super::paging::{Pager, PagingStyle};
use super::transfer::{self, DeleteData, EndpointSearch, SyncLevel, TransferData};
use super::*;

fn base() -> Url {
    Url::parse("https://transfer.api.globus.org/").unwrap()
}

fn response(status: u16, content_type: &str, body: &str) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(body.as_bytes().to_vec())
        .unwrap()
}

#[test]
fn requests_join_under_the_base_url_with_query_body_and_user_agent() {
    let request = transfer::endpoint_search(&EndpointSearch::fulltext("Tutorial Collection"))
        .to_http(&base())
        .unwrap();
    assert_eq!(
        request.uri().to_string(),
        "https://transfer.api.globus.org/v0.10/endpoint_search?filter_fulltext=Tutorial+Collection"
    );
    assert_eq!(request.headers()["user-agent"], USER_AGENT);
    assert!(USER_AGENT.starts_with("globus-app-rust/"));
    let mkdir = transfer::operation_mkdir("c0ffee", "/~/new dir")
        .to_http(&base())
        .unwrap();
    assert_eq!(mkdir.method(), Method::POST);
    assert_eq!(mkdir.headers()["content-type"], "application/json");
    let body: Value = serde_json::from_slice(mkdir.body()).unwrap();
    assert_eq!(body, json!({"DATA_TYPE": "mkdir", "path": "/~/new dir"}));
    // A base URL with a path keeps it.
    let local = Url::parse("http://127.0.0.1:9000/transfer/").unwrap();
    let url = transfer::get_task("t1").url(&local).unwrap();
    assert_eq!(url.as_str(), "http://127.0.0.1:9000/transfer/v0.10/task/t1");
}

#[test]
fn no_path_or_id_leaves_the_base_url() {
    for path in [
        "//evil.example.org/x",
        "/../x",
        "/v0.10/../../x",
        "https://evil.example.org/x",
    ] {
        assert!(
            matches!(
                ServiceRequest::get(path).url(&base()),
                Err(ServiceRequestError::Invalid { .. })
            ),
            "{path}"
        );
    }
    // An id cannot change the route.
    let url = transfer::get_task("../../x?y#z").url(&base()).unwrap();
    assert_eq!(
        url.as_str(),
        "https://transfer.api.globus.org/v0.10/task/..%2F..%2Fx%3Fy%23z"
    );
    for other in [
        "http://transfer.api.globus.org/v0.10/x",
        "https://transfer.api.globus.org:8443/v0.10/x",
        "https://evil.example.org/v0.10/x",
    ] {
        assert!(
            check_destination(&base(), &Url::parse(other).unwrap()).is_err(),
            "{other}"
        );
    }
    let scoped = Url::parse("https://host.example.org/api/").unwrap();
    assert!(
        check_destination(
            &scoped,
            &Url::parse("https://host.example.org/other").unwrap()
        )
        .is_err()
    );
}

#[test]
fn base_urls_follow_the_environment_and_refuse_cleartext_production() {
    assert_eq!(
        TRANSFER
            .base_url(
                Environment::Production,
                None,
                &std::collections::BTreeSet::new()
            )
            .unwrap()
            .as_str(),
        "https://transfer.api.globus.org/"
    );
    assert_eq!(
        GROUPS
            .base_url(
                Environment::Sandbox,
                None,
                &std::collections::BTreeSet::new()
            )
            .unwrap()
            .as_str(),
        "https://groups.api.sandbox.globuscs.info/"
    );
    assert_eq!(
        TRANSFER
            .base_url(
                Environment::Production,
                Some("http://127.0.0.1:8080"),
                &std::collections::BTreeSet::new()
            )
            .unwrap()
            .as_str(),
        "http://127.0.0.1:8080/"
    );
    for cleartext in [
        "http://transfer.api.globus.org:443/",
        "http://transfer.api.globus.org./",
        "http://transfer%2eapi.globus.org/",
        "http://transfer.api.globus.org.:80/",
        "http://app.globusonline.org/",
    ] {
        assert!(
            matches!(
                TRANSFER.base_url(
                    Environment::Production,
                    Some(cleartext),
                    &std::collections::BTreeSet::new()
                ),
                Err(ServiceRequestError::TokenOrigin(
                    crate::origin::TokenOriginError::CleartextToGlobus { .. }
                ))
            ),
            "{cleartext}"
        );
    }
    assert_eq!(TRANSFER.url_variable(), "GLOBUS_SDK_SERVICE_URL_TRANSFER");
}

#[test]
fn errors_keep_status_code_message_request_id_and_gare_parameters() {
    let error = ServiceResponse::from_http(&response(
        404,
        "application/json",
        r#"{"code": "ClientError.NotFound", "message": "No such task", "request_id": "r1", "resource": "/task/x"}"#,
    ))
    .unwrap_err();
    assert_eq!(error.status, 404);
    assert_eq!(error.code, "ClientError.NotFound");
    assert_eq!(error.message, "No such task");
    assert_eq!(error.request_id.as_deref(), Some("r1"));
    assert_eq!(error.body.as_ref().unwrap()["resource"], "/task/x");
    let gare = ServiceResponse::from_http(&response(
        403,
        "application/json",
        r#"{"errors": [{"code": "ConsentRequired", "message": "Missing consent", "authorization_parameters": {"session_message": "m", "required_scopes": ["s"]}}]}"#,
    ))
    .unwrap_err();
    assert_eq!(gare.code, "ConsentRequired");
    assert_eq!(
        gare.authorization_parameters.unwrap().required_scopes,
        Some(vec!["s".to_owned()])
    );
    // Not JSON at all: the status's reason.
    let plain = ServiceResponse::from_http(&response(502, "text/html", "<html>")).unwrap_err();
    assert_eq!(plain.code, "Error");
    assert_eq!(plain.message, "Bad Gateway");
}

#[test]
fn malformed_answers_are_typed_errors() {
    for (content_type, body) in [
        ("application/json", "{\"truncated\": "),
        ("text/html", "<html></html>"),
        ("application/json", "[1, 2"),
    ] {
        let error = ServiceResponse::from_http(&response(200, content_type, body)).unwrap_err();
        assert!(error.is_malformed(), "{body}: {error:?}");
    }
    let ok =
        ServiceResponse::from_http(&response(200, "application/json", r#"{"value": 1}"#)).unwrap();
    assert!(ok.str_field("value").unwrap_err().is_malformed());
    assert!(ok.field("missing").unwrap_err().is_malformed());
    let empty = ServiceResponse::from_http(&response(202, "application/json", "")).unwrap();
    assert_eq!(empty.data, Value::Null);
}

#[test]
fn transfer_documents_match_the_python_sdk_shapes() {
    let data = TransferData::new("src", "dst")
        .label("nightly")
        .sync_level(SyncLevel::Checksum)
        .verify_checksum(true)
        .with_submission_id("sub-1")
        .item("/a.txt", "/b.txt", false)
        .item("/dir/", "/dir/", true);
    assert_eq!(
        data.to_json(),
        json!({
            "DATA_TYPE": "transfer",
            "source_endpoint": "src",
            "destination_endpoint": "dst",
            "label": "nightly",
            "sync_level": 3,
            "verify_checksum": true,
            "submission_id": "sub-1",
            "DATA": [
                {"DATA_TYPE": "transfer_item", "source_path": "/a.txt", "destination_path": "/b.txt"},
                {"DATA_TYPE": "transfer_item", "source_path": "/dir/", "destination_path": "/dir/", "recursive": true},
            ],
        })
    );
    assert!(transfer::submit_transfer(&data).idempotent);
    assert!(!transfer::submit_transfer(&TransferData::new("a", "b")).idempotent);
    let delete = DeleteData::new("ep").recursive(true).item("/x");
    assert_eq!(
        delete.to_json(),
        json!({"DATA_TYPE": "delete", "endpoint": "ep", "recursive": true,
               "DATA": [{"DATA_TYPE": "delete_item", "path": "/x"}]})
    );
    assert_eq!(
        transfer::transfer_scope_with_data_access(["c1", "c2"]),
        "urn:globus:auth:scope:transfer.api.globus.org:all[*https://auth.globus.org/scopes/c1/data_access *https://auth.globus.org/scopes/c2/data_access]"
    );
    assert!(transfer::is_uuid("6c54cade-bde5-45c1-bdea-f4bd71dba2cc"));
    assert!(!transfer::is_uuid("not-a-uuid"));
}

fn page(items: usize, extra: Value) -> Value {
    let Value::Object(extra) = extra else {
        panic!("an object")
    };
    let mut page = json!({"DATA": vec![json!({}); items]});
    page.as_object_mut().unwrap().extend(extra);
    page
}

#[test]
fn has_next_page_paging_moves_the_offset_and_stops_at_the_end_or_the_item_limit() {
    let request = transfer::endpoint_search(&EndpointSearch::fulltext("x"));
    let mut pager = Pager::new(request.clone(), transfer::ENDPOINT_SEARCH_PAGING, "DATA");
    let first = pager.next_request().unwrap().clone();
    assert_eq!(first.query_value("limit"), Some("100"));
    assert_eq!(first.query_value("offset"), None);
    assert_eq!(
        pager
            .page_received(&page(100, json!({"has_next_page": true})))
            .unwrap()
            .len(),
        100
    );
    assert_eq!(
        pager.next_request().unwrap().query_value("offset"),
        Some("100")
    );
    pager
        .page_received(&page(100, json!({"has_next_page": true})))
        .unwrap();
    assert_eq!(
        pager.next_request().unwrap().query_value("offset"),
        Some("200")
    );
    pager
        .page_received(&page(7, json!({"has_next_page": false})))
        .unwrap();
    assert!(pager.next_request().is_none());

    let mut limited =
        Pager::new(request, transfer::ENDPOINT_SEARCH_PAGING, "DATA").with_max_items(150);
    assert_eq!(
        limited.next_request().unwrap().query_value("limit"),
        Some("100")
    );
    limited
        .page_received(&page(100, json!({"has_next_page": true})))
        .unwrap();
    assert_eq!(
        limited.next_request().unwrap().query_value("limit"),
        Some("50")
    );
    let last = limited
        .page_received(&page(100, json!({"has_next_page": true})))
        .unwrap();
    assert_eq!(last.len(), 50);
    assert!(limited.next_request().is_none());
}

#[test]
fn limit_offset_total_paging_stops_at_the_total() {
    let mut pager = Pager::new(
        transfer::task_list(&transfer::TaskList::default()),
        PagingStyle::LimitOffsetTotal {
            page_size: 2,
            max_total: 1000,
        },
        "DATA",
    );
    pager.page_received(&page(2, json!({"total": 5}))).unwrap();
    pager.page_received(&page(2, json!({"total": 5}))).unwrap();
    assert_eq!(
        pager.next_request().unwrap().query_value("offset"),
        Some("4")
    );
    pager.page_received(&page(1, json!({"total": 5}))).unwrap();
    assert!(pager.next_request().is_none());
}

#[test]
fn marker_and_last_key_paging_follow_the_marker_and_refuse_a_loop() {
    let request = ServiceRequest::get("/v1/things");
    let style = PagingStyle::Marker {
        marker_key: "marker",
        nullable: false,
    };
    let mut pager = Pager::new(request.clone(), style, "DATA");
    pager
        .page_received(&page(1, json!({"has_next_page": true, "marker": "m1"})))
        .unwrap();
    assert_eq!(
        pager.next_request().unwrap().query_value("marker"),
        Some("m1")
    );
    pager
        .page_received(&page(1, json!({"has_next_page": true, "marker": "m2"})))
        .unwrap();
    let looped = pager.page_received(&page(1, json!({"has_next_page": true, "marker": "m1"})));
    assert!(looped.unwrap_err().is_malformed());

    let nullable = PagingStyle::Marker {
        marker_key: "next_marker",
        nullable: true,
    };
    let mut pager = Pager::new(request.clone(), nullable, "DATA");
    pager
        .page_received(&page(1, json!({"next_marker": "n1"})))
        .unwrap();
    pager
        .page_received(&page(1, json!({"next_marker": null})))
        .unwrap();
    assert!(pager.next_request().is_none());

    let mut pager = Pager::new(request, PagingStyle::LastKey, "DATA");
    pager
        .page_received(&page(1, json!({"has_next_page": true, "last_key": "k"})))
        .unwrap();
    assert_eq!(
        pager.next_request().unwrap().query_value("last_key"),
        Some("k")
    );
    // "More follow" without a way to ask for them is malformed.
    assert!(
        pager
            .page_received(&page(1, json!({"has_next_page": true})))
            .unwrap_err()
            .is_malformed()
    );
    // A page that is not an object of items.
    let mut pager = Pager::new(ServiceRequest::get("/x"), PagingStyle::LastKey, "DATA");
    assert!(
        pager
            .page_received(&json!({"DATA": 3, "has_next_page": false}))
            .unwrap_err()
            .is_malformed()
    );
    let mut offset = Pager::new(
        ServiceRequest::get("/x"),
        transfer::ENDPOINT_SEARCH_PAGING,
        "DATA",
    );
    assert!(
        offset
            .page_received(&page(0, json!({"has_next_page": true})))
            .unwrap_err()
            .is_malformed()
    );
}

#[test]
fn post_search_pages_in_the_body() {
    let request = search::post_search("idx", json!({"q": "x"}));
    let mut pager = Pager::new(request, search::SEARCH_PAGING, "gmeta");
    assert_eq!(
        pager.next_request().unwrap().body.as_ref().unwrap()["limit"],
        100
    );
    pager
        .page_received(&json!({"gmeta": vec![json!({}); 100], "has_next_page": true}))
        .unwrap();
    let next = pager.next_request().unwrap();
    assert_eq!(next.body.as_ref().unwrap()["offset"], 100);
    assert!(next.query.is_empty());
}

#[test]
fn task_wait_polls_as_the_python_sdk_does() {
    use std::time::Duration;
    use transfer::{TaskWait, TaskWaitStep};
    let task = |status: &str| ServiceResponse {
        status: http::StatusCode::OK,
        data: json!({"status": status}),
    };
    // Timeout 10 s, every 5 s: polls at 0, 5 and 10 s, then gives up.
    let mut wait = TaskWait::new(Duration::from_secs(10), Duration::from_secs(5)).unwrap();
    let five = TaskWaitStep::Sleep(Duration::from_secs(5));
    assert_eq!(wait.after_poll(&task("ACTIVE")).unwrap(), five);
    assert_eq!(wait.after_poll(&task("ACTIVE")).unwrap(), five);
    assert_eq!(
        wait.after_poll(&task("ACTIVE")).unwrap(),
        TaskWaitStep::TimedOut
    );
    // The interval is cut to the timeout; any other status is the end.
    let mut short = TaskWait::new(Duration::from_secs(2), Duration::from_secs(60)).unwrap();
    assert_eq!(
        short.after_poll(&task("ACTIVE")).unwrap(),
        TaskWaitStep::Sleep(Duration::from_secs(2))
    );
    assert_eq!(
        short.after_poll(&task("SUCCEEDED")).unwrap(),
        TaskWaitStep::Finished
    );
    assert_eq!(
        short.after_poll(&task("INACTIVE")).unwrap(),
        TaskWaitStep::Finished
    );
    assert!(TaskWait::new(Duration::from_millis(500), Duration::from_secs(1)).is_err());
    assert!(TaskWait::new(Duration::from_secs(5), Duration::ZERO).is_err());
    let malformed = ServiceResponse {
        status: http::StatusCode::OK,
        data: json!({"status": 1}),
    };
    assert!(short.after_poll(&malformed).unwrap_err().is_malformed());
}

#[test]
fn data_access_requirements_need_uuids() {
    let id = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc";
    assert_eq!(
        transfer::data_access_requirement(&[id]).unwrap().unwrap(),
        format!(
            "urn:globus:auth:scope:transfer.api.globus.org:all[*https://auth.globus.org/scopes/{id}/data_access]"
        )
    );
    assert_eq!(transfer::data_access_requirement(&[]).unwrap(), None);
    assert!(transfer::data_access_requirement(&[id, "nope"]).is_err());
}

#[test]
fn every_id_stays_one_segment_of_its_route() {
    // The fuzz harness's property: every typed request's URL is a typed
    // error or its route with the id as exactly one segment.
    let long = "..\\".repeat(3400);
    for id in crate::testing::HOSTILE_IDS
        .iter()
        .copied()
        .chain([long.as_str()])
    {
        crate::fuzzing::service_ids(id.as_bytes());
    }
    // And an id that cannot be a segment is refused, every other one kept.
    for id in crate::testing::HOSTILE_IDS {
        let refused = matches!(
            transfer::get_task(id).url(&base()),
            Err(ServiceRequestError::InvalidId { .. })
        );
        assert_eq!(refused, matches!(*id, "" | "." | ".."), "{id:?}");
    }
}

#[test]
fn generic_paths_that_the_parser_would_read_otherwise_are_refused() {
    for path in [
        "/v0.10/task/..\\..\\endpoint\\X",
        "/v0.10/task/.\t./cancel",
        "/v0.10/%2e%2E/x",
        "/v0.10/.%2e/x",
        "/v0.10/task/x /cancel",
        "/v0.10//x",
        "/v0.10/task/%zz",
        "/v0.10/task/\u{e9}",
        "/v0.10/task/x\0",
    ] {
        assert!(
            matches!(
                ServiceRequest::get(path).url(&base()),
                Err(ServiceRequestError::Invalid { .. })
            ),
            "{path:?}"
        );
    }
    // A trailing slash is a route of its own (Timers' `/jobs/`).
    assert_eq!(
        ServiceRequest::get("/jobs/").url(&base()).unwrap().path(),
        "/jobs/"
    );
}

#[test]
fn paging_from_offsets_near_the_top_of_u64_neither_overflows_nor_sends_limit_zero() {
    for offset in [u64::MAX, u64::MAX - 1, u64::MAX - 100, 9_999, 10_000] {
        let mut search = EndpointSearch::fulltext("x");
        search.offset = Some(offset);
        for style in [
            transfer::ENDPOINT_SEARCH_PAGING,
            PagingStyle::LimitOffsetTotal {
                page_size: 100,
                max_total: u64::MAX,
            },
        ] {
            let mut pager = Pager::new(transfer::endpoint_search(&search), style, "DATA");
            for _ in 0..3 {
                let Some(request) = pager.next_request() else {
                    break;
                };
                let limit: u64 = request.query_value("limit").unwrap().parse().unwrap();
                assert!(limit > 0, "offset {offset}: limit 0 sent");
                let answer = page(1, json!({"has_next_page": true, "total": u64::MAX}));
                // A page may end paging; it never panics.
                if pager.page_received(&answer).is_err() {
                    break;
                }
            }
        }
    }
}

#[test]
fn endpoint_search_sends_filter_non_functional_as_the_python_sdk_does() {
    let mut search = EndpointSearch::fulltext("x");
    search.non_functional = Some(false);
    assert_eq!(
        transfer::endpoint_search(&search).query_value("filter_non_functional"),
        Some("0")
    );
    search.non_functional = Some(true);
    assert_eq!(
        transfer::endpoint_search(&search).query_value("filter_non_functional"),
        Some("1")
    );
}
