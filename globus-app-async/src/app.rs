//! [`UserApp`] and [`ClientApp`]: the app core driven asynchronously.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

use globus_app_blocking::Error;
use globus_app_blocking::adapter::{
    AppSettings, DefaultTokenStorage, OperationSpan, Outcomes, WarmPath, authorized_request,
    default_login_flow_manager, token_destination,
};
use globus_app_blocking::http::RetryPolicy;
use globus_app_blocking::storage::RenewalGuard;
use globus_app_proto::app::{
    Action, AppError, AppKind, Authorization, GlobusApp, GlobusAppConfig, Input, LoginOptions,
    LoginOutcome, LogoutOptions, LogoutReport, Operation, ScopeRequirements, ServiceVerdict, Step,
};
use globus_app_proto::origin::TokenDestinations;
use globus_app_proto::service::AuthorizationRetries;

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
    storage_lock: RenewalGuard,
    in_process: async_lock::MutexGuardArc<()>,
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
    warm: WarmPath,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// The one loop that drives every operation, as in the blocking crate;
    /// only the I/O of each action differs.
    async fn drive<T, O: Operation<Output = Result<T, AppError>> + Send>(
        &self,
        op: O,
    ) -> Result<T, Error> {
        if !OperationSpan::wanted() {
            return self.run(op).await;
        }
        let span = OperationSpan::new(op.name(), op.resource_server());
        let result = span.instrument(self.run(op)).await;
        span.finish(&result);
        result
    }

    async fn run<T, O: Operation<Output = Result<T, AppError>> + Send>(
        &self,
        mut op: O,
    ) -> Result<T, Error> {
        let mut held: Vec<HeldRenewal> = Vec::new();
        let mut outcomes = Outcomes::new();
        let mut input = None;
        loop {
            match outcomes.next(&mut op, input.take()) {
                Step::Done(result) => return result,
                Step::Action(action) => {
                    input = Some(self.perform(action, &mut held, &mut outcomes).await);
                }
            }
        }
    }

    async fn perform(
        &self,
        action: Action,
        held: &mut Vec<HeldRenewal>,
        outcomes: &mut Outcomes,
    ) -> Input {
        match action {
            Action::LoadTokens => outcomes.loaded(self.storage.load().await),
            Action::StoreTokens(records) => {
                outcomes.storage(self.storage.store(records).await, |()| Input::Stored)
            }
            Action::RemoveTokens(servers) => {
                outcomes.storage(self.storage.remove(servers).await, |()| Input::Removed)
            }
            Action::SetAsideUnreadableTokens => {
                outcomes.set_aside(self.storage.set_aside_unreadable().await)
            }
            Action::Lock(rs) => {
                let started = std::time::Instant::now();
                let in_process = self.renewals.get(&rs).lock_arc().await;
                let result = self.storage.lock_renewal(rs.clone()).await;
                outcomes.locked(result, &rs, started.elapsed(), |guard| {
                    held.push(HeldRenewal {
                        resource_server: rs.clone(),
                        storage_lock: guard,
                        in_process,
                    });
                })
            }
            Action::LockIfFree(rs) => {
                // Nothing waits: this app's own lock, then the storage's.
                let Some(in_process) = self.renewals.get(&rs).try_lock_arc() else {
                    return Input::LockHeld;
                };
                let result = self.storage.try_lock_renewal(rs.clone()).await;
                outcomes.locked_if_free(result, &rs, |guard| {
                    held.push(HeldRenewal {
                        resource_server: rs.clone(),
                        storage_lock: guard,
                        in_process,
                    });
                })
            }
            Action::Unlock(rs) => {
                if let Some(index) = held.iter().position(|h| h.resource_server == rs) {
                    let HeldRenewal {
                        storage_lock: guard,
                        in_process,
                        ..
                    } = held.swap_remove(index);
                    // Released on the blocking pool, before the call
                    // returns (a lease other machines wait for); the
                    // in-process lock after it.
                    blocking::unblock(move || guard.release()).await;
                    drop(in_process);
                }
                Input::Unlocked
            }
            Action::WaitForRenewal(rs) => {
                // Another task of this app holds it: the wait yields to the
                // executor and touches no file.
                drop(self.renewals.get(&rs).lock_arc().await);
                Input::Waited
            }
            Action::Send(request) => outcomes.response(
                send_with_retries(
                    self.http.as_ref(),
                    request,
                    self.retry,
                    self.sleeper.as_ref(),
                )
                .await,
            ),
            Action::Random => outcomes.random(),
            Action::Authorize(plan) => match &self.login {
                Some(login) => outcomes.authorization(login.run(plan).await),
                None => outcomes.no_login_flow(),
            },
            other => outcomes.unsupported(&other),
        }
    }

    /// `get_authorizer`: this thread's copy of a valid authorization when
    /// there is one (ready at the first poll, nothing shared is written),
    /// else the core's operation, in a box: the warm future stays small.
    async fn get_authorizer(&self, resource_server: &str) -> Result<Authorization, Error> {
        let storage = &self.storage;
        let stamp = match self.warm.lookup(
            &self.app,
            |now| storage.snapshot_version(now),
            resource_server,
        ) {
            Ok(authorization) => return Ok(authorization),
            Err(stamp) => stamp,
        };
        let authorization = Box::pin(self.drive(self.app.get_authorizer(resource_server))).await?;
        self.warm.keep(resource_server, stamp, &authorization);
        Ok(authorization)
    }

    /// The authorization to send a refused request with once more, after
    /// a verdict (see `AuthorizationRetries`), or `None` for a final
    /// answer.
    async fn authorization_after(
        &self,
        retries: &AuthorizationRetries,
        verdict: ServiceVerdict,
        resource_server: &str,
        refused: &Authorization,
    ) -> Result<Option<Authorization>, Error> {
        match verdict {
            ServiceVerdict::RenewAndRetry => self
                .drive(retries.renewal(&self.app, resource_server, refused.access_token()))
                .await
                .map(Some),
            ServiceVerdict::LoginAndRetry(params) => {
                let options = LoginOptions::new().authorization_parameters(*params);
                self.drive(self.app.login_with(options)).await?;
                self.drive(retries.authorization(&self.app, resource_server))
                    .await
                    .map(Some)
            }
            _ => Ok(None),
        }
    }

    async fn redrive_gare(&self, response: &http::Response<Vec<u8>>) -> Result<bool, Error> {
        match self.app.gare_redrive_parameters(response) {
            Some(params) => {
                let options = LoginOptions::new().authorization_parameters(params);
                self.drive(self.app.login_with(options)).await.map(|_| true)
            }
            None => Ok(false),
        }
    }
}

