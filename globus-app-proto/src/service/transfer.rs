//! Globus Transfer's requests, with the paths, query parameters and JSON
//! bodies of the Python SDK's `TransferClient`; and the task documents
//! ([`TransferData`], [`DeleteData`]).

use std::time::Duration;

use http::Method;
use serde_json::{Map, Value, json};

use super::paging::PagingStyle;
use super::{ServiceError, ServiceRequest, ServiceRequestError, ServiceResponse};

/// `endpoint_search`'s paging: has-next-page and offset, 100 a page, at
/// most 1000 results (the service's limit).
pub const ENDPOINT_SEARCH_PAGING: PagingStyle = PagingStyle::HasNextPage {
    page_size: 100,
    max_total: 1000,
};

/// `task_list`'s paging: limit, offset and total, 1000 a page, at most
/// 1000 results.
pub const TASK_LIST_PAGING: PagingStyle = PagingStyle::LimitOffsetTotal {
    page_size: 1000,
    max_total: 1000,
};

/// The field of Transfer's pages that holds the items.
pub const ITEMS_KEY: &str = "DATA";

/// The filters of an endpoint search (`filter_*` query parameters); unset
/// ones are not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointSearch {
    /// `filter_fulltext`: the text to search for.
    pub fulltext: Option<String>,
    /// `filter_scope`: `my-endpoints`, `recently-used`, `shared-with-me`...
    pub scope: Option<String>,
    /// `filter_owner_id`.
    pub owner_id: Option<String>,
    /// `filter_host_endpoint`.
    pub host_endpoint: Option<String>,
    /// `filter_non_functional`.
    pub non_functional: Option<bool>,
    /// `filter_entity_type`: `GCP_mapped_collection`, `GCSv5_endpoint`...
    pub entity_type: Option<String>,
    /// `limit` (the pager sets it when paging).
    pub limit: Option<u64>,
    /// `offset`.
    pub offset: Option<u64>,
}

impl EndpointSearch {
    /// A full-text search for `text`.
    pub fn fulltext(text: impl Into<String>) -> Self {
        Self {
            fulltext: Some(text.into()),
            ..Self::default()
        }
    }

    /// With `filter_scope`.
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// With `filter_entity_type`.
    #[must_use]
    pub fn entity_type(mut self, entity_type: impl Into<String>) -> Self {
        self.entity_type = Some(entity_type.into());
        self
    }

    /// With `filter_owner_id`.
    #[must_use]
    pub fn owner_id(mut self, owner_id: impl Into<String>) -> Self {
        self.owner_id = Some(owner_id.into());
        self
    }
}

/// `GET /v0.10/endpoint_search`.
pub fn endpoint_search(search: &EndpointSearch) -> ServiceRequest {
    ServiceRequest::get("/v0.10/endpoint_search")
        .query_opt("filter_fulltext", search.fulltext.as_deref())
        .query_opt("filter_scope", search.scope.as_deref())
        .query_opt("filter_owner_id", search.owner_id.as_deref())
        .query_opt("filter_host_endpoint", search.host_endpoint.as_deref())
        .query_opt(
            "filter_non_functional",
            // As the Python SDK sends it: `0`/`1`, not `false`/`true`.
            search.non_functional.map(|b| if b { "1" } else { "0" }),
        )
        .query_opt("filter_entity_type", search.entity_type.as_deref())
        .query_opt("limit", search.limit)
        .query_opt("offset", search.offset)
}

/// `GET /v0.10/endpoint/{id}`.
pub fn get_endpoint(endpoint_id: &str) -> ServiceRequest {
    ServiceRequest::route(Method::GET, "/v0.10/endpoint/{}", &[endpoint_id])
}

/// The options of a directory listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Listing {
    /// `path` (default: the collection's default directory).
    pub path: Option<String>,
    /// `show_hidden`.
    pub show_hidden: Option<bool>,
    /// `orderby`, e.g. `["name ASC"]` (comma-joined).
    pub orderby: Vec<String>,
    /// `filter`, e.g. `["name:~*.txt", "type:file"]` (joined with `/`).
    pub filter: Vec<String>,
    /// `limit`.
    pub limit: Option<u64>,
    /// `offset`.
    pub offset: Option<u64>,
    /// `local_user` (GCS v5 mapped collections).
    pub local_user: Option<String>,
}

impl Listing {
    /// A listing of `path`.
    pub fn path(path: impl Into<String>) -> Self {
        Self {
            path: Some(path.into()),
            ..Self::default()
        }
    }

    /// With a filter (`name:~*.txt`, `type:dir`...); several are ANDed.
    #[must_use]
    pub fn filter(mut self, filter: impl Into<String>) -> Self {
        self.filter.push(filter.into());
        self
    }

    /// With `show_hidden`.
    #[must_use]
    pub fn show_hidden(mut self, show: bool) -> Self {
        self.show_hidden = Some(show);
        self
    }
}

