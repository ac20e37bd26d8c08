//! Errors returned by Globus Auth: OAuth2 error codes and Globus API error
//! documents.

use std::fmt;

use serde_json::Value;

use crate::redaction::{SentSecrets, bounded};

/// The OAuth2 `error` codes Globus Auth returns (RFC 6749 §5.2 and
/// extensions), with anything else kept as [`Other`](Self::Other).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// `invalid_request`.
    InvalidRequest,
    /// `invalid_client`: the client id or secret is wrong.
    InvalidClient,
    /// `invalid_grant`: the code or refresh token is invalid, expired or revoked.
    InvalidGrant,
    /// `unauthorized_client`.
    UnauthorizedClient,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `invalid_scope`.
    InvalidScope,
    /// `access_denied` (also what the authorize redirect returns on refusal).
    AccessDenied,
    /// `server_error`.
    ServerError,
    /// `temporarily_unavailable`.
    TemporarilyUnavailable,
    /// `dependent_consent_required`.
    DependentConsentRequired,
    /// `unauthorized` (Globus API documents).
    Unauthorized,
    /// `forbidden` (Globus API documents).
    Forbidden,
    /// Any other code, as sent.
    Other(String),
}

impl OAuthErrorCode {
    /// Reads a code as the server sent it.
    pub fn from_code(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            "access_denied" => Self::AccessDenied,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            "dependent_consent_required" => Self::DependentConsentRequired,
            "unauthorized" => Self::Unauthorized,
            "forbidden" => Self::Forbidden,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The code as sent on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::DependentConsentRequired => "dependent_consent_required",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::Other(code) => code,
        }
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a Globus API error document's `errors` array.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ErrorSubdocument {
    /// `code`, e.g. `UNAUTHORIZED`.
    pub code: Option<String>,
    /// `id`, a request id.
    pub id: Option<String>,
    /// `title`.
    pub title: Option<String>,
    /// `detail`.
    pub detail: Option<String>,
    /// `status`, as a string.
    pub status: Option<String>,
}

/// What a caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorAdvice {
    /// The credentials are no longer usable: log in again.
    LogInAgain,
    /// A transient failure: retry later, with backoff.
    RetryLater,
    /// The client id, secret or request is wrong: fix the configuration.
    FixConfiguration,
    /// None of the above.
    Inspect,
}

/// An error response from Globus Auth (any 4xx or 5xx, or a 2xx whose body
/// is an error document).
///
/// Its `Display` names the status, the OAuth code and the description the
/// server gave; request bodies and tokens are never part of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
#[non_exhaustive]
pub struct AuthApiError {
    /// The HTTP status.
    pub status: u16,
    /// The OAuth2 `error` code, when the body had one.
    pub error: Option<OAuthErrorCode>,
    /// The OAuth2 `error_description`, when the body had one.
    pub error_description: Option<String>,
    /// The Globus `errors` array, when the body had one.
    pub errors: Vec<ErrorSubdocument>,
    /// The Globus API `code`: the first subdocument's code (`None` for a
    /// plain OAuth error body, as in the Python SDK).
    pub code: Option<String>,
    /// The request id: the `id` every subdocument that has one shares.
    pub request_id: Option<String>,
}

impl AuthApiError {
    /// Reads an error from a status and a body that may or may not be JSON.
    pub fn from_body(status: u16, body: &[u8]) -> Self {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        Self::from_json(status, json.as_ref())
    }

    /// Reads an error from a status and a parsed body. Every text the
    /// server wrote is kept to at most
    /// [`MAX_SERVER_TEXT_CHARS`](crate::redaction::MAX_SERVER_TEXT_CHARS).
    pub fn from_json(status: u16, body: Option<&Value>) -> Self {
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(bounded);
        let mut error = Self {
            status,
            error: None,
            error_description: None,
            errors: Vec::new(),
            code: None,
            request_id: None,
        };
        let Some(body) = body.filter(|b| b.is_object()) else {
            return error;
        };
        error.error = text(body, "error").map(|c| OAuthErrorCode::from_code(&c));
        error.error_description = text(body, "error_description");
        if let Some(items) = body.get("errors").and_then(Value::as_array) {
            error.errors = items
                .iter()
                .filter(|i| i.is_object())
                .map(|item| ErrorSubdocument {
                    code: text(item, "code"),
                    id: text(item, "id"),
                    title: text(item, "title"),
                    detail: text(item, "detail"),
                    status: text(item, "status").or_else(|| {
                        item.get("status")
                            .and_then(Value::as_u64)
                            .map(|s| s.to_string())
                    }),
                })
                .collect();
        }
        error.code = error.errors.first().and_then(|e| e.code.clone());
        let mut ids = error.errors.iter().filter_map(|e| e.id.as_deref());
        if let Some(first) = ids.next()
            && ids.all(|id| id == first)
        {
            error.request_id = Some(first.to_owned());
        }
        error
    }

