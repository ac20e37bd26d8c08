//! The interactive login on any machine: the URL always shown, a pasted
//! code when no browser can be opened, cancellation that stops the
//! listener and the prompt (blocking, and async under tokio and
//! async-std), and a listener that idle or slow connections cannot block.

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use globus_app_blocking::login::{
    BrowserError, BrowserOpener, CommandLineLoginFlowManager, LocalServerLoginFlowManager,
    LoginFlowError, LoginFlowManager,
};
use globus_app_blocking::proto::testing::SIM_CLIENT_ID;
use globus_app_blocking::storage::MemoryTokenStorage;
use globus_app_blocking::{
    Cancellation, Error, GlobusAppConfig, LoginFlowKind, LoginOptions, UserApp,
};
use globus_app_tests::{
    AuthServer, AutoTerminal, follow_authorize_url, redirect_uri_of, stuck_after,
};

const TRANSFER: &str = "transfer.api.globus.org";
const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";

/// What a flow wrote for the user, kept for the test.
#[derive(Clone, Default)]
struct Messages(Arc<Mutex<Vec<u8>>>);

impl Write for Messages {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Messages {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A machine whose browser cannot be started.
struct FailingBrowser;

impl BrowserOpener for FailingBrowser {
    fn open(&self, _url: &str) -> Result<(), BrowserError> {
        Err(BrowserError::failed("no browser is installed"))
    }
}

/// An opener that waits for the page to close, which it never does.
struct BlockingBrowser;

impl BrowserOpener for BlockingBrowser {
    fn open(&self, _url: &str) -> Result<(), BrowserError> {
        std::thread::sleep(Duration::from_secs(300));
        Ok(())
    }
}

/// A browser that opens the page, whose user never comes back; the test
/// gets the URL.
#[derive(Clone)]
struct SilentBrowser(mpsc::Sender<String>);

impl BrowserOpener for SilentBrowser {
    fn open(&self, url: &str) -> Result<(), BrowserError> {
        let _ = self.0.send(url.to_owned());
        Ok(())
    }
}

/// The loopback listener's address in an authorize URL.
fn listener_of(url: &str) -> SocketAddr {
    let redirect = url::Url::parse(&redirect_uri_of(url)).unwrap();
    SocketAddr::from(([127, 0, 0, 1], redirect.port().unwrap()))
}

/// Whether `address` refuses connections within `limit` (looked at every
/// 20 ms).
fn refuses_connections_within(address: SocketAddr, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        match TcpStream::connect_timeout(&address, Duration::from_millis(200)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    false
}

fn config(server: &AuthServer) -> GlobusAppConfig {
    GlobusAppConfig::default()
        .with_auth_base_url(server.base_url.clone())
        .with_login_flow(LoginFlowKind::LocalServer)
}

fn user_app(server: &AuthServer, flow: impl LoginFlowManager + 'static) -> UserApp {
    UserApp::builder("Login Flows")
        .client_id(SIM_CLIENT_ID)
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(config(server))
        .read_environment_variables(false)
        .token_storage(MemoryTokenStorage::new())
        .login_flow_manager(flow)
        .build()
        .unwrap()
}

fn local_server(messages: &Messages) -> LocalServerLoginFlowManager {
    LocalServerLoginFlowManager::new()
        .with_timeout(Duration::from_secs(20))
        .allow_remote_session(true)
        .with_messages(messages.clone())
}

/// The redirect URI of the last code exchange the server saw.
fn last_exchange_redirect(server: &AuthServer) -> String {
    server
        .fake()
        .requests
        .iter()
        .rev()
        .find(|r| r.field("grant_type") == Some("authorization_code"))
        .and_then(|r| r.field("redirect_uri").map(str::to_owned))
        .expect("a code exchange")
}

#[test]
fn a_failing_opener_shows_the_url_then_falls_back_to_a_pasted_code() {
    let server = AuthServer::start();
    let messages = Messages::default();
    let terminal = AutoTerminal::default();
    let flow = local_server(&messages)
        .with_browser(FailingBrowser)
        .with_fallback(CommandLineLoginFlowManager::with_io(
            terminal.clone(),
            terminal,
        ));
    let app = user_app(&server, flow);
    app.login().unwrap();
    let shown = messages.text();
    assert!(
        shown.contains("Please authenticate with Globus here:\n"),
        "{shown}"
    );
    assert!(
        shown.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
        "{shown}"
    );
    assert!(shown.contains("If no browser opens"), "{shown}");
    assert!(
        shown.contains(
            "(cannot open a browser: the browser could not be opened: no browser is installed); \
             log in by pasting a code instead"
        ),
        "{shown}"
    );
    assert!(last_exchange_redirect(&server).ends_with("/v2/web/auth-code"));
    assert!(app.get_authorizer(TRANSFER).is_ok());
}

#[test]
fn without_a_fallback_a_failing_opener_is_a_typed_error_and_nothing_is_stored() {
    let server = AuthServer::start();
    let messages = Messages::default();
    let app = user_app(
        &server,
        local_server(&messages)
            .with_browser(FailingBrowser)
            .without_fallback(),
    );
    let error = app.login().unwrap_err();
    assert!(
        matches!(&error, Error::Login(e) if matches!(**e, LoginFlowError::Browser(BrowserError::Failed(_)))),
        "{error:?}"
    );
    assert!(
        messages.text().contains("http://127.0.0.1:") || messages.text().contains("127.0.0.1%3A")
    );
    assert!(app.token_storage().load().unwrap().is_empty());
}

/// Run as a child process without `DISPLAY` and `WAYLAND_DISPLAY`: the
/// system browser cannot be opened; the URL for a pasted code is shown.
#[test]
#[cfg(all(unix, not(target_os = "macos")))]
fn no_display_child_entry() {
    if std::env::var_os("GLOBUS_APP_TEST_NO_DISPLAY_CHILD").is_none() {
        return;
    }
    let server = AuthServer::start();
    // Without a fallback: a typed error, and no loopback URL shown.
    let messages = Messages::default();
    let app = user_app(&server, local_server(&messages).without_fallback());
    let error = app.login().unwrap_err();
    assert!(
        matches!(&error, Error::Login(e) if matches!(**e, LoginFlowError::Browser(BrowserError::NoDisplay))),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("cannot open a browser"),
        "{error}"
    );
    assert!(
        !messages.text().contains("127.0.0.1"),
        "{}",
        messages.text()
    );
    // With one (the default): the command-line flow, at once.
    let terminal = AutoTerminal::default();
    let messages = Messages::default();
    let app = user_app(
        &server,
        local_server(&messages).with_fallback(CommandLineLoginFlowManager::with_io(
            terminal.clone(),
            terminal,
        )),
    );
    app.login().unwrap();
    assert!(
        messages.text().contains("no display to open a browser on"),
        "{}",
        messages.text()
    );
    assert!(last_exchange_redirect(&server).ends_with("/v2/web/auth-code"));
    println!("NO_DISPLAY_HANDLED");
}

#[test]
#[cfg(all(unix, not(target_os = "macos")))]
fn a_machine_without_a_display_falls_back_or_fails_as_configured() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "no_display_child_entry", "--nocapture"])
        .env("GLOBUS_APP_TEST_NO_DISPLAY_CHILD", "1")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("BROWSER")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("NO_DISPLAY_HANDLED"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn an_opener_that_blocks_does_not_delay_the_timeout() {
    let server = AuthServer::start();
    let messages = Messages::default();
    let app = user_app(
        &server,
        local_server(&messages)
            .with_browser(BlockingBrowser)
            .with_timeout(Duration::from_millis(500)),
    );
    let started = Instant::now();
    let error = app.login().unwrap_err();
    assert!(
        matches!(&error, Error::Login(e) if matches!(**e, LoginFlowError::Timeout(_))),
        "{error:?}"
    );
    // The opener is still blocked (300 s); the login ended at its timeout.
    assert!(
        started.elapsed() < stuck_after(Duration::from_millis(500)),
        "{:?}",
        started.elapsed()
    );
    assert!(
        messages
            .text()
            .contains("Please authenticate with Globus here")
    );
}

#[test]
fn a_cancelled_login_stops_its_listener_and_a_late_redirect_finds_nothing() {
    let server = AuthServer::start();
    let (opened, urls) = mpsc::channel();
    let app = user_app(
        &server,
        local_server(&Messages::default()).with_browser(SilentBrowser(opened)),
    );
    let cancellation = Cancellation::new();
    let login = {
        let (app, cancellation) = (app.clone(), cancellation.clone());
        std::thread::spawn(move || app.login_with(LoginOptions::new().cancellation(cancellation)))
    };
    let url = urls.recv_timeout(stuck_after(Duration::ZERO)).unwrap();
    let listener = listener_of(&url);
    cancellation.cancel();
    let error = login.join().unwrap().unwrap_err();
    assert!(error.is_cancelled(), "{error:?}");
    assert!(refuses_connections_within(
        listener,
        stuck_after(Duration::ZERO)
    ));
    // The user approves after all: the redirect goes nowhere.
    follow_authorize_url(&url);
    std::thread::sleep(Duration::from_millis(200));
    assert!(app.token_storage().load().unwrap().is_empty());
}

/// Standard input as the test types it: `read_line` waits for the next
/// line sent.
struct TypedInput(Mutex<mpsc::Receiver<String>>);

impl Read for TypedInput {
    fn read(&mut self, _buf: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("use read_line"))
    }
}

impl BufRead for TypedInput {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        Err(std::io::Error::other("use read_line"))
    }

