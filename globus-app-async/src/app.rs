//! `UserApp` and `ClientApp`: the app core driven asynchronously.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use globus_app_blocking::http::RetryPolicy;
use globus_app_blocking::storage::{RenewalGuard, StorageError};
use globus_app_blocking::{
    DefaultTokenStorage, build_core, default_login_flow_manager, default_token_storage,
};
pub use globus_app_blocking::{Error, config_from_env};
use globus_app_proto::app::{
    Action, AppError, Authorization, GlobusApp, GlobusAppConfig, Input, IoFailure, IoFailureKind,
    LoginOutcome, LogoutReport, Operation, ScopeRequirements, Step,
};
use globus_app_proto::auth_params::AuthorizationParameters;
use globus_app_proto::scope::ScopeParseError;
use globus_app_proto::secret::ClientSecret;

use crate::http::{AsyncHttpClient, Sleeper, ThreadPoolSleeper, send_with_retries};
use crate::login::{AsyncLoginFlowManager, UnblockedLogin};
use crate::storage::{AsyncTokenStorage, Unblocked};

/// Per-resource-server async locks: tasks waiting for a renewal yield to the
/// executor instead of holding a thread.
#[derive(Default)]
struct RenewalLocks(Mutex<HashMap<String, Arc<async_lock::Mutex<()>>>>);

impl RenewalLocks {
    fn get(&self, resource_server: &str) -> Arc<async_lock::Mutex<()>> {
        let mut locks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(locks.entry(resource_server.to_owned()).or_default())
    }
}

/// A held renewal: the async lock of this process, then the storage's
/// (cross-process) lock. Dropping it — also by dropping the future that
/// holds it — releases both.
struct HeldRenewal {
    resource_server: String,
    _storage: RenewalGuard,
    _in_process: async_lock::MutexGuardArc<()>,
}

#[derive(Clone)]
struct Driver {
    app: GlobusApp,
    storage: Arc<dyn AsyncTokenStorage>,
    http: Arc<dyn AsyncHttpClient>,
    login: Option<Arc<dyn AsyncLoginFlowManager>>,
    sleeper: Arc<dyn Sleeper>,
    retry: RetryPolicy,
    renewals: Arc<RenewalLocks>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

fn failure(kind: IoFailureKind, error: &dyn std::fmt::Display, retryable: bool) -> Input {
    Input::Failed(IoFailure {
        kind,
        message: error.to_string(),
        retryable,
    })
}

impl Driver {
    /// The one loop that drives every operation, as in the blocking crate.
    async fn drive<T, O: Operation<Output = Result<T, AppError>> + Send>(
        &self,
        mut op: O,
    ) -> Result<T, Error> {
        let mut held: Vec<HeldRenewal> = Vec::new();
        let mut last_failure: Option<Error> = None;
        let mut input = None;
        loop {
            let action = match op.advance(input.take(), globus_app_blocking::now()) {
                Step::Done(Ok(output)) => return Ok(output),
                Step::Done(Err(AppError::Io(io))) => {
                    return Err(last_failure.unwrap_or(Error::App(AppError::Io(io))));
                }
                Step::Done(Err(e)) => return Err(e.into()),
                Step::Action(action) => action,
            };
            input = Some(self.perform(action, &mut held, &mut last_failure).await);
        }
    }

