//! Async service clients bound to an app (feature `ureq`): the same
//! clients as `globus_app_blocking::service`, with futures, streams and
//! [`AsyncRead`] bodies, on any executor.
//!
//! ```no_run
//! use futures::StreamExt as _;
//! use globus_app_async::UserApp;
//! use globus_app_async::service::TransferClient;
//!
//! # async fn example() -> Result<(), globus_app_async::Error> {
//! let app = UserApp::builder("My Tool").client_id("your-native-app-client-id").build().await?;
//! let transfer = TransferClient::new(&app)?;
//! let found = transfer.endpoint_search("Tutorial Collection").await?;
//! for endpoint in found.data["DATA"].as_array().into_iter().flatten() {
//!     println!("{}", endpoint["display_name"]);
//! }
//! # Ok(()) }
//! ```
//!
//! The decisions are the core's and the blocking crate's (requests, token
//! safety, retries, renewals, paging); the HTTP goes through an
//! [`AsyncServiceTransport`]: by default the blocking crate's pooled
//! keep-alive [`ServiceTransport`] on the `blocking` thread pool, its
//! bodies read as [`AsyncRead`] there too, so no runtime is required.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::io::{AsyncRead, AsyncReadExt as _};
use futures::stream::{self, Stream, StreamExt as _};
use globus_app_blocking::adapter::{
    ServiceBinding, answer_read_error, answer_too_large, authorized_request, bind_service,
};
use globus_app_blocking::http::{Retries, RetryPolicy, TransportError};
use globus_app_proto::app::Authorization;
use globus_app_proto::service::paging::Pager;
use globus_app_proto::service::transfer::{self, TaskWait, TaskWaitStep};
use globus_app_proto::service::{AuthorizationRetries, auth, declared_larger_than, groups, search};
use serde_json::Value;
use url::Url;

pub use globus_app_blocking::service::{
    AUTH, DeleteData, EndpointSearch, GROUPS, IdentityLookup, Listing, PagingStyle, SEARCH,
    ServiceError, ServiceRequest, ServiceRequestError, ServiceResponse, ServiceSpec,
    ServiceTransport, SyncLevel, TRANSFER, TaskList, TaskState, TransferData,
};

use crate::{AppCommon, Error};

/// The largest error body read.
const MAX_ERROR_BODY: u64 = 1 << 20;

/// An answer's body, read asynchronously.
pub struct ServiceBody(Pin<Box<dyn AsyncRead + Send>>);

impl ServiceBody {
    /// A body from any async reader.
    pub fn new(reader: impl AsyncRead + Send + 'static) -> Self {
        Self(Box::pin(reader))
    }
}

impl std::fmt::Debug for ServiceBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceBody").finish_non_exhaustive()
    }
}

impl AsyncRead for ServiceBody {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.as_mut().poll_read(cx, buf)
    }
}

/// Sends a service request and returns the answer with its body unread;
/// must not follow redirects. Implement it to use another HTTP stack.
#[async_trait::async_trait]
pub trait AsyncServiceTransport: Send + Sync {
    /// Sends `request`.
    async fn open(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<ServiceBody>, TransportError>;
}

/// How much of an answer the default transport reads in the request's own
/// job on the thread pool (Globus answers are mostly a few KiB): such an
/// answer comes back whole in memory, with no second hand-off.
const READ_AHEAD: u64 = 1 << 20;

/// The buffer through which the rest of a larger answer moves from the
/// pool (`blocking::Unblock`'s default, 8 MiB per answer, made every call
/// with 64 tasks grow the heap).
const STREAM_BUFFER: usize = 256 << 10;

/// A reader that fails once with `error` (a body read that failed in the
/// request's job, reported where the body is read).
struct Failed(Option<std::io::Error>);

impl AsyncRead for Failed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.0.take().map_or(Ok(0), Err))
    }
}

