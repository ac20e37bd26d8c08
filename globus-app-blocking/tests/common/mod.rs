//! A fake Globus Auth served over HTTP on 127.0.0.1, for the adapter's
//! tests: `globus_app_proto::testing::FakeGlobusAuth` behind a small
//! std-thread HTTP/1.1 server (one request per connection).

// Each test binary uses a different part of this module.
#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    missing_docs,
    clippy::missing_panics_doc
)]

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use globus_app_proto::UnixTime;
use globus_app_proto::testing::FakeGlobusAuth;

pub use globus_app_proto::testing::SIM_CLIENT_ID;

pub struct AuthServer {
    pub base_url: String,
    fake: Arc<Mutex<FakeGlobusAuth>>,
}

pub fn now() -> UnixTime {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    UnixTime::from_secs(i64::try_from(secs).unwrap())
}

impl AuthServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}/", listener.local_addr().unwrap());
        let mut fake = FakeGlobusAuth::new();
        fake.base_url.clone_from(&base_url);
        let fake = Arc::new(Mutex::new(fake));
        let shared = Arc::clone(&fake);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let fake = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &fake));
            }
        });
        Self { base_url, fake }
    }

    pub fn fake(&self) -> MutexGuard<'_, FakeGlobusAuth> {
        self.fake.lock().unwrap()
    }
}

fn serve(mut stream: TcpStream, fake: &Mutex<FakeGlobusAuth>) {
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
    let response = if request.uri().path() == "/v2/oauth2/authorize" {
        // The browser's visit: approve, redirect back with code and state.
        let url = url::Url::parse(&format!("http://localhost{target}")).unwrap();
        let redirect_uri = url
            .query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .map(|(_, v)| v.into_owned());
        let query = fake.lock().unwrap().authorize(&url);
        http::Response::builder()
            .status(302)
            .header(
                "location",
                format!("{}?{query}", redirect_uri.unwrap_or_default()),
            )
            .body(Vec::new())
            .unwrap()
    } else {
        fake.lock().unwrap().handle(&request, now())
    };
    let mut head = format!("HTTP/1.1 {}\r\n", response.status());
    for (name, value) in response.headers() {
        let _ = write!(head, "{name}: {}\r\n", value.to_str().unwrap_or(""));
    }
    let _ = write!(
        head,
        "content-length: {}
connection: close

",
        response.body().len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(response.body());
}

/// A "browser" that follows the authorize URL over HTTP: the server
/// approves and redirects to the loopback listener, which is then visited.
#[derive(Clone, Copy)]
pub struct FollowingBrowser;

impl globus_app_blocking::login::BrowserOpener for FollowingBrowser {
    fn open(&self, url: &str) -> Result<(), String> {
        let url = url.to_owned();
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .max_redirects(0)
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(10)))
                .build()
                .into();
            let redirect = agent.get(&url).call().unwrap();
            let location = redirect.headers()["location"].to_str().unwrap().to_owned();
            let _ = agent.get(&location).call();
        });
        Ok(())
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "globus-app-blocking-{name}-{}-{n}",
            std::process::id()
        ));
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
