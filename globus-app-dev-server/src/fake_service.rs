//! A Globus-service stand-in on 127.0.0.1 for the authorized clients: it
//! records the `Authorization` header of each request and answers 401 to
//! rejected tokens, then whatever was scripted, then 200.

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    reject_all: bool,
    rejected: HashSet<String>,
    script: VecDeque<(u16, String)>,
    seen: Vec<Option<String>>,
}

/// The fake service; it stops with the test process (its accept loop is
/// bounded to two minutes).
pub struct FakeService {
    /// `http://127.0.0.1:<port>/`.
    pub base_url: String,
    /// `127.0.0.1:<port>`, to map to a resource server.
    pub authority: String,
    state: Arc<Mutex<State>>,
}

impl FakeService {
    /// Starts the service on an ephemeral port.
    ///
    /// # Panics
    /// If no port can be bound.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        let state: Arc<Mutex<State>> = Arc::default();
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => serve(stream, &shared),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            base_url: format!("http://{authority}/"),
            authority,
            state,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers 401 to `access_token` from now on.
    pub fn reject(&self, access_token: &str) {
        self.state().rejected.insert(access_token.to_owned());
    }

    /// Answers 401 to every token.
    pub fn reject_all(&self) {
        self.state().reject_all = true;
    }

    /// The next accepted request gets `status` and `body`.
    pub fn answer_next(&self, status: u16, body: &serde_json::Value) {
        self.state().script.push_back((status, body.to_string()));
    }

    /// The `Authorization` header of every request so far, in order.
    pub fn requests(&self) -> Vec<Option<String>> {
        self.state().seen.clone()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(stream) => stream,
        Err(_) => return,
    });
    let mut authorization = None;
    // The request line and headers (these requests have no body).
    for _ in 0..100 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_owned());
        }
    }
    let (status, body) = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        state.seen.push(authorization.clone());
        let token = authorization
            .as_deref()
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        if state.reject_all || state.rejected.contains(token) {
            (401, r#"{"code": "AuthenticationFailed"}"#.to_owned())
        } else {
            state
                .script
                .pop_front()
                .unwrap_or((200, r#"{"ok": true}"#.to_owned()))
        }
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}
