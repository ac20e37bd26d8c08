//! Service clients' decisions, without I/O: which service a client talks
//! to and where ([`ServiceSpec`], [`ServiceSpec::base_url`]), the requests
//! of each typed client ([`transfer`], [`auth`], [`groups`], [`search`]) as
//! [`ServiceRequest`]s, where a token may be sent
//! ([`ServiceRequest::to_http`] refuses any other origin), how a response
//! is read ([`ServiceResponse`], [`ServiceError`]), when to renew or log in
//! and send again ([`AuthorizationRetries`]), and paging ([`paging`]).
//!
//! The adapters' service clients send what these build and feed back what
//! they receive.

pub mod auth;
pub mod groups;
pub mod paging;
pub mod search;
pub mod transfer;

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;

use http::{HeaderValue, Method};
use serde_json::Value;
use url::Url;

use crate::app::{GetAuthorizer, GlobusApp, ServiceVerdict};
use crate::auth_params::AuthorizationParameters;
use crate::environment::{Environment, EnvironmentError};
use crate::gare::find_gare;
use crate::origin::{TokenOrigin, TokenOriginError};
use crate::redaction::bounded;
pub use crate::route::path_segment;
use crate::route::{is_dot_segment, is_path_byte, percent_escapes_are_whole};
use crate::scope::well_known;
use crate::secret::AccessToken;

/// The largest answer a service client reads whole by default (its
/// `request`), in bytes: 256 MiB. Larger answers are a typed error; set
/// another limit on the client's builder, or stream the answer.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 256 << 20;

/// The wait a `Retry-After` header asks for: its delay in seconds (the
/// form Globus services send; an HTTP date is not read), or `None` for
/// anything else. Never more than `u64::MAX` seconds.
pub fn parse_retry_after(value: &str) -> Option<std::time::Duration> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits only: too many is the longest wait there is.
    Some(std::time::Duration::from_secs(
        value.parse::<u64>().unwrap_or(u64::MAX),
    ))
}

/// Whether an answer's `Content-Length` already says it is larger than
/// `limit` bytes (then its body is not read at all).
pub fn declared_larger_than(headers: &http::HeaderMap, limit: u64) -> bool {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|length| length > limit)
}

/// The `User-Agent` of every service request: this library and its
/// version.
pub const USER_AGENT: &str = concat!("globus-app-rust/", env!("CARGO_PKG_VERSION"));

/// A Globus service a client talks to: its name (as in
/// `GLOBUS_SDK_SERVICE_URL_<NAME>`), resource server, and the scopes a
/// client of it requires by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceSpec {
    /// `transfer`, `auth`, `groups`, `search`, ...
    pub name: &'static str,
    /// The resource server its tokens are for.
    pub resource_server: &'static str,
    /// The scopes a client of it adds to its app unless told otherwise.
    pub default_scopes: &'static [&'static str],
}

/// Globus Transfer.
pub const TRANSFER: ServiceSpec = ServiceSpec {
    name: "transfer",
    resource_server: well_known::transfer::RESOURCE_SERVER,
    default_scopes: &[well_known::transfer::ALL],
};

/// Globus Auth's service API (identities, userinfo).
pub const AUTH: ServiceSpec = ServiceSpec {
    name: "auth",
    resource_server: well_known::auth::RESOURCE_SERVER,
    default_scopes: &[
        well_known::auth::OPENID,
        well_known::auth::PROFILE,
        well_known::auth::EMAIL,
    ],
};

/// Globus Groups.
pub const GROUPS: ServiceSpec = ServiceSpec {
    name: "groups",
    resource_server: well_known::groups::RESOURCE_SERVER,
    default_scopes: &[well_known::groups::VIEW_MY_GROUPS_AND_MEMBERSHIPS],
};

/// Globus Search.
pub const SEARCH: ServiceSpec = ServiceSpec {
    name: "search",
    resource_server: well_known::search::RESOURCE_SERVER,
    default_scopes: &[well_known::search::SEARCH],
};

