//! Parsing Globus Auth's HTTP responses.
//!
//! Every parser takes an `http::Response<Vec<u8>>` and returns typed data or
//! a [`ResponseError`]: an error status becomes [`ResponseError::Api`], a 2xx
//! whose body is an OAuth error document becomes
//! [`ResponseError::ErrorInSuccess`], a body that is not JSON (an HTML error
//! page from a proxy, say) becomes [`ResponseError::NotJson`], and a missing
//! or mistyped field becomes [`ResponseError::InvalidField`].

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::UnixTime;
use crate::auth_error::AuthApiError;
use crate::redaction::{SentSecrets, bounded};
use crate::secret::{AccessToken, IdToken, RefreshToken};
use crate::token::{TokenData, expiry_from_expires_in};

/// A response that could not be turned into what was asked for.
///
/// Messages never contain tokens or response bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// Globus Auth answered with an error status.
    #[error(transparent)]
    Api(Box<AuthApiError>),
    /// Globus Auth answered 2xx with an error document.
    #[error("Globus Auth answered a success status with an error document: {0}")]
    ErrorInSuccess(Box<AuthApiError>),
    /// The body is not JSON.
    #[error(
        "expected JSON from Globus Auth (HTTP {status}) but got a body of type {content_type:?}"
    )]
    NotJson {
        /// The HTTP status.
        status: u16,
        /// The `Content-Type` header, if any.
        content_type: Option<String>,
    },
    /// The JSON lacks a field or has one of the wrong type.
    #[error("Globus Auth's response has a missing or invalid {field:?}")]
    InvalidField {
        /// The field, with its path (e.g. `other_tokens[1].scope`).
        field: String,
    },
    /// Two tokens in one response are for the same resource server.
    #[error("Globus Auth's response has two tokens for resource server {resource_server:?}")]
    DuplicateResourceServer {
        /// The repeated resource server.
        resource_server: String,
    },
    /// A token that is already expired when it arrives (`expires_in`
    /// missing, zero or negative): nothing is stored.
    #[error("Globus Auth's response holds a token that is already expired ({field:?})")]
    ExpiredOnArrival {
        /// The field, with its path.
        field: String,
    },
    /// A token that is not a bearer token: this library sends only
    /// `Authorization: Bearer`.
    #[error("Globus Auth's response holds a {token_type:?} token, not a Bearer token")]
    NotBearer {
        /// The `token_type` given.
        token_type: String,
    },
    /// A response that must hold exactly one token held another number.
    #[error("expected exactly one token in the response, found {found}")]
    NotExactlyOneToken {
        /// How many tokens it held.
        found: usize,
    },
}

