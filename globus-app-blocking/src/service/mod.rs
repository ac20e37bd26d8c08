//! Service clients bound to an app (feature `ureq`): the Rust form of the
//! Python SDK's `TransferClient(app=app)`.
//!
//! ```no_run
//! use globus_app_blocking::UserApp;
//! use globus_app_blocking::service::TransferClient;
//!
//! let app = UserApp::builder("My Tool").client_id("your-native-app-client-id").build()?;
//! let transfer = TransferClient::new(&app)?;
//! let res = transfer.endpoint_search("Tutorial Collection")?;
//! for endpoint in res.field("DATA")?.as_array().into_iter().flatten() {
//!     println!("{}", endpoint["display_name"]);
//! }
//! # Ok::<(), globus_app_blocking::Error>(())
//! ```
//!
//! - [`ServiceClient`] is the base every typed client is built on (and a
//!   client for another service takes a page: see its docs). Binding it to
//!   an app adds the service's scopes to the app's requirements; several
//!   clients share one app, and one [`ServiceTransport`].
//! - Requests are built by the core (`globus_app_proto::service`): paths,
//!   query parameters and JSON bodies as the Python SDK sends them. A token
//!   is never sent outside the client's base URL, nor through a redirect.
//! - A 401 gets one renewal and a GARE one login, then the request is sent
//!   again; 429 and 5xx answers are retried with backoff and `Retry-After`
//!   (idempotent requests only, by default; see [`ServiceClientBuilder`]).
//! - Answers are read whole ([`ServiceResponse`], no size cap) or streamed
//!   ([`ServiceClient::request_reader`]); pages are iterators
//!   ([`Pages`]).

mod clients;
mod pages;
mod transfer;
mod transport;

use std::io::Read;

use globus_app_proto::app::Authorization;
use globus_app_proto::service::AuthorizationRetries;
pub use globus_app_proto::service::auth::IdentityLookup;
use globus_app_proto::service::declared_larger_than;
pub use globus_app_proto::service::paging::PagingStyle;
pub use globus_app_proto::service::transfer::{
    DeleteData, EndpointSearch, Listing, SyncLevel, TaskList, TaskState, TransferData,
};
pub use globus_app_proto::service::{
    AUTH, DEFAULT_MAX_RESPONSE_BYTES, GROUPS, SEARCH, ServiceError, ServiceRequest,
    ServiceRequestError, ServiceResponse, ServiceSpec, TRANSFER,
};
use url::Url;

pub use clients::{AuthClient, GroupsClient, SearchClient};
pub use pages::Pages;
pub use transfer::TransferClient;
pub use transport::{DEFAULT_IDLE_CONNECTIONS_PER_HOST, ServiceTransport};

use crate::adapter::{ServiceBinding, answer_read_error, answer_too_large};
use crate::http::{Retries, RetryPolicy};
use crate::{AppCommon, Error};

/// The largest error body read (errors are small JSON documents; a larger
/// one is cut, and its JSON then does not parse).
const MAX_ERROR_BODY: u64 = 1 << 20;

/// A client of one Globus service, bound to an app: the base of the typed
/// clients, and a client of any other service in a page of code.
///
/// ```no_run
/// use globus_app_blocking::service::{ServiceClient, ServiceRequest, ServiceSpec};
/// use globus_app_blocking::{ClientApp, Error};
///
/// /// Globus Timers, on the base client.
/// struct TimersClient(ServiceClient);
///
/// const TIMERS: ServiceSpec = ServiceSpec::new(
///     "timer",
///     "524230d7-ea86-4a52-8312-86065a9e0417",
///     &["https://auth.globus.org/scopes/524230d7-ea86-4a52-8312-86065a9e0417/timer"],
/// );
///
/// impl TimersClient {
///     fn new(app: &ClientApp) -> Result<Self, Error> {
///         ServiceClient::new(app, TIMERS).map(Self)
///     }
///
///     fn list_jobs(&self) -> Result<serde_json::Value, Error> {
///         Ok(self.0.request(&ServiceRequest::get("/v2/timers"))?.data)
///     }
/// }
/// # fn main() -> Result<(), Error> {
/// # let app = ClientApp::builder("x").client_id("c").client_secret("s").build()?;
/// let timers = TimersClient::new(&app)?;
/// println!("{}", timers.list_jobs()?);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ServiceClient {
    app: AppCommon,
    spec: ServiceSpec,
    base_url: Url,
    transport: ServiceTransport,
    retry: RetryPolicy,
    retry_non_idempotent: bool,
    max_response_bytes: u64,
}

/// Builds a [`ServiceClient`]: see [`ServiceClient::builder`].
#[must_use]
#[derive(Debug)]
pub struct ServiceClientBuilder {
    app: AppCommon,
    spec: ServiceSpec,
    binding: ServiceBinding,
    transport: Option<ServiceTransport>,
    retry: RetryPolicy,
    retry_non_idempotent: bool,
}

impl ServiceClientBuilder {
    crate::shared_service_builder_setters!();

    /// Share this transport (its pooled connections) with other clients.
    pub fn transport(mut self, transport: ServiceTransport) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Binds the client: checks the environment, resolves the base URL,
    /// and adds the scopes to the app's requirements.
    pub fn build(self) -> Result<ServiceClient, Error> {
        let base_url = crate::adapter::bind_service(self.app.core(), self.spec, &self.binding)?;
        Ok(ServiceClient {
            app: self.app,
            spec: self.spec,
            base_url,
            transport: self.transport.unwrap_or_default(),
            retry: self.retry,
            retry_non_idempotent: self.retry_non_idempotent,
            max_response_bytes: self.binding.response_limit(),
        })
    }
}

