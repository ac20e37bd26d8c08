//! `Error`: what callers branch on, and the causes it keeps. Real failures
//! where there can be one: a server on 127.0.0.1 that never answers, a
//! port nobody listens on, a corrupt SQLite file.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

#[cfg(feature = "sqlite")]
use common::TempDir;
use common::{AuthServer, SIM_CLIENT_ID};
use globus_app_blocking::http::{RetryPolicy, TransportErrorKind, UreqClient};
use globus_app_blocking::proto::app::{AppError, TokenValidationErrorHandler};
use globus_app_blocking::proto::redaction::SECRET_PIECE;
use globus_app_blocking::proto::testing::SecretEcho;
use globus_app_blocking::proto::token::TokenData;
#[cfg(feature = "sqlite")]
use globus_app_blocking::storage::SqliteTokenStorage;
use globus_app_blocking::storage::{MemoryTokenStorage, TokenStorage};
use globus_app_blocking::{ClientApp, Error, GlobusAppConfig, UserApp};

const TRANSFER: &str = "transfer.api.globus.org";
const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";

fn client_app(auth_base_url: String, http: UreqClient) -> ClientApp {
    ClientApp::builder("Errors")
        .client_id(SIM_CLIENT_ID)
        .client_secret("secret")
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(GlobusAppConfig::default().with_auth_base_url(auth_base_url))
        .token_storage(MemoryTokenStorage::new())
        .http_client(http)
        .retry_policy(RetryPolicy::NEVER)
        .build()
        .unwrap()
}

/// Every error in the chain below `error`.
fn causes<'e>(
    error: &'e (dyn std::error::Error + 'static),
) -> Vec<&'e (dyn std::error::Error + 'static)> {
    let mut chain = Vec::new();
    let mut next = error.source();
    while let Some(cause) = next {
        chain.push(cause);
        next = cause.source();
    }
    chain
}

#[test]
fn a_server_that_never_answers_is_a_retryable_timeout_keeping_ureqs_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    // Accept the connection and hold it, silent, until the test ends.
    let holder = std::thread::spawn(move || listener.accept().map(|(stream, _)| stream));
    let app = client_app(url, UreqClient::new(Duration::from_millis(300)));

    // Without the timeout the call would wait as long as the holder holds
    // the connection (the whole test).
    let started = Instant::now();
    let error = app.get_authorizer(TRANSFER).unwrap_err();
    assert!(started.elapsed() < common::stuck_after(Duration::from_millis(300)));
    let Error::Transport(transport) = &error else {
        panic!("expected a transport error, got {error:?}");
    };
    assert_eq!(transport.kind(), TransportErrorKind::Timeout);
    assert!(transport.is_timeout());
    assert!(error.is_retryable());
    assert!(!error.is_login_required());
    assert_eq!(error.http_status(), None);
    assert!(error.to_string().contains("timed out"), "{error}");
    assert!(
        causes(&error)
            .iter()
            .any(|cause| cause.downcast_ref::<ureq::Error>().is_some()),
        "no ureq::Error in the chain of {error:?}"
    );
    drop(holder.join());
}

#[test]
fn a_refused_connection_is_a_retryable_connect_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let app = client_app(
        format!("http://127.0.0.1:{port}/"),
        UreqClient::new(Duration::from_secs(5)),
    );
    let error = app.get_authorizer(TRANSFER).unwrap_err();
    let Error::Transport(transport) = &error else {
        panic!("expected a transport error, got {error:?}");
    };
    assert_eq!(transport.kind(), TransportErrorKind::Connect, "{error:?}");
    assert!(transport.is_connect());
    assert_eq!(
        transport.url(),
        format!("http://127.0.0.1:{port}/v2/oauth2/token")
    );
    assert!(error.is_retryable());
    assert!(!causes(&error).is_empty());
}

