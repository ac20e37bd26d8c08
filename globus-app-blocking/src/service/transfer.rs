//! [`TransferClient`]: Globus Transfer on [`ServiceClient`].

use std::time::Duration;

use globus_app_proto::service::transfer::{self, TaskState, TaskWait, TaskWaitStep};

use super::{
    DeleteData, EndpointSearch, Listing, Pages, ServiceClient, ServiceResponse, TaskList,
    TransferData,
};
use crate::{AppCommon, Error};

/// Globus Transfer (the Python SDK's `TransferClient`): requires
/// `urn:globus:auth:scope:transfer.api.globus.org:all`.
///
/// ```no_run
/// use globus_app_blocking::UserApp;
/// use globus_app_blocking::service::{TransferClient, TransferData};
///
/// # fn main() -> Result<(), globus_app_blocking::Error> {
/// let app = UserApp::builder("My Tool").client_id("your-native-app-client-id").build()?;
/// let transfer = TransferClient::new(&app)?;
/// let (source, destination) = ("source-collection-id", "destination-collection-id");
/// transfer.add_app_data_access_scope(&[source, destination])?;
/// let task = transfer.submit_transfer(
///     TransferData::new(source, destination).label("nightly").item("/data/", "/backup/", true),
/// )?;
/// let task_id = task.str_field("task_id")?;
/// transfer.task_wait(task_id, std::time::Duration::from_secs(600), std::time::Duration::from_secs(10))?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TransferClient(ServiceClient);

impl TransferClient {
    /// Bound to `app`, which is asked for Transfer's scope.
    pub fn new(app: &AppCommon) -> Result<Self, Error> {
        ServiceClient::new(app, super::TRANSFER).map(Self)
    }

    /// On a base client built with options
    /// ([`ServiceClient::builder`] with [`TRANSFER`](super::TRANSFER)).
    pub fn from_service(client: ServiceClient) -> Self {
        Self(client)
    }

    /// The base client (other routes, the transport, streaming).
    pub fn service(&self) -> &ServiceClient {
        &self.0
    }

    /// Requires the `data_access` scope of each of these collections (GCS
    /// v5 mapped collections) as a dependency of Transfer's scope, so that
    /// the next login asks for them at once (as the Python SDK's
    /// `add_app_data_access_scope`). An id that is not a UUID is a typed
    /// error.
    pub fn add_app_data_access_scope(&self, collection_ids: &[&str]) -> Result<&Self, Error> {
        if let Some(scope) = transfer::data_access_requirement(collection_ids)? {
            self.0.add_scopes(&scope)?;
        }
        Ok(self)
    }

    /// `GET /v0.10/endpoint_search?filter_fulltext=...`: one page of
    /// endpoints and collections (in `DATA`), as the Python SDK's call.
    pub fn endpoint_search(&self, fulltext: &str) -> Result<ServiceResponse, Error> {
        self.0
            .request(&transfer::endpoint_search(&EndpointSearch::fulltext(
                fulltext,
            )))
    }

