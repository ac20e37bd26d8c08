//! The command-line flow: print the URL, read the code.

use std::io::{BufRead, Write};
use std::sync::{Mutex, PoisonError, mpsc};

use globus_app_proto::app::AuthorizePlan;

use super::{AuthorizationResponse, Deadline, LoginFlowError, LoginFlowManager, POLL};

const PROMPT: &str = "Enter the resulting Authorization Code here: ";

/// Prints the authorize URL and reads the code the user pastes, as the
/// Python SDK's `CommandLineLoginFlowManager` does (same text). A code that
/// cannot be one (empty, with spaces) is asked for again, up to 3 times.
///
/// The wait for a line stops soon after the login is cancelled (a
/// [`Cancellation`](crate::proto::app::Cancellation) in its
/// `LoginOptions`, or a dropped async login): the line is read on a thread
/// of the manager's own, and a line that arrives after the wait stopped is
/// dropped, never taken as the next login's code. A read from a terminal
/// cannot be stopped, though: after a cancelled prompt, the next line typed
/// on standard input goes to that read (and is dropped), not to the rest of
/// the program.
///
/// ```
/// use globus_app_blocking::login::CommandLineLoginFlowManager;
/// // Reading from a fixed input, writing to a buffer (tests, GUIs):
/// let flow = CommandLineLoginFlowManager::with_io(&b"the-code\n"[..], Vec::new());
/// ```
pub struct CommandLineLoginFlowManager {
    output: Mutex<Box<dyn Write + Send>>,
    lines: LineReader,
}

impl std::fmt::Debug for CommandLineLoginFlowManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommandLineLoginFlowManager")
    }
}

impl Default for CommandLineLoginFlowManager {
    fn default() -> Self {
        Self::new()
    }
}

impl CommandLineLoginFlowManager {
    /// Prompts on standard output and reads standard input.
    pub fn new() -> Self {
        Self::with_io(std::io::BufReader::new(std::io::stdin()), std::io::stdout())
    }

    /// Prompts on `output` and reads `input`.
    pub fn with_io(
        input: impl BufRead + Send + 'static,
        output: impl Write + Send + 'static,
    ) -> Self {
        Self {
            output: Mutex::new(Box::new(output)),
            lines: LineReader::new(Box::new(input)),
        }
    }

    /// Runs the flow for a code whose redirect URI is `redirect_uri`, giving
    /// up at `deadline` if there is one (a local-server login that fell
    /// back to this flow keeps its own deadline).
    pub(crate) fn read_code(
        &self,
        plan: &AuthorizePlan,
        redirect_uri: String,
        deadline: Option<Deadline>,
    ) -> Result<AuthorizationResponse, LoginFlowError> {
        let mut output = self.output.lock().unwrap_or_else(PoisonError::into_inner);
        self.read_code_with(plan, redirect_uri, deadline, &mut **output)
    }

    /// [`read_code`](Self::read_code), writing the URL and prompts to
    /// `output` instead of this manager's own output (a local-server flow
    /// that falls back sends them where its messages go).
    pub(crate) fn read_code_with(
        &self,
        plan: &AuthorizePlan,
        redirect_uri: String,
        deadline: Option<Deadline>,
        output: &mut dyn Write,
    ) -> Result<AuthorizationResponse, LoginFlowError> {
        let url = plan.url(&redirect_uri);
        let line = "-".repeat(37);
        write!(
            output,
            "\nPlease authenticate with Globus here:\n{line}\n{url}\n{line}\n\n"
        )
        .map_err(LoginFlowError::Terminal)?;
        for attempt in 1..=3 {
            write!(output, "{PROMPT}").map_err(LoginFlowError::Terminal)?;
            output.flush().map_err(LoginFlowError::Terminal)?;
            let text = self.lines.next_line(plan, deadline)?;
            match plan.check_pasted_code(&text) {
                Ok(_) => return Ok(AuthorizationResponse::PastedCode { text, redirect_uri }),
                Err(e) if attempt == 3 => return Err(e.into()),
                Err(_) => writeln!(
                    output,
                    "That does not look like an authorization code; please try again."
                )
                .map_err(LoginFlowError::Terminal)?,
            }
        }
        Err(LoginFlowError::Eof)
    }
}

impl LoginFlowManager for CommandLineLoginFlowManager {
    fn run(&self, plan: &AuthorizePlan) -> Result<AuthorizationResponse, LoginFlowError> {
        let redirect_uri = plan
            .redirect_uri()
            .ok_or(LoginFlowError::NoRedirectUri)?
            .to_owned();
        self.read_code(plan, redirect_uri, None)
    }
}

/// What the reading thread sends back for one request: a line, or `None`
/// at the end of the input.
type LineResult = std::io::Result<Option<String>>;

/// Reads lines on a thread of its own, one for each request, so that a wait
/// can stop while the read goes on (a blocking read cannot be stopped). The
/// thread starts with the first request and ends with the manager (after
/// the read it may be in).
struct LineReader {
    input: Mutex<Option<Box<dyn BufRead + Send>>>,
    requests: Mutex<Option<mpsc::Sender<mpsc::Sender<LineResult>>>>,
}

impl LineReader {
    fn new(input: Box<dyn BufRead + Send>) -> Self {
        Self {
            input: Mutex::new(Some(input)),
            requests: Mutex::new(None),
        }
    }

    /// The next line, waiting until it comes, `deadline` passes or the
    /// login is cancelled.
    fn next_line(
        &self,
        plan: &AuthorizePlan,
        deadline: Option<Deadline>,
    ) -> Result<String, LoginFlowError> {
        let (reply, answer) = mpsc::channel();
        self.request(reply)?;
        loop {
            if plan.cancellation().is_cancelled() {
                return Err(LoginFlowError::Cancelled);
            }
            let wait = match deadline {
                Some(deadline) => POLL.min(deadline.remaining()?),
                None => POLL,
            };
            match answer.recv_timeout(wait) {
                Ok(Ok(Some(line))) => return Ok(line),
                Ok(Ok(None)) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(LoginFlowError::Eof);
                }
                Ok(Err(e)) => return Err(LoginFlowError::Terminal(e)),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Asks the reading thread (started now if need be) for a line.
    fn request(&self, reply: mpsc::Sender<LineResult>) -> Result<(), LoginFlowError> {
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        if requests.is_none() {
            let input = self
                .input
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            let Some(mut input) = input else {
                return Err(LoginFlowError::Eof);
            };
            let (sender, incoming) = mpsc::channel::<mpsc::Sender<LineResult>>();
            std::thread::Builder::new()
                .name("globus-app-login-input".to_owned())
                .spawn(move || {
                    for reply in incoming {
                        let mut line = String::new();
                        let read = input
                            .read_line(&mut line)
                            .map(|read| (read > 0).then_some(line));
                        // Dropped if the wait has stopped.
                        let _ = reply.send(read);
                    }
                })
                .map_err(LoginFlowError::Terminal)?;
            *requests = Some(sender);
        }
        requests
            .as_ref()
            .and_then(|requests| requests.send(reply).ok())
            .ok_or(LoginFlowError::Eof)
    }
}
