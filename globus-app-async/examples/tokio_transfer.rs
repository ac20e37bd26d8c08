//! Async Transfer under tokio: search for the tutorial collections, submit
//! a transfer between them, and wait for it to finish, showing its
//! progress (a bar on a terminal, a line per change otherwise).
//!
//! ```text
//! cargo run -p globus-app-async --example tokio_transfer -- --dev-server
//! GLOBUS_CLIENT_ID=<native app client id> cargo run -p globus-app-async --example tokio_transfer
//! ```
//!
//! With `--dev-server` it runs against a local Globus Auth and a
//! Transfer-shaped service on 127.0.0.1 (a stand-in browser approves the
//! login). The library assumes no runtime: tokio here runs the futures, and
//! the waits between polls sleep on the library's own thread pool.

use std::time::Duration;

use anyhow::Context as _;
use globus_app_async::login::{
    BrowserOpener, LocalServerLoginFlowManager, SystemBrowser, UnblockedLogin,
};
use globus_app_async::service::{TransferClient, TransferData};
use globus_app_async::{GlobusAppConfig, UserApp};

/// The dev server's stand-in browser: follows the URL, approving.
struct ApprovingBrowser;

impl BrowserOpener for ApprovingBrowser {
    fn open(&self, url: &str) -> Result<(), globus_app_async::login::BrowserError> {
        globus_app_dev_server::follow_authorize_url(url);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dev = std::env::args().any(|a| a == "--dev-server");
    let auth = dev.then(globus_app_dev_server::AuthServer::start);
    let services = auth
        .as_ref()
        .map(globus_app_dev_server::AuthServer::start_services);
    let flow = LocalServerLoginFlowManager::new().with_timeout(Duration::from_secs(300));
    let builder = match (&auth, &services) {
        (Some(auth), Some(services)) => UserApp::builder("Async Transfer")
            .client_id(globus_app_proto::testing::SIM_CLIENT_ID)
            .config(
                GlobusAppConfig::default()
                    .with_auth_base_url(auth.base_url.clone())
                    .with_service_url("transfer", services.base_url.clone()),
            )
            .token_storage(globus_app_blocking::storage::MemoryTokenStorage::new())
            .login_flow_manager(UnblockedLogin::new(
                flow.with_browser(ApprovingBrowser)
                    .allow_remote_session(true),
            )),
        _ => UserApp::builder("Async Transfer")
            .client_id(
                std::env::var("GLOBUS_CLIENT_ID")
                    .context(globus_app_dev_server::MISSING_CLIENT_ID)?,
            )
            .login_flow_manager(UnblockedLogin::new(flow.with_browser(SystemBrowser))),
    };
    let app = builder.build().await?;
    let transfer = TransferClient::new(&app)?;

    let found = transfer.endpoint_search("Tutorial Collection").await?;
    let ids: Vec<String> = found.data["DATA"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .collect();
    let [source, destination] = ids.get(..2).context("two tutorial collections")? else {
        anyhow::bail!("two tutorial collections");
    };
    println!("from {source} to {destination}");

    let task = transfer
        .submit_transfer(
            TransferData::new(source, destination)
                .label("globus-app async example")
                .item("/~/file1.txt", "/~/file1.txt", false)
                .item("/~/share/", "/~/share/", true),
        )
        .await?;
    let task_id = task.str_field("task_id")?;
    println!("submitted task {task_id}");
    let done = watch(&transfer, task_id).await?;
    let status = transfer.get_task(task_id).await?;
    println!("finished: {done}; status {}", status.data["status"]);
    Ok(())
}

/// Waits for the task (at most 10 minutes), showing its progress from
/// `task_states`: a bar on a terminal, else one line per change.
async fn watch(transfer: &TransferClient, task_id: &str) -> anyhow::Result<bool> {
    use futures::StreamExt as _;
    use std::io::IsTerminal as _;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} files")
        {
            bar.set_style(style);
        }
        bar
    });
    let mut states = std::pin::pin!(transfer.task_states(
        task_id,
        Duration::from_secs(600),
        Duration::from_secs(1)
    ));
    let mut last_line = String::new();
    while let Some(state) = states.next().await {
        let state = state?;
        let status = state
            .nice_status
            .clone()
            .unwrap_or_else(|| state.status.clone());
        if let Some(bar) = &bar {
            bar.set_length(state.files);
            bar.set_position(state.files_transferred);
            bar.set_message(status);
        } else {
            let line = format!(
                "{status}: {} of {} files, {} bytes, {} faults",
                state.files_transferred, state.files, state.bytes_transferred, state.faults
            );
            if line != last_line {
                eprintln!("{line}");
                last_line = line;
            }
        }
        if state.is_finished() {
            if let Some(bar) = &bar {
                bar.finish();
            }
            return Ok(true);
        }
    }
    Ok(false)
}
