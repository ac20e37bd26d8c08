//! A fake Globus Auth served over HTTP/1.1 on 127.0.0.1: the pure-Rust
//! `FakeGlobusAuth` of `globus_app_proto::testing` behind a small std-thread
//! server (one request per connection). `GET /v2/oauth2/authorize` plays the
//! approving user and redirects to the `redirect_uri` with `code` and `state`;
//! `GET /v2/web/auth-code` shows the code, as the page native apps' default
//! redirect lands on.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use globus_app_proto::UnixTime;
use globus_app_proto::testing::FakeGlobusAuth;

/// The current time, as the server and the apps see it.
///
/// # Panics
/// If the system clock is before 1970.
pub fn now() -> UnixTime {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs();
    UnixTime::from_secs(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// A running server; it serves until the process exits.
pub struct AuthServer {
    /// `http://127.0.0.1:<port>/`.
    pub base_url: String,
    fake: Arc<Mutex<FakeGlobusAuth>>,
    delays: Arc<Mutex<Vec<Delay>>>,
    service: Arc<Mutex<ServerState>>,
}

/// What the server keeps beside the fake: what the fake service endpoint
/// (`GET /service/resource`) wants, a dependent scope that some login must
/// have asked for; and when browsers visited the authorize page.
#[derive(Debug, Default)]
pub(crate) struct ServerState {
    /// The scope string a GARE asks for, e.g. `transfer:all[*data_access]`.
    required: Option<String>,
    /// Whether an authorize request has asked for it since.
    granted: bool,
    /// When each authorize request came, in order.
    authorize_visits: Vec<Instant>,
    /// The scope string of each authorize request, in order.
    pub(crate) authorized_scopes: Vec<String>,
    /// Requests to the userinfo and identities routes, in order.
    pub(crate) auth_api_requests: Vec<crate::services::RecordedRequest>,
}

impl AuthServer {
    /// Starts a server on an ephemeral port.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start() -> Self {
        Self::start_on(0)
    }

    /// Starts a server on `port` of 127.0.0.1 (0 for an ephemeral one).
    ///
    /// # Panics
    /// If the port cannot be bound.
    pub fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let base_url = format!("http://{}/", listener.local_addr().unwrap());
        let mut fake = FakeGlobusAuth::new();
        fake.base_url.clone_from(&base_url);
        let fake = Arc::new(Mutex::new(fake));
        let delays: Arc<Mutex<Vec<Delay>>> = Arc::default();
        let service: Arc<Mutex<ServerState>> = Arc::default();
        let (shared, shared_delays, shared_service) =
            (Arc::clone(&fake), Arc::clone(&delays), Arc::clone(&service));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let fake = Arc::clone(&shared);
                let service = Arc::clone(&shared_service);
                let delay = {
                    let mut delays = shared_delays.lock().unwrap_or_else(PoisonError::into_inner);
                    (!delays.is_empty()).then(|| delays.remove(0))
                };
                std::thread::spawn(move || match delay {
                    Some(Delay::Before(delay)) => {
                        std::thread::sleep(delay);
                        serve(stream, &fake, &service, None);
                    }
                    Some(Delay::AfterHandling(delay)) => {
                        serve(stream, &fake, &service, Some(delay));
                    }
                    Some(Delay::Unhandled(delay)) => {
                        std::thread::sleep(delay);
                        drop(stream);
                    }
                    None => serve(stream, &fake, &service, None),
                });
            }
        });
        Self {
            base_url,
            fake,
            delays,
            service,
        }
    }

    /// Makes `GET /service/resource` answer 403 with a GARE asking for
    /// `scope` (a scope string with a dependency) until a login asks for it.
    pub fn require_for_service(&self, scope: &str) {
        let mut service = self.service.lock().unwrap_or_else(PoisonError::into_inner);
        service.required = Some(scope.to_owned());
        service.granted = false;
    }

    /// Delays the answers to the next connections, one delay each: the
    /// request is handled after the delay.
    pub fn delay_next(&self, delays: &[Duration]) {
        self.delays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(delays.iter().copied().map(Delay::Before));
    }

    /// Handles the next connections' requests at once (tokens are issued,
    /// a refresh token is rotated) but holds each answer back for its
    /// delay: a client's request is "in flight" meanwhile.
    pub fn hold_next_answers(&self, delays: &[Duration]) {
        self.delays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(delays.iter().copied().map(Delay::AfterHandling));
    }

    /// Holds the next connections open for their delay, then closes them
    /// without reading or handling their requests: a grant that never
    /// reached Globus Auth (its sender died first).
    pub fn never_handle_next(&self, delays: &[Duration]) {
        self.delays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(delays.iter().copied().map(Delay::Unhandled));
    }

    /// When the authorize page was last visited (the browser's request,
    /// answered at once with the redirect to the app).
    pub fn last_authorize_visit(&self) -> Option<Instant> {
        self.service
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .authorize_visits
            .last()
            .copied()
    }

    /// How many of the delays given to [`delay_next`](Self::delay_next),
    /// [`hold_next_answers`](Self::hold_next_answers) and
    /// [`never_handle_next`](Self::never_handle_next) no connection has
    /// taken yet.
    pub fn pending_delays(&self) -> usize {
        self.delays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// How many token requests of `grant_type` (`refresh_token`,
    /// `client_credentials`, `authorization_code`) the server received.
    pub fn grants(&self, grant_type: &str) -> usize {
        self.fake()
            .requests
            .iter()
            .filter(|r| r.field("grant_type") == Some(grant_type))
            .count()
    }

    /// The requests to the userinfo and identities routes, in order.
    pub fn auth_api_requests(&self) -> Vec<crate::services::RecordedRequest> {
        self.service
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .auth_api_requests
            .clone()
    }

    /// The fake and the server's state, for the resource servers that
    /// accept its tokens.
    pub(crate) fn shared_state(&self) -> (Arc<Mutex<FakeGlobusAuth>>, Arc<Mutex<ServerState>>) {
        (Arc::clone(&self.fake), Arc::clone(&self.service))
    }

    /// The fake, to configure faults or inspect requests.
    pub fn fake(&self) -> MutexGuard<'_, FakeGlobusAuth> {
        self.fake.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// When a connection is slowed down.
#[derive(Debug, Clone, Copy)]
enum Delay {
    Before(Duration),
    AfterHandling(Duration),
    Unhandled(Duration),
}

fn serve(
    mut stream: TcpStream,
    fake: &Mutex<FakeGlobusAuth>,
    service: &Mutex<ServerState>,
    hold_answer: Option<Duration>,
) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("GET").to_owned(),
        parts.next().unwrap_or("/").to_owned(),
    );
    let mut builder = http::Request::builder()
        .method(method.as_str())
        .uri(target.as_str());
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
            builder = builder.header(name.trim(), value.trim());
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    let request = builder.body(body).unwrap();
    let response = match request.uri().path() {
        "/v2/oauth2/authorize" => authorize(&target, fake, service),
        "/service/resource" => resource(&request, fake, service),
        "/v2/web/auth-code" => auth_code_page(&request),
        _ => crate::services::auth_api(&request, fake, service)
            .unwrap_or_else(|| fake.lock().unwrap().handle(&request, now())),
    };
    if let Some(hold) = hold_answer {
        std::thread::sleep(hold);
    }
    let mut head = format!("HTTP/1.1 {}\r\n", response.status());
    for (name, value) in response.headers() {
        let _ = write!(head, "{name}: {}\r\n", value.to_str().unwrap_or(""));
    }
    let _ = write!(
        head,
        "content-length: {}\r\nconnection: close\r\n\r\n",
        response.body().len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(response.body());
}

