//! The Python SDK's environment variables are read whether or not a
//! configuration is given, fill only what it leaves unset, and can be
//! turned off. The variables are set for a child run of this test binary
//! (setting them in a running test process is not thread-safe).

use std::process::Command;

use globus_app_blocking::proto::environment::Environment;
use globus_app_blocking::storage::MemoryTokenStorage;
use globus_app_blocking::{GlobusAppConfig, UserApp, UserAppBuilder};

const CHILD: &str = "GLOBUS_APP_ENVIRONMENT_TEST_CHILD";

fn builder() -> UserAppBuilder {
    UserApp::builder("Environment")
        .client_id("c")
        .token_storage(MemoryTokenStorage::new())
}

#[test]
fn environment_variables_fill_what_the_config_leaves_unset() {
    if std::env::var_os(CHILD).is_none() {
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "environment_variables_fill_what_the_config_leaves_unset",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env("GLOBUS_SDK_ENVIRONMENT", "sandbox")
            .env("GLOBUS_SDK_SERVICE_URL_AUTH", "http://127.0.0.1:9/")
            .output()
            .unwrap();
        assert!(
            child.status.success(),
            "the child run failed:\n{}{}",
            String::from_utf8_lossy(&child.stdout),
            String::from_utf8_lossy(&child.stderr)
        );
        return;
    }

    // A configuration that says nothing of the environment: both are read.
    let app = builder()
        .config(GlobusAppConfig::default().with_request_refresh_tokens(true))
        .build()
        .unwrap();
    let config = app.core().config();
    assert_eq!(config.resolved_environment(), Environment::Sandbox);
    assert!(config.request_refresh_tokens);
    assert_eq!(
        app.core().login_client().auth_base().as_str(),
        "http://127.0.0.1:9/"
    );

    // What the configuration sets wins.
    let app = builder()
        .config(
            GlobusAppConfig::default()
                .with_environment(Environment::Preview)
                .with_auth_base_url("http://127.0.0.1:10/"),
        )
        .build()
        .unwrap();
    assert_eq!(
        app.core().config().resolved_environment(),
        Environment::Preview
    );
    assert_eq!(
        app.core().login_client().auth_base().as_str(),
        "http://127.0.0.1:10/"
    );

    // Turned off: production defaults.
    let app = builder().read_environment_variables(false).build().unwrap();
    assert_eq!(
        app.core().config().resolved_environment(),
        Environment::Production
    );
    assert_eq!(
        app.core().login_client().auth_base().as_str(),
        "https://auth.globus.org/"
    );
}
