//! The behaviour of the Python SDK's `GlobusApp`, `UserApp` and `ClientApp`
//! as sans-IO state machines.
//!
//! A [`GlobusApp`] holds the configuration, the scope requirements and what
//! the app has learned (the user's identity, consents, OpenID keys). Its
//! operations — [`get_authorizer`](GlobusApp::get_authorizer),
//! [`login`](GlobusApp::login), [`login_required`](GlobusApp::login_required),
//! [`logout`](GlobusApp::logout) — are [`Operation`]s that an adapter
//! drives with one short loop (see [`driver`]). The adapters hold no logic
//! of their own: they load and store tokens, send requests, take locks and
//! run the interactive part of a login when told to.
//!
//! Differences from the Python SDK, all on purpose (its section 7):
//! expired access tokens are never handed out; a refresh token Globus Auth
//! rejected (`invalid_grant`) makes [`login_required`](GlobusApp::login_required_for)
//! true and triggers the configured handler; a refresh response without a
//! refresh token keeps the old one; `login_required` makes no network calls;
//! logout revokes refresh then access tokens, carries on after failures and
//! reports each, and forgets the identity so another user can log in; the
//! login response is validated whole (every required resource server, its
//! root scopes, the verified identity) before anything is stored; GAREs
//! nested in `errors[]` are found; concurrent callers that find an expired
//! token cause one refresh ([`Action::Lock`]).

mod config;
pub mod driver;
mod errors;
mod get_authorizer;
mod login;
mod logout;
mod requirements;

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use config::{
    ConfigError, ENVIRONMENT_VARIABLES, GlobusAppConfig, LoginFlowKind, TokenStorageKind,
    TokenValidationErrorHandler,
};
pub use driver::{
    Action, Authorization, AuthorizationResponse, AuthorizePlan, Cancellation, Input,
    InvalidAccessToken, Operation, Step, TokenSet,
};
pub use errors::{AppError, IoFailure, IoFailureKind, TokenValidationError};
pub use get_authorizer::GetAuthorizer;
pub use login::{Login, LoginOptions, LoginOutcome};
pub use logout::{Logout, LogoutOptions, LogoutReport};
pub use requirements::ScopeRequirements;

use crate::UnixTime;
use crate::auth_params::AuthorizationParameters;
use crate::consent::ConsentForest;
use crate::gare::gare_from_response;
use crate::id_token::{Jwks, OidcConfiguration};
use crate::request::LoginClient;
use crate::scope::{Scope, ScopeParseError, parse_scopes};
use crate::secret::{AccessToken, ClientSecret, RefreshToken};
use crate::token::TokenData;

/// Requirements generations are unique in the process, so that a token
/// snapshot shared by two apps never carries one app's verdict to the other.
fn next_requirements_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The services [`GlobusApp::resource_server_for`] knows, by service name
/// (as in `GLOBUS_SDK_SERVICE_URL_<NAME>`) and resource server.
const SERVICES: [(&str, &str); 7] = [
    ("auth", crate::scope::well_known::auth::RESOURCE_SERVER),
    (
        "transfer",
        crate::scope::well_known::transfer::RESOURCE_SERVER,
    ),
    ("groups", crate::scope::well_known::groups::RESOURCE_SERVER),
    ("search", crate::scope::well_known::search::RESOURCE_SERVER),
    ("timer", crate::scope::well_known::timers::RESOURCE_SERVER),
    (
        "compute",
        crate::scope::well_known::compute::RESOURCE_SERVER,
    ),
    ("flows", crate::scope::well_known::flows::RESOURCE_SERVER),
];

/// What to do with a service's answer to an authorized request; see
/// [`GlobusApp::judge_service_response`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServiceVerdict {
    /// Return the response as it is.
    Final,
    /// The service refused the token (401): get a replacement
    /// ([`GlobusApp::get_authorizer_replacing`]) and send the request once
    /// more.
    RenewAndRetry,
    /// The service answered with a GARE: log in with these parameters and
    /// send the request once more.
    LoginAndRetry(Box<AuthorizationParameters>),
}

/// Refresh or renew this many seconds before an access token expires.
pub const RENEW_AHEAD_SECS: i64 = 60;

/// Whether the app acts for a person or for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    /// A person, through an interactive login (`UserApp`).
    User,
    /// The client itself, through client credentials (`ClientApp`).
    Client,
}