/// An async HTTP client for Globus services that authorizes every request
/// with an app: from [`AppCommon::authorized`] (on a [`UserApp`] or a
/// [`ClientApp`]).
/// The same behaviour as `globus_app_blocking::AuthorizedClient`: the
/// request's host gives the resource server, a 401 gets the token renewed
/// and a GARE (with `auto_redrive_gares`) a login, each at most once per
/// request. Cheap to clone.
#[derive(Clone)]
pub struct AuthorizedClient {
    driver: Driver,
    http: Arc<dyn AsyncHttpClient>,
    destinations: TokenDestinations,
}

impl std::fmt::Debug for AuthorizedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizedClient")
            .field("destinations", &self.destinations)
            .finish_non_exhaustive()
    }
}

impl AuthorizedClient {
    /// Requests to `authority` (`host` or `host:port`, such as a GCS
    /// collection's) are for `resource_server`.
    #[must_use]
    pub fn with_resource_server(
        mut self,
        authority: &str,
        resource_server: impl Into<String>,
    ) -> Self {
        self.destinations
            .insert_authority(authority, resource_server);
        self
    }

    /// Sends `request` with the app's authorization for its service.
    pub async fn send(
        &self,
        request: &http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, Error> {
        let app = &self.driver.app;
        let resource_server = token_destination(&self.destinations, request.uri())?;
        let mut authorization = self.driver.get_authorizer(resource_server).await?;
        let mut refusals = AuthorizationRetries::default();
        loop {
            let response = self
                .http
                .send(authorized_request(request, &authorization)?)
                .await?;
            let verdict = refusals.judge(app, &response);
            match self
                .driver
                .authorization_after(&refusals, verdict, resource_server, &authorization)
                .await?
            {
                Some(next) => authorization = next,
                None => return Ok(response),
            }
        }
    }
}

/// Builds an async [`UserApp`] ([`UserApp::builder`]) or [`ClientApp`]
/// ([`ClientApp::builder`]); `App` is the kind being built. The same
/// options as `globus_app_blocking::AppBuilder`, with async parts.
#[must_use]
pub struct AppBuilder<App> {
    settings: AppSettings,
    storage: Option<Arc<dyn AsyncTokenStorage>>,
    http: Option<Arc<dyn AsyncHttpClient>>,
    login: Option<Arc<dyn AsyncLoginFlowManager>>,
    sleeper: Arc<dyn Sleeper>,
    app: PhantomData<fn() -> App>,
}

/// The builder of a [`UserApp`].
pub type UserAppBuilder = AppBuilder<UserApp>;
/// The builder of a [`ClientApp`].
pub type ClientAppBuilder = AppBuilder<ClientApp>;

impl<App> AppBuilder<App> {
    fn new(kind: AppKind, app_name: String) -> Self {
        Self {
            settings: AppSettings::new(kind, app_name),
            storage: None,
            http: None,
            login: None,
            sleeper: Arc::new(ThreadPoolSleeper),
            app: PhantomData,
        }
    }

