//! Sending Globus Auth requests: the [`HttpClient`] trait, the ureq client,
//! and bounded retries.

use std::time::{Duration, Instant};

use globus_app_proto::request::AuthRequest;

/// The `http` crate's request and response types, which this crate's
/// clients and apps take and return, re-exported: depending on this crate
/// alone is enough to build a request.
pub use ::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, header,
};

/// The largest response body the bundled clients accept, in bytes (10 MiB;
/// Globus Auth's largest answers, consents and JWKS, are a few KiB).
pub const MAX_RESPONSE_BODY: u64 = 10 * 1024 * 1024;

/// What kind of failure kept a request from getting a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The connection or the whole exchange took too long.
    Timeout,
    /// The connection was refused, reset or could not be made.
    Connect,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake or certificate check failed.
    Tls,
    /// The connection closed or was reset before any answer came: on a
    /// pooled keep-alive connection, the server closed it while idle just
    /// as the request went out, and nothing of the request was answered.
    Closed,
    /// Reading or writing the connection failed.
    Io,
    /// The response (headers or body) was larger than allowed.
    TooLarge,
    /// The peer did not speak valid HTTP.
    Protocol,
    /// The request could not be sent as built (bad URL, bad header).
    InvalidRequest,
    /// Anything else.
    Other,
}

impl TransportErrorKind {
    /// The kind of an I/O error from a connection.
    pub fn of_io(error: &std::io::Error) -> Self {
        use std::io::ErrorKind;
        match error.kind() {
            ErrorKind::TimedOut => Self::Timeout,
            ErrorKind::ConnectionRefused
            | ErrorKind::NotConnected
            | ErrorKind::AddrNotAvailable => Self::Connect,
            ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof => Self::Closed,
            _ => Self::Io,
        }
    }
}

impl std::fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Timeout => "timed out",
            Self::Connect => "could not connect",
            Self::Closed => "lost its connection before an answer",
            Self::Dns => "could not resolve the host",
            Self::Tls => "TLS failed",
            Self::Io => "connection I/O failed",
            Self::TooLarge => "response too large",
            Self::Protocol => "invalid HTTP",
            Self::InvalidRequest => "invalid request",
            Self::Other => "failed",
        })
    }
}

/// A request that got no HTTP response (connection refused, timeout, TLS
/// failure, body too large). The underlying client's error is the
/// [`source()`](std::error::Error::source); messages contain no tokens.
#[derive(Debug, thiserror::Error)]
#[error("request to {url} {kind}")]
#[non_exhaustive]
pub struct TransportError {
    kind: TransportErrorKind,
    url: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl TransportError {
    /// A failure of `kind` for the request to `uri` (its query is dropped:
    /// it may carry a code), caused by `source`.
    pub fn new(
        kind: TransportErrorKind,
        uri: &http::Uri,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            url: url_without_query(uri),
            source: Some(source.into()),
        }
    }

    /// What kind of failure it was.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// The URL, without its query.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether it timed out.
    pub fn is_timeout(&self) -> bool {
        self.kind == TransportErrorKind::Timeout
    }

    /// Whether the connection could not be made.
    pub fn is_connect(&self) -> bool {
        matches!(
            self.kind,
            TransportErrorKind::Connect | TransportErrorKind::Dns
        )
    }

    /// Whether another attempt may get a response.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self.kind,
            TransportErrorKind::TooLarge | TransportErrorKind::InvalidRequest
        )
    }
}

fn url_without_query(uri: &http::Uri) -> String {
    format!(
        "{}://{}{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map_or("", http::uri::Authority::as_str),
        uri.path()
    )
}

/// Sends one HTTP request and returns the response, whatever its status
/// (a 400 `invalid_grant` is a response, not an error). Must not follow
/// redirects.
pub trait HttpClient: Send + Sync {
    /// Sends `request`.
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError>;
}

impl<F> HttpClient for F
where
    F: Fn(http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, TransportError> + Send + Sync,
{
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        self(request)
    }
}