impl ServiceClient {
    /// A client of `spec`'s service bound to `app` (a `UserApp` or a
    /// `ClientApp`), which is asked for the service's default scopes.
    pub fn new(app: &AppCommon, spec: ServiceSpec) -> Result<Self, Error> {
        Self::builder(app, spec).build()
    }

    /// A client with options: other scopes, URL, transport, retries.
    pub fn builder(app: &AppCommon, spec: ServiceSpec) -> ServiceClientBuilder {
        ServiceClientBuilder {
            app: app.clone(),
            spec,
            binding: ServiceBinding::default(),
            transport: None,
            retry: RetryPolicy::default(),
            retry_non_idempotent: false,
        }
    }

    /// The app the client is bound to.
    pub fn app(&self) -> &AppCommon {
        &self.app
    }

    /// The service.
    pub fn spec(&self) -> ServiceSpec {
        self.spec
    }

    /// The base URL every request is under.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// The transport (clone it to share its connections).
    pub fn transport(&self) -> &ServiceTransport {
        &self.transport
    }

    /// Requires more scopes of the app for this service (they join the
    /// next login's request).
    pub fn add_scopes(&self, scopes: &str) -> Result<(), Error> {
        self.app
            .core()
            .add_scope_requirements_str(self.spec.resource_server, scopes)?;
        Ok(())
    }

    /// Sends `request` and reads its JSON answer whole, up to the
    /// client's `max_response_bytes` (256 MiB by default; a larger answer
    /// is a [`TransportErrorKind::TooLarge`](crate::http::TransportErrorKind::TooLarge)
    /// error): use
    /// [`request_reader`](Self::request_reader) for larger answers.
    pub fn request(&self, request: &ServiceRequest) -> Result<ServiceResponse, Error> {
        let response = self.send(request)?;
        let (parts, body) = response.into_parts();
        let limit = self.max_response_bytes;
        let too_large = answer_too_large(&self.base_url, limit);
        if declared_larger_than(&parts.headers, limit) {
            return Err(too_large);
        }
        let mut bytes = Vec::new();
        body.into_reader()
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| answer_read_error(&self.base_url, e))?;
        if bytes.len() as u64 > limit {
            return Err(too_large);
        }
        Ok(ServiceResponse::from_http(&http::Response::from_parts(
            parts, bytes,
        ))?)
    }

    /// Sends `request` and returns its answer's body as a reader, for
    /// answers too large to hold (a file, a long listing). Errors are read
    /// and returned as [`ServiceError`]s before any body is.
    pub fn request_reader(
        &self,
        request: &ServiceRequest,
    ) -> Result<impl Read + Send + use<>, Error> {
        Ok(self.send(request)?.into_body().into_reader())
    }

    /// The pages of `request`, paged in `style` with items in `items_key`.
    pub fn paginate(
        &self,
        request: ServiceRequest,
        style: PagingStyle,
        items_key: &'static str,
    ) -> Pages<'_> {
        Pages::new(self, request, style, items_key)
    }

    /// Sends with authorization, retries and the renewal or login a
    /// refusal calls for; a 2xx answer's body is left unread.
    fn send(&self, request: &ServiceRequest) -> Result<http::Response<ureq::Body>, Error> {
        let http_request = request.to_http(&self.base_url)?;
        let resource_server = self.spec.resource_server;
        let mut authorization = self.app.get_authorizer(resource_server)?;
        let mut refusals = AuthorizationRetries::default();
        let retryable = request.idempotent || self.retry_non_idempotent;
        loop {
            let response = self.send_with_retries(&http_request, &authorization, retryable)?;
            if response.status().is_success() {
                return Ok(response);
            }
            let response = read_error_body(response, &self.base_url)?;
            let verdict = refusals.judge(self.app.core(), &response);
            match self.app.authorization_after(
                &refusals,
                verdict,
                resource_server,
                &authorization,
            )? {
                Some(next) => authorization = next,
                None => return Err(ServiceError::from_http(&response).into()),
            }
        }
    }

    fn send_with_retries(
        &self,
        request: &http::Request<Vec<u8>>,
        authorization: &Authorization,
        retryable: bool,
    ) -> Result<http::Response<ureq::Body>, Error> {
        let mut retries = Retries::for_pooled_request(retryable, self.retry);
        loop {
            let authorized = crate::adapter::authorized_request(request, authorization)?;
            let result = self.transport.open(authorized);
            match retries.next_delay(&result) {
                Some(delay) => std::thread::sleep(delay),
                None => return Ok(result?),
            }
        }
    }
}

/// An error answer with its body read (at most [`MAX_ERROR_BODY`]).
fn read_error_body(
    response: http::Response<ureq::Body>,
    base: &Url,
) -> Result<http::Response<Vec<u8>>, Error> {
    let (parts, body) = response.into_parts();
    let mut bytes = Vec::new();
    body.into_reader()
        .take(MAX_ERROR_BODY)
        .read_to_end(&mut bytes)
        .map_err(|e| answer_read_error(base, e))?;
    Ok(http::Response::from_parts(parts, bytes))
}
