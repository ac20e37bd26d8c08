//! For adapter authors: the pieces both adapters (this crate and
//! `globus-app-async`) drive the core with, written once.
//!
//! An adapter is one loop over [`Operation::advance`]: perform each
//! [`Action`](globus_app_proto::app::Action) with its own I/O and feed back
//! the result. What is the same whatever the I/O lives here: building the
//! app core from the builder's settings ([`AppSettings`]), choosing the
//! default storage and login flow, turning each action's result into the
//! core's [`Input`] while keeping the adapter's typed error
//! ([`Outcomes`]), and the clock, host name and random bytes. Users of the
//! apps never need this module.

use std::time::SystemTime;

use globus_app_proto::UnixTime;
use globus_app_proto::app::{
    AppError, AppKind, Authorization, AuthorizationResponse, GlobusApp, Input, IoFailure,
    IoFailureKind, LoginFlowKind, Operation, Step, TokenSet, TokenStorageKind,
};

use globus_app_proto::origin::{DestinationError, TokenDestinations};
use globus_app_proto::service::ServiceRequestError;

use crate::Error;
use crate::http::TransportError;
use crate::login::{
    CommandLineLoginFlowManager, LocalServerLoginFlowManager, LoginFlowError, LoginFlowManager,
};
#[cfg(feature = "sqlite")]
use crate::storage::SqliteTokenStorage;
use crate::storage::{JsonTokenStorage, MemoryTokenStorage, StorageError};
pub use crate::trace::OperationSpan;

/// The current time from the system clock.
pub fn now() -> UnixTime {
    UnixTime::from(SystemTime::now())
}

/// This machine's host name, for the consent's name (`"<app> on <host>"`);
/// empty if it is unknown or not valid Unicode.
pub fn hostname() -> String {
    gethostname::gethostname()
        .into_string()
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

/// What both adapters' app builders set the same way: the core's builder,
/// whether to read the environment variables, and the retry policy. The
/// builders' setters for these are written once, in
/// [`shared_app_builder_setters!`](crate::shared_app_builder_setters).
#[non_exhaustive]
pub struct AppSettings {
    /// The core's builder (client, scopes, configuration).
    pub core: globus_app_proto::app::AppBuilder,
    /// Whether the Python SDK's environment variables fill what the
    /// configuration leaves unset.
    pub read_environment_variables: bool,
    /// The retry policy for Globus Auth requests.
    pub retry: crate::http::RetryPolicy,
}

impl AppSettings {
    /// The defaults for an app of `kind` named `app_name`.
    pub fn new(kind: AppKind, app_name: String) -> Self {
        Self {
            core: match kind {
                AppKind::User => GlobusApp::user(app_name),
                AppKind::Client => GlobusApp::client(app_name),
            },
            read_environment_variables: true,
            retry: crate::http::RetryPolicy::default(),
        }
    }

    /// Builds the app core: the Python SDK's environment variables fill
    /// what the configuration leaves unset (unless
    /// `read_environment_variables` is off), and the consent name gets
    /// this machine's host name. Reads the environment and the host name:
    /// blocking calls.
    pub fn build_core(self) -> Result<GlobusApp, Error> {
        let core = if self.read_environment_variables {
            self.core
                .with_environment_variables(|name| std::env::var(name).ok())?
        } else {
            self.core
        };
        Ok(core.hostname(hostname()).build()?)
    }
}

/// The setters both adapters' `AppBuilder`s share, written once: expands
/// to methods of a builder whose field `settings` is an [`AppSettings`].
/// Its doc links name `GlobusAppConfig`, `UserApp`, `ClientApp` and
/// `build` as the invoking crate has them.
#[doc(hidden)]
#[macro_export]
macro_rules! shared_app_builder_setters {
    () => {
        /// The client id (required).
        pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
            self.settings.core = self.settings.core.client_id(client_id);
            self
        }

        /// Adds required scopes (a scope string) for a resource server.
        /// Parsed when the app is built: an invalid string is a
        /// configuration error there.
        pub fn scope_requirements(
            mut self,
            resource_server: impl Into<String>,
            scopes: impl Into<String>,
        ) -> Self {
            self.settings.core = self
                .settings
                .core
                .scope_requirements(resource_server, scopes);
            self
        }

        /// The client secret: required for a [`ClientApp`]; for a
        /// [`UserApp`], only for a confidential client acting for a person
        /// (rare: most are native apps without one).
        pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
            self.settings.core = self
                .settings
                .core
                .client_secret($crate::proto::secret::ClientSecret::new(secret));
            self
        }

        /// The configuration (default: [`GlobusAppConfig::default`]). What
        /// it leaves unset is read from `GLOBUS_SDK_ENVIRONMENT` and
        /// `GLOBUS_SDK_SERVICE_URL_AUTH`, as the Python SDK does, unless
        /// [`read_environment_variables(false)`](Self::read_environment_variables).
        pub fn config(mut self, config: GlobusAppConfig) -> Self {
            self.settings.core = self.settings.core.config(config);
            self
        }

        /// Whether to read the Python SDK's environment variables (default:
        /// yes); see [`GlobusAppConfig::with_environment_variables`].
        pub fn read_environment_variables(mut self, read: bool) -> Self {
            self.settings.read_environment_variables = read;
            self
        }

        /// The retry policy for Globus Auth requests.
        pub fn retry_policy(mut self, policy: $crate::http::RetryPolicy) -> Self {
            self.settings.retry = policy;
            self
        }
    };
}

