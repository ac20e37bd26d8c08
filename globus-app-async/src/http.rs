//! Sending Globus Auth requests asynchronously: the [`AsyncHttpClient`]
//! trait, the surf client (feature `surf`), and bounded retries.

use std::future::Future;
use std::time::Duration;

use std::sync::Arc;

use futures::future::BoxFuture;
use globus_app_blocking::http::{Retries, copy_request};
pub use globus_app_blocking::http::{RetryPolicy, TransportError, TransportErrorKind};
use globus_app_proto::request::AuthRequest;

/// The `http` crate's request and response types, which this crate's
/// clients and apps take and return, re-exported: depending on this crate
/// alone is enough to build a request.
pub use ::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, header,
};

/// Sends one HTTP request and returns the response whatever its status; must
/// not follow redirects. Closures returning a future implement it too, so any
/// client (reqwest, hyper, isahc...) plugs in:
///
/// ```
/// use globus_app_async::http::{AsyncHttpClient, TransportError};
///
/// // Adapting another client: convert the request, send, convert back.
/// let client = |request: http::Request<Vec<u8>>| async move {
///     let _ = request; // send it with your client here
///     Ok::<_, TransportError>(http::Response::builder().status(200).body(Vec::new()).unwrap())
/// };
/// fn takes(_: &dyn AsyncHttpClient) {}
/// takes(&client);
/// ```
#[async_trait::async_trait]
pub trait AsyncHttpClient: Send + Sync {
    /// Sends `request`.
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError>;
}

#[async_trait::async_trait]
impl<F, Fut> AsyncHttpClient for F
where
    F: Fn(http::Request<Vec<u8>>) -> Fut + Send + Sync,
    Fut: Future<Output = Result<http::Response<Vec<u8>>, TransportError>> + Send,
{
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        self(request).await
    }
}

/// Waits without blocking an executor thread.
pub trait Sleeper: Send + Sync {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// The default sleeper: sleeps on the `blocking` thread pool, so it works
/// under any executor (or none).
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadPoolSleeper;

impl Sleeper for ThreadPoolSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(blocking::unblock(move || std::thread::sleep(duration)))
    }
}

/// Any blocking [`HttpClient`](globus_app_blocking::http::HttpClient), its
/// calls run on the `blocking` thread pool: no runtime needed, and no
/// executor thread blocked. The default client is the blocking crate's
/// ureq client run this way ([`UnblockedHttp::ureq`], feature `ureq`):
/// token requests are rare, so a pool thread per request costs nothing
/// that matters, and the TLS stack is the current rustls.
#[derive(Debug, Clone)]
pub struct UnblockedHttp<C>(pub Arc<C>);

impl<C> UnblockedHttp<C> {
    /// Wraps a blocking client.
    pub fn new(client: C) -> Self {
        Self(Arc::new(client))
    }
}

#[cfg(feature = "ureq")]
impl UnblockedHttp<globus_app_blocking::http::UreqClient> {
    /// The blocking crate's ureq client (no redirects, every status a
    /// response, 60 s timeout) on the `blocking` pool: the default.
    pub fn ureq() -> Self {
        Self::new(globus_app_blocking::http::UreqClient::default())
    }
}

#[async_trait::async_trait]
impl<C: globus_app_blocking::http::HttpClient + 'static> AsyncHttpClient for UnblockedHttp<C> {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let client = Arc::clone(&self.0);
        blocking::unblock(move || client.send(request)).await
    }
}

/// surf over async-h1 with native-tls (the system's OpenSSL on Linux),
/// feature `surf`: for async-std users who already have surf.
/// surf returns every status as a response and follows no redirects unless
/// asked; a 60 s timeout applies, and each request uses a fresh connection.
///
/// **Unmaintained upstream:** surf (RUSTSEC-2025-0036, RUSTSEC-2026-0169)
/// and the async-std it brings (RUSTSEC-2025-0052) get no fixes. Prefer
/// the default client ([`UnblockedHttp::ureq`]) or `ReqwestClient` (feature
/// `reqwest`), which work under async-std too.
#[cfg(feature = "surf")]
#[derive(Debug, Clone)]
pub struct SurfClient {
    client: surf::Client,
}

#[cfg(feature = "surf")]
impl Default for SurfClient {
    fn default() -> Self {
        Self::new(Duration::from_secs(60))
    }
}

#[cfg(feature = "surf")]
impl SurfClient {
    /// A client whose calls time out after `timeout`.
    ///
    /// # Panics
    /// Never in practice: surf's configuration only fails for an invalid base URL, and none is set.
    pub fn new(timeout: Duration) -> Self {
        // Token requests are rare: no pooled connections to go stale.
        let client = surf::Config::new()
            .set_timeout(Some(timeout))
            .set_http_keep_alive(false)
            .try_into()
            .unwrap_or_else(|_| surf::Client::new());
        Self { client }
    }
}

