//! Async login flows: the flow managers of `globus-app-blocking`, run on the
//! `blocking` thread pool (the loopback listener needs no reactor).

use std::sync::Arc;

pub use globus_app_blocking::login::{
    AuthorizationResponse, BrowserError, BrowserOpener, CommandLineLoginFlowManager,
    LocalServerLoginFlowManager, LoginFlowError, LoginFlowManager, SystemBrowser,
};
use globus_app_proto::app::{AuthorizePlan, Cancellation};

/// The interactive part of a login, asynchronously.
#[async_trait::async_trait]
pub trait AsyncLoginFlowManager: Send + Sync {
    /// Shows or opens the authorize URL of `plan` and returns what comes back.
    async fn run(&self, plan: AuthorizePlan) -> Result<AuthorizationResponse, LoginFlowError>;
}

/// Any synchronous [`LoginFlowManager`], run on the `blocking` pool.
#[derive(Clone)]
pub struct UnblockedLogin(pub Arc<dyn LoginFlowManager>);

impl UnblockedLogin {
    /// Wraps a synchronous flow manager.
    pub fn new(manager: impl LoginFlowManager + 'static) -> Self {
        Self(Arc::new(manager))
    }
}

impl std::fmt::Debug for UnblockedLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnblockedLogin")
    }
}

/// Cancels a flow's run when dropped: with the future that awaits it.
struct CancelOnDrop(Cancellation);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

#[async_trait::async_trait]
impl AsyncLoginFlowManager for UnblockedLogin {
    /// Runs the flow on the `blocking` pool. Dropping the future cancels
    /// the run: the built-in flows stop their listener (its port then
    /// refuses connections) and their prompt within 25 ms.
    async fn run(&self, mut plan: AuthorizePlan) -> Result<AuthorizationResponse, LoginFlowError> {
        let manager = Arc::clone(&self.0);
        let run = plan.cancellation().child();
        plan.set_cancellation(run.clone());
        let _cancel_on_drop = CancelOnDrop(run);
        blocking::unblock(move || manager.run(&plan)).await
    }
}