/// The blocking crate's pooled keep-alive transport, its calls on the
/// `blocking` thread pool: any executor, or none. The answer's first MiB
/// is read in the same job; a longer answer streams the rest in large
/// chunks.
#[async_trait::async_trait]
impl AsyncServiceTransport for ServiceTransport {
    async fn open(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<ServiceBody>, TransportError> {
        use futures::io::{AsyncReadExt as _, Cursor};
        use std::io::Read as _;
        let transport = self.clone();
        let (parts, head, rest) = blocking::unblock(move || {
            let (parts, mut reader) = transport.open_reader(request)?.into_parts();
            let mut head = Vec::new();
            let read = (&mut reader).take(READ_AHEAD + 1).read_to_end(&mut head);
            Ok::<_, TransportError>((parts, head, read.map(|_| reader)))
        })
        .await?;
        let whole = head.len() as u64 <= READ_AHEAD;
        let body = match rest {
            Ok(_) if whole => ServiceBody::new(Cursor::new(head)),
            Ok(reader) => ServiceBody::new(
                Cursor::new(head).chain(blocking::Unblock::with_capacity(STREAM_BUFFER, reader)),
            ),
            Err(error) => ServiceBody::new(Cursor::new(head).chain(Failed(Some(error)))),
        };
        Ok(http::Response::from_parts(parts, body))
    }
}

/// A tokio program's own `reqwest::Client` as the service clients'
/// transport (feature `reqwest`): requests and bodies run natively on its
/// runtime, on its connection pool, with no thread hand-off. Give it a
/// client that follows no redirect:
///
/// ```no_run
/// # async fn example(app: &globus_app_async::UserApp) -> Result<(), Box<dyn std::error::Error>> {
/// use globus_app_async::http::ReqwestClient;
/// use globus_app_async::service::{ServiceClient, TRANSFER, TransferClient};
///
/// let client = reqwest::Client::builder()
///     .redirect(reqwest::redirect::Policy::none())
///     .build()?;
/// let transfer = TransferClient::from_service(
///     ServiceClient::builder(app, TRANSFER)
///         .transport(ReqwestClient::from_client(client))
///         .build()?,
/// );
/// transfer.endpoint_search("Tutorial Collection").await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "reqwest")]
#[async_trait::async_trait]
impl AsyncServiceTransport for crate::http::ReqwestClient {
    async fn open(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<ServiceBody>, TransportError> {
        let mut response = self.execute(request).await?;
        let mut answer = http::Response::new(());
        *answer.status_mut() = response.status();
        *answer.version_mut() = response.version();
        *answer.headers_mut() = std::mem::take(response.headers_mut());
        // The body as it arrives, chunk by chunk.
        let chunks = futures::stream::try_unfold(response, |mut response| async move {
            let chunk = response.chunk().await.map_err(std::io::Error::other)?;
            Ok::<_, std::io::Error>(chunk.map(|chunk| (chunk, response)))
        });
        let body = ServiceBody::new(futures::TryStreamExt::into_async_read(chunks));
        let (parts, ()) = answer.into_parts();
        Ok(http::Response::from_parts(parts, body))
    }
}

/// An async client of one Globus service, bound to an app: the base of
/// the typed clients (see `globus_app_blocking::service::ServiceClient`
/// for a client of another service in a page: the same shape, with
/// `.await`).
#[derive(Clone)]
pub struct ServiceClient {
    app: AppCommon,
    spec: ServiceSpec,
    base_url: Url,
    transport: Arc<dyn AsyncServiceTransport>,
    retry: RetryPolicy,
    retry_non_idempotent: bool,
    max_response_bytes: u64,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient")
            .field("service", &self.spec.name)
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

/// Builds an async [`ServiceClient`]: see [`ServiceClient::builder`].
#[must_use]
pub struct ServiceClientBuilder {
    app: AppCommon,
    spec: ServiceSpec,
    binding: ServiceBinding,
    transport: Option<Arc<dyn AsyncServiceTransport>>,
    retry: RetryPolicy,
    retry_non_idempotent: bool,
}

impl ServiceClientBuilder {
    globus_app_blocking::shared_service_builder_setters!();