/// The token storage an app's configuration names, when none was given.
#[derive(Debug)]
#[non_exhaustive]
pub enum DefaultTokenStorage {
    /// `TokenStorageKind::Json`: the app's default `tokens.json`.
    Json(JsonTokenStorage),
    /// `TokenStorageKind::Sqlite`: the app's default `tokens.db` (feature
    /// `sqlite`).
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteTokenStorage),
    /// `TokenStorageKind::Memory`.
    Memory(MemoryTokenStorage),
}

impl DefaultTokenStorage {
    /// Opens the storage the configuration names (creating its directory:
    /// blocking I/O). `Custom` without a storage is an error.
    pub fn open(app: &GlobusApp) -> Result<Self, Error> {
        Ok(match app.config().token_storage {
            TokenStorageKind::Json => Self::Json(JsonTokenStorage::for_app(app)?),
            #[cfg(feature = "sqlite")]
            TokenStorageKind::Sqlite => Self::Sqlite(SqliteTokenStorage::for_app(app)?),
            #[cfg(not(feature = "sqlite"))]
            TokenStorageKind::Sqlite => {
                return Err(Error::MissingPart(
                    "SQLite token storage (feature `sqlite` is off)",
                ));
            }
            TokenStorageKind::Memory => Self::Memory(MemoryTokenStorage::new()),
            _ => return Err(Error::MissingPart("custom token storage")),
        })
    }
}

/// The login flow manager a `UserApp`'s configuration names, when none
/// was given: command-line by default. `Custom` without one is an error.
pub fn default_login_flow_manager(app: &GlobusApp) -> Result<Box<dyn LoginFlowManager>, Error> {
    Ok(match app.config().login_flow {
        None | Some(LoginFlowKind::CommandLine) => Box::new(CommandLineLoginFlowManager::new()),
        Some(LoginFlowKind::LocalServer) => Box::new(LocalServerLoginFlowManager::new()),
        Some(_) => return Err(Error::MissingPart("custom login flow manager")),
    })
}

/// Valid authorizations served from a per-thread copy: the warm path of
/// both adapters, which writes no memory another thread touches (no lock,
/// no shared reference count) and reads the clock once.
///
/// An authorization handed out is kept for this thread with the stamp
/// taken before it was looked up: the app's
/// [`state_generation`](GlobusApp::state_generation) and the storage's
/// [`snapshot_version`](crate::storage::TokenStorage::snapshot_version).
/// It is served again while both are unchanged and it is not
/// [due for renewal](Authorization::due_at): the core's verdict on the
/// same tokens and the same app state would be the same. The due time is
/// kept on the monotonic clock, and a copy is served for at most
/// [`WARM_LIFETIME`] before the core looks at the token again against the
/// system clock (a step of the system clock is noticed within that time).
/// A storage without a fresh snapshot (`None`) always goes the full way.
/// Each thread keeps at most [`WARM_ENTRIES`] authorizations. Clones share
/// the copies (a clone of an app is the same app). A copy stays in its
/// thread's memory until that thread replaces it: after a logout, or once
/// the app is dropped, it is never served again, but it is not wiped.
#[derive(Debug, Clone)]
pub struct WarmPath {
    app: u64,
}

/// How many authorizations a thread keeps, over all apps and resource
/// servers; the oldest goes first.
pub const WARM_ENTRIES: usize = 16;