/// `GET /v0.10/operation/endpoint/{id}/ls`.
pub fn operation_ls(endpoint_id: &str, listing: &Listing) -> ServiceRequest {
    ServiceRequest::route(
        Method::GET,
        "/v0.10/operation/endpoint/{}/ls",
        &[endpoint_id],
    )
    .query_opt("path", listing.path.as_deref())
    .query_opt(
        "show_hidden",
        listing.show_hidden.map(|b| if b { "1" } else { "0" }),
    )
    .query_opt("limit", listing.limit)
    .query_opt("offset", listing.offset)
    .query_opt(
        "orderby",
        (!listing.orderby.is_empty()).then(|| listing.orderby.join(",")),
    )
    .query_opt(
        "filter",
        (!listing.filter.is_empty()).then(|| listing.filter.join("/")),
    )
    .query_opt("local_user", listing.local_user.as_deref())
}

/// `POST /v0.10/operation/endpoint/{id}/mkdir`.
pub fn operation_mkdir(endpoint_id: &str, path: &str) -> ServiceRequest {
    ServiceRequest::route(
        Method::POST,
        "/v0.10/operation/endpoint/{}/mkdir",
        &[endpoint_id],
    )
    .json(json!({"DATA_TYPE": "mkdir", "path": path}))
}

/// `POST /v0.10/operation/endpoint/{id}/rename`.
pub fn operation_rename(endpoint_id: &str, old_path: &str, new_path: &str) -> ServiceRequest {
    ServiceRequest::route(
        Method::POST,
        "/v0.10/operation/endpoint/{}/rename",
        &[endpoint_id],
    )
    .json(json!({"DATA_TYPE": "rename", "old_path": old_path, "new_path": new_path}))
}

/// `GET /v0.10/operation/endpoint/{id}/stat`.
pub fn operation_stat(endpoint_id: &str, path: &str) -> ServiceRequest {
    ServiceRequest::route(
        Method::GET,
        "/v0.10/operation/endpoint/{}/stat",
        &[endpoint_id],
    )
    .query("path", path)
}

/// `GET /v0.10/submission_id`.
pub fn get_submission_id() -> ServiceRequest {
    ServiceRequest::get("/v0.10/submission_id")
}

/// `POST /v0.10/transfer`: idempotent, because it carries its
/// `submission_id` (Transfer runs a submission id at most once).
pub fn submit_transfer(data: &TransferData) -> ServiceRequest {
    let idempotent = data.submission_id().is_some();
    ServiceRequest::post("/v0.10/transfer", data.to_json()).with_idempotent(idempotent)
}

/// `POST /v0.10/delete`: idempotent with its `submission_id`.
pub fn submit_delete(data: &DeleteData) -> ServiceRequest {
    let idempotent = data.submission_id().is_some();
    ServiceRequest::post("/v0.10/delete", data.to_json()).with_idempotent(idempotent)
}

/// `GET /v0.10/task/{id}`.
pub fn get_task(task_id: &str) -> ServiceRequest {
    ServiceRequest::route(Method::GET, "/v0.10/task/{}", &[task_id])
}

/// The options of a task list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskList {
    /// `filter`, e.g. `["status:ACTIVE,INACTIVE"]` (joined with `/`).
    pub filter: Vec<String>,
    /// `orderby` (comma-joined).
    pub orderby: Vec<String>,
    /// `limit` (the pager sets it when paging).
    pub limit: Option<u64>,
    /// `offset`.
    pub offset: Option<u64>,
}

/// `GET /v0.10/task_list`.
pub fn task_list(options: &TaskList) -> ServiceRequest {
    ServiceRequest::get("/v0.10/task_list")
        .query_opt("limit", options.limit)
        .query_opt("offset", options.offset)
        .query_opt(
            "orderby",
            (!options.orderby.is_empty()).then(|| options.orderby.join(",")),
        )
        .query_opt(
            "filter",
            (!options.filter.is_empty()).then(|| options.filter.join("/")),
        )
}

/// `POST /v0.10/task/{id}/cancel` (no body).
pub fn cancel_task(task_id: &str) -> ServiceRequest {
    let mut request = ServiceRequest::route(Method::POST, "/v0.10/task/{}/cancel", &[task_id]);
    // Cancelling twice is harmless.
    request.idempotent = true;
    request
}

/// The `data_access` scope of a GCS collection, optional (`*`), as a
/// dependency of Transfer's scope: what `add_app_data_access_scope` adds.
pub fn data_access_scope(collection_id: &str) -> String {
    format!("*https://auth.globus.org/scopes/{collection_id}/data_access")
}

