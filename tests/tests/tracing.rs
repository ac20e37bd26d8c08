//! Tracing: a subscriber at TRACE captures every span and event while both
//! adapters log in (through a listener that also gets a forged request),
//! refresh, retry after a 503, redrive a GARE, get client credentials and
//! log out. The expected events are there, and no token, code, verifier,
//! id_token or secret appears anywhere in them. (One test in its own binary:
//! the subscriber is global, so the async adapter's pool threads report.)

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use globus_app_blocking::http::RetryPolicy;
use globus_app_blocking::login::{BrowserOpener, LocalServerLoginFlowManager};
use globus_app_blocking::proto::redaction::SECRET_PIECE;
use globus_app_blocking::proto::testing::{SIM_CLIENT_ID, SecretEcho};
use globus_app_blocking::storage::{JsonTokenStorage, MemoryTokenStorage, TokenStorage};
use globus_app_blocking::{ClientApp, GlobusAppConfig, UserApp};
use globus_app_tests::{AuthServer, FakeService, TempDir, now};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

const TRANSFER: &str = "transfer.api.globus.org";
const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";
const CLIENT_SECRET: &str = "SENTINEL-client-secret-7f3a9c";

/// Everything every span and event said, one line each.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_new_span(
        &self,
        attributes: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _context: Context<'_, S>,
    ) {
        let mut line = format!("span {}", attributes.metadata().name());
        attributes.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push_str(&(line + "\n"));
    }

    fn on_record(
        &self,
        _id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _context: Context<'_, S>,
    ) {
        let mut line = String::from("record");
        values.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push_str(&(line + "\n"));
    }

    fn on_event(&self, event: &tracing::Event<'_>, _context: Context<'_, S>) {
        let mut line = format!(
            "event {} {}",
            event.metadata().target(),
            event.metadata().level()
        );
        event.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push_str(&(line + "\n"));
    }
}

/// A browser that first sends the login listener a forged redirect (a
/// wrong `state`), then follows the authorize URL.
struct ForgingBrowser;

impl BrowserOpener for ForgingBrowser {
    fn open(&self, url: &str) -> Result<(), globus_app_blocking::login::BrowserError> {
        globus_app_tests::forge_then_follow(url, "code=forged&state=wrong", None);
        Ok(())
    }
}

fn flow() -> LocalServerLoginFlowManager {
    LocalServerLoginFlowManager::new()
        .with_browser(ForgingBrowser)
        .with_timeout(Duration::from_secs(10))
        .allow_remote_session(true)
}

fn config(server: &AuthServer) -> GlobusAppConfig {
    GlobusAppConfig::default()
        .with_auth_base_url(server.base_url.clone())
        .with_request_refresh_tokens(true)
        .with_auto_redrive_gares(true)
}

fn expire(storage: &dyn TokenStorage) {
    let mut records = storage.load().unwrap().records().to_vec();
    for record in &mut records {
        record.expires_at = now().saturating_sub_secs(5);
    }
    storage.store(&records).unwrap();
}

/// Every secret value the run produced, as the fake Globus Auth and the
/// fake service saw them, and as stored.
fn secrets(server: &AuthServer, service: &FakeService, stored: &[String]) -> Vec<String> {
    let mut secrets: Vec<String> = server
        .fake()
        .requests
        .iter()
        .flat_map(|request| request.fields.clone())
        .filter(|(name, _)| {
            [
                "code",
                "code_verifier",
                "refresh_token",
                "token",
                "client_secret",
            ]
            .contains(&name.as_str())
        })
        .map(|(_, value)| value)
        .collect();
    secrets.extend(
        service
            .requests()
            .into_iter()
            .flatten()
            .filter_map(|header| header.strip_prefix("Bearer ").map(str::to_owned)),
    );
    secrets.extend_from_slice(stored);
    secrets.push(CLIENT_SECRET.to_owned());
    secrets.retain(|secret| secret.len() >= 8);
    secrets
}

fn stored_secrets(storage: &dyn TokenStorage) -> Vec<String> {
    storage
        .load()
        .unwrap()
        .records()
        .iter()
        .flat_map(|record| {
            [
                Some(record.access_token.secret().to_owned()),
                record.refresh_token.as_ref().map(|t| t.secret().to_owned()),
            ]
        })
        .flatten()
        .collect()
}

/// A `ClientApp` on each adapter, sharing `memory`, gets client
/// credentials (and the async one logs out).
fn client_credentials_on_both_adapters(server: &AuthServer, memory: &MemoryTokenStorage) {
    server.fake().client_secret = Some(CLIENT_SECRET.into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let service_app = globus_app_async::ClientApp::builder("Tracing Service")
            .client_id(SIM_CLIENT_ID)
            .client_secret(CLIENT_SECRET)
            .scope_requirements(TRANSFER, TRANSFER_ALL)
            .config(config(server))
            .token_storage(memory.clone())
            .build()
            .await
            .unwrap();
        service_app.get_authorizer(TRANSFER).await.unwrap();
        service_app.logout().await.unwrap();
    });
    let blocking_service = ClientApp::builder("Tracing Service")
        .client_id(SIM_CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(config(server))
        .token_storage(memory.clone())
        .build()
        .unwrap();
    blocking_service.get_authorizer(TRANSFER).unwrap();
}

