//! Tracing (feature `tracing`, on by default): one span per app operation
//! and events for what happens under it, all with target `globus_app`.
//!
//! | what | level | fields |
//! |---|---|---|
//! | span `globus_app` per operation | DEBUG | `operation`, `resource_server`, `outcome` |
//! | a Globus Auth request sent / answered | DEBUG | `path`, `grant`; `status`, `elapsed_ms` |
//! | a refresh, a client-credentials renewal, a code exchange | INFO | `grant` |
//! | a retry | WARN | `attempt`, `cause`, `delay_ms` |
//! | a renewal lock taken | DEBUG | `resource_server`, `waited_ms` |
//! | PostgreSQL: a renewal lease taken, waited for, taken over after it expired, found expired at release; a compare-and-set lost | INFO (WARN: taken over, expired, lost, timed out) | `resource_server`, `waited_ms` |
//! | PostgreSQL: the shared store unreachable (the cache serves), and reachable again | WARN, INFO | `table` |
//! | a token storage read or write | DEBUG | `operation`, `location`, `records`, `elapsed_ms` |
//! | the login listener: started, a request refused | DEBUG, WARN | `port`; `reason` |
//! | an id_token that did not verify | WARN | `error` |
//!
//! Never a token, code, verifier, secret, query string or body. Without a
//! subscriber, spans and events cost a cached check and no allocation. A
//! `get_authorizer` answered from the calling thread's copy of a valid
//! token (`adapter::WarmPath`) runs no operation, so it makes no span.
//! With the feature off, these functions are empty.

use std::fmt::Display;
use std::time::Duration;

/// A span around one app operation (`get_authorizer`, `login`...).
#[derive(Debug, Clone)]
pub struct OperationSpan {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

#[cfg(feature = "tracing")]
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(feature = "tracing")]
impl OperationSpan {
    /// Whether spans can be seen at all: false until a subscriber is
    /// installed (one atomic load), so that the adapters skip making a span
    /// on their warm paths.
    pub fn wanted() -> bool {
        tracing::dispatcher::has_been_set()
    }

    /// The span of an operation named `operation`.
    pub fn new(operation: &'static str, resource_server: Option<&str>) -> Self {
        Self {
            span: tracing::debug_span!(
                target: "globus_app",
                "globus_app",
                operation,
                resource_server = resource_server.unwrap_or(""),
                outcome = tracing::field::Empty,
            ),
        }
    }

    /// Runs `f` inside the span.
    pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        self.span.in_scope(f)
    }

    /// `future`, polled inside the span.
    pub fn instrument<F: std::future::Future>(
        &self,
        future: F,
    ) -> impl std::future::Future<Output = F::Output> {
        tracing::Instrument::instrument(future, self.span.clone())
    }

    /// Records how the operation ended (`ok`, or the error's kind).
    pub fn finish<T>(&self, result: &Result<T, crate::Error>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) if e.is_login_required() => "login required",
            Err(e) if e.is_retryable() => "retryable error",
            Err(_) => "error",
        };
        self.span.record("outcome", outcome);
    }
}

#[cfg(not(feature = "tracing"))]
impl OperationSpan {
    /// Never: tracing is off.
    pub fn wanted() -> bool {
        false
    }

    /// The span of an operation named `operation` (tracing is off).
    pub fn new(_operation: &'static str, _resource_server: Option<&str>) -> Self {
        Self {}
    }

    /// Runs `f`.
    pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        f()
    }

    /// `future` itself.
    pub fn instrument<F: std::future::Future>(
        &self,
        future: F,
    ) -> impl std::future::Future<Output = F::Output> {
        future
    }

    /// Nothing to record.
    pub fn finish<T>(&self, _result: &Result<T, crate::Error>) {}
}

/// A Globus Auth request is about to be sent.
pub(crate) fn sending(request: &globus_app_proto::request::AuthRequest) {
    #[cfg(feature = "tracing")]
    {
        let http = request.as_http();
        let path = http.uri().path();
        if !tracing::enabled!(target: "globus_app", tracing::Level::INFO) {
            return;
        }
        let grant = request
            .form_fields()
            .into_iter()
            .find_map(|(name, value)| (name == "grant_type").then_some(value));
        let message = match grant.as_deref() {
            Some("refresh_token") => Some("refreshing an access token"),
            Some("client_credentials") => Some("renewing client-credentials tokens"),
            Some("authorization_code") => Some("exchanging an authorization code"),
            _ => None,
        };
        if let Some(message) = message {
            tracing::info!(target: "globus_app", grant = grant.as_deref().unwrap_or(""), "{message}");
        }
        tracing::debug!(target: "globus_app", path, grant = grant.as_deref().unwrap_or(""), "sending a Globus Auth request");
    }
    #[cfg(not(feature = "tracing"))]
    let _ = request;
}