    /// Replaces, in every text the server wrote, each secret that the
    /// request carried (a server may echo them) with `[redacted]`.
    pub fn redact(&mut self, secrets: &SentSecrets) {
        if secrets.is_empty() {
            return;
        }
        if let Some(OAuthErrorCode::Other(code)) = &mut self.error {
            secrets.redact(code);
        }
        secrets.redact_option(&mut self.error_description);
        secrets.redact_option(&mut self.code);
        secrets.redact_option(&mut self.request_id);
        for item in &mut self.errors {
            for text in [
                &mut item.code,
                &mut item.id,
                &mut item.title,
                &mut item.detail,
                &mut item.status,
            ] {
                secrets.redact_option(text);
            }
        }
    }

    /// Whether this is `invalid_grant`: the code or refresh token is dead and
    /// only a new login helps.
    pub fn is_invalid_grant(&self) -> bool {
        self.error == Some(OAuthErrorCode::InvalidGrant)
    }

    /// What to do about this error.
    pub fn advice(&self) -> ErrorAdvice {
        match (&self.error, self.status) {
            (Some(OAuthErrorCode::InvalidGrant), _) => ErrorAdvice::LogInAgain,
            (
                Some(
                    OAuthErrorCode::InvalidClient
                    | OAuthErrorCode::UnauthorizedClient
                    | OAuthErrorCode::UnsupportedGrantType
                    | OAuthErrorCode::InvalidScope
                    | OAuthErrorCode::InvalidRequest,
                ),
                _,
            ) => ErrorAdvice::FixConfiguration,
            (Some(OAuthErrorCode::TemporarilyUnavailable | OAuthErrorCode::ServerError), _)
            | (_, 429 | 500..=599) => ErrorAdvice::RetryLater,
            _ => ErrorAdvice::Inspect,
        }
    }

    /// Whether retrying the same request later may succeed (429 and 5xx).
    pub fn is_retryable(&self) -> bool {
        self.advice() == ErrorAdvice::RetryLater
    }

    fn describe(&self) -> String {
        let mut out = format!("Globus Auth returned HTTP {}", self.status);
        if let Some(error) = &self.error {
            out.push_str(": ");
            out.push_str(error.as_str());
        } else if let Some(code) = &self.code {
            out.push_str(": ");
            out.push_str(code);
        }
        if let Some(description) = self
            .error_description
            .as_deref()
            .or_else(|| self.errors.first().and_then(|e| e.detail.as_deref()))
        {
            out.push_str(" (");
            out.push_str(description);
            out.push(')');
        }
        match self.advice() {
            ErrorAdvice::LogInAgain => out.push_str("; log in again"),
            ErrorAdvice::RetryLater => out.push_str("; retry later"),
            ErrorAdvice::FixConfiguration => out.push_str("; check the client configuration"),
            ErrorAdvice::Inspect => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_oauth_error_has_no_api_code() {
        let e = AuthApiError::from_json(401, Some(&json!({"error": "invalid_grant"})));
        assert_eq!(e.error, Some(OAuthErrorCode::InvalidGrant));
        assert_eq!(e.code, None);
        assert!(e.is_invalid_grant());
        assert_eq!(e.advice(), ErrorAdvice::LogInAgain);
        assert_eq!(
            e.to_string(),
            "Globus Auth returned HTTP 401: invalid_grant; log in again"
        );
    }

    #[test]
    fn globus_error_document_gives_code_and_request_id() {
        let body = json!({
            "errors": [{"status": "401", "id": "r1", "code": "UNAUTHORIZED", "detail": "Call must be authenticated", "title": "Unauthorized"}],
            "error": "unauthorized", "error_description": "Unauthorized"
        });
        let e = AuthApiError::from_json(401, Some(&body));
        assert_eq!(e.code.as_deref(), Some("UNAUTHORIZED"));
        assert_eq!(e.request_id.as_deref(), Some("r1"));
        assert_eq!(e.errors[0].status.as_deref(), Some("401"));
    }

    #[test]
    fn differing_ids_give_no_request_id_and_html_gives_bare_status() {
        let body = json!({"errors": [{"id": "a"}, {"id": "b"}]});
        assert_eq!(AuthApiError::from_json(400, Some(&body)).request_id, None);
        let e = AuthApiError::from_body(502, b"<html>Bad gateway</html>");
        assert_eq!(e.status, 502);
        assert!(e.is_retryable());
        assert_eq!(e.error, None);
    }
}