    /// Every page of an endpoint search (at most 1000 results, the
    /// service's limit).
    pub fn endpoint_search_pages(&self, search: &EndpointSearch) -> Pages<'_> {
        self.0.paginate(
            transfer::endpoint_search(search),
            transfer::ENDPOINT_SEARCH_PAGING,
            transfer::ITEMS_KEY,
        )
    }

    /// `GET /v0.10/endpoint/{id}`.
    pub fn get_endpoint(&self, endpoint_id: &str) -> Result<ServiceResponse, Error> {
        self.0.request(&transfer::get_endpoint(endpoint_id))
    }

    /// `GET /v0.10/operation/endpoint/{id}/ls`: the entries in `DATA`.
    pub fn operation_ls(
        &self,
        endpoint_id: &str,
        listing: &Listing,
    ) -> Result<ServiceResponse, Error> {
        self.0
            .request(&transfer::operation_ls(endpoint_id, listing))
    }

    /// `POST /v0.10/operation/endpoint/{id}/mkdir`.
    pub fn operation_mkdir(&self, endpoint_id: &str, path: &str) -> Result<ServiceResponse, Error> {
        self.0
            .request(&transfer::operation_mkdir(endpoint_id, path))
    }

    /// `POST /v0.10/operation/endpoint/{id}/rename`.
    pub fn operation_rename(
        &self,
        endpoint_id: &str,
        old_path: &str,
        new_path: &str,
    ) -> Result<ServiceResponse, Error> {
        self.0
            .request(&transfer::operation_rename(endpoint_id, old_path, new_path))
    }

    /// `GET /v0.10/operation/endpoint/{id}/stat`.
    pub fn operation_stat(&self, endpoint_id: &str, path: &str) -> Result<ServiceResponse, Error> {
        self.0.request(&transfer::operation_stat(endpoint_id, path))
    }

    /// `GET /v0.10/submission_id`: a fresh submission id (`value`).
    pub fn get_submission_id(&self) -> Result<String, Error> {
        let response = self.0.request(&transfer::get_submission_id())?;
        Ok(response.str_field("value")?.to_owned())
    }

    /// `POST /v0.10/transfer`, with a submission id fetched first if the
    /// document has none: the submission is then idempotent, and retried.
    pub fn submit_transfer(&self, data: TransferData) -> Result<ServiceResponse, Error> {
        let data = match data.submission_id() {
            Some(_) => data,
            None => data.with_submission_id(&self.get_submission_id()?),
        };
        self.0.request(&transfer::submit_transfer(&data))
    }

    /// `POST /v0.10/delete`, with a submission id fetched first if needed.
    pub fn submit_delete(&self, data: DeleteData) -> Result<ServiceResponse, Error> {
        let data = match data.submission_id() {
            Some(_) => data,
            None => data.with_submission_id(&self.get_submission_id()?),
        };
        self.0.request(&transfer::submit_delete(&data))
    }

    /// `GET /v0.10/task/{id}`.
    pub fn get_task(&self, task_id: &str) -> Result<ServiceResponse, Error> {
        self.0.request(&transfer::get_task(task_id))
    }

    /// Every page of the task list (at most 1000 tasks).
    pub fn task_list(&self, options: &TaskList) -> Pages<'_> {
        self.0.paginate(
            transfer::task_list(options),
            transfer::TASK_LIST_PAGING,
            transfer::ITEMS_KEY,
        )
    }

    /// `POST /v0.10/task/{id}/cancel`.
    pub fn cancel_task(&self, task_id: &str) -> Result<ServiceResponse, Error> {
        self.0.request(&transfer::cancel_task(task_id))
    }

    /// Waits until the task is no longer `ACTIVE`, polling every
    /// `poll_interval` (at least 1 s), for at most `timeout` (at least
    /// 1 s): `true` if it finished, `false` if the time ran out. The polls
    /// are the Python SDK's: at once, then after each interval while the
    /// intervals waited stay within the timeout.
    pub fn task_wait(
        &self,
        task_id: &str,
        timeout: Duration,
        poll_interval: Duration,
    ) -> Result<bool, Error> {
        self.task_wait_with_progress(task_id, timeout, poll_interval, |_| {})
    }

    /// [`task_wait`](Self::task_wait), telling `on_poll` what each poll
    /// found (status, bytes and files moved, faults, the service's
    /// `nice_status`), the last time with the finished task, or the still
    /// active one when the timeout is reached.
    ///
    /// ```no_run
    /// # fn example(transfer: &globus_app_blocking::service::TransferClient) -> Result<(), globus_app_blocking::Error> {
    /// use std::time::Duration;
    /// let done = transfer.task_wait_with_progress("task-id", Duration::from_secs(600), Duration::from_secs(5), |task| {
    ///     eprintln!("{}: {} files of {}, {} bytes", task.status, task.files_transferred, task.files, task.bytes_transferred);
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn task_wait_with_progress(
        &self,
        task_id: &str,
        timeout: Duration,
        poll_interval: Duration,
        mut on_poll: impl FnMut(&TaskState),
    ) -> Result<bool, Error> {
        let mut wait = TaskWait::new(timeout, poll_interval)?;
        loop {
            let task = self.get_task(task_id)?;
            on_poll(&TaskState::from_response(&task)?);
            match wait.after_poll(&task)? {
                TaskWaitStep::Finished => return Ok(true),
                TaskWaitStep::TimedOut => return Ok(false),
                TaskWaitStep::Sleep(interval) => std::thread::sleep(interval),
            }
        }
    }
}