/// The default client: ureq 3, configured for OAuth: no redirects
/// followed, every status returned as a response, a 10 s connect timeout, a
/// 60 s overall timeout, a fresh connection per request, and bodies of at
/// most 10 MiB.
///
/// TLS is rustls 0.23 with Mozilla's roots (feature `ureq`); the platform's
/// verifier with feature `tls-platform-verifier`; native-tls with feature
/// `tls-native`. Bring your own [`ureq::Agent`] (a proxy, your own roots)
/// with [`from_agent`](Self::from_agent).
#[cfg(feature = "ureq")]
#[derive(Debug, Clone)]
pub struct UreqClient {
    agent: ureq::Agent,
}

#[cfg(feature = "ureq")]
impl Default for UreqClient {
    fn default() -> Self {
        Self::new(Duration::from_secs(60))
    }
}

#[cfg(feature = "ureq")]
impl UreqClient {
    /// A client whose calls time out after `timeout` overall.
    pub fn new(timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .tls_config(tls_config())
            .timeout_global(Some(timeout))
            .timeout_connect(Some(Duration::from_secs(10).min(timeout)))
            // Token requests are rare: a fresh connection each time avoids
            // reusing a pooled one the server has since closed.
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .build()
            .into();
        Self { agent }
    }

    /// Sends through `agent`, with its TLS, proxy and timeouts. Whatever
    /// it is configured to do, each request follows no redirect and returns
    /// every status as a response (set per request), as OAuth requires.
    pub fn from_agent(agent: ureq::Agent) -> Self {
        Self { agent }
    }
}

/// The TLS stack and roots the features choose.
#[cfg(feature = "ureq")]
pub(crate) fn tls_config() -> ureq::tls::TlsConfig {
    use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
    let builder = TlsConfig::builder();
    #[cfg(feature = "tls-native")]
    let builder = builder.provider(TlsProvider::NativeTls);
    #[cfg(not(feature = "tls-native"))]
    let builder = builder.provider(TlsProvider::Rustls);
    #[cfg(feature = "tls-platform-verifier")]
    let builder = builder.root_certs(RootCerts::PlatformVerifier);
    #[cfg(not(feature = "tls-platform-verifier"))]
    let builder = builder.root_certs(RootCerts::WebPki);
    builder.build()
}

#[cfg(feature = "ureq")]
pub(crate) fn ureq_kind(error: &ureq::Error) -> TransportErrorKind {
    match error {
        ureq::Error::Timeout(_) => TransportErrorKind::Timeout,
        ureq::Error::HostNotFound => TransportErrorKind::Dns,
        ureq::Error::ConnectionFailed => TransportErrorKind::Connect,
        ureq::Error::Io(io) => TransportErrorKind::of_io(io),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::TlsRequired => {
            TransportErrorKind::Tls
        }
        ureq::Error::BodyExceedsLimit(_) | ureq::Error::LargeResponseHeader(..) => {
            TransportErrorKind::TooLarge
        }
        ureq::Error::Protocol(_) | ureq::Error::BodyStalled => TransportErrorKind::Protocol,
        ureq::Error::Http(_) | ureq::Error::BadUri(_) => TransportErrorKind::InvalidRequest,
        _ => TransportErrorKind::Other,
    }
}

#[cfg(feature = "ureq")]
impl HttpClient for UreqClient {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let uri = request.uri().clone();
        let fail = |e: ureq::Error| TransportError::new(ureq_kind(&e), &uri, e);
        let response = ureq::RequestExt::with_agent(request, &self.agent)
            .configure()
            .http_status_as_error(false)
            .max_redirects(0)
            .run()
            .map_err(fail)?;
        let (parts, mut body) = response.into_parts();
        let bytes = body
            .with_config()
            .limit(MAX_RESPONSE_BODY)
            .read_to_vec()
            .map_err(fail)?;
        Ok(http::Response::from_parts(parts, bytes))
    }
}

