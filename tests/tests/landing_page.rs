//! The login landing page in a real browser: headless Chromium (Debian's
//! `chromium`, which `.ci/run` installs) opens the authorize URL, follows
//! the redirect to the loopback listener and renders the page; the test
//! reads the rendered text and saves a screenshot in its temp folder (and
//! copies it to the folder `GLOBUS_APP_KEEP_SCREENSHOTS` names, if set).
//! Outside CI a missing Chromium skips the test; in CI it is a failure.

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use globus_app_blocking::login::{BrowserOpener, LocalServerLoginFlowManager};
use globus_app_blocking::storage::MemoryTokenStorage;
use globus_app_blocking::{GlobusAppConfig, UserApp};
use globus_app_proto::testing::SIM_CLIENT_ID;
use globus_app_tests::{AuthServer, TempDir};

/// Chromium: `GLOBUS_APP_CHROMIUM`, else `chromium` on the `PATH`.
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("GLOBUS_APP_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join("chromium"))
                    .find(|candidate| candidate.is_file())
            })
        });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide chromium for the landing-page test"
        );
        eprintln!("chromium not found: skipping the landing-page test");
    }
    found
}

/// A headless Chromium command with a profile in `profile`.
fn headless(chromium: &Path, profile: &Path) -> Command {
    let mut command = Command::new(chromium);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=900,700",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command.stdin(Stdio::null()).stderr(Stdio::null());
    command
}

/// Opens the authorize URL in headless Chromium and keeps the DOM it
/// rendered at the end (the landing page).
struct Chromium {
    binary: PathBuf,
    profile: PathBuf,
    dom: Arc<Mutex<Option<String>>>,
    /// Connections opened to the listener before Chromium starts: idle
    /// ones, and 8 that send a byte every 100 ms.
    crowd: Option<Crowd>,
}

/// Idle connections to the login listener, and 8 slow ones, held open.
#[derive(Default)]
struct Crowd {
    idle: usize,
    held: Mutex<Vec<TcpStream>>,
}