impl ServiceSpec {
    /// The service `name` (as in `GLOBUS_SDK_SERVICE_URL_<NAME>`), whose
    /// tokens are for `resource_server`, requiring `default_scopes` of the
    /// apps its clients are bound to unless told otherwise.
    pub const fn new(
        name: &'static str,
        resource_server: &'static str,
        default_scopes: &'static [&'static str],
    ) -> Self {
        Self {
            name,
            resource_server,
            default_scopes,
        }
    }

    /// The environment variable that overrides the service's URL:
    /// `GLOBUS_SDK_SERVICE_URL_<NAME>`.
    pub fn url_variable(&self) -> String {
        format!("GLOBUS_SDK_SERVICE_URL_{}", self.name.to_ascii_uppercase())
    }

    /// The service's base URL in `environment`, or `override_url` (the
    /// value of [`url_variable`](Self::url_variable)) when set. For the
    /// auth service the app's own Auth URL is used, as the Python SDK does.
    ///
    /// The URL must pass the token policy ([`crate::origin`]): https, or
    /// plain http to a loopback address or one of `plain_http_hosts`, and
    /// never plain http to a Globus production host.
    pub fn base_url(
        &self,
        environment: Environment,
        override_url: Option<&str>,
        plain_http_hosts: &BTreeSet<String>,
    ) -> Result<Url, ServiceRequestError> {
        let url = environment
            .service_url(self.name, override_url)
            .map_err(ServiceRequestError::Environment)?;
        TokenOrigin::of_url(&url, plain_http_hosts)?;
        Ok(url)
    }
}

/// A request that cannot be built or sent with a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceRequestError {
    /// The environment or URL override cannot be used.
    #[error(transparent)]
    Environment(EnvironmentError),
    /// The token policy refuses the URL: plain http, another scheme,
    /// credentials in the authority ([`crate::origin`]).
    #[error(transparent)]
    TokenOrigin(#[from] TokenOriginError),
    /// The request's URL is not under the client's base URL (another
    /// scheme, host or port, or outside its path): the token is not sent.
    #[error("refusing to send a token to {url}: it is not under the client's base URL {base}")]
    OutsideBaseUrl {
        /// The URL requested.
        url: String,
        /// The client's base URL.
        base: String,
    },
    /// An id that cannot be one path segment (empty, `.` or `..`): no
    /// encoding keeps it inside its route.
    #[error("invalid id {id:?} in the route {route}: an id must be one path segment")]
    InvalidId {
        /// The id (cut to 100 characters).
        id: String,
        /// The route it was for.
        route: String,
    },
    /// A path, query or body that does not make a request.
    #[error("invalid request: {reason}")]
    Invalid {
        /// Why.
        reason: String,
    },
}

/// A service request, relative to a client's base URL: method, path,
/// query parameters and JSON body, and whether it may be sent twice.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ServiceRequest {
    /// The method.
    pub method: Method,
    /// The path, relative to the base URL (`/v0.10/endpoint_search`).
    pub path: String,
    /// Query parameters, in order.
    pub query: Vec<(String, String)>,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// Whether sending it twice does no harm: GET, PUT, DELETE by default;
    /// a POST only when the service makes it so (a transfer submission
    /// carries its `submission_id`).
    pub idempotent: bool,
    /// Why the request cannot be sent, found while it was built (an id
    /// that cannot be a path segment): [`url`](Self::url) returns it.
    refusal: Option<ServiceRequestError>,
}

