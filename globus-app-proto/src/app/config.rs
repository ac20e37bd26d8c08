//! App configuration (`GlobusAppConfig`) and app construction, with the
//! Python SDK's defaults and its misuse errors as typed errors.

use crate::environment::Environment;
use crate::request::LoginClient;
use crate::scope::ScopeParseError;
use crate::secret::ClientSecret;
use crate::storage::DEFAULT_NAMESPACE;

/// How a `UserApp` shows the authorize page and gets the code back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginFlowKind {
    /// Print the URL; the user pastes the code shown by Globus Auth
    /// (`"command-line"`, the default).
    CommandLine,
    /// Open a browser; a one-shot listener on 127.0.0.1 receives the
    /// redirect (`"local-server"`, native clients only).
    LocalServer,
    /// The adapter's own flow manager; redirect URI as for the command line.
    Custom,
}

impl LoginFlowKind {
    /// The flow named as in the Python SDK's config: `command-line` or
    /// `local-server`.
    pub fn from_name(name: &str) -> Result<Self, ConfigError> {
        match name {
            "command-line" => Ok(Self::CommandLine),
            "local-server" => Ok(Self::LocalServer),
            other => Err(ConfigError::UnsupportedLoginFlowManager(other.to_owned())),
        }
    }
}

/// Where tokens are kept. The adapters build the storage; the core only
/// records the choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TokenStorageKind {
    /// `tokens.json` at the default path (the default).
    #[default]
    Json,
    /// `tokens.db` (SQLite) at the default path.
    Sqlite,
    /// In memory, lost at exit.
    Memory,
    /// A storage the caller supplies.
    Custom,
}

impl TokenStorageKind {
    /// The storage named as in the Python SDK's config.
    pub fn from_name(name: &str) -> Result<Self, ConfigError> {
        match name {
            "json" => Ok(Self::Json),
            "sqlite" => Ok(Self::Sqlite),
            "memory" => Ok(Self::Memory),
            other => Err(ConfigError::UnsupportedTokenStorage(other.to_owned())),
        }
    }
}

/// What `get_authorizer` does when the stored tokens do not satisfy the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TokenValidationErrorHandler {
    /// Log in again (once), then retry (the default; the Python SDK's
    /// `resolve_by_login_flow`). An identity mismatch is never "resolved"
    /// this way.
    #[default]
    LoginAgain,
    /// Return the error (the Python SDK's `token_validation_error_handler=None`).
    Raise,
}

/// App options, with the Python SDK's defaults.
///
/// ```
/// use globus_app_proto::app::{GlobusAppConfig, LoginFlowKind};
/// let config = GlobusAppConfig::default()
///     .with_login_flow(LoginFlowKind::LocalServer)
///     .with_request_refresh_tokens(true)
///     .with_auth_base_url("http://127.0.0.1:8000/"); // a &str or a String
/// assert_eq!(config.namespace, "DEFAULT");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GlobusAppConfig {
    /// The login flow (`UserApp` only; `None` means command-line).
    pub login_flow: Option<LoginFlowKind>,
    /// The redirect URI for the command-line flow; required for
    /// confidential clients, not allowed with the local-server flow.
    pub login_redirect_uri: Option<String>,
    /// Where tokens are kept.
    pub token_storage: TokenStorageKind,
    /// Ask for refresh tokens (`access_type=offline`) and refresh access
    /// tokens instead of logging in again. Off by default, as in the Python
    /// SDK; most long-running tools want it on.
    pub request_refresh_tokens: bool,
    /// Log in again and retry once when a service answers with a GARE.
    pub auto_redrive_gares: bool,
    /// What to do when stored tokens do not satisfy the app.
    pub token_validation_error_handler: TokenValidationErrorHandler,
    /// Clock-skew allowance for id_token time claims, in seconds.
    pub id_token_leeway_secs: i64,
    /// The Globus environment; `None` (the default) means
    /// `GLOBUS_SDK_ENVIRONMENT` when the adapter reads the environment
    /// variables (see [`with_environment_variables`](Self::with_environment_variables)),
    /// else production. See [`resolved_environment`](Self::resolved_environment).
    pub environment: Option<Environment>,
    /// The token-storage namespace (the Python SDK always uses `DEFAULT`).
    pub namespace: String,
    /// The Auth base URL override; `None` (the default) means
    /// `GLOBUS_SDK_SERVICE_URL_AUTH` when the adapter reads the environment
    /// variables, else the environment's Auth URL.
    pub auth_base_url: Option<String>,
    /// Base URLs of other services (`transfer`, `groups`...) for the
    /// service clients bound to the app, before
    /// `GLOBUS_SDK_SERVICE_URL_<NAME>` and the environment's URLs (empty
    /// by default). A local stand-in service, a test server.
    pub service_urls: std::collections::BTreeMap<String, String>,
    /// Hosts, beside loopback addresses, that tokens may reach over plain
    /// http (normalised: see [`with_plain_http_host`](Self::with_plain_http_host));
    /// empty by default. Globus production hosts are never reached over
    /// plain http, whatever this holds ([`crate::origin`]).
    pub plain_http_hosts: std::collections::BTreeSet<String>,
}

