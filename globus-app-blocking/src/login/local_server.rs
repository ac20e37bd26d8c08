//! The local-server flow: show the URL, open a browser, receive the
//! redirect on a one-shot loopback listener; without a browser, a pasted
//! code.

use std::collections::VecDeque;
use std::io::{Read as _, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use globus_app_proto::app::AuthorizePlan;
use globus_app_proto::authorize::{
    MAX_REQUEST_HEAD, RedirectError, request_head_end, request_query,
};

use super::landing_page::PageOutcome;
use super::{
    AuthorizationResponse, CommandLineLoginFlowManager, Deadline, LandingPage, LoginFlowError,
    LoginFlowManager, POLL,
};

/// Opens a URL for the user (a browser, or a test's HTTP client).
pub trait BrowserOpener: Send + Sync {
    /// Opens `url`. The flow calls it on a thread of its own and does not
    /// wait for it: an opener may block until the page closes.
    fn open(&self, url: &str) -> Result<(), BrowserError>;

    /// Whether a browser can be opened at all here, asked before the URL is
    /// shown (default: yes). [`SystemBrowser`] says no on a Linux machine
    /// without a display, or with a text-only `$BROWSER`.
    fn available(&self) -> Result<(), BrowserError> {
        Ok(())
    }
}

/// Why a browser could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrowserError {
    /// No display to show a browser on (neither `DISPLAY` nor
    /// `WAYLAND_DISPLAY` is set: an SSH session, a container, CI).
    #[error("no display to open a browser on (neither DISPLAY nor WAYLAND_DISPLAY is set)")]
    NoDisplay,
    /// `$BROWSER` names a text-only browser, which cannot complete a
    /// Globus login.
    #[error("the local-server login flow cannot use the text-only browser {0:?}")]
    TextOnly(String),
    /// Built without the `browser` feature, and no opener was given.
    #[error("built without the `browser` feature: give the flow a BrowserOpener")]
    NotBuiltIn,
    /// The opener tried and failed (no browser installed...).
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
        self.available()?;
        open_system_browser(url)
    }

    fn available(&self) -> Result<(), BrowserError> {
        let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
        if let Ok(browser) = std::env::var("BROWSER") {
            let name = browser.rsplit('/').next().unwrap_or(&browser).to_owned();
            if TEXT_BROWSERS.iter().any(|b| name.starts_with(b)) {
                return Err(BrowserError::TextOnly(name));
            }
        }
        // On macOS and Windows a browser needs no display variable; on
        // other Unix systems it does.
        if cfg!(all(unix, not(target_os = "macos"))) && !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
            return Err(BrowserError::NoDisplay);
        }
        Ok(())
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

/// Shows the authorize URL, opens it in a browser and receives the
/// redirect on `http://127.0.0.1:<ephemeral port>`, improving on the
/// Python SDK's manager:
///
/// - **The URL is always shown** (on standard error, or where
///   [`with_messages`](Self::with_messages) says), with what to do if no
///   browser opens. The browser is opened on a thread of its own, and the
///   timeout runs from before it is opened: an opener that blocks delays
///   nothing.
/// - **Without a browser** (no display, an SSH session, a text-only
///   `$BROWSER`, an opener that fails) the login falls back to the
///   command-line flow: the user opens the URL anywhere and pastes the
///   code. That is the default, as `gh`, `az` and `gcloud` do; with
///   [`without_fallback`](Self::without_fallback) it is a typed error
///   instead ([`LoginFlowError::Browser`], [`LoginFlowError::RemoteSession`]).
/// - **The listener cannot be blocked.** The `state` is checked (other
///   requests are answered 400 and the wait goes on); connections are
///   served concurrently, each with a 10 s deadline and an 8 KiB cap on its
///   request head; when 256 are open, the oldest idle one is closed to
///   make room, so no number of idle or slow connections keeps the real
///   redirect out.
/// - **Cancellation** (a cancelled
///   [`Cancellation`](crate::proto::app::Cancellation), or a dropped async
///   login) stops the listener within 25 ms: its port then refuses
///   connections, and a late redirect finds nothing.
/// - The landing page ([`LandingPage`]) escapes what it shows.
pub struct LocalServerLoginFlowManager {
    timeout: Duration,
    browser: Arc<dyn BrowserOpener>,
    allow_remote_session: bool,
    page: LandingPage,
    fallback: Option<CommandLineLoginFlowManager>,
    messages: Mutex<Box<dyn Write + Send>>,
    /// Whether the default fallback's URL and prompts go where the
    /// messages go: `with_messages` chose a writer and `with_fallback`
    /// gave no command-line flow with its own input and output.
    fallback_to_messages: bool,
}