impl ServiceRequest {
    /// A request of `method` to `path`.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            idempotent,
            refusal: None,
        }
    }

    /// A request of `method` to `template` with each `{}` replaced by the
    /// next of `ids`, percent-encoded as exactly one path segment
    /// ([`path_segment`]): `route(Method::GET, "/v0.10/task/{}", &[id])`.
    /// An id that cannot be one segment (empty, `.` or `..`) makes the
    /// request [`ServiceRequestError::InvalidId`] when it is sent.
    ///
    /// ```
    /// use globus_app_proto::service::ServiceRequest;
    /// use http::Method;
    ///
    /// let base = url::Url::parse("https://transfer.api.globus.org/").unwrap();
    /// let request = ServiceRequest::route(Method::GET, "/v0.10/task/{}", &["..\\x y"]);
    /// assert_eq!(request.path, "/v0.10/task/..%5Cx%20y");
    /// assert!(ServiceRequest::route(Method::GET, "/v0.10/task/{}", &[".."]).url(&base).is_err());
    /// ```
    pub fn route(method: Method, template: &str, ids: &[&str]) -> Self {
        let mut path =
            String::with_capacity(template.len() + ids.iter().map(|id| id.len()).sum::<usize>());
        let mut refusal = None;
        let mut ids = ids.iter();
        let mut pieces = template.split("{}");
        path.push_str(pieces.next().unwrap_or_default());
        for piece in pieces {
            let id = ids.next().copied().unwrap_or_default();
            if matches!(id, "" | "." | "..") && refusal.is_none() {
                refusal = Some(ServiceRequestError::InvalidId {
                    id: id.to_owned(),
                    route: template.to_owned(),
                });
            }
            path.push_str(&path_segment(id));
            path.push_str(piece);
        }
        let mut request = Self::new(method, path);
        request.refusal = refusal;
        request
    }

    /// `GET path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// `POST path` with a JSON body.
    pub fn post(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::POST, path).json(body)
    }

    /// `PUT path` with a JSON body.
    pub fn put(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::PUT, path).json(body)
    }

    /// `DELETE path`.
    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path)
    }

    /// Adds a query parameter.
    #[must_use]
    #[allow(clippy::needless_pass_by_value)] // numbers and strings alike
    pub fn query(mut self, name: &str, value: impl ToString) -> Self {
        self.query.push((name.to_owned(), value.to_string()));
        self
    }

    /// Adds a query parameter if `value` is given.
    #[must_use]
    pub fn query_opt(self, name: &str, value: Option<impl ToString>) -> Self {
        match value {
            Some(value) => self.query(name, value),
            None => self,
        }
    }

    /// Adds query parameters, in order.
    #[must_use]
    pub fn queries<'a>(mut self, extra: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        for (name, value) in extra {
            self.query.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// Sets (replaces) a query parameter.
    #[allow(clippy::needless_pass_by_value)] // numbers and strings alike
    pub fn set_query(&mut self, name: &str, value: impl ToString) {
        self.query.retain(|(n, _)| n != name);
        self.query.push((name.to_owned(), value.to_string()));
    }

    /// The value of a query parameter.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The JSON body.
    #[must_use]
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Whether it may be sent twice (see [`idempotent`](Self::idempotent)).
    #[must_use]
    pub fn with_idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// The full URL of this request under `base`. The path is joined as a
    /// relative reference, so it can neither leave `base`'s origin nor its
    /// path (`..` segments are refused).
    ///
    /// The path must already be a URL path: characters outside the path
    /// grammar (a space, `\\`, a control, non-ASCII: ids go through
    /// [`path_segment`]), a `.` or `..` segment in any encoding, an empty
    /// segment before the last, or a path the URL parser would read
    /// otherwise than as written is [`ServiceRequestError::Invalid`].
    pub fn url(&self, base: &Url) -> Result<Url, ServiceRequestError> {
        if let Some(refusal) = &self.refusal {
            return Err(refusal.clone());
        }
        let invalid = |why: &str| ServiceRequestError::Invalid {
            reason: format!("path {:?} {why}", crate::redaction::bounded(&self.path)),
        };
        let relative = self.path.strip_prefix('/').unwrap_or(&self.path);
        if !relative.bytes().all(is_path_byte) || !percent_escapes_are_whole(relative) {
            return Err(invalid(
                "has characters outside a URL path (encode ids with path_segment)",
            ));
        }
        let segments: Vec<&str> = relative.split('/').collect();
        if segments.iter().any(|segment| is_dot_segment(segment))
            || segments[..segments.len().saturating_sub(1)]
                .iter()
                .any(|segment| segment.is_empty())
        {
            return Err(invalid("is not a route under the base URL"));
        }
        let mut url = base.join(relative).map_err(|e| invalid(&e.to_string()))?;
        check_destination(base, &url)?;
        if url.path().strip_prefix(base.path()) != Some(relative) {
            return Err(invalid("does not stay as written under the base URL"));
        }
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&self.query);
        }
        Ok(url)
    }

    /// The `http::Request` to send, without authorization (the driver
    /// adds it): the URL under `base`, `User-Agent`, and the JSON body.
    pub fn to_http(&self, base: &Url) -> Result<http::Request<Vec<u8>>, ServiceRequestError> {
        let url = self.url(base)?;
        let mut builder = http::Request::builder()
            .method(self.method.clone())
            .uri(url.as_str())
            .header(http::header::USER_AGENT, USER_AGENT)
            .header(http::header::ACCEPT, "application/json");
        let body = match &self.body {
            Some(body) => {
                builder = builder.header(http::header::CONTENT_TYPE, "application/json");
                serde_json::to_vec(body).map_err(|e| ServiceRequestError::Invalid {
                    reason: e.to_string(),
                })?
            }
            None => Vec::new(),
        };
        builder
            .body(body)
            .map_err(|e| ServiceRequestError::Invalid {
                reason: e.to_string(),
            })
    }
}