/// A Globus app's shared core. Cheap to clone (an `Arc`), `Send + Sync`.
///
/// ```
/// use globus_app_proto::app::{GlobusApp, GlobusAppConfig};
/// let app = GlobusApp::user("My App")
///     .client_id("5c1a7e1e-0000-4000-8000-00000000c1d0")
///     .scope_requirements("transfer.api.globus.org", "urn:globus:auth:scope:transfer.api.globus.org:all")
///     .config(GlobusAppConfig::default().with_request_refresh_tokens(true))
///     .build()?;
/// let requirements = app.scope_requirements();
/// assert_eq!(requirements.resource_servers().collect::<Vec<_>>(), ["auth.globus.org", "transfer.api.globus.org"]);
/// # Ok::<(), globus_app_proto::app::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct GlobusApp {
    inner: Arc<AppInner>,
}

struct AppInner {
    kind: AppKind,
    app_name: String,
    client: LoginClient,
    config: GlobusAppConfig,
    /// The redirect URI of the command-line or custom flow; `None` for the
    /// local-server flow and for `ClientApp`.
    redirect_uri: Option<String>,
    prefill_named_grant: Option<String>,
    /// Requirements and learned state under one lock: the warm path takes
    /// it once, for reading.
    shared: RwLock<Shared>,
    /// Advanced by every write to `shared`, before it is made; see
    /// [`GlobusApp::state_generation`].
    generation: std::sync::atomic::AtomicU64,
}

pub(crate) struct Shared {
    pub(crate) requirements: ScopeRequirements,
    /// Replaced by a new process-unique number whenever the requirements
    /// change.
    pub(crate) requirements_generation: u64,
    pub(crate) state: AppState,
}

/// What the app learns while it runs.
#[derive(Default)]
pub(crate) struct AppState {
    /// The identity the app's tokens belong to; forgotten on logout.
    pub(crate) identity: Option<String>,
    /// The consents, cached until a login or logout.
    pub(crate) consents: Option<Arc<ConsentForest>>,
    /// The OpenID configuration and JWKS, fetched once per app.
    pub(crate) oidc: Option<Arc<OidcKeys>>,
    /// Refresh tokens Globus Auth rejected, by resource server.
    pub(crate) dead_refresh_tokens: Vec<(String, RefreshToken)>,
    /// Renewed records whose store failed, kept for this process until a
    /// store succeeds.
    pub(crate) unsaved: Vec<UnsavedRenewal>,
    /// The resource servers an operation of this app is renewing (one entry
    /// per operation holding the renewal lock).
    pub(crate) renewing: Vec<String>,
}

/// Marks a resource server as being renewed by this app while it lives.
pub(crate) struct RenewingMark {
    app: GlobusApp,
    resource_server: String,
}

impl RenewingMark {
    pub(crate) fn new(app: &GlobusApp, resource_server: &str) -> Self {
        app.write().state.renewing.push(resource_server.to_owned());
        Self {
            app: app.clone(),
            resource_server: resource_server.to_owned(),
        }
    }
}

impl Drop for RenewingMark {
    fn drop(&mut self) {
        let mut shared = self.app.write();
        let renewing = &mut shared.state.renewing;
        if let Some(index) = renewing.iter().position(|rs| *rs == self.resource_server) {
            renewing.swap_remove(index);
        }
    }
}

impl std::fmt::Debug for RenewingMark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RenewingMark")
            .field(&self.resource_server)
            .finish()
    }
}

/// A renewed record that could not be stored.
pub(crate) struct UnsavedRenewal {
    /// The new record (with a rotated refresh token, the only live one).
    pub(crate) record: TokenData,
    /// The access token of the record it replaces: if the stored record
    /// changed since, someone else wrote a newer one and this is dropped.
    pub(crate) replaced: Option<AccessToken>,
}

impl AppState {
    /// The unsaved renewal of `resource_server`, if any.
    pub(crate) fn unsaved_for(&self, resource_server: &str) -> Option<&UnsavedRenewal> {
        self.unsaved
            .iter()
            .find(|u| u.record.resource_server == resource_server)
    }

