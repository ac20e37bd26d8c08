//! The local-server flow: open a browser, receive the redirect on a
//! one-shot loopback listener.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use globus_app_proto::app::AuthorizePlan;
use globus_app_proto::authorize::RedirectError;

use super::{AuthorizationResponse, LoginFlowError, LoginFlowManager, html_escape};

/// Opens a URL for the user (a browser, or a test's HTTP client).
pub trait BrowserOpener: Send + Sync {
    /// Opens `url`.
    fn open(&self, url: &str) -> Result<(), String>;
}

/// The system browser (`$BROWSER`, then the platform's default), refusing
/// text-mode browsers that cannot complete a Globus login.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemBrowser;

const TEXT_BROWSERS: [&str; 6] = ["lynx", "www-browser", "links", "elinks", "w3m", "browsh"];

impl BrowserOpener for SystemBrowser {
    fn open(&self, url: &str) -> Result<(), String> {
        if let Ok(browser) = std::env::var("BROWSER") {
            let name = browser.rsplit('/').next().unwrap_or(&browser).to_owned();
            if TEXT_BROWSERS.iter().any(|b| name.starts_with(b)) {
                return Err(format!(
                    "the local-server login flow cannot use the text-only browser {name:?}"
                ));
            }
        }
        open_system_browser(url)
    }
}

#[cfg(feature = "browser")]
fn open_system_browser(url: &str) -> Result<(), String> {
    webbrowser::open(url).map_err(|e| e.to_string())
}

#[cfg(not(feature = "browser"))]
fn open_system_browser(_url: &str) -> Result<(), String> {
    Err("built without the `browser` feature: give the flow a BrowserOpener".to_owned())
}

/// Opens the authorize page in a browser and receives the redirect on
/// `http://127.0.0.1:<ephemeral port>`, improving on the Python SDK's
/// manager: the `state` is checked (other requests are answered 400 and the
/// wait goes on), the landing page is HTML-escaped, failures are answered
/// with an error status, and the timeout applies on every platform.
pub struct LocalServerLoginFlowManager {
    timeout: Duration,
    browser: Box<dyn BrowserOpener>,
    allow_remote_session: bool,
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
}

/// What one request to the listener means.
enum Visit {
    /// Our redirect: the flow is over.
    Done(Result<String, RedirectError>),
    /// Not ours (another path, another state): keep waiting.
    Ignored,
}

fn page(title: &str, message: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Globus Login</title></head>\
         <body><h1>Globus Login Result</h1><p>{}</p><p>{}</p></body></html>",
        html_escape(title),
        html_escape(message)
    )
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

/// Reads one request and answers it.
fn visit(stream: &mut TcpStream, plan: &AuthorizePlan) -> Visit {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(&*stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.len() > 8192 {
        crate::trace::listener_refused("an unreadable or oversized request line");
        return Visit::Ignored;
    }
    // Drain the headers (bounded).
    for _ in 0..100 {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" || header == "\n" => break,
            Ok(_) => {}
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map_or("", |(_, q)| q);
    match plan.check_redirect(query) {
        Ok(_) => {
            respond(
                stream,
                "200 OK",
                &page("Login successful.", "You may close this tab."),
            );
            Visit::Done(Ok(query.to_owned()))
        }
        Err(e @ (RedirectError::Denied { .. } | RedirectError::InvalidCode)) => {
            respond(
                stream,
                "400 Bad Request",
                &page("Login failed.", &e.to_string()),
            );
            Visit::Done(Err(e))
        }
        Err(_) => {
            crate::trace::listener_refused("not the redirect of this login (state or code)");
            respond(
                stream,
                "400 Bad Request",
                &page("This is not the login this application is waiting for.", ""),
            );
            Visit::Ignored
        }
    }
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
        let deadline = Instant::now() + self.timeout;
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    if let Visit::Done(result) = visit(&mut stream, plan) {
                        return Ok(AuthorizationResponse::Redirect {
                            query: result?,
                            redirect_uri,
                        });
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(e) => return Err(listen(e)),
            }
        }
        Err(LoginFlowError::Timeout(self.timeout))
    }
}
