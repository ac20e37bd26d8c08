//! Transfer-, Groups- and Search-shaped resource servers on 127.0.0.1
//! ([`ServicesServer`], from [`AuthServer::start_services`]), and Globus
//! Auth's userinfo and identities routes on the [`AuthServer`] itself.
//!
//! They validate the bearer tokens the local Globus Auth issued (401
//! otherwise), page as the real routes do, keep connections alive (and
//! count them), record every request, and inject faults on demand: 429s,
//! 503s with `Retry-After`, large answers. A "mapped collection"
//! ([`MAPPED_COLLECTION`]) answers file operations with a ConsentRequired
//! GARE until a login asked for its `data_access` scope.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use globus_app_proto::testing::FakeGlobusAuth;
use serde_json::{Value, json};

use crate::auth_server::ServerState;
use crate::{AuthServer, now};

/// A GCS mapped collection: its file operations need its `data_access`
/// consent.
pub const MAPPED_COLLECTION: &str = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc";
/// The tutorial collection: no consent needed.
pub const TUTORIAL_COLLECTION: &str = "31ce9ba0-176d-45a5-add3-f37d233ba47d";
/// A second tutorial collection, a transfer's destination.
pub const TUTORIAL_COLLECTION_2: &str = "9c7e6ec1-21b5-4b5f-8a0f-41a1c7f2d8e1";
/// The search index of the Search-shaped server.
pub const SEARCH_INDEX: &str = "e7a1b9c0-0a3a-4f0e-9a55-3b7f4cf3a6b1";

/// One request as the server received it: what the parity tests compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The method.
    pub method: String,
    /// The path.
    pub path: String,
    /// The query parameters, sorted.
    pub query: Vec<(String, String)>,
    /// The JSON body, if any (canonical text).
    pub body: Option<String>,
}

/// An answer injected in place of the next request's.
#[derive(Debug, Clone)]
enum Fault {
    /// A status, with `Retry-After` seconds.
    Status(u16, Option<u64>),
    /// A raw body with a content type.
    Raw(u16, String, String),
    /// A body shorter than its `Content-Length`, then the connection closes.
    Truncated,
}

#[derive(Debug, Default)]
struct Services {
    faults: VecDeque<Fault>,
    /// After this many requests on a connection, close it as the next
    /// request arrives, unread (0: keep it open): a server whose idle
    /// connections go away just as a request is sent on one.
    close_every: usize,
    requests: Vec<RecordedRequest>,
    /// Directories of each collection: path to entries.
    files: BTreeMap<(String, String), Vec<Value>>,
    tasks: Vec<Value>,
    /// Polls of each task before it succeeds.
    polls_left: BTreeMap<String, u32>,
    submissions: BTreeMap<String, String>,
    next_id: u64,
    endpoints: Vec<Value>,
}

/// The resource servers; they stop with the test process.
pub struct ServicesServer {
    /// `http://127.0.0.1:<port>/`: the Transfer, Groups and Search base URL.
    pub base_url: String,
    state: Arc<Mutex<Services>>,
    connections: Arc<AtomicUsize>,
}

impl AuthServer {
    /// Starts Transfer-, Groups- and Search-shaped resource servers that
    /// accept this server's tokens.
    ///
    /// # Panics
    /// If no port can be bound.
    pub fn start_services(&self) -> ServicesServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}/", listener.local_addr().unwrap());
        let mut services = Services::default();
        for (i, name) in [
            "Globus Tutorial Collection 1",
            "Globus Tutorial Collection 2",
            "Mapped Collection",
        ]
        .iter()
        .enumerate()
        {
            let id = [
                TUTORIAL_COLLECTION,
                TUTORIAL_COLLECTION_2,
                MAPPED_COLLECTION,
            ][i];
            services.endpoints.push(json!({
                "DATA_TYPE": "endpoint", "id": id, "display_name": name,
                "entity_type": if i == 2 { "GCSv5_mapped_collection" } else { "GCSv5_guest_collection" },
            }));
        }
        for i in 0..250 {
            services.endpoints.push(json!({
                "DATA_TYPE": "endpoint", "id": format!("00000000-0000-4000-8000-{i:012}"),
                "display_name": format!("Paging Collection {i}"), "entity_type": "GCSv5_guest_collection",
            }));
        }
        for collection in [
            TUTORIAL_COLLECTION,
            TUTORIAL_COLLECTION_2,
            MAPPED_COLLECTION,
        ] {
            services.files.insert(
                (collection.to_owned(), "/~/".to_owned()),
                vec![
                    file_entry("file1.txt", "file", 4),
                    file_entry("file2.txt", "file", 4),
                    file_entry("share", "dir", 0),
                ],
            );
        }
        let state = Arc::new(Mutex::new(services));
        let connections = Arc::new(AtomicUsize::new(0));
        let (fake, consents) = self.shared_state();
        let (shared, counter) = (Arc::clone(&state), Arc::clone(&connections));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                let (state, fake, consents) = (
                    Arc::clone(&shared),
                    Arc::clone(&fake),
                    Arc::clone(&consents),
                );
                std::thread::spawn(move || serve_connection(stream, &state, &fake, &consents));
            }
        });
        ServicesServer {
            base_url,
            state,
            connections,
        }
    }
}

