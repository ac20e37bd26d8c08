//! A service client's overhead: `TransferClient::endpoint_search` against
//! the same request sent by a plain keep-alive ureq agent with a fixed
//! `Authorization` header, side by side, over loopback to the local
//! Transfer-shaped server (both keep one connection alive). The difference
//! is what the client adds: the warm `get_authorizer`, building the request
//! from the core's description, the token-safety check, the retry and
//! refusal bookkeeping, and parsing the JSON answer into a
//! `ServiceResponse` (the plain client reads the same JSON into a `Value`).
//! Both agents have the same timeouts. Most of each iteration is the
//! server's work and the loopback round trip, the same for both.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use globus_app_blocking::service::{ServiceClient, TRANSFER, TransferClient};
use globus_app_blocking::storage::MemoryTokenStorage;
use globus_app_blocking::{ClientApp, GlobusAppConfig};
use globus_app_tests::AuthServer;
use globus_app_tests::services::ServicesServer;

/// The local servers: started here, or (for the comparison with the
/// Python SDK, `compare_python_service.sh`) a `globus-auth-dev-server`
/// already running, named by `GLOBUS_APP_BENCH_AUTH_URL` and
/// `GLOBUS_APP_BENCH_SERVICES_URL` (its client secret `dev-secret`).
fn servers() -> (
    Option<(AuthServer, ServicesServer)>,
    String,
    String,
    &'static str,
) {
    if let (Ok(auth), Ok(services)) = (
        std::env::var("GLOBUS_APP_BENCH_AUTH_URL"),
        std::env::var("GLOBUS_APP_BENCH_SERVICES_URL"),
    ) {
        return (None, auth, services, "dev-secret");
    }
    let server = AuthServer::start();
    server.fake().client_secret = Some("bench-secret".into());
    let services = server.start_services();
    let (auth, base) = (server.base_url.clone(), services.base_url.clone());
    (Some((server, services)), auth, base, "bench-secret")
}

fn endpoint_search(c: &mut Criterion) {
    let (_running, auth_url, services_url, secret) = servers();
    let app = ClientApp::builder("Bench")
        .client_id(globus_app_proto::testing::SIM_CLIENT_ID)
        .client_secret(secret)
        .config(GlobusAppConfig::default().with_auth_base_url(auth_url))
        .token_storage(MemoryTokenStorage::new())
        .build()
        .unwrap();
    let transfer = TransferClient::from_service(
        ServiceClient::builder(&app, TRANSFER)
            .base_url(&services_url)
            .build()
            .unwrap(),
    );
    transfer.endpoint_search("Tutorial Collection").unwrap();
    let header = app
        .get_authorizer("transfer.api.globus.org")
        .unwrap()
        .header_value()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    // The same timeouts as the client's transport (each request then sets
    // the socket's timeouts, two system calls, in both).
    let plain: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_send_request(Some(Duration::from_secs(60)))
        .build()
        .into();
    let url = format!("{services_url}v0.10/endpoint_search?filter_fulltext=Tutorial+Collection");

    let client_call = || {
        transfer.endpoint_search("Tutorial Collection").unwrap();
    };
    let plain_call = || {
        let mut response = plain
            .get(&url)
            .header("Authorization", &header)
            .header("User-Agent", "plain")
            .call()
            .unwrap();
        let _: serde_json::Value = response.body_mut().read_json().unwrap();
    };
    // Side by side: every iteration makes one call of each, alternating,
    // and each benchmark reports the time of its own side. On a 2-core
    // machine where the server's thread competes with the client's, both
    // sides then meet the same conditions (run one after the other, they
    // were up to 40% apart either way).
    let paired = |iterations: u64, client_side: bool| {
        let mut own = Duration::ZERO;
        for _ in 0..iterations {
            let started = Instant::now();
            client_call();
            let client = started.elapsed();
            let started = Instant::now();
            plain_call();
            let plain = started.elapsed();
            own += if client_side { client } else { plain };
        }
        own
    };
    let mut group = c.benchmark_group("service");
    group.bench_function("transfer_client_endpoint_search", |b| {
        b.iter_custom(|iterations| paired(iterations, true));
    });
    group.bench_function("plain_keep_alive_fixed_header", |b| {
        b.iter_custom(|iterations| paired(iterations, false));
    });
    group.finish();
}

criterion_group!(benches, endpoint_search);
criterion_main!(benches);
