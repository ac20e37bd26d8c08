//! [`UserApp`] and [`ClientApp`]: the app core driven with blocking I/O.

use std::marker::PhantomData;
use std::sync::Arc;
#[cfg(feature = "ureq")]
use std::time::Duration;

use globus_app_proto::app::{
    Action, AppError, AppKind, Authorization, GlobusApp, GlobusAppConfig, LoginOptions,
    LoginOutcome, LogoutOptions, LogoutReport, Operation, ScopeRequirements, ServiceVerdict, Step,
};

use globus_app_proto::service::AuthorizationRetries;

use crate::Error;
use crate::adapter::{
    AppSettings, DefaultTokenStorage, OperationSpan, Outcomes, WarmPath, authorized_request,
    default_login_flow_manager, token_destination,
};
use crate::http::{HttpClient, RetryPolicy, send_with_retries};
use crate::login::LoginFlowManager;
use crate::storage::{RenewalGuard, TokenStorage};
use globus_app_proto::origin::TokenDestinations;

/// Everything an app drives its operations with. Cheap to clone.
#[derive(Clone)]
struct Driver {
    app: GlobusApp,
    storage: Arc<dyn TokenStorage>,
    http: Arc<dyn HttpClient>,
    login: Option<Arc<dyn LoginFlowManager>>,
    retry: RetryPolicy,
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
    /// The one loop that drives every operation: perform each action and
    /// feed back its result. Renewal guards live until their `Unlock`, or
    /// until this function returns (also on error).
    fn drive<T, O: Operation<Output = Result<T, AppError>>>(&self, op: O) -> Result<T, Error> {
        if !OperationSpan::wanted() {
            return self.run(op);
        }
        let span = OperationSpan::new(op.name(), op.resource_server());
        let result = span.in_scope(|| self.run(op));
        span.finish(&result);
        result
    }

    fn run<T, O: Operation<Output = Result<T, AppError>>>(&self, mut op: O) -> Result<T, Error> {
        let mut guards: Vec<(String, RenewalGuard)> = Vec::new();
        let mut outcomes = Outcomes::new();
        let mut input = None;
        loop {
            match outcomes.next(&mut op, input.take()) {
                Step::Done(result) => return result,
                Step::Action(action) => {
                    input = Some(self.perform(action, &mut guards, &mut outcomes));
                }
            }
        }
    }

    fn perform(
        &self,
        action: Action,
        guards: &mut Vec<(String, RenewalGuard)>,
        outcomes: &mut Outcomes,
    ) -> globus_app_proto::app::Input {
        use globus_app_proto::app::Input;
        match action {
            Action::LoadTokens => outcomes.loaded(self.storage.load()),
            Action::StoreTokens(records) => {
                outcomes.storage(self.storage.store(&records), |()| Input::Stored)
            }
            Action::RemoveTokens(servers) => {
                outcomes.storage(self.storage.remove(&servers), |()| Input::Removed)
            }
            Action::SetAsideUnreadableTokens => {
                outcomes.set_aside(self.storage.set_aside_unreadable())
            }
            Action::Lock(rs) => {
                let started = std::time::Instant::now();
                let result = self.storage.lock_renewal(&rs);
                outcomes.locked(result, &rs, started.elapsed(), |guard| {
                    guards.push((rs.clone(), guard));
                })
            }
            Action::LockIfFree(rs) => {
                let result = self.storage.try_lock_renewal(&rs);
                outcomes.locked_if_free(result, &rs, |guard| {
                    guards.push((rs.clone(), guard));
                })
            }
            Action::Unlock(rs) => {
                // Released here, before the call returns: a lease other
                // machines wait for is free even if the process exits next.
                if let Some(index) = guards.iter().position(|(held, _)| held == &rs) {
                    guards.swap_remove(index).1.release();
                }
                Input::Unlocked
            }
            Action::WaitForRenewal(rs) => {
                outcomes.storage(self.storage.wait_for_renewal(&rs), |()| Input::Waited)
            }
            Action::Send(request) => outcomes.response(send_with_retries(
                self.http.as_ref(),
                request,
                self.retry,
                &std::thread::sleep,
            )),
            Action::Random => outcomes.random(),
            Action::Authorize(plan) => match &self.login {
                Some(login) => outcomes.authorization(login.run(&plan)),
                None => outcomes.no_login_flow(),
            },
            other => outcomes.unsupported(&other),
        }
    }

