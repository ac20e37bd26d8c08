//! The local-server flow: open a browser, receive the redirect on a
//! one-shot loopback listener.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use globus_app_proto::app::AuthorizePlan;
use globus_app_proto::authorize::{
    MAX_REQUEST_HEAD, RedirectError, request_head_end, request_query,
};

use super::landing_page::PageOutcome;
use super::{AuthorizationResponse, LandingPage, LoginFlowError, LoginFlowManager};

/// Opens a URL for the user (a browser, or a test's HTTP client).
pub trait BrowserOpener: Send + Sync {
    /// Opens `url`.
    fn open(&self, url: &str) -> Result<(), BrowserError>;
}

/// Why a browser could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrowserError {
    /// `$BROWSER` names a text-only browser, which cannot complete a
    /// Globus login.
    #[error("the local-server login flow cannot use the text-only browser {0:?}")]
    TextOnly(String),
    /// Built without the `browser` feature, and no opener was given.
    #[error("built without the `browser` feature: give the flow a BrowserOpener")]
    NotBuiltIn,
    /// The opener tried and failed (no browser installed, no display...).
    #[error("the browser could not be opened")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl BrowserError {
    /// The opener failed because of `cause`.
    pub fn failed(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Failed(cause.into())
    }
}

/// The system browser (`$BROWSER`, then the platform's default), refusing
/// text-mode browsers that cannot complete a Globus login.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemBrowser;

const TEXT_BROWSERS: [&str; 6] = ["lynx", "www-browser", "links", "elinks", "w3m", "browsh"];

impl BrowserOpener for SystemBrowser {
    fn open(&self, url: &str) -> Result<(), BrowserError> {
        if let Ok(browser) = std::env::var("BROWSER") {
            let name = browser.rsplit('/').next().unwrap_or(&browser).to_owned();
            if TEXT_BROWSERS.iter().any(|b| name.starts_with(b)) {
                return Err(BrowserError::TextOnly(name));
            }
        }
        open_system_browser(url)
    }
}

#[cfg(feature = "browser")]
fn open_system_browser(url: &str) -> Result<(), BrowserError> {
    webbrowser::open(url).map_err(BrowserError::failed)
}

#[cfg(not(feature = "browser"))]
fn open_system_browser(_url: &str) -> Result<(), BrowserError> {
    Err(BrowserError::NotBuiltIn)
}

/// Opens the authorize page in a browser and receives the redirect on
/// `http://127.0.0.1:<ephemeral port>`, improving on the Python SDK's
/// manager: the `state` is checked (other requests are answered 400 and the
/// wait goes on), the landing page ([`LandingPage`]) escapes what it shows,
/// failures are answered with an error status, and the timeout applies on
/// every platform and whatever clients do: connections are served
/// concurrently, each with a deadline and an 8 KiB cap on its request head.
pub struct LocalServerLoginFlowManager {
    timeout: Duration,
    browser: Box<dyn BrowserOpener>,
    allow_remote_session: bool,
    page: LandingPage,
}

impl std::fmt::Debug for LocalServerLoginFlowManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalServerLoginFlowManager")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Default for LocalServerLoginFlowManager {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalServerLoginFlowManager {
    /// Waits up to 15 minutes, opening the system browser.
    pub fn new() -> Self {
        Self {
            timeout: Duration::from_secs(15 * 60),
            browser: Box::new(SystemBrowser),
            allow_remote_session: false,
            page: LandingPage::default(),
        }
    }

    /// Waits up to `timeout` for the redirect.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opens the authorize URL with `browser`.
    #[must_use]
    pub fn with_browser(mut self, browser: impl BrowserOpener + 'static) -> Self {
        self.browser = Box::new(browser);
        self
    }

    /// Runs even over SSH (for port-forwarded setups).
    #[must_use]
    pub fn allow_remote_session(mut self, allow: bool) -> Self {
        self.allow_remote_session = allow;
        self
    }

    /// The page the browser shows after the redirect (default: a styled
    /// page saying what happened and what to do next).
    #[must_use]
    pub fn with_landing_page(mut self, page: LandingPage) -> Self {
        self.page = page;
        self
    }

    /// The page from an HTML template with the Python SDK's placeholders,
    /// `$login_result` and `$post_login_message` (its `html_template`); see
    /// [`LandingPage`].
    #[must_use]
    pub fn with_html_template(self, template: impl Into<String>) -> Self {
        self.with_landing_page(LandingPage::from_template(template))
    }
}

