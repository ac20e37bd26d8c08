//! [`Error`]: why an app call failed, with the cause kept and the questions
//! callers ask answered (`is_login_required`, `is_retryable`, `http_status`).

use globus_app_proto::app::{AppError, ConfigError, InvalidAccessToken, TokenValidationError};
use globus_app_proto::auth_error::AuthApiError;
use globus_app_proto::response::ResponseError;
use globus_app_proto::scope::ScopeParseError;
use globus_app_proto::service::{ServiceError, ServiceRequestError};

use crate::http::TransportError;
use crate::login::LoginFlowError;
use crate::storage::StorageError;

/// Why an app call failed.
///
/// Every variant keeps its cause: [`source()`](std::error::Error::source)
/// reaches the transport, storage or SQLite error underneath. Messages never
/// contain a token, code or secret. The large causes are boxed, so that an
/// `Error` is three words and a `Result` stays small on the warm path.
///
/// ```no_run
/// # fn example(app: &globus_app_blocking::UserApp) -> Result<(), globus_app_blocking::Error> {
/// use globus_app_blocking::{Error, proto::app::AppError};
///
/// match app.get_authorizer("transfer.api.globus.org") {
///     Ok(authorization) => { /* use it */ }
///     Err(e) if e.is_retryable() => { /* try again later */ }
///     Err(e) if e.is_login_required() => { /* ask the user to log in */ }
///     // A variant's cause is boxed: match on it through the box.
///     Err(Error::App(cause)) if matches!(*cause, AppError::NoScopeRequirements(_)) => {
///         /* a resource server missing from the scope requirements */
///     }
///     Err(e) => return Err(e),
/// }
/// # Ok(()) }
/// ```
///
/// With [`TokenValidationErrorHandler::Raise`](crate::TokenValidationErrorHandler::Raise)
/// in the configuration, stored tokens that do not satisfy the app are not
/// resolved by a login: the call returns `Error::App(AppError::Validation(..))`,
/// and [`is_login_required`](Self::is_login_required) says whether a
/// login would fix it:
///
/// ```no_run
/// use globus_app_blocking::{GlobusAppConfig, TokenValidationErrorHandler, UserApp};
///
/// let app = UserApp::builder("My Tool")
///     .client_id("your-native-app-client-id")
///     .config(
///         GlobusAppConfig::default()
///             .with_token_validation_error_handler(TokenValidationErrorHandler::Raise),
///     )
///     .build()?;
/// match app.get_authorizer("auth.globus.org") {
///     Err(e) if e.is_login_required() => eprintln!("not logged in: run `my-tool login`"),
///     other => { other?; }
/// }
/// # Ok::<(), globus_app_blocking::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The app core's verdict: stored tokens that do not satisfy the app,
    /// an error from Globus Auth, an id_token that did not verify...
    #[error(transparent)]
    App(Box<AppError>),
    /// Token storage failed.
    #[error(transparent)]
    Storage(Box<StorageError>),
    /// A request got no response.
    #[error(transparent)]
    Transport(Box<TransportError>),
    /// The interactive login failed.
    #[error(transparent)]
    Login(Box<LoginFlowError>),
    /// The configuration is not usable.
    #[error(transparent)]
    Config(Box<ConfigError>),
    /// A scope string did not parse.
    #[error(transparent)]
    Scope(Box<ScopeParseError>),
    /// A stored access token cannot be sent in an HTTP header.
    #[error(transparent)]
    InvalidAccessToken(#[from] InvalidAccessToken),
    /// An authorized client was asked to send to a host whose resource
    /// server it does not know (map it with `with_resource_server`).
    #[error("no resource server is known for host {host}; map it with with_resource_server")]
    UnknownService {
        /// The host (and port) of the request.
        host: String,
    },
    /// A Globus service answered with an error (or an answer that is not
    /// what its API promises: [`ServiceError::is_malformed`]).
    #[error(transparent)]
    Service(Box<ServiceError>),
    /// A service request was not sent: its URL is outside the client's
    /// base URL (another scheme, host or port), a production URL is plain
    /// http, or the request is invalid. No token left the process.
    #[error(transparent)]
    ServiceRequest(Box<ServiceRequestError>),
    /// A service client was bound to an app of another environment.
    #[error("a {client} client cannot use an app of environment {app}")]
    EnvironmentMismatch {
        /// The client's environment.
        client: globus_app_proto::environment::Environment,
        /// The app's environment.
        app: globus_app_proto::environment::Environment,
    },
    /// The configuration names a custom part (token storage, login flow
    /// manager) or a part whose feature is off (HTTP client), and none was
    /// given to the builder.
    #[error("the app needs a {0}, but none was given to the builder")]
    MissingPart(&'static str),
}

/// `From` each cause, boxing it, so that `?` works on them all.
macro_rules! from_boxed {
    ($($variant:ident($cause:ty)),* $(,)?) => {
        $(
            impl From<$cause> for Error {
                fn from(cause: $cause) -> Self {
                    Self::$variant(Box::new(cause))
                }
            }
        )*
    };
}

from_boxed!(
    App(AppError),
    Storage(StorageError),
    Transport(TransportError),
    Login(LoginFlowError),
    Config(ConfigError),
    Scope(ScopeParseError),
    Service(ServiceError),
    ServiceRequest(ServiceRequestError),
);

impl Error {
    /// Whether a new login would fix this: no usable token for a required
    /// resource server, missing scopes or consents, or a refresh token that
    /// Globus Auth rejected (`invalid_grant`). An identity mismatch is not
    /// fixed by a login (log out first) and answers `false`.
    pub fn is_login_required(&self) -> bool {
        match self {
            Self::App(error) => match &**error {
                AppError::Validation(error) => !matches!(
                    error,
                    TokenValidationError::IdentityMismatch { .. }
                        | TokenValidationError::MixedIdentities
                        | TokenValidationError::MissingIdentity
                ),
                AppError::Response(error) => error.is_invalid_grant(),
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether the interactive login was cancelled (its
    /// [`Cancellation`](crate::Cancellation)).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Login(e) if matches!(**e, LoginFlowError::Cancelled))
    }

    /// Whether the same call may succeed later: a timeout, a refused or
    /// dropped connection, a 429 or 5xx from Globus Auth, or a renewal lock
    /// that could not be taken.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::App(error) => error.is_retryable(),
            Self::Transport(error) => error.is_retryable(),
            Self::Storage(error) => error.is_retryable(),
            Self::Service(error) => matches!(error.status.as_u16(), 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// The HTTP status of an error response from Globus Auth or a service.
    pub fn http_status(&self) -> Option<http::StatusCode> {
        let status = match self {
            Self::Service(error) => return Some(error.status),
            Self::App(error) => match &**error {
                AppError::Response(ResponseError::NotJson { status, .. }) => *status,
                _ => self.auth_api_error()?.status,
            },
            _ => self.auth_api_error()?.status,
        };
        http::StatusCode::from_u16(status).ok()
    }

    /// The error response from Globus Auth, with its OAuth `error`, the
    /// Globus `code`, `request_id` and `errors[]`.
    pub fn auth_api_error(&self) -> Option<&AuthApiError> {
        let Self::App(error) = self else {
            return None;
        };
        match &**error {
            AppError::Response(
                ResponseError::Api(error) | ResponseError::ErrorInSuccess(error),
            ) => Some(error),
            _ => None,
        }
    }

    /// The Globus error `code` of an error response (e.g. `UNAUTHORIZED`).
    pub fn globus_code(&self) -> Option<&str> {
        self.auth_api_error()?.code.as_deref()
    }

    /// The request id of an error response, for Globus support.
    pub fn request_id(&self) -> Option<&str> {
        self.auth_api_error()?.request_id.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_small() {
        // Three words: the large causes are boxed (it was 96 bytes, as
        // large as a StorageError).
        assert!(
            size_of::<Error>() <= 3 * size_of::<usize>(),
            "{}",
            size_of::<Error>()
        );
    }

    #[test]
    fn every_cause_converts_with_question_mark() {
        fn storage() -> Result<(), Error> {
            Err(StorageError::Unavailable {
                source: "down".into(),
            })?
        }
        fn app() -> Result<(), Error> {
            Err(AppError::NoScopesToRequest)?
        }
        assert!(matches!(storage(), Err(Error::Storage(e)) if e.is_retryable()));
        assert!(matches!(app(), Err(Error::App(e)) if matches!(*e, AppError::NoScopesToRequest)));
    }
}