    globus_app_blocking::shared_app_builder_setters!();

    /// A token storage to use instead of the configured one (wrap a
    /// blocking one in [`Unblocked`]).
    pub fn token_storage(mut self, storage: impl AsyncTokenStorage + 'static) -> Self {
        self.storage = Some(Arc::new(storage));
        self
    }

    /// The HTTP client (default: the blocking crate's ureq client on the
    /// `blocking` pool, [`UnblockedHttp::ureq`](crate::http::UnblockedHttp::ureq),
    /// feature `ureq`; [`SurfClient`](crate::http::SurfClient) with feature
    /// `surf`).
    pub fn http_client(mut self, client: impl AsyncHttpClient + 'static) -> Self {
        self.http = Some(Arc::new(client));
        self
    }

    /// How retries wait (default: on the `blocking` thread pool).
    pub fn sleeper(mut self, sleeper: impl Sleeper + 'static) -> Self {
        self.sleeper = Arc::new(sleeper);
        self
    }

    async fn build_common(self) -> Result<AppCommon, Error> {
        let Self {
            settings,
            storage,
            http,
            login,
            sleeper,
            app: _,
        } = self;
        // Reading the environment and the host name, and opening the
        // configured storage, are blocking calls: off the executor. What to
        // build is decided once, in the blocking crate's adapter module.
        let wants_default_storage = storage.is_none();
        let retry = settings.retry;
        let (app, default_storage) = blocking::unblock(move || -> Result<_, Error> {
            let app = settings.build_core()?;
            let default_storage = if wants_default_storage {
                Some(DefaultTokenStorage::open(&app)?)
            } else {
                None
            };
            Ok((app, default_storage))
        })
        .await?;
        let storage: Arc<dyn AsyncTokenStorage> = match (storage, default_storage) {
            (Some(storage), _) => storage,
            (None, Some(DefaultTokenStorage::Json(storage))) => Arc::new(Unblocked::new(storage)),
            #[cfg(feature = "sqlite")]
            (None, Some(DefaultTokenStorage::Sqlite(storage))) => Arc::new(Unblocked::new(storage)),
            (None, Some(DefaultTokenStorage::Memory(storage))) => Arc::new(storage),
            (None, _) => return Err(Error::MissingPart("token storage")),
        };
        let login: Option<Arc<dyn AsyncLoginFlowManager>> = match (login, app.kind()) {
            (_, AppKind::Client) => None,
            (Some(login), AppKind::User) => Some(login),
            (None, AppKind::User) => Some(Arc::new(UnblockedLogin(Arc::from(
                default_login_flow_manager(&app)?,
            )))),
        };
        let http = match http {
            Some(http) => http,
            None => default_http_client()?,
        };
        Ok(AppCommon {
            driver: Driver {
                app,
                storage,
                http,
                login,
                sleeper,
                retry,
                renewals: Arc::default(),
                warm: WarmPath::new(),
            },
        })
    }
}

#[cfg(feature = "ureq")]
#[allow(clippy::unnecessary_wraps)] // fails without the feature
fn default_http_client() -> Result<Arc<dyn AsyncHttpClient>, Error> {
    Ok(Arc::new(crate::http::UnblockedHttp::ureq()))
}

#[cfg(not(feature = "ureq"))]
fn default_http_client() -> Result<Arc<dyn AsyncHttpClient>, Error> {
    Err(Error::MissingPart("HTTP client (feature `ureq` is off)"))
}

impl AppBuilder<UserApp> {
    /// A login flow manager to use instead of the configured one (wrap a
    /// blocking one in [`UnblockedLogin`]).
    pub fn login_flow_manager(mut self, manager: impl AsyncLoginFlowManager + 'static) -> Self {
        self.login = Some(Arc::new(manager));
        self
    }