/// A Transfer scope string requiring the `data_access` scopes of
/// `collection_ids` as optional dependencies.
pub fn transfer_scope_with_data_access<'a>(
    collection_ids: impl IntoIterator<Item = &'a str>,
) -> String {
    let dependencies: Vec<String> = collection_ids.into_iter().map(data_access_scope).collect();
    format!(
        "{}[{}]",
        crate::scope::well_known::transfer::ALL,
        dependencies.join(" ")
    )
}

/// What `add_app_data_access_scope(collection_ids)` requires of the app:
/// Transfer's scope with each collection's optional `data_access` scope as
/// a dependency (`None` for no collection). An id that is not a UUID is
/// refused, as the Python SDK refuses it.
pub fn data_access_requirement(
    collection_ids: &[&str],
) -> Result<Option<String>, ServiceRequestError> {
    if let Some(bad) = collection_ids.iter().find(|id| !is_uuid(id)) {
        return Err(ServiceRequestError::Invalid {
            reason: format!("collection id {bad:?} is not a UUID"),
        });
    }
    Ok((!collection_ids.is_empty())
        .then(|| transfer_scope_with_data_access(collection_ids.iter().copied())))
}

/// Whether `id` looks like a UUID (a collection id), as the Python SDK
/// checks before adding a scope for it.
pub fn is_uuid(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// How a sync transfer compares files: `exists` (0), `size` (1), `mtime`
/// (2), `checksum` (3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncLevel {
    /// Copy files that do not exist at the destination.
    Exists,
    /// ... or differ in size.
    Size,
    /// ... or are newer at the source.
    Mtime,
    /// ... or differ in checksum.
    Checksum,
}

impl SyncLevel {
    fn number(self) -> u8 {
        match self {
            Self::Exists => 0,
            Self::Size => 1,
            Self::Mtime => 2,
            Self::Checksum => 3,
        }
    }
}

/// A transfer task document (`DATA_TYPE: transfer`): the collections,
/// options and items. Unset options are not sent, as in the Python SDK.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferData {
    fields: Map<String, Value>,
    items: Vec<Value>,
}

impl TransferData {
    /// A transfer from `source` to `destination` (collection ids).
    pub fn new(source: &str, destination: &str) -> Self {
        let mut fields = Map::new();
        fields.insert("source_endpoint".into(), source.into());
        fields.insert("destination_endpoint".into(), destination.into());
        Self {
            fields,
            items: Vec::new(),
        }
    }

    fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_owned(), value.into());
        self
    }

    /// `label`.
    #[must_use]
    pub fn label(self, label: &str) -> Self {
        self.set("label", label)
    }

    /// `submission_id` (fetched by the client if unset).
    pub fn submission_id(&self) -> Option<&str> {
        self.fields.get("submission_id").and_then(Value::as_str)
    }

    /// With `submission_id`.
    #[must_use]
    pub fn with_submission_id(self, id: &str) -> Self {
        self.set("submission_id", id)
    }

    /// `sync_level`.
    #[must_use]
    pub fn sync_level(self, level: SyncLevel) -> Self {
        self.set("sync_level", level.number())
    }

    /// `verify_checksum`.
    #[must_use]
    pub fn verify_checksum(self, verify: bool) -> Self {
        self.set("verify_checksum", verify)
    }

    /// `preserve_timestamp`.
    #[must_use]
    pub fn preserve_timestamp(self, preserve: bool) -> Self {
        self.set("preserve_timestamp", preserve)
    }

    /// `encrypt_data`.
    #[must_use]
    pub fn encrypt_data(self, encrypt: bool) -> Self {
        self.set("encrypt_data", encrypt)
    }

    /// `deadline` (ISO 8601).
    #[must_use]
    pub fn deadline(self, deadline: &str) -> Self {
        self.set("deadline", deadline)
    }

    /// Any other field of the document.
    #[must_use]
    pub fn field(self, key: &str, value: Value) -> Self {
        self.set(key, value)
    }

    /// Adds an item: a file, or with `recursive` a directory.
    #[must_use]
    pub fn item(mut self, source_path: &str, destination_path: &str, recursive: bool) -> Self {
        let mut item = json!({
            "DATA_TYPE": "transfer_item",
            "source_path": source_path,
            "destination_path": destination_path,
        });
        if recursive {
            item["recursive"] = Value::Bool(true);
        }
        self.items.push(item);
        self
    }

    /// The items.
    pub fn items(&self) -> &[Value] {
        &self.items
    }

    /// The document.
    pub fn to_json(&self) -> Value {
        let mut document = Map::new();
        document.insert("DATA_TYPE".into(), "transfer".into());
        document.insert("DATA".into(), Value::Array(self.items.clone()));
        document.extend(self.fields.clone());
        Value::Object(document)
    }
}

/// A delete task document (`DATA_TYPE: delete`).
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteData {
    fields: Map<String, Value>,
    items: Vec<Value>,
}

