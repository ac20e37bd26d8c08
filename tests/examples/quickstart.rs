//! A complete Globus session against the simulated Globus Auth, with the
//! token file written to disk in the Python SDK's format.
//!
//! ```text
//! cargo run -p globus-app-tests --example quickstart
//! ```
//!
//! Today the "server" is the in-process fake of `globus_app_proto::testing`
//! and the "browser" approves at once; the HTTP adapters and the local
//! HTTP server will replace both without changing the app logic shown here.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use globus_app_proto::UnixTime;
use globus_app_proto::app::{
    Action, AuthorizationResponse, GlobusApp, GlobusAppConfig, Input, Operation, Step, TokenSet,
};
use globus_app_proto::storage::{
    DEFAULT_NAMESPACE, JsonTokenFile, TokenFileFormat, default_token_file_relative_path,
};
use globus_app_proto::testing::{FakeGlobusAuth, SIM_CLIENT_ID, SIM_START};

const TRANSFER: &str = "transfer.api.globus.org";

/// The token file and the fake server, as an adapter would hold them.
struct Session {
    auth: FakeGlobusAuth,
    token_file: PathBuf,
    now: UnixTime,
}

impl Session {
    fn load(&self) -> JsonTokenFile {
        match fs::read(&self.token_file) {
            Ok(bytes) => JsonTokenFile::parse(&bytes).expect("the token file is valid"),
            Err(_) => JsonTokenFile::new(),
        }
    }

    fn save(&self, file: &JsonTokenFile) {
        // Write a sibling temp file, then rename over the token file.
        let tmp = self.token_file.with_extension("json.tmp");
        let mut out = fs::File::create(&tmp).expect("create the temp file");
        out.write_all(&file.to_bytes()).expect("write tokens");
        out.sync_all().expect("sync tokens");
        fs::rename(&tmp, &self.token_file).expect("replace the token file");
    }

    fn drive<O: Operation>(&mut self, mut op: O) -> O::Output {
        let mut input = None;
        loop {
            let action = match op.advance(input.take(), self.now) {
                Step::Done(output) => return output,
                Step::Action(action) => action,
            };
            input = Some(match action {
                Action::LoadTokens => Input::Tokens(TokenSet::new(
                    self.load()
                        .get_all(DEFAULT_NAMESPACE)
                        .expect("valid records"),
                )),
                Action::StoreTokens(records) => {
                    let mut file = self.load();
                    file.store(DEFAULT_NAMESPACE, &records);
                    self.save(&file);
                    Input::Stored
                }
                Action::RemoveTokens(servers) => {
                    let mut file = self.load();
                    for rs in &servers {
                        file.remove(DEFAULT_NAMESPACE, rs);
                    }
                    self.save(&file);
                    Input::Removed
                }
                Action::Lock(_) => Input::Locked,
                Action::Unlock(_) => Input::Unlocked,
                Action::Send(request) => {
                    let request = request.into_http();
                    println!("   -> {} {}", request.method(), request.uri().path());
                    Input::Response(self.auth.handle(&request, self.now))
                }
                // A demo value; the adapters draw these from the OS.
                Action::Random => Input::Random(Box::new([42; 64])),
                Action::Authorize(plan) => {
                    let redirect_uri = plan
                        .redirect_uri()
                        .unwrap_or("http://127.0.0.1:50000")
                        .to_owned();
                    let url = plan.url(&redirect_uri);
                    println!(
                        "   open in a browser: {}...",
                        &url.as_str()[..80.min(url.as_str().len())]
                    );
                    println!("   (the simulated user approves)");
                    let query = self.auth.authorize(&url);
                    Input::Authorization(AuthorizationResponse::Redirect {
                        query,
                        redirect_uri,
                    })
                }
                other => panic!("this demo does not perform {other:?}"),
            });
        }
    }
}

fn step(title: &str) {
    println!("\n== {title}");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = GlobusApp::user("Quickstart")
        .client_id(SIM_CLIENT_ID)
        .scope_requirements(
            TRANSFER,
            "urn:globus:auth:scope:transfer.api.globus.org:all",
        )
        .config(GlobusAppConfig::default().with_request_refresh_tokens(true))
        .hostname("demo-host")
        .build()?;

    let base = std::env::temp_dir().join(format!("globus-app-quickstart-{}", std::process::id()));
    let relative = default_token_file_relative_path(
        app.client_id(),
        app.app_name(),
        "production",
        TokenFileFormat::Json,
    )?;
    let token_file: PathBuf = relative.iter().fold(base.clone(), |p, c| p.join(c));
    fs::create_dir_all(token_file.parent().unwrap_or(Path::new(".")))?;
    let mut session = Session {
        auth: FakeGlobusAuth::new(),
        token_file,
        now: SIM_START,
    };

    step("1. Is a login required?");
    println!("   {}", session.drive(app.login_required())?);

    step("2. Log in (authorization code with PKCE, id_token verified)");
    let outcome = session.drive(app.login(None, false))?;
    println!("   {outcome:?}");
    println!("   token file written: {}", session.token_file.display());
    let text = fs::read_to_string(&session.token_file)?;
    println!(
        "   it holds {} resource servers, format 2.0",
        text.matches("\"resource_server\"").count()
    );

    step("3. The Authorization header for a Transfer call");
    let authorization = session.drive(app.get_authorizer(TRANSFER))?;
    println!(
        "   Authorization: Bearer <{} characters, expires at {}>",
        authorization.access_token().secret().len(),
        authorization.expires_at().as_secs()
    );

    step("4. Two days pass: the access token expires and is refreshed");
    session.now = session.now.saturating_add_secs(2 * 24 * 3600);
    let refreshed = session.drive(app.get_authorizer(TRANSFER))?;
    assert_ne!(refreshed.access_token(), authorization.access_token());
    println!(
        "   new token, expires at {}",
        refreshed.expires_at().as_secs()
    );

    step("5. Log out: revoke every token and remove it");
    let report = session.drive(app.logout(false))?;
    println!(
        "   revoked: {:?}, failed: {}",
        report.revoked,
        report.failed.len()
    );
    assert!(report.is_complete());
    println!(
        "   login required again: {}",
        session.drive(app.login_required())?
    );

    fs::remove_dir_all(&base)?;
    println!("\nDone.");
    Ok(())
}