/// Whether a token for `base` may be sent to `url`: same scheme, host
/// (compared normalised) and port, and a path under `base`'s.
pub fn check_destination(base: &Url, url: &Url) -> Result<(), ServiceRequestError> {
    if TokenOrigin::is_under(base, url) {
        Ok(())
    } else {
        Err(ServiceRequestError::OutsideBaseUrl {
            url: url.to_string(),
            base: base.to_string(),
        })
    }
}

/// A service's successful answer: its status and JSON, kept whole so that
/// no field is lost.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ServiceResponse {
    /// The status (2xx).
    pub status: http::StatusCode,
    /// The JSON body (`null` for an empty body).
    pub data: Value,
}

impl ServiceResponse {
    /// Reads a response: a 2xx with a JSON body (or none) is the answer;
    /// anything else is a [`ServiceError`].
    pub fn from_http(response: &http::Response<Vec<u8>>) -> Result<Self, ServiceError> {
        let status = response.status();
        if !status.is_success() {
            return Err(ServiceError::from_http(response));
        }
        let body = response.body();
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self {
                status,
                data: Value::Null,
            });
        }
        if !is_json(response.headers().get(http::header::CONTENT_TYPE)) {
            return Err(ServiceError::malformed(
                status,
                response.headers(),
                body,
                "the response is not JSON (content type)",
            ));
        }
        match serde_json::from_slice(body) {
            Ok(data) => Ok(Self { status, data }),
            Err(e) => Err(ServiceError::malformed(
                status,
                response.headers(),
                body,
                &format!("the response is not valid JSON: {e}"),
            )),
        }
    }

    /// The field `key` of the JSON object, or a typed error naming it.
    pub fn field(&self, key: &str) -> Result<&Value, ServiceError> {
        self.data
            .get(key)
            .ok_or_else(|| ServiceError::missing_field(self.status, key))
    }

    /// The string field `key`.
    pub fn str_field(&self, key: &str) -> Result<&str, ServiceError> {
        self.field(key)?
            .as_str()
            .ok_or_else(|| ServiceError::missing_field(self.status, key))
    }
}

fn is_json(content_type: Option<&HeaderValue>) -> bool {
    content_type
        .and_then(|value| value.to_str().ok())
        .is_none_or(|value| {
            let essence = value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        })
}

/// A service's error: the HTTP status, the Globus error `code`, `message`
/// and `request_id`, the authorization parameters of a GARE, and the body
/// (bounded, for messages; never a token: services do not echo them).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status} {code}: {message}")]
#[non_exhaustive]
pub struct ServiceError {
    /// The HTTP status.
    pub status: http::StatusCode,
    /// The Globus error code (`ClientError.NotFound`, `ConsentRequired`),
    /// or `Error` when the body has none.
    pub code: String,
    /// The message, or the status's reason.
    pub message: String,
    /// The request id, to quote to Globus support.
    pub request_id: Option<String>,
    /// A GARE's authorization parameters: what a new login must satisfy.
    pub authorization_parameters: Option<Box<AuthorizationParameters>>,
    /// The body's JSON, if it was JSON.
    pub body: Option<Box<Value>>,
}

