//! [`ServiceTransport`]: one pooled keep-alive ureq agent, shared by the
//! clients that clone it.

use std::time::Duration;

use crate::http::{HttpClient, TransportError, tls_config, ureq_kind};

/// How many idle connections to one host a [`ServiceTransport`] keeps by
/// default: enough that up to 64 tasks calling at once each keep theirs
/// (with fewer, a connection is closed as another is opened).
pub const DEFAULT_IDLE_CONNECTIONS_PER_HOST: usize = 64;

/// The HTTP transport of service clients: a ureq agent that keeps
/// connections alive and reuses them (up to
/// [`DEFAULT_IDLE_CONNECTIONS_PER_HOST`] idle per host, or as many as
/// [`with_pool`](Self::with_pool) says), follows no
/// redirect, and returns every status as an answer. Clones share the pool:
/// give one to several clients with
/// [`ServiceClientBuilder::transport`](super::ServiceClientBuilder::transport).
///
/// It is also an [`HttpClient`] (bodies read whole, no size cap), so the
/// [`AuthorizedClient`](crate::AuthorizedClient) can use the same pool:
/// `app.authorized(ServiceTransport::default())`.
#[derive(Debug, Clone)]
pub struct ServiceTransport {
    agent: ureq::Agent,
}

impl Default for ServiceTransport {
    /// Requests time out after 60 s (10 s to connect), as the Python SDK's.
    fn default() -> Self {
        Self::new(Duration::from_secs(60))
    }
}

impl ServiceTransport {
    /// A transport whose requests time out after `timeout` (to the end of
    /// the headers; a streamed body is read at the caller's pace).
    pub fn new(timeout: Duration) -> Self {
        Self::with_pool(timeout, DEFAULT_IDLE_CONNECTIONS_PER_HOST)
    }

    /// A transport that keeps at most `idle_per_host` idle connections to
    /// each host (and four times as many in all): as many as the tasks or
    /// threads that call one service at once, so that none waits on a new
    /// connection (a TLS handshake, against a real service).
    pub fn with_pool(timeout: Duration, idle_per_host: usize) -> Self {
        let agent = ureq::Agent::config_builder()
            .tls_config(tls_config())
            .timeout_connect(Some(Duration::from_secs(10).min(timeout)))
            .timeout_recv_response(Some(timeout))
            .timeout_send_request(Some(timeout))
            .max_idle_connections(idle_per_host.saturating_mul(4))
            .max_idle_connections_per_host(idle_per_host)
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        Self { agent }
    }

    /// Sends through `agent` (a proxy, other roots, other timeouts). Each
    /// request still follows no redirect and returns every status.
    pub fn from_agent(agent: ureq::Agent) -> Self {
        Self { agent }
    }

    /// Sends `request`; the answer's body is a reader (the async crate
    /// reads it on its thread pool).
    pub fn open_reader(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<impl std::io::Read + Send + use<>>, TransportError> {
        let (parts, body) = self.open(request)?.into_parts();
        Ok(http::Response::from_parts(parts, body.into_reader()))
    }

    /// Sends `request`; the answer's body is left to read.
    pub(crate) fn open(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<ureq::Body>, TransportError> {
        let uri = request.uri().clone();
        ureq::RequestExt::with_agent(request, &self.agent)
            .configure()
            .http_status_as_error(false)
            .max_redirects(0)
            .run()
            .map_err(|e| TransportError::new(ureq_kind(&e), &uri, e))
    }
}

impl HttpClient for ServiceTransport {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let uri = request.uri().clone();
        let (parts, body) = self.open(request)?.into_parts();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut body.into_reader(), &mut bytes).map_err(|e| {
            TransportError::new(crate::http::TransportErrorKind::of_io(&e), &uri, e)
        })?;
        Ok(http::Response::from_parts(parts, bytes))
    }
}