    async fn perform(
        &self,
        action: Action,
        held: &mut Vec<HeldRenewal>,
        failed: &mut Option<Error>,
    ) -> Input {
        let storage = |result: Result<Input, StorageError>, failed: &mut Option<Error>| {
            result.unwrap_or_else(|e| {
                let input = failure(IoFailureKind::Storage, &e, false);
                *failed = Some(e.into());
                input
            })
        };
        match action {
            Action::LoadTokens => storage(self.storage.load().await.map(Input::Tokens), failed),
            Action::StoreTokens(records) => storage(
                self.storage.store(records).await.map(|()| Input::Stored),
                failed,
            ),
            Action::RemoveTokens(servers) => storage(
                self.storage.remove(servers).await.map(|()| Input::Removed),
                failed,
            ),
            Action::Lock(rs) => {
                let in_process = self.renewals.get(&rs).lock_arc().await;
                match self.storage.lock_renewal(rs.clone()).await {
                    Ok(guard) => {
                        held.push(HeldRenewal {
                            resource_server: rs,
                            _storage: guard,
                            _in_process: in_process,
                        });
                        Input::Locked
                    }
                    Err(e) => {
                        let input = failure(IoFailureKind::Lock, &e, true);
                        *failed = Some(e.into());
                        input
                    }
                }
            }
            Action::Unlock(rs) => {
                held.retain(|h| h.resource_server != rs);
                Input::Unlocked
            }
            Action::Send(request) => {
                match send_with_retries(
                    self.http.as_ref(),
                    request,
                    self.retry,
                    self.sleeper.as_ref(),
                )
                .await
                {
                    Ok(response) => Input::Response(response),
                    Err(e) => {
                        let input = failure(IoFailureKind::Transport, &e, true);
                        *failed = Some(e.into());
                        input
                    }
                }
            }
            Action::Random => {
                let mut bytes = Box::new([0u8; 64]);
                match getrandom::fill(&mut bytes[..]) {
                    Ok(()) => Input::Random(bytes),
                    Err(e) => failure(
                        IoFailureKind::Interaction,
                        &format!("no secure randomness: {e}"),
                        false,
                    ),
                }
            }
            Action::Authorize(plan) => {
                let Some(login) = &self.login else {
                    *failed = Some(Error::MissingCustom("login flow manager"));
                    return failure(IoFailureKind::Interaction, &"no login flow manager", false);
                };
                match login.run(plan).await {
                    Ok(response) => Input::Authorization(response),
                    Err(e) => {
                        let input = failure(IoFailureKind::Interaction, &e, false);
                        *failed = Some(e.into());
                        input
                    }
                }
            }
            other => failure(
                IoFailureKind::Interaction,
                &format!("unsupported action {other:?}"),
                false,
            ),
        }
    }
}

/// Builds an async [`UserApp`] or [`ClientApp`].
#[must_use]
pub struct AppBuilder {
    core: globus_app_proto::app::AppBuilder,
    config: Option<GlobusAppConfig>,
    storage: Option<Arc<dyn AsyncTokenStorage>>,
    http: Option<Arc<dyn AsyncHttpClient>>,
    login: Option<Arc<dyn AsyncLoginFlowManager>>,
    sleeper: Arc<dyn Sleeper>,
    retry: RetryPolicy,
}

impl AppBuilder {
    fn new(core: globus_app_proto::app::AppBuilder) -> Self {
        Self {
            core,
            config: None,
            storage: None,
            http: None,
            login: None,
            sleeper: Arc::new(ThreadPoolSleeper),
            retry: RetryPolicy::default(),
        }
    }

    /// The client id.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.core = self.core.client_id(client_id);
        self
    }

    /// The client secret (confidential clients; required for `ClientApp`).
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.core = self.core.client_secret(ClientSecret::new(secret));
        self
    }

    /// Adds required scopes (a scope string) for a resource server.
    pub fn scope_requirements(
        mut self,
        resource_server: impl Into<String>,
        scopes: impl Into<String>,
    ) -> Self {
        self.core = self.core.scope_requirements(resource_server, scopes);
        self
    }

    /// The configuration (default: [`config_from_env`]).
    pub fn config(mut self, config: GlobusAppConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// A token storage to use instead of the configured one.
    pub fn token_storage(mut self, storage: impl AsyncTokenStorage + 'static) -> Self {
        self.storage = Some(Arc::new(storage));
        self
    }

    /// A login flow manager to use instead of the configured one.
    pub fn login_flow_manager(mut self, manager: impl AsyncLoginFlowManager + 'static) -> Self {
        self.login = Some(Arc::new(manager));
        self
    }

    /// The HTTP client (default: `SurfClient`, feature `surf`).
    pub fn http_client(mut self, client: impl AsyncHttpClient + 'static) -> Self {
        self.http = Some(Arc::new(client));
        self
    }

    /// How retries wait (default: on the `blocking` thread pool).
    pub fn sleeper(mut self, sleeper: impl Sleeper + 'static) -> Self {
        self.sleeper = Arc::new(sleeper);
        self
    }

    /// The retry policy for Globus Auth requests.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    async fn build_driver(self) -> Result<Driver, Error> {
        let Self {
            core,
            config,
            storage,
            http,
            login,
            sleeper,
            retry,
        } = self;
        // Reading the environment and the host name, and opening the
        // configured storage, are blocking calls: off the executor. What to
        // build is decided once, in the blocking crate.
        let wants_default_storage = storage.is_none();
        let (app, default_storage) = blocking::unblock(move || -> Result<_, Error> {
            let app = build_core(core, config)?;
            let default_storage = if wants_default_storage {
                Some(default_token_storage(&app)?)
            } else {
                None
            };
            Ok((app, default_storage))
        })
        .await?;
        let storage: Arc<dyn AsyncTokenStorage> = match (storage, default_storage) {
            (Some(storage), _) => storage,
            (None, Some(DefaultTokenStorage::Json(storage))) => Arc::new(Unblocked::new(storage)),
            (None, Some(DefaultTokenStorage::Sqlite(storage))) => Arc::new(Unblocked::new(storage)),
            (None, Some(DefaultTokenStorage::Memory(storage))) => Arc::new(storage),
            (None, None) => return Err(Error::MissingCustom("token storage")),
        };
        let login: Option<Arc<dyn AsyncLoginFlowManager>> = match login {
            Some(login) => Some(login),
            None => default_login_flow_manager(&app)?.map(|manager| {
                Arc::new(UnblockedLogin(Arc::from(manager))) as Arc<dyn AsyncLoginFlowManager>
            }),
        };
        let http: Arc<dyn AsyncHttpClient> = match http {
            Some(http) => http,
            #[cfg(feature = "surf")]
            None => Arc::new(crate::http::SurfClient::default()),
            #[cfg(not(feature = "surf"))]
            None => return Err(Error::MissingCustom("HTTP client")),
        };
        Ok(Driver {
            app,
            storage,
            http,
            login,
            sleeper,
            retry,
            renewals: Arc::default(),
        })
    }
}

