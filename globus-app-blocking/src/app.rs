//! `UserApp` and `ClientApp`: the app core driven with blocking I/O.

use std::sync::Arc;
#[cfg(feature = "ureq")]
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use globus_app_proto::UnixTime;
use globus_app_proto::app::{
    Action, AppError, Authorization, ConfigError, GlobusApp, GlobusAppConfig, Input, IoFailure,
    IoFailureKind, LoginFlowKind, LoginOutcome, LogoutReport, Operation, ScopeRequirements, Step,
    TokenStorageKind,
};
use globus_app_proto::auth_params::AuthorizationParameters;
use globus_app_proto::environment::Environment;
use globus_app_proto::scope::ScopeParseError;
use globus_app_proto::secret::ClientSecret;

use crate::http::{HttpClient, RetryPolicy, TransportError, send_with_retries};
use crate::login::{
    CommandLineLoginFlowManager, LocalServerLoginFlowManager, LoginFlowError, LoginFlowManager,
};
use crate::storage::{
    JsonTokenStorage, MemoryTokenStorage, RenewalGuard, SqliteTokenStorage, StorageError,
    TokenStorage,
};

/// Why an app call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The app core's verdict (validation, Globus Auth errors, id_token,
    /// scopes...).
    #[error(transparent)]
    App(AppError),
    /// Token storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A request got no response.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The interactive login failed.
    #[error(transparent)]
    Login(#[from] LoginFlowError),
    /// The configuration is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A custom storage or login flow manager was configured but not given.
    #[error("the configuration asks for a custom {0}, but none was given to the builder")]
    MissingCustom(&'static str),
}

impl From<AppError> for Error {
    fn from(error: AppError) -> Self {
        Self::App(error)
    }
}

/// `GlobusAppConfig::default()` with `GLOBUS_SDK_ENVIRONMENT` and
/// `GLOBUS_SDK_SERVICE_URL_AUTH` applied, as the Python SDK reads them.
pub fn config_from_env() -> Result<GlobusAppConfig, ConfigError> {
    let environment =
        Environment::from_env_value(std::env::var("GLOBUS_SDK_ENVIRONMENT").ok().as_deref())?;
    let mut config = GlobusAppConfig::default().with_environment(environment);
    if let Ok(url) = std::env::var("GLOBUS_SDK_SERVICE_URL_AUTH")
        && !url.is_empty()
    {
        config = config.with_auth_base_url(url);
    }
    Ok(config)
}

/// This machine's host name, for the consent's name (`"<app> on <host>"`);
/// empty if unknown.
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// The current time from the system clock.
pub fn now() -> UnixTime {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    UnixTime::from_secs(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// Everything an app drives its operations with. Cheap to clone.
#[derive(Clone)]
struct Driver {
    app: GlobusApp,
    storage: Arc<dyn TokenStorage>,
    http: Arc<dyn HttpClient>,
    login: Option<Arc<dyn LoginFlowManager>>,
    retry: RetryPolicy,
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
    /// The one loop that drives every operation: perform each action and
    /// feed back its result. Renewal guards live until their `Unlock`, or
    /// until this function returns (also on error).
    fn drive<T, O: Operation<Output = Result<T, AppError>>>(&self, mut op: O) -> Result<T, Error> {
        let mut guards: Vec<(String, RenewalGuard)> = Vec::new();
        let mut last_failure: Option<Error> = None;
        let mut input = None;
        loop {
            let action = match op.advance(input.take(), now()) {
                Step::Done(Ok(output)) => return Ok(output),
                // Report the adapter's own typed error rather than its summary.
                Step::Done(Err(AppError::Io(io))) => {
                    return Err(last_failure.unwrap_or(Error::App(AppError::Io(io))));
                }
                Step::Done(Err(e)) => return Err(e.into()),
                Step::Action(action) => action,
            };
            input = Some(self.perform(action, &mut guards, &mut last_failure));
        }
    }

    fn perform(
        &self,
        action: Action,
        guards: &mut Vec<(String, RenewalGuard)>,
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
            Action::LoadTokens => storage(self.storage.load().map(Input::Tokens), failed),
            Action::StoreTokens(records) => {
                storage(self.storage.store(&records).map(|()| Input::Stored), failed)
            }
            Action::RemoveTokens(servers) => storage(
                self.storage.remove(&servers).map(|()| Input::Removed),
                failed,
            ),
            Action::Lock(rs) => match self.storage.lock_renewal(&rs) {
                Ok(guard) => {
                    guards.push((rs, guard));
                    Input::Locked
                }
                Err(e) => {
                    let input = failure(IoFailureKind::Lock, &e, true);
                    *failed = Some(e.into());
                    input
                }
            },
            Action::Unlock(rs) => {
                guards.retain(|(held, _)| held != &rs);
                Input::Unlocked
            }
            Action::Send(request) => {
                match send_with_retries(
                    self.http.as_ref(),
                    request,
                    self.retry,
                    &std::thread::sleep,
                ) {
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
                match login.run(&plan) {
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

/// Builds the app core: the given configuration (else [`config_from_env`])
/// and this machine's host name. Shared by both adapters.
pub fn build_core(
    core: globus_app_proto::app::AppBuilder,
    config: Option<GlobusAppConfig>,
) -> Result<GlobusApp, Error> {
    let config = match config {
        Some(config) => config,
        None => config_from_env()?,
    };
    Ok(core.config(config).hostname(hostname()).build()?)
}

/// The token storage an app's configuration asks for when none was given.
#[derive(Debug)]
pub enum DefaultTokenStorage {
    /// `TokenStorageKind::Json`: the app's default `tokens.json`.
    Json(JsonTokenStorage),
    /// `TokenStorageKind::Sqlite`: the app's default `tokens.db`.
    Sqlite(SqliteTokenStorage),
    /// `TokenStorageKind::Memory`.
    Memory(MemoryTokenStorage),
}

/// Opens the storage the configuration names (creating its directory:
/// blocking I/O). `Custom` without a storage is an error.
pub fn default_token_storage(app: &GlobusApp) -> Result<DefaultTokenStorage, Error> {
    Ok(match app.config().token_storage {
        TokenStorageKind::Json => DefaultTokenStorage::Json(JsonTokenStorage::for_app(app)?),
        TokenStorageKind::Sqlite => DefaultTokenStorage::Sqlite(SqliteTokenStorage::for_app(app)?),
        TokenStorageKind::Memory => DefaultTokenStorage::Memory(MemoryTokenStorage::new()),
        _ => return Err(Error::MissingCustom("token storage")),
    })
}

/// The login flow manager the configuration names: none for a `ClientApp`,
/// command-line by default for a `UserApp`. `Custom` without one is an error.
pub fn default_login_flow_manager(
    app: &GlobusApp,
) -> Result<Option<Box<dyn LoginFlowManager>>, Error> {
    if app.kind() == globus_app_proto::app::AppKind::Client {
        return Ok(None);
    }
    Ok(Some(match app.config().login_flow {
        None | Some(LoginFlowKind::CommandLine) => Box::new(CommandLineLoginFlowManager::new()),
        Some(LoginFlowKind::LocalServer) => Box::new(LocalServerLoginFlowManager::new()),
        Some(_) => return Err(Error::MissingCustom("login flow manager")),
    }))
}

/// Builds a [`UserApp`] or [`ClientApp`].
#[must_use]
pub struct AppBuilder {
    core: globus_app_proto::app::AppBuilder,
    config: Option<GlobusAppConfig>,
    storage: Option<Arc<dyn TokenStorage>>,
    http: Option<Arc<dyn HttpClient>>,
    login: Option<Arc<dyn LoginFlowManager>>,
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
    pub fn token_storage(mut self, storage: impl TokenStorage + 'static) -> Self {
        self.storage = Some(Arc::new(storage));
        self
    }

    /// A login flow manager to use instead of the configured one.
    pub fn login_flow_manager(mut self, manager: impl LoginFlowManager + 'static) -> Self {
        self.login = Some(Arc::new(manager));
        self
    }

    /// The HTTP client (default: `UreqClient`, feature `ureq`).
    pub fn http_client(mut self, client: impl HttpClient + 'static) -> Self {
        self.http = Some(Arc::new(client));
        self
    }

    /// The retry policy for Globus Auth requests.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    fn build_driver(self) -> Result<Driver, Error> {
        let app = build_core(self.core, self.config)?;
        let storage: Arc<dyn TokenStorage> = match self.storage {
            Some(storage) => storage,
            None => match default_token_storage(&app)? {
                DefaultTokenStorage::Json(storage) => Arc::new(storage),
                DefaultTokenStorage::Sqlite(storage) => Arc::new(storage),
                DefaultTokenStorage::Memory(storage) => Arc::new(storage),
            },
        };
        let login = match self.login {
            Some(login) => Some(login),
            None => default_login_flow_manager(&app)?.map(Arc::from),
        };
        let http = match self.http {
            Some(http) => http,
            #[cfg(feature = "ureq")]
            None => Arc::new(crate::http::UreqClient::new(Duration::from_secs(60))),
            #[cfg(not(feature = "ureq"))]
            None => return Err(Error::MissingCustom("HTTP client")),
        };
        Ok(Driver {
            app,
            storage,
            http,
            login,
            retry: self.retry,
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
            pub fn from_builder(builder: AppBuilder) -> Result<Self, Error> {
                Ok(Self { driver: builder.build_driver()? })
            }

            /// The app core (configuration, client, identity).
            pub fn core(&self) -> &GlobusApp {
                &self.driver.app
            }

            /// The token storage.
            pub fn token_storage(&self) -> &Arc<dyn TokenStorage> {
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
            /// as needed (see the core's `get_authorizer`).
            pub fn get_authorizer(&self, resource_server: &str) -> Result<Authorization, Error> {
                self.driver.drive(self.driver.app.get_authorizer(resource_server))
            }

            /// Logs in if `params` are given, `force` is set, or a login is required.
            pub fn login(&self, params: Option<AuthorizationParameters>, force: bool) -> Result<LoginOutcome, Error> {
                self.driver.drive(self.driver.app.login(params, force))
            }

            /// Whether using the app would need a new login (no network calls).
            pub fn login_required(&self) -> Result<bool, Error> {
                self.driver.drive(self.driver.app.login_required())
            }

            /// Revokes and removes the app's tokens (all stored ones with `sweep`).
            pub fn logout(&self, sweep: bool) -> Result<LogoutReport, Error> {
                self.driver.drive(self.driver.app.logout(sweep))
            }

            /// For a service's response: if it is a GARE and `auto_redrive_gares`
            /// is on, logs in with its parameters and returns true — retry the
            /// request once.
            pub fn redrive_gare(&self, response: &http::Response<Vec<u8>>) -> Result<bool, Error> {
                match self.driver.app.gare_redrive_parameters(response) {
                    Some(params) => self.login(Some(params), true).map(|_| true),
                    None => Ok(false),
                }
            }
        }
    };
}

app_type!(
    /// An app that acts for a person, who logs in interactively.
    ///
    /// ```no_run
    /// use globus_app_blocking::UserApp;
    /// let app = UserApp::from_builder(
    ///     UserApp::builder("My App")
    ///         .client_id("your-native-client-id")
    ///         .scope_requirements("transfer.api.globus.org", "urn:globus:auth:scope:transfer.api.globus.org:all"),
    /// )?;
    /// let authorization = app.get_authorizer("transfer.api.globus.org")?; // logs in if needed
    /// # Ok::<(), globus_app_blocking::Error>(())
    /// ```
    UserApp,
    user
);

app_type!(
    /// An app that acts as itself (a service account), with client
    /// credentials.
    ///
    /// ```no_run
    /// use globus_app_blocking::ClientApp;
    /// let app = ClientApp::from_builder(
    ///     ClientApp::builder("My Service")
    ///         .client_id("your-client-id")
    ///         .client_secret("your-client-secret")
    ///         .scope_requirements("transfer.api.globus.org", "urn:globus:auth:scope:transfer.api.globus.org:all"),
    /// )?;
    /// let authorization = app.get_authorizer("transfer.api.globus.org")?;
    /// # Ok::<(), globus_app_blocking::Error>(())
    /// ```
    ClientApp,
    client
);