/// The longest a per-thread copy is served before the core sees the token
/// again.
pub const WARM_LIFETIME: std::time::Duration = std::time::Duration::from_secs(1);

/// What an authorization was handed out under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmStamp {
    app_state: u64,
    snapshot: u64,
}

struct WarmEntry {
    app: u64,
    resource_server: Box<str>,
    stamp: WarmStamp,
    /// Served until then (monotonic).
    until: std::time::Instant,
    authorization: Authorization,
}

thread_local! {
    static WARM: std::cell::RefCell<Vec<WarmEntry>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Default for WarmPath {
    fn default() -> Self {
        Self::new()
    }
}

impl WarmPath {
    /// The warm path of one app (and its clones).
    pub fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Self {
            app: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The stamp now, and the monotonic time it was taken at (read once,
    /// and given to `snapshot_version`); the stamp is `None` when the
    /// storage has no fresh snapshot.
    #[inline]
    pub fn stamp(
        app: &GlobusApp,
        snapshot_version: impl FnOnce(std::time::Instant) -> Option<u64>,
    ) -> (Option<WarmStamp>, std::time::Instant) {
        let now = std::time::Instant::now();
        let stamp = snapshot_version(now).map(|snapshot| WarmStamp {
            snapshot,
            app_state: app.state_generation(),
        });
        (stamp, now)
    }

    /// The warm path's lookup: this thread's copy of the authorization for
    /// `resource_server` when it can be served, or else the stamp under
    /// which the full path's answer may be kept ([`keep`](Self::keep);
    /// `None`: not kept, the storage had no fresh snapshot).
    #[inline]
    pub fn lookup(
        &self,
        app: &GlobusApp,
        snapshot_version: impl FnOnce(std::time::Instant) -> Option<u64>,
        resource_server: &str,
    ) -> Result<Authorization, Option<WarmStamp>> {
        match Self::stamp(app, snapshot_version) {
            (Some(stamp), now) => self.get(resource_server, stamp, now).ok_or(Some(stamp)),
            (None, _) => Err(None),
        }
    }

    /// Keeps `authorization`, the full path's answer, for this thread when
    /// [`lookup`](Self::lookup) gave a stamp.
    pub fn keep(
        &self,
        resource_server: &str,
        stamp: Option<WarmStamp>,
        authorization: &Authorization,
    ) {
        if let Some(stamp) = stamp {
            self.put(resource_server, stamp, authorization);
        }
    }

    /// This thread's copy of the authorization for `resource_server`, if
    /// it was handed out under `stamp` and its time has not run out at
    /// `now` (monotonic).
    #[inline]
    pub fn get(
        &self,
        resource_server: &str,
        stamp: WarmStamp,
        now: std::time::Instant,
    ) -> Option<Authorization> {
        WARM.with_borrow(|entries| {
            entries
                .iter()
                .find(|e| e.app == self.app && &*e.resource_server == resource_server)
                .filter(|e| e.stamp == stamp && now < e.until)
                .map(|e| e.authorization.clone())
        })
    }

    /// Keeps this thread's own copy of `authorization`, handed out under
    /// `stamp` (taken before it was looked up), until it is due or for
    /// [`WARM_LIFETIME`].
    pub fn put(&self, resource_server: &str, stamp: WarmStamp, authorization: &Authorization) {
        let wall = now();
        let until_due = authorization
            .due_at()
            .as_secs()
            .saturating_sub(wall.as_secs());
        let Ok(until_due) = u64::try_from(until_due) else {
            return;
        };
        let lifetime = WARM_LIFETIME.min(std::time::Duration::from_secs(until_due));
        if lifetime.is_zero() {
            return;
        }
        let until = std::time::Instant::now() + lifetime;
        WARM.with_borrow_mut(|entries| {
            entries.retain(|e| !(e.app == self.app && &*e.resource_server == resource_server));
            if entries.len() >= WARM_ENTRIES {
                entries.remove(0);
            }
            entries.push(WarmEntry {
                app: self.app,
                resource_server: resource_server.into(),
                stamp,
                until,
                authorization: authorization.unshared(),
            });
        });
    }
}

/// Which resource server's token goes with a request to `uri`, by the
/// core's token policy ([`TokenDestinations::resolve`]): a refused URL is
/// [`Error::ServiceRequest`] (the same verdict a service client gives), an
/// unknown host [`Error::UnknownService`]. Shared by both adapters'
/// authorized clients.
pub fn token_destination<'a>(
    destinations: &'a TokenDestinations,
    uri: &http::Uri,
) -> Result<&'a str, Error> {
    destinations.resolve(uri).map_err(|e| match e {
        DestinationError::Refused(refused) => ServiceRequestError::TokenOrigin(refused).into(),
        DestinationError::Unknown { host } => Error::UnknownService { host },
        _ => Error::UnknownService {
            host: uri.host().unwrap_or_default().to_owned(),
        },
    })
}

/// The instant `wait` from now; a wait too long for the clock (a caller's
/// `Duration::MAX` timeout, a server's enormous `Retry-After`) is a
/// century, not an overflow.
pub fn instant_after(wait: std::time::Duration) -> std::time::Instant {
    const CENTURY: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 24 * 3600);
    let now = std::time::Instant::now();
    now.checked_add(wait)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

/// A copy of `request` with `authorization`'s `Authorization` header.
pub fn authorized_request(
    request: &http::Request<Vec<u8>>,
    authorization: &Authorization,
) -> Result<http::Request<Vec<u8>>, Error> {
    let mut copy = crate::http::copy_request(request);
    copy.headers_mut()
        .insert(http::header::AUTHORIZATION, authorization.header_value()?);
    Ok(copy)
}

/// Turns the result of each action into the core's [`Input`], and keeps
/// the adapter's typed error of the last failure so that the caller gets
/// it (with its cause) rather than the core's summary.
#[derive(Debug, Default)]
pub struct Outcomes {
    last_failure: Option<Error>,
}

impl Outcomes {
    /// No failure yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn failed(&mut self, kind: IoFailureKind, error: Error, retryable: bool) -> Input {
        let input = Input::Failed(IoFailure::new(kind, &error, retryable));
        self.last_failure = Some(error);
        input
    }

    /// A storage call (load, store, remove) that answers `ok` on success.
    pub fn storage<T>(
        &mut self,
        result: Result<T, StorageError>,
        ok: impl FnOnce(T) -> Input,
    ) -> Input {
        match result {
            Ok(value) => ok(value),
            Err(e @ StorageError::RenewalSuperseded { .. }) => {
                self.failed(IoFailureKind::Superseded, e.into(), false)
            }
            Err(e) => self.failed(IoFailureKind::Storage, e.into(), false),
        }
    }

    /// The tokens a load returned; unreadable content is its own kind of
    /// failure (a forced login sets it aside).
    pub fn loaded(&mut self, result: Result<TokenSet, StorageError>) -> Input {
        match result {
            Err(e) if e.is_unreadable() => {
                self.failed(IoFailureKind::UnreadableStorage, e.into(), false)
            }
            result => self.storage(result, Input::Tokens),
        }
    }

    /// What setting unreadable content aside did.
    pub fn set_aside(&mut self, result: Result<Option<std::path::PathBuf>, StorageError>) -> Input {
        self.storage(result, |_| Input::SetAside)
    }

    /// A renewal lock of `resource_server`, taken after waiting `waited`:
    /// `Locked` after `hold` keeps the guard.
    pub fn locked<G>(
        &mut self,
        result: Result<G, StorageError>,
        resource_server: &str,
        waited: std::time::Duration,
        hold: impl FnOnce(G),
    ) -> Input {
        match result {
            Ok(guard) => {
                crate::trace::lock_taken(resource_server, waited);
                hold(guard);
                Input::Locked
            }
            Err(e) => self.failed(IoFailureKind::Lock, e.into(), true),
        }
    }

    /// The answer to [`Action::LockIfFree`](globus_app_proto::app::Action::LockIfFree):
    /// `None` is a lock someone else holds.
    pub fn locked_if_free<G>(
        &mut self,
        result: Result<Option<G>, StorageError>,
        resource_server: &str,
        hold: impl FnOnce(G),
    ) -> Input {
        match result.transpose() {
            None => Input::LockHeld,
            Some(result) => self.locked(result, resource_server, std::time::Duration::ZERO, hold),
        }
    }

    /// The response to a sent request.
    pub fn response(&mut self, result: Result<http::Response<Vec<u8>>, TransportError>) -> Input {
        match result {
            Ok(response) => Input::Response(response),
            Err(e) => self.failed(IoFailureKind::Transport, e.into(), true),
        }
    }

    /// What the interactive login brought back.
    pub fn authorization(
        &mut self,
        result: Result<AuthorizationResponse, LoginFlowError>,
    ) -> Input {
        match result {
            Ok(response) => Input::Authorization(response),
            Err(e) => self.failed(IoFailureKind::Interaction, e.into(), false),
        }
    }

    /// A login was asked for, but the app has no login flow manager.
    pub fn no_login_flow(&mut self) -> Input {
        self.failed(
            IoFailureKind::Interaction,
            Error::MissingPart("login flow manager"),
            false,
        )
    }

    /// 64 random bytes from the operating system.
    pub fn random(&mut self) -> Input {
        let mut bytes = Box::new([0u8; 64]);
        match getrandom::fill(&mut bytes[..]) {
            Ok(()) => Input::Random(bytes),
            Err(e) => Input::Failed(IoFailure::new(
                IoFailureKind::Interaction,
                &format_args!("no secure randomness: {e}"),
                false,
            )),
        }
    }

    /// An action this adapter does not know (a newer core).
    pub fn unsupported(&mut self, action: &dyn std::fmt::Debug) -> Input {
        Input::Failed(IoFailure::new(
            IoFailureKind::Interaction,
            &format_args!("unsupported action {action:?}"),
            false,
        ))
    }

    /// The operation's next action, or its result: an I/O failure the
    /// core gave up on is reported as the adapter's own typed error.
    #[inline]
    pub fn next<T, O: Operation<Output = Result<T, AppError>>>(
        &mut self,
        op: &mut O,
        input: Option<Input>,
    ) -> Step<Result<T, Error>> {
        match op.advance(input, now()) {
            Step::Action(action) => Step::Action(action),
            Step::Done(Ok(output)) => Step::Done(Ok(output)),
            Step::Done(Err(AppError::Io(io))) => Step::Done(Err(self
                .last_failure
                .take()
                .unwrap_or_else(|| AppError::Io(io).into()))),
            Step::Done(Err(e)) => Step::Done(Err(failed_operation(e))),
        }
    }
}