/// What a test browser does when asked to open an authorize URL: in the
/// background (the login listener answers only once `open` has returned),
/// first a forged visit to the listener with `forged_query`, then the
/// real one ([`follow_authorize_url`]). Returns the listener's status for
/// the forged visit on the channel `statuses`, if given.
pub fn forge_then_follow(url: &str, forged_query: &str, statuses: Option<mpsc::Sender<u16>>) {
    let forged = format!("{}/?{forged_query}", crate::redirect_uri_of(url));
    let url = url.to_owned();
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        if let Ok(response) = agent.get(&forged).call()
            && let Some(statuses) = statuses
        {
            let _ = statuses.send(response.status().as_u16());
        }
        follow_authorize_url(&url);
    });
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// Creates `<tmp>/globus-app-<name>-<pid>-<n>`.
    ///
    /// # Panics
    /// If the directory cannot be created.
    pub fn new(name: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("globus-app-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The browser's visit to the authorize URL: approve, redirect back with
/// `code` and `state`, and note whether the service's scope was asked for.
fn authorize(
    target: &str,
    fake: &Mutex<FakeGlobusAuth>,
    service: &Mutex<ServerState>,
) -> http::Response<Vec<u8>> {
    // The browser's visit: approve, redirect back with code and state.
    service
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .authorize_visits
        .push(Instant::now());
    let url = url::Url::parse(&format!("http://localhost{target}")).unwrap();
    let redirect_uri = url
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned());
    let query = fake.lock().unwrap().authorize(&url);
    let scope = url
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let mut service = service.lock().unwrap_or_else(PoisonError::into_inner);
    service.authorized_scopes.push(scope.clone());
    if service
        .required
        .as_deref()
        .is_some_and(|r| scope.contains(r))
    {
        service.granted = true;
    }
    drop(service);
    http::Response::builder()
        .status(302)
        .header(
            "location",
            format!("{}?{query}", redirect_uri.unwrap_or_default()),
        )
        .body(Vec::new())
        .unwrap()
}

/// `GET /service/resource`: a resource server that wants a live bearer
/// token and possibly a consent only a new login gives (answered with a GARE).
fn resource(
    request: &http::Request<Vec<u8>>,
    fake: &Mutex<FakeGlobusAuth>,
    service: &Mutex<ServerState>,
) -> http::Response<Vec<u8>> {
    // A resource server: it wants a live bearer token, and possibly a
    // consent only a new login can give (answered with a GARE).
    let bearer = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let live = fake.lock().unwrap().is_live(&bearer, now());
    let service = service.lock().unwrap_or_else(PoisonError::into_inner);
    let (status, body) = match (&service.required, service.granted) {
        _ if !live => (401, serde_json::json!({"code": "AuthenticationFailed"})),
        (Some(required), false) => (
            403,
            serde_json::json!({"code": "ConsentRequired", "errors": [{
                "code": "ConsentRequired",
                "authorization_parameters": {"required_scopes": [required], "session_message": "consent needed"}
            }]}),
        ),
        _ => (200, serde_json::json!({"DATA": []})),
    };
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap_or_default())
        .unwrap()
}

/// `GET /v2/web/auth-code`: the page native apps' default redirect lands on;
/// it shows the code.
fn auth_code_page(request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
    // The page native apps' default redirect lands on: it shows the code.
    let code = url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let escaped: String = code
        .chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            other => other.to_string(),
        })
        .collect();
    http::Response::builder()
        .status(200)
        .header("content-type", "text/html; charset=utf-8")
        .body(format!("<html><body><p>Authorization code:</p><code id=\"code\">{escaped}</code></body></html>").into_bytes())
        .unwrap()
}

/// An HTTP client that acts as a browser's first step would: it sees every
/// status and follows no redirect (the caller follows it, to see it).
pub(crate) fn browser_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// Does what a browser does with an authorize URL, on a new thread: visits
/// it (the server approves and redirects), then visits the redirect (the
/// app's loopback listener).
pub fn follow_authorize_url(url: &str) {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let agent = browser_agent();
        let Ok(redirect) = agent.get(&url).call() else {
            return;
        };
        let Some(location) = redirect
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
        else {
            return;
        };
        let _ = agent.get(location).call();
    });
}
