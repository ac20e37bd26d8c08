//! The Python SDK's own `GlobusApp` example, line for line:
//!
//! ```python
//! app = UserApp("myapp", client_id=NATIVE_CLIENT_ID)
//! transfer_client = TransferClient(app=app)
//! res = transfer_client.endpoint_search("Tutorial Collection")
//! ```
//!
//! ```text
//! cargo run -p globus-app-blocking --example transfer_search -- --dev-server
//! GLOBUS_CLIENT_ID=<native app client id> cargo run -p globus-app-blocking --example transfer_search
//! ```
//!
//! With `--dev-server` it runs against a local Globus Auth and a
//! Transfer-shaped service on 127.0.0.1 (a stand-in browser approves the
//! login); without, against Globus, opening your browser.

mod support;

use std::time::Duration;

use anyhow::Context as _;
use globus_app_blocking::login::{LocalServerLoginFlowManager, SystemBrowser};
use globus_app_blocking::service::TransferClient;
use globus_app_blocking::storage::MemoryTokenStorage;
use globus_app_blocking::{GlobusAppConfig, UserApp};

fn main() -> anyhow::Result<()> {
    let dev = std::env::args()
        .any(|a| a == "--dev-server")
        .then(support::DevServers::start);
    let flow = LocalServerLoginFlowManager::new().with_timeout(Duration::from_secs(300));
    let builder = match &dev {
        Some(servers) => UserApp::builder("myapp")
            .client_id(globus_app_proto::testing::SIM_CLIENT_ID)
            .config(servers.config())
            .token_storage(MemoryTokenStorage::new())
            .login_flow_manager(
                flow.with_browser(support::ApprovingBrowser)
                    .allow_remote_session(true),
            ),
        None => UserApp::builder("myapp")
            .client_id(std::env::var("GLOBUS_CLIENT_ID").context(
                "set GLOBUS_CLIENT_ID to a native app's client id, or pass --dev-server",
            )?)
            .config(GlobusAppConfig::default())
            .login_flow_manager(flow.with_browser(SystemBrowser)),
    };

    // app = UserApp("myapp", client_id=NATIVE_CLIENT_ID)
    let app = builder.build()?;
    // transfer_client = TransferClient(app=app)
    let transfer_client = TransferClient::new(&app)?;
    // res = transfer_client.endpoint_search("Tutorial Collection")
    let res = transfer_client.endpoint_search("Tutorial Collection")?;

    for endpoint in res.data["DATA"].as_array().into_iter().flatten() {
        println!("{}  {}", endpoint["id"], endpoint["display_name"]);
    }
    Ok(())
}
