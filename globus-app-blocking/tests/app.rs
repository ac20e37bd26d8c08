//! UserApp and ClientApp end to end over HTTP on 127.0.0.1, against the
//! fake Globus Auth.

mod common;

use std::io::{BufRead, Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use common::{AuthServer, FollowingBrowser, SIM_CLIENT_ID, TempDir, now};
use globus_app_blocking::login::{
    BrowserOpener, CommandLineLoginFlowManager, LocalServerLoginFlowManager, LoginFlowError,
    LoginFlowManager,
};
use globus_app_blocking::proto::app::{AppError, LoginOutcome};
use globus_app_blocking::proto::authorize::RedirectError;
use globus_app_blocking::storage::{
    JsonTokenStorage, MemoryTokenStorage, StorageError, TokenStorage,
};
use globus_app_blocking::{ClientApp, Error, GlobusAppConfig, UserApp};

const TRANSFER: &str = "transfer.api.globus.org";
const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";

fn local_server(browser: impl BrowserOpener + 'static) -> LocalServerLoginFlowManager {
    LocalServerLoginFlowManager::new()
        .with_browser(browser)
        .with_timeout(Duration::from_secs(10))
        .allow_remote_session(true)
}

fn config(server: &AuthServer, refresh: bool) -> GlobusAppConfig {
    GlobusAppConfig::default()
        .with_auth_base_url(server.base_url.clone())
        .with_request_refresh_tokens(refresh)
}

/// A user app with memory storage, only the `openid` requirement, and `flow`.
fn memory_app(server: &AuthServer, flow: impl LoginFlowManager + 'static) -> UserApp {
    UserApp::builder("Blocking Test")
        .client_id(SIM_CLIENT_ID)
        .config(config(server, false))
        .token_storage(MemoryTokenStorage::new())
        .login_flow_manager(flow)
        .build()
        .unwrap()
}

fn user_app(server: &AuthServer, storage: impl TokenStorage + 'static, refresh: bool) -> UserApp {
    UserApp::builder("Blocking Test")
        .client_id(SIM_CLIENT_ID)
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(config(server, refresh))
        .token_storage(storage)
        .login_flow_manager(local_server(FollowingBrowser))
        .build()
        .unwrap()
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn user_login_through_the_loopback_listener_writes_a_private_token_file() {
    let server = AuthServer::start();
    let dir = TempDir::new("login");
    let path = dir.0.join("app").join("tokens.json");
    let app = user_app(
        &server,
        JsonTokenStorage::new(&path, "DEFAULT").unwrap(),
        false,
    );
    assert!(app.login_required().unwrap());
    let outcome = app.login().unwrap();
    assert!(matches!(
        outcome,
        LoginOutcome::LoggedIn { identity: Some(_) }
    ));
    #[cfg(unix)]
    {
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with(
            r#"{"data": {"DEFAULT": {"auth.globus.org": {"resource_server": "auth.globus.org""#
        ),
        "{text}"
    );
    assert!(!app.login_required().unwrap());
    let authorization = app.get_authorizer(TRANSFER).unwrap();
    assert!(
        server
            .fake()
            .is_live(authorization.access_token().secret(), now())
    );
    let exchange = server
        .fake()
        .requests
        .iter()
        .find(|r| r.field("grant_type") == Some("authorization_code"))
        .cloned();
    assert!(
        exchange
            .unwrap()
            .field("redirect_uri")
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );

    let report = app.logout().unwrap();
    assert!(report.is_complete());
    assert!(
        !server
            .fake()
            .is_live(authorization.access_token().secret(), now())
    );
    assert!(app.token_storage().load().unwrap().is_empty());
    assert!(app.login_required().unwrap());
}

/// Standard input fed by the test: lines arrive over a channel.
struct ChannelInput(mpsc::Receiver<String>, Vec<u8>);

impl Read for ChannelInput {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.fill_buf()?.len().min(buf.len());
        buf[..n].copy_from_slice(&self.1[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChannelInput {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.1.is_empty()
            && let Ok(line) = self.0.recv_timeout(common::stuck_after(Duration::ZERO))
        {
            self.1 = line.into_bytes();
        }
        Ok(&self.1)
    }

    fn consume(&mut self, amount: usize) {
        self.1.drain(..amount);
    }
}

/// Standard output read by the test.
struct ChannelOutput(mpsc::Sender<Vec<u8>>);

impl Write for ChannelOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.send(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn command_line_login_prints_the_url_and_reads_the_pasted_code() {
    let server = AuthServer::start();
    let (to_stdin, stdin) = mpsc::channel();
    let (stdout, from_stdout) = mpsc::channel::<Vec<u8>>();
    let app = memory_app(
        &server,
        CommandLineLoginFlowManager::with_io(
            ChannelInput(stdin, Vec::new()),
            ChannelOutput(stdout),
        ),
    );
    // The person: reads the printed URL, approves in a browser, pastes the code.
    let person = std::thread::spawn(move || {
        let mut printed = String::new();
        while !printed.contains("Enter the resulting Authorization Code here: ") {
            printed.push_str(
                &String::from_utf8(
                    from_stdout
                        .recv_timeout(common::stuck_after(Duration::ZERO))
                        .unwrap(),
                )
                .unwrap(),
            );
        }
        let url = printed
            .lines()
            .find(|l| l.starts_with("http://"))
            .unwrap()
            .to_owned();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .build()
            .into();
        let location = agent.get(&url).call().unwrap().headers()["location"]
            .to_str()
            .unwrap()
            .to_owned();
        let code = url::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        to_stdin.send(format!("  {code}\n")).unwrap();
        printed
    });
    app.login().unwrap();
    let printed = person.join().unwrap();
    assert!(printed.starts_with(
        "\nPlease authenticate with Globus here:\n-------------------------------------\nhttp://"
    ));
    assert!(printed.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"));
    assert!(!app.login_required().unwrap());
}

#[test]
fn command_line_login_at_end_of_input_is_a_typed_error() {
    let server = AuthServer::start();
    let app = memory_app(
        &server,
        CommandLineLoginFlowManager::with_io(&b""[..], Vec::new()),
    );
    let err = app.login().unwrap_err();
    assert!(
        matches!(&err, Error::Login(e) if matches!(**e, LoginFlowError::Eof)),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "standard input closed before an authorization code was entered (is this an interactive terminal?)"
    );
}

#[test]
fn client_app_uses_client_credentials_over_basic_auth() {
    let server = AuthServer::start();
    server.fake().client_secret = Some("s3cret".into());
    let app = ClientApp::builder("Blocking Service")
        .client_id(SIM_CLIENT_ID)
        .client_secret("s3cret")
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(GlobusAppConfig::default().with_auth_base_url(server.base_url.clone()))
        .token_storage(MemoryTokenStorage::new())
        .build()
        .unwrap();
    assert!(app.login_required().unwrap());
    assert!(
        server.fake().requests.is_empty(),
        "login_required sends nothing"
    );
    let authorization = app.get_authorizer(TRANSFER).unwrap();
    assert!(
        server
            .fake()
            .is_live(authorization.access_token().secret(), now())
    );
    assert_eq!(
        server.fake().requests[0].field("grant_type"),
        Some("client_credentials")
    );
}

#[test]
fn eight_threads_with_an_expired_token_cause_one_refresh() {
    let server = AuthServer::start();
    let dir = TempDir::new("threads");
    let storage = JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT").unwrap();
    let app = user_app(&server, storage.clone(), true);
    app.login().unwrap();
    // Expire the stored access tokens.
    let mut records = storage.load().unwrap().records().to_vec();
    for record in &mut records {
        record.expires_at = now().saturating_sub_secs(10);
    }
    storage.store(&records).unwrap();
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| app.get_authorizer(TRANSFER).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let refreshes = server
        .fake()
        .requests
        .iter()
        .filter(|r| r.field("grant_type") == Some("refresh_token"))
        .count();
    assert_eq!(refreshes, 1);
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    assert!(results[0].expires_at() > now());
}

#[test]
fn transient_failures_are_retried_but_a_code_exchange_never_is() {
    let server = AuthServer::start();
    let app = user_app(&server, MemoryTokenStorage::new(), true).clone();
    // The exchange answered 503: one attempt, a retryable error.
    server.fake().fail_next(1, 503, b"busy");
    let err = app.login().unwrap_err();
    assert!(matches!(&err, Error::App(e) if e.is_retryable()), "{err:?}");
    let exchanges = server.fake().count("/v2/oauth2/token");
    assert_eq!(exchanges, 1);
    app.login().unwrap();
    // A refresh answered 503 twice is retried until it succeeds.
    let mut records = app.token_storage().load().unwrap().records().to_vec();
    for record in &mut records {
        record.expires_at = now();
    }
    app.token_storage().store(&records).unwrap();
    let before = server.fake().count("/v2/oauth2/token");
    server.fake().fail_next(2, 503, b"busy");
    app.get_authorizer(TRANSFER).unwrap();
    assert_eq!(server.fake().count("/v2/oauth2/token"), before + 3);
}

/// A browser that first sends a forged redirect, then follows the real one.
struct ForgingBrowser;

impl BrowserOpener for ForgingBrowser {
    fn open(&self, url: &str) -> Result<(), globus_app_blocking::login::BrowserError> {
        let url = url.to_owned();
        // Like a real browser, work after open() returns.
        std::thread::spawn(move || {
            let redirect_uri = url::Url::parse(&url)
                .unwrap()
                .query_pairs()
                .find(|(k, _)| k == "redirect_uri")
                .unwrap()
                .1
                .into_owned();
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(10)))
                .build()
                .into();
            let forged = agent
                .get(&format!("{redirect_uri}?code=evil&state=forged"))
                .call()
                .unwrap();
            assert_eq!(forged.status(), 400);
            let favicon = agent
                .get(&format!("{redirect_uri}/favicon.ico"))
                .call()
                .unwrap();
            assert_eq!(favicon.status(), 400);
            FollowingBrowser.open(&url).unwrap();
        });
        Ok(())
    }
}

#[test]
fn the_listener_refuses_other_states_and_keeps_waiting() {
    let server = AuthServer::start();
    let app = memory_app(&server, local_server(ForgingBrowser));
    app.login().unwrap();
    let exchange = server
        .fake()
        .requests
        .iter()
        .find(|r| r.field("grant_type") == Some("authorization_code"))
        .cloned();
    assert_ne!(exchange.unwrap().field("code"), Some("evil"));
}

/// A browser that never comes back.
struct SilentBrowser;

impl BrowserOpener for SilentBrowser {
    fn open(&self, _url: &str) -> Result<(), globus_app_blocking::login::BrowserError> {
        Ok(())
    }
}

#[test]
fn a_denied_login_and_a_silent_browser_end_in_typed_errors() {
    let server = AuthServer::start();
    server.fake().deny_next_authorization = true;
    let app = user_app(&server, MemoryTokenStorage::new(), false);
    let err = app.login().unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Login(e)
                if matches!(**e, LoginFlowError::Authorization(RedirectError::Denied { .. }))
        ),
        "{err:?}"
    );

    let app = memory_app(
        &server,
        local_server(SilentBrowser).with_timeout(Duration::from_millis(300)),
    );
    let err = app.login().unwrap_err();
    assert!(
        matches!(&err, Error::Login(e) if matches!(**e, LoginFlowError::Timeout(_))),
        "{err:?}"
    );
    assert!(!matches!(&err, Error::App(e) if matches!(**e, AppError::Io(_))));
}

#[test]
fn apps_are_send_sync_and_cheap_to_clone() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<UserApp>();
    shareable::<ClientApp>();
    shareable::<JsonTokenStorage>();
}

/// A machine without a browser.
struct NoBrowser;

impl BrowserOpener for NoBrowser {
    fn open(&self, _url: &str) -> Result<(), globus_app_blocking::login::BrowserError> {
        Err(globus_app_blocking::login::BrowserError::failed(
            "no display",
        ))
    }
}

#[test]
fn no_browser_is_a_typed_error_and_nothing_is_stored() {
    let server = AuthServer::start();
    let app = memory_app(&server, local_server(NoBrowser).without_fallback());
    let err = app.login().unwrap_err();
    assert!(
        matches!(&err, Error::Login(e) if matches!(**e, LoginFlowError::Browser(_))),
        "{err:?}"
    );
    assert!(app.token_storage().load().unwrap().is_empty());
}

#[test]
fn a_gare_from_a_service_triggers_one_login_when_enabled() {
    let server = AuthServer::start();
    let app = UserApp::builder("Blocking Test")
        .client_id(SIM_CLIENT_ID)
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(config(&server, false).with_auto_redrive_gares(true))
        .token_storage(MemoryTokenStorage::new())
        .login_flow_manager(local_server(FollowingBrowser))
        .build()
        .unwrap();
    app.login().unwrap();
    // A Transfer 403 with a GARE nested in errors[].
    let body = format!(
        r#"{{"errors": [{{"code": "ConsentRequired", "authorization_parameters": {{"required_scopes": ["{TRANSFER_ALL}[*https://auth.globus.org/scopes/c1/data_access]"], "session_message": "need data access"}}}}]}}"#
    );
    let forbidden = http::Response::builder()
        .status(403)
        .body(body.into_bytes())
        .unwrap();
    assert!(app.redrive_gare(&forbidden).unwrap(), "retry once");
    let authorize = server.fake().authorizations.last().cloned().unwrap();
    let scope = authorize
        .iter()
        .find(|(k, _)| k == "scope")
        .unwrap()
        .1
        .clone();
    assert!(scope.contains("data_access"), "{scope}");
    let ok = http::Response::builder()
        .status(200)
        .body(Vec::new())
        .unwrap();
    assert!(!app.redrive_gare(&ok).unwrap());
}

#[test]
fn the_default_token_file_is_the_python_sdks() {
    let server = AuthServer::start();
    let app = UserApp::builder("Blocking Test")
        .client_id(SIM_CLIENT_ID)
        .config(
            config(&server, false)
                .with_environment(globus_app_blocking::proto::environment::Environment::Sandbox),
        )
        .token_storage(MemoryTokenStorage::new())
        .build()
        .unwrap();
    let path = globus_app_blocking::storage::default_token_file(
        app.core(),
        globus_app_blocking::proto::storage::TokenFileFormat::Json,
    )
    .unwrap();
    let home = std::path::PathBuf::from(std::env::var_os("HOME").unwrap());
    assert_eq!(
        path,
        home.join(".globus")
            .join("app")
            .join(SIM_CLIENT_ID)
            .join("blocking-test")
            .join("sandbox-tokens.json")
    );
}

/// Run as a child process with SSH_TTY set: without a fallback, the
/// local-server flow refuses.
#[test]
fn remote_session_child_entry() {
    if std::env::var_os("GLOBUS_APP_TEST_REMOTE_CHILD").is_none() {
        return;
    }
    let server = AuthServer::start();
    let app = memory_app(
        &server,
        LocalServerLoginFlowManager::new()
            .with_browser(FollowingBrowser)
            .without_fallback(),
    );
    let err = app.login().unwrap_err();
    assert!(
        matches!(&err, Error::Login(e) if matches!(**e, LoginFlowError::RemoteSession)),
        "{err:?}"
    );
    println!("REMOTE_SESSION_REFUSED");
}

#[test]
fn the_local_server_flow_refuses_remote_sessions() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "remote_session_child_entry", "--nocapture"])
        .env("GLOBUS_APP_TEST_REMOTE_CHILD", "1")
        .env("SSH_TTY", "/dev/pts/9")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("REMOTE_SESSION_REFUSED"),
        "{stdout}"
    );
}