/// How often and how long to retry a request that failed transiently.
///
/// ```
/// use std::time::Duration;
/// use globus_app_blocking::http::RetryPolicy;
/// let patient = RetryPolicy::new(10, Duration::from_secs(30), Duration::from_secs(120));
/// assert_eq!(patient.max_attempts, 10);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// No retry starts after this much time since the first attempt.
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    /// Up to 6 attempts (5 retries, as the Python SDK), waits of at most
    /// 10 s, and no retry after 30 s.
    fn default() -> Self {
        Self {
            max_attempts: 6,
            max_delay: Duration::from_secs(10),
            max_total: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Up to `max_attempts` attempts in all, waits of at most `max_delay`,
    /// and no retry after `max_total` since the first attempt.
    pub const fn new(max_attempts: u32, max_delay: Duration, max_total: Duration) -> Self {
        Self {
            max_attempts,
            max_delay,
            max_total,
        }
    }

    /// No retries.
    pub const NEVER: Self = Self {
        max_attempts: 1,
        max_delay: Duration::ZERO,
        max_total: Duration::ZERO,
    };

    /// The wait before retry number `retry` (0-based): the server's
    /// `Retry-After` seconds if given, else exponential backoff with jitter,
    /// `(0.25 + 0.5 * jitter) * 2^retry` seconds, capped at `max_delay`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let backoff = Duration::from_secs_f64(
            (0.25 + 0.5 * jitter.clamp(0.0, 1.0)) * f64::from(1u32 << retry.min(16)),
        );
        retry_after.unwrap_or(backoff).min(self.max_delay)
    }
}