    /// Another transport, or a shared one.
    pub fn transport(mut self, transport: impl AsyncServiceTransport + 'static) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// Binds the client (see the blocking builder).
    pub fn build(self) -> Result<ServiceClient, Error> {
        let base_url = bind_service(self.app.core(), self.spec, &self.binding)?;
        Ok(ServiceClient {
            app: self.app,
            spec: self.spec,
            base_url,
            transport: self
                .transport
                .unwrap_or_else(|| Arc::new(ServiceTransport::default())),
            retry: self.retry,
            retry_non_idempotent: self.retry_non_idempotent,
            max_response_bytes: self.binding.response_limit(),
        })
    }
}

impl ServiceClient {
    /// A client of `spec`'s service bound to `app`.
    pub fn new(app: &AppCommon, spec: ServiceSpec) -> Result<Self, Error> {
        Self::builder(app, spec).build()
    }

    /// A client with options.
    pub fn builder(app: &AppCommon, spec: ServiceSpec) -> ServiceClientBuilder {
        ServiceClientBuilder {
            app: app.clone(),
            spec,
            binding: ServiceBinding::default(),
            transport: None,
            retry: app.retry_policy(),
            retry_non_idempotent: false,
        }
    }

    /// The app the client is bound to.
    pub fn app(&self) -> &AppCommon {
        &self.app
    }

    /// The base URL every request is under.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// Requires more scopes of the app for this service.
    pub fn add_scopes(&self, scopes: &str) -> Result<(), Error> {
        self.app
            .core()
            .add_scope_requirements_str(self.spec.resource_server, scopes)?;
        Ok(())
    }

    /// Sends `request` and reads its JSON answer whole, up to the client's
    /// `max_response_bytes` (as the blocking client does).
    pub async fn request(&self, request: &ServiceRequest) -> Result<ServiceResponse, Error> {
        let (parts, body) = self.send(request).await?.into_parts();
        let limit = self.max_response_bytes;
        let too_large = answer_too_large(&self.base_url, limit);
        if declared_larger_than(&parts.headers, limit) {
            return Err(too_large);
        }
        let mut bytes = Vec::new();
        body.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| answer_read_error(&self.base_url, e))?;
        if bytes.len() as u64 > limit {
            return Err(too_large);
        }
        Ok(ServiceResponse::from_http(&http::Response::from_parts(
            parts, bytes,
        ))?)
    }

    /// Sends `request` and returns its answer's body as an [`AsyncRead`].
    pub async fn request_reader(&self, request: &ServiceRequest) -> Result<ServiceBody, Error> {
        Ok(self.send(request).await?.into_body())
    }

    /// The pages of `request`, as a stream (fetched as it is polled); an
    /// error ends it after it is yielded.
    pub fn paginate(
        &self,
        request: ServiceRequest,
        style: PagingStyle,
        items_key: &'static str,
        max_items: Option<usize>,
    ) -> impl Stream<Item = Result<Page, Error>> + Send + '_ {
        let mut pager = Pager::new(request, style, items_key);
        if let Some(max) = max_items {
            pager = pager.with_max_items(max);
        }
        stream::unfold(Some(pager), move |state| async move {
            let mut pager = state?;
            let request = pager.next_request()?.clone();
            let result = match self.request(&request).await {
                Ok(response) => match pager.page_received(&response.data) {
                    Ok(items) => Ok(Page { response, items }),
                    Err(e) => Err(e.into()),
                },
                Err(e) => Err(e),
            };
            let next = result.is_ok().then_some(pager);
            Some((result, next))
        })
    }

    /// The items of every page, as a stream.
    pub fn paginate_items(
        &self,
        request: ServiceRequest,
        style: PagingStyle,
        items_key: &'static str,
        max_items: Option<usize>,
    ) -> impl Stream<Item = Result<Value, Error>> + Send + '_ {
        self.paginate(request, style, items_key, max_items)
            .flat_map(|page| {
                let items: Vec<Result<Value, Error>> = match page {
                    Ok(page) => page.items.into_iter().map(Ok).collect(),
                    Err(error) => vec![Err(error)],
                };
                stream::iter(items)
            })
    }