    /// `get_authorizer`: this thread's copy of a valid authorization when
    /// there is one (nothing shared is written), else the core's operation.
    fn get_authorizer(&self, resource_server: &str) -> Result<Authorization, Error> {
        let storage = &self.storage;
        let stamp = match self.warm.lookup(
            &self.app,
            |now| storage.snapshot_version(now),
            resource_server,
        ) {
            Ok(authorization) => return Ok(authorization),
            Err(stamp) => stamp,
        };
        let authorization = self.drive(self.app.get_authorizer(resource_server))?;
        self.warm.keep(resource_server, stamp, &authorization);
        Ok(authorization)
    }

    /// The authorization to send a refused request with once more, after
    /// a verdict: a replacement of `refused` after a 401, a login with a
    /// GARE's parameters, or `None` for a final answer.
    fn authorization_after(
        &self,
        retries: &AuthorizationRetries,
        verdict: ServiceVerdict,
        resource_server: &str,
        refused: &Authorization,
    ) -> Result<Option<Authorization>, Error> {
        match verdict {
            ServiceVerdict::RenewAndRetry => self
                .drive(retries.renewal(&self.app, resource_server, refused.access_token()))
                .map(Some),
            ServiceVerdict::LoginAndRetry(params) => {
                let options = LoginOptions::new().authorization_parameters(*params);
                self.drive(self.app.login_with(options))?;
                self.drive(retries.authorization(&self.app, resource_server))
                    .map(Some)
            }
            _ => Ok(None),
        }
    }

    fn redrive_gare(&self, response: &http::Response<Vec<u8>>) -> Result<bool, Error> {
        match self.app.gare_redrive_parameters(response) {
            Some(params) => {
                let options = LoginOptions::new().authorization_parameters(params);
                self.drive(self.app.login_with(options)).map(|_| true)
            }
            None => Ok(false),
        }
    }
}

/// An HTTP client for Globus services that authorizes every request with
/// an app: from [`AppCommon::authorized`] (on a [`UserApp`] or a
/// [`ClientApp`]).
///
/// [`send`](Self::send) maps the request's host to a resource server (the
/// services of the app's environment; others with
/// [`with_resource_server`](Self::with_resource_server)), attaches the
/// `Authorization` header, and handles Globus Auth's answers once: a 401
/// gets the token renewed (concurrent callers renew once) and the request
/// sent again; a 403 carrying a GARE, with `auto_redrive_gares` on, gets a
/// login with its requirements and the request sent again. Each happens at
/// most once per request, in either order ("401, then a GARE" is renewed,
/// logged in and answered in three requests); then the answer is returned
/// as it is. Cheap to clone.
#[derive(Clone)]
pub struct AuthorizedClient {
    driver: Driver,
    http: Arc<dyn HttpClient>,
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

    /// Sends `request` with the app's authorization for its service; see
    /// the [type docs](Self).
    pub fn send(&self, request: &http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, Error> {
        let app = &self.driver.app;
        let resource_server = token_destination(&self.destinations, request.uri())?;
        let mut authorization = self.driver.get_authorizer(resource_server)?;
        let mut retries = AuthorizationRetries::default();
        loop {
            let response = self
                .http
                .send(authorized_request(request, &authorization)?)?;
            let verdict = retries.judge(app, &response);
            match self.driver.authorization_after(
                &retries,
                verdict,
                resource_server,
                &authorization,
            )? {
                Some(next) => authorization = next,
                None => return Ok(response),
            }
        }
    }
}

/// Builds a [`UserApp`] ([`UserApp::builder`]) or a [`ClientApp`]
/// ([`ClientApp::builder`]); `App` is the kind being built, so options that
/// make no sense for a kind are not offered for it.
#[must_use]
pub struct AppBuilder<App> {
    settings: AppSettings,
    storage: Option<Arc<dyn TokenStorage>>,
    http: Option<Arc<dyn HttpClient>>,
    login: Option<Arc<dyn LoginFlowManager>>,
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
            app: PhantomData,
        }
    }

    crate::shared_app_builder_setters!();

    /// A token storage to use instead of the configured one.
    pub fn token_storage(mut self, storage: impl TokenStorage + 'static) -> Self {
        self.storage = Some(Arc::new(storage));
        self
    }

    /// The HTTP client (default: [`UreqClient`](crate::http::UreqClient),
    /// feature `ureq`).
    pub fn http_client(mut self, client: impl HttpClient + 'static) -> Self {
        self.http = Some(Arc::new(client));
        self
    }

    fn build_common(self) -> Result<AppCommon, Error> {
        let retry = self.settings.retry;
        let app = self.settings.build_core()?;
        let storage: Arc<dyn TokenStorage> = match self.storage {
            Some(storage) => storage,
            None => match DefaultTokenStorage::open(&app)? {
                DefaultTokenStorage::Json(storage) => Arc::new(storage),
                #[cfg(feature = "sqlite")]
                DefaultTokenStorage::Sqlite(storage) => Arc::new(storage),
                DefaultTokenStorage::Memory(storage) => Arc::new(storage),
            },
        };
        let login = match (self.login, app.kind()) {
            (_, AppKind::Client) => None,
            (Some(login), AppKind::User) => Some(login),
            (None, AppKind::User) => Some(Arc::from(default_login_flow_manager(&app)?)),
        };
        let http = match self.http {
            Some(http) => http,
            None => default_http_client()?,
        };
        Ok(AppCommon {
            driver: Driver {
                app,
                storage,
                http,
                login,
                retry,
                warm: WarmPath::new(),
            },
        })
    }
}