/// Whether a response status is worth retrying.
fn transient(status: http::StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

fn retry_after<B>(response: &http::Response<B>) -> Option<Duration> {
    let value = response
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    globus_app_proto::service::parse_retry_after(value)
}

/// A copy of a request, for another attempt (`http::Request` is not `Clone`).
pub fn copy_request(request: &http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    // Jitter only spreads retries out; without randomness, use the midpoint.
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
}

/// The retry decisions for one request, shared by the blocking and async
/// drivers: after each attempt, [`next_delay`](Self::next_delay) says how
/// long to wait before the next one, or that this result is final.
#[derive(Debug)]
pub struct Retries {
    retryable: bool,
    policy: RetryPolicy,
    started: Instant,
    attempt_started: Instant,
    retry: u32,
    /// Whether the transport reuses pooled connections (a service
    /// client's): a connection closed before any answer is then sent
    /// again at once.
    pooled: bool,
    /// How many times the request was sent again after its connection
    /// closed before any answer ([`MAX_CLOSED_CONNECTION_RETRIES`]).
    resent_after_close: u32,
}

/// How many times a request on a pooled connection is sent again, at once
/// and whatever its method, after its connection closed before any answer
/// came (the server had closed it while idle as the request went out).
pub const MAX_CLOSED_CONNECTION_RETRIES: u32 = 2;

impl Retries {
    /// Decisions for a request (see [`AuthRequest::is_retryable`]).
    pub fn new(request: &AuthRequest, policy: RetryPolicy) -> Self {
        crate::trace::sending(request);
        Self::for_request(request.is_retryable(), policy)
    }

    /// Decisions for a request that may be sent again only if `retryable`
    /// (a service request: idempotent).
    pub fn for_request(retryable: bool, policy: RetryPolicy) -> Self {
        let now = Instant::now();
        Self {
            retryable,
            policy,
            started: now,
            attempt_started: now,
            retry: 0,
            pooled: false,
            resent_after_close: 0,
        }
    }

    /// [`for_request`](Self::for_request) on a transport that reuses
    /// pooled keep-alive connections (the service clients'): a request
    /// whose connection closes before any answer is sent again at once on
    /// a new connection, whatever its method, up to
    /// [`MAX_CLOSED_CONNECTION_RETRIES`] times, besides the policy's
    /// retries. (The Python SDK sends again after any connection error,
    /// whatever the method; a server that carried out a request and died
    /// without a byte of answer would see it twice, as with Python.)
    pub fn for_pooled_request(retryable: bool, policy: RetryPolicy) -> Self {
        Self {
            pooled: true,
            ..Self::for_request(retryable, policy)
        }
    }

    /// The wait before another attempt after `result`, or `None` to return
    /// it: retried are 429, 500, 502, 503, 504 and transport errors, within
    /// the attempt and time limits, honouring `Retry-After`.
    pub fn next_delay<B>(
        &mut self,
        result: &Result<http::Response<B>, TransportError>,
    ) -> Option<Duration> {
        crate::trace::answered(result, self.attempt_started.elapsed());
        if self.pooled
            && self.resent_after_close < MAX_CLOSED_CONNECTION_RETRIES
            && matches!(result, Err(e) if e.kind() == TransportErrorKind::Closed)
        {
            self.resent_after_close += 1;
            self.attempt_started = Instant::now();
            return Some(Duration::ZERO);
        }
        let transient_result = match result {
            Ok(response) => transient(response.status()),
            Err(_) => true,
        };
        if !self.retryable || !transient_result || self.retry + 1 >= self.policy.max_attempts {
            return None;
        }
        let delay = self.policy.delay(
            self.retry,
            result.as_ref().ok().and_then(retry_after),
            jitter(),
        );
        if self.started.elapsed().saturating_add(delay) > self.policy.max_total {
            return None;
        }
        self.retry += 1;
        let cause: &dyn std::fmt::Display = match result {
            Ok(response) => &response.status(),
            Err(error) => error,
        };
        crate::trace::retrying(self.retry + 1, cause, delay);
        self.attempt_started = crate::adapter::instant_after(delay);
        Some(delay)
    }
}

/// Sends a request with [`Retries`], sleeping with `sleep` between attempts.
pub fn send_with_retries(
    client: &dyn HttpClient,
    request: AuthRequest,
    policy: RetryPolicy,
    sleep: &dyn Fn(Duration),
) -> Result<http::Response<Vec<u8>>, TransportError> {
    let mut retries = Retries::new(&request, policy);
    let request = request.into_http();
    loop {
        let result = client.send(copy_request(&request));
        match retries.next_delay(&result) {
            Some(delay) => sleep(delay),
            None => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_back_off_with_jitter_and_respect_caps_and_retry_after() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(0, None, 0.0), Duration::from_millis(250));
        assert_eq!(policy.delay(0, None, 1.0), Duration::from_millis(750));
        assert_eq!(policy.delay(2, None, 0.5), Duration::from_secs(2));
        assert_eq!(policy.delay(10, None, 0.5), policy.max_delay);
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(3)), 0.5),
            Duration::from_secs(3)
        );
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(3600)), 0.5),
            policy.max_delay
        );
    }

    #[test]
    fn retries_stop_at_the_attempt_limit_and_never_for_a_code_exchange() {
        let base = url::Url::parse("http://127.0.0.1:9/").unwrap();
        let client = globus_app_proto::request::LoginClient::native("c", base);
        let calls = std::sync::atomic::AtomicU32::new(0);
        let always_503 = |_request: http::Request<Vec<u8>>| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(http::Response::builder()
                .status(503)
                .body(Vec::new())
                .unwrap())
        };
        let policy = RetryPolicy {
            max_attempts: 3,
            max_delay: Duration::ZERO,
            max_total: Duration::from_secs(5),
        };
        let refresh = client
            .refresh(&globus_app_proto::secret::RefreshToken::new("r"))
            .unwrap();
        let response = send_with_retries(&always_503, refresh, policy, &|_| {}).unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(calls.swap(0, std::sync::atomic::Ordering::Relaxed), 3);
        let code = globus_app_proto::secret::AuthorizationCode::new("c");
        let verifier = globus_app_proto::secret::PkceVerifier::new("v".repeat(43));
        let exchange = client.exchange_code(&code, Some(&verifier), "r").unwrap();
        send_with_retries(&always_503, exchange, policy, &|_| {}).unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 1);
    }
}