impl ServiceError {
    /// The error of a non-2xx response.
    pub fn from_http(response: &http::Response<Vec<u8>>) -> Self {
        let status = response.status();
        let body: Option<Box<Value>> = serde_json::from_slice(response.body()).ok();
        let first = body.as_ref().map(|body| {
            body.get("errors")
                .and_then(Value::as_array)
                .and_then(|errors| errors.first())
                .unwrap_or(body)
        });
        let text = |key: &str| {
            first
                .and_then(|error| error.get(key).or_else(|| body.as_ref()?.get(key)))
                .and_then(Value::as_str)
                .map(bounded)
        };
        let authorization_parameters = body
            .as_ref()
            .and_then(|body| find_gare(body))
            .map(|gare| Box::new(gare.authorization_parameters));
        Self {
            status,
            code: text("code").unwrap_or_else(|| "Error".to_owned()),
            message: text("message")
                .or_else(|| text("detail"))
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned()),
            request_id: text("request_id").or_else(|| {
                response
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(bounded)
            }),
            authorization_parameters,
            body,
        }
    }

    fn malformed(
        status: http::StatusCode,
        headers: &http::HeaderMap,
        body: &[u8],
        reason: &str,
    ) -> Self {
        let _ = body;
        Self {
            status,
            code: "MalformedResponse".to_owned(),
            message: reason.to_owned(),
            request_id: headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(bounded),
            authorization_parameters: None,
            body: None,
        }
    }

    /// A 2xx answer without a field the client needs.
    pub fn missing_field(status: http::StatusCode, field: &str) -> Self {
        Self {
            status,
            code: "MalformedResponse".to_owned(),
            message: format!("the response has no valid {field:?}"),
            request_id: None,
            authorization_parameters: None,
            body: None,
        }
    }

    /// Whether the answer was not what the service's API promises
    /// (malformed JSON, a wrong content type, a missing field, a paging
    /// loop).
    pub fn is_malformed(&self) -> bool {
        self.code == "MalformedResponse"
    }
}

/// When a service refuses a request for its authorization: one renewal
/// (after a 401) and one login (after a GARE, or when a renewal cannot be
/// made without one), each at most once per request, in either order:
/// "401, then a GARE" is renewed, then logged in, then answered, in three
/// requests. A request never costs more than one login: an app whose
/// tokens have no refresh token logs in to replace a refused token, and a
/// GARE after that is the answer.
///
/// The adapters run the operations it builds ([`renewal`](Self::renewal),
/// [`authorization`](Self::authorization)), which share its login budget.
#[derive(Debug, Default)]
pub struct AuthorizationRetries {
    renewed: bool,
    /// Whether this request's one login is spent (by a GARE's login, or
    /// by a renewal or lookup that had to log in).
    logged_in: AtomicBool,
}

impl AuthorizationRetries {
    /// What to do with `response`.
    pub fn judge(&mut self, app: &GlobusApp, response: &http::Response<Vec<u8>>) -> ServiceVerdict {
        match app.judge_service_response(response, false) {
            ServiceVerdict::RenewAndRetry if !self.renewed => {
                self.renewed = true;
                ServiceVerdict::RenewAndRetry
            }
            ServiceVerdict::LoginAndRetry(params) if !*self.logged_in.get_mut() => {
                *self.logged_in.get_mut() = true;
                ServiceVerdict::LoginAndRetry(params)
            }
            _ => ServiceVerdict::Final,
        }
    }

    /// The renewal after a 401 ([`GlobusApp::get_authorizer_replacing`]):
    /// it logs in only if this request has not.
    pub fn renewal<'r>(
        &'r self,
        app: &'r GlobusApp,
        resource_server: &'r str,
        refused: &AccessToken,
    ) -> GetAuthorizer<'r> {
        app.get_authorizer_replacing(resource_server, refused)
            .with_login_budget(&self.logged_in)
    }

    /// The authorization to send again after a GARE's login
    /// ([`GlobusApp::get_authorizer`]), which logs in no more.
    pub fn authorization<'r>(
        &'r self,
        app: &'r GlobusApp,
        resource_server: &'r str,
    ) -> GetAuthorizer<'r> {
        app.get_authorizer(resource_server)
            .with_login_budget(&self.logged_in)
    }
}

#[cfg(test)]
mod tests;