impl std::fmt::Debug for LocalServerLoginFlowManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalServerLoginFlowManager")
            .field("timeout", &self.timeout)
            .field("fallback", &self.fallback.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for LocalServerLoginFlowManager {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalServerLoginFlowManager {
    /// Waits up to 15 minutes, opening the system browser, falling back to
    /// the command-line flow on standard input and output when there is no
    /// browser, and writing its messages to standard error.
    pub fn new() -> Self {
        Self {
            timeout: Duration::from_secs(15 * 60),
            browser: Arc::new(SystemBrowser),
            allow_remote_session: false,
            page: LandingPage::default(),
            fallback: Some(CommandLineLoginFlowManager::new()),
            messages: Mutex::new(Box::new(std::io::stderr())),
            fallback_to_messages: false,
        }
    }

    /// Waits up to `timeout` for the redirect (or, after a fallback, the
    /// pasted code), counted from the start of the login.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opens the authorize URL with `browser`.
    #[must_use]
    pub fn with_browser(mut self, browser: impl BrowserOpener + 'static) -> Self {
        self.browser = Arc::new(browser);
        self
    }

    /// Runs the listener even over SSH (for port-forwarded setups); by
    /// default an SSH session falls back (or fails) as without a browser.
    #[must_use]
    pub fn allow_remote_session(mut self, allow: bool) -> Self {
        self.allow_remote_session = allow;
        self
    }

    /// Where the flow's messages go (the URL, what to do without a
    /// browser, and, when the default command-line fallback runs, its URL
    /// and code prompt too): a terminal UI can take them all. Default:
    /// standard error (the fallback's prompt: standard output). A fallback
    /// given with [`with_fallback`](Self::with_fallback) after this keeps
    /// its own output.
    #[must_use]
    pub fn with_messages(mut self, messages: impl Write + Send + 'static) -> Self {
        self.messages = Mutex::new(Box::new(messages));
        self.fallback_to_messages = true;
        self
    }

    /// Without a browser, run `command_line` (its input and output) instead.
    /// Call [`with_messages`](Self::with_messages) after this to send its
    /// URL and prompts where the other messages go.
    #[must_use]
    pub fn with_fallback(mut self, command_line: CommandLineLoginFlowManager) -> Self {
        self.fallback = Some(command_line);
        self.fallback_to_messages = false;
        self
    }

    /// Without a browser, fail with a typed error instead of falling back.
    #[must_use]
    pub fn without_fallback(mut self) -> Self {
        self.fallback = None;
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

    /// Writes a message for the user (a failure to write it is no reason to
    /// fail the login).
    fn say(&self, message: &str) {
        let mut messages = self.messages.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = writeln!(messages, "{message}");
        let _ = messages.flush();
    }

    /// No browser for this login (`reason`): the command-line flow, or the
    /// reason as the error.
    fn without_browser(
        &self,
        plan: &AuthorizePlan,
        deadline: Deadline,
        reason: LoginFlowError,
    ) -> Result<AuthorizationResponse, LoginFlowError> {
        let Some(command_line) = &self.fallback else {
            return Err(reason);
        };
        let mut why = reason.to_string();
        let mut cause = std::error::Error::source(&reason);
        while let Some(next) = cause {
            why = format!("{why}: {next}");
            cause = next.source();
        }
        self.say(&format!(
            "Cannot log in through a browser here ({why}); log in by pasting a code instead."
        ));
        let redirect_uri = plan.pasted_code_redirect_uri();
        if self.fallback_to_messages {
            let mut messages = self.messages.lock().unwrap_or_else(PoisonError::into_inner);
            command_line.read_code_with(plan, redirect_uri, Some(deadline), &mut **messages)
        } else {
            command_line.read_code(plan, redirect_uri, Some(deadline))
        }
    }
}

impl LoginFlowManager for LocalServerLoginFlowManager {
    fn run(&self, plan: &AuthorizePlan) -> Result<AuthorizationResponse, LoginFlowError> {
        // The timeout runs from here, whatever the browser does.
        let deadline = Deadline::after(self.timeout);
        let remote = ["SSH_TTY", "SSH_CONNECTION", "SSH_CLIENT"]
            .iter()
            .any(|v| std::env::var_os(v).is_some());
        if remote && !self.allow_remote_session {
            return self.without_browser(plan, deadline, LoginFlowError::RemoteSession);
        }
        if let Err(e) = self.browser.available() {
            return self.without_browser(plan, deadline, LoginFlowError::Browser(e));
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
        let url = plan.url(&redirect_uri);
        let line = "-".repeat(37);
        self.say(&format!(
            "\nPlease authenticate with Globus here:\n{line}\n{url}\n{line}\n\n\
             Opening it in your browser. If no browser opens, open the address in a \
             browser on this machine; the login waits {} s.",
            self.timeout.as_secs()
        ));
        let opened = open_in_background(Arc::clone(&self.browser), url.to_string());
        match serve(&listener, plan, &self.page, deadline.at(), &opened) {
            Served::Redirect(result) => Ok(AuthorizationResponse::Redirect {
                query: result?,
                redirect_uri,
            }),
            Served::BrowserFailed(e) => {
                drop(listener);
                self.without_browser(plan, deadline, LoginFlowError::Browser(e))
            }
            Served::Cancelled => Err(LoginFlowError::Cancelled),
            Served::TimedOut => Err(LoginFlowError::Timeout(self.timeout)),
            Served::Failed(e) => Err(listen(e)),
        }
    }
}

/// Opens `url` on a thread of its own; its result comes on the channel
/// (never, if the opener blocks until the page closes).
fn open_in_background(
    browser: Arc<dyn BrowserOpener>,
    url: String,
) -> mpsc::Receiver<Result<(), BrowserError>> {
    let (sender, receiver) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("globus-app-browser".to_owned())
        .spawn({
            let sender = sender.clone();
            move || {
                let _ = sender.send(browser.open(&url));
            }
        });
    if let Err(e) = spawned {
        let _ = sender.send(Err(BrowserError::failed(e)));
    }
    receiver
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
/// Connections open at once; a new one beyond closes the oldest idle one.
const MAX_CONNECTIONS: usize = 256;
/// The stack of a connection's thread: it reads a head and writes a page.
const CONNECTION_STACK: usize = 256 * 1024;

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
/// `deadline` or until the listener stops; `started` is set at the first
/// byte (the connection is no longer idle).
fn read_head(
    stream: &mut TcpStream,
    deadline: Instant,
    stop: &AtomicBool,
    started: &AtomicBool,
) -> Head {
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
                started.store(true, Ordering::Relaxed);
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
    started: &AtomicBool,
) -> Visit {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let head = match read_head(stream, deadline, stop, started) {
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

/// One open connection, as the listener keeps track of it.
struct Open {
    id: u64,
    /// A handle to close it with (the serving thread has the other).
    stream: TcpStream,
    /// Whether a byte of its request came (it is not idle).
    started: Arc<AtomicBool>,
}

/// The open connections, oldest first: when there are too many, the
/// oldest idle one (no byte yet), else the oldest, is closed to make room.
#[derive(Default)]
struct Connections {
    open: Mutex<VecDeque<Open>>,
}

impl Connections {
    /// Registers `stream`, closing one if there are too many; its id and
    /// the flag its thread sets at the first byte.
    fn admit(&self, id: u64, stream: &TcpStream) -> Arc<AtomicBool> {
        let started = Arc::new(AtomicBool::new(false));
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.len() >= MAX_CONNECTIONS {
            Self::close_oldest_idle(&mut open);
        }
        if let Ok(handle) = stream.try_clone() {
            open.push_back(Open {
                id,
                stream: handle,
                started: Arc::clone(&started),
            });
        }
        started
    }

    /// Closes the oldest idle connection (no byte yet), else the oldest;
    /// whether there was one.
    fn close_oldest_idle(open: &mut VecDeque<Open>) -> bool {
        let victim = open
            .iter()
            .position(|o| !o.started.load(Ordering::Relaxed))
            .unwrap_or(0);
        let Some(closed) = open.remove(victim) else {
            return false;
        };
        crate::trace::listener_refused("too many connections: the oldest idle one closed");
        let _ = closed.stream.shutdown(Shutdown::Both);
        true
    }

    /// [`close_oldest_idle`](Self::close_oldest_idle), for the listener.
    fn make_room(&self) -> bool {
        Self::close_oldest_idle(&mut self.open.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The connection `id` is done.
    fn release(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|o| o.id != id);
    }

    /// Closes every connection still open, so that their threads end now.
    fn close_all(&self) {
        let open = std::mem::take(&mut *self.open.lock().unwrap_or_else(PoisonError::into_inner));
        for o in open {
            let _ = o.stream.shutdown(Shutdown::Both);
        }
    }
}

/// How serving the listener ended.
enum Served {
    /// This login's redirect came.
    Redirect(Result<String, RedirectError>),
    /// The browser could not be opened.
    BrowserFailed(BrowserError),
    /// The login was cancelled.
    Cancelled,
    /// The deadline passed.
    TimedOut,
    /// The listener failed.
    Failed(std::io::Error),
}

/// Serves connections, each on its own thread with its own deadline, until
/// one brings this login's redirect, the browser fails, the login is
/// cancelled or `deadline` passes: no client, slow, large or idle, can
/// hold the listener.
fn serve(
    listener: &TcpListener,
    plan: &AuthorizePlan,
    page: &LandingPage,
    deadline: Instant,
    opened: &mpsc::Receiver<Result<(), BrowserError>>,
) -> Served {
    let stop = AtomicBool::new(false);
    let connections = Connections::default();
    let (done, finished) = mpsc::channel();
    std::thread::scope(|scope| {
        let mut next_id = 0u64;
        let outcome = loop {
            if let Ok(result) = finished.try_recv() {
                break Served::Redirect(result);
            }
            if plan.cancellation().is_cancelled() {
                break Served::Cancelled;
            }
            if let Ok(Err(e)) = opened.try_recv() {
                break Served::BrowserFailed(e);
            }
            let now = Instant::now();
            if now >= deadline {
                break Served::TimedOut;
            }
            match listener.accept() {
                Ok((mut stream, _)) => {
                    next_id += 1;
                    let id = next_id;
                    let started = connections.admit(id, &stream);
                    let (done, stop, connections) = (done.clone(), &stop, &connections);
                    let connection_deadline = deadline.min(now + CONNECTION_DEADLINE);
                    let spawned = std::thread::Builder::new()
                        .stack_size(CONNECTION_STACK)
                        .spawn_scoped(scope, move || {
                            let _ = stream.set_nonblocking(false);
                            let visit =
                                visit(&mut stream, plan, page, connection_deadline, stop, &started);
                            if let Visit::Done(result) = visit {
                                let _ = done.send(result);
                            }
                            connections.release(id);
                        });
                    if spawned.is_err() {
                        connections.release(id);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if let Ok(result) = finished.recv_timeout(POLL.min(deadline - now)) {
                        break Served::Redirect(result);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => {}
                // Out of file descriptors, say: close the oldest idle
                // connection, pause, and go on listening.
                Err(_) if connections.make_room() => {
                    std::thread::sleep(POLL.min(deadline - now));
                }
                Err(e) => break Served::Failed(e),
            }
        };
        // The other connections end now; the scope waits for their threads.
        stop.store(true, Ordering::Relaxed);
        connections.close_all();
        outcome
    })
}