    async fn send(&self, request: &ServiceRequest) -> Result<http::Response<ServiceBody>, Error> {
        let http_request = request.to_http(&self.base_url)?;
        let resource_server = self.spec.resource_server;
        let mut authorization = self.app.get_authorizer(resource_server).await?;
        let mut refusals = AuthorizationRetries::default();
        let retryable = request.idempotent || self.retry_non_idempotent;
        loop {
            let response = self
                .send_with_retries(&http_request, &authorization, retryable)
                .await?;
            if response.status().is_success() {
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let mut bytes = Vec::new();
            body.take(MAX_ERROR_BODY)
                .read_to_end(&mut bytes)
                .await
                .map_err(|e| answer_read_error(&self.base_url, e))?;
            let response = http::Response::from_parts(parts, bytes);
            let verdict = refusals.judge(self.app.core(), &response);
            match self
                .app
                .authorization_after(&refusals, verdict, resource_server, &authorization)
                .await?
            {
                Some(next) => authorization = next,
                None => return Err(ServiceError::from_http(&response).into()),
            }
        }
    }

    async fn send_with_retries(
        &self,
        request: &http::Request<Vec<u8>>,
        authorization: &Authorization,
        retryable: bool,
    ) -> Result<http::Response<ServiceBody>, Error> {
        let mut retries = Retries::for_pooled_request(retryable, self.retry);
        loop {
            let authorized = authorized_request(request, authorization)?;
            let result = self.transport.open(authorized).await;
            match retries.next_delay(&result) {
                Some(delay) => self.app.sleeper().sleep(delay).await,
                None => return Ok(result?),
            }
        }
    }
}

/// One page: the answer and its items.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page {
    /// The answer, whole.
    pub response: ServiceResponse,
    /// Its items (cut to the item limit).
    pub items: Vec<Value>,
}

/// Async Globus Transfer (the blocking `TransferClient`'s calls, awaited).
#[derive(Debug, Clone)]
pub struct TransferClient(ServiceClient);

impl TransferClient {
    /// Bound to `app`.
    pub fn new(app: &AppCommon) -> Result<Self, Error> {
        ServiceClient::new(app, TRANSFER).map(Self)
    }

    /// On a base client built with options.
    pub fn from_service(client: ServiceClient) -> Self {
        Self(client)
    }

    /// The base client.
    pub fn service(&self) -> &ServiceClient {
        &self.0
    }

    /// Requires the `data_access` scopes of these collections.
    pub fn add_app_data_access_scope(&self, collection_ids: &[&str]) -> Result<&Self, Error> {
        if let Some(scope) = transfer::data_access_requirement(collection_ids)? {
            self.0.add_scopes(&scope)?;
        }
        Ok(self)
    }

    /// One page of an endpoint search.
    pub async fn endpoint_search(&self, fulltext: &str) -> Result<ServiceResponse, Error> {
        self.0
            .request(&transfer::endpoint_search(&EndpointSearch::fulltext(
                fulltext,
            )))
            .await
    }

    /// Every page of an endpoint search, as a stream.
    pub fn endpoint_search_pages(
        &self,
        search: &EndpointSearch,
        max_items: Option<usize>,
    ) -> impl Stream<Item = Result<Page, Error>> + Send + '_ {
        self.0.paginate(
            transfer::endpoint_search(search),
            transfer::ENDPOINT_SEARCH_PAGING,
            transfer::ITEMS_KEY,
            max_items,
        )
    }

    /// `GET /v0.10/endpoint/{id}`.
    pub async fn get_endpoint(&self, endpoint_id: &str) -> Result<ServiceResponse, Error> {
        self.0.request(&transfer::get_endpoint(endpoint_id)).await
    }

    /// A directory listing.
    pub async fn operation_ls(
        &self,
        endpoint_id: &str,
        listing: &Listing,
    ) -> Result<ServiceResponse, Error> {
        self.0
            .request(&transfer::operation_ls(endpoint_id, listing))
            .await
    }

    /// Makes a directory.
    pub async fn operation_mkdir(
        &self,
        endpoint_id: &str,
        path: &str,
    ) -> Result<ServiceResponse, Error> {
        self.0
            .request(&transfer::operation_mkdir(endpoint_id, path))
            .await
    }

    /// Renames a file or directory.
    pub async fn operation_rename(
        &self,
        endpoint_id: &str,
        old_path: &str,
        new_path: &str,
    ) -> Result<ServiceResponse, Error> {
        self.0
            .request(&transfer::operation_rename(endpoint_id, old_path, new_path))
            .await
    }