impl ServicesServer {
    fn state(&self) -> MutexGuard<'_, Services> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// From now on, after `requests` requests on a connection, close it
    /// (without `Connection: close`) as the next request arrives, before
    /// reading it: the race of an idle connection closed by the server
    /// while the client sends on it. 0: keep connections open.
    pub fn close_connections_after(&self, requests: usize) {
        self.state().close_every = requests;
    }

    /// The next requests get `status` (with `Retry-After: retry_after`
    /// seconds, if given), one each.
    pub fn inject(&self, status: u16, retry_after: Option<u64>, count: usize) {
        self.state().faults.extend(std::iter::repeat_n(
            Fault::Status(status, retry_after),
            count,
        ));
    }

    /// The next request gets `status` with this raw body and content type.
    pub fn inject_raw(&self, status: u16, content_type: &str, body: &str) {
        self.state()
            .faults
            .push_back(Fault::Raw(status, content_type.to_owned(), body.to_owned()));
    }

    /// The next request gets a body cut short of its `Content-Length`.
    pub fn inject_truncated(&self) {
        self.state().faults.push_back(Fault::Truncated);
    }

    /// Forgets the requests recorded so far (a long run's log would grow
    /// without end).
    pub fn clear_requests(&self) {
        self.state().requests.clear();
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    /// How many TCP connections were accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn file_entry(name: &str, kind: &str, size: u64) -> Value {
    json!({"DATA_TYPE": "file", "name": name, "type": kind, "size": size,
           "permissions": "0644", "last_modified": "2026-01-01 00:00:00+00:00"})
}

/// A request read off a connection.
struct Incoming {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Incoming {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn number(&self, name: &str, default: usize) -> usize {
        self.query(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Incoming> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let url = url::Url::parse(&format!("http://localhost{target}")).ok()?;
    let mut headers = Vec::new();
    let mut length = 0usize;
    for _ in 0..100 {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let mut body = vec![0u8; length.min(16 << 20)];
    reader.read_exact(&mut body).ok()?;
    let mut query: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    query.sort();
    Some(Incoming {
        method,
        path: url.path().to_owned(),
        query,
        headers,
        body,
    })
}

/// An answer: a JSON document, a generated body of `n` bytes, a raw body,
/// a redirect, or a truncated body.
enum Answer {
    Json(u16, Value, Option<u64>),
    Large(usize, bool),
    Raw(u16, String, String),
    Redirect(String),
    Truncated,
}

fn serve_connection(
    stream: TcpStream,
    state: &Mutex<Services>,
    fake: &Mutex<FakeGlobusAuth>,
    consents: &Mutex<ServerState>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    // Answers are written whole; no wait for more to coalesce.
    let _ = stream.set_nodelay(true);
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let mut stream = stream;
    // Keep-alive: requests on this connection until the client closes it.
    for served in 0..100_000 {
        let close_every = state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .close_every;
        if close_every > 0 && served > 0 && served % close_every == 0 {
            // Wait for the next request's first bytes, then close with them
            // unread: nothing of it was processed.
            let _ = reader.fill_buf();
            return;
        }
        let Some(request) = read_request(&mut reader) else {
            return;
        };
        let answer = answer(&request, state, fake, consents);
        let closes = matches!(answer, Answer::Truncated);
        if write_answer(&mut stream, answer).is_err() || closes {
            return;
        }
        if request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            return;
        }
    }
}

fn write_answer(stream: &mut TcpStream, answer: Answer) -> std::io::Result<()> {
    match answer {
        Answer::Raw(status, content_type, body) => {
            write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        }
        Answer::Redirect(location) => write!(
            stream,
            "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n"
        ),
        Answer::Truncated => {
            let body = br#"{"DATA_TYPE": "endpoint", "id": "#;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n"
            )?;
            stream.write_all(body)?;
            stream.flush()
        }
        Answer::Json(status, body, retry_after) => {
            let body = serde_json::to_vec(&body).unwrap_or_default();
            let retry = retry_after
                .map(|s| format!("retry-after: {s}\r\n"))
                .unwrap_or_default();
            // One write: head and body in the same segment.
            let mut answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{retry}content-length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            answer.extend_from_slice(&body);
            stream.write_all(&answer)
        }
        Answer::Large(bytes, chunked) => {
            // A listing of `bytes` bytes, generated as it is written: with
            // its `Content-Length`, or chunked (its size unknown up front).
            let entry = br#"{"DATA_TYPE": "file", "name": "f", "type": "file", "size": 1},"#;
            let head = br#"{"DATA_TYPE": "file_list", "DATA": ["#;
            let tail = br#"{"DATA_TYPE": "file", "name": "last", "type": "file", "size": 1}]}"#;
            let count = bytes.saturating_sub(head.len() + tail.len()) / entry.len();
            let total = head.len() + count * entry.len() + tail.len();
            let framing = if chunked {
                "transfer-encoding: chunked".to_owned()
            } else {
                format!("content-length: {total}")
            };
            write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{framing}\r\n\r\n"
            )?;
            let mut send = |part: &[u8]| -> std::io::Result<()> {
                if chunked {
                    write!(stream, "{:x}\r\n", part.len())?;
                    stream.write_all(part)?;
                    stream.write_all(b"\r\n")
                } else {
                    stream.write_all(part)
                }
            };
            send(head)?;
            let chunk: Vec<u8> = entry.repeat(1024);
            let mut left = count;
            while left > 0 {
                let n = left.min(1024);
                send(&chunk[..n * entry.len()])?;
                left -= n;
            }
            send(tail)?;
            if chunked {
                stream.write_all(b"0\r\n\r\n")?;
            }
            Ok(())
        }
    }
}

fn error(status: u16, code: &str, message: &str) -> Answer {
    Answer::Json(
        status,
        json!({"code": code, "message": message, "request_id": "req-0001"}),
        None,
    )
}

fn answer(
    request: &Incoming,
    state: &Mutex<Services>,
    fake: &Mutex<FakeGlobusAuth>,
    consents: &Mutex<ServerState>,
) -> Answer {
    let mut services = state.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(control) = request.path.strip_prefix("/_test/") {
        return control_route(control, request, &mut services);
    }
    services.requests.push(RecordedRequest {
        method: request.method.clone(),
        path: request.path.clone(),
        query: request.query.clone(),
        body: (!request.body.is_empty()).then(|| request.json().to_string()),
    });
    match services.faults.pop_front() {
        Some(Fault::Status(status, retry_after)) => {
            return Answer::Json(
                status,
                json!({"code": "Injected", "message": "an injected answer"}),
                retry_after,
            );
        }
        Some(Fault::Raw(status, content_type, body)) => {
            return Answer::Raw(status, content_type, body);
        }
        Some(Fault::Truncated) => return Answer::Truncated,
        None => {}
    }
    let bearer = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !fake
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_live(bearer, now())
    {
        return error(401, "AuthenticationFailed", "Token is not active");
    }
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let method = request.method.as_str();
    match (method, segments.as_slice()) {
        ("GET", ["v0.10", "endpoint_search"]) => endpoint_search(request, &services),
        ("GET", ["v0.10", "endpoint", id]) => services
            .endpoints
            .iter()
            .find(|e| e["id"] == *id)
            .map_or_else(
                || error(404, "EndpointNotFound", "No such endpoint"),
                |e| Answer::Json(200, e.clone(), None),
            ),
        (_, ["v0.10", "operation", "endpoint", id, operation]) => {
            if *id == MAPPED_COLLECTION && !consented_to(consents, id) {
                return consent_required(id);
            }
            file_operation(request, &mut services, id, operation)
        }
        ("GET", ["v0.10", "submission_id"]) => {
            services.next_id += 1;
            Answer::Json(
                200,
                json!({"DATA_TYPE": "submission_id", "value": format!("sub-{:04}", services.next_id)}),
                None,
            )
        }
        ("POST", ["v0.10", kind @ ("transfer" | "delete")]) => {
            submit(request, &mut services, kind, consents)
        }
        ("GET", ["v0.10", "task", id]) => get_task(&mut services, id),
        ("POST", ["v0.10", "task", id, "cancel"]) => cancel_task(&mut services, id),
        ("GET", ["v0.10", "task_list"]) => task_list(request, &services),
        ("GET", ["v2", "groups", "my_groups"]) => Answer::Json(
            200,
            json!([
                {"id": "g1", "name": "Researchers", "my_memberships": [{"status": "active", "role": "member"}]},
                {"id": "g2", "name": "Admins", "my_memberships": [{"status": "active", "role": "admin"}]},
            ]),
            None,
        ),
        // A redirect elsewhere: a client must not follow it with the token.
        ("GET", ["v0.10", "redirect"]) => {
            Answer::Redirect(request.query("to").unwrap_or("/").to_owned())
        }
        ("GET" | "POST", ["v1", "index", index, "search"]) if *index == SEARCH_INDEX => {
            search(request)
        }
        _ => error(404, "NotFound", "No such route"),
    }
}

/// The test's own routes, unrecorded and unauthenticated: a client in
/// another process (the Python reference) injects faults with them.
/// `POST /_test/inject?status=S&retry_after=N&count=C`, or
/// `POST /_test/inject_raw?status=S` with the body to answer.
fn control_route(control: &str, request: &Incoming, services: &mut Services) -> Answer {
    let status = u16::try_from(request.number("status", 500)).unwrap_or(500);
    match control {
        "inject" => {
            let retry_after = request.query("retry_after").and_then(|v| v.parse().ok());
            let count = request.number("count", 1);
            services.faults.extend(std::iter::repeat_n(
                Fault::Status(status, retry_after),
                count,
            ));
        }
        "inject_raw" => services.faults.push_back(Fault::Raw(
            status,
            "application/json".to_owned(),
            String::from_utf8_lossy(&request.body).into_owned(),
        )),
        _ => return error(404, "NotFound", "No such control route"),
    }
    Answer::Json(200, json!({"ok": true}), None)
}

fn consented_to(consents: &Mutex<ServerState>, collection: &str) -> bool {
    let scope = format!("https://auth.globus.org/scopes/{collection}/data_access");
    consents
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .authorized_scopes
        .iter()
        .any(|requested| requested.contains(&scope))
}

fn consent_required(collection: &str) -> Answer {
    let scope = format!(
        "urn:globus:auth:scope:transfer.api.globus.org:all[*https://auth.globus.org/scopes/{collection}/data_access]"
    );
    Answer::Json(
        403,
        json!({
            "code": "ConsentRequired",
            "message": "Missing required data_access consent",
            "request_id": "req-consent",
            "required_scopes": [scope],
            "authorization_parameters": {"session_message": "Missing required data_access consent", "required_scopes": [scope]},
        }),
        None,
    )
}

fn endpoint_search(request: &Incoming, services: &Services) -> Answer {
    let text = request
        .query("filter_fulltext")
        .unwrap_or_default()
        .to_lowercase();
    let matching: Vec<&Value> = services
        .endpoints
        .iter()
        .filter(|e| {
            e["display_name"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase()
                .contains(&text)
        })
        .collect();
    let (limit, offset) = (
        request.number("limit", 25).min(100),
        request.number("offset", 0),
    );
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|e| (*e).clone())
        .collect();
    Answer::Json(
        200,
        json!({
            "DATA_TYPE": "endpoint_list", "DATA": page, "limit": limit, "offset": offset,
            "has_next_page": offset + limit < matching.len(),
        }),
        None,
    )
}

fn file_operation(
    request: &Incoming,
    services: &mut Services,
    id: &str,
    operation: &str,
) -> Answer {
    let body = request.json();
    match (request.method.as_str(), operation) {
        ("GET", "ls") => {
            let path = request.query("path").unwrap_or("/~/");
            if let Some(mib) = path
                .strip_prefix("/huge/")
                .and_then(|n| n.parse::<usize>().ok())
            {
                return Answer::Large(mib << 20, false);
            }
            if let Some(mib) = path
                .strip_prefix("/huge-chunked/")
                .and_then(|n| n.parse::<usize>().ok())
            {
                return Answer::Large(mib << 20, true);
            }
            match services.files.get(&(id.to_owned(), path.to_owned())) {
                Some(entries) => Answer::Json(
                    200,
                    json!({"DATA_TYPE": "file_list", "path": path, "endpoint": id, "DATA": entries}),
                    None,
                ),
                None => error(404, "ClientError.NotFound", "Directory not found"),
            }
        }
        ("GET", "stat") => {
            let path = request.query("path").unwrap_or_default();
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
            services
                .files
                .get(&(id.to_owned(), format!("{dir}/")))
                .and_then(|entries| entries.iter().find(|e| e["name"] == name))
                .map_or_else(
                    || error(404, "ClientError.NotFound", "Path not found"),
                    |entry| Answer::Json(200, entry.clone(), None),
                )
        }
        ("POST", "mkdir") => {
            let path = body["path"].as_str().unwrap_or_default().to_owned();
            let key = (id.to_owned(), format!("{}/", path.trim_end_matches('/')));
            if services.files.contains_key(&key) {
                return error(
                    502,
                    "ExternalError.MkdirFailed.Exists",
                    "Path already exists",
                );
            }
            services.files.insert(key, Vec::new());
            Answer::Json(
                200,
                json!({"DATA_TYPE": "mkdir_result", "code": "DirectoryCreated", "message": "The directory was created successfully"}),
                None,
            )
        }
        ("POST", "rename") => Answer::Json(
            200,
            json!({"DATA_TYPE": "result", "code": "FileRenamed", "message": "File or directory renamed successfully"}),
            None,
        ),
        _ => error(404, "NotFound", "No such operation"),
    }
}

fn submit(
    request: &Incoming,
    services: &mut Services,
    kind: &str,
    consents: &Mutex<ServerState>,
) -> Answer {
    let body = request.json();
    let Some(submission_id) = body["submission_id"].as_str().map(str::to_owned) else {
        return error(400, "ClientError.BadRequest", "submission_id is required");
    };
    if body["DATA_TYPE"] != kind {
        return error(400, "ClientError.BadRequest", "wrong DATA_TYPE");
    }
    for endpoint in [
        &body["source_endpoint"],
        &body["destination_endpoint"],
        &body["endpoint"],
    ] {
        if endpoint.as_str() == Some(MAPPED_COLLECTION)
            && !consented_to(consents, MAPPED_COLLECTION)
        {
            return consent_required(MAPPED_COLLECTION);
        }
    }
    if let Some(task_id) = services.submissions.get(&submission_id) {
        return Answer::Json(
            200,
            json!({"DATA_TYPE": format!("{kind}_result"), "code": "Duplicate", "task_id": task_id, "submission_id": submission_id}),
            None,
        );
    }
    services.next_id += 1;
    let task_id = format!("task-{:04}", services.next_id);
    services
        .submissions
        .insert(submission_id.clone(), task_id.clone());
    // A label `slow N` keeps the task active for N polls (1 otherwise),
    // its byte and file counts growing at each.
    let polls = body["label"]
        .as_str()
        .and_then(|label| label.strip_prefix("slow "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    services.polls_left.insert(task_id.clone(), polls);
    services.tasks.push(json!({
        "DATA_TYPE": "task", "task_id": task_id, "type": kind.to_uppercase(), "status": "ACTIVE",
        "label": body["label"], "files": body["DATA"].as_array().map_or(0, Vec::len),
    }));
    Answer::Json(
        202,
        json!({"DATA_TYPE": format!("{kind}_result"), "code": "Accepted", "task_id": task_id,
               "submission_id": submission_id, "message": "The task was accepted", "request_id": "req-submit"}),
        None,
    )
}

fn cancel_task(services: &mut Services, id: &str) -> Answer {
    match services.tasks.iter_mut().find(|t| t["task_id"] == id) {
        Some(task) => {
            task["status"] = json!("FAILED");
            task["nice_status"] = json!("CANCELED");
            Answer::Json(
                200,
                json!({"DATA_TYPE": "result", "code": "Canceled", "message": "The task has been cancelled."}),
                None,
            )
        }
        None => error(404, "TaskNotFound", "No such task"),
    }
}

fn task_list(request: &Incoming, services: &Services) -> Answer {
    let (limit, offset) = (request.number("limit", 10), request.number("offset", 0));
    let total = services.tasks.len();
    let data: Vec<Value> = services
        .tasks
        .iter()
        .skip(offset)
        .take(limit)
        .cloned()
        .collect();
    Answer::Json(
        200,
        json!({"DATA_TYPE": "task_list", "DATA": data, "total": total, "limit": limit, "offset": offset}),
        None,
    )
}

fn get_task(services: &mut Services, id: &str) -> Answer {
    let done = match services.polls_left.get_mut(id) {
        Some(0) => true,
        Some(left) => {
            *left -= 1;
            false
        }
        None => return error(404, "TaskNotFound", "No such task"),
    };
    let task = services.tasks.iter_mut().find(|t| t["task_id"] == id);
    match task {
        Some(task) => {
            if task["status"] == "ACTIVE" {
                let files = task["files"].as_u64().unwrap_or(0);
                let moved = task["files_transferred"].as_u64().unwrap_or(0);
                let bytes = task["bytes_transferred"].as_u64().unwrap_or(0);
                task["bytes_transferred"] = json!(bytes + 1_000);
                task["files_transferred"] =
                    json!(if done { files } else { (moved + 1).min(files) });
                task["nice_status"] = json!("OK");
                if done {
                    task["status"] = json!("SUCCEEDED");
                    task["nice_status"] = Value::Null;
                }
            }
            Answer::Json(200, task.clone(), None)
        }
        None => error(404, "TaskNotFound", "No such task"),
    }
}

fn search(request: &Incoming) -> Answer {
    let body = request.json();
    let number = |name: &str, default: usize| {
        body.get(name)
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or_else(|| request.number(name, default))
    };
    let (limit, offset, total) = (number("limit", 10), number("offset", 0), 230usize);
    let count = limit.min(total.saturating_sub(offset));
    let gmeta: Vec<Value> = (offset..offset + count)
        .map(|i| json!({"subject": format!("doc-{i}"), "entries": [{"content": {"n": i}, "entry_id": null}]}))
        .collect();
    Answer::Json(
        200,
        json!({"@datatype": "GSearchResult", "count": count, "offset": offset, "total": total,
               "has_next_page": offset + count < total, "gmeta": gmeta}),
        None,
    )
}

/// Globus Auth's `GET /v2/oauth2/userinfo` and `GET /v2/api/identities`,
/// for a live token.
pub(crate) fn auth_api(
    request: &http::Request<Vec<u8>>,
    fake: &Mutex<FakeGlobusAuth>,
    state: &Mutex<ServerState>,
) -> Option<http::Response<Vec<u8>>> {
    let path = request.uri().path();
    if path != "/v2/oauth2/userinfo" && path != "/v2/api/identities" {
        return None;
    }
    let mut query: Vec<(String, String)> =
        url::form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    query.sort();
    state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .auth_api_requests
        .push(RecordedRequest {
            method: request.method().to_string(),
            path: path.to_owned(),
            query,
            body: None,
        });
    let bearer = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let live = fake
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_live(bearer, now());
    let (status, body) = if !live {
        (
            401,
            json!({"errors": [{"code": "UNAUTHORIZED", "status": "401"}]}),
        )
    } else if path == "/v2/oauth2/userinfo" {
        (
            200,
            json!({"sub": "ae341a98-d274-11e5-b888-dbae3a8ba545", "preferred_username": "user@example.org",
                   "email": "user@example.org", "name": "A User"}),
        )
    } else {
        let query = request.uri().query().unwrap_or_default();
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let list = |key: &str| -> Vec<String> {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.split(',').map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let mut identities: Vec<Value> = list("ids")
            .iter()
            .map(|id| json!({"id": id, "username": format!("{id}@example.org"), "status": "used"}))
            .collect();
        identities.extend(list("usernames").iter().map(|username| {
            json!({"id": format!("id-of-{username}"), "username": username, "status": "used"})
        }));
        (200, json!({"identities": identities}))
    };
    Some(
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap_or_default())
            .unwrap(),
    )
}
