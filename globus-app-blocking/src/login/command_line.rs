//! The command-line flow: print the URL, read the code.

use std::io::{BufRead, Write};
use std::sync::{Mutex, PoisonError};

use globus_app_proto::app::AuthorizePlan;

use super::{AuthorizationResponse, LoginFlowError, LoginFlowManager};

const PROMPT: &str = "Enter the resulting Authorization Code here: ";

/// Prints the authorize URL and reads the code the user pastes, as the
/// Python SDK's `CommandLineLoginFlowManager` does (same text). A code that
/// cannot be one (empty, with spaces) is asked for again, up to 3 times.
///
/// ```
/// use globus_app_blocking::login::CommandLineLoginFlowManager;
/// // Reading from a fixed input, writing to a buffer (tests, GUIs):
/// let flow = CommandLineLoginFlowManager::with_io(&b"the-code\n"[..], Vec::new());
/// ```
pub struct CommandLineLoginFlowManager {
    io: Mutex<(Box<dyn BufRead + Send>, Box<dyn Write + Send>)>,
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
            io: Mutex::new((Box::new(input), Box::new(output))),
        }
    }
}

impl LoginFlowManager for CommandLineLoginFlowManager {
    fn run(&self, plan: &AuthorizePlan) -> Result<AuthorizationResponse, LoginFlowError> {
        let redirect_uri = plan
            .redirect_uri()
            .ok_or(LoginFlowError::NoRedirectUri)?
            .to_owned();
        let url = plan.url(&redirect_uri);
        let mut io = self.io.lock().unwrap_or_else(PoisonError::into_inner);
        let (input, output) = &mut *io;
        let line = "-".repeat(37);
        write!(
            output,
            "\nPlease authenticate with Globus here:\n{line}\n{url}\n{line}\n\n"
        )
        .map_err(LoginFlowError::Terminal)?;
        for attempt in 1..=3 {
            write!(output, "{PROMPT}").map_err(LoginFlowError::Terminal)?;
            output.flush().map_err(LoginFlowError::Terminal)?;
            let mut text = String::new();
            if input
                .read_line(&mut text)
                .map_err(LoginFlowError::Terminal)?
                == 0
            {
                return Err(LoginFlowError::Eof);
            }
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