    /// A path's status.
    pub async fn operation_stat(
        &self,
        endpoint_id: &str,
        path: &str,
    ) -> Result<ServiceResponse, Error> {
        self.0
            .request(&transfer::operation_stat(endpoint_id, path))
            .await
    }

    /// A fresh submission id.
    pub async fn get_submission_id(&self) -> Result<String, Error> {
        let response = self.0.request(&transfer::get_submission_id()).await?;
        Ok(response.str_field("value")?.to_owned())
    }

    /// Submits a transfer (fetching a submission id first if needed).
    pub async fn submit_transfer(&self, data: TransferData) -> Result<ServiceResponse, Error> {
        let data = match data.submission_id() {
            Some(_) => data,
            None => data.with_submission_id(&self.get_submission_id().await?),
        };
        self.0.request(&transfer::submit_transfer(&data)).await
    }

    /// Submits a delete (fetching a submission id first if needed).
    pub async fn submit_delete(&self, data: DeleteData) -> Result<ServiceResponse, Error> {
        let data = match data.submission_id() {
            Some(_) => data,
            None => data.with_submission_id(&self.get_submission_id().await?),
        };
        self.0.request(&transfer::submit_delete(&data)).await
    }

    /// `GET /v0.10/task/{id}`.
    pub async fn get_task(&self, task_id: &str) -> Result<ServiceResponse, Error> {
        self.0.request(&transfer::get_task(task_id)).await
    }

    /// Every page of the task list, as a stream.
    pub fn task_list(
        &self,
        options: &TaskList,
    ) -> impl Stream<Item = Result<Page, Error>> + Send + '_ {
        self.0.paginate(
            transfer::task_list(options),
            transfer::TASK_LIST_PAGING,
            transfer::ITEMS_KEY,
            None,
        )
    }

    /// Cancels a task.
    pub async fn cancel_task(&self, task_id: &str) -> Result<ServiceResponse, Error> {
        self.0.request(&transfer::cancel_task(task_id)).await
    }

    /// Waits until the task is no longer `ACTIVE` (the blocking
    /// `task_wait`'s polls), sleeping with the app's sleeper: no runtime
    /// is assumed.
    pub async fn task_wait(
        &self,
        task_id: &str,
        timeout: Duration,
        poll_interval: Duration,
    ) -> Result<bool, Error> {
        let mut wait = TaskWait::new(timeout, poll_interval)?;
        loop {
            match wait.after_poll(&self.get_task(task_id).await?)? {
                TaskWaitStep::Finished => return Ok(true),
                TaskWaitStep::TimedOut => return Ok(false),
                TaskWaitStep::Sleep(interval) => self.0.app.sleeper().sleep(interval).await,
            }
        }
    }

    /// The task's state at each poll, as a `Stream`: status, bytes and
    /// files moved, faults, the service's `nice_status`. It ends after the
    /// finished task, or, when `timeout` is reached, after the last state
    /// seen (still active). Waits go through the app's sleeper.
    ///
    /// ```no_run
    /// # async fn example(transfer: &globus_app_async::service::TransferClient) -> Result<(), globus_app_async::Error> {
    /// use futures::StreamExt as _;
    /// use std::time::Duration;
    /// let mut states = std::pin::pin!(transfer.task_states("task-id", Duration::from_secs(600), Duration::from_secs(5)));
    /// while let Some(task) = states.next().await {
    ///     let task = task?;
    ///     eprintln!("{}: {} bytes", task.status, task.bytes_transferred);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn task_states<'a>(
        &'a self,
        task_id: &'a str,
        timeout: Duration,
        poll_interval: Duration,
    ) -> impl Stream<Item = Result<TaskState, Error>> + Send + 'a {
        /// Where the stream is: the wait (and a pause before the next
        /// poll), or over.
        enum Next {
            Poll(TaskWait, Option<Duration>),
            Over,
        }
        let start = match TaskWait::new(timeout, poll_interval) {
            Ok(wait) => Ok(Next::Poll(wait, None)),
            Err(e) => Err(Error::from(e)),
        };
        stream::unfold(Some(start), move |next| async move {
            let (mut wait, pause) = match next? {
                Ok(Next::Poll(wait, pause)) => (wait, pause),
                Ok(Next::Over) => return None,
                Err(e) => return Some((Err(e), Some(Ok(Next::Over)))),
            };
            if let Some(pause) = pause {
                self.0.app.sleeper().sleep(pause).await;
            }
            let polled = async {
                let task = self.get_task(task_id).await?;
                let state = TaskState::from_response(&task)?;
                Ok::<_, Error>((state, wait.after_poll(&task)?))
            };
            Some(match polled.await {
                Ok((state, TaskWaitStep::Sleep(pause))) => {
                    (Ok(state), Some(Ok(Next::Poll(wait, Some(pause)))))
                }
                Ok((state, _)) => (Ok(state), Some(Ok(Next::Over))),
                Err(e) => (Err(e), Some(Ok(Next::Over))),
            })
        })
    }
}

