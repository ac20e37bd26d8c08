//! The server's fidelity, checked by an independent client: the Python
//! SDK's own `UserApp` logs in (authorization code with PKCE, id_token
//! decoded against our JWKS), refreshes and logs out against it, and its
//! `ClientApp` gets client-credentials tokens (HTTP Basic) and logs out.

use std::process::Command;

use globus_app_blocking::storage::{MemoryTokenStorage, TokenStorage};
use globus_app_blocking::{ClientApp, GlobusAppConfig};
use globus_app_proto::testing::SIM_CLIENT_ID;
use globus_app_tests::AuthServer;

const SCRIPT: &str = r#"
import http.client, sys, urllib.parse
from globus_sdk import GlobusAppConfig, UserApp
from globus_sdk.login_flows import CommandLineLoginFlowManager

class ApprovingUser(CommandLineLoginFlowManager):
    """Visits the authorize URL like a browser and reads the code off the redirect."""
    def print_authorize_url(self, url):
        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(parts.netloc)
        connection.request("GET", parts.path + "?" + parts.query)
        location = connection.getresponse().getheader("Location")
        self.code = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]
    def prompt_for_code(self):
        return self.code

if sys.argv[2] == "client":
    from globus_sdk import ClientApp
    service = ClientApp(
        "Python Service",
        client_id=sys.argv[1],
        client_secret="python-secret",
        scope_requirements={"transfer.api.globus.org": "urn:globus:auth:scope:transfer.api.globus.org:all"},
        config=GlobusAppConfig(token_storage="memory"),
    )
    service.login()
    print("CLIENT IDENTITY", service.token_storage.get_token_data("auth.globus.org").identity_id)
    header = service.get_authorizer("transfer.api.globus.org").get_authorization_header()
    assert header.startswith("Bearer at-")
    service.logout()
    print("PYTHON CLIENT OK")
    sys.exit(0)

app = UserApp(
    "Python Fidelity",
    client_id=sys.argv[1],
    scope_requirements={"transfer.api.globus.org": "urn:globus:auth:scope:transfer.api.globus.org:all"},
    config=GlobusAppConfig(login_flow_manager=ApprovingUser, token_storage="memory", request_refresh_tokens=True),
)
assert app.login_required()
app.login()
assert not app.login_required()
authorizer = app.get_authorizer("transfer.api.globus.org")
first = authorizer.get_authorization_header()
authorizer.handle_missing_authorization()  # as after a 401: refresh
second = authorizer.get_authorization_header()
assert first != second, "refreshed"
print("IDENTITY", app.token_storage.identity_id)
app.logout()
assert app.login_required()
print("PYTHON CLIENT OK")
"#;

/// Runs the script in `mode` ("user" or "client") against `server`.
fn run_python(python: &str, server: &AuthServer, mode: &str) -> String {
    let output = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(SIM_CLIENT_ID)
        .arg(mode)
        .env("GLOBUS_SDK_SERVICE_URL_AUTH", &server.base_url)
        .env("GLOBUS_SDK_ENVIRONMENT", "production")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && stdout.contains("PYTHON CLIENT OK"),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_python_sdk_logs_in_refreshes_and_logs_out_against_the_server() {
    let Some(python) = globus_app_tests::python_reference() else {
        return;
    };
    let server = AuthServer::start();
    let stdout = run_python(&python, &server, "user");
    assert!(stdout.contains(&format!(
        "IDENTITY {}",
        globus_app_proto::testing::SimUser::A.identity()
    )));
    let fake = server.fake();
    let grants: Vec<_> = fake
        .requests
        .iter()
        .filter_map(|r| r.field("grant_type"))
        .collect();
    assert_eq!(grants, ["authorization_code", "refresh_token"]);
    let exchange = fake
        .requests
        .iter()
        .find(|r| r.field("grant_type") == Some("authorization_code"))
        .unwrap();
    assert_eq!(exchange.field("code_verifier").map(str::len), Some(43));
    assert_eq!(fake.count("/.well-known/openid-configuration"), 1);
    assert_eq!(fake.count("/jwk.json"), 1);
    assert!(fake.count("/v2/oauth2/token/revoke") >= 2);
}

#[test]
fn the_python_sdk_client_app_gets_client_credentials_from_the_server() {
    let Some(python) = globus_app_tests::python_reference() else {
        return;
    };
    let server = AuthServer::start();
    server.fake().client_secret = Some("python-secret".into());
    let stdout = run_python(&python, &server, "client");
    // Both verify the client-credentials id_token and store the client's
    // own identity on its auth.globus.org record.
    assert!(
        stdout.contains(&format!("CLIENT IDENTITY {SIM_CLIENT_ID}\n")),
        "{stdout}"
    );
    let storage = MemoryTokenStorage::new();
    let rust = ClientApp::builder("Rust Service")
        .client_id(SIM_CLIENT_ID)
        .client_secret("python-secret")
        .scope_requirements(
            "transfer.api.globus.org",
            "urn:globus:auth:scope:transfer.api.globus.org:all",
        )
        .config(GlobusAppConfig::default().with_auth_base_url(server.base_url.clone()))
        .read_environment_variables(false)
        .token_storage(storage.clone())
        .build()
        .unwrap();
    rust.login().unwrap();
    let auth = storage.load().unwrap();
    assert_eq!(
        auth.get("auth.globus.org").unwrap().identity_id.as_deref(),
        Some(SIM_CLIENT_ID)
    );
    let fake = server.fake();
    let grants: Vec<_> = fake
        .requests
        .iter()
        .filter_map(|r| r.field("grant_type"))
        .collect();
    // (The Python ClientApp asks again when it builds its authorizer.)
    assert!(
        !grants.is_empty() && grants.iter().all(|g| *g == "client_credentials"),
        "{grants:?}"
    );
    assert!(fake.count("/v2/oauth2/token/revoke") >= 1);
}