/// The adapter's error for an operation's failure (out of line: the warm
/// path never fails).
#[cold]
fn failed_operation(error: AppError) -> Error {
    if let AppError::IdToken(e) = &error {
        crate::trace::id_token_rejected(e);
    }
    error.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn hostname_is_the_kernels() {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(hostname(), kernel.trim());
        assert!(!hostname().is_empty());
    }

    #[test]
    fn now_is_the_system_clock() {
        let before = UnixTime::from(SystemTime::now());
        let now = now();
        assert!(now >= before && now.as_secs() - before.as_secs() <= 1);
        assert!(now > UnixTime::from_secs(1_700_000_000));
    }
}

/// The service-client builder options both adapters share, expanded to
/// methods of a builder with fields `binding` (a [`ServiceBinding`]),
/// `retry` (a `RetryPolicy`) and `retry_non_idempotent`.
#[doc(hidden)]
#[macro_export]
macro_rules! shared_service_builder_setters {
    () => {
        /// Require these scopes of the app instead of the service's default
        /// ones (the Python SDK's `app_scopes`); empty: add none.
        pub fn scopes<S: AsRef<str>>(mut self, scopes: &[S]) -> Self {
            self.binding.scopes = Some(scopes.iter().map(|s| s.as_ref().to_owned()).collect());
            self
        }

        /// The service's URL, instead of the app configuration's
        /// (`with_service_url`), `GLOBUS_SDK_SERVICE_URL_<NAME>`'s or the
        /// environment's.
        pub fn base_url(mut self, url: impl Into<String>) -> Self {
            self.binding.base_url = Some(url.into());
            self
        }

        /// The environment the client is for: it must be the app's
        /// (`Error::EnvironmentMismatch` otherwise).
        pub fn environment(mut self, environment: $crate::proto::environment::Environment) -> Self {
            self.binding.environment = Some(environment);
            self
        }

        /// How 429 and 5xx answers and lost connections are retried
        /// (default: `RetryPolicy::default()`, 5 retries;
        /// `RetryPolicy::NEVER` for none).
        pub fn retry_policy(mut self, policy: $crate::http::RetryPolicy) -> Self {
            self.retry = policy;
            self
        }

        /// The largest answer read whole, in bytes (default
        /// `DEFAULT_MAX_RESPONSE_BYTES`, 256 MiB): a larger one is
        /// a transport error of kind `TransportErrorKind::TooLarge`, its body
        /// unread past the limit.
        /// Streamed answers (`request_reader`) have no limit.
        pub fn max_response_bytes(mut self, limit: u64) -> Self {
            self.binding.max_response_bytes = Some(limit);
            self
        }

        /// Retry non-idempotent requests too (a POST that is not a
        /// transfer or delete submission), as the Python SDK does. Off by
        /// default: a request the server may have carried out is not sent
        /// twice.
        pub fn retry_non_idempotent(mut self, retry: bool) -> Self {
            self.retry_non_idempotent = retry;
            self
        }
    };
}