impl ResponseError {
    /// Whether the server said the grant is dead (`invalid_grant`).
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, Self::Api(e) | Self::ErrorInSuccess(e) if e.is_invalid_grant())
    }

    /// Replaces each secret the request carried, wherever the server wrote
    /// it into this error, with `[redacted]`.
    pub fn redact(&mut self, secrets: &SentSecrets) {
        match self {
            Self::Api(error) | Self::ErrorInSuccess(error) => error.redact(secrets),
            Self::NotJson { content_type, .. } => secrets.redact_option(content_type),
            Self::DuplicateResourceServer {
                resource_server: text,
            }
            | Self::NotBearer { token_type: text } => secrets.redact(text),
            Self::InvalidField { .. }
            | Self::ExpiredOnArrival { .. }
            | Self::NotExactlyOneToken { .. } => {}
        }
    }

    /// Whether retrying the request later may help (429, 5xx, or a body
    /// mangled in transit by a proxy).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api(e) => e.is_retryable(),
            Self::NotJson { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

fn invalid(field: impl Into<String>) -> ResponseError {
    ResponseError::InvalidField {
        field: field.into(),
    }
}

/// Checks the status and parses the body as JSON, turning error statuses
/// and error documents into [`ResponseError`]s.
pub fn parse_json(response: &http::Response<Vec<u8>>) -> Result<Value, ResponseError> {
    let status = response.status().as_u16();
    let json: Option<Value> = serde_json::from_slice(response.body()).ok();
    if !response.status().is_success() {
        let error = AuthApiError::from_json(status, json.as_ref());
        return Err(ResponseError::Api(Box::new(error)));
    }
    let Some(json) = json else {
        return Err(ResponseError::NotJson {
            status,
            content_type: response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(bounded),
        });
    };
    if json.get("error").is_some_and(|e| !e.is_null()) {
        return Err(ResponseError::ErrorInSuccess(Box::new(
            AuthApiError::from_json(status, Some(&json)),
        )));
    }
    Ok(json)
}

/// A parsed token response, split by resource server (the Python SDK's
/// `OAuthTokenResponse.by_resource_server`).
#[derive(Clone, PartialEq, Debug)]
pub struct TokenResponse {
    tokens: Vec<TokenData>,
    id_token: Option<IdToken>,
}

impl TokenResponse {
    /// The tokens, the top-level one first, then `other_tokens` in order.
    /// Their `identity_id` is `None`: the identity comes from the verified
    /// id_token (see [`with_identity`](Self::with_identity)).
    pub fn tokens(&self) -> &[TokenData] {
        &self.tokens
    }

    /// The tokens, by value.
    pub fn into_tokens(self) -> Vec<TokenData> {
        self.tokens
    }

    /// The token for `resource_server`, if the response has one.
    pub fn token_for(&self, resource_server: &str) -> Option<&TokenData> {
        self.tokens
            .iter()
            .find(|t| t.resource_server == resource_server)
    }

    /// The id_token, present when `openid` was granted.
    pub fn id_token(&self) -> Option<&IdToken> {
        self.id_token.as_ref()
    }

    /// Sets `identity_id` on every token (after the id_token was verified).
    #[must_use]
    pub fn with_identity(mut self, identity_id: &str) -> Self {
        for token in &mut self.tokens {
            token.identity_id = Some(identity_id.to_owned());
        }
        self
    }

    /// This response with the tokens of `other` for resource servers it
    /// has none for, and `other`'s id_token if it has none.
    #[must_use]
    pub fn joined_with(mut self, other: TokenResponse) -> Self {
        for token in other.tokens {
            if self.token_for(&token.resource_server).is_none() {
                self.tokens.push(token);
            }
        }
        if self.id_token.is_none() {
            self.id_token = other.id_token;
        }
        self
    }

    /// The only token of a refresh or client-credentials response.
    pub fn into_single(mut self) -> Result<TokenData, ResponseError> {
        if self.tokens.len() == 1 {
            Ok(self.tokens.remove(0))
        } else {
            Err(ResponseError::NotExactlyOneToken {
                found: self.tokens.len(),
            })
        }
    }
}

/// Parses a token endpoint response (authorization code, refresh or client
/// credentials): the top-level token plus `other_tokens`, each with
/// `expires_at = now + expires_in` (see [`expiry_from_expires_in`]).
///
/// Differences from the Python SDK, on purpose: a missing `other_tokens` is
/// an empty list rather than a crash, and two tokens for one resource server
/// are an error rather than the later one silently winning.
pub fn parse_token_response(
    response: &http::Response<Vec<u8>>,
    now: UnixTime,
) -> Result<TokenResponse, ResponseError> {
    let json = parse_json(response)?;
    token_response_from_json(&json, now)
}

/// [`parse_token_response`] from an already-parsed JSON body.
pub fn token_response_from_json(
    json: &Value,
    now: UnixTime,
) -> Result<TokenResponse, ResponseError> {
    let root = json.as_object().ok_or_else(|| invalid("(root object)"))?;
    let mut tokens = vec![token_entry(root, "", now)?];
    match root.get("other_tokens") {
        None | Some(Value::Null) => {}
        Some(Value::Array(others)) => push_entries(&mut tokens, others, "other_tokens", now)?,
        Some(_) => return Err(invalid("other_tokens")),
    }
    let id_token = match root.get("id_token") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(IdToken::new(s.clone())),
        Some(_) => return Err(invalid("id_token")),
    };
    Ok(TokenResponse { tokens, id_token })
}

/// Parses a dependent-token grant response, whose body is a JSON array of
/// token entries. Dependent tokens carry no identity.
pub fn parse_dependent_token_response(
    response: &http::Response<Vec<u8>>,
    now: UnixTime,
) -> Result<TokenResponse, ResponseError> {
    let json = parse_json(response)?;
    let entries = json.as_array().ok_or_else(|| invalid("(root array)"))?;
    let mut tokens = Vec::with_capacity(entries.len());
    push_entries(&mut tokens, entries, "", now)?;
    Ok(TokenResponse {
        tokens,
        id_token: None,
    })
}