#[test]
#[cfg(feature = "sqlite")]
fn a_corrupt_sqlite_file_keeps_sqlites_error_as_the_cause() {
    let dir = TempDir::new("errors-sqlite");
    let path = dir.0.join("tokens.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let failure = SqliteTokenStorage::new(&path, "DEFAULT")
        .and_then(|storage| storage.load().map(drop))
        .unwrap_err();
    let error = Error::from(failure);
    assert!(matches!(error, Error::Storage(_)));
    assert!(error.to_string().contains("tokens.db"), "{error}");
    assert!(!error.is_retryable());
    assert!(
        causes(&error)
            .iter()
            .any(|cause| cause.downcast_ref::<rusqlite::Error>().is_some()),
        "no rusqlite::Error in the chain of {error:?}"
    );
    // The file is left as it was.
    assert_eq!(std::fs::read(&path).unwrap(), vec![0x5a; 8192]);
}

#[test]
fn globus_auth_errors_give_status_code_and_request_id() {
    let server = AuthServer::start();
    let body = serde_json::json!({
        "errors": [{"status": "401", "id": "req-7", "code": "UNAUTHORIZED", "detail": "bad client"}],
        "error": "invalid_client"
    });
    server
        .fake()
        .fail_next(1, 401, &serde_json::to_vec(&body).unwrap());
    let app = client_app(server.base_url.clone(), UreqClient::default());
    let error = app.get_authorizer(TRANSFER).unwrap_err();
    assert_eq!(error.http_status(), Some(http::StatusCode::UNAUTHORIZED));
    assert_eq!(error.globus_code(), Some("UNAUTHORIZED"));
    assert_eq!(error.request_id(), Some("req-7"));
    assert!(!error.is_retryable());
    assert!(!error.is_login_required());

    server.fake().fail_next(1, 503, b"<html>down</html>");
    let error = app.get_authorizer(TRANSFER).unwrap_err();
    assert_eq!(
        error.http_status(),
        Some(http::StatusCode::SERVICE_UNAVAILABLE)
    );
    assert!(error.is_retryable());
    assert_eq!(error.globus_code(), None);
}

#[test]
fn missing_tokens_and_rejected_refresh_tokens_say_login_required() {
    let server = AuthServer::start();
    let storage = MemoryTokenStorage::new();
    let app = UserApp::builder("Errors")
        .client_id(SIM_CLIENT_ID)
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(
            GlobusAppConfig::default()
                .with_auth_base_url(server.base_url.clone())
                .with_request_refresh_tokens(true)
                .with_token_validation_error_handler(TokenValidationErrorHandler::Raise),
        )
        .token_storage(storage.clone())
        .build()
        .unwrap();
    let error = app.get_authorizer(TRANSFER).unwrap_err();
    assert!(matches!(&error, Error::App(e) if matches!(**e, AppError::Validation(_))));
    assert!(error.is_login_required());
    assert!(!error.is_retryable());

    // A refresh token Globus Auth does not know: `invalid_grant`.
    let mut record = TokenData::new(
        TRANSFER,
        TRANSFER_ALL,
        globus_app_blocking::proto::secret::AccessToken::new("old"),
        globus_app_blocking::proto::UnixTime::from_secs(1),
    );
    record.refresh_token = Some(globus_app_blocking::proto::secret::RefreshToken::new(
        "unknown",
    ));
    let mut auth = record.clone();
    auth.resource_server = "auth.globus.org".into();
    auth.scope = "openid".into();
    storage.store(&[record, auth]).unwrap();
    let error = app.get_authorizer(TRANSFER).unwrap_err();
    assert!(error.is_login_required(), "{error:?}");
}

#[test]
fn question_mark_converts_scope_and_header_errors() {
    fn add_and_authorize(app: &UserApp, scopes: &str) -> Result<http::HeaderValue, Error> {
        app.add_scope_requirements(TRANSFER, scopes)?;
        Ok(app.get_authorizer(TRANSFER)?.header_value()?)
    }
    let storage = MemoryTokenStorage::new();
    let app = UserApp::builder("Errors")
        .client_id(SIM_CLIENT_ID)
        .config(
            GlobusAppConfig::default()
                .with_token_validation_error_handler(TokenValidationErrorHandler::Raise),
        )
        .token_storage(storage.clone())
        .build()
        .unwrap();
    assert!(matches!(
        add_and_authorize(&app, "a[").unwrap_err(),
        Error::Scope(_)
    ));
    // A token file edited to hold a newline in the access token.
    let far_future = globus_app_blocking::proto::UnixTime::from_secs(i64::from(u32::MAX));
    let record = |resource_server: &str, scope: &str| {
        TokenData::new(
            resource_server,
            scope,
            globus_app_blocking::proto::secret::AccessToken::new("bad\ntoken"),
            far_future,
        )
    };
    storage
        .store(&[
            record(TRANSFER, TRANSFER_ALL),
            record("auth.globus.org", "openid"),
        ])
        .unwrap();
    let error = add_and_authorize(&app, TRANSFER_ALL).unwrap_err();
    assert!(matches!(error, Error::InvalidAccessToken(_)), "{error:?}");
    assert!(!error.to_string().contains("bad"), "{error}");
}

/// All an error shows: its `Display` and `Debug`, and every cause's.
fn everything_shown(error: &Error) -> String {
    use std::fmt::Write as _;
    let mut shown = format!("{error}\n{error:?}\n{error:#?}\n");
    for cause in causes(error) {
        let _ = writeln!(shown, "{cause}\n{cause:?}");
    }
    shown
}

/// The last recorded request to the token endpoint whose `grant_type` is
/// `grant`.
fn last_grant(server: &AuthServer, grant: &str) -> Vec<(String, String)> {
    server
        .fake()
        .requests
        .iter()
        .rev()
        .find(|r| r.field("grant_type") == Some(grant))
        .map(|r| r.fields.clone())
        .expect("the grant was sent")
}

/// Neither a secret nor any piece of it as `echo` wrote it back
/// ([`SECRET_PIECE`] characters) is in `shown`.
fn assert_none_shown(shown: &str, secrets: &[&str], echo: SecretEcho) {
    assert!(shown.contains("[redacted]"), "{echo:?}: {shown}");
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !shown.contains(secret),
            "{echo:?}: {secret:?} shown in {shown}"
        );
        let (first, second) = echo.write(secret);
        // Pieces as long as SECRET_PIECE characters of the secret become.
        let (whole, _) = echo.write(secret);
        let piece_len = (SECRET_PIECE * whole.len())
            .div_ceil(secret.len())
            .max(SECRET_PIECE);
        for written in [first, second] {
            for piece in written.as_bytes().windows(piece_len.min(written.len())) {
                let piece = String::from_utf8_lossy(piece);
                assert!(
                    !shown.contains(&*piece),
                    "{echo:?}: {piece:?} of {secret:?} shown in {shown}"
                );
            }
        }
    }
}