#[test]
fn a_slow_server_hits_the_client_timeout_and_the_next_call_succeeds() {
    let server = AuthServer::start();
    server.fake().client_secret = Some("s".into());
    let app = ClientApp::builder("Blocking Service")
        .client_id(SIM_CLIENT_ID)
        .client_secret("s")
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(GlobusAppConfig::default().with_auth_base_url(server.base_url.clone()))
        .token_storage(MemoryTokenStorage::new())
        .http_client(globus_app_blocking::http::UreqClient::new(
            Duration::from_millis(300),
        ))
        .retry_policy(globus_app_blocking::http::RetryPolicy::NEVER)
        .build()
        .unwrap();
    server.delay_next(&[Duration::from_secs(2)]);
    let err = app.get_authorizer(TRANSFER).unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert!(!err.to_string().contains("s3cret") && !err.to_string().contains("Basic"));
    assert!(app.token_storage().load().unwrap().is_empty());
    app.get_authorizer(TRANSFER).unwrap();
}

/// A browser whose first visit to the login listener is a forged error
/// redirect without `state`; it records the listener's status, then
/// follows the real authorize URL.
struct ForgedErrorFirst(mpsc::Sender<u16>);

impl BrowserOpener for ForgedErrorFirst {
    fn open(&self, url: &str) -> Result<(), globus_app_blocking::login::BrowserError> {
        globus_app_dev_server::forge_then_follow(
            url,
            "error=access_denied&error_description=forged",
            Some(self.0.clone()),
        );
        Ok(())
    }
}