impl DeleteData {
    /// A delete on `endpoint` (a collection id).
    pub fn new(endpoint: &str) -> Self {
        let mut fields = Map::new();
        fields.insert("endpoint".into(), endpoint.into());
        Self {
            fields,
            items: Vec::new(),
        }
    }

    fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_owned(), value.into());
        self
    }

    /// `label`.
    #[must_use]
    pub fn label(self, label: &str) -> Self {
        self.set("label", label)
    }

    /// `recursive`: delete directories and their contents.
    #[must_use]
    pub fn recursive(self, recursive: bool) -> Self {
        self.set("recursive", recursive)
    }

    /// `submission_id` (fetched by the client if unset).
    pub fn submission_id(&self) -> Option<&str> {
        self.fields.get("submission_id").and_then(Value::as_str)
    }

    /// With `submission_id`.
    #[must_use]
    pub fn with_submission_id(self, id: &str) -> Self {
        self.set("submission_id", id)
    }

    /// Adds a path to delete.
    #[must_use]
    pub fn item(mut self, path: &str) -> Self {
        self.items
            .push(json!({"DATA_TYPE": "delete_item", "path": path}));
        self
    }

    /// The document.
    pub fn to_json(&self) -> Value {
        let mut document = Map::new();
        document.insert("DATA_TYPE".into(), "delete".into());
        document.insert("DATA".into(), Value::Array(self.items.clone()));
        document.extend(self.fields.clone());
        Value::Object(document)
    }
}

/// `task_wait`'s polls, as the Python SDK's: a poll at once, then one
/// after each interval while the intervals waited stay within the timeout;
/// done when the task's status is not `ACTIVE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskWait {
    timeout: Duration,
    interval: Duration,
    waited: Duration,
}

/// What to do after a poll of `task_wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskWaitStep {
    /// The task is no longer `ACTIVE`.
    Finished,
    /// Sleep this long, then poll again.
    Sleep(Duration),
    /// The timeout is reached, the task still `ACTIVE`.
    TimedOut,
}

/// What a poll of a task says: its status and progress, as a person
/// watching it wants them. Read from a `get_task` answer
/// ([`from_response`](Self::from_response)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskState {
    /// `ACTIVE`, `SUCCEEDED`, `FAILED`, `INACTIVE`.
    pub status: String,
    /// The service's word on an active task (`OK`, `Queued`, a fault's
    /// reason), if any.
    pub nice_status: Option<String>,
    /// Bytes moved so far.
    pub bytes_transferred: u64,
    /// Files in the task.
    pub files: u64,
    /// Files moved so far.
    pub files_transferred: u64,
    /// Files skipped (already there, with `skip_source_errors`...).
    pub files_skipped: u64,
    /// Faults so far (each retried by the service).
    pub faults: u64,
}

impl TaskState {
    /// The state in a task document; a document without a `status` is a
    /// malformed answer, and a missing count is 0.
    pub fn from_response(task: &ServiceResponse) -> Result<Self, ServiceError> {
        let count = |key: &str| task.data.get(key).and_then(Value::as_u64).unwrap_or(0);
        Ok(Self {
            status: task.str_field("status")?.to_owned(),
            nice_status: task
                .data
                .get("nice_status")
                .and_then(Value::as_str)
                .map(crate::redaction::bounded),
            bytes_transferred: count("bytes_transferred"),
            files: count("files"),
            files_transferred: count("files_transferred"),
            files_skipped: count("files_skipped"),
            faults: count("faults"),
        })
    }

    /// Whether the task has ended (any status but `ACTIVE`).
    pub fn is_finished(&self) -> bool {
        self.status != "ACTIVE"
    }
}

impl TaskWait {
    /// A wait of at most `timeout`, polling every `interval` (each at
    /// least 1 s, as the Python SDK requires; the interval at most the
    /// timeout).
    pub fn new(timeout: Duration, interval: Duration) -> Result<Self, ServiceRequestError> {
        if timeout < Duration::from_secs(1) || interval < Duration::from_secs(1) {
            return Err(ServiceRequestError::Invalid {
                reason: "task_wait's timeout and poll interval are at least 1 s".to_owned(),
            });
        }
        Ok(Self {
            timeout,
            interval: interval.min(timeout),
            waited: Duration::ZERO,
        })
    }

    /// After a poll answered `task` (a `get_task`): finished, sleep, or
    /// timed out. A task without a status is a malformed answer.
    pub fn after_poll(&mut self, task: &ServiceResponse) -> Result<TaskWaitStep, ServiceError> {
        if task.str_field("status")? != "ACTIVE" {
            return Ok(TaskWaitStep::Finished);
        }
        self.waited = self.waited.saturating_add(self.interval);
        Ok(if self.waited > self.timeout {
            TaskWaitStep::TimedOut
        } else {
            TaskWaitStep::Sleep(self.interval)
        })
    }
}