#[test]
fn secrets_a_server_echoes_never_reach_an_error_in_any_encoding_and_its_description_is_cut() {
    for echo in SecretEcho::ALL {
        for status in [400, 401] {
            echoed_secrets_are_struck(echo, status);
        }
    }
}

/// The client secret, a code and its verifier, a refresh token and the
/// revoked tokens, echoed by Globus Auth as `echo` writes them in answers
/// of `status`: none in any error or logout report.
fn echoed_secrets_are_struck(echo: SecretEcho, status: u16) {
    use globus_app_blocking::proto::redaction::MAX_SERVER_TEXT_CHARS;
    const SECRET: &str = "client-secret-7f3a9";

    let server = AuthServer::start();
    {
        let mut fake = server.fake();
        fake.client_secret = Some(SECRET.into());
        fake.also_public_client = true;
        fake.echo_requests_in_errors = true;
        fake.echo_encoding = echo;
        fake.echo_status = status;
    }

    // Client credentials: the client secret (in the Basic credentials).
    let service = ClientApp::builder("Echo")
        .client_id(SIM_CLIENT_ID)
        .client_secret(SECRET)
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(GlobusAppConfig::default().with_auth_base_url(server.base_url.clone()))
        .token_storage(MemoryTokenStorage::new())
        .build()
        .unwrap();
    let error = service.get_authorizer(TRANSFER).unwrap_err();
    assert_none_shown(&everything_shown(&error), &[SECRET], echo);
    let description = error
        .auth_api_error()
        .and_then(|e| e.error_description.clone())
        .unwrap();
    assert!(description.starts_with("invalid client in request"));
    assert!(description.chars().count() <= MAX_SERVER_TEXT_CHARS + 1);
    assert!(
        description.ends_with('…'),
        "the 1000 characters of padding are cut"
    );

    // A person's login: the code and the PKCE verifier.
    let storage = MemoryTokenStorage::new();
    let user = UserApp::builder("Echo")
        .client_id(SIM_CLIENT_ID)
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(
            GlobusAppConfig::default()
                .with_auth_base_url(server.base_url.clone())
                .with_request_refresh_tokens(true)
                .with_login_flow(globus_app_blocking::LoginFlowKind::LocalServer),
        )
        .token_storage(storage.clone())
        .login_flow_manager(
            globus_app_blocking::login::LocalServerLoginFlowManager::new()
                .with_browser(common::FollowingBrowser)
                .allow_remote_session(true),
        )
        .build()
        .unwrap();
    let error = user.login().unwrap_err();
    let exchange = last_grant(&server, "authorization_code");
    let field = |fields: &[(String, String)], name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_none_shown(
        &everything_shown(&error),
        &[
            &field(&exchange, "code"),
            &field(&exchange, "code_verifier"),
        ],
        echo,
    );

    // A refresh: the refresh token.
    server.fake().echo_requests_in_errors = false;
    user.login().unwrap();
    let mut records = storage.load().unwrap().records().to_vec();
    for record in &mut records {
        record.expires_at = common::now();
    }
    storage.store(&records).unwrap();
    server.fake().echo_requests_in_errors = true;
    let error = user.get_authorizer(TRANSFER).unwrap_err();
    let refresh = last_grant(&server, "refresh_token");
    assert_none_shown(
        &everything_shown(&error),
        &[&field(&refresh, "refresh_token")],
        echo,
    );

    // A logout whose revocations are echoed: the tokens, in its report.
    revocations_echoed(&server, &user, echo);
}