#[test]
fn a_forged_error_redirect_without_state_is_refused_and_the_login_goes_on() {
    let server = AuthServer::start();
    let (sender, statuses) = mpsc::channel();
    let app = memory_app(&server, local_server(ForgedErrorFirst(sender)));
    let outcome = app.login().unwrap();
    assert!(
        matches!(outcome, LoginOutcome::LoggedIn { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        statuses
            .recv_timeout(common::stuck_after(Duration::ZERO))
            .unwrap(),
        400,
        "the forged redirect got a 400 page"
    );
}

#[test]
fn logout_during_a_refresh_in_flight_leaves_no_live_token_behind() {
    let server = AuthServer::start();
    server.fake().rotate_refresh_tokens = true;
    let dir = TempDir::new("logout-race");
    let storage = JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT").unwrap();
    let app = user_app(&server, storage.clone(), true);
    app.login().unwrap();
    // Expire the access tokens (through the app's storage, which sees its
    // own writes at once).
    let mut records = storage.load().unwrap().records().to_vec();
    for record in &mut records {
        record.expires_at = now().saturating_sub_secs(5);
    }
    storage.store(&records).unwrap();

    // The refresh is handled (new tokens issued, the old refresh token
    // rotated out) but its answer is held back: it is in flight while the
    // logout runs.
    server.hold_next_answers(&[Duration::from_millis(800)]);
    let refreshing = std::thread::scope(|scope| {
        let refreshing = scope.spawn(|| app.get_authorizer(TRANSFER));
        for _ in 0..200 {
            if server.grants("refresh_token") == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            server.grants("refresh_token"),
            1,
            "the refresh is in flight"
        );
        let report = app.logout().unwrap();
        assert!(report.is_complete(), "{report:?}");
        refreshing.join().unwrap()
    });

    // Whatever the refresh brought was revoked and removed by the logout:
    // the file holds no token and no refresh token is live.
    let on_disk = JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT")
        .unwrap()
        .load()
        .unwrap();
    assert!(on_disk.records().is_empty(), "{:?}", on_disk.records());
    assert_eq!(server.fake().live_refresh_tokens(), 0);
    if let Ok(authorization) = refreshing {
        assert!(
            !server
                .fake()
                .is_live(authorization.access_token().secret(), now())
        );
    }
    assert!(app.login_required().unwrap());
}

#[test]
fn a_corrupt_or_oversized_token_file_is_refused_and_a_forced_login_sets_it_aside() {
    use globus_app_blocking::proto::app::LoginOptions;
    use globus_app_blocking::storage::MAX_TOKEN_FILE_BYTES;
    let server = AuthServer::start();
    let dir = TempDir::new("corrupt");
    let path = dir.0.join("tokens.json");
    let aside = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        let mut found: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains("tokens.json.unreadable-"))
            .collect();
        found.sort();
        found
    };
    for (garbage, oversized) in [
        (&b"{\"data\": tru"[..], false),
        (&b""[..], false),
        (&b""[..], true),
    ] {
        std::fs::write(&path, garbage).unwrap();
        if oversized {
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(MAX_TOKEN_FILE_BYTES + 1)
                .unwrap();
        }
        let app = user_app(
            &server,
            JsonTokenStorage::new(&path, "DEFAULT").unwrap(),
            false,
        );
        let before = aside(&dir.0).len();
        // Not forced: a typed error that says how to recover; the file is
        // left as it was.
        let error = app.login().unwrap_err();
        let storage_error = match &error {
            Error::Storage(e) => &**e,
            other => panic!("{other:?}"),
        };
        if oversized {
            assert!(
                matches!(storage_error, StorageError::TooLarge { size, .. } if *size == MAX_TOKEN_FILE_BYTES + 1)
            );
        } else {
            assert!(
                matches!(storage_error, StorageError::Corrupt { .. }),
                "{storage_error:?}"
            );
        }
        assert!(error.to_string().contains("log in with force"), "{error}");
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            if oversized {
                MAX_TOKEN_FILE_BYTES + 1
            } else {
                garbage.len() as u64
            }
        );
        // Forced: the file is kept beside, under a timestamped name, and the
        // login proceeds.
        app.login_with(LoginOptions::new().force(true)).unwrap();
        let now_aside = aside(&dir.0);
        assert_eq!(now_aside.len(), before + 1, "{now_aside:?}");
        let kept = now_aside
            .iter()
            .find(|p| {
                std::fs::metadata(p).unwrap().len()
                    == if oversized {
                        MAX_TOKEN_FILE_BYTES + 1
                    } else {
                        garbage.len() as u64
                    }
            })
            .unwrap();
        if !oversized {
            assert_eq!(std::fs::read(kept).unwrap(), garbage);
        }
        assert!(!app.login_required().unwrap());
        assert!(
            JsonTokenStorage::new(&path, "DEFAULT")
                .unwrap()
                .load()
                .unwrap()
                .get(TRANSFER)
                .is_some()
        );
    }
}