macro_rules! app_type {
    ($(#[$doc:meta])* $name:ident, $constructor:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name {
            driver: Driver,
        }

        impl $name {
            /// Starts building the app.
            pub fn builder(app_name: impl Into<String>) -> AppBuilder {
                AppBuilder::new(GlobusApp::$constructor(app_name))
            }

            /// Builds the app from a builder of the right kind.
            pub async fn from_builder(builder: AppBuilder) -> Result<Self, Error> {
                Ok(Self { driver: builder.build_driver().await? })
            }

            /// The app core (configuration, client, identity).
            pub fn core(&self) -> &GlobusApp {
                &self.driver.app
            }

            /// The token storage.
            pub fn token_storage(&self) -> &Arc<dyn AsyncTokenStorage> {
                &self.driver.storage
            }

            /// A copy of the scope requirements.
            pub fn scope_requirements(&self) -> ScopeRequirements {
                self.driver.app.scope_requirements()
            }

            /// Adds required scopes (a scope string) for a resource server.
            pub fn add_scope_requirements(&self, resource_server: &str, scopes: &str) -> Result<(), ScopeParseError> {
                self.driver.app.add_scope_requirements_str(resource_server, scopes)
            }

            /// A valid authorization for `resource_server`, refreshed or renewed
            /// as needed. Concurrent callers renew once.
            pub async fn get_authorizer(&self, resource_server: &str) -> Result<Authorization, Error> {
                self.driver.drive(self.driver.app.get_authorizer(resource_server)).await
            }

            /// Logs in if `params` are given, `force` is set, or a login is required.
            pub async fn login(&self, params: Option<AuthorizationParameters>, force: bool) -> Result<LoginOutcome, Error> {
                self.driver.drive(self.driver.app.login(params, force)).await
            }

            /// Whether using the app would need a new login (no network calls).
            pub async fn login_required(&self) -> Result<bool, Error> {
                self.driver.drive(self.driver.app.login_required()).await
            }

            /// Revokes and removes the app's tokens (all stored ones with `sweep`).
            pub async fn logout(&self, sweep: bool) -> Result<LogoutReport, Error> {
                self.driver.drive(self.driver.app.logout(sweep)).await
            }

            /// For a service's response: if it is a GARE and `auto_redrive_gares`
            /// is on, logs in with its parameters and returns true — retry once.
            pub async fn redrive_gare(&self, response: &http::Response<Vec<u8>>) -> Result<bool, Error> {
                match self.driver.app.gare_redrive_parameters(response) {
                    Some(params) => self.login(Some(params), true).await.map(|_| true),
                    None => Ok(false),
                }
            }
        }
    };
}

app_type!(
    /// An app that acts for a person, who logs in interactively.
    UserApp,
    user
);

app_type!(
    /// An app that acts as itself (a service account), with client credentials.
    ClientApp,
    client
);