impl Crowd {
    fn gather(&self, url: &str) -> std::io::Result<()> {
        let redirect = url::Url::parse(&globus_app_tests::redirect_uri_of(url)).unwrap();
        let listener = SocketAddr::from(([127, 0, 0, 1], redirect.port().unwrap()));
        let mut held = self.held.lock().unwrap();
        for _ in 0..self.idle {
            held.push(TcpStream::connect(listener)?);
        }
        for _ in 0..8 {
            let mut slow = TcpStream::connect(listener)?;
            std::thread::spawn(move || {
                for byte in b"GET /?slow HTTP/1.1\r\nHost: x\r\n" {
                    if slow.write_all(&[*byte]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        Ok(())
    }
}

impl BrowserOpener for Chromium {
    fn open(&self, url: &str) -> Result<(), globus_app_blocking::login::BrowserError> {
        if let Some(crowd) = &self.crowd {
            crowd
                .gather(url)
                .map_err(globus_app_blocking::login::BrowserError::failed)?;
        }
        let mut command = headless(&self.binary, &self.profile);
        command.arg("--dump-dom").arg(url).stdout(Stdio::piped());
        let child = command
            .spawn()
            .map_err(globus_app_blocking::login::BrowserError::failed)?;
        let dom = Arc::clone(&self.dom);
        std::thread::spawn(move || {
            let output = child.wait_with_output().ok();
            *dom.lock().unwrap() = Some(output.map_or_else(String::new, |o| {
                String::from_utf8_lossy(&o.stdout).into_owned()
            }));
        });
        Ok(())
    }
}

/// The text a reader sees: the DOM without its tags, styles and entities.
fn rendered_text(dom: &str) -> String {
    let without_style = match (dom.find("<style"), dom.find("</style>")) {
        (Some(start), Some(end)) => format!("{}{}", &dom[..start], &dom[end..]),
        _ => dom.to_owned(),
    };
    let mut text = String::new();
    let mut in_tag = false;
    for c in without_style.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Logs in through headless Chromium; returns the login's result, when it
/// returned, and the DOM Chromium rendered.
fn login_in_chromium(
    chromium: &Path,
    dir: &Path,
    server: &AuthServer,
    crowd: Option<Crowd>,
) -> (Result<(), globus_app_blocking::Error>, Instant, String) {
    login_in_chromium_with(chromium, dir, server, crowd, None)
}

/// [`login_in_chromium`] with the landing page from `template`, if given.
fn login_in_chromium_with(
    chromium: &Path,
    dir: &Path,
    server: &AuthServer,
    crowd: Option<Crowd>,
    template: Option<&str>,
) -> (Result<(), globus_app_blocking::Error>, Instant, String) {
    let dom = Arc::new(Mutex::new(None));
    let browser = Chromium {
        binary: chromium.to_owned(),
        profile: dir.join("profile"),
        dom: Arc::clone(&dom),
        crowd,
    };
    let app = UserApp::builder("Landing Page Test")
        .client_id(SIM_CLIENT_ID)
        .config(GlobusAppConfig::default().with_auth_base_url(server.base_url.clone()))
        .read_environment_variables(false)
        .token_storage(MemoryTokenStorage::new())
        .login_flow_manager({
            let flow = LocalServerLoginFlowManager::new()
                .with_browser(browser)
                .with_timeout(Duration::from_secs(60))
                .allow_remote_session(true);
            match template {
                Some(template) => flow.with_html_template(template),
                None => flow,
            }
        })
        .build()
        .unwrap();
    let result = app.login().map(drop);
    let finished = Instant::now();
    let started = Instant::now();
    let rendered = loop {
        if let Some(rendered) = dom.lock().unwrap().take() {
            break rendered;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "chromium did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    (result, finished, rendered)
}

/// Saves `dom` beside a screenshot of it, both in `dir`.
fn screenshot(chromium: &Path, dir: &Path, name: &str, dom: &str) -> PathBuf {
    let page = dir.join(format!("{name}.html"));
    std::fs::write(&page, dom).unwrap();
    let picture = dir.join(format!("{name}.png"));
    let status = headless(chromium, &dir.join("profile"))
        .arg(format!("--screenshot={}", picture.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    // To look at them after the test (its folder is removed).
    if let Some(keep) = std::env::var_os("GLOBUS_APP_KEEP_SCREENSHOTS") {
        std::fs::copy(&picture, Path::new(&keep).join(format!("{name}.png"))).unwrap();
    }
    picture
}

#[test]
fn the_landing_page_renders_in_chromium_after_a_login_and_a_failed_login() {
    let Some(chromium) = chromium() else {
        return;
    };
    let dir = TempDir::new("landing-page");
    let server = AuthServer::start();

    let (result, _, dom) = login_in_chromium(&chromium, &dir.0, &server, None);
    result.unwrap();
    let text = rendered_text(&dom);
    assert!(text.contains("Login successful"), "{text}");
    assert!(text.contains("You can close this tab"), "{text}");
    let picture = screenshot(&chromium, &dir.0, "success", &dom);
    assert!(std::fs::metadata(&picture).unwrap().len() > 1000);

    server.fake().deny_next_authorization = true;
    let (result, _, dom) = login_in_chromium(&chromium, &dir.0, &server, None);
    assert!(result.is_err());
    let text = rendered_text(&dom);
    assert!(text.contains("Login failed"), "{text}");
    assert!(
        text.contains("Globus Auth did not complete the login"),
        "{text}"
    );
    assert!(
        text.contains("Return to the application to try again"),
        "{text}"
    );
    let picture = screenshot(&chromium, &dir.0, "failed", &dom);
    assert!(std::fs::metadata(&picture).unwrap().len() > 1000);

    // A description with bidirectional controls (a right-to-left override,
    // an isolate): shown, but without the controls that would reorder it.
    {
        let mut fake = server.fake();
        fake.deny_next_authorization = true;
        fake.denial_description =
            "Declined \u{202E}gnp.exe\u{202C} by \u{2066}policy\u{2069} rules".into();
    }
    let (result, _, dom) = login_in_chromium(&chromium, &dir.0, &server, None);
    assert!(result.is_err());
    let text = rendered_text(&dom);
    assert!(text.contains("Declined gnp.exe by policy rules"), "{text}");
    let bidi = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    assert!(!dom.contains(bidi), "a bidirectional control in the DOM");
}

#[test]
fn chromium_logs_in_while_256_idle_and_8_slow_connections_hold_the_listener() {
    let Some(chromium) = chromium() else {
        return;
    };
    let dir = TempDir::new("landing-page-crowd");
    let server = AuthServer::start();
    let crowd = Crowd {
        idle: 256,
        ..Crowd::default()
    };
    let (result, answered, dom) = login_in_chromium(&chromium, &dir.0, &server, Some(crowd));
    result.unwrap();
    assert!(rendered_text(&dom).contains("Login successful"));
    // From Chromium's visit to the authorize page (answered at once with
    // the redirect to the listener) to the login's end: the redirect was
    // served, and the code exchanged, in that time.
    let visited = server.last_authorize_visit().unwrap();
    let waited = answered.duration_since(visited);
    println!("authorize visit to the end of the login: {waited:?}");
    // Before, the crowd kept the redirect out until the login timed out (an
    // error above); the bound only keeps a stall from passing.
    assert!(
        waited < globus_app_tests::stuck_after(Duration::ZERO),
        "{waited:?}"
    );
}

#[test]
fn no_invisible_or_direction_changing_character_reaches_the_page_or_the_error() {
    let Some(chromium) = chromium() else {
        return;
    };
    let dir = TempDir::new("landing-page-hidden");
    let server = AuthServer::start();
    let hidden = globus_app_proto::testing::hidden_characters();
    // Short pieces: server text is cut at 300 characters.
    let piece = |from: usize| hidden.chars().skip(from).take(60).collect::<String>();
    let template = format!(
        "<html><body><h1>{hidden}$login_result</h1><p>x{hidden}y $post_login_message</p></body></html>"
    );
    let shows_none = |text: &str| !text.chars().any(globus_app_proto::redaction::is_hidden);
    for from in (0..hidden.chars().count()).step_by(60) {
        {
            let mut fake = server.fake();
            fake.deny_next_authorization = true;
            fake.denial_error = format!("access{}_denied", piece(from));
            fake.denial_description = format!("Declined {} here", piece(from));
        }
        let (result, _, dom) =
            login_in_chromium_with(&chromium, &dir.0, &server, None, Some(&template));
        let error = result.unwrap_err();
        assert!(shows_none(&dom), "a hidden character in the DOM: {dom:?}");
        assert!(rendered_text(&dom).contains("Declined here"), "{dom}");
        assert!(rendered_text(&dom).contains("xy"), "{dom}");
        for shown in [
            error.to_string(),
            format!("{error:?}"),
            format!("{error:#?}"),
        ] {
            assert!(
                shows_none(&shown),
                "a hidden character in the error: {shown:?}"
            );
        }
        // The code, its hidden characters dropped, is one Globus Auth
        // defines again.
        assert!(format!("{error:?}").contains("AccessDenied"), "{error:?}");
    }
}