/// A token file whose stores fail while `failing` is set (a full disk).
#[derive(Clone)]
struct FullDisk {
    file: JsonTokenStorage,
    failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl TokenStorage for FullDisk {
    fn load(&self) -> Result<globus_app_blocking::proto::app::TokenSet, StorageError> {
        self.file.load()
    }
    fn store(
        &self,
        records: &[globus_app_blocking::proto::token::TokenData],
    ) -> Result<(), StorageError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StorageError::Io {
                operation: "write",
                path: self.file.path().to_owned(),
                source: std::io::Error::from_raw_os_error(28),
            });
        }
        self.file.store(records)
    }
    fn remove(&self, resource_servers: &[String]) -> Result<(), StorageError> {
        self.file.remove(resource_servers)
    }
    fn lock_renewal(
        &self,
        resource_server: &str,
    ) -> Result<globus_app_blocking::storage::RenewalGuard, StorageError> {
        self.file.lock_renewal(resource_server)
    }
}

#[test]
fn a_rotated_refresh_token_that_could_not_be_saved_is_reported_kept_and_saved_later() {
    let server = AuthServer::start();
    server.fake().rotate_refresh_tokens = true;
    let dir = TempDir::new("full-disk");
    let file = JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT").unwrap();
    let storage = FullDisk {
        file: file.clone(),
        failing: std::sync::Arc::default(),
    };
    let app = user_app(&server, storage.clone(), true);
    app.login().unwrap();
    let mut records = file.load().unwrap().records().to_vec();
    for record in &mut records {
        record.expires_at = now().saturating_sub_secs(5);
    }
    file.store(&records).unwrap();

    storage
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let error = app.get_authorizer(TRANSFER).unwrap_err();
    assert!(
        matches!(&error, Error::App(e) if matches!(&**e, AppError::RenewalNotSaved { resource_server, .. } if resource_server == TRANSFER)),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("tokens.json"), "{message}");
    assert!(message.contains("login may need repeating"), "{message}");

    // The disk has room again: the next call saves the kept renewal, with
    // no second refresh, and the refresh-token family is alive.
    storage
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    app.get_authorizer(TRANSFER).unwrap();
    assert_eq!(server.grants("refresh_token"), 1);
    let stored = JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT")
        .unwrap()
        .load()
        .unwrap();
    let refresh = stored.get(TRANSFER).unwrap().refresh_token.clone().unwrap();
    assert!(server.fake().is_live(refresh.secret(), now()));
}