/// A request got a response, or none (generic over the body and the
/// transport's error, so that this module stands below `http`).
pub(crate) fn answered<B, E: Display>(result: &Result<http::Response<B>, E>, elapsed: Duration) {
    #[cfg(feature = "tracing")]
    match result {
        Ok(response) => tracing::debug!(
            target: "globus_app",
            status = response.status().as_u16(),
            elapsed_ms = millis(elapsed),
            "Globus Auth answered"
        ),
        Err(error) => tracing::debug!(
            target: "globus_app",
            error = %error,
            elapsed_ms = millis(elapsed),
            "a Globus Auth request got no response"
        ),
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (result, elapsed);
}

/// A request is sent again after `delay`.
pub(crate) fn retrying(attempt: u32, cause: &dyn Display, delay: Duration) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "globus_app",
        attempt,
        cause = %cause,
        delay_ms = millis(delay),
        "retrying a request"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (attempt, cause, delay);
}

/// A renewal lock was taken after waiting `waited`.
pub(crate) fn lock_taken(resource_server: &str, waited: Duration) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "globus_app",
        resource_server,
        waited_ms = millis(waited),
        "renewal lock taken"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (resource_server, waited);
}

/// A renewal lease of the PostgreSQL storage: `event` says what happened.
#[cfg(feature = "postgres")]
pub(crate) fn lease(event: &'static str, resource_server: &str, waited: Duration) {
    #[cfg(feature = "tracing")]
    {
        let unusual = matches!(
            event,
            "expired lease taken over"
                | "own lease had expired"
                | "compare-and-set lost: a newer row is kept"
                | "lease wait timed out"
                | "lease lost: taken over"
        );
        if unusual {
            tracing::warn!(target: "globus_app", resource_server, waited_ms = millis(waited), "{event}");
        } else {
            tracing::info!(target: "globus_app", resource_server, waited_ms = millis(waited), "{event}");
        }
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (event, resource_server, waited);
}

/// The shared token store became unreachable (`reachable` false; loads are
/// served from the cache) or reachable again.
#[cfg(feature = "postgres")]
pub(crate) fn shared_store(table: &str, reachable: bool) {
    #[cfg(feature = "tracing")]
    if reachable {
        tracing::info!(target: "globus_app", table, "the shared token store is reachable again");
    } else {
        tracing::warn!(target: "globus_app", table, "the shared token store is unreachable; serving cached tokens");
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (table, reachable);
}

/// Token storage was read or written.
pub(crate) fn storage(
    operation: &'static str,
    location: &dyn Display,
    records: usize,
    elapsed: Duration,
) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "globus_app",
        operation,
        location = %location,
        records,
        elapsed_ms = millis(elapsed),
        "token storage"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (operation, location, records, elapsed);
}

/// A forced login moved an unreadable token file aside.
pub(crate) fn set_aside(location: &dyn Display, aside: &dyn Display) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "globus_app",
        location = %location,
        aside = %aside,
        "unreadable token storage set aside"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (location, aside);
}

/// The loopback login listener is waiting on `port`.
pub(crate) fn listener_started(port: u16) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "globus_app", port, "login listener waiting for the redirect");
    #[cfg(not(feature = "tracing"))]
    let _ = port;
}

/// The loopback login listener refused a request.
pub(crate) fn listener_refused(reason: &'static str) {
    #[cfg(feature = "tracing")]
    tracing::warn!(target: "globus_app", reason, "login listener refused a request");
    #[cfg(not(feature = "tracing"))]
    let _ = reason;
}

/// An id_token did not verify.
pub(crate) fn id_token_rejected(error: &dyn Display) {
    #[cfg(feature = "tracing")]
    tracing::warn!(target: "globus_app", error = %error, "an id_token did not verify");
    #[cfg(not(feature = "tracing"))]
    let _ = error;
}