#[cfg(feature = "ureq")]
#[allow(clippy::unnecessary_wraps)] // fails without the feature
fn default_http_client() -> Result<Arc<dyn HttpClient>, Error> {
    Ok(Arc::new(crate::http::UreqClient::new(Duration::from_secs(
        60,
    ))))
}

#[cfg(not(feature = "ureq"))]
fn default_http_client() -> Result<Arc<dyn HttpClient>, Error> {
    Err(Error::MissingPart("HTTP client (feature `ureq` is off)"))
}

impl AppBuilder<UserApp> {
    /// A login flow manager to use instead of the configured one.
    pub fn login_flow_manager(mut self, manager: impl LoginFlowManager + 'static) -> Self {
        self.login = Some(Arc::new(manager));
        self
    }

    /// Checks the configuration, opens the token storage and builds the
    /// app.
    pub fn build(self) -> Result<UserApp, Error> {
        Ok(UserApp {
            common: self.build_common()?,
        })
    }
}

impl AppBuilder<ClientApp> {
    /// Checks the configuration, opens the token storage and builds the
    /// app. Without a client secret this is [`Error::Config`].
    pub fn build(self) -> Result<ClientApp, Error> {
        Ok(ClientApp {
            common: self.build_common()?,
        })
    }
}

/// What every app does, whatever its kind: [`UserApp`] and [`ClientApp`]
/// dereference to it (as rustls's connections do to `ConnectionCommon`),
/// so each method below is called on either, and a function that works
/// with any app takes `&AppCommon`:
///
/// ```no_run
/// use globus_app_blocking::{AppCommon, ClientApp, UserApp};
///
/// fn transfer_header(app: &AppCommon) -> Result<http::HeaderValue, globus_app_blocking::Error> {
///     Ok(app.get_authorizer("transfer.api.globus.org")?.header_value()?)
/// }
/// # fn run(user: &UserApp, service: &ClientApp) -> Result<(), globus_app_blocking::Error> {
/// transfer_header(user)?;
/// transfer_header(service)?;
/// # Ok(()) }
/// ```
///
/// Cheap to clone and `Send + Sync`: clones share the tokens, the renewal
/// locks and what the app has learned.
#[derive(Clone, Debug)]
pub struct AppCommon {
    driver: Driver,
}

impl AppCommon {
    /// An HTTP client for Globus services that authorizes each request with
    /// this app, renews a refused token and redrives a GARE once; see
    /// [`AuthorizedClient`].
    pub fn authorized(&self, client: impl HttpClient + 'static) -> AuthorizedClient {
        AuthorizedClient {
            driver: self.driver.clone(),
            http: Arc::new(client),
            destinations: self.driver.app.token_destinations(),
        }
    }

    /// The app core: configuration, client, identity.
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
    pub fn add_scope_requirements(&self, resource_server: &str, scopes: &str) -> Result<(), Error> {
        Ok(self
            .driver
            .app
            .add_scope_requirements_str(resource_server, scopes)?)
    }

    /// A valid authorization for `resource_server`: the stored token,
    /// renewed a minute before it expires (a `UserApp` refreshes it, a
    /// `ClientApp` gets new client-credentials tokens), after one login if
    /// the stored tokens cannot satisfy the app. Concurrent callers renew
    /// once. A resource server that is not in the scope requirements is
    /// [`AppError::NoScopeRequirements`] at once: no login could help.
    pub fn get_authorizer(&self, resource_server: &str) -> Result<Authorization, Error> {
        self.driver.get_authorizer(resource_server)
    }