/// What a hostile local client does to the login listener before (or
/// instead of) the real redirect.
#[derive(Clone, Copy)]
enum Hostile {
    /// Sends one byte every 100 ms for 100 s, never a newline.
    Trickle,
    /// Sends 64 KiB without a newline, then reads the answer.
    Flood,
}

/// Runs `hostile` against the listener, then, if `follow`, visits the
/// authorize URL as a browser would. The status of the hostile
/// connection's answer (if any) goes to `statuses`.
struct HostileBrowser {
    hostile: Hostile,
    follow: bool,
    statuses: std::sync::Mutex<Option<mpsc::Sender<Option<u16>>>>,
}

impl BrowserOpener for HostileBrowser {
    fn open(&self, url: &str) -> Result<(), globus_app_blocking::login::BrowserError> {
        let address = globus_app_dev_server::redirect_uri_of(url)
            .trim_start_matches("http://")
            .to_owned();
        let hostile = self.hostile;
        let statuses = self.statuses.lock().unwrap().take();
        std::thread::spawn(move || {
            let Ok(mut stream) = std::net::TcpStream::connect(&address) else {
                return;
            };
            match hostile {
                Hostile::Trickle => {
                    // 100 s, far longer than any bound the tests set.
                    for _ in 0..1000 {
                        if stream.write_all(b"G").is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                Hostile::Flood => {
                    let _ = stream.write_all(&vec![b'A'; 64 * 1024]);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
                    let mut answer = String::new();
                    let _ = std::io::BufReader::new(&stream).read_line(&mut answer);
                    let status = answer
                        .split_whitespace()
                        .nth(1)
                        .and_then(|s| s.parse().ok());
                    if let Some(statuses) = statuses {
                        let _ = statuses.send(status);
                    }
                }
            }
        });
        if self.follow {
            let url = url.to_owned();
            std::thread::spawn(move || {
                // After the hostile client has connected.
                std::thread::sleep(Duration::from_millis(300));
                globus_app_dev_server::follow_authorize_url(&url);
            });
        }
        Ok(())
    }
}

fn hostile_app(
    server: &AuthServer,
    hostile: Hostile,
    follow: bool,
    timeout: Duration,
) -> (UserApp, mpsc::Receiver<Option<u16>>) {
    let (statuses, received) = mpsc::channel();
    let browser = HostileBrowser {
        hostile,
        follow,
        statuses: std::sync::Mutex::new(Some(statuses)),
    };
    let app = memory_app(server, local_server(browser).with_timeout(timeout));
    (app, received)
}

#[test]
fn a_trickling_client_cannot_stall_the_redirect_or_the_login_timeout() {
    let server = AuthServer::start();
    // The real redirect arrives while the trickle goes on.
    let (app, _) = hostile_app(&server, Hostile::Trickle, true, Duration::from_secs(5));
    app.login().unwrap();
    assert!(!app.login_required().unwrap());

    // No redirect at all: the login timeout holds.
    let (app, _) = hostile_app(&server, Hostile::Trickle, false, Duration::from_secs(1));
    let started = std::time::Instant::now();
    let error = app.login().unwrap_err();
    assert!(
        matches!(&error, Error::Login(e) if matches!(**e, LoginFlowError::Timeout(_))),
        "{error:?}"
    );
    // Had the trickle stalled the timeout, the login would have ended
    // with the trickle (100 s) or never.
    assert!(
        started.elapsed() < common::stuck_after(Duration::from_secs(1)),
        "returned {:?} after a 1 s timeout",
        started.elapsed()
    );
}

#[test]
fn an_oversized_request_head_is_refused_and_the_login_goes_on() {
    let server = AuthServer::start();
    let (app, statuses) = hostile_app(&server, Hostile::Flood, true, Duration::from_secs(10));
    app.login().unwrap();
    assert_eq!(
        statuses
            .recv_timeout(common::stuck_after(Duration::ZERO))
            .unwrap(),
        Some(431)
    );
}

/// A `ClientApp` on the JSON token file `path`, looking at the file every
/// `recheck`.
fn json_client_app(server: &AuthServer, path: &std::path::Path, recheck: Duration) -> ClientApp {
    ClientApp::builder("Warm Path")
        .client_id(SIM_CLIENT_ID)
        .client_secret("s3cret")
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(GlobusAppConfig::default().with_auth_base_url(server.base_url.clone()))
        .token_storage(
            JsonTokenStorage::new(path, "DEFAULT")
                .unwrap()
                .with_recheck_interval(recheck),
        )
        .build()
        .unwrap()
}

#[test]
fn the_warm_copy_follows_other_writers_logouts_requirements_and_expiry() {
    let server = AuthServer::start();
    server.fake().client_secret = Some("s3cret".into());
    let dir = TempDir::new("warm-path");
    let path = dir.0.join("tokens.json");
    let recheck = Duration::from_millis(200);
    let app = json_client_app(&server, &path, recheck);
    let first = app.get_authorizer(TRANSFER).unwrap();
    // Served again, from this thread's copy: the same token.
    assert_eq!(
        app.get_authorizer(TRANSFER).unwrap().access_token(),
        first.access_token()
    );

    // Another process renews: seen once the file is looked at again.
    let other = json_client_app(&server, &path, recheck);
    other
        .login_with(globus_app_blocking::LoginOptions::new().force(true))
        .unwrap();
    let renewed = other.get_authorizer(TRANSFER).unwrap();
    assert_ne!(renewed.access_token(), first.access_token());
    std::thread::sleep(recheck + Duration::from_millis(100));
    assert_eq!(
        app.get_authorizer(TRANSFER).unwrap().access_token(),
        renewed.access_token(),
        "another writer's token, within the recheck interval"
    );

    // A logout here: the copy goes with the tokens.
    app.logout().unwrap();
    let grants = server.grants("client_credentials");
    let after_logout = app.get_authorizer(TRANSFER).unwrap();
    assert_eq!(server.grants("client_credentials"), grants + 1);
    assert_ne!(after_logout.access_token(), renewed.access_token());

    // New requirements: the next call is judged against them.
    app.add_scope_requirements(
        "groups.api.globus.org",
        "urn:globus:auth:scope:groups.api.globus.org:all",
    )
    .unwrap();
    assert!(app.get_authorizer(TRANSFER).is_ok());
    assert!(app.get_authorizer("groups.api.globus.org").is_ok());

    // A token due for renewal is never handed out, copy or not.
    let memory = MemoryTokenStorage::new();
    let short = ClientApp::builder("Warm Path")
        .client_id(SIM_CLIENT_ID)
        .client_secret("s3cret")
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(GlobusAppConfig::default().with_auth_base_url(server.base_url.clone()))
        .token_storage(memory.clone())
        .build()
        .unwrap();
    server.fake().access_token_lifetime = 62;
    let expiring = short.get_authorizer(TRANSFER).unwrap();
    assert_eq!(
        short.get_authorizer(TRANSFER).unwrap().access_token(),
        expiring.access_token()
    );
    server.fake().access_token_lifetime = 3600;
    // Within a minute of its expiry from now on: renewed.
    std::thread::sleep(Duration::from_millis(2100));
    let renewed = short.get_authorizer(TRANSFER).unwrap();
    assert_ne!(renewed.access_token(), expiring.access_token());
    assert!(!renewed.is_due(now()));
}

/// `tokens.json` a link to another user's token file: neither a login nor
/// a forced one reads, renames or replaces anything; each says why.
#[cfg(unix)]
#[test]
fn a_forced_login_never_renames_or_replaces_a_file_through_a_link() {
    use globus_app_blocking::proto::app::LoginOptions;
    use std::os::unix::fs::MetadataExt as _;
    let server = AuthServer::start();
    let dir = TempDir::new("linked-login");
    let victim = dir.0.join("someone-elses-tokens.json");
    std::fs::write(&victim, b"{\"data\": tru").unwrap();
    // Another user's, where the test may give it away (root, as in CI).
    let _ = std::os::unix::fs::chown(&victim, Some(65534), Some(65534));
    let before = (
        std::fs::read(&victim).unwrap(),
        std::fs::metadata(&victim).unwrap().uid(),
        std::fs::metadata(&victim).unwrap().ino(),
    );
    let path = dir.0.join("tokens.json");
    std::os::unix::fs::symlink(&victim, &path).unwrap();
    let app = user_app(
        &server,
        JsonTokenStorage::new(&path, "DEFAULT").unwrap(),
        false,
    );
    for forced in [false, true] {
        let error = app
            .login_with(LoginOptions::new().force(forced))
            .unwrap_err();
        assert!(
            matches!(&error, Error::Storage(e) if matches!(**e, StorageError::Symlink { .. })),
            "forced {forced}: {error:?}"
        );
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert!(error.to_string().contains("tokens.json"), "{error}");
    }
    let after = (
        std::fs::read(&victim).unwrap(),
        std::fs::metadata(&victim).unwrap().uid(),
        std::fs::metadata(&victim).unwrap().ino(),
    );
    assert_eq!(after, before, "the other user's file is untouched");
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let beside: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside.len(), 2, "nothing set aside or written: {beside:?}");
}

/// While another process holds the renewal lock, a token that is due for
/// renewal but still valid is handed out at once (a wait would last the
/// app's lock timeout, 60 s, and fail); only an expired one waits.
#[test]
fn a_due_but_valid_token_is_handed_out_while_another_process_renews() {
    let server = AuthServer::start();
    server.fake().client_secret = Some("s3cret".into());
    let dir = TempDir::new("valid-while-due");
    let path = dir.0.join("tokens.json");
    let app = json_client_app(&server, &path, Duration::ZERO);
    app.get_authorizer(TRANSFER).unwrap();
    // The stored token now expires in 30 s: due (a minute ahead), valid.
    let other = JsonTokenStorage::new(&path, "DEFAULT")
        .unwrap()
        .with_lock_timeout(Duration::from_secs(600));
    let mut due = other.load().unwrap().get(TRANSFER).unwrap().clone();
    due.expires_at = now().saturating_add_secs(30);
    other.store(std::slice::from_ref(&due)).unwrap();
    let grants = server.grants("client_credentials");

    let held = other.lock_renewal(TRANSFER).unwrap();
    let started = std::time::Instant::now();
    let handed = app.get_authorizer(TRANSFER).unwrap();
    assert_eq!(handed.access_token(), &due.access_token);
    assert_eq!(server.grants("client_credentials"), grants, "nothing sent");
    assert!(started.elapsed() < common::stuck_after(Duration::ZERO));

    // Released: the next caller renews, once.
    held.release();
    let renewed = app.get_authorizer(TRANSFER).unwrap();
    assert_ne!(renewed.access_token(), &due.access_token);
    assert_eq!(server.grants("client_credentials"), grants + 1);
}
