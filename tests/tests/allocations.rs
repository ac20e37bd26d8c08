//! The warm `get_authorizer` of the blocking adapter, and the header value
//! of what it hands out, allocate nothing, with tracing compiled in (the
//! default) and no subscriber installed. Its
//! own test binary: no other test installs a subscriber or allocates on
//! this thread meanwhile.

use globus_app_blocking::proto::UnixTime;
use globus_app_blocking::proto::testing::SIM_CLIENT_ID;
use globus_app_blocking::proto::token::TokenData;
use globus_app_blocking::storage::{MemoryTokenStorage, TokenStorage};
use globus_app_blocking::{ClientApp, GlobusAppConfig};

const TRANSFER: &str = "transfer.api.globus.org";

#[test]
fn the_warm_blocking_path_does_not_allocate() {
    let storage = MemoryTokenStorage::new();
    let record = TokenData::from_json(&serde_json::json!({
        "resource_server": TRANSFER,
        "scope": "urn:globus:auth:scope:transfer.api.globus.org:all",
        "access_token": "warm-token",
        "expires_at_seconds": globus_app_tests::now().saturating_add_secs(3600).as_secs(),
        "token_type": "Bearer",
    }))
    .unwrap();
    storage.store(&[record]).unwrap();
    let app = ClientApp::builder("Allocations")
        .client_id(SIM_CLIENT_ID)
        .client_secret("secret")
        .scope_requirements(
            TRANSFER,
            "urn:globus:auth:scope:transfer.api.globus.org:all",
        )
        // Never used: the token is valid, no request is sent.
        .config(GlobusAppConfig::default().with_auth_base_url("http://127.0.0.1:9/"))
        .read_environment_variables(false)
        .token_storage(storage)
        .build()
        .unwrap();
    let warm = app.get_authorizer(TRANSFER).unwrap();
    assert!(warm.expires_at() > UnixTime::EPOCH);

    let info = allocation_counter::measure(|| {
        for _ in 0..100 {
            std::hint::black_box(app.get_authorizer(std::hint::black_box(TRANSFER)).unwrap());
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");

    // The header of a warm authorization is a copy of one made once.
    let info = allocation_counter::measure(|| {
        for _ in 0..100 {
            let authorization = app.get_authorizer(std::hint::black_box(TRANSFER)).unwrap();
            std::hint::black_box(authorization.header_value().unwrap());
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");

    // The token policy's verdict and the resource server of a request to a
    // Globus service (the authorized client's first step) allocate
    // nothing either, in any letter case or with a trailing dot.
    let destinations = app.core().token_destinations();
    let uris: Vec<http::Uri> = [
        "https://transfer.api.globus.org/v0.10/endpoint_search?filter_fulltext=x",
        "https://TRANSFER.api.globus.org./v0.10/task_list",
    ]
    .iter()
    .map(|u| u.parse().unwrap())
    .collect();
    let info = allocation_counter::measure(|| {
        for _ in 0..100 {
            for uri in &uris {
                let resource_server = destinations.resolve(std::hint::black_box(uri)).unwrap();
                assert_eq!(resource_server, TRANSFER);
            }
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");
}