#[cfg(feature = "surf")]
#[async_trait::async_trait]
impl AsyncHttpClient for SurfClient {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let uri = request.uri().clone();
        let fail =
            |kind: TransportErrorKind, message: String| TransportError::new(kind, &uri, message);
        // surf's errors are not `std::error::Error`: keep their text, and
        // classify them by the I/O error inside, if any.
        let failed = |e: surf::Error| {
            let kind = e
                .downcast_ref::<std::io::Error>()
                .map_or(TransportErrorKind::Other, TransportErrorKind::of_io);
            fail(kind, e.to_string())
        };
        let url = surf::Url::parse(&request.uri().to_string())
            .map_err(|e| fail(TransportErrorKind::InvalidRequest, e.to_string()))?;
        let method: surf::http::Method = request.method().as_str().parse().map_err(|_| {
            fail(
                TransportErrorKind::InvalidRequest,
                "unsupported method".into(),
            )
        })?;
        let mut outgoing = surf::Request::new(method, url);
        for (name, value) in request.headers() {
            if let Ok(value) = value.to_str() {
                outgoing.append_header(name.as_str(), value);
            }
        }
        // A body only where there is one: surf would label even an empty
        // GET body `application/octet-stream`.
        let body = request.into_body();
        if !body.is_empty() {
            outgoing.set_body(body);
        }
        let mut response = self.client.send(outgoing).await.map_err(failed)?;
        let body = response.body_bytes().await.map_err(failed)?;
        let mut converted = http::Response::new(body);
        *converted.status_mut() = http::StatusCode::from_u16(u16::from(response.status()))
            .map_err(|e| fail(TransportErrorKind::Protocol, e.to_string()))?;
        for (name, values) in response.iter() {
            for value in values {
                // Skip what `http` cannot carry: surf's async-h1 synthesises a
                // `date` value with the header name and CRLF inside it.
                if let (Ok(name), Ok(value)) = (
                    http::HeaderName::from_bytes(name.as_str().as_bytes()),
                    http::HeaderValue::from_str(value.as_str()),
                ) {
                    converted.headers_mut().append(name, value);
                }
            }
        }
        Ok(converted)
    }
}

/// reqwest with rustls 0.23 on ring and Mozilla's roots (feature
/// `reqwest`), for tokio users who already have reqwest: no redirects
/// followed, every status a response, a 60 s timeout (10 s to connect), no
/// pooled connections, bodies of at most 10 MiB. reqwest needs a tokio
/// runtime: use it under tokio only.
///
/// Bring your own client, its proxy and roots included, with
/// [`from_client`](Self::from_client); it must not follow redirects
/// (`redirect(reqwest::redirect::Policy::none())`).
#[cfg(feature = "reqwest")]
#[derive(Debug, Clone)]
pub struct ReqwestClient {
    client: reqwest::Client,
}

#[cfg(feature = "reqwest")]
impl ReqwestClient {
    /// A client whose calls time out after `timeout` overall.
    ///
    /// # Errors
    /// If rustls or reqwest cannot be configured (not expected with ring;
    /// reported rather than left to reqwest, which would panic without a
    /// process-wide crypto provider).
    pub fn new(timeout: Duration) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        // Token requests are rare: no pooled connection to go stale.
        Self::with_idle_connections(timeout, 0)
    }

    /// A client for service clients (an `AsyncServiceTransport`), whose
    /// calls time out after `timeout` and which keeps connections alive
    /// for reuse (reqwest's pool).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn pooled(timeout: Duration) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Self::with_idle_connections(timeout, usize::MAX)
    }

    fn with_idle_connections(
        timeout: Duration,
        idle_per_host: usize,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .pool_max_idle_per_host(idle_per_host)
            .tls_backend_preconfigured(tls)
            .build()?;
        Ok(Self { client })
    }

    /// Sends through `client` (which must not follow redirects).
    pub fn from_client(client: reqwest::Client) -> Self {
        Self { client }
    }
}

#[cfg(feature = "reqwest")]
impl ReqwestClient {
    /// Sends `request`; the answer's body is left to read.
    pub(crate) async fn execute(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<reqwest::Response, TransportError> {
        let uri = request.uri().clone();
        let fail = |e: reqwest::Error| TransportError::new(reqwest_kind(&e), &uri, e);
        let request = reqwest::Request::try_from(request).map_err(fail)?;
        self.client.execute(request).await.map_err(fail)
    }
}

#[cfg(feature = "reqwest")]
fn reqwest_kind(error: &reqwest::Error) -> TransportErrorKind {
    if error.is_timeout() {
        TransportErrorKind::Timeout
    } else if error.is_connect() {
        TransportErrorKind::Connect
    } else if error.is_builder() {
        TransportErrorKind::InvalidRequest
    } else if error.is_body() || error.is_decode() {
        TransportErrorKind::Protocol
    } else if error.is_request() {
        TransportErrorKind::Io
    } else {
        TransportErrorKind::Other
    }
}

#[cfg(feature = "reqwest")]
#[async_trait::async_trait]
impl AsyncHttpClient for ReqwestClient {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let uri = request.uri().clone();
        let fail = |e: reqwest::Error| TransportError::new(reqwest_kind(&e), &uri, e);
        let mut response = self.execute(request).await?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fail)? {
            if (body.len() + chunk.len()) as u64 > globus_app_blocking::http::MAX_RESPONSE_BODY {
                return Err(TransportError::new(
                    TransportErrorKind::TooLarge,
                    &uri,
                    "the response body is larger than 10 MiB",
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let mut converted = http::Response::new(body);
        *converted.status_mut() = response.status();
        *converted.version_mut() = response.version();
        *converted.headers_mut() = std::mem::take(response.headers_mut());
        Ok(converted)
    }
}

/// Sends a request with the shared [`Retries`] decisions (never retrying an
/// authorization-code exchange), waiting with `sleeper` between attempts.
pub async fn send_with_retries(
    client: &dyn AsyncHttpClient,
    request: AuthRequest,
    policy: RetryPolicy,
    sleeper: &dyn Sleeper,
) -> Result<http::Response<Vec<u8>>, TransportError> {
    let mut retries = Retries::new(&request, policy);
    let request = request.into_http();
    loop {
        let result = client.send(copy_request(&request)).await;
        match retries.next_delay(&result) {
            Some(delay) => sleeper.sleep(delay).await,
            None => return result,
        }
    }
}