/// What one request to the listener means.
enum Visit {
    /// Our redirect: the flow is over.
    Done(Result<String, RedirectError>),
    /// Not ours (another path, another state): keep waiting.
    Ignored,
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

/// How long one connection may take to send its request head (and never
/// past the login's own deadline).
const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 32;
/// How often blocked reads and the accept loop look at the clock.
const POLL: Duration = Duration::from_millis(25);

/// What reading a request head gave.
enum Head {
    /// The head, up to (not including) the blank line.
    Complete(Vec<u8>),
    /// More than [`MAX_REQUEST_HEAD`] bytes without a blank line.
    TooLarge,
    /// Closed, failed, or out of time.
    Incomplete,
}

/// Reads a request head, at most [`MAX_REQUEST_HEAD`] bytes, until
/// `deadline` or until the listener stops.
fn read_head(stream: &mut TcpStream, deadline: Instant, stop: &AtomicBool) -> Head {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let now = Instant::now();
        if stop.load(Ordering::Relaxed) || now >= deadline {
            return Head::Incomplete;
        }
        let _ = stream.set_read_timeout(Some((deadline - now).min(POLL * 4)));
        match stream.read(&mut chunk) {
            Ok(0) => return Head::Incomplete,
            Ok(read) => {
                buffer.extend_from_slice(&chunk[..read]);
                if let Some(end) = request_head_end(&buffer) {
                    buffer.truncate(end);
                    return Head::Complete(buffer);
                }
                if buffer.len() > MAX_REQUEST_HEAD {
                    return Head::TooLarge;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return Head::Incomplete,
        }
    }
}

/// Reads one request and answers it.
fn visit(
    stream: &mut TcpStream,
    plan: &AuthorizePlan,
    page: &LandingPage,
    deadline: Instant,
    stop: &AtomicBool,
) -> Visit {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let head = match read_head(stream, deadline, stop) {
        Head::Complete(head) => head,
        Head::TooLarge => {
            crate::trace::listener_refused("an oversized request head");
            respond(
                stream,
                "431 Request Header Fields Too Large",
                &page.render(PageOutcome::TooLarge),
            );
            return Visit::Ignored;
        }
        Head::Incomplete => {
            crate::trace::listener_refused("an incomplete or slow request");
            return Visit::Ignored;
        }
    };
    let query = request_query(&head);
    match plan.check_redirect(query) {
        Ok(_) => {
            respond(stream, "200 OK", &page.render(PageOutcome::Success));
            Visit::Done(Ok(query.to_owned()))
        }
        Err(e @ (RedirectError::Denied { .. } | RedirectError::InvalidCode)) => {
            respond(
                stream,
                "400 Bad Request",
                &page.render(PageOutcome::Failed(&e)),
            );
            Visit::Done(Err(e))
        }
        Err(_) => {
            crate::trace::listener_refused("not the redirect of this login (state or code)");
            respond(
                stream,
                "400 Bad Request",
                &page.render(PageOutcome::NotThisLogin),
            );
            Visit::Ignored
        }
    }
}

/// Serves connections, each on its own thread with its own deadline, until
/// one brings this login's redirect or `deadline` passes: no client, slow
/// or large, can hold the listener.
fn serve(
    listener: &TcpListener,
    plan: &AuthorizePlan,
    page: &LandingPage,
    deadline: Instant,
) -> Option<std::io::Result<Result<String, RedirectError>>> {
    let stop = AtomicBool::new(false);
    let active = AtomicUsize::new(0);
    let (done, finished) = mpsc::channel();
    std::thread::scope(|scope| {
        let outcome = loop {
            let now = Instant::now();
            if now >= deadline {
                break None;
            }
            match listener.accept() {
                Ok((mut stream, _)) => {
                    if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                        crate::trace::listener_refused("too many connections at once");
                        continue;
                    }
                    active.fetch_add(1, Ordering::Relaxed);
                    let (done, stop, active) = (done.clone(), &stop, &active);
                    let connection_deadline = deadline.min(now + CONNECTION_DEADLINE);
                    scope.spawn(move || {
                        let _ = stream.set_nonblocking(false);
                        if let Visit::Done(result) =
                            visit(&mut stream, plan, page, connection_deadline, stop)
                        {
                            let _ = done.send(result);
                        }
                        active.fetch_sub(1, Ordering::Relaxed);
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if let Ok(result) = finished.recv_timeout(POLL.min(deadline - now)) {
                        break Some(Ok(result));
                    }
                }
                Err(e) => break Some(Err(e)),
            }
            if let Ok(result) = finished.try_recv() {
                break Some(Ok(result));
            }
        };
        // The other connections give up at their next look at the clock.
        stop.store(true, Ordering::Relaxed);
        outcome
    })
}

impl LoginFlowManager for LocalServerLoginFlowManager {
    fn run(&self, plan: &AuthorizePlan) -> Result<AuthorizationResponse, LoginFlowError> {
        let remote = ["SSH_TTY", "SSH_CONNECTION", "SSH_CLIENT"]
            .iter()
            .any(|v| std::env::var_os(v).is_some());
        if remote && !self.allow_remote_session {
            return Err(LoginFlowError::RemoteSession);
        }
        let address = "127.0.0.1:0";
        let listen = |source| LoginFlowError::Listen {
            address: address.to_owned(),
            source,
        };
        let listener = TcpListener::bind(address).map_err(listen)?;
        let port = listener.local_addr().map_err(listen)?.port();
        listener.set_nonblocking(true).map_err(listen)?;
        crate::trace::listener_started(port);
        let redirect_uri = format!("http://127.0.0.1:{port}");
        self.browser
            .open(plan.url(&redirect_uri).as_str())
            .map_err(LoginFlowError::Browser)?;
        match serve(&listener, plan, &self.page, Instant::now() + self.timeout) {
            Some(Ok(result)) => Ok(AuthorizationResponse::Redirect {
                query: result?,
                redirect_uri,
            }),
            Some(Err(e)) => Err(listen(e)),
            None => Err(LoginFlowError::Timeout(self.timeout)),
        }
    }
}
