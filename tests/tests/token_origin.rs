//! The token policy end to end: every URL of the core's table through the
//! blocking and async authorized clients and a service client bound to the
//! same app. All three give the table's verdict, and a listener that every
//! request reaches through `ALL_PROXY` (as a mistaken configuration would
//! route them) receives nothing for any refused URL.
//!
//! One test in its own binary: it sets the process's proxy variables.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use globus_app_blocking::proto::testing::SIM_CLIENT_ID;
use globus_app_blocking::proto::testing::TOKEN_POLICY_TABLE;
use globus_app_blocking::service::{ServiceClient, TRANSFER};
use globus_app_blocking::storage::MemoryTokenStorage;
use globus_app_blocking::{ClientApp, Error, GlobusAppConfig};
use globus_app_tests::AuthServer;

const TRANSFER_RS: &str = "transfer.api.globus.org";
const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";
const SENTINEL: &[u8] = b"SENTINEL / HTTP/1.1\r\n\r\n";

/// What the proxy received, a connection an entry.
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<Vec<u8>>>>);

impl Recorded {
    fn take(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A listener on 127.0.0.1 that records what each connection sends and
/// answers 502; at most 500 connections.
fn recording_proxy() -> (String, Recorded) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let recorded = Recorded::default();
    let sink = recorded.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(500) {
            let Ok(mut stream) = stream else { continue };
            stream
                .set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut received = Vec::new();
            let mut buffer = [0; 4096];
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 || received.len() > 64 * 1024 {
                    break;
                }
                received.extend_from_slice(&buffer[..n]);
                if received.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let _ = stream.write_all(
                b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            sink.0.lock().unwrap().push(received);
        }
    });
    (address, recorded)
}

fn refused(result: &Result<impl Sized, Error>) -> bool {
    matches!(result, Err(Error::ServiceRequest(_)))
}

const CHILD: &str = "GLOBUS_APP_TOKEN_ORIGIN_CHILD";

#[test]
fn every_client_gives_the_policy_verdict_and_refused_urls_reach_nobody() {
    if std::env::var_os(CHILD).is_some() {
        return clients_in_child();
    }
    let (proxy, recorded) = recording_proxy();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "every_client_gives_the_policy_verdict_and_refused_urls_reach_nobody",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("ALL_PROXY", &proxy)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .status()
        .unwrap();
    assert!(status.success(), "the clients' run failed: {status}");
    let connections = recorded.take();
    assert!(
        connections.first().is_some_and(|c| c.starts_with(SENTINEL)),
        "refused URLs reached the proxy before the sentinel: {:?}",
        connections
            .iter()
            .map(|c| String::from_utf8_lossy(c))
            .collect::<Vec<_>>()
    );
    for connection in &connections {
        assert!(
            !String::from_utf8_lossy(connection)
                .to_ascii_lowercase()
                .contains("bearer"),
            "a token reached the proxy in clear"
        );
    }
}

/// The child: every ureq agent made here routes through `ALL_PROXY`.
fn clients_in_child() {
    let server = AuthServer::start();
    server.fake().client_secret = Some("secret".into());
    // The apps' own calls to Globus Auth go direct; everything else, the
    // authorized and service clients' agents, through the recorder.
    let direct = || {
        globus_app_blocking::http::UreqClient::from_agent(
            ureq::Agent::config_builder().proxy(None).build().into(),
        )
    };
    let app = ClientApp::builder("Token origin")
        .client_id(SIM_CLIENT_ID)
        .client_secret("secret")
        .scope_requirements(TRANSFER_RS, TRANSFER_ALL)
        .config(GlobusAppConfig::default().with_auth_base_url(server.base_url.clone()))
        .token_storage(MemoryTokenStorage::new())
        .http_client(direct())
        .build()
        .unwrap();
    app.login().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let async_app = globus_app_async::ClientApp::builder("Token origin async")
        .client_id(SIM_CLIENT_ID)
        .client_secret("secret")
        .scope_requirements(TRANSFER_RS, TRANSFER_ALL)
        .config(GlobusAppConfig::default().with_auth_base_url(server.base_url.clone()))
        .token_storage(MemoryTokenStorage::new())
        .http_client(globus_app_async::http::UnblockedHttp(std::sync::Arc::new(
            direct(),
        )))
        .build();
    let async_app = runtime.block_on(async_app).unwrap();
    let blocking_client = app.authorized(globus_app_blocking::http::UreqClient::default());
    let async_client = async_app.authorized(globus_app_async::http::UnblockedHttp(
        std::sync::Arc::new(globus_app_blocking::http::UreqClient::default()),
    ));
    let deadline = Instant::now() + Duration::from_secs(120);
    let verdicts = |url: &str| {
        assert!(Instant::now() < deadline);
        let service = ServiceClient::builder(&app, TRANSFER).base_url(url).build();
        let mut verdicts = vec![("service client", refused(&service))];
        // A URL the http crate cannot hold reaches no authorized client.
        if let Ok(request) = http::Request::get(url).body(Vec::new()) {
            verdicts.push((
                "authorized client",
                refused(&blocking_client.send(&request)),
            ));
            let not_async = runtime.block_on(async_client.send(&request));
            verdicts.push(("async authorized client", refused(&not_async)));
        }
        verdicts
    };
    let (refused_rows, allowed_rows): (Vec<_>, Vec<_>) =
        TOKEN_POLICY_TABLE.iter().partition(|(_, allowed)| !allowed);
    assert!(refused_rows.len() >= 20 && allowed_rows.len() >= 15);
    for (url, _) in &refused_rows {
        for (client, was_refused) in verdicts(url) {
            assert!(was_refused, "{client} did not refuse {url}");
        }
    }
    // Every refused URL has been tried: mark the point in the proxy's
    // record (it accepts connections in the order they were made).
    let proxy = std::env::var("ALL_PROXY").unwrap();
    TcpStream::connect(proxy.trim_start_matches("http://"))
        .unwrap()
        .write_all(SENTINEL)
        .unwrap();
    for (url, _) in &allowed_rows {
        for (client, was_refused) in verdicts(url) {
            assert!(!was_refused, "{client} refused {url}");
        }
    }
}