/// The Python SDK's environment variables that configure an app.
pub const ENVIRONMENT_VARIABLES: [&str; 2] =
    ["GLOBUS_SDK_ENVIRONMENT", "GLOBUS_SDK_SERVICE_URL_AUTH"];

impl GlobusAppConfig {
    /// Sets the base URL of `service` (`transfer`, `groups`, `search`...)
    /// for the service clients bound to the app
    /// ([`service_urls`](Self::service_urls)).
    #[must_use]
    pub fn with_service_url(mut self, service: &str, url: impl Into<String>) -> Self {
        self.service_urls.insert(service.to_owned(), url.into());
        self
    }

    /// Lets tokens reach `host` over plain http (a test service on
    /// another machine of a private network, say): an explicit opt-in, as
    /// every other host gets tokens over https only, loopback addresses
    /// aside. The host is normalised as the policy compares hosts (case,
    /// trailing dot, percent-encoding, IDNA); a Globus production host
    /// (`globus.org`, `globusonline.org` and their subdomains) is never
    /// allowed, and naming one has no effect.
    #[must_use]
    pub fn with_plain_http_host(mut self, host: &str) -> Self {
        if let Some(host) = crate::origin::plain_http_host(host) {
            self.plain_http_hosts.insert(host);
        }
        self
    }

    /// The environment in force: the configured one, else production.
    pub fn resolved_environment(&self) -> Environment {
        self.environment.unwrap_or_default()
    }

    /// Fills what this configuration leaves unset from the Python SDK's
    /// environment variables, as `lookup` reports them: `environment` from
    /// `GLOBUS_SDK_ENVIRONMENT` and `auth_base_url` from
    /// `GLOBUS_SDK_SERVICE_URL_AUTH`. Values set explicitly win; empty
    /// variables count as unset. The adapters call this with the process
    /// environment unless told not to.
    ///
    /// ```
    /// use globus_app_proto::app::GlobusAppConfig;
    /// use globus_app_proto::environment::Environment;
    ///
    /// let vars = |name: &str| (name == "GLOBUS_SDK_ENVIRONMENT").then(|| "sandbox".to_owned());
    /// let config = GlobusAppConfig::default().with_environment_variables(vars)?;
    /// assert_eq!(config.resolved_environment(), Environment::Sandbox);
    /// let explicit = GlobusAppConfig::default()
    ///     .with_environment(Environment::Production)
    ///     .with_environment_variables(vars)?;
    /// assert_eq!(explicit.resolved_environment(), Environment::Production);
    /// # Ok::<(), globus_app_proto::app::ConfigError>(())
    /// ```
    pub fn with_environment_variables(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let [environment_variable, auth_url_variable] = ENVIRONMENT_VARIABLES;
        let set = |name: &str| lookup(name).filter(|value| !value.is_empty());
        if self.environment.is_none() {
            self.environment = Some(Environment::from_env_value(
                set(environment_variable).as_deref(),
            )?);
        }
        if self.auth_base_url.is_none() {
            self.auth_base_url = set(auth_url_variable);
        }
        Ok(self)
    }
}

impl Default for GlobusAppConfig {
    fn default() -> Self {
        Self {
            login_flow: None,
            login_redirect_uri: None,
            token_storage: TokenStorageKind::Json,
            request_refresh_tokens: false,
            auto_redrive_gares: false,
            token_validation_error_handler: TokenValidationErrorHandler::LoginAgain,
            id_token_leeway_secs: crate::id_token::DEFAULT_LEEWAY_SECS,
            environment: None,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            auth_base_url: None,
            service_urls: std::collections::BTreeMap::new(),
            plain_http_hosts: std::collections::BTreeSet::new(),
        }
    }
}