    /// The tokens of `resource_servers` were replaced (a login) or removed
    /// (a logout): what the app remembered about the old ones goes, and the
    /// consents are fetched again when next needed.
    pub(crate) fn forget_tokens_of(&mut self, resource_servers: &[String]) {
        self.consents = None;
        self.dead_refresh_tokens
            .retain(|(rs, _)| !resource_servers.contains(rs));
        self.unsaved
            .retain(|u| !resource_servers.contains(&u.record.resource_server));
    }

    pub(crate) fn forget_unsaved(&mut self, resource_server: &str) {
        self.unsaved
            .retain(|u| u.record.resource_server != resource_server);
    }
}

pub(crate) struct OidcKeys {
    pub(crate) configuration: OidcConfiguration,
    pub(crate) jwks: Jwks,
}

/// Builds a [`GlobusApp`]; see [`GlobusApp::user`] and [`GlobusApp::client`].
#[must_use]
pub struct AppBuilder {
    kind: AppKind,
    app_name: String,
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    login_client: Option<LoginClient>,
    requirements: Vec<(String, String)>,
    config: GlobusAppConfig,
    hostname: Option<String>,
}

impl AppBuilder {
    /// The client id; the app builds its own login client (confidential if
    /// a secret is also given).
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The client secret (required for a `ClientApp`).
    pub fn client_secret(mut self, secret: ClientSecret) -> Self {
        self.client_secret = Some(secret);
        self
    }

    /// A login client to use instead of a client id.
    pub fn login_client(mut self, client: LoginClient) -> Self {
        self.login_client = Some(client);
        self
    }

    /// Adds required scopes (a scope string) for a resource server.
    pub fn scope_requirements(
        mut self,
        resource_server: impl Into<String>,
        scopes: impl Into<String>,
    ) -> Self {
        self.requirements
            .push((resource_server.into(), scopes.into()));
        self
    }

    /// The configuration.
    pub fn config(mut self, config: GlobusAppConfig) -> Self {
        self.config = config;
        self
    }

    /// Fills what the configuration leaves unset from the Python SDK's
    /// environment variables, as `lookup` reports them; see
    /// [`GlobusAppConfig::with_environment_variables`].
    pub fn with_environment_variables(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        self.config = self.config.with_environment_variables(lookup)?;
        Ok(self)
    }

    /// The machine's host name, for the consent's name
    /// (`"<app name> on <host>"`); the adapters pass it.
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    /// Checks the configuration and builds the app.
    pub fn build(self) -> Result<GlobusApp, ConfigError> {
        let Self {
            kind,
            app_name,
            client_id,
            client_secret,
            login_client,
            requirements,
            config,
            hostname,
        } = self;
        if kind == AppKind::Client
            && client_id.is_some()
            && client_secret.is_none()
            && login_client.is_none()
        {
            return Err(ConfigError::ClientAppRequiresSecret);
        }
        let client = config::resolve_login_client(client_id, client_secret, login_client, &config)?;
        if kind == AppKind::Client && !client.is_confidential() {
            return Err(ConfigError::ClientAppRequiresConfidentialClient);
        }
        if config.namespace.is_empty() {
            return Err(ConfigError::EmptyNamespace);
        }
        let mut scope_requirements = ScopeRequirements::new();
        for (resource_server, scopes) in &requirements {
            scope_requirements
                .add_str(resource_server, scopes)
                .map_err(|source| ConfigError::InvalidScopeRequirement {
                    resource_server: resource_server.clone(),
                    source,
                })?;
        }
        let redirect_uri = match (kind, config.login_flow) {
            (AppKind::Client, Some(_)) => return Err(ConfigError::ClientAppCannotUseLoginFlow),
            (AppKind::Client, None) => None,
            (AppKind::User, Some(LoginFlowKind::LocalServer)) => {
                if config.login_redirect_uri.is_some() {
                    return Err(ConfigError::LocalServerCustomRedirectUri);
                }
                if client.is_confidential() {
                    return Err(ConfigError::LocalServerRequiresNativeClient);
                }
                None
            }
            (AppKind::User, _) => Some(
                match (&config.login_redirect_uri, client.is_confidential()) {
                    (Some(uri), _) => uri.clone(),
                    (None, false) => client.default_native_redirect_uri(),
                    (None, true) => return Err(ConfigError::ConfidentialClientRequiresRedirectUri),
                },
            ),
        };
        let prefill_named_grant = (kind == AppKind::User && !client.is_confidential()).then(|| {
            match hostname
                .as_deref()
                .map(|h| h.strip_suffix(".local").unwrap_or(h))
            {
                Some(host) if !host.is_empty() => format!("{app_name} on {host}"),
                _ => app_name.clone(),
            }
        });
        let client = client.with_app_name(&app_name);
        Ok(GlobusApp {
            inner: Arc::new(AppInner {
                kind,
                app_name,
                client,
                config,
                redirect_uri,
                prefill_named_grant,
                generation: std::sync::atomic::AtomicU64::new(0),
                shared: RwLock::new(Shared {
                    requirements: scope_requirements,
                    requirements_generation: next_requirements_generation(),
                    state: AppState::default(),
                }),
            }),
        })
    }
}