/// `user` logs out from `server`, which echoes each revocation as `echo`
/// writes it: no revoked token shows in the report.
fn revocations_echoed(server: &AuthServer, user: &UserApp, echo: SecretEcho) {
    let report = user.logout().unwrap();
    assert!(!report.failed.is_empty());
    let revoked: Vec<String> = server
        .fake()
        .requests
        .iter()
        .filter(|r| r.path == "/v2/oauth2/token/revoke")
        .filter_map(|r| r.field("token").map(str::to_owned))
        .collect();
    assert!(!revoked.is_empty());
    let shown = report
        .failed
        .iter()
        .fold(String::new(), |mut shown, (_, e)| {
            use std::fmt::Write as _;
            let _ = writeln!(shown, "{e}\n{e:?}\n{e:#?}");
            shown
        });
    let revoked: Vec<&str> = revoked.iter().map(String::as_str).collect();
    assert_none_shown(&shown, &revoked, echo);
}

/// A caller's `Duration::MAX` timeouts and a server's enormous
/// `Retry-After` are taken as "very long", never an overflow (these tests
/// run with overflow checks on).
#[test]
fn extreme_timeouts_and_retry_after_do_not_overflow() {
    use globus_app_blocking::http::Retries;
    let policy = RetryPolicy::new(3, Duration::MAX, Duration::MAX);
    let mut retries = Retries::for_request(true, policy);
    let busy = http::Response::builder()
        .status(503)
        .header("retry-after", u64::MAX.to_string())
        .body(Vec::<u8>::new())
        .unwrap();
    let delay = retries.next_delay(&Ok(busy)).unwrap();
    assert_eq!(delay, Duration::from_secs(u64::MAX));

    let dir = common::TempDir::new("max-timeouts");
    let storage =
        globus_app_blocking::storage::JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT")
            .unwrap()
            .with_lock_timeout(Duration::MAX);
    storage.store(&[]).unwrap();
    drop(storage.lock_renewal("rs").unwrap());

    // A login whose timeout is Duration::MAX, with no browser: its deadline
    // is made, then the typed error.
    let server = AuthServer::start();
    let app = UserApp::builder("Max Timeout")
        .client_id(SIM_CLIENT_ID)
        .config(GlobusAppConfig::default().with_auth_base_url(server.base_url.clone()))
        .token_storage(MemoryTokenStorage::new())
        .login_flow_manager(
            globus_app_blocking::login::LocalServerLoginFlowManager::new()
                .with_timeout(Duration::MAX)
                .with_browser(NoBrowser)
                .without_fallback(),
        )
        .build()
        .unwrap();
    assert!(matches!(app.login(), Err(Error::Login(_))));

    let mut wait = globus_app_blocking::proto::service::transfer::TaskWait::new(
        Duration::MAX,
        Duration::from_secs(u64::MAX / 2),
    )
    .unwrap();
    let active = globus_app_blocking::proto::service::ServiceResponse::from_http(
        &http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(br#"{"status": "ACTIVE"}"#.to_vec())
            .unwrap(),
    )
    .unwrap();
    for _ in 0..4 {
        let _ = wait.after_poll(&active);
    }
}

struct NoBrowser;

impl globus_app_blocking::login::BrowserOpener for NoBrowser {
    fn open(&self, _url: &str) -> Result<(), globus_app_blocking::login::BrowserError> {
        Err(globus_app_blocking::login::BrowserError::failed(
            "no browser",
        ))
    }
}