    /// Checks the configuration, opens the token storage (off the
    /// executor) and builds the app.
    pub async fn build(self) -> Result<UserApp, Error> {
        Ok(UserApp {
            common: self.build_common().await?,
        })
    }
}

impl AppBuilder<ClientApp> {
    /// Checks the configuration, opens the token storage (off the
    /// executor) and builds the app.
    pub async fn build(self) -> Result<ClientApp, Error> {
        Ok(ClientApp {
            common: self.build_common().await?,
        })
    }
}

/// What every async app does, whatever its kind: [`UserApp`] and
/// [`ClientApp`] dereference to it, so each method below is called on
/// either, and a function that works with any app takes `&AppCommon`.
///
/// Cheap to clone and `Send + Sync`; its futures are `Send`.
///
/// # Cancellation
///
/// Every future may be dropped at any await point. Dropping one releases
/// its renewal locks and leaves the stored tokens whole (every write is
/// atomic). Dropping a login (or a `get_authorizer` that is logging in)
/// cancels its interactive part within 25 ms: the loopback listener stops
/// and its port refuses connections, so a late redirect finds nothing; the
/// terminal prompt stops waiting (a line typed after that is dropped, never
/// taken as a later login's code).
///
/// Not cancel-safe: a request to Globus Auth already sent completes on the
/// thread pool, but its answer is dropped with the future. For a code
/// exchange that means one more login. For a refresh with refresh-token
/// rotation it means the stored refresh token is spent: the next call
/// finds it rejected and asks for a login. So give a timeout around a
/// call that may renew more time than the HTTP client's own (60 s by
/// default), which ends a stuck request with an error instead.
#[derive(Clone, Debug)]
pub struct AppCommon {
    driver: Driver,
}

impl AppCommon {
    /// An async HTTP client for Globus services that authorizes each
    /// request with this app; see [`AuthorizedClient`].
    pub fn authorized(&self, client: impl AsyncHttpClient + 'static) -> AuthorizedClient {
        AuthorizedClient {
            driver: self.driver.clone(),
            http: Arc::new(client),
            destinations: self.driver.app.token_destinations(),
        }
    }

