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
///     .with_request_refresh_tokens(true);
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
    /// The Globus environment.
    pub environment: Environment,
    /// The token-storage namespace (the Python SDK always uses `DEFAULT`).
    pub namespace: String,
    /// The Auth base URL override (the value of `GLOBUS_SDK_SERVICE_URL_AUTH`).
    pub auth_base_url: Option<String>,
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
            environment: Environment::Production,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            auth_base_url: None,
        }
    }
}

macro_rules! with {
    ($(#[$doc:meta] $name:ident: $field:ident: $ty:ty),* $(,)?) => {
        impl GlobusAppConfig {
            $(
                #[$doc]
                #[must_use]
                pub fn $name(mut self, value: $ty) -> Self {
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

/// A configuration the app cannot run with. Messages are the Python SDK's
/// where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Both a client id and a login client were given.
    #[error("Mutually exclusive parameters: client_id and login_client.")]
    ClientIdAndLoginClient,
    /// Neither was given.
    #[error(
        "Could not set up a globus login client. One of client_id or login_client is required."
    )]
    MissingClient,
    /// A secret was given with a login client (the Python SDK ignores it).
    #[error(
        "client_secret cannot be used with login_client; give the secret to the login client instead."
    )]
    SecretWithLoginClient,
    /// A `ClientApp` without a secret.
    #[error("A ClientApp requires a client_secret to initialize its own login client.")]
    ClientAppRequiresSecret,
    /// A `ClientApp` with a native login client.
    #[error("A ClientApp must use a ConfidentialAppAuthClient for its login_client")]
    ClientAppRequiresConfidentialClient,
    /// A `ClientApp` with a login flow.
    #[error("A ClientApp cannot use a login_flow_manager")]
    ClientAppCannotUseLoginFlow,
    /// A confidential client's command-line flow without a redirect URI.
    #[error("Use of a Confidential client requires an explicit redirect_uri.")]
    ConfidentialClientRequiresRedirectUri,
    /// The local-server flow with a custom redirect URI.
    #[error("Cannot define a custom redirect_uri for LocalServerLoginFlowManager.")]
    LocalServerCustomRedirectUri,
    /// The local-server flow with a confidential client.
    #[error("LocalServerLoginFlowManager is only supported for Native Apps.")]
    LocalServerRequiresNativeClient,
    /// An unknown login flow name.
    #[error(
        "Unsupported login_flow_manager value: '{0}'. Expected 'command-line', 'local-server', or a custom login flow manager."
    )]
    UnsupportedLoginFlowManager(String),
    /// An unknown token storage name.
    #[error(
        "Unsupported token_storage value: '{0}'. Expected 'json', 'sqlite', 'memory', or a custom storage."
    )]
    UnsupportedTokenStorage(String),
    /// A scope requirement does not parse.
    #[error("invalid scope requirement for '{resource_server}': {source}")]
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
                .environment
                .service_url("auth", config.auth_base_url.as_deref())?;
            Ok(match client_secret {
                Some(secret) => LoginClient::confidential(id, secret, base),
                None => LoginClient::native(id, base),
            })
        }
    }
}