    /// Logs in if a login is required: a `UserApp` runs its interactive
    /// flow, a `ClientApp` gets client-credentials tokens.
    pub fn login(&self) -> Result<LoginOutcome, Error> {
        self.driver.drive(self.driver.app.login())
    }

    /// Logs in as `options` say (forced, or with authorization parameters).
    pub fn login_with(&self, options: LoginOptions) -> Result<LoginOutcome, Error> {
        self.driver.drive(self.driver.app.login_with(options))
    }

    /// Whether using the app would need a new login: the stored tokens lack
    /// a required resource server or scope, or (a `UserApp` without a
    /// usable refresh token) have expired. No network calls.
    pub fn login_required(&self) -> Result<bool, Error> {
        self.driver.drive(self.driver.app.login_required())
    }

    /// Revokes and removes the tokens of the required resource servers.
    pub fn logout(&self) -> Result<LogoutReport, Error> {
        self.driver.drive(self.driver.app.logout())
    }

    /// Revokes and removes tokens as `options` say.
    pub fn logout_with(&self, options: LogoutOptions) -> Result<LogoutReport, Error> {
        self.driver.drive(self.driver.app.logout_with(options))
    }

    /// For a service's response: if it is a GARE (a 403 with Globus Auth
    /// requirements, at the root or in `errors[]`) and `auto_redrive_gares`
    /// is on, logs in with its requirements and returns `true`: send the
    /// request once more.
    pub fn redrive_gare(&self, response: &http::Response<Vec<u8>>) -> Result<bool, Error> {
        self.driver.redrive_gare(response)
    }

    /// The authorization to send a refused request with once more (see
    /// [`AuthorizationRetries`]), or `None` for a final answer. Shared by
    /// the authorized client and the service clients.
    pub(crate) fn authorization_after(
        &self,
        retries: &AuthorizationRetries,
        verdict: ServiceVerdict,
        resource_server: &str,
        refused: &Authorization,
    ) -> Result<Option<Authorization>, Error> {
        self.driver
            .authorization_after(retries, verdict, resource_server, refused)
    }
}

/// An app that acts for a person, who logs in interactively. Its methods
/// are [`AppCommon`]'s.
///
/// Cheap to clone and `Send + Sync`: clones share the tokens, the renewal
/// locks and what the app has learned.
///
/// ```no_run
/// use globus_app_blocking::UserApp;
///
/// let app = UserApp::builder("My App")
///     .client_id("your-native-client-id")
///     .scope_requirements("transfer.api.globus.org", "urn:globus:auth:scope:transfer.api.globus.org:all")
///     .build()?;
/// let authorization = app.get_authorizer("transfer.api.globus.org")?; // logs in if needed
/// # Ok::<(), globus_app_blocking::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct UserApp {
    common: AppCommon,
}

impl UserApp {
    /// Starts building a `UserApp` named `app_name` (the name picks the
    /// token file, as in the Python SDK).
    pub fn builder(app_name: impl Into<String>) -> UserAppBuilder {
        AppBuilder::new(AppKind::User, app_name.into())
    }
}

/// An app that acts as itself (a service account), with client credentials.
/// Its methods are [`AppCommon`]'s.
///
/// Cheap to clone and `Send + Sync`.
///
/// ```no_run
/// use globus_app_blocking::ClientApp;
///
/// let app = ClientApp::builder("My Service")
///     .client_id("your-client-id")
///     .client_secret("your-client-secret")
///     .scope_requirements("transfer.api.globus.org", "urn:globus:auth:scope:transfer.api.globus.org:all")
///     .build()?;
/// let authorization = app.get_authorizer("transfer.api.globus.org")?; // client credentials
/// # Ok::<(), globus_app_blocking::Error>(())
/// ```
///
/// A `ClientApp` has no interactive login, so its builder offers no login
/// flow manager, and it cannot become a `UserApp`:
///
/// ```compile_fail,E0308
/// let app: globus_app_blocking::UserApp = globus_app_blocking::ClientApp::builder("S")
///     .client_id("id")
///     .client_secret("secret")
///     .build()?; // a ClientApp, not a UserApp: does not compile
/// # Ok::<(), globus_app_blocking::Error>(())
/// ```
///
/// ```compile_fail,E0599
/// use globus_app_blocking::login::CommandLineLoginFlowManager;
/// let builder = globus_app_blocking::ClientApp::builder("S")
///     .login_flow_manager(CommandLineLoginFlowManager::new()); // no such option
/// ```
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