/// Appends the token entries of a JSON array (`field` names it in errors),
/// refusing a second token for a resource server.
fn push_entries(
    tokens: &mut Vec<TokenData>,
    entries: &[Value],
    field: &str,
    now: UnixTime,
) -> Result<(), ResponseError> {
    // Linear in the number of entries, whatever the answer holds.
    let mut seen: HashSet<String> = tokens.iter().map(|t| t.resource_server.clone()).collect();
    for (i, entry) in entries.iter().enumerate() {
        let path = format!("{field}[{i}]");
        let entry = entry.as_object().ok_or_else(|| invalid(&path))?;
        let token = token_entry(entry, &format!("{path}."), now)?;
        if !seen.insert(token.resource_server.clone()) {
            return Err(ResponseError::DuplicateResourceServer {
                resource_server: bounded(&token.resource_server),
            });
        }
        tokens.push(token);
    }
    Ok(())
}

fn token_entry(
    entry: &Map<String, Value>,
    prefix: &str,
    now: UnixTime,
) -> Result<TokenData, ResponseError> {
    let required = |key: &str| {
        entry
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| invalid(format!("{prefix}{key}")))
    };
    let optional = |key: &str| match entry.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("{prefix}{key}"))),
    };
    let expires_at = expiry_from_expires_in(entry.get("expires_in"), now)
        .ok_or_else(|| invalid(format!("{prefix}expires_in")))?;
    let token = TokenData {
        resource_server: required("resource_server")?,
        identity_id: None,
        scope: required("scope")?,
        access_token: AccessToken::new(required("access_token")?),
        refresh_token: optional("refresh_token")?.map(RefreshToken::new),
        expires_at,
        token_type: optional("token_type")?,
        extra: Map::new(),
    };
    // A token already expired when it arrives (`expires_in` missing, zero
    // or negative) could only be handed out expired: refuse the response.
    if token.expires_at <= now {
        return Err(ResponseError::ExpiredOnArrival {
            field: format!("{prefix}expires_in"),
        });
    }
    if let Some(token_type) = &token.token_type
        && !token_type.eq_ignore_ascii_case("bearer")
    {
        return Err(ResponseError::NotBearer {
            token_type: bounded(token_type),
        });
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response(status: u16, body: &Value) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap())
            .unwrap()
    }

    const NOW: UnixTime = UnixTime::from_secs(1_000);

    #[test]
    fn splits_top_level_and_other_tokens() {
        let body = json!({
            "access_token": "a1", "scope": "openid", "expires_in": 100, "token_type": "Bearer",
            "resource_server": "auth.globus.org", "id_token": "x.y.z", "refresh_token": "r1",
            "other_tokens": [{"access_token": "a2", "scope": "t", "expires_in": 50,
                              "token_type": "Bearer", "resource_server": "transfer.api.globus.org"}]
        });
        let parsed = parse_token_response(&response(200, &body), NOW).unwrap();
        assert_eq!(parsed.tokens().len(), 2);
        let auth = parsed.token_for("auth.globus.org").unwrap();
        assert_eq!(auth.expires_at, UnixTime::from_secs(1_100));
        assert_eq!(auth.refresh_token.as_ref().unwrap().secret(), "r1");
        let transfer = &parsed.tokens()[1];
        assert_eq!(transfer.resource_server, "transfer.api.globus.org");
        assert_eq!(transfer.refresh_token, None);
        assert_eq!(parsed.id_token().unwrap().secret(), "x.y.z");
        let with_id = parsed.with_identity("sub-1");
        assert!(
            with_id
                .tokens()
                .iter()
                .all(|t| t.identity_id.as_deref() == Some("sub-1"))
        );
    }

    #[test]
    fn missing_other_tokens_is_an_empty_list() {
        let body =
            json!({"access_token": "a", "scope": "s", "expires_in": 1, "resource_server": "rs"});
        let parsed = parse_token_response(&response(200, &body), NOW).unwrap();
        assert_eq!(parsed.into_single().unwrap().resource_server, "rs");
    }

    #[test]
    fn malformed_bodies_are_typed_errors() {
        let ok =
            json!({"access_token": "a", "scope": "s", "expires_in": 1, "resource_server": "rs"});
        let mut no_scope = ok.clone();
        no_scope.as_object_mut().unwrap().remove("scope");
        assert_eq!(
            parse_token_response(&response(200, &no_scope), NOW),
            Err(invalid("scope"))
        );
        let mut bad_expiry = ok.clone();
        bad_expiry["expires_in"] = json!("soon");
        assert_eq!(
            parse_token_response(&response(200, &bad_expiry), NOW),
            Err(invalid("expires_in"))
        );
        let mut dup = ok.clone();
        dup["other_tokens"] = json!([ok.clone()]);
        assert!(matches!(
            parse_token_response(&response(200, &dup), NOW),
            Err(ResponseError::DuplicateResourceServer { .. })
        ));
        let mut bad_other = ok.clone();
        bad_other["other_tokens"] = json!([{"access_token": 5}]);
        assert!(matches!(
            parse_token_response(&response(200, &bad_other), NOW),
            Err(ResponseError::InvalidField { field }) if field.starts_with("other_tokens[0]")
        ));
    }

    #[test]
    fn tokens_expired_on_arrival_and_non_bearer_tokens_are_refused() {
        let ok = json!({"access_token": "a", "scope": "s", "expires_in": 60,
                        "resource_server": "rs", "token_type": "Bearer"});
        assert!(parse_token_response(&response(200, &ok), NOW).is_ok());
        for expires_in in [json!(0), json!(-5), Value::Null] {
            let mut expired = ok.clone();
            expired["expires_in"] = expires_in.clone();
            assert_eq!(
                parse_token_response(&response(200, &expired), NOW),
                Err(ResponseError::ExpiredOnArrival {
                    field: "expires_in".into()
                }),
                "{expires_in}"
            );
        }
        let mut missing = ok.clone();
        missing.as_object_mut().unwrap().remove("expires_in");
        assert!(matches!(
            parse_token_response(&response(200, &missing), NOW),
            Err(ResponseError::ExpiredOnArrival { .. })
        ));
        let mut nested = ok.clone();
        let mut other = ok.clone();
        other["resource_server"] = json!("other");
        other["expires_in"] = json!(0);
        nested["other_tokens"] = json!([other]);
        assert_eq!(
            parse_token_response(&response(200, &nested), NOW),
            Err(ResponseError::ExpiredOnArrival {
                field: "other_tokens[0].expires_in".into()
            })
        );
        let mut mac = ok.clone();
        mac["token_type"] = json!("MAC");
        assert_eq!(
            parse_token_response(&response(200, &mac), NOW),
            Err(ResponseError::NotBearer {
                token_type: "MAC".into()
            })
        );
        let mut lower = ok.clone();
        lower["token_type"] = json!("bearer");
        assert!(parse_token_response(&response(200, &lower), NOW).is_ok());
    }

    #[test]
    fn error_statuses_error_documents_and_html_are_typed() {
        let err = parse_token_response(&response(401, &json!({"error": "invalid_grant"})), NOW)
            .unwrap_err();
        assert!(err.is_invalid_grant());
        let err = parse_token_response(&response(200, &json!({"error": "invalid_grant"})), NOW)
            .unwrap_err();
        assert!(matches!(err, ResponseError::ErrorInSuccess(_)));
        assert!(err.is_invalid_grant());
        let html = http::Response::builder()
            .status(200)
            .header("content-type", "text/html")
            .body(b"<html>hello</html>".to_vec())
            .unwrap();
        assert_eq!(
            parse_token_response(&html, NOW),
            Err(ResponseError::NotJson {
                status: 200,
                content_type: Some("text/html".into())
            })
        );
        let gateway = http::Response::builder()
            .status(503)
            .body(b"<html/>".to_vec())
            .unwrap();
        assert!(
            parse_token_response(&gateway, NOW)
                .unwrap_err()
                .is_retryable()
        );
    }

    #[test]
    fn dependent_tokens_are_an_array() {
        let body = json!([
            {"scope": "g", "access_token": "a", "token_type": "bearer", "expires_in": 120, "resource_server": "groups.api.globus.org"}
        ]);
        let parsed = parse_dependent_token_response(&response(200, &body), NOW).unwrap();
        assert_eq!(parsed.tokens()[0].expires_at, UnixTime::from_secs(1_120));
        assert_eq!(parsed.tokens()[0].identity_id, None);
        assert!(parse_dependent_token_response(&response(200, &json!({})), NOW).is_err());
    }

    #[test]
    fn error_messages_do_not_leak_tokens() {
        let body = json!({"access_token": "SECRET_AT", "scope": 5, "expires_in": 1, "resource_server": "rs"});
        let err = parse_token_response(&response(200, &body), NOW).unwrap_err();
        assert!(!err.to_string().contains("SECRET_AT"));
        assert!(!format!("{err:?}").contains("SECRET_AT"));
    }
}
