//! Login flow managers: the interactive part of a `UserApp` login.

mod command_line;
mod landing_page;
mod local_server;

use std::time::{Duration, Instant};

pub use globus_app_proto::app::AuthorizationResponse;
use globus_app_proto::app::AuthorizePlan;

pub use command_line::CommandLineLoginFlowManager;
pub use landing_page::LandingPage;
pub use local_server::{BrowserError, BrowserOpener, LocalServerLoginFlowManager, SystemBrowser};

/// Shows or opens the authorize URL and returns what comes back.
///
/// A flow that waits (for a person, a browser, a redirect) should give up
/// with [`LoginFlowError::Cancelled`] soon after
/// [`plan.cancellation()`](AuthorizePlan::cancellation) is cancelled: that
/// is how a login is cancelled, from another thread or by dropping an async
/// login. The built-in flows look at it every 25 ms.
pub trait LoginFlowManager: Send + Sync {
    /// Runs the interactive part of a login for `plan`.
    fn run(&self, plan: &AuthorizePlan) -> Result<AuthorizationResponse, LoginFlowError>;
}

/// Why the interactive part of a login could not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginFlowError {
    /// Standard input closed before a code was entered.
    #[error(
        "standard input closed before an authorization code was entered (is this an interactive terminal?)"
    )]
    Eof,
    /// Reading or writing the terminal failed.
    #[error("terminal I/O failed")]
    Terminal(#[source] std::io::Error),
    /// The command-line flow has no redirect URI (a configuration error).
    #[error("the command-line login flow needs a redirect URI")]
    NoRedirectUri,
    /// Running over SSH: a browser here cannot reach this machine's
    /// loopback listener.
    #[error(
        "the local-server login flow cannot run in a remote (SSH) session; use the command-line flow"
    )]
    RemoteSession,
    /// No usable browser.
    #[error("cannot open a browser")]
    Browser(#[from] BrowserError),
    /// The loopback listener could not start.
    #[error("cannot listen on {address}")]
    Listen {
        /// The address.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Nothing came back in time.
    #[error("the login timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The login was cancelled (its `Cancellation`, or a dropped async
    /// login): the listener and the prompt stopped.
    #[error("the login was cancelled")]
    Cancelled,
    /// Globus Auth redirected with an error, or with a code the flow rejected.
    #[error("the authorization failed")]
    Authorization(#[from] globus_app_proto::authorize::RedirectError),
}

/// How often a waiting flow looks at its cancellation and its deadline.
pub(crate) const POLL: Duration = Duration::from_millis(25);

/// When an interactive login gives up, with the timeout it was given (for
/// the error).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Instant,
    timeout: Duration,
}

impl Deadline {
    /// `timeout` from now.
    pub(crate) fn after(timeout: Duration) -> Self {
        Self {
            at: crate::adapter::instant_after(timeout),
            timeout,
        }
    }

    /// The time left, or [`LoginFlowError::Timeout`] once there is none.
    pub(crate) fn remaining(self) -> Result<Duration, LoginFlowError> {
        let now = Instant::now();
        if now >= self.at {
            return Err(LoginFlowError::Timeout(self.timeout));
        }
        Ok(self.at - now)
    }

    /// The instant it passes.
    pub(crate) fn at(self) -> Instant {
        self.at
    }
}

/// Escapes text for HTML, and drops the characters errors drop too
/// (invisible and direction-changing ones:
/// [`is_hidden`](globus_app_proto::redaction::is_hidden)).
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            c if globus_app_proto::redaction::is_hidden(c) => {}
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::html_escape;

    #[test]
    fn invisible_and_direction_changing_characters_are_dropped() {
        assert_eq!(html_escape("a\u{202E}b\u{2066}c\u{2069}d\u{202A}"), "abcd");
        assert_eq!(
            html_escape("a\u{200E}\u{200F}\u{61C}\u{200B}\u{200D}\u{2060}\u{FEFF}b"),
            "ab"
        );
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html_escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#x27;y&#x27;&lt;/script&gt;"
        );
    }
}
