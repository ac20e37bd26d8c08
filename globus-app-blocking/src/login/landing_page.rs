//! The page a browser shows after the redirect to the loopback listener.

use globus_app_proto::authorize::RedirectError;

use super::html_escape;

/// The built-in page: readable on any screen, no external resources.
const DEFAULT_TEMPLATE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Globus Login: $login_result</title>
<style>
  :root { color-scheme: light dark; }
  body {
    margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
    font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
    background: #f4f6f8; color: #1f2933;
  }
  main {
    max-width: 32rem; margin: 1.5rem; padding: 2rem 2.25rem; background: #ffffff;
    border-radius: 12px; box-shadow: 0 4px 24px rgba(15, 35, 60, 0.12);
    border-top: 6px solid #0d5aa7;
  }
  .brand { font-size: 0.8rem; letter-spacing: 0.12em; text-transform: uppercase; color: #52606d; margin: 0 0 0.75rem; }
  h1 { font-size: 1.6rem; margin: 0 0 0.75rem; line-height: 1.25; }
  p.message { font-size: 1.05rem; line-height: 1.55; margin: 0; }
  @media (prefers-color-scheme: dark) {
    body { background: #12171d; color: #e4e7eb; }
    main { background: #1d242c; box-shadow: none; }
    .brand { color: #9aa5b1; }
  }
</style>
</head>
<body>
<main>
<p class="brand">Globus</p>
<h1>$login_result</h1>
<p class="message">$post_login_message</p>
</main>
</body>
</html>
"#;

/// The page the loopback listener answers the browser with: after the
/// redirect (success, or each way a login can fail) and to requests that
/// are not this login's.
///
/// A custom template is HTML with the Python SDK's two placeholders (its
/// `html_template`): `$login_result` (or `${login_result}`), a short
/// heading, and `$post_login_message`, what happened and what to do next;
/// `$$` is a `$`. The inserted values are always HTML-escaped, so text from
/// the redirect (an `error_description`) cannot inject markup.
///
/// ```
/// use globus_app_blocking::login::{LandingPage, LocalServerLoginFlowManager};
/// let page = LandingPage::from_template(
///     "<html><body><h1>$login_result</h1><p>$post_login_message</p><p>Costs $$0</p></body></html>",
/// );
/// let manager = LocalServerLoginFlowManager::new().with_landing_page(page);
/// ```
#[derive(Debug, Clone)]
pub struct LandingPage {
    template: String,
}

impl Default for LandingPage {
    fn default() -> Self {
        Self::from_template(DEFAULT_TEMPLATE)
    }
}

/// What the page reports.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PageOutcome<'a> {
    /// The redirect brought this login's code.
    Success,
    /// Globus Auth redirected with an error, or with an unusable code.
    Failed(&'a RedirectError),
    /// A request that is not this login's redirect.
    NotThisLogin,
    /// A request head over the size limit.
    TooLarge,
}

impl PageOutcome<'_> {
    /// The heading and the message.
    fn texts(self) -> (&'static str, String) {
        match self {
            Self::Success => (
                "Login successful",
                "You are logged in. You can close this tab and return to the application."
                    .to_owned(),
            ),
            Self::Failed(RedirectError::Denied { error, description }) => (
                "Login failed",
                format!(
                    "Globus Auth did not complete the login: {}. Return to the application to try again.",
                    description
                        .as_deref()
                        .unwrap_or(error.as_str())
                        .trim_end_matches('.')
                ),
            ),
            Self::Failed(_) => (
                "Login failed",
                "The login came back without a usable authorization code. Return to the application to try again."
                    .to_owned(),
            ),
            Self::NotThisLogin => (
                "Unexpected request",
                "This address is waiting for a different login. If you started a login, finish it in the window the application opened, or start it again from the application."
                    .to_owned(),
            ),
            Self::TooLarge => (
                "Request refused",
                "The request was too large for this login page.".to_owned(),
            ),
        }
    }
}

impl LandingPage {
    /// A page from `template` (see the type's documentation for the
    /// placeholders).
    pub fn from_template(template: impl Into<String>) -> Self {
        Self {
            template: template.into(),
        }
    }

    /// The page for `outcome`.
    pub(crate) fn render(&self, outcome: PageOutcome<'_>) -> String {
        let (result, message) = outcome.texts();
        let mut page = substitute(
            &self.template,
            &[
                ("login_result", &html_escape(result)),
                ("post_login_message", &html_escape(&message)),
            ],
        );
        // A template's own invisible or direction-changing characters go
        // too: nothing on the page reorders or hides what it says.
        page.retain(|c| !globus_app_proto::redaction::is_hidden(c));
        page
    }
}

/// `$name` and `${name}` replaced by their values, `$$` by `$`; anything
/// else is copied as it is.
fn substitute(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (replacement, tail) = placeholder(after, values).unwrap_or(("$", after));
        out.push_str(replacement);
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// What a `$` followed by `after` stands for, and the text after it.
fn placeholder<'a>(after: &'a str, values: &[(&str, &'a str)]) -> Option<(&'a str, &'a str)> {
    if let Some(tail) = after.strip_prefix('$') {
        return Some(("$", tail));
    }
    let (name, tail) = if let Some(inner) = after.strip_prefix('{') {
        let end = inner.find('}')?;
        (&inner[..end], &inner[end + 1..])
    } else {
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        (&after[..end], &after[end..])
    };
    values
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| (*value, tail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use globus_app_proto::auth_error::OAuthErrorCode;

    #[test]
    fn placeholders_are_filled_and_escaped() {
        let page = LandingPage::from_template("[$login_result|${post_login_message}|$$|$other|$]");
        let denied = RedirectError::Denied {
            error: OAuthErrorCode::from_code("access_denied"),
            description: Some("<script>alert(1)</script> & more".into()),
        };
        let html = page.render(PageOutcome::Failed(&denied));
        assert!(html.starts_with("[Login failed|Globus Auth did not complete the login: &lt;script&gt;alert(1)&lt;/script&gt; &amp; more."), "{html}");
        assert!(html.ends_with("|$|$other|$]"), "{html}");
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn the_default_page_says_what_happened_for_every_outcome() {
        let page = LandingPage::default();
        let success = page.render(PageOutcome::Success);
        assert!(success.contains("<h1>Login successful</h1>"));
        assert!(success.contains("close this tab"));
        let forged = page.render(PageOutcome::NotThisLogin);
        assert!(forged.contains("Unexpected request"));
        let invalid = page.render(PageOutcome::Failed(&RedirectError::InvalidCode));
        assert!(invalid.contains("without a usable authorization code"));
        assert!(
            page.render(PageOutcome::TooLarge)
                .contains("Request refused")
        );
        assert!(!success.contains('$'), "every placeholder is filled");
    }
}
