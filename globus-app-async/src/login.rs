//! Async login flows: the flow managers of `globus-app-blocking`, run on the
//! `blocking` thread pool (the loopback listener needs no reactor).

use std::sync::Arc;

pub use globus_app_blocking::login::{
    AuthorizationResponse, BrowserError, BrowserOpener, CommandLineLoginFlowManager,
    LocalServerLoginFlowManager, LoginFlowError, LoginFlowManager, SystemBrowser,
};
use globus_app_proto::app::AuthorizePlan;

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

#[async_trait::async_trait]
impl AsyncLoginFlowManager for UnblockedLogin {
    async fn run(&self, plan: AuthorizePlan) -> Result<AuthorizationResponse, LoginFlowError> {
        let manager = Arc::clone(&self.0);
        blocking::unblock(move || manager.run(&plan)).await
    }
}