/// A service answer's body that could not be read whole (the connection
/// dropped, a body shorter than its `Content-Length`), for the client of
/// `base`. Shared by both adapters' service clients.
#[cfg(feature = "ureq")]
pub fn answer_read_error(base: &url::Url, error: std::io::Error) -> Error {
    let uri: http::Uri = base.as_str().parse().unwrap_or_default();
    TransportError::new(crate::http::TransportErrorKind::of_io(&error), &uri, error).into()
}

/// A service answer larger than the `limit` its client reads whole: a
/// transport error of kind `TooLarge`, as for Globus Auth's answers.
#[cfg(feature = "ureq")]
pub fn answer_too_large(base: &url::Url, limit: u64) -> Error {
    let uri: http::Uri = base.as_str().parse().unwrap_or_default();
    TransportError::new(
        crate::http::TransportErrorKind::TooLarge,
        &uri,
        format!("the answer is larger than {limit} bytes, the most this client reads whole"),
    )
    .into()
}

/// How a service client is bound to its app: scopes instead of the
/// service's defaults, a base URL instead of the environment's, the
/// environment it expects. Shared by both adapters' service clients.
#[cfg(feature = "ureq")]
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServiceBinding {
    /// Scopes to require instead of the service's defaults (empty: none).
    pub scopes: Option<Vec<String>>,
    /// The service's URL instead of the environment's.
    pub base_url: Option<String>,
    /// The environment the client expects (the app's, or an error).
    pub environment: Option<globus_app_proto::environment::Environment>,
    /// The largest answer read whole, if not the default.
    pub max_response_bytes: Option<u64>,
}