/// A server that echoes what it was sent, in every encoding: the
/// failures are traced (their outcome; an error's text never is).
fn echoed_client_credentials_fail(server: &AuthServer) {
    server.fake().echo_requests_in_errors = true;
    for echo in SecretEcho::ALL {
        server.fake().echo_encoding = echo;
        let echoed = ClientApp::builder("Tracing Echo")
            .client_id(SIM_CLIENT_ID)
            .client_secret(CLIENT_SECRET)
            .scope_requirements(TRANSFER, TRANSFER_ALL)
            .config(config(server))
            .token_storage(MemoryTokenStorage::new())
            .build()
            .unwrap();
        assert!(echoed.get_authorizer(TRANSFER).is_err());
    }
    server.fake().echo_requests_in_errors = false;
}

/// No piece of the client secret, as any echo writes it, is in `text`.
fn assert_no_piece_of_the_client_secret(text: &str) {
    for echo in SecretEcho::ALL {
        let (whole, _) = echo.write(CLIENT_SECRET);
        let piece_len = (SECRET_PIECE * whole.len()).div_ceil(CLIENT_SECRET.len());
        for written in [echo.write(CLIENT_SECRET).0, echo.write(CLIENT_SECRET).1] {
            for piece in written.as_bytes().windows(piece_len.min(written.len())) {
                let piece = String::from_utf8_lossy(piece);
                assert!(
                    !text.contains(&*piece),
                    "{echo:?}: {piece:?} is in the trace"
                );
            }
        }
    }
}

#[test]
fn events_are_emitted_and_no_secret_is_in_them() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(
            capture
                .clone()
                .with_filter(tracing_subscriber::filter::LevelFilter::TRACE),
        ),
    )
    .unwrap();

    let server = AuthServer::start();
    server.fake().rotate_refresh_tokens = true;
    server.fake().secret_prefix = "SENTINEL-".into();
    let service = FakeService::start();
    let dir = TempDir::new("tracing");
    let gare = serde_json::json!({"code": "ConsentRequired",
        "authorization_parameters": {"session_message": "again", "required_scopes": [TRANSFER_ALL]}});

    // The blocking adapter, on a token file.
    let storage = JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT").unwrap();
    let app = UserApp::builder("Tracing")
        .client_id(SIM_CLIENT_ID)
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(config(&server))
        .token_storage(storage.clone())
        .login_flow_manager(flow())
        .retry_policy(RetryPolicy::new(3, Duration::ZERO, Duration::from_secs(10)))
        .build()
        .unwrap();
    app.login().unwrap();
    expire(&storage);
    app.get_authorizer(TRANSFER).unwrap(); // refresh
    expire(&storage);
    server.fake().fail_next(1, 503, b"busy");
    app.get_authorizer(TRANSFER).unwrap(); // a retry, then a refresh
    let client = app
        .authorized(globus_app_blocking::http::UreqClient::default())
        .with_resource_server(&service.authority, TRANSFER);
    service.answer_next(403, &gare);
    let request = http::Request::get(service.base_url.clone())
        .body(Vec::new())
        .unwrap();
    assert_eq!(client.send(&request).unwrap().status(), 200); // GARE redrive
    let last = service.requests().last().cloned().flatten().unwrap();
    service.reject(last.strip_prefix("Bearer ").unwrap());
    assert_eq!(client.send(&request).unwrap().status(), 200); // 401, renewal
    let mut stored = stored_secrets(&storage);
    app.logout().unwrap();

    // The async adapter, with client credentials.
    let memory = MemoryTokenStorage::new();
    client_credentials_on_both_adapters(&server, &memory);
    stored.extend(stored_secrets(&memory));

    echoed_client_credentials_fail(&server);

    let text = capture.0.lock().unwrap().clone();
    assert!(text.contains("outcome=\"error\""), "{text}");
    assert_no_piece_of_the_client_secret(&text);
    for expected in [
        "operation=\"login\"",
        "operation=\"get_authorizer\"",
        "operation=\"get_authorizer_replacing\"",
        "operation=\"logout\"",
        "outcome=\"ok\"",
        "exchanging an authorization code",
        "refreshing an access token",
        "renewing client-credentials tokens",
        "retrying a request",
        "status=503",
        "renewal lock taken",
        "waited_ms=",
        "token storage",
        "tokens.json",
        "login listener waiting for the redirect",
        "login listener refused a request",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    let secrets = secrets(&server, &service, &stored);
    assert!(secrets.len() > 10, "{secrets:?}");
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret is in the trace:\n{text}"
        );
    }
    // Nor an id_token (a JWT), a query string or the forged code.
    for fragment in ["eyJ", "code=", "forged", "state="] {
        assert!(
            !text.contains(fragment),
            "{fragment:?} is in the trace:\n{text}"
        );
    }
}