/// Async Globus Auth identity API.
#[derive(Debug, Clone)]
pub struct AuthClient(ServiceClient);

impl AuthClient {
    /// Bound to `app`.
    pub fn new(app: &AppCommon) -> Result<Self, Error> {
        ServiceClient::new(app, AUTH).map(Self)
    }

    /// On a base client built with options.
    pub fn from_service(client: ServiceClient) -> Self {
        Self(client)
    }

    /// `GET /v2/oauth2/userinfo`.
    pub async fn userinfo(&self) -> Result<ServiceResponse, Error> {
        self.0.request(&auth::userinfo()).await
    }

    /// `GET /v2/api/identities`.
    pub async fn get_identities(
        &self,
        lookup: IdentityLookup<'_>,
    ) -> Result<ServiceResponse, Error> {
        let response = self.0.request(&auth::get_identities(lookup)).await?;
        response.field("identities")?;
        Ok(response)
    }
}

/// Async Globus Groups.
#[derive(Debug, Clone)]
pub struct GroupsClient(ServiceClient);

impl GroupsClient {
    /// Bound to `app`.
    pub fn new(app: &AppCommon) -> Result<Self, Error> {
        ServiceClient::new(app, GROUPS).map(Self)
    }

    /// On a base client built with options.
    pub fn from_service(client: ServiceClient) -> Self {
        Self(client)
    }

    /// The groups the identity is in.
    pub async fn get_my_groups(&self, statuses: &[&str]) -> Result<Vec<Value>, Error> {
        let response = self.0.request(&groups::get_my_groups(statuses)).await?;
        match response.data {
            Value::Array(groups) => Ok(groups),
            _ => Err(ServiceError::missing_field(response.status, "groups").into()),
        }
    }
}

/// Async Globus Search.
#[derive(Debug, Clone)]
pub struct SearchClient(ServiceClient);

impl SearchClient {
    /// Bound to `app`.
    pub fn new(app: &AppCommon) -> Result<Self, Error> {
        ServiceClient::new(app, SEARCH).map(Self)
    }

    /// On a base client built with options.
    pub fn from_service(client: ServiceClient) -> Self {
        Self(client)
    }

    /// One page of a simple query.
    pub async fn search(&self, index_id: &str, q: &str) -> Result<ServiceResponse, Error> {
        self.0.request(&search::search(index_id, q, None)).await
    }

    /// The results of a simple query, every page, as a stream.
    pub fn search_items(
        &self,
        index_id: &str,
        q: &str,
    ) -> impl Stream<Item = Result<Value, Error>> + Send + '_ {
        self.0.paginate_items(
            search::search(index_id, q, None),
            search::SEARCH_PAGING,
            search::ITEMS_KEY,
            None,
        )
    }

    /// `POST /v1/index/{id}/search` with a query document: one page.
    pub async fn post_search(
        &self,
        index_id: &str,
        query: Value,
    ) -> Result<ServiceResponse, Error> {
        self.0.request(&search::post_search(index_id, query)).await
    }

    /// The results of a query document, every page, as a stream.
    pub fn post_search_items(
        &self,
        index_id: &str,
        query: Value,
    ) -> impl Stream<Item = Result<Value, Error>> + Send + '_ {
        self.0.paginate_items(
            search::post_search(index_id, query),
            search::SEARCH_PAGING,
            search::ITEMS_KEY,
            None,
        )
    }
}
