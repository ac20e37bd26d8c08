//! What can go wrong when using an app.

use crate::UnixTime;
use crate::authorize::RedirectError;
use crate::id_token::IdTokenError;
use crate::redaction::SentSecrets;
use crate::request::RequestError;
use crate::response::ResponseError;
use crate::scope::ScopeParseError;

/// Stored tokens do not satisfy the app: the cases a new login can fix
/// (except an identity mismatch, which a login never "fixes").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenValidationError {
    /// No token for the resource server.
    #[error("no token for {resource_server}")]
    MissingToken {
        /// The resource server.
        resource_server: String,
    },
    /// Refresh-token mode, but the record has no refresh token.
    #[error("no refresh token for {resource_server}")]
    MissingRefreshToken {
        /// The resource server.
        resource_server: String,
    },
    /// Access-token mode, and the access token has expired.
    #[error("the access token for {resource_server} expired at {expires_at}")]
    Expired {
        /// The resource server.
        resource_server: String,
        /// When it expired.
        expires_at: UnixTime,
    },
    /// Globus Auth rejected the refresh token (`invalid_grant`): it was
    /// revoked or expired.
    #[error("the refresh token for {resource_server} was rejected (invalid_grant); log in again")]
    RefreshTokenRejected {
        /// The resource server.
        resource_server: String,
    },
    /// A service refused the access token (401), and it cannot be renewed
    /// without a login (access-token mode, or no refresh token).
    #[error("a service rejected the access token for {resource_server}")]
    AccessTokenRejected {
        /// The resource server.
        resource_server: String,
    },
    /// The token lacks required scopes.
    #[error("the token for {resource_server} lacks required scopes {missing:?}")]
    UnmetScopeRequirements {
        /// The resource server.
        resource_server: String,
        /// The required scope names the token does not have.
        missing: Vec<String>,
    },
    /// The user's consents do not cover the required dependent scopes.
    #[error("the consents for {resource_server} do not cover its required dependent scopes")]
    UnmetDependentScopeRequirements {
        /// The resource server.
        resource_server: String,
    },
    /// A login response had no id_token, so the identity is unknown.
    #[error("the token response has no id_token (was `openid` among the requested scopes?)")]
    MissingIdentity,
    /// A different user than the one the app's tokens belong to.
    #[error(
        "the new tokens belong to identity {new}, not to {stored} whose tokens are stored; log out first"
    )]
    IdentityMismatch {
        /// The identity of the stored tokens.
        stored: String,
        /// The new identity.
        new: String,
    },
    /// The stored tokens belong to several identities.
    #[error("the stored token data belongs to more than one identity")]
    MixedIdentities,
}

/// A failure the adapter reports for an action it could not perform.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} failed: {message}")]
#[non_exhaustive]
pub struct IoFailure {
    /// What failed.
    pub kind: IoFailureKind,
    /// A description without secrets.
    pub message: String,
    /// Whether trying again later may succeed.
    pub retryable: bool,
}

impl IoFailure {
    /// A failure of `kind`, described by `error` (its `Display`, which must
    /// not contain secrets).
    pub fn new(kind: IoFailureKind, error: &dyn std::fmt::Display, retryable: bool) -> Self {
        Self {
            kind,
            message: error.to_string(),
            retryable,
        }
    }
}

/// The kind of action that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoFailureKind {
    /// Reading or writing token storage.
    Storage,
    /// Sending a request or receiving its response.
    Transport,
    /// The interactive login (browser, terminal).
    Interaction,
    /// Taking a renewal lock.
    Lock,
    /// Reading token storage that holds something unreadable (a corrupt,
    /// empty or oversized token file), which a forced login sets aside.
    UnreadableStorage,
    /// Storing a renewal: a newer record for the resource server was
    /// stored meanwhile (another machine renewed after this renewal read
    /// the old one) and was kept. The operation hands out the newer one.
    Superseded,
}

impl std::fmt::Display for IoFailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Storage => "token storage",
            Self::Transport => "HTTP transport",
            Self::Interaction => "interactive login",
            Self::Lock => "renewal lock",
            Self::UnreadableStorage => "unreadable token storage",
            Self::Superseded => "superseded renewal",
        })
    }
}

/// Why an app operation failed. Messages never contain tokens.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The stored tokens do not satisfy the app (and the configured handler
    /// did not or could not resolve it).
    #[error(transparent)]
    Validation(#[from] TokenValidationError),
    /// Globus Auth answered with an error or an unusable response.
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// The adapter could not perform an action.
    #[error(transparent)]
    Io(#[from] IoFailure),
    /// The login was refused or its redirect was not ours.
    #[error(transparent)]
    Authorization(#[from] RedirectError),
    /// The id_token did not verify.
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    /// A scope string did not parse.
    #[error(transparent)]
    Scope(#[from] ScopeParseError),
    /// A request could not be built.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A token was asked for a resource server that is not in the app's
    /// scope requirements, and none usable is stored (a `ClientApp`: whether
    /// stored or not). A login asks only for the required resource servers,
    /// so none is run: add the resource server's scopes to the requirements
    /// first. (The Python SDK runs a login that ends without the token.)
    #[error(
        "the app has no scope requirements for resource server {0}, so no login can get its token; add its scopes to the scope requirements"
    )]
    NoScopeRequirements(String),
    /// Renewed tokens could not be stored (after retries): with refresh
    /// token rotation, the stored refresh token is now spent. This process
    /// keeps the new tokens in memory (a logout revokes them) and stores
    /// them on its next call for the resource server; if it ends first,
    /// the login may need repeating.
    #[error(
        "the tokens renewed for {resource_server} could not be saved ({reason}); this process keeps them and saves them on its next call, but if it ends first the login may need repeating"
    )]
    RenewalNotSaved {
        /// The resource server.
        resource_server: String,
        /// The storage failure (it names the file).
        reason: String,
    },
    /// A `ClientApp` login with no scopes to ask for.
    #[error("a ClientApp cannot get tokens without scope requirements")]
    NoScopesToRequest,
    /// The driver fed an input that does not answer the last action (a bug
    /// in the adapter).
    #[error("the driver answered '{got}' to an operation waiting for '{expected}'")]
    UnexpectedInput {
        /// What the operation waited for.
        expected: &'static str,
        /// What it got.
        got: &'static str,
    },
}

impl AppError {
    /// Replaces each secret the operation's requests carried, wherever a
    /// server wrote it into this error, with `[redacted]`.
    pub(crate) fn redact(&mut self, secrets: &SentSecrets) {
        if let Self::Response(error) = self {
            error.redact(secrets);
        }
    }

    /// Whether a later retry of the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Response(e) => e.is_retryable(),
            Self::Io(e) => e.retryable,
            Self::RenewalNotSaved { .. } => true,
            _ => false,
        }
    }
}