/// What the stored token of one resource server means for the app.
#[derive(Debug)]
pub(crate) enum Evaluation<'t> {
    /// Usable as is.
    Ready(&'t TokenData),
    /// Needs a refresh (refresh-token mode) or new client credentials.
    Renew(Renewal),
    /// Not usable; a login may fix it.
    Invalid(TokenValidationError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Renewal {
    /// Refresh with the stored refresh token.
    Refresh,
    /// `ClientApp`: no usable token, or wrong scopes; fetch one.
    ClientCredentials { missing: bool },
}

impl GlobusApp {
    /// Starts building a `UserApp`.
    pub fn user(app_name: impl Into<String>) -> AppBuilder {
        Self::builder(AppKind::User, app_name.into())
    }

    /// Starts building a `ClientApp`.
    pub fn client(app_name: impl Into<String>) -> AppBuilder {
        Self::builder(AppKind::Client, app_name.into())
    }

    fn builder(kind: AppKind, app_name: String) -> AppBuilder {
        AppBuilder {
            kind,
            app_name,
            client_id: None,
            client_secret: None,
            login_client: None,
            requirements: Vec::new(),
            config: GlobusAppConfig::default(),
            hostname: None,
        }
    }

    /// `UserApp` or `ClientApp`.
    pub fn kind(&self) -> AppKind {
        self.inner.kind
    }

    /// The app's name.
    pub fn app_name(&self) -> &str {
        &self.inner.app_name
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        self.inner.client.client_id()
    }

    /// The login client.
    pub fn login_client(&self) -> &LoginClient {
        &self.inner.client
    }

    /// The configuration.
    pub fn config(&self) -> &GlobusAppConfig {
        &self.inner.config
    }

    /// The identity the app's tokens belong to, once known.
    pub fn identity(&self) -> Option<String> {
        self.read().state.identity.clone()
    }

    /// A copy of the scope requirements.
    pub fn scope_requirements(&self) -> ScopeRequirements {
        self.read().requirements.clone()
    }

    /// Adds required scopes for a resource server (merged with the existing
    /// ones, so repeats collapse).
    pub fn add_scope_requirements(
        &self,
        resource_server: &str,
        scopes: &[Scope],
    ) -> Result<(), ScopeParseError> {
        let mut shared = self.write();
        shared.requirements_generation = next_requirements_generation();
        shared.requirements.add(resource_server, scopes)
    }

    /// [`add_scope_requirements`](Self::add_scope_requirements) from a scope string.
    pub fn add_scope_requirements_str(
        &self,
        resource_server: &str,
        scopes: &str,
    ) -> Result<(), ScopeParseError> {
        self.add_scope_requirements(resource_server, &parse_scopes(scopes)?)
    }

    /// A valid authorization for `resource_server`: the stored token,
    /// refreshed or renewed if it expires within [`RENEW_AHEAD_SECS`], with
    /// one login (per the configured handler) if the stored tokens cannot
    /// satisfy the app.
    pub fn get_authorizer<'r>(&'r self, resource_server: &'r str) -> GetAuthorizer<'r> {
        GetAuthorizer::new(self, resource_server, true)
    }

    /// Logs in if a login is required.
    pub fn login(&self) -> Login {
        Login::new(self.clone(), LoginOptions::new())
    }

    /// Logs in as `options` say: forced, or with authorization parameters
    /// (which always cause a login), else only if required.
    pub fn login_with(&self, options: LoginOptions) -> Login {
        Login::new(self.clone(), options)
    }

    /// Whether using the app would need a new login; see
    /// [`login_required_for`](Self::login_required_for).
    pub fn login_required(&self) -> LoginRequired {
        LoginRequired {
            app: self.clone(),
            asked: false,
        }
    }

    /// Revokes and removes the tokens of the required resource servers, and
    /// forgets the identity.
    pub fn logout(&self) -> Logout {
        Logout::new(self.clone(), LogoutOptions::new())
    }

    /// Revokes and removes tokens as `options` say, and forgets the
    /// identity.
    pub fn logout_with(&self, options: LogoutOptions) -> Logout {
        Logout::new(self.clone(), options)
    }

    /// A valid authorization for `resource_server` other than `rejected`,
    /// an access token a service refused (HTTP 401): if the stored token is
    /// still `rejected`, it is renewed under the renewal lock (so concurrent
    /// callers renew once; one that finds it already replaced takes the new
    /// one), or, if it cannot be renewed, the configured handler runs (a
    /// login).
    pub fn get_authorizer_replacing<'r>(
        &'r self,
        resource_server: &'r str,
        rejected: &AccessToken,
    ) -> GetAuthorizer<'r> {
        GetAuthorizer::replacing(self, resource_server, rejected.clone())
    }

    /// What to do with a Globus service's `response` to a request sent with
    /// this app's authorization: retry once after renewing a refused token
    /// (401), or after a login with a GARE's requirements (a 403 carrying
    /// one, with `auto_redrive_gares` on). An answer to a retry is always
    /// final: a request is sent at most twice.
    pub fn judge_service_response(
        &self,
        response: &http::Response<Vec<u8>>,
        is_retry: bool,
    ) -> ServiceVerdict {
        if is_retry {
            return ServiceVerdict::Final;
        }
        match response.status() {
            http::StatusCode::UNAUTHORIZED => ServiceVerdict::RenewAndRetry,
            http::StatusCode::FORBIDDEN => self
                .gare_redrive_parameters(response)
                .map_or(ServiceVerdict::Final, |params| {
                    ServiceVerdict::LoginAndRetry(Box::new(params))
                }),
            _ => ServiceVerdict::Final,
        }
    }

    /// The resource server of a Globus service URL in this app's
    /// environment (Auth, Transfer, Groups, Search, Timers, Compute,
    /// Flows), by its origin (scheme, host and port, hosts compared
    /// normalised), if the token policy lets a token go there
    /// ([`crate::origin`]). GCS collections and endpoints have hosts of
    /// their own: map those yourself.
    pub fn resource_server_for(&self, uri: &http::Uri) -> Option<&'static str> {
        let destinations = self.token_destinations();
        let resource_server = destinations.resolve(uri).ok()?;
        SERVICES
            .iter()
            .map(|(_, known)| *known)
            .find(|known| *known == resource_server)
    }

    /// Where this app's tokens may go: the Globus services of its
    /// environment, by origin, under the token policy of its
    /// configuration ([`GlobusAppConfig::plain_http_hosts`]). An
    /// authorized client starts from these and adds the hosts its user
    /// maps.
    pub fn token_destinations(&self) -> crate::origin::TokenDestinations {
        let config = self.config();
        let environment = config.resolved_environment();
        let mut destinations =
            crate::origin::TokenDestinations::new(config.plain_http_hosts.clone());
        for (service, resource_server) in SERVICES {
            let url = if service == "auth" {
                Some(self.login_client().auth_base().clone())
            } else {
                environment.service_url(service, None).ok()
            };
            if let Some(url) = url {
                destinations.insert_service(&url, resource_server);
            }
        }
        destinations
    }

    /// The login parameters of a GARE in a service's response (a 403 whose
    /// body has one, at the root or in `errors[]`), if `auto_redrive_gares`
    /// is on: log in with them and retry the request once.
    pub fn gare_redrive_parameters(
        &self,
        response: &http::Response<Vec<u8>>,
    ) -> Option<AuthorizationParameters> {
        if !self.inner.config.auto_redrive_gares {
            return None;
        }
        gare_from_response(response).map(|gare| gare.authorization_parameters)
    }

    /// Whether using the app with these stored tokens would need a new
    /// login, at `now`. Pure: no network, no storage.
    ///
    /// True when a required resource server has no token, lacks a root
    /// scope, belongs to another identity, or cannot be made valid without
    /// a login: an expired access token in access-token mode, a missing or
    /// rejected refresh token in refresh-token mode. Dependent scopes are
    /// judged against consents already fetched, if any. A `ClientApp` needs
    /// a login only when a token is missing or lacks scopes (expiry is
    /// renewed automatically).
    pub fn login_required_for(&self, tokens: &TokenSet, now: UnixTime) -> bool {
        if self.observe_identity(tokens).is_err() {
            return true;
        }
        let shared = self.read();
        let state = &shared.state;
        shared.requirements.iter().any(|(rs, scopes)| {
            match self.evaluate_record(rs, Some(scopes), tokens.get(rs), state, now) {
                Evaluation::Invalid(_)
                | Evaluation::Renew(Renewal::ClientCredentials { missing: true }) => true,
                Evaluation::Renew(_) => false,
                Evaluation::Ready(_) => state.consents.as_ref().is_some_and(|forest| {
                    has_dependencies(scopes) && !forest.meets_scope_requirements(scopes)
                }),
            }
        })
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Shared> {
        self.inner
            .shared
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Shared> {
        // Before the change: a reader that saw the old number is outdated
        // by the time the change can be seen.
        self.inner
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.inner
            .shared
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A number that changes whenever what the app knows changes
    /// (requirements, identity, consents, renewals in flight or unsaved):
    /// reading it writes nothing. `get_authorizer`'s verdict on the same
    /// stored tokens at a later time is the same as long as this number,
    /// the stored tokens and [`Authorization::is_due`] are; adapters cache
    /// authorizations per thread on that rule.
    pub fn state_generation(&self) -> u64 {
        self.inner
            .generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Learns the identity from stored tokens (the first one seen).
    pub(crate) fn observe_identity(&self, tokens: &TokenSet) -> Result<(), TokenValidationError> {
        if let Some(identity) = tokens.identity()?
            && self.read().state.identity.is_none()
        {
            let mut shared = self.write();
            if shared.state.identity.is_none() {
                shared.state.identity = Some(identity.to_owned());
            }
        }
        Ok(())
    }

    /// The scopes required for `resource_server`, copied.
    pub(crate) fn required_scopes(&self, resource_server: &str) -> Option<Vec<Scope>> {
        self.read()
            .requirements
            .get(resource_server)
            .map(<[Scope]>::to_vec)
    }

    /// What the stored token of `resource_server` means, at `now`, and
    /// whether its requirements have dependent scopes to check. Learns the
    /// identity of the tokens on first sight.
    pub(crate) fn evaluate<'t>(
        &self,
        resource_server: &str,
        tokens: &'t TokenSet,
        now: UnixTime,
    ) -> Result<(Evaluation<'t>, bool), AppError> {
        let identity = match tokens.identity() {
            Ok(identity) => identity,
            Err(e) => return Ok((Evaluation::Invalid(e), false)),
        };
        let mut shared = self.read();
        if shared.state.identity.is_none() && identity.is_some() {
            // First sight of the identity (once per app): learn it.
            drop(shared);
            self.observe_identity(tokens)?;
            shared = self.read();
        }
        let required = shared.requirements.get(resource_server);
        if required.is_none() && self.inner.kind == AppKind::Client {
            return Err(AppError::NoScopeRequirements(resource_server.to_owned()));
        }
        let position = tokens.position(resource_server);
        let generation = shared.requirements_generation;
        // Root scopes already checked for this snapshot: skip the check.
        let known_ok = position.is_some_and(|i| tokens.root_scopes_known_ok(i, generation));
        let record = position.map(|i| &tokens.records()[i]);
        let evaluation = self.evaluate_record(
            resource_server,
            if known_ok { None } else { required },
            record,
            &shared.state,
            now,
        );
        if let (Some(i), false, Some(_)) = (position, known_ok, required)
            && !matches!(
                evaluation,
                Evaluation::Invalid(TokenValidationError::UnmetScopeRequirements { .. })
                    | Evaluation::Renew(Renewal::ClientCredentials { missing: true })
            )
        {
            tokens.remember_root_scopes_ok(i, generation);
        }
        if required.is_none() && matches!(evaluation, Evaluation::Invalid(_)) {
            // A login asks only for the required resource servers: it cannot
            // bring a token for this one, so none is run.
            return Err(AppError::NoScopeRequirements(resource_server.to_owned()));
        }
        Ok((evaluation, required.is_some_and(has_dependencies)))
    }

    fn evaluate_record<'t>(
        &self,
        resource_server: &str,
        required: Option<&[Scope]>,
        record: Option<&'t TokenData>,
        state: &AppState,
        now: UnixTime,
    ) -> Evaluation<'t> {
        let kind = self.inner.kind;
        let Some(record) = record else {
            return match kind {
                AppKind::Client => Evaluation::Renew(Renewal::ClientCredentials { missing: true }),
                AppKind::User => Evaluation::Invalid(TokenValidationError::MissingToken {
                    resource_server: resource_server.to_owned(),
                }),
            };
        };
        if let Some(required) = required {
            let missing = missing_root_scopes(record, required);
            if !missing.is_empty() {
                return match kind {
                    AppKind::Client => {
                        Evaluation::Renew(Renewal::ClientCredentials { missing: true })
                    }
                    AppKind::User => {
                        Evaluation::Invalid(TokenValidationError::UnmetScopeRequirements {
                            resource_server: resource_server.to_owned(),
                            missing,
                        })
                    }
                };
            }
        }
        if kind == AppKind::Client {
            return if record.expires_within(now, RENEW_AHEAD_SECS) {
                Evaluation::Renew(Renewal::ClientCredentials { missing: false })
            } else {
                Evaluation::Ready(record)
            };
        }
        if let (Some(stored), Some(new)) = (&state.identity, &record.identity_id)
            && stored != new
        {
            return Evaluation::Invalid(TokenValidationError::IdentityMismatch {
                stored: stored.clone(),
                new: new.clone(),
            });
        }
        if self.inner.config.request_refresh_tokens {
            let Some(refresh_token) = &record.refresh_token else {
                return Evaluation::Invalid(TokenValidationError::MissingRefreshToken {
                    resource_server: resource_server.to_owned(),
                });
            };
            if state
                .dead_refresh_tokens
                .iter()
                .any(|(rs, dead)| rs == resource_server && dead == refresh_token)
            {
                return Evaluation::Invalid(TokenValidationError::RefreshTokenRejected {
                    resource_server: resource_server.to_owned(),
                });
            }
            if record.expires_within(now, RENEW_AHEAD_SECS) {
                return Evaluation::Renew(Renewal::Refresh);
            }
        } else if record.is_expired(now) {
            return Evaluation::Invalid(TokenValidationError::Expired {
                resource_server: resource_server.to_owned(),
                expires_at: record.expires_at,
            });
        }
        Evaluation::Ready(record)
    }
}