// Each setter takes `impl Into<..>`: `.with_auth_base_url("http://...")`
// takes a `&str` as well as a `String`.
macro_rules! with {
    ($(#[$doc:meta] $name:ident: $field:ident: $ty:ty),* $(,)?) => {
        impl GlobusAppConfig {
            $(
                #[$doc]
                #[must_use]
                pub fn $name(mut self, value: impl Into<$ty>) -> Self {
                    let value: $ty = value.into();
                    self.$field = value.into();
                    self
                }
            )*
        }
    };
}

with!(
    /// Sets [`login_flow`](Self::login_flow).
    with_login_flow: login_flow: LoginFlowKind,
    /// Sets [`login_redirect_uri`](Self::login_redirect_uri).
    with_login_redirect_uri: login_redirect_uri: String,
    /// Sets [`token_storage`](Self::token_storage).
    with_token_storage: token_storage: TokenStorageKind,
    /// Sets [`request_refresh_tokens`](Self::request_refresh_tokens).
    with_request_refresh_tokens: request_refresh_tokens: bool,
    /// Sets [`auto_redrive_gares`](Self::auto_redrive_gares).
    with_auto_redrive_gares: auto_redrive_gares: bool,
    /// Sets [`token_validation_error_handler`](Self::token_validation_error_handler).
    with_token_validation_error_handler: token_validation_error_handler: TokenValidationErrorHandler,
    /// Sets [`id_token_leeway_secs`](Self::id_token_leeway_secs).
    with_id_token_leeway_secs: id_token_leeway_secs: i64,
    /// Sets [`environment`](Self::environment).
    with_environment: environment: Environment,
    /// Sets [`namespace`](Self::namespace).
    with_namespace: namespace: String,
    /// Sets [`auth_base_url`](Self::auth_base_url).
    with_auth_base_url: auth_base_url: String,
);

/// A configuration the app cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Both a client id and a login client were given.
    #[error("a client id and a login client were both given; give one")]
    ClientIdAndLoginClient,
    /// Neither was given.
    #[error("no client: give a client id (or a login client)")]
    MissingClient,
    /// A secret was given with a login client (the Python SDK ignores it).
    #[error("a client secret was given with a login client; give the secret to the login client")]
    SecretWithLoginClient,
    /// A `ClientApp` without a secret.
    #[error("a ClientApp needs a client secret")]
    ClientAppRequiresSecret,
    /// A `ClientApp` with a native login client.
    #[error("a ClientApp needs a confidential login client")]
    ClientAppRequiresConfidentialClient,
    /// A `ClientApp` with a login flow.
    #[error("a ClientApp has no interactive login flow")]
    ClientAppCannotUseLoginFlow,
    /// A confidential client's command-line flow without a redirect URI.
    #[error("a confidential client needs an explicit login redirect URI")]
    ConfidentialClientRequiresRedirectUri,
    /// The local-server flow with a custom redirect URI.
    #[error("the local-server login flow chooses its own redirect URI; remove the custom one")]
    LocalServerCustomRedirectUri,
    /// The local-server flow with a confidential client.
    #[error("the local-server login flow needs a native (public) client")]
    LocalServerRequiresNativeClient,
    /// An unknown login flow name.
    #[error("unknown login flow {0:?} (expected \"command-line\" or \"local-server\")")]
    UnsupportedLoginFlowManager(String),
    /// An unknown token storage name.
    #[error("unknown token storage {0:?} (expected \"json\", \"sqlite\" or \"memory\")")]
    UnsupportedTokenStorage(String),
    /// A scope requirement does not parse.
    #[error("invalid scope requirement for {resource_server:?}: {source}")]
    InvalidScopeRequirement {
        /// The resource server it was given for.
        resource_server: String,
        /// The parse error.
        source: ScopeParseError,
    },
    /// The Auth base URL or environment is not usable.
    #[error(transparent)]
    Environment(#[from] crate::environment::EnvironmentError),
    /// The namespace is empty.
    #[error("the token storage namespace cannot be empty")]
    EmptyNamespace,
}

/// The login client an app will use, from its constructor arguments.
pub(crate) fn resolve_login_client(
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    login_client: Option<LoginClient>,
    config: &GlobusAppConfig,
) -> Result<LoginClient, ConfigError> {
    match (client_id, login_client) {
        (Some(_), Some(_)) => Err(ConfigError::ClientIdAndLoginClient),
        (None, None) => Err(ConfigError::MissingClient),
        (None, Some(client)) => {
            if client_secret.is_some() {
                return Err(ConfigError::SecretWithLoginClient);
            }
            Ok(client)
        }
        (Some(id), None) => {
            let base = config
                .resolved_environment()
                .service_url("auth", config.auth_base_url.as_deref())?;
            Ok(match client_secret {
                Some(secret) => LoginClient::confidential(id, secret, base),
                None => LoginClient::native(id, base),
            })
        }
    }
}