    /// The authorization to send a refused request with once more, or
    /// `None` for a final answer (the service clients' step).
    pub(crate) async fn authorization_after(
        &self,
        retries: &AuthorizationRetries,
        verdict: ServiceVerdict,
        resource_server: &str,
        refused: &Authorization,
    ) -> Result<Option<Authorization>, Error> {
        self.driver
            .authorization_after(retries, verdict, resource_server, refused)
            .await
    }

    /// How the app waits (retries, polls) without blocking an executor.
    pub(crate) fn sleeper(&self) -> &dyn Sleeper {
        self.driver.sleeper.as_ref()
    }

    /// The retry policy of the app's requests.
    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.driver.retry
    }

    /// The app core: configuration, client, identity.
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
    pub fn add_scope_requirements(&self, resource_server: &str, scopes: &str) -> Result<(), Error> {
        Ok(self
            .driver
            .app
            .add_scope_requirements_str(resource_server, scopes)?)
    }

    /// A valid authorization for `resource_server`, renewed (refreshed, or
    /// new client credentials) or after a login as needed. Concurrent
    /// callers renew once. A resource server that is not in the scope
    /// requirements is an error at once: no login could help.
    pub fn get_authorizer<'a>(
        &'a self,
        resource_server: &'a str,
    ) -> impl Future<Output = Result<Authorization, Error>> + Send + 'a {
        self.driver.get_authorizer(resource_server)
    }

    /// Logs in if a login is required: a `UserApp` runs its interactive
    /// flow, a `ClientApp` gets client-credentials tokens.
    pub async fn login(&self) -> Result<LoginOutcome, Error> {
        self.driver.drive(self.driver.app.login()).await
    }

    /// Logs in as `options` say (forced, or with authorization parameters).
    pub async fn login_with(&self, options: LoginOptions) -> Result<LoginOutcome, Error> {
        self.driver.drive(self.driver.app.login_with(options)).await
    }

    /// Whether using the app would need a new login (no network calls).
    pub async fn login_required(&self) -> Result<bool, Error> {
        self.driver.drive(self.driver.app.login_required()).await
    }

    /// Revokes and removes the tokens of the required resource servers.
    pub async fn logout(&self) -> Result<LogoutReport, Error> {
        self.driver.drive(self.driver.app.logout()).await
    }

    /// Revokes and removes tokens as `options` say.
    pub async fn logout_with(&self, options: LogoutOptions) -> Result<LogoutReport, Error> {
        self.driver
            .drive(self.driver.app.logout_with(options))
            .await
    }

    /// For a service's response: if it is a GARE and `auto_redrive_gares`
    /// is on, logs in with its requirements and returns `true`: send the
    /// request once more.
    pub async fn redrive_gare(&self, response: &http::Response<Vec<u8>>) -> Result<bool, Error> {
        self.driver.redrive_gare(response).await
    }
}

/// An app that acts for a person, who logs in interactively; async. Its
/// methods are [`AppCommon`]'s.
///
/// Cheap to clone and `Send + Sync`; its futures are `Send`.
#[derive(Clone, Debug)]
pub struct UserApp {
    common: AppCommon,
}

impl UserApp {
    /// Starts building a `UserApp` named `app_name`.
    pub fn builder(app_name: impl Into<String>) -> UserAppBuilder {
        AppBuilder::new(AppKind::User, app_name.into())
    }
}

/// An app that acts as itself (a service account), with client
/// credentials; async. Its methods are [`AppCommon`]'s. Cheap to clone and
/// `Send + Sync`.
#[derive(Clone, Debug)]
pub struct ClientApp {
    common: AppCommon,
}

impl ClientApp {
    /// Starts building a `ClientApp` named `app_name`.
    pub fn builder(app_name: impl Into<String>) -> ClientAppBuilder {
        AppBuilder::new(AppKind::Client, app_name.into())
    }
}

impl std::ops::Deref for UserApp {
    type Target = AppCommon;

    fn deref(&self) -> &AppCommon {
        &self.common
    }
}

impl std::ops::Deref for ClientApp {
    type Target = AppCommon;

    fn deref(&self) -> &AppCommon {
        &self.common
    }
}