impl std::fmt::Debug for GlobusApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobusApp")
            .field("kind", &self.inner.kind)
            .field("app_name", &self.inner.app_name)
            .field("client_id", &self.client_id())
            .finish_non_exhaustive()
    }
}

/// The required scope names a record's granted scopes lack.
pub(crate) fn missing_root_scopes(record: &TokenData, required: &[Scope]) -> Vec<String> {
    required
        .iter()
        .filter(|s| !record.scopes().any(|granted| granted == s.name()))
        .map(|s| s.name().to_owned())
        .collect()
}

pub(crate) fn has_dependencies(scopes: &[Scope]) -> bool {
    scopes.iter().any(|s| !s.dependencies().is_empty())
}

/// The [`GlobusApp::login_required`] operation: loads the tokens, then
/// answers with [`GlobusApp::login_required_for`].
#[derive(Debug)]
pub struct LoginRequired {
    app: GlobusApp,
    asked: bool,
}

impl Operation for LoginRequired {
    fn name(&self) -> &'static str {
        "login_required"
    }

    type Output = Result<bool, AppError>;

    fn advance(&mut self, input: Option<Input>, now: UnixTime) -> Step<Self::Output> {
        if !self.asked {
            self.asked = true;
            return Step::Action(Action::LoadTokens);
        }
        match input {
            Some(Input::Tokens(tokens)) => {
                Step::Done(Ok(self.app.login_required_for(&tokens, now)))
            }
            Some(Input::Failed(failure)) => Step::Done(Err(failure.into())),
            other => Step::Done(Err(unexpected("Tokens", other.as_ref()))),
        }
    }
}

pub(crate) fn unexpected(expected: &'static str, got: Option<&Input>) -> AppError {
    AppError::UnexpectedInput {
        expected,
        got: got.map_or("nothing", Input::name),
    }
}

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod tests;