    fn consume(&mut self, _amount: usize) {}

    fn read_line(&mut self, line: &mut String) -> std::io::Result<usize> {
        match self.0.lock().unwrap().recv() {
            Ok(typed) => {
                line.push_str(&typed);
                Ok(typed.len())
            }
            Err(_) => Ok(0),
        }
    }
}

#[test]
fn a_cancelled_prompt_stops_waiting_and_a_line_typed_late_is_not_taken_as_a_code() {
    let server = AuthServer::start();
    let (keyboard, typed) = mpsc::channel();
    let terminal = Messages::default();
    let flow =
        CommandLineLoginFlowManager::with_io(TypedInput(Mutex::new(typed)), terminal.clone());
    let app = UserApp::builder("Login Flows")
        .client_id(SIM_CLIENT_ID)
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(GlobusAppConfig::default().with_auth_base_url(server.base_url.clone()))
        .read_environment_variables(false)
        .token_storage(MemoryTokenStorage::new())
        .login_flow_manager(flow)
        .build()
        .unwrap();

    let cancellation = Cancellation::new();
    let first = {
        let (app, cancellation) = (app.clone(), cancellation.clone());
        std::thread::spawn(move || app.login_with(LoginOptions::new().cancellation(cancellation)))
    };
    let started = Instant::now();
    while !terminal
        .text()
        .contains("Enter the resulting Authorization Code")
    {
        assert!(started.elapsed() < stuck_after(Duration::ZERO), "no prompt");
        std::thread::sleep(Duration::from_millis(10));
    }
    cancellation.cancel();
    let cancelled_at = Instant::now();
    let error = first.join().unwrap().unwrap_err();
    // The prompt has no timeout: only the cancellation ended the wait (the
    // error says so), and it did not wait for a line.
    assert!(error.is_cancelled(), "{error:?}");
    assert!(cancelled_at.elapsed() < stuck_after(Duration::ZERO));
    // Typed after the prompt stopped: dropped.
    keyboard.send("stale-code-typed-late\n".to_owned()).unwrap();

    // The next login reads its own code.
    let second = {
        let app = app.clone();
        std::thread::spawn(move || app.login())
    };
    let started = Instant::now();
    let url = loop {
        let text = terminal.text();
        let urls: Vec<&str> = text.lines().filter(|l| l.starts_with("http")).collect();
        if urls.len() == 2 {
            break urls[1].to_owned();
        }
        assert!(
            started.elapsed() < stuck_after(Duration::ZERO),
            "no second prompt"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    keyboard
        .send(format!("{}\n", AutoTerminal::read_code_for(&url)))
        .unwrap();
    second.join().unwrap().unwrap();
    assert!(app.get_authorizer(TRANSFER).is_ok());
}

/// An async app whose browser never comes back; the test gets the URL.
async fn silent_async_app(
    server: &AuthServer,
) -> (globus_app_async::UserApp, mpsc::Receiver<String>) {
    let (opened, urls) = mpsc::channel();
    let app = globus_app_async::UserApp::builder("Login Flows")
        .client_id(SIM_CLIENT_ID)
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(config(server))
        .read_environment_variables(false)
        .token_storage(MemoryTokenStorage::new())
        .login_flow_manager(globus_app_async::login::UnblockedLogin::new(
            local_server(&Messages::default()).with_browser(SilentBrowser(opened)),
        ))
        .build()
        .await
        .unwrap();
    (app, urls)
}

/// After the login future was dropped, its listener refuses connections.
fn assert_listener_closed(urls: &mpsc::Receiver<String>) {
    let url = urls.recv_timeout(stuck_after(Duration::ZERO)).unwrap();
    assert!(refuses_connections_within(
        listener_of(&url),
        Duration::from_secs(1)
    ));
}

#[test]
fn dropping_an_async_login_on_tokio_closes_its_listener() {
    let server = AuthServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let urls = runtime.block_on(async {
        let (app, urls) = silent_async_app(&server).await;
        let outcome = tokio::time::timeout(Duration::from_millis(500), app.login()).await;
        assert!(outcome.is_err(), "the login cannot have finished");
        urls
    });
    assert_listener_closed(&urls);
}

#[test]
fn dropping_an_async_login_on_async_std_closes_its_listener() {
    let server = AuthServer::start();
    let urls = async_std::task::block_on(async {
        let (app, urls) = silent_async_app(&server).await;
        let outcome = async_std::future::timeout(Duration::from_millis(500), app.login()).await;
        assert!(outcome.is_err(), "the login cannot have finished");
        urls
    });
    assert_listener_closed(&urls);
}

/// A browser that first opens `idle` connections that never send a byte
/// and 8 that send a byte every 100 ms, then follows the URL.
struct CrowdedBrowser {
    idle: usize,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl BrowserOpener for CrowdedBrowser {
    fn open(&self, url: &str) -> Result<(), BrowserError> {
        let listener = listener_of(url);
        let mut held = self.held.lock().unwrap();
        for _ in 0..self.idle {
            held.push(TcpStream::connect(listener).map_err(BrowserError::failed)?);
        }
        for _ in 0..8 {
            let mut slow = TcpStream::connect(listener).map_err(BrowserError::failed)?;
            std::thread::spawn(move || {
                for byte in b"GET /?slow HTTP/1.1\r\nHost: x\r\n" {
                    if slow.write_all(&[*byte]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        follow_authorize_url(url);
        Ok(())
    }
}

#[test]
fn idle_and_trickling_connections_never_keep_the_redirect_out() {
    let server = AuthServer::start();
    // More than the listener keeps open at once (256).
    let held = Arc::new(Mutex::new(Vec::new()));
    let app = user_app(
        &server,
        local_server(&Messages::default()).with_browser(CrowdedBrowser {
            idle: 300,
            held: Arc::clone(&held),
        }),
    );
    // Before, the 33rd connection was closed at once and the login timed
    // out (an error); now the redirect is served when it comes.
    app.login().unwrap();
    assert_eq!(held.lock().unwrap().len(), 300);
}

/// An opener that says at once that no browser can be opened here.
struct NoBrowser;

impl BrowserOpener for NoBrowser {
    fn open(&self, _url: &str) -> Result<(), BrowserError> {
        unreachable!("available() said no")
    }

    fn available(&self) -> Result<(), BrowserError> {
        Err(BrowserError::failed("no display"))
    }
}

#[test]
fn with_messages_gets_the_default_fallbacks_url_reason_and_prompt() {
    let server = AuthServer::start();
    let messages = Messages::default();
    // The default fallback reads standard input: whatever it holds in the
    // test run (nothing, or a terminal), the login ends within the timeout.
    let flow = LocalServerLoginFlowManager::new()
        .with_timeout(Duration::from_secs(2))
        .allow_remote_session(true)
        .with_browser(NoBrowser)
        .with_messages(messages.clone());
    let app = user_app(&server, flow);
    assert!(app.login().is_err());
    let shown = messages.text();
    assert!(shown.contains("(cannot open a browser"), "{shown}");
    assert!(
        shown.contains("Please authenticate with Globus here:\n"),
        "{shown}"
    );
    assert!(shown.contains("%2Fv2%2Fweb%2Fauth-code"), "{shown}");
    assert!(
        shown.contains("Enter the resulting Authorization Code here: "),
        "{shown}"
    );
}