#[cfg(feature = "ureq")]
impl ServiceBinding {
    /// The largest answer read whole.
    pub fn response_limit(&self) -> u64 {
        self.max_response_bytes
            .unwrap_or(globus_app_proto::service::DEFAULT_MAX_RESPONSE_BYTES)
    }
}

/// Binds a client of `spec` to `app`: checks the environment, resolves the
/// base URL (the binding's, the app configuration's `service_urls`,
/// `GLOBUS_SDK_SERVICE_URL_<NAME>`, the environment's; for Auth, the app's
/// own Globus Auth), and adds the
/// scopes to the app's requirements. Returns the base URL.
#[cfg(feature = "ureq")]
pub fn bind_service(
    app: &GlobusApp,
    spec: globus_app_proto::service::ServiceSpec,
    binding: &ServiceBinding,
) -> Result<url::Url, Error> {
    let app_environment = app.config().resolved_environment();
    if let Some(environment) = binding.environment
        && environment != app_environment
    {
        return Err(Error::EnvironmentMismatch {
            client: environment,
            app: app_environment,
        });
    }
    let plain_http_hosts = &app.config().plain_http_hosts;
    let configured = binding
        .base_url
        .as_ref()
        .or_else(|| app.config().service_urls.get(spec.name));
    let base_url = match (configured, spec.name) {
        (Some(url), _) => spec.base_url(app_environment, Some(url), plain_http_hosts)?,
        // The app's own Globus Auth (its configuration and
        // GLOBUS_SDK_SERVICE_URL_AUTH already chose it).
        (None, "auth") => {
            let url = app.login_client().auth_base().clone();
            globus_app_proto::origin::TokenOrigin::of_url(&url, plain_http_hosts)
                .map_err(ServiceRequestError::TokenOrigin)?;
            url
        }
        (None, _) => {
            let variable = std::env::var(spec.url_variable()).ok();
            spec.base_url(app_environment, variable.as_deref(), plain_http_hosts)?
        }
    };
    let scopes: Vec<&str> = match &binding.scopes {
        Some(scopes) => scopes.iter().map(String::as_str).collect(),
        None => spec.default_scopes.to_vec(),
    };
    if !scopes.is_empty() {
        app.add_scope_requirements_str(spec.resource_server, &scopes.join(" "))?;
    }
    Ok(base_url)
}
